//! HTTP: the router and its middleware, the `/api/v1` routes for backend
//! services and auditors' tools, and the SCIM routes. The top area: it may
//! use every other one; none uses it.

pub mod api_v1;
pub mod error;
pub mod middleware;
pub mod router;
pub mod scim;

pub use router::router;

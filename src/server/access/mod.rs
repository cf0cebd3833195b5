//! Access: what people and services may do. The role catalogue, grants and
//! their rules, the permission cache and the one authorization check,
//! service accounts and their tokens, people (directory, life cycle,
//! offboarding, setup), elevation (requests, break-glass, approval
//! policies), and the notifications they send.
//!
//! Depends on `platform`, `audit` and `identity` (step-up, sessions,
//! accounts, invitations).

pub mod authz;
mod cache;
pub mod databases;
pub mod elevation;
pub mod grants;
pub mod notify;
pub mod people;
pub mod reviews;
pub mod role_changes;
pub mod roles;
pub mod service_accounts;

pub use cache::{load as load_facts, AccessCache, Facts};

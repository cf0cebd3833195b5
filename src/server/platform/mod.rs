//! Platform: what every area stands on and that knows nothing of them.
//! The browser bundle's file names (which may be cached for good), and
//! the process's metrics.
//! The database (pools, dialect helpers, the SQLite checkpointer), the
//! clock, cryptography, configuration, logs, times as people read them,
//! the request context, names of people for history views, and the one
//! outbound HTTP client.

pub mod assets;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod db;
pub mod leases;
pub mod metrics;
pub mod names;
pub mod outbound;
pub mod request;
pub mod telemetry;
pub mod time;

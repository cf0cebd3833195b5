//! Server-only code (feature "ssr"), in areas that depend on each other one
//! way (docs/architecture.md):
//!
//! platform <- audit <- identity <- access <- http
//!
//! Each area's `mod.rs` is its public surface. Outside the areas: `state`
//! (what every request can reach), `startup` (building and serving),
//! `jobs` (every background job), `cli`, `seed`, `backup` (SQLite
//! backup and restore), `rotation` (rotating the keys) and `witness`
//! (`gatehouse witness`, a client of another Gatehouse).

pub mod access;
pub mod audit;
pub mod backup;
pub mod cli;
pub mod http;
pub mod identity;
pub mod jobs;
#[cfg(test)]
mod layout_tests;
pub mod platform;
pub mod rotation;
pub mod seed;
pub mod startup;
pub mod state;
pub mod witness;

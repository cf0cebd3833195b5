//! Server-only code (feature "ssr").

pub mod access;
pub mod access_cache;
pub mod activity;
pub mod api_v1;
pub mod audit_console;
pub mod audit_log;
pub mod auth;
pub mod checkpoints;
pub mod cli;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod db;
pub mod elevation;
pub mod errors;
pub mod grants;
pub mod http;
pub mod mfa;
pub mod people;
pub mod seed;
pub mod service;
pub mod session_store;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod users;

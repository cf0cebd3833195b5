//! Plain Rust domain rules: no axum, sqlx or leptos. Every function takes the
//! current time as an argument (milliseconds since the Unix epoch), so tests
//! control the clock.

pub mod actions;
pub mod alerts;
pub mod audit;
#[cfg(feature = "ssr")]
pub mod bundle;
#[cfg(feature = "ssr")]
pub mod checkpoint;
pub mod databases;
pub mod device;
pub mod elevation;
#[cfg(feature = "ssr")]
pub mod evidence;
pub mod floods;
pub mod grants;
pub mod lockout;
pub mod merkle;
pub mod network;
pub mod notify;
pub mod offboarding;
pub mod passkeys;
pub mod password;
pub mod permissions;
pub mod recovery;
pub mod reports;
pub mod reviews;
pub mod roles;
pub mod scim;
pub mod service;
pub mod session_policy;
#[cfg(feature = "ssr")]
pub mod siem;
pub mod sso;
pub mod totp;
pub mod validation;
#[cfg(feature = "ssr")]
pub mod witness;

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

pub const SECOND: Millis = 1_000;
pub const MINUTE: Millis = 60 * SECOND;
pub const HOUR: Millis = 60 * MINUTE;

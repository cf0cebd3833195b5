//! Identity: who someone is and how they prove it. Accounts (the `users`
//! table), sessions and the sign-in state, sign-in with a password and a
//! second factor (authenticator codes, recovery codes, passkeys),
//! throttling, invitations, and single sign-on.
//!
//! Depends on `platform` and `audit`; `access` builds on it (step-up,
//! ending sessions, invitations), never the other way round.

pub mod accounts;
pub mod device;
pub mod invitations;
pub mod mfa;
pub mod passkeys;
pub mod sessions;
pub mod signin;
pub mod sso;
mod throttle;

pub use throttle::{prune as prune_failures, unlock};

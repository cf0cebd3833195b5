//! The audit trail: appends in the caller's transaction and group commits,
//! the signing key and signed checkpoints, verification (with the native
//! SQLite reader), and what reads the trail: the auditors' console and
//! reports, anomaly alerts, and each employee's own activity.
//!
//! Depends only on `platform` (and `domain`): every other area records
//! through it. Names of people are read through `platform::names`.

pub mod activity;
pub mod alerts;
mod anonymous;
pub mod checkpoints;
pub mod console;
mod keys;
mod log;
mod native;
mod recorder;
pub mod siem;
pub mod tree;
mod verify;
pub mod witnesses;

pub use anonymous::AnonymousTally;
pub use keys::{
    load as load_keys, load_or_create as load_or_create_keys, public_keys, reseal as reseal_keys, rotate as rotate_key,
    AuditKeys, KeyError, KeySet,
};
pub use log::{append, event_from_row, event_ref, COLUMNS};
pub use recorder::Recorder;
pub use verify::{verify, verify_signed, VerifyReport};

//! People: the directory and an employee's life cycle (onboarding,
//! suspension, offboarding with its checklist), and the first administrator
//! (setup). SCIM provisioning (`http::scim`) drives the same life cycle.

mod directory;
mod lifecycle;
mod offboarding;
pub mod setup;

pub use directory::{dashboard, detail, grant_list, list, my_access, Filter};
pub use lifecycle::{onboard, reactivate, reissue_invitation, suspend, OnboardInput};
pub use offboarding::{
    cancel_scheduled, mark_checklist, offboard, offboard_in, offboarding_report, sweep_scheduled, Leaver, OffboardInput,
};

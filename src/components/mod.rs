//! Reusable UI pieces: the frame (`layout`), forms and their feedback
//! (`form`), and the classes every screen shares (`class`).

pub mod class;
mod form;
mod layout;

pub use form::{
    capital, AddPasskey, Badge, Card, Done, Field, FormError, InvitationSent, LoadError, PasskeyStepUp, Select,
    StepUpCode, Submit,
};
pub use layout::{use_me, Me, Shell};

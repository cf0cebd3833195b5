//! One module per group of screens.

mod account;
mod sign_in;

pub use account::{ActivityPage, HomePage, NotFound, SecurityPage};
pub use sign_in::{EnrolPage, MfaPage, RecoveryCodesPage, RecoverySignInPage, SetupPage, SignInPage};

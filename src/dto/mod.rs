//! The types server functions exchange with the browser. Compiled for both
//! targets; server-only conversions sit behind the `ssr` feature where they
//! are needed.

mod access;
mod account;
mod audit;
mod databases;
mod elevation;
mod people;
mod reviews;

pub use crate::domain::{
    audit::Outcome,
    elevation::{Kind as ElevationKind, State as RequestState},
    grants::{GrantState, Status as EmployeeStatus},
};
pub use access::*;
pub use account::*;
pub use audit::*;
pub use databases::*;
pub use elevation::*;
pub use people::*;
pub use reviews::*;

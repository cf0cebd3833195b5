//! Single sign-on with the company's OpenID provider (`provider`: the
//! client discovered at start; `flow`: the browser's round trip and who it
//! signs in).

mod flow;
mod provider;

pub use flow::{callback, logout_url, reseal as reseal_logins, start, CallbackParams};
pub use provider::{discover, Sso, ID_TOKEN_KEY};

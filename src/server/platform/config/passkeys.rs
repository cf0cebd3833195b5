//! Passkeys' settings: the relying party from `GATEHOUSE_PUBLIC_URL`, and
//! who must use one (`GATEHOUSE_REQUIRE_PASSKEY`, whose rules are
//! `domain::passkeys::Policy`).

use crate::domain::passkeys::{rp_id, Policy};

/// The relying party passkeys are bound to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Passkeys {
    /// The public URL's host (a domain name).
    pub rp_id: String,
    /// The public URL's origin: the only one an assertion may come from.
    pub origin: url::Url,
}

/// The relying party for `public_url`, or why passkeys are off (an IP
/// address as its host: browsers refuse WebAuthn there).
pub fn relying_party(public_url: &url::Url) -> Result<Passkeys, String> {
    let id = rp_id(public_url.host_str().unwrap_or_default()).map_err(|e| e.to_string())?;
    let mut origin = public_url.clone();
    origin.set_path("");
    origin.set_query(None);
    origin.set_fragment(None);
    Ok(Passkeys { rp_id: id, origin })
}

/// Reads `GATEHOUSE_REQUIRE_PASSKEY`. Requiring passkeys while they are off
/// (an IP address as the public host) would lock administrators out: an
/// error at start, with the reason.
pub fn policy(raw: Option<&str>, rp: &Result<Passkeys, String>) -> Result<Policy, String> {
    let policy = Policy::parse(raw.unwrap_or_default())?;
    match rp {
        Err(why) if policy != Policy::default() => Err(why.clone()),
        _ => Ok(policy),
    }
}

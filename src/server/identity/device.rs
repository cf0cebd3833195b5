//! The device cookie (`domain::device`): which accounts this browser has
//! completed sign-in for, signed with a key derived from the master key.
//! Read from the request (`RequestCtx::device_cookie`); written after a
//! completed sign-in.

use crate::domain::device::{self, Entry};
use crate::server::{
    platform::{config::Config, crypto, request::RequestCtx},
    state::AppState,
};

const PURPOSE: &str = "device-cookie";

/// `__Host-` prefixed (Secure, whole site, no Domain) when served over https.
pub fn cookie_name(config: &Config) -> &'static str {
    if config.secure_cookies() {
        "__Host-gatehouse-device"
    } else {
        "gatehouse-device"
    }
}

fn valid(st: &AppState, e: &Entry<'_>) -> bool {
    st.key.signed(PURPOSE, e.payload().as_bytes(), e.mac)
}

/// This browser's own allowance key for `user_id` (`user_id.nonce`), when
/// it carries a valid entry for that account.
pub fn known(st: &AppState, ctx: &RequestCtx, user_id: i64) -> Option<String> {
    let value = ctx.device_cookie.as_deref()?;
    device::known(value, user_id, |e| valid(st, e)).map(|e| e.payload())
}

/// The `Set-Cookie` value that remembers this browser for `user_id` (a new
/// nonce each time), keeping the other accounts it knows.
pub fn remember(st: &AppState, ctx: &RequestCtx, user_id: i64) -> String {
    let nonce = crypto::random_token(12);
    let payload = device::payload(user_id, &nonce);
    let entry = format!("{payload}.{}", st.key.sign(PURPOSE, payload.as_bytes()));
    let value = device::with_entry(ctx.device_cookie.as_deref(), user_id, &entry);
    let secure = if st.config.secure_cookies() { "; Secure" } else { "" };
    format!(
        "{}={value}; Path=/; Max-Age={}; HttpOnly; SameSite=Strict{secure}",
        cookie_name(&st.config),
        device::LIFETIME_DAYS * 24 * 3600
    )
}

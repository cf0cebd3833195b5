//! TOTP acceptance rules (RFC 6238: 30-second steps, one step of drift either
//! side) with replay protection: a time step, once accepted for an account,
//! is never accepted again (NIST SP 800-63B 5.1.4.2). Code generation is
//! passed in, so this module needs no crypto crate.

use super::Millis;

pub const STEP_SECONDS: i64 = 30;
pub const DRIFT_STEPS: i64 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TotpError {
    #[error("That code is not correct.")]
    Invalid,
    #[error("That code was already used. Wait for the next code.")]
    Replayed,
}

/// The RFC 6238 time step that contains `now`.
pub fn step_at(now: Millis) -> i64 {
    now.div_euclid(1000).div_euclid(STEP_SECONDS)
}

/// Checks `code` against the steps around `now`. `code_for_step` computes the
/// expected code of one step; `last_used_step` is the last step accepted for
/// this account. Returns the matched step, which the caller must store as the
/// new `last_used_step` in the same transaction as the sign-in.
///
/// A code matching a step at or before `last_used_step` is reported as a
/// replay, so the attempt can be recorded as such.
pub fn verify(
    code: &str,
    now: Millis,
    last_used_step: Option<i64>,
    code_for_step: impl Fn(i64) -> String,
) -> Result<i64, TotpError> {
    let current = step_at(now);
    let mut replayed = false;
    // Newest step first: when a code matches, the newest matching step wins.
    for step in (current - DRIFT_STEPS..=current + DRIFT_STEPS).rev() {
        if constant_time_eq(code_for_step(step).as_bytes(), code.as_bytes()) {
            if last_used_step.is_some_and(|last| step <= last) {
                replayed = true;
                continue;
            }
            return Ok(step);
        }
    }
    Err(if replayed {
        TotpError::Replayed
    } else {
        TotpError::Invalid
    })
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `otpauth://` URI understood by common authenticator apps (Google
/// Authenticator key-URI format).
pub fn otpauth_uri(issuer: &str, account: &str, secret_base32: &str) -> String {
    fn enc(s: &str) -> String {
        let mut out = String::new();
        for b in s.bytes() {
            if b.is_ascii_alphanumeric() || b"-._~@".contains(&b) {
                out.push(b as char);
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
        out
    }
    format!(
        "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits=6&period={}",
        enc(issuer),
        enc(account),
        secret_base32,
        enc(issuer),
        STEP_SECONDS
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    // A fake generator: the code of step s is s formatted to 6 digits.
    fn fake(step: i64) -> String {
        format!("{:06}", step % 1_000_000)
    }

    const T: Millis = 1_700_000_000_000; // step 56_666_666

    #[test]
    fn step_boundaries() {
        assert_eq!(step_at(59_999), 1);
        assert_eq!(step_at(60_000), 2);
        assert_eq!(step_at(0), 0);
    }

    #[test]
    fn accepts_current_and_one_step_of_drift() {
        let s = step_at(T);
        assert_eq!(verify(&fake(s), T, None, fake), Ok(s));
        assert_eq!(verify(&fake(s - 1), T, None, fake), Ok(s - 1));
        assert_eq!(verify(&fake(s + 1), T, None, fake), Ok(s + 1));
        assert_eq!(verify(&fake(s - 2), T, None, fake), Err(TotpError::Invalid));
        assert_eq!(verify(&fake(s + 2), T, None, fake), Err(TotpError::Invalid));
        assert_eq!(verify("000000", T, None, fake), Err(TotpError::Invalid));
    }

    #[test]
    fn a_step_is_accepted_once() {
        let s = step_at(T);
        assert_eq!(verify(&fake(s), T, Some(s), fake), Err(TotpError::Replayed));
        // An older step than the last accepted one is a replay too.
        assert_eq!(verify(&fake(s - 1), T, Some(s), fake), Err(TotpError::Replayed));
        // The next step's code is still fine.
        assert_eq!(verify(&fake(s + 1), T, Some(s), fake), Ok(s + 1));
        // Thirty seconds later the same code is out of the window: invalid.
        assert_eq!(
            verify(&fake(s - 1), T + 60_000, Some(s - 1), fake),
            Err(TotpError::Invalid)
        );
    }

    #[test]
    fn otpauth_uri_is_escaped() {
        let uri = otpauth_uri("Gatehouse", "ada lovelace@example.com", "JBSWY3DPEHPK3PXP");
        assert_eq!(
            uri,
            "otpauth://totp/Gatehouse:ada%20lovelace@example.com?secret=JBSWY3DPEHPK3PXP&issuer=Gatehouse&algorithm=SHA1&digits=6&period=30"
        );
    }
}

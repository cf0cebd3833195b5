//! The second factor: TOTP with totp-rs (RFC 6238: SHA-1, 6 digits,
//! 30-second steps), QR codes as inline SVG, recovery-code batches;
//! enrolment, checking codes (with replay refusal and throttling), and
//! step-up for sensitive actions.

mod enrolment;
pub mod recovery_codes;
mod verify;

pub use enrolment::{confirm_enrolment, enrolment, regenerate_recovery_codes, take_stashed_codes, Enrolment};
pub use verify::{check_totp, confirm_code, passkey_step_up, step_up};

use crate::domain::{recovery, totp as rules};
use crate::server::platform::crypto;
use totp_rs::{Algorithm, Secret, TOTP};

pub const ISSUER: &str = "Gatehouse";
pub const SECRET_BYTES: usize = 20;

fn totp(secret: &[u8]) -> Option<TOTP> {
    TOTP::new(Algorithm::SHA1, 6, 1, rules::STEP_SECONDS as u64, secret.to_vec()).ok()
}

/// The expected code for an RFC 6238 time step.
pub fn code_for_step(secret: &[u8], step: i64) -> String {
    match totp(secret) {
        Some(t) => t.generate((step.max(0) as u64) * rules::STEP_SECONDS as u64),
        // An unusable secret matches nothing: a code is never 7 characters.
        None => "invalid".into(),
    }
}

pub fn base32(secret: &[u8]) -> String {
    Secret::Raw(secret.to_vec()).to_encoded().to_string()
}

/// The base32 key in groups of four, easier to type.
pub fn grouped(key: &str) -> String {
    key.as_bytes()
        .chunks(4)
        .map(|c| std::str::from_utf8(c).unwrap_or_default())
        .collect::<Vec<_>>()
        .join(" ")
}

/// An SVG image of a QR code for `data`, with a quiet zone, black on white.
pub fn qr_svg(data: &str) -> String {
    use qrcodegen::{QrCode, QrCodeEcc};
    let Ok(qr) = QrCode::encode_text(data, QrCodeEcc::Medium) else {
        return String::new();
    };
    let border = 4;
    let size = qr.size();
    let dim = size + border * 2;
    let mut path = String::new();
    for y in 0..size {
        for x in 0..size {
            if qr.get_module(x, y) {
                path.push_str(&format!("M{},{}h1v1h-1z", x + border, y + border));
            }
        }
    }
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {dim} {dim}\" shape-rendering=\"crispEdges\" \
         role=\"img\" aria-label=\"QR code for your authenticator app\"><rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\
         <path d=\"{path}\" fill=\"#000000\"/></svg>"
    )
}

/// A new batch of recovery codes: the plain codes (shown once) and their
/// (salt, hash) pairs as hex, for storage.
pub fn new_recovery_batch() -> (Vec<String>, Vec<(String, String)>) {
    let mut plain = Vec::with_capacity(recovery::COUNT);
    let mut stored = Vec::with_capacity(recovery::COUNT);
    for _ in 0..recovery::COUNT {
        let code = recovery::format_code(&crypto::random_bytes::<10>());
        let salt = crypto::random_bytes::<16>();
        stored.push((hex::encode(salt), hex::encode(recovery::hash(&salt, &code))));
        plain.push(code);
    }
    (plain, stored)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B test vectors (SHA-1, 8 digits there; the last six
    /// digits are the 6-digit code).
    #[test]
    fn rfc6238_vectors() {
        let secret = b"12345678901234567890";
        for (time, expected8) in [
            (59u64, "94287082"),
            (1111111109, "07081804"),
            (1111111111, "14050471"),
            (1234567890, "89005924"),
            (2000000000, "69279037"),
        ] {
            let step = (time / 30) as i64;
            assert_eq!(code_for_step(secret, step), expected8[2..], "time {time}");
        }
    }

    #[test]
    fn qr_is_svg_and_key_is_grouped() {
        let svg = qr_svg("otpauth://totp/Gatehouse:a@b.c?secret=JBSWY3DPEHPK3PXP");
        assert!(svg.starts_with("<svg") && svg.contains("<path d=\"M"));
        assert_eq!(grouped("JBSWY3DPEHPK3PXP"), "JBSW Y3DP EHPK 3PXP");
        assert_eq!(base32(b"Hello!\xde\xad\xbe\xef"), "JBSWY3DPEHPK3PXP");
    }

    #[test]
    fn recovery_batch_has_ten_distinct_codes() {
        let (plain, stored) = new_recovery_batch();
        assert_eq!(plain.len(), 10);
        let mut dedup = plain.clone();
        dedup.sort();
        dedup.dedup();
        assert_eq!(dedup.len(), 10);
        for (code, (salt, hash)) in plain.iter().zip(&stored) {
            assert_eq!(hex::encode(recovery::hash(&hex::decode(salt).unwrap(), code)), *hash);
        }
    }
}

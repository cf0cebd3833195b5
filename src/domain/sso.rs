//! Single sign-on rules: which issuer URLs are acceptable, who an ID token
//! signs in, when the provider's own MFA may stand in for Gatehouse's, how
//! long a sign-in attempt lives, and who may still use a password.

use super::{Millis, MINUTE};

/// A started sign-in (its `state`, nonce and PKCE verifier) is usable once,
/// within this time.
pub const STATE_LIFETIME: Millis = 10 * MINUTE;

/// `https`, or `http` for loopback addresses (development and tests).
pub fn url_allowed(scheme: &str, host: &str) -> bool {
    let host = host.trim_matches(['[', ']']).to_ascii_lowercase();
    let loopback = host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    scheme == "https" || (scheme == "http" && loopback)
}

/// An employee as sign-in sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub id: i64,
    pub status: String,
    /// The provider subject this employee is linked to, if any.
    pub subject: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Nobody in Gatehouse has this subject or this (verified) email.
    Unknown,
    /// The email matches but the provider has not verified it.
    EmailNotVerified,
    /// The email's employee is linked to another subject of the provider.
    LinkedElsewhere,
    Suspended,
    Offboarded,
}

impl Refusal {
    /// What the person is told.
    pub fn message(&self) -> &'static str {
        match self {
            Refusal::Unknown | Refusal::EmailNotVerified | Refusal::LinkedElsewhere => {
                "Your company account is not set up in Gatehouse. Ask an administrator to add you."
            }
            Refusal::Suspended => "Your Gatehouse account is suspended. Ask an administrator.",
            Refusal::Offboarded => "Your Gatehouse account has been closed.",
        }
    }

    /// What the audit trail records.
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::Unknown => "no employee with this subject or email",
            Refusal::EmailNotVerified => "email not verified by the provider",
            Refusal::LinkedElsewhere => "the employee is linked to another subject",
            Refusal::Suspended => "account suspended",
            Refusal::Offboarded => "account offboarded",
        }
    }
}

/// Who signs in: the employee linked to the subject; else, for a first
/// sign-in, the employee with the provider-verified email who is not
/// linked to anyone yet (then `link` is true). Suspended and offboarded
/// employees are refused whatever the provider says.
pub fn match_account(
    by_subject: Option<&Candidate>,
    by_email: Option<&Candidate>,
    email_verified: bool,
) -> Result<(i64, bool), Refusal> {
    let (who, link) = match (by_subject, by_email) {
        (Some(c), _) => (c, false),
        (None, Some(c)) if !email_verified => {
            return Err(if c.subject.is_some() {
                Refusal::LinkedElsewhere
            } else {
                Refusal::EmailNotVerified
            })
        }
        (None, Some(c)) if c.subject.is_some() => return Err(Refusal::LinkedElsewhere),
        (None, Some(c)) => (c, true),
        (None, None) => return Err(Refusal::Unknown),
    };
    match who.status.as_str() {
        "active" | "invited" => Ok((who.id, link)),
        "suspended" => Err(Refusal::Suspended),
        _ => Err(Refusal::Offboarded),
    }
}

/// Whether the ID token's `amr` proves a second factor Gatehouse is
/// configured to trust (empty `trusted`: never).
pub fn amr_trusted(trusted: &[String], amr: &[String]) -> bool {
    amr.iter().any(|m| trusted.iter().any(|t| t.eq_ignore_ascii_case(m)))
}

/// Whether a stored sign-in attempt may still complete.
pub fn state_usable(created_at: Millis, used: bool, now: Millis) -> bool {
    !used && now >= created_at && now - created_at <= STATE_LIFETIME
}

/// With SSO required, only the configured break-glass administrator may
/// sign in with a password.
pub fn password_allowed(sso_required: bool, breakglass: Option<&str>, email: &str) -> bool {
    !sso_required || breakglass.is_some_and(|b| b.eq_ignore_ascii_case(email))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(id: i64, status: &str, subject: Option<&str>) -> Candidate {
        Candidate {
            id,
            status: status.into(),
            subject: subject.map(Into::into),
        }
    }

    #[test]
    fn issuers_must_be_https_except_on_loopback() {
        assert!(url_allowed("https", "login.example.com"));
        assert!(url_allowed("http", "127.0.0.1"));
        assert!(url_allowed("http", "[::1]"));
        assert!(url_allowed("http", "localhost"));
        assert!(!url_allowed("http", "login.example.com"));
        assert!(!url_allowed("http", "10.0.0.1"));
        assert!(!url_allowed("ftp", "127.0.0.1"));
    }

    #[test]
    fn the_linked_subject_wins_and_a_verified_email_links_once() {
        let linked = c(1, "active", Some("sub-1"));
        assert_eq!(match_account(Some(&linked), None, false), Ok((1, false)));
        // The subject decides even when the email now names someone else.
        assert_eq!(
            match_account(Some(&linked), Some(&c(2, "active", None)), true),
            Ok((1, false))
        );
        assert_eq!(match_account(None, Some(&c(2, "invited", None)), true), Ok((2, true)));
        assert_eq!(
            match_account(None, Some(&c(2, "active", None)), false),
            Err(Refusal::EmailNotVerified)
        );
        assert_eq!(
            match_account(None, Some(&c(2, "active", Some("sub-9"))), true),
            Err(Refusal::LinkedElsewhere)
        );
        assert_eq!(match_account(None, None, true), Err(Refusal::Unknown));
    }

    #[test]
    fn suspended_and_offboarded_employees_are_refused() {
        assert_eq!(
            match_account(Some(&c(1, "suspended", Some("s"))), None, true),
            Err(Refusal::Suspended)
        );
        assert_eq!(
            match_account(Some(&c(1, "offboarded", Some("s"))), None, true),
            Err(Refusal::Offboarded)
        );
        assert_eq!(
            match_account(None, Some(&c(1, "offboarded", None)), true),
            Err(Refusal::Offboarded)
        );
    }

    #[test]
    fn amr_is_trusted_only_when_configured_and_present() {
        let trusted = vec!["mfa".to_owned(), "otp".to_owned(), "hwk".to_owned()];
        assert!(amr_trusted(&trusted, &["pwd".into(), "otp".into()]));
        assert!(amr_trusted(&trusted, &["MFA".into()]));
        assert!(!amr_trusted(&trusted, &["pwd".into()]));
        assert!(!amr_trusted(&trusted, &[]));
        assert!(!amr_trusted(&[], &["mfa".into()]));
    }

    #[test]
    fn a_started_sign_in_lives_ten_minutes_and_is_used_once() {
        assert!(state_usable(0, false, STATE_LIFETIME));
        assert!(!state_usable(0, false, STATE_LIFETIME + 1));
        assert!(!state_usable(0, true, 1));
        assert!(!state_usable(10, false, 5), "not from the future");
    }

    #[test]
    fn passwords_only_for_break_glass_when_sso_is_required() {
        assert!(password_allowed(false, None, "a@x.example"));
        assert!(!password_allowed(true, None, "a@x.example"));
        assert!(!password_allowed(true, Some("root@x.example"), "a@x.example"));
        assert!(password_allowed(true, Some("Root@X.example"), "root@x.example"));
    }
}

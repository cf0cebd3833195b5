//! Passkeys and security keys (WebAuthn) as the rules see them: the
//! relying party's id, who must use one (`GATEHOUSE_REQUIRE_PASSKEY`),
//! which second factors count for whom, and the signature counter that
//! betrays a cloned authenticator. The ceremonies themselves (challenges,
//! signatures, CBOR) are a maintained library's job, not this module's.

use super::permissions::PermissionSet;
use super::roles::admin_power;
use std::net::IpAddr;

/// Why a public URL cannot carry passkeys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RpIdError {
    /// Browsers refuse WebAuthn for an IP-address origin.
    IpAddress(String),
    NoHost,
}

impl std::fmt::Display for RpIdError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RpIdError::IpAddress(h) => write!(
                f,
                "Passkeys are off: the public URL's host {h} is an IP address, and browsers refuse passkeys \
                 for IP-address origins; set GATEHOUSE_PUBLIC_URL to a domain name (localhost works for testing)"
            ),
            RpIdError::NoHost => write!(f, "Passkeys are off: the public URL has no host"),
        }
    }
}

/// The relying party's id for the public URL's host: the host itself,
/// lower-cased, when it is a domain name (`localhost` counts).
pub fn rp_id(host: &str) -> Result<String, RpIdError> {
    let host = host.trim().trim_end_matches('.').to_ascii_lowercase();
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if bare.is_empty() {
        return Err(RpIdError::NoHost);
    }
    if bare.parse::<IpAddr>().is_ok() {
        return Err(RpIdError::IpAddress(host));
    }
    Ok(host)
}

/// Who must sign in and step up with a passkey.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Policy {
    /// Holders of administrator power (`employees:manage` or
    /// `access:grant`, whatever their role is called).
    pub administrators: bool,
    /// Anyone activating break-glass.
    pub breakglass: bool,
}

impl Policy {
    /// Reads `GATEHOUSE_REQUIRE_PASSKEY`: words separated by commas
    /// (`administrators`, `breakglass`); empty requires nothing.
    pub fn parse(s: &str) -> Result<Policy, String> {
        let mut p = Policy::default();
        for word in s.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            match word {
                "administrators" => p.administrators = true,
                "breakglass" => p.breakglass = true,
                other => {
                    return Err(format!(
                        "unknown group {other:?}: name administrators, breakglass, or both separated by a comma"
                    ))
                }
            }
        }
        Ok(p)
    }

    /// Whether an employee holding `perms` must use a passkey to sign in
    /// and to step up. The emergency administrator keeps their fallback.
    pub fn requires(&self, perms: PermissionSet, emergency_administrator: bool) -> bool {
        self.administrators && admin_power(perms) && !emergency_administrator
    }

    /// Whether activating break-glass needs a passkey as its fresh factor.
    pub fn requires_for_breakglass(&self, emergency_administrator: bool) -> bool {
        self.breakglass && !emergency_administrator
    }
}

/// A second factor as presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Factor {
    Totp,
    RecoveryCode,
    Passkey {
        /// The authenticator verified the user (PIN, biometrics), not only
        /// their presence.
        user_verified: bool,
    },
}

/// Why a factor does not count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FactorRefusal {
    /// The policy requires a passkey of this employee.
    PasskeyRequired,
    /// A passkey without user verification proves possession only.
    UserNotVerified,
}

impl std::fmt::Display for FactorRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FactorRefusal::PasskeyRequired => {
                "Your access requires a passkey: an authenticator code alone no longer signs you in. Use your passkey."
            }
            FactorRefusal::UserNotVerified => {
                "The passkey did not verify you (no PIN or biometrics). Use a passkey that verifies you."
            }
        })
    }
}

/// Whether `factor` counts as the second factor (after a password or SSO)
/// or as a fresh factor for step-up, for someone `passkey_required`.
pub fn second_factor(factor: Factor, passkey_required: bool) -> Result<(), FactorRefusal> {
    match factor {
        Factor::Passkey { user_verified: false } => Err(FactorRefusal::UserNotVerified),
        Factor::Passkey { .. } => Ok(()),
        Factor::Totp | Factor::RecoveryCode if passkey_required => Err(FactorRefusal::PasskeyRequired),
        Factor::Totp | Factor::RecoveryCode => Ok(()),
    }
}

/// Whether a passkey alone (no password) signs in: only when the
/// authenticator verified the user, so it stands for both factors.
pub fn passwordless(user_verified: bool) -> bool {
    user_verified
}

/// What a signature counter says about the authenticator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    /// Moved forward (store the new value), or stays 0 as synced passkeys
    /// report.
    Fine,
    /// Did not move forward: two authenticators share this credential.
    PossibleClone,
}

/// The counter rule of WebAuthn (Level 2, 7.2 step 21): once either value
/// is non-zero, the presented counter must exceed the stored one.
pub fn counter(stored: u32, presented: u32) -> Counter {
    if (stored == 0 && presented == 0) || presented > stored {
        Counter::Fine
    } else {
        Counter::PossibleClone
    }
}

/// A passkey's name as an employee gives it: trimmed, 1 to 60 characters,
/// no control characters.
pub fn name(s: &str) -> Result<String, &'static str> {
    let s = s.trim();
    if s.is_empty() || s.chars().count() > 60 || s.chars().any(char::is_control) {
        return Err("Name the passkey (1 to 60 characters), e.g. \"Work laptop\".");
    }
    Ok(s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::permissions::Permission;

    #[test]
    fn the_relying_party_is_a_domain_name_never_an_ip_address() {
        assert_eq!(rp_id("Gatehouse.Example.com."), Ok("gatehouse.example.com".into()));
        assert_eq!(rp_id("localhost"), Ok("localhost".into()));
        assert!(matches!(rp_id("127.0.0.1"), Err(RpIdError::IpAddress(_))));
        assert!(matches!(rp_id("[::1]"), Err(RpIdError::IpAddress(_))));
        assert!(matches!(rp_id("10.0.0.7"), Err(RpIdError::IpAddress(_))));
        assert_eq!(rp_id(" "), Err(RpIdError::NoHost));
        assert!(RpIdError::IpAddress("127.0.0.1".into())
            .to_string()
            .contains("domain name"));
    }

    #[test]
    fn the_policy_reads_its_groups_and_refuses_unknown_ones() {
        assert_eq!(Policy::parse(""), Ok(Policy::default()));
        assert_eq!(
            Policy::parse("administrators, breakglass"),
            Ok(Policy {
                administrators: true,
                breakglass: true
            })
        );
        assert_eq!(
            Policy::parse("breakglass"),
            Ok(Policy {
                administrators: false,
                breakglass: true
            })
        );
        assert!(Policy::parse("admins").unwrap_err().contains("administrators"));
    }

    #[test]
    fn administrator_power_is_defined_by_permissions() {
        let p = Policy::parse("administrators").unwrap();
        let grant = PermissionSet::of(&[Permission::AccessGrant]);
        let manage = PermissionSet::of(&[Permission::EmployeesManage]);
        let support = PermissionSet::of(&[Permission::CustomersRead]);
        assert!(p.requires(grant, false));
        assert!(p.requires(manage, false));
        assert!(!p.requires(support, false));
        // The emergency administrator keeps a fallback.
        assert!(!p.requires(grant, true));
        // Without the policy, nobody must.
        assert!(!Policy::default().requires(grant, false));
        assert!(!p.requires_for_breakglass(false));
        assert!(Policy::parse("breakglass").unwrap().requires_for_breakglass(false));
        assert!(!Policy::parse("breakglass").unwrap().requires_for_breakglass(true));
    }

    #[test]
    fn under_the_policy_totp_and_recovery_codes_no_longer_count() {
        let pk = Factor::Passkey { user_verified: true };
        assert_eq!(second_factor(pk, true), Ok(()));
        assert_eq!(second_factor(Factor::Totp, true), Err(FactorRefusal::PasskeyRequired));
        assert_eq!(
            second_factor(Factor::RecoveryCode, true),
            Err(FactorRefusal::PasskeyRequired)
        );
        assert_eq!(second_factor(Factor::Totp, false), Ok(()));
        assert_eq!(second_factor(Factor::RecoveryCode, false), Ok(()));
        let presence_only = Factor::Passkey { user_verified: false };
        assert_eq!(second_factor(presence_only, false), Err(FactorRefusal::UserNotVerified));
        assert!(passwordless(true));
        assert!(!passwordless(false));
    }

    #[test]
    fn a_counter_that_does_not_move_forward_betrays_a_clone() {
        assert_eq!(counter(0, 0), Counter::Fine, "synced passkeys report 0");
        assert_eq!(counter(0, 1), Counter::Fine);
        assert_eq!(counter(41, 42), Counter::Fine);
        assert_eq!(counter(42, 42), Counter::PossibleClone);
        assert_eq!(counter(42, 7), Counter::PossibleClone);
        assert_eq!(counter(42, 0), Counter::PossibleClone, "went back to 0");
    }

    #[test]
    fn a_passkey_is_named() {
        assert_eq!(name("  Work laptop "), Ok("Work laptop".into()));
        assert!(name("").is_err());
        assert!(name(&"x".repeat(61)).is_err());
        assert!(name("a\u{7}b").is_err());
    }
}

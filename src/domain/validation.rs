//! Parse, don't validate: newtypes for user input.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    #[error("{field} is required")]
    Required { field: &'static str },
    #[error("{field} must be at most {max} characters")]
    TooLong { field: &'static str, max: usize },
    #[error("{field} is not valid: {why}")]
    Invalid { field: &'static str, why: &'static str },
}

/// An email address, trimmed and lower-cased. Deliberately simple: one `@`,
/// a non-empty local part, a domain with a dot, no whitespace or control
/// characters, at most 254 characters (RFC 5321 path limit).
#[derive(Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Email(String);

impl Email {
    pub const MAX: usize = 254;

    pub fn parse(input: &str) -> Result<Self, ValidationError> {
        let s = input.trim().to_lowercase();
        if s.is_empty() {
            return Err(ValidationError::Required { field: "email" });
        }
        if s.chars().count() > Self::MAX {
            return Err(ValidationError::TooLong {
                field: "email",
                max: Self::MAX,
            });
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ValidationError::Invalid {
                field: "email",
                why: "it contains spaces",
            });
        }
        let Some((local, domain)) = s.split_once('@') else {
            return Err(ValidationError::Invalid {
                field: "email",
                why: "it needs an @",
            });
        };
        if local.is_empty() || domain.contains('@') {
            return Err(ValidationError::Invalid {
                field: "email",
                why: "it needs one @ with a name before it",
            });
        }
        if !domain.contains('.') || domain.starts_with('.') || domain.ends_with('.') || domain.contains("..") {
            return Err(ValidationError::Invalid {
                field: "email",
                why: "the domain is not valid",
            });
        }
        Ok(Self(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn local_part(&self) -> &str {
        self.0.split('@').next().unwrap_or_default()
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Email({})", self.0)
    }
}

/// A person's display name: trimmed, 1 to 100 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PersonName(String);

impl PersonName {
    pub const MAX: usize = 100;

    pub fn parse(input: &str) -> Result<Self, ValidationError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(ValidationError::Required { field: "name" });
        }
        if s.chars().count() > Self::MAX {
            return Err(ValidationError::TooLong {
                field: "name",
                max: Self::MAX,
            });
        }
        if s.chars().any(char::is_control) {
            return Err(ValidationError::Invalid {
                field: "name",
                why: "it contains control characters",
            });
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A 6-digit TOTP code as typed: spaces are allowed between digits.
#[derive(Clone, PartialEq, Eq)]
pub struct OtpCode(String);

impl OtpCode {
    pub fn parse(input: &str) -> Result<Self, ValidationError> {
        let digits: String = input.chars().filter(|c| !c.is_whitespace()).collect();
        if digits.is_empty() {
            return Err(ValidationError::Required { field: "code" });
        }
        if digits.len() != 6 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ValidationError::Invalid {
                field: "code",
                why: "it must be 6 digits",
            });
        }
        Ok(Self(digits))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for OtpCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OtpCode(******)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_is_normalised_and_checked() {
        assert_eq!(Email::parse("  Ada@Example.COM ").unwrap().as_str(), "ada@example.com");
        assert!(Email::parse("").is_err());
        assert!(Email::parse("ada").is_err());
        assert!(Email::parse("@example.com").is_err());
        assert!(Email::parse("ada@example").is_err());
        assert!(Email::parse("a@b@example.com").is_err());
        assert!(Email::parse("a da@example.com").is_err());
        assert!(Email::parse(&format!("{}@example.com", "a".repeat(250))).is_err());
        assert_eq!(Email::parse("ada.l@example.com").unwrap().local_part(), "ada.l");
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(PersonName::parse("  Ada Lovelace ").unwrap().as_str(), "Ada Lovelace");
        assert!(PersonName::parse("   ").is_err());
        assert!(PersonName::parse(&"x".repeat(101)).is_err());
        assert!(PersonName::parse("a\u{7}b").is_err());
    }

    #[test]
    fn otp_codes_are_six_digits() {
        assert_eq!(OtpCode::parse("123 456").unwrap().as_str(), "123456");
        assert!(OtpCode::parse("12345").is_err());
        assert!(OtpCode::parse("12345a").is_err());
        assert!(OtpCode::parse("1234567").is_err());
        assert!(!format!("{:?}", OtpCode::parse("123456").unwrap()).contains("123456"));
    }
}

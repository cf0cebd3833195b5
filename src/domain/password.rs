//! Password policy after NIST SP 800-63B 5.1.1.2: length 12..=256, no
//! composition rules, refused when it is a commonly used password or derived
//! from one, or built from context-specific words.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("Use at least {min} characters.")]
    TooShort { min: usize },
    #[error("Use at most {max} characters.")]
    TooLong { max: usize },
    #[error("This password is too common. Choose a longer phrase that is not a well-known password.")]
    Common,
    #[error("Don't use your email address or the name of this service in your password.")]
    Contextual,
    #[error("Don't repeat the same characters or words over and over.")]
    Repetitive,
    #[error("The two passwords don't match.")]
    Mismatch,
}

pub const MIN_LEN: usize = 12;
pub const MAX_LEN: usize = 256;

/// The shipped list of common passwords (zxcvbn-ts, MIT licence), lower-cased.
#[cfg(any(feature = "ssr", test))]
static COMMON: std::sync::LazyLock<std::collections::HashSet<&'static str>> =
    std::sync::LazyLock::new(|| include_str!("data/common-passwords.txt").lines().collect());

#[cfg(any(feature = "ssr", test))]
pub fn is_common(candidate: &str) -> bool {
    COMMON.contains(candidate)
}

/// Checks a new password. `context` holds words specific to this account
/// (such as the email's local part); `is_common` answers whether a lower-cased
/// string is on the common-password list.
pub fn check(
    password: &str,
    confirmation: &str,
    context: &[&str],
    is_common: impl Fn(&str) -> bool,
) -> Result<(), PasswordError> {
    let len = password.chars().count();
    if len < MIN_LEN {
        return Err(PasswordError::TooShort { min: MIN_LEN });
    }
    if len > MAX_LEN {
        return Err(PasswordError::TooLong { max: MAX_LEN });
    }
    if password != confirmation {
        return Err(PasswordError::Mismatch);
    }
    let lower = password.to_lowercase();
    if is_repetition(&lower) {
        return Err(PasswordError::Repetitive);
    }
    if is_common(&lower) {
        return Err(PasswordError::Common);
    }
    // A common password with a few digits or symbols stuck on either end
    // ("password1234!") is as guessable as the password itself.
    let core = lower
        .trim_end_matches(|c: char| !c.is_alphabetic())
        .trim_start_matches(|c: char| !c.is_alphabetic());
    if core.chars().count() + 6 >= len && !core.is_empty() && (is_common(core) || is_repetition(core)) {
        return Err(PasswordError::Common);
    }
    for word in context.iter().chain(["gatehouse"].iter()) {
        let word = word.to_lowercase();
        if word.chars().count() >= 4 && lower.contains(&word) {
            return Err(PasswordError::Contextual);
        }
    }
    Ok(())
}

/// True when the string is one short unit repeated ("aaaaaaaaaaaa",
/// "abcabcabcabc", "passwordpassword").
fn is_repetition(s: &str) -> bool {
    let chars: Vec<char> = s.chars().collect();
    let n = chars.len();
    (1..=n / 2).any(|unit| n.is_multiple_of(unit) && chars.chunks(unit).all(|c| c == &chars[..unit]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(pw: &str) -> Result<(), PasswordError> {
        check(pw, pw, &["ada.lovelace"], is_common)
    }

    #[test]
    fn length_bounds() {
        assert_eq!(ok("short pass1"), Err(PasswordError::TooShort { min: 12 }));
        assert_eq!(ok("correct horse battery"), Ok(()));
        assert_eq!(ok(&"ab1".repeat(85)), Err(PasswordError::Repetitive));
        let long: String = (0..256).map(|i| char::from(b'a' + (i * 7 % 26) as u8)).collect();
        assert!(ok(&long).is_ok() || ok(&long) == Err(PasswordError::Repetitive));
        let too_long = format!("{long}x");
        assert_eq!(ok(&too_long), Err(PasswordError::TooLong { max: 256 }));
    }

    #[test]
    fn at_least_128_characters_are_accepted() {
        let pw = "the quick brown fox jumps over the lazy dog while sixteen sphinxes of black quartz judge my vow \
            and five boxing wizards jump quickly";
        assert!(pw.chars().count() >= 128);
        assert_eq!(ok(pw), Ok(()));
    }

    #[test]
    fn no_composition_rules() {
        assert_eq!(ok("all lower case words here"), Ok(()));
        assert_eq!(ok("ünïcödé pässwörd wörks"), Ok(()));
    }

    #[test]
    fn common_passwords_are_refused() {
        assert!(is_common("password"));
        assert_eq!(ok("1qaz2wsx3edc"), Err(PasswordError::Common));
        assert_eq!(ok("QWERTY123456"), Err(PasswordError::Common));
        assert_eq!(ok("password1234"), Err(PasswordError::Common));
        assert_eq!(ok("!!sunshine2024"), Err(PasswordError::Common));
    }

    #[test]
    fn repetitions_and_context_are_refused() {
        assert_eq!(ok("aaaaaaaaaaaaaaa"), Err(PasswordError::Repetitive));
        assert_eq!(ok("abcabcabcabc"), Err(PasswordError::Repetitive));
        assert_eq!(ok("my ada.lovelace secret"), Err(PasswordError::Contextual));
        assert_eq!(ok("open the Gatehouse door"), Err(PasswordError::Contextual));
    }

    #[test]
    fn confirmation_must_match() {
        assert_eq!(
            check("correct horse battery", "correct horse battery!", &[], is_common),
            Err(PasswordError::Mismatch)
        );
    }
}

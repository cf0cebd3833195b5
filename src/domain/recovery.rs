//! Recovery codes: ten single-use codes of 50 random bits each, shown once,
//! stored as salted SHA-256 hashes. Because they are random and long, a fast
//! salted hash is enough (unlike passwords, they cannot be guessed offline).

use sha2::{Digest, Sha256};

pub const COUNT: usize = 10;
const ALPHABET: &[u8; 32] = b"abcdefghjkmnpqrstuvwxyz023456789";

/// Formats ten random bytes as `xxxxx-xxxxx`; the low 5 bits of each byte
/// pick one of 32 unambiguous characters, 50 bits in all.
pub fn format_code(random: &[u8; 10]) -> String {
    let mut s = String::with_capacity(11);
    for (i, b) in random.iter().enumerate() {
        if i == 5 {
            s.push('-');
        }
        s.push(ALPHABET[(b & 31) as usize] as char);
    }
    s
}

/// Normalises what a person typed: lower case, no spaces or dashes.
pub fn normalise(input: &str) -> String {
    input
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

pub fn hash(salt: &[u8], code: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"gatehouse-recovery-v1\0");
    h.update(salt);
    h.update(normalise(code).as_bytes());
    h.finalize().into()
}

/// Index of the stored (salt, hash) pair that `input` matches, if any.
pub fn find_match<'a>(input: &str, stored: impl IntoIterator<Item = (&'a [u8], &'a [u8])>) -> Option<usize> {
    let mut found = None;
    for (i, (salt, expected)) in stored.into_iter().enumerate() {
        let actual = hash(salt, input);
        let diff = actual.iter().zip(expected).fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if diff == 0 && expected.len() == 32 && found.is_none() {
            found = Some(i);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_and_normalise() {
        let code = format_code(&[0, 1, 2, 3, 4, 5, 6, 7, 8, 31]);
        assert_eq!(code.len(), 11);
        assert_eq!(&code[5..6], "-");
        assert_eq!(normalise(" ABCDE-fghjk "), "abcdefghjk");
    }

    #[test]
    fn matches_only_its_own_hash() {
        let codes = ["abcde-fghjk", "mnpqr-stuvw"];
        let salts = [[1u8; 16], [2u8; 16]];
        let hashes: Vec<[u8; 32]> = codes.iter().zip(&salts).map(|(c, s)| hash(s, c)).collect();
        let stored: Vec<(&[u8], &[u8])> = salts.iter().zip(&hashes).map(|(s, h)| (&s[..], &h[..])).collect();
        assert_eq!(find_match("MNPQR STUVW", stored.clone()), Some(1));
        assert_eq!(find_match("abcdefghjk", stored.clone()), Some(0));
        assert_eq!(find_match("abcde-fghjm", stored.clone()), None);
        // Same code under another salt does not match.
        assert_ne!(hash(&[1u8; 16], "abcde-fghjk"), hash(&[2u8; 16], "abcde-fghjk"));
    }
}

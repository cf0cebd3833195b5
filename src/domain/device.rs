//! Device cookies (OWASP's pattern against lockout abuse): a browser that
//! has completed sign-in for an account carries a signed entry for it.
//! Failed attempts from browsers without one count against the account and
//! the address, and lock them; a browser with one has an allowance of its
//! own, so guessing an administrator's email from elsewhere cannot lock
//! them out of their own browser.
//!
//! The cookie holds up to `MAX_ENTRIES` entries (accounts signed in from
//! this browser), newest first, each `user_id.nonce.mac`, separated by `~`.
//! The MAC (computed by the caller with a server key) covers `user_id.nonce`.

/// Accounts remembered per browser.
pub const MAX_ENTRIES: usize = 5;
/// How long a browser stays known without signing in again.
pub const LIFETIME_DAYS: i64 = 180;

/// One remembered account: the part the MAC covers, and the MAC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry<'a> {
    pub user_id: i64,
    pub nonce: &'a str,
    pub mac: &'a str,
}

impl Entry<'_> {
    /// What the MAC signs, and the key of this browser's own allowance.
    pub fn payload(&self) -> String {
        payload(self.user_id, self.nonce)
    }
}

pub fn payload(user_id: i64, nonce: &str) -> String {
    format!("{user_id}.{nonce}")
}

/// The well-formed entries of a cookie value (at most `MAX_ENTRIES`).
pub fn entries(value: &str) -> Vec<Entry<'_>> {
    let token = |s: &str| {
        !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    value
        .split('~')
        .filter_map(|e| {
            let mut parts = e.splitn(3, '.');
            let user_id = parts.next()?.parse().ok()?;
            let nonce = parts.next().filter(|n| token(n))?;
            let mac = parts.next().filter(|m| token(m))?;
            Some(Entry { user_id, nonce, mac })
        })
        .take(MAX_ENTRIES)
        .collect()
}

/// The entry of `user_id` whose MAC `valid` accepts, if the cookie has one.
pub fn known<'a>(value: &'a str, user_id: i64, valid: impl Fn(&Entry<'_>) -> bool) -> Option<Entry<'a>> {
    entries(value).into_iter().find(|e| e.user_id == user_id && valid(e))
}

/// The cookie value with `entry` (already signed) first, any older entry of
/// the same account dropped, and at most `MAX_ENTRIES` kept.
pub fn with_entry(value: Option<&str>, user_id: i64, entry: &str) -> String {
    let mut out = vec![entry.to_owned()];
    if let Some(v) = value {
        for e in entries(v).into_iter().filter(|e| e.user_id != user_id) {
            out.push(format!("{}.{}", e.payload(), e.mac));
        }
    }
    out.truncate(MAX_ENTRIES);
    out.join("~")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_browser_is_known_only_for_accounts_with_a_valid_entry() {
        let cookie = "7.abc.mac7~9.def.mac9";
        let valid = |e: &Entry<'_>| e.mac == format!("mac{}", e.user_id);
        assert_eq!(known(cookie, 7, valid).map(|e| e.payload()), Some("7.abc".into()));
        assert_eq!(known(cookie, 9, valid).map(|e| e.nonce), Some("def"));
        assert!(known(cookie, 8, valid).is_none(), "no entry for 8");
        assert!(known("7.abc.forged", 7, valid).is_none(), "a bad MAC");
        for junk in ["", "7", "7.abc", "x.abc.mac7", "7.a b.mac7", "7.abc.mac7.extra"] {
            assert!(known(junk, 7, valid).is_none(), "{junk:?}");
        }
    }

    #[test]
    fn signing_in_again_replaces_the_entry_and_keeps_a_few_accounts() {
        let v = with_entry(None, 1, "1.n1.m1");
        let v = with_entry(Some(&v), 2, "2.n2.m2");
        let v = with_entry(Some(&v), 1, "1.n3.m3");
        assert_eq!(v, "1.n3.m3~2.n2.m2");
        let mut v = v;
        for id in 10..20 {
            v = with_entry(Some(&v), id, &format!("{id}.n.m"));
        }
        assert_eq!(entries(&v).len(), MAX_ENTRIES);
        assert_eq!(entries(&v)[0].user_id, 19);
    }
}

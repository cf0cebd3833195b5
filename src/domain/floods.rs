//! Anonymous refusals: requests to the service API without a valid token,
//! counted per client address and minute outside the audit chain. Each
//! address gets `PER_MINUTE` refusals a minute, then is answered 429 until
//! the next minute; a job folds every finished minute into one summary
//! event per address (count, first and last time, why), so a loop of
//! anonymous requests cannot grow the append-only trail without limit.

use super::{Millis, MINUTE};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Refusals an address gets a minute before it is throttled.
pub const PER_MINUTE: u64 = 60;
/// Addresses tracked at once; beyond that, new ones share one tally
/// (`OTHER`), so memory stays bounded whatever the flood.
pub const MAX_ADDRESSES: usize = 10_000;
pub const OTHER: &str = "(other addresses)";
/// Token ids kept per summary (a revoked token still in use is worth
/// knowing; a flood of made-up ids is not worth keeping).
const MAX_TOKEN_IDS: usize = 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tally {
    /// The minute's start.
    pub minute: Millis,
    pub count: u64,
    /// Answered 429 (over the allowance) rather than 401.
    pub throttled: u64,
    pub first_at: Millis,
    pub last_at: Millis,
    pub reasons: BTreeMap<&'static str, u64>,
    pub token_ids: BTreeSet<i64>,
}

#[derive(Debug, Default)]
pub struct AnonymousRefusals {
    tallies: HashMap<(String, Millis), Tally>,
}

impl AnonymousRefusals {
    /// Counts one refusal from `address` (None: unknown). Answers the
    /// seconds to wait when the address is over its allowance this minute.
    pub fn note(
        &mut self,
        address: Option<&str>,
        now: Millis,
        why: &'static str,
        token_id: Option<i64>,
    ) -> Option<i64> {
        let minute = now - now.rem_euclid(MINUTE);
        let mut address = address.unwrap_or("unknown").to_owned();
        if !self.tallies.contains_key(&(address.clone(), minute)) && self.tallies.len() >= MAX_ADDRESSES {
            address = OTHER.to_owned();
        }
        let t = self.tallies.entry((address, minute)).or_insert_with(|| Tally {
            minute,
            count: 0,
            throttled: 0,
            first_at: now,
            last_at: now,
            reasons: BTreeMap::new(),
            token_ids: BTreeSet::new(),
        });
        t.count += 1;
        t.first_at = t.first_at.min(now);
        t.last_at = t.last_at.max(now);
        *t.reasons.entry(why).or_default() += 1;
        if let Some(id) = token_id {
            if t.token_ids.len() < MAX_TOKEN_IDS {
                t.token_ids.insert(id);
            }
        }
        if t.count > PER_MINUTE {
            t.throttled += 1;
            Some(((minute + MINUTE - now + 999) / 1000).max(1))
        } else {
            None
        }
    }

    /// Takes the tallies of the minutes before `now`'s, or every tally
    /// (at shutdown), ordered by minute and address.
    pub fn take(&mut self, now: Millis, all: bool) -> Vec<(String, Tally)> {
        let current = now - now.rem_euclid(MINUTE);
        let done: Vec<(String, Millis)> = self
            .tallies
            .keys()
            .filter(|(_, m)| all || *m < current)
            .cloned()
            .collect();
        let mut out: Vec<(String, Tally)> = done
            .into_iter()
            .filter_map(|k| self.tallies.remove(&k).map(|t| (k.0, t)))
            .collect();
        out.sort_by(|a, b| (a.1.minute, &a.0).cmp(&(b.1.minute, &b.0)));
        out
    }

    pub fn is_empty(&self) -> bool {
        self.tallies.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-01-01 00:00 UTC.
    const T: Millis = 1_767_225_600_000;

    #[test]
    fn an_address_gets_its_allowance_then_waits_for_the_next_minute() {
        let mut r = AnonymousRefusals::default();
        for i in 0..PER_MINUTE {
            assert_eq!(r.note(Some("192.0.2.7"), T + i as i64, "no bearer token", None), None);
        }
        assert_eq!(r.note(Some("192.0.2.7"), T + 30_000, "no bearer token", None), Some(30));
        assert_eq!(r.note(Some("192.0.2.7"), T + 59_999, "no bearer token", None), Some(1));
        // Another address has its own allowance; the next minute starts afresh.
        assert_eq!(r.note(Some("198.51.100.1"), T + 59_999, "malformed token", None), None);
        assert_eq!(r.note(Some("192.0.2.7"), T + MINUTE, "no bearer token", None), None);
    }

    #[test]
    fn finished_minutes_fold_into_one_summary_per_address() {
        let mut r = AnonymousRefusals::default();
        for i in 0..100 {
            let why = if i % 2 == 0 {
                "no bearer token"
            } else {
                "unknown, revoked or expired token"
            };
            r.note(Some("192.0.2.7"), T + 1_000 + i, why, (i % 2 == 1).then_some(i));
        }
        r.note(Some("192.0.2.7"), T + MINUTE + 5, "no bearer token", None);
        assert!(r.take(T + 59_000, false).is_empty(), "the minute is not over");
        let done = r.take(T + MINUTE + 10, false);
        assert_eq!(done.len(), 1);
        let (address, t) = &done[0];
        assert_eq!(address, "192.0.2.7");
        assert_eq!((t.minute, t.count, t.throttled), (T, 100, 40));
        assert_eq!((t.first_at, t.last_at), (T + 1_000, T + 1_099));
        assert_eq!(t.reasons["no bearer token"], 50);
        assert_eq!(t.token_ids.len(), MAX_TOKEN_IDS, "kept, up to a bound");
        // At shutdown, the current minute too.
        assert_eq!(r.take(T + MINUTE + 10, true).len(), 1);
        assert!(r.is_empty());
    }

    #[test]
    fn a_flood_from_many_addresses_stays_bounded() {
        let mut r = AnonymousRefusals::default();
        for i in 0..(MAX_ADDRESSES + 500) {
            r.note(
                Some(&format!("10.{}.{}.{}", i >> 16 & 255, i >> 8 & 255, i & 255)),
                T,
                "no bearer token",
                None,
            );
        }
        let all = r.take(T, true);
        assert_eq!(all.len(), MAX_ADDRESSES + 1);
        let other = all.iter().find(|(a, _)| a == OTHER).unwrap();
        assert_eq!(other.1.count, 500);
    }
}

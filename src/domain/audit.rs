//! The audit chain: canonical encoding, hashing and verification.
//!
//! Every event's `hash` is SHA-256 over its canonical encoding, which
//! includes the previous event's hash, so changing, removing or reordering
//! any event breaks every link after it. The encoding is documented in
//! docs/audit-chain.md; change it only together with `FORMAT`.

pub use super::actions::Action;
use sha2::{Digest, Sha256};
use std::fmt;

pub const FORMAT: &[u8] = b"gatehouse-audit-v1";
/// `prev_hash` of the first event.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Success,
    Failure,
    Denied,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Denied => "denied",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "success" => Some(Outcome::Success),
            "failure" => Some(Outcome::Failure),
            "denied" => Some(Outcome::Denied),
            _ => None,
        }
    }
}

/// Who did it. Session ids are never stored: `session` is a short hash of
/// the session id, enough to group one session's events.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Actor {
    pub user_id: Option<i64>,
    pub session: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// An event before it is placed in the chain.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NewEvent {
    pub actor: Actor,
    /// An `Action`'s name (`new` takes the action; only tests and tools set
    /// a name outside it).
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub customer_id: Option<String>,
    pub outcome: Outcome,
    pub reason: Option<String>,
    /// A JSON object. Never holds secrets: passwords, codes, tokens, keys.
    pub details: serde_json::Value,
}

impl NewEvent {
    pub fn new(action: Action, outcome: Outcome, actor: Actor) -> Self {
        Self {
            actor,
            action: action.id().to_owned(),
            target_type: None,
            target_id: None,
            customer_id: None,
            outcome,
            reason: None,
            details: serde_json::Value::Object(Default::default()),
        }
    }

    pub fn target(mut self, kind: &str, id: impl ToString) -> Self {
        self.target_type = Some(kind.to_owned());
        self.target_id = Some(id.to_string());
        self
    }

    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    /// The customer whose data the event is about.
    pub fn customer(mut self, customer_id: impl Into<String>) -> Self {
        self.customer_id = Some(customer_id.into());
        self
    }

    pub fn details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }

    /// Places the event after `prev_hash` at `seq`, computing its hash.
    pub fn seal(self, seq: i64, at: super::Millis, prev_hash: &str) -> Event {
        let mut event = Event {
            seq,
            at,
            actor: self.actor,
            action: self.action,
            target_type: self.target_type,
            target_id: self.target_id,
            customer_id: self.customer_id,
            outcome: self.outcome,
            reason: self.reason,
            // serde_json writes object keys sorted (no preserve_order), so
            // this text is canonical for a given value.
            details: self.details.to_string(),
            prev_hash: prev_hash.to_owned(),
            hash: String::new(),
        };
        event.hash = event.compute_hash();
        event
    }
}

/// An event as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Event {
    pub seq: i64,
    pub at: super::Millis,
    pub actor: Actor,
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub customer_id: Option<String>,
    pub outcome: Outcome,
    pub reason: Option<String>,
    /// Canonical JSON text, exactly as hashed.
    pub details: String,
    pub prev_hash: String,
    pub hash: String,
}

/// A borrowed view of a stored event, so verification can hash rows
/// without copying them. `outcome` is the stored text, whatever it is.
#[derive(Debug, Clone, Copy)]
pub struct EventRef<'a> {
    pub seq: i64,
    pub at: super::Millis,
    pub user_id: Option<i64>,
    pub session: Option<&'a str>,
    pub ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub action: &'a str,
    pub target_type: Option<&'a str>,
    pub target_id: Option<&'a str>,
    pub customer_id: Option<&'a str>,
    pub outcome: &'a str,
    pub reason: Option<&'a str>,
    pub details: &'a str,
    pub prev_hash: &'a str,
    pub hash: &'a str,
}

impl EventRef<'_> {
    /// The canonical encoding: `FORMAT`, then each field in a fixed order,
    /// every field as a tag byte (0 = absent, 1 = present) and, when present,
    /// a 4-byte big-endian length and the UTF-8 bytes (integers as decimal).
    pub fn write_canonical(&self, out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(FORMAT);
        let mut seq = itoa_buf();
        let mut at = itoa_buf();
        let mut user = itoa_buf();
        let seq = fmt_i64(&mut seq, self.seq);
        let at = fmt_i64(&mut at, self.at);
        let user = self.user_id.map(|u| fmt_i64(&mut user, u));
        let fields: [Option<&str>; 14] = [
            Some(seq),
            Some(at),
            user,
            self.session,
            self.ip,
            self.user_agent,
            Some(self.action),
            self.target_type,
            self.target_id,
            self.customer_id,
            Some(self.outcome),
            self.reason,
            Some(self.details),
            Some(self.prev_hash),
        ];
        for field in fields {
            match field {
                None => out.push(0),
                Some(s) => {
                    out.push(1);
                    out.extend_from_slice(&(s.len() as u32).to_be_bytes());
                    out.extend_from_slice(s.as_bytes());
                }
            }
        }
    }

    /// True when the stored hash is the SHA-256 of the canonical encoding;
    /// `buf` is scratch space reused between events.
    pub fn hash_matches(&self, buf: &mut Vec<u8>) -> bool {
        self.write_canonical(buf);
        let digest = Sha256::digest(&buf[..]);
        let mut hexed = [0u8; 64];
        hex::encode_to_slice(digest, &mut hexed).is_ok() && hexed[..] == *self.hash.as_bytes()
    }
}

fn itoa_buf() -> [u8; 20] {
    [0u8; 20]
}

/// Formats an integer as decimal into `buf` without allocating.
fn fmt_i64(buf: &mut [u8; 20], n: i64) -> &str {
    let mut i = buf.len();
    let neg = n < 0;
    let mut v = n.unsigned_abs();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    if neg {
        // i64::MIN has 19 digits, so there is room for the sign.
        i -= 1;
        buf[i] = b'-';
    }
    std::str::from_utf8(&buf[i..]).unwrap_or("0")
}

impl Event {
    pub fn as_ref(&self) -> EventRef<'_> {
        EventRef {
            seq: self.seq,
            at: self.at,
            user_id: self.actor.user_id,
            session: self.actor.session.as_deref(),
            ip: self.actor.ip.as_deref(),
            user_agent: self.actor.user_agent.as_deref(),
            action: &self.action,
            target_type: self.target_type.as_deref(),
            target_id: self.target_id.as_deref(),
            customer_id: self.customer_id.as_deref(),
            outcome: self.outcome.as_str(),
            reason: self.reason.as_deref(),
            details: &self.details,
            prev_hash: &self.prev_hash,
            hash: &self.hash,
        }
    }

    /// See [`EventRef::write_canonical`].
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256 + self.details.len());
        self.as_ref().write_canonical(&mut out);
        out
    }

    pub fn compute_hash(&self) -> String {
        hex::encode(Sha256::digest(self.canonical_bytes()))
    }
}

/// What is wrong with the chain, at the first event where it goes wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainError {
    /// The event's stored hash is not the hash of its content: it was changed.
    HashMismatch { seq: i64 },
    /// The event does not point at the previous event's hash: an event before
    /// it was removed, inserted or moved.
    BrokenLink { seq: i64 },
    /// Sequence numbers are not consecutive: `expected` is missing.
    Gap { expected: i64, found: i64 },
    /// The chain ends before the recorded head: events were cut off the end.
    Truncated { head_seq: i64, last_seq: i64 },
    /// The recorded head does not match the last event.
    HeadMismatch { head_seq: i64 },
}

impl fmt::Display for ChainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChainError::HashMismatch { seq } => write!(f, "event {seq}: content does not match its hash (changed)"),
            ChainError::BrokenLink { seq } => {
                write!(
                    f,
                    "event {seq}: previous-hash link is broken (an earlier event was removed, inserted or reordered)"
                )
            }
            ChainError::Gap { expected, found } => {
                write!(f, "event {expected} is missing (next event found is {found})")
            }
            ChainError::Truncated { head_seq, last_seq } => {
                write!(f, "chain ends at event {last_seq} but the head records event {head_seq} (events removed from the end)")
            }
            ChainError::HeadMismatch { head_seq } => write!(f, "event {head_seq}: hash differs from the recorded head"),
        }
    }
}

/// Streaming verifier: feed events in sequence order, then `finish` with the
/// recorded head. Keeps constant memory, so it can walk millions of events.
#[derive(Debug, Clone)]
pub struct Verifier {
    expected_seq: i64,
    prev_hash: String,
    count: u64,
    buf: Vec<u8>,
}

impl Default for Verifier {
    fn default() -> Self {
        Self::new()
    }
}

impl Verifier {
    pub fn new() -> Self {
        Self {
            expected_seq: 1,
            prev_hash: GENESIS_HASH.to_owned(),
            count: 0,
            buf: Vec::with_capacity(1024),
        }
    }

    /// Continues a chain already checked up to `prev_seq`, whose last hash
    /// is `prev_hash`.
    pub fn resume(prev_seq: i64, prev_hash: &str) -> Self {
        Self {
            expected_seq: prev_seq + 1,
            prev_hash: prev_hash.to_owned(),
            count: 0,
            buf: Vec::with_capacity(1024),
        }
    }

    pub fn push(&mut self, event: &Event) -> Result<(), ChainError> {
        self.push_ref(&event.as_ref())
    }

    pub fn push_ref(&mut self, event: &EventRef<'_>) -> Result<(), ChainError> {
        if event.seq != self.expected_seq {
            return Err(ChainError::Gap {
                expected: self.expected_seq,
                found: event.seq,
            });
        }
        if !event.hash_matches(&mut self.buf) {
            return Err(ChainError::HashMismatch { seq: event.seq });
        }
        if event.prev_hash != self.prev_hash {
            return Err(ChainError::BrokenLink { seq: event.seq });
        }
        self.prev_hash.clear();
        self.prev_hash.push_str(event.hash);
        self.expected_seq += 1;
        self.count += 1;
        Ok(())
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// Checks the end of the chain against the recorded head (`head_seq`
    /// and `head_hash`, kept apart from the events).
    pub fn finish(self, head_seq: i64, head_hash: &str) -> Result<u64, ChainError> {
        let last_seq = self.expected_seq - 1;
        if last_seq < head_seq {
            return Err(ChainError::Truncated { head_seq, last_seq });
        }
        if last_seq > head_seq || self.prev_hash != head_hash {
            return Err(ChainError::HeadMismatch { head_seq: last_seq });
        }
        Ok(self.count)
    }
}

/// Verifies a whole chain held in memory.
pub fn verify_chain<'a>(
    events: impl IntoIterator<Item = &'a Event>,
    head_seq: i64,
    head_hash: &str,
) -> Result<u64, ChainError> {
    let mut v = Verifier::new();
    for e in events {
        v.push(e)?;
    }
    v.finish(head_seq, head_hash)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn chain(n: i64) -> Vec<Event> {
        let mut prev = GENESIS_HASH.to_owned();
        (1..=n)
            .map(|seq| {
                let e = NewEvent::new(
                    Action::SignIn,
                    Outcome::Success,
                    Actor {
                        user_id: Some(seq),
                        ..Default::default()
                    },
                )
                .target("user", seq)
                .details(json!({"b": 2, "a": seq}))
                .seal(seq, 1_700_000_000_000 + seq, &prev);
                prev = e.hash.clone();
                e
            })
            .collect()
    }

    fn head(c: &[Event]) -> (i64, String) {
        let last = c.last().unwrap();
        (last.seq, last.hash.clone())
    }

    #[test]
    fn a_sound_chain_verifies() {
        let c = chain(5);
        let (s, h) = head(&c);
        assert_eq!(verify_chain(&c, s, &h), Ok(5));
        assert_eq!(verify_chain(&[], 0, GENESIS_HASH), Ok(0));
    }

    #[test]
    fn details_are_canonical() {
        let c = chain(1);
        assert_eq!(c[0].details, r#"{"a":1,"b":2}"#);
    }

    #[test]
    fn changed_event_is_detected() {
        let mut c = chain(5);
        let (s, h) = head(&c);
        c[2].reason = Some("edited".into());
        assert_eq!(verify_chain(&c, s, &h), Err(ChainError::HashMismatch { seq: 3 }));
        // Recomputing the changed event's own hash still breaks the next link.
        c[2].hash = c[2].compute_hash();
        assert_eq!(verify_chain(&c, s, &h), Err(ChainError::BrokenLink { seq: 4 }));
    }

    #[test]
    fn every_field_is_covered_by_the_hash() {
        let base = chain(1).remove(0);
        type Mutation = Box<dyn Fn(&mut Event)>;
        let mutations: Vec<Mutation> = vec![
            Box::new(|e| e.at += 1),
            Box::new(|e| e.actor.user_id = None),
            Box::new(|e| e.actor.session = Some("s".into())),
            Box::new(|e| e.actor.ip = Some("10.0.0.1".into())),
            Box::new(|e| e.actor.user_agent = Some("x".into())),
            Box::new(|e| e.action.push('x')),
            Box::new(|e| e.target_type = None),
            Box::new(|e| e.target_id = Some("2".into())),
            Box::new(|e| e.customer_id = Some("c".into())),
            Box::new(|e| e.outcome = Outcome::Denied),
            Box::new(|e| e.reason = Some(String::new())),
            Box::new(|e| e.details = "{}".into()),
            Box::new(|e| e.prev_hash = "1".repeat(64)),
        ];
        for (i, m) in mutations.iter().enumerate() {
            let mut e = base.clone();
            m(&mut e);
            assert_ne!(e.compute_hash(), base.hash, "mutation {i} not covered");
        }
        // Absent and empty are different.
        let mut a = base.clone();
        a.reason = None;
        let mut b = base.clone();
        b.reason = Some(String::new());
        assert_ne!(a.compute_hash(), b.compute_hash());
    }

    #[test]
    fn deleted_event_is_detected() {
        let mut c = chain(5);
        let (s, h) = head(&c);
        c.remove(2);
        assert_eq!(verify_chain(&c, s, &h), Err(ChainError::Gap { expected: 3, found: 4 }));
        // Renumbering to hide the gap breaks the link instead.
        for (i, e) in c.iter_mut().enumerate() {
            e.seq = i as i64 + 1;
        }
        assert_eq!(verify_chain(&c, s, &h), Err(ChainError::HashMismatch { seq: 3 }));
    }

    #[test]
    fn reordered_events_are_detected() {
        let mut c = chain(5);
        let (s, h) = head(&c);
        c.swap(1, 2);
        assert_eq!(verify_chain(&c, s, &h), Err(ChainError::Gap { expected: 2, found: 3 }));
        // Swapping the sequence numbers too leaves hashes that don't match.
        c[1].seq = 2;
        c[2].seq = 3;
        assert_eq!(verify_chain(&c, s, &h), Err(ChainError::HashMismatch { seq: 2 }));
    }

    #[test]
    fn truncated_tail_is_detected() {
        let mut c = chain(5);
        let (s, h) = head(&c);
        c.pop();
        assert_eq!(
            verify_chain(&c, s, &h),
            Err(ChainError::Truncated {
                head_seq: 5,
                last_seq: 4
            })
        );
    }

    #[test]
    fn integers_format_like_to_string() {
        for n in [0i64, 7, -7, 10, 1_767_225_600_000, i64::MAX, i64::MIN] {
            let mut b = itoa_buf();
            assert_eq!(fmt_i64(&mut b, n), n.to_string());
        }
    }

    #[test]
    fn an_unknown_stored_outcome_fails_the_hash() {
        let c = chain(1);
        let mut r = c[0].as_ref();
        assert!(r.hash_matches(&mut Vec::new()));
        r.outcome = "approved";
        assert!(!r.hash_matches(&mut Vec::new()));
    }

    #[test]
    fn head_mismatch_is_detected() {
        let c = chain(3);
        assert_eq!(
            verify_chain(&c, 3, GENESIS_HASH),
            Err(ChainError::HeadMismatch { head_seq: 3 })
        );
    }
}

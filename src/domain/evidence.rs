//! The evidence bundle of a closed access review, and its offline check.
//!
//! JSON Lines: a header naming the campaign, the report's SHA-256, the
//! signing keys and one signed checkpoint; the report (CSV) itself; then
//! each of the campaign's audit events with its inclusion proof under that
//! checkpoint (the events are not one contiguous range, so each is proven
//! on its own, RFC 9162 section 2.1.3). Nothing is trusted on its own: each
//! event's hash is recomputed from its content, each proof must lead to the
//! signed root, the events must be the campaign's (its start and its close
//! among them), and the report must hash to what the closing event holds.

use super::{
    actions::Action,
    audit::Event,
    checkpoint::{self, Checkpoint},
    merkle,
};
use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;

pub const FORMAT: &str = "gatehouse-review-evidence-v1";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    pub format: String,
    pub exported_at: i64,
    pub campaign_id: i64,
    pub report_sha256: String,
    pub public_keys: Vec<super::bundle::PublicKey>,
    pub checkpoint: Checkpoint,
}

/// One line after the header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Line {
    Report { csv: String },
    Event { event: Box<Event>, path: Vec<String> },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub campaign_id: i64,
    pub events: u64,
    pub checkpoint: i64,
    pub tree_size: i64,
    pub report_sha256: String,
    pub key_ids: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EvidenceError {
    Malformed {
        line: usize,
        problem: String,
    },
    /// The checkpoint's signature is not by the keys trusted.
    Signature,
    /// An event's content does not hash to its hash: it was changed.
    EventChanged {
        seq: i64,
    },
    /// An event's proof does not lead to the signed root.
    NotIncluded {
        seq: i64,
    },
    /// An event of another campaign, or the same event twice, or out of order.
    Foreign {
        seq: i64,
    },
    /// The campaign's start or close is missing.
    Incomplete(&'static str),
    /// The report does not hash to what the header and the closing event say.
    ReportChanged,
}

impl fmt::Display for EvidenceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed { line, problem } => write!(f, "line {line}: {problem}"),
            Self::Signature => write!(f, "the checkpoint is not signed by the trusted key"),
            Self::EventChanged { seq } => write!(f, "event {seq} was changed: its content does not match its hash"),
            Self::NotIncluded { seq } => write!(f, "event {seq} is not in the signed tree: its proof fails"),
            Self::Foreign { seq } => write!(f, "event {seq} is not this campaign's, or is out of order"),
            Self::Incomplete(what) => write!(f, "the campaign's {what} event is missing"),
            Self::ReportChanged => write!(
                f,
                "the report does not match the SHA-256 recorded when the campaign closed"
            ),
        }
    }
}

fn campaign_of(e: &Event) -> Option<i64> {
    let d: serde_json::Value = serde_json::from_str(&e.details).ok()?;
    d.get("campaign_id")?.as_i64()
}

/// Checks an evidence bundle. `trusted`: the public keys obtained from
/// Gatehouse out of band; without them the bundle's own keys are used and
/// the report names them.
pub fn verify<I, S>(lines: I, trusted: Option<&[VerifyingKey]>) -> Result<Report, EvidenceError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let malformed = |line: usize, problem: String| EvidenceError::Malformed {
        line: line + 1,
        problem,
    };
    let mut lines = lines
        .into_iter()
        .enumerate()
        .filter(|(_, l)| !l.as_ref().trim().is_empty());
    let (n, first) = lines.next().ok_or_else(|| malformed(0, "the file is empty".into()))?;
    let header: Header =
        serde_json::from_str(first.as_ref()).map_err(|e| malformed(n, format!("not an evidence header: {e}")))?;
    if header.format != FORMAT {
        return Err(malformed(n, format!("unknown format {:?}", header.format)));
    }
    let own: Vec<VerifyingKey> = header
        .public_keys
        .iter()
        .map(|k| checkpoint::public_key_from_hex(&k.public_key))
        .collect::<Option<_>>()
        .ok_or_else(|| malformed(n, "a public key is not a valid Ed25519 key".into()))?;
    let keys = trusted.map(<[VerifyingKey]>::to_vec).unwrap_or(own);
    let cp = &header.checkpoint;
    if !cp.signature_valid(&keys) {
        return Err(EvidenceError::Signature);
    }
    let mut root = [0u8; 32];
    hex::decode_to_slice(&cp.root, &mut root).map_err(|_| malformed(n, "the checkpoint's root is not hex".into()))?;
    let (mut report, mut last, mut events) = (None, 0i64, 0u64);
    let (mut started, mut closed) = (false, None::<String>);
    for (i, line) in lines {
        match serde_json::from_str::<Line>(line.as_ref()).map_err(|e| malformed(i, e.to_string()))? {
            Line::Report { csv } if report.is_none() => report = Some(csv),
            Line::Report { .. } => return Err(malformed(i, "a second report".into())),
            Line::Event { event: e, path } => {
                if e.compute_hash() != e.hash {
                    return Err(EvidenceError::EventChanged { seq: e.seq });
                }
                let leaf = merkle::leaf_from_hex(&e.hash).ok_or(EvidenceError::EventChanged { seq: e.seq })?;
                let path = path
                    .iter()
                    .map(|h| {
                        let mut x = [0u8; 32];
                        hex::decode_to_slice(h, &mut x).ok().map(|_| x)
                    })
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| malformed(i, "a proof node is not 64 hex digits".into()))?;
                let included = e.seq >= 1
                    && merkle::verify_inclusion(&leaf, (e.seq - 1) as u64, cp.tree_size as u64, &path, &root);
                if !included {
                    return Err(EvidenceError::NotIncluded { seq: e.seq });
                }
                if e.seq <= last || campaign_of(&e) != Some(header.campaign_id) {
                    return Err(EvidenceError::Foreign { seq: e.seq });
                }
                last = e.seq;
                events += 1;
                match Action::parse(&e.action) {
                    Some(Action::ReviewStarted) => started = true,
                    Some(Action::ReviewClosed) if e.outcome == super::audit::Outcome::Success => {
                        let d: serde_json::Value = serde_json::from_str(&e.details).unwrap_or_default();
                        closed = d.get("report_sha256").and_then(|v| v.as_str()).map(str::to_owned);
                    }
                    _ => {}
                }
            }
        }
    }
    if !started {
        return Err(EvidenceError::Incomplete("start"));
    }
    let Some(recorded) = closed else {
        return Err(EvidenceError::Incomplete("closing"));
    };
    let csv = report.ok_or_else(|| malformed(n, "the bundle holds no report".into()))?;
    let actual = hex::encode(Sha256::digest(csv.as_bytes()));
    if actual != recorded || actual != header.report_sha256 {
        return Err(EvidenceError::ReportChanged);
    }
    Ok(Report {
        campaign_id: header.campaign_id,
        events,
        checkpoint: cp.number,
        tree_size: cp.tree_size,
        report_sha256: actual,
        key_ids: keys.iter().map(checkpoint::key_id).collect(),
    })
}

#[cfg(test)]
mod tests;

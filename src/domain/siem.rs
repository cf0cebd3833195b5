//! What Gatehouse streams to a SIEM, and when a record counts as delivered.
//!
//! Each audit event becomes one record of OCSF 1.2.0 (`OCSF_VERSION`; the
//! class and object definitions are in `docs/ocsf/1.2.0/`, extracted from the
//! tagged schema by `.ci/ocsf-extract`) in one of four classes:
//! Authentication (3002), Account Change (3001), Entity Management (3004)
//! and API Activity (6003). The record keeps the chain's sequence number
//! (`metadata.sequence`) and hash (`metadata.uid`), and the whole stored
//! event under `unmapped.gatehouse`, so a SIEM record is matched to the
//! chain and checked against it. Details never hold secrets (the trail's
//! rule), so nothing here filters them.
//!
//! Delivery is at least once: a sink's stored cursor moves only past what
//! the receiver acknowledged (an HTTP 2xx, a synced file) or, for syslog
//! (which has no acknowledgements), what was written on a connection that
//! stayed open `SYSLOG_GRACE` after the write (`Window`). After a failure the
//! sink resends from its cursor, so a SIEM may see a record twice: the
//! sequence number tells duplicates apart.

use super::actions::Action;
use super::audit::{Event, Outcome};
use super::Millis;
use serde_json::{json, Map, Value};
use std::collections::VecDeque;

pub const OCSF_VERSION: &str = "1.2.0";

/// How long a syslog connection must stay open after a write before what
/// was written counts as received.
pub const SYSLOG_GRACE: Millis = 1_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    AccountChange = 3001,
    Authentication = 3002,
    EntityManagement = 3004,
    ApiActivity = 6003,
}

impl Class {
    pub fn uid(self) -> u32 {
        self as u32
    }

    fn name(self) -> &'static str {
        match self {
            Class::AccountChange => "Account Change",
            Class::Authentication => "Authentication",
            Class::EntityManagement => "Entity Management",
            Class::ApiActivity => "API Activity",
        }
    }

    fn category(self) -> (u32, &'static str) {
        match self {
            Class::ApiActivity => (6, "Application Activity"),
            _ => (3, "Identity & Access Management"),
        }
    }
}

const OTHER: u32 = 99;

/// The class and activity (`activity_id`) an action is recorded as. Every
/// action is chosen for here, with no catch-all: a new action does not
/// compile until it has a class. A name this version does not know (the
/// trail keeps whatever was stored) is Entity Management, Other.
pub fn classify(action: &str) -> (Class, u32) {
    use Action::*;
    use Class::*;
    let Some(action) = Action::parse(action) else {
        return (EntityManagement, OTHER);
    };
    match action {
        // Authentication: logon 1, logoff 2.
        SignIn | PasswordAccepted | SignInCode | RecoveryCode | Sso | StepUp | PasskeyUsed | PasskeyUse => {
            (Authentication, 1)
        }
        SignOut | SignOutEverywhere | SessionExpired => (Authentication, 2),
        // Account Change: create 1, enable 2, disable 5, delete 6, lock 9,
        // MFA factor enable 10 and disable 11.
        FirstAdmin | Onboarded | InvitationAccepted | InvitationAccept => (AccountChange, 1),
        Unlock | Activated | Reactivated => (AccountChange, 2),
        Suspended | Suspend | Offboarded | Offboard => (AccountChange, 5),
        ScimDeleted => (AccountChange, 6),
        Lockout => (AccountChange, 9),
        Enrolled | EnrolRefused | PasskeyRegistered | PasskeyRegister => (AccountChange, 10),
        PasskeyRemoved => (AccountChange, 11),
        Updated | RecoveryCodesRegenerated => (AccountChange, OTHER),
        // What services ask and report, and refused calls: read 2.
        AccessCheck | DataAccess | Exported => (ApiActivity, 2),
        ApiAuth | Denied => (ApiActivity, OTHER),
        // Entity Management: create 1, update 3, delete 4.
        SetupTokenIssued
        | GrantCreated
        | GrantRequested
        | GrantCreate
        | RoleCreated
        | RoleSave
        | RoleChangeRequested
        | InvitationCreated
        | ElevationRequested
        | ExtensionRequested
        | Breakglass
        | BreakglassActivated
        | ReviewStarted
        | DbTargetRegistered
        | DbPrivilegeProposed
        | DbPrivilegeMapped
        | DbAccessProvisioned
        | DbPasswordIssued
        | ServiceAccountCreated
        | TokenCreated
        | WitnessAdded
        | Cosign
        | AlertRaised
        | DemoSeeded => (EntityManagement, 1),
        GrantApproved
        | GrantRejected
        | GrantShortened
        | GrantApprove
        | RoleUpdated
        | RoleChangeApproved
        | RoleChangeRejected
        | OffboardingScheduled
        | OffboardingCancelled
        | OffboardingChecklist
        | ElevationApprove
        | ElevationDeny
        | ElevationApproved
        | ElevationDenied
        | ApprovalRecorded
        | PolicyChanged
        | BreakglassReview
        | BreakglassReviewed
        | ReviewDecided
        | ReviewDecide
        | ReviewReassigned
        | RoleOwnersSet
        | DbRevocationReceipt
        | DbChangePending
        | DbRevocationUnconfirmed
        | DbDriftFound
        | DbDriftCleared
        | DbDriftCorrected
        | DbDriftCorrection
        | AuditKeyRotated
        | MasterKeyRotated
        | AlertAcknowledged => (EntityManagement, 3),
        GrantRevoked | GrantExpired | GrantRevoke | RoleDeleted | RoleDelete | ElevationCancelled
        | ElevationRevoked | ElevationRevoke | ElevationExpired | ElevationLapsed | ElevationsEnded | ReviewClosed
        | ReviewItemClosed | DbPrivilegeUnmapped | TokenRevoked | WitnessRetired => (EntityManagement, 4),
    }
}

/// Names the record may carry beside ids: the actor's and, when the target
/// is a person, theirs.
#[derive(Debug, Default, Clone)]
pub struct Names {
    pub actor: Option<String>,
    pub target: Option<String>,
}

/// The OCSF record of `event`. `product_version` is Gatehouse's.
pub fn record(event: &Event, names: &Names, product_version: &str) -> Value {
    let (class, activity) = classify(&event.action);
    let (category_uid, category_name) = class.category();
    let ok = event.outcome == Outcome::Success;
    let mut r = Map::new();
    r.insert("activity_id".into(), json!(activity));
    r.insert("category_uid".into(), json!(category_uid));
    r.insert("category_name".into(), json!(category_name));
    r.insert("class_uid".into(), json!(class.uid()));
    r.insert("class_name".into(), json!(class.name()));
    r.insert("type_uid".into(), json!(class.uid() as u64 * 100 + activity as u64));
    r.insert("severity_id".into(), json!(if ok { 1 } else { 3 }));
    r.insert("severity".into(), json!(if ok { "Informational" } else { "Medium" }));
    r.insert("status_id".into(), json!(if ok { 1 } else { 2 }));
    r.insert("status".into(), json!(if ok { "Success" } else { "Failure" }));
    if let Some(reason) = &event.reason {
        r.insert("status_detail".into(), json!(reason));
    }
    r.insert("time".into(), json!(event.at));
    r.insert("timezone_offset".into(), json!(0));
    r.insert("message".into(), json!(message(event)));
    r.insert("metadata".into(), metadata(event, product_version));
    if let Some(ip) = &event.actor.ip {
        r.insert("src_endpoint".into(), json!({ "ip": ip }));
    }
    if let Some(ua) = &event.actor.user_agent {
        r.insert("http_request".into(), json!({ "user_agent": ua }));
    }
    let actor = actor(event, names);
    match class {
        Class::Authentication => {
            r.insert("user".into(), subject(event, names));
            r.insert("is_mfa".into(), json!(is_mfa(&event.action)));
            if let Some(session) = &event.actor.session {
                r.insert("session".into(), json!({ "uid": session }));
            }
            r.insert("actor".into(), actor);
        }
        Class::AccountChange => {
            r.insert("user".into(), subject(event, names));
            r.insert("actor".into(), actor);
        }
        Class::EntityManagement => {
            let kind = event
                .target_type
                .clone()
                .unwrap_or_else(|| area(&event.action).to_owned());
            let uid = event.target_id.clone().unwrap_or_else(|| event.action.clone());
            r.insert("entity".into(), json!({ "type": kind, "uid": uid }));
            if let Some(reason) = &event.reason {
                r.insert("comment".into(), json!(reason));
            }
            r.insert("actor".into(), actor);
        }
        Class::ApiActivity => {
            r.insert("actor".into(), actor);
            r.insert(
                "api".into(),
                json!({ "operation": event.action, "service": { "name": "gatehouse" } }),
            );
            r.entry("src_endpoint").or_insert_with(|| json!({ "name": "unknown" }));
        }
    }
    r.insert("unmapped".into(), json!({ "gatehouse": stored(event) }));
    Value::Object(r)
}

fn area(action: &str) -> &str {
    action.split('.').next().unwrap_or(action)
}

fn is_mfa(action: &str) -> bool {
    matches!(
        action,
        "auth.mfa" | "auth.recovery_code" | "mfa.step_up" | "passkey.used" | "passkey.use"
    )
}

fn message(event: &Event) -> String {
    let mut m = format!("{} {}", event.action, event.outcome.as_str());
    if let Some(reason) = &event.reason {
        m.push_str(": ");
        m.push_str(reason);
    }
    m
}

fn metadata(event: &Event, product_version: &str) -> Value {
    json!({
        "version": OCSF_VERSION,
        "product": { "name": "Gatehouse", "vendor_name": "Gatehouse", "version": product_version },
        "log_name": "audit",
        "event_code": event.action,
        "sequence": event.seq,
        "uid": event.hash,
    })
}

/// Who acted: the person (and session), or Gatehouse itself for its jobs.
fn actor(event: &Event, names: &Names) -> Value {
    let mut a = Map::new();
    if let Some(id) = event.actor.user_id {
        a.insert("user".into(), user(id.to_string(), names.actor.as_deref()));
    }
    if let Some(session) = &event.actor.session {
        a.insert("session".into(), json!({ "uid": session }));
    }
    if a.is_empty() {
        a.insert("app_name".into(), json!("gatehouse"));
    }
    Value::Object(a)
}

/// The account the event is about: its target when that is a person, else
/// the actor, else (an unknown name at sign-in) "unknown".
fn subject(event: &Event, names: &Names) -> Value {
    match (event.target_type.as_deref(), &event.target_id, event.actor.user_id) {
        (Some("user"), Some(id), _) => user(id.clone(), names.target.as_deref()),
        (_, _, Some(id)) => user(id.to_string(), names.actor.as_deref()),
        _ => json!({ "name": "unknown", "type_id": 0 }),
    }
}

fn user(uid: String, name: Option<&str>) -> Value {
    let mut u = json!({ "uid": uid, "type_id": 1 });
    if let Some(name) = name {
        u["name"] = json!(name);
    }
    u
}

/// The event as stored (its details parsed back into JSON).
fn stored(event: &Event) -> Value {
    let details = serde_json::from_str::<Value>(&event.details).unwrap_or(Value::String(event.details.clone()));
    json!({
        "seq": event.seq,
        "hash": event.hash,
        "prev_hash": event.prev_hash,
        "action": event.action,
        "outcome": event.outcome.as_str(),
        "target_type": event.target_type,
        "target_id": event.target_id,
        "customer_id": event.customer_id,
        "details": details,
    })
}

/// What a syslog sink wrote and not yet counted as received: the cursor
/// moves past a write once the connection stayed open `SYSLOG_GRACE`
/// after it.
#[derive(Debug, Default)]
pub struct Window {
    written: VecDeque<(i64, Millis)>,
}

impl Window {
    /// `seq` (the last of a batch) was written at `now`.
    pub fn wrote(&mut self, seq: i64, now: Millis) {
        self.written.push_back((seq, now));
    }

    /// The connection was seen open at `now`: the last sequence number
    /// written `SYSLOG_GRACE` before, if any, is received.
    pub fn open_at(&mut self, now: Millis) -> Option<i64> {
        let mut received = None;
        while let Some(&(seq, at)) = self.written.front() {
            if now - at < SYSLOG_GRACE {
                break;
            }
            received = Some(seq);
            self.written.pop_front();
        }
        received
    }

    /// The connection failed: nothing written on it counts; the sink
    /// resends from its cursor.
    pub fn lost(&mut self) {
        self.written.clear();
    }

    pub fn is_empty(&self) -> bool {
        self.written.is_empty()
    }
}

/// How often a sink that is busy stores its cursor (and a file sink syncs),
/// in ms. Every store is a commit beside the appends, every sync a flush to
/// disk; doing both after each batch cost ingestion a sixth on SQLite with
/// three sinks. At most this much, already delivered, is sent again after a
/// crash (delivery is at least once).
pub const STORE_EVERY: Millis = 250;

/// Acknowledged progress not yet stored in the sink's cursor.
#[derive(Debug, Default)]
pub struct Progress {
    acknowledged: Option<i64>,
    stored_at: Option<Millis>,
}

impl Progress {
    /// The sink acknowledged everything up to `seq`.
    pub fn acknowledged(&mut self, seq: i64) {
        self.acknowledged = Some(self.acknowledged.map_or(seq, |a| a.max(seq)));
    }

    /// What to store in the cursor at `now`, if anything: all that is
    /// acknowledged, at once when the sink is `idle` (caught up) and at
    /// most every `STORE_EVERY` while it is busy.
    pub fn due(&mut self, now: Millis, idle: bool) -> Option<i64> {
        if self.acknowledged.is_none() || !self.time_to_store(now, idle) {
            return None;
        }
        self.stored_at = Some(now);
        self.acknowledged.take()
    }

    /// Whether a store at `now` would be due: what a file sink syncs by
    /// (its writes count as acknowledged once synced).
    pub fn time_to_store(&self, now: Millis, idle: bool) -> bool {
        idle || self.stored_at.is_none_or(|at| now - at >= STORE_EVERY)
    }

    /// Whatever is acknowledged and not stored (before a resend from the
    /// cursor, which would otherwise go further back than it needs to).
    pub fn take(&mut self) -> Option<i64> {
        self.acknowledged.take()
    }
}

/// How long a sink waits after its `failures`-th failure in a row: 250 ms
/// doubling, at most 30 s.
pub fn retry_after(failures: u32) -> Millis {
    (250i64 << failures.min(7)).min(30_000)
}

/// A sink's lag as an operator reads it: "" when nothing waits, then
/// seconds, minutes or hours, rounded down.
pub fn describe_lag(ms: Millis) -> String {
    match ms {
        ..=0 => String::new(),
        1..=999 => "under 1 s".to_owned(),
        1_000..=119_999 => format!("{} s", ms / 1_000),
        120_000..=7_199_999 => format!("{} min", ms / 60_000),
        _ => format!("{} h", ms / 3_600_000),
    }
}

#[cfg(test)]
mod conforms;
#[cfg(test)]
mod tests;

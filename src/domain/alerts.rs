//! Anomaly rules over the audit trail. Each rule looks at one new event
//! plus, for the counting rules, a count: distinct customers in the last
//! hour (kept by `CustomerWindows` as events are judged) and failed
//! sign-ins in the window (which the caller reads from the trail).
//! An alert is raised once, on the event that crosses a threshold, not on
//! every event after it; while an alert of a rule about an employee is
//! open, further matches count on it instead of raising new ones.

use super::{
    actions::Action,
    audit::{Event, Outcome},
    Millis, HOUR, MINUTE,
};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rule {
    /// One employee accessed more distinct customers within an hour than allowed.
    ManyCustomers,
    /// Customer data accessed outside company hours.
    AfterHours,
    /// A check for `customers:read_pii` was denied.
    PiiDenied,
    /// Repeated failed sign-ins on one account.
    FailedSignIns,
    /// The `breakglass` role was granted or used.
    Breakglass,
    /// A database target did not confirm the end of someone's access
    /// within a minute.
    DbRevocation,
    /// A database target differs from what Gatehouse intends.
    DbDrift,
    /// A passkey's signature counter went backwards: the authenticator
    /// may have been cloned.
    PasskeyClone,
}

impl Rule {
    pub const ALL: [Rule; 8] = [
        Rule::ManyCustomers,
        Rule::AfterHours,
        Rule::PiiDenied,
        Rule::FailedSignIns,
        Rule::Breakglass,
        Rule::DbRevocation,
        Rule::DbDrift,
        Rule::PasskeyClone,
    ];

    pub fn id(self) -> &'static str {
        match self {
            Rule::ManyCustomers => "many_customers",
            Rule::AfterHours => "after_hours",
            Rule::PiiDenied => "pii_denied",
            Rule::FailedSignIns => "failed_signins",
            Rule::Breakglass => "breakglass",
            Rule::DbRevocation => "db_revocation",
            Rule::DbDrift => "db_drift",
            Rule::PasskeyClone => "passkey_clone",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.id() == s)
    }
}

/// Configurable thresholds (see README: GATEHOUSE_ALERT_*).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thresholds {
    /// More distinct customers than this within an hour raises an alert.
    pub customers_per_hour: u32,
    /// Company hours: access at or after `night_from` or before `night_until`
    /// (hours, company time) is after hours.
    pub night_from: u32,
    pub night_until: u32,
    /// Company time as minutes east of UTC.
    pub utc_offset_minutes: i32,
    /// This many failed sign-ins on one account within `failed_window`.
    pub failed_signins: u32,
    pub failed_window: Millis,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            customers_per_hour: 50,
            night_from: 20,
            night_until: 7,
            utc_offset_minutes: 0,
            failed_signins: 5,
            failed_window: 15 * MINUTE,
        }
    }
}

pub const CUSTOMER_WINDOW: Millis = HOUR;

/// How far the clock may step back between appends without a window
/// missing events.
pub const CLOCK_MARGIN: Millis = 5 * MINUTE;

/// The customers each employee accessed within the last hour, kept up to
/// date as events are judged in sequence order, so that judging an event
/// costs a few map operations instead of reading its window back from the
/// trail.
///
/// A customer counts while the latest of its accesses by that employee is
/// within the window; accesses older than the window (and `CLOCK_MARGIN`)
/// are forgotten. Customers are held as keyed hashes (SipHash under a key
/// random per process), not as text, so a busy hour costs little memory.
#[derive(Debug)]
pub struct CustomerWindows {
    /// The sequence number of the last event judged: the windows hold
    /// exactly the accesses up to it. `None` once a judging pass did not
    /// finish, so the caller must rebuild them from the trail.
    through: Option<i64>,
    employees: std::collections::HashMap<i64, Window>,
    hasher: std::collections::hash_map::RandomState,
}

#[derive(Debug, Default)]
struct Window {
    /// Customer to the time of its latest access.
    latest: std::collections::HashMap<u64, Millis>,
    /// The same, ordered by time, to forget old accesses.
    by_time: std::collections::BTreeSet<(Millis, u64)>,
}

impl CustomerWindows {
    /// Empty windows standing for every event up to `through` (the caller
    /// then feeds the accesses of the last window before it).
    pub fn new(through: i64) -> Self {
        Self {
            through: Some(through),
            employees: Default::default(),
            hasher: Default::default(),
        }
    }

    /// The last event the windows stand for, if they are whole.
    pub fn through(&self) -> Option<i64> {
        self.through
    }

    /// Starts a judging pass: until `finish` the windows are not whole.
    pub fn begin(&mut self) {
        self.through = None;
    }

    /// Ends a judging pass that saw every event up to `through`, and
    /// forgets accesses that have left every window (employees who went
    /// quiet included).
    pub fn finish(&mut self, through: i64, now_at: Millis) {
        let horizon = now_at - CUSTOMER_WINDOW - CLOCK_MARGIN;
        self.employees.retain(|_, w| {
            w.forget_before(horizon);
            !w.latest.is_empty()
        });
        self.through = Some(through);
    }

    /// Records that `employee` accessed `customer` at `at`, and answers the
    /// counts the many-customers rule asks for: distinct customers within
    /// the hour up to this access (this one included), and whether this
    /// customer was new in that hour.
    pub fn observe(&mut self, employee: i64, customer: &str, at: Millis) -> (u32, bool) {
        use std::hash::BuildHasher;
        let key = self.hasher.hash_one(customer);
        let since = at - CUSTOMER_WINDOW;
        let w = self.employees.entry(employee).or_default();
        w.forget_before(since - CLOCK_MARGIN);
        let previous = w.latest.get(&key).copied();
        let is_new = previous.is_none_or(|t| t <= since);
        match previous {
            Some(t) if t >= at => {}
            Some(t) => {
                w.by_time.remove(&(t, key));
                w.by_time.insert((at, key));
                w.latest.insert(key, at);
            }
            None => {
                w.by_time.insert((at, key));
                w.latest.insert(key, at);
            }
        }
        // Accesses kept for the clock margin but older than this window.
        let stale = w.by_time.range(..=(since, u64::MAX)).count();
        ((w.latest.len() - stale) as u32, is_new)
    }
}

impl Window {
    fn forget_before(&mut self, horizon: Millis) {
        while let Some(&(t, key)) = self.by_time.first() {
            if t > horizon {
                break;
            }
            self.by_time.pop_first();
            self.latest.remove(&key);
        }
    }
}

/// An alert to raise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    pub rule: Rule,
    pub employee_id: Option<i64>,
    pub summary: String,
}

fn details(e: &Event) -> Value {
    serde_json::from_str(&e.details).unwrap_or(Value::Null)
}

/// The open alert this event closes by itself: a revocation receipt that
/// confirms the last unconfirmed end of an employee's database access
/// (`closes_alert` in its details) closes their `db_revocation` alert,
/// which stays open until then.
pub fn closes(e: &Event) -> Option<(Rule, i64)> {
    if Action::parse(&e.action) != Some(Action::DbRevocationReceipt) || e.target_type.as_deref() != Some("user") {
        return None;
    }
    if details(e).get("closes_alert").and_then(Value::as_bool) != Some(true) {
        return None;
    }
    Some((Rule::DbRevocation, e.target_id.as_deref()?.parse().ok()?))
}

/// The employee whose access to customer data this event records, and the
/// customer: allowed checks and reported accesses.
pub fn customer_access(e: &Event) -> Option<(i64, String)> {
    let customer = e.customer_id.clone()?;
    match (Action::parse(&e.action)?, e.outcome) {
        (Action::AccessCheck, Outcome::Success) if e.target_type.as_deref() == Some("user") => {
            Some((e.target_id.as_deref()?.parse().ok()?, customer))
        }
        (Action::DataAccess, _) => Some((e.actor.user_id?, customer)),
        _ => None,
    }
}

/// The sign-in steps whose failures count towards the repeated-failures
/// rule (the server reads them back with these names too).
pub const FAILED_SIGNIN: [Action; 3] = [Action::SignIn, Action::SignInCode, Action::RecoveryCode];

/// The account a failed sign-in step was for.
pub fn failed_signin(e: &Event) -> Option<i64> {
    let failed = Action::parse(&e.action).is_some_and(|a| FAILED_SIGNIN.contains(&a)) && e.outcome == Outcome::Failure;
    if failed && e.target_type.as_deref() == Some("user") {
        e.target_id.as_deref()?.parse().ok()
    } else {
        None
    }
}

/// Is `at` outside company hours?
pub fn after_hours(at: Millis, t: &Thresholds) -> bool {
    let local_minutes = (at / MINUTE + i64::from(t.utc_offset_minutes)).rem_euclid(24 * 60);
    let hour = (local_minutes / 60) as u32;
    if t.night_from > t.night_until {
        hour >= t.night_from || hour < t.night_until
    } else {
        hour >= t.night_from && hour < t.night_until
    }
}

/// Counts the caller read from the trail for this event.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Distinct customers the employee accessed in the hour up to and
    /// including this event, and whether this event's customer was new.
    pub distinct_customers: u32,
    pub customer_is_new: bool,
    /// Failed sign-ins on the account in the window, this one included.
    pub failed_signins: u32,
}

/// The alerts one event raises.
pub fn evaluate(e: &Event, counts: Counts, t: &Thresholds) -> Vec<Alert> {
    let mut out = Vec::new();
    if let Some((employee, customer)) = customer_access(e) {
        let at = details(e).get("occurred_at").and_then(Value::as_i64).unwrap_or(e.at);
        if after_hours(at, t) {
            out.push(Alert {
                rule: Rule::AfterHours,
                employee_id: Some(employee),
                summary: format!("customer {customer} data accessed after hours (event {})", e.seq),
            });
        }
        if counts.customer_is_new && counts.distinct_customers == t.customers_per_hour + 1 {
            out.push(Alert {
                rule: Rule::ManyCustomers,
                employee_id: Some(employee),
                summary: format!(
                    "{} distinct customers accessed within an hour (more than {})",
                    counts.distinct_customers, t.customers_per_hour
                ),
            });
        }
    }
    let d = details(e);
    let action = Action::parse(&e.action);
    if action == Some(Action::AccessCheck)
        && e.outcome == Outcome::Denied
        && d.get("permission").and_then(Value::as_str) == Some("customers:read_pii")
    {
        let employee = (e.target_type.as_deref() == Some("user"))
            .then(|| e.target_id.as_deref().and_then(|t| t.parse().ok()))
            .flatten();
        out.push(Alert {
            rule: Rule::PiiDenied,
            employee_id: employee,
            summary: format!("denied check for customers:read_pii (event {})", e.seq),
        });
    }
    if let Some(user) = failed_signin(e) {
        if counts.failed_signins == t.failed_signins {
            out.push(Alert {
                rule: Rule::FailedSignIns,
                employee_id: Some(user),
                summary: format!(
                    "{} failed sign-ins within {} minutes",
                    counts.failed_signins,
                    t.failed_window / MINUTE
                ),
            });
        }
    }
    if action == Some(Action::DbRevocationUnconfirmed) {
        out.push(Alert {
            rule: Rule::DbRevocation,
            employee_id: e.target_id.as_deref().and_then(|t| t.parse().ok()),
            summary: format!(
                "database access of {} on {} not confirmed ended within a minute (event {})",
                d.get("account").and_then(Value::as_str).unwrap_or("?"),
                d.get("target").and_then(Value::as_str).unwrap_or("?"),
                e.seq
            ),
        });
    }
    if action == Some(Action::DbDriftFound) {
        let findings = d.get("findings").and_then(Value::as_array).map(Vec::len).unwrap_or(0);
        out.push(Alert {
            rule: Rule::DbDrift,
            employee_id: None,
            summary: format!(
                "{findings} difference(s) on database target {} (event {})",
                d.get("target").and_then(Value::as_str).unwrap_or("?"),
                e.seq
            ),
        });
    }
    if action == Some(Action::PasskeyUse)
        && e.outcome == Outcome::Denied
        && d.get("possible_clone").and_then(Value::as_bool) == Some(true)
    {
        out.push(Alert {
            rule: Rule::PasskeyClone,
            employee_id: e.target_id.as_deref().and_then(|t| t.parse().ok()),
            summary: format!(
                "passkey {} presented a signature counter that went backwards: possibly cloned (event {})",
                d.get("passkey_id").and_then(Value::as_i64).unwrap_or_default(),
                e.seq
            ),
        });
    }
    let breakglass_used = action == Some(Action::AccessCheck)
        && e.outcome == Outcome::Success
        && d.get("role").and_then(Value::as_str) == Some("breakglass");
    let breakglass_granted = matches!(
        action,
        Some(Action::GrantCreated | Action::GrantApproved | Action::ElevationApproved | Action::BreakglassActivated)
    ) && e.outcome == Outcome::Success
        && d.get("role").and_then(Value::as_str) == Some("breakglass");
    if breakglass_used || breakglass_granted {
        let employee = (e.target_type.as_deref() == Some("user"))
            .then(|| e.target_id.as_deref().and_then(|t| t.parse().ok()))
            .flatten();
        out.push(Alert {
            rule: Rule::Breakglass,
            employee_id: employee,
            summary: format!(
                "breakglass role {} ({}, event {})",
                if breakglass_used { "used" } else { "granted" },
                e.action,
                e.seq
            ),
        });
    }
    out
}

/// Counts at which an open alert is sent to the webhook again: it was
/// sent when raised, and again only as further matches cross these.
pub const RENOTIFY_AT: [u64; 3] = [10, 100, 1_000];

/// Whether an open alert whose count went from `before` to `after` in one
/// pass is sent again (once, however many marks it crossed).
pub fn renotify(before: u64, after: u64) -> bool {
    RENOTIFY_AT.iter().any(|&mark| before < mark && mark <= after)
}

/// Which call to the webhook a count of `count` matches: 1 when the alert
/// was raised, else the highest mark it reached. The delivery id names it,
/// so a call repeated after a crash keeps its id even when more matches
/// arrived meanwhile (receivers drop repeats by id).
pub fn webhook_mark(count: u64) -> u64 {
    RENOTIFY_AT.iter().copied().filter(|&m| m <= count).max().unwrap_or(1)
}

#[cfg(test)]
mod tests;

//! Auditor reports over the audit trail: who accessed a customer's data,
//! what an employee accessed, and refused access checks. Two kinds of event
//! record access to customer data: `access.check` (Gatehouse was asked,
//! and answered) and `data.access` (another system reported an access).
//! This module turns either into one report row.

use super::{actions::Action, audit::Event, Millis};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportKind {
    /// Every access to one customer's data.
    Customer,
    /// Everything one employee accessed.
    Employee,
    /// Refused access checks.
    Denied,
}

impl ReportKind {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "customer" => Some(Self::Customer),
            "employee" => Some(Self::Employee),
            "denied" => Some(Self::Denied),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Customer => "customer",
            Self::Employee => "employee",
            Self::Denied => "denied",
        }
    }
}

/// The actions a report reads.
pub const ACCESS_ACTIONS: [Action; 2] = [Action::AccessCheck, Action::DataAccess];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessRow {
    pub seq: i64,
    /// When the access happened (reported time for `data.access`).
    pub at: Millis,
    /// The employee whose access it was.
    pub employee_id: Option<i64>,
    /// What was asked for or done: a permission, or an action and fields.
    pub what: String,
    pub customer_id: Option<String>,
    pub purpose: Option<String>,
    /// The grant that allowed it: role and grant id.
    pub grant: Option<String>,
    /// allow, deny, or reported.
    pub decision: String,
    /// The service that asked, or the system that reported.
    pub source: Option<String>,
}

fn s(v: &Value, key: &str) -> Option<String> {
    v.get(key)
        .and_then(Value::as_str)
        .filter(|x| !x.is_empty())
        .map(str::to_owned)
}

/// The report row of an access event; `None` for any other event.
pub fn access_row(e: &Event) -> Option<AccessRow> {
    let d: Value = serde_json::from_str(&e.details).unwrap_or(Value::Null);
    match Action::parse(&e.action)? {
        Action::AccessCheck => {
            let employee_id = (e.target_type.as_deref() == Some("user"))
                .then(|| e.target_id.as_deref().and_then(|t| t.parse().ok()))
                .flatten();
            let grant = match (s(&d, "role"), d.get("grant_id").and_then(Value::as_i64)) {
                (Some(role), Some(id)) => Some(format!("{role} (grant {id})")),
                (Some(role), None) => Some(role),
                _ => None,
            };
            let resource = d.get("resource").map(|r| {
                format!(
                    " on {} {}",
                    s(r, "type").unwrap_or_default(),
                    s(r, "id").unwrap_or_default()
                )
            });
            Some(AccessRow {
                seq: e.seq,
                at: e.at,
                employee_id,
                what: format!(
                    "{}{}",
                    s(&d, "permission").unwrap_or_default(),
                    resource.unwrap_or_default()
                ),
                customer_id: e.customer_id.clone(),
                purpose: s(&d, "purpose"),
                grant,
                decision: s(&d, "decision").unwrap_or_else(|| {
                    if e.outcome.as_str() == "success" {
                        "allow".into()
                    } else {
                        "deny".into()
                    }
                }),
                source: s(&d, "service"),
            })
        }
        Action::DataAccess => {
            let fields: Vec<&str> = d
                .get("fields")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let what = match (s(&d, "action"), fields.is_empty()) {
                (Some(a), false) => format!("{a}: {}", fields.join(", ")),
                (Some(a), true) => a,
                (None, _) => "data access".into(),
            };
            Some(AccessRow {
                seq: e.seq,
                at: d.get("occurred_at").and_then(Value::as_i64).unwrap_or(e.at),
                employee_id: e.actor.user_id,
                what,
                customer_id: e.customer_id.clone(),
                purpose: e.reason.clone(),
                grant: None,
                decision: "reported".into(),
                source: s(&d, "source_system"),
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::audit::{Actor, NewEvent, Outcome, GENESIS_HASH};
    use serde_json::json;

    #[test]
    fn a_check_names_the_employee_purpose_and_grant() {
        let service = Actor {
            session: Some("svc:customer-api".into()),
            ..Default::default()
        };
        let e = NewEvent::new(Action::AccessCheck, Outcome::Success, service)
            .target("user", 7)
            .customer("C-1042")
            .details(json!({
                "service": "customer-api", "permission": "customers:read_pii",
                "resource": { "type": "customer", "id": "C-1042" },
                "purpose": "ticket SUP-77", "decision": "allow", "grant_id": 31, "role": "support-pii",
            }))
            .seal(5, 1_000, GENESIS_HASH);
        let r = access_row(&e).unwrap();
        assert_eq!(r.employee_id, Some(7));
        assert_eq!(r.what, "customers:read_pii on customer C-1042");
        assert_eq!(r.purpose.as_deref(), Some("ticket SUP-77"));
        assert_eq!(r.grant.as_deref(), Some("support-pii (grant 31)"));
        assert_eq!(
            (r.decision.as_str(), r.source.as_deref(), r.at),
            ("allow", Some("customer-api"), 1_000)
        );
    }

    #[test]
    fn a_denied_check_has_no_grant() {
        let e = NewEvent::new(Action::AccessCheck, Outcome::Denied, Actor::default())
            .target("user", 7)
            .details(json!({ "permission": "customers:read_pii", "decision": "deny", "grant_id": null, "role": null }))
            .seal(6, 2_000, GENESIS_HASH);
        let r = access_row(&e).unwrap();
        assert_eq!((r.decision.as_str(), r.grant, r.customer_id), ("deny", None, None));
    }

    #[test]
    fn a_reported_access_uses_the_reported_time_and_fields() {
        let e = NewEvent::new(
            Action::DataAccess,
            Outcome::Success,
            Actor {
                user_id: Some(9),
                ..Default::default()
            },
        )
        .target("customer", "C-7")
        .customer("C-7")
        .reason("refund for order 55")
        .details(json!({
            "action": "customer.view",
            "fields": ["address", "phone"],
            "source_system": "support-desk",
            "occurred_at": 900,
        }))
        .seal(7, 3_000, GENESIS_HASH);
        let r = access_row(&e).unwrap();
        assert_eq!((r.employee_id, r.at), (Some(9), 900));
        assert_eq!(r.what, "customer.view: address, phone");
        assert_eq!(
            (r.decision.as_str(), r.source.as_deref(), r.purpose.as_deref()),
            ("reported", Some("support-desk"), Some("refund for order 55"))
        );
    }

    #[test]
    fn other_events_are_not_access() {
        let e = NewEvent::new(Action::SignIn, Outcome::Success, Actor::default()).seal(1, 1, GENESIS_HASH);
        assert_eq!(access_row(&e), None);
        assert_eq!(ReportKind::parse("customer"), Some(ReportKind::Customer));
        assert_eq!(ReportKind::parse("Customer"), None);
        assert_eq!(ReportKind::Denied.as_str(), "denied");
    }
}

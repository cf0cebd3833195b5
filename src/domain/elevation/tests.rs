//! Unit tests of `elevation`.

use super::*;
use crate::domain::roles::{builtin_roles, ENGINEER, SUPPORT_PII};

const NOW: Millis = 1_800_000_000_000;

fn role(key: &str) -> RoleDef {
    builtin_roles().into_iter().find(|r| r.key == key).unwrap()
}

fn approver() -> PermissionSet {
    PermissionSet::of(&[Permission::RequestsApprove, Permission::EmployeesManage])
}

fn pending() -> Request {
    Request {
        requester: 7,
        state: State::Pending,
        requested_at: NOW,
        duration: HOUR,
        starts_at: None,
        approvals: vec![],
        approvals_needed: 1,
        approvers: vec![],
        extends_end: None,
        window: None,
    }
}

static ANY_TICKET: TicketRule = TicketRule { prefixes: Vec::new() };

fn new<'a>(role: &'a RoleDef, justification: &'a str) -> NewRequest<'a> {
    NewRequest {
        role,
        duration: None,
        justification,
        ticket: "SUP-1234",
        starts_at: None,
        ticket_rule: &ANY_TICKET,
        customers: &[],
        extends: None,
    }
}

const WHY: &str = "customer 1042 asks to correct the delivery address";

#[test]
fn new_requests_are_checked() {
    let pii = role(SUPPORT_PII);
    assert_eq!(
        check_new(&new(&pii, WHY), NOW),
        Ok((HOUR, vec![])),
        "one hour by default"
    );
    assert_eq!(
        check_new(&new(&role(ENGINEER), WHY), NOW),
        Err(ElevationError::NotRequestable)
    );
    assert_eq!(
        check_new(&new(&pii, "because"), NOW),
        Err(ElevationError::Justification)
    );
    let mut r = new(&pii, WHY);
    r.duration = Some(8 * HOUR + 1);
    assert_eq!(check_new(&r, NOW), Err(ElevationError::BadDuration("8 hours".into())));
    r.duration = Some(8 * HOUR);
    assert_eq!(check_new(&r, NOW).map(|x| x.0), Ok(8 * HOUR));
    r.duration = Some(MINUTE);
    assert!(check_new(&r, NOW).is_err());
    let mut r = new(&pii, WHY);
    r.ticket = "sup 12";
    assert_eq!(check_new(&r, NOW), Err(ElevationError::Ticket));
    let mut r = new(&pii, WHY);
    r.starts_at = Some(NOW + 8 * 24 * HOUR);
    assert_eq!(check_new(&r, NOW), Err(ElevationError::BadStart));
    r.starts_at = Some(NOW + 24 * HOUR);
    assert!(check_new(&r, NOW).is_ok());
}

#[test]
fn tickets() {
    for ok in ["SUP-1234", "OPS-7", "INC-2026001"] {
        assert!(valid_ticket(ok), "{ok}");
    }
    for bad in ["", "SUP", "SUP-", "sup-1", "SUP-12a", "S-1", "SUP-1-2"] {
        assert!(!valid_ticket(bad), "{bad}");
    }
}

#[test]
fn approval_starts_the_clock_and_self_approval_is_refused() {
    let r = pending();
    assert_eq!(
        apply(
            &r,
            Transition::Approve {
                by: 7,
                by_perms: approver()
            },
            NOW + 10
        ),
        Err(ElevationError::OwnRequest)
    );
    let auditor = PermissionSet::of(&[Permission::RequestsApprove, Permission::AuditRead]);
    assert_eq!(
        apply(
            &r,
            Transition::Approve {
                by: 2,
                by_perms: auditor
            },
            NOW
        ),
        Err(ElevationError::NotAnApprover)
    );
    assert_eq!(
        apply(
            &r,
            Transition::Approve {
                by: 2,
                by_perms: PermissionSet::EMPTY
            },
            NOW
        ),
        Err(ElevationError::NotAnApprover)
    );
    let next = apply(
        &r,
        Transition::Approve {
            by: 2,
            by_perms: approver(),
        },
        NOW + 10 * MINUTE,
    )
    .unwrap();
    assert_eq!(next.state, State::Approved);
    assert_eq!(
        next.grant_window,
        Some((NOW + 10 * MINUTE, NOW + 10 * MINUTE + HOUR)),
        "from approval, not request"
    );
    // A chosen start keeps it.
    let mut later = pending();
    later.starts_at = Some(NOW + 5 * HOUR);
    let next = apply(
        &later,
        Transition::Approve {
            by: 2,
            by_perms: approver(),
        },
        NOW,
    )
    .unwrap();
    assert_eq!(next.grant_window, Some((NOW + 5 * HOUR, NOW + 6 * HOUR)));
}

#[test]
fn two_approvals_when_the_policy_says_so() {
    let mut r = pending();
    r.approvals_needed = 2;
    let first = apply(
        &r,
        Transition::Approve {
            by: 2,
            by_perms: approver(),
        },
        NOW,
    )
    .unwrap();
    assert_eq!((first.state, first.grant_window), (State::Pending, None));
    r.approvals = first.approvals;
    assert_eq!(
        apply(
            &r,
            Transition::Approve {
                by: 2,
                by_perms: approver()
            },
            NOW
        ),
        Err(ElevationError::AlreadyApproved)
    );
    let second = apply(
        &r,
        Transition::Approve {
            by: 3,
            by_perms: approver(),
        },
        NOW,
    )
    .unwrap();
    assert_eq!(second.state, State::Approved);
    assert_eq!(second.approvals, [2, 3]);
}

#[test]
fn pending_requests_lapse_after_a_day() {
    let r = pending();
    assert_eq!(effective_state(&r, NOW + LAPSE_AFTER - 1), State::Pending);
    assert_eq!(effective_state(&r, NOW + LAPSE_AFTER), State::Lapsed);
    assert_eq!(
        apply(
            &r,
            Transition::Approve {
                by: 2,
                by_perms: approver()
            },
            NOW + LAPSE_AFTER
        ),
        Err(ElevationError::InvalidTransition("lapsed"))
    );
    assert_eq!(
        apply(&r, Transition::Lapse, NOW + LAPSE_AFTER).unwrap().state,
        State::Lapsed
    );
    assert!(apply(&r, Transition::Lapse, NOW).is_err());
}

#[test]
fn approved_access_expires_at_the_exact_instant() {
    let mut r = pending();
    r.state = State::Approved;
    r.window = Some((NOW, NOW + HOUR));
    assert_eq!(effective_state(&r, NOW + HOUR - 1), State::Approved);
    assert_eq!(effective_state(&r, NOW + HOUR), State::Expired);
    assert!(apply(&r, Transition::Expire, NOW + HOUR - 1).is_err());
    assert_eq!(apply(&r, Transition::Expire, NOW + HOUR).unwrap().state, State::Expired);
    assert_eq!(
        apply(
            &r,
            Transition::Revoke {
                by: 2,
                by_perms: approver(),
                reason: "done".into()
            },
            NOW + HOUR
        ),
        Err(ElevationError::InvalidTransition("expired"))
    );
}

#[test]
fn deny_cancel_and_revoke() {
    let r = pending();
    assert_eq!(
        apply(
            &r,
            Transition::Deny {
                by: 2,
                by_perms: approver(),
                reason: " ".into()
            },
            NOW
        ),
        Err(ElevationError::Reason)
    );
    assert_eq!(
        apply(
            &r,
            Transition::Deny {
                by: 2,
                by_perms: approver(),
                reason: "use the redacted view".into()
            },
            NOW
        )
        .unwrap()
        .state,
        State::Denied
    );
    assert_eq!(
        apply(&r, Transition::Cancel { by: 2 }, NOW),
        Err(ElevationError::InvalidTransition("pending")),
        "only the requester cancels"
    );
    assert_eq!(
        apply(&r, Transition::Cancel { by: 7 }, NOW).unwrap().state,
        State::Cancelled
    );
    let mut active = pending();
    active.state = State::Approved;
    active.window = Some((NOW - 1, NOW + HOUR));
    assert!(
        apply(&active, Transition::Cancel { by: 7 }, NOW).is_err(),
        "started: revoke, not cancel"
    );
    assert_eq!(
        apply(
            &active,
            Transition::Revoke {
                by: 2,
                by_perms: approver(),
                reason: "ticket closed".into()
            },
            NOW
        )
        .unwrap()
        .state,
        State::Revoked
    );
    let mut denied = pending();
    denied.state = State::Denied;
    for t in [
        Transition::Approve {
            by: 2,
            by_perms: approver(),
        },
        Transition::Cancel { by: 7 },
        Transition::Expire,
        Transition::Lapse,
    ] {
        assert_eq!(apply(&denied, t, NOW), Err(ElevationError::InvalidTransition("denied")));
    }
}

#[test]
fn ticket_format_is_configurable() {
    let rule = TicketRule::parse("SUP, INC ,SUP").unwrap();
    assert_eq!(rule.prefixes, ["SUP", "INC"]);
    assert!(rule.accepts("SUP-1") && rule.accepts("INC-2026001"));
    assert!(!rule.accepts("OPS-7"), "a prefix not on the list");
    assert_eq!(rule.example(), "SUP-1234 or INC-1234");
    assert!(TicketRule::parse("sup").is_err());
    assert!(TicketRule::parse("S").is_err());
    assert_eq!(TicketRule::parse("").unwrap(), TicketRule::default());
    let pii = role(SUPPORT_PII);
    let mut r = new(&pii, WHY);
    r.ticket_rule = &rule;
    r.ticket = "OPS-7";
    assert_eq!(
        check_new(&r, NOW),
        Err(ElevationError::TicketFormat("SUP-1234 or INC-1234".into()))
    );
    r.ticket = "INC-7";
    assert!(check_new(&r, NOW).is_ok());
}

#[test]
fn customer_scope_is_checked_and_normalised() {
    let pii = role(SUPPORT_PII);
    let list: Vec<String> = vec![" 1042 ".into(), "1042".into(), "".into(), "cust-9".into()];
    let mut r = new(&pii, WHY);
    r.customers = &list;
    assert_eq!(
        check_new(&r, NOW),
        Ok((HOUR, vec!["1042".to_string(), "cust-9".to_string()]))
    );
    let too_many: Vec<String> = (0..21).map(|i| i.to_string()).collect();
    r.customers = &too_many;
    assert_eq!(check_new(&r, NOW), Err(ElevationError::Customers));
    let control = vec!["10\n42".to_string()];
    r.customers = &control;
    assert_eq!(check_new(&r, NOW), Err(ElevationError::Customers));
    let long = vec!["x".repeat(129)];
    r.customers = &long;
    assert_eq!(check_new(&r, NOW), Err(ElevationError::Customers));
    let prod = role(crate::domain::roles::PROD_DB_WRITE);
    let one = vec!["1042".to_string()];
    let mut r = new(&prod, WHY);
    r.customers = &one;
    assert_eq!(
        check_new(&r, NOW),
        Err(ElevationError::ScopeNotApplicable),
        "production access has no customer to limit to"
    );
}

fn active(requester: i64) -> ExtendTarget {
    let mut req = pending();
    req.requester = requester;
    req.state = State::Approved;
    req.window = Some((NOW - 30 * MINUTE, NOW + 30 * MINUTE));
    ExtendTarget {
        kind: Kind::Request,
        role: SUPPORT_PII.into(),
        request: req,
        already_extended: false,
    }
}

#[test]
fn an_active_elevation_is_extended_once_through_approval() {
    let pii = role(SUPPORT_PII);
    let target = active(7);
    let mut r = new(&pii, WHY);
    r.extends = Some((&target, 7));
    assert!(check_new(&r, NOW).is_ok());
    r.extends = Some((&target, 8));
    assert_eq!(
        check_new(&r, NOW),
        Err(ElevationError::NotExtendable),
        "someone else's elevation"
    );
    let extended = ExtendTarget {
        already_extended: true,
        ..active(7)
    };
    r.extends = Some((&extended, 7));
    assert_eq!(check_new(&r, NOW), Err(ElevationError::NotExtendable), "only once");
    r.extends = Some((&target, 7));
    assert_eq!(
        check_new(&r, NOW + 30 * MINUTE),
        Err(ElevationError::NotExtendable),
        "ended at its instant"
    );
    let glass = ExtendTarget {
        kind: Kind::Breakglass,
        ..active(7)
    };
    r.extends = Some((&glass, 7));
    assert_eq!(check_new(&r, NOW), Err(ElevationError::NotExtendable));
    let other_role = ExtendTarget {
        role: "prod-db-write".into(),
        ..active(7)
    };
    r.extends = Some((&other_role, 7));
    assert_eq!(check_new(&r, NOW), Err(ElevationError::NotExtendable));
    r.extends = Some((&target, 7));
    r.starts_at = Some(NOW + HOUR);
    assert_eq!(check_new(&r, NOW), Err(ElevationError::ExtensionStart));

    // Approved in time: it follows on without a gap. Approved late: from approval.
    let mut ext = pending();
    ext.extends_end = Some(NOW + 30 * MINUTE);
    let next = apply(
        &ext,
        Transition::Approve {
            by: 2,
            by_perms: approver(),
        },
        NOW,
    )
    .unwrap();
    assert_eq!(next.grant_window, Some((NOW + 30 * MINUTE, NOW + 90 * MINUTE)));
    let next = apply(
        &ext,
        Transition::Approve {
            by: 2,
            by_perms: approver(),
        },
        NOW + HOUR,
    )
    .unwrap();
    assert_eq!(next.grant_window, Some((NOW + HOUR, NOW + 2 * HOUR)));
}

#[test]
fn named_approvers_replace_the_permission() {
    let mut r = pending();
    r.approvers = vec![5, 6];
    r.approvals_needed = 2;
    let plain = PermissionSet::EMPTY;
    assert_eq!(
        apply(
            &r,
            Transition::Approve {
                by: 2,
                by_perms: approver()
            },
            NOW
        ),
        Err(ElevationError::NotAnApprover),
        "an administrator not on the list"
    );
    let first = apply(&r, Transition::Approve { by: 5, by_perms: plain }, NOW).unwrap();
    assert_eq!(first.state, State::Pending, "two approvals needed");
    r.approvals = first.approvals;
    let auditor = PermissionSet::of(&[Permission::AuditRead]);
    assert_eq!(
        apply(
            &r,
            Transition::Approve {
                by: 6,
                by_perms: auditor
            },
            NOW
        ),
        Err(ElevationError::NotAnApprover),
        "never an auditor"
    );
    assert_eq!(
        apply(&r, Transition::Approve { by: 6, by_perms: plain }, NOW)
            .unwrap()
            .state,
        State::Approved
    );
    r.requester = 5;
    r.approvals = vec![];
    assert_eq!(
        apply(&r, Transition::Approve { by: 5, by_perms: plain }, NOW),
        Err(ElevationError::OwnRequest),
        "named, but the requester"
    );
    assert_eq!(
        apply(
            &r,
            Transition::Deny {
                by: 6,
                by_perms: plain,
                reason: "not needed".into()
            },
            NOW
        )
        .unwrap()
        .state,
        State::Denied
    );
}

#[test]
fn policies_are_checked() {
    assert_eq!(
        check_policy(&Policy {
            approvals_needed: 2,
            approvers: vec![]
        }),
        Ok(Policy {
            approvals_needed: 2,
            approvers: vec![]
        })
    );
    assert_eq!(
        check_policy(&Policy {
            approvals_needed: 1,
            approvers: vec![4, 3, 4]
        })
        .unwrap()
        .approvers,
        [3, 4]
    );
    for bad in [
        Policy {
            approvals_needed: 0,
            approvers: vec![],
        },
        Policy {
            approvals_needed: 3,
            approvers: vec![],
        },
        Policy {
            approvals_needed: 2,
            approvers: vec![3],
        },
        Policy {
            approvals_needed: 1,
            approvers: vec![0],
        },
        Policy {
            approvals_needed: 1,
            approvers: (1..=21).collect(),
        },
    ] {
        assert_eq!(check_policy(&bad), Err(ElevationError::BadPolicy), "{bad:?}");
    }
}

#[test]
fn break_glass_is_for_engineers_for_at_most_an_hour() {
    assert_eq!(check_breakglass("engineering", None, WHY), Ok(HOUR));
    assert_eq!(check_breakglass("engineering", Some(20 * MINUTE), WHY), Ok(20 * MINUTE));
    assert_eq!(
        check_breakglass("engineering", Some(HOUR + 1), WHY),
        Err(ElevationError::BreakglassDuration)
    );
    assert_eq!(
        check_breakglass("engineering", Some(MINUTE), WHY),
        Err(ElevationError::BreakglassDuration)
    );
    assert_eq!(
        check_breakglass("support", None, WHY),
        Err(ElevationError::NotAnEngineer)
    );
    assert_eq!(
        check_breakglass("engineering", None, "prod down"),
        Err(ElevationError::Justification)
    );
}

#[test]
fn break_glass_is_reviewed_once_by_someone_else() {
    let note = "root cause: expired TLS certificate; access used for 12 minutes";
    assert_eq!(check_review(Kind::Breakglass, 7, 2, false, note), Ok(()));
    assert_eq!(
        check_review(Kind::Breakglass, 7, 7, false, note),
        Err(ElevationError::OwnReview)
    );
    assert_eq!(
        check_review(Kind::Breakglass, 7, 2, true, note),
        Err(ElevationError::NotReviewable)
    );
    assert_eq!(
        check_review(Kind::Request, 7, 2, false, note),
        Err(ElevationError::NotReviewable)
    );
    assert_eq!(
        check_review(Kind::Breakglass, 7, 2, false, "ok"),
        Err(ElevationError::ReviewNote)
    );
}

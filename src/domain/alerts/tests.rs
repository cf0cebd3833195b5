use super::*;
use crate::domain::audit::{Actor, NewEvent, GENESIS_HASH};
use serde_json::json;

/// 2026-01-01 00:00 UTC.
const MIDNIGHT: Millis = 1_767_225_600_000;

fn check(outcome: Outcome, permission: &str, role: Option<&str>, at: Millis) -> Event {
    NewEvent::new(Action::AccessCheck, outcome, Actor::default())
        .target("user", 7)
        .customer("C-1")
        .details(json!({ "permission": permission, "role": role }))
        .seal(3, at, GENESIS_HASH)
}

fn rules(alerts: &[Alert]) -> Vec<Rule> {
    alerts.iter().map(|a| a.rule).collect()
}

#[test]
fn company_hours_follow_the_offset() {
    let t = Thresholds::default();
    assert!(
        after_hours(MIDNIGHT + 19 * HOUR + 59 * MINUTE + 7 * HOUR, &t),
        "02:59 is night"
    );
    assert!(!after_hours(MIDNIGHT + 7 * HOUR, &t), "07:00 is day");
    assert!(!after_hours(MIDNIGHT + 19 * HOUR + 59 * MINUTE, &t));
    assert!(after_hours(MIDNIGHT + 20 * HOUR, &t), "20:00 is night");
    // Berlin in winter: 19:30 UTC is 20:30 there.
    let berlin = Thresholds {
        utc_offset_minutes: 60,
        ..t.clone()
    };
    assert!(after_hours(MIDNIGHT + 19 * HOUR + 30 * MINUTE, &berlin));
    assert!(!after_hours(MIDNIGHT + 6 * HOUR + 30 * MINUTE, &berlin));
    // A night that does not cross midnight.
    let early = Thresholds {
        night_from: 1,
        night_until: 5,
        ..t
    };
    assert!(after_hours(MIDNIGHT + 2 * HOUR, &early) && !after_hours(MIDNIGHT + 23 * HOUR, &early));
}

#[test]
fn after_hours_access_and_daytime_access() {
    let t = Thresholds::default();
    assert_eq!(
        rules(&evaluate(
            &check(
                Outcome::Success,
                "customers:read",
                Some("support"),
                MIDNIGHT + 22 * HOUR
            ),
            Counts::default(),
            &t
        )),
        vec![Rule::AfterHours]
    );
    assert!(evaluate(
        &check(
            Outcome::Success,
            "customers:read",
            Some("support"),
            MIDNIGHT + 10 * HOUR
        ),
        Counts::default(),
        &t
    )
    .is_empty());
    // A reported access is judged by when it happened.
    let reported = NewEvent::new(
        Action::DataAccess,
        Outcome::Success,
        Actor {
            user_id: Some(7),
            ..Default::default()
        },
    )
    .customer("C-2")
    .details(json!({ "occurred_at": MIDNIGHT + 23 * HOUR }))
    .seal(4, MIDNIGHT + 31 * HOUR, GENESIS_HASH);
    let a = evaluate(&reported, Counts::default(), &t);
    assert_eq!((rules(&a), a[0].employee_id), (vec![Rule::AfterHours], Some(7)));
}

#[test]
fn many_customers_alerts_once_on_crossing() {
    let t = Thresholds {
        customers_per_hour: 3,
        ..Thresholds::default()
    };
    let e = check(
        Outcome::Success,
        "customers:read",
        Some("support"),
        MIDNIGHT + 10 * HOUR,
    );
    let at = |n: u32, new: bool| {
        rules(&evaluate(
            &e,
            Counts {
                distinct_customers: n,
                customer_is_new: new,
                failed_signins: 0,
            },
            &t,
        ))
    };
    assert_eq!(at(3, true), vec![]);
    assert_eq!(at(4, true), vec![Rule::ManyCustomers]);
    assert_eq!(at(4, false), vec![], "the same customer again");
    assert_eq!(at(5, true), vec![], "already raised");
}

#[test]
fn denied_pii_checks_alert_other_denials_do_not() {
    let t = Thresholds::default();
    let a = evaluate(
        &check(Outcome::Denied, "customers:read_pii", None, MIDNIGHT + 10 * HOUR),
        Counts::default(),
        &t,
    );
    assert_eq!((rules(&a), a[0].employee_id), (vec![Rule::PiiDenied], Some(7)));
    assert!(evaluate(
        &check(Outcome::Denied, "prod_db:write", None, MIDNIGHT + 10 * HOUR),
        Counts::default(),
        &t
    )
    .is_empty());
    // A denied check is not an access: no after-hours alert for it.
    assert_eq!(
        rules(&evaluate(
            &check(Outcome::Denied, "customers:read_pii", None, MIDNIGHT + 22 * HOUR),
            Counts::default(),
            &t
        )),
        vec![Rule::PiiDenied]
    );
}

#[test]
fn failed_sign_ins_alert_at_the_threshold() {
    let t = Thresholds::default();
    let e = NewEvent::new(Action::SignIn, Outcome::Failure, Actor::default())
        .target("user", 9)
        .reason("wrong password")
        .seal(2, 1, GENESIS_HASH);
    let with = |n| {
        rules(&evaluate(
            &e,
            Counts {
                failed_signins: n,
                ..Counts::default()
            },
            &t,
        ))
    };
    assert_eq!(with(4), vec![]);
    assert_eq!(with(5), vec![Rule::FailedSignIns]);
    assert_eq!(with(6), vec![]);
    let unknown = NewEvent::new(Action::SignIn, Outcome::Failure, Actor::default())
        .target("email", "x@y")
        .seal(2, 1, GENESIS_HASH);
    assert_eq!(failed_signin(&unknown), None);
}

#[test]
fn breakglass_grant_or_use_alerts() {
    let t = Thresholds::default();
    let used = check(
        Outcome::Success,
        "prod_db:write",
        Some("breakglass"),
        MIDNIGHT + 10 * HOUR,
    );
    assert!(rules(&evaluate(&used, Counts::default(), &t)).contains(&Rule::Breakglass));
    let granted = NewEvent::new(Action::GrantCreated, Outcome::Success, Actor::default())
        .target("user", 4)
        .details(json!({ "role": "breakglass", "after": { "roles": ["breakglass"] } }))
        .seal(5, 1, GENESIS_HASH);
    let a = evaluate(&granted, Counts::default(), &t);
    assert_eq!((rules(&a), a[0].employee_id), (vec![Rule::Breakglass], Some(4)));
    let other = NewEvent::new(Action::GrantCreated, Outcome::Success, Actor::default())
        .details(json!({ "role": "support" }))
        .seal(5, 1, GENESIS_HASH);
    assert!(evaluate(&other, Counts::default(), &t).is_empty());
    assert_eq!(Rule::parse("breakglass"), Some(Rule::Breakglass));
}

#[test]
fn an_unconfirmed_database_revocation_alerts_and_names_the_employee() {
    let t = Thresholds::default();
    let e = NewEvent::new(Action::DbRevocationUnconfirmed, Outcome::Failure, Actor::default())
        .target("user", 9)
        .details(json!({ "account": "gh_9", "target": "prod" }))
        .seal(6, 1, GENESIS_HASH);
    let a = evaluate(&e, Counts::default(), &t);
    assert_eq!((rules(&a), a[0].employee_id), (vec![Rule::DbRevocation], Some(9)));
    assert!(a[0].summary.contains("gh_9 on prod"), "{}", a[0].summary);
    let receipt = NewEvent::new(Action::DbRevocationReceipt, Outcome::Success, Actor::default())
        .target("user", 9)
        .seal(7, 1, GENESIS_HASH);
    assert!(evaluate(&receipt, Counts::default(), &t).is_empty());
    assert_eq!(closes(&receipt), None, "an ordinary receipt closes nothing");
    let confirming = NewEvent::new(Action::DbRevocationReceipt, Outcome::Success, Actor::default())
        .target("user", 9)
        .details(json!({ "closes_alert": true }))
        .seal(7, 1, GENESIS_HASH);
    assert_eq!(closes(&confirming), Some((Rule::DbRevocation, 9)));
    let unconfirmed = NewEvent::new(Action::DbRevocationUnconfirmed, Outcome::Failure, Actor::default())
        .target("user", 9)
        .details(json!({ "closes_alert": true }))
        .seal(7, 1, GENESIS_HASH);
    assert_eq!(closes(&unconfirmed), None, "only a receipt closes");
    let drift = NewEvent::new(Action::DbDriftFound, Outcome::Failure, Actor::default())
        .details(json!({ "target": "prod", "findings": [{}, {}] }))
        .seal(8, 1, GENESIS_HASH);
    let a = evaluate(&drift, Counts::default(), &t);
    assert_eq!(rules(&a), vec![Rule::DbDrift]);
    assert!(
        a[0].summary.starts_with("2 difference(s) on database target prod"),
        "{}",
        a[0].summary
    );
}

#[test]
fn customer_windows_count_distinct_customers_within_the_hour() {
    let mut w = CustomerWindows::new(0);
    let t0 = MIDNIGHT;
    assert_eq!(w.observe(7, "C-1", t0), (1, true));
    assert_eq!(w.observe(7, "C-2", t0 + MINUTE), (2, true));
    assert_eq!(w.observe(7, "C-1", t0 + 2 * MINUTE), (2, false), "a repeat is not new");
    assert_eq!(
        w.observe(8, "C-1", t0 + 2 * MINUTE),
        (1, true),
        "each employee has a window of their own"
    );
    // C-2 (last at t0+1min) leaves the window; C-1 was seen at t0+2min.
    assert_eq!(w.observe(7, "C-3", t0 + HOUR + MINUTE + 1), (2, true));
    // C-1's latest access is now an hour old: new again.
    assert_eq!(w.observe(7, "C-1", t0 + HOUR + 2 * MINUTE), (2, true));
    assert_eq!(w.observe(7, "C-1", t0 + HOUR + 2 * MINUTE + 1), (2, false));
}

#[test]
fn customer_windows_tolerate_a_clock_stepping_back_within_the_margin() {
    let mut w = CustomerWindows::new(0);
    let t0 = MIDNIGHT;
    w.observe(7, "C-1", t0);
    w.observe(7, "C-2", t0 + HOUR + MINUTE);
    // Judged at t0+1h+1min, C-1 was out of the window; the clock then
    // steps back two minutes and C-1 is within the hour again.
    assert_eq!(w.observe(7, "C-3", t0 + HOUR - MINUTE), (3, true));
    assert_eq!(w.observe(7, "C-1", t0 + HOUR - MINUTE + 1), (3, false));
}

#[test]
fn customer_windows_forget_quiet_employees_and_track_whole_passes() {
    let mut w = CustomerWindows::new(10);
    assert_eq!(w.through(), Some(10));
    w.begin();
    w.observe(7, "C-1", MIDNIGHT);
    assert_eq!(w.through(), None, "not whole while a pass runs");
    w.finish(11, MIDNIGHT);
    assert_eq!(w.through(), Some(11));
    assert_eq!(w.employees.len(), 1);
    w.finish(11, MIDNIGHT + HOUR + CLOCK_MARGIN + 1);
    assert!(w.employees.is_empty(), "nothing kept once every access left the window");
}

/// The windows give the counts a straight count over all accesses would.
#[test]
fn customer_windows_agree_with_counting_every_access() {
    let mut w = CustomerWindows::new(0);
    let mut seen: Vec<(i64, String, Millis)> = Vec::new();
    let mut x: u64 = 42;
    let mut at = MIDNIGHT;
    for _ in 0..3000 {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        at += (x >> 40) as i64 % 20_000;
        let employee = (x >> 20) as i64 % 3;
        let customer = format!("C-{}", (x >> 8) % 90);
        let since = at - CUSTOMER_WINDOW;
        let mut distinct: Vec<&String> = seen
            .iter()
            .filter(|(e, _, t)| *e == employee && *t > since)
            .map(|(_, c, _)| c)
            .collect();
        let is_new = !distinct.contains(&&customer);
        distinct.push(&customer);
        distinct.sort();
        distinct.dedup();
        let expected = (distinct.len() as u32, is_new);
        assert_eq!(
            w.observe(employee, &customer, at),
            expected,
            "access by {employee} to {customer} at {at}"
        );
        seen.push((employee, customer, at));
    }
}

#[test]
fn an_open_alert_calls_again_only_as_its_count_crosses_a_power_of_ten() {
    assert!(!renotify(1, 9));
    assert!(renotify(9, 10));
    assert!(!renotify(10, 99));
    assert!(renotify(99, 100));
    assert!(renotify(5, 8_000), "several crossings in one pass: one call");
    assert_eq!(webhook_mark(1), 1);
    assert_eq!(webhook_mark(9), 1);
    assert_eq!(webhook_mark(10), 10);
    assert_eq!(
        webhook_mark(99),
        10,
        "a retry after more matches is still the call for 10"
    );
    assert_eq!(webhook_mark(8_000), 1_000);
    assert!(!renotify(1_000, 9_999), "nothing past 1,000");
    assert!(!renotify(7, 7));
}

#[test]
fn a_passkey_counter_going_backwards_raises_an_alert_and_an_ordinary_refusal_does_not() {
    let t = Thresholds::default();
    let clone = NewEvent::new(Action::PasskeyUse, Outcome::Denied, Actor::default())
        .target("user", 4)
        .details(json!({ "passkey_id": 12, "possible_clone": true }))
        .seal(9, 1, GENESIS_HASH);
    let a = evaluate(&clone, Counts::default(), &t);
    assert_eq!(rules(&a), vec![Rule::PasskeyClone]);
    assert_eq!(a[0].employee_id, Some(4));
    assert!(a[0].summary.starts_with("passkey 12 presented"), "{}", a[0].summary);
    let refused = NewEvent::new(Action::PasskeyUse, Outcome::Failure, Actor::default())
        .target("user", 4)
        .details(json!({ "passkey_id": 12 }))
        .seal(10, 1, GENESIS_HASH);
    assert!(evaluate(&refused, Counts::default(), &t).is_empty());
}

//! Unit tests of `grants`.

use super::*;
use crate::domain::{
    permissions::Permission as P,
    roles::{builtin_roles, ADMIN, AUDITOR, BREAKGLASS, ENGINEER, SUPPORT, SUPPORT_PII},
    HOUR, MINUTE,
};

const NOW: Millis = 1_800_000_000_000;

fn grant(id: i64, role: &str) -> Grant {
    Grant {
        id,
        user_id: 7,
        role: role.into(),
        starts_at: NOW - HOUR,
        expires_at: None,
        revoked_at: None,
        pending: false,
        customers: None,
    }
}

fn role(key: &str) -> RoleDef {
    builtin_roles().into_iter().find(|r| r.key == key).unwrap()
}

fn check<'a>(
    role: &'a RoleDef,
    roles: &'a [RoleDef],
    held: &'a [Grant],
    f: impl FnOnce(&mut GrantCheck<'a>),
) -> Result<GrantOutcome, RuleError> {
    let mut c = GrantCheck {
        actor_id: 1,
        grantee_id: 7,
        grantee_name: "Jonas Becker",
        grantee_status: Status::Active,
        grantee_grants: held,
        role,
        roles,
        expires_at: None,
        active_admins: 1,
        now: NOW,
    };
    f(&mut c);
    check_grant(&c)
}

#[test]
fn an_expired_grant_stops_counting_at_its_expiry_instant() {
    let mut g = grant(1, SUPPORT);
    g.expires_at = Some(NOW);
    assert!(g.is_active(NOW - 1));
    assert!(!g.is_active(NOW), "no background job needed");
    let roles = builtin_roles();
    assert!(permission_set(Status::Active, std::slice::from_ref(&g), &roles, NOW - 1).contains(P::OrdersWrite));
    assert!(permission_set(Status::Active, std::slice::from_ref(&g), &roles, NOW).is_empty());
}

#[test]
fn revoked_pending_and_future_grants_do_not_count() {
    let roles = builtin_roles();
    let mut revoked = grant(1, SUPPORT);
    revoked.revoked_at = Some(NOW - 1);
    let mut pending = grant(2, ADMIN);
    pending.pending = true;
    let mut future = grant(3, ENGINEER);
    future.starts_at = NOW + 1;
    assert!(permission_set(Status::Active, &[revoked, pending, future], &roles, NOW).is_empty());
}

#[test]
fn effective_permissions_name_their_sources() {
    let roles = builtin_roles();
    let mut pii = grant(2, SUPPORT_PII);
    pii.expires_at = Some(NOW + HOUR);
    let eff = effective(Status::Active, &[pii, grant(1, SUPPORT)], &roles, NOW);
    let read = eff.iter().find(|(p, _)| *p == P::CustomersRead).unwrap();
    assert_eq!(read.1.iter().map(|s| s.grant_id).collect::<Vec<_>>(), [1, 2]);
    let pii = eff.iter().find(|(p, _)| *p == P::CustomersReadPii).unwrap();
    assert_eq!(pii.1[0].expires_at, Some(NOW + HOUR));
    assert_eq!(pii.1[0].role_name, "Support with customer PII");
    assert!(!eff.iter().any(|(p, _)| *p == P::ProdDbWrite));
}

#[test]
fn suspended_and_offboarded_employees_have_no_permissions() {
    let roles = builtin_roles();
    for s in [Status::Suspended, Status::Offboarded, Status::Invited] {
        assert!(permission_set(s, &[grant(1, ADMIN)], &roles, NOW).is_empty());
        assert!(effective(s, &[grant(1, ADMIN)], &roles, NOW).is_empty());
    }
}

#[test]
fn nobody_grants_to_themselves() {
    let roles = builtin_roles();
    let r = role(SUPPORT);
    assert_eq!(check(&r, &roles, &[], |c| c.actor_id = 7), Err(RuleError::OwnAccess));
    assert_eq!(check(&r, &roles, &[], |_| {}), Ok(GrantOutcome::Active));
}

#[test]
fn nothing_is_granted_to_suspended_or_offboarded_employees() {
    let roles = builtin_roles();
    let r = role(SUPPORT);
    assert_eq!(
        check(&r, &roles, &[], |c| c.grantee_status = Status::Suspended),
        Err(RuleError::NotGrantable("suspended"))
    );
    assert_eq!(
        check(&r, &roles, &[], |c| c.grantee_status = Status::Offboarded),
        Err(RuleError::NotGrantable("offboarded"))
    );
    assert_eq!(
        check(&r, &roles, &[], |c| c.grantee_status = Status::Invited),
        Ok(GrantOutcome::Active)
    );
}

#[test]
fn admin_and_auditor_are_exclusive() {
    let roles = builtin_roles();
    let auditor = role(AUDITOR);
    let admin = role(ADMIN);
    assert_eq!(
        check(&auditor, &roles, &[grant(1, ADMIN)], |_| {}),
        Err(RuleError::SeparationOfDuties)
    );
    assert_eq!(
        check(&admin, &roles, &[grant(1, AUDITOR)], |_| {}),
        Err(RuleError::SeparationOfDuties)
    );
    // A pending admin grant counts too: it could be approved later.
    let mut pending = grant(1, ADMIN);
    pending.pending = true;
    assert_eq!(
        check(&auditor, &roles, &[pending], |_| {}),
        Err(RuleError::SeparationOfDuties)
    );
    // An ended one does not.
    let mut ended = grant(1, ADMIN);
    ended.revoked_at = Some(NOW - 1);
    assert_eq!(check(&auditor, &roles, &[ended], |_| {}), Ok(GrantOutcome::Active));
}

#[test]
fn time_boxed_roles_need_an_expiry_within_their_maximum() {
    let roles = builtin_roles();
    let bg = role(BREAKGLASS);
    assert!(matches!(check(&bg, &roles, &[], |_| {}), Err(RuleError::ExpiryRequired(_, d)) if d == "2 hours"));
    assert!(matches!(
        check(&bg, &roles, &[], |c| c.expires_at = Some(NOW + 2 * HOUR + 1)),
        Err(RuleError::TooLong(..))
    ));
    assert_eq!(
        check(&bg, &roles, &[], |c| c.expires_at = Some(NOW + 2 * HOUR)),
        Ok(GrantOutcome::Active)
    );
    assert_eq!(
        check(&bg, &roles, &[], |c| c.expires_at = Some(NOW)),
        Err(RuleError::ExpiryInPast)
    );
    // Standing roles may have an expiry too.
    assert_eq!(
        check(&role(SUPPORT), &roles, &[], |c| c.expires_at = Some(NOW + 30 * MINUTE)),
        Ok(GrantOutcome::Active)
    );
}

#[test]
fn a_role_is_held_once() {
    let roles = builtin_roles();
    assert!(matches!(
        check(&role(SUPPORT), &roles, &[grant(1, SUPPORT)], |_| {}),
        Err(RuleError::AlreadyHeld(_))
    ));
}

#[test]
fn granting_admin_needs_a_second_admin_once_two_exist() {
    let roles = builtin_roles();
    let admin = role(ADMIN);
    assert_eq!(
        check(&admin, &roles, &[], |c| c.active_admins = 1),
        Ok(GrantOutcome::Active)
    );
    assert_eq!(
        check(&admin, &roles, &[], |c| c.active_admins = 2),
        Ok(GrantOutcome::NeedsSecondAdmin)
    );
    let mut pending = grant(5, ADMIN);
    pending.pending = true;
    assert_eq!(check_approval(1, Some(1), &pending, NOW), Err(RuleError::SameApprover));
    assert_eq!(check_approval(7, Some(1), &pending, NOW), Err(RuleError::OwnAccess));
    assert_eq!(check_approval(2, Some(1), &pending, NOW), Ok(()));
    assert_eq!(
        check_approval(2, Some(1), &grant(5, ADMIN), NOW),
        Err(RuleError::NotPending)
    );
}

/// Administrator power is a matter of permissions: a custom role carrying
/// `employees:manage` or `access:grant` waits for a second administrator
/// like `admin` does, and so does any `audit:*` permission (no puppet
/// auditors).
#[test]
fn four_eyes_follow_permissions_not_role_names() {
    let custom = |key: &str, perms: &[P]| RoleDef {
        key: key.into(),
        name: key.into(),
        description: String::new(),
        permissions: crate::domain::permissions::PermissionSet::of(perms),
        max_duration: None,
        requestable: false,
        builtin: false,
    };
    let roles = builtin_roles();
    for r in [
        custom("people-ops", &[P::EmployeesManage]),
        custom("grant-desk", &[P::AccessGrant]),
        custom("trail-reader", &[P::AuditRead]),
        role(AUDITOR),
    ] {
        assert_eq!(
            check(&r, &roles, &[], |c| c.active_admins = 2),
            Ok(GrantOutcome::NeedsSecondAdmin),
            "{}",
            r.key
        );
        assert_eq!(
            check(&r, &roles, &[], |c| c.active_admins = 1),
            Ok(GrantOutcome::Active),
            "{}",
            r.key
        );
    }
    for key in [SUPPORT, ENGINEER] {
        assert_eq!(
            check(&role(key), &roles, &[], |c| c.active_admins = 2),
            Ok(GrantOutcome::Active),
            "{key}"
        );
    }
}

#[test]
fn the_last_admin_stays() {
    let g = grant(1, ADMIN);
    assert_eq!(check_revoke(2, &g, true, 1, NOW), Err(RuleError::LastAdmin));
    assert_eq!(check_revoke(2, &g, true, 2, NOW), Ok(()));
    assert_eq!(check_revoke(7, &g, true, 2, NOW), Err(RuleError::OwnAccess));
    // Holding the power through another grant too, the last one may lose this one.
    assert_eq!(check_revoke(2, &g, false, 1, NOW), Ok(()));
    assert_eq!(check_deactivate(2, 7, true, 1), Err(RuleError::LastAdmin));
    assert_eq!(check_deactivate(2, 7, true, 2), Ok(()));
    assert_eq!(check_deactivate(2, 7, false, 1), Ok(()));
    assert_eq!(check_deactivate(7, 7, false, 3), Err(RuleError::OwnAccess));
    let mut ended = grant(1, SUPPORT);
    ended.revoked_at = Some(NOW - 1);
    assert_eq!(check_revoke(2, &ended, false, 2, NOW), Err(RuleError::AlreadyEnded));
}

#[test]
fn durations_parse() {
    assert_eq!(parse_duration(""), Ok(None));
    assert_eq!(parse_duration("30m"), Ok(Some(30 * MINUTE)));
    assert_eq!(parse_duration(" 8h "), Ok(Some(8 * HOUR)));
    assert_eq!(parse_duration("14d"), Ok(Some(14 * 24 * HOUR)));
    for bad in ["8", "h", "-1h", "0m", "1.5h", "8 hours", "99999d", "1y"] {
        assert_eq!(parse_duration(bad), Err(RuleError::BadDuration), "{bad}");
    }
}

#[test]
fn reasons_and_durations_read_well() {
    assert_eq!(check_reason("  "), Err(RuleError::ReasonRequired));
    assert_eq!(check_reason(&"x".repeat(1001)), Err(RuleError::ReasonRequired));
    assert_eq!(check_reason(" ticket 42 "), Ok("ticket 42".into()));
    assert_eq!(describe_duration(8 * HOUR), "8 hours");
    assert_eq!(describe_duration(90 * 24 * HOUR), "90 days");
    assert_eq!(describe_duration(90 * MINUTE), "90 minutes");
    assert_eq!(describe_duration(HOUR), "1 hour");
}

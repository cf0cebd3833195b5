use super::*;

/// 2026-11-30T10:00:00Z.
const NOW: Millis = 1_796_032_800_000;

fn grant(role: &str, critical: bool) -> GrantFacts {
    GrantFacts {
        role: role.into(),
        critical,
        department: "Support".into(),
        starts_at: NOW - 30 * DAY,
        expires_at: None,
        revoked: false,
        pending: false,
    }
}

#[test]
fn scopes_are_stored_and_read_back_and_pick_their_grants() {
    for s in [
        Scope::AllStanding,
        Scope::Roles(vec!["support".into(), "support-pii".into()]),
        Scope::Critical,
        Scope::Department("support".into()),
        Scope::ServiceTokens,
    ] {
        assert_eq!(Scope::parse(&s.to_stored()), Some(s.clone()), "{s:?}");
    }
    assert_eq!(Scope::parse("roles:"), None);
    assert_eq!(Scope::parse("department: "), None);
    assert_eq!(Scope::parse("everything"), None);

    let support = grant("support", false);
    let pii = grant("support-pii", true);
    assert!(Scope::AllStanding.takes(&support) && Scope::AllStanding.takes(&pii));
    assert!(!Scope::Critical.takes(&support) && Scope::Critical.takes(&pii));
    let roles = Scope::Roles(vec!["support-pii".into()]);
    assert!(!roles.takes(&support) && roles.takes(&pii));
    assert!(
        Scope::Department("support".into()).takes(&support),
        "departments match without case"
    );
    assert!(!Scope::Department("sales".into()).takes(&support));
    assert!(!Scope::ServiceTokens.takes(&support), "tokens are not grants");
}

#[test]
fn only_access_in_force_that_outlives_the_deadline_is_standing() {
    let due = NOW + 14 * DAY;
    let g = grant("support", false);
    assert!(is_standing(&g, NOW, due));
    assert!(is_standing(
        &GrantFacts {
            expires_at: Some(due + 1),
            ..g.clone()
        },
        NOW,
        due
    ));
    assert!(
        !is_standing(
            &GrantFacts {
                expires_at: Some(due),
                ..g.clone()
            },
            NOW,
            due
        ),
        "ends by itself by the deadline"
    );
    assert!(!is_standing(
        &GrantFacts {
            revoked: true,
            ..g.clone()
        },
        NOW,
        due
    ));
    assert!(!is_standing(
        &GrantFacts {
            pending: true,
            ..g.clone()
        },
        NOW,
        due
    ));
    assert!(
        !is_standing(
            &GrantFacts {
                starts_at: NOW + 1,
                ..g
            },
            NOW,
            due
        ),
        "not started"
    );
}

fn campaign() -> NewCampaign {
    NewCampaign {
        name: "Q4 2026 access review".into(),
        scope: Scope::AllStanding,
        starts_at: NOW,
        due_at: NOW + 14 * DAY,
        rule: DeadlineRule::default(),
        every_months: Some(3),
    }
}

#[test]
fn campaigns_need_a_name_a_deadline_within_90_days_and_a_sane_recurrence() {
    assert_eq!(check_campaign(&campaign()), Ok(()));
    assert_eq!(
        check_campaign(&NewCampaign {
            name: " ".into(),
            ..campaign()
        }),
        Err(CampaignError::Name)
    );
    assert_eq!(
        check_campaign(&NewCampaign {
            due_at: NOW + DAY - 1,
            ..campaign()
        }),
        Err(CampaignError::Due)
    );
    assert_eq!(
        check_campaign(&NewCampaign {
            due_at: NOW + DAY,
            ..campaign()
        }),
        Ok(())
    );
    assert_eq!(
        check_campaign(&NewCampaign {
            due_at: NOW + 91 * DAY,
            ..campaign()
        }),
        Err(CampaignError::Due)
    );
    assert_eq!(
        check_campaign(&NewCampaign {
            every_months: Some(0),
            ..campaign()
        }),
        Err(CampaignError::Recurrence)
    );
    assert_eq!(
        check_campaign(&NewCampaign {
            every_months: Some(13),
            ..campaign()
        }),
        Err(CampaignError::Recurrence)
    );
    assert_eq!(
        check_campaign(&NewCampaign {
            scope: Scope::Roles(vec![]),
            ..campaign()
        }),
        Err(CampaignError::NoRoles)
    );
    let d = DeadlineRule::default();
    assert_eq!(
        (d.for_item(true), d.for_item(false)),
        (Undecided::Revoke, Undecided::KeepAndFlag)
    );
    assert_eq!(Undecided::parse("keep_and_flag"), Some(Undecided::KeepAndFlag));
    assert_eq!(Undecided::parse("ignore"), None);
}

#[test]
fn a_recurring_campaign_starts_again_whole_calendar_months_later_and_runs_as_long() {
    // 2026-11-30T10:00Z + 3 months = 2027-02-28T10:00Z (no 30 February).
    let (start, due) = next_run(NOW, NOW + 14 * DAY, 3);
    assert_eq!(start, 1_803_808_800_000);
    assert_eq!(due - start, 14 * DAY);
    // 2027-01-31 + 1 month = 2027-02-28; 2028-01-31 + 1 month = 2028-02-29 (leap year).
    let jan31_2027 = 1_801_389_600_000;
    assert_eq!(add_months(jan31_2027, 1), jan31_2027 + 28 * DAY);
    let jan31_2028 = jan31_2027 + 365 * DAY;
    assert_eq!(add_months(jan31_2028, 1), jan31_2028 + 29 * DAY);
    // Twelve months is a calendar year; before 1970 works too.
    assert_eq!(add_months(NOW, 12), NOW + 365 * DAY);
    assert_eq!(add_months(-DAY, 1), 30 * DAY, "1969-12-31 + 1 month = 1970-01-31");
}

#[test]
fn owners_review_then_administrators_and_never_the_holder() {
    assert_eq!(reviewers(7, &[3, 7], &[1]), Reviewers::People(vec![3]));
    assert_eq!(
        reviewers(7, &[7], &[1, 7]),
        Reviewers::Administrators,
        "the only owner is the holder"
    );
    assert_eq!(reviewers(7, &[], &[1]), Reviewers::Administrators);
    assert_eq!(
        reviewers(1, &[], &[1]),
        Reviewers::NoIndependentReviewer,
        "the only administrator's own access"
    );
    let admins = Reviewers::Administrators;
    assert!(admins.includes(1, true, 7));
    assert!(
        !admins.includes(7, true, 7),
        "an administrator does not review their own item"
    );
    assert!(!admins.includes(2, false, 7), "nor does a non-administrator");
    let owners = Reviewers::People(vec![3]);
    assert!(owners.includes(3, false, 7));
    assert!(
        !owners.includes(1, true, 7),
        "administrators do not take over an owner's item"
    );
    assert!(!Reviewers::NoIndependentReviewer.includes(1, true, 7));
}

fn deciding<'a>(reviewers: &'a Reviewers, decision: Decision, comment: &'a str) -> Deciding<'a> {
    Deciding {
        now: NOW,
        open: true,
        reviewer: 3,
        reviewer_is_administrator: false,
        holder: 7,
        reviewers,
        critical: false,
        current: None,
        decision,
        comment,
    }
}

#[test]
fn decisions_are_checked_self_review_refused_revoke_final_critical_keep_explained() {
    let r = Reviewers::People(vec![3, 7]);
    assert_eq!(check_decision(&deciding(&r, Decision::Keep, "")), Ok(()));
    assert_eq!(check_decision(&deciding(&r, Decision::Revoke, "")), Ok(()));
    assert_eq!(
        check_decision(&Deciding {
            reviewer: 7,
            ..deciding(&r, Decision::Keep, "")
        }),
        Err(DecisionError::OwnAccess),
        "not even when listed as an owner"
    );
    assert_eq!(
        check_decision(&Deciding {
            reviewer: 4,
            ..deciding(&r, Decision::Keep, "")
        }),
        Err(DecisionError::NotReviewer)
    );
    assert_eq!(
        check_decision(&Deciding {
            open: false,
            ..deciding(&r, Decision::Keep, "")
        }),
        Err(DecisionError::Closed)
    );
    // Keep and convert may change; a revoke may not.
    let after_keep = Deciding {
        current: Some(Decision::Keep),
        ..deciding(&r, Decision::Revoke, "")
    };
    assert_eq!(check_decision(&after_keep), Ok(()));
    let after_revoke = Deciding {
        current: Some(Decision::Revoke),
        ..deciding(&r, Decision::Keep, "")
    };
    assert_eq!(check_decision(&after_revoke), Err(DecisionError::RevokeFinal));
    // Critical access is kept only with a reason.
    let critical = |comment| Deciding {
        critical: true,
        ..deciding(&r, Decision::Keep, comment)
    };
    assert_eq!(check_decision(&critical("  ok ")), Err(DecisionError::CommentNeeded));
    assert_eq!(check_decision(&critical("on call for the Q1 migration")), Ok(()));
    let long = "x".repeat(1_001);
    assert_eq!(
        check_decision(&deciding(&r, Decision::Keep, &long)),
        Err(DecisionError::CommentTooLong)
    );
    // A conversion ends in the future, within a year.
    let convert = |at| deciding(&r, Decision::Convert { expires_at: at }, "");
    assert_eq!(check_decision(&convert(NOW)), Err(DecisionError::Expiry));
    assert_eq!(check_decision(&convert(NOW + 30 * DAY)), Ok(()));
    assert_eq!(
        check_decision(&convert(NOW + CONVERT_WITHIN + 1)),
        Err(DecisionError::Expiry)
    );
}

#[test]
fn at_close_decisions_stand_and_undecided_items_follow_the_rule_unless_the_last_administrator() {
    let owners = Reviewers::People(vec![3]);
    let nobody = Reviewers::NoIndependentReviewer;
    let rule = DeadlineRule::default();
    assert_eq!(
        at_close(Some(Decision::Keep), true, &owners, &rule, false),
        Closing::Kept
    );
    assert_eq!(
        at_close(Some(Decision::Revoke), true, &owners, &rule, false),
        Closing::AlreadyRevoked
    );
    let until = NOW + 30 * DAY;
    assert_eq!(
        at_close(
            Some(Decision::Convert { expires_at: until }),
            false,
            &owners,
            &rule,
            false
        ),
        Closing::Convert { expires_at: until }
    );
    // Undecided: critical revoked, the rest kept and flagged.
    assert_eq!(at_close(None, true, &owners, &rule, false), Closing::Revoke);
    assert_eq!(
        at_close(None, false, &owners, &rule, false),
        Closing::KeptFlagged(vec![Flag::Undecided])
    );
    // The last administrator stays, flagged.
    assert_eq!(
        at_close(None, true, &nobody, &rule, true),
        Closing::KeptFlagged(vec![Flag::NoIndependentReviewer, Flag::LastAdministrator])
    );
    assert_eq!(
        at_close(None, false, &nobody, &rule, false),
        Closing::KeptFlagged(vec![Flag::Undecided, Flag::NoIndependentReviewer])
    );
    // A campaign may revoke the rest too, or keep critical items.
    let strict = DeadlineRule {
        critical: Undecided::Revoke,
        other: Undecided::Revoke,
    };
    assert_eq!(at_close(None, false, &owners, &strict, false), Closing::Revoke);
    let lenient = DeadlineRule {
        critical: Undecided::KeepAndFlag,
        other: Undecided::KeepAndFlag,
    };
    assert_eq!(
        at_close(None, true, &owners, &lenient, false),
        Closing::KeptFlagged(vec![Flag::Undecided])
    );
    assert!(!is_due_to_close(false, NOW + 1, NOW));
    assert!(is_due_to_close(false, NOW, NOW), "the deadline is the instant");
    assert!(!is_due_to_close(true, NOW - 1, NOW), "closed early stays closed");
}

#[test]
fn reminders_fall_a_week_and_a_day_before_and_on_the_day_each_once() {
    let due = NOW + 14 * DAY; // 2026-12-14T10:00Z
    let at = |r: Reminder| r.at(due, 0);
    assert_eq!(at(Reminder::WeekBefore), due - 7 * DAY);
    assert_eq!(at(Reminder::DayBefore), due - DAY);
    assert_eq!(at(Reminder::OnTheDay), due - 10 * HOUR, "midnight UTC of the due day");
    assert_eq!(Reminder::OnTheDay.at(due, 120), due - 12 * HOUR, "midnight in UTC+2");
    assert_eq!(
        Reminder::OnTheDay.at(due, -660),
        due - 10 * HOUR - DAY + 11 * HOUR,
        "midnight in UTC-11"
    );

    let due_at = |now| reminder_due(NOW, due, now, 0, None);
    assert_eq!(due_at(NOW), None);
    assert_eq!(due_at(due - 7 * DAY), Some(Reminder::WeekBefore));
    assert_eq!(
        reminder_due(NOW, due, due - 7 * DAY + HOUR, 0, Some(Reminder::WeekBefore)),
        None,
        "sent once"
    );
    assert_eq!(
        reminder_due(NOW, due, due - DAY, 0, Some(Reminder::WeekBefore)),
        Some(Reminder::DayBefore)
    );
    assert_eq!(
        reminder_due(NOW, due, due - HOUR, 0, Some(Reminder::DayBefore)),
        Some(Reminder::OnTheDay)
    );
    assert_eq!(
        due_at(due - HOUR),
        Some(Reminder::OnTheDay),
        "a late job sends only the latest"
    );
    assert_eq!(due_at(due), None, "nothing once the deadline has passed");
    // Created six days before the deadline: no week reminder.
    let late_start = due - 6 * DAY;
    assert_eq!(reminder_due(late_start, due, late_start, 0, None), None);
    assert_eq!(
        reminder_due(late_start, due, due - DAY, 0, None),
        Some(Reminder::DayBefore)
    );
}

#[test]
fn reviewers_are_stored_and_read_back_and_anything_unreadable_is_nobodys() {
    for r in [
        Reviewers::People(vec![4, 17]),
        Reviewers::Administrators,
        Reviewers::NoIndependentReviewer,
    ] {
        assert_eq!(Reviewers::parse(&r.to_stored()), r);
    }
    assert_eq!(Reviewers::People(vec![4, 17]).to_stored(), "people:4,17");
    // Never widened: garbage is nobody's to decide, not the administrators'.
    for bad in ["", "people:", "people:4,x", "admins", "people:4;17", "Administrators"] {
        assert_eq!(Reviewers::parse(bad), Reviewers::NoIndependentReviewer, "{bad}");
    }
}

#[test]
fn decisions_are_read_back_with_their_expiry() {
    assert_eq!(Decision::parse("keep", None), Some(Decision::Keep));
    assert_eq!(Decision::parse("revoke", Some(5)), Some(Decision::Revoke));
    assert_eq!(
        Decision::parse("convert", Some(NOW)),
        Some(Decision::Convert { expires_at: NOW })
    );
    // A conversion without its end is not a decision anyone made.
    assert_eq!(Decision::parse("convert", None), None);
    assert_eq!(Decision::parse("approve", None), None);
    assert_eq!(Decision::Convert { expires_at: NOW }.expires_at(), Some(NOW));
    assert_eq!(Decision::Keep.expires_at(), None);
}

#[test]
fn closing_outcomes_are_stored_with_their_flags_in_order() {
    let flagged = Closing::KeptFlagged(vec![Flag::NoIndependentReviewer, Flag::LastAdministrator]);
    assert_eq!(flagged.as_str(), "kept_flagged");
    assert_eq!(flagged.flags(), "no independent reviewer,last administrator");
    assert_eq!(Closing::Revoke.as_str(), "revoked");
    assert_eq!(Closing::AlreadyRevoked.as_str(), "revoked");
    assert_eq!(Closing::Convert { expires_at: NOW }.as_str(), "converted");
    assert_eq!(Closing::Kept.flags(), "");
}

#[test]
fn auditors_never_decide_unless_they_also_grant_access() {
    use crate::domain::permissions::{Permission as P, PermissionSet};
    assert!(!may_decide(PermissionSet::of(&[P::AuditRead, P::AuditExport])));
    assert!(!may_decide(PermissionSet::of(&[P::AuditRead])));
    assert!(may_decide(PermissionSet::of(&[P::DeployProd])));
    assert!(may_decide(PermissionSet::default()));
    assert!(may_decide(PermissionSet::of(&[P::AccessGrant, P::AuditRead])));
}

#[test]
fn a_late_recurrence_keeps_its_full_length() {
    let (start, due) = next_run(NOW, NOW + 14 * DAY, 1);
    assert_eq!(
        recurrence_due(NOW, NOW + 14 * DAY, 1, start - 1),
        None,
        "not before its day"
    );
    assert_eq!(recurrence_due(NOW, NOW + 14 * DAY, 1, start), Some((start, due)));
    assert_eq!(
        recurrence_due(NOW, NOW + 14 * DAY, 1, start + LATE_START),
        Some((start, due))
    );
    // Gatehouse was down for three weeks: the successor still gets 14 days.
    let late = start + 21 * DAY;
    assert_eq!(
        recurrence_due(NOW, NOW + 14 * DAY, 1, late),
        Some((late, late + 14 * DAY))
    );
}

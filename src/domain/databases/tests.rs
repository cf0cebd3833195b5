use super::*;

fn names() -> Names {
    Names::new("gh_").unwrap()
}

fn roles(r: &[&str]) -> BTreeSet<String> {
    r.iter().map(|s| s.to_string()).collect()
}

#[test]
fn names_come_from_keys_and_ids_within_mysqls_limit() {
    let n = names();
    assert_eq!(n.role("support-pii").as_deref(), Some("gh_support_pii"));
    assert_eq!(n.account(12), "gh_12");
    assert_eq!(n.personal_role(12), "gh_12_roles");
    assert_eq!(n.account_user("gh_12"), Some(12));
    assert_eq!(n.account_user("gh_12_roles"), None);
    assert_eq!(n.account_user("gh_support"), None);
    assert!(n.owns("gh_support") && !n.owns("app_backend"));
    // 3 + 29 = 32 fits; one more does not.
    assert!(n.role(&format!("a{}", "b".repeat(28))).is_some());
    assert_eq!(n.role(&format!("a{}", "b".repeat(29))), None);
    // Not a role key: refused rather than quoted into a name.
    assert_eq!(n.role("x`; DROP USER root"), None);
    assert_eq!(n.role("Support"), None);
}

#[test]
fn prefixes_are_short_lowercase_identifiers() {
    assert!(Names::new("gh_").is_ok());
    assert!(Names::new("gh_t12ab_").is_ok());
    for bad in ["", "g", "GH_", "1gh", "gh-", "gh_`", "abcdefghijklm"] {
        assert!(Names::new(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn mappings_are_chosen_from_the_list_and_named_by_identifiers() {
    let n = names();
    let m = check_mapping(&n, "support", "select", "app", "customers", "").unwrap();
    assert_eq!(m.grant_clause(), "SELECT ON `app`.`customers`");
    let m = check_mapping(&n, "support", "UPDATE", "app", "orders", "status").unwrap();
    assert_eq!(m.grant_clause(), "UPDATE (`status`) ON `app`.`orders`");
    let m = check_mapping(&n, "prod-db-write", "DELETE", "app", "", "").unwrap();
    assert_eq!(m.grant_clause(), "DELETE ON `app`.*");
    assert_eq!(
        check_mapping(&n, "support", "DROP", "app", "", ""),
        Err(MappingError::Privilege)
    );
    assert_eq!(
        check_mapping(&n, "support", "SELECT", "app`; --", "", ""),
        Err(MappingError::Identifier("The schema"))
    );
    assert_eq!(
        check_mapping(&n, "support", "SELECT", "app", "", "email"),
        Err(MappingError::ColumnWithoutTable)
    );
    assert_eq!(
        check_mapping(&n, "support", "DELETE", "app", "orders", "id"),
        Err(MappingError::DeleteColumn)
    );
    assert_eq!(
        check_mapping(&n, &format!("a{}", "b".repeat(40)), "SELECT", "app", "", ""),
        Err(MappingError::NameTooLong)
    );
    assert_eq!(quote("we`ird"), "`we``ird`");
    assert!(identifier("123", "The table").is_err());
    assert!(identifier(&"t".repeat(65), "The table").is_err());
}

#[test]
fn a_first_grant_unlocks_with_a_new_password_and_the_last_revocation_locks() {
    let locked = AccountState::due(roles(&[]));
    assert!(locked.locked);
    let due = AccountState::due(roles(&["gh_support_pii"]));
    let p = plan(&locked, &due);
    assert_eq!(p.grant, vec!["gh_support_pii"]);
    assert!(p.unlock && p.new_password && !p.lock && !p.ends_access);

    let p = plan(&due, &locked);
    assert_eq!(p.revoke, vec!["gh_support_pii"]);
    assert!(p.lock && p.ends_access && !p.unlock && !p.new_password);

    // One role of two ends: the account stays open, connections are still
    // ended, no new password.
    let both = AccountState::due(roles(&["gh_support", "gh_support_pii"]));
    let p = plan(&both, &AccountState::due(roles(&["gh_support"])));
    assert_eq!(p.revoke, vec!["gh_support_pii"]);
    assert!(!p.lock && p.ends_access && !p.new_password);

    assert!(plan(&due, &due).is_empty());
    // Already locked with nothing due: nothing to change, but access is
    // still confirmed ended (connections).
    let p = plan(&locked, &locked);
    assert!(p.is_empty() && p.ends_access);
}

#[test]
fn a_read_back_confirms_only_the_state_that_is_due() {
    let due = AccountState::due(roles(&[]));
    let clean = ReadBack {
        roles: roles(&[]),
        locked: true,
        connections: vec![],
    };
    assert!(clean.confirms(&due));
    assert!(
        !ReadBack {
            connections: vec![41],
            ..clean.clone()
        }
        .confirms(&due),
        "a connection is left"
    );
    assert!(!ReadBack {
        locked: false,
        ..clean.clone()
    }
    .confirms(&due));
    assert!(!ReadBack {
        roles: roles(&["gh_support"]),
        ..clean.clone()
    }
    .confirms(&due));
    let open = AccountState::due(roles(&["gh_support"]));
    let working = ReadBack {
        roles: roles(&["gh_support"]),
        locked: false,
        connections: vec![7],
    };
    assert!(working.confirms(&open), "connections of an open account are fine");
}

#[test]
fn failed_changes_are_retried_with_growing_delays() {
    assert_eq!(retry_delay(0), 1_000);
    assert_eq!(retry_delay(1), 2_000);
    assert_eq!(retry_delay(3), 8_000);
    assert_eq!(retry_delay(6), 60_000);
    assert_eq!(retry_delay(40), 60_000);
}

#[test]
fn due_roles_follow_active_unscoped_grants_of_active_employees_and_name_the_next_change() {
    use crate::domain::grants::{Grant, Status};
    let g = |id: i64, role: &str, starts: i64, expires: Option<i64>| Grant {
        id,
        user_id: 7,
        role: role.into(),
        starts_at: starts,
        expires_at: expires,
        revoked_at: None,
        pending: false,
        customers: None,
    };
    let mapped = roles(&["support", "support-pii"]);
    let grants = vec![
        g(1, "support", 0, None),
        g(2, "support-pii", 1_000, Some(5_000)),
        g(3, "sales", 0, None),
        Grant {
            customers: Some(vec!["1042".into()]),
            ..g(4, "support-pii", 0, None)
        },
        Grant {
            pending: true,
            ..g(5, "support-pii", 0, None)
        },
    ];
    let (due, next) = due_roles(Some(Status::Active), &grants, &mapped, 500);
    assert_eq!(
        due,
        roles(&["support"]),
        "unmapped, scoped and pending grants give nothing"
    );
    assert_eq!(next, Some(1_000), "the elevation's start");
    let (due, next) = due_roles(Some(Status::Active), &grants, &mapped, 1_000);
    assert_eq!(due, roles(&["support", "support-pii"]));
    assert_eq!(next, Some(5_000), "its expiry");
    let (due, next) = due_roles(Some(Status::Active), &grants, &mapped, 5_000);
    assert_eq!(due, roles(&["support"]), "ends at the exact instant");
    assert_eq!(next, None);
    for status in [Some(Status::Suspended), Some(Status::Offboarded), None] {
        assert!(due_roles(status, &grants, &mapped, 1_000).0.is_empty());
    }
}

#[test]
fn the_connectors_missing_privileges_are_named_per_flavour() {
    let lines = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let all = lines(&["GRANT ALL PRIVILEGES ON *.* TO `root`@`127.0.0.1` WITH GRANT OPTION"]);
    assert!(missing_privileges(true, &all).is_empty());
    let least_mariadb = lines(&[
        "GRANT SELECT, UPDATE ON `mysql`.* TO `gatehouse`@`10.0.%`",
        "GRANT CREATE USER, PROCESS, CONNECTION ADMIN ON *.* TO `gatehouse`@`10.0.%`",
        "GRANT SELECT, INSERT, UPDATE, DELETE ON `app`.* TO `gatehouse`@`10.0.%` WITH GRANT OPTION",
    ]);
    assert_eq!(missing_privileges(true, &least_mariadb), Vec::<String>::new());
    assert_eq!(
        missing_privileges(false, &least_mariadb),
        vec!["CONNECTION_ADMIN", "ROLE_ADMIN"],
        "MySQL 8 spells it differently and needs ROLE_ADMIN"
    );
    let weak = lines(&["GRANT USAGE ON *.* TO `gatehouse`@`%`"]);
    assert_eq!(
        missing_privileges(true, &weak),
        vec![
            "CREATE USER",
            "PROCESS",
            "CONNECTION ADMIN",
            "SELECT ON mysql.*",
            "UPDATE ON mysql.*",
            "GRANT OPTION"
        ]
    );
    let superuser = lines(&["GRANT SUPER, CREATE USER, PROCESS, SELECT, UPDATE ON *.* TO `g`@`%` WITH GRANT OPTION"]);
    assert!(missing_privileges(true, &superuser).is_empty(), "SUPER may kill");
}

fn held(grantee: &str, host: &str, privilege: &str, schema: &str, table: Option<&str>) -> HeldPrivilege {
    HeldPrivilege {
        grantee: grantee.into(),
        host: host.into(),
        privilege: privilege.into(),
        scope: Scope {
            schema: schema.into(),
            table: table.map(Into::into),
            column: None,
        },
    }
}

#[test]
fn drift_names_hand_made_grants_open_accounts_stray_roles_and_unknown_accounts() {
    let n = names();
    let support = check_mapping(&n, "support", "SELECT", "app", "customers", "").unwrap();
    let pii = check_mapping(&n, "support-pii", "SELECT", "app", "customer_contacts", "").unwrap();
    let intended = Intended {
        connector: "gatehouse".into(),
        mappings: vec![support.clone(), pii],
        accounts: [
            ("gh_7".to_string(), AccountState::due(roles(&["gh_support"]))),
            ("gh_8".to_string(), AccountState::due(roles(&[]))),
        ]
        .into_iter()
        .collect(),
    };
    let clean = Observed {
        privileges: vec![
            held("gh_support", "", "SELECT", "app", Some("customers")),
            held("gh_support_pii", "", "SELECT", "app", Some("customer_contacts")),
            held("gatehouse", "10.0.1.%", "SELECT", "app", None),
        ],
        global: roles(&["root"]),
        accounts: vec![("gh_7".into(), false), ("gh_8".into(), true)],
        role_edges: vec![
            ("gh_7".into(), "%".into(), "gh_7_roles".into()),
            ("gh_7_roles".into(), "".into(), "gh_support".into()),
            ("gatehouse".into(), "10.0.1.%".into(), "gh_support".into()),
        ],
    };
    assert_eq!(drift(&n, &intended, &clean), vec![], "as intended: nothing to report");

    let mut o = clean.clone();
    o.privileges.push(held("gh_7", "%", "UPDATE", "app", Some("orders")));
    o.privileges.push(held("bob", "%", "SELECT", "app", None));
    o.privileges.push(held("bob", "%", "SELECT", "other", None));
    o.privileges.retain(|p| p.grantee != "gh_support");
    o.accounts[1].1 = false;
    o.accounts.push(("gh_99".into(), false));
    o.role_edges
        .push(("gh_8_roles".into(), "".into(), "gh_support_pii".into()));
    o.global.insert("gh_support".into());
    let found = drift(&n, &intended, &o);
    let kinds: Vec<(DriftKind, &str)> = found.iter().map(|f| (f.kind, f.subject.as_str())).collect();
    assert_eq!(
        kinds,
        vec![
            (DriftKind::ExtraPrivilege, "gh_7"),
            (DriftKind::ExtraPrivilege, "gh_support"),
            (DriftKind::MissingPrivilege, "gh_support"),
            (DriftKind::UnlockedWithoutGrant, "gh_8"),
            (DriftKind::ExtraRole, "gh_8_roles"),
            (DriftKind::UnknownAccount, "bob@%"),
            (DriftKind::UnknownGhAccount, "gh_99"),
        ],
        "{found:#?}"
    );
    let extra = &found[0];
    assert_eq!(extra.detail, "UPDATE on app.orders granted by hand");
    assert_eq!(
        extra.fix,
        Some(Fix::Revoke(held("gh_7", "%", "UPDATE", "app", Some("orders"))))
    );
    assert_eq!(found[2].fix, Some(Fix::Grant(support)));
    assert_eq!(found[3].fix, Some(Fix::Lock("gh_8".into())));
    assert_eq!(found[5].fix, None, "someone else's account is reported, never changed");
    assert_eq!(drift(&n, &intended, &o), found, "the same drift reads the same");
}

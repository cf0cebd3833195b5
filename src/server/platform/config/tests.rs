//! Unit tests of `config`.

use super::*;
use std::collections::HashMap;

fn cfg(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Config::from_lookup(|k| map.get(k).cloned())
}

#[test]
fn defaults() {
    let c = cfg(&[]).unwrap();
    assert_eq!(c.database_url, "sqlite://data/gatehouse.db");
    assert_eq!(c.data_dir, PathBuf::from("./data"));
    assert_eq!(c.listen.to_string(), "127.0.0.1:3000");
    assert_eq!(c.public_origin(), "http://127.0.0.1:3000");
    assert!(!c.secure_cookies());
    assert_eq!(c.session, Lifetimes::default());
}

#[test]
fn malformed_values_name_the_variable() {
    assert_eq!(
        cfg(&[("GATEHOUSE_DATABASE_URL", "postgres://x")]).unwrap_err().variable,
        "GATEHOUSE_DATABASE_URL"
    );
    assert_eq!(
        cfg(&[("GATEHOUSE_LISTEN", "nope")]).unwrap_err().variable,
        "GATEHOUSE_LISTEN"
    );
    assert_eq!(
        cfg(&[("GATEHOUSE_MASTER_KEY", "c2hvcnQ=")]).unwrap_err().variable,
        "GATEHOUSE_MASTER_KEY"
    );
    assert_eq!(
        cfg(&[("GATEHOUSE_MASTER_KEY", "***")]).unwrap_err().variable,
        "GATEHOUSE_MASTER_KEY"
    );
    assert_eq!(
        cfg(&[("GATEHOUSE_MASTER_KEY_PREVIOUS", "c2hvcnQ=")])
            .unwrap_err()
            .variable,
        "GATEHOUSE_MASTER_KEY_PREVIOUS"
    );
    assert_eq!(
        cfg(&[("GATEHOUSE_PUBLIC_URL", "ftp://x")]).unwrap_err().variable,
        "GATEHOUSE_PUBLIC_URL"
    );
    assert_eq!(
        cfg(&[("GATEHOUSE_SESSION_IDLE_MINUTES", "0")]).unwrap_err().variable,
        "GATEHOUSE_SESSION_IDLE_MINUTES"
    );
    assert_eq!(
        cfg(&[("GATEHOUSE_LOG_FORMAT", "xml")]).unwrap_err().variable,
        "GATEHOUSE_LOG_FORMAT"
    );
    for (var, bad) in [
        ("GATEHOUSE_ALERT_CUSTOMERS_PER_HOUR", "0"),
        ("GATEHOUSE_ALERT_FAILED_SIGNINS", "many"),
        ("GATEHOUSE_ALERT_NIGHT", "20"),
        ("GATEHOUSE_ALERT_NIGHT", "7-7"),
        ("GATEHOUSE_ALERT_NIGHT", "20-25"),
        ("GATEHOUSE_COMPANY_UTC_OFFSET_MINUTES", "900"),
        ("GATEHOUSE_TICKET_PREFIXES", "SUP,sup"),
        ("GATEHOUSE_TICKET_PREFIXES", "S"),
    ] {
        assert_eq!(cfg(&[(var, bad)]).unwrap_err().variable, var, "{var}={bad}");
    }
    let c = cfg(&[
        ("GATEHOUSE_ALERT_NIGHT", "22-6"),
        ("GATEHOUSE_COMPANY_UTC_OFFSET_MINUTES", "-300"),
        ("GATEHOUSE_ALERT_CUSTOMERS_PER_HOUR", "10"),
    ])
    .unwrap();
    assert_eq!(
        (
            c.alerts.night_from,
            c.alerts.night_until,
            c.alerts.utc_offset_minutes,
            c.alerts.customers_per_hour
        ),
        (22, 6, -300, 10)
    );
    assert_eq!(cfg(&[]).unwrap().alerts, crate::domain::alerts::Thresholds::default());
    assert_eq!(
        cfg(&[("GATEHOUSE_TICKET_PREFIXES", "SUP, INC")])
            .unwrap()
            .tickets
            .prefixes,
        ["SUP", "INC"]
    );
    assert!(cfg(&[]).unwrap().tickets.prefixes.is_empty(), "any prefix by default");
    // Webhooks: only allowed hosts, https (http for loopback), a secret.
    let hook = |url: &str, hosts: &str, secret: &str| {
        cfg(&[
            ("GATEHOUSE_ALERT_WEBHOOK_URL", url),
            ("GATEHOUSE_ALERT_WEBHOOK_ALLOWED_HOSTS", hosts),
            ("GATEHOUSE_ALERT_WEBHOOK_SECRET", secret),
        ])
    };
    assert!(
        hook("https://hooks.example.com/x", "hooks.example.com", "0123456789abcdef")
            .unwrap()
            .webhook
            .is_some()
    );
    assert!(hook("http://127.0.0.1:9/x", "127.0.0.1", "0123456789abcdef").is_ok());
    assert_eq!(
        hook("https://evil.example/x", "hooks.example.com", "0123456789abcdef")
            .unwrap_err()
            .variable,
        "GATEHOUSE_ALERT_WEBHOOK_URL"
    );
    assert_eq!(
        hook("http://hooks.example.com/x", "hooks.example.com", "0123456789abcdef")
            .unwrap_err()
            .variable,
        "GATEHOUSE_ALERT_WEBHOOK_URL"
    );
    assert_eq!(
        hook("https://hooks.example.com/x", "hooks.example.com", "short")
            .unwrap_err()
            .variable,
        "GATEHOUSE_ALERT_WEBHOOK_SECRET"
    );
    let err = hook("https://hooks.example.com/x", "hooks.example.com", "short").unwrap_err();
    assert!(!err.problem.contains("short"), "the secret is never echoed");
    // Notifications: the chat webhook (allow-listed, its URL never echoed) and SMTP.
    let notify = |url: &str, hosts: &str| {
        cfg(&[
            ("GATEHOUSE_NOTIFY_WEBHOOK_URL", url),
            ("GATEHOUSE_NOTIFY_WEBHOOK_ALLOWED_HOSTS", hosts),
        ])
    };
    assert!(
        notify("https://hooks.slack.com/services/T0/B0/s3cr3t", "hooks.slack.com")
            .unwrap()
            .notify_webhook
            .is_some()
    );
    let err = notify("https://evil.example/services/s3cr3t", "hooks.slack.com").unwrap_err();
    assert_eq!(err.variable, "GATEHOUSE_NOTIFY_WEBHOOK_URL");
    assert!(!err.problem.contains("s3cr3t"));
    assert!(notify("http://hooks.slack.com/x", "hooks.slack.com").is_err());
    let smtp = |url: &str, from: &str| cfg(&[("GATEHOUSE_SMTP_URL", url), ("GATEHOUSE_SMTP_FROM", from)]);
    assert!(smtp("smtps://u:p@mail.example.com:465", "gatehouse@example.com")
        .unwrap()
        .smtp
        .is_some());
    assert!(smtp("smtp://mail.example.com:587?tls=required", "gatehouse@example.com").is_ok());
    assert!(
        smtp("smtp://127.0.0.1:2525", "gatehouse@example.com").is_ok(),
        "a plain loopback relay"
    );
    assert_eq!(
        smtp("smtp://mail.example.com:25", "gatehouse@example.com")
            .unwrap_err()
            .variable,
        "GATEHOUSE_SMTP_URL",
        "no plain text over the network"
    );
    assert_eq!(
        smtp("smtps://mail.example.com", "not an email").unwrap_err().variable,
        "GATEHOUSE_SMTP_FROM"
    );
    assert_eq!(
        smtp("http://mail.example.com", "a@example.com").unwrap_err().variable,
        "GATEHOUSE_SMTP_URL"
    );
}

#[test]
fn debug_output_redacts_secrets() {
    let key = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    let c = cfg(&[
        ("GATEHOUSE_MASTER_KEY", key),
        (
            "GATEHOUSE_MASTER_KEY_PREVIOUS",
            "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBA=",
        ),
        ("GATEHOUSE_DATABASE_URL", "mysql://u:hunter2@db/x"),
        ("GATEHOUSE_SMTP_URL", "smtps://mailer:smtp-secret@mail.example.com"),
        ("GATEHOUSE_SMTP_FROM", "gatehouse@example.com"),
        (
            "GATEHOUSE_NOTIFY_WEBHOOK_URL",
            "https://hooks.slack.com/services/hook-secret",
        ),
        ("GATEHOUSE_NOTIFY_WEBHOOK_ALLOWED_HOSTS", "hooks.slack.com"),
    ])
    .unwrap();
    let dbg = format!("{c:?}");
    assert!(!dbg.contains(key));
    assert!(!dbg.contains("BBBBBBBB"));
    assert!(!dbg.contains("hunter2"));
    assert!(!dbg.contains("smtp-secret") && !dbg.contains("hook-secret"));
}

#[test]
fn https_public_url_means_secure_cookies() {
    let c = cfg(&[("GATEHOUSE_PUBLIC_URL", "https://gatehouse.example.com")]).unwrap();
    assert!(c.secure_cookies());
    assert_eq!(c.public_origin(), "https://gatehouse.example.com");
}

#[test]
fn a_non_loopback_listener_needs_the_public_url() {
    // Browsers would send an Origin naming whatever host they reached;
    // Gatehouse accepts only its configured public origin, so it must know it.
    for listen in ["0.0.0.0:3000", "[::]:3000", "10.1.2.3:8080"] {
        let e = cfg(&[("GATEHOUSE_LISTEN", listen)]).unwrap_err();
        assert_eq!(e.variable, "GATEHOUSE_PUBLIC_URL", "{listen}");
        assert!(e.problem.contains(listen), "{}", e.problem);
        let c = cfg(&[
            ("GATEHOUSE_LISTEN", listen),
            ("GATEHOUSE_PUBLIC_URL", "https://gatehouse.example.com"),
        ]);
        assert_eq!(c.unwrap().public_origin(), "https://gatehouse.example.com");
    }
    for listen in ["127.0.0.1:3000", "[::1]:3000"] {
        assert!(cfg(&[("GATEHOUSE_LISTEN", listen)]).is_ok(), "{listen}");
    }
}

#[test]
fn trusted_proxies_are_address_blocks() {
    assert!(cfg(&[]).unwrap().trusted_proxies.is_empty());
    let c = cfg(&[("GATEHOUSE_TRUSTED_PROXIES", "10.0.0.0/8, 192.0.2.7 2001:db8::/32")]).unwrap();
    assert_eq!(c.trusted_proxies.len(), 3);
    assert!(c.trusted_proxies[0].contains("10.20.30.40".parse().unwrap()));
    let e = cfg(&[("GATEHOUSE_TRUSTED_PROXIES", "10.0.0.0/8,proxy.internal")]).unwrap_err();
    assert_eq!(e.variable, "GATEHOUSE_TRUSTED_PROXIES");
    assert!(e.problem.contains("proxy.internal"), "{}", e.problem);
}

#[test]
fn offboarding_revokes_created_tokens_unless_switched_off() {
    assert!(cfg(&[]).unwrap().offboard_revoke_tokens);
    assert!(
        cfg(&[("GATEHOUSE_OFFBOARD_REVOKE_TOKENS", "true")])
            .unwrap()
            .offboard_revoke_tokens
    );
    assert!(
        !cfg(&[("GATEHOUSE_OFFBOARD_REVOKE_TOKENS", "false")])
            .unwrap()
            .offboard_revoke_tokens
    );
    let e = cfg(&[("GATEHOUSE_OFFBOARD_REVOKE_TOKENS", "no")]).unwrap_err();
    assert_eq!(e.variable, "GATEHOUSE_OFFBOARD_REVOKE_TOKENS");
}

#[test]
fn invitations_go_by_email_when_email_is_configured() {
    let smtp = [
        ("GATEHOUSE_SMTP_URL", "smtps://mailer:pw@mail.example.com"),
        ("GATEHOUSE_SMTP_FROM", "gatehouse@example.com"),
    ];
    assert!(!cfg(&[]).unwrap().invitations_by_email, "without email, shown once");
    assert!(cfg(&smtp).unwrap().invitations_by_email, "on by default with email");
    let off = [smtp[0], smtp[1], ("GATEHOUSE_INVITATIONS_BY_EMAIL", "false")];
    assert!(!cfg(&off).unwrap().invitations_by_email);
    let e = cfg(&[("GATEHOUSE_INVITATIONS_BY_EMAIL", "true")]).unwrap_err();
    assert_eq!(e.variable, "GATEHOUSE_INVITATIONS_BY_EMAIL");
    assert!(e.problem.contains("GATEHOUSE_SMTP_URL"), "{}", e.problem);
}

#[test]
fn a_migrating_account_is_for_mysql_and_never_shown() {
    let mysql = (
        "GATEHOUSE_DATABASE_URL",
        "mysql://gatehouse:run-pw@db.internal/gatehouse",
    );
    let c = cfg(&[
        mysql,
        (
            "GATEHOUSE_MIGRATE_DATABASE_URL",
            "mysql://migrator:ddl-secret@db.internal/gatehouse",
        ),
    ])
    .unwrap();
    assert!(c.migrate_database_url.is_some());
    assert!(!format!("{c:?}").contains("ddl-secret"));
    assert!(cfg(&[mysql]).unwrap().migrate_database_url.is_none());
    for bad in [
        vec![(
            "GATEHOUSE_MIGRATE_DATABASE_URL",
            "mysql://migrator@db.internal/gatehouse",
        )],
        vec![mysql, ("GATEHOUSE_MIGRATE_DATABASE_URL", "sqlite://data/other.db")],
    ] {
        let e = cfg(&bad).unwrap_err();
        assert_eq!(e.variable, "GATEHOUSE_MIGRATE_DATABASE_URL");
        assert!(!e.to_string().contains("ddl-secret"));
    }
}

#[test]
fn passkeys_need_a_domain_name() {
    // The default public URL is an IP address: passkeys are off, and say why.
    let why = cfg(&[]).unwrap().passkeys.unwrap_err();
    assert!(
        why.contains("IP address") && why.contains("GATEHOUSE_PUBLIC_URL"),
        "{why}"
    );
    let c = cfg(&[("GATEHOUSE_PUBLIC_URL", "https://Gatehouse.Example.com/app?x=1")]).unwrap();
    let pk = c.passkeys.unwrap();
    assert_eq!(pk.rp_id, "gatehouse.example.com");
    assert_eq!(pk.origin.as_str(), "https://gatehouse.example.com/");
    let c = cfg(&[("GATEHOUSE_PUBLIC_URL", "http://localhost:3000")]).unwrap();
    assert_eq!(c.passkeys.unwrap().rp_id, "localhost");
}

#[test]
fn the_passkey_policy_is_read_and_refused_where_passkeys_are_off() {
    use crate::domain::passkeys::Policy;
    let domain = ("GATEHOUSE_PUBLIC_URL", "https://gatehouse.example.com");
    assert_eq!(cfg(&[domain]).unwrap().require_passkey, Policy::default());
    let c = cfg(&[domain, ("GATEHOUSE_REQUIRE_PASSKEY", "administrators, breakglass")]).unwrap();
    assert!(c.require_passkey.administrators && c.require_passkey.breakglass);
    let e = cfg(&[domain, ("GATEHOUSE_REQUIRE_PASSKEY", "admins")]).unwrap_err();
    assert_eq!(e.variable, "GATEHOUSE_REQUIRE_PASSKEY");
    assert!(e.problem.contains("unknown group"), "{}", e.problem);
    // Required on an IP address, where no browser would use one: an
    // error at start rather than administrators locked out.
    let e = cfg(&[("GATEHOUSE_REQUIRE_PASSKEY", "administrators")]).unwrap_err();
    assert_eq!(e.variable, "GATEHOUSE_REQUIRE_PASSKEY");
    assert!(e.problem.contains("IP address"), "{}", e.problem);
}

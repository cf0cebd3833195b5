//! The `gatehouse` binary: configuration errors, seeding and verification.

use crate::helpers::tempdir::Dir;
use std::process::Command;

fn gatehouse(dir: &Dir, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gatehouse"));
    cmd.args(args)
        .env("GATEHOUSE_DATA_DIR", &dir.0)
        .env("GATEHOUSE_DATABASE_URL", format!("sqlite://{}/g.db", dir.0.display()))
        .env("RUST_LOG", "error");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

#[test]
fn version_names_the_release_and_the_commit() {
    let dir = Dir::new();
    // Even with a configuration `serve` would refuse: --version reads none.
    let out = gatehouse(&dir, &["--version"], &[("GATEHOUSE_LISTEN", "not-an-address")]);
    assert_eq!(out.status.code(), Some(0));
    let line = String::from_utf8(out.stdout).unwrap();
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .unwrap();
    let head = String::from_utf8(head.stdout).unwrap();
    assert_eq!(
        line.trim(),
        format!("gatehouse {} ({})", env!("CARGO_PKG_VERSION"), head.trim())
    );
}

#[test]
fn malformed_configuration_is_one_line_and_exit_code_2() {
    let dir = Dir::new();
    for (var, value) in [
        ("GATEHOUSE_LISTEN", "not-an-address"),
        ("GATEHOUSE_DATABASE_URL", "postgres://localhost/x"),
        ("GATEHOUSE_MASTER_KEY", "dG9vIHNob3J0"),
        ("GATEHOUSE_SESSION_IDLE_MINUTES", "-5"),
    ] {
        let out = gatehouse(&dir, &["serve"], &[(var, value)]);
        assert_eq!(out.status.code(), Some(2), "{var}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(stderr.contains(var), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(
            !stderr.contains(value) || var != "GATEHOUSE_MASTER_KEY",
            "key material echoed: {stderr}"
        );
    }
    let out = gatehouse(&dir, &["frobnicate"], &[]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn seed_demo_then_verify_then_tamper() {
    let dir = Dir::new();
    let out = gatehouse(&dir, &["seed-demo"], &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.matches("@sunridge-solar.example").count(), 18);
    // Refuses a database that has users.
    let out = gatehouse(&dir, &["seed-demo"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already has users"));
    // The key file is private.
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(dir.0.join("master.key"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );

    let out = gatehouse(&dir, &["audit", "verify"], &[]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("OK: 1 events verified"));

    // Tamper with the stored event as someone with file access would.
    let db = dir.0.join("g.db");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&format!("sqlite://{}", db.display()))
            .await
            .unwrap();
        sqlx::query("DROP TRIGGER audit_events_no_update")
            .execute(&pool)
            .await
            .unwrap();
        sqlx::query("UPDATE audit_events SET details = '{\"users\":1}' WHERE seq = 1")
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    });
    let out = gatehouse(
        &dir,
        &["audit", "verify", "--database", &format!("sqlite://{}", db.display())],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("event 1: content does not match its hash"), "{stderr}");
}

#[test]
fn service_token_from_the_command_line() {
    let dir = Dir::new();
    let out = gatehouse(&dir, &["service-token", "customer-api", "access:check"], &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(token.starts_with("ghs_1_") && token.len() > 40, "{token}");
    // A second token for the same account; the account is not created twice.
    let out = gatehouse(&dir, &["service-token", "customer-api", "access:check"], &[]);
    assert!(String::from_utf8(out.stdout).unwrap().starts_with("ghs_2_"));
    // Unknown scopes and bad names are refused.
    let out = gatehouse(&dir, &["service-token", "billing", "root"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Unknown scope"));
    let out = gatehouse(&dir, &["service-token", "Bad Name", "access:check"], &[]);
    assert_eq!(out.status.code(), Some(1));
    // Only hashes are stored, and the creation is in the verified chain.
    // The whole secret: it may itself hold '_' (URL-safe base64).
    let secret = gatehouse::domain::service::parse_token(&token).unwrap().1.to_owned();
    let db = dir.0.join("g.db");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (accounts, leaked) = rt.block_on(async {
        use sqlx::Row;
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&format!("sqlite://{}", db.display()))
            .await
            .unwrap();
        let a: i64 = sqlx::query("SELECT COUNT(*) AS n FROM service_accounts")
            .fetch_one(&pool)
            .await
            .unwrap()
            .try_get("n")
            .unwrap();
        let l: i64 = sqlx::query("SELECT COUNT(*) AS n FROM api_tokens WHERE secret_hash LIKE ?")
            .bind(format!("%{secret}%"))
            .fetch_one(&pool)
            .await
            .unwrap()
            .try_get("n")
            .unwrap();
        pool.close().await;
        (a, l)
    });
    assert_eq!((accounts, leaked), (1, 0));
    let out = gatehouse(&dir, &["audit", "verify"], &[]);
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("OK: 3 events verified"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// The README's MySQL set-up: one user migrates (DDL, triggers), another
/// runs Gatehouse with only SELECT, INSERT, UPDATE and DELETE. With
/// GATEHOUSE_MIGRATE_DATABASE_URL set, `serve` does not migrate: it refuses
/// a schema that is behind, naming the command; `gatehouse migrate` brings
/// it up to date; then Gatehouse works as the running user, who cannot
/// truncate the audit trail, drop its triggers or alter its tables. MySQL.
#[tokio::test]
async fn the_running_mysql_user_cannot_change_the_schema() {
    use crate::helpers::Backend;
    let Some(Backend::MySql { root_url }) = Backend::mysql().await else {
        return;
    };
    let tag = gatehouse::server::platform::crypto::random_token(6)
        .to_lowercase()
        .replace(['-', '_'], "x");
    let (db, runner) = (format!("gh_sep_{tag}"), format!("gh_run_{tag}"));
    let root = sqlx::AnyPool::connect(&root_url).await.unwrap();
    for sql in [
        format!("CREATE DATABASE `{db}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"),
        format!("CREATE USER '{runner}'@'%' IDENTIFIED BY 'Runner-{tag}-pw'"),
        format!("CREATE USER '{runner}'@'localhost' IDENTIFIED BY 'Runner-{tag}-pw'"),
        format!("GRANT SELECT, INSERT, UPDATE, DELETE ON `{db}`.* TO '{runner}'@'%'"),
        format!("GRANT SELECT, INSERT, UPDATE, DELETE ON `{db}`.* TO '{runner}'@'localhost'"),
    ] {
        sqlx::query(&sql).execute(&root).await.unwrap();
    }
    let base = root_url.rsplit_once('/').unwrap().0.to_owned();
    let migrate_url = format!("{base}/{db}");
    let run_url = format!(
        "{}/{db}",
        base.replacen("root@", &format!("{runner}:Runner-{tag}-pw@"), 1)
    );
    let dir = Dir::new();
    let env = [
        ("GATEHOUSE_DATABASE_URL", run_url.as_str()),
        ("GATEHOUSE_MIGRATE_DATABASE_URL", migrate_url.as_str()),
    ];

    // Behind: `serve` changes nothing and names the command.
    let out = gatehouse(&dir, &["serve"], &env);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("gatehouse migrate"), "{stderr}");
    assert!(!stderr.contains(&format!("Runner-{tag}-pw")), "{stderr}");
    let tables = format!("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = '{db}'");
    let n: i64 = sqlx::query_scalar(&tables).fetch_one(&root).await.unwrap();
    assert_eq!(n, 0);

    let out = gatehouse(&dir, &["migrate"], &env);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Up to date: Gatehouse works as the running user.
    let out = gatehouse(&dir, &["seed-demo"], &env);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = gatehouse(&dir, &["audit", "verify"], &env);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let runner_pool = sqlx::AnyPool::connect(&run_url).await.unwrap();
    let events = "SELECT COUNT(*) FROM audit_events";
    let before: i64 = sqlx::query_scalar(events).fetch_one(&runner_pool).await.unwrap();
    assert!(before > 0);
    for sql in [
        "TRUNCATE TABLE audit_events",
        "DROP TRIGGER audit_events_no_delete",
        "DROP TRIGGER audit_events_no_update",
        "DROP TABLE audit_events",
        "ALTER TABLE audit_events ADD COLUMN note TEXT",
        "DELETE FROM audit_events",
        "UPDATE audit_events SET reason = 'rewritten'",
    ] {
        let r = sqlx::query(sql).execute(&runner_pool).await;
        assert!(r.is_err(), "the running user could: {sql}");
    }
    let after: i64 = sqlx::query_scalar(events).fetch_one(&runner_pool).await.unwrap();
    assert_eq!(after, before);
    runner_pool.close().await;

    for sql in [
        format!("DROP USER '{runner}'@'%'"),
        format!("DROP USER '{runner}'@'localhost'"),
        format!("DROP DATABASE `{db}`"),
    ] {
        sqlx::query(&sql).execute(&root).await.unwrap();
    }
    root.close().await;
}

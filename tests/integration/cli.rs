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
    let secret = token.rsplit('_').next().unwrap().to_owned();
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

//! The `gatehouse` command line.

use super::{
    access::service_accounts,
    audit, backup, identity,
    platform::{clock::Clock, config::Config, db::Db, telemetry},
    rotation, seed, startup, witness,
};
use crate::domain::audit::Actor;

pub const USAGE: &str = "usage: gatehouse [COMMAND]

Options:
  --version                   print the version and the git commit, then exit

Commands:
  serve                       run the web server (the default)
  healthcheck                 ask this configuration's server for /healthz; exit 0
                              when it answers 200 (the container image's check)
  migrate                     create or upgrade the database, then exit
  seed-demo                   fill an empty database with the demo company
  unlock EMAIL                clear the sign-in lockout of an account
  service-token NAME SCOPES   create a token for service account NAME (created
                              with SCOPES, comma-separated, if it does not exist);
                              prints the token once
  backup FILE                 copy the SQLite database while the server runs, then
                              verify the copy's audit chain (MySQL: README.md)
  restore FILE                verify a backup, then make it the configured SQLite
                              database (which must not exist yet)
  rotate-master-key           seal every stored secret again under a new master key
                              (docs/operations.md says how, with and without replicas)
  audit rotate-key            sign checkpoints with a new key from now on; the old
                              keys stay published and verify what they signed
  audit verify [--database URL]
                              verify the audit chain and signed checkpoints of the
                              configured (or given) database
  audit verify BUNDLE [--public-key HEX[,HEX...]] [--witness-key HEX[,HEX...]]
                              verify an exported bundle, or an access review's
                              evidence bundle, offline (no database needed);
                              each witness key must have co-signed a checkpoint
                              covering the bundle's last event
  audit witness-add NAME PUBLIC_KEY SERVICE_ACCOUNT
                              register a witness's Ed25519 key (hex), posting
                              through SERVICE_ACCOUNT (scope audit:witness)
  audit witness-retire NAME   the witness may co-sign no more; its co-signatures
                              stop counting towards GATEHOUSE_WITNESS_QUORUM
  witness --url URL --state DIR (--token T | --token-file F) [--once] [--interval SECONDS]
                              witness another Gatehouse: check each signed
                              checkpoint extends the last one accepted, co-sign
                              it; exit 3 on a fork, a rollback or a rewrite.
                              Needs no configuration or database

Configuration comes from GATEHOUSE_* environment variables; see README.md.";

/// The version line: the package version and the git commit it was built
/// from (build.rs).
pub fn version() -> String {
    format!(
        "gatehouse {} ({})",
        env!("CARGO_PKG_VERSION"),
        env!("GATEHOUSE_GIT_COMMIT")
    )
}

/// Runs the command line and returns the process exit code.
pub async fn run(args: Vec<String>) -> i32 {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    if matches!(args.first(), Some(&"-h" | &"--help" | &"help")) {
        println!("{USAGE}");
        return 0;
    }
    if matches!(args.as_slice(), ["--version" | "-V" | "version"]) {
        println!("{}", version());
        return 0;
    }
    if let ["witness", rest @ ..] = args.as_slice() {
        return match witness_options(rest) {
            Ok(opts) => {
                telemetry::init(false);
                witness::run(opts).await
            }
            Err(e) => {
                eprintln!("gatehouse witness: {e}\n\n{USAGE}");
                2
            }
        };
    }
    let mut config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return 2;
        }
    };
    telemetry::init(config.log_json);
    let result = match args.as_slice() {
        [] | ["serve"] => startup::serve(config).await.map_err(|e| e.to_string()),
        ["migrate"] => migrate(config).await,
        ["healthcheck"] => healthcheck(&config).await,
        ["seed-demo"] => seed(config).await,
        ["unlock", email] => unlock(config, email).await,
        ["backup", file] => backup::backup(config, file).await,
        ["restore", file] => backup::restore(config, file).await,
        ["service-token", name, scopes] => service_token(config, name, scopes).await,
        ["rotate-master-key"] => rotation::rotate_master_key(config).await,
        ["audit", "rotate-key"] => rotation::rotate_signing_key(config).await,
        ["audit", "verify"] => verify(config).await,
        ["audit", "verify", "--database", url] => {
            config.database_url = (*url).to_owned();
            verify(config).await
        }
        ["audit", "verify", file, rest @ ..] if !file.starts_with("--") => match bundle_keys(rest) {
            Some((keys, witnesses)) => verify_bundle(file, keys, witnesses),
            None => {
                eprintln!("{USAGE}");
                return 2;
            }
        },
        ["audit", "witness-add", name, key, account] => witness_add(config, name, key, account).await,
        ["audit", "witness-retire", name] => witness_retire(config, name).await,
        _ => {
            eprintln!("{USAGE}");
            return 2;
        }
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("gatehouse: {e}");
            1
        }
    }
}

/// Asks the server of this configuration (GATEHOUSE_LISTEN; the loopback
/// address when it listens on all; https when it serves TLS) for /healthz,
/// within 3 seconds. The container image has no HTTP client of its own.
/// Over TLS the certificate is not checked: the address is this machine's
/// own, and nothing secret is sent.
async fn healthcheck(config: &Config) -> Result<(), String> {
    let mut addr = config.listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    let scheme = if config.serving.tls.is_some() { "https" } else { "http" };
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(3))
        .redirect(reqwest::redirect::Policy::none())
        .danger_accept_invalid_certs(true)
        .build()
        .map_err(|e| e.to_string())?;
    match client.get(format!("{scheme}://{addr}/healthz")).send().await {
        Ok(r) if r.status() == reqwest::StatusCode::OK => {
            println!("healthy");
            Ok(())
        }
        Ok(r) => Err(format!("unhealthy: {scheme}://{addr}/healthz answered {}", r.status())),
        Err(e) => Err(format!("unhealthy: {scheme}://{addr}/healthz: {e}")),
    }
}

/// Creates or upgrades the schema: through the migrating account when
/// GATEHOUSE_MIGRATE_DATABASE_URL is set, else as `serve` would at start.
async fn migrate(config: Config) -> Result<(), String> {
    match &config.migrate_database_url {
        Some(url) => {
            use secrecy::ExposeSecret;
            Db::migrate(url.expose_secret()).await.map_err(|e| e.to_string())?;
        }
        None => {
            startup::state(config, Clock::system())
                .await
                .map_err(|e| e.to_string())?;
        }
    }
    println!("database is up to date");
    Ok(())
}

async fn seed(config: Config) -> Result<(), String> {
    let st = startup::state(config, Clock::system())
        .await
        .map_err(|e| e.to_string())?;
    let people = seed::seed_demo(&st).await.map_err(|e| e.to_string())?;
    println!("Demo company created. These passwords are shown only now:\n");
    println!("{:<42} {:<10} PASSWORD", "EMAIL", "ROLE");
    for (email, role, password) in people {
        println!("{email:<42} {role:<10} {password}");
    }
    println!("\nEach person sets up an authenticator app at first sign-in.");
    Ok(())
}

async fn service_token(config: Config, name: &str, scopes: &str) -> Result<(), String> {
    let st = startup::state(config, Clock::system())
        .await
        .map_err(|e| e.to_string())?;
    let actor = Actor {
        user_agent: Some("gatehouse service-token (command line)".into()),
        ..Default::default()
    };
    let id = match service_accounts::account_id(&st, name)
        .await
        .map_err(|e| e.to_string())?
    {
        Some(id) => id,
        None => {
            let scopes: Vec<String> = scopes.split(',').map(str::to_owned).collect();
            service_accounts::create_account(&st, actor.clone(), None, name, &scopes)
                .await
                .map_err(|e| e.to_string())?
        }
    };
    let (token, _) = service_accounts::create_token(&st, actor, None, id, "command line", "")
        .await
        .map_err(|e| e.to_string())?;
    // The token goes to standard output only, for the operator to store.
    println!("{token}");
    Ok(())
}

async fn unlock(config: Config, email: &str) -> Result<(), String> {
    let st = startup::state(config, Clock::system())
        .await
        .map_err(|e| e.to_string())?;
    let actor = Actor {
        user_agent: Some("gatehouse unlock (command line)".into()),
        ..Default::default()
    };
    match identity::unlock(&st, actor, email).await {
        Ok(was_locked) => {
            println!("{email}: {}", if was_locked { "unlocked" } else { "was not locked" });
            Ok(())
        }
        Err(e) => Err(e.to_string()),
    }
}

/// `--public-key` and `--witness-key`, each at most once, in any order.
fn bundle_keys<'a>(rest: &[&'a str]) -> Option<(Option<&'a str>, Option<&'a str>)> {
    let (mut keys, mut witnesses) = (None, None);
    for pair in rest.chunks(2) {
        match pair {
            ["--public-key", k] if keys.is_none() => keys = Some(*k),
            ["--witness-key", k] if witnesses.is_none() => witnesses = Some(*k),
            _ => return None,
        }
    }
    Some((keys, witnesses))
}

/// Ed25519 public keys, hex, separated by commas.
fn key_list(list: Option<&str>, option: &str) -> Result<Option<Vec<ed25519_dalek::VerifyingKey>>, String> {
    list.map(|k| {
        k.split(',')
            .map(crate::domain::checkpoint::public_key_from_hex)
            .collect::<Option<Vec<_>>>()
            .ok_or(format!(
                "{option} must be the 64 hex digits of an Ed25519 public key (several separated by commas)"
            ))
    })
    .transpose()
}

/// `gatehouse witness` options.
fn witness_options(rest: &[&str]) -> Result<witness::Options, String> {
    let (mut url, mut state, mut token, mut once, mut interval) = (None, None, None, false, 60u64);
    let mut it = rest.iter();
    while let Some(&arg) = it.next() {
        let mut value = || it.next().copied().ok_or(format!("{arg} needs a value"));
        match arg {
            "--url" => url = Some(value()?.to_owned()),
            "--state" => state = Some(std::path::PathBuf::from(value()?)),
            "--token" => token = Some(value()?.to_owned()),
            "--token-file" => {
                let path = value()?;
                let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?;
                token = Some(text.trim().to_owned());
            }
            "--once" => once = true,
            "--interval" => {
                interval = value()?
                    .parse()
                    .ok()
                    .filter(|s| (1..=86_400).contains(s))
                    .ok_or("--interval is a number of seconds from 1 to 86400")?
            }
            other => return Err(format!("unknown option {other}")),
        }
    }
    let url = url.ok_or("--url is required")?;
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err("--url must be an http(s) address".into());
    }
    Ok(witness::Options {
        url,
        state: state.ok_or("--state is required")?,
        token: token.ok_or("--token or --token-file is required")?,
        once,
        interval: std::time::Duration::from_secs(interval),
    })
}

async fn witness_add(config: Config, name: &str, key: &str, account: &str) -> Result<(), String> {
    let st = startup::state(config, Clock::system())
        .await
        .map_err(|e| e.to_string())?;
    let actor = Actor {
        user_agent: Some("gatehouse audit witness-add (command line)".into()),
        ..Default::default()
    };
    let account_id = service_accounts::account_id(&st, account)
        .await
        .map_err(|e| e.to_string())?
        .ok_or(format!("there is no service account named {account}"))?;
    audit::witnesses::add(&st.db, st.clock.now(), actor, name, key, account_id)
        .await
        .map_err(|e| e.to_string())?;
    println!("witness {name} registered; it posts through service account {account}");
    Ok(())
}

async fn witness_retire(config: Config, name: &str) -> Result<(), String> {
    let st = startup::state(config, Clock::system())
        .await
        .map_err(|e| e.to_string())?;
    let actor = Actor {
        user_agent: Some("gatehouse audit witness-retire (command line)".into()),
        ..Default::default()
    };
    audit::witnesses::retire(&st.db, st.clock.now(), actor, name)
        .await
        .map_err(|e| e.to_string())?;
    println!("witness {name} retired");
    Ok(())
}

/// Checks an export bundle offline: no database, no configuration needed.
/// `key`: every published key after a rotation, oldest first, by commas;
/// `witness_keys`: witnesses that must have co-signed.
fn verify_bundle(path: &str, key: Option<&str>, witness_keys: Option<&str>) -> Result<(), String> {
    use crate::domain::bundle;
    use std::io::BufRead;
    let trusted = key_list(key, "--public-key")?;
    let witnesses = key_list(witness_keys, "--witness-key")?.unwrap_or_default();
    let file = std::fs::File::open(path).map_err(|e| format!("cannot open {path}: {e}"))?;
    if is_review_evidence(&file) {
        if !witnesses.is_empty() {
            return Err(
                "an access review's evidence bundle carries no co-signatures: --witness-key applies to \
                        audit export bundles"
                    .into(),
            );
        }
        return verify_evidence(path, trusted.as_deref());
    }
    // The check read the first line: start again from the top.
    let file = std::fs::File::open(path).map_err(|e| format!("cannot open {path}: {e}"))?;
    // A read error becomes an unreadable line, so it is reported, not skipped.
    let lines = std::io::BufReader::new(file)
        .lines()
        .map(|l| l.unwrap_or_else(|_| "\u{0}".into()));
    let started = std::time::Instant::now();
    match bundle::verify(lines, trusted.as_deref()) {
        Ok(r) if !witnesses.iter().all(|w| r.witnessed_by(w)) => {
            let missing: Vec<String> = witnesses
                .iter()
                .filter(|w| !r.witnessed_by(w))
                .map(|w| hex::encode(w.as_bytes()))
                .collect();
            Err(format!(
                "bundle REJECTED: no co-signature by witness key {} of a checkpoint covering event {} (checkpoint {} \
                 or later)",
                missing.join(", "),
                r.last_seq,
                r.covered_by
            ))
        }
        Ok(r) => {
            println!(
                "OK: events {} to {} ({} events) verified; {} signed checkpoints match; the last event is covered \
                    by checkpoint {}; signed with key {} ({} ms)",
                r.first_seq,
                r.last_seq,
                r.events,
                r.checkpoints,
                r.covered_by,
                r.key_ids.join(", "),
                started.elapsed().as_millis()
            );
            for (n, key, name) in &r.cosigned {
                println!("checkpoint {n} co-signed by witness {name} (key {key})");
            }
            if trusted.is_none() {
                println!(
                    "Compare the key id with the key published at /api/v1/audit/public-key, or pass --public-key HEX."
                );
            }
            Ok(())
        }
        Err(e) => Err(format!("bundle REJECTED: {e}")),
    }
}

/// Whether the file starts with an access review's evidence header.
fn is_review_evidence(file: &std::fs::File) -> bool {
    use std::io::BufRead;
    let mut first = String::new();
    let _ = std::io::BufReader::new(file).read_line(&mut first);
    serde_json::from_str::<serde_json::Value>(&first)
        .ok()
        .and_then(|v| v.get("format").and_then(|f| f.as_str()).map(str::to_owned))
        .is_some_and(|f| f == crate::domain::evidence::FORMAT)
}

/// Checks an access review's evidence bundle offline.
fn verify_evidence(path: &str, trusted: Option<&[ed25519_dalek::VerifyingKey]>) -> Result<(), String> {
    use crate::domain::evidence;
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?;
    match evidence::verify(text.lines(), trusted) {
        Ok(r) => {
            println!(
                "OK: access review {}: {} audit events each proven under checkpoint {} ({} events); the report \
                    matches the SHA-256 recorded at its close ({}); signed with key {}",
                r.campaign_id,
                r.events,
                r.checkpoint,
                r.tree_size,
                r.report_sha256,
                r.key_ids.join(", ")
            );
            if trusted.is_none() {
                println!(
                    "Compare the key id with the key published at /api/v1/audit/public-key, or pass --public-key HEX."
                );
            }
            Ok(())
        }
        Err(e) => Err(format!("evidence REJECTED: {e}")),
    }
}

async fn verify(config: Config) -> Result<(), String> {
    let st = startup::state(config, Clock::system())
        .await
        .map_err(|e| e.to_string())?;
    let started = std::time::Instant::now();
    let report = audit::verify_signed(&st.db, &st.audit_keys.current().public)
        .await
        .map_err(|e| e.to_string())?;
    if let Some(e) = report.problem() {
        return Err(format!("audit chain BROKEN after {} good events: {e}", report.checked));
    }
    // The chain is sound: the stored tree proofs are built from must be its.
    let nodes = audit::tree::check(&st.db)
        .await
        .map_err(|e| format!("audit chain sound, but its stored Merkle tree is DAMAGED (proofs are refused): {e}"))?;
    println!(
        "OK: {} events verified, head at event {}, {} signed checkpoints match, {} stored tree nodes match ({} ms)",
        report.checked,
        report.head_seq,
        report.checkpoints,
        nodes,
        started.elapsed().as_millis()
    );
    Ok(())
}

//! `gatehouse witness`: an independent witness of a Gatehouse audit trail,
//! meant to run on another machine, under other people's control. It polls
//! the signed checkpoints, checks each extends the last one it accepted
//! (signature, link, and an RFC 9162 consistency proof), remembers what it
//! accepted in its state directory, and co-signs each accepted checkpoint
//! with its own Ed25519 key. A fork, a rollback or a checkpoint that does
//! not extend the last one raises the alarm: a log line and exit code 3.
//! The rules live in domain::witness; docs/audit-chain.md, "Witnesses",
//! says how to run one.

use crate::domain::{
    checkpoint::{self, Checkpoint},
    merkle::Hash,
    witness::{self, Alarm},
};
use ed25519_dalek::{SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Exit code of a raised alarm (1 is any other failure, 2 a usage error).
pub const ALARM_EXIT: i32 = 3;

pub struct Options {
    /// Gatehouse's address, e.g. https://gatehouse.example.com.
    pub url: String,
    pub state: PathBuf,
    pub token: String,
    /// Poll once and exit instead of every `interval`.
    pub once: bool,
    pub interval: Duration,
}

/// What stops a poll.
#[derive(Debug)]
pub enum Failure {
    /// The published history is not the one this witness saw.
    Alarm(Alarm),
    /// Anything else (network, refusals, a full disk): try again later.
    Trouble(String),
}

impl From<Alarm> for Failure {
    fn from(a: Alarm) -> Self {
        Failure::Alarm(a)
    }
}

fn trouble(e: impl std::fmt::Display) -> Failure {
    Failure::Trouble(e.to_string())
}

/// What the witness keeps in `state.json`.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct State {
    /// The log's signing keys as first seen: key id, public key (hex).
    pub log_keys: Vec<(String, String)>,
    /// The last checkpoint accepted and co-signed.
    pub last: Option<Checkpoint>,
}

/// The witness's key (`witness.key`, 32 bytes of seed as hex, made on the
/// first run, readable by its owner only).
pub fn key(dir: &Path) -> Result<SigningKey, String> {
    let path = dir.join("witness.key");
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let mut seed = [0u8; 32];
            hex::decode_to_slice(text.trim(), &mut seed)
                .map_err(|_| format!("{} is not 64 hex digits", path.display()))?;
            Ok(SigningKey::from_bytes(&seed))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = SigningKey::from_bytes(&crate::server::platform::crypto::random_bytes::<32>());
            write_private(&path, &hex::encode(key.to_bytes()))?;
            Ok(key)
        }
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// Writes `text` to `path` through a temporary file and a rename, so a
/// crash leaves the old file or the new one; mode 0600.
fn write_private(path: &Path, text: &str) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

pub fn load_state(dir: &Path) -> Result<State, String> {
    let path = dir.join("state.json");
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text).map_err(|e| format!("{} is damaged: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

fn save_state(dir: &Path, state: &State) -> Result<(), String> {
    let text = serde_json::to_string_pretty(state).map_err(|e| e.to_string())?;
    write_private(&dir.join("state.json"), &text)
}

struct Log<'a> {
    http: reqwest::Client,
    base: &'a str,
    token: &'a str,
}

impl Log<'_> {
    async fn get(&self, path: &str) -> Result<Value, Failure> {
        let url = format!("{}{path}", self.base);
        let r = self
            .http
            .get(&url)
            .bearer_auth(self.token)
            .send()
            .await
            .map_err(|e| trouble(format!("GET {path}: {e}")))?;
        answer(path, r).await
    }

    async fn checkpoints(&self, after: i64, limit: i64) -> Result<Vec<Checkpoint>, Failure> {
        let v = self
            .get(&format!("/api/v1/audit/checkpoints?after={after}&limit={limit}"))
            .await?;
        serde_json::from_value::<Vec<Checkpoint>>(v["checkpoints"].clone())
            .map_err(|e| trouble(format!("the checkpoint list is not understood: {e}")))
    }

    async fn proof(&self, from: i64, to: i64) -> Result<Vec<Hash>, Failure> {
        let v = self
            .get(&format!("/api/v1/audit/consistency?from={from}&to={to}"))
            .await?;
        let nodes = v["proof"].as_array().cloned().unwrap_or_default();
        nodes
            .iter()
            .map(|n| {
                let mut h = [0u8; 32];
                hex::decode_to_slice(n.as_str().unwrap_or_default(), &mut h).map(|()| h)
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| trouble("the consistency proof holds a node that is not 64 hex digits"))
    }
}

async fn answer(what: &str, r: reqwest::Response) -> Result<Value, Failure> {
    let status = r.status();
    // Bytes, not reqwest's `json` (a feature only the tests enable).
    let body: Value = match r.bytes().await {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        Err(_) => Value::Null,
    };
    if status.is_success() {
        return Ok(body);
    }
    let message = body["error"].as_str().unwrap_or("no message");
    let request = body["request_id"].as_str().unwrap_or("-");
    Err(trouble(format!("{what}: {status}: {message} (request {request})")))
}

/// One poll: checks every checkpoint published since the last accepted one
/// and co-signs it. Answers how many it accepted.
pub async fn poll(opts: &Options, key: &SigningKey, state: &mut State) -> Result<usize, Failure> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(trouble)?;
    let log = Log {
        http,
        base: opts.url.trim_end_matches('/'),
        token: &opts.token,
    };
    let published = log.get("/api/v1/audit/public-key").await?;
    let published: Vec<(String, String)> = published["keys"]
        .as_array()
        .map(|keys| {
            keys.iter()
                .map(|k| {
                    (
                        k["key_id"].as_str().unwrap_or_default().to_owned(),
                        k["public_key"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    state.log_keys = witness::merge_keys(&state.log_keys, &published)?;
    let keys: Vec<VerifyingKey> = state
        .log_keys
        .iter()
        .filter_map(|(_, k)| checkpoint::public_key_from_hex(k))
        .collect();
    // What it accepted must still be published as it was.
    if let Some(last) = &state.last {
        match log.checkpoints(last.number - 1, 1).await?.first() {
            Some(cp) if cp == last => {}
            Some(_) => return Err(Alarm::Fork { number: last.number }.into()),
            None => return Err(Alarm::Rollback { number: last.number }.into()),
        }
    }
    let mut accepted = 0;
    loop {
        let after = state.last.as_ref().map_or(0, |c| c.number);
        let batch = log.checkpoints(after, 100).await?;
        if batch.is_empty() {
            return Ok(accepted);
        }
        for cp in batch {
            witness::precheck(state.last.as_ref(), &cp, &keys)?;
            let proof = match &state.last {
                Some(last) if last.tree_size < cp.tree_size => log.proof(last.tree_size, cp.tree_size).await?,
                _ => Vec::new(),
            };
            witness::judge(state.last.as_ref(), &cp, &keys, &proof)?;
            cosign(&log, key, &cp).await?;
            tracing::info!(
                number = cp.number,
                tree_size = cp.tree_size,
                "witness accepted and co-signed a checkpoint"
            );
            state.last = Some(cp);
            save_state(&opts.state, state).map_err(Failure::Trouble)?;
            accepted += 1;
        }
    }
}

async fn cosign(log: &Log<'_>, key: &SigningKey, cp: &Checkpoint) -> Result<(), Failure> {
    let body = serde_json::json!({
        "checkpoint": cp.number,
        "public_key": hex::encode(key.verifying_key().as_bytes()),
        "signature": witness::cosign(key, cp),
    });
    let r = log
        .http
        .post(format!("{}/api/v1/audit/cosignatures", log.base))
        .bearer_auth(log.token)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body.to_string())
        .send()
        .await
        .map_err(|e| trouble(format!("POST /api/v1/audit/cosignatures: {e}")))?;
    answer("POST /api/v1/audit/cosignatures", r).await.map(|_| ())
}

/// The command: polls (once, or every interval until an alarm), and
/// answers the exit code.
pub async fn run(opts: Options) -> i32 {
    if let Err(e) = std::fs::create_dir_all(&opts.state) {
        eprintln!("gatehouse witness: cannot create {}: {e}", opts.state.display());
        return 1;
    }
    let (key, mut state) = match (key(&opts.state), load_state(&opts.state)) {
        (Ok(k), Ok(s)) => (k, s),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("gatehouse witness: {e}");
            return 1;
        }
    };
    println!("witness public key: {}", hex::encode(key.verifying_key().as_bytes()));
    loop {
        match poll(&opts, &key, &mut state).await {
            Ok(n) => {
                let last = state.last.as_ref().map_or(0, |c| c.number);
                println!("ok: {n} new checkpoints accepted and co-signed; last accepted {last}");
                if opts.once {
                    return 0;
                }
            }
            Err(Failure::Alarm(a)) => {
                tracing::error!(alarm = %a, "WITNESS ALARM");
                eprintln!("WITNESS ALARM: {a}");
                return ALARM_EXIT;
            }
            Err(Failure::Trouble(e)) => {
                tracing::warn!(problem = %e, "witness poll failed");
                eprintln!("gatehouse witness: {e}");
                if opts.once {
                    return 1;
                }
            }
        }
        tokio::time::sleep(opts.interval).await;
    }
}

//! Targets and the privileges roles carry on them: registered by
//! administrators, the connector's password sealed under the master key.

use super::connector::{Endpoint, Session, TargetError};
use crate::domain::actions::Action;
use crate::domain::audit::{NewEvent, Outcome};
use crate::domain::databases as rules;
use crate::dto::{ConnectionReport, MappingView, TargetView};
use crate::errors::AppError;
use crate::server::{
    audit,
    platform::{db::text, request::RequestCtx},
    state::AppState,
};
use secrecy::SecretString;
use serde_json::json;
use sqlx::Row;

/// What an administrator types to register a target.
pub struct TargetInput {
    pub name: String,
    pub host: String,
    pub port: String,
    pub tls: bool,
    /// A private certificate authority (PEM), or empty for public roots.
    pub tls_ca: String,
    pub username: String,
    pub password: String,
}

/// A registered target, its connector's password opened.
#[derive(Clone)]
pub struct Target {
    pub id: i64,
    pub name: String,
    pub endpoint: Endpoint,
}

fn sealing(id: i64) -> String {
    format!("db-target:{id}")
}

fn check(st: &AppState, i: &TargetInput) -> Result<(String, String, u16, String), AppError> {
    let bad = |m: &str| Err(AppError::Validation(m.into()));
    let name = i.name.trim();
    if name.is_empty() || name.chars().count() > 80 || name.chars().any(char::is_control) {
        return bad("Give the target a name of up to 80 characters.");
    }
    let host = i.host.trim().to_ascii_lowercase();
    if host.is_empty() {
        return bad("Enter the database server's host name.");
    }
    if !st.config.db_target_hosts.contains(&host) {
        return Err(AppError::Validation(format!(
            "The host {host} is not in GATEHOUSE_DB_TARGET_ALLOWED_HOSTS: an operator must allow it first."
        )));
    }
    let port = match i.port.trim() {
        "" => 3306,
        p => match p.parse::<u16>() {
            Ok(p) if p > 0 => p,
            _ => return bad("The port must be a number from 1 to 65535."),
        },
    };
    let user = i.username.trim();
    if user.is_empty() || user.len() > 80 || user.chars().any(|c| c.is_control() || c == '\'') {
        return bad("Enter the connector account's user name (up to 80 characters).");
    }
    if i.password.is_empty() || i.password.len() > 200 {
        return bad("Enter the connector account's password.");
    }
    let ca = i.tls_ca.trim();
    if !ca.is_empty() && !i.tls {
        return bad("A CA certificate is used only with TLS: turn TLS on, or leave the certificate empty.");
    }
    if !ca.is_empty()
        && (ca.len() > 65_536
            || !ca.starts_with("-----BEGIN CERTIFICATE-----")
            || !ca.ends_with("-----END CERTIFICATE-----")
            || ca.chars().any(|c| c.is_control() && c != '\n' && c != '\r'))
    {
        return bad(
            "The CA certificate must be one or more PEM certificates (-----BEGIN CERTIFICATE----- …), up to 64 KiB.",
        );
    }
    Ok((name.to_owned(), host, port, user.to_owned()))
}

/// Registers a target after connecting to it with the credentials given:
/// a target Gatehouse cannot reach, or whose connector lacks a privilege
/// it needs, is refused with the reason, and nothing is stored.
pub async fn register(st: &AppState, ctx: &RequestCtx, input: TargetInput) -> Result<i64, AppError> {
    let (name, host, port, username) = check(st, &input)?;
    let endpoint = Endpoint {
        host: host.clone(),
        port,
        tls: input.tls,
        tls_ca: Some(input.tls_ca.trim().to_owned()).filter(|c| !c.is_empty()),
        username: username.clone(),
        password: SecretString::from(input.password),
    };
    let by = ctx.actor().user_id.ok_or(AppError::Forbidden)?;
    let report = probe(&endpoint).await?;
    if !report.missing.is_empty() {
        return Err(AppError::Refused(format!(
            "The connector account lacks: {}. See the README for the SQL that grants them.",
            report.missing.join(", ")
        )));
    }
    let now = st.clock.now();
    let mut tx = st.db.begin_write().await?;
    let taken: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM db_targets WHERE name = ?")
        .bind(&name)
        .fetch_one(tx.conn())
        .await?;
    if taken > 0 {
        return Err(AppError::Conflict(format!("A target named {name} exists.")));
    }
    // The id seals the password, so the row is written first with an
    // empty secret and sealed in the same transaction.
    let id = tx
        .insert_returning_id(
            sqlx::query(
                "INSERT INTO db_targets (name, host, port, tls, tls_ca, username, secret_enc, created_by, created_at) \
                 VALUES (?, ?, ?, ?, ?, ?, '', ?, ?)",
            )
            .bind(&name)
            .bind(&host)
            .bind(port as i64)
            .bind(input.tls as i64)
            .bind(&endpoint.tls_ca)
            .bind(&username)
            .bind(by)
            .bind(now),
        )
        .await?;
    use secrecy::ExposeSecret;
    let sealed = st.key.seal(&sealing(id), endpoint.password.expose_secret().as_bytes());
    sqlx::query("UPDATE db_targets SET secret_enc = ? WHERE id = ?")
        .bind(sealed)
        .bind(id)
        .execute(tx.conn())
        .await?;
    audit::append(
        &mut tx,
        now,
        vec![NewEvent::new(Action::DbTargetRegistered, Outcome::Success, ctx.actor())
            .target("db_target", id)
            .details(json!({
                "name": name, "host": host, "port": port, "tls": input.tls, "connector": username, "server": report.server,
                // The CA's fingerprint, so the trail shows which authority was trusted.
                "tls_ca_sha256": endpoint.tls_ca.as_deref().map(|c| crate::server::platform::crypto::sha256_hex(c.as_bytes())),
            }))],
    )
    .await?;
    tx.commit().await?;
    Ok(id)
}

/// Connects and lists what the connector may do, naming what it lacks.
async fn probe(e: &Endpoint) -> Result<ConnectionReport, AppError> {
    let mut s = Session::open(e).await.map_err(unreachable)?;
    let grants = s.own_grants().await.map_err(unreachable)?;
    let missing = rules::missing_privileges(s.flavour == super::connector::Flavour::MariaDb, &grants);
    let server = s.version.clone();
    s.close().await;
    Ok(ConnectionReport {
        server,
        grants,
        missing,
    })
}

/// A target's failure as people read it: the server's words (no statement,
/// no password: sqlx's message holds neither).
pub fn unreachable(e: TargetError) -> AppError {
    tracing::warn!(error = %e, "database target");
    AppError::Validation(format!("The database target refused or did not answer: {e}"))
}

/// "Test connection" on a registered target.
pub async fn test(st: &AppState, id: i64) -> Result<ConnectionReport, AppError> {
    let t = load(st, id).await?.ok_or(AppError::NotFound)?;
    probe(&t.endpoint).await
}

/// Every target, its connector's password opened (for the jobs).
pub async fn all(st: &AppState) -> Result<Vec<Target>, AppError> {
    let rows = sqlx::query("SELECT id FROM db_targets ORDER BY id")
        .fetch_all(st.db.pool())
        .await?;
    let mut out = Vec::new();
    for r in rows {
        if let Some(t) = load(st, r.try_get("id")?).await? {
            out.push(t);
        }
    }
    Ok(out)
}

pub async fn load(st: &AppState, id: i64) -> Result<Option<Target>, AppError> {
    let Some(r) =
        sqlx::query("SELECT id, name, host, port, tls, tls_ca, username, secret_enc FROM db_targets WHERE id = ?")
            .bind(id)
            .fetch_optional(st.db.pool())
            .await?
    else {
        return Ok(None);
    };
    let password = st
        .key
        .open(&sealing(id), &text(&r, "secret_enc")?)
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| crate::errors::internal(format_args!("the connector secret of target {id} does not open")))?;
    Ok(Some(Target {
        id,
        name: text(&r, "name")?,
        endpoint: Endpoint {
            host: text(&r, "host")?,
            port: r.try_get::<i64, _>("port")? as u16,
            tls: r.try_get::<i64, _>("tls")? != 0,
            tls_ca: crate::server::platform::db::opt_text(&r, "tls_ca")?.filter(|c| !c.is_empty()),
            username: text(&r, "username")?,
            password: SecretString::from(password),
        },
    }))
}

pub async fn list(st: &AppState) -> Result<Vec<TargetView>, AppError> {
    let names = &st.config.db_names;
    let rows = sqlx::query(
        "SELECT t.id, t.name, t.host, t.port, t.tls, t.tls_ca, t.username, t.auto_correct, \
         (SELECT COUNT(*) FROM db_accounts a WHERE a.target_id = t.id AND a.status = 'pending') AS pending \
         FROM db_targets t ORDER BY t.name",
    )
    .fetch_all(st.db.pool())
    .await?;
    let all = super::mappings::all(st, None).await?;
    let mut out = Vec::new();
    for r in rows {
        let id: i64 = r.try_get("id")?;
        out.push(TargetView {
            id,
            name: text(&r, "name")?,
            host: text(&r, "host")?,
            port: r.try_get::<i64, _>("port")? as u16,
            tls: r.try_get::<i64, _>("tls")? != 0,
            private_ca: crate::server::platform::db::opt_text(&r, "tls_ca")?.is_some_and(|c| !c.is_empty()),
            username: text(&r, "username")?,
            pending: r.try_get("pending")?,
            auto_correct: r.try_get::<i64, _>("auto_correct")? != 0,
            mappings: all
                .iter()
                .filter(|s| s.target_id == id)
                .map(|s| MappingView {
                    id: s.id,
                    db_role: names.role(&s.mapping.role).unwrap_or_default(),
                    role: s.mapping.role.clone(),
                    privilege: s.mapping.privilege.sql().into(),
                    schema: s.mapping.scope.schema.clone(),
                    table: s.mapping.scope.table.clone(),
                    column: s.mapping.scope.column.clone(),
                    waiting: s.waiting,
                })
                .collect(),
        });
    }
    Ok(out)
}

/// Seals every connector password again under the master key's current
/// key, in the caller's transaction (`gatehouse rotate-master-key`); the
/// number sealed. A secret that does not open stops the rotation.
pub async fn reseal(
    tx: &mut crate::server::platform::db::WriteTx,
    master: &crate::server::platform::crypto::MasterKey,
) -> Result<u64, String> {
    let sql = format!("SELECT id, secret_enc FROM db_targets ORDER BY id{}", tx.for_update());
    let rows = sqlx::query(&sql)
        .fetch_all(tx.conn())
        .await
        .map_err(|e| e.to_string())?;
    let mut sealed = 0;
    for r in &rows {
        let id: i64 = r.try_get("id").map_err(|e| e.to_string())?;
        let value = text(r, "secret_enc").map_err(|e| e.to_string())?;
        let plain = master
            .open(&sealing(id), &value)
            .ok_or_else(|| format!("db_targets.secret_enc of target {id} does not open"))?;
        sqlx::query("UPDATE db_targets SET secret_enc = ? WHERE id = ?")
            .bind(master.seal(&sealing(id), &plain))
            .bind(id)
            .execute(tx.conn())
            .await
            .map_err(|e| e.to_string())?;
        sealed += 1;
    }
    Ok(sealed)
}

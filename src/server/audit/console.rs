//! The auditor's view of the audit chain: filtered, keyset-paginated
//! browsing (newest first, stable while events are appended) and a
//! verification run on demand. Read-only.

use super::{checkpoints, log, verify::verify_signed, witnesses};
use crate::dto::{AuditEventView, AuditPage, CheckpointView, ReportPage, ReportRowView, VerifyView};
use crate::errors::AppError;
use crate::server::{
    platform::{
        names,
        time::{format_time, parse_utc},
    },
    state::AppState,
};

pub const PAGE_SIZE: i64 = 50;

#[derive(Debug, Default, Clone)]
pub struct Filter {
    pub from: String,
    pub to: String,
    pub employee: String,
    pub action: String,
    pub outcome: String,
    pub customer: String,
    pub text: String,
    /// The system an event came from: the service that asked or reported
    /// (`svc:NAME`), or the `source_system` a report named.
    pub source: String,
    /// Only events with a smaller sequence number (the next page).
    pub before: Option<i64>,
}

pub async fn browse(st: &AppState, f: &Filter) -> Result<AuditPage, AppError> {
    browse_pages(st, f, PAGE_SIZE).await
}

/// One page of `size` events matching `f`, newest first.
pub async fn browse_pages(st: &AppState, f: &Filter, size: i64) -> Result<AuditPage, AppError> {
    let too_long = [&f.employee, &f.action, &f.customer, &f.text, &f.source]
        .iter()
        .any(|s| s.chars().count() > 254);
    if too_long {
        return Err(AppError::Validation("A filter is too long.".into()));
    }
    if !f.outcome.is_empty() && !["success", "failure", "denied"].contains(&f.outcome.as_str()) {
        return Err(AppError::Validation("Unknown outcome filter.".into()));
    }
    const SELECT: &str = "SELECT seq, at, actor_user_id, actor_session, actor_ip, actor_ua, action, target_type, target_id, customer_id, \
                          outcome, reason, details, prev_hash, hash FROM audit_events WHERE 1 = 1";
    // The conditions other than the employee's, and their values in order.
    let mut sql = String::new();
    #[derive(Clone)]
    enum Arg {
        I(i64),
        T(String),
    }
    let mut args: Vec<Arg> = Vec::new();
    if let Some(b) = f.before {
        sql.push_str(" AND seq < ?");
        args.push(Arg::I(b));
    }
    if !f.from.trim().is_empty() {
        sql.push_str(" AND at >= ?");
        args.push(Arg::I(parse_utc(&f.from)?));
    }
    if !f.to.trim().is_empty() {
        sql.push_str(" AND at < ?");
        args.push(Arg::I(parse_utc(&f.to)?));
    }
    let employee = if f.employee.trim().is_empty() {
        None
    } else {
        let e = f.employee.trim().to_lowercase();
        let id = match e.parse::<i64>() {
            Ok(id) => Some(id),
            Err(_) => names::id_by_email(st.db.pool(), &e).await?,
        };
        Some(id.unwrap_or(-1))
    };
    if !f.action.trim().is_empty() {
        sql.push_str(" AND action = ?");
        args.push(Arg::T(f.action.trim().to_owned()));
    }
    if !f.outcome.is_empty() {
        sql.push_str(" AND outcome = ?");
        args.push(Arg::T(f.outcome.clone()));
    }
    if !f.customer.trim().is_empty() {
        sql.push_str(" AND customer_id = ?");
        args.push(Arg::T(f.customer.trim().to_owned()));
    }
    if !f.source.trim().is_empty() {
        // Details are canonical JSON (sorted keys, no spaces), so the
        // source_system member has exactly this form.
        let name = f.source.trim();
        let member = serde_json::to_string(&serde_json::json!({ "source_system": name })).unwrap_or_default();
        let member = member
            .trim_start_matches('{')
            .trim_end_matches('}')
            .replace('!', "!!")
            .replace('%', "!%")
            .replace('_', "!_");
        sql.push_str(" AND (actor_session = ? OR details LIKE ? ESCAPE '!')");
        args.push(Arg::T(format!("svc:{name}")));
        args.push(Arg::T(format!("%{member}%")));
    }
    if !f.text.trim().is_empty() {
        // '!' escapes LIKE's wildcards the same way on SQLite and MySQL.
        let needle = f
            .text
            .trim()
            .to_lowercase()
            .replace('!', "!!")
            .replace('%', "!%")
            .replace('_', "!_");
        sql.push_str(" AND (LOWER(reason) LIKE ? ESCAPE '!' OR LOWER(details) LIKE ? ESCAPE '!')");
        args.push(Arg::T(format!("%{needle}%")));
        args.push(Arg::T(format!("%{needle}%")));
    }
    let limit = Arg::I(size + 1);
    let (sql, args) = match employee {
        None => (format!("{SELECT}{sql} ORDER BY seq DESC LIMIT ?"), [args, vec![limit]].concat()),
        // The employee as actor, or as the subject of the event: two index
        // walks, newest first, merged (an OR of the two would make the
        // database collect and sort every one of the employee's events).
        Some(id) => (
            format!(
                "SELECT * FROM ({SELECT} AND actor_user_id = ?{sql} ORDER BY seq DESC LIMIT ?) AS by_actor \
                 UNION SELECT * FROM ({SELECT} AND target_type = 'user' AND target_id = ?{sql} ORDER BY seq DESC LIMIT ?) AS by_subject \
                 ORDER BY seq DESC LIMIT ?"
            ),
            [vec![Arg::I(id)], args.clone(), vec![limit.clone(), Arg::T(id.to_string())], args, vec![limit.clone(), limit]].concat(),
        ),
    };
    let mut q = sqlx::query(&sql);
    for a in args {
        q = match a {
            Arg::I(i) => q.bind(i),
            Arg::T(t) => q.bind(t),
        };
    }
    let rows = q.fetch_all(st.db.pool()).await?;
    let names = names::names(st.db.pool()).await?;
    let mut events = Vec::with_capacity(rows.len());
    for r in rows.iter().take(size as usize) {
        let e = log::event_from_row(r)?;
        let actor = match (e.actor.user_id, e.actor.session.as_deref()) {
            (Some(id), Some(s)) if s.starts_with("svc:") => format!(
                "{} (reported by {})",
                names::opt_name(&names, Some(id)).unwrap_or_default(),
                &s[4..]
            ),
            (Some(id), _) => names::opt_name(&names, Some(id)).unwrap_or_default(),
            (None, Some(s)) if s.starts_with("svc:") => format!("service {}", &s[4..]),
            _ => "system or anonymous".into(),
        };
        let details = serde_json::from_str::<serde_json::Value>(&e.details)
            .ok()
            .and_then(|v| serde_json::to_string_pretty(&v).ok())
            .unwrap_or(e.details.clone());
        events.push(AuditEventView {
            seq: e.seq,
            at: format_time(e.at),
            actor,
            actor_ip: e.actor.ip,
            actor_session: e.actor.session,
            actor_agent: e.actor.user_agent,
            action: e.action,
            target: e
                .target_type
                .map(|t| format!("{t} {}", e.target_id.unwrap_or_default())),
            customer_id: e.customer_id,
            outcome: e.outcome,
            reason: e.reason,
            details,
            prev_hash: e.prev_hash,
            hash: e.hash,
        });
    }
    let next_before = (rows.len() as i64 > size)
        .then(|| events.last().map(|e| e.seq))
        .flatten();
    Ok(AuditPage { events, next_before })
}

/// Verifies the whole chain now.
pub async fn verify_now(st: &AppState) -> Result<VerifyView, AppError> {
    let report = verify_signed(&st.db, &st.audit_keys.current().public).await?;
    // A sound chain, then the stored tree proofs are built from.
    let (ok, message) = match report.problem() {
        Some(e) => (false, format!("The chain is broken: {e}")),
        None => match super::tree::check(&st.db).await {
            Ok(nodes) => (
                true,
                format!(
                    "The chain is intact: {} events, head at {}; {} signed checkpoints match; {nodes} stored tree nodes match.",
                    report.checked, report.head_seq, report.checkpoints
                ),
            ),
            Err(super::tree::TreeError::Db(e)) => return Err(e.into()),
            Err(e) => (
                false,
                format!("The chain is intact, but the stored Merkle tree is damaged (proofs are refused): {e}"),
            ),
        },
    };
    Ok(VerifyView {
        ok,
        checked: report.checked,
        head_seq: report.head_seq,
        message,
        at: format_time(st.clock.now()),
    })
}

/// Checkpoints with the active witnesses that co-signed each and, when a
/// quorum is configured, the newest final checkpoint; in the given order.
async fn checkpoint_views(
    st: &AppState,
    cps: Vec<crate::domain::checkpoint::Checkpoint>,
) -> Result<Vec<CheckpointView>, AppError> {
    let (Some(low), Some(high)) = (cps.iter().map(|c| c.number).min(), cps.iter().map(|c| c.number).max()) else {
        return Ok(Vec::new());
    };
    let quorum = st.config.witness_quorum;
    let cosigned = witnesses::cosignatures(&st.db, low, high, true).await?;
    let last_final = if quorum == 0 {
        Some(high)
    } else {
        witnesses::last_final(&st.db, quorum).await?
    };
    Ok(cps
        .into_iter()
        .map(|cp| CheckpointView {
            cosigned_by: cosigned
                .iter()
                .filter(|c| c.checkpoint == cp.number)
                .map(|c| c.witness.clone())
                .collect(),
            number: cp.number,
            tree_size: cp.tree_size,
            root: cp.root,
            at: format_time(cp.at),
            key_id: cp.key_id,
            quorum,
            last_final,
        })
        .collect())
}

pub async fn latest_checkpoint(st: &AppState) -> Result<Option<CheckpointView>, AppError> {
    let latest = checkpoints::latest(st.db.pool()).await?;
    Ok(checkpoint_views(st, latest.into_iter().collect()).await?.pop())
}

/// The ten newest checkpoints, newest first, with their witnesses.
pub async fn recent_checkpoints(st: &AppState) -> Result<Vec<CheckpointView>, AppError> {
    let Some(latest) = checkpoints::latest(st.db.pool()).await? else {
        return Ok(Vec::new());
    };
    let mut cps = checkpoints::list(st.db.pool(), (latest.number - 10).max(0), 10).await?;
    cps.reverse();
    checkpoint_views(st, cps).await
}

/// Signs now when events arrived since the latest checkpoint; answers the
/// latest checkpoint either way.
pub async fn sign_checkpoint(st: &AppState) -> Result<Option<CheckpointView>, AppError> {
    match checkpoints::sign(st, true).await {
        Ok(Some(cp)) => Ok(checkpoint_views(st, vec![cp]).await?.pop()),
        Ok(None) => latest_checkpoint(st).await,
        Err(checkpoints::SignError::Broken { after, problem }) => {
            tracing::error!(after, problem = %problem, "AUDIT CHAIN DOES NOT VERIFY: checkpoint not signed");
            Err(AppError::Conflict(format!(
                "No checkpoint was signed: the audit chain does not verify ({problem})."
            )))
        }
        Err(checkpoints::SignError::Db(e)) => Err(e.into()),
        Err(e @ checkpoints::SignError::Key(_)) => Err(crate::errors::internal(e)),
    }
}

// ---------------------------------------------------------------- reports

/// What an auditor report asks for.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default)]
pub struct ReportQuery {
    pub kind: String,
    pub customer: String,
    pub employee: String,
    pub from: String,
    pub to: String,
    pub before: Option<i64>,
}

/// One page of `size` report rows, newest first.
pub async fn report_pages(st: &AppState, q: &ReportQuery, size: i64) -> Result<ReportPage, AppError> {
    use crate::domain::{
        actions::Action,
        reports::{access_row, ReportKind, ACCESS_ACTIONS},
    };
    let kind = ReportKind::parse(q.kind.trim())
        .ok_or_else(|| AppError::Validation("Choose a report: customer, employee or denied.".into()))?;
    if [&q.customer, &q.employee].iter().any(|s| s.chars().count() > 254) {
        return Err(AppError::Validation("A field is too long.".into()));
    }
    let mut sql = format!("SELECT {} FROM audit_events WHERE action IN (?, ?)", log::COLUMNS);
    enum Arg {
        I(i64),
        T(String),
    }
    let mut args: Vec<Arg> = ACCESS_ACTIONS.iter().map(|a| Arg::T(a.id().to_owned())).collect();
    match kind {
        ReportKind::Customer => {
            let c = q.customer.trim();
            if c.is_empty() {
                return Err(AppError::Validation("Name the customer id.".into()));
            }
            sql.push_str(" AND customer_id = ?");
            args.push(Arg::T(c.to_owned()));
        }
        ReportKind::Employee => {
            let e = q.employee.trim().to_lowercase();
            let id = match e.parse::<i64>() {
                Ok(id) => Some(id),
                Err(_) if e.is_empty() => return Err(AppError::Validation("Name the employee (email or id).".into())),
                Err(_) => names::id_by_email(st.db.pool(), &e).await?,
            };
            let id = id.ok_or_else(|| AppError::Validation("No employee has that email.".into()))?;
            sql.push_str(
                " AND customer_id IS NOT NULL AND ((action = ? AND target_type = 'user' AND target_id = ?) \
                 OR (action = ? AND actor_user_id = ?))",
            );
            args.push(Arg::T(Action::AccessCheck.id().to_owned()));
            args.push(Arg::T(id.to_string()));
            args.push(Arg::T(Action::DataAccess.id().to_owned()));
            args.push(Arg::I(id));
        }
        ReportKind::Denied => {
            sql.push_str(" AND action = ? AND outcome = 'denied'");
            args.push(Arg::T(Action::AccessCheck.id().to_owned()));
        }
    }
    if let Some(b) = q.before {
        sql.push_str(" AND seq < ?");
        args.push(Arg::I(b));
    }
    if !q.from.trim().is_empty() {
        sql.push_str(" AND at >= ?");
        args.push(Arg::I(parse_utc(&q.from)?));
    }
    if !q.to.trim().is_empty() {
        sql.push_str(" AND at < ?");
        args.push(Arg::I(parse_utc(&q.to)?));
    }
    sql.push_str(" ORDER BY seq DESC LIMIT ?");
    args.push(Arg::I(size + 1));
    let mut query = sqlx::query(&sql);
    for a in args {
        query = match a {
            Arg::I(i) => query.bind(i),
            Arg::T(t) => query.bind(t),
        };
    }
    let rows = query.fetch_all(st.db.pool()).await?;
    let names = names::names(st.db.pool()).await?;
    let mut out = Vec::new();
    for row in rows.iter().take(size as usize) {
        let Some(r) = access_row(&log::event_from_row(row)?) else {
            continue;
        };
        out.push(ReportRowView {
            seq: r.seq,
            at: format_time(r.at),
            employee: names::opt_name(&names, r.employee_id).unwrap_or_else(|| "unknown employee".into()),
            what: r.what,
            customer_id: r.customer_id,
            purpose: r.purpose,
            grant: r.grant,
            decision: r.decision,
            source: r.source,
        });
    }
    let next_before = (rows.len() as i64 > size).then(|| out.last().map(|r| r.seq)).flatten();
    Ok(ReportPage { rows: out, next_before })
}

pub const REPORT_CSV_HEADER: &str = "seq,time_utc,employee,access,customer_id,purpose,grant,decision,source\r\n";

pub fn report_csv_row(r: &ReportRowView) -> String {
    let cells = [
        r.seq.to_string(),
        r.at.clone(),
        r.employee.clone(),
        r.what.clone(),
        r.customer_id.clone().unwrap_or_default(),
        r.purpose.clone().unwrap_or_default(),
        r.grant.clone().unwrap_or_default(),
        r.decision.clone(),
        r.source.clone().unwrap_or_default(),
    ];
    let mut line = cells.iter().map(|c| csv_cell(c)).collect::<Vec<_>>().join(",");
    line.push_str("\r\n");
    line
}

// ---------------------------------------------------------------- CSV export

/// A CSV cell: quoted when needed, and defused when a spreadsheet would
/// read it as a formula (OWASP CSV injection).
pub fn csv_cell(value: &str) -> String {
    let v = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    if v.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v
    }
}

pub const CSV_HEADER: &str = "seq,time_utc,actor,action,outcome,customer_id,target,reason,details,hash\r\n";

pub fn csv_row(e: &AuditEventView) -> String {
    let cells = [
        e.seq.to_string(),
        e.at.clone(),
        e.actor.clone(),
        e.action.clone(),
        e.outcome.as_str().to_owned(),
        e.customer_id.clone().unwrap_or_default(),
        e.target.clone().unwrap_or_default(),
        e.reason.clone().unwrap_or_default(),
        e.details.clone(),
        e.hash.clone(),
    ];
    let mut line = cells.iter().map(|c| csv_cell(c)).collect::<Vec<_>>().join(",");
    line.push_str("\r\n");
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_are_quoted_and_defused() {
        assert_eq!(csv_cell("plain"), "plain");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_cell("+1"), "'+1");
        assert_eq!(csv_cell("line\nbreak"), "\"line\nbreak\"");
    }
}

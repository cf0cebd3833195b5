//! `GET /metrics` (Prometheus text format) on its own listener
//! (GATEHOUSE_METRICS_LISTEN, off by default, never on the public one):
//! the process's counters (`platform::metrics`) and figures read from the
//! database when scraped: the audit head, the age of the last signed
//! checkpoint, active sessions, open alerts, the connection pool. Also the
//! route label every answered request is counted under.

use crate::server::{
    platform::{db::Db, metrics},
    state::AppState,
};
use axum::{
    extract::{MatchedPath, Request, State},
    http::header,
    middleware::Next,
    response::{IntoResponse, Response},
    routing::get,
    Router,
};
use std::fmt::Write as _;

/// The route template a request matched, set on its answer for the
/// outer layer that counts it (axum knows it only inside the router).
#[derive(Clone)]
pub struct RouteLabel(pub String);

/// Inside the router: passes the matched route template outwards.
pub async fn route_label(req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map(|m| m.as_str().to_owned());
    let mut res = next.run(req).await;
    if let Some(r) = route {
        res.extensions_mut().insert(RouteLabel(r));
    }
    res
}

/// The label of an answered request: its route template, `/pkg` for the
/// browser bundle, `other` for anything unmatched (so a scan of random
/// paths adds no series).
pub fn label(res: &Response, path: &str) -> String {
    match res.extensions().get::<RouteLabel>() {
        Some(r) => r.0.clone(),
        None if path.starts_with("/pkg/") => "/pkg".to_owned(),
        None => "other".to_owned(),
    }
}

pub fn router(st: AppState) -> Router {
    Router::new().route("/metrics", get(scrape)).with_state(st)
}

async fn scrape(State(st): State<AppState>) -> Response {
    let now = st.clock.now();
    let mut out = String::new();
    metrics::global().render(&mut out, now);
    if let Err(e) = database_figures(&st.db, now, &mut out).await {
        tracing::warn!(error = %e, "metrics: database figures unavailable");
    }
    match crate::server::audit::siem::status(&st).await {
        Ok(sinks) => siem_figures(&sinks, &mut out),
        Err(e) => tracing::warn!(error = %e, "metrics: SIEM sink figures unavailable"),
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        out,
    )
        .into_response()
}

type Sink = crate::server::audit::siem::Status;

/// Each SIEM sink's cursor, backlog, lag and failures in a row.
fn siem_figures(sinks: &[Sink], out: &mut String) {
    if sinks.is_empty() {
        return;
    }
    let mut gauge = |name: &str, help: &str, value: &dyn Fn(&Sink) -> f64| {
        metrics::header(out, name, "gauge", help);
        for s in sinks {
            let _ = writeln!(out, "{name}{{sink=\"{}\",kind=\"{}\"}} {}", s.name, s.kind, value(s));
        }
    };
    gauge(
        "gatehouse_siem_delivered_sequence",
        "Last audit event the sink acknowledged, as stored in its cursor.",
        &|s| s.delivered_seq as f64,
    );
    gauge(
        "gatehouse_siem_backlog_events",
        "Audit events committed and not yet acknowledged by the sink.",
        &|s| s.backlog as f64,
    );
    gauge(
        "gatehouse_siem_lag_seconds",
        "Age of the oldest audit event the sink has not acknowledged (0 when none).",
        &|s| s.lag_ms as f64 / 1000.0,
    );
    gauge(
        "gatehouse_siem_failures",
        "Failed deliveries to the sink in a row (0 after a success).",
        &|s| s.failures as f64,
    );
}

async fn database_figures(db: &Db, now: i64, out: &mut String) -> Result<(), sqlx::Error> {
    let pool = db.pool();
    let idle = pool.num_idle() as u32;
    metrics::header(
        out,
        "gatehouse_db_pool_connections",
        "gauge",
        "Database connections of the read pool, by state.",
    );
    let _ = writeln!(out, "gatehouse_db_pool_connections{{state=\"idle\"}} {idle}");
    let _ = writeln!(
        out,
        "gatehouse_db_pool_connections{{state=\"in_use\"}} {}",
        pool.size().saturating_sub(idle)
    );

    let head: i64 = sqlx::query_scalar("SELECT last_seq FROM audit_head WHERE id = 1")
        .fetch_one(pool)
        .await?;
    metrics::header(
        out,
        "gatehouse_audit_head_sequence",
        "gauge",
        "Sequence number of the last event in the audit chain.",
    );
    let _ = writeln!(out, "gatehouse_audit_head_sequence {head}");

    let last: Option<i64> = sqlx::query_scalar("SELECT MAX(at) FROM audit_checkpoints")
        .fetch_one(pool)
        .await?;
    metrics::header(
        out,
        "gatehouse_audit_checkpoint_age_seconds",
        "gauge",
        "Seconds since the last signed checkpoint (absent before the first).",
    );
    if let Some(at) = last {
        let _ = writeln!(
            out,
            "gatehouse_audit_checkpoint_age_seconds {}",
            (now - at).max(0) as f64 / 1000.0
        );
    }

    let signed: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(tree_size), 0) FROM audit_checkpoints")
        .fetch_one(pool)
        .await?;
    if let Ok(stored) = crate::server::audit::tree::stored_size(db).await {
        metrics::header(
            out,
            "gatehouse_audit_tree_lag_events",
            "gauge",
            "Events signed by the latest checkpoint that the stored Merkle tree does not reach yet.",
        );
        let _ = writeln!(out, "gatehouse_audit_tree_lag_events {}", (signed - stored).max(0));
    }

    let sessions: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM sessions WHERE user_id IS NOT NULL AND expires_at > ?")
            .bind(now)
            .fetch_one(pool)
            .await?;
    metrics::header(
        out,
        "gatehouse_sessions_active",
        "gauge",
        "Signed-in sessions that have not expired.",
    );
    let _ = writeln!(out, "gatehouse_sessions_active {sessions}");

    let alerts: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM alerts WHERE acknowledged_at IS NULL")
        .fetch_one(pool)
        .await?;
    metrics::header(
        out,
        "gatehouse_alerts_open",
        "gauge",
        "Anomaly alerts not yet acknowledged.",
    );
    let _ = writeln!(out, "gatehouse_alerts_open {alerts}");
    Ok(())
}

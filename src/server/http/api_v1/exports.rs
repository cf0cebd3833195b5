//! Exports of the audit trail for auditors (browser session): CSV of the
//! trail and of reports, and signed bundles that verify offline.

use super::signed_in_with;
use crate::domain::actions::Action;
use crate::domain::{
    audit::{NewEvent, Outcome},
    permissions::Permission,
};
use crate::server::{
    audit::{self, checkpoints, console, witnesses},
    http::error::ApiError,
    platform::{request::RequestCtx, time::parse_utc},
    state::AppState,
};
use axum::{
    extract::State,
    http::{header, StatusCode},
    response::{IntoResponse, Response},
    Extension,
};
use serde::Deserialize;
use serde_json::{json, Value};
use sqlx::Row;

// ---------------------------------------------------------------- auditor CSV export

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct ExportQuery {
    pub from: String,
    pub to: String,
    pub employee: String,
    pub action: String,
    pub outcome: String,
    pub customer: String,
    pub text: String,
    pub source: String,
}

/// `GET /audit/export.csv?…`: the events matching the auditor's filters as
/// CSV, newest first, streamed a thousand at a time (memory stays flat).
/// Needs `audit:export`; the export itself is recorded.
pub async fn audit_csv(
    State(st): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    query: Result<axum::extract::Query<ExportQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    use crate::errors::AppError;
    use console::Filter;
    let Ok(axum::extract::Query(q)) = query else {
        return Err(ApiError::bad_request("The filters could not be read."));
    };
    signed_in_with(
        &st,
        &ctx,
        Permission::AuditExport,
        "audit_export_csv",
        "export the audit trail",
    )
    .await?;
    let filter = Filter {
        from: q.from,
        to: q.to,
        employee: q.employee,
        action: q.action,
        outcome: q.outcome,
        customer: q.customer,
        text: q.text,
        source: q.source,
        before: None,
    };
    // Check the filters (and the first page) before answering 200.
    let first = match console::browse_pages(&st, &filter, 1_000).await {
        Ok(p) => p,
        Err(AppError::Validation(m)) => return Err(ApiError::unprocessable(m)),
        Err(e) => return Err(ApiError::internal(e)),
    };
    let details = json!({
        "format": "csv",
        "filters": { "from": filter.from, "to": filter.to, "employee": filter.employee, "action": filter.action,
                     "outcome": filter.outcome, "customer": filter.customer, "text": filter.text, "source": filter.source },
    });
    record_export(&st, &ctx, details).await?;
    let name = format!("gatehouse-audit-{}.csv", file_stamp(st.clock.now()));
    let first = (
        first.events.iter().map(console::csv_row).collect::<String>(),
        first.next_before,
    );
    Ok(paged_csv(st, name, console::CSV_HEADER, first, move |st, before| {
        let filter = Filter {
            before: Some(before),
            ..filter.clone()
        };
        async move {
            let p = console::browse_pages(&st, &filter, 1_000).await?;
            Ok((p.events.iter().map(console::csv_row).collect(), p.next_before))
        }
    }))
}

/// A CSV download streamed page by page: `first` is the first page's rows
/// (already fetched, so a bad filter was refused before answering 200) and
/// the next `before`; `next` fetches the page before a sequence number.
/// Memory stays flat however long the export.
fn paged_csv<F, Fut>(
    st: AppState,
    file_name: String,
    header_row: &'static str,
    first: (String, Option<i64>),
    next: F,
) -> Response
where
    F: Fn(AppState, i64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<(String, Option<i64>), crate::errors::AppError>> + Send + 'static,
{
    let (rows, after) = first;
    let start = futures::stream::once(async move { Ok::<_, std::io::Error>(format!("{header_row}{rows}")) });
    let rest = futures::stream::unfold((st, after), move |(st, before)| {
        let page = before.map(|b| next(st.clone(), b));
        async move {
            match page?.await {
                Ok((chunk, after)) => Some((Ok(chunk), (st, after))),
                Err(e) => {
                    tracing::error!(error = %e, "audit export stopped");
                    Some((Err(std::io::Error::other("export failed")), (st, None)))
                }
            }
        }
    });
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file_name}\""),
            ),
        ],
        axum::body::Body::from_stream(futures::StreamExt::chain(start, rest)),
    )
        .into_response()
}

/// `GET /audit/report.csv?kind=…`: an auditor report (who accessed a
/// customer, what an employee accessed, denied checks) as CSV, streamed.
/// Needs `audit:export`; the export is recorded.
pub async fn audit_report_csv(
    State(st): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    query: Result<axum::extract::Query<console::ReportQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    use crate::errors::AppError;
    let Ok(axum::extract::Query(mut q)) = query else {
        return Err(ApiError::bad_request("The report fields could not be read."));
    };
    signed_in_with(
        &st,
        &ctx,
        Permission::AuditExport,
        "audit_report_csv",
        "export the audit trail",
    )
    .await?;
    q.before = None;
    let first = match console::report_pages(&st, &q, 1_000).await {
        Ok(p) => p,
        Err(AppError::Validation(m)) => return Err(ApiError::unprocessable(m)),
        Err(e) => return Err(ApiError::internal(e)),
    };
    let details = json!({ "format": "csv", "report": q.kind, "customer": q.customer, "employee": q.employee, "from": q.from, "to": q.to });
    record_export(&st, &ctx, details).await?;
    let name = format!("gatehouse-report-{}-{}.csv", q.kind.trim(), file_stamp(st.clock.now()));
    let first = (
        first.rows.iter().map(console::report_csv_row).collect::<String>(),
        first.next_before,
    );
    Ok(paged_csv(
        st,
        name,
        console::REPORT_CSV_HEADER,
        first,
        move |st, before| {
            let q = console::ReportQuery {
                before: Some(before),
                ..q.clone()
            };
            async move {
                let p = console::report_pages(&st, &q, 1_000).await?;
                Ok((p.rows.iter().map(console::report_csv_row).collect(), p.next_before))
            }
        },
    ))
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct BundleQuery {
    pub from: String,
    pub to: String,
}

/// `GET /audit/export.bundle?from=&to=`: the events of a time range as a
/// signed bundle (JSON Lines: header, checkpoints, events, subtree roots)
/// that `gatehouse audit verify FILE` checks offline. Signs a checkpoint
/// first so the range is covered. Events stream a thousand at a time.
/// Needs `audit:export`; the export is recorded.
pub async fn audit_bundle(
    State(st): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    query: Result<axum::extract::Query<BundleQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    use crate::domain::bundle::{self, Header, Line, PublicKey};
    let Ok(axum::extract::Query(q)) = query else {
        return Err(ApiError::bad_request("Give from and to as YYYY-MM-DDTHH:MM (UTC)."));
    };
    signed_in_with(
        &st,
        &ctx,
        Permission::AuditExport,
        "audit_export_bundle",
        "export the audit trail",
    )
    .await?;
    let parse = |s: &str| {
        if s.trim().is_empty() {
            Ok(None)
        } else {
            parse_utc(s).map(Some)
        }
    };
    let (from, to) = match (parse(&q.from), parse(&q.to)) {
        (Ok(f), Ok(t)) => (f, t),
        _ => {
            return Err(ApiError::unprocessable("Give from and to as YYYY-MM-DDTHH:MM (UTC)."));
        }
    };
    if let (Some(f), Some(t)) = (from, to) {
        if f > t {
            return Err(ApiError::unprocessable("The range ends before it starts."));
        }
    }
    let now = st.clock.now();
    record_export(&st, &ctx, json!({ "format": "bundle", "from": q.from, "to": q.to })).await?;
    let prepared = async {
        checkpoints::sign(&st, true).await.map_err(ApiError::internal)?;
        let cover = checkpoints::latest(st.db.pool())
            .await?
            .ok_or_else(|| ApiError::internal("no checkpoint after signing one"))?;
        let first: Option<i64> = sqlx::query("SELECT MIN(seq) AS s FROM audit_events WHERE at >= ?")
            .bind(from.unwrap_or(i64::MIN))
            .fetch_one(st.db.pool())
            .await
            .and_then(|r| r.try_get("s"))?;
        let last: Option<i64> = sqlx::query("SELECT MAX(seq) AS s FROM audit_events WHERE at < ? AND seq <= ?")
            .bind(to.unwrap_or(i64::MAX))
            .bind(cover.tree_size)
            .fetch_one(st.db.pool())
            .await
            .and_then(|r| r.try_get("s"))?;
        let (Some(first), Some(last)) = (first, last) else {
            return Ok(None);
        };
        if first > last {
            return Ok(None);
        }
        let prefix = checkpoints::frontier_at(&st.db, first - 1).await?;
        let subtrees = checkpoints::subtrees(&st.db, last, cover.tree_size).await?;
        let cps: Vec<_> = checkpoints::list(st.db.pool(), 0, i64::MAX)
            .await?
            .into_iter()
            .filter(|c| c.tree_size >= first && c.tree_size <= cover.tree_size)
            .collect();
        let keys = audit::public_keys(&st.db).await?;
        let header = Header {
            format: bundle::FORMAT.into(),
            exported_at: now,
            from,
            to,
            first_seq: first,
            last_seq: last,
            public_keys: keys
                .into_iter()
                .map(|(key_id, public_key, _)| PublicKey { key_id, public_key })
                .collect(),
            prefix: prefix.nodes().iter().map(|(n, h)| (*n, hex::encode(h))).collect(),
        };
        let cosigned = match (cps.first(), cps.last()) {
            (Some(a), Some(b)) => witnesses::cosignatures(&st.db, a.number, b.number, false).await?,
            _ => Vec::new(),
        };
        let mut head = serde_json::to_string(&header).map_err(ApiError::internal)? + "\n";
        let lines = cps
            .into_iter()
            .map(Line::Checkpoint)
            .chain(cosigned.into_iter().map(Line::Cosignature));
        for line in lines {
            head.push_str(&serde_json::to_string(&line).map_err(ApiError::internal)?);
            head.push('\n');
        }
        let mut tail = String::new();
        for (start, size, root) in subtrees {
            tail.push_str(
                &serde_json::to_string(&Line::Subtree {
                    start,
                    size,
                    root: hex::encode(root),
                })
                .map_err(ApiError::internal)?,
            );
            tail.push('\n');
        }
        Ok::<_, ApiError>(Some((head, first, last, tail)))
    }
    .await;
    let Some((head, first, last, tail)) = prepared? else {
        return Err(ApiError::unprocessable("No events fall in that range."));
    };
    let name = format!("attachment; filename=\"gatehouse-audit-{}.jsonl\"", file_stamp(now));
    // (state, next seq, stage): 0 head, 1 events, 2 tail, 3 done.
    let stream = futures::stream::unfold(
        (st, head, tail, first, 0u8),
        move |(st, head, tail, next, stage)| async move {
            match stage {
                0 => Some((Ok::<_, std::io::Error>(head), (st, String::new(), tail, next, 1))),
                1 if next <= last => {
                    let sql = format!(
                        "SELECT {} FROM audit_events WHERE seq >= ? AND seq <= ? ORDER BY seq LIMIT 1000",
                        audit::COLUMNS
                    );
                    let rows = match sqlx::query(&sql).bind(next).bind(last).fetch_all(st.db.pool()).await {
                        Ok(r) => r,
                        Err(e) => {
                            tracing::error!(error = %e, "audit bundle export stopped");
                            return Some((Err(std::io::Error::other("export failed")), (st, head, tail, next, 3)));
                        }
                    };
                    let mut chunk = String::new();
                    let mut upto = next;
                    for row in &rows {
                        match audit::event_from_row(row) {
                            Ok(e) => {
                                upto = e.seq + 1;
                                chunk.push_str(&serde_json::to_string(&Line::Event(e)).unwrap_or_default());
                                chunk.push('\n');
                            }
                            Err(e) => {
                                tracing::error!(error = %e, "audit bundle export stopped");
                                return Some((Err(std::io::Error::other("export failed")), (st, head, tail, next, 3)));
                            }
                        }
                    }
                    if rows.is_empty() {
                        upto = last + 1;
                    }
                    Some((Ok(chunk), (st, head, tail, upto, 1)))
                }
                1 | 2 => Some((Ok(tail), (st, head, String::new(), next, 3))),
                _ => None,
            }
        },
    );
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/jsonl".to_owned()),
            (header::CONTENT_DISPOSITION, name),
        ],
        axum::body::Body::from_stream(stream),
    )
        .into_response())
}

fn file_stamp(ms: i64) -> String {
    let fmt = time::macros::format_description!("[year][month][day]-[hour][minute][second]");
    time::OffsetDateTime::from_unix_timestamp(ms / 1000)
        .ok()
        .and_then(|t| t.format(&fmt).ok())
        .unwrap_or_default()
}

/// Records an export of the audit trail (`audit.exported`) before any of it
/// is sent; if that fails, nothing is sent.
async fn record_export(st: &AppState, ctx: &RequestCtx, details: Value) -> Result<(), ApiError> {
    let event = NewEvent::new(Action::Exported, Outcome::Success, ctx.actor()).details(details);
    Ok(st.recorder.record(st.clock.now(), event).await?)
}

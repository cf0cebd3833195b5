//! An access review's report (CSV) and evidence bundle (JSON Lines), for
//! administrators and auditors.

use super::ApiError;

use crate::domain::actions::Action;
use crate::domain::{
    audit::{NewEvent, Outcome},
    permissions::Permission,
};
use crate::errors::AppError;
use crate::server::{
    access::{authz, reviews},
    platform::request::RequestCtx,
    state::AppState,
};
use axum::{
    extract::{Path, State},
    http::header,
    response::{IntoResponse, Response},
    Extension,
};
use serde_json::json;

/// `GET /reviews/{id}/report.csv`: the frozen report of a closed campaign
/// (its SHA-256, as in the closing event, in `X-Report-SHA256`), or the
/// report as it stands of an open one. The download is recorded.
pub async fn review_report_csv(
    State(st): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = allowed(&st, &ctx, &id, "review_report_csv").await?;
    let report = match reviews::report_csv(&st, id).await {
        Ok(r) => r,
        Err(AppError::NotFound) => return Err(ApiError::not_found("There is no such campaign.")),
        Err(e) => return Err(ApiError::internal(e)),
    };
    let event = NewEvent::new(Action::Exported, Outcome::Success, ctx.actor())
        .target("review_campaign", id)
        .details(json!({ "format": "review_report_csv", "campaign_id": id, "report_sha256": report.sha256 }));
    st.recorder.record(st.clock.now(), event).await?;
    let name = format!("gatehouse-access-review-{id}.csv");
    let mut resp = (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        report.csv,
    )
        .into_response();
    if let Some(sha) = report.sha256.and_then(|s| header::HeaderValue::from_str(&s).ok()) {
        resp.headers_mut().insert("x-report-sha256", sha);
    }
    Ok(resp)
}

/// Administrators and auditors only (a refusal is recorded); the campaign's number.
async fn allowed(st: &AppState, ctx: &RequestCtx, id: &str, operation: &str) -> Result<i64, ApiError> {
    let perms = [Permission::AccessGrant, Permission::AuditRead];
    match authz::require_any(st, ctx, &perms, operation).await {
        Ok(_) => {}
        Err(AppError::Unauthorized(m)) => return Err(ApiError::unauthorized(m)),
        Err(AppError::Forbidden) => {
            return Err(ApiError::forbidden("You don't have permission to read access reviews."))
        }
        Err(e) => return Err(ApiError::internal(e)),
    }
    id.parse::<i64>()
        .map_err(|_| ApiError::bad_request("A campaign is named by its number."))
}

/// `GET /reviews/{id}/evidence.jsonl`: the closed campaign's evidence
/// bundle (`gatehouse audit verify FILE` checks it offline). The download
/// is recorded.
pub async fn review_evidence(
    State(st): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = allowed(&st, &ctx, &id, "review_evidence").await?;
    let bundle = match reviews::evidence(&st, id).await {
        Ok(b) => b,
        Err(AppError::NotFound) => return Err(ApiError::not_found("There is no such campaign.")),
        Err(AppError::Conflict(m)) => return Err(ApiError::conflict(m)),
        Err(e) => return Err(ApiError::internal(e)),
    };
    let event = NewEvent::new(Action::Exported, Outcome::Success, ctx.actor())
        .target("review_campaign", id)
        .details(json!({ "format": "review_evidence", "campaign_id": id }));
    st.recorder.record(st.clock.now(), event).await?;
    let name = format!("gatehouse-access-review-{id}-evidence.jsonl");
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-ndjson".to_owned()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        bundle,
    )
        .into_response())
}

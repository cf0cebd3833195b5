//! Middleware: request ids, security headers with a per-response CSP nonce,
//! cross-origin refusal, session checks and page gating.

use super::router::BODY_LIMIT;
use crate::domain::network;
use crate::errors::{AppError, RequestId};
use crate::server::{
    access::authz,
    identity::{accounts, device, sessions, signin},
    platform::{
        crypto,
        request::{AuthState, RequestCtx, Stage, AUTH_KEY},
    },
    state::AppState,
};
use axum::{
    body::Body,
    extract::{ConnectInfo, Request, State},
    http::{header, HeaderValue, Method, StatusCode},
    middleware::Next,
    response::{IntoResponse, Redirect, Response},
};
use std::net::SocketAddr;
use tower_sessions::Session;

/// The CSP nonce of this response, shared with the page renderer.
#[derive(Clone, Debug)]
pub struct CspNonce(pub String);

pub fn csp(nonce: &str) -> String {
    format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; style-src 'self'; img-src 'self' data:; \
         font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; object-src 'none'; base-uri 'none'"
    )
}

/// Outermost layer: gives each request an id and a nonce, and puts the
/// security headers on every response, errors included.
pub async fn security_headers(mut req: Request, next: Next) -> Response {
    let request_id = crypto::random_token(9);
    let nonce = crypto::random_token(18);
    req.extensions_mut().insert(RequestId(request_id.clone()));
    req.extensions_mut().insert(CspNonce(nonce.clone()));
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let started = std::time::Instant::now();
    let mut res = super::error::with_request_id(request_id.clone(), next.run(req)).await;
    let status = res.status();
    let elapsed = started.elapsed();
    let ms = elapsed.as_millis() as u64;
    crate::server::platform::metrics::global().request(
        &super::metrics::label(&res, &path),
        method.as_str(),
        status.as_u16(),
        elapsed.as_secs_f64(),
    );
    tracing::info!(request_id = %request_id, %method, path = %path, status = status.as_u16(), ms, "request");

    // A bare error from the framework (bad body, too large, unknown
    // server function) may carry internal text: replace it.
    if (status.is_client_error() || status.is_server_error()) && is_bare_text(&res) {
        res = plain_error(status, &request_id);
    }
    let h = res.headers_mut();
    let set = |h: &mut axum::http::HeaderMap, k: &'static str, v: &str| {
        if let Ok(v) = HeaderValue::from_str(v) {
            h.insert(k, v);
        }
    };
    set(h, "content-security-policy", &csp(&nonce));
    set(h, "strict-transport-security", "max-age=63072000; includeSubDomains");
    set(h, "x-content-type-options", "nosniff");
    set(h, "referrer-policy", "no-referrer");
    set(
        h,
        "permissions-policy",
        "accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), microphone=(), payment=(), usb=(), interest-cohort=()",
    );
    set(h, "cross-origin-opener-policy", "same-origin");
    set(h, "cross-origin-resource-policy", "same-origin");
    set(h, "x-frame-options", "DENY");
    set(h, "x-request-id", &request_id);
    // The browser bundle sets its own (http::assets); everything else,
    // errors included, is never stored.
    if !h.contains_key(header::CACHE_CONTROL) {
        set(h, "cache-control", "no-store");
    }
    res
}

fn is_bare_text(res: &Response) -> bool {
    match res.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) {
        None => true,
        Some(ct) => ct.starts_with("text/plain"),
    }
}

/// A short error message with the request id, as JSON for API clients and
/// plain text otherwise. Never includes internal details.
pub fn plain_error(status: StatusCode, request_id: &str) -> Response {
    let message = match status {
        StatusCode::BAD_REQUEST => "The request could not be read.",
        StatusCode::FORBIDDEN => "This request was refused.",
        StatusCode::NOT_FOUND => "Not found.",
        StatusCode::METHOD_NOT_ALLOWED => "That method is not allowed here.",
        StatusCode::PAYLOAD_TOO_LARGE => "The request is too large.",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "The request's content type is not supported.",
        StatusCode::UNPROCESSABLE_ENTITY => "The request could not be processed.",
        s if s.is_server_error() => "Something went wrong on our side.",
        _ => "The request could not be completed.",
    };
    let body = serde_json::json!({ "error": message, "request_id": request_id }).to_string();
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Refuses state-changing requests that come from another site, checked
/// with Sec-Fetch-Site and Origin (besides SameSite=Strict cookies).
pub async fn origin_check(State(st): State<AppState>, req: Request, next: Next) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(req).await;
    }
    let headers = req.headers();
    let fetch_site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let same_site_fetch = matches!(fetch_site, None | Some("same-origin") | Some("none"));
    // Only the configured public origin: never one that merely matches the
    // Host header the request names, which a DNS-rebinding page controls.
    let origin_ok = origin.is_none_or(|o| o == st.config.public_origin());
    if same_site_fetch && origin_ok {
        return next.run(req).await;
    }
    let request_id = req
        .extensions()
        .get::<RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_default();
    tracing::warn!(request_id = %request_id, origin = ?origin, sec_fetch_site = ?fetch_site, "cross-origin request refused");
    let body = serde_json::json!({
        "error": "Cross-origin requests that change data are refused.",
        "request_id": request_id,
    });
    (
        StatusCode::FORBIDDEN,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// Oversized bodies up to this size are read and discarded before the 413.
const DRAIN_LIMIT: u64 = 4 * 1024 * 1024;

/// Reads a body and drops it as it comes (never buffered), up to `max` bytes.
async fn discard(mut body: Body, max: u64) {
    use http_body_util::BodyExt;
    let mut seen = 0u64;
    while let Some(Ok(frame)) = body.frame().await {
        seen += frame.data_ref().map_or(0, |d| d.len() as u64);
        if seen > max {
            break;
        }
    }
}

/// Refuses bodies over the limit of their route: at once when the declared
/// length is too large, and while reading otherwise.
pub async fn body_limit(req: Request, next: Next) -> Response {
    let limit = if req.uri().path() == "/api/v1/audit-events" {
        super::api_v1::EVENTS_BODY_LIMIT
    } else {
        BODY_LIMIT
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(n) = declared.filter(|n| *n > limit as u64) {
        let request_id = req
            .extensions()
            .get::<RequestId>()
            .map(|r| r.0.clone())
            .unwrap_or_default();
        // A client still sending when the answer comes and the connection
        // closes sees a reset, not the 413. Read and discard a moderately
        // oversized body first (bounded in size and time) so it gets the
        // answer; anything larger is cut off at once.
        if n <= DRAIN_LIMIT {
            let _ =
                tokio::time::timeout(std::time::Duration::from_secs(5), discard(req.into_body(), DRAIN_LIMIT)).await;
        }
        return plain_error(StatusCode::PAYLOAD_TOO_LARGE, &request_id);
    }
    let (parts, body) = req.into_parts();
    let body = Body::new(http_body_util::Limited::new(body, limit));
    next.run(Request::from_parts(parts, body)).await
}

fn is_static(path: &str) -> bool {
    path.starts_with("/pkg/")
        || path == "/favicon.ico"
        || path == "/robots.txt"
        || path == "/passkeys.js"
        || path == "/healthz"
        || path == "/readyz"
}

/// Reads the session, ends it when it has timed out or its user can no
/// longer sign in, refreshes its idle timer, and publishes the request
/// context. Pages that need a signed-in user redirect to the right step.
pub async fn auth_layer(State(st): State<AppState>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    if is_static(&path) {
        return next.run(req).await;
    }
    let request_id = req
        .extensions()
        .get::<RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_default();
    // Behind a trusted reverse proxy the client is in X-Forwarded-For.
    let forwarded_for: Vec<&str> = req
        .headers()
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let ip = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| {
        network::client_address(c.0.ip(), Some(&forwarded_for.join(",")), &st.config.trusted_proxies).to_string()
    });
    let user_agent = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.chars().take(512).collect::<String>());
    let Some(session) = req.extensions().get::<Session>().cloned() else {
        return plain_error(StatusCode::INTERNAL_SERVER_ERROR, &request_id);
    };

    let device_name = device::cookie_name(&st.config);
    let device_cookie = req
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(name, _)| *name == device_name)
        .map(|(_, value)| value.chars().take(2048).collect::<String>());
    let mut ctx = RequestCtx {
        request_id: request_id.clone(),
        ip,
        user_agent,
        session_tag: None,
        auth: None,
        access_version: None,
        device_cookie,
        passkey_required: false,
    };
    match load_auth(&st, &session, &ctx).await {
        Ok(Some((auth, version))) => {
            ctx.auth = Some(auth);
            ctx.access_version = Some(version);
        }
        Ok(None) => {}
        Err(e) => {
            tracing::error!(request_id = %request_id, error = %e, "session check failed");
            return plain_error(StatusCode::INTERNAL_SERVER_ERROR, &request_id);
        }
    }
    ctx.session_tag = session.id().map(|id| sessions::session_tag(&id));

    // HEAD is answered by the GET route (headers only): gated the same way.
    if matches!(*req.method(), Method::GET | Method::HEAD) {
        if let Err(e) = passkey_gate(&st, &session, &mut ctx, &path).await {
            tracing::error!(request_id = %request_id, error = %e, "passkey policy check failed");
            return plain_error(StatusCode::INTERNAL_SERVER_ERROR, &request_id);
        }
        if let Some(to) = page_redirect(&path, ctx.auth.as_ref()) {
            return Redirect::to(to).into_response();
        }
        let needs = crate::app::page_permissions(&path);
        if !needs.is_empty() && crate::app::is_page(&path) {
            if let Some(auth) = &ctx.auth {
                match authz::held(&st, auth.user_id, ctx.access_version).await {
                    Ok(held) if needs.iter().any(|p| held.contains(*p)) => {}
                    Ok(_) => {
                        if let Err(e) = authz::deny(&st, &ctx, needs, &format!("page {path}")).await {
                            tracing::error!(request_id = %request_id, error = %e, "recording a refusal failed");
                        }
                        return forbidden_page(&request_id);
                    }
                    Err(e) => {
                        tracing::error!(request_id = %request_id, error = %e, "permission check failed");
                        return plain_error(StatusCode::INTERNAL_SERVER_ERROR, &request_id);
                    }
                }
            }
        }
    }
    req.extensions_mut().insert(ctx);
    next.run(req).await
}

/// A page refused for lack of permission: a short HTML page with the
/// request id.
fn forbidden_page(request_id: &str) -> Response {
    let body = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Not allowed - Gatehouse</title></head>\
         <body><main><h1>You don't have permission to open this page.</h1>\
         <p>If you need it, ask an administrator. Request id: {request_id}</p><p><a href=\"/\">Go to the start \
             page</a></p></main></body></html>"
    );
    (
        StatusCode::FORBIDDEN,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}

/// The session's sign-in state and the employee's access version, or none
/// when the session is not signed in, has run out, or its employee is no
/// longer active.
async fn load_auth(st: &AppState, session: &Session, ctx: &RequestCtx) -> Result<Option<(AuthState, i64)>, String> {
    let auth: Option<AuthState> = session.get(AUTH_KEY).await.map_err(|e| e.to_string())?;
    let Some(mut auth) = auth else { return Ok(None) };
    let now = st.clock.now();
    let id_hash = session.id().map(|id| sessions::id_hash(&id)).unwrap_or_default();
    let state = st.config.session.state(auth.created_at, auth.last_seen, now);
    if state != crate::domain::session_policy::SessionState::Live {
        sessions::expire_session(st, &id_hash, Some(auth.user_id), state.reason(), Some(ctx))
            .await
            .map_err(|e| e.to_string())?;
        session.clear().await;
        return Ok(None);
    }
    let user = accounts::by_id(st.db.pool(), auth.user_id)
        .await
        .map_err(|e| e.to_string())?;
    let Some(user) = user.filter(|u| u.is_active()) else {
        let _ = session.delete().await;
        return Ok(None);
    };
    auth.last_seen = now;
    session.insert(AUTH_KEY, &auth).await.map_err(|e| e.to_string())?;
    Ok(Some((auth, user.access_version)))
}

/// A page request of a signed-in employee whose access requires a passkey
/// not used in this session (`GATEHOUSE_REQUIRE_PASSKEY`): the session
/// goes back to the second step of sign-in, or to adding a passkey, and
/// the page is gated as such. The recovery codes just made stay visible.
async fn passkey_gate(st: &AppState, session: &Session, ctx: &mut RequestCtx, path: &str) -> Result<(), AppError> {
    let Some(auth) = ctx.auth.clone() else {
        return Ok(());
    };
    let candidate = auth.stage == Stage::Full && auth.passkey_at.is_none() && st.config.require_passkey.administrators;
    if !candidate || !crate::app::is_page(path) || path == "/mfa/recovery-codes" {
        return Ok(());
    }
    if !authz::passkey_required(st, auth.user_id, ctx.access_version).await? {
        return Ok(());
    }
    ctx.passkey_required = true;
    let stage = signin::passkey_now(st, ctx, session).await?;
    ctx.auth = Some(AuthState {
        stage,
        mfa_at: None,
        ..auth
    });
    Ok(())
}

/// Where a page request must go instead, given the sign-in stage.
pub fn page_redirect(path: &str, auth: Option<&AuthState>) -> Option<&'static str> {
    // Unknown paths are not gated: they get the 404 page.
    if !crate::app::is_page(path) {
        return None;
    }
    let public = path == "/signin" || path == "/setup" || path == "/invite";
    let stage = auth.map(|a| a.stage);
    match (path, stage) {
        ("/signin" | "/setup" | "/invite", Some(Stage::Full)) => Some("/"),
        (_, _) if public => None,
        ("/mfa" | "/mfa/recovery", Some(Stage::NeedsCode)) => None,
        ("/mfa/enrol", Some(Stage::NeedsEnrolment)) => None,
        ("/mfa/passkey", Some(Stage::NeedsPasskey)) => None,
        (_, Some(Stage::NeedsCode)) => Some("/mfa"),
        (_, Some(Stage::NeedsEnrolment)) => Some("/mfa/enrol"),
        (_, Some(Stage::NeedsPasskey)) => Some("/mfa/passkey"),
        ("/mfa" | "/mfa/recovery" | "/mfa/enrol", Some(Stage::Full)) => Some("/"),
        (_, Some(Stage::Full)) => None,
        (_, None) => Some("/signin"),
    }
}

/// `GET /healthz`: the process is alive (liveness).
pub async fn healthz() -> impl IntoResponse {
    (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain")], Body::from("ok"))
}

/// `GET /readyz`: this replica can serve (readiness): the database answers
/// within 2 seconds, its schema is this version's, and the checkpoint
/// signing key is loaded and among the keys that verify. 503 otherwise,
/// naming the failed check and nothing more.
pub async fn readyz(State(st): State<AppState>) -> Response {
    let schema = tokio::time::timeout(std::time::Duration::from_secs(2), st.db.pending_migrations()).await;
    let (database, schema) = match schema {
        Ok(Ok(0)) => ("ok", "current".to_owned()),
        Ok(Ok(n)) => ("ok", format!("{n} migrations pending")),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: database unreachable");
            ("unreachable", "unknown".to_owned())
        }
        Err(_) => ("timed out", "unknown".to_owned()),
    };
    let keys = st.audit_keys.current();
    let signing = if keys.public.contains(&keys.signing.verifying_key()) {
        "loaded"
    } else {
        "missing"
    };
    let ready = database == "ok" && schema == "current" && signing == "loaded";
    let body = serde_json::json!({
        "status": if ready { "ready" } else { "not ready" },
        "checks": { "database": database, "schema": schema, "signing_key": signing },
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(stage: Stage) -> AuthState {
        AuthState {
            user_id: 1,
            stage,
            created_at: 0,
            last_seen: 0,
            mfa_at: None,
            passkey_at: None,
        }
    }

    #[test]
    fn pages_route_each_stage() {
        assert_eq!(page_redirect("/", None), Some("/signin"));
        assert_eq!(page_redirect("/activity", None), Some("/signin"));
        assert_eq!(page_redirect("/signin", None), None);
        assert_eq!(page_redirect("/setup", None), None);
        assert_eq!(page_redirect("/mfa", None), Some("/signin"));
        assert_eq!(page_redirect("/", Some(&at(Stage::NeedsCode))), Some("/mfa"));
        assert_eq!(page_redirect("/mfa/recovery", Some(&at(Stage::NeedsCode))), None);
        assert_eq!(page_redirect("/mfa/enrol", Some(&at(Stage::NeedsCode))), Some("/mfa"));
        assert_eq!(
            page_redirect("/activity", Some(&at(Stage::NeedsEnrolment))),
            Some("/mfa/enrol")
        );
        assert_eq!(page_redirect("/mfa/enrol", Some(&at(Stage::NeedsEnrolment))), None);
        assert_eq!(page_redirect("/", Some(&at(Stage::Full))), None);
        assert_eq!(page_redirect("/signin", Some(&at(Stage::Full))), Some("/"));
        assert_eq!(page_redirect("/mfa", Some(&at(Stage::Full))), Some("/"));
        assert_eq!(page_redirect("/no-such-page", None), None);
        assert_eq!(page_redirect("/api/sign_in", None), None);
        assert_eq!(page_redirect("/employees/7", None), Some("/signin"));
        assert_eq!(page_redirect("/invite", None), None);
        assert_eq!(page_redirect("/invite", Some(&at(Stage::Full))), Some("/"));
    }
}

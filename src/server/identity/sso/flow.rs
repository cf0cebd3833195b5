//! Single sign-on with the company's OpenID provider: authorization code
//! flow with PKCE (S256), `state` and `nonce`, ID token validation by the
//! openidconnect crate (signature, issuer, audience, expiry, nonce). The
//! rules of who signs in live in `domain::sso`. Gatehouse's own TOTP is
//! still asked for after SSO unless configuration trusts the provider's
//! `amr`; step-up always uses Gatehouse's TOTP.

use super::provider::{Sso, ID_TOKEN_KEY};
use crate::domain::actions::Action;
use crate::domain::{
    audit::{Actor, NewEvent, Outcome},
    sso::{self, Candidate},
};
use crate::server::{
    audit,
    identity::{accounts, invitations, sessions},
    platform::{
        crypto,
        db::{opt_text, text},
        request::{AuthState, RequestCtx, Stage},
    },
    state::AppState,
};
use axum::{
    extract::{Query, State},
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{Html, IntoResponse, Response},
    Extension,
};
use openidconnect::{
    core::CoreAuthenticationFlow, AuthorizationCode, CsrfToken, Nonce, PkceCodeChallenge, PkceCodeVerifier, Scope,
    TokenResponse,
};
use serde::Deserialize;
use serde_json::json;
use sqlx::Row;
use tower_sessions::Session;

/// Cookie binding a started sign-in to the browser that started it.
/// SameSite=Lax: it must come back on the provider's redirect.
const BINDING_COOKIE: &str = "gatehouse_sso";

/// A small page for the person: the outcome and what to do next.
fn page(st: &AppState, status: StatusCode, message: &str, request_id: &str) -> Response {
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    let body = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Sign-in · Gatehouse</title>\
         <link rel=\"stylesheet\" href=\"{}\"></head><body class=\"p-8\"><main class=\"mx-auto max-w-md\">\
         <h1 class=\"mb-4 text-xl font-semibold\">Sign-in did not complete</h1><p role=\"alert\" id=\"sso-error\">{}</p>\
         <p class=\"mt-2 text-sm text-slate-500\">Request id {}</p><p class=\"mt-4\"><a class=\"underline\" \
             href=\"/signin\">Back to sign-in</a></p></main></body></html>",
        esc(st.assets.stylesheet_href()),
        esc(message),
        esc(request_id)
    );
    let mut r = (status, Html(body)).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

// The error is the page to answer with, returned at once (not carried).
#[allow(clippy::result_large_err)]
fn sso_or_404(st: &AppState, ctx: &RequestCtx) -> Result<std::sync::Arc<Sso>, Response> {
    st.sso.clone().ok_or_else(|| {
        page(
            st,
            StatusCode::NOT_FOUND,
            "Single sign-on is not configured.",
            &ctx.request_id,
        )
    })
}

fn internal(st: &AppState, ctx: &RequestCtx, e: impl std::fmt::Display) -> Response {
    tracing::error!(request_id = %ctx.request_id, error = %e, "sso error");
    page(
        st,
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong on our side.",
        &ctx.request_id,
    )
}

/// `GET /auth/oidc/start`: stores a one-use attempt and sends the browser
/// to the provider.
pub async fn start(State(st): State<AppState>, Extension(ctx): Extension<RequestCtx>) -> Response {
    let sso = match sso_or_404(&st, &ctx) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state, nonce) = sso
        .client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("profile".into()))
        .set_pkce_challenge(challenge)
        .url();
    let binding = crypto::random_token(32);
    let now = st.clock.now();
    let stored = async {
        st.db
            .write(sqlx::query("DELETE FROM oidc_logins WHERE created_at < ?").bind(now - sso::STATE_LIFETIME * 6))
            .await?;
        let insert = sqlx::query(
            "INSERT INTO oidc_logins (state_hash, binding_hash, nonce, verifier_enc, created_at) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(crypto::sha256_hex(state.secret().as_bytes()))
        .bind(crypto::sha256_hex(binding.as_bytes()))
        .bind(nonce.secret())
        .bind(st.key.seal("oidc:pkce", verifier.secret().as_bytes()))
        .bind(now);
        st.db.write(insert).await
    };
    if let Err(e) = stored.await {
        return internal(&st, &ctx, e);
    }
    let secure = if st.config.secure_cookies() { "; Secure" } else { "" };
    let cookie = format!("{BINDING_COOKIE}={binding}; Path=/auth/oidc; HttpOnly; SameSite=Lax; Max-Age=600{secure}");
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let (Ok(loc), Ok(c)) = (HeaderValue::from_str(url.as_str()), HeaderValue::from_str(&cookie)) {
        r.headers_mut().insert(header::LOCATION, loc);
        r.headers_mut().insert(header::SET_COOKIE, c);
    }
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

#[derive(Debug, Deserialize)]
pub struct CallbackParams {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

fn binding_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == BINDING_COOKIE)
        .map(|(_, v)| v.to_owned())
}

/// Why a callback failed, for the audit trail (never token contents).
async fn refuse(
    st: &AppState,
    ctx: &RequestCtx,
    user_id: Option<i64>,
    reason: &str,
    status: StatusCode,
    message: &str,
) -> Response {
    let mut event =
        NewEvent::new(Action::Sso, Outcome::Denied, Actor { user_id, ..ctx.actor() }).reason(reason.to_owned());
    if let Some(id) = user_id {
        event = event.target("user", id);
    }
    match st.recorder.record(st.clock.now(), event).await {
        Ok(_) => page(st, status, message, &ctx.request_id),
        Err(e) => internal(st, ctx, e),
    }
}

/// `GET /auth/oidc/callback`: completes the flow and starts a session at
/// the MFA step (or fully signed in when the provider's MFA is trusted).
pub async fn callback(
    State(st): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    session: Session,
    headers: HeaderMap,
    Query(q): Query<CallbackParams>,
) -> Response {
    let sso = match sso_or_404(&st, &ctx) {
        Ok(s) => s,
        Err(r) => return r,
    };
    const START_AGAIN: &str = "This sign-in has expired or was already used. Start again.";
    if let Some(err) = &q.error {
        let code: String = err
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(64)
            .collect();
        return refuse(
            &st,
            &ctx,
            None,
            &format!("provider returned error {code}"),
            StatusCode::BAD_REQUEST,
            "The company sign-in was cancelled or refused.",
        )
        .await;
    }
    let (Some(code), Some(state)) = (q.code.as_deref(), q.state.as_deref()) else {
        return refuse(
            &st,
            &ctx,
            None,
            "callback without code or state",
            StatusCode::BAD_REQUEST,
            START_AGAIN,
        )
        .await;
    };
    let now = st.clock.now();
    // One use: the UPDATE that marks it used is the check.
    let state_hash = crypto::sha256_hex(state.as_bytes());
    let row = match sqlx::query(
        "SELECT binding_hash, nonce, verifier_enc, created_at, used_at FROM oidc_logins WHERE state_hash = ?",
    )
    .bind(&state_hash)
    .fetch_optional(st.db.pool())
    .await
    {
        Ok(r) => r,
        Err(e) => return internal(&st, &ctx, e),
    };
    let Some(row) = row else {
        return refuse(&st, &ctx, None, "unknown state", StatusCode::BAD_REQUEST, START_AGAIN).await;
    };
    let fields = (|| -> Result<_, sqlx::Error> {
        Ok((
            text(&row, "binding_hash")?,
            text(&row, "nonce")?,
            text(&row, "verifier_enc")?,
            row.try_get::<i64, _>("created_at")?,
            row.try_get::<Option<i64>, _>("used_at")?.is_some(),
        ))
    })();
    let (binding_hash, nonce, verifier_enc, created_at, used) = match fields {
        Ok(f) => f,
        Err(e) => return internal(&st, &ctx, e),
    };
    if !sso::state_usable(created_at, used, now) {
        return refuse(
            &st,
            &ctx,
            None,
            if used { "state already used" } else { "state expired" },
            StatusCode::BAD_REQUEST,
            START_AGAIN,
        )
        .await;
    }
    let bound = binding_cookie(&headers).is_some_and(|b| {
        crypto::constant_time_eq(crypto::sha256_hex(b.as_bytes()).as_bytes(), binding_hash.as_bytes())
    });
    if !bound {
        return refuse(
            &st,
            &ctx,
            None,
            "state not started in this browser",
            StatusCode::BAD_REQUEST,
            START_AGAIN,
        )
        .await;
    }
    match st
        .db
        .write(
            sqlx::query("UPDATE oidc_logins SET used_at = ? WHERE state_hash = ? AND used_at IS NULL")
                .bind(now)
                .bind(&state_hash),
        )
        .await
    {
        Ok(r) if r.rows_affected() == 1 => {}
        Ok(_) => {
            return refuse(
                &st,
                &ctx,
                None,
                "state already used",
                StatusCode::BAD_REQUEST,
                START_AGAIN,
            )
            .await
        }
        Err(e) => return internal(&st, &ctx, e),
    }
    let Some(verifier) = st
        .key
        .open("oidc:pkce", &verifier_enc)
        .and_then(|v| String::from_utf8(v).ok())
    else {
        return internal(&st, &ctx, "PKCE verifier cannot be decrypted");
    };

    // Code for tokens, then the ID token's checks.
    let request = match sso.client.exchange_code(AuthorizationCode::new(code.to_owned())) {
        Ok(r) => r,
        Err(e) => return internal(&st, &ctx, e),
    };
    let token = match request
        .set_pkce_verifier(PkceCodeVerifier::new(verifier))
        .request_async(&sso.http)
        .await
    {
        Ok(t) => t,
        Err(e) => {
            // Only the provider's error code or the kind of failure: a parse
            // error's text could quote the response, tokens included.
            let why = match &e {
                openidconnect::RequestTokenError::ServerResponse(r) => r.error().to_string(),
                openidconnect::RequestTokenError::Request(_) => "request failed".to_owned(),
                openidconnect::RequestTokenError::Parse(..) => "unparseable token response".to_owned(),
                openidconnect::RequestTokenError::Other(_) => "other".to_owned(),
            };
            tracing::warn!(request_id = %ctx.request_id, why = %why, "sso code exchange failed");
            return refuse(
                &st,
                &ctx,
                None,
                "code exchange refused by the provider",
                StatusCode::BAD_REQUEST,
                START_AGAIN,
            )
            .await;
        }
    };
    let Some(id_token) = token.id_token() else {
        return refuse(
            &st,
            &ctx,
            None,
            "no ID token in the token response",
            StatusCode::BAD_GATEWAY,
            "The company sign-in did not return an identity.",
        )
        .await;
    };
    let claims = match sso.verify_id_token(id_token, &nonce) {
        Ok(c) => c,
        Err(problem) => {
            let reason = format!("ID token rejected: {problem}");
            return refuse(
                &st,
                &ctx,
                None,
                &reason,
                StatusCode::BAD_REQUEST,
                "The company sign-in could not be verified. Start again.",
            )
            .await;
        }
    };
    let subject = claims.subject().as_str().to_owned();
    let email = claims.email().map(|e| e.as_str().trim().to_lowercase());
    let verified = claims.email_verified().unwrap_or(false);
    let amr: Vec<String> = claims
        .auth_method_refs()
        .map(|v| v.iter().map(|m| m.as_str().to_owned()).collect())
        .unwrap_or_default();

    match complete(
        &st,
        &ctx,
        &session,
        &sso,
        &subject,
        email.as_deref(),
        verified,
        &amr,
        id_token.to_string(),
    )
    .await
    {
        Ok(Ok(next)) => {
            // A new same-site navigation, so the SameSite=Strict session
            // cookie is sent (it is not on the provider's cross-site redirect).
            let body = format!(
                "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
                 <meta http-equiv=\"refresh\" content=\"0;url={next}\"><title>Signing in · Gatehouse</title></head>\
                 <body><p><a href=\"{next}\">Continue</a></p></body></html>"
            );
            let mut r = (StatusCode::OK, Html(body)).into_response();
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r.headers_mut()
                .insert("x-gatehouse-next", HeaderValue::from_static(next));
            r
        }
        Ok(Err((user_id, refusal))) => {
            refuse(
                &st,
                &ctx,
                user_id,
                refusal.reason(),
                StatusCode::FORBIDDEN,
                refusal.message(),
            )
            .await
        }
        Err(e) => internal(&st, &ctx, e),
    }
}

type Refused = (Option<i64>, sso::Refusal);

/// Matches the account, links it on the first sign-in, and starts the
/// session. Returns where the browser goes next.
#[allow(clippy::too_many_arguments)]
async fn complete(
    st: &AppState,
    ctx: &RequestCtx,
    session: &Session,
    sso: &Sso,
    subject: &str,
    email: Option<&str>,
    verified: bool,
    amr: &[String],
    id_token: String,
) -> Result<Result<&'static str, Refused>, crate::errors::AppError> {
    let now = st.clock.now();
    let candidate = |r: &sqlx::any::AnyRow| -> Result<Candidate, sqlx::Error> {
        Ok(Candidate {
            id: r.try_get("id")?,
            status: text(r, "status")?,
            subject: opt_text(r, "oidc_subject")?,
        })
    };
    let by_subject = sqlx::query("SELECT id, status, oidc_subject FROM users WHERE oidc_subject = ?")
        .bind(subject)
        .fetch_optional(st.db.pool())
        .await?;
    let by_subject = by_subject.as_ref().map(candidate).transpose()?;
    let by_email = match email {
        Some(e) => {
            sqlx::query("SELECT id, status, oidc_subject FROM users WHERE email = ?")
                .bind(e)
                .fetch_optional(st.db.pool())
                .await?
        }
        None => None,
    };
    let by_email = by_email.as_ref().map(candidate).transpose()?;
    let (user_id, link) = match sso::match_account(by_subject.as_ref(), by_email.as_ref(), verified) {
        Ok(m) => m,
        Err(refusal) => return Ok(Err((by_subject.or(by_email).map(|c| c.id), refusal))),
    };

    let mut tx = st.db.begin_write().await?;
    let user = accounts::by_id(tx.conn(), user_id)
        .await?
        .ok_or_else(|| crate::errors::internal("matched user vanished"))?;
    // Read again under the write lock: an offboarding that landed since the
    // match above wins.
    match user.status.as_str() {
        "active" | "invited" => {}
        "suspended" => return Ok(Err((Some(user_id), sso::Refusal::Suspended))),
        _ => return Ok(Err((Some(user_id), sso::Refusal::Offboarded))),
    }
    if link {
        // Conditional: of two first sign-ins racing, one links.
        if !accounts::link_oidc_subject(&mut tx, user_id, subject, now).await? {
            return Ok(Err((Some(user_id), sso::Refusal::LinkedElsewhere)));
        }
    }
    let activated = user.status == "invited";
    if activated {
        accounts::activate_invited(&mut tx, user_id, now).await?;
        invitations::cancel_open(&mut tx, user_id, now).await?;
    }
    let trusted = user.has_totp() && sso::amr_trusted(&sso.trust_amr, amr);
    let stage = if !user.has_totp() {
        Stage::NeedsEnrolment
    } else if trusted {
        Stage::Full
    } else {
        Stage::NeedsCode
    };
    let actor = Actor {
        user_id: Some(user_id),
        ..ctx.actor()
    };
    let mut events = vec![NewEvent::new(
        if stage == Stage::Full {
            Action::SignIn
        } else {
            Action::Sso
        },
        Outcome::Success,
        actor.clone(),
    )
    .target("user", user_id)
    .details(json!({
        "method": "sso",
        "linked_now": link,
        "amr": amr,
        "provider_mfa_trusted": trusted,
        "next": match stage {
            Stage::Full => "signed in",
            Stage::NeedsCode => "totp",
            Stage::NeedsEnrolment => "enrolment",
            Stage::NeedsPasskey => "passkey registration",
        },
    }))];
    if activated {
        events.push(
            NewEvent::new(Action::Activated, Outcome::Success, actor)
                .target("user", user_id)
                .details(json!({ "via": "sso", "before": { "status": "invited" }, "after": { "status": "active" } })),
        );
    }
    audit::append(&mut tx, now, events).await?;
    tx.commit().await?;

    sessions::rotate(session).await?;
    let auth = AuthState {
        user_id,
        stage,
        created_at: now,
        last_seen: now,
        mfa_at: None,
        passkey_at: None,
    };
    sessions::set_auth(session, &auth).await?;
    session
        .insert(ID_TOKEN_KEY, id_token)
        .await
        .map_err(sessions::session_err)?;
    Ok(Ok(match stage {
        Stage::Full => "/",
        Stage::NeedsCode => "/mfa",
        Stage::NeedsEnrolment => "/mfa/enrol",
        Stage::NeedsPasskey => "/mfa/passkey",
    }))
}

/// Where to send the browser after Gatehouse's sign-out: the provider's
/// end-session endpoint (RP-initiated logout) when this was an SSO session
/// and the provider offers one.
pub fn logout_url(st: &AppState, id_token: Option<String>) -> Option<String> {
    let sso = st.sso.as_ref()?;
    let mut url = sso.end_session.clone()?;
    let id_token = id_token?;
    let mut back = st.config.public_url.clone();
    back.set_path("/signin");
    url.query_pairs_mut()
        .append_pair("id_token_hint", &id_token)
        .append_pair("post_logout_redirect_uri", back.as_str())
        .append_pair("client_id", sso.client.client_id().as_str());
    Some(url.to_string())
}

/// Seals the PKCE verifiers of sign-ins in flight again under the master
/// key's current key, in the caller's transaction; the number sealed.
pub async fn reseal(
    tx: &mut crate::server::platform::db::WriteTx,
    master: &crate::server::platform::crypto::MasterKey,
) -> Result<u64, crypto::ResealError> {
    let sql = format!(
        "SELECT state_hash, verifier_enc FROM oidc_logins ORDER BY state_hash{}",
        tx.for_update()
    );
    let rows = sqlx::query(&sql).fetch_all(tx.conn()).await?;
    for r in &rows {
        let state = text(r, "state_hash")?;
        let verifier = master.open("oidc:pkce", &text(r, "verifier_enc")?).ok_or_else(|| {
            crypto::ResealError::Unopenable("oidc_logins.verifier_enc of a sign-in in flight".to_owned())
        })?;
        sqlx::query("UPDATE oidc_logins SET verifier_enc = ? WHERE state_hash = ?")
            .bind(master.seal("oidc:pkce", &verifier))
            .bind(&state)
            .execute(tx.conn())
            .await?;
    }
    Ok(rows.len() as u64)
}

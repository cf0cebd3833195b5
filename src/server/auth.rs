//! Sign-in, MFA and session state. Each operation loads what it needs,
//! applies the domain rules, and writes its change and its audit event in
//! one transaction.

use super::{
    audit_log,
    crypto::{self, password},
    db::{text, Db, WriteTx},
    mfa, session_store,
    state::AppState,
    users::{self, UserRow},
};
use crate::domain::{
    audit::{Actor, NewEvent, Outcome},
    lockout, password as pw_rules, recovery,
    totp::{self, TotpError},
    validation::{Email, OtpCode, PersonName},
    Millis, HOUR,
};
use crate::errors::AppError;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::Row;
use tower_sessions::Session;

pub const AUTH_KEY: &str = "auth";
pub const MAX_PASSWORD_INPUT: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Password checked; a TOTP or recovery code is due.
    NeedsCode,
    /// Password checked; the account has no TOTP yet and must enrol.
    NeedsEnrolment,
    /// Fully signed in.
    Full,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthState {
    pub user_id: i64,
    pub stage: Stage,
    pub created_at: Millis,
    pub last_seen: Millis,
    /// When a TOTP code was last entered in this session (for step-up).
    pub mfa_at: Option<Millis>,
}

/// Who is asking, set on every request by the auth layer.
#[derive(Debug, Clone)]
pub struct RequestCtx {
    pub request_id: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub session_tag: Option<String>,
    pub auth: Option<AuthState>,
    /// The signed-in employee's `access_version`, read with their row at
    /// the start of this request (see access_cache).
    pub access_version: Option<i64>,
}

impl RequestCtx {
    pub fn actor(&self) -> Actor {
        Actor {
            user_id: self.auth.as_ref().map(|a| a.user_id),
            session: self.session_tag.clone(),
            ip: self.ip.clone(),
            user_agent: self.user_agent.clone(),
        }
    }

    fn actor_for(&self, user_id: Option<i64>) -> Actor {
        Actor {
            user_id,
            ..self.actor()
        }
    }

    pub fn full(&self) -> Result<&AuthState, AppError> {
        match &self.auth {
            Some(a) if a.stage == Stage::Full => Ok(a),
            _ => Err(AppError::sign_in_required()),
        }
    }

    fn at_stage(&self, stage: Stage) -> Result<&AuthState, AppError> {
        match &self.auth {
            Some(a) if a.stage == stage => Ok(a),
            Some(_) => Err(AppError::Conflict(
                "This step does not apply to your session. Reload the page.".into(),
            )),
            None => Err(AppError::Unauthorized(
                "Your sign-in has expired. Sign in again.".into(),
            )),
        }
    }
}

const GENERIC_SIGNIN_FAILURE: &str = "The email or password is not correct.";

fn session_err(e: tower_sessions::session::Error) -> AppError {
    super::errors::internal(format_args!("session: {e}"))
}

async fn set_auth(session: &Session, state: &AuthState) -> Result<(), AppError> {
    session.insert(AUTH_KEY, state).await.map_err(session_err)
}

/// Starts a new session id for a privilege change (sign-in, MFA).
async fn rotate(session: &Session) -> Result<(), AppError> {
    session.cycle_id().await.map_err(session_err)
}

// ---------------------------------------------------------------- throttling

#[derive(Debug, Clone)]
struct Subject {
    scope: &'static str,
    key: String,
}

fn subjects(email: &str, ip: &Option<String>) -> Vec<Subject> {
    let mut v = vec![Subject {
        scope: "account",
        key: email.to_owned(),
    }];
    if let Some(ip) = ip {
        v.push(Subject {
            scope: "ip",
            key: ip.clone(),
        });
    }
    v
}

async fn failures(db: &Db, s: &Subject, now: Millis) -> Result<Vec<Millis>, sqlx::Error> {
    let rows = sqlx::query("SELECT at FROM auth_failures WHERE scope = ? AND subject = ? AND at > ?")
        .bind(s.scope)
        .bind(&s.key)
        .bind(now - lockout::WINDOW)
        .fetch_all(&db.pool)
        .await?;
    rows.iter().map(|r| r.try_get::<i64, _>("at")).collect()
}

/// Refuses the attempt when the account or the address must wait or is locked.
async fn throttle(db: &Db, subs: &[Subject], now: Millis) -> Result<(), AppError> {
    let mut worst: Option<lockout::Decision> = None;
    for s in subs {
        let d = lockout::assess(&failures(db, s, now).await?, now);
        let later = |d: lockout::Decision| d.retry_after_seconds(now).unwrap_or(0);
        if d != lockout::Decision::Allow && worst.is_none_or(|w| later(d) > later(w)) {
            worst = Some(d);
        }
    }
    match worst {
        None => Ok(()),
        Some(d) => {
            let secs = d.retry_after_seconds(now).unwrap_or(1).max(1);
            let message = match d {
                lockout::Decision::Locked { .. } => format!(
                    "Too many failed attempts. Sign-in is locked for {} minutes, or until an administrator unlocks it.",
                    (secs + 59) / 60
                ),
                _ => format!("Too many failed attempts. Wait {secs} seconds and try again."),
            };
            Err(AppError::TooManyAttempts {
                message,
                retry_after: secs,
            })
        }
    }
}

/// Records a failed attempt for each subject, and returns the subjects this
/// failure locks (the tenth in the window), so the lock is audited once.
async fn record_failure(tx: &mut WriteTx, db: &Db, subs: &[Subject], now: Millis) -> Result<Vec<Subject>, sqlx::Error> {
    let mut locked = Vec::new();
    for s in subs {
        let before = failures(db, s, now).await?;
        if lockout::locks_now(&before, now) {
            locked.push(s.clone());
        }
        sqlx::query("INSERT INTO auth_failures (scope, subject, at) VALUES (?, ?, ?)")
            .bind(s.scope)
            .bind(&s.key)
            .bind(now)
            .execute(&mut ***tx)
            .await?;
    }
    Ok(locked)
}

fn lockout_events(ctx: &RequestCtx, locked: &[Subject], user_id: Option<i64>) -> Vec<NewEvent> {
    locked
        .iter()
        .map(|s| {
            let e = NewEvent::new("auth.lockout", Outcome::Denied, ctx.actor_for(None))
                .reason(format!("{} failed attempts within 15 minutes", lockout::LOCK_AFTER))
                .details(json!({ "scope": s.scope }));
            match (s.scope, user_id) {
                ("account", Some(id)) => e.target("user", id),
                ("account", None) => e.target("email", &s.key),
                _ => e.target("ip", &s.key),
            }
        })
        .collect()
}

/// Records a failed password or code attempt with its audit events.
async fn fail_attempt(
    st: &AppState,
    ctx: &RequestCtx,
    subs: &[Subject],
    user_id: Option<i64>,
    event: NewEvent,
) -> Result<(), AppError> {
    let now = st.clock.now();
    let mut tx = st.db.begin_write().await?;
    let locked = record_failure(&mut tx, &st.db, subs, now).await?;
    let mut events = vec![event];
    events.extend(lockout_events(ctx, &locked, user_id));
    audit_log::append(&mut tx, now, events).await?;
    tx.commit().await?;
    Ok(())
}

async fn clear_account_failures(tx: &mut WriteTx, email: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM auth_failures WHERE scope = 'account' AND subject = ?")
        .bind(email)
        .execute(&mut ***tx)
        .await?;
    Ok(())
}

/// An administrator's (or operator's) unlock: clears the failure window of
/// an account and records who did it.
pub async fn unlock(st: &AppState, actor: Actor, email: &str) -> Result<bool, AppError> {
    let email = Email::parse(email)?;
    let now = st.clock.now();
    let mut tx = st.db.begin_write().await?;
    let cleared = sqlx::query("DELETE FROM auth_failures WHERE scope = 'account' AND subject = ?")
        .bind(email.as_str())
        .execute(&mut **tx)
        .await?
        .rows_affected();
    let user = users::by_email(&mut **tx, email.as_str()).await?;
    let event = NewEvent::new("auth.unlock", Outcome::Success, actor).details(json!({ "cleared_failures": cleared }));
    let event = match &user {
        Some(u) => event.target("user", u.id),
        None => event.target("email", email.as_str()),
    };
    audit_log::append(&mut tx, now, vec![event]).await?;
    tx.commit().await?;
    Ok(cleared > 0)
}

// ---------------------------------------------------------------- first administrator

pub const SETUP_TOKEN_LIFETIME: Millis = HOUR;

/// On a database with no administrator, issues a one-time setup token
/// (valid for an hour) and returns it; `None` when an administrator exists.
pub async fn issue_setup_token(st: &AppState) -> Result<Option<String>, sqlx::Error> {
    let now = st.clock.now();
    if users::admin_exists(&st.db.pool, now).await? {
        return Ok(None);
    }
    let token = crypto::random_token(32);
    let mut tx = st.db.begin_write().await?;
    sqlx::query("INSERT INTO setup_tokens (token_hash, expires_at, created_at) VALUES (?, ?, ?)")
        .bind(crypto::sha256_hex(token.as_bytes()))
        .bind(now + SETUP_TOKEN_LIFETIME)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    audit_log::append(
        &mut tx,
        now,
        vec![NewEvent::new("setup.token_issued", Outcome::Success, Actor::default()).reason("no administrator exists")],
    )
    .await?;
    tx.commit().await?;
    Ok(Some(token))
}

/// Whether a setup token can still be used (for showing the form).
pub async fn setup_token_usable(st: &AppState, token: &str) -> Result<bool, AppError> {
    let now = st.clock.now();
    if users::admin_exists(&st.db.pool, now).await? {
        return Ok(false);
    }
    let row = sqlx::query("SELECT expires_at, used_at FROM setup_tokens WHERE token_hash = ?")
        .bind(crypto::sha256_hex(token.as_bytes()))
        .fetch_optional(&st.db.pool)
        .await?;
    Ok(
        matches!(row, Some(r) if r.try_get::<Option<i64>, _>("used_at")?.is_none() && r.try_get::<i64, _>("expires_at")? > now),
    )
}

pub struct SetupInput {
    pub token: String,
    pub name: String,
    pub email: String,
    pub password: String,
    pub confirm: String,
}

/// Creates the first administrator with a valid setup token, and signs the
/// new administrator in up to TOTP enrolment.
pub async fn complete_setup(
    st: &AppState,
    ctx: &RequestCtx,
    session: &Session,
    input: SetupInput,
) -> Result<(), AppError> {
    let now = st.clock.now();
    let name = PersonName::parse(&input.name)?;
    let email = Email::parse(&input.email)?;
    if input.password.chars().count() > MAX_PASSWORD_INPUT || input.token.len() > 200 {
        return Err(AppError::Validation("The password is too long.".into()));
    }
    pw_rules::check(
        &input.password,
        &input.confirm,
        &[email.local_part()],
        pw_rules::is_common,
    )
    .map_err(|e| AppError::Validation(e.to_string()))?;
    let hash = password::hash_blocking(input.password).await;

    let refused = |why: &str| NewEvent::new("setup.first_admin", Outcome::Denied, ctx.actor()).reason(why.to_owned());
    let mut tx = st.db.begin_write().await?;
    if users::admin_exists(&mut **tx, now).await? {
        drop(tx);
        audit_log::record(&st.db, now, refused("an administrator already exists")).await?;
        return Err(AppError::Conflict(
            "Gatehouse is already set up. Sign in instead.".into(),
        ));
    }
    let used =
        sqlx::query("UPDATE setup_tokens SET used_at = ? WHERE token_hash = ? AND used_at IS NULL AND expires_at > ?")
            .bind(now)
            .bind(crypto::sha256_hex(input.token.as_bytes()))
            .bind(now)
            .execute(&mut **tx)
            .await?
            .rows_affected();
    if used != 1 {
        drop(tx);
        audit_log::record(&st.db, now, refused("setup link invalid, used or expired")).await?;
        return Err(AppError::Forbidden);
    }
    if users::by_email(&mut **tx, email.as_str()).await?.is_some() {
        return Err(AppError::Conflict("An account with this email already exists.".into()));
    }
    let user_id = users::insert(
        &mut tx,
        users::NewUser {
            email: email.as_str(),
            display_name: name.as_str(),
            department: "administration",
            password_hash: Some(&hash),
            status: "active",
        },
        now,
    )
    .await?;
    let grant_id = users::insert_grant(
        &mut tx,
        user_id,
        crate::domain::roles::ADMIN,
        None,
        "first administrator (setup)",
        now,
    )
    .await?;
    audit_log::append(
        &mut tx,
        now,
        vec![
            NewEvent::new("setup.first_admin", Outcome::Success, ctx.actor_for(Some(user_id)))
                .target("user", user_id)
                .details(json!({ "email": email.as_str(), "role": "admin", "grant_id": grant_id })),
        ],
    )
    .await?;
    tx.commit().await?;

    rotate(session).await?;
    set_auth(
        session,
        &AuthState {
            user_id,
            stage: Stage::NeedsEnrolment,
            created_at: now,
            last_seen: now,
            mfa_at: None,
        },
    )
    .await
}

// ---------------------------------------------------------------- password step

/// Checks email and password. Unknown emails cost the same Argon2 work and
/// get the same answer as a wrong password.
pub async fn sign_in(
    st: &AppState,
    ctx: &RequestCtx,
    session: &Session,
    email: &str,
    pw: String,
) -> Result<Stage, AppError> {
    let email = Email::parse(email)?;
    if pw.is_empty() {
        return Err(AppError::Validation("Enter your password.".into()));
    }
    if pw.chars().count() > MAX_PASSWORD_INPUT {
        return Err(AppError::Validation("The password is too long.".into()));
    }
    let now = st.clock.now();
    if let Some(sso) = &st.sso {
        if !crate::domain::sso::password_allowed(sso.required, sso.breakglass.as_deref(), email.as_str()) {
            audit_log::record(
                &st.db,
                now,
                NewEvent::new("auth.signin", Outcome::Denied, ctx.actor_for(None))
                    .target("email", email.as_str())
                    .reason("password sign-in while SSO is required"),
            )
            .await?;
            return Err(AppError::Refused(
                "Sign in with your company account (single sign-on).".into(),
            ));
        }
    }
    let subs = subjects(email.as_str(), &ctx.ip);
    throttle(&st.db, &subs, now).await?;

    let user = users::by_email(&st.db.pool, email.as_str()).await?;
    let ok = password::verify_blocking(pw, user.as_ref().and_then(|u| u.password_hash.clone())).await;
    let user = match user {
        Some(u) if ok && u.is_active() => u,
        other => {
            let why = match &other {
                None => "unknown email",
                Some(u) if !u.is_active() => "account not active",
                Some(_) => "wrong password",
            };
            let mut event = NewEvent::new("auth.signin", Outcome::Failure, ctx.actor_for(None)).reason(why);
            event = match &other {
                Some(u) => event.target("user", u.id),
                None => event.target("email", email.as_str()),
            };
            fail_attempt(st, ctx, &subs, other.as_ref().map(|u| u.id), event).await?;
            return Err(AppError::Unauthorized(GENERIC_SIGNIN_FAILURE.into()));
        }
    };

    let stage = if user.has_totp() {
        Stage::NeedsCode
    } else {
        Stage::NeedsEnrolment
    };
    audit_log::record(
        &st.db,
        st.clock.now(),
        NewEvent::new("auth.password", Outcome::Success, ctx.actor_for(Some(user.id)))
            .target("user", user.id)
            .details(json!({ "next": if user.has_totp() { "totp" } else { "enrolment" } })),
    )
    .await?;
    rotate(session).await?;
    set_auth(
        session,
        &AuthState {
            user_id: user.id,
            stage,
            created_at: now,
            last_seen: now,
            mfa_at: None,
        },
    )
    .await?;
    Ok(stage)
}

fn totp_secret(st: &AppState, user: &UserRow) -> Result<Vec<u8>, AppError> {
    let sealed = user
        .totp_secret_enc
        .as_deref()
        .ok_or_else(|| AppError::Conflict("No authenticator is set up.".into()))?;
    st.key
        .open(&format!("totp:{}", user.id), sealed)
        .ok_or_else(|| super::errors::internal(format_args!("TOTP secret of user {} cannot be decrypted", user.id)))
}

async fn active_user(st: &AppState, user_id: i64) -> Result<UserRow, AppError> {
    match users::by_id(&st.db.pool, user_id).await? {
        Some(u) if u.is_active() => Ok(u),
        _ => Err(AppError::sign_in_required()),
    }
}

/// Checks a TOTP code for `user`, storing its time step so it is never
/// accepted again. Failures and replays are recorded; `action` names the
/// event (sign-in, step-up, ...). On success the caller's events are
/// appended in the same transaction.
async fn check_totp(
    st: &AppState,
    ctx: &RequestCtx,
    user: &UserRow,
    code: &str,
    action: &str,
    success_events: Vec<NewEvent>,
) -> Result<(), AppError> {
    let code = OtpCode::parse(code)?;
    let now = st.clock.now();
    let subs = subjects(&user.email, &ctx.ip);
    throttle(&st.db, &subs, now).await?;
    let secret = totp_secret(st, user)?;
    let actor = ctx.actor_for(Some(user.id));
    match totp::verify(code.as_str(), now, user.totp_last_step, |s| {
        mfa::code_for_step(&secret, s)
    }) {
        Ok(step) => {
            let mut tx = st.db.begin_write().await?;
            // Conditional update: of two requests racing with one code, one wins.
            let won = sqlx::query(
                "UPDATE users SET totp_last_step = ?, updated_at = ? WHERE id = ? AND (totp_last_step IS NULL OR totp_last_step < ?)",
            )
            .bind(step)
            .bind(now)
            .bind(user.id)
            .bind(step)
            .execute(&mut **tx)
            .await?
            .rows_affected();
            if won != 1 {
                drop(tx);
                return replayed(st, ctx, &subs, user, action).await;
            }
            clear_account_failures(&mut tx, &user.email).await?;
            audit_log::append(&mut tx, now, success_events).await?;
            tx.commit().await?;
            Ok(())
        }
        Err(TotpError::Replayed) => replayed(st, ctx, &subs, user, action).await,
        Err(TotpError::Invalid) => {
            let event = NewEvent::new(action, Outcome::Failure, actor)
                .target("user", user.id)
                .reason("wrong code");
            fail_attempt(st, ctx, &subs, Some(user.id), event).await?;
            Err(AppError::Unauthorized(TotpError::Invalid.to_string()))
        }
    }
}

async fn replayed(
    st: &AppState,
    ctx: &RequestCtx,
    subs: &[Subject],
    user: &UserRow,
    action: &str,
) -> Result<(), AppError> {
    let event = NewEvent::new(action, Outcome::Denied, ctx.actor_for(Some(user.id)))
        .target("user", user.id)
        .reason("code replayed: its time step was already used")
        .details(json!({ "replay": true }));
    fail_attempt(st, ctx, subs, Some(user.id), event).await?;
    Err(AppError::Unauthorized(TotpError::Replayed.to_string()))
}

/// Second step of sign-in with an authenticator code.
pub async fn verify_code(st: &AppState, ctx: &RequestCtx, session: &Session, code: &str) -> Result<(), AppError> {
    let auth = ctx.at_stage(Stage::NeedsCode)?.clone();
    let user = active_user(st, auth.user_id).await?;
    let now = st.clock.now();
    let ok = NewEvent::new("auth.signin", Outcome::Success, ctx.actor_for(Some(user.id)))
        .target("user", user.id)
        .details(json!({ "method": "password+totp" }));
    check_totp(st, ctx, &user, code, "auth.mfa", vec![ok]).await?;
    rotate(session).await?;
    set_auth(
        session,
        &AuthState {
            stage: Stage::Full,
            mfa_at: Some(now),
            last_seen: now,
            ..auth
        },
    )
    .await
}

/// Second step of sign-in with a recovery code (each works once).
pub async fn use_recovery_code(
    st: &AppState,
    ctx: &RequestCtx,
    session: &Session,
    code: &str,
) -> Result<usize, AppError> {
    let auth = ctx.at_stage(Stage::NeedsCode)?.clone();
    let user = active_user(st, auth.user_id).await?;
    let normalised = recovery::normalise(code);
    if normalised.is_empty() {
        return Err(AppError::Validation("Enter one of your recovery codes.".into()));
    }
    if normalised.len() > 64 {
        return Err(AppError::Validation("That is not a recovery code.".into()));
    }
    let now = st.clock.now();
    let subs = subjects(&user.email, &ctx.ip);
    throttle(&st.db, &subs, now).await?;

    let rows = sqlx::query("SELECT id, salt, code_hash FROM recovery_codes WHERE user_id = ? AND used_at IS NULL")
        .bind(user.id)
        .fetch_all(&st.db.pool)
        .await?;
    let mut stored = Vec::with_capacity(rows.len());
    for r in &rows {
        let salt = hex::decode(text(r, "salt")?).unwrap_or_default();
        let hash = hex::decode(text(r, "code_hash")?).unwrap_or_default();
        stored.push((r.try_get::<i64, _>("id")?, salt, hash));
    }
    let found = recovery::find_match(&normalised, stored.iter().map(|(_, s, h)| (s.as_slice(), h.as_slice())));
    let Some(index) = found else {
        let event = NewEvent::new("auth.recovery_code", Outcome::Failure, ctx.actor_for(Some(user.id)))
            .target("user", user.id)
            .reason("wrong or already used recovery code");
        fail_attempt(st, ctx, &subs, Some(user.id), event).await?;
        return Err(AppError::Unauthorized(
            "That recovery code is not valid or was already used.".into(),
        ));
    };
    let code_id = stored[index].0;
    let remaining = stored.len() - 1;
    let mut tx = st.db.begin_write().await?;
    let won = sqlx::query("UPDATE recovery_codes SET used_at = ? WHERE id = ? AND used_at IS NULL")
        .bind(now)
        .bind(code_id)
        .execute(&mut **tx)
        .await?
        .rows_affected();
    if won != 1 {
        return Err(AppError::Unauthorized(
            "That recovery code is not valid or was already used.".into(),
        ));
    }
    clear_account_failures(&mut tx, &user.email).await?;
    audit_log::append(
        &mut tx,
        now,
        vec![
            NewEvent::new("auth.recovery_code", Outcome::Success, ctx.actor_for(Some(user.id)))
                .target("user", user.id)
                .details(json!({ "remaining": remaining })),
            NewEvent::new("auth.signin", Outcome::Success, ctx.actor_for(Some(user.id)))
                .target("user", user.id)
                .details(json!({ "method": "password+recovery_code" })),
        ],
    )
    .await?;
    tx.commit().await?;
    rotate(session).await?;
    // A recovery code is not a fresh TOTP: step-up will still ask for one.
    set_auth(
        session,
        &AuthState {
            stage: Stage::Full,
            mfa_at: None,
            last_seen: now,
            ..auth
        },
    )
    .await?;
    Ok(remaining)
}

// ---------------------------------------------------------------- enrolment

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Enrolment {
    pub key: String,
    pub uri: String,
    pub qr_svg: String,
}

/// The pending authenticator secret of a user who must enrol, created on
/// first view and kept (encrypted) until confirmed.
pub async fn enrolment(st: &AppState, ctx: &RequestCtx) -> Result<Enrolment, AppError> {
    let auth = ctx.at_stage(Stage::NeedsEnrolment)?;
    let user = active_user(st, auth.user_id).await?;
    let context = format!("totp-pending:{}", user.id);
    let secret = match user.totp_pending_enc.as_deref().and_then(|s| st.key.open(&context, s)) {
        Some(s) => s,
        None => {
            let secret = crypto::random_bytes::<{ mfa::SECRET_BYTES }>().to_vec();
            let mut tx = st.db.begin_write().await?;
            sqlx::query(
                "UPDATE users SET totp_pending_enc = ?, updated_at = ? WHERE id = ? AND totp_secret_enc IS NULL",
            )
            .bind(st.key.seal(&context, &secret))
            .bind(st.clock.now())
            .bind(user.id)
            .execute(&mut **tx)
            .await?;
            tx.commit().await?;
            secret
        }
    };
    let key = mfa::base32(&secret);
    let uri = totp::otpauth_uri(mfa::ISSUER, &user.email, &key);
    Ok(Enrolment {
        key: mfa::grouped(&key),
        qr_svg: mfa::qr_svg(&uri),
        uri,
    })
}

async fn store_recovery_batch(tx: &mut WriteTx, user_id: i64, now: Millis) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query("DELETE FROM recovery_codes WHERE user_id = ?")
        .bind(user_id)
        .execute(&mut ***tx)
        .await?;
    let (plain, stored) = mfa::new_recovery_batch();
    for (salt, hash) in stored {
        sqlx::query("INSERT INTO recovery_codes (user_id, salt, code_hash, created_at) VALUES (?, ?, ?, ?)")
            .bind(user_id)
            .bind(salt)
            .bind(hash)
            .bind(now)
            .execute(&mut ***tx)
            .await?;
    }
    Ok(plain)
}

/// Keeps freshly generated recovery codes, encrypted, until the page that
/// shows them once has read them. Kept on the user row (not in the session,
/// which concurrent requests rewrite), in the transaction that created them.
async fn stash_codes(st: &AppState, tx: &mut WriteTx, user_id: i64, codes: &[String]) -> Result<(), sqlx::Error> {
    let sealed = st
        .key
        .seal(&format!("recovery-reveal:{user_id}"), codes.join("\n").as_bytes());
    sqlx::query("UPDATE users SET recovery_reveal_enc = ? WHERE id = ?")
        .bind(sealed)
        .bind(user_id)
        .execute(&mut ***tx)
        .await?;
    Ok(())
}

/// Returns the recovery codes waiting to be shown and forgets them.
pub async fn take_stashed_codes(st: &AppState, ctx: &RequestCtx) -> Result<Vec<String>, AppError> {
    let auth = ctx.full()?;
    let mut tx = st.db.begin_write().await?;
    let sql = format!("SELECT recovery_reveal_enc FROM users WHERE id = ?{}", tx.for_update());
    let row = sqlx::query(&sql).bind(auth.user_id).fetch_optional(&mut **tx).await?;
    let sealed = match row {
        Some(r) => super::db::opt_text(&r, "recovery_reveal_enc")?,
        None => None,
    };
    if sealed.is_none() {
        return Ok(Vec::new());
    }
    sqlx::query("UPDATE users SET recovery_reveal_enc = NULL WHERE id = ?")
        .bind(auth.user_id)
        .execute(&mut **tx)
        .await?;
    tx.commit().await?;
    Ok(sealed
        .and_then(|s| st.key.open(&format!("recovery-reveal:{}", auth.user_id), &s))
        .and_then(|b| String::from_utf8(b).ok())
        .map(|s| s.lines().map(str::to_owned).collect())
        .unwrap_or_default())
}

/// Confirms enrolment with a code from the new authenticator: the secret
/// becomes active, ten recovery codes are issued, and sign-in completes.
pub async fn confirm_enrolment(st: &AppState, ctx: &RequestCtx, session: &Session, code: &str) -> Result<(), AppError> {
    let auth = ctx.at_stage(Stage::NeedsEnrolment)?.clone();
    let user = active_user(st, auth.user_id).await?;
    let code = OtpCode::parse(code)?;
    let now = st.clock.now();
    let subs = subjects(&user.email, &ctx.ip);
    throttle(&st.db, &subs, now).await?;
    let pending = user
        .totp_pending_enc
        .as_deref()
        .and_then(|s| st.key.open(&format!("totp-pending:{}", user.id), s))
        .ok_or_else(|| AppError::Conflict("Reload the page to get a new QR code, then try again.".into()))?;
    let step = match totp::verify(code.as_str(), now, None, |s| mfa::code_for_step(&pending, s)) {
        Ok(step) => step,
        Err(_) => {
            let event = NewEvent::new("mfa.enrol", Outcome::Failure, ctx.actor_for(Some(user.id)))
                .target("user", user.id)
                .reason("wrong confirmation code");
            fail_attempt(st, ctx, &subs, Some(user.id), event).await?;
            return Err(AppError::Unauthorized(
                "That code is not correct. Check that your device's clock is right and enter the current code.".into(),
            ));
        }
    };
    let mut tx = st.db.begin_write().await?;
    let won = sqlx::query(
        "UPDATE users SET totp_secret_enc = ?, totp_pending_enc = NULL, totp_enrolled_at = ?, totp_last_step = ?, updated_at = ? \
         WHERE id = ? AND totp_secret_enc IS NULL",
    )
    .bind(st.key.seal(&format!("totp:{}", user.id), &pending))
    .bind(now)
    .bind(step)
    .bind(now)
    .bind(user.id)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if won != 1 {
        return Err(AppError::Conflict(
            "An authenticator is already set up for this account.".into(),
        ));
    }
    let codes = store_recovery_batch(&mut tx, user.id, now).await?;
    stash_codes(st, &mut tx, user.id, &codes).await?;
    clear_account_failures(&mut tx, &user.email).await?;
    audit_log::append(
        &mut tx,
        now,
        vec![
            NewEvent::new("mfa.enrolled", Outcome::Success, ctx.actor_for(Some(user.id)))
                .target("user", user.id)
                .details(json!({ "method": "totp", "recovery_codes": codes.len() })),
            NewEvent::new("auth.signin", Outcome::Success, ctx.actor_for(Some(user.id)))
                .target("user", user.id)
                .details(json!({ "method": "password+totp_enrolment" })),
        ],
    )
    .await?;
    tx.commit().await?;
    rotate(session).await?;
    set_auth(
        session,
        &AuthState {
            stage: Stage::Full,
            mfa_at: Some(now),
            last_seen: now,
            ..auth
        },
    )
    .await
}

/// Replaces the recovery codes after a fresh TOTP code; the old set stops
/// working at once.
pub async fn regenerate_recovery_codes(
    st: &AppState,
    ctx: &RequestCtx,
    session: &Session,
    code: &str,
) -> Result<(), AppError> {
    let auth = ctx.full()?.clone();
    let user = active_user(st, auth.user_id).await?;
    check_totp(st, ctx, &user, code, "mfa.step_up", vec![]).await?;
    let now = st.clock.now();
    let mut tx = st.db.begin_write().await?;
    let codes = store_recovery_batch(&mut tx, user.id, now).await?;
    stash_codes(st, &mut tx, user.id, &codes).await?;
    audit_log::append(
        &mut tx,
        now,
        vec![NewEvent::new(
            "mfa.recovery_codes_regenerated",
            Outcome::Success,
            ctx.actor_for(Some(user.id)),
        )
        .target("user", user.id)
        .details(json!({ "recovery_codes": codes.len(), "previous_set": "voided" }))],
    )
    .await?;
    tx.commit().await?;
    set_auth(
        session,
        &AuthState {
            mfa_at: Some(now),
            last_seen: now,
            ..auth
        },
    )
    .await
}

pub async fn recovery_codes_left(st: &AppState, user_id: i64) -> Result<i64, AppError> {
    Ok(
        sqlx::query("SELECT COUNT(*) AS n FROM recovery_codes WHERE user_id = ? AND used_at IS NULL")
            .bind(user_id)
            .fetch_one(&st.db.pool)
            .await?
            .try_get("n")?,
    )
}

// ---------------------------------------------------------------- sign-out and expiry

/// Ends this session; returns the provider's end-session URL when this was
/// a single sign-on session and the provider offers RP-initiated logout.
pub async fn sign_out(st: &AppState, ctx: &RequestCtx, session: &Session) -> Result<Option<String>, AppError> {
    let id_token: Option<String> = session.get(super::sso::ID_TOKEN_KEY).await.ok().flatten();
    if let Some(auth) = &ctx.auth {
        audit_log::record(
            &st.db,
            st.clock.now(),
            NewEvent::new("auth.signout", Outcome::Success, ctx.actor()).target("user", auth.user_id),
        )
        .await?;
    }
    session.delete().await.map_err(session_err)?;
    Ok(super::sso::logout_url(st, id_token))
}

/// Ends every session of the signed-in user, this one included.
pub async fn sign_out_everywhere(st: &AppState, ctx: &RequestCtx, session: &Session) -> Result<u64, AppError> {
    let auth = ctx.full()?;
    let now = st.clock.now();
    let mut tx = st.db.begin_write().await?;
    let ended = session_store::delete_all_for_user(&mut tx, auth.user_id).await?;
    audit_log::append(
        &mut tx,
        now,
        vec![NewEvent::new("auth.signout_everywhere", Outcome::Success, ctx.actor())
            .target("user", auth.user_id)
            .details(json!({ "sessions_ended": ended }))],
    )
    .await?;
    tx.commit().await?;
    session.clear().await;
    let _ = session.delete().await;
    Ok(ended)
}

/// Records that a session ended by timeout and removes it.
pub async fn expire_session(
    st: &AppState,
    id_hash: &str,
    user_id: Option<i64>,
    reason: &str,
    ctx: Option<&RequestCtx>,
) -> Result<(), sqlx::Error> {
    let now = st.clock.now();
    let mut tx = st.db.begin_write().await?;
    let gone = sqlx::query("DELETE FROM sessions WHERE id_hash = ?")
        .bind(id_hash)
        .execute(&mut **tx)
        .await?
        .rows_affected();
    if gone == 1 {
        if let Some(user_id) = user_id {
            let actor = Actor {
                user_id: Some(user_id),
                session: Some(id_hash[..16].to_owned()),
                ip: ctx.and_then(|c| c.ip.clone()),
                user_agent: ctx.and_then(|c| c.user_agent.clone()),
            };
            audit_log::append(
                &mut tx,
                now,
                vec![NewEvent::new("auth.session_expired", Outcome::Success, actor)
                    .target("user", user_id)
                    .reason(reason)],
            )
            .await?;
        }
    }
    tx.commit().await
}

// ---------------------------------------------------------------- step-up

/// Sensitive actions need an authenticator code entered within the last
/// five minutes: either the session has one that fresh, or `code` is one.
pub async fn step_up(
    st: &AppState,
    ctx: &RequestCtx,
    session: &Session,
    code: &str,
    purpose: &str,
) -> Result<(), AppError> {
    let auth = ctx.full()?;
    if crate::domain::session_policy::step_up_fresh(auth.mfa_at, st.clock.now()) {
        return Ok(());
    }
    if code.trim().is_empty() {
        return Err(AppError::Unauthorized(
            "Enter a code from your authenticator app to confirm: your last one is more than 5 minutes old.".into(),
        ));
    }
    confirm_code(st, ctx, session, code, purpose).await
}

/// Checks a new authenticator code whatever the age of the last one (an
/// action that always needs one, such as breaking the glass).
pub async fn confirm_code(
    st: &AppState,
    ctx: &RequestCtx,
    session: &Session,
    code: &str,
    purpose: &str,
) -> Result<(), AppError> {
    let auth = ctx.full()?.clone();
    let now = st.clock.now();
    if code.trim().is_empty() {
        return Err(AppError::Unauthorized(
            "Enter a code from your authenticator app to confirm.".into(),
        ));
    }
    let user = active_user(st, auth.user_id).await?;
    let ok = NewEvent::new("mfa.step_up", Outcome::Success, ctx.actor())
        .target("user", user.id)
        .details(json!({ "for": purpose }));
    check_totp(st, ctx, &user, code, "mfa.step_up", vec![ok]).await?;
    set_auth(
        session,
        &AuthState {
            mfa_at: Some(now),
            last_seen: now,
            ..auth
        },
    )
    .await
}

// ---------------------------------------------------------------- invitations

pub const INVITATION_LIFETIME: Millis = 72 * HOUR;

/// The invited person, when the token is valid.
pub async fn invitation(st: &AppState, token: &str) -> Result<Option<(i64, UserRow)>, AppError> {
    if token.is_empty() || token.len() > 200 {
        return Ok(None);
    }
    let now = st.clock.now();
    let row = sqlx::query(
        "SELECT id, user_id FROM invitations WHERE token_hash = ? AND used_at IS NULL AND cancelled_at IS NULL AND expires_at > ?",
    )
    .bind(crypto::sha256_hex(token.as_bytes()))
    .bind(now)
    .fetch_optional(&st.db.pool)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let user = users::by_id(&st.db.pool, row.try_get("user_id")?).await?;
    Ok(user
        .filter(|u| u.status == "invited")
        .map(|u| (row.try_get("id").unwrap_or_default(), u)))
}

/// The invited employee sets a password; the account becomes active and
/// the session continues to authenticator enrolment.
pub async fn accept_invitation(
    st: &AppState,
    ctx: &RequestCtx,
    session: &Session,
    token: &str,
    pw: String,
    confirm: String,
) -> Result<(), AppError> {
    let now = st.clock.now();
    if pw.chars().count() > MAX_PASSWORD_INPUT {
        return Err(AppError::Validation("The password is too long.".into()));
    }
    let Some((_, user)) = invitation(st, token).await? else {
        audit_log::record(
            &st.db,
            now,
            NewEvent::new("invitation.accept", Outcome::Denied, ctx.actor())
                .reason("link invalid, used, cancelled or expired"),
        )
        .await?;
        return Err(AppError::Refused("This invitation link is not valid: it has expired, was already used or was cancelled. Ask your administrator for a new one.".into()));
    };
    let local = user.email.split('@').next().unwrap_or_default().to_owned();
    pw_rules::check(&pw, &confirm, &[local.as_str()], pw_rules::is_common)
        .map_err(|e| AppError::Validation(e.to_string()))?;
    let hash = password::hash_blocking(pw).await;
    let mut tx = st.db.begin_write().await?;
    let used = sqlx::query(
        "UPDATE invitations SET used_at = ? WHERE token_hash = ? AND used_at IS NULL AND cancelled_at IS NULL AND expires_at > ?",
    )
    .bind(now)
    .bind(crypto::sha256_hex(token.as_bytes()))
    .bind(now)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    let activated = sqlx::query(
        "UPDATE users SET status = 'active', password_hash = ?, updated_at = ? WHERE id = ? AND status = 'invited'",
    )
    .bind(&hash)
    .bind(now)
    .bind(user.id)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if used != 1 || activated != 1 {
        return Err(AppError::Conflict(
            "This invitation was used or cancelled a moment ago.".into(),
        ));
    }
    audit_log::append(
        &mut tx,
        now,
        vec![
            NewEvent::new("invitation.accepted", Outcome::Success, ctx.actor_for(Some(user.id)))
                .target("user", user.id)
                .details(json!({ "before": { "status": "invited" }, "after": { "status": "active" } })),
        ],
    )
    .await?;
    tx.commit().await?;
    rotate(session).await?;
    set_auth(
        session,
        &AuthState {
            user_id: user.id,
            stage: Stage::NeedsEnrolment,
            created_at: now,
            last_seen: now,
            mfa_at: None,
        },
    )
    .await
}

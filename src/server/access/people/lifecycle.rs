//! Joining and pausing: onboarding by invitation, a new invitation link,
//! suspension and reactivation.

use crate::domain::actions::Action;
use crate::domain::{
    audit::{NewEvent, Outcome},
    grants::{self as rules, DEPARTMENTS},
    permissions::Permission,
    validation::{Email, PersonName},
    Millis,
};
use crate::dto::Invited;
use crate::errors::AppError;
use crate::server::{
    access::{
        authz::{self, Principal},
        elevation, grants, notify,
    },
    audit,
    identity::{accounts, invitations, sessions},
    platform::{db::WriteTx, request::RequestCtx, time::format_time},
    state::AppState,
};
use serde_json::json;

// ---------------------------------------------------------------- onboarding

pub struct OnboardInput {
    pub name: String,
    pub email: String,
    pub department: String,
    pub roles: Vec<String>,
    pub reason: String,
}

/// Creates an invited employee with initial roles and a single-use
/// invitation link (valid 72 hours). The link is shown once, never stored.
pub async fn onboard(st: &AppState, ctx: &RequestCtx, p: &Principal, input: OnboardInput) -> Result<Invited, AppError> {
    let now = st.clock.now();
    let name = PersonName::parse(&input.name)?;
    let email = Email::parse(&input.email)?;
    if !DEPARTMENTS.contains(&input.department.as_str()) {
        return Err(AppError::Validation("Choose a department.".into()));
    }
    if input.roles.len() > 20 {
        return Err(AppError::Validation("Too many roles.".into()));
    }
    if !input.roles.is_empty() && !p.perms.contains(Permission::AccessGrant) {
        authz::deny(st, ctx, &[Permission::AccessGrant], "onboard_employee.roles").await?;
        return Err(AppError::Forbidden);
    }
    let reason = if input.reason.trim().is_empty() {
        "onboarding".to_owned()
    } else {
        rules::check_reason(&input.reason)?
    };
    let mut tx = st.db.begin_write().await?;
    grants::lock_administrators(&mut tx).await?;
    if accounts::by_email(tx.conn(), email.as_str()).await?.is_some() {
        return Err(AppError::Conflict("An employee with this email already exists.".into()));
    }
    let user_id = accounts::insert(
        &mut tx,
        accounts::NewUser {
            email: email.as_str(),
            display_name: name.as_str(),
            department: &input.department,
            password_hash: None,
            status: "invited",
            provisioned_by: accounts::Provisioning::Gatehouse,
        },
        now,
    )
    .await?;
    audit::append(
        &mut tx,
        now,
        vec![NewEvent::new(Action::Onboarded, Outcome::Success, ctx.actor())
            .target("user", user_id)
            .details(json!({
                "email": email.as_str(),
                "department": input.department,
                "initial_roles": input.roles,
                "before": null,
                "after": { "status": "invited" },
            }))],
    )
    .await?;
    for role in &input.roles {
        // A rule refusal rolls back the whole onboarding.
        grants::grant_in(&mut tx, ctx.actor(), p.user_id, role, user_id, &reason, None, now).await?;
    }
    let token = invitations::create(&mut tx, user_id, p.user_id, now).await?;
    let invited = deliver_link(&mut tx, st, now, email.as_str(), name.as_str(), user_id, &token).await?;
    audit::append(
        &mut tx,
        now,
        vec![NewEvent::new(Action::InvitationCreated, Outcome::Success, ctx.actor())
            .target("user", user_id)
            .details(json!({
                "expires_at": now + invitations::INVITATION_LIFETIME,
                "emailed": invited.emailed_to.is_some(),
            }))],
    )
    .await?;
    tx.commit().await?;
    Ok(invited)
}

/// Where an invitation link goes: with GATEHOUSE_INVITATIONS_BY_EMAIL to the
/// invitee's own address only (queued in this transaction), so that no
/// administrator holds a way into an account they made; otherwise to the
/// page, shown once.
async fn deliver_link(
    tx: &mut WriteTx,
    st: &AppState,
    now: Millis,
    email: &str,
    name: &str,
    user_id: i64,
    token: &str,
) -> Result<Invited, AppError> {
    let link = invitations::link(&st.config.public_url, token);
    let expires_at = format_time(now + invitations::INVITATION_LIFETIME);
    if st.config.invitations_by_email {
        notify::queue_invitation(tx, now, email, name, &link, &expires_at).await?;
        return Ok(Invited {
            user_id,
            link: None,
            emailed_to: Some(email.to_owned()),
            expires_at,
        });
    }
    Ok(Invited {
        user_id,
        link: Some(link),
        emailed_to: None,
        expires_at,
    })
}

/// A new invitation link for an employee who has not accepted yet; the old
/// link stops working. Never for an employee the identity provider manages
/// (refused and recorded).
pub async fn reissue_invitation(
    st: &AppState,
    ctx: &RequestCtx,
    p: &Principal,
    user_id: i64,
) -> Result<Invited, AppError> {
    let now = st.clock.now();
    let mut tx = st.db.begin_write().await?;
    let user = accounts::by_id(tx.conn(), user_id).await?.ok_or(AppError::NotFound)?;
    if user.status != "invited" {
        return Err(AppError::Conflict(
            "Only an employee who has not accepted the invitation can get a new link.".into(),
        ));
    }
    if accounts::managed_by_provider(tx.conn(), user_id).await? {
        // An invitation sets a password only Gatehouse knows: for someone
        // the identity provider manages, that would be an identity beside
        // it (a puppet any administrator could hold).
        drop(tx);
        let e = AppError::Conflict(
            "This employee is managed by the company's identity provider and signs in through it; \
             Gatehouse does not issue invitation links for them."
                .into(),
        );
        return Err(denied(st, ctx, Action::InvitationCreated, user_id, e).await?);
    }
    let cancelled = invitations::cancel_open(&mut tx, user_id, now).await?;
    let token = invitations::create(&mut tx, user_id, p.user_id, now).await?;
    let invited = deliver_link(&mut tx, st, now, &user.email, &user.display_name, user_id, &token).await?;
    audit::append(
        &mut tx,
        now,
        vec![NewEvent::new(Action::InvitationCreated, Outcome::Success, ctx.actor())
            .target("user", user_id)
            .details(json!({
                "expires_at": now + invitations::INVITATION_LIFETIME,
                "replaced": cancelled,
                "emailed": invited.emailed_to.is_some(),
            }))],
    )
    .await?;
    tx.commit().await?;
    Ok(invited)
}

// ---------------------------------------------------------------- suspension

pub(super) async fn deactivation_check(
    tx: &mut WriteTx,
    actor_id: i64,
    user_id: i64,
    now: Millis,
) -> Result<(), AppError> {
    let admins = grants::active_admin_ids(tx.conn(), now).await?;
    rules::check_deactivate(actor_id, user_id, admins.contains(&user_id), admins.len())?;
    Ok(())
}

pub(super) async fn denied(
    st: &AppState,
    ctx: &RequestCtx,
    action: Action,
    user_id: i64,
    e: AppError,
) -> Result<AppError, AppError> {
    st.recorder
        .record(
            st.clock.now(),
            NewEvent::new(action, Outcome::Denied, ctx.actor())
                .target("user", user_id)
                .reason(e.to_string()),
        )
        .await?;
    Ok(e)
}

/// Blocks sign-in and ends every session; grants stay.
pub async fn suspend(
    st: &AppState,
    ctx: &RequestCtx,
    p: &Principal,
    user_id: i64,
    reason: &str,
) -> Result<(), AppError> {
    let now = st.clock.now();
    let reason = rules::check_reason(reason)?;
    let mut tx = st.db.begin_write().await?;
    grants::lock_administrators(&mut tx).await?;
    let user = accounts::by_id(tx.conn(), user_id).await?.ok_or(AppError::NotFound)?;
    if user.status != "active" && user.status != "invited" {
        return Err(AppError::Conflict(format!(
            "This employee is {}; only active or invited employees can be suspended.",
            user.status
        )));
    }
    if let Err(e) = deactivation_check(&mut tx, p.user_id, user_id, now).await {
        drop(tx);
        return Err(denied(st, ctx, Action::Suspend, user_id, e).await?);
    }
    accounts::suspend(&mut tx, user_id, &reason, now).await?;
    let ended = sessions::delete_all_for_user(&mut tx, user_id).await?;
    elevation::end_all_in(&mut tx, &ctx.actor(), user_id, "suspended", now).await?;
    audit::append(
        &mut tx,
        now,
        vec![NewEvent::new(Action::Suspended, Outcome::Success, ctx.actor())
            .target("user", user_id)
            .reason(reason)
            .details(json!({
                "sessions_ended": ended,
                "before": { "status": user.status },
                "after": { "status": "suspended" },
            }))],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

pub async fn reactivate(st: &AppState, ctx: &RequestCtx, p: &Principal, user_id: i64) -> Result<(), AppError> {
    let now = st.clock.now();
    let mut tx = st.db.begin_write().await?;
    let user = accounts::by_id(tx.conn(), user_id).await?.ok_or(AppError::NotFound)?;
    if user.status != "suspended" {
        return Err(AppError::Conflict(
            "Only a suspended employee can be reactivated.".into(),
        ));
    }
    if p.user_id == user_id {
        return Err(AppError::Refused(rules::RuleError::OwnAccess.to_string()));
    }
    // Someone suspended before accepting the invitation goes back to invited.
    let back_to = if user.password_hash.is_some() {
        "active"
    } else {
        "invited"
    };
    accounts::reactivate(&mut tx, user_id, back_to, now).await?;
    audit::append(
        &mut tx,
        now,
        vec![NewEvent::new(Action::Reactivated, Outcome::Success, ctx.actor())
            .target("user", user_id)
            .details(json!({ "before": { "status": "suspended" }, "after": { "status": back_to } }))],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

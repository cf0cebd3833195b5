//! Elevation requests, decisions, break-glass and approval policies.

// Server functions take a form's fields, however many it has (the
// attribute does not reach the browser's side of `#[server]`).
#![allow(clippy::too_many_arguments)]

use crate::dto::*;
use crate::errors::AppError;
#[cfg(feature = "ssr")]
use crate::server::{
    access::{elevation, roles},
    identity::mfa,
};

api! {
    "request_elevation" (st, ctx, _)
    pub async fn request_elevation(
        role: String,
        #[server(default)] duration: String,
        justification: String,
        ticket: String,
        #[server(default)] starts_at: String,
        #[server(default)] customers: String,
        #[server(default)] extends: Option<i64>,
    ) -> Result<i64, AppError> {
        let auth = ctx.full()?;
        let input = elevation::RequestInput {
            role,
            duration,
            justification,
            ticket,
            starts_at,
            customers,
            extends,
        };
        elevation::create(&st, &ctx, auth.user_id, input).await
    }
}

api! {
    "my_elevations" (st, ctx, _)
    pub async fn my_elevations() -> Result<Vec<ElevationView>, AppError> {
        let auth = ctx.full()?;
        elevation::mine(&st, auth.user_id).await
    }
}

api! {
    "cancel_elevation" (st, ctx, _)
    pub async fn cancel_elevation(id: i64) -> Result<(), AppError> {
        let auth = ctx.full()?;
        elevation::cancel(&st, &ctx, auth.user_id, id).await
    }
}

api! {
    /// For holders of requests:approve and named approvers.
    "elevation_queue" approver (st, _, _, p)
    pub async fn elevation_queue() -> Result<Vec<ElevationView>, AppError> {
        elevation::queue(&st, &p).await
    }
}

api! {
    /// `decision` is "approve" or "deny". Returns the request's new state.
    "decide_elevation" approver (st, ctx, session, p)
    pub async fn decide_elevation(
        id: i64,
        decision: String,
        #[server(default)] reason: String,
        #[server(default)] code: String,
    ) -> Result<String, AppError> {
        let approve = match decision.as_str() {
            "approve" => true,
            "deny" => false,
            _ => return Err(AppError::Validation("Decide approve or deny.".into())),
        };
        let state = elevation::decide(&st, &ctx, &session, &p, id, approve, &reason, &code).await?;
        Ok(state.as_str().to_owned())
    }
}

api! {
    "revoke_elevation" needs [RequestsApprove] (st, ctx, session, p)
    pub async fn revoke_elevation(id: i64, reason: String, #[server(default)] code: String) -> Result<(), AppError> {
        elevation::revoke(&st, &ctx, &session, &p, id, &reason, &code).await
    }
}

api! {
    /// An engineer's own emergency access: at most 1 hour, always with a new
    /// authenticator code. Returns the activation's id.
    "break_glass" (st, ctx, session)
    pub async fn break_glass(
        #[server(default)] duration: String,
        justification: String,
        #[server(default)] code: String,
    ) -> Result<i64, AppError> {
        let auth = ctx.full()?;
        elevation::break_glass(&st, &ctx, &session, auth.user_id, &duration, &justification, &code)
            .await
    }
}

api! {
    /// The post-incident review of a break-glass activation (someone else).
    "review_breakglass" needs [RequestsApprove] (st, ctx, _, p)
    pub async fn review_breakglass(id: i64, note: String) -> Result<(), AppError> {
        elevation::review(&st, &ctx, &p, id, &note).await
    }
}

api! {
    /// Every elevation request, newest first (history is kept forever).
    "elevation_history" needs [AuditRead] (st, _, _, _)
    pub async fn elevation_history() -> Result<Vec<ElevationView>, AppError> {
        elevation::history(&st).await
    }
}

api! {
    /// One elevation and everything accessed under it.
    "elevation_ticket" needs [AuditRead] (st, _, _, _)
    pub async fn elevation_ticket(id: i64) -> Result<TicketView, AppError> {
        elevation::ticket(&st, id).await
    }
}

api! {
    "approval_policies" needs [AccessGrant] (st, _, _, _)
    pub async fn approval_policies() -> Result<Vec<PolicyView>, AppError> {
        elevation::policies(&st).await
    }
}

api! {
    /// Who approves a requestable role and how many approvals it needs
    /// (step-up: it changes who can open customer data).
    "set_approval_policy" needs [AccessGrant] (st, ctx, session, p)
    pub async fn set_approval_policy(
        role: String,
        approvals_needed: String,
        #[server(default)] approvers: String,
        #[server(default)] code: String,
    ) -> Result<(), AppError> {
        mfa::step_up(&st, &ctx, &session, &code, "change approval policy").await?;
        elevation::set_policy(&st, &ctx, &p, &role, &approvals_needed, &approvers).await
    }
}

api! {
    /// Roles anyone may request, for the request form.
    "requestable_roles" (st, ctx, _)
    pub async fn requestable_roles() -> Result<Vec<RoleInfo>, AppError> {
        ctx.full()?;
        let roles = roles::catalogue(st.db.pool()).await?;
        Ok(roles
            .iter()
            .filter(|r| r.requestable)
            .map(|r| roles::role_info(r, 0))
            .collect())
    }
}

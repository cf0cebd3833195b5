//! Server functions for roles, grants, the employee directory, onboarding
//! and offboarding. Each one checks its permission on the server first
//! (`access::require`, which records refusals) and then calls one service
//! function.

use super::types::*;
use crate::errors::AppError;
use leptos::prelude::*;

#[cfg(feature = "ssr")]
mod ssr {
    pub use super::super::ssr::*;
    pub use crate::domain::permissions::Permission as P;
    pub use crate::server::{access, grants, people};
}

#[server(endpoint = "catalogue")]
pub async fn catalogue() -> Result<CatalogueView, AppError> {
    use ssr::*;
    finish(
        async {
            let (st, ctx, _) = request()?;
            access::require_any(&st, &ctx, &[P::AccessGrant, P::EmployeesManage], "catalogue").await?;
            let holders = grants::holders(&st).await?;
            let roles = access::catalogue(&st.db.pool).await?;
            Ok(CatalogueView {
                permissions: P::ALL.iter().map(|p| grants::permission_info(*p)).collect(),
                roles: roles
                    .iter()
                    .map(|r| grants::role_info(r, holders.get(&r.key).copied().unwrap_or(0)))
                    .collect(),
            })
        }
        .await,
    )
}

#[server(endpoint = "save_role")]
pub async fn save_role(
    key: String,
    name: String,
    #[server(default)] description: String,
    #[server(default)] permissions: Vec<String>,
    #[server(default)] max_duration: String,
    #[server(default)] requestable: Option<String>,
) -> Result<(), AppError> {
    use ssr::*;
    finish(
        async {
            let (st, ctx, _) = request()?;
            let p = access::require(&st, &ctx, P::AccessGrant, "save_role").await?;
            let input = grants::RoleInput {
                key,
                name,
                description,
                permissions,
                max_duration,
                requestable: requestable.is_some(),
            };
            grants::save_role(&st, &ctx, &p, input).await
        }
        .await,
    )
}

#[server(endpoint = "delete_role")]
pub async fn delete_role(key: String) -> Result<(), AppError> {
    use ssr::*;
    finish(
        async {
            let (st, ctx, _) = request()?;
            access::require(&st, &ctx, P::AccessGrant, "delete_role").await?;
            grants::delete_role(&st, &ctx, &key).await
        }
        .await,
    )
}

#[server(endpoint = "list_employees")]
pub async fn list_employees(
    #[server(default)] q: String,
    #[server(default)] department: String,
    #[server(default)] role: String,
    #[server(default)] status: String,
    #[server(default)] mfa: String,
) -> Result<Vec<EmployeeRow>, AppError> {
    use ssr::*;
    finish(
        async {
            let (st, ctx, _) = request()?;
            access::require(&st, &ctx, P::EmployeesManage, "list_employees").await?;
            people::list(
                &st,
                &people::Filter {
                    q,
                    department,
                    role,
                    status,
                    mfa,
                },
            )
            .await
        }
        .await,
    )
}

#[server(endpoint = "employee")]
pub async fn employee(id: i64) -> Result<EmployeeDetail, AppError> {
    use ssr::*;
    finish(
        async {
            let (st, ctx, _) = request()?;
            let p = access::require(&st, &ctx, P::EmployeesManage, "employee").await?;
            people::detail(&st, &p, id).await
        }
        .await,
    )
}

#[server(endpoint = "onboard_employee")]
pub async fn onboard_employee(
    name: String,
    email: String,
    department: String,
    #[server(default)] roles: Vec<String>,
    #[server(default)] reason: String,
) -> Result<Invited, AppError> {
    use ssr::*;
    finish(
        async {
            let (st, ctx, _) = request()?;
            let p = access::require(&st, &ctx, P::EmployeesManage, "onboard_employee").await?;
            people::onboard(
                &st,
                &ctx,
                &p,
                people::OnboardInput {
                    name,
                    email,
                    department,
                    roles,
                    reason,
                },
            )
            .await
        }
        .await,
    )
}

#[server(endpoint = "reissue_invitation")]
pub async fn reissue_invitation(user_id: i64) -> Result<Invited, AppError> {
    use ssr::*;
    finish(
        async {
            let (st, ctx, _) = request()?;
            let p = access::require(&st, &ctx, P::EmployeesManage, "reissue_invitation").await?;
            people::reissue_invitation(&st, &ctx, &p, user_id).await
        }
        .await,
    )
}

/// Returns whether the grant waits for a second administrator.
#[server(endpoint = "grant_role")]
pub async fn grant_role(
    user_id: i64,
    role: String,
    reason: String,
    #[server(default)] expires_in: String,
) -> Result<bool, AppError> {
    use ssr::*;
    finish(
        async {
            let (st, ctx, _) = request()?;
            let p = access::require(&st, &ctx, P::AccessGrant, "grant_role").await?;
            let (_, pending) = grants::grant(
                &st,
                &ctx,
                &p,
                grants::GrantInput {
                    user_id,
                    role,
                    reason,
                    expires_in,
                },
            )
            .await?;
            Ok(pending)
        }
        .await,
    )
}

#[server(endpoint = "approve_grant")]
pub async fn approve_grant(grant_id: i64) -> Result<(), AppError> {
    use ssr::*;
    finish(
        async {
            let (st, ctx, _) = request()?;
            let p = access::require(&st, &ctx, P::AccessGrant, "approve_grant").await?;
            grants::approve(&st, &ctx, &p, grant_id).await
        }
        .await,
    )
}

#[server(endpoint = "revoke_grant")]
pub async fn revoke_grant(grant_id: i64, reason: String) -> Result<(), AppError> {
    use ssr::*;
    finish(
        async {
            let (st, ctx, _) = request()?;
            let p = access::require(&st, &ctx, P::AccessGrant, "revoke_grant").await?;
            grants::revoke(&st, &ctx, &p, grant_id, &reason).await
        }
        .await,
    )
}

#[server(endpoint = "suspend_employee")]
pub async fn suspend_employee(user_id: i64, reason: String) -> Result<(), AppError> {
    use ssr::*;
    finish(
        async {
            let (st, ctx, _) = request()?;
            let p = access::require(&st, &ctx, P::EmployeesManage, "suspend_employee").await?;
            people::suspend(&st, &ctx, &p, user_id, &reason).await
        }
        .await,
    )
}

#[server(endpoint = "reactivate_employee")]
pub async fn reactivate_employee(user_id: i64) -> Result<(), AppError> {
    use ssr::*;
    finish(
        async {
            let (st, ctx, _) = request()?;
            let p = access::require(&st, &ctx, P::EmployeesManage, "reactivate_employee").await?;
            people::reactivate(&st, &ctx, &p, user_id).await
        }
        .await,
    )
}

/// Clears an employee's sign-in lockout; returns whether one was active.
#[server(endpoint = "unlock_employee")]
pub async fn unlock_employee(user_id: i64) -> Result<bool, AppError> {
    use ssr::*;
    finish(
        async {
            let (st, ctx, _) = request()?;
            access::require(&st, &ctx, P::EmployeesManage, "unlock_employee").await?;
            let user = crate::server::users::by_id(&st.db.pool, user_id)
                .await?
                .ok_or(AppError::NotFound)?;
            crate::server::auth::unlock(&st, ctx.actor(), &user.email).await
        }
        .await,
    )
}

#[server(endpoint = "offboard_employee")]
pub async fn offboard_employee(
    user_id: i64,
    confirm_email: String,
    #[server(default)] code: String,
    #[server(default)] at: String,
) -> Result<(), AppError> {
    use ssr::*;
    finish(
        async {
            let (st, ctx, session) = request()?;
            let p = access::require(&st, &ctx, P::EmployeesManage, "offboard_employee").await?;
            people::offboard(
                &st,
                &ctx,
                &session,
                &p,
                people::OffboardInput {
                    user_id,
                    confirm_email,
                    code,
                    at,
                },
            )
            .await
        }
        .await,
    )
}

#[server(endpoint = "cancel_offboarding")]
pub async fn cancel_offboarding(user_id: i64) -> Result<(), AppError> {
    use ssr::*;
    finish(
        async {
            let (st, ctx, _) = request()?;
            access::require(&st, &ctx, P::EmployeesManage, "cancel_offboarding").await?;
            people::cancel_scheduled(&st, &ctx, user_id).await
        }
        .await,
    )
}

#[server(endpoint = "mark_checklist")]
pub async fn mark_checklist(user_id: i64, item: String) -> Result<(), AppError> {
    use ssr::*;
    finish(
        async {
            let (st, ctx, _) = request()?;
            let p = access::require(&st, &ctx, P::EmployeesManage, "mark_checklist").await?;
            people::mark_checklist(&st, &ctx, &p, user_id, &item).await
        }
        .await,
    )
}

#[server(endpoint = "offboarding_report")]
pub async fn offboarding_report() -> Result<Vec<OffboardingRow>, AppError> {
    use ssr::*;
    finish(
        async {
            let (st, ctx, _) = request()?;
            access::require(&st, &ctx, P::EmployeesManage, "offboarding_report").await?;
            people::offboarding_report(&st).await
        }
        .await,
    )
}

#[server(endpoint = "dashboard")]
pub async fn dashboard() -> Result<DashboardView, AppError> {
    use ssr::*;
    finish(
        async {
            let (st, ctx, _) = request()?;
            access::require(&st, &ctx, P::EmployeesManage, "dashboard").await?;
            people::dashboard(&st).await
        }
        .await,
    )
}

#[server(endpoint = "grant_list")]
pub async fn grant_list(#[server(default)] filter: String) -> Result<Vec<GrantInfo>, AppError> {
    use ssr::*;
    finish(
        async {
            let (st, ctx, _) = request()?;
            access::require_any(&st, &ctx, &[P::AccessGrant, P::EmployeesManage], "grant_list").await?;
            people::grant_list(&st, &filter).await
        }
        .await,
    )
}

#[server(endpoint = "my_access")]
pub async fn my_access() -> Result<MyAccessView, AppError> {
    use ssr::*;
    finish(
        async {
            let (st, ctx, _) = request()?;
            let auth = ctx.full()?;
            people::my_access(&st, auth.user_id).await
        }
        .await,
    )
}

/// Who an invitation is for, when the link is valid.
#[server(endpoint = "invitation_status")]
pub async fn invitation_status(token: String) -> Result<Option<InvitationInfo>, AppError> {
    use ssr::*;
    finish(
        async {
            let (st, _, _) = request()?;
            Ok(crate::server::auth::invitation(&st, &token)
                .await?
                .map(|(_, u)| InvitationInfo {
                    name: u.display_name,
                    email: u.email,
                }))
        }
        .await,
    )
}

#[server(endpoint = "accept_invitation")]
pub async fn accept_invitation(token: String, password: String, confirm: String) -> Result<(), AppError> {
    use ssr::*;
    finish(
        async {
            let (st, ctx, session) = request()?;
            crate::server::auth::accept_invitation(&st, &ctx, &session, &token, password, confirm).await?;
            leptos_axum::redirect("/mfa/enrol");
            Ok(())
        }
        .await,
    )
}

#[server(endpoint = "service_accounts")]
pub async fn service_accounts() -> Result<Vec<ServiceAccountView>, AppError> {
    use ssr::*;
    finish(
        async {
            let (st, ctx, _) = request()?;
            access::require(&st, &ctx, P::AccessGrant, "service_accounts").await?;
            crate::server::service::list(&st).await
        }
        .await,
    )
}

#[server(endpoint = "create_service_account")]
pub async fn create_service_account(name: String, #[server(default)] scopes: Vec<String>) -> Result<i64, AppError> {
    use ssr::*;
    finish(
        async {
            let (st, ctx, _) = request()?;
            let p = access::require(&st, &ctx, P::AccessGrant, "create_service_account").await?;
            crate::server::service::create_account(&st, ctx.actor(), Some(p.user_id), &name, &scopes).await
        }
        .await,
    )
}

/// The new token, shown once.
#[server(endpoint = "create_api_token")]
pub async fn create_api_token(
    account_id: i64,
    label: String,
    #[server(default)] expires_in: String,
) -> Result<NewToken, AppError> {
    use ssr::*;
    finish(
        async {
            let (st, ctx, _) = request()?;
            let p = access::require(&st, &ctx, P::AccessGrant, "create_api_token").await?;
            let (token, expires_at) = crate::server::service::create_token(
                &st,
                ctx.actor(),
                Some(p.user_id),
                account_id,
                &label,
                &expires_in,
            )
            .await?;
            Ok(NewToken {
                token,
                expires_at: expires_at.map(crate::server::activity::format_time),
            })
        }
        .await,
    )
}

#[server(endpoint = "revoke_api_token")]
pub async fn revoke_api_token(token_id: i64) -> Result<(), AppError> {
    use ssr::*;
    finish(
        async {
            let (st, ctx, _) = request()?;
            let p = access::require(&st, &ctx, P::AccessGrant, "revoke_api_token").await?;
            crate::server::service::revoke_token(&st, &ctx, &p, token_id).await
        }
        .await,
    )
}

#[server(endpoint = "audit_browse")]
#[allow(clippy::too_many_arguments)]
pub async fn audit_browse(
    #[server(default)] from: String,
    #[server(default)] to: String,
    #[server(default)] employee: String,
    #[server(default)] action: String,
    #[server(default)] outcome: String,
    #[server(default)] customer: String,
    #[server(default)] text: String,
    #[server(default)] source: String,
    #[server(default)] before: Option<i64>,
) -> Result<AuditPage, AppError> {
    use ssr::*;
    finish(
        async {
            let (st, ctx, _) = request()?;
            access::require(&st, &ctx, P::AuditRead, "audit_browse").await?;
            let f = crate::server::audit_console::Filter {
                from,
                to,
                employee,
                action,
                outcome,
                customer,
                text,
                source,
                before,
            };
            crate::server::audit_console::browse(&st, &f).await
        }
        .await,
    )
}

#[server(endpoint = "audit_verify")]
pub async fn audit_verify() -> Result<VerifyView, AppError> {
    use ssr::*;
    finish(
        async {
            let (st, ctx, _) = request()?;
            access::require(&st, &ctx, P::AuditRead, "audit_verify").await?;
            crate::server::audit_console::verify_now(&st).await
        }
        .await,
    )
}

/// Anomaly alerts, open first (administrators and auditors).
#[server(endpoint = "alerts")]
pub async fn alerts() -> Result<Vec<AlertView>, AppError> {
    use ssr::*;
    finish(
        async {
            let (st, ctx, _) = request()?;
            access::require_any(&st, &ctx, &[P::AuditRead, P::EmployeesManage], "alerts").await?;
            crate::server::alerts::list(&st).await
        }
        .await,
    )
}

/// Acknowledges an alert with a comment; recorded in the audit trail.
#[server(endpoint = "acknowledge_alert")]
pub async fn acknowledge_alert(id: i64, #[server(default)] comment: String) -> Result<(), AppError> {
    use ssr::*;
    finish(
        async {
            let (st, ctx, _) = request()?;
            let p = access::require_any(&st, &ctx, &[P::AuditRead, P::EmployeesManage], "acknowledge_alert").await?;
            crate::server::alerts::acknowledge(&st, &ctx, p.user_id, id, &comment).await
        }
        .await,
    )
}

/// An auditor report, a page at a time (audit:read).
#[server(endpoint = "audit_report")]
pub async fn audit_report(
    #[server(default)] kind: String,
    #[server(default)] customer: String,
    #[server(default)] employee: String,
    #[server(default)] from: String,
    #[server(default)] to: String,
    #[server(default)] before: Option<i64>,
) -> Result<ReportPage, AppError> {
    use ssr::*;
    finish(
        async {
            let (st, ctx, _) = request()?;
            access::require(&st, &ctx, P::AuditRead, "audit_report").await?;
            let q = crate::server::audit_console::ReportQuery {
                kind,
                customer,
                employee,
                from,
                to,
                before,
            };
            crate::server::audit_console::report_pages(&st, &q, 50).await
        }
        .await,
    )
}

/// The latest signed checkpoint, if any (audit:read).
#[server(endpoint = "audit_latest_checkpoint")]
pub async fn audit_latest_checkpoint() -> Result<Option<CheckpointView>, AppError> {
    use ssr::*;
    finish(
        async {
            let (st, ctx, _) = request()?;
            access::require(&st, &ctx, P::AuditRead, "audit_latest_checkpoint").await?;
            crate::server::audit_console::latest_checkpoint(&st).await
        }
        .await,
    )
}

/// Signs a checkpoint now over every event so far (audit:read: it changes
/// no record, it attests to them).
#[server(endpoint = "audit_sign_checkpoint")]
pub async fn audit_sign_checkpoint() -> Result<Option<CheckpointView>, AppError> {
    use ssr::*;
    finish(
        async {
            let (st, ctx, _) = request()?;
            access::require(&st, &ctx, P::AuditRead, "audit_sign_checkpoint").await?;
            crate::server::audit_console::sign_checkpoint(&st).await
        }
        .await,
    )
}

#[server(endpoint = "request_elevation")]
#[allow(clippy::too_many_arguments)]
pub async fn request_elevation(
    role: String,
    #[server(default)] duration: String,
    justification: String,
    ticket: String,
    #[server(default)] starts_at: String,
    #[server(default)] customers: String,
    #[server(default)] extends: Option<i64>,
) -> Result<i64, AppError> {
    use ssr::*;
    finish(
        async {
            let (st, ctx, _) = request()?;
            let auth = ctx.full()?;
            let input = crate::server::elevation::RequestInput {
                role,
                duration,
                justification,
                ticket,
                starts_at,
                customers,
                extends,
            };
            crate::server::elevation::create(&st, &ctx, auth.user_id, input).await
        }
        .await,
    )
}

#[server(endpoint = "my_elevations")]
pub async fn my_elevations() -> Result<Vec<ElevationView>, AppError> {
    use ssr::*;
    finish(
        async {
            let (st, ctx, _) = request()?;
            let auth = ctx.full()?;
            crate::server::elevation::mine(&st, auth.user_id).await
        }
        .await,
    )
}

#[server(endpoint = "cancel_elevation")]
pub async fn cancel_elevation(id: i64) -> Result<(), AppError> {
    use ssr::*;
    finish(
        async {
            let (st, ctx, _) = request()?;
            let auth = ctx.full()?;
            crate::server::elevation::cancel(&st, &ctx, auth.user_id, id).await
        }
        .await,
    )
}

/// For holders of requests:approve and named approvers.
#[server(endpoint = "elevation_queue")]
pub async fn elevation_queue() -> Result<Vec<ElevationView>, AppError> {
    use ssr::*;
    finish(
        async {
            let (st, ctx, _) = request()?;
            let p = crate::server::elevation::approver(&st, &ctx, "elevation_queue").await?;
            crate::server::elevation::queue(&st, &p).await
        }
        .await,
    )
}

/// `decision` is "approve" or "deny". Returns the request's new state.
#[server(endpoint = "decide_elevation")]
pub async fn decide_elevation(
    id: i64,
    decision: String,
    #[server(default)] reason: String,
    #[server(default)] code: String,
) -> Result<String, AppError> {
    use ssr::*;
    finish(
        async {
            let (st, ctx, session) = request()?;
            let p = crate::server::elevation::approver(&st, &ctx, "decide_elevation").await?;
            let approve = match decision.as_str() {
                "approve" => true,
                "deny" => false,
                _ => return Err(AppError::Validation("Decide approve or deny.".into())),
            };
            let state = crate::server::elevation::decide(&st, &ctx, &session, &p, id, approve, &reason, &code).await?;
            Ok(state.as_str().to_owned())
        }
        .await,
    )
}

#[server(endpoint = "revoke_elevation")]
pub async fn revoke_elevation(id: i64, reason: String, #[server(default)] code: String) -> Result<(), AppError> {
    use ssr::*;
    finish(
        async {
            let (st, ctx, session) = request()?;
            let p = access::require(&st, &ctx, P::RequestsApprove, "revoke_elevation").await?;
            crate::server::elevation::revoke(&st, &ctx, &session, &p, id, &reason, &code).await
        }
        .await,
    )
}

/// An engineer's own emergency access: at most 1 hour, always with a new
/// authenticator code. Returns the activation's id.
#[server(endpoint = "break_glass")]
pub async fn break_glass(
    #[server(default)] duration: String,
    justification: String,
    #[server(default)] code: String,
) -> Result<i64, AppError> {
    use ssr::*;
    finish(
        async {
            let (st, ctx, session) = request()?;
            let auth = ctx.full()?;
            crate::server::elevation::break_glass(&st, &ctx, &session, auth.user_id, &duration, &justification, &code)
                .await
        }
        .await,
    )
}

/// The post-incident review of a break-glass activation (someone else).
#[server(endpoint = "review_breakglass")]
pub async fn review_breakglass(id: i64, note: String) -> Result<(), AppError> {
    use ssr::*;
    finish(
        async {
            let (st, ctx, _) = request()?;
            let p = access::require(&st, &ctx, P::RequestsApprove, "review_breakglass").await?;
            crate::server::elevation::review(&st, &ctx, &p, id, &note).await
        }
        .await,
    )
}

/// Every elevation request, newest first (history is kept forever).
#[server(endpoint = "elevation_history")]
pub async fn elevation_history() -> Result<Vec<ElevationView>, AppError> {
    use ssr::*;
    finish(
        async {
            let (st, ctx, _) = request()?;
            access::require(&st, &ctx, P::AuditRead, "elevation_history").await?;
            crate::server::elevation::history(&st).await
        }
        .await,
    )
}

/// One elevation and everything accessed under it.
#[server(endpoint = "elevation_ticket")]
pub async fn elevation_ticket(id: i64) -> Result<TicketView, AppError> {
    use ssr::*;
    finish(
        async {
            let (st, ctx, _) = request()?;
            access::require(&st, &ctx, P::AuditRead, "elevation_ticket").await?;
            crate::server::elevation::ticket(&st, id).await
        }
        .await,
    )
}

#[server(endpoint = "approval_policies")]
pub async fn approval_policies() -> Result<Vec<PolicyView>, AppError> {
    use ssr::*;
    finish(
        async {
            let (st, ctx, _) = request()?;
            access::require(&st, &ctx, P::AccessGrant, "approval_policies").await?;
            crate::server::elevation::policies(&st).await
        }
        .await,
    )
}

/// Who approves a requestable role and how many approvals it needs
/// (step-up: it changes who can open customer data).
#[server(endpoint = "set_approval_policy")]
pub async fn set_approval_policy(
    role: String,
    approvals_needed: String,
    #[server(default)] approvers: String,
    #[server(default)] code: String,
) -> Result<(), AppError> {
    use ssr::*;
    finish(
        async {
            let (st, ctx, session) = request()?;
            let p = access::require(&st, &ctx, P::AccessGrant, "set_approval_policy").await?;
            crate::server::auth::step_up(&st, &ctx, &session, &code, "change approval policy").await?;
            crate::server::elevation::set_policy(&st, &ctx, &p, &role, &approvals_needed, &approvers).await
        }
        .await,
    )
}

/// Roles anyone may request, for the request form.
#[server(endpoint = "requestable_roles")]
pub async fn requestable_roles() -> Result<Vec<RoleInfo>, AppError> {
    use ssr::*;
    finish(
        async {
            let (st, ctx, _) = request()?;
            ctx.full()?;
            let roles = access::catalogue(&st.db.pool).await?;
            Ok(roles
                .iter()
                .filter(|r| r.requestable)
                .map(|r| grants::role_info(r, 0))
                .collect())
        }
        .await,
    )
}

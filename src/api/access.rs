//! Roles, grants and service accounts.

#[cfg(feature = "ssr")]
use crate::domain::permissions::Permission as P;
use crate::dto::*;
use crate::errors::AppError;
#[cfg(feature = "ssr")]
use crate::server::{
    access::{grants, people, reviews, role_changes, roles, service_accounts},
    identity::mfa,
    platform::time::format_time,
};

api! {
    "catalogue" needs [AccessGrant, EmployeesManage] (st, _, _, _)
    pub async fn catalogue() -> Result<CatalogueView, AppError> {
        let holders = roles::holders(&st).await?;
        let roles = roles::catalogue(st.db.pool()).await?;
        let mut owners = reviews::owners_by_role(st.db.pool()).await?;
        Ok(CatalogueView {
            permissions: P::ALL.iter().map(|p| roles::permission_info(*p)).collect(),
            roles: roles
                .iter()
                .map(|r| RoleInfo {
                    reviewers: owners.remove(&r.key).unwrap_or_default().into_iter().map(|o| o.name).collect(),
                    ..roles::role_info(r, holders.get(&r.key).copied().unwrap_or(0))
                })
                .collect(),
        })
    }
}

api! {
    /// Returns whether the change waits for a second administrator.
    /// Step-up: a role's permissions are what every holder may do.
    "save_role" needs [AccessGrant] (st, ctx, session, p)
    pub async fn save_role(
        key: String,
        name: String,
        #[server(default)] description: String,
        #[server(default)] permissions: Vec<String>,
        #[server(default)] max_duration: String,
        #[server(default)] requestable: Option<String>,
        #[server(default)] code: String,
    ) -> Result<bool, AppError> {
        mfa::step_up(&st, &ctx, &session, &code, "save role").await?;
        let input = roles::RoleInput {
            key,
            name,
            description,
            permissions,
            max_duration,
            requestable: requestable.is_some(),
        };
        roles::save_role(&st, &ctx, &p, input).await
    }
}

api! {
    "pending_role_changes" needs [AccessGrant] (st, _, _, p)
    pub async fn pending_role_changes() -> Result<Vec<RoleChangeView>, AppError> {
        role_changes::waiting(&st, p.user_id).await
    }
}

api! {
    /// Another administrator applies a waiting role change (step-up).
    "approve_role_change" needs [AccessGrant] (st, ctx, session, p)
    pub async fn approve_role_change(id: i64, #[server(default)] code: String) -> Result<(), AppError> {
        mfa::step_up(&st, &ctx, &session, &code, "approve role change").await?;
        role_changes::decide(&st, &ctx, &p, id, true).await
    }
}

api! {
    /// Rejects a waiting role change (its author withdraws it this way).
    "reject_role_change" needs [AccessGrant] (st, ctx, _, p)
    pub async fn reject_role_change(id: i64) -> Result<(), AppError> {
        role_changes::decide(&st, &ctx, &p, id, false).await
    }
}

api! {
    "delete_role" needs [AccessGrant] (st, ctx, _, _)
    pub async fn delete_role(key: String) -> Result<(), AppError> {
        roles::delete_role(&st, &ctx, &key).await
    }
}

api! {
    /// Returns whether the grant waits for a second administrator.
    /// Step-up, as for every change of what someone may do.
    "grant_role" needs [AccessGrant] (st, ctx, session, p)
    pub async fn grant_role(
        user_id: i64,
        role: String,
        reason: String,
        #[server(default)] expires_in: String,
        #[server(default)] code: String,
    ) -> Result<bool, AppError> {
        mfa::step_up(&st, &ctx, &session, &code, "grant role").await?;
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
}

api! {
    "approve_grant" needs [AccessGrant] (st, ctx, _, p)
    pub async fn approve_grant(grant_id: i64) -> Result<(), AppError> {
        grants::approve(&st, &ctx, &p, grant_id).await
    }
}

api! {
    "revoke_grant" needs [AccessGrant] (st, ctx, _, p)
    pub async fn revoke_grant(grant_id: i64, reason: String) -> Result<(), AppError> {
        grants::revoke(&st, &ctx, &p, grant_id, &reason).await
    }
}

api! {
    "grant_list" needs [AccessGrant, EmployeesManage] (st, _, _, _)
    pub async fn grant_list(#[server(default)] filter: String) -> Result<Vec<GrantInfo>, AppError> {
        people::grant_list(&st, &filter).await
    }
}

api! {
    "service_accounts" needs [AccessGrant] (st, _, _, _)
    pub async fn service_accounts() -> Result<Vec<ServiceAccountView>, AppError> {
        service_accounts::list(&st).await
    }
}

api! {
    "create_service_account" needs [AccessGrant] (st, ctx, _, p)
    pub async fn create_service_account(name: String, #[server(default)] scopes: Vec<String>) -> Result<i64, AppError> {
        service_accounts::create_account(&st, ctx.actor(), Some(p.user_id), &name, &scopes).await
    }
}

api! {
    /// The new token, shown once. Step-up: a token acts without anyone
    /// signing in (with the scim scope, it creates and removes employees).
    "create_api_token" needs [AccessGrant] (st, ctx, session, p)
    pub async fn create_api_token(
        account_id: i64,
        label: String,
        #[server(default)] expires_in: String,
        #[server(default)] code: String,
    ) -> Result<NewToken, AppError> {
        mfa::step_up(&st, &ctx, &session, &code, "create API token").await?;
        let (token, expires_at) = service_accounts::create_token(
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
            expires_at: expires_at.map(format_time),
        })
    }
}

api! {
    "revoke_api_token" needs [AccessGrant] (st, ctx, _, p)
    pub async fn revoke_api_token(token_id: i64) -> Result<(), AppError> {
        service_accounts::revoke_token(&st, &ctx, &p, token_id).await
    }
}

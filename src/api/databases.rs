//! Database targets, the privileges roles carry there, and each
//! employee's database accounts.

// Server functions take a form's fields, however many it has (the
// attribute does not reach the browser's side of `#[server]`).
#![allow(clippy::too_many_arguments)]

use crate::dto::*;
use crate::errors::AppError;
#[cfg(feature = "ssr")]
use crate::server::{access::databases, identity::mfa};

api! {
    "db_targets" needs [AccessGrant] (st, _, _, _)
    pub async fn db_targets() -> Result<Vec<TargetView>, AppError> {
        databases::list(&st).await
    }
}

api! {
    /// Step-up: the connector's credentials are a production secret.
    "register_db_target" needs [AccessGrant] (st, ctx, session, _)
    pub async fn register_db_target(
        name: String,
        host: String,
        #[server(default)] port: String,
        #[server(default)] tls: Option<String>,
        #[server(default)] tls_ca: String,
        username: String,
        password: String,
        #[server(default)] code: String,
    ) -> Result<i64, AppError> {
        mfa::step_up(&st, &ctx, &session, &code, "register database target").await?;
        let input = databases::TargetInput { name, host, port, tls: tls.is_some(), tls_ca, username, password };
        databases::register(&st, &ctx, input).await
    }
}

api! {
    "test_db_target" needs [AccessGrant] (st, _, _, _)
    pub async fn test_db_target(id: i64) -> Result<ConnectionReport, AppError> {
        databases::test(&st, id).await
    }
}

api! {
    /// Step-up: a role's database privileges reach production data.
    /// Returns whether it waits for a second administrator.
    "map_db_privilege" needs [AccessGrant] (st, ctx, session, _)
    pub async fn map_db_privilege(
        target: i64,
        role: String,
        privilege: String,
        schema: String,
        #[server(default)] table: String,
        #[server(default)] column: String,
        #[server(default)] code: String,
    ) -> Result<bool, AppError> {
        mfa::step_up(&st, &ctx, &session, &code, "map database privilege").await?;
        let input = databases::MappingInput { target, role, privilege, schema, table, column };
        databases::map(&st, &ctx, input).await
    }
}

api! {
    /// By an administrator other than the one who proposed it.
    "approve_db_privilege" needs [AccessGrant] (st, ctx, session, _)
    pub async fn approve_db_privilege(id: i64, #[server(default)] code: String) -> Result<(), AppError> {
        mfa::step_up(&st, &ctx, &session, &code, "approve database privilege").await?;
        databases::approve_mapping(&st, &ctx, id).await
    }
}

api! {
    "unmap_db_privilege" needs [AccessGrant] (st, ctx, session, _)
    pub async fn unmap_db_privilege(id: i64, #[server(default)] code: String) -> Result<(), AppError> {
        mfa::step_up(&st, &ctx, &session, &code, "unmap database privilege").await?;
        databases::unmap(&st, &ctx, id).await
    }
}

api! {
    /// Reads the target now and compares it with what Gatehouse intends.
    "scan_db_drift" needs [AccessGrant] (st, ctx, _, _)
    pub async fn scan_db_drift(id: i64) -> Result<DriftView, AppError> {
        databases::scan_drift(&st, &ctx, id).await
    }
}

api! {
    /// Step-up: correction changes production accounts by itself.
    "set_db_drift_correction" needs [AccessGrant] (st, ctx, session, _)
    pub async fn set_db_drift_correction(
        id: i64,
        #[server(default)] on: Option<String>,
        #[server(default)] code: String,
    ) -> Result<(), AppError> {
        mfa::step_up(&st, &ctx, &session, &code, "database drift correction").await?;
        databases::set_drift_correction(&st, &ctx, id, on.is_some()).await
    }
}

api! {
    "my_db_accounts" (st, ctx, _)
    pub async fn my_db_accounts() -> Result<Vec<DbAccountView>, AppError> {
        let auth = ctx.full()?;
        databases::mine(&st, auth.user_id).await
    }
}

api! {
    /// Shown once; a fresh authenticator code is needed.
    "new_db_password" (st, ctx, session)
    pub async fn new_db_password(target: i64, #[server(default)] code: String) -> Result<String, AppError> {
        let auth = ctx.full()?;
        mfa::step_up(&st, &ctx, &session, &code, "new database password").await?;
        databases::new_password(&st, &ctx, auth.user_id, target).await
    }
}

//! The employee directory and an employee's life cycle: onboarding,
//! suspension, unlocking, offboarding and its checklist, the overview.

use crate::dto::*;
use crate::errors::AppError;
#[cfg(feature = "ssr")]
use crate::server::{
    access::people,
    identity::{self, accounts, mfa},
};

api! {
    "list_employees" needs [EmployeesManage] (st, _, _, _)
    pub async fn list_employees(
        #[server(default)] q: String,
        #[server(default)] department: String,
        #[server(default)] role: String,
        #[server(default)] status: String,
        #[server(default)] mfa: String,
    ) -> Result<Vec<EmployeeRow>, AppError> {
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
}

api! {
    "employee" needs [EmployeesManage] (st, _, _, p)
    pub async fn employee(id: i64) -> Result<EmployeeDetail, AppError> {
        people::detail(&st, &p, id).await
    }
}

api! {
    "onboard_employee" needs [EmployeesManage] (st, ctx, _, p)
    pub async fn onboard_employee(
        name: String,
        email: String,
        department: String,
        #[server(default)] roles: Vec<String>,
        #[server(default)] reason: String,
    ) -> Result<Invited, AppError> {
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
}

api! {
    "reissue_invitation" needs [EmployeesManage] (st, ctx, _, p)
    pub async fn reissue_invitation(user_id: i64) -> Result<Invited, AppError> {
        people::reissue_invitation(&st, &ctx, &p, user_id).await
    }
}

api! {
    /// Step-up: suspension ends every session of someone else.
    "suspend_employee" needs [EmployeesManage] (st, ctx, session, p)
    pub async fn suspend_employee(
        user_id: i64,
        reason: String,
        #[server(default)] code: String,
    ) -> Result<(), AppError> {
        mfa::step_up(&st, &ctx, &session, &code, "suspend employee").await?;
        people::suspend(&st, &ctx, &p, user_id, &reason).await
    }
}

api! {
    "reactivate_employee" needs [EmployeesManage] (st, ctx, _, p)
    pub async fn reactivate_employee(user_id: i64) -> Result<(), AppError> {
        people::reactivate(&st, &ctx, &p, user_id).await
    }
}

api! {
    /// Clears an employee's sign-in lockout; returns whether one was active.
    "unlock_employee" needs [EmployeesManage] (st, ctx, _, _)
    pub async fn unlock_employee(user_id: i64) -> Result<bool, AppError> {
        let user = accounts::by_id(st.db.pool(), user_id)
            .await?
            .ok_or(AppError::NotFound)?;
        identity::unlock(&st, ctx.actor(), &user.email).await
    }
}

api! {
    "offboard_employee" needs [EmployeesManage] (st, ctx, session, p)
    pub async fn offboard_employee(
        user_id: i64,
        confirm_email: String,
        #[server(default)] code: String,
        #[server(default)] at: String,
    ) -> Result<(), AppError> {
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
}

api! {
    "cancel_offboarding" needs [EmployeesManage] (st, ctx, _, p)
    pub async fn cancel_offboarding(user_id: i64) -> Result<(), AppError> {
        people::cancel_scheduled(&st, &ctx, &p, user_id).await
    }
}

api! {
    "mark_checklist" needs [EmployeesManage] (st, ctx, _, p)
    pub async fn mark_checklist(user_id: i64, item: String) -> Result<(), AppError> {
        people::mark_checklist(&st, &ctx, &p, user_id, &item).await
    }
}

api! {
    "offboarding_report" needs [EmployeesManage] (st, _, _, _)
    pub async fn offboarding_report() -> Result<Vec<OffboardingRow>, AppError> {
        people::offboarding_report(&st).await
    }
}

api! {
    "dashboard" needs [EmployeesManage] (st, _, _, _)
    pub async fn dashboard() -> Result<DashboardView, AppError> {
        people::dashboard(&st).await
    }
}

//! The signed-in employee's own account: setup, sign-in and its second
//! factor, invitations, notifications, activity and access.

use crate::dto::*;
use crate::errors::AppError;
#[cfg(feature = "ssr")]
use crate::server::{
    access::{elevation, notify, people, people::setup},
    audit::activity,
    identity::{accounts, invitations, mfa, signin},
    platform::request::Stage,
};

api! {
    /// Whether the sign-in page offers single sign-on, and whether it is the only way.
    "sso_status" (st, _, _)
    pub async fn sso_status() -> Result<(bool, bool), AppError> {
        Ok(st.sso.as_ref().map(|s| (true, s.required)).unwrap_or((false, false)))
    }
}

api! {
    "setup_status" (st, _, _)
    pub async fn setup_status(token: String) -> Result<bool, AppError> {
        setup::setup_token_usable(&st, &token).await
    }
}

api! {
    "complete_setup" (st, ctx, session)
    pub async fn complete_setup(
        token: String,
        name: String,
        email: String,
        password: String,
        confirm: String,
    ) -> Result<(), AppError> {
        let input = setup::SetupInput {
            token,
            name,
            email,
            password,
            confirm,
        };
        setup::complete_setup(&st, &ctx, &session, input).await?;
        leptos_axum::redirect("/mfa/enrol");
        Ok(())
    }
}

api! {
    "sign_in" (st, ctx, session)
    pub async fn sign_in(email: String, password: String) -> Result<(), AppError> {
        use Stage;
        let stage = signin::sign_in(&st, &ctx, &session, &email, password).await?;
        leptos_axum::redirect(if stage == Stage::NeedsEnrolment {
            "/mfa/enrol"
        } else {
            "/mfa"
        });
        Ok(())
    }
}

api! {
    "verify_code" (st, ctx, session)
    pub async fn verify_code(code: String) -> Result<(), AppError> {
        let stage = signin::verify_code(&st, &ctx, &session, &code).await?;
        crate::api::server::remember_device(&st, &ctx);
        leptos_axum::redirect(if stage == Stage::NeedsPasskey { "/mfa/passkey" } else { "/" });
        Ok(())
    }
}

api! {
    "use_recovery_code" (st, ctx, session)
    pub async fn use_recovery_code(code: String) -> Result<(), AppError> {
        let (_, stage) = signin::use_recovery_code(&st, &ctx, &session, &code).await?;
        crate::api::server::remember_device(&st, &ctx);
        leptos_axum::redirect(if stage == Stage::NeedsPasskey { "/mfa/passkey" } else { "/" });
        Ok(())
    }
}

api! {
    "enrolment" (st, ctx, _)
    pub async fn enrolment() -> Result<EnrolmentView, AppError> {
        let e = mfa::enrolment(&st, &ctx).await?;
        Ok(EnrolmentView {
            key: e.key,
            uri: e.uri,
            qr_svg: e.qr_svg,
        })
    }
}

api! {
    "confirm_enrolment" (st, ctx, session)
    pub async fn confirm_enrolment(code: String) -> Result<(), AppError> {
        mfa::confirm_enrolment(&st, &ctx, &session, &code).await?;
        crate::api::server::remember_device(&st, &ctx);
        leptos_axum::redirect("/mfa/recovery-codes");
        Ok(())
    }
}

api! {
    /// The recovery codes just generated, once: a second call returns none.
    "take_recovery_codes" (st, ctx, _)
    pub async fn take_recovery_codes() -> Result<Vec<String>, AppError> {
        mfa::take_stashed_codes(&st, &ctx).await
    }
}

api! {
    "regenerate_recovery_codes" (st, ctx, session)
    pub async fn regenerate_recovery_codes(code: String) -> Result<(), AppError> {
        mfa::regenerate_recovery_codes(&st, &ctx, &session, &code).await?;
        leptos_axum::redirect("/mfa/recovery-codes");
        Ok(())
    }
}

api! {
    "me" (st, ctx, _)
    pub async fn me() -> Result<Option<Profile>, AppError> {
        let Ok(auth) = ctx.full() else { return Ok(None) };
        let Some(user) = accounts::by_id(st.db.pool(), auth.user_id).await? else {
            return Ok(None);
        };
        let now = st.clock.now();
        let facts = st
            .access
            .facts(st.db.pool(), user.id, Some(user.access_version), now)
            .await?;
        Ok(Some(Profile {
            name: user.display_name,
            email: user.email,
            roles: facts.active_role_names(now),
            permissions: facts.permissions(now).iter().collect(),
            recovery_codes_left: mfa::recovery_codes::left(&st.db, user.id).await?,
            named_approver: elevation::named_anywhere(&st, user.id).await?,
            unread: notify::unread(&st, user.id).await?,
            department: user.department,
        }))
    }
}

api! {
    /// The signed-in employee's notifications, newest first.
    "my_notifications" (st, ctx, _)
    pub async fn my_notifications() -> Result<Vec<NotificationView>, AppError> {
        let auth = ctx.full()?;
        notify::mine(&st, auth.user_id).await
    }
}

api! {
    "mark_notifications_read" (st, ctx, _)
    pub async fn mark_notifications_read() -> Result<(), AppError> {
        let auth = ctx.full()?;
        notify::mark_read(&st, auth.user_id).await
    }
}

api! {
    "my_activity" (st, ctx, _)
    pub async fn my_activity() -> Result<Vec<ActivityItem>, AppError> {
        let auth = ctx.full()?;
        activity::for_user(&st, auth.user_id, 100).await
    }
}

api! {
    "my_access" (st, ctx, _)
    pub async fn my_access() -> Result<MyAccessView, AppError> {
        let auth = ctx.full()?;
        people::my_access(&st, auth.user_id).await
    }
}

api! {
    /// Who an invitation is for, when the link is valid.
    "invitation_status" (st, _, _)
    pub async fn invitation_status(token: String) -> Result<Option<InvitationInfo>, AppError> {
        Ok(invitations::invitation(&st, &token)
            .await?
            .map(|(_, u)| InvitationInfo {
                name: u.display_name,
                email: u.email,
            }))
    }
}

api! {
    "accept_invitation" (st, ctx, session)
    pub async fn accept_invitation(token: String, password: String, confirm: String) -> Result<(), AppError> {
        invitations::accept_invitation(&st, &ctx, &session, &token, password, confirm).await?;
        leptos_axum::redirect("/mfa/enrol");
        Ok(())
    }
}

api! {
    "sign_out" (st, ctx, session)
    pub async fn sign_out() -> Result<(), AppError> {
        let provider_logout = signin::sign_out(&st, &ctx, &session).await?;
        leptos_axum::redirect(provider_logout.as_deref().unwrap_or("/signin"));
        Ok(())
    }
}

api! {
    "sign_out_everywhere" (st, ctx, session)
    pub async fn sign_out_everywhere() -> Result<(), AppError> {
        signin::sign_out_everywhere(&st, &ctx, &session).await?;
        leptos_axum::redirect("/signin");
        Ok(())
    }
}

use super::{
    access_cache::AccessCache, checkpoints::AuditKeys, clock::Clock, config::Config, crypto::MasterKey, db::Db,
};
use axum::extract::FromRef;
use leptos::config::LeptosOptions;
use std::sync::Arc;

#[derive(Clone, FromRef)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub db: Db,
    pub key: Arc<MasterKey>,
    pub config: Arc<Config>,
    pub clock: Clock,
    /// Employees' access facts, checked against their access version.
    pub access: Arc<AccessCache>,
    /// Signs audit checkpoints; its public halves verify them.
    pub audit_keys: Arc<AuditKeys>,
    /// The company's OpenID provider, when single sign-on is configured.
    pub sso: Option<Arc<super::sso::Sso>>,
    /// The anomaly job's per-employee customer windows (built from the
    /// trail when missing or out of step with the job's cursor).
    pub alert_windows: Arc<tokio::sync::Mutex<Option<crate::domain::alerts::CustomerWindows>>>,
}

impl AppState {
    /// The state of the current request, for server functions.
    pub fn current() -> Result<Self, crate::errors::AppError> {
        leptos::prelude::use_context::<AppState>()
            .ok_or_else(|| super::errors::internal("application state missing from context"))
    }
}

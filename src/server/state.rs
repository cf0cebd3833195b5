//! What every request can reach. The types held here come from the areas
//! and never import `AppState` themselves (docs/architecture.md).

use super::{
    access::AccessCache,
    audit::{AnonymousTally, AuditKeys, Recorder},
    identity::sso::Sso,
    platform::{
        assets::Assets,
        clock::Clock,
        config::Config,
        crypto::{password::Hasher, MasterKey},
        db::Db,
    },
};
use crate::domain::alerts::CustomerWindows;
use axum::extract::FromRef;
use leptos::config::LeptosOptions;
use std::sync::Arc;

#[derive(Clone, FromRef)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub db: Db,
    /// Records events that change nothing else, in group commits.
    pub recorder: Arc<Recorder>,
    pub key: Arc<MasterKey>,
    pub config: Arc<Config>,
    pub clock: Clock,
    /// Employees' access facts, checked against their access version.
    pub access: Arc<AccessCache>,
    /// Signs audit checkpoints; its public halves verify them.
    pub audit_keys: Arc<AuditKeys>,
    /// The company's OpenID provider, when single sign-on is configured.
    pub sso: Option<Arc<Sso>>,
    /// The anomaly job's per-employee customer windows (built from the
    /// trail when missing or out of step with the job's cursor).
    pub alert_windows: Arc<tokio::sync::Mutex<Option<CustomerWindows>>>,
    /// Anonymous refusals of the service API, per address and minute,
    /// until the access job folds them into the trail.
    pub anonymous: Arc<AnonymousTally>,
    /// Password hashing, at most one computation per core but one at once.
    pub hasher: Arc<Hasher>,
    /// The browser bundle's file names (hashed ones are cached for good).
    pub assets: Arc<Assets>,
}

impl AppState {
    /// The state of the current request, for server functions.
    pub fn current() -> Result<Self, crate::errors::AppError> {
        leptos::prelude::use_context::<AppState>()
            .ok_or_else(|| crate::errors::internal("application state missing from context"))
    }
}

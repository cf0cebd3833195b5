use super::{clock::Clock, config::Config, crypto::MasterKey, db::Db};
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
}

impl AppState {
    /// The state of the current request, for server functions.
    pub fn current() -> Result<Self, crate::errors::AppError> {
        leptos::prelude::use_context::<AppState>()
            .ok_or_else(|| super::errors::internal("application state missing from context"))
    }
}

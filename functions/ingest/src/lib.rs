//! pushgate's HTTP front door: the MongoosePush notification API and the health check,
//! as one axum router that runs under AWS Lambda, on a local TCP port, and in tests.

pub mod config;
mod health;
mod notification;
mod reply;
pub mod serve;
pub mod sync_wait;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use pushgate_shared::api::DecodeLimits;
use pushgate_shared::queue::Queue;

pub use config::IngestConfig;
pub use serve::{run, serve_listener};
pub use sync_wait::SyncWait;

/// What every request handler shares: the queue, the request limits and, when on,
/// sync-wait.
#[derive(Clone)]
pub struct IngestState {
    pub queue: Arc<dyn Queue>,
    pub limits: DecodeLimits,
    /// Set when requests wait for the first attempt's outcome.
    pub sync_wait: Option<Arc<SyncWait>>,
}

impl IngestState {
    /// State with default limits and sync-wait off.
    pub fn new(queue: Arc<dyn Queue>) -> Self {
        IngestState {
            queue,
            limits: DecodeLimits::default(),
            sync_wait: None,
        }
    }
}

/// The router for every deployment: Lambda, the local listener and tests.
pub fn app(state: IngestState) -> Router {
    Router::new()
        .route("/v1/notification/{device_id}", post(notification::send_v1))
        .route("/v2/notification/{device_id}", post(notification::send_v2))
        .route("/v3/notification/{device_id}", post(notification::send_v3))
        .route("/healthcheck", get(health::healthcheck))
        .fallback(reply::not_found)
        .method_not_allowed_fallback(reply::method_not_allowed)
        .with_state(state)
}

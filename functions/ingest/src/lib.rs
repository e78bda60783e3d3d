//! pushgate's HTTP front door: the MongoosePush notification API, the MongooseIM webhook
//! with its device registry, and the health check, as one axum router behind one
//! authentication check, run under AWS Lambda, on a local TCP port, and in tests.

pub mod auth;
mod body;
pub mod config;
mod health;
mod metrics;
mod notification;
mod registry;
mod reply;
pub mod secrets;
pub mod serve;
pub mod sync_wait;
pub mod tls;
pub mod webhook;

use std::sync::Arc;

use axum::Router;
use axum::middleware::from_fn_with_state;
use axum::routing::{delete, get, post};
use pushgate_shared::api::DecodeLimits;
use pushgate_shared::health::HealthSource;
use pushgate_shared::queue::Queue;
use pushgate_shared::registry::{DeviceRegistry, EmbeddedDeviceRegistry};

pub use auth::{AuthConfig, AuthMode, Authenticator};
pub use config::IngestConfig;
pub use serve::{run, serve_listener};
pub use sync_wait::SyncWait;
pub use webhook::WebhookConfig;

/// What every request handler shares: the queue, the request limits, sync-wait when on,
/// the device registry and webhook settings, and the credential checks.
#[derive(Clone)]
pub struct IngestState {
    pub queue: Arc<dyn Queue>,
    pub limits: DecodeLimits,
    /// Set when requests wait for the first attempt's outcome.
    pub sync_wait: Option<Arc<SyncWait>>,
    pub registry: Arc<dyn DeviceRegistry>,
    pub webhook: Arc<WebhookConfig>,
    pub auth: Arc<Authenticator>,
    /// More checks for `/healthcheck`: the dispatcher's apps, when it runs in this process.
    pub health: Option<Arc<dyn HealthSource>>,
}

impl IngestState {
    /// State with default limits, sync-wait off, an empty in-memory registry, the default
    /// webhook settings and authentication off.
    pub fn new(queue: Arc<dyn Queue>) -> Self {
        IngestState {
            queue,
            limits: DecodeLimits::default(),
            sync_wait: None,
            registry: Arc::new(EmbeddedDeviceRegistry::new()),
            webhook: Arc::new(WebhookConfig::default()),
            auth: Arc::new(Authenticator::off()),
            health: None,
        }
    }

    /// The same state on another device registry.
    pub fn with_registry(mut self, registry: Arc<dyn DeviceRegistry>) -> Self {
        self.registry = registry;
        self
    }

    /// Adds `source`'s checks to `/healthcheck`.
    pub fn with_health(mut self, source: Arc<dyn HealthSource>) -> Self {
        self.health = Some(source);
        self
    }
}

/// The router for every deployment: Lambda, the local listener and tests.
///
/// Authentication runs before routing, so a request under the secret path prefix is
/// routed on the rest of its path.
///
/// # Panics
///
/// When `state.webhook.path` clashes with another route; [`WebhookConfig::validate`]
/// refuses such paths.
pub fn app(state: IngestState) -> Router {
    pushgate_shared::metrics::install();
    let auth = state.auth.clone();
    let routes = Router::new()
        .route("/v1/notification/{device_id}", post(notification::send_v1))
        .route("/v2/notification/{device_id}", post(notification::send_v2))
        .route("/v3/notification/{device_id}", post(notification::send_v3))
        .route("/healthcheck", get(health::healthcheck))
        .route("/health/live", get(health::live))
        .route("/metrics", get(metrics::prometheus_text))
        .route(&state.webhook.path, post(webhook::receive))
        .route("/api/v1/users/{jid}/devices", get(registry::list_devices))
        .route(
            "/api/v1/users/{jid}/devices/{device_token}",
            axum::routing::put(registry::put_device).delete(registry::delete_device),
        )
        .route("/api/v1/users/{jid}", delete(registry::forget_user))
        .fallback(reply::not_found)
        .method_not_allowed_fallback(reply::method_not_allowed)
        .layer(axum::middleware::from_fn(metrics::count_responses))
        .with_state(state);
    Router::new()
        .fallback_service(routes)
        .layer(from_fn_with_state(auth, auth::authenticate))
}

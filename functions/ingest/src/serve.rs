//! Running the router: under AWS Lambda when the runtime API is present, otherwise as an
//! HTTP/1.1 (keep-alive) server on a TCP port.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use pushgate_shared::api::DecodeLimits;
use pushgate_shared::queue::{EmbeddedQueue, Queue, QueueError, RedisQueue};
use pushgate_shared::registry::{
    DeviceRegistry, EmbeddedDeviceRegistry, RedisDeviceRegistry, RegistryError,
};
use tokio::net::TcpListener;

use crate::auth::Authenticator;
use crate::config::ConfigError;

use crate::secrets::{RedisSecret, SecretError};
use crate::tls::{TlsError, serve_tls};
use crate::{IngestConfig, IngestState, SyncWait, app};

/// Why ingest could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot reach the queue: {0}")]
    Queue(#[from] QueueError),
    #[error("cannot listen on {address}: {source}")]
    Bind {
        address: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("the HTTP server failed: {0}")]
    Http(#[from] std::io::Error),
    #[error("the Lambda runtime failed: {0}")]
    Lambda(String),
    #[error("cannot read the Redis URL from Secrets Manager: {0}")]
    Secret(#[from] SecretError),
    #[error("cannot reach the device registry: {0}")]
    Registry(#[from] RegistryError),
    #[error("invalid configuration: {0}")]
    Config(#[from] ConfigError),
    #[error("invalid TLS settings: {0}")]
    Tls(#[from] TlsError),
}

/// Connects the queue the configuration names and says at start-up which one it is.
///
/// # Errors
///
/// [`ServeError::Queue`] when Redis is configured but cannot be reached.
pub async fn connect_queue(config: &IngestConfig) -> Result<Arc<dyn Queue>, ServeError> {
    match &config.redis_url {
        Some(url) => {
            let queue = RedisQueue::connect(url, config.queue.clone()).await?;
            tracing::info!(queue = "redis", prefix = %config.queue.prefix, "queue connected");
            Ok(Arc::new(queue))
        }
        None => {
            tracing::warn!(
                queue = "embedded",
                "no Redis configured (PUSHGATE_REDIS_URL): jobs are kept in memory and do not \
                 survive a restart"
            );
            Ok(Arc::new(EmbeddedQueue::new(config.queue.clone())))
        }
    }
}

/// Connects the device registry beside the queue: on the same Redis and key prefix, or in
/// memory without Redis.
///
/// # Errors
///
/// [`ServeError::Registry`] when Redis is configured but cannot be reached.
pub async fn connect_registry(
    config: &IngestConfig,
) -> Result<Arc<dyn DeviceRegistry>, ServeError> {
    match &config.redis_url {
        Some(url) => Ok(Arc::new(
            RedisDeviceRegistry::connect(url, &config.queue.prefix).await?,
        )),
        None => Ok(Arc::new(EmbeddedDeviceRegistry::new())),
    }
}

/// Builds the state for `config` around an already connected `queue`, with the registry
/// [`connect_registry`] gives; see [`state_with_registry`].
///
/// # Errors
///
/// As [`connect_registry`] and [`state_with_registry`].
pub async fn state_for(
    config: &IngestConfig,
    queue: Arc<dyn Queue>,
) -> Result<IngestState, ServeError> {
    let registry = connect_registry(config).await?;
    state_with_registry(config, queue, registry).await
}

/// Builds the state for `config` around `queue` and `registry`, subscribing to this
/// instance's reply channel when sync-wait is on. Authentication turned off is announced
/// with a warning.
///
/// # Errors
///
/// [`ServeError::Config`] for authentication or webhook settings that cannot work, and
/// [`ServeError::Queue`] when the reply channel cannot be subscribed.
pub async fn state_with_registry(
    config: &IngestConfig,
    queue: Arc<dyn Queue>,
    registry: Arc<dyn DeviceRegistry>,
) -> Result<IngestState, ServeError> {
    let auth = Authenticator::new(&config.auth)?;
    config.webhook.validate()?;
    if !auth.is_required() {
        tracing::warn!(
            "AUTHENTICATION IS OFF: anyone who reaches ingest can send pushes and read or \
             change the device registry; configure an API key or the path secret"
        );
    }
    let sync_wait = if config.sync_wait_ms > 0 {
        let wait = Duration::from_millis(config.sync_wait_ms);
        tracing::info!(sync_wait_ms = config.sync_wait_ms, "sync-wait on");
        Some(SyncWait::start(&queue, wait).await?)
    } else {
        None
    };
    Ok(IngestState {
        queue,
        limits: DecodeLimits {
            max_body_bytes: config.max_body_bytes,
        },
        sync_wait,
        registry,
        webhook: Arc::new(config.webhook.clone()),
        auth: Arc::new(auth),
        health: None,
    })
}

/// Runs ingest until `shutdown` completes: under Lambda when `AWS_LAMBDA_RUNTIME_API` is
/// set (Lambda ends the process itself), otherwise on `config.listen`. When
/// `PUSHGATE_REDIS_SECRET_ARN` is set, the Redis URL (and any `api_keys` and
/// `path_secret`) is read from that secret first.
///
/// # Errors
///
/// A [`ServeError`] when the secret, the credentials, the queue, the listener or the Lambda
/// runtime fails.
pub async fn run(
    mut config: IngestConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    if let Some(source) = RedisSecret::from_env()? {
        let secret = source.fetch().await?;
        config.redis_url = Some(secret.redis_url);
        config.auth.api_keys.extend(secret.api_keys);
        if secret.path_secret.is_some() {
            config.auth.path_secret = secret.path_secret;
        }
        config.auth.validate()?;
        tracing::info!(secret = %source.secret_id, "Redis URL read from Secrets Manager");
    }
    let queue = connect_queue(&config).await?;
    let router = app(state_for(&config, queue).await?);

    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
        tracing::info!("running under the AWS Lambda runtime");
        return lambda_http::run(router)
            .await
            .map_err(|error| ServeError::Lambda(error.to_string()));
    }

    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServeError::Bind {
            address: config.listen,
            source,
        })?;
    match &config.tls {
        Some(tls) => {
            let server_config = tls.server_config()?;
            let clients = if tls.client_ca_path.is_some() {
                "required"
            } else {
                "not asked"
            };
            tracing::info!(address = %listener.local_addr()?, client_certificates = clients, "ingest listening with TLS");
            serve_tls(listener, router, server_config, shutdown).await?;
        }
        None => {
            tracing::info!(address = %listener.local_addr()?, "ingest listening");
            serve_listener(listener, router, shutdown).await?;
        }
    }
    tracing::info!("ingest stopped");
    Ok(())
}

/// Serves `router` on `listener` (HTTP/1.1 with keep-alive, and h2c) until `shutdown`
/// completes, then lets requests in progress finish.
///
/// # Errors
///
/// The listener's I/O error.
pub async fn serve_listener(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

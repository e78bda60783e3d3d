//! Running the router: under AWS Lambda when the runtime API is present, otherwise as an
//! HTTP/1.1 (keep-alive) server on a TCP port.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use pushgate_shared::api::DecodeLimits;
use pushgate_shared::queue::{EmbeddedQueue, Queue, QueueError, RedisQueue};
use tokio::net::TcpListener;

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

/// Builds the state for `config` around an already connected `queue`, subscribing to
/// this instance's reply channel when sync-wait is on.
///
/// # Errors
///
/// [`ServeError::Queue`] when the reply channel cannot be subscribed.
pub async fn state_for(
    config: &IngestConfig,
    queue: Arc<dyn Queue>,
) -> Result<IngestState, ServeError> {
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
    })
}

/// Runs ingest until `shutdown` completes: under Lambda when `AWS_LAMBDA_RUNTIME_API` is
/// set (Lambda ends the process itself), otherwise on `config.listen`.
///
/// # Errors
///
/// A [`ServeError`] when the queue, the listener or the Lambda runtime fails.
pub async fn run(
    config: IngestConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
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
    tracing::info!(address = %listener.local_addr()?, "ingest listening");
    serve_listener(listener, router, shutdown).await?;
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

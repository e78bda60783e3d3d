//! pushgate's dispatcher: reads queued notifications as one consumer of the group,
//! delivers them to FCM and APNs through the configured apps, and classifies every
//! provider answer into an outcome class that decides the job's fate.

pub mod apns;
pub mod apps;
pub mod config;
mod connections;
pub mod fcm;
pub mod health;
pub mod mongoosepush;
pub mod outcome;
pub mod retry;
pub mod status;
pub mod telemetry;
mod worker;

use std::future::Future;
use std::sync::Arc;

use pushgate_shared::queue::Queue;
use pushgate_shared::registry::DeviceRegistry;
use tokio_util::sync::CancellationToken;

pub use apps::{App, AppConfig, AppError, Apps, Credentials};
pub use config::{ConfigError, DispatcherConfig};
pub use outcome::{Attempt, Outcome};
pub use worker::DispatchError;

/// A consumer name unique to this process: host, process id and a random suffix.
pub fn unique_consumer_name() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "dispatcher".to_owned());
    let suffix: u32 = rand::random();
    format!("{host}-{}-{suffix:08x}", std::process::id())
}

/// Runs one dispatcher until `shutdown` completes: it stops reading, lets sends in flight
/// finish and settle (up to `shutdown_deadline_ms`), and returns.
///
/// # Errors
///
/// [`DispatchError`] when the configuration is invalid, an app cannot be built or the
/// consumer group cannot be created.
pub async fn run(
    config: DispatcherConfig,
    queue: Arc<dyn Queue>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), DispatchError> {
    Dispatcher::new(config, queue)?.run(shutdown).await
}

/// As [`run`], and a token a provider declares dead is also removed from `registry` when
/// its job came from a webhook fan-out (the job names its registry user).
///
/// # Errors
///
/// As [`run`].
pub async fn run_with_registry(
    config: DispatcherConfig,
    queue: Arc<dyn Queue>,
    registry: Arc<dyn DeviceRegistry>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), DispatchError> {
    Dispatcher::new(config, queue)?
        .with_registry(registry)
        .run(shutdown)
        .await
}

/// A dispatcher ready to run: its configuration checked and its apps built, so their
/// health can be reported (by [`Dispatcher::apps`]) before and while it runs.
pub struct Dispatcher {
    config: DispatcherConfig,
    apps: Arc<Apps>,
    queue: Arc<dyn Queue>,
    registry: Option<Arc<dyn DeviceRegistry>>,
}

impl Dispatcher {
    /// Checks `config` and builds its apps.
    ///
    /// # Errors
    ///
    /// [`DispatchError`] when the configuration is invalid or an app cannot be built.
    pub fn new(config: DispatcherConfig, queue: Arc<dyn Queue>) -> Result<Self, DispatchError> {
        config.validate()?;
        pushgate_shared::metrics::install();
        let apps = Arc::new(Apps::build(&config.apps)?);
        if apps.is_empty() {
            tracing::warn!(
                "no apps configured: every job will be answered no_matching_pool and dead-lettered"
            );
        }
        Ok(Dispatcher {
            config,
            apps,
            queue,
            registry: None,
        })
    }

    /// Removes dead tokens of fanned-out jobs from `registry`.
    pub fn with_registry(mut self, registry: Arc<dyn DeviceRegistry>) -> Self {
        self.registry = Some(registry);
        self
    }

    /// The apps, whose [`HealthSource`](pushgate_shared::health::HealthSource) checks
    /// say whether each can reach its provider.
    pub fn apps(&self) -> Arc<Apps> {
        self.apps.clone()
    }

    /// Runs until `shutdown` completes; see [`run`].
    ///
    /// # Errors
    ///
    /// [`DispatchError`] when the consumer group cannot be created.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), DispatchError> {
        let Dispatcher {
            config,
            apps,
            queue,
            registry,
        } = self;
        queue.ensure_group().await?;
        let consumer = config
            .consumer_name
            .clone()
            .unwrap_or_else(unique_consumer_name);
        tracing::info!(consumer = %consumer, apps = apps.len(), queue = queue.kind(), "dispatcher started");
        let worker = worker::Worker::new(queue, registry, apps, config, consumer);

        let stop = CancellationToken::new();
        let trigger = stop.clone();
        tokio::spawn(async move {
            shutdown.await;
            trigger.cancel();
        });

        let consume = worker.consume(stop.clone());
        let reclaim = worker.reclaim(stop.clone());
        let retries = worker.move_retries(stop.clone());
        tokio::join!(consume, reclaim, retries);
        tracing::info!("dispatcher stopped");
        Ok(())
    }
}

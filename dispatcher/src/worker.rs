//! The consumer loop: read jobs, deliver each through its app with bounded concurrency,
//! and decide its fate (acknowledge, retry later, dead-letter) only after the outcome.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pushgate_shared::api::PushError;
use pushgate_shared::job::now_ms;
use pushgate_shared::queue::{Delivery, EntryId, Queue, QueueError};
use pushgate_shared::registry::DeviceRegistry;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::apps::{App, Apps};
use crate::config::DispatcherConfig;
use crate::outcome::Attempt;
use crate::telemetry;

mod acks;
mod settle;

/// How often acknowledged entries are removed from the queue's streams: often enough
/// that each removal is small and never holds Redis up for long.
const REMOVE_DONE_EVERY: Duration = Duration::from_millis(250);

/// One dispatcher's shared parts, cloned into every send task.
#[derive(Clone)]
pub(crate) struct Worker {
    pub(crate) queue: Arc<dyn Queue>,
    /// The device registry of the webhook path, where dead tokens of fanned-out jobs are
    /// removed; `None` when this dispatcher serves the MongoosePush API only.
    pub(crate) registry: Option<Arc<dyn DeviceRegistry>>,
    pub(crate) apps: Arc<Apps>,
    pub(crate) config: Arc<DispatcherConfig>,
    pub(crate) consumer: Arc<str>,
    in_flight: Arc<HashMap<String, Arc<Semaphore>>>,
    /// Entries being sent or settled now. After a failed read the queue hands out the
    /// consumer's own pending entries again, and those include these: they are skipped.
    entries: Arc<Mutex<HashSet<EntryId>>>,
    acks: acks::Acks,
}

impl Worker {
    pub(crate) fn new(
        queue: Arc<dyn Queue>,
        registry: Option<Arc<dyn DeviceRegistry>>,
        apps: Arc<Apps>,
        config: DispatcherConfig,
        consumer: String,
    ) -> Self {
        let per_app = config.max_in_flight_per_app.max(1);
        let in_flight = apps
            .iter()
            .map(|app| (app.name().to_owned(), Arc::new(Semaphore::new(per_app))))
            .collect();
        Worker {
            acks: acks::Acks::start(queue.clone()),
            queue,
            registry,
            apps,
            config: Arc::new(config),
            consumer: consumer.into(),
            in_flight: Arc::new(in_flight),
            entries: Arc::default(),
        }
    }

    /// Reads and dispatches until `stop` is cancelled, then waits for sends in flight
    /// up to the shutdown deadline.
    pub(crate) async fn consume(&self, stop: CancellationToken) {
        let mut sends = JoinSet::new();
        let block = Duration::from_millis(self.config.read_block_ms);
        let mut failures = 0u32;

        // A read is not raced against `stop`: dropping a blocked XREADGROUP could leave
        // entries delivered to us but never seen. `read_block_ms` bounds the wait instead.
        while !stop.is_cancelled() {
            while sends.try_join_next().is_some() {}
            match self
                .queue
                .read(&self.consumer, self.config.read_batch, block)
                .await
            {
                Ok(deliveries) => {
                    failures = 0;
                    for delivery in deliveries {
                        self.dispatch(delivery, &mut sends).await;
                    }
                }
                Err(error) => {
                    telemetry::queue_failed("read", &error);
                    failures = failures.saturating_add(1);
                    let pause = Duration::from_millis(100 * u64::from(failures.min(50)));
                    tokio::select! {
                        () = stop.cancelled() => {}
                        () = tokio::time::sleep(pause) => {}
                    }
                }
            }
        }
        self.drain(sends).await;
    }

    /// Takes over entries left pending by vanished consumers, until `stop`.
    pub(crate) async fn reclaim(&self, stop: CancellationToken) {
        let mut sends = JoinSet::new();
        let every = Duration::from_millis(self.config.claim_interval_ms.max(10));
        let min_idle = Duration::from_millis(self.config.claim_idle_ms);
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep(every) => {}
            }
            while sends.try_join_next().is_some() {}
            match self
                .queue
                .claim_idle(&self.consumer, min_idle, self.config.read_batch)
                .await
            {
                Ok(claimed) => {
                    if !claimed.is_empty() {
                        tracing::info!(entries = claimed.len(), "took over idle entries");
                    }
                    for delivery in claimed {
                        self.dispatch(delivery, &mut sends).await;
                    }
                }
                Err(error) => telemetry::queue_failed("claim", &error),
            }
        }
        self.drain(sends).await;
    }

    /// Moves due retries back into the streams, and every quarter of a second lets the queue
    /// remove the entries every dispatcher is done with, until `stop`.
    pub(crate) async fn move_retries(&self, stop: CancellationToken) {
        let every = Duration::from_millis(self.config.retry_poll_ms.max(10));
        let mut last_removal = Instant::now();
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep(every) => {}
            }
            if let Err(error) = self.queue.move_due_retries(now_ms(), 1000).await {
                telemetry::queue_failed("move_retries", &error);
            }
            if last_removal.elapsed() >= REMOVE_DONE_EVERY {
                last_removal = Instant::now();
                if let Err(error) = self.queue.remove_done().await {
                    telemetry::queue_failed("remove_done", &error);
                }
            }
        }
    }

    /// Starts one delivery, waiting for room under its app's in-flight limit first; an
    /// entry this worker is already sending or settling is left to that.
    async fn dispatch(&self, delivery: Delivery, sends: &mut JoinSet<()>) {
        let Some(busy) = EntryInFlight::take(&self.entries, &delivery.entry) else {
            tracing::debug!(entry = %delivery.entry.id, "entry handed out again while in flight; skipped");
            return;
        };
        let Some(app) = self.apps.select(&delivery.job.notification.target) else {
            let attempt = Attempt::no_matching_pool();
            // Recorded as MongoosePush does: a send that took no time.
            let service = delivery.job.notification.target.service;
            telemetry::attempt_finished(service, &attempt, Duration::ZERO);
            self.settle(delivery, None, attempt).await;
            drop(busy);
            return;
        };
        let semaphore = self.in_flight[app.name()].clone();
        let permit = semaphore
            .acquire_owned()
            .await
            .expect("in-flight semaphores are never closed");
        let worker = self.clone();
        sends.spawn(async move {
            let app = worker
                .apps
                .select(&delivery.job.notification.target)
                .expect("selection is deterministic");
            let in_flight = telemetry::InFlight::start(app.name());
            let span = tracing::info_span!(
                "job",
                job_id = %delivery.job.id,
                app = app.name(),
                attempt = delivery.job.attempt,
            );
            worker.deliver(delivery, app).instrument(span).await;
            drop((in_flight, permit, busy));
        });
    }

    async fn deliver(&self, delivery: Delivery, app: &App) {
        let job = &delivery.job;
        let service = job.notification.target.service;
        if delivery.times_delivered > self.config.retry.max_deliveries {
            let error = PushError::generic("poison");
            self.give_up(&delivery, "poison", job.attempt, None, error)
                .await;
            return;
        }
        if job.is_expired(now_ms()) {
            telemetry::expired(service);
            self.ack(&delivery).await;
            return;
        }
        let started = Instant::now();
        let attempt = app.send(&job.notification, job.accepted_at_ms).await;
        telemetry::attempt_finished(service, &attempt, started.elapsed());
        self.settle(delivery, Some(app), attempt).await;
    }

    /// Waits for sends in flight up to the shutdown deadline; the rest stay pending.
    async fn drain(&self, mut sends: JoinSet<()>) {
        let deadline = Duration::from_millis(self.config.shutdown_deadline_ms);
        let finished = tokio::time::timeout(deadline, async {
            while sends.join_next().await.is_some() {}
        })
        .await;
        if finished.is_err() {
            tracing::warn!(
                abandoned = sends.len(),
                "shutdown deadline passed; unfinished sends stay pending for another dispatcher"
            );
            sends.shutdown().await;
        }
    }
}

/// Marks an entry as in flight in a worker until dropped.
struct EntryInFlight {
    entries: Arc<Mutex<HashSet<EntryId>>>,
    entry: EntryId,
}

impl EntryInFlight {
    /// Marks `entry`, or `None` when it is in flight already.
    fn take(entries: &Arc<Mutex<HashSet<EntryId>>>, entry: &EntryId) -> Option<Self> {
        let fresh = entries
            .lock()
            .expect("no code panics while holding the in-flight entries lock")
            .insert(entry.clone());
        fresh.then(|| EntryInFlight {
            entries: Arc::clone(entries),
            entry: entry.clone(),
        })
    }
}

impl Drop for EntryInFlight {
    fn drop(&mut self) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(&self.entry);
        }
    }
}

/// Why the dispatcher could not start.
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error("invalid configuration: {0}")]
    Config(#[from] crate::config::ConfigError),
    #[error("an app cannot be built: {0}")]
    App(#[from] crate::apps::AppError),
    #[error("the queue is unavailable: {0}")]
    Queue(#[from] QueueError),
}

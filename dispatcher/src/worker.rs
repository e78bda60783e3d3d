//! The consumer loop: read jobs, deliver each through its app with bounded concurrency,
//! and decide its fate (acknowledge, retry later, dead-letter) only after the outcome.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pushgate_shared::api::PushError;
use pushgate_shared::job::now_ms;
use pushgate_shared::queue::{DeadLetter, Delivery, Queue, QueueError};
use pushgate_shared::reply::{FirstAttempt, JobReply};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::apps::{App, Apps};
use crate::config::DispatcherConfig;
use crate::outcome::{Attempt, Outcome};
use crate::telemetry;

/// One dispatcher's shared parts, cloned into every send task.
#[derive(Clone)]
pub(crate) struct Worker {
    pub(crate) queue: Arc<dyn Queue>,
    pub(crate) apps: Arc<Apps>,
    pub(crate) config: Arc<DispatcherConfig>,
    pub(crate) consumer: Arc<str>,
    in_flight: Arc<HashMap<String, Arc<Semaphore>>>,
}

impl Worker {
    pub(crate) fn new(
        queue: Arc<dyn Queue>,
        apps: Apps,
        config: DispatcherConfig,
        consumer: String,
    ) -> Self {
        let per_app = config.max_in_flight_per_app.max(1);
        let in_flight = apps
            .iter()
            .map(|app| (app.name().to_owned(), Arc::new(Semaphore::new(per_app))))
            .collect();
        Worker {
            queue,
            apps: Arc::new(apps),
            config: Arc::new(config),
            consumer: consumer.into(),
            in_flight: Arc::new(in_flight),
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

    /// Moves due retries back into the streams, until `stop`.
    pub(crate) async fn move_retries(&self, stop: CancellationToken) {
        let every = Duration::from_millis(self.config.retry_poll_ms.max(10));
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep(every) => {}
            }
            if let Err(error) = self.queue.move_due_retries(now_ms(), 1000).await {
                telemetry::queue_failed("move_retries", &error);
            }
        }
    }

    /// Starts one delivery, waiting for room under its app's in-flight limit first.
    async fn dispatch(&self, delivery: Delivery, sends: &mut JoinSet<()>) {
        let Some(app) = self.apps.select(&delivery.job.notification.target) else {
            let attempt = Attempt::no_matching_pool();
            self.settle(delivery, None, attempt).await;
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
            worker.deliver(delivery, app).await;
            drop(permit);
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

    /// Decides a job's fate from its attempt, and only then acknowledges it.
    async fn settle(&self, delivery: Delivery, app: Option<&App>, attempt: Attempt) {
        let job = &delivery.job;
        let target = &job.notification.target;
        let error = attempt.error.clone();
        match attempt.class {
            Outcome::Delivered => {
                telemetry::delivered(target.service, &target.device_token);
                self.ack(&delivery).await;
                self.reply(&delivery, FirstAttempt::Delivered).await;
            }
            Outcome::DeadToken => {
                let reason = error.as_ref().map_or("", |e| e.reason.as_str());
                telemetry::dead_token(target.service, &target.device_token, reason);
                let ttl = Duration::from_secs(self.config.dead_token_ttl_secs);
                if let Err(error) = self
                    .queue
                    .remember_dead_token(target.service, &target.device_token, ttl)
                    .await
                {
                    telemetry::queue_failed("remember_dead_token", &error);
                }
                self.ack(&delivery).await;
                self.reply_failed(&delivery, error).await;
            }
            Outcome::Rejected => {
                let reason = error.as_ref().map_or("", |e| e.reason.as_str());
                telemetry::rejected(target.service, &target.device_token, reason);
                self.ack(&delivery).await;
                self.reply_failed(&delivery, error).await;
            }
            Outcome::Configuration | Outcome::OurCredentials => {
                let reason = attempt.class.as_str();
                let error = error.unwrap_or_else(|| PushError::generic(reason));
                let attempts = job.attempt + u32::from(app.is_some());
                self.give_up(&delivery, reason, attempts, attempt.answer, error)
                    .await;
            }
            Outcome::Throttled | Outcome::ProviderDown => {
                self.retry_or_give_up(delivery, attempt).await;
            }
        }
    }

    async fn retry_or_give_up(&self, delivery: Delivery, attempt: Attempt) {
        let mut job = delivery.job.clone();
        job.attempt = job.attempt.saturating_add(1);
        let age = Duration::from_millis(now_ms().saturating_sub(job.accepted_at_ms));
        let error = attempt
            .error
            .clone()
            .unwrap_or_else(|| PushError::generic(attempt.class.as_str()));

        if let Some(limit) = self.config.retry.exhausted(job.attempt, age) {
            self.give_up(&delivery, limit, job.attempt, attempt.answer, error)
                .await;
            return;
        }
        let delay = self.config.retry.delay(job.attempt, attempt.retry_after);
        let due = now_ms() + delay.as_millis() as u64;
        let service = job.notification.target.service;
        match self.queue.retry_later(&delivery.entry, &job, due).await {
            Ok(()) => {
                telemetry::retry_scheduled(service, job.attempt, delay, &error.reason);
                let retrying = FirstAttempt::Retrying {
                    error: Some(error),
                    retry_after_secs: attempt.retry_after.map(|after| after.as_secs()),
                };
                self.reply(&delivery, retrying).await;
            }
            Err(error) => telemetry::queue_failed("retry_later", &error),
        }
    }

    /// Dead-letters the job with `reason` after `attempts` attempts, acknowledging its
    /// entry in the same step.
    async fn give_up(
        &self,
        delivery: &Delivery,
        reason: &str,
        attempts: u32,
        last_answer: Option<String>,
        error: PushError,
    ) {
        let letter = DeadLetter {
            job: delivery.job.clone(),
            reason: reason.to_owned(),
            attempts,
            last_answer,
            failed_at_ms: now_ms(),
        };
        let service = delivery.job.notification.target.service;
        match self.queue.dead_letter(Some(&delivery.entry), &letter).await {
            Ok(()) => {
                telemetry::dead_lettered(service, reason, &error.reason);
                self.reply_failed(delivery, Some(error)).await;
            }
            Err(error) => telemetry::queue_failed("dead_letter", &error),
        }
    }

    async fn ack(&self, delivery: &Delivery) {
        if let Err(error) = self.queue.ack(std::slice::from_ref(&delivery.entry)).await {
            telemetry::queue_failed("ack", &error);
        }
    }

    async fn reply_failed(&self, delivery: &Delivery, error: Option<PushError>) {
        let error = error.unwrap_or_else(|| PushError::generic("unspecified"));
        self.reply(delivery, FirstAttempt::Failed { error }).await;
    }

    /// Tells a waiting ingest how the first attempt went; later attempts reply nothing.
    async fn reply(&self, delivery: &Delivery, first_attempt: FirstAttempt) {
        let job = &delivery.job;
        let Some(instance) = &job.reply_to else {
            return;
        };
        if job.attempt > 0 {
            return;
        }
        let reply = JobReply {
            job_id: job.id.clone(),
            first_attempt,
        };
        if let Err(error) = self.queue.publish_reply(instance, &reply).await {
            telemetry::queue_failed("publish_reply", &error);
        }
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

/// Why the dispatcher could not start.
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error("an app cannot be built: {0}")]
    App(#[from] crate::apps::AppError),
    #[error("the queue is unavailable: {0}")]
    Queue(#[from] QueueError),
}

//! Settling a job once its attempt is over: acknowledge, schedule a retry or dead-letter,
//! each step tried again on a queue error, and tell a waiting ingest how it went.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use pushgate_shared::api::PushError;
use pushgate_shared::job::{Job, now_ms};
use pushgate_shared::queue::{DeadLetter, Delivery};
use pushgate_shared::registry::RegistryError;
use pushgate_shared::reply::{FirstAttempt, JobReply};

use super::Worker;
use crate::apps::App;
use crate::outcome::{Attempt, Outcome};
use crate::telemetry;

/// How often a settling step is tried before the entry is left pending.
const SETTLE_TRIES: u32 = 5;

/// The pause after the first failed try; it doubles after each further one.
const SETTLE_PAUSE: Duration = Duration::from_millis(50);

impl Worker {
    /// Decides a job's fate from its attempt, and only then acknowledges it.
    pub(super) async fn settle(&self, delivery: Delivery, app: Option<&App>, attempt: Attempt) {
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
                self.persist("remember_dead_token", || {
                    self.queue
                        .remember_dead_token(target.service, &target.device_token, ttl)
                })
                .await;
                self.forget_dead_device(job).await;
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
        let scheduled = self
            .persist("retry_later", || {
                self.queue.retry_later(&delivery.entry, &job, due)
            })
            .await;
        if scheduled {
            telemetry::retry_scheduled(service, job.attempt, delay, &error.reason);
        }
        // Scheduled or left pending, the job is still to be delivered.
        let retrying = FirstAttempt::Retrying {
            error: Some(error),
            retry_after_secs: attempt.retry_after.map(|after| after.as_secs()),
        };
        self.reply(&delivery, retrying).await;
    }

    /// Dead-letters the job with `reason` after `attempts` attempts, acknowledging its
    /// entry in the same step.
    pub(super) async fn give_up(
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
        let stored = self
            .persist("dead_letter", || {
                self.queue.dead_letter(Some(&delivery.entry), &letter)
            })
            .await;
        if stored {
            telemetry::dead_lettered(service, reason, &error.reason);
        }
        self.reply_failed(delivery, Some(error)).await;
    }

    /// Removes a dead token from the device registry when the job came from a webhook
    /// fan-out, so the user's next event no longer reaches it.
    async fn forget_dead_device(&self, job: &Job) {
        let (Some(registry), Some(user)) = (&self.registry, &job.registry_user) else {
            return;
        };
        let token = &job.notification.target.device_token;
        let removed = AtomicBool::new(false);
        let step = || async {
            let was_there = registry.remove_device(user, token).await?;
            removed.fetch_or(was_there, Ordering::Relaxed);
            Ok::<(), RegistryError>(())
        };
        if self.persist("forget_dead_device", step).await && removed.load(Ordering::Relaxed) {
            telemetry::dead_device_forgotten(job.notification.target.service, token);
        }
    }

    pub(super) async fn ack(&self, delivery: &Delivery) {
        self.persist("ack", || self.acks.ack(&delivery.entry)).await;
    }

    /// Runs one settling step, trying it again after a queue (or registry) error: the provider's answer
    /// is known, and an entry left pending is sent again when this consumer re-reads its
    /// own pending entries (after a restart or a failed read). True when the step took.
    async fn persist<F, Step, E>(&self, operation: &'static str, mut step: F) -> bool
    where
        F: FnMut() -> Step,
        Step: Future<Output = Result<(), E>>,
        E: std::fmt::Display,
    {
        let mut pause = SETTLE_PAUSE;
        let mut tries = 1;
        loop {
            match step().await {
                Ok(()) => return true,
                Err(error) if tries >= SETTLE_TRIES => {
                    telemetry::queue_failed(operation, &error);
                    return false;
                }
                Err(error) => {
                    telemetry::queue_step_retried(operation, tries, &error);
                    tokio::time::sleep(pause).await;
                    pause *= 2;
                    tries += 1;
                }
            }
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
}

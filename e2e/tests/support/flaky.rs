//! A queue that fails chosen operations a given number of times before passing them on,
//! to see how the dispatcher copes with a queue error at each step, on either backend.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use pushgate_shared::queue::{
    Backlog, DeadLetter, Delivery, EntryId, Queue, QueueError, StoredDeadLetter,
    UnreadableDeadLetter,
};
use pushgate_shared::reply::JobReply;
use pushgate_shared::{Job, Service};

/// An operation of the [`Queue`] trait that [`FlakyQueue`] can fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operation {
    Read,
    Ack,
    RetryLater,
    DeadLetter,
}

/// Wraps a queue; each operation fails as often as [`FlakyQueue::fail`] asked, then works.
pub struct FlakyQueue {
    inner: Arc<dyn Queue>,
    failures: Mutex<HashMap<Operation, u32>>,
    failed: Mutex<HashMap<Operation, u32>>,
}

impl FlakyQueue {
    pub fn new(inner: Arc<dyn Queue>) -> Self {
        FlakyQueue {
            inner,
            failures: Mutex::default(),
            failed: Mutex::default(),
        }
    }

    /// Makes the next `times` calls of `operation` fail with [`QueueError::Closed`].
    pub fn fail(&self, operation: Operation, times: u32) {
        *self.failures.lock().unwrap().entry(operation).or_default() += times;
    }

    /// How many calls of `operation` failed so far.
    pub fn failed(&self, operation: Operation) -> u32 {
        self.failed
            .lock()
            .unwrap()
            .get(&operation)
            .copied()
            .unwrap_or(0)
    }

    fn trip(&self, operation: Operation) -> Result<(), QueueError> {
        let mut failures = self.failures.lock().unwrap();
        match failures.get_mut(&operation) {
            Some(left) if *left > 0 => {
                *left -= 1;
                *self.failed.lock().unwrap().entry(operation).or_default() += 1;
                Err(QueueError::Closed)
            }
            _ => Ok(()),
        }
    }
}

#[async_trait]
impl Queue for FlakyQueue {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }

    async fn ping(&self) -> Result<(), QueueError> {
        self.inner.ping().await
    }

    async fn backlog(&self) -> Result<Backlog, QueueError> {
        self.inner.backlog().await
    }

    async fn append(&self, job: &Job) -> Result<bool, QueueError> {
        self.inner.append(job).await
    }

    async fn ensure_group(&self) -> Result<(), QueueError> {
        self.inner.ensure_group().await
    }

    async fn read(
        &self,
        consumer: &str,
        count: usize,
        block: Duration,
    ) -> Result<Vec<Delivery>, QueueError> {
        self.trip(Operation::Read)?;
        self.inner.read(consumer, count, block).await
    }

    async fn ack(&self, entries: &[EntryId]) -> Result<(), QueueError> {
        self.trip(Operation::Ack)?;
        self.inner.ack(entries).await
    }

    async fn claim_idle(
        &self,
        consumer: &str,
        min_idle: Duration,
        count: usize,
    ) -> Result<Vec<Delivery>, QueueError> {
        self.inner.claim_idle(consumer, min_idle, count).await
    }

    async fn retry_later(
        &self,
        entry: &EntryId,
        job: &Job,
        due_at_ms: u64,
    ) -> Result<(), QueueError> {
        self.trip(Operation::RetryLater)?;
        self.inner.retry_later(entry, job, due_at_ms).await
    }

    async fn move_due_retries(&self, now_ms: u64, limit: usize) -> Result<usize, QueueError> {
        self.inner.move_due_retries(now_ms, limit).await
    }

    async fn dead_letter(
        &self,
        entry: Option<&EntryId>,
        letter: &DeadLetter,
    ) -> Result<(), QueueError> {
        self.trip(Operation::DeadLetter)?;
        self.inner.dead_letter(entry, letter).await
    }

    async fn dead_letters(&self, count: usize) -> Result<Vec<StoredDeadLetter>, QueueError> {
        self.inner.dead_letters(count).await
    }

    async fn unreadable_dead_letters(
        &self,
        count: usize,
    ) -> Result<Vec<UnreadableDeadLetter>, QueueError> {
        self.inner.unreadable_dead_letters(count).await
    }

    async fn remove_dead_letters(&self, ids: &[String]) -> Result<usize, QueueError> {
        self.inner.remove_dead_letters(ids).await
    }

    async fn remember_dead_token(
        &self,
        service: Service,
        device_token: &str,
        ttl: Duration,
    ) -> Result<(), QueueError> {
        self.inner
            .remember_dead_token(service, device_token, ttl)
            .await
    }

    async fn is_dead_token(
        &self,
        service: Service,
        device_token: &str,
    ) -> Result<bool, QueueError> {
        self.inner.is_dead_token(service, device_token).await
    }

    async fn publish_reply(&self, instance: &str, reply: &JobReply) -> Result<(), QueueError> {
        self.inner.publish_reply(instance, reply).await
    }

    async fn subscribe_replies(
        &self,
        instance: &str,
    ) -> Result<tokio::sync::mpsc::Receiver<JobReply>, QueueError> {
        self.inner.subscribe_replies(instance).await
    }
}

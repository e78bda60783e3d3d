//! Sync-wait: optionally hold a request open until the dispatcher reports the first
//! attempt, so the caller gets MongoosePush's answer for it (a dead token's 410 at once).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use pushgate_shared::JobId;
use pushgate_shared::queue::{Queue, QueueError};
use pushgate_shared::reply::FirstAttempt;
use tokio::sync::oneshot;

/// The longest wait the configuration accepts: below MongooseIM's default 2000 ms
/// request timeout.
pub const MAX_SYNC_WAIT: Duration = Duration::from_millis(1500);

/// This ingest instance's reply channel and the requests waiting on it.
pub struct SyncWait {
    instance: String,
    wait: Duration,
    waiters: Mutex<HashMap<JobId, oneshot::Sender<FirstAttempt>>>,
}

impl SyncWait {
    /// Subscribes to a fresh reply channel for this instance and starts routing replies;
    /// requests wait up to `wait` (the configuration keeps it within [`MAX_SYNC_WAIT`],
    /// callers building their own may choose longer, tests as a hang guard).
    ///
    /// # Errors
    ///
    /// The queue's error when the channel cannot be subscribed.
    pub async fn start(queue: &Arc<dyn Queue>, wait: Duration) -> Result<Arc<Self>, QueueError> {
        let instance = format!("ingest-{}", JobId::new());
        let mut replies = queue.subscribe_replies(&instance).await?;
        let sync_wait = Arc::new(SyncWait {
            instance,
            wait,
            waiters: Mutex::default(),
        });
        let routing: Weak<SyncWait> = Arc::downgrade(&sync_wait);
        tokio::spawn(async move {
            while let Some(reply) = replies.recv().await {
                let Some(sync_wait) = routing.upgrade() else {
                    break;
                };
                if let Some(waiter) = sync_wait.waiters().remove(&reply.job_id) {
                    let _ = waiter.send(reply.first_attempt);
                }
            }
        });
        Ok(sync_wait)
    }

    /// The name dispatchers send this instance's replies to.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// Registers interest in `job_id`'s first attempt; call before the job is appended.
    pub(crate) fn register(&self, job_id: &JobId) -> oneshot::Receiver<FirstAttempt> {
        let (sender, receiver) = oneshot::channel();
        self.waiters().insert(job_id.clone(), sender);
        receiver
    }

    /// Waits for the first attempt of `job_id`; `None` when it did not come in time.
    pub(crate) async fn wait(
        &self,
        job_id: &JobId,
        receiver: oneshot::Receiver<FirstAttempt>,
    ) -> Option<FirstAttempt> {
        let outcome = tokio::time::timeout(self.wait, receiver).await;
        self.waiters().remove(job_id);
        outcome.ok().and_then(Result::ok)
    }

    /// Drops interest in `job_id` (its append failed).
    pub(crate) fn forget(&self, job_id: &JobId) {
        self.waiters().remove(job_id);
    }

    fn waiters(&self) -> std::sync::MutexGuard<'_, HashMap<JobId, oneshot::Sender<FirstAttempt>>> {
        self.waiters
            .lock()
            .expect("no code panics while holding the waiters lock")
    }
}

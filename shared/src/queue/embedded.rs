//! The in-process backend: the Redis Streams contract kept in memory, so the whole gateway
//! runs as one process without Redis. Queued jobs do not survive a restart of the process.

mod store;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;

use self::store::{EntryKey, Store};
use super::{
    Backlog, DeadLetter, Delivery, EntryId, Queue, QueueError, QueueOptions, StoredDeadLetter,
    UnreadableDeadLetter, encode_job, shard_for,
};
use crate::job::Job;
use crate::notification::Service;
use crate::reply::JobReply;

/// Per consumer and shard: `Some(key)` while re-reading the consumer's own pending entries
/// after `key`, `None` once it reads new entries.
type ReadPositions = HashMap<String, Vec<Option<EntryKey>>>;

/// The in-memory queue; clones share the store and the consumers' read positions.
#[derive(Clone)]
pub struct EmbeddedQueue {
    shared: Arc<Shared>,
    positions: Arc<Mutex<ReadPositions>>,
}

struct Shared {
    store: Mutex<Store>,
    /// Woken on every append, so blocked reads look again.
    appended: Notify,
    /// Reply listeners by ingest instance.
    replies: Mutex<HashMap<String, Vec<mpsc::Sender<JobReply>>>>,
}

impl EmbeddedQueue {
    /// An empty queue with the given options (the key prefix is not used in memory).
    pub fn new(options: QueueOptions) -> Self {
        EmbeddedQueue {
            shared: Arc::new(Shared {
                store: Mutex::new(Store::new(&options)),
                appended: Notify::new(),
                replies: Mutex::default(),
            }),
            positions: Arc::default(),
        }
    }

    /// Another handle on the same store with fresh read positions, as a restarted
    /// process opening the queue again gets: each consumer first re-reads its own
    /// pending entries.
    pub fn reopen(&self) -> Self {
        EmbeddedQueue {
            shared: Arc::clone(&self.shared),
            positions: Arc::default(),
        }
    }

    /// Appends an entry whose `job` field is `raw`, unchecked, as a hand-written `XADD`
    /// would on Redis; tests use it to reach the corrupt-entry path.
    pub fn append_raw_entry(&self, shard: u16, raw: &str) -> Result<(), QueueError> {
        self.store().append_entry(shard, raw.to_owned())?;
        self.shared.appended.notify_waiters();
        Ok(())
    }

    fn store(&self) -> MutexGuard<'_, Store> {
        self.shared
            .store
            .lock()
            .expect("no code panics while holding the queue store lock")
    }

    /// One non-waiting read attempt: own pending entries first, then new ones.
    fn try_read(&self, consumer: &str, count: usize) -> Vec<Delivery> {
        let mut positions = self
            .positions
            .lock()
            .expect("no code panics while holding the read positions lock");
        let mut store = self.store();
        let shards = store.shard_count();
        let cursor = positions
            .entry(consumer.to_owned())
            .or_insert_with(|| vec![Some(EntryKey::ZERO); usize::from(shards)]);

        while cursor.iter().any(Option::is_some) {
            let deliveries = store.read_own_pending(consumer, count, cursor);
            if !deliveries.is_empty() {
                return deliveries;
            }
        }
        store.read_new(consumer, count)
    }
}

#[async_trait]
impl Queue for EmbeddedQueue {
    fn kind(&self) -> &'static str {
        "embedded"
    }

    async fn ping(&self) -> Result<(), QueueError> {
        Ok(())
    }

    async fn append(&self, job: &Job) -> Result<bool, QueueError> {
        let appended = self.store().append_job(job)?;
        if appended {
            self.shared.appended.notify_waiters();
        }
        Ok(appended)
    }

    /// The in-memory group always exists; there is nothing to create.
    async fn ensure_group(&self) -> Result<(), QueueError> {
        Ok(())
    }

    async fn read(
        &self,
        consumer: &str,
        count: usize,
        block: Duration,
    ) -> Result<Vec<Delivery>, QueueError> {
        if count == 0 {
            return Ok(Vec::new());
        }
        let deadline = deadline_after(block);
        loop {
            // Register interest before looking, so an append in between is not missed.
            let appended = self.shared.appended.notified();
            tokio::pin!(appended);
            appended.as_mut().enable();

            let deliveries = self.try_read(consumer, count);
            if !deliveries.is_empty() || Instant::now() >= deadline {
                return Ok(deliveries);
            }
            if tokio::time::timeout_at(deadline, appended).await.is_err() {
                return Ok(Vec::new());
            }
        }
    }

    async fn backlog(&self) -> Result<Backlog, QueueError> {
        Ok(self.store().backlog())
    }

    async fn ack(&self, entries: &[EntryId]) -> Result<(), QueueError> {
        let mut store = self.store();
        for entry in entries {
            store.ack(entry)?;
        }
        Ok(())
    }

    async fn claim_idle(
        &self,
        consumer: &str,
        min_idle: Duration,
        count: usize,
    ) -> Result<Vec<Delivery>, QueueError> {
        Ok(self.store().claim_idle(consumer, min_idle, count))
    }

    async fn retry_later(
        &self,
        entry: &EntryId,
        job: &Job,
        due_at_ms: u64,
    ) -> Result<(), QueueError> {
        let mut store = self.store();
        let key = store.check_entry(entry)?;
        let shard = shard_for(&job.notification.target.device_token, store.shard_count());
        store.schedule_retry(encode_job(job), shard, due_at_ms);
        store.ack_key(entry.shard, key);
        Ok(())
    }

    async fn move_due_retries(&self, now_ms: u64, limit: usize) -> Result<usize, QueueError> {
        let moved = self.store().move_due_retries(now_ms, limit)?;
        if moved > 0 {
            self.shared.appended.notify_waiters();
        }
        Ok(moved)
    }

    async fn dead_letter(
        &self,
        entry: Option<&EntryId>,
        letter: &DeadLetter,
    ) -> Result<(), QueueError> {
        let mut store = self.store();
        let key = entry.map(|entry| store.check_entry(entry)).transpose()?;
        store.add_dead_letter(letter.clone());
        if let (Some(entry), Some(key)) = (entry, key) {
            store.ack_key(entry.shard, key);
        }
        Ok(())
    }

    async fn dead_letters(&self, count: usize) -> Result<Vec<StoredDeadLetter>, QueueError> {
        Ok(self.store().dead_letters(count))
    }

    async fn unreadable_dead_letters(
        &self,
        count: usize,
    ) -> Result<Vec<UnreadableDeadLetter>, QueueError> {
        Ok(self.store().unreadable_dead_letters(count))
    }

    async fn remove_dead_letters(&self, ids: &[String]) -> Result<usize, QueueError> {
        Ok(self.store().remove_dead_letters(ids))
    }

    async fn remember_dead_token(
        &self,
        service: Service,
        device_token: &str,
        ttl: Duration,
    ) -> Result<(), QueueError> {
        self.store().remember_dead_token(service, device_token, ttl);
        Ok(())
    }

    async fn is_dead_token(
        &self,
        service: Service,
        device_token: &str,
    ) -> Result<bool, QueueError> {
        Ok(self.store().is_dead_token(service, device_token))
    }

    async fn publish_reply(&self, instance: &str, reply: &JobReply) -> Result<(), QueueError> {
        let mut listeners = self
            .shared
            .replies
            .lock()
            .expect("no code panics while holding the replies lock");
        if let Some(senders) = listeners.get_mut(instance) {
            senders.retain(|sender| match sender.try_send(reply.clone()) {
                Ok(()) | Err(mpsc::error::TrySendError::Full(_)) => true,
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            });
        }
        Ok(())
    }

    async fn subscribe_replies(
        &self,
        instance: &str,
    ) -> Result<mpsc::Receiver<JobReply>, QueueError> {
        let (sender, receiver) = mpsc::channel(REPLY_BUFFER);
        self.shared
            .replies
            .lock()
            .expect("no code panics while holding the replies lock")
            .entry(instance.to_owned())
            .or_default()
            .push(sender);
        Ok(receiver)
    }
}

/// Replies buffered per listener before further ones are dropped (the waiter then times out).
const REPLY_BUFFER: usize = 4096;

/// The instant `block` from now, capped for waits too long to represent.
fn deadline_after(block: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(block)
        .unwrap_or_else(|| now + Duration::from_secs(365 * 24 * 3600))
}

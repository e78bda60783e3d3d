//! The durable queue between ingest and the dispatchers: a trait with one contract and
//! two backends, Redis Streams for production and an in-process one for single-process runs.

pub mod embedded;
pub mod redis;

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::job::Job;
use crate::notification::Service;
use crate::reply::JobReply;

pub use self::embedded::EmbeddedQueue;
pub use self::redis::RedisQueue;

/// Settings shared by both backends.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueOptions {
    /// Prefix of every key, `{p}` in DESIGN.md (default `pushgate`).
    pub prefix: String,
    /// Number of job streams; a job goes to the shard its device token hashes to.
    pub shards: u16,
    /// The consumer group every dispatcher joins (default `dispatchers`).
    pub group: String,
    /// How long an appended job id is remembered to make a repeated append harmless.
    pub idempotency_ttl: Duration,
}

impl Default for QueueOptions {
    fn default() -> Self {
        QueueOptions {
            prefix: "pushgate".to_owned(),
            shards: 1,
            group: "dispatchers".to_owned(),
            idempotency_ttl: Duration::from_secs(24 * 3600),
        }
    }
}

/// Where an entry sits: the shard's stream and the entry id within it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct EntryId {
    pub shard: u16,
    /// The stream entry id, e.g. `1700000000000-0`.
    pub id: String,
}

/// A job handed to a consumer; it stays pending until acknowledged, retried or dead-lettered.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub entry: EntryId,
    pub job: Job,
    /// How many times the group has handed this entry out, this time included (1 at first).
    pub times_delivered: u64,
}

/// A job that could not be delivered, with why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub job: Job,
    /// Why it was given up: `max_attempts`, `max_age`, `poison`, `internal_config`, ...
    pub reason: String,
    pub attempts: u32,
    /// The last provider answer (status and body), when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_answer: Option<String>,
    pub failed_at_ms: u64,
}

/// A dead letter as stored, with its id in the dead-letter stream.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredDeadLetter {
    pub id: String,
    pub letter: DeadLetter,
}

/// A dead letter whose job cannot be decoded (a corrupt stream entry), kept as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct UnreadableDeadLetter {
    /// Its id in the dead-letter stream, for [`Queue::remove_dead_letters`].
    pub id: String,
    /// The `job` field exactly as stored (empty when the entry had none).
    pub raw_job: String,
    /// Why it was given up: `corrupt` for entries the queue could not decode.
    pub reason: String,
    /// Why the job or the letter could not be decoded.
    pub error: String,
    pub failed_at_ms: u64,
}

/// Why a queue operation failed.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("redis: {0}")]
    Redis(#[from] ::redis::RedisError),
    #[error("stored entry {entry} is not a job this version can read: {reason}")]
    Corrupt { entry: String, reason: String },
    #[error("the queue is closed")]
    Closed,
    /// An entry id that no stream of this queue can hold (bad shard or id syntax).
    #[error("{0} is not an entry of this queue")]
    UnknownEntry(String),
}

/// What [`Queue::append_unless_dead`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendOutcome {
    Appended,
    /// The job id was appended before (within the idempotency window); nothing added.
    AlreadyAppended,
    /// The target's token is remembered as dead; nothing added.
    DeadToken,
}

/// What is waiting in the queue, for metrics: entries not yet handed to a dispatcher,
/// entries handed out and not yet settled, jobs waiting for a retry, dead letters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backlog {
    /// Entries no dispatcher has read yet, over every shard.
    pub waiting: u64,
    /// When the oldest of those was appended (ms since the epoch), if there is one.
    pub oldest_waiting_at_ms: Option<u64>,
    /// Entries read and not yet acknowledged.
    pub in_progress: u64,
    pub retrying: u64,
    pub dead_letters: u64,
}

/// The queue contract. Both backends pass one test suite (`shared/tests/queue_contract.rs`).
///
/// Delivery is at least once: an entry read by a consumer stays pending until that
/// consumer acknowledges it, schedules a retry or dead-letters it; entries of a consumer
/// that vanished are claimed by another after an idle limit.
#[async_trait]
pub trait Queue: Send + Sync + 'static {
    /// `redis` or `embedded`, for logs and health answers.
    fn kind(&self) -> &'static str;

    /// Checks that the backend answers.
    async fn ping(&self) -> Result<(), QueueError>;

    /// Counts what is waiting (see [`Backlog`]).
    async fn backlog(&self) -> Result<Backlog, QueueError>;

    /// Appends a job to its shard's stream. Appending a job id that was already appended
    /// (within the idempotency window) adds nothing and returns `false`.
    async fn append(&self, job: &Job) -> Result<bool, QueueError>;

    /// Appends a job as [`Queue::append`] does, unless a provider declared its target's
    /// token dead and that is still remembered ([`Queue::is_dead_token`]); then nothing
    /// is appended. Queues that can do both in one step override this.
    async fn append_unless_dead(&self, job: &Job) -> Result<AppendOutcome, QueueError> {
        let target = &job.notification.target;
        if self
            .is_dead_token(target.service, &target.device_token)
            .await?
        {
            return Ok(AppendOutcome::DeadToken);
        }
        Ok(if self.append(job).await? {
            AppendOutcome::Appended
        } else {
            AppendOutcome::AlreadyAppended
        })
    }

    /// Creates the consumer group on every shard; an existing group is fine.
    async fn ensure_group(&self) -> Result<(), QueueError>;

    /// Reads up to `count` entries for `consumer`: first the entries already pending on
    /// that consumer (after a restart under the same name), then new ones, waiting up to
    /// `block` when there is nothing. Entries that cannot be decoded are dead-lettered
    /// as `corrupt` and not returned.
    async fn read(
        &self,
        consumer: &str,
        count: usize,
        block: Duration,
    ) -> Result<Vec<Delivery>, QueueError>;

    /// Acknowledges entries whose fate is final; they are never handed out again.
    async fn ack(&self, entries: &[EntryId]) -> Result<(), QueueError>;

    /// Takes over up to `count` entries pending on other consumers for longer than
    /// `min_idle`, and hands them to `consumer`.
    async fn claim_idle(
        &self,
        consumer: &str,
        min_idle: Duration,
        count: usize,
    ) -> Result<Vec<Delivery>, QueueError>;

    /// Puts `job` (already carrying its new attempt count) in the retry set, due at
    /// `due_at_ms`, and acknowledges `entry`, as one atomic step.
    async fn retry_later(
        &self,
        entry: &EntryId,
        job: &Job,
        due_at_ms: u64,
    ) -> Result<(), QueueError>;

    /// Moves up to `limit` retries due at `now_ms` back into their streams; each due
    /// retry is moved exactly once even when several movers race. Returns how many moved.
    async fn move_due_retries(&self, now_ms: u64, limit: usize) -> Result<usize, QueueError>;

    /// Lets go of the acknowledged entries every dispatcher is done with, so the streams
    /// do not grow without end. Entries not yet read or not yet acknowledged stay.
    /// Returns how many were removed; a queue that frees them on acknowledgement has
    /// none to remove.
    async fn remove_done(&self) -> Result<u64, QueueError> {
        Ok(0)
    }

    /// Adds `letter` to the dead-letter stream and, when given, acknowledges `entry`, as
    /// one atomic step.
    async fn dead_letter(
        &self,
        entry: Option<&EntryId>,
        letter: &DeadLetter,
    ) -> Result<(), QueueError>;

    /// Lists up to `count` dead letters, oldest first, skipping those whose job cannot be
    /// decoded (see [`Queue::unreadable_dead_letters`]).
    async fn dead_letters(&self, count: usize) -> Result<Vec<StoredDeadLetter>, QueueError>;

    /// Lists up to `count` dead letters whose job cannot be decoded, oldest first, so an
    /// operator can inspect and remove them; [`DeadLetter`] needs a readable job.
    async fn unreadable_dead_letters(
        &self,
        count: usize,
    ) -> Result<Vec<UnreadableDeadLetter>, QueueError>;

    /// Removes dead letters by id (after a replay or a purge). Returns how many were removed.
    async fn remove_dead_letters(&self, ids: &[String]) -> Result<usize, QueueError>;

    /// Remembers for `ttl` that the provider declared `device_token` dead.
    async fn remember_dead_token(
        &self,
        service: Service,
        device_token: &str,
        ttl: Duration,
    ) -> Result<(), QueueError>;

    /// True when `device_token` was declared dead and the memory has not expired.
    async fn is_dead_token(&self, service: Service, device_token: &str)
    -> Result<bool, QueueError>;

    /// Sends `reply` to the ingest instance `instance` waiting on a job (sync-wait).
    /// Nobody listening is fine: the reply is simply not seen.
    async fn publish_reply(&self, instance: &str, reply: &JobReply) -> Result<(), QueueError>;

    /// Listens for replies addressed to `instance` until the receiver is dropped. Replies
    /// are not stored: one sent while nobody listens is lost, and the waiter times out.
    async fn subscribe_replies(
        &self,
        instance: &str,
    ) -> Result<tokio::sync::mpsc::Receiver<JobReply>, QueueError>;
}

/// A job as the `job` field of a stream entry stores it: its JSON.
pub(crate) fn encode_job(job: &Job) -> String {
    serde_json::to_string(job).expect("a Job always serializes: every map key is a string")
}

/// Reads a stored `job` field back, rejecting envelope formats this version does not know.
pub(crate) fn decode_job(raw: &str) -> Result<Job, String> {
    let job: Job = serde_json::from_str(raw).map_err(|error| error.to_string())?;
    if job.format != crate::job::JOB_FORMAT {
        return Err(format!("envelope format {} is unknown", job.format));
    }
    Ok(job)
}

/// The shard a device token's jobs go to: a stable hash (FNV-1a), the same in every
/// process and version, so one device's jobs stay in order on one stream.
pub fn shard_for(device_token: &str, shards: u16) -> u16 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in device_token.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    (hash % u64::from(shards.max(1))) as u16
}

//! The Redis Streams backend (redis-rs): a stream per shard read by one consumer group, a
//! sorted set for retries, a dead-letter stream, and expiring keys for idempotency and dead
//! tokens. It uses the Redis 7.0 command set only (ElastiCache, Debian).

mod dead_letters;
mod read;
mod replies;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ::redis::aio::ConnectionManager;
use ::redis::streams::StreamInfoGroupsReply;
use ::redis::{Client, RedisError, Script};
use async_trait::async_trait;
use sha2::{Digest, Sha256};

use super::{
    AppendOutcome, Backlog, DeadLetter, Delivery, EntryId, Queue, QueueError, QueueOptions,
    StoredDeadLetter, UnreadableDeadLetter, encode_job, shard_for,
};
use crate::job::Job;
use crate::notification::Service;
use crate::reply::JobReply;

/// Appends a job once: nothing when a third key (the target's dead-token key) exists,
/// else sets the job id's idempotency key and, only when it was not set, appends the job.
/// KEYS: idempotency key, stream, optionally the dead-token key. ARGV: TTL in ms, job JSON.
/// Returns 1 if appended, 0 if the job id was appended before, 2 if the token is dead.
const APPEND_SCRIPT: &str = r"
if KEYS[3] and redis.call('EXISTS', KEYS[3]) == 1 then
  return 2
end
if redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then
  redis.call('XADD', KEYS[2], '*', 'job', ARGV[2])
  return 1
end
return 0
";

/// Moves due retries (members `{shard}:{job JSON}`) back to their streams. A member is
/// appended only by the mover whose ZREM removed it, so racing movers never duplicate it.
/// KEYS: retry set, then every stream by shard. ARGV: now in ms, limit.
const MOVE_RETRIES_SCRIPT: &str = r"
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
local shards = #KEYS - 1
local moved = 0
for _, member in ipairs(due) do
  if redis.call('ZREM', KEYS[1], member) == 1 then
    local colon = string.find(member, ':', 1, true)
    local shard = colon and tonumber(string.sub(member, 1, colon - 1)) or 0
    local job = colon and string.sub(member, colon + 1) or member
    redis.call('XADD', KEYS[2 + (shard % shards)], '*', 'job', job)
    moved = moved + 1
  end
end
return moved
";

/// Trims one job stream below the first entry the group may still need: its oldest
/// pending entry, else its last delivered one (kept, so the group's lag stays known to
/// Redis). Entries before that bound were all delivered and acknowledged. The trim is
/// approximate: Redis drops only whole nodes of the stream, so each call costs little
/// (a few entries before the bound stay until the next call).
/// KEYS: the stream. ARGV: the group. Returns how many entries were removed.
const REMOVE_DONE_SCRIPT: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
local bound
for _, group in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local fields = {}
  for i = 1, #group, 2 do
    fields[group[i]] = group[i + 1]
  end
  if fields['name'] == ARGV[1] then
    bound = fields['last-delivered-id']
  end
end
if not bound then
  return 0
end
local oldest_pending = redis.call('XPENDING', KEYS[1], ARGV[1])[2]
if oldest_pending then
  bound = oldest_pending
end
return redis.call('XTRIM', KEYS[1], 'MINID', '~', bound)
";

/// How many waiting entries one backlog call reads per shard when Redis cannot say the
/// group's lag itself; more are reported as this many.
const BACKLOG_SCAN_LIMIT: usize = 1_000;

/// The queue on a Redis server; clones share the connections and the read positions.
#[derive(Clone)]
pub struct RedisQueue {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    /// Shared by every non-blocking command; it reconnects on its own after a drop.
    manager: ConnectionManager,
    options: QueueOptions,
    keys: Keys,
    append: Script,
    move_retries: Script,
    remove_done: Script,
    /// Read state per consumer name (see [`read::Reader`]).
    readers: Mutex<HashMap<String, Arc<tokio::sync::Mutex<read::Reader>>>>,
}

/// The key names of one queue, from its prefix (DESIGN.md section 3).
struct Keys {
    prefix: String,
    streams: Vec<String>,
    retry: String,
    dead_letters: String,
}

impl Keys {
    fn new(options: &QueueOptions) -> Self {
        let prefix = &options.prefix;
        Keys {
            prefix: prefix.clone(),
            streams: (0..options.shards.max(1))
                .map(|shard| format!("{prefix}:jobs:{shard}"))
                .collect(),
            retry: format!("{prefix}:retry"),
            dead_letters: format!("{prefix}:dlq"),
        }
    }

    fn replies(&self, instance: &str) -> String {
        format!("{}:replies:{instance}", self.prefix)
    }

    fn idempotency(&self, job: &Job) -> String {
        format!("{}:idem:{}", self.prefix, job.id)
    }

    /// Tokens are stored hashed, so the key space holds no device token in clear.
    fn dead_token(&self, service: Service, device_token: &str) -> String {
        let digest = hex::encode(Sha256::digest(device_token.as_bytes()));
        format!("{}:dead:{}:{digest}", self.prefix, service.as_str())
    }
}

impl RedisQueue {
    /// Connects to the Redis at `url` (`redis://` or `rediss://`).
    ///
    /// # Errors
    ///
    /// A bad URL or a server that does not answer.
    pub async fn connect(url: &str, options: QueueOptions) -> Result<Self, QueueError> {
        let client = Client::open(url)?;
        let manager = ConnectionManager::new(client.clone()).await?;
        let keys = Keys::new(&options);
        Ok(RedisQueue {
            inner: Arc::new(Inner {
                client,
                manager,
                options,
                keys,
                append: Script::new(APPEND_SCRIPT),
                move_retries: Script::new(MOVE_RETRIES_SCRIPT),
                remove_done: Script::new(REMOVE_DONE_SCRIPT),
                readers: Mutex::default(),
            }),
        })
    }

    fn connection(&self) -> ConnectionManager {
        self.inner.manager.clone()
    }

    fn group(&self) -> &str {
        &self.inner.options.group
    }

    fn shard_count(&self) -> u16 {
        self.inner.keys.streams.len() as u16
    }

    fn stream_key(&self, shard: u16) -> Option<&str> {
        self.inner
            .keys
            .streams
            .get(usize::from(shard))
            .map(String::as_str)
    }

    /// The stream holding `entry`, or why this queue has none.
    fn stream_of(&self, entry: &EntryId) -> Result<&str, QueueError> {
        self.stream_key(entry.shard)
            .ok_or_else(|| QueueError::UnknownEntry(format!("{}/{}", entry.shard, entry.id)))
    }

    /// Runs the append script once; `dead_token` is the target's dead-token key when
    /// a dead token should stop the append.
    async fn append_once(
        &self,
        key: &str,
        stream: &str,
        dead_token: Option<&str>,
        raw: &str,
    ) -> Result<AppendOutcome, RedisError> {
        let ttl_ms = self.inner.options.idempotency_ttl.as_millis().max(1) as u64;
        let mut invocation = self.inner.append.key(key);
        invocation.key(stream);
        if let Some(dead_token) = dead_token {
            invocation.key(dead_token);
        }
        let outcome: i64 = invocation
            .arg(ttl_ms)
            .arg(raw)
            .invoke_async(&mut self.connection())
            .await?;
        Ok(match outcome {
            1 => AppendOutcome::Appended,
            2 => AppendOutcome::DeadToken,
            _ => AppendOutcome::AlreadyAppended,
        })
    }

    /// Appends `job`, checking its target's dead-token memory first when `check_dead`.
    async fn append_checked(
        &self,
        job: &Job,
        check_dead: bool,
    ) -> Result<AppendOutcome, QueueError> {
        let key = self.inner.keys.idempotency(job);
        let target = &job.notification.target;
        let shard = shard_for(&target.device_token, self.shard_count());
        let stream = self
            .stream_key(shard)
            .expect("shard_for always answers a shard below the shard count");
        let dead_token = check_dead.then(|| {
            self.inner
                .keys
                .dead_token(target.service, &target.device_token)
        });
        let raw = encode_job(job);

        match self
            .append_once(&key, stream, dead_token.as_deref(), &raw)
            .await
        {
            Err(error) if is_connection_failure(&error) => {
                tracing::warn!(%error, job_id = %job.id, "append failed on the connection, retrying once");
                Ok(self
                    .append_once(&key, stream, dead_token.as_deref(), &raw)
                    .await?)
            }
            outcome => Ok(outcome?),
        }
    }
}

/// True for failures of the connection rather than of the command: I/O errors and the
/// errors on which the connection manager replaces its connection.
fn is_connection_failure(error: &RedisError) -> bool {
    error.is_io_error()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
        || error.is_unrecoverable_error()
}

#[async_trait]
impl Queue for RedisQueue {
    fn kind(&self) -> &'static str {
        "redis"
    }

    async fn ping(&self) -> Result<(), QueueError> {
        let _: String = ::redis::cmd("PING")
            .query_async(&mut self.connection())
            .await?;
        Ok(())
    }

    /// Retried once when the connection dropped: the connection manager reconnects but
    /// does not replay, and the idempotency key makes a repeat harmless. When the drop
    /// lost only the reply, the retry finds the job appended and answers `false`.
    async fn append(&self, job: &Job) -> Result<bool, QueueError> {
        let outcome = self.append_checked(job, false).await?;
        Ok(outcome == AppendOutcome::Appended)
    }

    /// One script run: the dead-token check and the append in one round trip.
    async fn append_unless_dead(&self, job: &Job) -> Result<AppendOutcome, QueueError> {
        self.append_checked(job, true).await
    }

    async fn backlog(&self) -> Result<Backlog, QueueError> {
        let mut connection = self.connection();
        let mut backlog = Backlog {
            retrying: ::redis::cmd("ZCARD")
                .arg(&self.inner.keys.retry)
                .query_async(&mut connection)
                .await?,
            dead_letters: ::redis::cmd("XLEN")
                .arg(&self.inner.keys.dead_letters)
                .query_async(&mut connection)
                .await?,
            ..Backlog::default()
        };
        for stream in &self.inner.keys.streams {
            let groups: Result<StreamInfoGroupsReply, RedisError> = ::redis::cmd("XINFO")
                .arg("GROUPS")
                .arg(stream)
                .query_async(&mut connection)
                .await;
            // A stream not created yet (no append, no group) holds nothing.
            let groups = match groups {
                Err(error) if error.detail().is_some_and(|d| d.contains("no such key")) => continue,
                other => other?,
            };
            let group = groups
                .groups
                .iter()
                .find(|group| group.name == self.group());
            let last_delivered = group.map_or("0-0", |group| group.last_delivered_id.as_str());
            let lag = group.and_then(|group| group.lag);
            backlog.in_progress += group.map_or(0, |group| group.pending as u64);
            // Entries after the group's last delivered id are waiting; their ids begin
            // with the append time in ms. Only when Redis cannot tell the lag are they
            // counted here, up to a limit.
            let scan = if lag.is_some() { 1 } else { BACKLOG_SCAN_LIMIT };
            let waiting: Vec<(String, HashMap<String, String>)> = ::redis::cmd("XRANGE")
                .arg(stream)
                .arg(format!("({last_delivered}"))
                .arg("+")
                .arg("COUNT")
                .arg(scan)
                .query_async(&mut connection)
                .await?;
            backlog.waiting += lag.unwrap_or(waiting.len()) as u64;
            let oldest = waiting
                .first()
                .and_then(|(id, _)| id.split('-').next()?.parse::<u64>().ok());
            if let Some(at) = oldest {
                backlog.oldest_waiting_at_ms = Some(
                    backlog
                        .oldest_waiting_at_ms
                        .map_or(at, |known| known.min(at)),
                );
            }
        }
        Ok(backlog)
    }

    async fn ensure_group(&self) -> Result<(), QueueError> {
        let mut connection = self.connection();
        for stream in &self.inner.keys.streams {
            let created: Result<(), RedisError> = ::redis::cmd("XGROUP")
                .arg("CREATE")
                .arg(stream)
                .arg(self.group())
                .arg("0")
                .arg("MKSTREAM")
                .query_async(&mut connection)
                .await;
            match created {
                Err(error) if error.code() == Some("BUSYGROUP") => {}
                other => other?,
            }
        }
        Ok(())
    }

    async fn read(
        &self,
        consumer: &str,
        count: usize,
        block: Duration,
    ) -> Result<Vec<Delivery>, QueueError> {
        self.read_for(consumer, count, block).await
    }

    async fn ack(&self, entries: &[EntryId]) -> Result<(), QueueError> {
        let mut by_stream: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for entry in entries {
            by_stream
                .entry(self.stream_of(entry)?)
                .or_default()
                .push(&entry.id);
        }
        let mut connection = self.connection();
        for (stream, ids) in by_stream {
            let _: usize = ::redis::cmd("XACK")
                .arg(stream)
                .arg(self.group())
                .arg(ids)
                .query_async(&mut connection)
                .await?;
        }
        Ok(())
    }

    async fn claim_idle(
        &self,
        consumer: &str,
        min_idle: Duration,
        count: usize,
    ) -> Result<Vec<Delivery>, QueueError> {
        self.claim_idle_for(consumer, min_idle, count).await
    }

    async fn retry_later(
        &self,
        entry: &EntryId,
        job: &Job,
        due_at_ms: u64,
    ) -> Result<(), QueueError> {
        let stream = self.stream_of(entry)?;
        let shard = shard_for(&job.notification.target.device_token, self.shard_count());
        let member = format!("{shard}:{}", encode_job(job));
        ::redis::pipe()
            .atomic()
            .cmd("ZADD")
            .arg(&self.inner.keys.retry)
            .arg(due_at_ms)
            .arg(member)
            .ignore()
            .cmd("XACK")
            .arg(stream)
            .arg(self.group())
            .arg(&entry.id)
            .ignore()
            .exec_async(&mut self.connection())
            .await?;
        Ok(())
    }

    async fn move_due_retries(&self, now_ms: u64, limit: usize) -> Result<usize, QueueError> {
        if limit == 0 {
            return Ok(0);
        }
        let keys = &self.inner.keys;
        let mut invocation = self.inner.move_retries.key(&keys.retry);
        for stream in &keys.streams {
            invocation.key(stream);
        }
        let moved: usize = invocation
            .arg(now_ms)
            .arg(limit)
            .invoke_async(&mut self.connection())
            .await?;
        Ok(moved)
    }

    async fn remove_done(&self) -> Result<u64, QueueError> {
        let mut removed = 0;
        for stream in &self.inner.keys.streams {
            let trimmed: u64 = self
                .inner
                .remove_done
                .key(stream)
                .arg(self.group())
                .invoke_async(&mut self.connection())
                .await?;
            removed += trimmed;
        }
        Ok(removed)
    }

    async fn dead_letter(
        &self,
        entry: Option<&EntryId>,
        letter: &DeadLetter,
    ) -> Result<(), QueueError> {
        self.add_dead_letter(entry, letter).await
    }

    async fn dead_letters(&self, count: usize) -> Result<Vec<StoredDeadLetter>, QueueError> {
        self.list_dead_letters(count).await
    }

    async fn unreadable_dead_letters(
        &self,
        count: usize,
    ) -> Result<Vec<UnreadableDeadLetter>, QueueError> {
        self.list_unreadable_dead_letters(count).await
    }

    async fn remove_dead_letters(&self, ids: &[String]) -> Result<usize, QueueError> {
        self.delete_dead_letters(ids).await
    }

    /// A zero `ttl` forgets the token.
    async fn remember_dead_token(
        &self,
        service: Service,
        device_token: &str,
        ttl: Duration,
    ) -> Result<(), QueueError> {
        let key = self.inner.keys.dead_token(service, device_token);
        let mut connection = self.connection();
        if ttl.is_zero() {
            ::redis::cmd("DEL")
                .arg(&key)
                .exec_async(&mut connection)
                .await?;
        } else {
            let ttl_ms = ttl.as_millis().max(1) as u64;
            ::redis::cmd("SET")
                .arg(&key)
                .arg("1")
                .arg("PX")
                .arg(ttl_ms)
                .exec_async(&mut connection)
                .await?;
        }
        Ok(())
    }

    async fn is_dead_token(
        &self,
        service: Service,
        device_token: &str,
    ) -> Result<bool, QueueError> {
        let key = self.inner.keys.dead_token(service, device_token);
        let exists: bool = ::redis::cmd("EXISTS")
            .arg(key)
            .query_async(&mut self.connection())
            .await?;
        Ok(exists)
    }

    async fn publish_reply(&self, instance: &str, reply: &JobReply) -> Result<(), QueueError> {
        let payload = serde_json::to_string(reply).expect("a reply always serializes");
        let _listeners: i64 = ::redis::cmd("PUBLISH")
            .arg(self.inner.keys.replies(instance))
            .arg(payload)
            .query_async(&mut self.connection())
            .await?;
        Ok(())
    }

    async fn subscribe_replies(
        &self,
        instance: &str,
    ) -> Result<tokio::sync::mpsc::Receiver<JobReply>, QueueError> {
        let channel = self.inner.keys.replies(instance);
        replies::subscribe(self.inner.client.clone(), channel).await
    }
}

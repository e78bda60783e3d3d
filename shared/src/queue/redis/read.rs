//! Reading and claiming on Redis: each consumer first re-reads its own pending entries,
//! then blocks for new ones on a connection of its own, which has no response timeout.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use ::redis::aio::MultiplexedConnection;
use ::redis::streams::{StreamClaimReply, StreamId, StreamPendingCountReply, StreamReadReply};
use ::redis::{AsyncConnectionConfig, Cmd, RedisError};
use tokio::time::Instant;

use super::RedisQueue;
use crate::queue::{Delivery, EntryId, QueueError, decode_job};

/// How long a blocking read may overrun its block time before it counts as hung.
const BLOCK_GRACE: Duration = Duration::from_secs(10);

/// How long opening a blocking reader's connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// One consumer's read state, kept between reads.
pub(super) struct Reader {
    /// Per shard: `Some(id)` while re-reading the consumer's own pending entries after
    /// `id`, `None` once it reads new ones (`>`).
    positions: Vec<Option<String>>,
    /// Entries already read beyond the count asked for (Redis applies COUNT per stream),
    /// handed out first next time.
    surplus: VecDeque<Delivery>,
    /// The consumer's connection for `XREADGROUP ... BLOCK`, opened on first use.
    blocking: Option<MultiplexedConnection>,
    /// Set while a read runs: still set at the next read means the caller dropped the
    /// last one midway (at shutdown, say), maybe after the server handed entries out.
    reading: bool,
    /// Where the next read starts when it can ask fewer shards than there are.
    rotation: usize,
}

impl Reader {
    fn new(shards: u16) -> Self {
        Reader {
            positions: vec![Some("0".to_owned()); usize::from(shards)],
            surplus: VecDeque::new(),
            blocking: None,
            reading: false,
            rotation: 0,
        }
    }

    /// Starts over from the own pending entries: after a failed or dropped read, entries
    /// the server handed out may never have reached the caller.
    fn restart(&mut self) {
        self.positions.fill(Some("0".to_owned()));
        self.surplus.clear();
        self.blocking = None;
    }

    /// The streams one `XREADGROUP` asks and the COUNT for each, so that it hands out at
    /// most `count` entries in all: Redis applies COUNT per stream, and an entry it hands
    /// out stays pending on this consumer even if the caller stops before taking it.
    /// Asked for fewer entries than there are shards, it takes the shards in turn.
    fn spread(&mut self, streams: Vec<(u16, String)>, count: usize) -> (Vec<(u16, String)>, usize) {
        if streams.len() <= count {
            let per_stream = count / streams.len().max(1);
            return (streams, per_stream);
        }
        let start = self.rotation % streams.len();
        self.rotation = start + count;
        let asked = streams.iter().cycle().skip(start).take(count).cloned();
        (asked.collect(), 1)
    }

    fn take(&mut self, count: usize) -> Vec<Delivery> {
        let count = count.min(self.surplus.len());
        self.surplus.drain(..count).collect()
    }
}

impl RedisQueue {
    fn reader(&self, consumer: &str) -> Arc<tokio::sync::Mutex<Reader>> {
        let mut readers = self
            .inner
            .readers
            .lock()
            .expect("no code panics while holding the readers lock");
        let shards = self.shard_count();
        Arc::clone(
            readers
                .entry(consumer.to_owned())
                .or_insert_with(|| Arc::new(tokio::sync::Mutex::new(Reader::new(shards)))),
        )
    }

    pub(super) async fn read_for(
        &self,
        consumer: &str,
        count: usize,
        block: Duration,
    ) -> Result<Vec<Delivery>, QueueError> {
        if count == 0 {
            return Ok(Vec::new());
        }
        let reader = self.reader(consumer);
        let mut reader = reader.lock().await;
        if reader.reading {
            reader.restart();
        }
        reader.reading = true;
        let read = self.read_with(&mut reader, consumer, count, block).await;
        if let Err(error) = &read {
            tracing::debug!(%error, consumer, "read failed; will re-read own pending entries");
            reader.restart();
        }
        reader.reading = false;
        read
    }

    async fn read_with(
        &self,
        reader: &mut Reader,
        consumer: &str,
        count: usize,
        block: Duration,
    ) -> Result<Vec<Delivery>, QueueError> {
        let now = Instant::now();
        let deadline = now
            .checked_add(block)
            .unwrap_or_else(|| now + Duration::from_secs(365 * 24 * 3600));
        loop {
            if !reader.surplus.is_empty() {
                return Ok(reader.take(count));
            }

            let pending: Vec<(u16, String)> = (0..self.shard_count())
                .filter_map(|shard| {
                    let after = reader.positions[usize::from(shard)].clone()?;
                    Some((shard, after))
                })
                .collect();
            if !pending.is_empty() {
                let (asked, per_stream) = reader.spread(pending, count);
                self.read_own_pending(reader, consumer, per_stream, &asked)
                    .await?;
                continue;
            }

            let block_ms = deadline
                .saturating_duration_since(Instant::now())
                .as_millis() as u64;
            let streams = (0..self.shard_count())
                .map(|shard| (shard, ">".to_owned()))
                .collect();
            let (asked, per_stream) = reader.spread(streams, count);
            let read = self.read_new(reader, consumer, per_stream, &asked, block_ms);
            let Some(reply) = read.await? else {
                return Ok(Vec::new());
            };
            for stream in reply.keys {
                let Some(shard) = self.shard_of_key(&stream.key) else {
                    continue;
                };
                for entry in stream.ids {
                    reader.surplus.extend(self.accept(shard, entry, 1).await?);
                }
            }
            if reader.surplus.is_empty() && Instant::now() >= deadline {
                return Ok(Vec::new());
            }
        }
    }

    /// One `XREADGROUP` of the consumer's own pending entries after the given positions;
    /// a shard with none left switches to new entries.
    async fn read_own_pending(
        &self,
        reader: &mut Reader,
        consumer: &str,
        count: usize,
        pending: &[(u16, String)],
    ) -> Result<(), QueueError> {
        let command = self.xreadgroup(consumer, count, None, pending);
        let reply: Option<StreamReadReply> = command.query_async(&mut self.connection()).await?;
        let mut by_shard: HashMap<u16, Vec<StreamId>> = HashMap::new();
        for stream in reply.map(|reply| reply.keys).unwrap_or_default() {
            if let Some(shard) = self.shard_of_key(&stream.key) {
                by_shard.entry(shard).or_default().extend(stream.ids);
            }
        }

        for (shard, _) in pending {
            let entries = by_shard.remove(shard).unwrap_or_default();
            let Some(last) = entries.last() else {
                reader.positions[usize::from(*shard)] = None;
                continue;
            };
            reader.positions[usize::from(*shard)] = Some(last.id.clone());
            let times = self.times_delivered(*shard, consumer, &entries).await?;
            for entry in entries {
                let times_delivered = times.get(&entry.id).copied().unwrap_or(1);
                reader
                    .surplus
                    .extend(self.accept(*shard, entry, times_delivered).await?);
            }
        }
        Ok(())
    }

    /// One `XREADGROUP ... >` on the given shards: on the consumer's own connection
    /// when it blocks (the shared one times out after 500 ms), without waiting otherwise.
    async fn read_new(
        &self,
        reader: &mut Reader,
        consumer: &str,
        count: usize,
        positions: &[(u16, String)],
        block_ms: u64,
    ) -> Result<Option<StreamReadReply>, QueueError> {
        if block_ms == 0 {
            let command = self.xreadgroup(consumer, count, None, positions);
            return Ok(command.query_async(&mut self.connection()).await?);
        }

        let command = self.xreadgroup(consumer, count, Some(block_ms), positions);
        // Taken out while in use: a connection whose read failed is not put back.
        let mut connection = match reader.blocking.take() {
            Some(connection) => connection,
            None => {
                let config = AsyncConnectionConfig::new()
                    .set_response_timeout(None)
                    .set_connection_timeout(Some(CONNECT_TIMEOUT));
                let client = &self.inner.client;
                client
                    .get_multiplexed_async_connection_with_config(&config)
                    .await?
            }
        };
        let limit = Duration::from_millis(block_ms) + BLOCK_GRACE;
        match tokio::time::timeout(limit, command.query_async(&mut connection)).await {
            Ok(reply) => {
                let reply = reply?;
                reader.blocking = Some(connection);
                Ok(reply)
            }
            Err(_) => Err(QueueError::Redis(RedisError::from(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "a blocking read got no answer long after its block time",
            )))),
        }
    }

    fn xreadgroup(
        &self,
        consumer: &str,
        count: usize,
        block_ms: Option<u64>,
        positions: &[(u16, String)],
    ) -> Cmd {
        let mut command = ::redis::cmd("XREADGROUP");
        command
            .arg("GROUP")
            .arg(self.group())
            .arg(consumer)
            .arg("COUNT")
            .arg(count);
        if let Some(block_ms) = block_ms {
            command.arg("BLOCK").arg(block_ms);
        }
        command.arg("STREAMS");
        for (shard, _) in positions {
            command.arg(self.stream_key(*shard));
        }
        for (_, position) in positions {
            command.arg(position);
        }
        command
    }

    fn shard_of_key(&self, key: &str) -> Option<u16> {
        let index = self
            .inner
            .keys
            .streams
            .iter()
            .position(|stream| stream == key)?;
        Some(index as u16)
    }

    /// How often each of `entries` (ascending, pending on `consumer`) has been handed out.
    async fn times_delivered(
        &self,
        shard: u16,
        consumer: &str,
        entries: &[StreamId],
    ) -> Result<HashMap<String, u64>, QueueError> {
        let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
            return Ok(HashMap::new());
        };
        let reply: StreamPendingCountReply = ::redis::cmd("XPENDING")
            .arg(self.stream_key(shard))
            .arg(self.group())
            .arg(&first.id)
            .arg(&last.id)
            .arg(entries.len())
            .arg(consumer)
            .query_async(&mut self.connection())
            .await?;
        Ok(reply
            .ids
            .into_iter()
            .map(|pending| (pending.id, pending.times_delivered as u64))
            .collect())
    }

    /// Turns a read entry into a delivery. An entry deleted from the stream is just
    /// acknowledged; one that cannot be decoded is dead-lettered as `corrupt`.
    async fn accept(
        &self,
        shard: u16,
        entry: StreamId,
        times_delivered: u64,
    ) -> Result<Option<Delivery>, QueueError> {
        let entry_id = EntryId {
            shard,
            id: entry.id.clone(),
        };
        if entry.is_empty() {
            tracing::warn!(shard, entry = %entry.id, "pending entry no longer in its stream, acknowledged");
            self.ack_one(&entry_id).await?;
            return Ok(None);
        }
        let Some(raw) = entry.get::<String>("job") else {
            let error = "the entry has no job field";
            self.add_corrupt_dead_letter(&entry_id, "", error).await?;
            return Ok(None);
        };
        match decode_job(&raw) {
            Ok(job) => Ok(Some(Delivery {
                entry: entry_id,
                job,
                times_delivered,
            })),
            Err(error) => {
                self.add_corrupt_dead_letter(&entry_id, &raw, &error)
                    .await?;
                Ok(None)
            }
        }
    }

    async fn ack_one(&self, entry: &EntryId) -> Result<(), QueueError> {
        let _: usize = ::redis::cmd("XACK")
            .arg(self.stream_of(entry)?)
            .arg(self.group())
            .arg(&entry.id)
            .query_async(&mut self.connection())
            .await?;
        Ok(())
    }

    pub(super) async fn claim_idle_for(
        &self,
        consumer: &str,
        min_idle: Duration,
        count: usize,
    ) -> Result<Vec<Delivery>, QueueError> {
        let min_idle_ms = min_idle.as_millis() as u64;
        let mut deliveries = Vec::new();
        for shard in 0..self.shard_count() {
            if deliveries.len() >= count {
                break;
            }
            let wanted = count - deliveries.len();
            let ids = self
                .idle_of_others(shard, consumer, min_idle_ms, wanted)
                .await?;
            if ids.is_empty() {
                continue;
            }
            // XCLAIM checks the idle time again, so of two racing claimers only one wins.
            let claimed: StreamClaimReply = ::redis::cmd("XCLAIM")
                .arg(self.stream_key(shard))
                .arg(self.group())
                .arg(consumer)
                .arg(min_idle_ms)
                .arg(&ids)
                .query_async(&mut self.connection())
                .await?;
            let times = self.times_delivered(shard, consumer, &claimed.ids).await?;
            for entry in claimed.ids {
                let times_delivered = times.get(&entry.id).copied().unwrap_or(1);
                deliveries.extend(self.accept(shard, entry, times_delivered).await?);
            }
        }
        Ok(deliveries)
    }

    /// Up to `wanted` ids pending on consumers other than `consumer` for `min_idle_ms`.
    async fn idle_of_others(
        &self,
        shard: u16,
        consumer: &str,
        min_idle_ms: u64,
        wanted: usize,
    ) -> Result<Vec<String>, QueueError> {
        let page_size = wanted.max(32);
        let mut start = "-".to_owned();
        let mut ids = Vec::new();
        loop {
            let page: StreamPendingCountReply = ::redis::cmd("XPENDING")
                .arg(self.stream_key(shard))
                .arg(self.group())
                .arg("IDLE")
                .arg(min_idle_ms)
                .arg(&start)
                .arg("+")
                .arg(page_size)
                .query_async(&mut self.connection())
                .await?;
            let page_len = page.ids.len();
            for pending in page.ids {
                start = format!("({}", pending.id);
                if pending.consumer != consumer && ids.len() < wanted {
                    ids.push(pending.id);
                }
            }
            if ids.len() >= wanted || page_len < page_size {
                return Ok(ids);
            }
        }
    }
}

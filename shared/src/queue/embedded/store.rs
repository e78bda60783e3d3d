//! The embedded queue's state: streams with one consumer group's pending entries, the retry
//! set, the dead letters and the expiring memories, all behind the queue's one lock.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fmt;
use std::ops::Bound;
use std::time::Duration;

use tokio::time::Instant;

use crate::job::{Job, now_ms};
use crate::notification::Service;
use crate::queue::{
    Backlog, DeadLetter, Delivery, EntryId, QueueError, QueueOptions, StoredDeadLetter,
    UnreadableDeadLetter, decode_job, encode_job, shard_for,
};

/// A stream entry id as Redis writes it: milliseconds and a sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct EntryKey(u64, u64);

impl EntryKey {
    /// Lower than every entry, like Redis's `0`.
    pub(super) const ZERO: EntryKey = EntryKey(0, 0);

    fn parse(id: &str) -> Option<EntryKey> {
        let (millis, sequence) = id.split_once('-')?;
        Some(EntryKey(millis.parse().ok()?, sequence.parse().ok()?))
    }
}

impl fmt::Display for EntryKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.0, self.1)
    }
}

/// Hands out increasing entry ids, as `XADD *` does.
#[derive(Default)]
struct IdClock {
    last: Option<EntryKey>,
}

impl IdClock {
    fn next(&mut self) -> EntryKey {
        let now = now_ms();
        let key = match self.last {
            Some(EntryKey(millis, sequence)) if millis >= now => EntryKey(millis, sequence + 1),
            _ => EntryKey(now, 0),
        };
        self.last = Some(key);
        key
    }
}

/// An entry handed out and not yet acknowledged.
struct Pending {
    consumer: String,
    times_delivered: u64,
    delivered_at: Instant,
}

/// One shard: its entries (until acknowledged) and the group's state on it.
#[derive(Default)]
struct Stream {
    entries: BTreeMap<EntryKey, String>,
    /// The group's last delivered id: entries after it are new.
    last_delivered: Option<EntryKey>,
    pending: BTreeMap<EntryKey, Pending>,
    clock: IdClock,
}

enum DeadLetterRecord {
    Readable(Box<DeadLetter>),
    Unreadable(UnreadableDeadLetter),
}

/// Everything the embedded queue holds.
pub(super) struct Store {
    streams: Vec<Stream>,
    /// Retries by due time and job JSON (unique per job and attempt), with their shard.
    retries: BTreeMap<(u64, String), u16>,
    retry_due: HashMap<String, u64>,
    dead_letters: BTreeMap<EntryKey, DeadLetterRecord>,
    dead_letter_clock: IdClock,
    idempotency_ttl: Duration,
    appended_ids: HashSet<String>,
    /// Appended ids in expiry order (one TTL for all, so insertion order).
    appended_expiry: VecDeque<(Instant, String)>,
    dead_tokens: HashMap<(Service, String), Instant>,
    purge_dead_tokens_at: usize,
}

impl Store {
    pub(super) fn new(options: &QueueOptions) -> Self {
        Store {
            streams: (0..options.shards.max(1))
                .map(|_| Stream::default())
                .collect(),
            retries: BTreeMap::new(),
            retry_due: HashMap::new(),
            dead_letters: BTreeMap::new(),
            dead_letter_clock: IdClock::default(),
            idempotency_ttl: options.idempotency_ttl,
            appended_ids: HashSet::new(),
            appended_expiry: VecDeque::new(),
            dead_tokens: HashMap::new(),
            purge_dead_tokens_at: 1024,
        }
    }

    pub(super) fn backlog(&self) -> Backlog {
        let mut backlog = Backlog {
            retrying: self.retries.len() as u64,
            dead_letters: self.dead_letters.len() as u64,
            ..Backlog::default()
        };
        for stream in &self.streams {
            let after = stream.last_delivered.unwrap_or(EntryKey::ZERO);
            let mut waiting = stream
                .entries
                .range((Bound::Excluded(after), Bound::Unbounded))
                .map(|(key, _)| key);
            if let Some(EntryKey(millis, _)) = waiting.next() {
                backlog.oldest_waiting_at_ms = Some(
                    backlog
                        .oldest_waiting_at_ms
                        .map_or(*millis, |oldest| oldest.min(*millis)),
                );
                backlog.waiting += 1 + waiting.count() as u64;
            }
            backlog.in_progress += stream.pending.len() as u64;
        }
        backlog
    }

    pub(super) fn shard_count(&self) -> u16 {
        self.streams.len() as u16
    }

    /// Appends `job` unless its id was appended within the idempotency window.
    pub(super) fn append_job(&mut self, job: &Job) -> Result<bool, QueueError> {
        let now = Instant::now();
        while let Some((expiry, _)) = self.appended_expiry.front()
            && *expiry <= now
        {
            if let Some((_, id)) = self.appended_expiry.pop_front() {
                self.appended_ids.remove(&id);
            }
        }
        if !self.appended_ids.insert(job.id.0.clone()) {
            return Ok(false);
        }
        self.appended_expiry
            .push_back((now + self.idempotency_ttl, job.id.0.clone()));

        let shard = shard_for(&job.notification.target.device_token, self.shard_count());
        self.append_entry(shard, encode_job(job))?;
        Ok(true)
    }

    /// Adds an entry holding `raw` as its job to `shard`'s stream.
    pub(super) fn append_entry(&mut self, shard: u16, raw: String) -> Result<(), QueueError> {
        let stream = self
            .streams
            .get_mut(usize::from(shard))
            .ok_or_else(|| QueueError::UnknownEntry(format!("shard {shard}")))?;
        let key = stream.clock.next();
        stream.entries.insert(key, raw);
        Ok(())
    }

    /// Re-reads `consumer`'s own pending entries after the positions in `cursor`, oldest
    /// first; a shard with none left switches to new entries (`None`).
    pub(super) fn read_own_pending(
        &mut self,
        consumer: &str,
        count: usize,
        cursor: &mut [Option<EntryKey>],
    ) -> Vec<Delivery> {
        let mut found = Vec::new();
        for (shard, position) in cursor.iter_mut().enumerate() {
            let Some(after) = *position else { continue };
            let own = self.streams[shard]
                .pending
                .range((Bound::Excluded(after), Bound::Unbounded))
                .filter(|(_, pending)| pending.consumer == consumer)
                .map(|(key, _)| (*key, shard as u16))
                .take(count);
            let before = found.len();
            found.extend(own);
            if found.len() == before {
                *position = None;
            }
        }
        found.sort();
        found.truncate(count);

        let mut deliveries = Vec::new();
        for (key, shard) in found {
            cursor[usize::from(shard)] = Some(key);
            deliveries.extend(self.hand_out(shard, key, consumer));
        }
        deliveries
    }

    /// Hands out up to `count` entries no consumer has seen, oldest first across shards.
    pub(super) fn read_new(&mut self, consumer: &str, count: usize) -> Vec<Delivery> {
        let mut found = Vec::new();
        for (shard, stream) in self.streams.iter().enumerate() {
            let after = stream.last_delivered.unwrap_or(EntryKey::ZERO);
            let fresh = stream
                .entries
                .range((Bound::Excluded(after), Bound::Unbounded))
                .map(|(key, _)| (*key, shard as u16))
                .take(count);
            found.extend(fresh);
        }
        found.sort();
        found.truncate(count);

        let mut deliveries = Vec::new();
        for (key, shard) in found {
            let stream = &mut self.streams[usize::from(shard)];
            stream.last_delivered = Some(key);
            stream.pending.insert(
                key,
                Pending {
                    consumer: consumer.to_owned(),
                    times_delivered: 0,
                    delivered_at: Instant::now(),
                },
            );
            deliveries.extend(self.hand_out(shard, key, consumer));
        }
        deliveries
    }

    /// Takes over entries other consumers left pending for at least `min_idle`.
    pub(super) fn claim_idle(
        &mut self,
        consumer: &str,
        min_idle: Duration,
        count: usize,
    ) -> Vec<Delivery> {
        let now = Instant::now();
        let mut found = Vec::new();
        for (shard, stream) in self.streams.iter().enumerate() {
            let idle = stream
                .pending
                .iter()
                .filter(|(_, pending)| {
                    pending.consumer != consumer
                        && now.saturating_duration_since(pending.delivered_at) >= min_idle
                })
                .map(|(key, _)| (*key, shard as u16))
                .take(count);
            found.extend(idle);
        }
        found.sort();
        found.truncate(count);

        let mut deliveries = Vec::new();
        for (key, shard) in found {
            deliveries.extend(self.hand_out(shard, key, consumer));
        }
        deliveries
    }

    /// Records one more delivery of a pending entry to `consumer` and decodes it; an
    /// entry that cannot be decoded is dead-lettered as `corrupt` and acknowledged.
    fn hand_out(&mut self, shard: u16, key: EntryKey, consumer: &str) -> Option<Delivery> {
        let stream = &mut self.streams[usize::from(shard)];
        let pending = stream.pending.get_mut(&key)?;
        pending.consumer = consumer.to_owned();
        pending.times_delivered += 1;
        pending.delivered_at = Instant::now();
        let times_delivered = pending.times_delivered;
        let raw = stream.entries.get(&key)?.clone();

        let entry = EntryId {
            shard,
            id: key.to_string(),
        };
        match decode_job(&raw) {
            Ok(job) => Some(Delivery {
                entry,
                job,
                times_delivered,
            }),
            Err(error) => {
                tracing::error!(shard, entry = %entry.id, %error, "corrupt queue entry dead-lettered");
                let letter = UnreadableDeadLetter {
                    id: String::new(),
                    raw_job: raw,
                    reason: "corrupt".to_owned(),
                    error,
                    failed_at_ms: now_ms(),
                };
                self.insert_dead_letter(DeadLetterRecord::Unreadable(letter));
                self.ack_key(shard, key);
                None
            }
        }
    }

    /// The key of `entry`, or why no stream of this queue can hold it.
    pub(super) fn check_entry(&self, entry: &EntryId) -> Result<EntryKey, QueueError> {
        let unknown = || QueueError::UnknownEntry(format!("{}/{}", entry.shard, entry.id));
        if usize::from(entry.shard) >= self.streams.len() {
            return Err(unknown());
        }
        EntryKey::parse(&entry.id).ok_or_else(unknown)
    }

    /// Acknowledges `entry`; one that is not pending is left alone, as `XACK` does.
    pub(super) fn ack(&mut self, entry: &EntryId) -> Result<(), QueueError> {
        let key = self.check_entry(entry)?;
        self.ack_key(entry.shard, key);
        Ok(())
    }

    pub(super) fn ack_key(&mut self, shard: u16, key: EntryKey) {
        let stream = &mut self.streams[usize::from(shard)];
        if stream.pending.remove(&key).is_some() {
            // Acknowledged entries are never handed out again, so memory can let go.
            stream.entries.remove(&key);
        }
    }

    /// Puts a job's JSON in the retry set; the same JSON again only moves its due time.
    pub(super) fn schedule_retry(&mut self, raw: String, shard: u16, due_at_ms: u64) {
        if let Some(previous) = self.retry_due.insert(raw.clone(), due_at_ms) {
            self.retries.remove(&(previous, raw.clone()));
        }
        self.retries.insert((due_at_ms, raw), shard);
    }

    /// Moves up to `limit` retries due at `now_ms` back into their streams.
    pub(super) fn move_due_retries(
        &mut self,
        now_ms: u64,
        limit: usize,
    ) -> Result<usize, QueueError> {
        let mut moved = 0;
        while moved < limit {
            let Some(entry) = self.retries.first_entry() else {
                break;
            };
            if entry.key().0 > now_ms {
                break;
            }
            let ((_, raw), shard) = entry.remove_entry();
            self.retry_due.remove(&raw);
            self.append_entry(shard.min(self.shard_count() - 1), raw)?;
            moved += 1;
        }
        Ok(moved)
    }

    pub(super) fn add_dead_letter(&mut self, letter: DeadLetter) {
        self.insert_dead_letter(DeadLetterRecord::Readable(Box::new(letter)));
    }

    fn insert_dead_letter(&mut self, record: DeadLetterRecord) {
        let key = self.dead_letter_clock.next();
        self.dead_letters.insert(key, record);
    }

    pub(super) fn dead_letters(&self, count: usize) -> Vec<StoredDeadLetter> {
        self.dead_letters
            .iter()
            .filter_map(|(key, record)| match record {
                DeadLetterRecord::Readable(letter) => Some(StoredDeadLetter {
                    id: key.to_string(),
                    letter: DeadLetter::clone(letter),
                }),
                DeadLetterRecord::Unreadable(_) => None,
            })
            .take(count)
            .collect()
    }

    pub(super) fn unreadable_dead_letters(&self, count: usize) -> Vec<UnreadableDeadLetter> {
        self.dead_letters
            .iter()
            .filter_map(|(key, record)| match record {
                DeadLetterRecord::Unreadable(letter) => Some(UnreadableDeadLetter {
                    id: key.to_string(),
                    ..letter.clone()
                }),
                DeadLetterRecord::Readable(_) => None,
            })
            .take(count)
            .collect()
    }

    pub(super) fn remove_dead_letters(&mut self, ids: &[String]) -> usize {
        ids.iter()
            .filter_map(|id| EntryKey::parse(id))
            .filter(|key| self.dead_letters.remove(key).is_some())
            .count()
    }

    /// Remembers a dead token until `ttl` passes; a zero `ttl` forgets it.
    pub(super) fn remember_dead_token(&mut self, service: Service, token: &str, ttl: Duration) {
        let key = (service, token.to_owned());
        if ttl.is_zero() {
            self.dead_tokens.remove(&key);
            return;
        }
        let now = Instant::now();
        self.dead_tokens.insert(key, now + ttl);
        if self.dead_tokens.len() >= self.purge_dead_tokens_at {
            self.dead_tokens.retain(|_, expiry| *expiry > now);
            self.purge_dead_tokens_at = (self.dead_tokens.len() * 2).max(1024);
        }
    }

    pub(super) fn is_dead_token(&mut self, service: Service, token: &str) -> bool {
        let key = (service, token.to_owned());
        match self.dead_tokens.get(&key) {
            Some(expiry) if *expiry > Instant::now() => true,
            Some(_) => {
                self.dead_tokens.remove(&key);
                false
            }
            None => false,
        }
    }
}

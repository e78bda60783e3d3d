//! The queue contract: every test runs against both backends, Redis Streams on a real
//! `redis-server` (REDIS_URL or one started for this process) and the embedded one.

use std::collections::HashSet;
use std::future::Future;
use std::time::Duration;

use pushgate_shared::api::{Category, PushError};
use pushgate_shared::queue::{
    AppendOutcome, Backlog, DeadLetter, Delivery, EmbeddedQueue, Queue, QueueOptions, RedisQueue,
    shard_for,
};
use pushgate_shared::reply::{FirstAttempt, JobReply};
use pushgate_shared::{
    Alert, ApiVersion, Job, JobId, Mode, Notification, Priority, Service, Target,
};
use pushgate_testkit::redis_server::{CuttableRelay, redis_url, unique_prefix};

/// Upper bound for any one test, so a hang fails instead of stalling the run.
const HANG_GUARD: Duration = Duration::from_secs(60);

/// How one backend is set up, reopened and reached behind the queue's back.
trait Harness: Sized {
    type Queue: Queue + Clone;

    /// An empty store for the test `name`.
    async fn start(name: &str, options: QueueOptions) -> Self;

    /// A queue handle as a freshly started process gets it (no read positions kept).
    async fn open(&self) -> Self::Queue;

    /// A handle whose connections the returned relay can cut (none for in-process).
    async fn open_cuttable(&self) -> (Self::Queue, Option<CuttableRelay>);

    /// Appends an entry whose `job` field is `raw`, bypassing the job encoding.
    async fn append_raw(&self, shard: u16, raw: &str);
}

struct RedisHarness {
    url: String,
    options: QueueOptions,
    _cleanup: DeleteKeysOnDrop,
}

impl Harness for RedisHarness {
    type Queue = RedisQueue;

    async fn start(name: &str, options: QueueOptions) -> Self {
        let options = QueueOptions {
            prefix: unique_prefix(name),
            ..options
        };
        let url = redis_url();
        RedisHarness {
            _cleanup: DeleteKeysOnDrop {
                url: url.clone(),
                prefix: options.prefix.clone(),
            },
            url,
            options,
        }
    }

    async fn open(&self) -> RedisQueue {
        RedisQueue::connect(&self.url, self.options.clone())
            .await
            .expect("connecting to the test Redis")
    }

    async fn open_cuttable(&self) -> (RedisQueue, Option<CuttableRelay>) {
        let relay = CuttableRelay::start(&self.url)
            .await
            .expect("starting the relay");
        let queue = RedisQueue::connect(relay.url(), self.options.clone())
            .await
            .expect("connecting through the relay");
        (queue, Some(relay))
    }

    async fn append_raw(&self, shard: u16, raw: &str) {
        let mut connection = redis_connection(&self.url).await;
        let _: String = redis::cmd("XADD")
            .arg(format!("{}:jobs:{shard}", self.options.prefix))
            .arg("*")
            .arg("job")
            .arg(raw)
            .query_async(&mut connection)
            .await
            .expect("XADD of a raw entry");
    }
}

/// Deletes a test's keys when dropped, so a long-lived Redis named by `REDIS_URL` does not
/// fill up.
impl RedisHarness {
    /// A harness with `shards` shards, and a plain connection to look at its keys.
    async fn with_connection(name: &str, shards: u16) -> (Self, redis::aio::MultiplexedConnection) {
        let options = QueueOptions {
            shards,
            ..QueueOptions::default()
        };
        let harness = Self::start(name, options).await;
        let connection = redis_connection(&harness.url).await;
        (harness, connection)
    }
}

struct DeleteKeysOnDrop {
    url: String,
    prefix: String,
}

impl Drop for DeleteKeysOnDrop {
    fn drop(&mut self) {
        let Ok(mut connection) =
            redis::Client::open(self.url.as_str()).and_then(|client| client.get_connection())
        else {
            return;
        };
        let pattern = format!("{}:*", self.prefix);
        let keys: Vec<String> = match redis::Commands::scan_match(&mut connection, &pattern) {
            Ok(keys) => keys.filter_map(Result::ok).collect(),
            Err(_) => return,
        };
        if !keys.is_empty() {
            let _ = redis::cmd("DEL").arg(keys).exec(&mut connection);
        }
    }
}

struct EmbeddedHarness {
    root: EmbeddedQueue,
}

impl Harness for EmbeddedHarness {
    type Queue = EmbeddedQueue;

    async fn start(_name: &str, options: QueueOptions) -> Self {
        EmbeddedHarness {
            root: EmbeddedQueue::new(options),
        }
    }

    async fn open(&self) -> EmbeddedQueue {
        self.root.reopen()
    }

    async fn open_cuttable(&self) -> (EmbeddedQueue, Option<CuttableRelay>) {
        (self.root.reopen(), None)
    }

    async fn append_raw(&self, shard: u16, raw: &str) {
        self.root
            .append_raw_entry(shard, raw)
            .expect("appending a raw entry");
    }
}

async fn redis_connection(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .expect("a valid Redis URL")
        .get_multiplexed_async_connection()
        .await
        .expect("connecting to the test Redis")
}

/// Runs one contract test under the hang guard.
async fn guarded(test: impl Future<Output = ()>) {
    tokio::time::timeout(HANG_GUARD, test)
        .await
        .expect("the test hung");
}

macro_rules! contract_tests {
    ($($name:ident),* $(,)?) => {
        mod redis_backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::guarded(super::$name::<super::RedisHarness>()).await;
                }
            )*
        }
        mod embedded_backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::guarded(super::$name::<super::EmbeddedHarness>()).await;
                }
            )*
        }
    };
}

contract_tests!(
    append_then_read_returns_every_field,
    append_is_idempotent_by_job_id,
    ensure_group_twice_is_fine,
    own_pending_entries_are_read_first_after_a_restart,
    acknowledged_job_is_never_redelivered,
    vanished_consumers_job_is_claimed_after_the_idle_limit,
    blocking_read_returns_empty_when_idle,
    blocked_read_wakes_up_on_append,
    a_read_dropped_while_blocked_loses_nothing,
    retry_later_acks_and_the_job_returns_when_due,
    due_retry_moves_exactly_once_with_racing_movers,
    dead_letter_acks_and_is_listed,
    remove_dead_letters_removes_only_those_named,
    dead_token_memory_expires,
    append_unless_dead_appends_nothing_for_a_dead_token,
    corrupt_entry_is_dead_lettered_as_corrupt,
    shards_route_by_token_and_reads_span_them,
    append_after_a_dropped_connection_succeeds,
    replies_reach_only_their_instance,
    backlog_counts_what_waits,
    remove_done_keeps_unread_and_pending_entries,
);

fn job_for(token: &str) -> Job {
    Job::new(
        Notification::alert(Service::Fcm, token, "Hello", "World"),
        ApiVersion::V3,
    )
}

/// A job with every optional field set, to prove nothing is lost on the way.
fn full_job() -> Job {
    let data = serde_json::json!({"text": "hi", "n": 3, "nested": {"list": [1, "two"]}});
    let notification = Notification {
        target: Target {
            service: Service::Apns,
            mode: Mode::Dev,
            device_token: "a1b2c3".to_owned(),
            tags: vec!["voip".to_owned(), "beta".to_owned()],
            topic: Some("com.example.app".to_owned()),
        },
        alert: Some(Alert {
            title: "Title ✓".to_owned(),
            body: "Body with \"quotes\" and\nnewline".to_owned(),
            badge: Some(7),
            click_action: Some("OPEN".to_owned()),
            tag: Some("tag-1".to_owned()),
            sound: Some("ping.aiff".to_owned()),
        }),
        data: data.as_object().cloned(),
        priority: Some(Priority::High),
        time_to_live_secs: Some(3600),
        mutable_content: true,
    };
    let mut job = Job::new(notification, ApiVersion::V2);
    job.attempt = 2;
    job.reply_to = Some("ingest-7".to_owned());
    job
}

fn letter(job: Job, reason: &str, attempts: u32, last_answer: Option<&str>) -> DeadLetter {
    DeadLetter {
        job,
        reason: reason.to_owned(),
        attempts,
        last_answer: last_answer.map(str::to_owned),
        failed_at_ms: 1_700_000_000_123,
    }
}

/// Reads without waiting until nothing is left, checking each read's count limit.
async fn drain(queue: &impl Queue, consumer: &str, count: usize) -> Vec<Delivery> {
    let mut all = Vec::new();
    loop {
        let batch = queue.read(consumer, count, Duration::ZERO).await.unwrap();
        assert!(batch.len() <= count, "read returned more than {count}");
        if batch.is_empty() {
            return all;
        }
        all.extend(batch);
    }
}

fn ids(deliveries: &[Delivery]) -> Vec<String> {
    deliveries.iter().map(|d| d.job.id.0.clone()).collect()
}

async fn append_then_read_returns_every_field<H: Harness>() {
    let harness = H::start("every_field", QueueOptions::default()).await;
    let queue = harness.open().await;
    queue.ensure_group().await.unwrap();
    let job = full_job();

    assert!(queue.append(&job).await.unwrap());
    let read = queue.read("c1", 10, Duration::ZERO).await.unwrap();

    assert_eq!(read.len(), 1);
    assert_eq!(read[0].job, job);
    assert_eq!(read[0].times_delivered, 1);
    assert_eq!(read[0].entry.shard, 0);
    assert!(!read[0].entry.id.is_empty());
}

async fn append_is_idempotent_by_job_id<H: Harness>() {
    let harness = H::start("idempotent", QueueOptions::default()).await;
    let queue = harness.open().await;
    queue.ensure_group().await.unwrap();
    let job = job_for("token-1");
    let mut same_id = job_for("token-2");
    same_id.id = job.id.clone();

    assert!(queue.append(&job).await.unwrap());
    assert!(!queue.append(&job).await.unwrap());
    assert!(!harness.open().await.append(&same_id).await.unwrap());

    let read = drain(&queue, "c1", 10).await;
    assert_eq!(ids(&read), vec![job.id.0.clone()]);
    assert_eq!(read[0].job, job);
}

async fn ensure_group_twice_is_fine<H: Harness>() {
    let harness = H::start("ensure_group", QueueOptions::default()).await;
    let queue = harness.open().await;
    queue.ensure_group().await.unwrap();
    queue.ensure_group().await.unwrap();
    let job = job_for("token-1");
    queue.append(&job).await.unwrap();
    let read = drain(&queue, "c1", 10).await;
    queue.ack(&[read[0].entry.clone()]).await.unwrap();

    // A second process creating the group again must not rewind it.
    let restarted = harness.open().await;
    restarted.ensure_group().await.unwrap();

    assert_eq!(ids(&read), vec![job.id.0]);
    assert!(drain(&restarted, "c2", 10).await.is_empty());
}

async fn own_pending_entries_are_read_first_after_a_restart<H: Harness>() {
    let harness = H::start("restart", QueueOptions::default()).await;
    let queue = harness.open().await;
    queue.ensure_group().await.unwrap();
    let (first, second, later) = (job_for("t1"), job_for("t2"), job_for("t3"));
    queue.append(&first).await.unwrap();
    queue.append(&second).await.unwrap();
    let before = queue.read("c1", 10, Duration::ZERO).await.unwrap();
    queue.append(&later).await.unwrap();

    let restarted = harness.open().await;
    let pending = restarted.read("c1", 10, Duration::ZERO).await.unwrap();
    let fresh = restarted.read("c1", 10, Duration::ZERO).await.unwrap();
    let nothing = restarted.read("c1", 10, Duration::ZERO).await.unwrap();

    assert_eq!(ids(&before), vec![first.id.0.clone(), second.id.0.clone()]);
    assert_eq!(ids(&pending), vec![first.id.0, second.id.0]);
    assert!(pending.iter().all(|d| d.times_delivered == 2));
    assert_eq!(pending[0].entry, before[0].entry);
    assert_eq!(ids(&fresh), vec![later.id.0]);
    assert_eq!(fresh[0].times_delivered, 1);
    assert!(nothing.is_empty());
}

async fn acknowledged_job_is_never_redelivered<H: Harness>() {
    let harness = H::start("acked", QueueOptions::default()).await;
    let queue = harness.open().await;
    queue.ensure_group().await.unwrap();
    let (acked, unacked) = (job_for("t1"), job_for("t2"));
    queue.append(&acked).await.unwrap();
    queue.append(&unacked).await.unwrap();
    let read = queue.read("c1", 10, Duration::ZERO).await.unwrap();
    queue.ack(&[read[0].entry.clone()]).await.unwrap();

    let restarted = harness.open().await;
    let reread = restarted.read("c1", 10, Duration::ZERO).await.unwrap();
    let other = restarted.read("c2", 10, Duration::ZERO).await.unwrap();
    tokio::time::sleep(Duration::from_millis(30)).await;
    let claimed = restarted
        .claim_idle("c2", Duration::from_millis(1), 10)
        .await
        .unwrap();
    restarted.ack(&[claimed[0].entry.clone()]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(30)).await;
    let claimed_again = restarted
        .claim_idle("c3", Duration::ZERO, 10)
        .await
        .unwrap();

    assert_eq!(ids(&read), vec![acked.id.0, unacked.id.0.clone()]);
    assert_eq!(ids(&reread), vec![unacked.id.0.clone()]);
    assert!(other.is_empty());
    assert_eq!(ids(&claimed), vec![unacked.id.0]);
    assert!(claimed_again.is_empty());
    assert!(
        harness
            .open()
            .await
            .read("c1", 10, Duration::ZERO)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn vanished_consumers_job_is_claimed_after_the_idle_limit<H: Harness>() {
    let harness = H::start("claim", QueueOptions::default()).await;
    let queue = harness.open().await;
    queue.ensure_group().await.unwrap();
    let job = job_for("t1");
    queue.append(&job).await.unwrap();
    let read = harness
        .open()
        .await
        .read("vanished", 10, Duration::ZERO)
        .await
        .unwrap();

    let too_early = queue
        .claim_idle("c2", Duration::from_secs(3600), 10)
        .await
        .unwrap();
    let claimed = loop {
        let claimed = queue
            .claim_idle("c2", Duration::from_millis(50), 10)
            .await
            .unwrap();
        if !claimed.is_empty() {
            break claimed;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let claimed_by_another = queue
        .claim_idle("c3", Duration::from_secs(3600), 10)
        .await
        .unwrap();

    assert_eq!(read.len(), 1);
    assert!(too_early.is_empty());
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].job, job);
    assert_eq!(claimed[0].entry, read[0].entry);
    assert_eq!(claimed[0].times_delivered, 2);
    assert!(claimed_by_another.is_empty());
}

async fn blocking_read_returns_empty_when_idle<H: Harness>() {
    let harness = H::start("block_idle", QueueOptions::default()).await;
    let queue = harness.open().await;
    queue.ensure_group().await.unwrap();

    // Longer than the Redis connection manager's 500 ms response timeout.
    let read = queue.read("c1", 10, Duration::from_millis(1500)).await;

    assert!(
        read.expect("a blocking read that times out is not an error")
            .is_empty()
    );
}

async fn blocked_read_wakes_up_on_append<H: Harness>() {
    let harness = H::start("block_wake", QueueOptions::default()).await;
    let queue = harness.open().await;
    queue.ensure_group().await.unwrap();
    let reader = queue.clone();
    let blocked = tokio::spawn(async move { reader.read("c1", 10, Duration::from_secs(30)).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let job = job_for("t1");

    harness.open().await.append(&job).await.unwrap();
    // Well below the 30 s block, so only a wake-up can pass.
    let read = tokio::time::timeout(Duration::from_secs(20), blocked)
        .await
        .expect("the blocked read did not wake up")
        .unwrap()
        .unwrap();

    assert_eq!(ids(&read), vec![job.id.0]);
}

async fn a_read_dropped_while_blocked_loses_nothing<H: Harness>() {
    let harness = H::start("dropped_read", QueueOptions::default()).await;
    let queue = harness.open().await;
    queue.ensure_group().await.unwrap();
    let reader = queue.clone();
    let blocked = tokio::spawn(async move { reader.read("c1", 10, Duration::from_secs(30)).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let job = job_for("t1");

    // Dropped as a shutdown drops it, likely after the server handed the job out.
    queue.append(&job).await.unwrap();
    blocked.abort();
    let before_the_drop = match blocked.await {
        Ok(read) => ids(&read.unwrap()),
        Err(error) => {
            assert!(error.is_cancelled());
            Vec::new()
        }
    };
    let after_the_drop = queue
        .read("c1", 10, Duration::from_millis(500))
        .await
        .unwrap();

    let mut seen = before_the_drop;
    seen.extend(ids(&after_the_drop));
    assert!(
        seen.contains(&job.id.0),
        "the job was lost with the dropped read"
    );
}

async fn retry_later_acks_and_the_job_returns_when_due<H: Harness>() {
    let harness = H::start("retry", QueueOptions::default()).await;
    let queue = harness.open().await;
    queue.ensure_group().await.unwrap();
    let job = job_for("t1");
    queue.append(&job).await.unwrap();
    let read = queue.read("c1", 10, Duration::ZERO).await.unwrap();
    let mut retried = read[0].job.clone();
    retried.attempt = 1;
    let due_at_ms = 5_000_000;

    queue
        .retry_later(&read[0].entry, &retried, due_at_ms)
        .await
        .unwrap();
    let moved_early = queue.move_due_retries(due_at_ms - 1, 100).await.unwrap();
    let read_early = drain(&queue, "c1", 10).await;
    let claimed_early = queue.claim_idle("c2", Duration::ZERO, 10).await.unwrap();
    let pending_after_restart = drain(&harness.open().await, "c1", 10).await;
    let moved = queue.move_due_retries(due_at_ms, 100).await.unwrap();
    let moved_twice = queue.move_due_retries(due_at_ms + 1, 100).await.unwrap();
    let back = drain(&queue, "c2", 10).await;

    assert_eq!(moved_early, 0);
    assert!(read_early.is_empty());
    assert!(
        claimed_early.is_empty(),
        "retry_later must acknowledge the entry"
    );
    assert!(pending_after_restart.is_empty());
    assert_eq!(moved, 1);
    assert_eq!(moved_twice, 0);
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].job, retried);
    assert_eq!(back[0].times_delivered, 1);
    assert_ne!(back[0].entry, read[0].entry);
}

async fn due_retry_moves_exactly_once_with_racing_movers<H: Harness>() {
    const DUE: usize = 200;
    const LATER: usize = 10;
    let options = QueueOptions {
        shards: 2,
        ..QueueOptions::default()
    };
    let harness = H::start("racing_movers", options).await;
    let queue = harness.open().await;
    queue.ensure_group().await.unwrap();
    for index in 0..DUE + LATER {
        queue
            .append(&job_for(&format!("token-{index}")))
            .await
            .unwrap();
    }
    let read = drain(&queue, "c1", 64).await;
    for (index, delivery) in read.iter().enumerate() {
        let mut job = delivery.job.clone();
        job.attempt = 1;
        let due_at_ms = if index < DUE { 1_000 } else { 9_000_000 };
        queue
            .retry_later(&delivery.entry, &job, due_at_ms)
            .await
            .unwrap();
    }

    let movers: Vec<_> = [harness.open().await, harness.open().await]
        .into_iter()
        .map(|mover| {
            tokio::spawn(async move {
                let mut moved = 0;
                loop {
                    match mover.move_due_retries(2_000, 7).await.unwrap() {
                        0 => return moved,
                        some => moved += some,
                    }
                }
            })
        })
        .collect();
    let mut moved = 0;
    for mover in movers {
        moved += mover.await.unwrap();
    }
    let back = drain(&queue, "c2", 64).await;
    let unique: HashSet<String> = ids(&back).into_iter().collect();

    assert_eq!(read.len(), DUE + LATER);
    assert_eq!(moved, DUE);
    assert_eq!(back.len(), DUE, "every due retry comes back exactly once");
    assert_eq!(unique.len(), DUE);
    assert!(back.iter().all(|d| d.job.attempt == 1));
    assert_eq!(queue.move_due_retries(2_000, 100).await.unwrap(), 0);
    assert_eq!(queue.move_due_retries(9_000_000, 100).await.unwrap(), LATER);
}

async fn dead_letter_acks_and_is_listed<H: Harness>() {
    let harness = H::start("dead_letter", QueueOptions::default()).await;
    let queue = harness.open().await;
    queue.ensure_group().await.unwrap();
    queue.append(&full_job()).await.unwrap();
    let read = queue.read("c1", 10, Duration::ZERO).await.unwrap();
    let first = letter(
        read[0].job.clone(),
        "max_attempts",
        5,
        Some("503 {\"reason\":\"x\"}"),
    );
    let second = letter(job_for("t2"), "poison", 1, None);

    queue
        .dead_letter(Some(&read[0].entry), &first)
        .await
        .unwrap();
    queue.dead_letter(None, &second).await.unwrap();
    let listed = queue.dead_letters(10).await.unwrap();
    let oldest = queue.dead_letters(1).await.unwrap();
    let claimed = queue.claim_idle("c2", Duration::ZERO, 10).await.unwrap();
    let reread = drain(&harness.open().await, "c1", 10).await;

    let letters: Vec<DeadLetter> = listed.iter().map(|stored| stored.letter.clone()).collect();
    assert_eq!(letters, vec![first.clone(), second]);
    assert_ne!(listed[0].id, listed[1].id);
    assert_eq!(oldest.len(), 1);
    assert_eq!(oldest[0].letter, first);
    assert!(claimed.is_empty(), "dead_letter must acknowledge the entry");
    assert!(reread.is_empty());
    assert!(queue.unreadable_dead_letters(10).await.unwrap().is_empty());
}

async fn remove_dead_letters_removes_only_those_named<H: Harness>() {
    let harness = H::start("remove_dead", QueueOptions::default()).await;
    let queue = harness.open().await;
    let letters: Vec<DeadLetter> = (0..3)
        .map(|index| letter(job_for(&format!("t{index}")), "max_age", index, None))
        .collect();
    for dead in &letters {
        queue.dead_letter(None, dead).await.unwrap();
    }
    let listed = queue.dead_letters(10).await.unwrap();
    let named = vec![
        listed[0].id.clone(),
        listed[2].id.clone(),
        "1-999".to_owned(),
        "not an id".to_owned(),
    ];

    let removed = queue.remove_dead_letters(&named).await.unwrap();
    let removed_again = queue.remove_dead_letters(&named).await.unwrap();
    let left = queue.dead_letters(10).await.unwrap();

    assert_eq!(listed.len(), 3);
    assert_eq!(removed, 2);
    assert_eq!(removed_again, 0);
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].id, listed[1].id);
    assert_eq!(left[0].letter, letters[1]);
    assert_eq!(queue.remove_dead_letters(&[]).await.unwrap(), 0);
    // "All of them" is usize::MAX; it must not overflow Redis' integer arguments.
    assert!(queue.dead_letters(usize::MAX).await.is_ok());
    assert!(queue.unreadable_dead_letters(usize::MAX).await.is_ok());
}

async fn dead_token_memory_expires<H: Harness>() {
    let harness = H::start("dead_tokens", QueueOptions::default()).await;
    let queue = harness.open().await;
    let hour = Duration::from_secs(3600);

    queue
        .remember_dead_token(Service::Fcm, "long", hour)
        .await
        .unwrap();
    queue
        .remember_dead_token(Service::Fcm, "short", Duration::from_millis(100))
        .await
        .unwrap();
    queue
        .remember_dead_token(Service::Apns, "forgotten", hour)
        .await
        .unwrap();
    queue
        .remember_dead_token(Service::Apns, "forgotten", Duration::ZERO)
        .await
        .unwrap();
    let long = queue.is_dead_token(Service::Fcm, "long").await.unwrap();
    let other_service = queue.is_dead_token(Service::Apns, "long").await.unwrap();
    let unknown = queue.is_dead_token(Service::Fcm, "unknown").await.unwrap();
    let forgotten = queue
        .is_dead_token(Service::Apns, "forgotten")
        .await
        .unwrap();
    while queue.is_dead_token(Service::Fcm, "short").await.unwrap() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    assert!(long);
    assert!(!other_service);
    assert!(!unknown);
    assert!(!forgotten);
    assert!(
        harness
            .open()
            .await
            .is_dead_token(Service::Fcm, "long")
            .await
            .unwrap()
    );
}

async fn append_unless_dead_appends_nothing_for_a_dead_token<H: Harness>() {
    let harness = H::start("append_unless_dead", QueueOptions::default()).await;
    let queue = harness.open().await;
    queue.ensure_group().await.unwrap();
    let hour = Duration::from_secs(3600);
    let alive = job_for("alive");
    let dead = job_for("dead");
    queue
        .remember_dead_token(dead.notification.target.service, "dead", hour)
        .await
        .unwrap();

    let outcomes = [
        queue.append_unless_dead(&alive).await.unwrap(),
        queue.append_unless_dead(&alive).await.unwrap(),
        queue.append_unless_dead(&dead).await.unwrap(),
    ];
    assert_eq!(
        outcomes,
        [
            AppendOutcome::Appended,
            AppendOutcome::AlreadyAppended,
            AppendOutcome::DeadToken
        ]
    );
    // A dead token stops only the dead-aware append, and only its own service's.
    let mut other_service = job_for("dead");
    other_service.notification.target.service = match dead.notification.target.service {
        Service::Fcm => Service::Apns,
        Service::Apns => Service::Fcm,
    };
    assert_eq!(
        queue.append_unless_dead(&other_service).await.unwrap(),
        AppendOutcome::Appended
    );
    assert!(queue.append(&dead).await.unwrap());

    let read = drain(&queue, "c1", 10).await;
    let mut read_ids = ids(&read);
    read_ids.sort();
    let mut expected = vec![
        alive.id.0.clone(),
        other_service.id.0.clone(),
        dead.id.0.clone(),
    ];
    expected.sort();
    assert_eq!(read_ids, expected);
}

async fn replies_reach_only_their_instance<H: Harness>() {
    let harness = H::start("replies", QueueOptions::default()).await;
    let publisher = harness.open().await;
    let listener = harness.open().await;
    let mut mine = listener.subscribe_replies("ingest-a").await.unwrap();
    let mut other = listener.subscribe_replies("ingest-b").await.unwrap();

    let delivered = JobReply {
        job_id: JobId("job-1".to_owned()),
        first_attempt: FirstAttempt::Delivered,
    };
    let failed = JobReply {
        job_id: JobId("job-2".to_owned()),
        first_attempt: FirstAttempt::Failed {
            error: PushError::new(Category::Unregistered, "Unregistered"),
        },
    };
    publisher
        .publish_reply("ingest-a", &delivered)
        .await
        .unwrap();
    publisher.publish_reply("ingest-a", &failed).await.unwrap();
    publisher
        .publish_reply("nobody-listens", &delivered)
        .await
        .unwrap();

    assert_eq!(mine.recv().await.unwrap(), delivered);
    assert_eq!(mine.recv().await.unwrap(), failed);
    let stray = tokio::time::timeout(Duration::from_millis(200), other.recv()).await;
    assert!(
        stray.is_err(),
        "instance b got a reply meant for a: {stray:?}"
    );
}

async fn corrupt_entry_is_dead_lettered_as_corrupt<H: Harness>() {
    let harness = H::start("corrupt", QueueOptions::default()).await;
    let queue = harness.open().await;
    queue.ensure_group().await.unwrap();
    let good = job_for("t1");
    let mut future_format = serde_json::to_value(job_for("t2")).unwrap();
    future_format["format"] = serde_json::json!(999);
    let future_format = future_format.to_string();

    harness.append_raw(0, "{not json").await;
    queue.append(&good).await.unwrap();
    harness.append_raw(0, &future_format).await;
    let read = queue.read("c1", 10, Duration::ZERO).await.unwrap();
    let unreadable = queue.unreadable_dead_letters(10).await.unwrap();
    let readable = queue.dead_letters(10).await.unwrap();
    let reread = drain(&harness.open().await, "c1", 10).await;

    assert_eq!(ids(&read), vec![good.id.0.clone()]);
    assert_eq!(unreadable.len(), 2);
    assert_eq!(unreadable[0].raw_job, "{not json");
    assert_eq!(unreadable[1].raw_job, future_format);
    assert!(
        unreadable
            .iter()
            .all(|dead| dead.reason == "corrupt" && !dead.error.is_empty())
    );
    assert!(
        unreadable[1].error.contains("999"),
        "{}",
        unreadable[1].error
    );
    assert!(readable.is_empty());
    assert_eq!(
        ids(&reread),
        vec![good.id.0],
        "corrupt entries are acknowledged"
    );
    let all: Vec<String> = unreadable.iter().map(|dead| dead.id.clone()).collect();
    assert_eq!(queue.remove_dead_letters(&all).await.unwrap(), 2);
}

async fn shards_route_by_token_and_reads_span_them<H: Harness>() {
    const SHARDS: u16 = 4;
    let options = QueueOptions {
        shards: SHARDS,
        ..QueueOptions::default()
    };
    let harness = H::start("shards", options).await;
    let queue = harness.open().await;
    queue.ensure_group().await.unwrap();
    let tokens: Vec<String> = (0..12).map(|index| format!("device-{index}")).collect();
    let used: HashSet<u16> = tokens.iter().map(|t| shard_for(t, SHARDS)).collect();
    for token in &tokens {
        queue.append(&job_for(token)).await.unwrap();
    }

    let read = drain(&queue, "c1", 3).await;
    let last_shard_token = (0..)
        .map(|index| format!("late-{index}"))
        .find(|token| shard_for(token, SHARDS) == SHARDS - 1)
        .unwrap();
    let reader = queue.clone();
    let blocked = tokio::spawn(async move { reader.read("c1", 10, Duration::from_secs(30)).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    queue.append(&job_for(&last_shard_token)).await.unwrap();
    let woken = tokio::time::timeout(Duration::from_secs(20), blocked)
        .await
        .expect("the blocked read did not wake up")
        .unwrap()
        .unwrap();

    assert!(used.len() > 2, "the tokens should spread over the shards");
    assert_eq!(read.len(), tokens.len());
    for delivery in &read {
        let token = &delivery.job.notification.target.device_token;
        assert_eq!(delivery.entry.shard, shard_for(token, SHARDS), "{token}");
    }
    let seen: HashSet<u16> = read.iter().map(|d| d.entry.shard).collect();
    assert_eq!(seen, used);
    assert_eq!(woken.len(), 1);
    assert_eq!(woken[0].entry.shard, SHARDS - 1);
}

async fn append_after_a_dropped_connection_succeeds<H: Harness>() {
    let harness = H::start("dropped", QueueOptions::default()).await;
    let (queue, relay) = harness.open_cuttable().await;
    queue.ensure_group().await.unwrap();
    let jobs: Vec<Job> = (0..3).map(|index| job_for(&format!("t{index}"))).collect();

    for job in &jobs {
        if let Some(relay) = &relay {
            relay.cut_all();
        }
        // The answer may be `false`: the cut can lose the reply of an append that landed.
        let appended = queue.append(job).await;
        appended.expect("an append after a dropped connection is retried");
    }
    let read = drain(&harness.open().await, "c1", 10).await;

    assert_eq!(
        ids(&read),
        jobs.iter().map(|j| j.id.0.clone()).collect::<Vec<_>>()
    );
}

async fn remove_done_keeps_unread_and_pending_entries<H: Harness>() {
    let harness = H::start("remove_done", QueueOptions::default()).await;
    let queue = harness.open().await;
    queue.ensure_group().await.unwrap();
    let jobs: Vec<Job> = (0..6).map(|i| job_for(&format!("device-{i}"))).collect();
    for job in &jobs {
        queue.append(job).await.unwrap();
    }
    let read = queue.read("c1", 3, Duration::ZERO).await.unwrap();
    assert_eq!(ids(&read), ids_of(&jobs[..3]));
    // The first and third are done; the second is still being sent.
    queue
        .ack(&[read[0].entry.clone(), read[2].entry.clone()])
        .await
        .unwrap();

    queue.remove_done().await.unwrap();
    queue.remove_done().await.unwrap();

    let backlog = queue.backlog().await.unwrap();
    assert_eq!((backlog.waiting, backlog.in_progress), (3, 1));
    let rest = drain(&queue, "c2", 10).await;
    assert_eq!(ids(&rest), ids_of(&jobs[3..]));
    let rest: Vec<_> = rest.into_iter().map(|delivery| delivery.entry).collect();
    queue.ack(&rest).await.unwrap();
    queue.remove_done().await.unwrap();
    // The pending one is still there to be taken over and acknowledged.
    tokio::time::sleep(Duration::from_millis(30)).await;
    let claimed = queue
        .claim_idle("c3", Duration::from_millis(10), 10)
        .await
        .unwrap();
    assert_eq!(ids(&claimed), ids_of(&jobs[1..2]));
    assert_eq!(claimed[0].job, jobs[1]);
}

fn ids_of(jobs: &[Job]) -> Vec<String> {
    jobs.iter().map(|job| job.id.0.clone()).collect()
}

/// Acknowledged entries leave the Redis stream; unread and pending ones stay.
#[tokio::test]
async fn redis_remove_done_shrinks_the_stream_to_what_is_still_needed() {
    let (harness, mut redis) = RedisHarness::with_connection("remove_done_len", 1).await;
    let prefix = harness.options.prefix.clone();
    let queue = harness.open().await;
    let stream = format!("{prefix}:jobs:0");
    let length = async |redis: &mut redis::aio::MultiplexedConnection| -> usize {
        redis::cmd("XLEN")
            .arg(&stream)
            .query_async(redis)
            .await
            .unwrap()
    };
    assert_eq!(queue.remove_done().await.unwrap(), 0, "no stream yet");
    queue.ensure_group().await.unwrap();
    // Redis trims whole stream nodes (100 entries each by default), so use a few.
    let appended = 450;
    for index in 0..appended {
        queue.append(&job_for(&format!("d-{index}"))).await.unwrap();
    }
    let read = queue.read("c1", 400, Duration::ZERO).await.unwrap();
    assert_eq!(read.len(), 400);
    let entries: Vec<_> = read.iter().map(|d| d.entry.clone()).collect();
    // All read but entry 250 are done; entry 250 is still pending and bounds the trim.
    let (before, after) = entries.split_at(250);
    queue.ack(before).await.unwrap();
    queue.ack(&after[1..]).await.unwrap();
    let removed = queue.remove_done().await.unwrap();
    assert!((100..=250).contains(&removed), "removed {removed}");
    assert_eq!(length(&mut redis).await, appended - removed as usize);

    queue.ack(&after[..1]).await.unwrap();
    let removed_now = queue.remove_done().await.unwrap();
    let left = length(&mut redis).await;
    // Everything read is done: what stays is the unread 50 and less than one node more.
    assert!((50..150).contains(&left), "{left} entries left");
    assert_eq!(left, appended - (removed + removed_now) as usize);
    let backlog = queue.backlog().await.unwrap();
    assert_eq!((backlog.waiting, backlog.in_progress), (50, 0));
    assert_eq!(drain(&queue, "c2", 100).await.len(), 50);
}

/// The key layout of DESIGN.md section 3, checked on Redis itself.
#[tokio::test]
async fn redis_keys_follow_the_design() {
    let (harness, mut redis) = RedisHarness::with_connection("keys", 2).await;
    let prefix = harness.options.prefix.clone();
    let queue = harness.open().await;
    queue.ensure_group().await.unwrap();
    let job = job_for("device-a");
    let shard = shard_for("device-a", 2);

    queue.append(&job).await.unwrap();
    let stream_len: usize = redis::cmd("XLEN")
        .arg(format!("{prefix}:jobs:{shard}"))
        .query_async(&mut redis)
        .await
        .unwrap();
    let idem_ttl: i64 = redis::cmd("PTTL")
        .arg(format!("{prefix}:idem:{}", job.id))
        .query_async(&mut redis)
        .await
        .unwrap();
    let read = queue.read("c1", 1, Duration::ZERO).await.unwrap();
    queue.retry_later(&read[0].entry, &job, 1).await.unwrap();
    let retries: usize = redis::cmd("ZCARD")
        .arg(format!("{prefix}:retry"))
        .query_async(&mut redis)
        .await
        .unwrap();
    queue
        .dead_letter(None, &letter(job.clone(), "poison", 1, None))
        .await
        .unwrap();
    let dead_letters: usize = redis::cmd("XLEN")
        .arg(format!("{prefix}:dlq"))
        .query_async(&mut redis)
        .await
        .unwrap();
    queue
        .remember_dead_token(Service::Apns, "device-a", Duration::from_secs(60))
        .await
        .unwrap();
    let hashed: String = {
        use sha2::Digest;
        sha2::Sha256::digest(b"device-a")
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect()
    };
    let token_ttl: i64 = redis::cmd("PTTL")
        .arg(format!("{prefix}:dead:apns:{hashed}"))
        .query_async(&mut redis)
        .await
        .unwrap();

    assert_eq!(stream_len, 1);
    assert!(idem_ttl > 0, "the idempotency key has a TTL ({idem_ttl})");
    assert_eq!(retries, 1);
    assert_eq!(dead_letters, 1);
    assert!(token_ttl > 0, "the dead-token key has a TTL ({token_ttl})");
}

async fn backlog_counts_what_waits<H: Harness>() {
    let options = QueueOptions {
        shards: 2,
        ..QueueOptions::default()
    };
    let harness = H::start("backlog", options).await;
    let queue = harness.open().await;
    assert_eq!(
        queue.backlog().await.unwrap(),
        Backlog::default(),
        "nothing yet"
    );
    queue.ensure_group().await.unwrap();
    let before_ms = pushgate_shared::job::now_ms();
    for index in 0..5 {
        queue
            .append(&job_for(&format!("device-{index}")))
            .await
            .unwrap();
    }
    let after_ms = pushgate_shared::job::now_ms();

    let queued = queue.backlog().await.unwrap();
    assert_eq!((queued.waiting, queued.in_progress), (5, 0));
    let oldest = queued.oldest_waiting_at_ms.expect("an oldest entry");
    assert!(
        (before_ms..=after_ms).contains(&oldest),
        "{oldest} not in {before_ms}..={after_ms}"
    );

    let read = queue.read("c1", 2, Duration::ZERO).await.unwrap();
    assert_eq!(read.len(), 2);
    let reading = queue.backlog().await.unwrap();
    assert_eq!((reading.waiting, reading.in_progress), (3, 2));

    queue
        .ack(std::slice::from_ref(&read[0].entry))
        .await
        .unwrap();
    queue
        .retry_later(&read[1].entry, &read[1].job, 5_000_000)
        .await
        .unwrap();
    let more = queue.read("c1", 1, Duration::ZERO).await.unwrap();
    let letter = letter(more[0].job.clone(), "poison", 1, None);
    queue
        .dead_letter(Some(&more[0].entry), &letter)
        .await
        .unwrap();
    let settled = queue.backlog().await.unwrap();
    assert_eq!(
        (
            settled.waiting,
            settled.in_progress,
            settled.retrying,
            settled.dead_letters
        ),
        (2, 0, 1, 1)
    );

    let rest = drain(&queue, "c1", 10).await;
    let entries: Vec<_> = rest.iter().map(|delivery| delivery.entry.clone()).collect();
    queue.ack(&entries).await.unwrap();
    let drained = queue.backlog().await.unwrap();
    assert_eq!((drained.waiting, drained.in_progress), (0, 0));
    assert_eq!(drained.oldest_waiting_at_ms, None);
}

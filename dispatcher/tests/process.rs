//! The dispatcher binary as an operator runs it, against a real Redis and the mock APNs:
//! a process killed mid-flight loses no job, SIGTERM drains sends in flight and leaves
//! unread jobs to the next process, and a bad configuration stops it naming the fault.

mod support;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Output, Stdio};
use std::time::Duration;

use pushgate_shared::queue::{Queue, QueueOptions, RedisQueue};
use pushgate_shared::{ApiVersion, Job, Service};
use pushgate_testkit::credentials::{ApnsCredentialFiles, TempDir};
use pushgate_testkit::redis_server::{redis_url, unique_prefix};
use pushgate_testkit::{ApnsCredentials, MockApns, MockApnsOptions};
use redis::AsyncCommands;
use redis::aio::MultiplexedConnection;
use redis::streams::{StreamPendingCountReply, StreamPendingReply, StreamRangeReply};
use serde_json::{Value, json};
use tokio::process::{Child, Command};
use tokio::time::Instant;

/// Longest wait for any condition; only a hang guard, never a timing assertion.
const HANG_GUARD: Duration = Duration::from_secs(120);

/// Longest wait for a process to exit by itself.
const EXIT_GUARD: Duration = Duration::from_secs(30);

const POLL: Duration = Duration::from_millis(20);

/// The consumer group every dispatcher joins.
const GROUP: &str = "dispatchers";

/// A mock APNs with token auth, a real Redis under a fresh prefix, and a temp directory
/// for credentials, configuration files and the processes' logs.
struct Rig {
    mock: MockApns,
    credentials: ApnsCredentials,
    files: ApnsCredentialFiles,
    dir: TempDir,
    prefix: String,
    shards: u16,
    queue: RedisQueue,
    redis: MultiplexedConnection,
}

/// What the mock and Redis show at one moment.
struct Progress {
    /// Device token to the number of times the mock accepted a send to it.
    delivered: HashMap<String, usize>,
    /// Entries read by some consumer and not yet acknowledged, over all shards.
    pending: usize,
}

impl Rig {
    async fn start(name: &str, shards: u16, latency: Duration) -> Self {
        let credentials = ApnsCredentials::generate().unwrap();
        let files = credentials.write_files().unwrap();
        let options = MockApnsOptions {
            auth: credentials.token_auth(),
            ..MockApnsOptions::default()
        };
        let mock = MockApns::start(options).await.unwrap();
        mock.set_latency(latency);

        let url = redis_url();
        let prefix = unique_prefix(name);
        let options = QueueOptions {
            prefix: prefix.clone(),
            shards,
            ..QueueOptions::default()
        };
        let queue = RedisQueue::connect(&url, options).await.unwrap();
        queue.ensure_group().await.unwrap();
        let client = redis::Client::open(url).unwrap();
        let redis = client.get_multiplexed_async_connection().await.unwrap();
        Rig {
            mock,
            credentials,
            files,
            dir: TempDir::new().unwrap(),
            prefix,
            shards,
            queue,
            redis,
        }
    }

    /// Appends one job per fresh device token and returns the tokens.
    async fn append_jobs(&self, count: usize) -> Vec<String> {
        let run: u128 = rand::random();
        let mut tokens = Vec::with_capacity(count);
        for index in 0..count {
            let token = format!("{run:032x}{index:032x}");
            let job = Job::new(support::alert(Service::Apns, &token), ApiVersion::V3);
            assert!(self.queue.append(&job).await.unwrap());
            tokens.push(token);
        }
        tokens
    }

    /// A valid configuration for consumer `consumer`, paced for a test: small batches, a
    /// few sends in flight, short waits, and generous request and shutdown limits.
    fn config(&self, consumer: &str) -> Value {
        json!({
            "redis_url": redis_url(),
            "queue": { "prefix": self.prefix, "shards": self.shards },
            "dispatcher": {
                "consumer_name": consumer,
                "read_batch": 8,
                "read_block_ms": 200,
                "max_in_flight_per_app": 8,
                "claim_idle_ms": 600_000,
                "claim_interval_ms": 200,
                "retry_poll_ms": 100,
                "shutdown_deadline_ms": 60_000,
                "apps": [{
                    "name": "apns",
                    "service": "apns",
                    "mode": "prod",
                    "endpoint": self.mock.h2c_url(),
                    "connections": 2,
                    "request_timeout_ms": 60_000,
                    "default_topic": support::TOPIC,
                    "credentials": {
                        "type": "apns_token",
                        "key_path": self.files.p8_path,
                        "key_id": self.credentials.key_id,
                        "team_id": self.credentials.team_id,
                    },
                }],
            },
        })
    }

    /// Writes `config` as TOML to `name` in the temp directory.
    fn write_config(&self, name: &str, config: &Value) -> PathBuf {
        let text = toml::to_string(config).expect("a JSON object maps to TOML");
        self.dir.write(name, &text).unwrap()
    }

    /// Starts a dispatcher process named `consumer` on `config`.
    fn spawn(&self, consumer: &str, config: &Value) -> Dispatcher {
        let path = self.write_config(&format!("{consumer}.toml"), config);
        Dispatcher::spawn(consumer, &path, self.dir.path())
    }

    /// The current progress; panics at once on an answer other than 200 or a dead letter,
    /// which would otherwise only show as a hang.
    async fn progress(&self) -> Progress {
        let mut delivered = HashMap::new();
        for activity in self.mock.activity() {
            assert_eq!(
                activity.status, 200,
                "the mock refused a send: {:?}",
                activity.response_data
            );
            *delivered.entry(activity.device_token).or_insert(0) += 1;
        }
        let mut redis = self.redis.clone();
        let dead: usize = redis.xlen(format!("{}:dlq", self.prefix)).await.unwrap();
        assert_eq!(dead, 0, "no job may be dead-lettered");

        let mut pending = 0;
        for key in self.stream_keys() {
            let summary: StreamPendingReply = redis.xpending(&key, GROUP).await.unwrap();
            pending += summary.count();
        }
        Progress { delivered, pending }
    }

    /// The device tokens of the entries pending on `consumer`.
    async fn pending_tokens(&self, consumer: &str) -> HashSet<String> {
        let mut redis = self.redis.clone();
        let mut tokens = HashSet::new();
        for key in self.stream_keys() {
            let pending: StreamPendingCountReply = redis
                .xpending_consumer_count(&key, GROUP, "-", "+", 10_000, consumer)
                .await
                .unwrap();
            for entry in pending.ids {
                let range: StreamRangeReply =
                    redis.xrange(&key, &entry.id, &entry.id).await.unwrap();
                let stored = range.ids.first().expect("a pending entry is in its stream");
                let raw: String = stored.get("job").expect("an entry has a job field");
                let job: Job = serde_json::from_str(&raw).unwrap();
                tokens.insert(job.notification.target.device_token);
            }
        }
        tokens
    }

    /// Jobs waiting in the retry set (none should: the mock accepts every send).
    async fn retries(&self) -> usize {
        let mut redis = self.redis.clone();
        redis.zcard(format!("{}:retry", self.prefix)).await.unwrap()
    }

    fn stream_keys(&self) -> Vec<String> {
        (0..self.shards)
            .map(|shard| format!("{}:jobs:{shard}", self.prefix))
            .collect()
    }
}

/// A running dispatcher process: killed when dropped, its log printed if the test failed.
struct Dispatcher {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Dispatcher {
    fn spawn(name: &str, config: &Path, dir: &Path) -> Self {
        let log = dir.join(format!("{name}.log"));
        let stdout = std::fs::File::create(&log).unwrap();
        let stderr = stdout.try_clone().unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_dispatcher"))
            .arg("--config")
            .arg(config)
            .env_remove("PUSHGATE_DISPATCHER_CONFIG")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .expect("the dispatcher binary starts");
        Dispatcher {
            name: name.to_owned(),
            child,
            log,
        }
    }

    /// Ends the process with SIGKILL, as a crash or an OOM kill would.
    async fn kill(&mut self) {
        self.child.kill().await.expect("SIGKILL reaches the child");
    }

    /// Sends SIGTERM, as a container platform does to stop a task.
    fn terminate(&self) {
        let pid = self.child.id().expect("the process is still running");
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("kill(1) runs");
        assert!(status.success(), "kill -TERM {pid} failed: {status}");
    }

    /// Waits for the process to exit by itself, within [`EXIT_GUARD`].
    async fn exit_status(&mut self) -> ExitStatus {
        match tokio::time::timeout(EXIT_GUARD, self.child.wait()).await {
            Ok(status) => status.unwrap(),
            Err(_) => panic!("{} did not exit within {EXIT_GUARD:?}", self.name),
        }
    }

    /// Waits until `check` holds, failing early if the process exits on its own.
    async fn wait_until(&mut self, what: &str, mut check: impl AsyncFnMut() -> bool) {
        let deadline = Instant::now() + HANG_GUARD;
        while !check().await {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("{} exited ({status}) while waiting for {what}", self.name);
            }
            assert!(
                Instant::now() < deadline,
                "hang guard: still waiting for {what}"
            );
            tokio::time::sleep(POLL).await;
        }
    }
}

impl Drop for Dispatcher {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            eprintln!(
                "----- log of {} -----\n{log}----- end of log -----",
                self.name
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_of_a_killed_dispatcher_are_delivered_by_another() {
    let rig = Rig::start("process-crash", 2, Duration::from_millis(300)).await;
    let tokens = rig.append_jobs(200).await;
    let paced = |consumer: &str| {
        let mut config = rig.config(consumer);
        config["dispatcher"]["claim_idle_ms"] = json!(1000);
        config
    };

    let mut first = rig.spawn("crash-first", &paced("crash-first"));
    first
        .wait_until("the first dispatcher to deliver some jobs", async || {
            let progress = rig.progress().await;
            progress.delivered.len() >= 20 && progress.pending > 0
        })
        .await;
    first.kill().await;

    let at_kill = rig.progress().await;
    let orphaned = rig.pending_tokens("crash-first").await;
    assert!(
        at_kill.delivered.len() < tokens.len(),
        "the first dispatcher finished before it was killed, so nothing was left to take over"
    );
    assert!(
        !orphaned.is_empty(),
        "the killed dispatcher left entries pending"
    );

    let mut second = rig.spawn("crash-second", &paced("crash-second"));
    second
        .wait_until("every job delivered and acknowledged", async || {
            let progress = rig.progress().await;
            progress.pending == 0 && tokens.iter().all(|t| progress.delivered.contains_key(t))
        })
        .await;
    second.terminate();
    let status = second.exit_status().await;
    assert!(
        status.success(),
        "the second dispatcher stopped with {status}"
    );

    let end = rig.progress().await;
    assert_eq!(end.pending, 0, "nothing is left pending");
    assert_eq!(rig.retries().await, 0, "no job waits for a retry");
    let missing: Vec<&String> = tokens
        .iter()
        .filter(|t| !end.delivered.contains_key(*t))
        .collect();
    assert!(missing.is_empty(), "jobs never delivered: {missing:?}");

    // At least once: only a job the killed process held can have been sent twice.
    let twice: Vec<&String> = end
        .delivered
        .iter()
        .filter(|(_, times)| **times > 1)
        .map(|(token, _)| token)
        .collect();
    for token in &twice {
        assert!(
            orphaned.contains(*token),
            "{token} was sent twice but was not pending on the killed dispatcher"
        );
    }
    let duplicates: usize = end.delivered.values().map(|times| times - 1).sum();
    eprintln!(
        "crash test: {} jobs, {} pending on the killed dispatcher, {duplicates} duplicate sends",
        tokens.len(),
        orphaned.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_sends_in_flight_and_leaves_unread_jobs_queued() {
    sigterm_drains("process-sigterm", 1).await;
}

/// With several shards one read spans streams; none may be left read but unsent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_leaves_nothing_pending_with_sharded_streams() {
    sigterm_drains("process-sigterm-shards", 2).await;
}

/// SIGTERMs a dispatcher with sends in flight, checks that it settled everything it had
/// read and nothing more, then lets a second one deliver the rest.
async fn sigterm_drains(name: &str, shards: u16) {
    let rig = Rig::start(name, shards, Duration::from_secs(1)).await;
    let tokens = rig.append_jobs(40).await;
    let paced = |consumer: &str| {
        let mut config = rig.config(consumer);
        config["dispatcher"]["read_batch"] = json!(4);
        config["dispatcher"]["max_in_flight_per_app"] = json!(4);
        config
    };

    let mut first = rig.spawn("drain-first", &paced("drain-first"));
    let mut in_hand = HashSet::new();
    first
        .wait_until("sends in flight after a first delivery", async || {
            let progress = rig.progress().await;
            in_hand = rig.pending_tokens("drain-first").await;
            !progress.delivered.is_empty() && !in_hand.is_empty()
        })
        .await;
    first.terminate();
    let status = first.exit_status().await;
    assert!(status.success(), "the dispatcher stopped with {status}");

    let drained = rig.progress().await;
    assert_eq!(
        drained.pending, 0,
        "every job it read was settled before exit"
    );
    for token in &in_hand {
        assert_eq!(
            drained.delivered.get(token),
            Some(&1),
            "{token} was in flight at SIGTERM and must be delivered once"
        );
    }
    assert!(
        drained.delivered.len() < tokens.len(),
        "the dispatcher read every job despite SIGTERM"
    );
    assert_eq!(rig.retries().await, 0, "no job waits for a retry");

    let mut second = rig.spawn("drain-second", &paced("drain-second"));
    second
        .wait_until(
            "the unread jobs delivered by the next dispatcher",
            async || {
                let progress = rig.progress().await;
                progress.pending == 0 && tokens.iter().all(|t| progress.delivered.contains_key(t))
            },
        )
        .await;
    second.terminate();
    let status = second.exit_status().await;
    assert!(
        status.success(),
        "the second dispatcher stopped with {status}"
    );

    let end = rig.progress().await;
    let twice: Vec<(&String, &usize)> = end.delivered.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "a graceful stop sends nothing twice: {twice:?}"
    );
    assert_eq!(end.delivered.len(), tokens.len());
}

/// Runs the binary on `config` and returns how it ended, with its output.
async fn run_to_exit(config: &Path) -> Output {
    let child = Command::new(env!("CARGO_BIN_EXE_dispatcher"))
        .arg("--config")
        .arg(config)
        .env_remove("PUSHGATE_DISPATCHER_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the dispatcher binary starts");
    match tokio::time::timeout(EXIT_GUARD, child.wait_with_output()).await {
        Ok(output) => output.unwrap(),
        Err(_) => panic!("the dispatcher kept running on a bad configuration {config:?}"),
    }
}

/// Asserts the binary refused to start, saying `expected` on stderr.
fn assert_refused(output: &Output, expected: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success() && output.status.code().is_some(),
        "expected a failing exit, got {} with stderr:\n{stderr}",
        output.status
    );
    assert!(
        stderr.contains(expected),
        "stderr does not name `{expected}`:\n{stderr}"
    );
}

#[tokio::test]
async fn an_unknown_key_is_refused_by_name() {
    let rig = Rig::start("process-unknown-key", 1, Duration::ZERO).await;
    let cases: [(&[&str], &str); 4] = [
        (&[], "redis_uri"),
        (&["queue"], "shard"),
        (&["dispatcher"], "read_batches"),
        (&["dispatcher", "retry"], "max_attempt"),
    ];
    for (table, key) in cases {
        let mut config = rig.config("unknown-key");
        let mut target = &mut config;
        for name in table {
            target = target
                .as_object_mut()
                .unwrap()
                .entry(name.to_string())
                .or_insert_with(|| json!({}));
        }
        target[key] = json!(1);
        let path = rig.write_config(&format!("unknown-{key}.toml"), &config);
        assert_refused(&run_to_exit(&path).await, &format!("unknown field `{key}`"));
    }
}

#[tokio::test]
async fn a_missing_redis_url_is_refused_by_name() {
    let rig = Rig::start("process-no-redis-url", 1, Duration::ZERO).await;
    let mut config = rig.config("no-redis-url");
    config.as_object_mut().unwrap().remove("redis_url");
    let path = rig.write_config("no-redis-url.toml", &config);
    assert_refused(&run_to_exit(&path).await, "redis_url is missing");
}

/// The file `pushgate up` reads works here too: the Redis URL in `[queue]`, an `[ingest]`
/// section (not used by the dispatcher), and a credential path relative to the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pushgate_toml_with_relative_paths_is_read_as_it_is() {
    let rig = Rig::start("process-pushgate-toml", 1, Duration::ZERO).await;
    let tokens = rig.append_jobs(5).await;
    let mut config = rig.config("pushgate-toml");
    let url = config.as_object_mut().unwrap().remove("redis_url").unwrap();
    config["queue"]["redis_url"] = url;
    config["ingest"] = json!({ "listen": "127.0.0.1:1", "auth": { "required": false } });
    let p8 = std::fs::read_to_string(&rig.files.p8_path).unwrap();
    rig.dir.write("relative-key.p8", &p8).unwrap();
    config["dispatcher"]["apps"][0]["credentials"]["key_path"] = json!("relative-key.p8");

    let mut dispatcher = rig.spawn("pushgate-toml", &config);
    dispatcher
        .wait_until("every job delivered", async || {
            let progress = rig.progress().await;
            progress.pending == 0 && tokens.iter().all(|t| progress.delivered.contains_key(t))
        })
        .await;
    dispatcher.terminate();
    assert!(dispatcher.exit_status().await.success());
}

#[tokio::test]
async fn an_unreadable_config_file_is_refused_by_path() {
    let dir = TempDir::new().unwrap();
    let missing = dir.path().join("absent.toml");
    let output = run_to_exit(&missing).await;
    assert_refused(&output, &missing.display().to_string());

    let directory = dir.path().join("a-directory.toml");
    std::fs::create_dir(&directory).unwrap();
    let output = run_to_exit(&directory).await;
    assert_refused(&output, &directory.display().to_string());
}

#[tokio::test]
async fn an_unusable_redis_url_is_refused_by_key() {
    let rig = Rig::start("process-bad-redis-url", 1, Duration::ZERO).await;
    let mut config = rig.config("bad-redis-url");
    config["redis_url"] = json!("no-such-scheme://127.0.0.1");
    let path = rig.write_config("bad-redis-url.toml", &config);
    assert_refused(&run_to_exit(&path).await, "`redis_url`");
}

#[tokio::test]
async fn a_missing_credential_file_is_refused_by_path() {
    let rig = Rig::start("process-no-key-file", 1, Duration::ZERO).await;
    let mut config = rig.config("no-key-file");
    let absent = rig.dir.path().join("absent.p8");
    config["dispatcher"]["apps"][0]["credentials"]["key_path"] = json!(absent);
    let path = rig.write_config("no-key-file.toml", &config);
    let output = run_to_exit(&path).await;
    assert_refused(&output, &absent.display().to_string());
    assert_refused(&output, "key_path");
}

//! The gateway under test, put together as in production: ingest on a real TCP port, a
//! queue (Redis on a real `redis-server`, or the embedded one), `dispatcher::run` in this
//! process, and the mock providers on real sockets; plus the waits every test uses.
#![allow(
    dead_code,
    unused_imports,
    unused_macros,
    reason = "each test binary uses a different part of the helpers"
)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use dispatcher::retry::RetryPolicy;
use dispatcher::{DispatchError, DispatcherConfig};
use ingest::IngestConfig;
use pushgate_shared::queue::{Queue, QueueOptions, RedisQueue, StoredDeadLetter};
use pushgate_shared::registry::{DeviceRegistry, EmbeddedDeviceRegistry, RedisDeviceRegistry};
use pushgate_shared::{Alert, Mode, Notification, Service, Target};
use pushgate_testkit::credentials::ApnsCredentialFiles;
use pushgate_testkit::{
    ApnsCredentials, MockApns, MockApnsOptions, MockFcm, MockFcmOptions, ServiceAccountFile,
};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

mod apps;
pub mod flaky;
mod mocks;
mod queue;

pub use apps::*;
pub use mocks::*;
use queue::{OpenedBackend, OpenedQueue, open_queue};

/// The APNs device token of the field reports.
pub const TOK64: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
/// The FCM device token of the field reports.
pub const FCM_TOKEN: &str = "fcm-test-token-0001";
/// The default topic of the production APNs app (the field reports' bundle id).
pub const TOPIC: &str = "com.example.chat";
/// The default topic of the sandbox APNs app.
pub const SANDBOX_TOPIC: &str = "com.example.chat.sandbox";

/// Upper bound for one test, so a hang fails instead of stalling the run.
pub const HANG_GUARD: Duration = Duration::from_secs(90);
/// Upper bound for one awaited condition.
pub const WAIT_LIMIT: Duration = Duration::from_secs(30);
/// How long a request may wait for the first attempt with sync-wait on: far above any
/// real first attempt, it only guards against hangs (production keeps it below 1.5 s).
pub const SYNC_WAIT_MS: u64 = 20_000;
/// How often a condition is looked at again.
const POLL: Duration = Duration::from_millis(20);

/// Which queue the gateway runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Redis,
    Embedded,
}

/// Generates one test per backend from `async fn name(backend: Backend)` functions.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod redis_backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    crate::support::guarded(super::$name(crate::support::Backend::Redis)).await;
                }
            )*
        }
        mod embedded_backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    crate::support::guarded(super::$name(crate::support::Backend::Embedded))
                        .await;
                }
            )*
        }
    };
}
pub(crate) use on_both_backends;

/// Runs a test under the hang guard.
pub async fn guarded(test: impl Future<Output = ()>) {
    tokio::time::timeout(HANG_GUARD, test)
        .await
        .expect("the test hung");
}

/// A change to the dispatcher's configuration, applied before it starts.
type Tune = Box<dyn FnOnce(&mut DispatcherConfig)>;

/// How to put a gateway together; [`Setup::start`] starts it.
pub struct Setup {
    backend: Backend,
    name: &'static str,
    sync_wait: bool,
    start_dispatcher: bool,
    tunes: Vec<Tune>,
}

impl Setup {
    /// Sync-wait on, the dispatcher started, quick test pacing.
    pub fn new(backend: Backend, name: &'static str) -> Self {
        Setup {
            backend,
            name,
            sync_wait: true,
            start_dispatcher: true,
            tunes: Vec::new(),
        }
    }

    /// Turns sync-wait on (answers carry the first attempt's outcome) or off (answers
    /// come once the job is queued, the default in production).
    pub fn sync_wait(mut self, on: bool) -> Self {
        self.sync_wait = on;
        self
    }

    /// Changes the dispatcher's configuration (apps included) before it starts.
    pub fn dispatcher(mut self, tune: impl FnOnce(&mut DispatcherConfig) + 'static) -> Self {
        self.tunes.push(Box::new(tune));
        self
    }

    /// Leaves the dispatcher stopped until [`Gateway::start_dispatcher`].
    pub fn defer_dispatcher(mut self) -> Self {
        self.start_dispatcher = false;
        self
    }

    /// Starts the mocks, the queue, ingest and (unless deferred) the dispatcher.
    pub async fn start(self) -> Gateway {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| "warn".into()),
            )
            .with_test_writer()
            .try_init();

        let apns_credentials = ApnsCredentials::generate().expect("generating APNs credentials");
        let apns_files = apns_credentials
            .write_files()
            .expect("writing APNs key files");
        let apns_options = || MockApnsOptions {
            auth: apns_credentials.token_auth(),
            ..MockApnsOptions::default()
        };
        let apns = MockApns::start(apns_options()).await.expect("mock APNs");
        let sandbox = MockApns::start(apns_options())
            .await
            .expect("mock APNs sandbox");
        let fcm = MockFcm::start(MockFcmOptions::default())
            .await
            .expect("mock FCM");
        let account = fcm.service_account().expect("writing the service account");

        let opened = open_queue(self.backend, self.name).await;
        let queue = opened.queue.clone();
        let token = apns_token(&apns_credentials, &apns_files);
        let mut config = DispatcherConfig {
            apps: vec![
                fcm_app("fcm", &fcm, &account),
                apns_app("apns_prod", Mode::Prod, &apns, token.clone(), Some(TOPIC)),
                apns_app("apns_dev", Mode::Dev, &sandbox, token, Some(SANDBOX_TOPIC)),
            ],
            read_batch: 64,
            read_block_ms: 100,
            claim_interval_ms: 50,
            retry_poll_ms: 20,
            shutdown_deadline_ms: 500,
            retry: RetryPolicy {
                max_attempts: 5,
                base_delay_ms: 20,
                max_delay_ms: 100,
                ..RetryPolicy::default()
            },
            ..DispatcherConfig::default()
        };
        for tune in self.tunes {
            tune(&mut config);
        }

        let stop = CancellationToken::new();
        let ingest_config = IngestConfig {
            sync_wait_ms: if self.sync_wait { SYNC_WAIT_MS } else { 0 },
            ..IngestConfig::default()
        };
        // The device registry beside the queue, shared by ingest and the dispatcher.
        let registry: Arc<dyn DeviceRegistry> = match &opened.backend {
            OpenedBackend::Redis { url, options, .. } => Arc::new(
                RedisDeviceRegistry::connect(url, &options.prefix)
                    .await
                    .expect("connecting the registry to the test Redis"),
            ),
            OpenedBackend::Embedded(_) => Arc::new(EmbeddedDeviceRegistry::new()),
        };
        let state =
            ingest::serve::state_with_registry(&ingest_config, queue.clone(), registry.clone())
                .await
                .expect("ingest state");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let address = listener.local_addr().expect("a bound address");
        tokio::spawn(ingest::serve_listener(
            listener,
            ingest::app(state),
            stop.clone().cancelled_owned(),
        ));

        let mut gateway = Gateway {
            backend: self.backend,
            queue,
            registry,
            opened,
            apns,
            sandbox,
            fcm,
            apns_credentials,
            config,
            address,
            client: reqwest::Client::builder()
                .no_proxy()
                .build()
                .expect("an HTTP client"),
            stop,
            dispatcher: None,
            _apns_files: apns_files,
            _account: account,
        };
        if self.start_dispatcher {
            gateway.start_dispatcher();
        }
        gateway
    }
}

/// A running gateway and its mocks; dropping it stops ingest and the dispatcher.
pub struct Gateway {
    pub backend: Backend,
    pub queue: Arc<dyn Queue>,
    /// The device registry of the webhook path, on the queue's backend.
    pub registry: Arc<dyn DeviceRegistry>,
    /// Mock APNs production, behind the app `apns_prod` (default topic [`TOPIC`]).
    pub apns: MockApns,
    /// Mock APNs sandbox, behind the app `apns_dev` (default topic [`SANDBOX_TOPIC`]).
    pub sandbox: MockApns,
    /// Mock FCM, behind the app `fcm`.
    pub fcm: MockFcm,
    pub apns_credentials: ApnsCredentials,
    /// The dispatcher's configuration.
    pub config: DispatcherConfig,
    opened: OpenedQueue,
    address: SocketAddr,
    client: reqwest::Client,
    stop: CancellationToken,
    dispatcher: Option<RunningDispatcher>,
    _apns_files: ApnsCredentialFiles,
    _account: ServiceAccountFile,
}

/// A dispatcher started by the test, and its own stop switch.
struct RunningDispatcher {
    stop: CancellationToken,
    task: JoinHandle<Result<(), DispatchError>>,
}

impl Gateway {
    /// Starts the dispatcher with [`Gateway::config`] on the gateway's queue and registry.
    pub fn start_dispatcher(&mut self) {
        self.start_dispatcher_on(self.queue.clone());
    }

    /// Starts the dispatcher with [`Gateway::config`] on `queue` and the gateway's registry.
    pub fn start_dispatcher_on(&mut self, queue: Arc<dyn Queue>) {
        assert!(self.dispatcher.is_none(), "the dispatcher runs already");
        let stop = self.stop.child_token();
        let task = tokio::spawn(dispatcher::run_with_registry(
            self.config.clone(),
            queue,
            self.registry.clone(),
            stop.clone().cancelled_owned(),
        ));
        self.dispatcher = Some(RunningDispatcher { stop, task });
    }

    /// Stops the dispatcher and checks that it ended cleanly.
    pub async fn stop_dispatcher(&mut self) {
        let running = self.dispatcher.take().expect("the dispatcher runs");
        running.stop.cancel();
        running
            .task
            .await
            .expect("the dispatcher task did not panic")
            .expect("the dispatcher stopped without error");
    }

    /// A new handle on the gateway's queue, as a restarted process opens it: each
    /// consumer starts over from its own pending entries.
    pub async fn reopened_queue(&self) -> Arc<dyn Queue> {
        match &self.opened.backend {
            OpenedBackend::Redis { url, options, .. } => Arc::new(
                RedisQueue::connect(url, options.clone())
                    .await
                    .expect("connecting to the test Redis"),
            ),
            OpenedBackend::Embedded(root) => Arc::new(root.reopen()),
        }
    }

    /// The Redis URL and queue options, on the Redis backend.
    pub fn redis(&self) -> Option<(&str, &QueueOptions)> {
        match &self.opened.backend {
            OpenedBackend::Redis { url, options, .. } => Some((url, options)),
            OpenedBackend::Embedded(_) => None,
        }
    }

    /// Stops ingest and the dispatcher and checks that the dispatcher ended cleanly.
    pub async fn stop(mut self) {
        if self.dispatcher.is_some() {
            self.stop_dispatcher().await;
        }
        self.stop.cancel();
    }

    /// The ingest listener's address.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// `POST /{version}/notification/{device_id}` with `body` as JSON.
    pub async fn push(&self, version: &str, device_id: &str, body: &Value) -> Reply {
        let url = format!("http://{}/{version}/notification/{device_id}", self.address);
        let response = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .expect("ingest answers");
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .map(|value| value.to_str().expect("an ASCII header").to_owned());
        let raw = response.bytes().await.expect("a complete answer");
        let body = serde_json::from_slice(&raw).unwrap_or_else(|error| {
            panic!(
                "answer is not JSON ({error}): {}",
                String::from_utf8_lossy(&raw)
            )
        });
        Reply {
            status,
            body,
            retry_after,
        }
    }

    /// `POST /v3/notification/{device_id}`.
    pub async fn push_v3(&self, device_id: &str, body: &Value) -> Reply {
        self.push("v3", device_id, body).await
    }

    /// Sends `request` to ingest and reads the answer as JSON (`null` when empty).
    pub async fn call(&self, request: reqwest::RequestBuilder) -> Reply {
        let response = request.send().await.expect("ingest answers");
        let status = response.status().as_u16();
        let raw = response.bytes().await.expect("a complete answer");
        let body = serde_json::from_slice(&raw).unwrap_or(Value::Null);
        Reply {
            status,
            body,
            retry_after: None,
        }
    }

    /// A request to `path` on ingest.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("http://{}{path}", self.address))
    }

    /// Up to 100 dead letters, oldest first.
    pub async fn dead_letters(&self) -> Vec<StoredDeadLetter> {
        self.queue
            .dead_letters(100)
            .await
            .expect("listing dead letters")
    }

    /// Waits until there are `count` dead letters, and returns them.
    pub async fn wait_for_dead_letters(&self, count: usize) -> Vec<StoredDeadLetter> {
        let what = format!("{count} dead letters");
        eventually(&what, async || self.dead_letters().await.len() >= count).await;
        self.dead_letters().await
    }

    /// The dead letter of the job for `device_token`, if there is one.
    pub async fn dead_letter_for(&self, device_token: &str) -> Option<StoredDeadLetter> {
        self.dead_letters()
            .await
            .into_iter()
            .find(|stored| stored.letter.job.notification.target.device_token == device_token)
    }

    /// True once the queue remembers `device_token` as dead for `service`.
    pub async fn is_dead(&self, service: Service, device_token: &str) -> bool {
        self.queue
            .is_dead_token(service, device_token)
            .await
            .expect("dead-token lookup")
    }

    /// Every mock's request count, summed.
    pub fn upstream_requests(&self) -> u64 {
        [
            self.apns.control(),
            self.sandbox.control(),
            self.fcm.control(),
        ]
        .iter()
        .map(|control| control.request_count())
        .sum()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// An answer as the API client sees it.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub retry_after: Option<String>,
}

impl Reply {
    /// Asserts MongoosePush's success answer: 200 with the body `null`.
    #[track_caller]
    pub fn assert_ok(&self, what: &str) {
        assert_eq!((self.status, &self.body), (200, &Value::Null), "{what}");
    }
}

/// An alert (title `t`, body `b`) to `device_token`, prod mode, as tests send it behind
/// ingest's back.
pub fn alert_notification(service: Service, device_token: &str) -> Notification {
    Notification::alert(service, device_token, "t", "b")
}

/// Polls `check` until it holds; fails the test after [`WAIT_LIMIT`].
pub async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT_LIMIT;
    loop {
        if check().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "gave up waiting for: {what}"
        );
        tokio::time::sleep(POLL).await;
    }
}

//! The dispatcher under queue faults: a queue operation that fails while a job is being
//! settled (acknowledge, schedule a retry, dead-letter) must not strand the job or send it
//! twice, and a Redis connection cut while sends are in flight must not send them twice.

mod support;

use std::sync::Arc;
use std::time::Duration;

use pushgate_shared::queue::RedisQueue;
use pushgate_testkit::ErrorToken;
use pushgate_testkit::redis_server::CuttableRelay;
use serde_json::{Value, json};
use support::flaky::{FlakyQueue, Operation};
use support::*;

fn alert() -> Value {
    json!({"service": "fcm", "alert": {"title": "t", "body": "b"}})
}

/// Each settling step fails once; the job still ends where it should, exactly once, and a
/// restarted dispatcher (same consumer name) finds nothing of it left pending.
async fn a_failed_settling_step_is_tried_again(backend: Backend) {
    let mut gateway = Setup::new(backend, "faults-settle")
        .defer_dispatcher()
        .dispatcher(|config| {
            config.consumer_name = Some("dispatcher-a".to_owned());
            config.max_in_flight_per_app = 1;
        })
        .start()
        .await;
    let flaky = Arc::new(FlakyQueue::new(gateway.queue.clone()));
    gateway.start_dispatcher_on(flaky.clone());
    gateway.fcm.set_error_tokens([
        ErrorToken::new("fcm-retried", 503, "UNAVAILABLE").times(1),
        ErrorToken::new("fcm-dead-lettered", 404, "NOT_FOUND").with_details(false),
    ]);

    flaky.fail(Operation::Ack, 1);
    gateway
        .push_v3("fcm-acked", &alert())
        .await
        .assert_ok("acked");

    flaky.fail(Operation::RetryLater, 1);
    let reply = gateway.push_v3("fcm-retried", &alert()).await;
    assert_eq!(
        (reply.status, reply.body),
        (503, json!({"reason": "service_internal"}))
    );
    wait_delivered(gateway.fcm.control(), "fcm-retried").await;

    flaky.fail(Operation::DeadLetter, 1);
    let reply = gateway.push_v3("fcm-dead-lettered", &alert()).await;
    assert_eq!(
        (reply.status, reply.body),
        (503, json!({"reason": "internal_config"}))
    );
    assert!(gateway.dead_letter_for("fcm-dead-lettered").await.is_some());
    for operation in [Operation::Ack, Operation::RetryLater, Operation::DeadLetter] {
        assert_eq!(flaky.failed(operation), 1, "{operation:?} failed once");
    }

    // A restart re-reads the consumer's own pending entries first: none may be left.
    gateway.stop_dispatcher().await;
    let reopened = gateway.reopened_queue().await;
    gateway.start_dispatcher_on(reopened);
    gateway
        .push_v3("fcm-sentinel", &alert())
        .await
        .assert_ok("after the restart");
    let sends = |token| sends_to(gateway.fcm.control(), token).len();
    assert_eq!(sends("fcm-acked"), 1, "delivered once");
    assert_eq!(sends("fcm-retried"), 2, "failed once, delivered once");
    assert_eq!(sends("fcm-dead-lettered"), 1, "sent once");
    assert_eq!(gateway.dead_letters().await.len(), 1);
    gateway.stop().await;
}

/// A failed read is tried again after a pause, and loses nothing.
async fn a_failed_read_loses_nothing(backend: Backend) {
    let mut gateway = Setup::new(backend, "faults-read")
        .defer_dispatcher()
        .start()
        .await;
    let flaky = Arc::new(FlakyQueue::new(gateway.queue.clone()));
    flaky.fail(Operation::Read, 3);
    gateway.start_dispatcher_on(flaky.clone());
    gateway
        .push_v3("fcm-read", &alert())
        .await
        .assert_ok("read");
    assert_eq!(flaky.failed(Operation::Read), 3);
    assert_eq!(only_send_to(gateway.fcm.control(), "fcm-read").status, 200);
    gateway.stop().await;
}

/// How many entries of the gateway's first job stream are pending in the group.
async fn pending(connection: &mut redis::aio::MultiplexedConnection, stream: &str) -> usize {
    let reply: redis::streams::StreamPendingCountReply = redis::cmd("XPENDING")
        .arg(stream)
        .arg("dispatchers")
        .arg("-")
        .arg("+")
        .arg(1000)
        .query_async(connection)
        .await
        .expect("XPENDING");
    reply.ids.len()
}

/// Redis only: the dispatcher's connections are cut while its sends wait on a slow
/// provider. Its reader starts over from its own pending entries, which are the very
/// sends in flight; none of them may be sent a second time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_redis_connection_does_not_send_jobs_in_flight_twice() {
    guarded(async {
        let mut gateway = Setup::new(Backend::Redis, "faults-cut")
            .sync_wait(false)
            .defer_dispatcher()
            .start()
            .await;
        let (url, options) = gateway.redis().expect("the Redis backend");
        let (url, options) = (url.to_owned(), options.clone());
        let stream = format!("{}:jobs:0", options.prefix);
        let relay = CuttableRelay::start(&url).await.unwrap();
        let through_relay = RedisQueue::connect(relay.url(), options).await.unwrap();
        gateway.queue.ensure_group().await.unwrap();
        gateway.start_dispatcher_on(Arc::new(through_relay));
        let mut redis = redis::Client::open(url)
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();

        let latency = Duration::from_millis(1500);
        gateway.fcm.set_latency(latency);
        let tokens: Vec<String> = (0..5).map(|i| format!("fcm-in-flight-{i}")).collect();
        for token in &tokens {
            gateway.push_v3(token, &alert()).await.assert_ok(token);
        }
        eventually("every job taken by the dispatcher", async || {
            pending(&mut redis, &stream).await == tokens.len()
        })
        .await;
        assert_eq!(gateway.fcm.control().request_count(), 0, "still in flight");
        relay.cut_all();

        for token in &tokens {
            wait_delivered(gateway.fcm.control(), token).await;
        }
        eventually("every job settled", async || {
            pending(&mut redis, &stream).await == 0
        })
        .await;
        // A second send of any job would reach the mock within its latency.
        tokio::time::sleep(latency + Duration::from_millis(500)).await;
        for token in &tokens {
            assert_eq!(
                sends_to(gateway.fcm.control(), token).len(),
                1,
                "{token} sent once"
            );
        }
        gateway.stop().await;
    })
    .await;
}

/// A configuration that would make the reader spin is refused at start, naming the key.
#[tokio::test]
async fn a_configuration_that_would_spin_is_refused_at_start() {
    let config = dispatcher::DispatcherConfig {
        read_batch: 0,
        ..dispatcher::DispatcherConfig::default()
    };
    let queue = Arc::new(pushgate_shared::queue::EmbeddedQueue::new(
        Default::default(),
    ));
    let started = dispatcher::run(config, queue, std::future::pending()).await;
    let error = started.expect_err("refused").to_string();
    assert_eq!(
        error,
        "invalid configuration: read_batch: must be at least 1"
    );
}

on_both_backends!(
    a_failed_settling_step_is_tried_again,
    a_failed_read_loses_nothing
);

//! The MongooseIM webhook through the router: mod_event_pusher_http's exact form bodies and
//! the SNS/RabbitMQ JSON shape, fanned out as one job per registered device.

mod common;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::*;
use ingest::webhook::fit::{PROVIDER_PAYLOAD_LIMIT_BYTES, json_len};
use ingest::{IngestState, WebhookConfig, app};
use pushgate_shared::queue::{Queue, QueueOptions, RedisQueue};
use pushgate_shared::registry::{Device, DeviceRegistry, DeviceSettings, EmbeddedDeviceRegistry};
use pushgate_shared::{Alert, Job, Mode, Priority, Service};
use pushgate_testkit::redis_server::{CuttableRelay, redis_url, unique_prefix};
use serde_json::{Value, json};

const FCM_A: &str = "fcm-test-token-0001";
const FCM_B: &str = "dGVzdA:APA91bHqN3Y-token_part";
const TOK64: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// A value as MongooseIM's `cow_qs:qs` encodes it: `A-Z a-z 0-9 - . _` kept, space as
/// `+`, every other byte of the UTF-8 text as `%XX`.
fn cow_qs(value: &str) -> String {
    value
        .bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => {
                char::from(byte).to_string()
            }
            b' ' => "+".to_owned(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// mod_event_pusher_http's default body, fields in its order.
fn mim_body(author: &str, server: &str, receiver: &str, message: &str) -> String {
    format!(
        "author={}&server={}&receiver={}&message={}",
        cow_qs(author),
        cow_qs(server),
        cow_qs(receiver),
        cow_qs(message)
    )
}

fn form(path: &str, body: impl Into<Body>) -> Request<Body> {
    Request::post(path)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.into())
        .unwrap()
}

fn settings(service: Service) -> DeviceSettings {
    DeviceSettings {
        service,
        mode: Mode::Prod,
        topic: None,
        tags: Vec::new(),
        silent: false,
        priority: None,
    }
}

async fn register(
    registry: &EmbeddedDeviceRegistry,
    user: &str,
    token: &str,
    settings: DeviceSettings,
) {
    let device = Device {
        device_token: token.to_owned(),
        settings,
        registered_at_ms: pushgate_shared::job::now_ms(),
    };
    registry.register(user, &device, 20).await.unwrap();
}

/// A router on `queue` whose registry has bob@localhost with one FCM device.
async fn with_bob(queue: Arc<dyn Queue>) -> (Router, EmbeddedDeviceRegistry) {
    let registry = EmbeddedDeviceRegistry::new();
    register(&registry, "bob@localhost", FCM_A, settings(Service::Fcm)).await;
    let state = IngestState::new(queue).with_registry(Arc::new(registry.clone()));
    (app(state), registry)
}

fn alert(job: &Job) -> &Alert {
    job.notification.alert.as_ref().expect("an alert push")
}

#[tokio::test]
async fn mongooseims_exact_body_becomes_one_alert_per_device() {
    let queue = embedded();
    let (router, _registry) = with_bob(queue.clone()).await;
    let body = "author=alice&server=localhost&receiver=bob&message=Hi+Test%21%26escape%3DHello";
    assert_eq!(
        body,
        mim_body("alice", "localhost", "bob", "Hi Test!&escape=Hello")
    );

    let reply = call(&router, form("/webhooks/mongooseim", body)).await;
    let jobs = queued_jobs(&queue).await;

    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.json(),
        json!({"user": "bob@localhost", "devices": 1, "queued": 1})
    );
    assert_eq!(jobs.len(), 1);
    let job = &jobs[0];
    assert_eq!(job.registry_user.as_deref(), Some("bob@localhost"));
    assert_eq!(job.notification.target.device_token, FCM_A);
    assert_eq!(job.notification.target.service, Service::Fcm);
    assert_eq!(
        alert(job),
        &Alert {
            title: "alice@localhost".to_owned(),
            body: "Hi Test!&escape=Hello".to_owned(),
            tag: Some("alice@localhost".to_owned()),
            ..Alert::default()
        }
    );
    assert!(job.notification.data.is_none());
}

#[tokio::test]
async fn plus_signs_emoji_and_right_to_left_text_survive_decoding() {
    let queue = embedded();
    let (router, registry) = with_bob(queue.clone()).await;
    register(&registry, "bob@example.com", FCM_A, settings(Service::Fcm)).await;
    let messages = [
        ("+15550100", "example.com", "Tom & Jerry: 1+1 = 2? 100% 😀"),
        ("alice", "localhost", "שלום עולם! مرحبا بالعالم 👋🏽"),
        ("alice", "localhost", "a+b %2B c=d&e"),
    ];

    for (author, server, message) in messages {
        let body = mim_body(author, server, "bob", message);
        let reply = call(&router, form("/webhooks/mongooseim", body)).await;
        assert_eq!(reply.status, StatusCode::OK, "{message}");
    }
    let jobs = queued_jobs(&queue).await;

    let seen: Vec<(&str, &str)> = jobs
        .iter()
        .map(|job| (alert(job).title.as_str(), alert(job).body.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            ("+15550100@example.com", messages[0].2),
            ("alice@localhost", messages[1].2),
            ("alice@localhost", messages[2].2),
        ]
    );
    // The literal B12 body, as field report B12 writes it.
    let reply = call(
        &router,
        form(
            "/webhooks/mongooseim",
            "author=%2B15550100&server=example.com&receiver=bob&message=Tom+%26+Jerry%3A+1%2B1+%3D+2%3F+100%25+%F0%9F%98%80",
        ),
    )
    .await;
    assert_eq!(reply.json()["queued"], 1);
}

#[tokio::test]
async fn an_empty_message_queues_nothing() {
    let queue = embedded();
    let (router, _registry) = with_bob(queue.clone()).await;

    let reply = call(
        &router,
        form(
            "/webhooks/mongooseim",
            mim_body("alice", "localhost", "bob", ""),
        ),
    )
    .await;

    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.json(),
        json!({"user": "bob@localhost", "devices": 1, "queued": 0, "skipped": "empty_message"})
    );
    assert!(queued_jobs(&queue).await.is_empty());
}

#[tokio::test]
async fn a_user_without_devices_gets_zero_jobs() {
    let queue = embedded();
    let (router, _registry) = with_bob(queue.clone()).await;

    let reply = call(
        &router,
        form(
            "/webhooks/mongooseim",
            mim_body("alice", "localhost", "nobody", "Hi"),
        ),
    )
    .await;

    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.json(),
        json!({"user": "nobody@localhost", "devices": 0, "queued": 0})
    );
    assert!(queued_jobs(&queue).await.is_empty());
}

#[tokio::test]
async fn bad_bodies_get_400_with_a_reason_and_queue_nothing() {
    let queue = embedded();
    let (router, _registry) = with_bob(queue.clone()).await;
    let json_request = |body: &str| {
        Request::post("/webhooks/mongooseim")
            .header("content-type", "application/json")
            .body(Body::from(body.to_owned()))
            .unwrap()
    };
    let cases: Vec<(&str, Request<Body>, &str)> = vec![
        (
            "missing receiver",
            form(
                "/webhooks/mongooseim",
                "author=alice&server=localhost&message=Hi",
            ),
            "missing_field",
        ),
        (
            "missing message",
            form(
                "/webhooks/mongooseim",
                "author=alice&server=localhost&receiver=bob",
            ),
            "missing_field",
        ),
        (
            "empty body",
            form("/webhooks/mongooseim", ""),
            "missing_field",
        ),
        (
            "twice the receiver",
            form(
                "/webhooks/mongooseim",
                "author=a&server=s&receiver=bob&receiver=eve&message=x",
            ),
            "duplicate_field",
        ),
        (
            "bad escape",
            form(
                "/webhooks/mongooseim",
                "author=alice&server=localhost&receiver=bob&message=%zz",
            ),
            "malformed_form",
        ),
        (
            "truncated UTF-8",
            form(
                "/webhooks/mongooseim",
                "author=alice&server=localhost&receiver=bob&message=%E0%A4",
            ),
            "malformed_form",
        ),
        (
            "receiver with a space",
            form(
                "/webhooks/mongooseim",
                "author=alice&server=localhost&receiver=b+b&message=x",
            ),
            "invalid_jid",
        ),
        (
            "JSON without message",
            json_request(r#"{"from_user_id":"alice@localhost","to_user_id":"bob@localhost"}"#),
            "missing_field",
        ),
        (
            "JSON number",
            json_request(
                r#"{"from_user_id":"alice@localhost","to_user_id":"bob@localhost","message":1}"#,
            ),
            "invalid_field",
        ),
        ("JSON array", json_request("[]"), "malformed_json"),
        (
            "presence event",
            json_request(r#"{"user_id":"bob@localhost","present":true}"#),
            "missing_field",
        ),
        (
            "plain text",
            Request::post("/webhooks/mongooseim")
                .header("content-type", "text/plain")
                .body(Body::from("Hi"))
                .unwrap(),
            "unsupported_content_type",
        ),
    ];

    for (what, request, reason) in cases {
        let reply = call(&router, request).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{what}");
        assert_eq!(reply.json()["reason"], reason, "{what}");
        assert!(reply.json()["message"].is_string(), "{what}");
    }
    assert!(queued_jobs(&queue).await.is_empty());
}

#[tokio::test]
async fn unknown_form_fields_are_ignored() {
    let queue = embedded();
    let (router, _registry) = with_bob(queue.clone()).await;
    let body = format!("{}&lang=en", mim_body("alice", "localhost", "bob", "Hi"));

    let reply = call(&router, form("/webhooks/mongooseim", body)).await;

    assert_eq!(reply.json()["queued"], 1);
}

#[tokio::test]
async fn the_sns_and_rabbitmq_json_shape_is_accepted() {
    let queue = embedded();
    let (router, _registry) = with_bob(queue.clone()).await;
    let body = json!({
        "from_user_id": "Alice@localhost/res1",
        "to_user_id": "bob@localhost/phone",
        "message": "Hello",
        "timestamp": 1_700_000_000,
    });

    let reply = call(&router, post_json("/webhooks/mongooseim", body.to_string())).await;
    let jobs = queued_jobs(&queue).await;

    assert_eq!(
        reply.json(),
        json!({"user": "bob@localhost", "devices": 1, "queued": 1})
    );
    assert_eq!(alert(&jobs[0]).title, "alice@localhost");
    assert_eq!(alert(&jobs[0]).body, "Hello");
}

#[tokio::test]
async fn every_device_gets_its_own_job_with_its_own_settings() {
    let queue = embedded();
    let (router, registry) = with_bob(queue.clone()).await;
    let silent_fcm = DeviceSettings {
        silent: true,
        priority: Some(Priority::High),
        tags: vec!["beta".to_owned()],
        ..settings(Service::Fcm)
    };
    let apns = DeviceSettings {
        mode: Mode::Dev,
        topic: Some("com.example.chat".to_owned()),
        ..settings(Service::Apns)
    };
    register(&registry, "bob@localhost", FCM_B, silent_fcm).await;
    register(&registry, "bob@localhost", TOK64, apns).await;

    let reply = call(
        &router,
        form(
            "/webhooks/mongooseim",
            mim_body("alice", "localhost", "bob", "Hi"),
        ),
    )
    .await;
    let mut jobs = queued_jobs(&queue).await;
    jobs.sort_by(|a, b| {
        a.notification
            .target
            .device_token
            .cmp(&b.notification.target.device_token)
    });

    assert_eq!(
        reply.json(),
        json!({"user": "bob@localhost", "devices": 3, "queued": 3})
    );
    let ids: std::collections::HashSet<_> = jobs.iter().map(|job| job.id.clone()).collect();
    assert_eq!(ids.len(), 3, "one job, with its own id, per device");
    let [apns_job, silent_job, plain_job] = &jobs[..] else {
        panic!("three jobs: {jobs:?}");
    };
    assert_eq!(apns_job.notification.target.device_token, TOK64);
    assert_eq!(apns_job.notification.target.service, Service::Apns);
    assert_eq!(apns_job.notification.target.mode, Mode::Dev);
    assert_eq!(
        apns_job.notification.target.topic.as_deref(),
        Some("com.example.chat")
    );
    assert_eq!(alert(apns_job).body, "Hi");

    assert_eq!(silent_job.notification.target.device_token, FCM_B);
    assert!(silent_job.notification.alert.is_none());
    assert_eq!(silent_job.notification.priority, Some(Priority::High));
    assert_eq!(silent_job.notification.target.tags, ["beta"]);
    assert_eq!(
        Value::Object(silent_job.notification.data.clone().unwrap()),
        json!({"last-message-sender": "alice@localhost", "last-message-body": "Hi", "message-count": 1})
    );

    assert_eq!(plain_job.notification.target.device_token, FCM_A);
    assert!(
        jobs.iter()
            .all(|job| job.registry_user.as_deref() == Some("bob@localhost"))
    );
}

#[tokio::test]
async fn a_100_kib_message_is_accepted_and_cut_to_fit_the_provider() {
    let queue = embedded();
    let (router, registry) = with_bob(queue.clone()).await;
    let silent = DeviceSettings {
        silent: true,
        ..settings(Service::Apns)
    };
    register(&registry, "bob@localhost", TOK64, silent).await;
    // Mixed widths, so a cut in the wrong place would split a character.
    let unit = "Grüße, 世界! 😀 \"quoted\" ";
    let message = unit.repeat(100 * 1024 / unit.len());
    assert!(message.len() > 99 * 1024 && message.len() <= 100 * 1024);
    let body = mim_body("alice", "localhost", "bob", &message);
    assert!(body.len() > 64 * 1024, "over the API's default body limit");

    let reply = call(&router, form("/webhooks/mongooseim", body)).await;
    let jobs = queued_jobs(&queue).await;

    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json()["queued"], 2);
    for job in &jobs {
        let (sender, text) = match &job.notification.alert {
            Some(alert) => (alert.title.clone(), alert.body.clone()),
            None => {
                let data = job.notification.data.as_ref().unwrap();
                (
                    data["last-message-sender"].as_str().unwrap().to_owned(),
                    data["last-message-body"].as_str().unwrap().to_owned(),
                )
            }
        };
        assert!(message.starts_with(&text), "a prefix of the message");
        assert!(
            text.len() > 2500,
            "most of the room is used ({} bytes)",
            text.len()
        );
        // The provider sees the texts plus its envelope; the texts leave that room free.
        assert!(2 * json_len(&sender) + json_len(&text) + 512 <= PROVIDER_PAYLOAD_LIMIT_BYTES);
    }
}

#[tokio::test]
async fn bodies_over_the_webhook_limit_get_413() {
    let queue = embedded();
    let (router, _registry) = with_bob(queue.clone()).await;
    let body = mim_body("alice", "localhost", "bob", &"x".repeat(300 * 1024));

    let reply = call(&router, form("/webhooks/mongooseim", body)).await;

    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(reply.json()["reason"], "payload_too_large");
    assert!(queued_jobs(&queue).await.is_empty());
}

#[tokio::test]
async fn the_path_and_the_default_domain_are_configurable() {
    let queue = embedded();
    let registry = EmbeddedDeviceRegistry::new();
    register(
        &registry,
        "bob@chat.example.org",
        FCM_A,
        settings(Service::Fcm),
    )
    .await;
    let mut state = IngestState::new(queue.clone()).with_registry(Arc::new(registry));
    state.webhook = Arc::new(WebhookConfig {
        path: "/hooks/mim".to_owned(),
        default_domain: Some("chat.example.org".to_owned()),
        ..WebhookConfig::default()
    });
    let router = app(state);
    let body = mim_body("alice", "localhost", "bob", "Hi");

    let moved = call(&router, form("/webhooks/mongooseim", body.clone())).await;
    let reply = call(&router, form("/hooks/mim", body)).await;

    assert_eq!(moved.status, StatusCode::NOT_FOUND);
    assert_eq!(
        reply.json(),
        json!({"user": "bob@chat.example.org", "devices": 1, "queued": 1})
    );
    assert_eq!(
        alert(&queued_jobs(&queue).await[0]).title,
        "alice@localhost"
    );
}

#[tokio::test]
async fn a_queue_that_cannot_append_answers_503() {
    let relay = CuttableRelay::start(&redis_url()).await.unwrap();
    let options = QueueOptions {
        prefix: unique_prefix("webhook_down"),
        ..QueueOptions::default()
    };
    let queue = RedisQueue::connect(relay.url(), options).await.unwrap();
    let (router, _registry) = with_bob(Arc::new(queue)).await;
    drop(relay);

    let reply = call(
        &router,
        form(
            "/webhooks/mongooseim",
            mim_body("alice", "localhost", "bob", "Hi"),
        ),
    )
    .await;

    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        reply.json(),
        json!({"user": "bob@localhost", "devices": 1, "queued": 0, "reason": "unable_to_connect"})
    );
}

//! The device registry API through the router, on the Redis registry (a real
//! `redis-server`) and on the embedded one: create, update, list, delete, the device cap,
//! and one clear JSON error per kind of bad input.

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::*;
use ingest::{IngestState, WebhookConfig, app};
use pushgate_shared::registry::{DeviceRegistry, EmbeddedDeviceRegistry, RedisDeviceRegistry};
use pushgate_testkit::redis_server::{CuttableRelay, redis_url, unique_prefix};
use serde_json::{Value, json};

const HANG_GUARD: Duration = Duration::from_secs(60);
const FCM_TOKEN: &str = "dGVzdA:APA91bHqN3Y-token_part";
const APNS_TOKEN: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

#[derive(Clone, Copy, Debug)]
enum Backend {
    Redis,
    Embedded,
}

async fn registry(backend: Backend) -> Arc<dyn DeviceRegistry> {
    match backend {
        Backend::Redis => Arc::new(
            RedisDeviceRegistry::connect(&redis_url(), &unique_prefix("registry_api"))
                .await
                .expect("connecting to the test Redis"),
        ),
        Backend::Embedded => Arc::new(EmbeddedDeviceRegistry::new()),
    }
}

/// The router on `backend`'s registry, with at most `cap` devices per user.
async fn api(backend: Backend, cap: usize) -> Router {
    let mut state = IngestState::new(embedded()).with_registry(registry(backend).await);
    state.webhook = Arc::new(WebhookConfig {
        max_devices_per_user: cap,
        ..WebhookConfig::default()
    });
    app(state)
}

fn put(path: &str, body: &str) -> Request<Body> {
    Request::put(path)
        .header("content-type", "application/json")
        .body(Body::from(body.to_owned()))
        .unwrap()
}

fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

fn delete(path: &str) -> Request<Body> {
    Request::delete(path).body(Body::empty()).unwrap()
}

/// The listed devices without their registration times, which the clock decides.
fn timeless(devices: &Value) -> Value {
    let mut devices = devices.clone();
    for device in devices.as_array_mut().unwrap() {
        let at = device.as_object_mut().unwrap().remove("registered_at_ms");
        assert!(at.unwrap().as_u64().unwrap() > 1_600_000_000_000);
    }
    devices
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod redis_backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    tokio::time::timeout(super::HANG_GUARD, super::$name(super::Backend::Redis))
                        .await
                        .expect("the test hung");
                }
            )*
        }
        mod embedded_backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    tokio::time::timeout(super::HANG_GUARD, super::$name(super::Backend::Embedded))
                        .await
                        .expect("the test hung");
                }
            )*
        }
    };
}

on_both_backends!(
    create_update_and_list,
    jids_are_keys_in_lower_case,
    delete_a_device_then_forget_the_user,
    the_cap_evicts_the_oldest_and_the_answer_says_so,
);

async fn create_update_and_list(backend: Backend) {
    let api = api(backend, 20).await;
    let path = format!("/api/v1/users/bob@example.com/devices/{FCM_TOKEN}");

    let created = call(&api, put(&path, r#"{"service":"fcm"}"#)).await;
    let full = r#"{"service":"apns","mode":"dev","topic":"com.example.chat","tags":["beta"],"silent":true,"priority":"high"}"#;
    let apns = format!("/api/v1/users/bob@example.com/devices/{APNS_TOKEN}");
    call(&api, put(&apns, full)).await;
    let updated = call(&api, put(&path, r#"{"service":"fcm","priority":"normal"}"#)).await;
    let listed = call(&api, get("/api/v1/users/bob@example.com/devices")).await;

    assert_eq!(created.status, StatusCode::CREATED);
    let answer = created.json();
    assert_eq!(answer["user"], "bob@example.com");
    assert_eq!(
        (answer["created"].clone(), answer["devices"].clone()),
        (json!(true), json!(1))
    );
    assert_eq!(answer["evicted"], json!([]));
    assert_eq!(answer["device"]["device_token"], FCM_TOKEN);
    assert_eq!(answer["device"]["service"], "fcm");
    assert_eq!(answer["device"]["mode"], "prod");

    assert_eq!(updated.status, StatusCode::OK);
    assert_eq!(updated.json()["created"], false);
    assert_eq!(updated.json()["devices"], 2);

    assert_eq!(listed.status, StatusCode::OK);
    assert_eq!(listed.json()["user"], "bob@example.com");
    assert_eq!(
        timeless(&listed.json()["devices"]),
        json!([
            {"device_token": APNS_TOKEN, "service": "apns", "mode": "dev",
             "topic": "com.example.chat", "tags": ["beta"], "silent": true, "priority": "high"},
            {"device_token": FCM_TOKEN, "service": "fcm", "mode": "prod",
             "silent": false, "priority": "normal"},
        ]),
        "the update moved the FCM device to the newest place"
    );
}

async fn jids_are_keys_in_lower_case(backend: Backend) {
    let api = api(backend, 20).await;

    let created = call(
        &api,
        put(
            "/api/v1/users/Bob@Example.COM/devices/t1",
            r#"{"service":"fcm"}"#,
        ),
    )
    .await;
    let listed = call(&api, get("/api/v1/users/bob@example.com/devices")).await;
    let other = call(&api, get("/api/v1/users/alice@example.com/devices")).await;

    assert_eq!(created.json()["user"], "bob@example.com");
    assert_eq!(listed.json()["devices"].as_array().unwrap().len(), 1);
    assert_eq!(
        other.status,
        StatusCode::OK,
        "an unknown user has no devices"
    );
    assert_eq!(other.json()["devices"], json!([]));
}

async fn delete_a_device_then_forget_the_user(backend: Backend) {
    let api = api(backend, 20).await;
    for token in ["t1", "t2", "t3"] {
        let path = format!("/api/v1/users/bob@example.com/devices/{token}");
        call(&api, put(&path, r#"{"service":"fcm"}"#)).await;
    }

    let removed = call(&api, delete("/api/v1/users/bob@example.com/devices/t2")).await;
    let again = call(&api, delete("/api/v1/users/bob@example.com/devices/t2")).await;
    let forgotten = call(&api, delete("/api/v1/users/bob@example.com")).await;
    let listed = call(&api, get("/api/v1/users/bob@example.com/devices")).await;
    let forgotten_again = call(&api, delete("/api/v1/users/bob@example.com")).await;

    assert_eq!(removed.status, StatusCode::OK);
    assert_eq!(
        removed.json(),
        json!({"user": "bob@example.com", "device_token": "t2", "removed": true})
    );
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    assert_eq!(again.json()["reason"], "device_not_found");
    assert_eq!(
        forgotten.json(),
        json!({"user": "bob@example.com", "removed": 2})
    );
    assert_eq!(listed.json()["devices"], json!([]));
    assert_eq!(forgotten_again.status, StatusCode::OK);
    assert_eq!(forgotten_again.json()["removed"], 0);
}

async fn the_cap_evicts_the_oldest_and_the_answer_says_so(backend: Backend) {
    let api = api(backend, 2).await;
    let mut answers = Vec::new();
    for token in ["t1", "t2", "t3"] {
        let path = format!("/api/v1/users/bob@example.com/devices/{token}");
        answers.push(call(&api, put(&path, r#"{"service":"fcm"}"#)).await.json());
        // Registration times are in milliseconds: keep them apart so the order is theirs.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let listed = call(&api, get("/api/v1/users/bob@example.com/devices"))
        .await
        .json();

    assert_eq!(answers[1]["evicted"], json!([]));
    assert_eq!(answers[2]["evicted"], json!(["t1"]));
    assert_eq!(answers[2]["devices"], 2);
    let tokens: Vec<&str> = listed["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["device_token"].as_str().unwrap())
        .collect();
    assert_eq!(tokens, ["t2", "t3"]);
}

#[tokio::test]
async fn each_kind_of_bad_input_has_its_own_reason() {
    let api = api(Backend::Embedded, 20).await;
    let device = |jid: &str, token: &str| format!("/api/v1/users/{jid}/devices/{token}");
    let ok = device("bob@example.com", "t1");
    let long_topic = format!(r#"{{"service":"apns","topic":"{}"}}"#, "t".repeat(256));
    let many_tags = json!({"service": "fcm", "tags": vec!["x"; 17]}).to_string();
    let long_tag = json!({"service": "fcm", "tags": ["y".repeat(65)]}).to_string();
    let long_token = device("bob@example.com", &"a".repeat(1025));
    let huge = format!(r#"{{"service":"fcm","topic":"{}"}}"#, "t".repeat(70_000));
    let text_plain = Request::put(&ok)
        .header("content-type", "text/plain")
        .body(Body::from(r#"{"service":"fcm"}"#))
        .unwrap();

    let cases: Vec<(&str, Request<Body>, u16, &str)> = vec![
        (
            "no domain",
            put(&device("bob", "t1"), r#"{"service":"fcm"}"#),
            400,
            "invalid_jid",
        ),
        (
            "a resource",
            put(
                &device("bob@example.com%2Fphone", "t1"),
                r#"{"service":"fcm"}"#,
            ),
            400,
            "invalid_jid",
        ),
        (
            "bad JID on list",
            get("/api/v1/users/@example.com/devices"),
            400,
            "invalid_jid",
        ),
        (
            "bad JID on forget",
            delete("/api/v1/users/bob%20b@example.com"),
            400,
            "invalid_jid",
        ),
        (
            "unknown service",
            put(&ok, r#"{"service":"gcm"}"#),
            400,
            "unknown_service",
        ),
        (
            "no service",
            put(&ok, r#"{"mode":"prod"}"#),
            400,
            "missing_field",
        ),
        (
            "bad mode",
            put(&ok, r#"{"service":"fcm","mode":"staging"}"#),
            400,
            "invalid_field",
        ),
        (
            "bad priority",
            put(&ok, r#"{"service":"fcm","priority":"10"}"#),
            400,
            "invalid_field",
        ),
        (
            "unknown field",
            put(&ok, r#"{"service":"fcm","colour":"red"}"#),
            400,
            "invalid_field",
        ),
        (
            "tags not a list",
            put(&ok, r#"{"service":"fcm","tags":"beta"}"#),
            400,
            "invalid_field",
        ),
        (
            "malformed JSON",
            put(&ok, r#"{"service":"#),
            400,
            "malformed_json",
        ),
        (
            "topic too long",
            put(&ok, &long_topic),
            400,
            "field_too_large",
        ),
        (
            "too many tags",
            put(&ok, &many_tags),
            400,
            "field_too_large",
        ),
        ("tag too long", put(&ok, &long_tag), 400, "field_too_large"),
        (
            "token too long",
            put(&long_token, r#"{"service":"fcm"}"#),
            400,
            "field_too_large",
        ),
        (
            "token with a space",
            put(&device("bob@example.com", "a%20b"), r#"{"service":"fcm"}"#),
            400,
            "invalid_device_token",
        ),
        ("body too large", put(&ok, &huge), 413, "payload_too_large"),
        ("not JSON", text_plain, 415, "unsupported_content_type"),
        (
            "unknown device",
            delete(&device("bob@example.com", "nope")),
            404,
            "device_not_found",
        ),
    ];
    for (what, request, status, reason) in cases {
        let reply = call(&api, request).await;
        assert_eq!(reply.status.as_u16(), status, "{what}");
        assert_eq!(reply.json()["reason"], reason, "{what}");
        assert!(
            reply.json()["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{what}: a message says why"
        );
    }
    let listed = call(&api, get("/api/v1/users/bob@example.com/devices")).await;
    assert_eq!(
        listed.json()["devices"],
        json!([]),
        "nothing was registered"
    );
}

#[tokio::test]
async fn an_unreachable_registry_answers_503() {
    let relay = CuttableRelay::start(&redis_url()).await.unwrap();
    let registry = RedisDeviceRegistry::connect(relay.url(), &unique_prefix("registry_down"))
        .await
        .unwrap();
    let api = app(IngestState::new(embedded()).with_registry(Arc::new(registry)));
    drop(relay);

    let reply = tokio::time::timeout(
        HANG_GUARD,
        call(&api, get("/api/v1/users/bob@example.com/devices")),
    )
    .await
    .expect("the registry call gives up");

    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.json()["reason"], "unable_to_connect");
}

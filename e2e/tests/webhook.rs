//! The webhook path end to end: devices registered through the registry API, a
//! MongooseIM `mod_event_pusher_http` event fanned out to each of them through the real
//! dispatcher and mocks, and a dead token removed from the registry by the dispatcher.

mod support;

use pushgate_testkit::ErrorToken;
use reqwest::Method;
use serde_json::{Value, json};
use support::*;

const USER: &str = "bob@localhost";
const FCM_LIVE: &str = "fcm-bob-phone";
const FCM_DEAD: &str = "fcm-bob-old-tablet";

/// MongooseIM's default body for alice@localhost writing to bob.
const EVENT: &str = "author=alice&server=localhost&receiver=bob&message=Hi+Bob%21+%F0%9F%91%8B";

async fn register(gateway: &Gateway, token: &str, settings: Value) {
    let path = format!("/api/v1/users/{USER}/devices/{token}");
    let reply = gateway
        .call(gateway.request(Method::PUT, &path).json(&settings))
        .await;
    assert!(
        matches!(reply.status, 200 | 201),
        "registering {token}: {reply:?}"
    );
}

async fn chat_event(gateway: &Gateway) -> Value {
    let request = gateway
        .request(Method::POST, "/webhooks/mongooseim")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(EVENT);
    let reply = gateway.call(request).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.body
}

async fn registered_tokens(gateway: &Gateway) -> Vec<String> {
    let mut tokens: Vec<String> = gateway
        .registry
        .devices(USER)
        .await
        .expect("listing the registry")
        .into_iter()
        .map(|device| device.device_token)
        .collect();
    tokens.sort();
    tokens
}

async fn a_dead_token_leaves_the_registry_and_the_next_event_reaches_two(backend: Backend) {
    let gateway = Setup::new(backend, "webhook-fanout")
        .sync_wait(false)
        .start()
        .await;
    register(&gateway, FCM_LIVE, json!({"service": "fcm"})).await;
    register(&gateway, FCM_DEAD, json!({"service": "fcm"})).await;
    register(&gateway, TOK64, json!({"service": "apns"})).await;
    gateway
        .fcm
        .set_error_tokens([ErrorToken::new(FCM_DEAD, 404, "UNREGISTERED")]);

    let answer = chat_event(&gateway).await;
    assert_eq!(answer, json!({"user": USER, "devices": 3, "queued": 3}));

    wait_delivered(gateway.fcm.control(), FCM_LIVE).await;
    wait_delivered(gateway.apns.control(), TOK64).await;
    let fcm_send = only_send_to(gateway.fcm.control(), FCM_LIVE);
    let notification = &fcm_message(&fcm_send)["android"]["notification"];
    assert_eq!(notification["title"], "alice@localhost");
    assert_eq!(notification["body"], "Hi Bob! 👋");
    let apns_send = only_send_to(gateway.apns.control(), TOK64);
    assert_eq!(
        apns_send.request_data["aps"]["alert"],
        json!({"title": "alice@localhost", "body": "Hi Bob! 👋"})
    );
    assert_eq!(apns_headers(&apns_send)["apns-topic"], TOPIC);

    eventually("the dead FCM token leaves the registry", async || {
        registered_tokens(&gateway).await == [TOK64, FCM_LIVE]
    })
    .await;
    let listed = gateway
        .call(gateway.request(Method::GET, &format!("/api/v1/users/{USER}/devices")))
        .await;
    assert_eq!(listed.status, 200);
    assert!(
        !listed.body.to_string().contains(FCM_DEAD),
        "{:?}",
        listed.body
    );

    let answer = chat_event(&gateway).await;
    assert_eq!(answer, json!({"user": USER, "devices": 2, "queued": 2}));
    eventually("the second event reaches both live devices", async || {
        let delivered = |control, token| {
            sends_to(control, token)
                .iter()
                .filter(|send| send.status == 200)
                .count()
        };
        delivered(gateway.fcm.control(), FCM_LIVE) == 2
            && delivered(gateway.apns.control(), TOK64) == 2
    })
    .await;
    assert_eq!(
        sends_to(gateway.fcm.control(), FCM_DEAD).len(),
        1,
        "the dead token was tried once, by the first event only"
    );
    assert!(gateway.dead_letters().await.is_empty());
    gateway.stop().await;
}

/// A dead token of a MongoosePush API push (no registry user) leaves the registry alone:
/// only fanned-out jobs name the device entry they came from.
async fn an_api_push_to_a_dead_token_does_not_touch_the_registry(backend: Backend) {
    let mut gateway = Setup::new(backend, "webhook-api-dead")
        .sync_wait(false)
        .start()
        .await;
    register(&gateway, FCM_DEAD, json!({"service": "fcm"})).await;
    gateway
        .fcm
        .set_error_tokens([ErrorToken::new(FCM_DEAD, 404, "UNREGISTERED")]);

    let push = json!({"service": "fcm", "alert": {"title": "t", "body": "b"}});
    gateway.push_v3(FCM_DEAD, &push).await.assert_ok("queued");
    eventually("the token is known dead", async || {
        gateway
            .is_dead(pushgate_shared::Service::Fcm, FCM_DEAD)
            .await
    })
    .await;
    // Stopping lets the settling step finish: whatever it would do to the registry is done.
    gateway.stop_dispatcher().await;

    assert_eq!(registered_tokens(&gateway).await, [FCM_DEAD]);
    gateway.stop().await;
}

on_both_backends!(
    a_dead_token_leaves_the_registry_and_the_next_event_reaches_two,
    an_api_push_to_a_dead_token_does_not_touch_the_registry,
);

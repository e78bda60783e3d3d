//! FCM messages: every field of an alert, data as strings with no empty objects, nested
//! data, MongooseIM's option strings, bodiless alerts, the size limit and `mode:"dev"`
//! (scenarios 52, 53; field reports B01, B02, B09, B10, B16, B21).

use serde_json::{Value, json};

use crate::support::*;

/// Scenario 52: an FCM alert with every field. Data goes to `message.data` (for every
/// platform FCM serves), alert fields to `android.notification`.
async fn fcm_alert_with_every_field_scenario_52(backend: Backend) {
    let gateway = Setup::new(backend, "payload-s52").start().await;
    for (priority, android_priority) in [("normal", "NORMAL"), ("high", "HIGH")] {
        let token = format!("fcm:s52-{priority}");
        let body = json!({
            "service": "fcm", "priority": priority, "time_to_live": 3600,
            "mutable_content": true, "topic": "ignored.for.fcm",
            "alert": {"title": "title value", "body": "body value", "badge": 7,
                      "click_action": "click.action", "tag": "tag value", "sound": "bing"},
            "data": {"room": "r1"}
        });
        gateway.push_v3(&token, &body).await.assert_ok(priority);
        let send = only_send_to(gateway.fcm.control(), &token);
        assert_eq!(send.path, "/v1/projects/demo-project/messages:send");
        assert_eq!(
            send.request_data,
            json!({"message": {
                "token": token,
                "data": {"room": "r1"},
                "android": {
                    "priority": android_priority,
                    "ttl": "3600s",
                    "notification": {"title": "title value", "body": "body value",
                                     "click_action": "click.action", "tag": "tag value",
                                     "sound": "bing"}
                }
            }}),
            "{priority}"
        );
        let authorization = &send.request_headers["authorization"];
        assert!(authorization.starts_with("Bearer "), "{authorization}");
    }
    gateway.stop().await;
}

/// Scenario 53 and field report B01: a silent FCM push carries its data as strings (the
/// mock is strict and refuses anything else) and no notification block or empty object.
async fn fcm_silent_has_string_data_and_no_empty_objects_scenario_53_b01(backend: Backend) {
    let gateway = Setup::new(backend, "payload-s53").start().await;
    let body = json!({"service": "fcm",
                      "data": {"last-message-body": "1250",
                               "last-message-sender": "alice@example.com",
                               "message-count": 1, "urgent": true}});
    gateway.push_v3(FCM_TOKEN, &body).await.assert_ok("B01");
    let send = only_send_to(gateway.fcm.control(), FCM_TOKEN);
    assert_eq!(
        fcm_message(&send),
        &json!({"token": FCM_TOKEN,
                "data": {"last-message-body": "1250", "last-message-sender": "alice@example.com",
                         "message-count": "1", "urgent": "true"}})
    );
    gateway.stop().await;
}

/// Field report B02: nested data is JSON text for FCM, with no empty objects anywhere,
/// and stays real JSON for APNs.
async fn nested_data_is_text_for_fcm_and_json_for_apns_b02(backend: Backend) {
    let gateway = Setup::new(backend, "payload-b02").start().await;
    let data = json!({"event": "eyJrIjoidiJ9", "meta": {"room": "r1", "n": 2}, "tags": ["a", "b"]});
    let body = |service: &str| json!({"service": service, "alert": {"title": "Hi", "body": "Body text"}, "data": data});

    gateway
        .push_v3(FCM_TOKEN, &body("fcm"))
        .await
        .assert_ok("FCM");
    let send = only_send_to(gateway.fcm.control(), FCM_TOKEN);
    let message = fcm_message(&send);
    assert!(!has_empty_or_null(message), "no empty object: {message}");
    assert_eq!(message["data"]["event"], "eyJrIjoidiJ9");
    let meta: Value = serde_json::from_str(message["data"]["meta"].as_str().unwrap()).unwrap();
    assert_eq!(meta, json!({"room": "r1", "n": 2}));
    assert_eq!(message["data"]["tags"], r#"["a","b"]"#);
    assert_eq!(
        message["android"]["notification"],
        json!({"title": "Hi", "body": "Body text"})
    );

    gateway
        .push_v3(TOK64, &body("apns"))
        .await
        .assert_ok("APNs");
    let send = only_send_to(gateway.apns.control(), TOK64);
    assert_eq!(send.request_data["meta"], json!({"room": "r1", "n": 2}));
    assert_eq!(send.request_data["tags"], json!(["a", "b"]));
    assert_eq!(send.request_data["event"], "eyJrIjoidiJ9");
    gateway.stop().await;
}

/// Field report B09: MongooseIM's string-typed options are accepted; a numeric priority
/// or a non-numeric time to live is refused naming the field, with no provider call.
async fn mongooseim_option_strings_b09(backend: Backend) {
    let gateway = Setup::new(backend, "payload-b09").start().await;
    let pointer = |reply: &Reply| reply.body["errors"][0]["source"]["pointer"].clone();

    let bad_priority = json!({"service": "apns", "priority": "10", "mode": "dev",
        "alert": {"title": "alice@example.com", "tag": "alice@example.com", "body": "8", "badge": 1}});
    let reply = gateway.push_v3(TOK64, &bad_priority).await;
    assert_eq!(
        (reply.status, pointer(&reply)),
        (422, json!("/priority")),
        "{:?}",
        reply.body
    );

    let strings = json!({"service": "fcm", "mutable_content": "true", "time_to_live": "3600",
                         "alert": {"title": "t", "body": "b"}});
    gateway
        .push_v3(FCM_TOKEN, &strings)
        .await
        .assert_ok("string options");
    let send = only_send_to(gateway.fcm.control(), FCM_TOKEN);
    assert_eq!(fcm_message(&send)["android"]["ttl"], "3600s");

    let forever = json!({"service": "fcm", "time_to_live": "forever",
                         "alert": {"title": "t", "body": "b"}});
    let reply = gateway.push_v3("fcm-forever", &forever).await;
    assert_eq!(
        (reply.status, pointer(&reply)),
        (422, json!("/time_to_live")),
        "{:?}",
        reply.body
    );
    assert_eq!(
        gateway.upstream_requests(),
        1,
        "only the valid push was sent"
    );
    gateway.stop().await;
}

/// Field report B10: an alert without a body, or a push with neither alert nor data, is
/// refused naming the field; an empty body is a valid body.
async fn alerts_without_a_body_b10(backend: Backend) {
    let gateway = Setup::new(backend, "payload-b10").start().await;
    let pointer = |reply: &Reply| reply.body["errors"][0]["source"]["pointer"].clone();

    let no_body = json!({"service": "fcm", "alert": {"title": "room1@muclight.example.com"}});
    let reply = gateway.push_v3(FCM_TOKEN, &no_body).await;
    assert_eq!(
        (reply.status, pointer(&reply)),
        (422, json!("/alert/body")),
        "{:?}",
        reply.body
    );

    let nothing = json!({"service": "apns"});
    let reply = gateway.push_v3(TOK64, &nothing).await;
    assert_eq!(reply.status, 422, "{:?}", reply.body);
    assert_eq!(gateway.upstream_requests(), 0);

    let empty =
        json!({"service": "fcm", "alert": {"title": "room1@muclight.example.com", "body": ""}});
    gateway
        .push_v3(FCM_TOKEN, &empty)
        .await
        .assert_ok("empty body");
    let send = only_send_to(gateway.fcm.control(), FCM_TOKEN);
    assert_eq!(
        fcm_message(&send)["android"]["notification"],
        json!({"title": "room1@muclight.example.com", "body": ""})
    );
    gateway.stop().await;
}

/// Field report B16: FCM content over 4096 bytes is refused before sending (413); under
/// the limit it is delivered.
async fn fcm_size_is_checked_before_sending_b16(backend: Backend) {
    let gateway = Setup::new(backend, "payload-b16").start().await;
    let blob = |size: usize| json!({"service": "fcm", "data": {"blob": "y".repeat(size)}});

    let reply = gateway.push_v3("fcm-big", &blob(5000)).await;
    assert_eq!(
        (reply.status, reply.body),
        (413, json!({"reason": "payload_too_large"}))
    );
    assert_eq!(gateway.fcm.control().request_count(), 0);

    gateway
        .push_v3("fcm-fits", &blob(3500))
        .await
        .assert_ok("3500 bytes");
    assert_eq!(only_send_to(gateway.fcm.control(), "fcm-fits").status, 200);
    gateway.stop().await;
}

/// Field report B21 case 1: FCM ignores `mode` and `topic`; a dev-mode push is delivered
/// to the one FCM project with its data as strings.
async fn fcm_dev_mode_is_delivered_b21(backend: Backend) {
    let gateway = Setup::new(backend, "payload-b21").start().await;
    let body = json!({"service": "fcm", "mode": "dev", "priority": "high", "topic": TOPIC,
                      "data": {"message-count": 1}});
    gateway
        .push_v3(FCM_TOKEN, &body)
        .await
        .assert_ok("dev mode");
    let send = only_send_to(gateway.fcm.control(), FCM_TOKEN);
    assert_eq!(
        fcm_message(&send),
        &json!({"token": FCM_TOKEN, "data": {"message-count": "1"},
                "android": {"priority": "HIGH"}})
    );
    assert_eq!(gateway.upstream_requests(), 1);
    gateway.stop().await;
}

on_both_backends!(
    fcm_alert_with_every_field_scenario_52,
    fcm_silent_has_string_data_and_no_empty_objects_scenario_53_b01,
    nested_data_is_text_for_fcm_and_json_for_apns_b02,
    mongooseim_option_strings_b09,
    alerts_without_a_body_b10,
    fcm_size_is_checked_before_sending_b16,
    fcm_dev_mode_is_delivered_b21,
);

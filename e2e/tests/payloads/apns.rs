//! APNs requests: every field of an alert, topics, certificate apps, silent pushes and
//! the sandbox (scenarios 47-51, 54, 57; field reports B05-B08).

use std::collections::BTreeMap;

use pushgate_shared::Mode;
use pushgate_shared::job::now_ms;
use pushgate_testkit::{ApnsCredentials, ErrorToken, MockApns, MockApnsOptions};
use serde_json::{Value, json};

use crate::support::*;

fn headers(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
        .collect()
}

/// Scenarios 51 and 57: an APNs alert with every field, at both priorities.
async fn apns_alert_with_every_field_scenarios_51_57(backend: Backend) {
    let gateway = Setup::new(backend, "payload-s51").start().await;
    for (priority, apns_priority) in [("normal", "5"), ("high", "10")] {
        let token = format!("apns-s51-{priority}");
        let body = json!({
            "service": "apns", "priority": priority, "topic": TOPIC, "mutable_content": true,
            "time_to_live": 3600,
            "alert": {"title": "title value", "body": "body value", "badge": 7,
                      "click_action": "click.action", "tag": "tag value", "sound": "bing"},
            "data": {"room": "r1", "count": 2}
        });
        let before = now_ms();
        gateway.push_v3(&token, &body).await.assert_ok(priority);

        let send = only_send_to(gateway.apns.control(), &token);
        assert_eq!(send.path, format!("/3/device/{token}"));
        assert_eq!(send.http_version, "HTTP/2.0");
        assert_eq!(
            send.request_data,
            json!({"aps": {"alert": {"title": "title value", "body": "body value"},
                           "badge": 7, "category": "click.action", "sound": "bing",
                           "mutable-content": 1},
                   "room": "r1", "count": 2}),
            "{priority}: tag means nothing to APNs; data keys sit beside aps"
        );
        let mut sent = apns_headers(&send);
        let expiration: u64 = sent
            .remove("apns-expiration")
            .expect("a time to live gives an expiration")
            .parse()
            .unwrap();
        assert!((before / 1000 + 3600..=now_ms() / 1000 + 3600).contains(&expiration));
        assert_eq!(
            sent,
            headers(&[
                ("apns-priority", apns_priority),
                ("apns-push-type", "alert"),
                ("apns-topic", TOPIC),
            ]),
            "{priority}"
        );
        let authorization = &send.request_headers["authorization"];
        assert!(
            authorization.starts_with("bearer "),
            "scenario 57: {authorization}"
        );
        assert_eq!(send.request_headers["content-type"], "application/json");
    }
    gateway.stop().await;
}

/// Scenarios 47 and 48 and field report B06: the request's topic, else the app's default
/// topic (silent pushes too), for production and sandbox; no topic at all is refused
/// before any call with token auth.
async fn apns_topics_scenarios_47_48_b06(backend: Backend) {
    let gateway = Setup::new(backend, "payload-topics")
        .dispatcher(|config| {
            let mut bare = app_mut(config, "apns_prod").clone();
            bare.name = "apns_bare".to_owned();
            bare.tags = vec!["bare".to_owned()];
            bare.default_topic = None;
            config.apps.push(bare);
        })
        .start()
        .await;
    gateway
        .apns
        .set_error_tokens([ErrorToken::new("apns-b06-3", 400, "DeviceTokenNotForTopic")]);
    let alert = json!({"service": "apns", "alert": {"title": "t", "body": "b"}});
    let with = |extra: Value| {
        let mut body = alert.clone();
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    };
    let topic_of = |mock: &MockApns, token: &str| {
        only_send_to(mock.control(), token)
            .request_headers
            .get("apns-topic")
            .cloned()
    };

    let cases = [
        (
            "s47-prod",
            json!({"topic": "com.example.explicit"}),
            "com.example.explicit",
            false,
        ),
        (
            "s47-dev",
            json!({"mode": "dev", "topic": "com.example.explicit"}),
            "com.example.explicit",
            true,
        ),
        ("s48-prod", json!({}), TOPIC, false),
        ("s48-dev", json!({"mode": "dev"}), SANDBOX_TOPIC, true),
        ("b06-1", json!({}), TOPIC, false),
        ("b06-silent", json!({}), TOPIC, false),
    ];
    for (token, extra, topic, sandbox) in cases {
        let mut body = with(extra);
        if token == "b06-silent" {
            body.as_object_mut().unwrap().remove("alert");
            body["data"] = json!({"k": "v"});
        }
        gateway.push_v3(token, &body).await.assert_ok(token);
        let mock = if sandbox {
            &gateway.sandbox
        } else {
            &gateway.apns
        };
        assert_eq!(topic_of(mock, token).as_deref(), Some(topic), "{token}");
    }

    // B06 case 2, a known difference from the field report: the decoder keeps
    // MongoosePush 2.x's rule that an explicit `"topic": null` is a schema error (current
    // MongooseIM leaves the key out instead), so it is refused before anything is queued.
    let reply = gateway
        .push_v3("apns-b06-2", &with(json!({"topic": null})))
        .await;
    assert_eq!(reply.status, 422, "{:?}", reply.body);
    assert_eq!(reply.body["errors"][0]["source"]["pointer"], "/topic");
    assert!(sends_to(gateway.apns.control(), "apns-b06-2").is_empty());

    // B06 case 3: the request's topic is sent; the refusal stays 400, not 410.
    let reply = gateway
        .push_v3("apns-b06-3", &with(json!({"topic": "com.example.other"})))
        .await;
    assert_eq!(
        (reply.status, reply.body),
        (400, json!({"reason": "invalid_request"}))
    );
    assert_eq!(
        topic_of(&gateway.apns, "apns-b06-3").as_deref(),
        Some("com.example.other")
    );

    // B06 case 4: token auth with no topic anywhere is not sent (APNs: MissingTopic).
    let reply = gateway
        .push_v3("apns-b06-4", &with(json!({"tags": ["bare"]})))
        .await;
    assert_eq!(
        (reply.status, reply.body),
        (503, json!({"reason": "internal_config"}))
    );
    assert!(sends_to(gateway.apns.control(), "apns-b06-4").is_empty());
    gateway.stop().await;
}

/// Scenarios 49 and 50, a known limit: pushgate does not read topics from certificates,
/// so a certificate app without `default_topic` sends no `apns-topic` when the request
/// names none (MongoosePush's dev-certificate behaviour, scenario 50).
async fn certificate_app_without_topic_sends_no_topic_scenarios_49_50(backend: Backend) {
    let credentials = ApnsCredentials::generate().unwrap();
    let files = credentials.write_files().unwrap();
    let mock = MockApns::start(MockApnsOptions {
        auth: credentials.certificate_auth(),
        ..MockApnsOptions::default()
    })
    .await
    .unwrap();
    let certificate = dispatcher::Credentials::ApnsCertificate {
        cert_path: files.client_cert_path.clone(),
        key_path: files.client_key_path.clone(),
    };
    let mut app = apns_app("apns_cert", Mode::Prod, &mock, certificate, None);
    app.tags = vec!["cert".to_owned()];
    let gateway = Setup::new(backend, "payload-s50")
        .dispatcher(move |config| config.apps.push(app))
        .start()
        .await;

    let body = json!({"service": "apns", "tags": ["cert"], "alert": {"title": "t", "body": "b"}});
    gateway
        .push_v3(TOK64, &body)
        .await
        .assert_ok("certificate app");
    let send = only_send_to(mock.control(), TOK64);
    assert!(
        send.client_certificate,
        "the client certificate was presented"
    );
    assert!(!send.request_headers.contains_key("authorization"));
    assert!(!send.request_headers.contains_key("apns-topic"));
    assert_eq!(apns_headers(&send), headers(&[("apns-push-type", "alert")]));
    gateway.stop().await;
}

/// Scenario 54 and field reports B07 and B08: a silent APNs push is `aps` with only
/// `content-available`, data beside it, `apns-push-type: background` and priority 5 even
/// when asked for high; FCM keeps HIGH for the same body; alerts say `alert`.
async fn silent_apns_is_background_at_priority_5_scenario_54_b07_b08(backend: Backend) {
    let gateway = Setup::new(backend, "payload-s54").start().await;
    let b07 = json!({"service": "apns", "topic": TOPIC,
                     "data": {"last-message-body": "hi", "last-message-sender": "alice@example.com",
                              "message-count": 1}});
    gateway.push_v3("apns-b07", &b07).await.assert_ok("B07");
    let send = only_send_to(gateway.apns.control(), "apns-b07");
    assert_eq!(
        send.request_data,
        json!({"aps": {"content-available": 1}, "last-message-body": "hi",
               "last-message-sender": "alice@example.com", "message-count": 1})
    );
    let background = headers(&[
        ("apns-priority", "5"),
        ("apns-push-type", "background"),
        ("apns-topic", TOPIC),
    ]);
    assert_eq!(apns_headers(&send), background);

    let b08 = json!({"service": "apns", "priority": "high", "topic": TOPIC, "data": {"k": "v"}});
    gateway.push_v3("apns-b08", &b08).await.assert_ok("B08");
    let send = only_send_to(gateway.apns.control(), "apns-b08");
    assert_eq!(apns_headers(&send), background, "B08: lowered to 5");
    assert_eq!(
        send.request_data,
        json!({"aps": {"content-available": 1}, "k": "v"})
    );

    let mut fcm = b08.clone();
    fcm["service"] = json!("fcm");
    gateway
        .push_v3("fcm-b08", &fcm)
        .await
        .assert_ok("B08 on FCM");
    let send = only_send_to(gateway.fcm.control(), "fcm-b08");
    assert_eq!(
        fcm_message(&send),
        &json!({"token": "fcm-b08", "data": {"k": "v"}, "android": {"priority": "HIGH"}})
    );

    let alert = json!({"service": "apns", "topic": TOPIC, "alert": {"title": "t", "body": "b"}});
    gateway
        .push_v3("apns-b07-alert", &alert)
        .await
        .assert_ok("alert");
    let send = only_send_to(gateway.apns.control(), "apns-b07-alert");
    assert_eq!(
        apns_headers(&send),
        headers(&[("apns-push-type", "alert"), ("apns-topic", TOPIC)])
    );
    gateway.stop().await;
}

/// Field report B05: `mode:"dev"` reaches the sandbox listener and succeeds; prod, or no
/// mode, reaches production, whose BadDeviceToken is 400 (not 410); no JSON nulls.
async fn dev_mode_reaches_the_sandbox_b05(backend: Backend) {
    let gateway = Setup::new(backend, "payload-b05").start().await;
    gateway
        .apns
        .set_error_tokens([ErrorToken::new(TOK64, 400, "BadDeviceToken")]);
    let body = |mode: Option<&str>| {
        let mut body =
            json!({"service": "apns", "topic": TOPIC, "alert": {"title": "t", "body": "b"}});
        if let Some(mode) = mode {
            body["mode"] = json!(mode);
        }
        body
    };

    gateway
        .push_v3(TOK64, &body(Some("dev")))
        .await
        .assert_ok("dev");
    let send = only_send_to(gateway.sandbox.control(), TOK64);
    assert!(
        !has_empty_or_null(&send.request_data),
        "{}",
        send.request_data
    );

    for (round, mode) in [None, Some("prod")].into_iter().enumerate() {
        let reply = gateway.push_v3(TOK64, &body(mode)).await;
        assert_eq!(
            (reply.status, reply.body),
            (400, json!({"reason": "invalid_request"})),
            "{mode:?}"
        );
        assert_eq!(sends_to(gateway.apns.control(), TOK64).len(), round + 1);
    }
    assert_eq!(sends_to(gateway.sandbox.control(), TOK64).len(), 1);
    gateway.stop().await;
}

on_both_backends!(
    apns_alert_with_every_field_scenarios_51_57,
    apns_topics_scenarios_47_48_b06,
    certificate_app_without_topic_sends_no_topic_scenarios_49_50,
    silent_apns_is_background_at_priority_5_scenario_54_b07_b08,
    dev_mode_reaches_the_sandbox_b05,
);

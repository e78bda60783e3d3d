//! What reaches the providers, seen through the mocks' activity: payloads, headers and the
//! app chosen (reference 4.3 scenarios 47-58; field reports B01, B02, B05-B10, B16, B21),
//! with this project's deliberate changes: FCM `mode:"dev"` is delivered, no empty objects,
//! nested FCM data as JSON text, silent APNs pushes get the default topic, an
//! `apns-push-type` on every push and priority 5 for background pushes.

mod support;

use std::collections::BTreeMap;

use pushgate_shared::Mode;
use pushgate_shared::job::now_ms;
use pushgate_testkit::{ApnsCredentials, ErrorToken, MockApns, MockApnsOptions, MockFcm};
use serde_json::{Value, json};
use support::*;

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

/// Scenario 56 and field report B21 case 2: a service with no app, or only a sandbox APNs
/// app for a default-mode push, is `no_matching_pool` with no provider call.
async fn missing_apps_are_no_matching_pool_scenario_56_b21(backend: Backend) {
    let alert = |service: &str| json!({"service": service, "alert": {"title": "t", "body": "b"}});
    let no_pool = (400, json!({"reason": "no_matching_pool"}));

    let gateway = Setup::new(backend, "payload-s56-fcm")
        .dispatcher(|config| without_app(config, "fcm"))
        .start()
        .await;
    let reply = gateway.push_v3(FCM_TOKEN, &alert("fcm")).await;
    assert_eq!((reply.status, reply.body), no_pool, "FCM disabled");
    gateway
        .push_v3(TOK64, &alert("apns"))
        .await
        .assert_ok("APNs still works");
    assert_eq!(gateway.fcm.control().request_count(), 0);
    gateway.stop().await;

    let gateway = Setup::new(backend, "payload-s56-apns")
        .dispatcher(|config| {
            without_app(config, "apns_prod");
            without_app(config, "apns_dev");
        })
        .start()
        .await;
    let reply = gateway.push_v3(TOK64, &alert("apns")).await;
    assert_eq!((reply.status, reply.body), no_pool, "APNs disabled");
    gateway
        .push_v3(FCM_TOKEN, &alert("fcm"))
        .await
        .assert_ok("FCM still works");
    gateway.stop().await;

    let gateway = Setup::new(backend, "payload-b21-sandbox-only")
        .dispatcher(|config| without_app(config, "apns_prod"))
        .start()
        .await;
    let reply = gateway.push_v3(TOK64, &alert("apns")).await;
    assert_eq!(
        (reply.status, reply.body),
        no_pool,
        "B21: default mode is prod"
    );
    assert_eq!(gateway.upstream_requests(), 0);
    gateway.stop().await;
}

/// Scenario 58: tags choose the first app holding all of them. FCM apps take any mode
/// (B21), so the dev FCM app takes a prod push whose tags only it has, where MongoosePush
/// found no pool.
async fn tags_choose_the_app_scenario_58(backend: Backend) {
    let fcm2 = MockFcm::start(Default::default()).await.unwrap();
    let account2 = fcm2.service_account().unwrap();
    let mut pool2 = fcm_app("pool2", &fcm2, &account2);
    pool2.mode = Mode::Dev;
    pool2.tags = ["tag2", "tag3", "tag4"].map(String::from).to_vec();
    let gateway = Setup::new(backend, "payload-s58")
        .dispatcher(move |config| {
            let tags =
                |names: &[&str]| -> Vec<String> { names.iter().map(|n| (*n).to_owned()).collect() };
            let fcm = app_mut(config, "fcm");
            fcm.tags = tags(&["tag1", "tag2", "tag3"]);
            config.apps.push(pool2);

            let mut dev1 = app_mut(config, "apns_dev").clone();
            without_app(config, "apns_dev");
            let mut dev2 = dev1.clone();
            dev1.name = "dev1".to_owned();
            dev1.tags = tags(&["tag1", "tag2"]);
            dev1.default_topic = Some("dev1.topic".to_owned());
            dev2.name = "dev2".to_owned();
            dev2.tags = tags(&["tag2", "tag3"]);
            dev2.default_topic = Some("dev2.topic".to_owned());
            config.apps.extend([dev1, dev2]);
        })
        .start()
        .await;
    let push = |service: &str, tags: &[&str]| json!({"service": service, "mode": "dev", "tags": tags, "alert": {"title": "t", "body": "b"}});
    let no_pool = (400, json!({"reason": "no_matching_pool"}));

    for (token, tags, topic) in [
        ("apns-t1", &["tag1"][..], "dev1.topic"),
        ("apns-t3", &["tag3"], "dev2.topic"),
    ] {
        gateway
            .push_v3(token, &push("apns", tags))
            .await
            .assert_ok(token);
        let send = only_send_to(gateway.sandbox.control(), token);
        assert_eq!(send.request_headers["apns-topic"], topic, "{tags:?}");
    }
    let reply = gateway
        .push_v3("apns-t123", &push("apns", &["tag1", "tag2", "tag3"]))
        .await;
    assert_eq!(
        (reply.status, reply.body),
        no_pool.clone(),
        "[tag1, tag2, tag3]"
    );

    let mut prod = push("fcm", &[]);
    prod.as_object_mut().unwrap().remove("mode");
    gateway
        .push_v3("fcm-none", &prod)
        .await
        .assert_ok("prod []");
    only_send_to(gateway.fcm.control(), "fcm-none");
    prod["tags"] = json!(["tag2", "tag3", "tag4"]);
    gateway
        .push_v3("fcm-t234", &prod)
        .await
        .assert_ok("prod [tag2, tag3, tag4]");
    only_send_to(fcm2.control(), "fcm-t234");
    prod["tags"] = json!(["tag1", "tag4"]);
    let reply = gateway.push_v3("fcm-t14", &prod).await;
    assert_eq!((reply.status, reply.body), no_pool, "[tag1, tag4]");
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
    apns_alert_with_every_field_scenarios_51_57,
    apns_topics_scenarios_47_48_b06,
    certificate_app_without_topic_sends_no_topic_scenarios_49_50,
    silent_apns_is_background_at_priority_5_scenario_54_b07_b08,
    fcm_alert_with_every_field_scenario_52,
    fcm_silent_has_string_data_and_no_empty_objects_scenario_53_b01,
    nested_data_is_text_for_fcm_and_json_for_apns_b02,
    dev_mode_reaches_the_sandbox_b05,
    missing_apps_are_no_matching_pool_scenario_56_b21,
    tags_choose_the_app_scenario_58,
    mongooseim_option_strings_b09,
    alerts_without_a_body_b10,
    fcm_size_is_checked_before_sending_b16,
    fcm_dev_mode_is_delivered_b21,
);

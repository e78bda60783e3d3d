//! Which app carries a push: disabled services, a sandbox-only APNs setup, and tags
//! (scenarios 56, 58; field report B21).

use pushgate_shared::Mode;
use pushgate_testkit::MockFcm;
use serde_json::json;

use crate::support::*;

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

on_both_backends!(
    missing_apps_are_no_matching_pool_scenario_56_b21,
    tags_choose_the_app_scenario_58,
);

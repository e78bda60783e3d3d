//! The MongoosePush HTTP layer through the router: validation answers (reference section
//! 4.3, scenarios 21 to 46), device ids, routing, and what reaches the queue.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::*;
use pushgate_shared::{ApiVersion, Mode, Priority, Service};
use serde_json::{Value, json};

const FULL_ALERT: &str = r#"{"service":"apns","mode":"prod","priority":"normal","time_to_live":3600,"mutable_content":true,"tags":["a","b"],"topic":"com.example","alert":{"title":"title value","body":"body value","badge":7,"click_action":"click.action","tag":"tag value","sound":"bing"}}"#;
const FULL_SILENT: &str = r#"{"service":"fcm","mode":"dev","priority":"high","time_to_live":60,"topic":"t","data":{"acme":"value","n":1}}"#;
const FLAT: &str = r#"{"service":"fcm","body":"body value","title":"title value","badge":3,"click_action":"c","tag":"t","topic":"top","mode":"prod","data":{"k":"v"}}"#;

fn errors(pairs: &[(&str, &str)]) -> Value {
    let list: Vec<Value> = pairs
        .iter()
        .map(|(pointer, message)| {
            json!({"title": "Invalid value", "source": {"pointer": pointer}, "message": message})
        })
        .collect();
    json!({ "errors": list })
}

fn without(body: &str, pointer: &str) -> String {
    let mut value: Value = serde_json::from_str(body).unwrap();
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    value
        .pointer_mut(if parent.is_empty() { "" } else { parent })
        .unwrap()
        .as_object_mut()
        .unwrap()
        .remove(key);
    value.to_string()
}

fn with(body: &str, pointer: &str, new: Value) -> String {
    let mut value: Value = serde_json::from_str(body).unwrap();
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    value
        .pointer_mut(if parent.is_empty() { "" } else { parent })
        .unwrap()
        .as_object_mut()
        .unwrap()
        .insert(key.to_owned(), new);
    value.to_string()
}

#[tokio::test]
async fn validation_scenarios_answer_like_mongoosepush() {
    // (scenario, path, body, expected status, expected body)
    let cases: Vec<(&str, &str, String, u16, Value)> = vec![
        ("21 full alert", "/v3/notification/f534534543", FULL_ALERT.into(), 200, Value::Null),
        ("22 alert without service", "/v3/notification/f534534543", without(FULL_ALERT, "/service"), 422,
            errors(&[("/service", "Missing field: service")])),
        ("23 alert without alert", "/v3/notification/f534534543", without(FULL_ALERT, "/alert"), 422,
            errors(&[("/alert", "Missing field: alert")])),
        ("24 bad priority", "/v3/notification/f534534543",
            with(FULL_ALERT, "/priority", json!("the highest in the world")), 422,
            errors(&[("/priority", "Invalid value for enum")])),
        ("25 extra top-level field", "/v3/notification/f534534543", with(FULL_ALERT, "/field", json!(1)), 422,
            errors(&[("/field", "Unexpected field: field")])),
        ("26 full silent", "/v3/notification/f534534543", FULL_SILENT.into(), 200, Value::Null),
        ("27 silent without service", "/v3/notification/f534534543", without(FULL_SILENT, "/service"), 422,
            errors(&[("/service", "Missing field: service")])),
        ("28 silent without data", "/v3/notification/f534534543", without(FULL_SILENT, "/data"), 422,
            errors(&[("/alert", "Missing field: alert")])),
        ("29 ttl infinity", "/v3/notification/f534534543",
            with(FULL_SILENT, "/time_to_live", json!("infinity")), 422,
            errors(&[("/time_to_live", "Invalid integer. Got: string")])),
        ("30 silent extra field", "/v3/notification/f534534543", with(FULL_SILENT, "/extra", json!("x")), 422,
            errors(&[("/extra", "Unexpected field: extra")])),
        ("31 empty object", "/v3/notification/f534534543", "{}".into(), 422,
            errors(&[("/service", "Missing field: service"), ("/alert", "Missing field: alert")])),
        ("36 v2 validates like v3", "/v2/notification/f534534543", "{}".into(), 422,
            errors(&[("/service", "Missing field: service"), ("/alert", "Missing field: alert")])),
        ("36 v2 full alert", "/v2/notification/f534534543", FULL_ALERT.into(), 200, Value::Null),
        ("35 missing alert title", "/v3/notification/x", without(FULL_ALERT, "/alert/title"), 422,
            errors(&[("/alert/title", "Missing field: title")])),
        ("35 missing alert body", "/v3/notification/x", without(FULL_ALERT, "/alert/body"), 422,
            errors(&[("/alert/body", "Missing field: body")])),
        ("unknown alert field", "/v3/notification/x", with(FULL_ALERT, "/alert/colour", json!("red")), 422,
            errors(&[("/alert/colour", "Unexpected field: colour")])),
        ("int32 overflow", "/v3/notification/x", with(FULL_ALERT, "/time_to_live", json!(2147483648_i64)), 422,
            errors(&[("/time_to_live", "Invalid format. Expected :int32")])),
        ("39 flat request", "/v1/notification/f534534543", FLAT.into(), 200, Value::Null),
        ("40 flat without service", "/v1/notification/x", without(FLAT, "/service"), 422,
            errors(&[("/service", "Missing field: service")])),
        ("40 flat without body", "/v1/notification/x", without(FLAT, "/body"), 422,
            errors(&[("/body", "Missing field: body")])),
        ("41 flat badge seven", "/v1/notification/x", with(FLAT, "/badge", json!("seven")), 422,
            errors(&[("/badge", "Invalid integer. Got: string")])),
        ("42 flat extra field", "/v1/notification/x", with(FLAT, "/sound", json!("s")), 422,
            errors(&[("/sound", "Unexpected field: sound")])),
        ("43 flat mode test", "/v1/notification/x", with(FLAT, "/mode", json!("test")), 422,
            errors(&[("/mode", "Invalid value for enum")])),
        ("fcm dev accepted", "/v3/notification/x", r#"{"service":"fcm","mode":"dev","alert":{"title":"t","body":"b"}}"#.into(), 200, Value::Null),
        ("strings for ints and bools", "/v3/notification/x",
            r#"{"service":"fcm","mutable_content":"true","time_to_live":"3600","alert":{"title":"t","body":"b","badge":"2"}}"#.into(), 200, Value::Null),
    ];

    for (name, path, body, status, expected) in cases {
        let queue = embedded();
        let reply = call(&router(queue.clone()), post_json(path, body)).await;
        assert_eq!(reply.status.as_u16(), status, "{name}: {:?}", reply.json());
        assert_eq!(reply.json(), expected, "{name}");
        let queued = queued_jobs(&queue).await.len();
        assert_eq!(queued, usize::from(status == 200), "{name}: jobs queued");
    }
}

#[tokio::test]
async fn null_for_a_typed_field_is_refused() {
    for field in [
        "/mode",
        "/priority",
        "/time_to_live",
        "/topic",
        "/mutable_content",
        "/tags",
    ] {
        let body = with(FULL_ALERT, field, Value::Null);
        let reply = call(&router(embedded()), post_json("/v3/notification/x", body)).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{field}");
        assert_eq!(
            reply.json()["errors"][0]["source"]["pointer"],
            field,
            "{field}"
        );
    }
}

#[tokio::test]
async fn bodies_that_are_not_a_json_object_get_clear_errors() {
    let cases: Vec<(&str, Request<Body>, u16)> = vec![
        (
            "malformed JSON",
            post_json("/v3/notification/x", r#"{"service":"fcm","#),
            400,
        ),
        ("empty body", post_json("/v3/notification/x", ""), 400),
        (
            "invalid UTF-8 inside a string",
            post_json(
                "/v3/notification/x",
                b"{\"service\":\"fcm\",\"alert\":{\"title\":\"\xff\xfe\",\"body\":\"b\"}}".to_vec(),
            ),
            400,
        ),
        (
            "no content type",
            Request::post("/v3/notification/x")
                .body(Body::from(FULL_ALERT))
                .unwrap(),
            422,
        ),
        (
            "form content type",
            Request::post("/v3/notification/x")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(Body::from(FULL_ALERT))
                .unwrap(),
            422,
        ),
        (
            "1 MiB body",
            post_json("/v3/notification/x", vec![b' '; 1024 * 1024]),
            413,
        ),
        (
            "accept excludes JSON",
            Request::post("/v3/notification/x")
                .header("content-type", "application/json")
                .header("accept", "text/html")
                .body(Body::from(FULL_ALERT))
                .unwrap(),
            406,
        ),
    ];
    for (name, request, status) in cases {
        let queue = embedded();
        let reply = call(&router(queue.clone()), request).await;
        assert_eq!(reply.status.as_u16(), status, "{name}");
        let body = reply.json();
        assert!(body.is_object(), "{name}: {body}");
        assert!(
            queued_jobs(&queue).await.is_empty(),
            "{name}: nothing queued"
        );
    }
}

#[tokio::test]
async fn json_content_type_with_charset_is_accepted() {
    let request = Request::post("/v3/notification/x")
        .header("content-type", "application/json; charset=utf-8")
        .header("accept", "application/json")
        .body(Body::from(FULL_ALERT))
        .unwrap();
    let reply = call(&router(embedded()), request).await;
    assert_eq!(reply.status, StatusCode::OK);
}

#[tokio::test]
async fn device_ids_are_taken_raw() {
    let long = "a".repeat(300);
    let cases = [
        (
            "fcm token with colon and dash",
            "dGVzd:APA91b-Hq_x-1".to_owned(),
            "dGVzd:APA91b-Hq_x-1".to_owned(),
        ),
        (
            "64-hex apns token",
            "0123456789abcdef".repeat(4),
            "0123456789abcdef".repeat(4),
        ),
        ("over 200 characters", long.clone(), long),
        (
            "percent-encoded",
            "tok%3AAPA%2F91b%20x".to_owned(),
            "tok:APA/91b x".to_owned(),
        ),
    ];
    for (name, in_path, expected) in cases {
        let queue = embedded();
        let reply = call(
            &router(queue.clone()),
            post_json(&format!("/v3/notification/{in_path}"), FULL_ALERT),
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{name}");
        let jobs = queued_jobs(&queue).await;
        assert_eq!(jobs.len(), 1, "{name}");
        assert_eq!(jobs[0].notification.target.device_token, expected, "{name}");
    }
}

#[tokio::test]
async fn mongooseim_requests_are_queued_with_every_field() {
    let queue = embedded();
    let app = router(queue.clone());
    let alert = call(&app, post_json("/v3/notification/abc123", MONGOOSEIM_ALERT)).await;
    assert_eq!(alert.status, StatusCode::OK);
    assert_eq!(alert.raw, b"null");
    let silent = call(
        &app,
        post_json("/v3/notification/tok:APA91b", MONGOOSEIM_SILENT),
    )
    .await;
    assert_eq!(silent.status, StatusCode::OK);

    let mut jobs = queued_jobs(&queue).await;
    jobs.sort_by_key(|job| job.notification.target.service == Service::Fcm);
    assert_eq!(jobs.len(), 2);

    let alert = &jobs[0];
    assert_eq!(alert.api_version, ApiVersion::V3);
    assert_eq!(alert.attempt, 0);
    let n = &alert.notification;
    assert_eq!(n.target.service, Service::Apns);
    assert_eq!(n.target.device_token, "abc123");
    assert_eq!(n.target.topic.as_deref(), Some("com.example.app"));
    assert_eq!(n.priority, Some(Priority::High));
    let a = n.alert.as_ref().unwrap();
    assert_eq!(
        (a.title.as_str(), a.body.as_str()),
        ("alice@localhost", "OH, HAI!")
    );
    assert_eq!(a.tag.as_deref(), Some("alice@localhost"));
    assert_eq!(a.badge, Some(1));
    assert_eq!(a.click_action.as_deref(), Some("OPEN_CHAT"));
    assert!(n.data.is_none());

    let silent = &jobs[1].notification;
    assert_eq!(silent.target.service, Service::Fcm);
    assert_eq!(silent.target.mode, Mode::Prod);
    assert_eq!(silent.target.device_token, "tok:APA91b");
    assert!(silent.alert.is_none());
    let data = serde_json::to_value(silent.data.as_ref().unwrap()).unwrap();
    assert_eq!(
        data,
        json!({"last-message-body":"OH, HAI!","last-message-sender":"alice@localhost","message-count":1})
    );
}

#[tokio::test]
async fn full_requests_keep_every_field() {
    let queue = embedded();
    let app = router(queue.clone());
    assert_eq!(
        call(&app, post_json("/v3/notification/d1", FULL_ALERT))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        call(&app, post_json("/v1/notification/d2", FLAT))
            .await
            .status,
        StatusCode::OK
    );
    let jobs = queued_jobs(&queue).await;
    let full = jobs
        .iter()
        .find(|j| j.notification.target.device_token == "d1")
        .unwrap();
    let n = &full.notification;
    assert_eq!(n.target.tags, ["a", "b"]);
    assert_eq!(n.time_to_live_secs, Some(3600));
    assert!(n.mutable_content);
    assert_eq!(n.priority, Some(Priority::Normal));
    assert_eq!(n.alert.as_ref().unwrap().sound.as_deref(), Some("bing"));
    assert!(full.expires_at_ms.is_some());

    let flat = jobs
        .iter()
        .find(|j| j.notification.target.device_token == "d2")
        .unwrap();
    assert_eq!(flat.api_version, ApiVersion::V1);
    let a = flat.notification.alert.as_ref().unwrap();
    assert_eq!(
        (a.title.as_str(), a.body.as_str(), a.badge),
        ("title value", "body value", Some(3))
    );
    assert_eq!(flat.notification.target.topic.as_deref(), Some("top"));
    assert_eq!(flat.notification.data.as_ref().unwrap()["k"], "v");
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_json() {
    let app = router(embedded());
    let reply = call(&app, post_json("/v4/notification/x", FULL_ALERT)).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.json()["reason"], "not_found");
    let reply = call(&app, post_json("/v3/notification/", FULL_ALERT)).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);

    let reply = call(
        &app,
        Request::get("/v3/notification/x")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(reply.json()["reason"], "method_not_allowed");
}

#[tokio::test]
async fn healthcheck_reports_the_queue_and_answers_head() {
    let app = router(embedded());
    let reply = call(
        &app,
        Request::get("/healthcheck").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    let body = reply.json();
    assert_eq!(body["status"], "pass");
    assert!(body["version"].is_string());
    assert_eq!(body["checks"]["queue"][0]["status"], "pass");
    assert!(
        body["checks"]["queue"][0]["time"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );

    let head = call(
        &app,
        Request::head("/healthcheck").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(head.status, StatusCode::OK);
    assert!(head.raw.is_empty());
}

#[tokio::test]
async fn a_remembered_dead_token_gets_410_on_v3_without_queueing() {
    let queue = embedded();
    queue
        .remember_dead_token(Service::Apns, "abc123", std::time::Duration::from_secs(60))
        .await
        .unwrap();
    let app = router(queue.clone());

    let v3 = call(&app, post_json("/v3/notification/abc123", MONGOOSEIM_ALERT)).await;
    assert_eq!(v3.status, StatusCode::GONE);
    assert_eq!(v3.json(), json!({"reason": "unregistered"}));
    assert!(
        queued_jobs(&queue).await.is_empty(),
        "a dead token is not queued"
    );

    // The same token for the other service is another device.
    let fcm = MONGOOSEIM_ALERT.replace(r#""service":"apns""#, r#""service":"fcm""#);
    let other = call(&app, post_json("/v3/notification/abc123", fcm)).await;
    assert_eq!(other.status, StatusCode::OK);

    // v2 has no 410: it queues, and the provider's answer decides.
    let v2 = call(&app, post_json("/v2/notification/abc123", MONGOOSEIM_ALERT)).await;
    assert_eq!(v2.status, StatusCode::OK);
    assert_eq!(queued_jobs(&queue).await.len(), 2);
}

//! Authentication in front of every route but the health check: a bearer key, or the
//! secret first path segment MongooseIM sends as its `path_prefix`.

mod common;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::*;
use ingest::{AuthConfig, AuthMode, Authenticator, IngestState, app};
use pushgate_shared::queue::Queue;
use serde_json::json;

const KEY: &str = "test-key-0123456789abcdef";
const OTHER_KEY: &str = "other-key-0123456789abcdef";
const SECRET: &str = "mim-path-secret-0123456789";
/// An FCM token as MongooseIM puts it in the path: raw, colon and all.
const FCM_DEVICE_ID: &str = "dGVzdA:APA91bHqN3Y-token_part";
const WEBHOOK_FORM: &str = "author=alice&server=localhost&receiver=bob&message=Hi";

fn guarded(queue: Arc<dyn Queue>) -> Router {
    let config = AuthConfig {
        mode: AuthMode::Required,
        api_keys: vec![OTHER_KEY.to_owned(), KEY.to_owned()],
        path_secret: Some(SECRET.to_owned()),
    };
    let mut state = IngestState::new(queue);
    state.auth = Arc::new(Authenticator::new(&config).unwrap());
    app(state)
}

fn request(method: &str, path: &str, body: &str, authorization: Option<&str>) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(path);
    if path.contains("webhooks") {
        builder = builder.header("content-type", "application/x-www-form-urlencoded");
    } else if !body.is_empty() {
        builder = builder.header("content-type", "application/json");
    }
    if let Some(value) = authorization {
        builder = builder.header("authorization", value);
    }
    builder.body(Body::from(body.to_owned())).unwrap()
}

/// One request of every kind the guard protects.
fn protected_requests(prefix: &str, authorization: Option<&str>) -> Vec<Request<Body>> {
    vec![
        request(
            "POST",
            &format!("{prefix}/v3/notification/{FCM_DEVICE_ID}"),
            MONGOOSEIM_ALERT,
            authorization,
        ),
        request(
            "POST",
            &format!("{prefix}/webhooks/mongooseim"),
            WEBHOOK_FORM,
            authorization,
        ),
        request(
            "GET",
            &format!("{prefix}/api/v1/users/bob@localhost/devices"),
            "",
            authorization,
        ),
        request("GET", &format!("{prefix}/no/such/route"), "", authorization),
    ]
}

#[tokio::test]
async fn without_credentials_every_route_but_the_health_check_is_401() {
    let router = guarded(embedded());

    for (request, what) in [
        (protected_requests("", None), "no Authorization"),
        (
            protected_requests("", Some(&format!("Bearer {KEY}x"))),
            "a wrong key",
        ),
        (
            protected_requests("", Some(&format!("Basic {KEY}"))),
            "another scheme",
        ),
        (
            protected_requests("/wrong-secret-0123456789", None),
            "a wrong prefix",
        ),
    ]
    .into_iter()
    .flat_map(|(requests, what)| requests.into_iter().map(move |r| (r, what)))
    {
        let path = request.uri().path().to_owned();
        let reply = call(&router, request).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{what}: {path}");
        assert_eq!(reply.json()["reason"], "unauthorized", "{what}: {path}");
        assert!(reply.json()["message"].is_string());
        assert_eq!(
            reply.headers["www-authenticate"], "Bearer realm=\"pushgate\"",
            "{what}: {path}"
        );
    }
}

#[tokio::test]
async fn nothing_is_queued_or_registered_without_credentials() {
    let queue = embedded();
    let router = guarded(queue.clone());
    let register = request(
        "PUT",
        "/api/v1/users/bob@localhost/devices/t1",
        r#"{"service":"fcm"}"#,
        None,
    );

    for request in protected_requests("", None).into_iter().chain([register]) {
        call(&router, request).await;
    }
    let list = request(
        "GET",
        "/api/v1/users/bob@localhost/devices",
        "",
        Some(&format!("Bearer {KEY}")),
    );

    assert!(queued_jobs(&queue).await.is_empty());
    assert_eq!(call(&router, list).await.json()["devices"], json!([]));
}

#[tokio::test]
async fn a_configured_bearer_key_opens_every_route() {
    let queue = embedded();
    let router = guarded(queue.clone());

    for key in [KEY, OTHER_KEY] {
        let statuses: Vec<u16> = {
            let mut statuses = Vec::new();
            for request in protected_requests("", Some(&format!("Bearer {key}"))) {
                statuses.push(call(&router, request).await.status.as_u16());
            }
            statuses
        };
        assert_eq!(statuses, [200, 200, 200, 404], "with {key}");
    }
    assert_eq!(queued_jobs(&queue).await.len(), 2, "one v3 push per key");
}

#[tokio::test]
async fn the_secret_path_prefix_opens_every_route_and_keeps_raw_device_ids() {
    let queue = embedded();
    let router = guarded(queue.clone());
    let prefix = format!("/{SECRET}");

    let mut statuses = Vec::new();
    for request in protected_requests(&prefix, None) {
        statuses.push(call(&router, request).await.status.as_u16());
    }
    let jobs = queued_jobs(&queue).await;

    assert_eq!(statuses, [200, 200, 200, 404]);
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].notification.target.device_token, FCM_DEVICE_ID);
}

#[tokio::test]
async fn the_health_check_needs_no_credentials() {
    let router = guarded(embedded());

    for method in ["GET", "HEAD"] {
        for path in ["/healthcheck".to_owned(), format!("/{SECRET}/healthcheck")] {
            let reply = call(&router, request(method, &path, "", None)).await;
            assert_eq!(reply.status, StatusCode::OK, "{method} {path}");
        }
    }
}

#[tokio::test]
async fn with_authentication_off_nothing_is_asked() {
    let router = router(embedded());

    let mut statuses = Vec::new();
    for request in protected_requests("", None) {
        statuses.push(call(&router, request).await.status.as_u16());
    }

    assert_eq!(statuses, [200, 200, 200, 404]);
}

#[tokio::test]
async fn a_401_over_the_wire_has_a_content_length() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(ingest::serve_listener(
        listener,
        guarded(embedded()),
        std::future::pending(),
    ));
    let client = reqwest::Client::builder().no_proxy().build().unwrap();

    let response = client
        .post(format!("http://{address}/v3/notification/{FCM_DEVICE_ID}"))
        .header("content-type", "application/json")
        .body(MONGOOSEIM_ALERT)
        .send()
        .await
        .unwrap();
    let length = response.headers()["content-length"]
        .to_str()
        .unwrap()
        .to_owned();
    let status = response.status();
    let body = response.bytes().await.unwrap();

    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(length, body.len().to_string());
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["reason"], "unauthorized");
}

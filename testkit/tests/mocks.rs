//! Black-box tests of the mock APNs and FCM over real sockets: HTTP/2 over TLS, h2c,
//! HTTP/1.1, the provider answers and the `/mock/*` control API.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pushgate_testkit::{MockApns, MockApnsOptions, MockFcm, MockFcmOptions};
use reqwest::{Certificate, Client, StatusCode};
use serde_json::{Value, json};

#[path = "mocks/apns.rs"]
mod apns;
#[path = "mocks/fcm.rs"]
mod fcm;

pub(crate) const TOK64: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
/// Hang guard only; no test asserts on timing.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(30);

pub(crate) fn tls_client(ca_pem: &str) -> Client {
    let ca = Certificate::from_pem(ca_pem.as_bytes()).expect("the mock's certificate is PEM");
    Client::builder()
        .add_root_certificate(ca)
        .timeout(TIMEOUT)
        .build()
        .expect("client builds")
}

pub(crate) fn h2c_client() -> Client {
    Client::builder()
        .http2_prior_knowledge()
        .timeout(TIMEOUT)
        .build()
        .expect("client builds")
}

pub(crate) fn http1_client() -> Client {
    Client::builder()
        .http1_only()
        .timeout(TIMEOUT)
        .build()
        .expect("client builds")
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

pub(crate) fn alert() -> Value {
    json!({ "aps": { "alert": { "title": "t", "body": "b" } } })
}

pub(crate) async fn apns() -> MockApns {
    MockApns::start(MockApnsOptions::default())
        .await
        .expect("mock APNs starts")
}

pub(crate) async fn push(
    client: &Client,
    base: &str,
    token: &str,
    body: &Value,
) -> reqwest::Response {
    client
        .post(format!("{base}/3/device/{token}"))
        .header("apns-topic", "com.example.chat")
        .json(body)
        .send()
        .await
        .expect("mock APNs answers")
}

pub(crate) async fn json_of(response: reqwest::Response) -> Value {
    response.json().await.expect("body is JSON")
}

pub(crate) async fn control_post(client: &Client, url: String, body: Value) -> reqwest::Response {
    client
        .post(url)
        .json(&body)
        .send()
        .await
        .expect("control API answers")
}

#[tokio::test]
async fn control_api_answers_400_on_missing_keys_and_bad_values() {
    let apns = apns().await;
    let fcm = MockFcm::start(MockFcmOptions::default()).await.unwrap();
    let client = http1_client();

    for base in [apns.h2c_url(), fcm.url()] {
        let bodies = [
            (
                "error-tokens",
                json!([{ "device_token": "x", "status": 400 }]),
            ),
            (
                "error-tokens",
                json!([{ "status": 400, "reason": "BadDeviceToken" }]),
            ),
            (
                "error-tokens",
                json!([{ "device_token": "x", "status": 42, "reason": "Odd" }]),
            ),
            (
                "error-tokens",
                json!({ "device_token": "x", "status": 400, "reason": "NotAList" }),
            ),
            ("outage", json!({ "retry_after_secs": 3 })),
            ("latency", json!({ "milliseconds": 3 })),
        ];
        for (route, body) in bodies {
            let response =
                control_post(&client, format!("{base}/mock/{route}"), body.clone()).await;
            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{route} {body}");
            assert!(json_of(response).await["error"].is_string());
        }
        let health = client
            .get(format!("{base}/mock/healthcheck"))
            .send()
            .await
            .unwrap();
        assert_eq!(health.status(), StatusCode::OK);
    }
    assert!(apns.control().error_tokens().is_empty());
    assert!(fcm.control().error_tokens().is_empty());
}

//! Mock FCM: the OAuth token flow, 401 handling, strict message validation, the error table
//! with and without `FcmError` details, outage, latency, reset and TLS.

use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use pushgate_testkit::credentials;
use pushgate_testkit::{ErrorToken, JWT_BEARER_GRANT, MockFcm, MockFcmOptions};
use reqwest::{Client, StatusCode, Version};
use serde_json::{Value, json};

use super::{TIMEOUT, control_post, h2c_client, http1_client, json_of, tls_client, unix_now};

const FCM_TOKEN: &str = "fcm-test-token-0001";

fn assertion(audience: &str, signing_key_pem: &str) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(credentials::FCM_TEST_PRIVATE_KEY_ID.to_owned());
    let now = unix_now();
    let claims = json!({
        "iss": credentials::FCM_TEST_CLIENT_EMAIL,
        "scope": "https://www.googleapis.com/auth/firebase.messaging",
        "aud": audience,
        "iat": now,
        "exp": now + 3600,
    });
    let key = EncodingKey::from_rsa_pem(signing_key_pem.as_bytes()).expect("an RSA PEM key");
    jsonwebtoken::encode(&header, &claims, &key).expect("the assertion signs")
}

async fn request_token(client: &Client, token_uri: &str, assertion: &str) -> reqwest::Response {
    let form = [("grant_type", JWT_BEARER_GRANT), ("assertion", assertion)];
    client
        .post(token_uri)
        .form(&form)
        .send()
        .await
        .expect("token endpoint answers")
}

async fn access_token(mock: &MockFcm) -> String {
    let assertion = assertion(&mock.token_uri(), credentials::FCM_TEST_PRIVATE_KEY_PEM);
    let response = request_token(&http1_client(), &mock.token_uri(), &assertion).await;
    assert_eq!(response.status(), StatusCode::OK);
    json_of(response).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn fcm_send(client: &Client, url: &str, token: &str, message: Value) -> reqwest::Response {
    client
        .post(url)
        .bearer_auth(token)
        .json(&json!({ "message": message }))
        .send()
        .await
        .expect("mock FCM answers")
}

fn has_fcm_error_detail(body: &Value) -> bool {
    body["error"]["details"].as_array().is_some_and(|details| {
        details
            .iter()
            .any(|d| d["@type"] == "type.googleapis.com/google.firebase.fcm.v1.FcmError")
    })
}

#[tokio::test]
async fn fcm_token_flow_issues_counted_tokens_that_send_accepts() {
    let mock = MockFcm::start(MockFcmOptions::default()).await.unwrap();
    let account = mock.service_account().unwrap();
    let json: Value = serde_json::from_slice(&std::fs::read(account.path()).unwrap()).unwrap();
    assert_eq!(json["token_uri"], mock.token_uri());
    assert_eq!(json["project_id"], "demo-project");
    let key_pem = json["private_key"].as_str().unwrap();

    let assertion = assertion(json["token_uri"].as_str().unwrap(), key_pem);
    let response = request_token(&http1_client(), &mock.token_uri(), &assertion).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = json_of(response).await;
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    let token = body["access_token"].as_str().unwrap();
    assert_eq!(mock.tokens_issued(), 1);

    let message = json!({ "token": FCM_TOKEN, "data": {}, "android": { "data": { "n": "1" } } });
    let sent = fcm_send(&h2c_client(), &mock.send_url(), token, message).await;
    assert_eq!(sent.version(), Version::HTTP_2);
    assert_eq!(sent.status(), StatusCode::OK);
    assert_eq!(
        json_of(sent).await,
        json!({ "name": "projects/demo-project/messages/1" })
    );

    let activity = mock.activity();
    assert_eq!(activity[0].device_token, FCM_TOKEN);
    assert_eq!(
        activity[0].request_headers["authorization"],
        format!("Bearer {token}")
    );
    assert_eq!(
        activity[0].request_data["message"]["android"]["data"]["n"],
        "1"
    );

    let dir = account.dir().to_owned();
    drop(account);
    assert!(!dir.exists(), "the service-account file is removed on drop");
}

#[tokio::test]
async fn fcm_token_endpoint_rejects_bad_grants_and_assertions() {
    let mock = MockFcm::start(MockFcmOptions::default()).await.unwrap();
    let client = http1_client();
    let good = assertion(&mock.token_uri(), credentials::FCM_TEST_PRIVATE_KEY_PEM);

    let wrong_grant = client
        .post(mock.token_uri())
        .form(&[
            ("grant_type", "client_credentials"),
            ("assertion", good.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_grant.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        json_of(wrong_grant).await["error"],
        "unsupported_grant_type"
    );

    let missing = client
        .post(mock.token_uri())
        .form(&[("grant_type", JWT_BEARER_GRANT)]);
    let missing = missing.send().await.unwrap();
    assert_eq!(json_of(missing).await["error"], "invalid_request");

    let (unsigned, signature) = good.rsplit_once('.').unwrap();
    let flipped = if signature.starts_with('A') { "B" } else { "A" };
    let tampered = format!("{unsigned}.{flipped}{}", &signature[1..]);
    let bad_signature = request_token(&client, &mock.token_uri(), &tampered).await;
    assert_eq!(bad_signature.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json_of(bad_signature).await["error"], "invalid_grant");

    let elsewhere = assertion(
        "https://oauth2.example.invalid/token",
        credentials::FCM_TEST_PRIVATE_KEY_PEM,
    );
    let wrong_audience = request_token(&client, &mock.token_uri(), &elsewhere).await;
    assert_eq!(json_of(wrong_audience).await["error"], "invalid_grant");
    assert_eq!(mock.tokens_issued(), 0);
}

#[tokio::test]
async fn fcm_answers_401_without_fcm_details_for_missing_unknown_and_revoked_tokens() {
    let mock = MockFcm::start(MockFcmOptions::default()).await.unwrap();
    let client = h2c_client();
    let message = json!({ "token": FCM_TOKEN });

    let send_url = mock.send_url();
    let missing = client
        .post(&send_url)
        .json(&json!({ "message": message }))
        .send();
    let unknown = fcm_send(&client, &send_url, "ya29.never-issued", message.clone());
    for response in [missing.await.unwrap(), unknown.await] {
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let body = json_of(response).await;
        assert_eq!(body["error"]["code"], 401);
        assert_eq!(body["error"]["status"], "UNAUTHENTICATED");
        assert!(!has_fcm_error_detail(&body), "{body}");
    }

    let token = access_token(&mock).await;
    let before = fcm_send(&client, &mock.send_url(), &token, message.clone()).await;
    assert_eq!(before.status(), StatusCode::OK);
    mock.revoke_tokens();
    let revoked = fcm_send(&client, &mock.send_url(), &token, message.clone()).await;
    assert_eq!(revoked.status(), StatusCode::UNAUTHORIZED);
    let body = json_of(revoked).await;
    assert!(!has_fcm_error_detail(&body), "{body}");
    assert_eq!(
        body["error"]["details"][0]["reason"],
        "ACCESS_TOKEN_EXPIRED"
    );

    let renewed = access_token(&mock).await;
    let after = fcm_send(&client, &mock.send_url(), &renewed, message.clone()).await;
    assert_eq!(after.status(), StatusCode::OK);
    let revoke_url = format!("{}/mock/revoke-tokens", mock.url());
    client.post(revoke_url).send().await.unwrap();
    let again = fcm_send(&client, &mock.send_url(), &renewed, message).await;
    assert_eq!(again.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(mock.tokens_issued(), 2);
}

#[tokio::test]
async fn fcm_rejects_non_string_data_values_and_bad_messages() {
    let mock = MockFcm::start(MockFcmOptions::default()).await.unwrap();
    let token = access_token(&mock).await;
    let client = h2c_client();
    let cases = [
        json!({ "token": FCM_TOKEN, "data": { "count": 1 } }),
        json!({ "token": FCM_TOKEN, "android": { "data": { "ok": "yes", "nested": { "a": 2 } } } }),
        json!({ "token": FCM_TOKEN, "data": { "flag": true } }),
        json!({ "data": { "a": "b" } }),
        json!({ "token": FCM_TOKEN, "topic": "news" }),
        json!({ "token": FCM_TOKEN, "data": { "blob": "y".repeat(5000) } }),
    ];
    for message in cases {
        let response = fcm_send(&client, &mock.send_url(), &token, message.clone()).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{message}");
        assert_eq!(
            json_of(response).await["error"]["status"],
            "INVALID_ARGUMENT",
            "{message}"
        );
    }

    let strings =
        json!({ "token": FCM_TOKEN, "data": { "count": "1" }, "android": { "data": {} } });
    let accepted = fcm_send(&client, &mock.send_url(), &token, strings).await;
    assert_eq!(accepted.status(), StatusCode::OK);

    let other_project = format!("{}/v1/projects/other/messages:send", mock.url());
    let forbidden = fcm_send(
        &client,
        &other_project,
        &token,
        json!({ "token": FCM_TOKEN }),
    )
    .await;
    assert_eq!(forbidden.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn fcm_error_table_with_and_without_fcm_error_details() {
    let mock = MockFcm::start(MockFcmOptions::default()).await.unwrap();
    let token = access_token(&mock).await;
    let client = h2c_client();
    let entries = json!([
        { "device_token": "dead", "status": 404, "reason": "UNREGISTERED" },
        { "device_token": "mongoose", "status": 404, "reason": "UNREGISTERED", "details": false },
    ]);
    control_post(
        &client,
        format!("{}/mock/error-tokens", mock.url()),
        entries,
    )
    .await;

    let with = fcm_send(
        &client,
        &mock.send_url(),
        &token,
        json!({ "token": "dead" }),
    )
    .await;
    assert_eq!(with.status(), StatusCode::NOT_FOUND);
    let body = json_of(with).await;
    assert_eq!(body["error"]["status"], "NOT_FOUND");
    assert_eq!(body["error"]["message"], "");
    assert_eq!(body["error"]["details"][0]["errorCode"], "UNREGISTERED");
    assert!(has_fcm_error_detail(&body));

    let without = fcm_send(
        &client,
        &mock.send_url(),
        &token,
        json!({ "token": "mongoose" }),
    )
    .await;
    assert_eq!(without.status(), StatusCode::NOT_FOUND);
    let body = json_of(without).await;
    assert_eq!(
        body,
        json!({ "error": { "code": 404, "status": "UNREGISTERED", "message": "" } })
    );
}

#[tokio::test]
async fn fcm_quota_error_once_with_retry_after_then_success() {
    let options = MockFcmOptions {
        error_details: false,
        ..Default::default()
    };
    let mock = MockFcm::start(options).await.unwrap();
    let token = access_token(&mock).await;
    let entry = ErrorToken::new(FCM_TOKEN, 429, "QUOTA_EXCEEDED")
        .with_retry_after_secs(30)
        .with_details(true)
        .times(1);
    mock.set_error_tokens([entry]);
    let client = h2c_client();
    let message = json!({ "token": FCM_TOKEN });

    let throttled = fcm_send(&client, &mock.send_url(), &token, message.clone()).await;
    assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(throttled.headers()["retry-after"], "30");
    let body = json_of(throttled).await;
    assert_eq!(body["error"]["status"], "RESOURCE_EXHAUSTED");
    assert_eq!(body["error"]["details"][0]["errorCode"], "QUOTA_EXCEEDED");

    let delivered = fcm_send(&client, &mock.send_url(), &token, message).await;
    assert_eq!(delivered.status(), StatusCode::OK);
    assert!(mock.control().wait_for_requests(2, TIMEOUT).await);
}

#[tokio::test]
async fn fcm_outage_latency_and_reset() {
    let mock = MockFcm::start(MockFcmOptions::default()).await.unwrap();
    let token = access_token(&mock).await;
    let client = h2c_client();
    let message = json!({ "token": FCM_TOKEN });
    let outage = json!({ "status": 503, "retry_after_secs": 5 });
    control_post(&client, format!("{}/mock/outage", mock.url()), outage).await;

    let down = fcm_send(&client, &mock.send_url(), &token, message.clone()).await;
    assert_eq!(down.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(down.headers()["retry-after"], "5");
    assert_eq!(json_of(down).await["error"]["status"], "UNAVAILABLE");

    mock.set_outage(None);
    mock.set_latency(Duration::from_millis(20));
    let up = fcm_send(&client, &mock.send_url(), &token, message).await;
    assert_eq!(up.status(), StatusCode::OK);
    assert_eq!(mock.activity().len(), 2);
    assert_eq!(mock.activity()[1].status, 503);

    client
        .post(format!("{}/mock/reset", mock.url()))
        .send()
        .await
        .unwrap();
    assert!(mock.activity().is_empty());
    assert_eq!(mock.control().request_count(), 0);
}

#[tokio::test]
async fn fcm_over_tls_negotiates_http2() {
    let tls_addr = Some(std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
    let mock = MockFcm::start(MockFcmOptions {
        tls_addr,
        ..Default::default()
    })
    .await
    .unwrap();
    let token = access_token(&mock).await;
    let client = tls_client(mock.ca_pem().expect("a TLS listener was asked for"));
    let url = format!(
        "{}/v1/projects/demo-project/messages:send",
        mock.tls_url().unwrap()
    );

    let response = fcm_send(&client, &url, &token, json!({ "token": FCM_TOKEN })).await;

    assert_eq!(response.version(), Version::HTTP_2);
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn fcm_arrival_log_names_the_message_target() {
    let mock = MockFcm::start(MockFcmOptions::default()).await.unwrap();
    let token = access_token(&mock).await;
    mock.control().keep_arrivals();
    let client = h2c_client();
    let message = json!({"token": FCM_TOKEN, "notification": {"title": "t", "body": "b"}});
    let response = fcm_send(&client, &mock.send_url(), &token, message).await;
    assert_eq!(response.status(), StatusCode::OK);

    let arrivals = mock.control().take_arrivals();
    assert_eq!(arrivals.len(), 1);
    assert_eq!(arrivals[0].device_token, FCM_TOKEN);
}

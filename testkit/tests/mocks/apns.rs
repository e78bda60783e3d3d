//! Mock APNs: TLS and h2c, the error table, payload limits, activity, outage, latency and
//! the two ways of authenticating.

use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use pushgate_testkit::{ApnsCredentials, ErrorToken, MockApns, MockApnsOptions, Outage};
use reqwest::{Certificate, Client, Identity, StatusCode, Version};
use serde_json::{Value, json};

use super::{
    TIMEOUT, TOK64, alert, apns, control_post, h2c_client, http1_client, json_of, push, tls_client,
    unix_now,
};

#[tokio::test]
async fn apns_over_tls_negotiates_http2_and_answers_200_with_apns_id() {
    let mock = apns().await;
    let client = tls_client(mock.ca_pem());

    let response = push(&client, &mock.tls_url(), TOK64, &alert()).await;

    assert_eq!(response.version(), Version::HTTP_2);
    assert_eq!(response.status(), StatusCode::OK);
    let apns_id = response.headers()["apns-id"].to_str().unwrap().to_owned();
    assert_eq!(apns_id.len(), 36, "apns-id is a UUID: {apns_id}");
    assert!(response.bytes().await.unwrap().is_empty());
    assert_eq!(mock.activity()[0].http_version, "HTTP/2.0");
    mock.shutdown().await;
}

#[tokio::test]
async fn apns_h2c_with_prior_knowledge_works_and_echoes_apns_id() {
    let mock = apns().await;
    let response = h2c_client()
        .post(format!("{}/3/device/{TOK64}", mock.h2c_url()))
        .header("apns-id", "123E4567-E89B-12D3-A456-426614174000")
        .json(&alert())
        .send()
        .await
        .unwrap();

    assert_eq!(response.version(), Version::HTTP_2);
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["apns-id"],
        "123E4567-E89B-12D3-A456-426614174000"
    );
}

#[tokio::test]
async fn apns_error_table_answers_status_and_reason_and_410_has_timestamp() {
    let mock = apns().await;
    let client = h2c_client();
    let tokens = json!([
        { "device_token": "bad", "status": 400, "reason": "BadDeviceToken" },
        { "device_token": "gone", "status": 410, "reason": "Unregistered" },
    ]);
    let set = control_post(
        &client,
        format!("{}/mock/error-tokens", mock.h2c_url()),
        tokens,
    )
    .await;
    assert_eq!(set.status(), StatusCode::OK);

    let bad = push(&client, &mock.h2c_url(), "bad", &alert()).await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json_of(bad).await, json!({ "reason": "BadDeviceToken" }));

    let gone = push(&client, &mock.h2c_url(), "gone", &alert()).await;
    assert_eq!(gone.status(), StatusCode::GONE);
    let body = json_of(gone).await;
    assert_eq!(body["reason"], "Unregistered");
    let timestamp = body["timestamp"]
        .as_u64()
        .expect("410 carries a numeric timestamp");
    assert!(
        timestamp / 1000 >= unix_now() - 600,
        "timestamp is in milliseconds: {timestamp}"
    );

    let listed: Value = client
        .get(format!("{}/mock/error-tokens", mock.h2c_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed.as_array().map(Vec::len), Some(2));
    assert_eq!(
        push(&client, &mock.h2c_url(), TOK64, &alert())
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn apns_limited_error_entry_answers_only_the_given_number_of_sends() {
    let mock = apns().await;
    let entry = ErrorToken::new(TOK64, 429, "TooManyRequests")
        .times(1)
        .with_retry_after_secs(30);
    mock.set_error_tokens([entry]);
    let client = h2c_client();

    let first = push(&client, &mock.h2c_url(), TOK64, &alert()).await;
    assert_eq!(first.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(first.headers()["retry-after"], "30");
    assert_eq!(
        push(&client, &mock.h2c_url(), TOK64, &alert())
            .await
            .status(),
        StatusCode::OK
    );
    assert!(mock.control().error_tokens().is_empty());
}

#[tokio::test]
async fn apns_rejects_payloads_over_4096_bytes_with_413() {
    let mock = apns().await;
    let client = h2c_client();
    let url = format!("{}/3/device/{TOK64}", mock.h2c_url());
    let body_of = |size: usize| {
        let padding = size - r#"{"aps":{},"x":""}"#.len();
        format!(r#"{{"aps":{{}},"x":"{}"}}"#, "y".repeat(padding))
    };

    let at_limit = client.post(&url).body(body_of(4096)).send().await.unwrap();
    assert_eq!(at_limit.status(), StatusCode::OK);

    let over = client.post(&url).body(body_of(4097)).send().await.unwrap();
    assert_eq!(over.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(json_of(over).await, json!({ "reason": "PayloadTooLarge" }));

    let empty = client.post(&url).send().await.unwrap();
    assert_eq!(empty.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json_of(empty).await, json!({ "reason": "PayloadEmpty" }));
}

#[tokio::test]
async fn apns_activity_lists_newest_first_with_headers_and_body() {
    let mock = apns().await;
    mock.set_error_tokens([ErrorToken::new("second", 400, "BadDeviceToken")]);
    let client = h2c_client();
    push(
        &client,
        &mock.h2c_url(),
        "first",
        &json!({ "aps": { "badge": 1 } }),
    )
    .await;
    client
        .post(format!("{}/3/device/second", mock.h2c_url()))
        .header("apns-push-type", "background")
        .header("Apns-Priority", "5")
        .json(&json!({ "aps": { "content-available": 1 } }))
        .send()
        .await
        .unwrap();

    let activity: Value = http1_client()
        .get(format!("{}/mock/activity", mock.h2c_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    let entries = activity.as_array().expect("activity is a list");
    assert_eq!(entries.len(), 2);
    let newest = &entries[0];
    assert_eq!(newest["device_token"], "second");
    assert_eq!(newest["request_headers"]["apns-push-type"], "background");
    assert_eq!(newest["request_headers"]["apns-priority"], "5");
    assert_eq!(
        newest["request_data"],
        json!({ "aps": { "content-available": 1 } })
    );
    assert_eq!(newest["status"], 400);
    assert_eq!(
        newest["response_data"],
        json!({ "reason": "BadDeviceToken" })
    );
    assert_eq!(newest["path"], "/3/device/second");
    assert_eq!(newest["http_version"], "HTTP/2.0");
    assert_eq!(entries[1]["device_token"], "first");
    assert_eq!(
        entries[1]["request_headers"]["apns-topic"],
        "com.example.chat"
    );
    assert_eq!(entries[1]["response_data"], Value::Null);
}

#[tokio::test]
async fn apns_reset_clears_errors_and_activity() {
    let mock = apns().await;
    mock.set_error_tokens([ErrorToken::new(TOK64, 400, "BadDeviceToken")]);
    let client = h2c_client();
    push(&client, &mock.h2c_url(), TOK64, &alert()).await;
    assert_eq!(mock.activity().len(), 1);

    let reset = client
        .put(format!("{}/mock/reset", mock.h2c_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(reset.status(), StatusCode::OK);

    assert!(mock.activity().is_empty());
    assert!(mock.control().error_tokens().is_empty());
    assert_eq!(
        push(&client, &mock.h2c_url(), TOK64, &alert())
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn apns_outage_answers_every_send_until_recovered() {
    let mock = apns().await;
    let client = h2c_client();
    let outage_url = format!("{}/mock/outage", mock.h2c_url());
    let down = json!({ "status": 503, "retry_after_secs": 7 });
    assert_eq!(
        control_post(&client, outage_url.clone(), down)
            .await
            .status(),
        StatusCode::OK
    );

    let during = push(&client, &mock.h2c_url(), TOK64, &alert()).await;
    assert_eq!(during.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(during.headers()["retry-after"], "7");
    assert_eq!(
        json_of(during).await,
        json!({ "reason": "ServiceUnavailable" })
    );

    control_post(&client, outage_url.clone(), json!({ "status": null })).await;
    assert_eq!(
        push(&client, &mock.h2c_url(), TOK64, &alert())
            .await
            .status(),
        StatusCode::OK
    );

    mock.set_outage(Some(Outage::new(500)));
    let internal = push(&client, &mock.h2c_url(), TOK64, &alert()).await;
    assert_eq!(
        json_of(internal).await,
        json!({ "reason": "InternalServerError" })
    );
    client.delete(&outage_url).send().await.unwrap();
    assert_eq!(mock.control().outage(), None);
    assert_eq!(
        push(&client, &mock.h2c_url(), TOK64, &alert())
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn apns_latency_is_applied_and_sends_still_answer() {
    let mock = apns().await;
    let client = h2c_client();
    let latency_url = format!("{}/mock/latency", mock.h2c_url());
    control_post(&client, latency_url.clone(), json!({ "ms": 20 })).await;

    let current: Value = client
        .get(&latency_url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(current, json!({ "ms": 20 }));
    assert_eq!(mock.control().latency(), Duration::from_millis(20));
    assert_eq!(
        push(&client, &mock.h2c_url(), TOK64, &alert())
            .await
            .status(),
        StatusCode::OK
    );
}

fn provider_token(credentials: &ApnsCredentials, signing_key_pem: &str, iat: u64) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(credentials.key_id.clone());
    let claims = json!({ "iss": credentials.team_id, "iat": iat });
    let key = EncodingKey::from_ec_pem(signing_key_pem.as_bytes()).expect("a PKCS#8 P-256 key");
    jsonwebtoken::encode(&header, &claims, &key).expect("the token signs")
}

#[tokio::test]
async fn apns_token_auth_checks_presence_signature_and_age() {
    let credentials = ApnsCredentials::generate().unwrap();
    let options = MockApnsOptions {
        auth: credentials.token_auth(),
        ..Default::default()
    };
    let mock = MockApns::start(options).await.unwrap();
    let client = tls_client(mock.ca_pem());
    let send = |authorization: Option<String>| {
        let mut request = client
            .post(format!("{}/3/device/{TOK64}", mock.tls_url()))
            .json(&alert());
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        async move {
            let response = request.send().await.unwrap();
            let status = response.status();
            (status, response.text().await.unwrap())
        }
    };

    let missing = send(None).await;
    assert_eq!(
        missing,
        (
            StatusCode::FORBIDDEN,
            r#"{"reason":"MissingProviderToken"}"#.into()
        )
    );

    let good = provider_token(&credentials, &credentials.signing_key_pem, unix_now());
    assert_eq!(send(Some(format!("bearer {good}"))).await.0, StatusCode::OK);

    let stranger = ApnsCredentials::generate().unwrap();
    let forged = provider_token(&credentials, &stranger.signing_key_pem, unix_now());
    let rejected = send(Some(format!("bearer {forged}"))).await;
    assert_eq!(
        rejected,
        (
            StatusCode::FORBIDDEN,
            r#"{"reason":"InvalidProviderToken"}"#.into()
        )
    );

    let old = provider_token(
        &credentials,
        &credentials.signing_key_pem,
        unix_now() - 7200,
    );
    let expired = send(Some(format!("bearer {old}"))).await;
    assert_eq!(
        expired,
        (
            StatusCode::FORBIDDEN,
            r#"{"reason":"ExpiredProviderToken"}"#.into()
        )
    );

    let recorded = mock.activity();
    assert_eq!(recorded.len(), 4);
    assert_eq!(
        recorded[2].request_headers["authorization"],
        format!("bearer {good}")
    );
}

#[tokio::test]
async fn apns_certificate_auth_requires_the_client_certificate() {
    let credentials = ApnsCredentials::generate().unwrap();
    let options = MockApnsOptions {
        auth: credentials.certificate_auth(),
        ..Default::default()
    };
    let mock = MockApns::start(options).await.unwrap();
    let ca = Certificate::from_pem(mock.ca_pem().as_bytes()).unwrap();
    let identity_pem = format!(
        "{}{}",
        credentials.client_cert_pem, credentials.client_key_pem
    );
    let with_cert = Client::builder()
        .add_root_certificate(ca)
        .identity(Identity::from_pem(identity_pem.as_bytes()).expect("PEM identity"))
        .timeout(TIMEOUT)
        .build()
        .unwrap();

    let accepted = push(&with_cert, &mock.tls_url(), TOK64, &alert()).await;
    assert_eq!(accepted.status(), StatusCode::OK);
    assert!(mock.activity()[0].client_certificate);

    let refused = push(&tls_client(mock.ca_pem()), &mock.tls_url(), TOK64, &alert()).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        json_of(refused).await,
        json!({ "reason": "MissingProviderToken" })
    );
    assert!(!mock.activity()[0].client_certificate);

    let files = credentials.write_files().unwrap();
    let p8 = std::fs::read_to_string(&files.p8_path).unwrap();
    assert!(p8.starts_with("-----BEGIN PRIVATE KEY-----"));
    assert!(files.client_cert_path.exists() && files.client_key_path.exists());
    let dir = files.dir().to_owned();
    drop(files);
    assert!(!dir.exists(), "the credential files are removed on drop");
}

#[tokio::test]
async fn apns_arrival_log_keeps_token_and_time_even_without_activity() {
    let mock = MockApns::start(MockApnsOptions {
        activity_limit: 0,
        ..MockApnsOptions::default()
    })
    .await
    .unwrap();
    let client = h2c_client();
    push(&client, &mock.h2c_url(), TOK64, &alert()).await;
    assert!(mock.control().take_arrivals().is_empty(), "no log kept yet");

    mock.control().keep_arrivals();
    let before = std::time::Instant::now();
    let second = TOK64.replace('0', "f");
    push(&client, &mock.h2c_url(), TOK64, &alert()).await;
    push(&client, &mock.h2c_url(), &second, &alert()).await;

    let arrivals = mock.control().take_arrivals();
    let tokens: Vec<_> = arrivals.iter().map(|a| a.device_token.as_str()).collect();
    assert_eq!(tokens, [TOK64, second.as_str()]);
    assert!(arrivals.iter().all(|a| a.at >= before));
    assert!(arrivals[0].at <= arrivals[1].at);
    assert!(mock.activity().is_empty(), "a zero limit keeps no activity");
    assert_eq!(mock.control().request_count(), 3);
    assert!(
        mock.control().take_arrivals().is_empty(),
        "taken arrivals are gone"
    );

    push(&client, &mock.h2c_url(), TOK64, &alert()).await;
    assert_eq!(mock.control().end_arrivals().len(), 1);
    push(&client, &mock.h2c_url(), TOK64, &alert()).await;
    assert!(
        mock.control().take_arrivals().is_empty(),
        "the log has ended"
    );
}

//! MongooseIM's own requests (reference mongooseim-client.md 1.2), sent as its HTTP client
//! sends them, over one kept-alive HTTP/1.1 connection, turn into exactly the provider
//! requests expected, for FCM and APNs, alert and silent.

mod support;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use pushgate_testkit::{Activity, Control};
use serde_json::{Value, json};
use support::*;
use tokio::net::TcpStream;

/// The alert body MongooseIM builds for a 1:1 chat message (options service, priority,
/// topic and click_action set), with `service` replaced.
fn alert(service: &str) -> Value {
    json!({"alert": {"badge": 1, "body": "OH, HAI!", "tag": "alice@localhost",
                     "title": "alice@localhost", "click_action": "OPEN_CHAT"},
           "service": service, "priority": "high", "topic": "com.example.app"})
}

/// MongooseIM's silent body: the notification form as data, `message-count` an integer.
const SILENT_FCM: &str = r#"{"data":{"last-message-body":"OH, HAI!","last-message-sender":"alice@localhost","message-count":1},"service":"fcm","mode":"prod"}"#;

/// MongooseIM's silent body for a bodiless Jingle call proposal (the hints plugin), with
/// the publish-options MongooseIM forwards as strings.
const SILENT_APNS: &str = r#"{"data":{"message-sender":"alice@localhost","jingle-message":"propose","jingle-session-id":"ca3c6f"},"service":"apns","time_to_live":"3600","mutable_content":"true"}"#;

/// Sends one request as MongooseIM's client does: only `content-type` (lower case),
/// `Host` and the length; returns the status and the body, checking the length.
async fn post(
    sender: &mut SendRequest<Full<Bytes>>,
    host: &str,
    path: &str,
    body: String,
) -> (u16, Vec<u8>) {
    let request = Request::post(path)
        .header("host", host)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    sender.ready().await.expect("the connection stays open");
    let response = sender.send_request(request).await.expect("an answer");
    let status = response.status().as_u16();
    let length: usize = response.headers()["content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(
        body.len(),
        length,
        "{path}: Content-Length matches the body"
    );
    (status, body.to_vec())
}

/// The one send `control` recorded for `token`, with its JSON body and chosen headers.
fn request(
    control: &Control,
    token: &str,
    header_names: &[&str],
) -> (Value, Vec<(String, String)>) {
    let send: Activity = only_send_to(control, token);
    let headers = header_names
        .iter()
        .filter_map(|name| {
            let value = send.request_headers.get(*name)?;
            Some(((*name).to_owned(), value.clone()))
        })
        .collect();
    (send.request_data, headers)
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
        .collect()
}

async fn alert_and_silent_over_one_connection(backend: Backend) {
    let gateway = Setup::new(backend, "mongooseim").start().await;
    let stream = TcpStream::connect(gateway.address()).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    let connection = tokio::spawn(connection);
    let host = gateway.address().to_string();

    let fcm_token = "tok:APA91bHun4MxP5egoKMwt2KZFBaFUH-1RYqx";
    let apns_token = "abc123";
    let requests = [
        (
            format!("/v3/notification/{apns_token}"),
            alert("apns").to_string(),
        ),
        (
            format!("/v3/notification/{fcm_token}"),
            alert("fcm").to_string(),
        ),
        (
            format!("/v3/notification/{apns_token}-silent"),
            SILENT_APNS.to_owned(),
        ),
        (
            format!("/v2/notification/{fcm_token}-silent"),
            SILENT_FCM.to_owned(),
        ),
    ];
    let before = pushgate_shared::job::now_ms() / 1000;
    for (path, body) in requests {
        let (status, answer) = post(&mut sender, &host, &path, body).await;
        assert_eq!((status, answer.as_slice()), (200, &b"null"[..]), "{path}");
    }
    let after = pushgate_shared::job::now_ms() / 1000;
    assert!(!connection.is_finished(), "the connection is still open");

    let apns_headers = [
        "apns-priority",
        "apns-push-type",
        "apns-topic",
        "content-type",
    ];
    let (body, headers) = request(gateway.apns.control(), apns_token, &apns_headers);
    assert_eq!(
        body,
        json!({"aps": {"alert": {"title": "alice@localhost", "body": "OH, HAI!"},
                       "badge": 1, "category": "OPEN_CHAT"}})
    );
    assert_eq!(
        headers,
        pairs(&[
            ("apns-priority", "10"),
            ("apns-push-type", "alert"),
            ("apns-topic", "com.example.app"),
            ("content-type", "application/json"),
        ])
    );

    let silent_token = format!("{apns_token}-silent");
    let mut with_expiration = vec!["apns-expiration"];
    with_expiration.extend(apns_headers);
    let (body, mut headers) = request(gateway.apns.control(), &silent_token, &with_expiration);
    assert_eq!(
        body,
        json!({"aps": {"content-available": 1, "mutable-content": 1},
               "message-sender": "alice@localhost", "jingle-message": "propose",
               "jingle-session-id": "ca3c6f"})
    );
    let (name, expiration) = headers.remove(0);
    assert_eq!(
        name, "apns-expiration",
        "a time to live gives an expiration"
    );
    let expiration: u64 = expiration.parse().unwrap();
    assert!(
        (before + 3600..=after + 3600).contains(&expiration),
        "{expiration}"
    );
    assert_eq!(
        headers,
        pairs(&[
            ("apns-priority", "5"),
            ("apns-push-type", "background"),
            ("apns-topic", TOPIC),
            ("content-type", "application/json"),
        ]),
        "a silent push gets the default topic"
    );

    let (body, headers) = request(gateway.fcm.control(), fcm_token, &["content-type"]);
    assert_eq!(
        body,
        json!({"message": {"token": fcm_token, "android": {
            "priority": "HIGH",
            "notification": {"title": "alice@localhost", "body": "OH, HAI!",
                             "tag": "alice@localhost", "click_action": "OPEN_CHAT"}}}})
    );
    assert_eq!(headers, pairs(&[("content-type", "application/json")]));

    let silent_token = format!("{fcm_token}-silent");
    let (body, _) = request(gateway.fcm.control(), &silent_token, &[]);
    assert_eq!(
        body,
        json!({"message": {"token": silent_token, "data": {
            "last-message-body": "OH, HAI!", "last-message-sender": "alice@localhost",
            "message-count": "1"}}})
    );
    assert_eq!(gateway.upstream_requests(), 4);
    gateway.stop().await;
}

on_both_backends!(alert_and_silent_over_one_connection);

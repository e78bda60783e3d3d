//! MongoosePush request decoding: the validation scenarios of MongoosePush's own suite
//! (numbers from reference/mongoosepush.md 4.3), MongooseIM's real bodies, and the
//! field reports B09 and B10.

mod casting;
mod deep;
mod flat;
mod input;
mod mongooseim;

use pushgate_shared::api::{DecodeLimits, FieldError, RequestError, decode_notification};
use pushgate_shared::{Alert, ApiVersion, Mode, Notification, Priority, Service, Target};
use serde_json::{Value, json};

const TOKEN: &str = "fcm-test-token-0001";
const DEEP: &[ApiVersion] = &[ApiVersion::V2, ApiVersion::V3];

fn decode(version: ApiVersion, body: &Value) -> Result<Notification, RequestError> {
    let bytes = serde_json::to_vec(body).expect("a json! value serializes");
    decode_notification(
        version,
        TOKEN,
        Some("application/json"),
        &bytes,
        &DecodeLimits::default(),
    )
}

fn decode_raw(content_type: Option<&str>, body: &[u8]) -> Result<Notification, RequestError> {
    decode_notification(
        ApiVersion::V3,
        TOKEN,
        content_type,
        body,
        &DecodeLimits::default(),
    )
}

fn field_errors(expected: &[(&str, &str)]) -> Vec<FieldError> {
    expected
        .iter()
        .map(|(pointer, message)| FieldError::new(*pointer, *message))
        .collect()
}

/// A full v2/v3 alert request (scenario 21) with one change applied.
fn alert_body(change: impl FnOnce(&mut serde_json::Map<String, Value>)) -> Value {
    let mut body = json!({
        "service": "apns",
        "mode": "prod",
        "priority": "normal",
        "time_to_live": 3600,
        "mutable_content": false,
        "tags": ["some", "tags"],
        "topic": "com.example.chat",
        "alert": {
            "body": "A message", "title": "alice@example.com", "badge": 7,
            "click_action": "OPEN_CHAT", "tag": "info", "sound": "standard.mp3"
        }
    });
    change(body.as_object_mut().expect("the body is an object"));
    body
}

/// A full v2/v3 silent request (scenario 26) with one change applied.
fn silent_body(change: impl FnOnce(&mut serde_json::Map<String, Value>)) -> Value {
    let mut body = json!({
        "service": "fcm",
        "mode": "prod",
        "priority": "high",
        "data": {"custom": "data fields", "some_id": 345, "nested": {"fields": "allowed"}}
    });
    change(body.as_object_mut().expect("the body is an object"));
    body
}

/// A full v1 request (scenario 39) with one change applied.
fn flat_body(change: impl FnOnce(&mut serde_json::Map<String, Value>)) -> Value {
    let mut body = json!({
        "service": "apns", "body": "A message", "title": "alice@example.com", "badge": 7,
        "click_action": "OPEN_CHAT", "tag": "info", "topic": "com.example.chat",
        "data": {"custom": "data fields"}, "mode": "dev"
    });
    change(body.as_object_mut().expect("the body is an object"));
    body
}

/// The smallest valid notification: what every decoding case starts from.
fn base(service: Service) -> Notification {
    Notification {
        target: Target {
            service,
            mode: Mode::Prod,
            device_token: TOKEN.to_owned(),
            tags: Vec::new(),
            topic: None,
        },
        alert: None,
        data: None,
        priority: None,
        time_to_live_secs: None,
        mutable_content: false,
    }
}

fn alert(title: &str, body: &str) -> Alert {
    Alert {
        title: title.to_owned(),
        body: body.to_owned(),
        ..Alert::default()
    }
}

fn object(value: Value) -> serde_json::Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

struct Refused {
    name: &'static str,
    versions: &'static [ApiVersion],
    body: Value,
    errors: &'static [(&'static str, &'static str)],
}

fn assert_refused(cases: Vec<Refused>) {
    for case in cases {
        for version in case.versions {
            let got = decode(*version, &case.body);
            assert_eq!(
                got,
                Err(RequestError::Validation(field_errors(case.errors))),
                "case {:?} on {}",
                case.name,
                version.as_str()
            );
        }
    }
}

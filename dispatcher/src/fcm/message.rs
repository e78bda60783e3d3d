//! The FCM HTTP v1 `messages:send` body for one notification.
//!
//! Custom data goes to the top-level `message.data`, not to `android.data` as MongoosePush
//! put it: FCM hands the top-level map to Android apps the same way, and also to iOS and
//! web apps registered with FCM (field report B02). Alert fields go to
//! `android.notification`, since `click_action`, `tag` and `sound` exist only there.

use std::collections::BTreeMap;

use pushgate_shared::{Notification, Priority};
use serde::Serialize;
use serde_json::{Map, Value};

/// FCM's limit on a message's content (data plus notification texts), in bytes.
pub const MAX_CONTENT_BYTES: usize = 4096;

#[derive(Serialize)]
struct Request<'a> {
    message: Message<'a>,
}

#[derive(Serialize)]
struct Message<'a> {
    token: &'a str,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    data: BTreeMap<&'a str, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    android: Option<Android<'a>>,
}

#[derive(Serialize)]
struct Android<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    priority: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ttl: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    notification: Option<AndroidNotification<'a>>,
}

#[derive(Serialize)]
struct AndroidNotification<'a> {
    title: &'a str,
    body: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    click_action: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tag: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sound: Option<&'a str>,
}

/// The JSON body `{"message": {...}}` that sends `notification` to its device token.
///
/// No empty object is ever written: `data` only when there is data, `android` only when
/// it has a priority, a time to live (`"<n>s"`) or an alert. `badge`, `topic`, `mode` and
/// `mutable_content` mean nothing to FCM and are left out.
pub fn request_body(notification: &Notification) -> Vec<u8> {
    let data = notification
        .data
        .iter()
        .flatten()
        .map(|(key, value)| (key.as_str(), data_string(value)))
        .collect();
    let notification_block = notification
        .alert
        .as_ref()
        .map(|alert| AndroidNotification {
            title: &alert.title,
            body: &alert.body,
            click_action: alert.click_action.as_deref(),
            tag: alert.tag.as_deref(),
            sound: alert.sound.as_deref(),
        });
    let android = Android {
        priority: notification.priority.map(|p| match p {
            Priority::Normal => "NORMAL",
            Priority::High => "HIGH",
        }),
        ttl: notification
            .time_to_live_secs
            .map(|secs| format!("{}s", secs.max(0))),
        notification: notification_block,
    };
    let has_android =
        android.priority.is_some() || android.ttl.is_some() || android.notification.is_some();
    let request = Request {
        message: Message {
            token: &notification.target.device_token,
            data,
            android: has_android.then_some(android),
        },
    };
    serde_json::to_vec(&request).expect("a message of strings always serializes")
}

/// A data value as the string FCM requires: strings as they are, `null` as `""`, and
/// numbers, booleans, objects and arrays as their compact JSON text (`1` → `"1"`,
/// `{"a":2}` → `"{\"a\":2}"`). MongoosePush refused objects as `invalid_notification`.
pub fn data_string(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The size FCM counts against [`MAX_CONTENT_BYTES`]: the data keys and values as
/// strings plus the alert's texts, in bytes. JSON punctuation is not counted.
pub fn content_size(notification: &Notification) -> usize {
    let data: usize = notification
        .data
        .iter()
        .flat_map(Map::iter)
        .map(|(key, value)| key.len() + data_string(value).len())
        .sum();
    let alert = notification.alert.as_ref().map_or(0, |alert| {
        [&alert.click_action, &alert.tag, &alert.sound]
            .into_iter()
            .flatten()
            .map(String::len)
            .sum::<usize>()
            + alert.title.len()
            + alert.body.len()
    });
    data + alert
}

#[cfg(test)]
mod tests {
    use pushgate_shared::{Alert, Mode, Service, Target};
    use serde_json::json;

    use super::*;

    fn notification(alert: Option<Alert>, data: Option<Value>) -> Notification {
        Notification {
            target: Target {
                service: Service::Fcm,
                mode: Mode::Prod,
                device_token: "fcm-test-token-0001".to_owned(),
                tags: Vec::new(),
                topic: Some("com.example.chat".to_owned()),
            },
            alert,
            data: data.map(|d| d.as_object().cloned().unwrap()),
            priority: None,
            time_to_live_secs: None,
            mutable_content: false,
        }
    }

    fn body(n: &Notification) -> Value {
        serde_json::from_slice(&request_body(n)).unwrap()
    }

    #[test]
    fn silent_data_is_stringified_at_top_level() {
        let n = notification(
            None,
            Some(
                json!({"last-message-body": "1250", "message-count": 1, "urgent": true,
                        "gone": null, "ratio": 0.5}),
            ),
        );
        assert_eq!(
            body(&n),
            json!({"message": {"token": "fcm-test-token-0001", "data": {
                "last-message-body": "1250", "message-count": "1", "urgent": "true",
                "gone": "", "ratio": "0.5"}}})
        );
    }

    #[test]
    fn nested_data_becomes_compact_json_text() {
        let n = notification(
            Some(Alert {
                title: "Hi".to_owned(),
                body: "Body text".to_owned(),
                ..Alert::default()
            }),
            Some(
                json!({"event": "eyJrIjoidiJ9", "meta": {"room": "r1", "n": 2},
                        "tags": ["a", "b"]}),
            ),
        );
        let mut sent = body(&n);
        let meta = sent["message"]["data"]["meta"].take();
        let meta: Value = serde_json::from_str(meta.as_str().unwrap()).unwrap();
        assert_eq!(meta, json!({"room": "r1", "n": 2}));
        assert_eq!(
            sent,
            json!({"message": {
                "token": "fcm-test-token-0001",
                "data": {"event": "eyJrIjoidiJ9", "meta": null, "tags": "[\"a\",\"b\"]"},
                "android": {"notification": {"title": "Hi", "body": "Body text"}}}})
        );
        assert!(!String::from_utf8(request_body(&n)).unwrap().contains(": "));
    }

    #[test]
    fn full_alert_fills_android_and_nothing_empty() {
        let mut n = notification(
            Some(Alert {
                title: "title value".to_owned(),
                body: "body value".to_owned(),
                badge: Some(7),
                click_action: Some("click.action".to_owned()),
                tag: Some("tag value".to_owned()),
                sound: Some("bing".to_owned()),
            }),
            None,
        );
        n.priority = Some(Priority::High);
        n.time_to_live_secs = Some(3600);
        n.mutable_content = true;
        assert_eq!(
            body(&n),
            json!({"message": {"token": "fcm-test-token-0001", "android": {
                "priority": "HIGH", "ttl": "3600s", "notification": {
                    "title": "title value", "body": "body value",
                    "click_action": "click.action", "tag": "tag value", "sound": "bing"}}}})
        );
    }

    #[test]
    fn priority_and_ttl_without_alert_or_data() {
        let mut n = notification(None, Some(json!({})));
        n.priority = Some(Priority::Normal);
        n.time_to_live_secs = Some(0);
        assert_eq!(
            body(&n),
            json!({"message": {"token": "fcm-test-token-0001",
                               "android": {"priority": "NORMAL", "ttl": "0s"}}})
        );
        let bare = notification(None, None);
        assert_eq!(
            body(&bare),
            json!({"message": {"token": "fcm-test-token-0001"}})
        );
    }

    #[test]
    fn empty_alert_texts_are_forwarded() {
        let n = notification(Some(Alert::default()), None);
        assert_eq!(
            body(&n)["message"]["android"]["notification"],
            json!({"title": "", "body": ""})
        );
    }

    #[test]
    fn content_size_counts_keys_values_and_texts() {
        let n = notification(
            Some(Alert {
                title: "ab".to_owned(),
                body: "cde".to_owned(),
                tag: Some("f".to_owned()),
                ..Alert::default()
            }),
            Some(json!({"k": "vv", "n": 10, "z": null})),
        );
        assert_eq!(content_size(&n), 2 + 3 + 1 + (1 + 2) + (1 + 2) + 1);
    }
}

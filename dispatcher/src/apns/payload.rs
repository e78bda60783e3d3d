//! The APNs request for one notification: the JSON payload (built with a2) and the
//! `apns-*` header values.

use a2::request::payload::PayloadLike;
use a2::{DefaultNotificationBuilder, NotificationBuilder, NotificationOptions};
use pushgate_shared::{Notification, Priority};

/// APNs' limit on a payload, in bytes (VoIP pushes, which pushgate does not send, get 5120).
pub const MAX_PAYLOAD_BYTES: usize = 4096;

/// The notification-dependent parts of an APNs request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApnsRequest {
    /// The JSON body.
    pub payload: String,
    /// `apns-topic`: the notification's topic, else the app's default; absent when neither.
    pub topic: Option<String>,
    /// `apns-push-type`: `alert`, or `background` for silent pushes.
    pub push_type: &'static str,
    /// `apns-priority`: `10` or `5` from the priority, always `5` for background pushes,
    /// absent when the notification named none (Apple then uses 10 for alerts).
    pub priority: Option<&'static str>,
    /// `apns-expiration`: a Unix second, `0` for "now or never"; absent without a time to live.
    pub expiration: Option<u64>,
}

impl ApnsRequest {
    /// The `apns-*` headers, in a fixed order.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        let mut headers = vec![("apns-push-type", self.push_type.to_owned())];
        if let Some(topic) = &self.topic {
            headers.push(("apns-topic", topic.clone()));
        }
        if let Some(priority) = self.priority {
            headers.push(("apns-priority", priority.to_owned()));
        }
        if let Some(expiration) = self.expiration {
            headers.push(("apns-expiration", expiration.to_string()));
        }
        headers
    }

    /// True when the payload is over [`MAX_PAYLOAD_BYTES`] and APNs would refuse it.
    pub fn is_too_large(&self) -> bool {
        self.payload.len() > MAX_PAYLOAD_BYTES
    }
}

/// Builds the request for `notification`, accepted at `accepted_at_ms` (ms since the epoch).
///
/// The payload is `aps` plus the custom data keys beside it; a data key named `aps` is
/// dropped, as MongoosePush drops it. An alert gives `aps.alert {title, body}`, `badge`,
/// `sound` and `category` (from `click_action`; `tag` means nothing to APNs); a silent
/// push gives `aps.content-available: 1` only. `mutable-content: 1` is written only when
/// asked for. The expiration is the acceptance time plus the time to live, so time spent
/// in the queue counts against it; a time to live of 0 stays 0 ("now or never").
///
/// Unlike MongoosePush, the default topic also applies to silent pushes, alerts carry
/// `apns-push-type: alert`, and background pushes are always sent with priority 5.
pub fn build(
    notification: &Notification,
    default_topic: Option<&str>,
    accepted_at_ms: u64,
) -> ApnsRequest {
    let payload = payload_json(notification);
    let silent = notification.is_silent();
    let priority = if silent {
        Some("5")
    } else {
        notification.priority.map(|p| match p {
            Priority::High => "10",
            Priority::Normal => "5",
        })
    };
    let expiration = notification.time_to_live_secs.map(|ttl| match ttl {
        ..=0 => 0,
        ttl => accepted_at_ms / 1000 + u64::from(ttl.unsigned_abs()),
    });
    ApnsRequest {
        payload,
        topic: notification
            .target
            .topic
            .as_deref()
            .filter(|t| !t.is_empty())
            .or(default_topic)
            .map(str::to_owned),
        push_type: if silent { "background" } else { "alert" },
        priority,
        expiration,
    }
}

fn payload_json(notification: &Notification) -> String {
    let mut builder = DefaultNotificationBuilder::new();
    match &notification.alert {
        Some(alert) => {
            builder = builder.set_title(&alert.title).set_body(&alert.body);
            if let Some(badge) = alert.badge.and_then(|b| u32::try_from(b).ok()) {
                builder = builder.set_badge(badge);
            }
            if let Some(sound) = &alert.sound {
                builder = builder.set_sound(sound);
            }
            if let Some(category) = &alert.click_action {
                builder = builder.set_category(category);
            }
        }
        None => builder = builder.set_content_available(),
    }
    if notification.mutable_content {
        builder = builder.set_mutable_content();
    }

    let mut payload = builder.build(
        &notification.target.device_token,
        NotificationOptions::default(),
    );
    if !notification.mutable_content {
        // a2 writes "mutable-content": 0 unless told otherwise; leave the key out instead.
        payload.aps.mutable_content = None;
    }
    for (key, value) in notification.data.iter().flatten() {
        if key != "aps" {
            payload.data.insert(key.as_str(), value.clone());
        }
    }
    payload
        .to_json_string()
        .expect("a payload of JSON values always serializes")
}

#[cfg(test)]
mod tests {
    use pushgate_shared::{Alert, Mode, Service, Target};
    use serde_json::{Value, json};

    use super::*;

    const TOK64: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    const ACCEPTED_MS: u64 = 1_800_000_000_500;

    fn notification(alert: Option<Alert>, data: Option<Value>) -> Notification {
        Notification {
            target: Target {
                service: Service::Apns,
                mode: Mode::Prod,
                device_token: TOK64.to_owned(),
                tags: Vec::new(),
                topic: None,
            },
            alert,
            data: data.map(|d| d.as_object().cloned().unwrap()),
            priority: None,
            time_to_live_secs: None,
            mutable_content: false,
        }
    }

    fn alert() -> Alert {
        Alert {
            title: "t".to_owned(),
            body: "b".to_owned(),
            ..Alert::default()
        }
    }

    fn payload(request: &ApnsRequest) -> Value {
        serde_json::from_str(&request.payload).unwrap()
    }

    #[test]
    fn full_alert_with_data_beside_aps() {
        let mut n = notification(
            Some(Alert {
                title: "title value".to_owned(),
                body: "body value".to_owned(),
                badge: Some(7),
                click_action: Some("click.action".to_owned()),
                tag: Some("tag value".to_owned()),
                sound: Some("bing".to_owned()),
            }),
            Some(json!({"meta": {"room": "r1", "n": 2}, "tags": ["a", "b"],
                        "aps": {"spoof": 1}})),
        );
        n.mutable_content = true;
        n.priority = Some(Priority::High);
        n.target.topic = Some("com.example.chat".to_owned());
        let request = build(&n, Some("com.example.default"), ACCEPTED_MS);
        assert_eq!(
            payload(&request),
            json!({"aps": {"alert": {"title": "title value", "body": "body value"},
                           "badge": 7, "sound": "bing", "category": "click.action",
                           "mutable-content": 1},
                   "meta": {"room": "r1", "n": 2}, "tags": ["a", "b"]})
        );
        assert_eq!(
            request.headers(),
            [
                ("apns-push-type", "alert".to_owned()),
                ("apns-topic", "com.example.chat".to_owned()),
                ("apns-priority", "10".to_owned()),
            ]
        );
    }

    #[test]
    fn plain_alert_has_no_mutable_content_and_no_priority() {
        let request = build(&notification(Some(alert()), None), None, ACCEPTED_MS);
        assert_eq!(
            payload(&request),
            json!({"aps": {"alert": {"title": "t", "body": "b"}}})
        );
        assert_eq!(request.headers(), [("apns-push-type", "alert".to_owned())]);
        assert!(!request.payload.contains("null"));
    }

    #[test]
    fn silent_push_is_background_priority_five_with_default_topic() {
        let mut n = notification(
            None,
            Some(json!({"last-message-body": "hi", "message-count": 1})),
        );
        n.priority = Some(Priority::High);
        let request = build(&n, Some("com.example.chat"), ACCEPTED_MS);
        assert_eq!(
            payload(&request),
            json!({"aps": {"content-available": 1}, "last-message-body": "hi",
                   "message-count": 1})
        );
        assert_eq!(
            request.headers(),
            [
                ("apns-push-type", "background".to_owned()),
                ("apns-topic", "com.example.chat".to_owned()),
                ("apns-priority", "5".to_owned()),
            ]
        );
    }

    #[test]
    fn silent_push_may_ask_for_mutable_content() {
        let mut n = notification(None, Some(json!({"k": "v"})));
        n.mutable_content = true;
        let request = build(&n, None, ACCEPTED_MS);
        assert_eq!(
            payload(&request),
            json!({"aps": {"content-available": 1, "mutable-content": 1}, "k": "v"})
        );
    }

    #[test]
    fn normal_priority_alert_is_five() {
        let mut n = notification(Some(alert()), None);
        n.priority = Some(Priority::Normal);
        assert_eq!(build(&n, None, ACCEPTED_MS).priority, Some("5"));
    }

    #[test]
    fn empty_topic_counts_as_absent() {
        let mut n = notification(Some(alert()), None);
        n.target.topic = Some(String::new());
        assert_eq!(
            build(&n, Some("d"), ACCEPTED_MS).topic.as_deref(),
            Some("d")
        );
        assert_eq!(build(&n, None, ACCEPTED_MS).topic, None);
    }

    #[test]
    fn expiration_counts_from_acceptance() {
        let mut n = notification(Some(alert()), None);
        n.time_to_live_secs = Some(3600);
        assert_eq!(build(&n, None, ACCEPTED_MS).expiration, Some(1_800_003_600));
        n.time_to_live_secs = Some(0);
        let request = build(&n, None, ACCEPTED_MS);
        assert_eq!(request.expiration, Some(0));
        assert!(
            request
                .headers()
                .contains(&("apns-expiration", "0".to_owned()))
        );
    }

    #[test]
    fn negative_badge_is_left_out() {
        let mut a = alert();
        a.badge = Some(-1);
        let request = build(&notification(Some(a), None), None, ACCEPTED_MS);
        assert_eq!(payload(&request)["aps"].get("badge"), None);
    }

    #[test]
    fn size_limit_is_4096_bytes_of_payload() {
        let overhead = build(&notification(None, Some(json!({"x": ""}))), None, 0)
            .payload
            .len();
        let fits = notification(
            None,
            Some(json!({"x": "y".repeat(MAX_PAYLOAD_BYTES - overhead)})),
        );
        assert!(!build(&fits, None, 0).is_too_large());
        let over = notification(
            None,
            Some(json!({"x": "y".repeat(MAX_PAYLOAD_BYTES - overhead + 1)})),
        );
        assert!(build(&over, None, 0).is_too_large());
    }
}

//! Reading the mocks' activity: the sends a device token received, their headers and
//! bodies, and waiting for a delivery.

use std::collections::BTreeMap;

use pushgate_testkit::{Activity, Control};
use serde_json::Value;

use super::eventually;

/// The sends a mock received for `device_token`, oldest first.
pub fn sends_to(control: &Control, device_token: &str) -> Vec<Activity> {
    let mut sends: Vec<Activity> = control
        .activity()
        .into_iter()
        .filter(|activity| activity.device_token == device_token)
        .collect();
    sends.reverse();
    sends
}

/// The one send a mock received for `device_token`.
#[track_caller]
pub fn only_send_to(control: &Control, device_token: &str) -> Activity {
    let mut sends = sends_to(control, device_token);
    assert_eq!(sends.len(), 1, "exactly one send to {device_token}");
    sends.remove(0)
}

/// Waits until a mock answered a send to `device_token` with 200.
pub async fn wait_delivered(control: &Control, device_token: &str) {
    let what = format!("a delivered send to {device_token}");
    eventually(&what, async || {
        sends_to(control, device_token)
            .iter()
            .any(|send| send.status == 200)
    })
    .await;
}

/// The `apns-*` headers and `authorization` of a recorded APNs send.
pub fn apns_headers(send: &Activity) -> BTreeMap<String, String> {
    send.request_headers
        .iter()
        .filter(|(name, _)| name.starts_with("apns-"))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect()
}

/// The `message` of a recorded FCM send.
pub fn fcm_message(send: &Activity) -> &Value {
    &send.request_data["message"]
}

/// True when `value` holds an empty object or a `null` anywhere.
pub fn has_empty_or_null(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Object(map) => map.is_empty() || map.values().any(has_empty_or_null),
        Value::Array(items) => items.iter().any(has_empty_or_null),
        _ => false,
    }
}

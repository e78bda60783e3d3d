//! The v1 ("flat") body: `service`, `title` and `body` at the top level, moved into an
//! alert on decoding; v1 cannot send silent pushes and knows no priority, TTL or tags.

use serde_json::Value;

use super::cast::Object;
use super::{MODES, SERVICES};
use crate::api::FieldError;
use crate::notification::{Alert, Notification, Target};

const FIELDS: &[&str] = &[
    "badge",
    "body",
    "click_action",
    "data",
    "mode",
    "service",
    "tag",
    "title",
    "topic",
];

const REQUIRED: &[&str] = &["service", "body", "title"];

/// Casts a parsed v1 body into a notification for `device_token`.
pub(super) fn decode(body: &Value, device_token: &str) -> Result<Notification, Vec<FieldError>> {
    let mut errors = Vec::new();
    let Some(mut object) = Object::root(body, &mut errors) else {
        return Err(errors);
    };

    object.reject_unknown(FIELDS);
    object.require(REQUIRED);

    // Alphabetical, the order OpenApiSpex visits properties in (see `deep`).
    let badge = object.int32("badge");
    let text = object.string("body");
    let click_action = object.string("click_action");
    let data = object.any_object("data");
    let mode = object.enumeration("mode", MODES);
    let service = object.enumeration("service", SERVICES);
    let tag = object.string("tag");
    let title = object.string("title");
    let topic = object.string("topic");

    match (service, title, text) {
        (Some(service), Some(title), Some(body)) if errors.is_empty() => Ok(Notification {
            target: Target {
                service,
                mode: mode.unwrap_or_default(),
                device_token: device_token.to_owned(),
                tags: Vec::new(),
                topic,
            },
            alert: Some(Alert {
                title,
                body,
                badge,
                click_action,
                tag,
                sound: None,
            }),
            data,
            priority: None,
            time_to_live_secs: None,
            mutable_content: false,
        }),
        _ => Err(errors),
    }
}

//! The v2/v3 ("deep") body: base fields plus an `alert` object, a `data` object, or both,
//! checked against the one sub-schema MongoosePush picks for its error reports.

use serde_json::Value;

use super::cast::Object;
use super::{MODES, PRIORITIES, SERVICES};
use crate::api::FieldError;
use crate::notification::{Alert, Notification, Target};

/// Every top-level field of the three sub-schemas; a body holds `alert`, `data` or both.
const FIELDS: &[&str] = &[
    "alert",
    "data",
    "mode",
    "mutable_content",
    "priority",
    "service",
    "tags",
    "time_to_live",
    "topic",
];

const ALERT_FIELDS: &[&str] = &["badge", "body", "click_action", "sound", "tag", "title"];

/// The sub-schema of the `oneOf` a body is validated against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// Base fields plus a required `alert`.
    Alert,
    /// Base fields plus a required `data`.
    Silent,
    /// Base fields plus both.
    Mixed,
}

impl Shape {
    /// MongoosePush's choice: Mixed with both keys, Silent with `data` only, Alert
    /// otherwise (so `{}` is reported as an alert missing `service` and `alert`).
    fn of(object: &Object<'_, '_>) -> Shape {
        match (object.has("alert"), object.has("data")) {
            (true, true) => Shape::Mixed,
            (false, true) => Shape::Silent,
            _ => Shape::Alert,
        }
    }

    fn required(self) -> &'static [&'static str] {
        match self {
            Shape::Alert => &["service", "alert"],
            Shape::Silent => &["service", "data"],
            Shape::Mixed => &["service", "alert", "data"],
        }
    }
}

/// Casts a parsed v2/v3 body into a notification for `device_token`.
pub(super) fn decode(body: &Value, device_token: &str) -> Result<Notification, Vec<FieldError>> {
    let mut errors = Vec::new();
    let Some(mut object) = Object::root(body, &mut errors) else {
        return Err(errors);
    };

    object.reject_unknown(FIELDS);
    let shape = Shape::of(&object);
    object.require(shape.required());

    // Alphabetical, the order OpenApiSpex visits properties in: the first error listed
    // is then the one MongoosePush itself would report.
    let alert = object
        .nested("alert")
        .and_then(|mut alert| cast_alert(&mut alert));
    let data = object.any_object("data");
    let mode = object.enumeration("mode", MODES);
    let mutable_content = object.boolean("mutable_content");
    let priority = object.enumeration("priority", PRIORITIES);
    let service = object.enumeration("service", SERVICES);
    let tags = object.strings("tags");
    let time_to_live_secs = object.int32("time_to_live");
    let topic = object.string("topic");

    match service {
        Some(service) if errors.is_empty() => Ok(Notification {
            target: Target {
                service,
                mode: mode.unwrap_or_default(),
                device_token: device_token.to_owned(),
                tags: tags.unwrap_or_default(),
                topic,
            },
            alert,
            data,
            priority,
            time_to_live_secs,
            mutable_content: mutable_content.unwrap_or(false),
        }),
        _ => Err(errors),
    }
}

/// Casts the `alert` object (`additionalProperties: false`, `body` and `title` required).
fn cast_alert(alert: &mut Object<'_, '_>) -> Option<Alert> {
    alert.reject_unknown(ALERT_FIELDS);
    alert.require(&["body", "title"]);

    let badge = alert.int32("badge");
    let body = alert.string("body");
    let click_action = alert.string("click_action");
    let sound = alert.string("sound");
    let tag = alert.string("tag");
    let title = alert.string("title");

    Some(Alert {
        title: title?,
        body: body?,
        badge,
        click_action,
        tag,
        sound,
    })
}

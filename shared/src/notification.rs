//! The notification model: what a push says and where it goes, independent of the API
//! version it arrived through and of the provider that will carry it.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The push provider a notification is meant for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Service {
    Fcm,
    Apns,
}

impl Service {
    /// The name used on the wire and in labels: `fcm` or `apns`.
    pub fn as_str(self) -> &'static str {
        match self {
            Service::Fcm => "fcm",
            Service::Apns => "apns",
        }
    }
}

/// Production or development (APNs sandbox) delivery; MongoosePush's default is `prod`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Prod,
    Dev,
}

impl Mode {
    /// The name used on the wire: `prod` or `dev`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Prod => "prod",
            Mode::Dev => "dev",
        }
    }
}

/// Delivery priority as the MongoosePush API names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    Normal,
    High,
}

/// Where a notification goes: the provider, the app selection keys and the device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Target {
    pub service: Service,
    #[serde(default)]
    pub mode: Mode,
    pub device_token: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
}

/// The visible part of a notification.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Alert {
    pub title: String,
    pub body: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub badge: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub click_action: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sound: Option<String>,
}

/// A push notification: an alert, silent data, or both (MongoosePush's "mixed").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    pub target: Target,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert: Option<Alert>,
    /// Custom data: any JSON object, carried as is until a provider needs another shape.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<Priority>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_to_live_secs: Option<i32>,
    #[serde(default)]
    pub mutable_content: bool,
}

impl Notification {
    /// An alert with `title` and `body` to `device_token` in production mode, without
    /// tags, topic, data or options.
    pub fn alert(service: Service, device_token: &str, title: &str, body: &str) -> Self {
        Notification {
            target: Target {
                service,
                mode: Mode::Prod,
                device_token: device_token.to_owned(),
                tags: Vec::new(),
                topic: None,
            },
            alert: Some(Alert {
                title: title.to_owned(),
                body: body.to_owned(),
                ..Alert::default()
            }),
            data: None,
            priority: None,
            time_to_live_secs: None,
            mutable_content: false,
        }
    }

    /// True when the notification carries no alert and is delivered as data only.
    pub fn is_silent(&self) -> bool {
        self.alert.is_none()
    }
}

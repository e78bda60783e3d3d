//! `POST /webhooks/mongooseim` (path configurable): a chat event from MongooseIM's event
//! pusher, fanned out as one job per registered device of the recipient, each retried
//! and dead-lettered on its own.

mod decode;
pub mod fit;

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use pushgate_shared::registry::{Device, bare_jid};
use pushgate_shared::{Alert, ApiVersion, Job, Notification, Target};
use serde_json::{Map, Value, json};

use self::decode::{ChatEvent, chat_event};
use crate::IngestState;
use crate::body::{media_type, read_limited};
use crate::config::{ConfigError, parse};
use crate::reply::{error_response, json_response};

/// The webhook's settings and the device cap of the registry it reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookConfig {
    /// `PUSHGATE_WEBHOOK_PATH`, default `/webhooks/mongooseim`.
    pub path: String,
    /// `PUSHGATE_DEFAULT_DOMAIN`: the recipient's domain for form bodies, which carry only
    /// its local part; unset means the sender's `server`.
    pub default_domain: Option<String>,
    /// `PUSHGATE_WEBHOOK_MAX_BODY_BYTES`, default 262144: chat messages may be longer than
    /// the API's body limit; the text is cut to fit the provider anyway.
    pub max_body_bytes: usize,
    /// `PUSHGATE_MAX_DEVICES_PER_USER`, default 20: registering one more evicts the oldest.
    pub max_devices_per_user: usize,
}

/// The most devices per user the configuration accepts: each is one job per event.
pub const MAX_DEVICES_PER_USER_LIMIT: usize = 1000;

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            path: "/webhooks/mongooseim".to_owned(),
            default_domain: None,
            max_body_bytes: 256 * 1024,
            max_devices_per_user: 20,
        }
    }
}

impl WebhookConfig {
    /// Reads the `PUSHGATE_WEBHOOK_*`, `PUSHGATE_DEFAULT_DOMAIN` and
    /// `PUSHGATE_MAX_DEVICES_PER_USER` variables.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the variable at fault.
    pub fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut config = WebhookConfig::default();
        if let Some(path) = lookup("PUSHGATE_WEBHOOK_PATH") {
            config.path = path.trim().to_owned();
        }
        if let Some(domain) = lookup("PUSHGATE_DEFAULT_DOMAIN").filter(|d| !d.trim().is_empty()) {
            config.default_domain = Some(domain.trim().to_lowercase());
        }
        if let Some(limit) = lookup("PUSHGATE_WEBHOOK_MAX_BODY_BYTES") {
            config.max_body_bytes = parse("PUSHGATE_WEBHOOK_MAX_BODY_BYTES", &limit)?;
        }
        if let Some(cap) = lookup("PUSHGATE_MAX_DEVICES_PER_USER") {
            config.max_devices_per_user = parse("PUSHGATE_MAX_DEVICES_PER_USER", &cap)?;
        }
        config.validate()?;
        Ok(config)
    }

    /// Checks that the path can be routed beside the API and the numbers make sense.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the variable at fault.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let path_error = |problem: &str| ConfigError {
            variable: "PUSHGATE_WEBHOOK_PATH",
            problem: format!("{:?} {problem}", self.path),
        };
        let segments: Vec<&str> = self.path.split('/').skip(1).collect();
        if !self.path.starts_with('/') || segments.iter().any(|s| s.is_empty()) {
            return Err(path_error(
                "must be /name or /name/..., without empty segments",
            ));
        }
        let unreserved = |c: char| c.is_ascii_alphanumeric() || "-._~".contains(c);
        if !segments.iter().all(|s| s.chars().all(unreserved)) {
            return Err(path_error(
                "may hold only A-Z a-z 0-9 - . _ ~ between slashes",
            ));
        }
        if ["v1", "v2", "v3", "api", "healthcheck"].contains(&segments[0]) {
            return Err(path_error("would clash with the API's own routes"));
        }
        if let Some(domain) = &self.default_domain
            && bare_jid(&format!("user@{domain}")).is_err()
        {
            return Err(ConfigError {
                variable: "PUSHGATE_DEFAULT_DOMAIN",
                problem: format!("{domain:?} is not a JID domain"),
            });
        }
        if !(1..=MAX_DEVICES_PER_USER_LIMIT).contains(&self.max_devices_per_user) {
            return Err(ConfigError {
                variable: "PUSHGATE_MAX_DEVICES_PER_USER",
                problem: format!("must be between 1 and {MAX_DEVICES_PER_USER_LIMIT}"),
            });
        }
        Ok(())
    }
}

/// The webhook handler: decode, look the recipient's devices up, queue one job each.
///
/// MongooseIM ignores the answer; it is for operators: the user, its device count and
/// how many jobs were queued (`skipped` says why none were for an empty message).
pub(crate) async fn receive(
    State(state): State<IngestState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let limit = state.webhook.max_body_bytes;
    let Some(bytes) = read_limited(body, &headers, limit).await else {
        let message = format!("the request body is larger than {limit} bytes");
        return error_response(413, "payload_too_large", &message);
    };
    let media_type = media_type(&headers);
    let default_domain = state.webhook.default_domain.as_deref();
    let event = match chat_event(media_type.as_deref(), &bytes, default_domain) {
        Ok(event) => event,
        Err(error) => {
            tracing::warn!(reason = error.reason(), error = %error, "webhook body refused");
            return error_response(400, error.reason(), &error.to_string());
        }
    };

    let devices = match state.registry.devices(&event.receiver).await {
        Ok(devices) => devices,
        Err(error) => {
            tracing::error!(error = %error, "webhook event not queued: device registry unavailable");
            return error_response(
                503,
                "unable_to_connect",
                "the device registry is unavailable",
            );
        }
    };
    let answer = |queued: usize, extra: Option<(&str, &str)>| {
        let mut body =
            json!({ "user": event.receiver, "devices": devices.len(), "queued": queued });
        if let Some((key, value)) = extra {
            body[key] = Value::from(value);
        }
        body
    };
    if event.message.is_empty() {
        tracing::debug!(user = %event.receiver, "empty chat message: nothing to push");
        let body = answer(0, Some(("skipped", "empty_message")));
        return json_response(200, body.to_string().into_bytes());
    }
    if devices.is_empty() {
        tracing::debug!(user = %event.receiver, "no device for the receiver");
    }

    let mut queued = 0;
    for device in &devices {
        let job = job_for(device, &event);
        match state.queue.append(&job).await {
            Ok(_) => {
                queued += 1;
                crate::metrics::job_accepted(device.settings.service, "webhook");
            }
            Err(error) => {
                if let Some(suppressed) = crate::metrics::admit("append_failed") {
                    tracing::error!(job_id = %job.id, error = %error, suppressed, "webhook job not appended: queue unavailable");
                }
            }
        }
    }
    if queued < devices.len() {
        let body = answer(queued, Some(("reason", "unable_to_connect")));
        return json_response(503, body.to_string().into_bytes());
    }
    tracing::debug!(queued, "webhook event fanned out");
    json_response(200, answer(queued, None).to_string().into_bytes())
}

/// The job that pushes `event` to `device`: an alert (title and tag the sender, as
/// MongooseIM's own pushes), or data only when the device registered as silent. Texts are
/// cut to fit the provider's payload limit.
fn job_for(device: &Device, event: &ChatEvent) -> Job {
    let sender = fit::fit(&event.sender, fit::MAX_SENDER_BYTES);
    let message = fit::fit(&event.message, fit::message_budget(sender));
    let settings = &device.settings;
    let (alert, data) = if settings.silent {
        let mut data = Map::new();
        data.insert("last-message-sender".to_owned(), Value::from(sender));
        data.insert("last-message-body".to_owned(), Value::from(message));
        data.insert("message-count".to_owned(), Value::from(1));
        (None, Some(data))
    } else {
        let alert = Alert {
            title: sender.to_owned(),
            body: message.to_owned(),
            tag: Some(sender.to_owned()),
            ..Alert::default()
        };
        (Some(alert), None)
    };
    let notification = Notification {
        target: Target {
            service: settings.service,
            mode: settings.mode,
            device_token: device.device_token.clone(),
            tags: settings.tags.clone(),
            topic: settings.topic.clone(),
        },
        alert,
        data,
        priority: settings.priority,
        time_to_live_secs: None,
        mutable_content: false,
    };
    let mut job = Job::new(notification, ApiVersion::V3);
    job.registry_user = Some(event.receiver.clone());
    job
}

//! `/api/v1/users/{jid}/devices...`: the device registry the webhook fans out to. App
//! backends register, list and remove a user's devices; users are bare JIDs, lower-cased.

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use pushgate_shared::job::now_ms;
use pushgate_shared::registry::{Device, DeviceSettings, JidError, RegistryError, bare_jid};
use pushgate_shared::{Mode, Priority, Service};
use serde::Deserialize;
use serde_json::json;

use crate::IngestState;
use crate::body::{media_type, read_limited};
use crate::reply::{error_response, json_response};

/// The longest device token accepted, in bytes (APNs tokens are 64 hex digits, FCM's
/// about 160 characters).
pub const MAX_DEVICE_TOKEN_BYTES: usize = 1024;
/// The longest APNs topic accepted, in bytes.
pub const MAX_TOPIC_BYTES: usize = 255;
/// The most tags a device may carry, and the longest tag, in bytes.
pub const MAX_TAGS: usize = 16;
pub const MAX_TAG_BYTES: usize = 64;

/// Why a registry request was refused; each kind has its own `reason`.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RegistryApiError {
    #[error("the path cannot be read: {0}")]
    BadPath(String),
    #[error("{0}")]
    InvalidJid(#[from] JidError),
    #[error("the device token {0}")]
    InvalidDeviceToken(&'static str),
    #[error("unknown service {0:?}: use \"fcm\" or \"apns\"")]
    UnknownService(String),
    #[error("missing field: {0}")]
    MissingField(&'static str),
    #[error("{field}: {problem}")]
    InvalidField {
        field: &'static str,
        problem: String,
    },
    #[error("{field} is larger than {limit} {unit}")]
    FieldTooLarge {
        field: &'static str,
        limit: usize,
        unit: &'static str,
    },
    #[error("malformed JSON: {0}")]
    MalformedJson(String),
    #[error("the body must be JSON (content-type: application/json)")]
    UnsupportedContentType,
    #[error("the request body is larger than {0} bytes")]
    TooLarge(usize),
    #[error("no such device for this user")]
    DeviceNotFound,
    #[error("the device registry is unavailable")]
    Unavailable(#[source] RegistryError),
}

impl RegistryApiError {
    fn status_and_reason(&self) -> (u16, &'static str) {
        match self {
            RegistryApiError::BadPath(_) => (400, "invalid_path"),
            RegistryApiError::InvalidJid(_) => (400, "invalid_jid"),
            RegistryApiError::InvalidDeviceToken(_) => (400, "invalid_device_token"),
            RegistryApiError::UnknownService(_) => (400, "unknown_service"),
            RegistryApiError::MissingField(_) => (400, "missing_field"),
            RegistryApiError::InvalidField { .. } => (400, "invalid_field"),
            RegistryApiError::FieldTooLarge { .. } => (400, "field_too_large"),
            RegistryApiError::MalformedJson(_) => (400, "malformed_json"),
            RegistryApiError::UnsupportedContentType => (415, "unsupported_content_type"),
            RegistryApiError::TooLarge(_) => (413, "payload_too_large"),
            RegistryApiError::DeviceNotFound => (404, "device_not_found"),
            RegistryApiError::Unavailable(_) => (503, "unable_to_connect"),
        }
    }
}

impl IntoResponse for RegistryApiError {
    fn into_response(self) -> Response {
        let (status, reason) = self.status_and_reason();
        match &self {
            RegistryApiError::Unavailable(source) => {
                tracing::error!(error = %source, "device registry unavailable");
            }
            other => tracing::debug!(reason, error = %other, "registry request refused"),
        }
        error_response(status, reason, &self.to_string())
    }
}

/// The body of `PUT .../devices/{device_token}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegisterBody {
    service: Option<String>,
    mode: Option<String>,
    topic: Option<String>,
    tags: Option<Vec<String>>,
    silent: Option<bool>,
    priority: Option<String>,
}

/// `PUT /api/v1/users/{jid}/devices/{device_token}`: registers or updates; 201 when new.
pub(crate) async fn put_device(
    State(state): State<IngestState>,
    path: Result<Path<(String, String)>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, RegistryApiError> {
    let Path((jid, device_token)) = path.map_err(|e| RegistryApiError::BadPath(e.body_text()))?;
    let user = bare_jid(&jid)?;
    check_device_token(&device_token)?;
    let settings = read_settings(&state, &headers, body).await?;

    let device = Device {
        device_token,
        settings,
        registered_at_ms: now_ms(),
    };
    let registration = state
        .registry
        .register(&user, &device, state.webhook.max_devices_per_user)
        .await
        .map_err(RegistryApiError::Unavailable)?;
    if !registration.evicted.is_empty() {
        tracing::info!(
            evicted = registration.evicted.len(),
            "devices evicted: the user is at the device cap"
        );
    }
    let body = json!({
        "user": user,
        "device": device,
        "created": registration.created,
        "devices": registration.devices,
        "evicted": registration.evicted,
    });
    let status = if registration.created { 201 } else { 200 };
    Ok(json_response(status, body.to_string().into_bytes()))
}

/// `GET /api/v1/users/{jid}/devices`: the user's devices, oldest registration first.
pub(crate) async fn list_devices(
    State(state): State<IngestState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, RegistryApiError> {
    let Path(jid) = path.map_err(|e| RegistryApiError::BadPath(e.body_text()))?;
    let user = bare_jid(&jid)?;
    let devices = state
        .registry
        .devices(&user)
        .await
        .map_err(RegistryApiError::Unavailable)?;
    let body = json!({ "user": user, "devices": devices });
    Ok(json_response(200, body.to_string().into_bytes()))
}

/// `DELETE /api/v1/users/{jid}/devices/{device_token}`: 404 when it is not registered.
pub(crate) async fn delete_device(
    State(state): State<IngestState>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Response, RegistryApiError> {
    let Path((jid, device_token)) = path.map_err(|e| RegistryApiError::BadPath(e.body_text()))?;
    let user = bare_jid(&jid)?;
    let removed = state
        .registry
        .remove_device(&user, &device_token)
        .await
        .map_err(RegistryApiError::Unavailable)?;
    if !removed {
        return Err(RegistryApiError::DeviceNotFound);
    }
    let body = json!({ "user": user, "device_token": device_token, "removed": true });
    Ok(json_response(200, body.to_string().into_bytes()))
}

/// `DELETE /api/v1/users/{jid}`: forgets every device of the user (0 is fine).
pub(crate) async fn forget_user(
    State(state): State<IngestState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, RegistryApiError> {
    let Path(jid) = path.map_err(|e| RegistryApiError::BadPath(e.body_text()))?;
    let user = bare_jid(&jid)?;
    let removed = state
        .registry
        .forget_user(&user)
        .await
        .map_err(RegistryApiError::Unavailable)?;
    let body = json!({ "user": user, "removed": removed });
    Ok(json_response(200, body.to_string().into_bytes()))
}

fn check_device_token(token: &str) -> Result<(), RegistryApiError> {
    if token.is_empty() {
        return Err(RegistryApiError::InvalidDeviceToken("is empty"));
    }
    if token.len() > MAX_DEVICE_TOKEN_BYTES {
        return Err(RegistryApiError::FieldTooLarge {
            field: "device_token",
            limit: MAX_DEVICE_TOKEN_BYTES,
            unit: "bytes",
        });
    }
    if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(RegistryApiError::InvalidDeviceToken(
            "contains whitespace or control characters",
        ));
    }
    Ok(())
}

/// Reads and checks the JSON body of a registration.
async fn read_settings(
    state: &IngestState,
    headers: &HeaderMap,
    body: Body,
) -> Result<DeviceSettings, RegistryApiError> {
    if media_type(headers).is_some_and(|media| media != "application/json") {
        return Err(RegistryApiError::UnsupportedContentType);
    }
    let limit = state.limits.max_body_bytes;
    let bytes = read_limited(body, headers, limit)
        .await
        .ok_or(RegistryApiError::TooLarge(limit))?;
    let body: RegisterBody = serde_json::from_slice(&bytes).map_err(|error| {
        if error.is_data() {
            RegistryApiError::InvalidField {
                field: "body",
                problem: error.to_string(),
            }
        } else {
            RegistryApiError::MalformedJson(error.to_string())
        }
    })?;
    settings_from(body)
}

fn settings_from(body: RegisterBody) -> Result<DeviceSettings, RegistryApiError> {
    let service = match body.service.as_deref() {
        None => return Err(RegistryApiError::MissingField("service")),
        Some("fcm") => Service::Fcm,
        Some("apns") => Service::Apns,
        Some(other) => return Err(RegistryApiError::UnknownService(other.to_owned())),
    };
    let mode = match body.mode.as_deref() {
        None | Some("prod") => Mode::Prod,
        Some("dev") => Mode::Dev,
        Some(other) => return Err(invalid("mode", format!("{other:?} is not prod or dev"))),
    };
    let priority = match body.priority.as_deref() {
        None => None,
        Some("normal") => Some(Priority::Normal),
        Some("high") => Some(Priority::High),
        Some(other) => {
            return Err(invalid(
                "priority",
                format!("{other:?} is not normal or high"),
            ));
        }
    };
    let topic = body.topic.filter(|topic| !topic.is_empty());
    if topic
        .as_ref()
        .is_some_and(|topic| topic.len() > MAX_TOPIC_BYTES)
    {
        return Err(too_large("topic", MAX_TOPIC_BYTES, "bytes"));
    }
    let tags = body.tags.unwrap_or_default();
    if tags.len() > MAX_TAGS {
        return Err(too_large("tags", MAX_TAGS, "tags"));
    }
    if tags.iter().any(|tag| tag.len() > MAX_TAG_BYTES) {
        return Err(too_large("tags", MAX_TAG_BYTES, "bytes per tag"));
    }
    Ok(DeviceSettings {
        service,
        mode,
        topic,
        tags,
        silent: body.silent.unwrap_or(false),
        priority,
    })
}

fn invalid(field: &'static str, problem: String) -> RegistryApiError {
    RegistryApiError::InvalidField { field, problem }
}

fn too_large(field: &'static str, limit: usize, unit: &'static str) -> RegistryApiError {
    RegistryApiError::FieldTooLarge { field, limit, unit }
}

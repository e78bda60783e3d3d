//! Decoding of MongoosePush v1 (flat) and v2/v3 (deep) request bodies, with the checks,
//! lenient casting and error messages of MongoosePush 2.x (OpenApiSpex).

mod cast;
mod deep;
mod flat;

use serde_json::Value;

use super::RequestError;
use crate::job::ApiVersion;
use crate::notification::{Mode, Notification, Priority, Service};

const SERVICES: &[(&str, Service)] = &[("fcm", Service::Fcm), ("apns", Service::Apns)];
const MODES: &[(&str, Mode)] = &[("prod", Mode::Prod), ("dev", Mode::Dev)];
const PRIORITIES: &[(&str, Priority)] = &[("normal", Priority::Normal), ("high", Priority::High)];

/// Limits applied before a body is parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    pub max_body_bytes: usize,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        DecodeLimits {
            max_body_bytes: 64 * 1024,
        }
    }
}

/// Decodes one notification request for `device_token`, which is kept as given.
///
/// The checks run in this order: body size (before any parsing), `content-type`
/// (`application/json` or any `+json` type, parameters allowed), empty body (nothing
/// but whitespace), UTF-8, JSON syntax, then the version's schema. Schema violations are
/// all collected; MongoosePush stops at the first failing step, so its error list is
/// always a prefix of ours. A top-level value other than an object is a schema error at
/// pointer `/` (`Invalid object. Got: array`), as OpenApiSpex reports it.
///
/// # Errors
///
/// A [`RequestError`] saying why the request is refused, in MongoosePush's terms.
pub fn decode_notification(
    version: ApiVersion,
    device_token: &str,
    content_type: Option<&str>,
    body: &[u8],
    limits: &DecodeLimits,
) -> Result<Notification, RequestError> {
    if body.len() > limits.max_body_bytes {
        return Err(RequestError::TooLarge {
            limit_bytes: limits.max_body_bytes,
        });
    }

    check_content_type(content_type)?;
    let value = parse_json(body)?;

    let decoded = match version {
        ApiVersion::V1 => flat::decode(&value, device_token),
        ApiVersion::V2 | ApiVersion::V3 => deep::decode(&value, device_token),
    };
    decoded.map_err(RequestError::Validation)
}

/// Accepts `application/json` and structured `+json` types, with any parameters.
fn check_content_type(content_type: Option<&str>) -> Result<(), RequestError> {
    let content_type = content_type.ok_or(RequestError::MissingContentType)?;
    let media: mime::Mime = content_type
        .parse()
        .map_err(|_| RequestError::UnsupportedContentType)?;

    let is_json = media.type_() == mime::APPLICATION
        && (media.subtype() == mime::JSON || media.suffix() == Some(mime::JSON));
    if is_json {
        Ok(())
    } else {
        Err(RequestError::UnsupportedContentType)
    }
}

fn parse_json(body: &[u8]) -> Result<Value, RequestError> {
    if body.trim_ascii().is_empty() {
        return Err(RequestError::EmptyBody);
    }

    let text = std::str::from_utf8(body).map_err(|_| RequestError::InvalidUtf8)?;
    serde_json::from_str(text).map_err(|error| RequestError::MalformedJson(error.to_string()))
}

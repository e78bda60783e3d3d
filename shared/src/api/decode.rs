//! Decoding of MongoosePush v1 (flat) and v2/v3 (deep) request bodies.

use super::RequestError;
use crate::job::ApiVersion;
use crate::notification::Notification;

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

/// Decodes one notification request for `device_token`.
///
/// # Errors
///
/// A [`RequestError`] saying why the request is refused, in MongoosePush's terms.
pub fn decode_notification(
    _version: ApiVersion,
    _device_token: &str,
    _content_type: Option<&str>,
    _body: &[u8],
    _limits: &DecodeLimits,
) -> Result<Notification, RequestError> {
    unimplemented!("being written")
}

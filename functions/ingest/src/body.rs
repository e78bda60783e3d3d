//! Reading a request body whole, refusing it unread when it is larger than a limit.

use axum::body::{Body, Bytes, to_bytes};
use axum::http::{HeaderMap, header};

/// The body, or `None` when its declared or actual length is over `limit_bytes`.
pub(crate) async fn read_limited(
    body: Body,
    headers: &HeaderMap,
    limit_bytes: usize,
) -> Option<Bytes> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit_bytes as u64) {
        return None;
    }
    to_bytes(body, limit_bytes).await.ok()
}

/// The media type of `content-type` in lower case, without parameters.
pub(crate) fn media_type(headers: &HeaderMap) -> Option<String> {
    headers.get(header::CONTENT_TYPE).map(|value| {
        value
            .to_str()
            .unwrap_or("\u{fffd}")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    })
}

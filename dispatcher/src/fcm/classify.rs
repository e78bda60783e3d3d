//! FCM HTTP v1 answers mapped to outcome classes: by the `FcmError` code in
//! `error.details` first, then by `error.status`, then by the HTTP status.

use pushgate_shared::api::{Category, PushError};
use serde::Deserialize;

use crate::outcome::{Attempt, Outcome};

/// The `@type` of the detail that carries FCM's own error code.
pub const FCM_ERROR_TYPE: &str = "type.googleapis.com/google.firebase.fcm.v1.FcmError";

#[derive(Deserialize)]
struct Envelope {
    error: Option<ErrorBody>,
}

#[derive(Deserialize)]
struct ErrorBody {
    status: Option<String>,
    #[serde(default)]
    details: Vec<Detail>,
}

#[derive(Deserialize)]
struct Detail {
    #[serde(rename = "@type")]
    kind: Option<String>,
    #[serde(rename = "errorCode")]
    error_code: Option<String>,
}

/// Classifies one FCM answer (`status` and `body`); the answer text is kept in the result.
///
/// The reason is the `errorCode` of the first `FcmError` in `error.details`, else
/// `error.status` (MongoosePush reads it the same way). Decisions that differ from
/// MongoosePush, on purpose:
/// - `UNREGISTERED` is a dead token only when it comes as an `FcmError` detail, as real FCM
///   sends it. Found only in `error.status` (MongoosePush's mock does that) it still
///   answers 410 `unregistered` but is [`Outcome::Rejected`]: the token is not remembered.
/// - A 401 without a known FCM code (real FCM: `UNAUTHENTICATED`) means our OAuth token was
///   refused: [`Outcome::OurCredentials`], category `auth` (503 in v3, not 500), and the
///   sender renews its token and retries once.
/// - `NOT_FOUND` without a detail is a wrong project or endpoint, never a dead token:
///   [`Outcome::Configuration`], category `internal_config` (503 in v3, not 500).
/// - FCM's real name `UNSPECIFIED_ERROR` is read like MongoosePush's `UNSPECIFIED`.
///
/// Other reasons keep MongoosePush's category; unknown ones stay `generic` with the raw
/// reason, and an answer with no reason at all is named `http_<status>`.
pub fn classify(status: u16, body: &[u8]) -> Attempt {
    if (200..300).contains(&status) {
        return Attempt::delivered().with_answer(status, body);
    }

    let error = serde_json::from_slice::<Envelope>(body)
        .ok()
        .and_then(|e| e.error);
    let (detail_code, status_text) = match error {
        Some(error) => (
            fcm_error_code(&error.details),
            error.status.filter(|s| !s.is_empty()),
        ),
        None => (None, None),
    };
    let from_detail = detail_code.is_some();
    let (class, category, reason) = match detail_code.or(status_text) {
        Some(reason) => {
            let (class, category) = by_reason(&reason, from_detail, status);
            (class, category, reason)
        }
        None => (
            fallback_class(status),
            Category::Generic,
            format!("http_{status}"),
        ),
    };
    Attempt::failed(class, PushError::new(category, reason)).with_answer(status, body)
}

/// The `errorCode` of the first `FcmError` detail, if any.
fn fcm_error_code(details: &[Detail]) -> Option<String> {
    details
        .iter()
        .find(|d| d.kind.as_deref() == Some(FCM_ERROR_TYPE))
        .and_then(|d| d.error_code.clone())
        .filter(|c| !c.is_empty())
}

/// The class and MongoosePush category of `reason`, found in a detail or in `error.status`.
fn by_reason(reason: &str, from_detail: bool, status: u16) -> (Outcome, Category) {
    match reason {
        "UNREGISTERED" if from_detail => (Outcome::DeadToken, Category::Unregistered),
        "UNREGISTERED" => (Outcome::Rejected, Category::Unregistered),
        "INVALID_ARGUMENT" => (Outcome::Rejected, Category::InvalidRequest),
        "SENDER_ID_MISMATCH" => (Outcome::Rejected, Category::Auth),
        "THIRD_PARTY_AUTH_ERROR" | "APNS_AUTH_ERROR" => (Outcome::Configuration, Category::Auth),
        "QUOTA_EXCEEDED" => (Outcome::Throttled, Category::TooManyRequests),
        "UNAVAILABLE" | "INTERNAL" => (Outcome::ProviderDown, Category::ServiceInternal),
        "UNSPECIFIED" | "UNSPECIFIED_ERROR" => (fallback_class(status), Category::Unspecified),
        "UNAUTHENTICATED" => (Outcome::OurCredentials, Category::Auth),
        "NOT_FOUND" if !from_detail => (Outcome::Configuration, Category::InternalConfig),
        "PERMISSION_DENIED" => (Outcome::Configuration, Category::Generic),
        _ => (fallback_class(status), Category::Generic),
    }
}

/// The class of an answer whose reason we do not know, from its HTTP status alone.
fn fallback_class(status: u16) -> Outcome {
    match status {
        401 => Outcome::OurCredentials,
        403 | 404 => Outcome::Configuration,
        429 => Outcome::Throttled,
        500..=599 => Outcome::ProviderDown,
        _ => Outcome::Rejected,
    }
}

//! APNs answers mapped to outcome classes: by HTTP status first, then by Apple's
//! `reason`, with MongoosePush's `{category, reason}` kept for the API answer.

use pushgate_shared::api::{Category, PushError};
use serde::Deserialize;

use crate::outcome::{Attempt, Outcome};

/// The APNs reason that makes the sender renew its provider token and retry once.
pub const EXPIRED_PROVIDER_TOKEN: &str = "ExpiredProviderToken";

#[derive(Deserialize)]
struct ErrorBody {
    reason: Option<String>,
}

/// Classifies one APNs answer (`status` and `body`); the answer text is kept in the result.
///
/// The status decides first: 200 is delivered, any 410 is a dead token whatever the reason
/// (Apple also sends `ExpiredToken`), 429 is throttling, 5xx is the provider being down
/// and 413 is a payload too large. Other statuses are classified by reason. The
/// [`PushError`] follows MongoosePush's table, so reasons it did not know (such as
/// `InvalidPushType`) stay `generic` with the raw reason; an answer without a reason is
/// named `http_<status>`.
pub fn classify(status: u16, body: &[u8]) -> Attempt {
    if status == 200 {
        return Attempt::delivered().with_answer(status, body);
    }

    let reason = serde_json::from_slice::<ErrorBody>(body)
        .ok()
        .and_then(|b| b.reason)
        .filter(|r| !r.is_empty());
    let (class, category, reason) = match (status, reason) {
        (410, reason) => (
            Outcome::DeadToken,
            Category::Unregistered,
            reason.unwrap_or_else(|| "Unregistered".to_owned()),
        ),
        (429, reason) => (
            Outcome::Throttled,
            Category::TooManyRequests,
            reason.unwrap_or_else(|| "TooManyRequests".to_owned()),
        ),
        (413, reason) => (
            Outcome::Rejected,
            Category::PayloadTooLarge,
            reason.unwrap_or_else(|| "PayloadTooLarge".to_owned()),
        ),
        (500..=599, Some(reason)) => (Outcome::ProviderDown, category_of(&reason), reason),
        (500..=599, None) => (
            Outcome::ProviderDown,
            Category::Generic,
            format!("http_{status}"),
        ),
        (_, Some(reason)) => (class_of(status, &reason), category_of(&reason), reason),
        (_, None) => (
            fallback_class(status),
            Category::Generic,
            format!("http_{status}"),
        ),
    };
    Attempt::failed(class, PushError::new(category, reason)).with_answer(status, body)
}

/// What the dispatcher should do about `reason` when the status alone did not decide.
fn class_of(status: u16, reason: &str) -> Outcome {
    match reason {
        "BadDeviceToken"
        | "DeviceTokenNotForTopic"
        | "BadCollapseId"
        | "PayloadEmpty"
        | "Forbidden"
        | "MissingDeviceToken" => Outcome::Rejected,
        "Unregistered" => Outcome::DeadToken,
        "PayloadTooLarge" => Outcome::Rejected,
        "TooManyRequests" | "TooManyProviderTokenUpdates" => Outcome::Throttled,
        "IdleTimeout" | "InternalServerError" | "ServiceUnavailable" | "Shutdown" => {
            Outcome::ProviderDown
        }
        "ExpiredProviderToken"
        | "InvalidProviderToken"
        | "MissingProviderToken"
        | "BadCertificate"
        | "BadCertificateEnvironment"
        | "BadEnvironmentKeyIdInToken"
        | "UnrelatedKeyIdInToken" => Outcome::OurCredentials,
        "BadMessageId" | "BadPriority" | "BadTopic" | "DuplicateHeaders" | "MethodNotAllowed"
        | "BadPath" | "MissingTopic" | "BadExpirationDate" | "TopicDisallowed"
        | "InvalidPushType" => Outcome::Configuration,
        _ => fallback_class(status),
    }
}

/// The class of an answer whose reason we do not know, from its status alone.
fn fallback_class(status: u16) -> Outcome {
    match status {
        401 | 403 => Outcome::OurCredentials,
        429 => Outcome::Throttled,
        500..=599 => Outcome::ProviderDown,
        _ => Outcome::Rejected,
    }
}

/// MongoosePush's category for an APNs reason (its `apns/error_handler.ex` table).
fn category_of(reason: &str) -> Category {
    match reason {
        "BadCollapseId"
        | "BadDeviceToken"
        | "DeviceTokenNotForTopic"
        | "IdleTimeout"
        | "PayloadEmpty"
        | "TopicDisallowed"
        | "Forbidden" => Category::InvalidRequest,
        "BadMessageId" | "BadPriority" | "BadTopic" | "DuplicateHeaders" | "MissingDeviceToken"
        | "MethodNotAllowed" | "BadPath" | "MissingTopic" | "BadExpirationDate" => {
            Category::InternalConfig
        }
        "ExpiredProviderToken"
        | "InvalidProviderToken"
        | "MissingProviderToken"
        | "BadCertificate"
        | "BadCertificateEnvironment" => Category::Auth,
        "Unregistered" => Category::Unregistered,
        "TooManyProviderTokenUpdates" | "TooManyRequests" => Category::TooManyRequests,
        "ServiceUnavailable" | "Shutdown" | "InternalServerError" => Category::ServiceInternal,
        "PayloadTooLarge" => Category::PayloadTooLarge,
        _ => Category::Generic,
    }
}

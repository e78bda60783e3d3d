//! Every answer the notification endpoints give, in one place: v3 `{"reason": ...}`,
//! v2 and v1 `{"details": ...}`, and OpenApiSpex's 422 list for schema errors.

use serde_json::{Value, json};

use super::{Category, FieldError, PushError, RequestError};
use crate::job::ApiVersion;

/// An HTTP answer: status code and JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Answer {
    /// 200 with the body `null`, MongoosePush's success answer in every version.
    pub fn ok() -> Self {
        Answer {
            status: 200,
            body: Value::Null,
        }
    }

    /// The body as bytes, ready to send.
    pub fn body_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(&self.body).expect("a serde_json::Value always serializes")
    }
}

/// The answer for a push that failed with `error`, as API `version` gives it.
pub fn answer_for_outcome(version: ApiVersion, error: &PushError) -> Answer {
    match version {
        ApiVersion::V3 => answer_v3(error),
        ApiVersion::V2 | ApiVersion::V1 => answer_v2(error),
    }
}

fn answer_v3(error: &PushError) -> Answer {
    let (status, reason) = match error.category {
        Category::InvalidRequest => (400, "invalid_request"),
        Category::Unregistered => (410, "unregistered"),
        Category::PayloadTooLarge => (413, "payload_too_large"),
        Category::TooManyRequests => (429, "too_many_requests"),
        Category::ServiceInternal | Category::Auth => (503, "service_internal"),
        Category::InternalConfig => (503, "internal_config"),
        Category::Unspecified => (520, "unspecified"),
        Category::Generic => match error.reason.as_str() {
            "no_matching_pool" | "invalid_notification" => (400, error.reason.as_str()),
            "unable_to_connect" | "connection_lost" => (503, error.reason.as_str()),
            other => (500, other),
        },
    };
    Answer {
        status,
        body: json!({ "reason": reason }),
    }
}

fn answer_v2(error: &PushError) -> Answer {
    if error.category == Category::Generic && error.reason == "unable_to_connect" {
        return Answer {
            status: 503,
            body: json!({ "details": "Please try again later" }),
        };
    }
    Answer {
        status: 500,
        body: json!({ "details": error.reason }),
    }
}

/// The answer for a request refused before it was queued.
///
/// Schema and header errors are 422 with OpenApiSpex's `errors` list in every version
/// (header errors at pointer `/`, as OpenApiSpex places them). The others are 400 or 413
/// with a plain body: v3 `{"reason":"<code>","message":"<text>"}`, where the code is
/// [`RequestError::code`]; v2 and v1 `{"details":"<text>"}`.
pub fn answer_for_request_error(version: ApiVersion, error: &RequestError) -> Answer {
    let field_errors = match error {
        RequestError::Validation(errors) => errors.clone(),
        RequestError::MissingContentType => {
            vec![FieldError::new("/", "Missing header: content-type")]
        }
        RequestError::UnsupportedContentType => {
            vec![FieldError::new(
                "/",
                "Invalid value for header: content-type",
            )]
        }
        RequestError::TooLarge { .. } => return plain(version, 413, error),
        RequestError::MalformedJson(_) | RequestError::EmptyBody | RequestError::InvalidUtf8 => {
            return plain(version, 400, error);
        }
    };

    let errors: Vec<Value> = field_errors
        .iter()
        .map(|e| {
            json!({
                "title": "Invalid value",
                "source": { "pointer": e.pointer },
                "message": e.message,
            })
        })
        .collect();
    Answer {
        status: 422,
        body: json!({ "errors": errors }),
    }
}

fn plain(version: ApiVersion, status: u16, error: &RequestError) -> Answer {
    let body = match version {
        ApiVersion::V3 => json!({ "reason": error.code(), "message": error.to_string() }),
        ApiVersion::V2 | ApiVersion::V1 => json!({ "details": error.to_string() }),
    };
    Answer { status, body }
}

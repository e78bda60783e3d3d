//! The MongoosePush REST API contract: decoding v1/v2/v3 bodies with MongoosePush 2.x
//! validation, and encoding every answer in the shape each version promises.

pub mod decode;
pub mod respond;

pub use decode::{DecodeLimits, decode_notification};
pub use respond::{Answer, answer_for_outcome, answer_for_request_error};

/// One schema violation, reported as MongoosePush (OpenApiSpex) reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// JSON pointer to the offending value, e.g. `/alert/title`.
    pub pointer: String,
    /// MongoosePush's message, e.g. `Missing field: service`.
    pub message: String,
}

impl FieldError {
    pub fn new(pointer: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            pointer: pointer.into(),
            message: message.into(),
        }
    }
}

/// Why a notification request was refused before it was queued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The body broke the schema (422, OpenApiSpex's `errors` list).
    #[error("the request does not match the schema")]
    Validation(Vec<FieldError>),
    /// The body is not JSON at all (400).
    #[error("malformed JSON: {0}")]
    MalformedJson(String),
    /// The body is empty (400).
    #[error("the request body is empty")]
    EmptyBody,
    /// The body is not valid UTF-8 (400).
    #[error("the request body is not valid UTF-8")]
    InvalidUtf8,
    /// No `content-type` header (422, as OpenApiSpex answers).
    #[error("missing header: content-type")]
    MissingContentType,
    /// A `content-type` other than JSON (422, as OpenApiSpex answers).
    #[error("invalid value for header: content-type")]
    UnsupportedContentType,
    /// The body is larger than the configured limit (413); it was not parsed.
    #[error("the request body is larger than {limit_bytes} bytes")]
    TooLarge { limit_bytes: usize },
}

impl RequestError {
    /// A stable snake_case name for the refusal, used as the v3 `reason` and as a label.
    pub fn code(&self) -> &'static str {
        match self {
            RequestError::Validation(_) => "invalid_value",
            RequestError::MalformedJson(_) => "malformed_json",
            RequestError::EmptyBody => "empty_body",
            RequestError::InvalidUtf8 => "invalid_utf8",
            RequestError::MissingContentType => "missing_content_type",
            RequestError::UnsupportedContentType => "unsupported_content_type",
            RequestError::TooLarge { .. } => "payload_too_large",
        }
    }
}

/// MongoosePush's error categories: the first half of its internal `{category, reason}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    InvalidRequest,
    Unregistered,
    PayloadTooLarge,
    TooManyRequests,
    ServiceInternal,
    Auth,
    InternalConfig,
    Unspecified,
    /// Errors named by their reason alone: `no_matching_pool`, `unable_to_connect`,
    /// `connection_lost`, `invalid_notification`, or an upstream reason nobody mapped.
    Generic,
}

impl Category {
    pub fn as_str(self) -> &'static str {
        match self {
            Category::InvalidRequest => "invalid_request",
            Category::Unregistered => "unregistered",
            Category::PayloadTooLarge => "payload_too_large",
            Category::TooManyRequests => "too_many_requests",
            Category::ServiceInternal => "service_internal",
            Category::Auth => "auth",
            Category::InternalConfig => "internal_config",
            Category::Unspecified => "unspecified",
            Category::Generic => "generic",
        }
    }
}

/// A failed push as MongoosePush describes it: a category and the raw reason
/// (the provider's own string, such as `BadDeviceToken` or `UNREGISTERED`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct PushError {
    pub category: Category,
    pub reason: String,
}

impl PushError {
    pub fn new(category: Category, reason: impl Into<String>) -> Self {
        PushError {
            category,
            reason: reason.into(),
        }
    }

    /// A `generic` error named only by its reason, e.g. `no_matching_pool`.
    pub fn generic(reason: impl Into<String>) -> Self {
        Self::new(Category::Generic, reason)
    }
}

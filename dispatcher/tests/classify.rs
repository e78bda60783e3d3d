//! Table tests of the two classification functions, including the API answers their
//! errors produce (MongoosePush scenarios 1-9, 11-16, 19 and 20).

use dispatcher::outcome::{Attempt, Outcome};
use dispatcher::{apns, fcm};
use pushgate_shared::ApiVersion;
use pushgate_shared::api::{Category, PushError, answer_for_outcome};
use serde_json::{Value, json};

fn apns_body(reason: &str) -> Vec<u8> {
    json!({ "reason": reason }).to_string().into_bytes()
}

fn fcm_status_body(status: u16, reason: &str) -> Vec<u8> {
    json!({"error": {"code": status, "status": reason, "message": ""}})
        .to_string()
        .into_bytes()
}

fn fcm_detail_body(status: u16, grpc_status: &str, code: &str) -> Vec<u8> {
    json!({"error": {"code": status, "status": grpc_status, "message": "x", "details": [
        {"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": []},
        {"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": code}
    ]}})
    .to_string()
    .into_bytes()
}

/// The gRPC status Google sends with an HTTP status.
fn grpc_status(status: u16) -> &'static str {
    match status {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        429 => "RESOURCE_EXHAUSTED",
        503 => "UNAVAILABLE",
        _ => "INTERNAL",
    }
}

fn v3(attempt: &Attempt) -> (u16, Value) {
    let answer = answer_for_outcome(ApiVersion::V3, attempt.error.as_ref().unwrap());
    (answer.status, answer.body)
}

fn v2(attempt: &Attempt) -> (u16, Value) {
    let answer = answer_for_outcome(ApiVersion::V2, attempt.error.as_ref().unwrap());
    (answer.status, answer.body)
}

#[test]
fn apns_answers_by_status_then_reason() {
    use Category::*;
    use Outcome::*;
    // (status, reason, class, category, v3 status, v3 reason)
    #[rustfmt::skip]
    let table: &[(u16, &str, Outcome, Category, u16, &str)] = &[
        (400, "BadDeviceToken", Rejected, InvalidRequest, 400, "invalid_request"),
        (403, "BadCertificate", OurCredentials, Auth, 503, "service_internal"),
        (404, "BadPath", Configuration, InternalConfig, 503, "internal_config"),
        (405, "MethodNotAllowed", Configuration, InternalConfig, 503, "internal_config"),
        (410, "Unregistered", DeadToken, Unregistered, 410, "unregistered"),
        (413, "PayloadTooLarge", Rejected, PayloadTooLarge, 413, "payload_too_large"),
        (500, "InternalServerError", ProviderDown, ServiceInternal, 503, "service_internal"),
        (429, "TooManyRequests", Throttled, TooManyRequests, 429, "too_many_requests"),
        (503, "ServiceUnavailable", ProviderDown, ServiceInternal, 503, "service_internal"),
        (503, "Shutdown", ProviderDown, ServiceInternal, 503, "service_internal"),
        (410, "ExpiredToken", DeadToken, Unregistered, 410, "unregistered"),
        (410, "SomethingNew", DeadToken, Unregistered, 410, "unregistered"),
        (429, "TooManyProviderTokenUpdates", Throttled, TooManyRequests, 429, "too_many_requests"),
        (403, "ExpiredProviderToken", OurCredentials, Auth, 503, "service_internal"),
        (403, "InvalidProviderToken", OurCredentials, Auth, 503, "service_internal"),
        (403, "MissingProviderToken", OurCredentials, Auth, 503, "service_internal"),
        (403, "BadCertificateEnvironment", OurCredentials, Auth, 503, "service_internal"),
        (400, "DeviceTokenNotForTopic", Rejected, InvalidRequest, 400, "invalid_request"),
        (400, "BadCollapseId", Rejected, InvalidRequest, 400, "invalid_request"),
        (400, "PayloadEmpty", Rejected, InvalidRequest, 400, "invalid_request"),
        (403, "Forbidden", Rejected, InvalidRequest, 400, "invalid_request"),
        (400, "TopicDisallowed", Configuration, InvalidRequest, 400, "invalid_request"),
        (400, "IdleTimeout", ProviderDown, InvalidRequest, 400, "invalid_request"),
        (400, "MissingTopic", Configuration, InternalConfig, 503, "internal_config"),
        (400, "BadTopic", Configuration, InternalConfig, 503, "internal_config"),
        (400, "BadPriority", Configuration, InternalConfig, 503, "internal_config"),
        (400, "BadExpirationDate", Configuration, InternalConfig, 503, "internal_config"),
        (400, "BadMessageId", Configuration, InternalConfig, 503, "internal_config"),
        (400, "DuplicateHeaders", Configuration, InternalConfig, 503, "internal_config"),
        (400, "MissingDeviceToken", Rejected, InternalConfig, 503, "internal_config"),
        (400, "InvalidPushType", Configuration, Generic, 500, "InvalidPushType"),
        (403, "BadEnvironmentKeyIdInToken", OurCredentials, Generic, 500, "BadEnvironmentKeyIdInToken"),
        (400, "ShinyNewReason", Rejected, Generic, 500, "ShinyNewReason"),
        (403, "ShinyNewReason", OurCredentials, Generic, 500, "ShinyNewReason"),
        (502, "ShinyNewReason", ProviderDown, Generic, 500, "ShinyNewReason"),
    ];
    for &(status, reason, class, category, v3_status, v3_reason) in table {
        let attempt = apns::classify::classify(status, &apns_body(reason));
        let case = format!("APNs {status} {reason}");
        assert_eq!(attempt.class, class, "{case}");
        assert_eq!(
            attempt.error,
            Some(PushError::new(category, reason)),
            "{case}"
        );
        assert_eq!(
            v3(&attempt),
            (v3_status, json!({ "reason": v3_reason })),
            "{case}"
        );
        assert_eq!(
            v2(&attempt),
            (500, json!({ "details": reason })),
            "{case} (v2)"
        );
        let answer = format!("{status} {{\"reason\":\"{reason}\"}}");
        assert_eq!(attempt.answer.as_deref(), Some(answer.as_str()), "{case}");
    }
}

#[test]
fn apns_answers_without_a_reason() {
    #[rustfmt::skip]
    let cases: &[(u16, &[u8], Outcome, PushError)] = &[
        (200, b"", Outcome::Delivered, PushError::generic("unused")),
        (410, b"", Outcome::DeadToken, PushError::new(Category::Unregistered, "Unregistered")),
        (429, b"{}", Outcome::Throttled, PushError::new(Category::TooManyRequests, "TooManyRequests")),
        (413, b"", Outcome::Rejected, PushError::new(Category::PayloadTooLarge, "PayloadTooLarge")),
        (502, b"<html>bad gateway</html>", Outcome::ProviderDown, PushError::generic("http_502")),
        (400, b"{\"reason\":\"\"}", Outcome::Rejected, PushError::generic("http_400")),
        (403, b"{\"reason\":42}", Outcome::OurCredentials, PushError::generic("http_403")),
    ];
    for (status, body, class, error) in cases {
        let attempt = apns::classify::classify(*status, body);
        assert_eq!(attempt.class, *class, "APNs {status}");
        if *class == Outcome::Delivered {
            assert_eq!(attempt.error, None);
        } else {
            assert_eq!(attempt.error.as_ref(), Some(error), "APNs {status}");
        }
    }
}

/// An FCM error answer as a table row describes it.
enum Body {
    /// The reason in `error.status` only, as MongoosePush's mock answers.
    Status(&'static str),
    /// The gRPC status of the HTTP status plus an `FcmError` detail with this code, as
    /// real FCM answers.
    Detail(&'static str),
    /// Some other body, and the reason expected from it.
    Raw(&'static [u8], &'static str),
}

impl Body {
    fn bytes(&self, status: u16) -> Vec<u8> {
        match self {
            Body::Status(reason) => fcm_status_body(status, reason),
            Body::Detail(code) => fcm_detail_body(status, grpc_status(status), code),
            Body::Raw(bytes, _) => bytes.to_vec(),
        }
    }

    fn reason(&self) -> &'static str {
        match self {
            Body::Status(reason) | Body::Detail(reason) | Body::Raw(_, reason) => reason,
        }
    }
}

#[test]
fn fcm_answers_from_details_status_and_http_status() {
    use Body::*;
    use Category::*;
    use Outcome::*;
    // (HTTP status, body, class, category, v3 status, v3 reason)
    #[rustfmt::skip]
    let table = [
        // MongoosePush's mock puts the reason in error.status (scenarios 11-16).
        (403, Status("SENDER_ID_MISMATCH"), Rejected, Auth, 503, "service_internal"),
        (404, Status("UNREGISTERED"), Rejected, Unregistered, 410, "unregistered"),
        (429, Status("QUOTA_EXCEEDED"), Throttled, TooManyRequests, 429, "too_many_requests"),
        (500, Status("INTERNAL"), ProviderDown, ServiceInternal, 503, "service_internal"),
        (401, Status("THIRD_PARTY_AUTH_ERROR"), Configuration, Auth, 503, "service_internal"),
        (503, Status("UNAVAILABLE"), ProviderDown, ServiceInternal, 503, "service_internal"),
        // Real FCM: the FcmError detail decides.
        (404, Detail("UNREGISTERED"), DeadToken, Unregistered, 410, "unregistered"),
        (400, Detail("INVALID_ARGUMENT"), Rejected, InvalidRequest, 400, "invalid_request"),
        (403, Detail("SENDER_ID_MISMATCH"), Rejected, Auth, 503, "service_internal"),
        (429, Detail("QUOTA_EXCEEDED"), Throttled, TooManyRequests, 429, "too_many_requests"),
        (503, Detail("UNAVAILABLE"), ProviderDown, ServiceInternal, 503, "service_internal"),
        (500, Detail("INTERNAL"), ProviderDown, ServiceInternal, 503, "service_internal"),
        (401, Detail("THIRD_PARTY_AUTH_ERROR"), Configuration, Auth, 503, "service_internal"),
        (401, Detail("APNS_AUTH_ERROR"), Configuration, Auth, 503, "service_internal"),
        (500, Detail("UNSPECIFIED_ERROR"), ProviderDown, Unspecified, 520, "unspecified"),
        (400, Status("UNSPECIFIED"), Rejected, Unspecified, 520, "unspecified"),
        // Our access token refused: no FcmError detail.
        (401, Status("UNAUTHENTICATED"), OurCredentials, Auth, 503, "service_internal"),
        (401, Raw(b"", "http_401"), OurCredentials, Generic, 500, "http_401"),
        // A bare NOT_FOUND is a wrong project, never a dead token (field report B03).
        (404, Status("NOT_FOUND"), Configuration, InternalConfig, 503, "internal_config"),
        (403, Status("PERMISSION_DENIED"), Configuration, Generic, 500, "PERMISSION_DENIED"),
        // Unknown reasons stay raw; the HTTP status picks the class.
        (400, Status("FAILED_PRECONDITION"), Rejected, Generic, 500, "FAILED_PRECONDITION"),
        (429, Status("RESOURCE_EXHAUSTED"), Throttled, Generic, 500, "RESOURCE_EXHAUSTED"),
        (504, Status("DEADLINE_EXCEEDED"), ProviderDown, Generic, 500, "DEADLINE_EXCEEDED"),
        (502, Raw(b"<html>bad gateway</html>", "http_502"), ProviderDown, Generic, 500, "http_502"),
    ];
    for (status, body, class, category, v3_status, v3_reason) in table {
        let bytes = body.bytes(status);
        let attempt = fcm::classify::classify(status, &bytes);
        let case = format!("FCM {status} {}", String::from_utf8_lossy(&bytes));
        assert_eq!(attempt.class, class, "{case}");
        let reason = body.reason();
        assert_eq!(
            attempt.error,
            Some(PushError::new(category, reason)),
            "{case}"
        );
        assert_eq!(
            v3(&attempt),
            (v3_status, json!({ "reason": v3_reason })),
            "{case}"
        );
        assert_eq!(
            v2(&attempt),
            (500, json!({ "details": reason })),
            "{case} (v2)"
        );
        assert!(
            attempt.answer.unwrap().starts_with(&status.to_string()),
            "{case}"
        );
    }
}

#[test]
fn fcm_success_is_delivered() {
    let body = br#"{"name":"projects/demo-project/messages/1"}"#;
    let attempt = fcm::classify::classify(200, body);
    assert_eq!(attempt.class, Outcome::Delivered);
    assert_eq!(attempt.error, None);
    assert_eq!(attempt.retry_after, None);
}

#[test]
fn fcm_detail_wins_over_status_and_only_fcm_errors_count() {
    let other_detail = json!({"error": {"code": 404, "status": "NOT_FOUND", "details": [
        {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "errorCode": "UNREGISTERED"}
    ]}});
    let attempt = fcm::classify::classify(404, other_detail.to_string().as_bytes());
    assert_eq!(attempt.class, Outcome::Configuration);
    assert_eq!(
        attempt.error,
        Some(PushError::new(Category::InternalConfig, "NOT_FOUND"))
    );
}

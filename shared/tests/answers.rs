//! Every answer of the notification endpoints: backend outcomes per API version
//! (reference/mongoosepush.md 1.5, scenarios 32, 37, 38, 44, 45) and refused requests.

use pushgate_shared::ApiVersion;
use pushgate_shared::api::{
    Answer, Category, DecodeLimits, FieldError, PushError, RequestError, answer_for_outcome,
    answer_for_request_error, decode_notification,
};
use serde_json::{Value, json};

/// Every backend error MongoosePush's controller tests feed in, with the v3 answer.
fn v3_table() -> Vec<(PushError, u16, Value)> {
    use Category::*;
    vec![
        (
            PushError::new(InvalidRequest, "BadDeviceToken"),
            400,
            json!({"reason": "invalid_request"}),
        ),
        (
            PushError::new(Unregistered, "Unregistered"),
            410,
            json!({"reason": "unregistered"}),
        ),
        (
            PushError::new(Unregistered, "UNREGISTERED"),
            410,
            json!({"reason": "unregistered"}),
        ),
        (
            PushError::new(PayloadTooLarge, "PayloadTooLarge"),
            413,
            json!({"reason": "payload_too_large"}),
        ),
        (
            PushError::new(TooManyRequests, "QUOTA_EXCEEDED"),
            429,
            json!({"reason": "too_many_requests"}),
        ),
        (
            PushError::new(ServiceInternal, "INTERNAL"),
            503,
            json!({"reason": "service_internal"}),
        ),
        (
            PushError::new(Auth, "THIRD_PARTY_AUTH_ERROR"),
            503,
            json!({"reason": "service_internal"}),
        ),
        (
            PushError::new(InternalConfig, "BadPath"),
            503,
            json!({"reason": "internal_config"}),
        ),
        (
            PushError::new(Unspecified, "SomethingNew"),
            520,
            json!({"reason": "unspecified"}),
        ),
        (
            PushError::generic("no_matching_pool"),
            400,
            json!({"reason": "no_matching_pool"}),
        ),
        (
            PushError::generic("unable_to_connect"),
            503,
            json!({"reason": "unable_to_connect"}),
        ),
        (
            PushError::generic("connection_lost"),
            503,
            json!({"reason": "connection_lost"}),
        ),
        (
            PushError::generic("invalid_notification"),
            400,
            json!({"reason": "invalid_notification"}),
        ),
        (
            PushError::generic("unspecified"),
            500,
            json!({"reason": "unspecified"}),
        ),
        (
            PushError::generic("request_timeout"),
            500,
            json!({"reason": "request_timeout"}),
        ),
        (
            PushError::generic("ExpiredToken"),
            500,
            json!({"reason": "ExpiredToken"}),
        ),
    ]
}

#[test]
fn v3_maps_every_backend_error() {
    // Scenario 32.
    for (error, status, body) in v3_table() {
        let answer = answer_for_outcome(ApiVersion::V3, &error);
        assert_eq!(answer, Answer { status, body }, "{error:?}");
    }
}

#[test]
fn v2_and_v1_answer_500_with_the_raw_reason() {
    // Scenarios 37 and 44: every error is 500 `{"details": <raw reason>}`, even
    // `unregistered`, except `unable_to_connect` (38 and 45).
    for version in [ApiVersion::V2, ApiVersion::V1] {
        for (error, _, _) in v3_table() {
            let answer = answer_for_outcome(version, &error);
            let expected = if error.reason == "unable_to_connect" {
                Answer {
                    status: 503,
                    body: json!({"details": "Please try again later"}),
                }
            } else {
                Answer {
                    status: 500,
                    body: json!({"details": error.reason}),
                }
            };
            assert_eq!(answer, expected, "{error:?} on {}", version.as_str());
        }
    }
}

#[test]
fn success_is_200_null_in_every_version() {
    let ok = Answer::ok();
    assert_eq!((ok.status, ok.body_bytes()), (200, b"null".to_vec()));
}

#[test]
fn schema_errors_are_422_in_the_openapispex_shape() {
    // The exact body MongoosePush sends for an alert request without `service`, produced
    // end to end from a request.
    let body = br#"{"alert":{"title":"t","body":"b"}}"#;
    let expected: Value = serde_json::from_str(
        r#"{"errors":[{"title":"Invalid value","source":{"pointer":"/service"},"message":"Missing field: service"}]}"#,
    )
    .expect("valid JSON");
    for version in [ApiVersion::V1, ApiVersion::V2, ApiVersion::V3] {
        let error = decode_notification(
            version,
            "tok",
            Some("application/json"),
            body,
            &DecodeLimits::default(),
        )
        .expect_err("service is missing");
        if version == ApiVersion::V1 {
            // v1 has no `alert` field, so it lists more; the shape is the same.
            assert!(matches!(error, RequestError::Validation(ref e) if e.len() == 4));
            continue;
        }
        let answer = answer_for_request_error(version, &error);
        assert_eq!(answer.status, 422);
        assert_eq!(answer.body, expected, "on {}", version.as_str());
        let reparsed: Value = serde_json::from_slice(&answer.body_bytes()).expect("JSON bytes");
        assert_eq!(reparsed, expected);
    }
}

#[test]
fn several_schema_errors_are_listed_in_order() {
    // Scenario 31: `{}` gives two errors, service first.
    let error = RequestError::Validation(vec![
        FieldError::new("/service", "Missing field: service"),
        FieldError::new("/alert", "Missing field: alert"),
    ]);
    let answer = answer_for_request_error(ApiVersion::V2, &error);
    assert_eq!(
        answer,
        Answer {
            status: 422,
            body: json!({"errors": [
                {"title": "Invalid value", "source": {"pointer": "/service"}, "message": "Missing field: service"},
                {"title": "Invalid value", "source": {"pointer": "/alert"}, "message": "Missing field: alert"},
            ]}),
        }
    );
}

#[test]
fn header_errors_are_422_at_the_root_pointer() {
    let cases = [
        (
            RequestError::MissingContentType,
            "Missing header: content-type",
        ),
        (
            RequestError::UnsupportedContentType,
            "Invalid value for header: content-type",
        ),
    ];
    for version in [ApiVersion::V1, ApiVersion::V2, ApiVersion::V3] {
        for (error, message) in &cases {
            let answer = answer_for_request_error(version, error);
            let expected = json!({"errors": [
                {"title": "Invalid value", "source": {"pointer": "/"}, "message": message}
            ]});
            assert_eq!(
                answer,
                Answer {
                    status: 422,
                    body: expected
                }
            );
        }
    }
}

#[test]
fn unreadable_bodies_get_a_plain_answer_per_version() {
    let cases = [
        (
            RequestError::MalformedJson("EOF while parsing an object at line 1 column 1".into()),
            400,
            "malformed_json",
            "malformed JSON: EOF while parsing an object at line 1 column 1",
        ),
        (
            RequestError::EmptyBody,
            400,
            "empty_body",
            "the request body is empty",
        ),
        (
            RequestError::InvalidUtf8,
            400,
            "invalid_utf8",
            "the request body is not valid UTF-8",
        ),
        (
            RequestError::TooLarge {
                limit_bytes: 65_536,
            },
            413,
            "payload_too_large",
            "the request body is larger than 65536 bytes",
        ),
    ];
    for (error, status, code, text) in cases {
        assert_eq!(
            answer_for_request_error(ApiVersion::V3, &error),
            Answer {
                status,
                body: json!({"reason": code, "message": text}),
            }
        );
        for version in [ApiVersion::V2, ApiVersion::V1] {
            assert_eq!(
                answer_for_request_error(version, &error),
                Answer {
                    status,
                    body: json!({"details": text}),
                }
            );
        }
    }
}

#[test]
fn request_error_codes_are_distinct() {
    let errors = [
        RequestError::Validation(Vec::new()),
        RequestError::MalformedJson(String::new()),
        RequestError::EmptyBody,
        RequestError::InvalidUtf8,
        RequestError::MissingContentType,
        RequestError::UnsupportedContentType,
        RequestError::TooLarge { limit_bytes: 1 },
    ];
    let mut codes: Vec<&str> = errors.iter().map(RequestError::code).collect();
    let snake_case = |code: &&str| {
        code.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    };
    assert!(codes.iter().all(snake_case), "{codes:?}");
    codes.sort_unstable();
    codes.dedup();
    assert_eq!(codes.len(), errors.len());
}

//! Checks before the schema: body size, content type, empty body, UTF-8 and JSON syntax.

use super::*;

#[test]
fn body_size_is_checked_before_anything_else() {
    let limits = DecodeLimits::default();
    assert_eq!(limits.max_body_bytes, 64 * 1024);

    let mebibyte = vec![b' '; 1024 * 1024];
    assert_eq!(
        decode_notification(ApiVersion::V3, TOKEN, None, &mebibyte, &limits),
        Err(RequestError::TooLarge {
            limit_bytes: 65_536
        })
    );

    // Exactly at the limit is fine; one byte more is not.
    let mut at_limit = br#"{"service":"fcm","alert":{"title":"t","body":"b"}}"#.to_vec();
    at_limit.resize(limits.max_body_bytes, b' ');
    assert!(decode_raw(Some("application/json"), &at_limit).is_ok());
    at_limit.push(b' ');
    assert_eq!(
        decode_raw(Some("application/json"), &at_limit),
        Err(RequestError::TooLarge {
            limit_bytes: 65_536
        })
    );

    let small = DecodeLimits { max_body_bytes: 10 };
    assert_eq!(
        decode_notification(
            ApiVersion::V1,
            TOKEN,
            Some("application/json"),
            b"{\"service\":1}",
            &small
        ),
        Err(RequestError::TooLarge { limit_bytes: 10 })
    );
}

#[test]
fn content_type_must_be_json() {
    let body = br#"{"service":"fcm","alert":{"title":"t","body":"b"}}"#;
    for accepted in [
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON;charset=UTF-8",
        "application/vnd.api+json",
        "application/merge-patch+json; charset=utf-8",
    ] {
        assert!(decode_raw(Some(accepted), body).is_ok(), "{accepted:?}");
    }
    for refused in [
        "text/plain",
        "text/json",
        "application/x-www-form-urlencoded",
        "application/jsonp",
        "multipart/form-data; boundary=x",
        "",
        "json",
    ] {
        assert_eq!(
            decode_raw(Some(refused), body),
            Err(RequestError::UnsupportedContentType),
            "{refused:?}"
        );
    }
    assert_eq!(
        decode_raw(None, body),
        Err(RequestError::MissingContentType)
    );
    // The header is judged before the body.
    assert_eq!(decode_raw(None, b""), Err(RequestError::MissingContentType));
    assert_eq!(
        decode_raw(Some("text/plain"), b"{"),
        Err(RequestError::UnsupportedContentType)
    );
}

#[test]
fn unreadable_bodies_are_refused_before_the_schema() {
    let json = Some("application/json");
    assert_eq!(decode_raw(json, b""), Err(RequestError::EmptyBody));
    assert_eq!(decode_raw(json, b" \r\n\t"), Err(RequestError::EmptyBody));

    let bad_utf8 = b"{\"service\":\"fcm\",\"alert\":{\"title\":\"\xff\xfe\",\"body\":\"b\"}}";
    assert_eq!(decode_raw(json, bad_utf8), Err(RequestError::InvalidUtf8));

    for malformed in [
        &b"{"[..],
        b"{\"service\":\"fcm\",}",
        b"{'service':'fcm'}",
        b"{\"service\":\"fcm\"} trailing",
        b"{\"a\":\"\\ud800\"}",
    ] {
        match decode_raw(json, malformed) {
            Err(RequestError::MalformedJson(reason)) => assert!(!reason.is_empty()),
            other => panic!("{:?} gave {other:?}", String::from_utf8_lossy(malformed)),
        }
    }
}

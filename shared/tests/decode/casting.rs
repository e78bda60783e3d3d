//! OpenApiSpex casting: wrong types, null values, int32 range and string coercion.

use super::*;

#[test]
fn wrong_types_are_named_with_openapispex_words() {
    assert_refused(vec![
        Refused {
            name: "service as a number: the type is checked before the enum",
            versions: DEEP,
            body: json!({"service": 1, "alert": {"title": "t", "body": "b"}}),
            errors: &[("/service", "Invalid string. Got: integer")],
        },
        Refused {
            name: "numeric priority",
            versions: DEEP,
            body: json!({"service": "apns", "priority": 10, "alert": {"title": "t", "body": "b"}}),
            errors: &[("/priority", "Invalid string. Got: integer")],
        },
        Refused {
            name: "integer with a fraction",
            versions: DEEP,
            body: json!({"service": "fcm", "time_to_live": 36.5, "alert": {"title": "t", "body": "b"}}),
            errors: &[("/time_to_live", "Invalid integer. Got: number")],
        },
        Refused {
            name: "integer strings must be whole",
            versions: DEEP,
            body: json!({"service": "fcm", "time_to_live": "3600.0",
                         "alert": {"title": "t", "body": "b", "badge": " 1"}}),
            errors: &[
                ("/alert/badge", "Invalid integer. Got: string"),
                ("/time_to_live", "Invalid integer. Got: string"),
            ],
        },
        Refused {
            name: "boolean from other strings and numbers",
            versions: DEEP,
            body: json!({"service": "fcm", "mutable_content": "yes", "alert": {"title": "t", "body": "b"}}),
            errors: &[("/mutable_content", "Invalid boolean. Got: string")],
        },
        Refused {
            name: "boolean from a number",
            versions: DEEP,
            body: json!({"service": "fcm", "mutable_content": 1, "alert": {"title": "t", "body": "b"}}),
            errors: &[("/mutable_content", "Invalid boolean. Got: integer")],
        },
        Refused {
            name: "tags as a string",
            versions: DEEP,
            body: json!({"service": "fcm", "tags": "a", "alert": {"title": "t", "body": "b"}}),
            errors: &[("/tags", "Invalid array. Got: string")],
        },
        Refused {
            name: "each bad tag at its index",
            versions: DEEP,
            body: json!({"service": "fcm", "tags": ["a", 1, true], "alert": {"title": "t", "body": "b"}}),
            errors: &[
                ("/tags/1", "Invalid string. Got: integer"),
                ("/tags/2", "Invalid string. Got: boolean"),
            ],
        },
        Refused {
            name: "data that is no object",
            versions: DEEP,
            body: json!({"service": "fcm", "data": "x"}),
            errors: &[("/data", "Invalid object. Got: string")],
        },
        Refused {
            name: "alert that is no object",
            versions: DEEP,
            body: json!({"service": "fcm", "alert": ["t", "b"]}),
            errors: &[("/alert", "Invalid object. Got: array")],
        },
        Refused {
            name: "alert text of the wrong type",
            versions: DEEP,
            body: json!({"service": "fcm", "alert": {"title": 5, "body": {"a": 1}, "sound": false}}),
            errors: &[
                ("/alert/body", "Invalid string. Got: object"),
                ("/alert/sound", "Invalid string. Got: boolean"),
                ("/alert/title", "Invalid string. Got: integer"),
            ],
        },
        Refused {
            name: "top-level array",
            versions: &[ApiVersion::V1, ApiVersion::V2, ApiVersion::V3],
            body: json!([{"service": "fcm"}]),
            errors: &[("/", "Invalid object. Got: array")],
        },
        Refused {
            name: "top-level string",
            versions: &[ApiVersion::V1, ApiVersion::V2, ApiVersion::V3],
            body: json!("fcm"),
            errors: &[("/", "Invalid object. Got: string")],
        },
        Refused {
            name: "top-level null",
            versions: &[ApiVersion::V1, ApiVersion::V2, ApiVersion::V3],
            body: json!(null),
            errors: &[("/", "null value where object expected")],
        },
    ]);
}

#[test]
fn null_is_refused_for_every_typed_field() {
    let null_alert = json!({"title": null, "body": null, "badge": null, "click_action": null,
                            "tag": null, "sound": null});
    assert_refused(vec![
        Refused {
            name: "every base field null",
            versions: DEEP,
            body: json!({"service": null, "mode": null, "priority": null, "time_to_live": null,
                         "mutable_content": null, "tags": null, "topic": null, "alert": null}),
            errors: &[
                ("/alert", "null value where object expected"),
                ("/mode", "null value where string expected"),
                ("/mutable_content", "null value where boolean expected"),
                ("/priority", "null value where string expected"),
                ("/service", "null value where string expected"),
                ("/tags", "null value where array expected"),
                ("/time_to_live", "null value where integer expected"),
                ("/topic", "null value where string expected"),
            ],
        },
        Refused {
            name: "every alert field null",
            versions: DEEP,
            body: json!({"service": "apns", "alert": null_alert}),
            errors: &[
                ("/alert/badge", "null value where integer expected"),
                ("/alert/body", "null value where string expected"),
                ("/alert/click_action", "null value where string expected"),
                ("/alert/sound", "null value where string expected"),
                ("/alert/tag", "null value where string expected"),
                ("/alert/title", "null value where string expected"),
            ],
        },
        Refused {
            name: "null data is present, so the body is judged as silent",
            versions: DEEP,
            body: json!({"service": "fcm", "data": null}),
            errors: &[("/data", "null value where object expected")],
        },
        Refused {
            name: "null tag item",
            versions: DEEP,
            body: json!({"service": "fcm", "tags": [null], "alert": {"title": "t", "body": "b"}}),
            errors: &[("/tags/0", "null value where string expected")],
        },
        Refused {
            name: "v1 null fields",
            versions: &[ApiVersion::V1],
            body: json!({"service": "fcm", "title": "t", "body": null, "badge": null, "data": null}),
            errors: &[
                ("/badge", "null value where integer expected"),
                ("/body", "null value where string expected"),
                ("/data", "null value where object expected"),
            ],
        },
    ]);
}

#[test]
fn int32_range_is_enforced_for_numbers_and_strings() {
    assert_refused(vec![
        Refused {
            name: "2147483648 as a number",
            versions: DEEP,
            body: json!({"service": "fcm", "time_to_live": 2_147_483_648_i64, "alert": {"title": "t", "body": "b"}}),
            errors: &[("/time_to_live", "Invalid format. Expected :int32")],
        },
        Refused {
            name: "-2147483649 as a string",
            versions: DEEP,
            body: json!({"service": "fcm", "alert": {"title": "t", "body": "b", "badge": "-2147483649"}}),
            errors: &[("/alert/badge", "Invalid format. Expected :int32")],
        },
        Refused {
            name: "beyond 64 bits, as a number and as a string",
            versions: DEEP,
            body: json!({"service": "fcm", "time_to_live": 1e20,
                         "alert": {"title": "t", "body": "b", "badge": "123456789012345678901234567890123456789012"}}),
            errors: &[
                ("/alert/badge", "Invalid format. Expected :int32"),
                ("/time_to_live", "Invalid format. Expected :int32"),
            ],
        },
        Refused {
            name: "v1 badge over the range",
            versions: &[ApiVersion::V1],
            body: flat_body(|b| drop(b.insert("badge".into(), json!(u64::MAX)))),
            errors: &[("/badge", "Invalid format. Expected :int32")],
        },
    ]);

    let edges = json!({"service": "fcm", "time_to_live": "2147483647",
                       "alert": {"title": "t", "body": "b", "badge": -2_147_483_648_i64}});
    for version in DEEP {
        let notification = decode(*version, &edges).expect("the int32 edges are accepted");
        assert_eq!(notification.time_to_live_secs, Some(i32::MAX));
        assert_eq!(notification.alert.and_then(|a| a.badge), Some(i32::MIN));
    }
}

#[test]
fn strings_are_cast_to_integers_and_booleans() {
    let cases = [
        (
            json!("3600"),
            json!("true"),
            json!("7"),
            Some(3600),
            true,
            Some(7),
        ),
        (
            json!("+5"),
            json!("false"),
            json!("-1"),
            Some(5),
            false,
            Some(-1),
        ),
        (
            json!(3600.0),
            json!(true),
            json!(0),
            Some(3600),
            true,
            Some(0),
        ),
    ];
    for (ttl, mutable, badge, want_ttl, want_mutable, want_badge) in cases {
        let body = json!({"service": "fcm", "time_to_live": ttl, "mutable_content": mutable,
                          "alert": {"title": "t", "body": "b", "badge": badge}});
        for version in DEEP {
            let n = decode(*version, &body).expect("string forms are accepted");
            assert_eq!(n.time_to_live_secs, want_ttl, "{body}");
            assert_eq!(n.mutable_content, want_mutable, "{body}");
            assert_eq!(n.alert.and_then(|a| a.badge), want_badge, "{body}");
        }
    }

    let v1 = decode(
        ApiVersion::V1,
        &flat_body(|b| drop(b.insert("badge".into(), json!("12")))),
    );
    assert_eq!(
        v1.expect("v1 casts too").alert.and_then(|a| a.badge),
        Some(12)
    );
}

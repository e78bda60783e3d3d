//! v2/v3 ("deep") bodies: MongoosePush's validation scenarios 21-36 and decoding.

use super::*;

#[test]
fn deep_schema_violations_match_mongoosepush() {
    assert_refused(vec![
        Refused {
            name: "22 alert without service",
            versions: DEEP,
            body: alert_body(|b| drop(b.remove("service"))),
            errors: &[("/service", "Missing field: service")],
        },
        Refused {
            name: "23 alert without alert",
            versions: DEEP,
            body: alert_body(|b| drop(b.remove("alert"))),
            errors: &[("/alert", "Missing field: alert")],
        },
        Refused {
            name: "24 priority outside the enum",
            versions: DEEP,
            body: alert_body(|b| {
                drop(b.insert("priority".into(), json!("the highest in the world")))
            }),
            errors: &[("/priority", "Invalid value for enum")],
        },
        Refused {
            name: "25 extra top-level field",
            versions: DEEP,
            body: alert_body(|b| drop(b.insert("field".into(), json!("value")))),
            errors: &[("/field", "Unexpected field: field")],
        },
        Refused {
            name: "27 silent without service",
            versions: DEEP,
            body: silent_body(|b| drop(b.remove("service"))),
            errors: &[("/service", "Missing field: service")],
        },
        Refused {
            name: "28 silent without data is judged as an alert",
            versions: DEEP,
            body: silent_body(|b| drop(b.remove("data"))),
            errors: &[("/alert", "Missing field: alert")],
        },
        Refused {
            name: "29 time_to_live that is no integer",
            versions: DEEP,
            body: alert_body(|b| drop(b.insert("time_to_live".into(), json!("infinity")))),
            errors: &[("/time_to_live", "Invalid integer. Got: string")],
        },
        Refused {
            name: "30 silent with an extra field",
            versions: DEEP,
            body: silent_body(|b| drop(b.insert("field".into(), json!(1)))),
            errors: &[("/field", "Unexpected field: field")],
        },
        Refused {
            name: "31 empty object",
            versions: DEEP,
            body: json!({}),
            errors: &[
                ("/service", "Missing field: service"),
                ("/alert", "Missing field: alert"),
            ],
        },
        Refused {
            name: "35 alert without title",
            versions: DEEP,
            body: json!({"service": "fcm", "alert": {"body": "b"}}),
            errors: &[("/alert/title", "Missing field: title")],
        },
        Refused {
            name: "35 alert without body or title, required order",
            versions: DEEP,
            body: json!({"service": "fcm", "alert": {}}),
            errors: &[
                ("/alert/body", "Missing field: body"),
                ("/alert/title", "Missing field: title"),
            ],
        },
        Refused {
            name: "unknown alert field",
            versions: DEEP,
            body: json!({"service": "apns", "alert": {"title": "t", "body": "b", "subtitle": "s"}}),
            errors: &[("/alert/subtitle", "Unexpected field: subtitle")],
        },
        Refused {
            name: "mixed without service reports only service",
            versions: DEEP,
            body: json!({"alert": {"title": "t", "body": "b"}, "data": {"k": "v"}}),
            errors: &[("/service", "Missing field: service")],
        },
        Refused {
            name: "enum values are case-sensitive",
            versions: DEEP,
            body: json!({"service": "FCM", "mode": "Dev", "alert": {"title": "t", "body": "b"}}),
            errors: &[
                ("/mode", "Invalid value for enum"),
                ("/service", "Invalid value for enum"),
            ],
        },
    ]);
}

#[test]
fn every_error_is_collected_in_mongoosepush_order() {
    // Unexpected fields (sorted), then missing required ones (schema order), then each
    // property alphabetically, nested objects in place: MongoosePush stops after the
    // first failing step, so its answer is a prefix of this list.
    let body = json!({
        "zeta": 1, "extra": 2, "priority": "x", "time_to_live": "y",
        "alert": {"title": 1, "subtitle": "s"}
    });
    assert_refused(vec![Refused {
        name: "mixed failures",
        versions: DEEP,
        body,
        errors: &[
            ("/extra", "Unexpected field: extra"),
            ("/zeta", "Unexpected field: zeta"),
            ("/service", "Missing field: service"),
            ("/alert/subtitle", "Unexpected field: subtitle"),
            ("/alert/body", "Missing field: body"),
            ("/alert/title", "Invalid string. Got: integer"),
            ("/priority", "Invalid value for enum"),
            ("/time_to_live", "Invalid integer. Got: string"),
        ],
    }]);
}

#[test]
fn unexpected_names_are_escaped_in_pointers_and_cut_in_messages() {
    let long = "x".repeat(50);
    let body = json!({"service": "fcm", "alert": {"title": "t", "body": "b"}, "a/b~c": 1, long.clone(): 2});
    let expected = vec![
        FieldError::new("/a~1b~0c", "Unexpected field: a/b~c"),
        FieldError::new(
            format!("/{long}"),
            format!("Unexpected field: {}", "x".repeat(40)),
        ),
    ];
    assert_eq!(
        decode(ApiVersion::V3, &body),
        Err(RequestError::Validation(expected))
    );
}

#[test]
fn deep_fields_pass_through_only_when_present() {
    // Scenario 33: each optional field on its own, starting from the minimal alert.
    let minimal = || {
        let mut n = base(Service::Fcm);
        n.alert = Some(alert("t", "b"));
        n
    };
    let cases: Vec<(&str, Value, Notification)> = vec![
        (
            "minimal: mutable_content defaults to false",
            json!({}),
            minimal(),
        ),
        ("mode", json!({"mode": "dev"}), {
            let mut n = minimal();
            n.target.mode = Mode::Dev;
            n
        }),
        ("priority normal", json!({"priority": "normal"}), {
            let mut n = minimal();
            n.priority = Some(Priority::Normal);
            n
        }),
        ("priority high", json!({"priority": "high"}), {
            let mut n = minimal();
            n.priority = Some(Priority::High);
            n
        }),
        ("time_to_live", json!({"time_to_live": 0}), {
            let mut n = minimal();
            n.time_to_live_secs = Some(0);
            n
        }),
        ("mutable_content true", json!({"mutable_content": true}), {
            let mut n = minimal();
            n.mutable_content = true;
            n
        }),
        (
            "mutable_content false",
            json!({"mutable_content": false}),
            minimal(),
        ),
        ("tags", json!({"tags": ["t1", "t2"]}), {
            let mut n = minimal();
            n.target.tags = vec!["t1".into(), "t2".into()];
            n
        }),
        ("empty tags", json!({"tags": []}), minimal()),
        ("topic", json!({"topic": "com.example.chat"}), {
            let mut n = minimal();
            n.target.topic = Some("com.example.chat".into());
            n
        }),
        (
            "alert badge",
            json!({"alert": {"title": "t", "body": "b", "badge": 3}}),
            {
                let mut n = minimal();
                n.alert = Some(Alert {
                    badge: Some(3),
                    ..alert("t", "b")
                });
                n
            },
        ),
        (
            "alert click_action",
            json!({"alert": {"title": "t", "body": "b", "click_action": "c"}}),
            {
                let mut n = minimal();
                n.alert = Some(Alert {
                    click_action: Some("c".into()),
                    ..alert("t", "b")
                });
                n
            },
        ),
        (
            "alert tag",
            json!({"alert": {"title": "t", "body": "b", "tag": "g"}}),
            {
                let mut n = minimal();
                n.alert = Some(Alert {
                    tag: Some("g".into()),
                    ..alert("t", "b")
                });
                n
            },
        ),
        (
            "alert sound",
            json!({"alert": {"title": "t", "body": "b", "sound": "s.mp3"}}),
            {
                let mut n = minimal();
                n.alert = Some(Alert {
                    sound: Some("s.mp3".into()),
                    ..alert("t", "b")
                });
                n
            },
        ),
        ("service apns", json!({"service": "apns"}), {
            let mut n = minimal();
            n.target.service = Service::Apns;
            n
        }),
        (
            "silent: data instead of alert",
            json!({"alert": null, "data": {"k": [1, {"n": null}]}}),
            {
                let mut n = base(Service::Fcm);
                n.data = Some(object(json!({"k": [1, {"n": null}]})));
                n
            },
        ),
        ("mixed: alert and data", json!({"data": {}}), {
            let mut n = minimal();
            n.data = Some(serde_json::Map::new());
            n
        }),
    ];

    for (name, fields, expected) in cases {
        let mut body = json!({"service": "fcm", "alert": {"title": "t", "body": "b"}});
        for (key, value) in object(fields) {
            if value.is_null() {
                body.as_object_mut().expect("an object").remove(&key);
            } else {
                body[key] = value;
            }
        }
        for version in DEEP {
            assert_eq!(
                decode(*version, &body),
                Ok(expected.clone()),
                "case {name:?} on {}",
                version.as_str()
            );
        }
    }
}

#[test]
fn full_deep_requests_keep_every_field() {
    // Scenarios 21 and 26: every input field ends up in the notification.
    let full_alert = Notification {
        target: Target {
            service: Service::Apns,
            mode: Mode::Prod,
            device_token: TOKEN.to_owned(),
            tags: vec!["some".into(), "tags".into()],
            topic: Some("com.example.chat".into()),
        },
        alert: Some(Alert {
            title: "alice@example.com".into(),
            body: "A message".into(),
            badge: Some(7),
            click_action: Some("OPEN_CHAT".into()),
            tag: Some("info".into()),
            sound: Some("standard.mp3".into()),
        }),
        data: None,
        priority: Some(Priority::Normal),
        time_to_live_secs: Some(3600),
        mutable_content: false,
    };
    let mut full_silent = base(Service::Fcm);
    full_silent.priority = Some(Priority::High);
    full_silent.data = Some(object(
        json!({"custom": "data fields", "some_id": 345, "nested": {"fields": "allowed"}}),
    ));

    for version in DEEP {
        assert_eq!(
            decode(*version, &alert_body(|_| ())),
            Ok(full_alert.clone())
        );
        assert_eq!(
            decode(*version, &silent_body(|_| ())),
            Ok(full_silent.clone())
        );
    }
}

#[test]
fn mode_dev_with_fcm_is_left_to_pool_selection() {
    let body = json!({"service": "fcm", "mode": "dev", "alert": {"title": "t", "body": "b"}});
    let n = decode(ApiVersion::V3, &body).expect("the decoder does not choose pools");
    assert_eq!((n.target.service, n.target.mode), (Service::Fcm, Mode::Dev));
}

#[test]
fn device_token_is_kept_raw() {
    let token = "tok:APA91b/x%2Fy~z";
    let body = br#"{"service":"fcm","alert":{"title":"t","body":"b"}}"#;
    let n = decode_notification(
        ApiVersion::V3,
        token,
        Some("application/json"),
        body,
        &DecodeLimits::default(),
    )
    .expect("a valid body");
    assert_eq!(n.target.device_token, token);
}

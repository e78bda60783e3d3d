//! v1 ("flat") bodies: MongoosePush's scenarios 39-46.

use super::*;

#[test]
fn flat_schema_violations_match_mongoosepush() {
    let v1 = &[ApiVersion::V1];
    assert_refused(vec![
        Refused {
            name: "40 without service",
            versions: v1,
            body: flat_body(|b| drop(b.remove("service"))),
            errors: &[("/service", "Missing field: service")],
        },
        Refused {
            name: "40 without body",
            versions: v1,
            body: flat_body(|b| drop(b.remove("body"))),
            errors: &[("/body", "Missing field: body")],
        },
        Refused {
            name: "40 empty object, required order",
            versions: v1,
            body: json!({}),
            errors: &[
                ("/service", "Missing field: service"),
                ("/body", "Missing field: body"),
                ("/title", "Missing field: title"),
            ],
        },
        Refused {
            name: "41 badge that is no integer",
            versions: v1,
            body: flat_body(|b| drop(b.insert("badge".into(), json!("seven")))),
            errors: &[("/badge", "Invalid integer. Got: string")],
        },
        Refused {
            name: "42 extra field",
            versions: v1,
            body: flat_body(|b| drop(b.insert("field".into(), json!("x")))),
            errors: &[("/field", "Unexpected field: field")],
        },
        Refused {
            name: "42 v2 fields are unknown to v1",
            versions: v1,
            body: flat_body(|b| {
                for (name, value) in [
                    ("sound", json!("s")),
                    ("priority", json!("high")),
                    ("time_to_live", json!(1)),
                    ("mutable_content", json!(true)),
                    ("tags", json!([])),
                    ("alert", json!({"title": "t", "body": "b"})),
                ] {
                    b.insert(name.into(), value);
                }
            }),
            errors: &[
                ("/alert", "Unexpected field: alert"),
                ("/mutable_content", "Unexpected field: mutable_content"),
                ("/priority", "Unexpected field: priority"),
                ("/sound", "Unexpected field: sound"),
                ("/tags", "Unexpected field: tags"),
                ("/time_to_live", "Unexpected field: time_to_live"),
            ],
        },
        Refused {
            name: "43 mode outside the enum",
            versions: v1,
            body: flat_body(|b| drop(b.insert("mode".into(), json!("test")))),
            errors: &[("/mode", "Invalid value for enum")],
        },
        Refused {
            name: "v1 has no silent push",
            versions: v1,
            body: json!({"service": "fcm", "data": {"k": "v"}}),
            errors: &[
                ("/body", "Missing field: body"),
                ("/title", "Missing field: title"),
            ],
        },
    ]);
}

#[test]
fn flat_requests_become_alerts() {
    // Scenario 46: body/title/badge/click_action/tag move into the alert.
    let mut full = base(Service::Apns);
    full.target.mode = Mode::Dev;
    full.target.topic = Some("com.example.chat".into());
    full.alert = Some(Alert {
        title: "alice@example.com".into(),
        body: "A message".into(),
        badge: Some(7),
        click_action: Some("OPEN_CHAT".into()),
        tag: Some("info".into()),
        sound: None,
    });
    full.data = Some(object(json!({"custom": "data fields"})));
    assert_eq!(decode(ApiVersion::V1, &flat_body(|_| ())), Ok(full));

    let mut minimal = base(Service::Fcm);
    minimal.alert = Some(alert("t", ""));
    assert_eq!(
        decode(
            ApiVersion::V1,
            &json!({"service": "fcm", "title": "t", "body": ""})
        ),
        Ok(minimal)
    );
}

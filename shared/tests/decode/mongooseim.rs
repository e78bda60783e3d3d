//! What MongooseIM really sends, and the field reports B09 and B10.

use super::*;

#[test]
fn mongooseim_bodies_decode_with_every_field() {
    // reference/mongooseim-client.md 1.2, byte for byte.
    let alert_push = br#"{"alert":{"badge":1,"body":"OH, HAI!","tag":"alice@localhost","title":"alice@localhost",
 "click_action":"OPEN_CHAT"},"service":"apns","priority":"high","topic":"com.example.app"}"#;
    let mut expected = base(Service::Apns);
    expected.target.topic = Some("com.example.app".into());
    expected.priority = Some(Priority::High);
    expected.alert = Some(Alert {
        title: "alice@localhost".into(),
        body: "OH, HAI!".into(),
        badge: Some(1),
        click_action: Some("OPEN_CHAT".into()),
        tag: Some("alice@localhost".into()),
        sound: None,
    });
    assert_eq!(
        decode_raw(Some("application/json"), alert_push),
        Ok(expected)
    );

    let silent_push = br#"{"data":{"last-message-body":"OH, HAI!","last-message-sender":"alice@localhost","message-count":1},
 "service":"fcm","mode":"prod"}"#;
    let mut expected = base(Service::Fcm);
    expected.data = Some(object(json!({
        "last-message-body": "OH, HAI!",
        "last-message-sender": "alice@localhost",
        "message-count": 1
    })));
    assert_eq!(
        decode_raw(Some("application/json"), silent_push),
        Ok(expected)
    );

    let jingle = br#"{"data":{"message-sender":"alice@localhost","jingle-message":"propose","jingle-session-id":"ca3c"},"service":"apns"}"#;
    let n = decode_raw(Some("application/json"), jingle).expect("a silent Jingle push");
    assert_eq!(n.data.map(|d| d.len()), Some(3));
}

#[test]
fn field_report_b09_string_options() {
    let b09_1 = json!({"service": "apns", "priority": "10", "mode": "dev",
                       "alert": {"title": "alice@example.com", "tag": "alice@example.com", "body": "8", "badge": 1}});
    assert_eq!(
        decode(ApiVersion::V3, &b09_1),
        Err(RequestError::Validation(field_errors(&[(
            "/priority",
            "Invalid value for enum"
        )])))
    );

    let b09_2 = json!({"service": "fcm", "mutable_content": "true", "time_to_live": "3600",
                       "alert": {"title": "t", "body": "b"}});
    let mut expected = base(Service::Fcm);
    expected.alert = Some(alert("t", "b"));
    expected.mutable_content = true;
    expected.time_to_live_secs = Some(3600);
    assert_eq!(decode(ApiVersion::V3, &b09_2), Ok(expected));

    let b09_3 =
        json!({"service": "fcm", "time_to_live": "forever", "alert": {"title": "t", "body": "b"}});
    assert_eq!(
        decode(ApiVersion::V3, &b09_3),
        Err(RequestError::Validation(field_errors(&[(
            "/time_to_live",
            "Invalid integer. Got: string"
        )])))
    );
}

#[test]
fn field_report_b10_bodiless_alerts() {
    let b10_1 = json!({"service": "fcm", "alert": {"title": "room1@muclight.example.com"}});
    assert_eq!(
        decode(ApiVersion::V3, &b10_1),
        Err(RequestError::Validation(field_errors(&[(
            "/alert/body",
            "Missing field: body"
        )])))
    );

    let b10_2 =
        json!({"service": "fcm", "alert": {"title": "room1@muclight.example.com", "body": ""}});
    let mut expected = base(Service::Fcm);
    expected.alert = Some(alert("room1@muclight.example.com", ""));
    assert_eq!(decode(ApiVersion::V3, &b10_2), Ok(expected));

    assert_eq!(
        decode(ApiVersion::V3, &json!({"service": "apns"})),
        Err(RequestError::Validation(field_errors(&[(
            "/alert",
            "Missing field: alert"
        )])))
    );
}

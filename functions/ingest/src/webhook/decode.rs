//! The chat events the webhook accepts: mod_event_pusher_http's default form body, and
//! the JSON of MongooseIM's SNS and RabbitMQ backends as custom callback modules send it.

use percent_encoding::percent_decode;
use pushgate_shared::registry::{JidError, bare_jid, bare_jid_of};
use serde_json::{Map, Value};

/// One chat message to push: who sent it, whose devices get it, and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ChatEvent {
    /// The sender's bare JID, lower-cased.
    pub sender: String,
    /// The recipient's bare JID, lower-cased: the registry user.
    pub receiver: String,
    pub message: String,
}

/// Why a webhook body was refused (400 unless said otherwise).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum EventError {
    #[error("content-type {0:?} is neither a form nor JSON")]
    UnsupportedContentType(String),
    #[error("the form body is malformed: {0}")]
    MalformedForm(String),
    #[error("malformed JSON: {0}")]
    MalformedJson(String),
    #[error("missing field: {0}")]
    MissingField(&'static str),
    #[error("field {0} is given more than once")]
    DuplicateField(&'static str),
    #[error("field {0} must be a string")]
    NotAString(&'static str),
    #[error("{field}: {error}")]
    InvalidJid {
        field: &'static str,
        error: JidError,
    },
}

impl EventError {
    /// The answer's `reason`.
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            EventError::UnsupportedContentType(_) => "unsupported_content_type",
            EventError::MalformedForm(_) => "malformed_form",
            EventError::MalformedJson(_) => "malformed_json",
            EventError::MissingField(_) => "missing_field",
            EventError::DuplicateField(_) => "duplicate_field",
            EventError::NotAString(_) => "invalid_field",
            EventError::InvalidJid { .. } => "invalid_jid",
        }
    }
}

/// Decodes a webhook body by its media type; without one, a body starting with `{` is JSON
/// and anything else a form.
///
/// The form names the recipient by local part only, so its domain is `default_domain`
/// when set, else the sender's `server`.
pub(crate) fn chat_event(
    media_type: Option<&str>,
    body: &[u8],
    default_domain: Option<&str>,
) -> Result<ChatEvent, EventError> {
    let looks_like_json = body.trim_ascii_start().starts_with(b"{");
    match media_type {
        Some("application/x-www-form-urlencoded") => from_form(body, default_domain),
        Some("application/json") => from_json(body),
        Some(media) if media.ends_with("+json") => from_json(body),
        None if looks_like_json => from_json(body),
        None => from_form(body, default_domain),
        Some(other) => Err(EventError::UnsupportedContentType(other.to_owned())),
    }
}

/// `author=alice&server=localhost&receiver=bob&message=Hi+Test%21` as `cow_qs` encodes
/// it: `+` is a space, `%XX` a UTF-8 byte. Unknown fields are ignored.
fn from_form(body: &[u8], default_domain: Option<&str>) -> Result<ChatEvent, EventError> {
    check_escapes(body)?;
    if percent_decode(body).decode_utf8().is_err() {
        return Err(EventError::MalformedForm(
            "the decoded text is not valid UTF-8".to_owned(),
        ));
    }
    let fields: Vec<(String, String)> = form_urlencoded::parse(body).into_owned().collect();
    let field = |name: &'static str| -> Result<&str, EventError> {
        let mut values = fields.iter().filter(|(key, _)| key == name);
        let value = values.next().ok_or(EventError::MissingField(name))?;
        if values.next().is_some() {
            return Err(EventError::DuplicateField(name));
        }
        Ok(value.1.as_str())
    };
    let (author, server) = (field("author")?, field("server")?);
    let (receiver, message) = (field("receiver")?, field("message")?);

    let sender =
        bare_jid(&format!("{author}@{server}")).map_err(|error| EventError::InvalidJid {
            field: "author",
            error,
        })?;
    let domain = default_domain.unwrap_or(server);
    let receiver =
        bare_jid(&format!("{receiver}@{domain}")).map_err(|error| EventError::InvalidJid {
            field: "receiver",
            error,
        })?;
    Ok(ChatEvent {
        sender,
        receiver,
        message: message.to_owned(),
    })
}

/// Refuses a `%` not followed by two hex digits, which lenient decoders keep as text.
fn check_escapes(body: &[u8]) -> Result<(), EventError> {
    let mut rest = body;
    while let Some(at) = rest.iter().position(|byte| *byte == b'%') {
        let escape = rest.get(at + 1..at + 3);
        if !escape.is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit)) {
            let offset = body.len() - rest.len() + at;
            return Err(EventError::MalformedForm(format!(
                "`%` at byte {offset} is not followed by two hex digits"
            )));
        }
        rest = &rest[at + 3..];
    }
    Ok(())
}

/// `{"from_user_id":"alice@localhost/res1","to_user_id":"bob@localhost","message":"Hi"}`,
/// full or bare JIDs; other keys (metadata added by other handlers) are ignored.
fn from_json(body: &[u8]) -> Result<ChatEvent, EventError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|error| EventError::MalformedJson(error.to_string()))?;
    let Value::Object(object) = value else {
        return Err(EventError::MalformedJson(
            "the body is not a JSON object".to_owned(),
        ));
    };
    let sender =
        bare_jid_of(string(&object, "from_user_id")?).map_err(|error| EventError::InvalidJid {
            field: "from_user_id",
            error,
        })?;
    let receiver =
        bare_jid_of(string(&object, "to_user_id")?).map_err(|error| EventError::InvalidJid {
            field: "to_user_id",
            error,
        })?;
    Ok(ChatEvent {
        sender,
        receiver,
        message: string(&object, "message")?.to_owned(),
    })
}

fn string<'a>(object: &'a Map<String, Value>, name: &'static str) -> Result<&'a str, EventError> {
    match object.get(name) {
        None => Err(EventError::MissingField(name)),
        Some(Value::String(text)) => Ok(text),
        Some(_) => Err(EventError::NotAString(name)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FORM: Option<&str> = Some("application/x-www-form-urlencoded");

    fn form(body: &str) -> Result<ChatEvent, EventError> {
        chat_event(FORM, body.as_bytes(), None)
    }

    #[test]
    fn mongooseim_form_bodies_decode_exactly() {
        let event =
            form("author=alice&server=localhost&receiver=bob&message=Hi+Test%21%26escape%3DHello")
                .unwrap();
        assert_eq!(event.sender, "alice@localhost");
        assert_eq!(event.receiver, "bob@localhost");
        assert_eq!(event.message, "Hi Test!&escape=Hello");

        let event = form(
            "author=%2B15550100&server=example.com&receiver=bob&message=Tom+%26+Jerry%3A+1%2B1+%3D+2%3F+100%25+%F0%9F%98%80",
        )
        .unwrap();
        assert_eq!(event.sender, "+15550100@example.com");
        assert_eq!(event.message, "Tom & Jerry: 1+1 = 2? 100% 😀");
    }

    #[test]
    fn the_default_domain_replaces_the_senders_server() {
        let body = b"author=alice&server=Example.COM&receiver=Bob&message=x";
        let event = chat_event(FORM, body, Some("chat.example.org")).unwrap();
        assert_eq!(event.sender, "alice@example.com");
        assert_eq!(event.receiver, "bob@chat.example.org");
    }

    #[test]
    fn bad_forms_say_what_is_wrong() {
        let cases: [(&str, EventError); 6] = [
            (
                "author=alice&server=s&message=x",
                EventError::MissingField("receiver"),
            ),
            (
                "author=alice&server=s&receiver=bob&receiver=eve&message=x",
                EventError::DuplicateField("receiver"),
            ),
            (
                "author=alice&server=s&receiver=bob&message=%zz",
                EventError::MalformedForm(
                    "`%` at byte 43 is not followed by two hex digits".into(),
                ),
            ),
            (
                "author=alice&server=s&receiver=bob&message=%E0%A4",
                EventError::MalformedForm("the decoded text is not valid UTF-8".into()),
            ),
            (
                "author=alice&server=s&receiver=bob&message=100%",
                EventError::MalformedForm(
                    "`%` at byte 46 is not followed by two hex digits".into(),
                ),
            ),
            (
                "author=&server=s&receiver=bob&message=x",
                EventError::InvalidJid {
                    field: "author",
                    error: JidError::NoLocalPart("@s".into()),
                },
            ),
        ];
        for (body, expected) in cases {
            assert_eq!(form(body), Err(expected), "{body}");
        }
    }

    #[test]
    fn json_events_take_full_or_bare_jids() {
        let body = br#"{"from_user_id":"Alice@localhost/res1","to_user_id":"bob@localhost/phone","message":"Hello","timestamp":1}"#;
        let event = chat_event(Some("application/json"), body, Some("ignored")).unwrap();
        assert_eq!(
            event,
            ChatEvent {
                sender: "alice@localhost".into(),
                receiver: "bob@localhost".into(),
                message: "Hello".into(),
            }
        );
        let sniffed = chat_event(None, body, None).unwrap();
        assert_eq!(sniffed, event);
    }

    #[test]
    fn bad_json_says_what_is_wrong() {
        let json = |body: &str| chat_event(Some("application/json"), body.as_bytes(), None);
        assert_eq!(
            json(r#"{"from_user_id":"a@b","message":"x"}"#),
            Err(EventError::MissingField("to_user_id"))
        );
        assert_eq!(
            json(r#"{"from_user_id":"a@b","to_user_id":"c@d","message":7}"#),
            Err(EventError::NotAString("message"))
        );
        assert!(matches!(json("[1]"), Err(EventError::MalformedJson(_))));
        assert!(matches!(json("{"), Err(EventError::MalformedJson(_))));
        assert_eq!(
            chat_event(Some("text/plain"), b"hi", None),
            Err(EventError::UnsupportedContentType("text/plain".into()))
        );
    }
}

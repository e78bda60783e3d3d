//! How the mock FCM answers one `messages:send`: outage, OAuth check, project, strict
//! validation of the message (string-only `data`, one target, size), then the error table.

use axum::http::StatusCode;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use serde_json::{Value, json};

use crate::control::Outage;
use crate::fcm::FcmState;
use crate::fcm_oauth::TokenStatus;

const FCM_ERROR_TYPE: &str = "type.googleapis.com/google.firebase.fcm.v1.FcmError";
const BAD_REQUEST_TYPE: &str = "type.googleapis.com/google.rpc.BadRequest";
const ERROR_INFO_TYPE: &str = "type.googleapis.com/google.rpc.ErrorInfo";
const INVALID_CREDENTIALS: &str = "Request had invalid authentication credentials. Expected \
    OAuth 2 access token, login cookie or other valid authentication credential. See \
    https://developers.google.com/identity/sign-in/web/devconsole-project.";
const MISSING_CREDENTIALS: &str = "Request is missing required authentication credential. \
    Expected OAuth 2 access token, login cookie or other valid authentication credential. See \
    https://developers.google.com/identity/sign-in/web/devconsole-project.";

/// The status, body and `Retry-After` of one answer.
pub(crate) struct Answer {
    pub status: StatusCode,
    pub body: Value,
    pub retry_after_secs: Option<u64>,
}

impl Answer {
    fn error(status: StatusCode, grpc_status: &str, message: &str, details: Vec<Value>) -> Self {
        let body = error_body(status, grpc_status, message, details);
        Self {
            status,
            body,
            retry_after_secs: None,
        }
    }

    /// 400 `INVALID_ARGUMENT`, with an `FcmError` detail when `fcm_detail` is set.
    pub(crate) fn invalid_argument(message: &str, fcm_detail: bool) -> Self {
        let details = if fcm_detail {
            vec![fcm_error_detail("INVALID_ARGUMENT")]
        } else {
            vec![]
        };
        Self::error(
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            message,
            details,
        )
    }
}

/// Google's error envelope; `details` is left out when empty.
pub(crate) fn error_body(
    status: StatusCode,
    grpc_status: &str,
    message: &str,
    details: Vec<Value>,
) -> Value {
    let mut error = json!({ "code": status.as_u16(), "message": message, "status": grpc_status });
    if !details.is_empty() {
        error["details"] = Value::Array(details);
    }
    json!({ "error": error })
}

fn fcm_error_detail(error_code: &str) -> Value {
    json!({ "@type": FCM_ERROR_TYPE, "errorCode": error_code })
}

fn error_info_detail(reason: &str) -> Value {
    json!({
        "@type": ERROR_INFO_TYPE,
        "reason": reason,
        "domain": "googleapis.com",
        "metadata": {
            "service": "fcm.googleapis.com",
            "method": "google.firebase.fcm.v1.FcmService.SendMessage",
        },
    })
}

/// The gRPC status name Google puts in `error.status` for an HTTP status.
pub(crate) fn grpc_status(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ABORTED",
        429 => "RESOURCE_EXHAUSTED",
        500 => "INTERNAL",
        501 => "UNIMPLEMENTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        _ => "UNKNOWN",
    }
}

/// The message's target: `token`, else `topic`, else `condition`.
pub(crate) fn target(request: &Value) -> Option<String> {
    let message = request.get("message")?;
    ["token", "topic", "condition"]
        .iter()
        .find_map(|key| message.get(key).and_then(Value::as_str))
        .map(str::to_owned)
}

/// Decides the answer to a send for `project` with the parsed body `request`.
pub(crate) fn answer(
    state: &FcmState,
    project: &str,
    parts: &Parts,
    request: Option<&Value>,
    outage: Option<Outage>,
) -> Answer {
    if let Some(outage) = outage {
        let status = outage.status_code();
        let error_code = match status {
            StatusCode::INTERNAL_SERVER_ERROR => "INTERNAL",
            StatusCode::TOO_MANY_REQUESTS => "QUOTA_EXCEEDED",
            _ => "UNAVAILABLE",
        };
        let message = "The service is currently unavailable.";
        let details = vec![fcm_error_detail(error_code)];
        let answer = Answer::error(status, grpc_status(status), message, details);
        return Answer {
            retry_after_secs: outage.retry_after_secs,
            ..answer
        };
    }

    let unauthenticated = StatusCode::UNAUTHORIZED;
    match state.token_status(parts.headers.get(AUTHORIZATION)) {
        TokenStatus::Valid => {}
        TokenStatus::Missing => {
            let details = vec![error_info_detail("CREDENTIALS_MISSING")];
            return Answer::error(
                unauthenticated,
                "UNAUTHENTICATED",
                MISSING_CREDENTIALS,
                details,
            );
        }
        TokenStatus::Unknown => {
            return Answer::error(
                unauthenticated,
                "UNAUTHENTICATED",
                INVALID_CREDENTIALS,
                vec![],
            );
        }
        TokenStatus::Expired => {
            let details = vec![error_info_detail("ACCESS_TOKEN_EXPIRED")];
            return Answer::error(
                unauthenticated,
                "UNAUTHENTICATED",
                INVALID_CREDENTIALS,
                details,
            );
        }
    }

    if project != state.project_id {
        let message = format!(
            "Permission 'cloudmessaging.messages.create' denied on resource \
             '//cloudresourcemanager.googleapis.com/projects/{project}' (or it may not exist)."
        );
        return Answer::error(StatusCode::FORBIDDEN, "PERMISSION_DENIED", &message, vec![]);
    }

    let Some(request) = request else {
        return Answer::invalid_argument("Invalid JSON payload received.", false);
    };
    if let Err(answer) = validate(request, state.max_payload_bytes) {
        return answer;
    }

    if let Some(entry) = target(request).and_then(|target| state.control.take_error(&target)) {
        let status = entry.status_code();
        let answer = if entry.details.unwrap_or(state.error_details) {
            let details = vec![fcm_error_detail(&entry.reason)];
            Answer::error(status, grpc_status(status), "", details)
        } else {
            Answer::error(status, &entry.reason, "", vec![])
        };
        return Answer {
            retry_after_secs: entry.retry_after_secs,
            ..answer
        };
    }

    let validate_only = request.get("validate_only").and_then(Value::as_bool) == Some(true);
    let name = if validate_only {
        format!("projects/{project}/messages/fake_message_id")
    } else {
        state.next_message_name(project)
    };
    Answer {
        status: StatusCode::OK,
        body: json!({ "name": name }),
        retry_after_secs: None,
    }
}

/// Checks the request the way FCM does: a `message` object with exactly one string target,
/// string-only `data` maps and, given a limit, content no larger than it.
fn validate(request: &Value, max_payload_bytes: Option<usize>) -> Result<(), Answer> {
    let Some(message) = request.get("message").and_then(Value::as_object) else {
        let text = "Invalid JSON payload received. Field `message` is missing or not an object.";
        return Err(Answer::invalid_argument(text, false));
    };

    let targets: Vec<&str> = ["token", "topic", "condition"]
        .into_iter()
        .filter(|key| message.get(*key).is_some_and(|value| !value.is_null()))
        .collect();
    match targets.as_slice() {
        [] => {
            return Err(Answer::invalid_argument(
                "Recipient of the message is not set.",
                true,
            ));
        }
        [key] if !message[*key].is_string() => {
            let text = format!("Invalid value at 'message.{key}' (TYPE_STRING)");
            return Err(Answer::invalid_argument(&text, false));
        }
        [_] => {}
        [_, second, ..] => {
            let text = format!(
                "Invalid value at 'message' (oneof), oneof field 'target' is already set. \
                 Cannot set '{second}'"
            );
            return Err(Answer::invalid_argument(&text, false));
        }
    }

    let android = message.get("android");
    check_string_map(message.get("data"), "message.data")?;
    check_string_map(android.and_then(|a| a.get("data")), "message.android.data")?;

    if let Some(limit) = max_payload_bytes {
        let parts = [
            message.get("data"),
            message.get("notification"),
            android.and_then(|a| a.get("data")),
            android.and_then(|a| a.get("notification")),
        ];
        let size: usize = parts
            .into_iter()
            .flatten()
            .map(|part| part.to_string().len())
            .sum();
        if size > limit {
            return Err(Answer::invalid_argument("Android message is too big", true));
        }
    }
    Ok(())
}

/// Rejects a `data` map whose values are not all strings (absent or `null` is fine).
fn check_string_map(data: Option<&Value>, field: &str) -> Result<(), Answer> {
    let entries = match data {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::Object(entries)) => entries,
        Some(other) => {
            let text = format!("Invalid value at '{field}' (map), expected an object: {other}");
            return Err(Answer::invalid_argument(&text, false));
        }
    };
    let Some((index, value)) = entries
        .values()
        .enumerate()
        .find(|(_, value)| !value.is_string())
    else {
        return Ok(());
    };

    let path = format!("{field}[{index}].value");
    let description = format!("Invalid value at '{path}' (TYPE_STRING), {value}");
    let violation = json!({ "field": path, "description": description });
    let details = vec![json!({ "@type": BAD_REQUEST_TYPE, "fieldViolations": [violation] })];
    Err(Answer::error(
        StatusCode::BAD_REQUEST,
        "INVALID_ARGUMENT",
        &description,
        details,
    ))
}

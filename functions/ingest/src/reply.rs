//! JSON answers for requests that reach no handler, and the conversion of an API
//! [`Answer`] into an HTTP response with an exact `Content-Length`.

use axum::http::{Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use pushgate_shared::api::Answer;
use serde_json::json;

/// Turns an API answer into a response; the body is a complete buffer, so hyper and
/// the Lambda adapter both send its exact length (MongooseIM's client needs it).
pub(crate) fn respond(answer: &Answer) -> Response {
    json_response(answer.status, answer.body_bytes())
}

pub(crate) fn json_response(status: u16, body: Vec<u8>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// A refusal in the shape of ingest's own routes: `{"reason": ..., "message": ...}`.
pub(crate) fn error_response(status: u16, reason: &str, message: &str) -> Response {
    let body = json!({ "reason": reason, "message": message });
    json_response(status, body.to_string().into_bytes())
}

/// 404 for every path the API does not have.
pub(crate) async fn not_found(method: Method, uri: Uri) -> Response {
    let body = json!({
        "reason": "not_found",
        "message": format!("no route for {method} {}", uri.path()),
    });
    json_response(404, body.to_string().into_bytes())
}

/// 405 for a known path asked with the wrong method.
pub(crate) async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    let body = json!({
        "reason": "method_not_allowed",
        "message": format!("{} does not accept {method}", uri.path()),
    });
    json_response(405, body.to_string().into_bytes())
}

//! The HTTP side of [`Control`]: MongoosePush's `/mock/*` control API (error tokens,
//! activity, reset) plus the outage switch, the added latency and a health check.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::control::{Control, ControlError, ErrorToken, Outage};

/// The `/mock/*` routes (and `/healthcheck`) over `control`.
pub(crate) fn routes(control: Arc<Control>) -> Router {
    Router::new()
        .route(
            "/mock/error-tokens",
            get(get_error_tokens)
                .post(put_error_tokens)
                .put(put_error_tokens),
        )
        .route("/mock/activity", get(get_activity))
        .route("/mock/reset", post(reset).put(reset))
        .route(
            "/mock/outage",
            get(get_outage).post(post_outage).delete(delete_outage),
        )
        .route(
            "/mock/latency",
            get(get_latency).post(post_latency).put(post_latency),
        )
        .route("/mock/healthcheck", get(healthcheck))
        .route("/healthcheck", get(healthcheck))
        .with_state(control)
}

type Shared = State<Arc<Control>>;

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ControlError> {
    serde_json::from_slice(body).map_err(|error| ControlError::InvalidBody(error.to_string()))
}

fn check_status(status: u16) -> Result<(), ControlError> {
    match StatusCode::from_u16(status) {
        Ok(_) => Ok(()),
        Err(_) => Err(ControlError::InvalidStatus(status)),
    }
}

async fn get_error_tokens(State(control): Shared) -> impl IntoResponse {
    axum::Json(control.error_tokens())
}

async fn put_error_tokens(State(control): Shared, body: Bytes) -> Result<Response, ControlError> {
    let tokens: Vec<ErrorToken> = parse(&body)?;
    for token in &tokens {
        check_status(token.status)?;
        if token.times == Some(0) {
            return Err(ControlError::InvalidBody(
                "`times` must be at least 1".to_owned(),
            ));
        }
    }
    control.set_error_tokens(tokens);
    Ok(axum::Json(control.error_tokens()).into_response())
}

async fn get_activity(State(control): Shared) -> impl IntoResponse {
    axum::Json(control.activity())
}

async fn reset(State(control): Shared) -> impl IntoResponse {
    control.reset();
    axum::Json(json!({}))
}

async fn get_outage(State(control): Shared) -> impl IntoResponse {
    axum::Json(control.outage())
}

#[derive(Deserialize)]
struct OutageRequest {
    status: Option<u16>,
    #[serde(default)]
    retry_after_secs: Option<u64>,
}

async fn post_outage(State(control): Shared, body: Bytes) -> Result<Response, ControlError> {
    let value: Value = parse(&body)?;
    if value.get("status").is_none() {
        return Err(ControlError::InvalidBody(
            "missing field `status`".to_owned(),
        ));
    }
    let request: OutageRequest = serde_json::from_value(value)
        .map_err(|error| ControlError::InvalidBody(error.to_string()))?;
    let outage = match request.status {
        Some(status) => {
            check_status(status)?;
            Some(Outage {
                status,
                retry_after_secs: request.retry_after_secs,
            })
        }
        None => None,
    };
    control.set_outage(outage);
    Ok(axum::Json(outage).into_response())
}

async fn delete_outage(State(control): Shared) -> impl IntoResponse {
    control.set_outage(None);
    axum::Json(Value::Null)
}

#[derive(Deserialize)]
struct LatencyRequest {
    ms: u64,
}

async fn get_latency(State(control): Shared) -> impl IntoResponse {
    let ms = u64::try_from(control.latency().as_millis()).unwrap_or(u64::MAX);
    axum::Json(json!({ "ms": ms }))
}

async fn post_latency(State(control): Shared, body: Bytes) -> Result<Response, ControlError> {
    let request: LatencyRequest = parse(&body)?;
    control.set_latency(Duration::from_millis(request.ms));
    Ok(axum::Json(json!({ "ms": request.ms })).into_response())
}

async fn healthcheck() -> impl IntoResponse {
    axum::Json(json!({ "status": "ok" }))
}

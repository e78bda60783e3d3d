//! The dispatcher's own small HTTP listener, for a dispatcher that runs apart from ingest
//! (a container): `GET /healthcheck` (the queue and every app, MongoosePush's shape),
//! `GET /health/live` and `GET /metrics`.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use pushgate_shared::health::{self, HealthSource};
use pushgate_shared::queue::Queue;

use crate::apps::Apps;

#[derive(Clone)]
struct Status {
    queue: Arc<dyn Queue>,
    apps: Arc<Apps>,
}

/// The status routes over `queue` and `apps`.
pub fn router(queue: Arc<dyn Queue>, apps: Arc<Apps>) -> Router {
    Router::new()
        .route("/healthcheck", get(healthcheck))
        .route("/health/live", get(live))
        .route("/metrics", get(metrics))
        .with_state(Status { queue, apps })
}

fn json(code: u16, body: &serde_json::Value) -> Response {
    let code = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

async fn healthcheck(State(status): State<Status>) -> Response {
    let mut checks = vec![health::queue_check(&status.queue).await];
    checks.extend(status.apps.checks());
    let (code, body) = health::answer("Health of pushgate's dispatcher", &checks);
    json(code, &body)
}

async fn live() -> Response {
    json(200, &health::liveness())
}

async fn metrics(State(status): State<Status>) -> Response {
    pushgate_shared::metrics::record_backlog(status.queue.as_ref()).await;
    (
        [(header::CONTENT_TYPE, pushgate_shared::metrics::CONTENT_TYPE)],
        pushgate_shared::metrics::render(),
    )
        .into_response()
}

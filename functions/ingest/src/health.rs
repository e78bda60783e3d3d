//! `GET /healthcheck` in MongoosePush's JSON shape: the queue, plus the dispatcher's apps
//! when it runs in the same process (`pushgate up`); `GET /health/live` for liveness.

use axum::extract::State;
use axum::response::Response;
use pushgate_shared::health;

use crate::IngestState;
use crate::reply::json_response;

pub(crate) async fn healthcheck(State(state): State<IngestState>) -> Response {
    let mut checks = vec![health::queue_check(&state.queue).await];
    if let Some(source) = &state.health {
        checks.extend(source.checks());
    }
    let (code, body) = health::answer("Health of pushgate's ingest and its queue", &checks);
    json_response(code, body.to_string().into_bytes())
}

pub(crate) async fn live() -> Response {
    json_response(200, health::liveness().to_string().into_bytes())
}

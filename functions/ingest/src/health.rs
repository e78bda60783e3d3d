//! `GET /healthcheck` in MongoosePush's JSON shape, with the queue as the check.

use std::time::{Duration, SystemTime};

use axum::extract::State;
use axum::response::Response;
use serde_json::json;

use crate::IngestState;
use crate::reply::json_response;

/// How long the queue may take to answer a ping before it counts as unreachable.
const PING_TIMEOUT: Duration = Duration::from_secs(1);

pub(crate) async fn healthcheck(State(state): State<IngestState>) -> Response {
    let ping = tokio::time::timeout(PING_TIMEOUT, state.queue.ping()).await;
    let (passed, output) = match ping {
        Ok(Ok(())) => (true, json!({ "backend": state.queue.kind() })),
        Ok(Err(error)) => (
            false,
            json!({ "backend": state.queue.kind(), "error": error.to_string() }),
        ),
        Err(_) => (
            false,
            json!({ "backend": state.queue.kind(), "error": "no answer within 1 s" }),
        ),
    };
    let status = if passed { "pass" } else { "fail" };
    let body = json!({
        "status": status,
        "version": env!("CARGO_PKG_VERSION"),
        "description": "Health of pushgate's ingest and its queue",
        "checks": {
            "queue": [{
                "status": status,
                "time": humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
                "output": output,
            }]
        }
    });
    json_response(
        if passed { 200 } else { 503 },
        body.to_string().into_bytes(),
    )
}

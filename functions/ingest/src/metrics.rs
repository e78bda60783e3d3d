//! What ingest counts and the span each request runs in, and `GET /metrics`. Labels stay low-cardinality: the route
//! pattern (never the device token), the status, the service and the API version.

use std::sync::LazyLock;
use std::time::Duration;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use pushgate_shared::Service;
use pushgate_shared::logging::LogThrottle;
use tracing::Instrument;

use crate::IngestState;

/// `GET /metrics`: the Prometheus text of this process (ingest, and the dispatcher too
/// when both run in one process, as in `pushgate up`).
pub(crate) async fn prometheus_text(State(state): State<IngestState>) -> Response {
    pushgate_shared::metrics::record_backlog(state.queue.as_ref()).await;
    let mut response = pushgate_shared::metrics::render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(pushgate_shared::metrics::CONTENT_TYPE),
    );
    response
}

/// Runs each request in its own span (method and route pattern, never the path, which
/// holds device tokens) and counts every answer by route pattern and status.
pub(crate) async fn count_responses(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let span = tracing::info_span!("request", method = %request.method(), route = %route);
    let response = next.run(request).instrument(span).await;
    metrics::counter!(
        "pushgate_http_responses_total",
        "route" => route,
        "status" => response.status().as_u16().to_string(),
    )
    .increment(1);
    response
}

/// A job durably queued, from the MongoosePush API (`v1`..`v3`) or the webhook.
pub(crate) fn job_accepted(service: Service, api: &'static str) {
    metrics::counter!(
        "pushgate_jobs_accepted_total",
        "service" => service.as_str(),
        "api" => api,
    )
    .increment(1);
}

/// Repeated warnings and errors of ingest (a queue outage fails every request, a
/// misconfigured client is refused on every call): at most five lines of one kind per ten
/// seconds, each saying how many of its kind were held back before it.
static THROTTLE: LazyLock<LogThrottle> =
    LazyLock::new(|| LogThrottle::new(Duration::from_secs(10), 5));

/// `Some(suppressed)` when a line of `kind` may be written now; see [`LogThrottle`].
pub(crate) fn admit(kind: &str) -> Option<u32> {
    THROTTLE.admit(kind)
}

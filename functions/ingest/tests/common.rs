//! Helpers shared by the ingest tests: build the router on a queue and call it.

#![allow(dead_code, reason = "each test file uses its own subset")]

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use ingest::{IngestState, app};
use pushgate_shared::Job;
use pushgate_shared::queue::{EmbeddedQueue, Queue, QueueOptions};
use serde_json::Value;
use tower::ServiceExt;

pub const MONGOOSEIM_ALERT: &str = r#"{"alert":{"badge":1,"body":"OH, HAI!","tag":"alice@localhost","title":"alice@localhost","click_action":"OPEN_CHAT"},"service":"apns","priority":"high","topic":"com.example.app"}"#;
pub const MONGOOSEIM_SILENT: &str = r#"{"data":{"last-message-body":"OH, HAI!","last-message-sender":"alice@localhost","message-count":1},"service":"fcm","mode":"prod"}"#;

pub fn embedded() -> Arc<dyn Queue> {
    Arc::new(EmbeddedQueue::new(QueueOptions::default()))
}

pub fn router(queue: Arc<dyn Queue>) -> Router {
    app(IngestState::new(queue))
}

/// An answer as a client sees it.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub raw: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.raw).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {:?}",
                String::from_utf8_lossy(&self.raw)
            )
        })
    }
}

pub async fn call(router: &Router, request: Request<Body>) -> Reply {
    let response = router
        .clone()
        .oneshot(request)
        .await
        .expect("the router is infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let raw = response
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    Reply {
        status,
        headers,
        raw,
    }
}

pub fn post_json(path: &str, body: impl Into<Body>) -> Request<Body> {
    Request::post(path)
        .header("content-type", "application/json")
        .body(body.into())
        .unwrap()
}

/// Reads every job waiting in `queue` (the test is the only consumer).
pub async fn queued_jobs(queue: &Arc<dyn Queue>) -> Vec<Job> {
    queue.ensure_group().await.unwrap();
    let deliveries = queue
        .read("test-reader", 1000, Duration::from_millis(10))
        .await
        .unwrap();
    deliveries.into_iter().map(|d| d.job).collect()
}

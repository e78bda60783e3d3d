//! The real listener on a TCP port, against a real Redis: keep-alive HTTP/1.1 as
//! MongooseIM's client uses it, `Content-Length` on every answer, and queue health.

mod common;

use std::sync::Arc;

use axum::body::Bytes;
use common::*;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use ingest::{IngestConfig, serve_listener};
use pushgate_shared::queue::{Queue, QueueOptions, RedisQueue};
use pushgate_testkit::redis_server;
use tokio::net::{TcpListener, TcpStream};

async fn redis_queue(name: &str) -> Arc<dyn Queue> {
    let options = QueueOptions {
        prefix: redis_server::unique_prefix(name),
        ..QueueOptions::default()
    };
    Arc::new(
        RedisQueue::connect(&redis_server::redis_url(), options)
            .await
            .unwrap(),
    )
}

/// Starts the real listener on a free port; returns its address.
async fn start(queue: Arc<dyn Queue>) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let config = IngestConfig::default();
    let app = ingest::app(ingest::serve::state_for(&config, queue).await.unwrap());
    tokio::spawn(serve_listener(listener, app, std::future::pending()));
    address
}

#[tokio::test]
async fn a_thousand_requests_over_one_keep_alive_connection() {
    let queue = redis_queue("keepalive").await;
    let address = start(queue.clone()).await;

    let stream = TcpStream::connect(address).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    let connection = tokio::spawn(connection);

    let mut accepted = 0;
    for i in 0..1000 {
        // Every tenth request is invalid: errors must keep the connection usable too.
        let body = if i % 10 == 9 { "{}" } else { MONGOOSEIM_ALERT };
        let request = Request::post(format!("/v3/notification/device{i}"))
            .header("host", address.to_string())
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .unwrap();
        sender.ready().await.expect("the connection stays open");
        let response = sender
            .send_request(request)
            .await
            .expect("an answer on the same connection");
        let status = response.status().as_u16();
        let length: usize = response.headers()["content-length"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(
            body.len(),
            length,
            "request {i}: Content-Length matches the body"
        );
        if i % 10 == 9 {
            assert_eq!(status, 422, "request {i}");
            let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(json["errors"][0]["message"], "Missing field: service");
        } else {
            assert_eq!(status, 200, "request {i}");
            assert_eq!(&body[..], b"null");
            accepted += 1;
        }
    }
    assert!(
        !connection.is_finished(),
        "the server kept the connection open"
    );

    queue.ensure_group().await.unwrap();
    let mut seen = 0;
    loop {
        let batch = queue
            .read("count", 500, std::time::Duration::from_millis(50))
            .await
            .unwrap();
        if batch.is_empty() {
            break;
        }
        seen += batch.len();
    }
    assert_eq!(seen, accepted, "every accepted request is in Redis");
}

#[tokio::test]
async fn healthcheck_is_503_when_redis_is_gone() {
    // Redis behind a relay: dropping the relay closes its port, as a Redis that died would.
    let relay = redis_server::CuttableRelay::start(&redis_server::redis_url())
        .await
        .unwrap();
    let options = QueueOptions {
        prefix: redis_server::unique_prefix("health"),
        ..QueueOptions::default()
    };
    let queue: Arc<dyn Queue> = Arc::new(RedisQueue::connect(relay.url(), options).await.unwrap());
    let address = start(queue).await;
    let client = reqwest::Client::new();
    let url = format!("http://{address}/healthcheck");

    let up = client.get(&url).send().await.unwrap();
    assert_eq!(up.status().as_u16(), 200);

    drop(relay);
    let down = client.get(&url).send().await.unwrap();
    assert_eq!(down.status().as_u16(), 503);
    let body: serde_json::Value = down.json().await.unwrap();
    assert_eq!(body["status"], "fail");
    assert_eq!(body["checks"]["queue"][0]["status"], "fail");

    let push = client
        .post(format!("http://{address}/v3/notification/x"))
        .header("content-type", "application/json")
        .body(MONGOOSEIM_ALERT)
        .send()
        .await
        .unwrap();
    assert_eq!(
        push.status().as_u16(),
        503,
        "a push that cannot be queued is not accepted"
    );
}

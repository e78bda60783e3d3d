//! The Lambda path: an API Gateway v2 (HTTP API) event goes through lambda_http's adapter
//! into the same router, and the answer matches the TCP server's.

mod common;

use axum::http::StatusCode;
use common::*;
use lambda_http::request::LambdaRequest;
use lambda_http::{Adapter, Context, LambdaEvent, Service};
use serde_json::Value;

const EVENT: &str = include_str!("fixtures/apigw_v2_v3_alert.json");

/// Runs one API Gateway v2 event through the adapter; returns (statusCode, parsed body).
async fn invoke(event: &str) -> (u16, Value) {
    let request: LambdaRequest = serde_json::from_str(event).expect("a valid API Gateway v2 event");
    let mut adapter = Adapter::from(router(embedded()));
    let response = adapter
        .call(LambdaEvent::new(request, Context::default()))
        .await
        .expect("the router is infallible");
    let response = serde_json::to_value(&response).unwrap();
    let status = response["statusCode"].as_u64().unwrap() as u16;
    let body: Value = serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
    (status, body)
}

fn event_with_body(body: &str) -> String {
    let mut event: Value = serde_json::from_str(EVENT).unwrap();
    event["body"] = Value::String(body.to_owned());
    event.to_string()
}

#[tokio::test]
async fn v3_alert_event_answers_like_the_tcp_server() {
    for body in [
        MONGOOSEIM_ALERT,
        "{}",
        r#"{"service":"apns","alert":{"title":1,"body":"b"}}"#,
    ] {
        let (lambda_status, lambda_body) = invoke(&event_with_body(body)).await;
        let direct = call(
            &router(embedded()),
            post_json("/v3/notification/abc123", body.to_owned()),
        )
        .await;
        assert_eq!(lambda_status, direct.status.as_u16(), "{body}");
        assert_eq!(lambda_body, direct.json(), "{body}");
    }
    let (status, body) = invoke(EVENT).await;
    assert_eq!(status, StatusCode::OK.as_u16());
    assert_eq!(body, Value::Null);
}

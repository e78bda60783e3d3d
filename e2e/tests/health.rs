//! `/healthcheck` with the dispatcher's apps: a pool check per app in MongoosePush's
//! shape, failing after sends in a row that cannot reach the provider, recovering with
//! the next one that does; 503 once no app can deliver. Served by ingest (as in
//! `pushgate up`) and by the dispatcher's own status listener.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;

use dispatcher::health::FAILURES_TO_FAIL;
use dispatcher::{Apps, Dispatcher, DispatcherConfig};
use pushgate_shared::job::now_ms;
use pushgate_shared::queue::{EmbeddedQueue, Queue};
use pushgate_shared::{Mode, Service};
use pushgate_testkit::control::Outage;
use pushgate_testkit::{ApnsCredentials, MockApns, MockApnsOptions, MockFcm, MockFcmOptions};
use serde_json::Value;
use support::*;
use tokio::net::TcpListener;

async fn serve(router: axum::Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    address
}

async fn health(address: SocketAddr, path: &str) -> (u16, Value) {
    let response = reqwest::get(format!("http://{address}{path}"))
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

async fn send_times(apps: &Apps, service: Service, times: u64) {
    for _ in 0..times {
        apps.send(&alert_notification(service, "health-token"), now_ms())
            .await;
    }
}

fn pool<'a>(body: &'a Value, name: &str) -> &'a Value {
    &body["checks"][format!("pool:{name}")][0]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pools_fail_after_unreachable_sends_and_recover() {
    guarded(async {
        let credentials = ApnsCredentials::generate().unwrap();
        let files = credentials.write_files().unwrap();
        let apns = MockApns::start(MockApnsOptions {
            auth: credentials.token_auth(),
            ..MockApnsOptions::default()
        })
        .await
        .unwrap();
        let fcm = MockFcm::start(MockFcmOptions::default()).await.unwrap();
        let account = fcm.service_account().unwrap();
        let config = DispatcherConfig {
            apps: vec![
                fcm_app("fcm", &fcm, &account),
                apns_app(
                    "apns_prod",
                    Mode::Prod,
                    &apns,
                    apns_token(&credentials, &files),
                    Some(TOPIC),
                ),
            ],
            ..DispatcherConfig::default()
        };
        let queue: Arc<dyn Queue> = Arc::new(EmbeddedQueue::new(Default::default()));
        let dispatcher = Dispatcher::new(config, queue.clone()).unwrap();
        let apps = dispatcher.apps();
        let state = ingest::IngestState::new(queue.clone()).with_health(apps.clone());
        let ingest = serve(ingest::app(state)).await;
        let status = serve(dispatcher::status::router(queue, apps.clone())).await;

        let (code, body) = health(ingest, "/healthcheck").await;
        assert_eq!(
            (code, body["status"].as_str()),
            (200, Some("pass")),
            "{body}"
        );
        assert_eq!(pool(&body, "fcm")["status"], "pass");
        assert_eq!(pool(&body, "fcm")["output"]["connections"], 2);
        assert_eq!(
            pool(&body, "apns_prod")["output"]["last_reached_provider"],
            Value::Null
        );
        assert_eq!(body["checks"]["queue"][0]["status"], "pass");

        send_times(&apps, Service::Apns, 1).await;
        fcm.control().set_outage(Some(Outage::new(503)));
        send_times(&apps, Service::Fcm, FAILURES_TO_FAIL - 1).await;
        let (_, body) = health(ingest, "/healthcheck").await;
        assert_eq!(pool(&body, "fcm")["status"], "pass", "not yet: {body}");
        send_times(&apps, Service::Fcm, 1).await;
        for address in [ingest, status] {
            let (code, body) = health(address, "/healthcheck").await;
            assert_eq!(
                (code, body["status"].as_str()),
                (200, Some("warn")),
                "{body}"
            );
            assert_eq!(pool(&body, "fcm")["status"], "fail");
            assert_eq!(
                pool(&body, "fcm")["output"]["failures_in_a_row"],
                FAILURES_TO_FAIL
            );
            assert_eq!(pool(&body, "apns_prod")["status"], "pass");
            assert!(pool(&body, "apns_prod")["output"]["last_reached_provider"].is_string());
        }

        apns.control().set_outage(Some(Outage::new(500)));
        send_times(&apps, Service::Apns, FAILURES_TO_FAIL).await;
        let (code, body) = health(ingest, "/healthcheck").await;
        assert_eq!(code, 503, "no app can deliver: {body}");
        // Liveness does not depend on the providers.
        let (code, body) = health(status, "/health/live").await;
        assert_eq!((code, body["status"].as_str()), (200, Some("pass")));
        let (code, _) = health(ingest, "/health/live").await;
        assert_eq!(code, 200);

        fcm.control().set_outage(None);
        send_times(&apps, Service::Fcm, 1).await;
        let (code, body) = health(status, "/healthcheck").await;
        assert_eq!(code, 200, "{body}");
        assert_eq!(pool(&body, "fcm")["status"], "pass");
        assert_eq!(pool(&body, "fcm")["output"]["failures_in_a_row"], 0);

        let metrics = reqwest::get(format!("http://{status}/metrics"))
            .await
            .unwrap();
        assert_eq!(metrics.status(), 200);
        assert!(
            metrics
                .text()
                .await
                .unwrap()
                .contains("pushgate_credential_renewals_total")
        );
    })
    .await;
}

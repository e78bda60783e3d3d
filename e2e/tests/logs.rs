//! The logs of a run, captured at debug level for every crate in pushgate's JSON format:
//! no full device token and no credential (APNs JWT, FCM access token, private keys)
//! appears, while the masked tokens do. One test in its own binary, because the log
//! subscriber is global to the process.

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use pushgate_shared::logging::{LogFormat, LogSettings};
use pushgate_testkit::ErrorToken;
use serde_json::{Value, json};
use support::*;

/// Every log line written, kept for the test to read.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// The credential in an `Authorization` header a mock received (`Bearer x` / `bearer x`).
fn credential(headers: &std::collections::BTreeMap<String, String>) -> String {
    let value = &headers["authorization"];
    value
        .split_once(' ')
        .expect("a scheme and a credential")
        .1
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_carry_no_full_token_and_no_key_material() {
    let captured = Captured::default();
    let settings = LogSettings {
        format: LogFormat::Json,
        filter: "debug".to_owned(),
    };
    let writer = captured.clone();
    pushgate_shared::logging::init_with(&settings, move || writer.clone(), false);

    guarded(async {
        let gateway = Setup::new(Backend::Redis, "logs").start().await;
        let fcm_live = "fcm:APA91bHun4MxP5egoKMwt2KZFBaFUH-1RYqxLiveToken";
        let fcm_dead = "fcm:APA91bHun4MxP5egoKMwt2KZFBaFUH-1RYqxDeadToken";
        let apns_dead = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";
        gateway
            .apns
            .set_error_tokens([ErrorToken::new(apns_dead, 410, "Unregistered")]);
        gateway
            .fcm
            .set_error_tokens([ErrorToken::new(fcm_dead, 404, "UNREGISTERED")]);
        let alert =
            |service: &str| json!({"service": service, "alert": {"title": "t", "body": "b"}});

        gateway
            .push_v3(TOK64, &alert("apns"))
            .await
            .assert_ok("apns");
        gateway
            .push_v3(fcm_live, &alert("fcm"))
            .await
            .assert_ok("fcm");
        assert_eq!(gateway.push_v3(apns_dead, &alert("apns")).await.status, 410);
        assert_eq!(gateway.push_v3(fcm_dead, &alert("fcm")).await.status, 410);
        // Known dead now: answered by ingest from memory.
        assert_eq!(gateway.push_v3(apns_dead, &alert("apns")).await.status, 410);

        let apns_jwt = credential(&only_send_to(gateway.apns.control(), TOK64).request_headers);
        let fcm_access = credential(&only_send_to(gateway.fcm.control(), fcm_live).request_headers);
        gateway.stop().await;

        let logs = captured.text();
        let lines: Vec<Value> = logs
            .lines()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
            .collect();
        assert!(
            lines.iter().any(|line| line["level"] == "WARN"
                && line["message"] == "device token is dead"
                && line["token"] == "…543210"),
            "the dead token is logged, masked:\n{logs}"
        );
        // One span per job and per request, naming neither by its device token.
        let dead = lines
            .iter()
            .find(|line| line["message"] == "device token is dead")
            .unwrap();
        assert_eq!(dead["span"]["name"], "job", "{dead}");
        assert!(dead["span"]["job_id"].is_string(), "{dead}");
        assert!(
            lines.iter().any(|line| line["message"] == "job accepted"
                && line["span"]["name"] == "request"
                && line["span"]["route"] == "/v3/notification/{device_id}"),
            "a request span:\n{logs}"
        );
        for token in [TOK64, fcm_live, fcm_dead, apns_dead] {
            assert!(!logs.contains(token), "full token {token} in the logs");
        }
        for (what, secret) in [("APNs JWT", &apns_jwt), ("FCM access token", &fcm_access)] {
            assert!(secret.len() > 16, "{what} is a real credential: {secret}");
            assert!(!logs.contains(secret.as_str()), "the {what} is in the logs");
        }
        assert!(!logs.contains("PRIVATE KEY"), "key material in the logs");
    })
    .await;
}

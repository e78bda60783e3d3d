//! `pushgate up` as a user runs it: a child process in demo mode on free ports, MongooseIM's
//! exact requests over one keep-alive connection, and a clean exit on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

const MONGOOSEIM_ALERT: &str = r#"{"alert":{"badge":1,"body":"OH, HAI!","tag":"alice@localhost","title":"alice@localhost","click_action":"OPEN_CHAT"},"service":"apns","priority":"high","topic":"com.example.app"}"#;
const MONGOOSEIM_SILENT: &str = r#"{"data":{"last-message-body":"OH, HAI!","last-message-sender":"alice@localhost","message-count":1},"service":"fcm","mode":"prod"}"#;

/// Kills the child if the test fails before it exits by itself.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `pushgate up` in demo mode; returns it with the URLs it printed.
fn start_demo() -> (Running, String, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pushgate"))
        .args(["up", "--listen", "127.0.0.1:0"])
        .env_remove("PUSHGATE_CONFIG")
        .env_remove("PUSHGATE_REDIS_URL")
        .env_remove("REDIS_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("pushgate starts");
    let stdout = child.stdout.take().unwrap();
    let running = Running(child);
    let (mut gateway, mut fcm, mut apns) = (None, None, None);
    let mut lines = BufReader::new(stdout).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        let url = line.rsplit(' ').next().unwrap_or_default().to_owned();
        if line.starts_with("pushgate listening on") {
            gateway = Some(url);
        } else if line.starts_with("mock FCM on") {
            fcm = Some(url);
        } else if line.starts_with("mock APNs on") {
            apns = Some(url);
        }
        if gateway.is_some() && fcm.is_some() && apns.is_some() {
            break;
        }
    }
    // The rest of what it prints is read too, so the pipe stays open.
    std::thread::spawn(move || lines.for_each(drop));
    let (Some(gateway), Some(fcm), Some(apns)) = (gateway, fcm, apns) else {
        panic!("pushgate up did not print its addresses");
    };
    (running, gateway, fcm, apns)
}

/// Polls a mock's activity until it holds `count` entries.
async fn activity(mock: &str, count: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let response = reqwest::get(format!("{mock}/mock/activity"))
            .await
            .unwrap_or_else(|error| panic!("GET {mock}/mock/activity: {error:?}"));
        let entries: Vec<Value> = response
            .json()
            .await
            .unwrap_or_else(|error| panic!("activity of {mock}: {error:?}"));
        if entries.len() >= count {
            return entries;
        }
        assert!(
            Instant::now() < deadline,
            "the mock got {} requests",
            entries.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn demo_delivers_mongooseim_pushes_and_stops_on_sigterm() {
    let (mut running, gateway, fcm, apns) = start_demo();
    let address = gateway.trim_start_matches("http://").to_owned();

    // MongooseIM's client: one kept-alive HTTP/1.1 connection, raw device ids in the path.
    let stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    for (path, body) in [
        ("/v3/notification/abc123", MONGOOSEIM_ALERT),
        ("/v3/notification/tok:APA91b-x", MONGOOSEIM_SILENT),
    ] {
        let request = hyper::Request::post(path)
            .header("host", &address)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .unwrap();
        sender.ready().await.unwrap();
        let response = sender.send_request(request).await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"null");
    }

    let apns_request = &activity(&apns, 1).await[0];
    assert_eq!(apns_request["path"], "/3/device/abc123");
    assert_eq!(apns_request["http_version"], "HTTP/2.0");
    let headers = &apns_request["request_headers"];
    assert_eq!(headers["apns-topic"], "com.example.app");
    assert_eq!(headers["apns-priority"], "10");
    assert_eq!(headers["apns-push-type"], "alert");
    assert!(
        headers["authorization"]
            .as_str()
            .unwrap()
            .starts_with("bearer ")
    );
    assert_eq!(
        apns_request["request_data"],
        json!({"aps": {"alert": {"title": "alice@localhost", "body": "OH, HAI!"}, "badge": 1, "category": "OPEN_CHAT"}})
    );

    let fcm_request = &activity(&fcm, 1).await[0];
    assert_eq!(fcm_request["device_token"], "tok:APA91b-x");
    let message = &fcm_request["request_data"]["message"];
    assert_eq!(message["token"], "tok:APA91b-x");
    assert_eq!(message["data"]["message-count"], "1");
    assert_eq!(message["data"]["last-message-sender"], "alice@localhost");
    assert!(
        message.get("notification").is_none(),
        "a silent push has no notification"
    );

    let pid = running.0.id().to_string();
    let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let exit = loop {
        if let Some(exit) = running.0.try_wait().unwrap() {
            break exit;
        }
        assert!(
            Instant::now() < deadline,
            "pushgate did not stop after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "pushgate exited with {exit}");
}

#[test]
fn every_subcommand_has_help() {
    for args in [
        vec!["--help"],
        vec!["up", "--help"],
        vec!["mock", "--help"],
        vec!["send", "--help"],
        vec!["dlq", "--help"],
        vec!["dlq", "list", "--help"],
        vec!["dlq", "replay", "--help"],
        vec!["dlq", "purge", "--help"],
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_pushgate"))
            .args(&args)
            .output()
            .unwrap();
        assert!(output.status.success(), "{args:?}");
        let text = String::from_utf8(output.stdout).unwrap();
        assert!(text.contains("Usage:"), "{args:?}: {text}");
    }
}

//! The Redis URL from Secrets Manager: a local axum server stands in for the AWS
//! Parameters and Secrets Lambda Extension, and the real `ingest` binary reads its Redis
//! URL from it at start-up and queues into that Redis.

mod common;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use common::*;
use ingest::secrets::{RedisSecret, SecretError};
use pushgate_shared::queue::{Queue, QueueOptions, RedisQueue};
use pushgate_testkit::redis_server;
use serde::Deserialize;
use tokio::net::TcpListener;

const ARN: &str = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:pushgate/redis-AbCdEf";
const SESSION_TOKEN: &str = "session-token-of-this-sandbox";

/// One request the stand-in received: the `secretId` and the token header.
type SeenRequest = (String, Option<String>);

/// What the stand-in extension answers, and what it was asked.
#[derive(Clone)]
struct Extension {
    status: StatusCode,
    body: String,
    seen: Arc<Mutex<Vec<SeenRequest>>>,
}

#[derive(Deserialize)]
struct SecretQuery {
    #[serde(rename = "secretId")]
    secret_id: String,
}

async fn get_secret(
    State(extension): State<Extension>,
    Query(query): Query<SecretQuery>,
    headers: HeaderMap,
) -> Response {
    let token = headers
        .get("x-aws-parameters-secrets-token")
        .map(|value| value.to_str().unwrap().to_owned());
    extension
        .seen
        .lock()
        .unwrap()
        .push((query.secret_id, token.clone()));
    if token.as_deref() != Some(SESSION_TOKEN) {
        return (StatusCode::UNAUTHORIZED, "missing or wrong token").into_response();
    }
    (extension.status, extension.body.clone()).into_response()
}

/// A GetSecretValue answer as the extension passes it on.
fn secret_value(secret_string: &str) -> String {
    serde_json::json!({
        "ARN": ARN,
        "Name": "pushgate/redis",
        "VersionId": "a1b2c3d4-5678-90ab-cdef-EXAMPLE11111",
        "SecretString": secret_string,
        "VersionStages": ["AWSCURRENT"],
        "CreatedDate": "2026-12-03T19:00:00.000Z"
    })
    .to_string()
}

fn extension(status: StatusCode, body: String) -> Extension {
    Extension {
        status,
        body,
        seen: Arc::default(),
    }
}

async fn serve_on(listener: TcpListener, extension: Extension) {
    let app = Router::new()
        .route("/secretsmanager/get", get(get_secret))
        .with_state(extension);
    tokio::spawn(async move { axum::serve(listener, app).await });
}

/// Starts the stand-in on a free port; returns its base URL.
async fn start(extension: Extension) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    serve_on(listener, extension).await;
    url
}

fn settings(extension_url: String) -> RedisSecret {
    RedisSecret {
        secret_id: ARN.to_owned(),
        extension_url,
        session_token: SESSION_TOKEN.to_owned(),
        connect_attempts: 3,
        connect_retry_delay: Duration::from_millis(10),
    }
}

/// A loopback port nothing listens on (for the moment).
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test]
async fn plain_and_json_secrets_give_the_url_and_the_request_is_authenticated() {
    for secret in [
        "rediss://pushgate:pw@redis.internal:6379".to_owned(),
        r#"{"url":"rediss://pushgate:pw@redis.internal:6379"}"#.to_owned(),
    ] {
        let extension = extension(StatusCode::OK, secret_value(&secret));
        let url = start(extension.clone()).await;

        let redis_url = settings(url).fetch_redis_url().await.unwrap();

        assert_eq!(redis_url, "rediss://pushgate:pw@redis.internal:6379");
        let seen = extension.seen.lock().unwrap().clone();
        assert_eq!(
            seen,
            [(ARN.to_owned(), Some(SESSION_TOKEN.to_owned()))],
            "one request, for the ARN, with the session token"
        );
    }
}

#[tokio::test]
async fn a_refusal_names_the_status_and_the_secret() {
    let body = r#"{"__type":"ResourceNotFoundException","message":"Secrets Manager can't find the specified secret."}"#;
    let url = start(extension(StatusCode::BAD_REQUEST, body.to_owned())).await;

    let error = settings(url).fetch_redis_url().await.unwrap_err();

    match &error {
        SecretError::Refused {
            secret_id, status, ..
        } => {
            assert_eq!(secret_id, ARN);
            assert_eq!(*status, 400);
        }
        other => panic!("expected a refusal, got {other}"),
    }
    assert!(
        error.to_string().contains("ResourceNotFoundException"),
        "{error}"
    );
}

#[tokio::test]
async fn answers_that_are_not_a_text_secret_are_refused() {
    let binary = serde_json::json!({"ARN": ARN, "SecretBinary": "cmVkaXM6Ly94"}).to_string();
    let url = start(extension(StatusCode::OK, binary)).await;
    let error = settings(url).fetch_redis_url().await.unwrap_err();
    assert!(matches!(error, SecretError::NotText { .. }), "{error}");

    let url = start(extension(StatusCode::OK, "redis://not-json".to_owned())).await;
    let error = settings(url).fetch_redis_url().await.unwrap_err();
    assert!(matches!(error, SecretError::BadAnswer { .. }), "{error}");
    assert!(!error.to_string().contains("not-json"), "{error}");

    let url = start(extension(StatusCode::OK, secret_value(r#"{"host":"x"}"#))).await;
    let error = settings(url).fetch_redis_url().await.unwrap_err();
    assert!(matches!(error, SecretError::NoUrl { .. }), "{error}");
}

#[tokio::test]
async fn an_absent_extension_is_reported_after_the_connect_attempts() {
    let url = format!("http://127.0.0.1:{}", free_port());

    let error = settings(url.clone()).fetch_redis_url().await.unwrap_err();

    match error {
        SecretError::Unreachable {
            url: reported,
            attempts,
            ..
        } => {
            assert_eq!(reported, url);
            assert_eq!(attempts, 3);
        }
        other => panic!("expected unreachable, got {other}"),
    }
}

#[tokio::test]
async fn an_extension_that_starts_late_is_waited_for() {
    let port = free_port();
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let secret = "redis://127.0.0.1:6379";
    let late = extension(StatusCode::OK, secret_value(secret));
    tokio::spawn(async move {
        // Lets the first connect attempts fail before the stand-in listens.
        tokio::time::sleep(Duration::from_millis(100)).await;
        serve_on(TcpListener::bind(address).await.unwrap(), late).await;
    });
    let patient = RedisSecret {
        connect_attempts: 400,
        connect_retry_delay: Duration::from_millis(25),
        ..settings(format!("http://{address}"))
    };

    assert_eq!(patient.fetch_redis_url().await.unwrap(), secret);
}

/// The `ingest` binary as a child process, killed when dropped.
struct Ingest(Child);

impl Drop for Ingest {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_ingest(extension_url: &str, listen: SocketAddr, prefix: &str) -> Ingest {
    spawn_ingest_with(extension_url, listen, prefix, &[("PUSHGATE_AUTH", "off")])
}

fn spawn_ingest_with(
    extension_url: &str,
    listen: SocketAddr,
    prefix: &str,
    extra: &[(&str, &str)],
) -> Ingest {
    let child = Command::new(env!("CARGO_BIN_EXE_ingest"))
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .env_remove("PUSHGATE_REDIS_URL")
        .env_remove("REDIS_URL")
        .env("PUSHGATE_REDIS_SECRET_ARN", ARN)
        .env("PUSHGATE_SECRETS_EXTENSION_URL", extension_url)
        .env("AWS_SESSION_TOKEN", SESSION_TOKEN)
        .env_remove("PUSHGATE_AUTH")
        .env_remove("PUSHGATE_API_KEYS")
        .env_remove("PUSHGATE_PATH_SECRET")
        .env("PUSHGATE_LISTEN", listen.to_string())
        .env("PUSHGATE_QUEUE_PREFIX", prefix)
        .envs(extra.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the ingest binary starts");
    Ingest(child)
}

/// Posts MongooseIM's alert until the starting binary answers (a hang guard, not a timing
/// assertion).
async fn post_when_listening(url: &str, bearer: Option<&str>) -> reqwest::Response {
    let client = reqwest::Client::new();
    for _ in 0..600 {
        let mut request = client
            .post(url)
            .header("content-type", "application/json")
            .body(MONGOOSEIM_ALERT);
        if let Some(key) = bearer {
            request = request.bearer_auth(key);
        }
        match request.send().await {
            Ok(response) => return response,
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    panic!("ingest does not listen within 30 s");
}

#[tokio::test]
async fn api_keys_and_the_path_secret_may_come_from_the_secret() {
    let redis_url = redis_server::redis_url();
    let prefix = redis_server::unique_prefix("secret-auth");
    let key = "k-from-the-secret-0123456789";
    let path_secret = "path-from-the-secret-0123456789";
    let secret = serde_json::json!({
        "url": redis_url,
        "api_keys": [key],
        "path_secret": path_secret,
    })
    .to_string();
    let extension_url = start(extension(StatusCode::OK, secret_value(&secret))).await;
    let listen = SocketAddr::from(([127, 0, 0, 1], free_port()));
    // No PUSHGATE_AUTH: authentication is required, with the secret's credentials.
    let _ingest = spawn_ingest_with(&extension_url, listen, &prefix, &[]);

    let push = format!("http://{listen}/v3/notification/device-with-auth");
    let anonymous = post_when_listening(&push, None).await;
    assert_eq!(anonymous.status(), 401);
    let wrong = post_when_listening(&push, Some("k-not-the-key-0123456789")).await;
    assert_eq!(wrong.status(), 401);
    let keyed = post_when_listening(&push, Some(key)).await;
    assert_eq!(keyed.status(), 200);
    let prefixed = format!("http://{listen}/{path_secret}/v3/notification/device-with-auth");
    let by_path = post_when_listening(&prefixed, None).await;
    assert_eq!(by_path.status(), 200);
}

#[tokio::test]
async fn without_credentials_anywhere_the_binary_refuses_to_start() {
    let secret = serde_json::json!({ "url": "redis://127.0.0.1:9" }).to_string();
    let extension_url = start(extension(StatusCode::OK, secret_value(&secret))).await;
    let listen = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let ingest = spawn_ingest_with(&extension_url, listen, "unused", &[]);

    let (status, stderr) = exit_of(ingest).await;

    assert!(!status.success());
    assert!(
        stderr.contains("PUSHGATE_AUTH") && stderr.contains("PUSHGATE_REDIS_SECRET_ARN"),
        "{stderr}"
    );
}

/// Waits for the binary to exit (a hang guard of 60 s) and returns its status and stderr.
async fn exit_of(mut ingest: Ingest) -> (std::process::ExitStatus, String) {
    let status = tokio::task::spawn_blocking(move || {
        let status = ingest.0.wait().unwrap();
        let mut stderr = String::new();
        std::io::Read::read_to_string(ingest.0.stderr.as_mut().unwrap(), &mut stderr).unwrap();
        (status, stderr)
    });
    tokio::time::timeout(Duration::from_secs(60), status)
        .await
        .expect("ingest exits instead of serving")
        .unwrap()
}

#[tokio::test]
async fn the_binary_queues_into_the_redis_named_by_the_secret() {
    let redis_url = redis_server::redis_url();
    let prefix = redis_server::unique_prefix("secret");
    let secret = serde_json::json!({ "url": redis_url }).to_string();
    let extension = extension(StatusCode::OK, secret_value(&secret));
    let extension_url = start(extension.clone()).await;
    let listen = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let _ingest = spawn_ingest(&extension_url, listen, &prefix);

    let push = format!("http://{listen}/v3/notification/device-from-secret");
    let answer = post_when_listening(&push, None).await;
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.text().await.unwrap(), "null");

    let options = QueueOptions {
        prefix,
        ..QueueOptions::default()
    };
    let queue: Arc<dyn Queue> = Arc::new(RedisQueue::connect(&redis_url, options).await.unwrap());
    let jobs = queued_jobs(&queue).await;
    assert_eq!(jobs.len(), 1, "the job is in the Redis the secret named");
    assert_eq!(extension.seen.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn the_binary_stops_at_start_up_when_the_secret_cannot_be_read() {
    let extension_url = start(extension(
        StatusCode::BAD_REQUEST,
        "ResourceNotFoundException".to_owned(),
    ))
    .await;
    let listen = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let ingest = spawn_ingest(&extension_url, listen, "unused");

    let (status, stderr) = exit_of(ingest).await;

    assert!(!status.success());
    assert!(
        stderr.contains("cannot read the Redis URL from Secrets Manager")
            && stderr.contains("answered 400"),
        "{stderr}"
    );
}

//! Mock APNs: `POST /3/device/{token}` over HTTP/2 with TLS (a generated certificate) and
//! over h2c, answering as Apple does, programmable through [`Control`] and `/mock/*`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes, to_bytes};
use axum::extract::{Path, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use tokio_rustls::TlsAcceptor;

use crate::apns_auth::{AuthCheck, unix_now};
use crate::control::{self, Activity, Control, DEFAULT_ACTIVITY_LIMIT, ErrorToken, Outage};
use crate::control_http;
use crate::server::{ConnectionInfo, Listeners, StartError};
use crate::tls::{self, SelfSignedCertificate};

/// Largest payload APNs accepts, in bytes (VoIP pushes get [`VOIP_MAX_PAYLOAD_BYTES`]).
pub const MAX_PAYLOAD_BYTES: usize = 4096;
/// Largest VoIP payload APNs accepts, in bytes.
pub const VOIP_MAX_PAYLOAD_BYTES: usize = 5120;
/// A provider token older than this is answered 403 `ExpiredProviderToken`.
pub const PROVIDER_TOKEN_MAX_AGE_SECS: u64 = 3600;
/// Bodies are read up to this size; anything larger is refused as too large.
const READ_LIMIT_BYTES: usize = 1 << 20;

/// How the mock checks the sender's credentials.
#[derive(Clone, Debug, Default)]
pub enum ApnsAuth {
    /// Accept every request, like MongoosePush's mock.
    #[default]
    None,
    /// Require `authorization: bearer <jwt>` with `kid`, `iss` and a fresh `iat`; the
    /// ES256 signature is checked when a public key PEM is given.
    Token {
        /// The public key matching the .p8 signing key (`ApnsCredentials::verify_key_pem`).
        verify_key_pem: Option<String>,
    },
    /// Require a TLS client certificate that chains to this PEM (TLS listener only).
    Certificate {
        /// The trusted client certificate (`ApnsCredentials::client_cert_pem`).
        trusted_cert_pem: String,
    },
}

/// How to start a [`MockApns`].
#[derive(Clone, Debug)]
pub struct MockApnsOptions {
    /// Address of the HTTP/2-over-TLS listener (port 0 picks a free port).
    pub tls_addr: SocketAddr,
    /// Address of the h2c (and HTTP/1.1) listener.
    pub h2c_addr: SocketAddr,
    /// Credential check.
    pub auth: ApnsAuth,
    /// Payload limit for all but VoIP pushes.
    pub max_payload_bytes: usize,
    /// How many activity entries to keep.
    pub activity_limit: usize,
}

impl Default for MockApnsOptions {
    fn default() -> Self {
        let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
        Self {
            tls_addr: loopback,
            h2c_addr: loopback,
            auth: ApnsAuth::None,
            max_payload_bytes: MAX_PAYLOAD_BYTES,
            activity_limit: DEFAULT_ACTIVITY_LIMIT,
        }
    }
}

/// A running mock APNs; dropping it stops the listeners, [`MockApns::shutdown`] waits too.
pub struct MockApns {
    control: Arc<Control>,
    tls_addr: SocketAddr,
    h2c_addr: SocketAddr,
    certificate: SelfSignedCertificate,
    listeners: Listeners,
}

impl MockApns {
    /// Binds both listeners and starts serving on the current tokio runtime.
    ///
    /// # Errors
    /// Fails when a port cannot be bound, the certificate cannot be generated, or a key in
    /// `options.auth` is not valid PEM.
    pub async fn start(options: MockApnsOptions) -> Result<Self, StartError> {
        let control = Arc::new(Control::new(options.activity_limit));
        let certificate = SelfSignedCertificate::localhost()?;
        let trusted = match &options.auth {
            ApnsAuth::Certificate { trusted_cert_pem } => Some(trusted_cert_pem.as_str()),
            _ => None,
        };
        let acceptor = TlsAcceptor::from(tls::server_config(&certificate, trusted)?);

        let state = Arc::new(ApnsState {
            control: control.clone(),
            auth: AuthCheck::new(&options.auth)?,
            max_payload_bytes: options.max_payload_bytes,
        });
        let app = Router::new()
            .route(
                "/3/device/{device_token}",
                post(send).fallback(method_not_allowed),
            )
            .with_state(state)
            .merge(control_http::routes(control.clone()))
            .fallback(bad_path);

        let (tls_listener, tls_addr) = Listeners::bind(options.tls_addr).await?;
        let (h2c_listener, h2c_addr) = Listeners::bind(options.h2c_addr).await?;
        let mut listeners = Listeners::new();
        listeners.spawn(tls_listener, Some(acceptor), app.clone());
        listeners.spawn(h2c_listener, None, app);
        tracing::info!(%tls_addr, %h2c_addr, "mock APNs listening");

        Ok(Self {
            control,
            tls_addr,
            h2c_addr,
            certificate,
            listeners,
        })
    }

    /// Base URL of the TLS listener, e.g. `https://127.0.0.1:40123`.
    pub fn tls_url(&self) -> String {
        format!("https://{}", crate::server::connectable(self.tls_addr))
    }

    /// Base URL of the h2c listener, e.g. `http://127.0.0.1:40124`.
    pub fn h2c_url(&self) -> String {
        format!("http://{}", crate::server::connectable(self.h2c_addr))
    }

    /// The TLS listener's bound address.
    pub fn tls_addr(&self) -> SocketAddr {
        self.tls_addr
    }

    /// The h2c listener's bound address.
    pub fn h2c_addr(&self) -> SocketAddr {
        self.h2c_addr
    }

    /// The TLS certificate in PEM, for clients to trust as a root.
    pub fn ca_pem(&self) -> &str {
        self.certificate.cert_pem()
    }

    /// The control state behind the `/mock/*` routes.
    pub fn control(&self) -> &Control {
        &self.control
    }

    /// Adds entries to the error table (see [`Control::set_error_tokens`]).
    pub fn set_error_tokens(&self, tokens: impl IntoIterator<Item = ErrorToken>) {
        self.control.set_error_tokens(tokens);
    }

    /// The recorded sends, newest first.
    pub fn activity(&self) -> Vec<Activity> {
        self.control.activity()
    }

    /// Clears the error table and the activity.
    pub fn reset(&self) {
        self.control.reset();
    }

    /// Starts (`Some`) or ends (`None`) an outage.
    pub fn set_outage(&self, outage: Option<Outage>) {
        self.control.set_outage(outage);
    }

    /// Delays every send answer by `latency`.
    pub fn set_latency(&self, latency: Duration) {
        self.control.set_latency(latency);
    }

    /// Stops both listeners and waits until their connections are closed.
    pub async fn shutdown(mut self) {
        self.listeners.shutdown().await;
    }
}

struct ApnsState {
    control: Arc<Control>,
    auth: AuthCheck,
    max_payload_bytes: usize,
}

/// What the mock answers to one send.
struct Answer {
    status: StatusCode,
    body: Option<Value>,
    retry_after_secs: Option<u64>,
}

impl Answer {
    fn reason(status: StatusCode, reason: &str) -> Self {
        Self {
            status,
            body: Some(json!({ "reason": reason })),
            retry_after_secs: None,
        }
    }
}

async fn send(
    State(state): State<Arc<ApnsState>>,
    Path(device_token): Path<String>,
    request: Request,
) -> Response {
    let arrived = Instant::now();
    let conditions = state.control.conditions();
    if !conditions.latency.is_zero() {
        tokio::time::sleep(conditions.latency).await;
    }

    let (parts, body) = request.into_parts();
    let (body, answer) = match to_bytes(body, READ_LIMIT_BYTES).await {
        Ok(body) => {
            let answer = state.answer(&device_token, &parts, &body, conditions.outage);
            (body, answer)
        }
        Err(_) => (
            Bytes::new(),
            Answer::reason(StatusCode::PAYLOAD_TOO_LARGE, "PayloadTooLarge"),
        ),
    };

    let apns_id = parts.headers.get("apns-id").cloned().unwrap_or_else(|| {
        HeaderValue::from_str(&new_apns_id()).expect("a UUID is a valid header")
    });

    state
        .control
        .record(arrived, device_token, |device_token| Activity {
            device_token,
            request_headers: control::header_map(&parts.headers),
            request_data: control::body_value(&body),
            status: answer.status.as_u16(),
            response_data: answer.body.clone().unwrap_or(Value::Null),
            path: parts.uri.path().to_owned(),
            http_version: format!("{:?}", parts.version),
            client_certificate: parts
                .extensions
                .get::<ConnectionInfo>()
                .is_some_and(|info| info.client_certificate),
        });

    let mut response = match answer.body {
        Some(body) => (answer.status, axum::Json(body)).into_response(),
        None => (answer.status, Body::empty()).into_response(),
    };
    response.headers_mut().insert("apns-id", apns_id);
    if let Some(secs) = answer.retry_after_secs {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

impl ApnsState {
    fn answer(
        &self,
        device_token: &str,
        parts: &Parts,
        body: &[u8],
        outage: Option<Outage>,
    ) -> Answer {
        if let Some(outage) = outage {
            let status = outage.status_code();
            let reason = match status {
                StatusCode::INTERNAL_SERVER_ERROR => "InternalServerError",
                StatusCode::TOO_MANY_REQUESTS => "TooManyRequests",
                _ => "ServiceUnavailable",
            };
            return Answer {
                retry_after_secs: outage.retry_after_secs,
                ..Answer::reason(status, reason)
            };
        }
        if let Err(reason) = self.auth.check(parts) {
            return Answer::reason(StatusCode::FORBIDDEN, reason);
        }
        if body.is_empty() {
            return Answer::reason(StatusCode::BAD_REQUEST, "PayloadEmpty");
        }
        let voip = parts
            .headers
            .get("apns-push-type")
            .is_some_and(|value| value == "voip");
        let limit = if voip {
            VOIP_MAX_PAYLOAD_BYTES
        } else {
            self.max_payload_bytes
        };
        if body.len() > limit {
            return Answer::reason(StatusCode::PAYLOAD_TOO_LARGE, "PayloadTooLarge");
        }

        let Some(entry) = self.control.take_error(device_token) else {
            return Answer {
                status: StatusCode::OK,
                body: None,
                retry_after_secs: None,
            };
        };
        let status = entry.status_code();
        let mut body = json!({ "reason": entry.reason });
        let timestamp = match (entry.timestamp, status) {
            (Some(timestamp), _) => Some(timestamp),
            (None, StatusCode::GONE) => u64::try_from(unix_now().as_millis()).ok(),
            (None, _) => None,
        };
        if let Some(timestamp) = timestamp {
            body["timestamp"] = json!(timestamp);
        }
        Answer {
            status,
            body: Some(body),
            retry_after_secs: entry.retry_after_secs,
        }
    }
}

/// A fresh `apns-id` in Apple's form: an upper-case hyphenated UUID.
fn new_apns_id() -> String {
    let mut buffer = uuid::Uuid::encode_buffer();
    uuid::Uuid::new_v4()
        .hyphenated()
        .encode_upper(&mut buffer)
        .to_owned()
}

async fn method_not_allowed() -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        axum::Json(json!({ "reason": "MethodNotAllowed" })),
    )
        .into_response()
}

async fn bad_path() -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(json!({ "reason": "BadPath" })),
    )
        .into_response()
}

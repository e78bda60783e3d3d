//! Mock FCM HTTP v1: the OAuth token endpoint and `messages:send`, over plain HTTP (HTTP/1.1
//! and h2c) and optionally TLS, strict like the real service, programmable through
//! [`Control`] and `/mock/*`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::to_bytes;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio_rustls::TlsAcceptor;

use crate::control::{self, Activity, Control, DEFAULT_ACTIVITY_LIMIT, ErrorToken, Outage};
use crate::control_http;
use crate::credentials::{self, ServiceAccountFile};
use crate::fcm_message::{self, Answer};
use crate::fcm_oauth::{self, AssertionVerifier, OAuthState, TokenStatus, TokenStore};
use crate::server::{Listeners, StartError, connectable};
use crate::tls::{self, SelfSignedCertificate};

/// The project the mock serves unless told otherwise.
pub const DEFAULT_PROJECT_ID: &str = "demo-project";
/// Largest `data` + `notification` content FCM accepts, in bytes.
pub const MAX_PAYLOAD_BYTES: usize = 4096;
/// Bodies are read up to this size; anything larger is refused as too large.
const READ_LIMIT_BYTES: usize = 1 << 20;

/// How to start a [`MockFcm`].
#[derive(Clone, Debug)]
pub struct MockFcmOptions {
    /// Address of the plain listener (HTTP/1.1 and h2c; port 0 picks a free port).
    pub http_addr: SocketAddr,
    /// Address of an extra HTTP/2-over-TLS listener, if wanted.
    pub tls_addr: Option<SocketAddr>,
    /// The only project `messages:send` accepts; others are answered 403.
    pub project_id: String,
    /// Lifetime of issued access tokens (`expires_in`); older tokens are answered 401.
    pub token_lifetime: Duration,
    /// Verify assertion JWTs against the test service account's key and client email.
    pub verify_assertions: bool,
    /// Whether error-table answers carry an `FcmError` detail when the entry does not say.
    pub error_details: bool,
    /// Limit on the `data` + `notification` content (`None` for no limit).
    pub max_payload_bytes: Option<usize>,
    /// How many activity entries to keep.
    pub activity_limit: usize,
}

impl Default for MockFcmOptions {
    fn default() -> Self {
        Self {
            http_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            tls_addr: None,
            project_id: DEFAULT_PROJECT_ID.to_owned(),
            token_lifetime: Duration::from_secs(3600),
            verify_assertions: true,
            error_details: true,
            max_payload_bytes: Some(MAX_PAYLOAD_BYTES),
            activity_limit: DEFAULT_ACTIVITY_LIMIT,
        }
    }
}

/// A running mock FCM; dropping it stops the listeners, [`MockFcm::shutdown`] waits too.
pub struct MockFcm {
    control: Arc<Control>,
    tokens: Arc<TokenStore>,
    http_addr: SocketAddr,
    tls_addr: Option<SocketAddr>,
    certificate: Option<SelfSignedCertificate>,
    project_id: String,
    listeners: Listeners,
}

impl MockFcm {
    /// Binds the listeners and starts serving on the current tokio runtime.
    ///
    /// # Errors
    /// Fails when a port cannot be bound or the TLS certificate cannot be generated.
    pub async fn start(options: MockFcmOptions) -> Result<Self, StartError> {
        let (http_listener, http_addr) = Listeners::bind(options.http_addr).await?;
        let tls = match options.tls_addr {
            Some(addr) => {
                let certificate = SelfSignedCertificate::localhost()?;
                let acceptor = TlsAcceptor::from(tls::server_config(&certificate, None)?);
                let (listener, addr) = Listeners::bind(addr).await?;
                Some((listener, addr, acceptor, certificate))
            }
            None => None,
        };
        let tls_addr = tls.as_ref().map(|(_, addr, _, _)| *addr);

        let control = Arc::new(Control::new(options.activity_limit));
        let tokens = Arc::new(TokenStore::new(options.token_lifetime));
        let verifier = if options.verify_assertions {
            let audiences = token_audiences(http_addr, tls_addr);
            Some(AssertionVerifier::new(
                credentials::FCM_TEST_PUBLIC_KEY_PEM,
                credentials::FCM_TEST_CLIENT_EMAIL,
                &audiences,
            )?)
        } else {
            None
        };
        let state = Arc::new(FcmState {
            control: control.clone(),
            tokens: tokens.clone(),
            project_id: options.project_id.clone(),
            error_details: options.error_details,
            max_payload_bytes: options.max_payload_bytes,
            messages: AtomicU64::new(0),
        });
        let oauth = Arc::new(OAuthState {
            tokens: tokens.clone(),
            verifier,
        });
        let app = app(state, oauth, control.clone());

        let mut listeners = Listeners::new();
        listeners.spawn(http_listener, None, app.clone());
        let certificate = tls.map(|(listener, _, acceptor, certificate)| {
            listeners.spawn(listener, Some(acceptor), app);
            certificate
        });
        tracing::info!(%http_addr, ?tls_addr, "mock FCM listening");

        Ok(Self {
            control,
            tokens,
            http_addr,
            tls_addr,
            certificate,
            project_id: options.project_id,
            listeners,
        })
    }

    /// Base URL of the plain listener, e.g. `http://127.0.0.1:40125`.
    pub fn url(&self) -> String {
        format!("http://{}", connectable(self.http_addr))
    }

    /// Base URL of the TLS listener, if one was asked for.
    pub fn tls_url(&self) -> Option<String> {
        self.tls_addr
            .map(|addr| format!("https://{}", connectable(addr)))
    }

    /// The TLS certificate in PEM, if there is a TLS listener.
    pub fn ca_pem(&self) -> Option<&str> {
        self.certificate
            .as_ref()
            .map(SelfSignedCertificate::cert_pem)
    }

    /// The OAuth token endpoint on the plain listener (the service account's `token_uri`).
    pub fn token_uri(&self) -> String {
        format!("{}/token", self.url())
    }

    /// The project `messages:send` accepts.
    pub fn project_id(&self) -> &str {
        &self.project_id
    }

    /// The full `messages:send` URL for the mock's project on the plain listener.
    pub fn send_url(&self) -> String {
        format!(
            "{}/v1/projects/{}/messages:send",
            self.url(),
            self.project_id
        )
    }

    /// How many access tokens the token endpoint issued.
    pub fn tokens_issued(&self) -> u64 {
        self.tokens.issued_count()
    }

    /// Revokes every access token issued so far: sends using them get 401 from now on.
    pub fn revoke_tokens(&self) {
        self.tokens.revoke_all();
    }

    /// Writes a throwaway service-account JSON for this mock's project and token endpoint.
    ///
    /// # Errors
    /// Fails when the temporary file cannot be written.
    pub fn service_account(&self) -> std::io::Result<ServiceAccountFile> {
        ServiceAccountFile::write(&self.project_id, &self.token_uri())
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

    /// Clears the error table and the activity (issued tokens stay valid).
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

    /// Stops the listeners and waits until their connections are closed.
    pub async fn shutdown(mut self) {
        self.listeners.shutdown().await;
    }
}

/// The `aud` values an assertion may carry: every spelling of the mock's token URIs.
fn token_audiences(http_addr: SocketAddr, tls_addr: Option<SocketAddr>) -> Vec<String> {
    let mut audiences = Vec::new();
    let listeners = [("http", Some(http_addr)), ("https", tls_addr)];
    for (scheme, addr) in listeners {
        if let Some(addr) = addr.map(connectable) {
            audiences.push(format!("{scheme}://{addr}/token"));
            audiences.push(format!("{scheme}://localhost:{}/token", addr.port()));
        }
    }
    audiences
}

fn app(state: Arc<FcmState>, oauth: Arc<OAuthState>, control: Arc<Control>) -> Router {
    let send = Router::new()
        .route("/v1/projects/{project}/messages:send", post(send))
        .with_state(state);
    let token = Router::new()
        .route("/token", post(fcm_oauth::token))
        .with_state(oauth.clone());
    let tokens = Router::new()
        .route("/mock/tokens", get(get_tokens))
        .route("/mock/revoke-tokens", post(revoke_tokens))
        .with_state(oauth);
    send.merge(token)
        .merge(tokens)
        .merge(control_http::routes(control))
        .fallback(not_found)
}

/// State of the `messages:send` route.
pub(crate) struct FcmState {
    pub control: Arc<Control>,
    pub tokens: Arc<TokenStore>,
    pub project_id: String,
    pub error_details: bool,
    pub max_payload_bytes: Option<usize>,
    pub messages: AtomicU64,
}

impl FcmState {
    /// The `name` of the next accepted message.
    pub(crate) fn next_message_name(&self, project: &str) -> String {
        let number = self.messages.fetch_add(1, Ordering::Relaxed) + 1;
        format!("projects/{project}/messages/{number}")
    }

    pub(crate) fn token_status(&self, authorization: Option<&HeaderValue>) -> TokenStatus {
        self.tokens
            .check(authorization.and_then(|value| value.to_str().ok()))
    }
}

async fn send(
    State(state): State<Arc<FcmState>>,
    Path(project): Path<String>,
    request: Request,
) -> Response {
    let arrived = Instant::now();
    let conditions = state.control.conditions();
    if !conditions.latency.is_zero() {
        tokio::time::sleep(conditions.latency).await;
    }

    let (parts, body) = request.into_parts();
    let body = to_bytes(body, READ_LIMIT_BYTES).await;
    let parsed = body
        .as_ref()
        .ok()
        .and_then(|body| serde_json::from_slice::<Value>(body).ok());
    let target = parsed
        .as_ref()
        .and_then(fcm_message::target)
        .unwrap_or_default();
    let answer = match &body {
        Ok(_) => fcm_message::answer(&state, &project, &parts, parsed.as_ref(), conditions.outage),
        Err(_) => Answer::invalid_argument("Request payload size exceeds the limit.", true),
    };

    state
        .control
        .record(arrived, target, |device_token| Activity {
            device_token,
            request_headers: control::header_map(&parts.headers),
            request_data: body
                .as_deref()
                .map(control::body_value)
                .unwrap_or(Value::Null),
            status: answer.status.as_u16(),
            response_data: answer.body.clone(),
            path: parts.uri.path().to_owned(),
            http_version: format!("{:?}", parts.version),
            client_certificate: false,
        });

    let mut response = (answer.status, axum::Json(answer.body)).into_response();
    if let Some(secs) = answer.retry_after_secs {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

async fn get_tokens(State(oauth): State<Arc<OAuthState>>) -> Response {
    axum::Json(json!({ "issued": oauth.tokens.issued_count() })).into_response()
}

async fn revoke_tokens(State(oauth): State<Arc<OAuthState>>) -> Response {
    oauth.tokens.revoke_all();
    axum::Json(json!({ "issued": oauth.tokens.issued_count() })).into_response()
}

async fn not_found() -> Response {
    let body = fcm_message::error_body(StatusCode::NOT_FOUND, "NOT_FOUND", "Not Found", vec![]);
    (StatusCode::NOT_FOUND, axum::Json(body)).into_response()
}

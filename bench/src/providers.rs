//! The mock providers the dispatcher delivers to, and the provider-link baseline: a bare
//! HTTP/2 client sending straight to a mock, as many streams at once as the dispatcher
//! may have, over as many connections. Its rate is also the mock's ceiling.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use futures::StreamExt;
use hdrhistogram::Histogram;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use pushgate_testkit::credentials::{self, ApnsCredentialFiles};
use pushgate_testkit::{
    ApnsAuth, ApnsCredentials, MockApns, MockApnsOptions, MockFcm, MockFcmOptions,
    ServiceAccountFile,
};
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::load::new_histogram;

/// The APNs topic of the benchmark's app.
pub const TOPIC: &str = "com.example.app";

/// Both mocks, keeping no activity (the arrival log is kept per phase instead).
pub struct Providers {
    pub apns: MockApns,
    pub apns_credentials: ApnsCredentials,
    pub apns_files: ApnsCredentialFiles,
    pub fcm: MockFcm,
    pub fcm_account: ServiceAccountFile,
}

impl Providers {
    pub async fn start() -> anyhow::Result<Self> {
        let apns_credentials = ApnsCredentials::generate()?;
        let apns_files = apns_credentials.write_files()?;
        let apns = MockApns::start(MockApnsOptions {
            // The dispatcher still signs and sends its provider token; checking it on
            // every request would measure the mock, not the link.
            auth: ApnsAuth::None,
            activity_limit: 0,
            ..MockApnsOptions::default()
        })
        .await?;
        let fcm = MockFcm::start(MockFcmOptions {
            tls_addr: Some(([127, 0, 0, 1], 0).into()),
            activity_limit: 0,
            ..MockFcmOptions::default()
        })
        .await?;
        let fcm_account = fcm.service_account()?;
        Ok(Providers {
            apns,
            apns_credentials,
            apns_files,
            fcm,
            fcm_account,
        })
    }

    /// Requests both mocks received so far.
    pub fn received(&self) -> u64 {
        self.apns.control().request_count() + self.fcm.control().request_count()
    }

    /// Waits until both mocks received `count` requests in all.
    pub async fn wait_received(&self, count: u64, guard: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + guard;
        while self.received() < count {
            if Instant::now() > deadline {
                bail!(
                    "the mocks received {} of {count} notifications within {guard:?}",
                    self.received()
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(())
    }

    /// The dispatcher's `[[dispatcher.apps]]`: one APNs app (token auth) and one FCM app,
    /// both over TLS to the mocks, with the default connection count.
    pub fn dispatcher_apps(&self) -> Value {
        json!([
            {
                "name": "apns",
                "service": "apns",
                "mode": "prod",
                "endpoint": self.apns.tls_url(),
                "extra_root_pem": self.apns.ca_pem(),
                "default_topic": TOPIC,
                "credentials": {
                    "type": "apns_token",
                    "key_path": self.apns_files.p8_path,
                    "key_id": self.apns_credentials.key_id,
                    "team_id": self.apns_credentials.team_id,
                },
            },
            {
                "name": "fcm",
                "service": "fcm",
                "mode": "prod",
                "endpoint": self.fcm.tls_url().expect("the FCM mock has a TLS listener"),
                "extra_root_pem": self.fcm.ca_pem().expect("the FCM mock has a TLS listener"),
                "credentials": {
                    "type": "fcm_service_account",
                    "path": self.fcm_account.path(),
                },
            },
        ])
    }
}

/// How the bare client sends.
#[derive(Clone, Copy, Debug)]
pub struct BarePlan {
    pub requests: u64,
    /// HTTP/2 connections, used in turn.
    pub connections: usize,
    /// Requests in flight at once over all connections.
    pub in_flight: usize,
}

/// What the bare client measured.
pub struct BareOutcome {
    pub elapsed: Duration,
    pub ok: u64,
    pub latency: Histogram<u64>,
}

impl BareOutcome {
    pub fn rate(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// One provider request: URL, headers and body.
struct ProviderRequest {
    url: String,
    headers: Vec<(&'static str, String)>,
    body: bytes::Bytes,
}

/// Sends `plan.requests` APNs alerts straight to the mock over TLS.
pub async fn bare_apns(providers: &Providers, plan: BarePlan) -> anyhow::Result<BareOutcome> {
    let body =
        json!({"aps": {"alert": {"title": "alice@localhost", "body": "OH, HAI!"}, "badge": 1}});
    let base = providers.apns.tls_url();
    let request = Arc::new(move |index: u64| ProviderRequest {
        url: format!("{base}/3/device/{index:064x}"),
        headers: vec![
            ("apns-topic", TOPIC.to_owned()),
            ("apns-push-type", "alert".to_owned()),
            ("apns-priority", "10".to_owned()),
            (
                "authorization",
                "bearer not-checked-by-the-bench-mock".to_owned(),
            ),
        ],
        body: body.to_string().into(),
    });
    bare(providers.apns.ca_pem(), plan, request).await
}

/// Sends `plan.requests` FCM messages straight to the mock over TLS, with an access token
/// obtained from the mock's token endpoint first.
pub async fn bare_fcm(providers: &Providers, plan: BarePlan) -> anyhow::Result<BareOutcome> {
    let ca = providers.fcm.ca_pem().context("the FCM mock has TLS")?;
    let token = fcm_access_token(&providers.fcm).await?;
    let tls_url = providers.fcm.tls_url().context("the FCM mock has TLS")?;
    let project = providers.fcm.project_id();
    let url = format!("{tls_url}/v1/projects/{project}/messages:send");
    let request = Arc::new(move |index: u64| ProviderRequest {
        url: url.clone(),
        headers: vec![("authorization", format!("Bearer {token}"))],
        body: json!({"message": {
            "token": format!("bench-{index}"),
            "notification": {"title": "alice@localhost", "body": "OH, HAI!"},
            "android": {"priority": "HIGH"},
        }})
        .to_string()
        .into(),
    });
    bare(ca, plan, request).await
}

async fn bare(
    ca_pem: &str,
    plan: BarePlan,
    request: Arc<dyn Fn(u64) -> ProviderRequest + Send + Sync>,
) -> anyhow::Result<BareOutcome> {
    let root = reqwest::Certificate::from_pem(ca_pem.as_bytes())?;
    let clients = (0..plan.connections.max(1))
        .map(|_| {
            reqwest::Client::builder()
                .tls_certs_merge([root.clone()])
                .build()
        })
        .collect::<Result<Vec<_>, _>>()?;
    // Open every connection before the clock starts, as a long-running dispatcher has.
    for client in &clients {
        send_one(client, &request(u64::MAX)).await?;
    }
    let began = Instant::now();
    let clients = &clients;
    let request = &request;
    let mut sends = futures::stream::iter(0..plan.requests)
        .map(|index| async move {
            let client = &clients[usize::try_from(index).unwrap_or(0) % clients.len()];
            let start = Instant::now();
            send_one(client, &request(index))
                .await
                .map(|()| start.elapsed())
        })
        .buffer_unordered(plan.in_flight.max(1));
    let mut latency = new_histogram();
    let mut ok = 0;
    while let Some(sent) = sends.next().await {
        let took = sent?;
        latency.saturating_record(u64::try_from(took.as_micros()).unwrap_or(u64::MAX).max(1));
        ok += 1;
    }
    Ok(BareOutcome {
        elapsed: began.elapsed(),
        ok,
        latency,
    })
}

async fn send_one(client: &reqwest::Client, request: &ProviderRequest) -> anyhow::Result<()> {
    let mut builder = client
        .post(&request.url)
        .header("content-type", "application/json")
        .body(request.body.clone());
    for (name, value) in &request.headers {
        builder = builder.header(*name, value);
    }
    let response = builder.send().await?;
    let status = response.status();
    let version = response.version();
    response.bytes().await?;
    if !status.is_success() || version != reqwest::Version::HTTP_2 {
        bail!("the mock answered {status} over {version:?}");
    }
    Ok(())
}

async fn fcm_access_token(mock: &MockFcm) -> anyhow::Result<String> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(credentials::FCM_TEST_PRIVATE_KEY_ID.to_owned());
    let claims = json!({
        "iss": credentials::FCM_TEST_CLIENT_EMAIL,
        "scope": "https://www.googleapis.com/auth/firebase.messaging",
        "aud": mock.token_uri(),
        "iat": now,
        "exp": now + 3600,
    });
    let key = EncodingKey::from_rsa_pem(credentials::FCM_TEST_PRIVATE_KEY_PEM.as_bytes())?;
    let assertion = jsonwebtoken::encode(&header, &claims, &key)?;
    let form = [
        ("grant_type", pushgate_testkit::JWT_BEARER_GRANT),
        ("assertion", assertion.as_str()),
    ];
    let answer: Value = reqwest::Client::new()
        .post(mock.token_uri())
        .form(&form)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    answer["access_token"]
        .as_str()
        .map(str::to_owned)
        .context("the token endpoint answers an access_token")
}

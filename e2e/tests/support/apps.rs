//! App configurations pointing at the mocks, and small edits of a dispatcher's app list.

use dispatcher::{AppConfig, Credentials, DispatcherConfig};
use pushgate_shared::{Mode, Service};
use pushgate_testkit::credentials::ApnsCredentialFiles;
use pushgate_testkit::{ApnsCredentials, MockApns, MockFcm, ServiceAccountFile};
use tokio::net::TcpListener;

/// An FCM app sending to `mock` with the service account `account`.
pub fn fcm_app(name: &str, mock: &MockFcm, account: &ServiceAccountFile) -> AppConfig {
    AppConfig {
        name: name.to_owned(),
        service: Service::Fcm,
        mode: Mode::Prod,
        tags: Vec::new(),
        endpoint: Some(mock.url()),
        extra_root_pem: None,
        connections: 2,
        request_timeout_ms: 10_000,
        default_topic: None,
        credentials: Credentials::FcmServiceAccount {
            path: account.path().to_owned(),
            token_uri: None,
        },
    }
}

/// An APNs app of `mode` sending to `mock` over TLS with `credentials`.
pub fn apns_app(
    name: &str,
    mode: Mode,
    mock: &MockApns,
    credentials: Credentials,
    default_topic: Option<&str>,
) -> AppConfig {
    AppConfig {
        name: name.to_owned(),
        service: Service::Apns,
        mode,
        tags: Vec::new(),
        endpoint: Some(mock.tls_url()),
        extra_root_pem: Some(mock.ca_pem().to_owned()),
        connections: 2,
        request_timeout_ms: 10_000,
        default_topic: default_topic.map(str::to_owned),
        credentials,
    }
}

/// Token-auth credentials from generated APNs `credentials` written to `files`.
pub fn apns_token(credentials: &ApnsCredentials, files: &ApnsCredentialFiles) -> Credentials {
    Credentials::ApnsToken {
        key_path: files.p8_path.clone(),
        key_id: credentials.key_id.clone(),
        team_id: credentials.team_id.clone(),
    }
}

/// Removes the app named `name` from `config`.
pub fn without_app(config: &mut DispatcherConfig, name: &str) {
    let before = config.apps.len();
    config.apps.retain(|app| app.name != name);
    assert_eq!(config.apps.len() + 1, before, "app {name} exists");
}

/// The app named `name` in `config`.
pub fn app_mut<'a>(config: &'a mut DispatcherConfig, name: &str) -> &'a mut AppConfig {
    config
        .apps
        .iter_mut()
        .find(|app| app.name == name)
        .expect("the app exists")
}

/// The URL of a local port nothing listens on (it was bound and released).
pub async fn closed_port_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
    let address = listener.local_addr().expect("a bound address");
    drop(listener);
    format!("http://{address}")
}

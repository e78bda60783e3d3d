//! Builders shared by the dispatcher's integration tests: app configurations pointing at
//! the testkit mocks, and notifications shaped like MongoosePush requests.
#![allow(
    dead_code,
    reason = "each test binary uses a different part of the helpers"
)]

use dispatcher::{AppConfig, Credentials};
use pushgate_shared::{Mode, Notification, Service};
use pushgate_testkit::credentials::ApnsCredentialFiles;
use pushgate_testkit::{ApnsCredentials, ServiceAccountFile};
use serde_json::Value;

/// The APNs device token of the field reports.
pub const TOK64: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// The FCM device token of the field reports.
pub const FCM_TOKEN: &str = "fcm-test-token-0001";

/// The topic of the field reports.
pub const TOPIC: &str = "com.example.chat";

/// A fixed acceptance time (ms since the epoch) for deterministic APNs expirations.
pub const ACCEPTED_AT_MS: u64 = 1_800_000_000_000;

/// An app of `service` sending to `endpoint` with `credentials` and otherwise defaults
/// (two connections, a 10 s hang guard as request timeout).
pub fn app(
    name: &str,
    service: Service,
    mode: Mode,
    endpoint: &str,
    credentials: Credentials,
) -> AppConfig {
    AppConfig {
        name: name.to_owned(),
        service,
        mode,
        tags: Vec::new(),
        endpoint: Some(endpoint.to_owned()),
        extra_root_pem: None,
        connections: 2,
        request_timeout_ms: 10_000,
        default_topic: None,
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

/// Certificate-auth credentials from generated APNs credential `files`.
pub fn apns_certificate(files: &ApnsCredentialFiles) -> Credentials {
    Credentials::ApnsCertificate {
        cert_path: files.client_cert_path.clone(),
        key_path: files.client_key_path.clone(),
    }
}

/// Service-account credentials from the file `account`.
pub fn fcm_account(account: &ServiceAccountFile) -> Credentials {
    Credentials::FcmServiceAccount {
        path: account.path().to_owned(),
        token_uri: None,
    }
}

/// A notification for `service` and `device_token` with an alert `t`/`b` and no options.
pub fn alert(service: Service, device_token: &str) -> Notification {
    Notification::alert(service, device_token, "t", "b")
}

/// A data-only notification for `service` and `device_token` carrying `data`.
pub fn silent(service: Service, device_token: &str, data: Value) -> Notification {
    Notification {
        alert: None,
        data: Some(data.as_object().expect("test data is an object").clone()),
        ..alert(service, device_token)
    }
}

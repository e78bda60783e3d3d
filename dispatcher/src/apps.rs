//! Apps (MongoosePush's pools): one provider account each, with its own credentials,
//! endpoint and connections, built once at start-up and chosen per notification.

use std::path::{Path, PathBuf};
use std::time::Duration;

use pushgate_shared::{Mode, Notification, Service, Target};
use reqwest::Url;
use serde::Deserialize;

use crate::apns::{self, ApnsAuth, ApnsSender, auth::ProviderToken};
use crate::connections::{ClientSettings, Connections};
use crate::fcm::{self, FcmSender, auth::AccessTokens, auth::ServiceAccount};
use crate::health::LinkHealth;
use crate::outcome::Attempt;

/// Connections per app unless configured: MongoosePush's pool size.
pub const DEFAULT_CONNECTIONS: usize = 5;

/// Time allowed for one provider request unless configured: MongoosePush's effective timeout.
pub const DEFAULT_REQUEST_TIMEOUT_MS: u64 = 5_000;

/// One app as configured.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppConfig {
    /// A unique name for logs and health checks, e.g. `apns_prod`.
    pub name: String,
    pub service: Service,
    /// APNs: which of Apple's environments the app delivers to, and which notifications it
    /// takes. FCM has no sandbox: there the mode is informational and selects nothing.
    #[serde(default)]
    pub mode: Mode,
    /// A notification asking for tags goes to the first app that has all of them.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Base URL replacing the provider's (a proxy, a mock, APNs port 2197).
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Extra trusted root certificates: PEM text, or the path of a PEM file.
    #[serde(default)]
    pub extra_root_pem: Option<String>,
    /// Connections to the provider (each one HTTP/2 connection with many streams).
    #[serde(default = "default_connections")]
    pub connections: usize,
    #[serde(default = "default_request_timeout_ms")]
    pub request_timeout_ms: u64,
    /// APNs: the `apns-topic` for notifications that name none (usually the bundle id).
    #[serde(default)]
    pub default_topic: Option<String>,
    pub credentials: Credentials,
}

impl AppConfig {
    /// Makes the app's relative file paths (credentials, an extra root given as a path)
    /// relative to `folder`, the configuration file's, instead of the working directory.
    pub fn resolve_paths(&mut self, folder: &Path) {
        let resolve = |path: &mut PathBuf| {
            if path.is_relative() {
                *path = folder.join(&*path);
            }
        };
        match &mut self.credentials {
            Credentials::FcmServiceAccount { path, .. } => resolve(path),
            Credentials::ApnsToken { key_path, .. } => resolve(key_path),
            Credentials::ApnsCertificate {
                cert_path,
                key_path,
            } => {
                resolve(cert_path);
                resolve(key_path);
            }
        }
        if let Some(root) = &mut self.extra_root_pem
            && !root.trim_start().starts_with("-----BEGIN")
            && Path::new(root.as_str()).is_relative()
        {
            *root = folder.join(root.as_str()).display().to_string();
        }
    }
}

fn default_connections() -> usize {
    DEFAULT_CONNECTIONS
}

fn default_request_timeout_ms() -> u64 {
    DEFAULT_REQUEST_TIMEOUT_MS
}

/// How an app authenticates to its provider (`type` names the variant in configuration).
///
/// PKCS#12 (`.p12`) certificates are not read: convert them to PEM with `openssl pkcs12`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Credentials {
    /// A Google service-account JSON key file; `token_uri` overrides the file's own.
    FcmServiceAccount {
        path: PathBuf,
        #[serde(default)]
        token_uri: Option<String>,
    },
    /// An APNs signing key (`.p8`) with its key id and team id.
    ApnsToken {
        key_path: PathBuf,
        key_id: String,
        team_id: String,
    },
    /// An APNs TLS client certificate and its unencrypted key, both PEM.
    ApnsCertificate {
        cert_path: PathBuf,
        key_path: PathBuf,
    },
}

/// Why the apps could not be built; each error names the app and the key at fault.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("app `{app}`: cannot read {key} `{path}`: {source}", path = path.display())]
    ReadFile {
        app: String,
        key: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("app `{app}`: {key} is invalid: {reason}")]
    Invalid {
        app: String,
        key: &'static str,
        reason: String,
    },
    #[error("app `{app}`: cannot build its HTTP clients: {source}")]
    Client { app: String, source: reqwest::Error },
    #[error("app name `{0}` is used twice")]
    DuplicateName(String),
}

/// A configured app, ready to send.
pub struct App {
    name: String,
    service: Service,
    mode: Mode,
    tags: Vec<String>,
    sender: Sender,
    pub(crate) link: LinkHealth,
}

enum Sender {
    Fcm(FcmSender),
    Apns(ApnsSender),
}

impl App {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn service(&self) -> Service {
        self.service
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    pub fn tags(&self) -> &[String] {
        &self.tags
    }

    /// How many HTTP clients (connections) the app has.
    pub fn connections(&self) -> usize {
        match &self.sender {
            Sender::Fcm(s) => s.connections.len(),
            Sender::Apns(s) => s.connections.len(),
        }
    }

    /// How many tokens the app obtained so far, the first one and every renewal: FCM
    /// access tokens fetched, APNs provider tokens signed (always 0 with certificate auth).
    pub fn tokens_issued(&self) -> u64 {
        match &self.sender {
            Sender::Fcm(s) => s.tokens.fetched(),
            Sender::Apns(ApnsSender {
                auth: ApnsAuth::Token(token),
                ..
            }) => token.signed(),
            Sender::Apns(_) => 0,
        }
    }

    /// True when this app can carry a notification for `target`: same service, same mode
    /// (APNs only), and every requested tag among the app's tags.
    ///
    /// Unlike MongoosePush, an FCM app takes any mode: FCM has no sandbox, and a device
    /// registered in `dev` mode must not lose its Android pushes (field report B21).
    pub fn matches(&self, target: &Target) -> bool {
        self.service == target.service
            && (self.service == Service::Fcm || self.mode == target.mode)
            && target.tags.iter().all(|tag| self.tags.contains(tag))
    }

    /// Sends `notification`, accepted at `accepted_at_ms` (ms since the epoch, the base of
    /// APNs' expiration), and classifies the provider's answer.
    ///
    /// A refused credential is renewed and the notification sent once more inside this
    /// call, so an [`crate::outcome::Outcome::OurCredentials`] result is final.
    pub async fn send(&self, notification: &Notification, accepted_at_ms: u64) -> Attempt {
        let attempt = match &self.sender {
            Sender::Fcm(sender) => sender.send(notification).await,
            Sender::Apns(sender) => sender.send(notification, accepted_at_ms).await,
        };
        self.link.record(&attempt);
        attempt
    }
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("name", &self.name)
            .field("service", &self.service)
            .field("mode", &self.mode)
            .field("tags", &self.tags)
            .finish_non_exhaustive()
    }
}

/// All configured apps, in configuration order.
#[derive(Debug, Default)]
pub struct Apps {
    apps: Vec<App>,
}

impl Apps {
    /// Reads every app's credentials and builds its clients, once.
    ///
    /// FCM access tokens are fetched on the first send, not here; keys, certificates and
    /// service-account files are read and checked here.
    ///
    /// # Errors
    ///
    /// The first app that cannot be built, naming the key at fault.
    pub fn build(configs: &[AppConfig]) -> Result<Apps, AppError> {
        let mut apps: Vec<App> = Vec::with_capacity(configs.len());
        for config in configs {
            if apps.iter().any(|a| a.name == config.name) {
                return Err(AppError::DuplicateName(config.name.clone()));
            }
            apps.push(build_app(config)?);
        }
        Ok(Apps { apps })
    }

    /// The app for `target`: the first one, in configuration order, that
    /// [`App::matches`] it; `None` is MongoosePush's `no_matching_pool`.
    pub fn select(&self, target: &Target) -> Option<&App> {
        self.apps.iter().find(|app| app.matches(target))
    }

    /// Sends `notification` through the app [`Apps::select`] picks, or answers
    /// [`Attempt::no_matching_pool`] without contacting any provider.
    pub async fn send(&self, notification: &Notification, accepted_at_ms: u64) -> Attempt {
        match self.select(&notification.target) {
            Some(app) => app.send(notification, accepted_at_ms).await,
            None => Attempt::no_matching_pool(),
        }
    }

    /// Every app, in configuration order.
    pub fn iter(&self) -> impl Iterator<Item = &App> {
        self.apps.iter()
    }

    pub fn len(&self) -> usize {
        self.apps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.apps.is_empty()
    }
}

fn build_app(config: &AppConfig) -> Result<App, AppError> {
    let app = config.name.as_str();
    if app.trim().is_empty() {
        return Err(invalid(app, "name", "must not be empty"));
    }
    if config.connections == 0 {
        return Err(invalid(app, "connections", "must be at least 1"));
    }
    if config.request_timeout_ms == 0 {
        return Err(invalid(app, "request_timeout_ms", "must be at least 1"));
    }
    if config.service == Service::Fcm && config.default_topic.is_some() {
        return Err(invalid(app, "default_topic", "applies to APNs apps only"));
    }

    let settings = ClientSettings {
        count: config.connections,
        request_timeout: Duration::from_millis(config.request_timeout_ms),
        extra_roots: match &config.extra_root_pem {
            Some(pem) => read_roots(app, pem)?,
            None => Vec::new(),
        },
        identity: None,
        http2_only: false,
    };
    let sender = match (config.service, &config.credentials) {
        (Service::Fcm, Credentials::FcmServiceAccount { path, token_uri }) => {
            fcm_sender(config, path, token_uri.clone(), settings)?
        }
        (
            Service::Apns,
            Credentials::ApnsToken {
                key_path,
                key_id,
                team_id,
            },
        ) => {
            let key = read(app, "credentials.key_path", key_path)?;
            let token = ProviderToken::new(key.as_bytes(), key_id.clone(), team_id.clone())
                .map_err(|e| invalid(app, "credentials.key_path", format!("not an EC key: {e}")))?;
            apns_sender(config, settings, ApnsAuth::Token(token))?
        }
        (
            Service::Apns,
            Credentials::ApnsCertificate {
                cert_path,
                key_path,
            },
        ) => {
            let pem = read(app, "credentials.cert_path", cert_path)?
                + "\n"
                + &read(app, "credentials.key_path", key_path)?;
            let identity = reqwest::Identity::from_pem(pem.as_bytes())
                .map_err(|e| invalid(app, "credentials", format!("certificate or key: {e}")))?;
            let settings = ClientSettings {
                identity: Some(identity),
                ..settings
            };
            apns_sender(config, settings, ApnsAuth::Certificate)?
        }
        (service, _) => {
            let reason = format!("does not fit service `{}`", service.as_str());
            return Err(invalid(app, "credentials.type", reason));
        }
    };

    Ok(App {
        name: config.name.clone(),
        service: config.service,
        mode: config.mode,
        tags: config.tags.clone(),
        sender,
        link: LinkHealth::default(),
    })
}

fn fcm_sender(
    config: &AppConfig,
    account_path: &Path,
    token_uri: Option<String>,
    settings: ClientSettings,
) -> Result<Sender, AppError> {
    let app = config.name.as_str();
    let account: ServiceAccount =
        serde_json::from_str(&read(app, "credentials.path", account_path)?).map_err(|e| {
            invalid(
                app,
                "credentials.path",
                format!("not a service-account JSON: {e}"),
            )
        })?;
    let endpoint = endpoint_url(app, config.endpoint.as_deref(), fcm::DEFAULT_ENDPOINT)?;
    let send_url = FcmSender::url_for(&endpoint, &account.project_id);

    let token_client = ClientSettings {
        count: 1,
        ..settings.clone()
    };
    let token_client = token_client.client().map_err(|e| client_error(app, e))?;
    let tokens = AccessTokens::new(account, token_uri, token_client)
        .map_err(|e| invalid(app, "credentials.path", format!("private_key: {e}")))?;
    Ok(Sender::Fcm(FcmSender {
        connections: Connections::build(&settings).map_err(|e| client_error(app, e))?,
        send_url,
        tokens,
    }))
}

fn apns_sender(
    config: &AppConfig,
    settings: ClientSettings,
    auth: ApnsAuth,
) -> Result<Sender, AppError> {
    let default = match config.mode {
        Mode::Prod => apns::PRODUCTION_ENDPOINT,
        Mode::Dev => apns::SANDBOX_ENDPOINT,
    };
    let endpoint = endpoint_url(&config.name, config.endpoint.as_deref(), default)?;
    let settings = ClientSettings {
        http2_only: true,
        ..settings
    };
    Ok(Sender::Apns(ApnsSender {
        connections: Connections::build(&settings).map_err(|e| client_error(&config.name, e))?,
        endpoint,
        default_topic: config.default_topic.clone().filter(|t| !t.is_empty()),
        auth,
    }))
}

fn invalid(app: &str, key: &'static str, reason: impl Into<String>) -> AppError {
    AppError::Invalid {
        app: app.to_owned(),
        key,
        reason: reason.into(),
    }
}

fn client_error(app: &str, source: reqwest::Error) -> AppError {
    AppError::Client {
        app: app.to_owned(),
        source,
    }
}

fn endpoint_url(app: &str, configured: Option<&str>, default: &str) -> Result<Url, AppError> {
    let text = configured.unwrap_or(default);
    let refuse = |reason: &str| invalid(app, "endpoint", format!("`{text}` {reason}"));
    let url = Url::parse(text).map_err(|e| refuse(&format!("is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
        return Err(refuse("must be an http:// or https:// base URL"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(refuse("must have no query or fragment"));
    }
    Ok(url)
}

fn read_roots(app: &str, pem_or_path: &str) -> Result<Vec<reqwest::Certificate>, AppError> {
    let pem = if pem_or_path.trim_start().starts_with("-----BEGIN") {
        pem_or_path.to_owned()
    } else {
        read(app, "extra_root_pem", Path::new(pem_or_path))?
    };
    let roots = reqwest::Certificate::from_pem_bundle(pem.as_bytes())
        .map_err(|e| invalid(app, "extra_root_pem", format!("not PEM certificates: {e}")))?;
    if roots.is_empty() {
        return Err(invalid(app, "extra_root_pem", "holds no certificate"));
    }
    Ok(roots)
}

fn read(app: &str, key: &'static str, path: &Path) -> Result<String, AppError> {
    std::fs::read_to_string(path).map_err(|source| AppError::ReadFile {
        app: app.to_owned(),
        key,
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(credentials: Credentials, extra_root_pem: Option<&str>) -> AppConfig {
        AppConfig {
            name: "a".to_owned(),
            service: Service::Apns,
            mode: Mode::Prod,
            tags: Vec::new(),
            endpoint: None,
            extra_root_pem: extra_root_pem.map(str::to_owned),
            connections: 1,
            request_timeout_ms: 1000,
            default_topic: None,
            credentials,
        }
    }

    #[test]
    fn relative_paths_follow_the_configuration_file() {
        let folder = Path::new("/etc/pushgate");
        let mut relative = app(
            Credentials::ApnsCertificate {
                cert_path: "certs/apns.crt.pem".into(),
                key_path: "/secure/apns.key.pem".into(),
            },
            Some("roots/proxy.pem"),
        );
        relative.resolve_paths(folder);
        assert_eq!(
            relative.credentials,
            Credentials::ApnsCertificate {
                cert_path: "/etc/pushgate/certs/apns.crt.pem".into(),
                key_path: "/secure/apns.key.pem".into(),
            }
        );
        assert_eq!(
            relative.extra_root_pem.as_deref(),
            Some("/etc/pushgate/roots/proxy.pem")
        );

        let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        let mut inline = app(
            Credentials::FcmServiceAccount {
                path: "sa.json".into(),
                token_uri: None,
            },
            Some(pem),
        );
        inline.resolve_paths(folder);
        assert_eq!(
            inline.extra_root_pem.as_deref(),
            Some(pem),
            "PEM text stays"
        );
        assert!(matches!(
            inline.credentials,
            Credentials::FcmServiceAccount { ref path, .. } if path == Path::new("/etc/pushgate/sa.json")
        ));
    }
}

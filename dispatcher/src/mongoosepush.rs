//! MongoosePush's own configuration, honoured so a deployment moves over unchanged: its
//! `PUSH_*` environment variables and its TOML pools (`[[service.fcm]]`, `[[service.apns]]`)
//! become apps with the same names, modes, tags and credentials MongoosePush would use.
//!
//! Relative credential paths resolve against `base_dir` (the TOML file's folder, or the
//! working directory for variables), not against a release root as in MongoosePush.

use std::path::{Path, PathBuf};

use pushgate_shared::{Mode, Service};
use serde::Deserialize;

use crate::apps::{AppConfig, Credentials, DEFAULT_REQUEST_TIMEOUT_MS};

/// A MongoosePush setting that cannot be used; it names the variable or key at fault.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MongoosePushConfigError {
    #[error("{variable}: {problem}")]
    Variable { variable: String, problem: String },
    #[error("{key}: {problem}")]
    Toml { key: String, problem: String },
}

fn variable_error(variable: &str, problem: impl Into<String>) -> MongoosePushConfigError {
    MongoosePushConfigError::Variable {
        variable: variable.to_owned(),
        problem: problem.into(),
    }
}

/// The apps MongoosePush creates from its environment: an FCM pool `default` (prod) when
/// `PUSH_FCM_ENABLED=true`, and APNs pools `dev` and `prod` when `PUSH_APNS_ENABLED=true`.
///
/// # Errors
///
/// A variable with a value that cannot be used, or token auth without its key and team ids
/// (MongoosePush refuses to start then too).
pub fn apps_from_env(
    lookup: impl Fn(&str) -> Option<String>,
    base_dir: &Path,
) -> Result<Vec<AppConfig>, MongoosePushConfigError> {
    let mut apps = Vec::new();
    if flag(&lookup, "PUSH_FCM_ENABLED")? {
        let host = lookup("PUSH_FCM_ENDPOINT");
        let port = lookup("PUSH_FCM_PORT");
        let endpoint = match (host, port) {
            (None, None) => None,
            (host, port) => Some(format!(
                "https://{}:{}",
                host.as_deref().unwrap_or("fcm.googleapis.com"),
                port.as_deref().unwrap_or("443")
            )),
        };
        let app_file = lookup("PUSH_FCM_APP_FILE").unwrap_or_else(|| "priv/fcm/token.json".into());
        apps.push(AppConfig {
            name: "default".to_owned(),
            service: Service::Fcm,
            mode: Mode::Prod,
            tags: Vec::new(),
            endpoint,
            extra_root_pem: None,
            connections: count(&lookup, "PUSH_FCM_POOL_SIZE")?,
            request_timeout_ms: DEFAULT_REQUEST_TIMEOUT_MS,
            default_topic: None,
            credentials: Credentials::FcmServiceAccount {
                path: resolve(base_dir, &app_file),
                token_uri: lookup("FCM_AUTH_ENDPOINT"),
            },
        });
    }
    if flag(&lookup, "PUSH_APNS_ENABLED")? {
        let auth_type = lookup("PUSH_APNS_AUTH_TYPE").unwrap_or_else(|| "token".into());
        for (mode, upper) in [(Mode::Dev, "DEV"), (Mode::Prod, "PROD")] {
            let var = |suffix: &str| format!("PUSH_APNS_{upper}_{suffix}");
            let credentials = match auth_type.as_str() {
                "token" => {
                    let key_id = lookup(&var("KEY_ID"))
                        .ok_or_else(|| variable_error(&var("KEY_ID"), "required for token auth"))?;
                    let team_id = lookup(&var("TEAM_ID")).ok_or_else(|| {
                        variable_error(&var("TEAM_ID"), "required for token auth")
                    })?;
                    let key =
                        lookup(&var("P8_TOKEN")).unwrap_or_else(|| "priv/apns/token.p8".into());
                    Credentials::ApnsToken {
                        key_path: resolve(base_dir, &key),
                        key_id,
                        team_id,
                    }
                }
                "certificate" => {
                    let lower = mode.as_str();
                    let cert = lookup(&var("CERT"))
                        .unwrap_or_else(|| format!("priv/apns/{lower}_cert.pem"));
                    let key =
                        lookup(&var("KEY")).unwrap_or_else(|| format!("priv/apns/{lower}_key.pem"));
                    Credentials::ApnsCertificate {
                        cert_path: resolve(base_dir, &cert),
                        key_path: resolve(base_dir, &key),
                    }
                }
                other => {
                    return Err(variable_error(
                        "PUSH_APNS_AUTH_TYPE",
                        format!("`{other}` is not token or certificate"),
                    ));
                }
            };
            let use_2197 = flag(&lookup, &var("USE_2197"))?;
            apps.push(AppConfig {
                name: mode.as_str().to_owned(),
                service: Service::Apns,
                mode,
                tags: Vec::new(),
                endpoint: apns_endpoint(lookup(&var("ENDPOINT")), use_2197, mode),
                extra_root_pem: None,
                connections: count(&lookup, &var("POOL_SIZE"))?,
                request_timeout_ms: DEFAULT_REQUEST_TIMEOUT_MS,
                default_topic: lookup(&var("DEFAULT_TOPIC")),
                credentials,
            });
        }
    }
    Ok(apps)
}

/// MongoosePush's `service` section of its TOML file.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServiceSection {
    pub fcm: Vec<FcmPool>,
    pub apns: Vec<ApnsPool>,
}

/// One `[[service.fcm]]` entry.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FcmPool {
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub connection: Connection,
    pub auth: FcmAuth,
}

/// `auth` of an FCM pool.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FcmAuth {
    pub appfile: String,
}

/// One `[[service.apns]]` entry.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApnsPool {
    pub mode: Mode,
    #[serde(default)]
    pub default_topic: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub connection: Connection,
    #[serde(default)]
    pub auth: ApnsAuth,
}

/// `auth` of an APNs pool: exactly one of `token` and `certificate`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApnsAuth {
    pub token: Option<ApnsTokenAuth>,
    pub certificate: Option<ApnsCertificateAuth>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApnsTokenAuth {
    pub key_id: String,
    pub team_id: String,
    pub tokenfile: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApnsCertificateAuth {
    pub keyfile: String,
    pub certfile: String,
}

/// `connection` of a pool.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Connection {
    pub endpoint: Option<String>,
    pub port: Option<u16>,
    pub use_2197: Option<bool>,
    pub count: Option<usize>,
}

/// The apps of MongoosePush TOML pools, named `fcm_1..n` and `apns_1..n` as it names them.
///
/// # Errors
///
/// An APNs pool with no auth method, or with both.
pub fn apps_from_service_section(
    service: &ServiceSection,
    base_dir: &Path,
) -> Result<Vec<AppConfig>, MongoosePushConfigError> {
    let mut apps = Vec::new();
    for (index, pool) in service.fcm.iter().enumerate() {
        let endpoint = match (&pool.connection.endpoint, pool.connection.port) {
            (None, None) => None,
            (host, port) => Some(format!(
                "https://{}:{}",
                host.as_deref().unwrap_or("fcm.googleapis.com"),
                port.unwrap_or(443)
            )),
        };
        apps.push(AppConfig {
            name: format!("fcm_{}", index + 1),
            service: Service::Fcm,
            mode: Mode::Prod,
            tags: pool.tags.clone(),
            endpoint,
            extra_root_pem: None,
            connections: pool.connection.count.unwrap_or(5).max(1),
            request_timeout_ms: DEFAULT_REQUEST_TIMEOUT_MS,
            default_topic: None,
            credentials: Credentials::FcmServiceAccount {
                path: resolve(base_dir, &pool.auth.appfile),
                token_uri: None,
            },
        });
    }
    for (index, pool) in service.apns.iter().enumerate() {
        let key = format!("service.apns[{index}].auth");
        let credentials = match (&pool.auth.token, &pool.auth.certificate) {
            (Some(token), None) => Credentials::ApnsToken {
                key_path: resolve(base_dir, &token.tokenfile),
                key_id: token.key_id.clone(),
                team_id: token.team_id.clone(),
            },
            (None, Some(certificate)) => Credentials::ApnsCertificate {
                cert_path: resolve(base_dir, &certificate.certfile),
                key_path: resolve(base_dir, &certificate.keyfile),
            },
            (None, None) => {
                return Err(MongoosePushConfigError::Toml {
                    key,
                    problem: "No auth method provided for APNS pool".to_owned(),
                });
            }
            (Some(_), Some(_)) => {
                return Err(MongoosePushConfigError::Toml {
                    key,
                    problem: "give token or certificate, not both".to_owned(),
                });
            }
        };
        apps.push(AppConfig {
            name: format!("apns_{}", index + 1),
            service: Service::Apns,
            mode: pool.mode,
            tags: pool.tags.clone(),
            endpoint: apns_endpoint(
                pool.connection.endpoint.clone(),
                pool.connection.use_2197.unwrap_or(false),
                pool.mode,
            ),
            extra_root_pem: None,
            connections: pool.connection.count.unwrap_or(5).max(1),
            request_timeout_ms: DEFAULT_REQUEST_TIMEOUT_MS,
            default_topic: pool.default_topic.clone(),
            credentials,
        });
    }
    Ok(apps)
}

/// An APNs base URL from MongoosePush's host and port choice; `None` keeps Apple's default.
fn apns_endpoint(host: Option<String>, use_2197: bool, mode: Mode) -> Option<String> {
    if host.is_none() && !use_2197 {
        return None;
    }
    let host = host.unwrap_or_else(|| match mode {
        Mode::Prod => "api.push.apple.com".to_owned(),
        Mode::Dev => "api.sandbox.push.apple.com".to_owned(),
    });
    let port = if use_2197 { 2197 } else { 443 };
    Some(format!("https://{host}:{port}"))
}

fn flag(
    lookup: &impl Fn(&str) -> Option<String>,
    variable: &str,
) -> Result<bool, MongoosePushConfigError> {
    match lookup(variable).as_deref().map(str::trim) {
        None | Some("") => Ok(false),
        Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some(other) => Err(variable_error(
            variable,
            format!("`{other}` is not true or false"),
        )),
    }
}

fn count(
    lookup: &impl Fn(&str) -> Option<String>,
    variable: &str,
) -> Result<usize, MongoosePushConfigError> {
    match lookup(variable) {
        None => Ok(5),
        Some(text) => match text.trim().parse::<usize>() {
            Ok(0) | Err(_) => Err(variable_error(
                variable,
                format!("`{text}` is not a positive count"),
            )),
            Ok(count) => Ok(count),
        },
    }
}

fn resolve(base_dir: &Path, path: &str) -> PathBuf {
    let path = Path::new(path);
    if path.is_absolute() {
        path.to_owned()
    } else {
        base_dir.join(path)
    }
}

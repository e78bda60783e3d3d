//! Ingest settings, read from `PUSHGATE_*` environment variables (a full configuration
//! file arrives with the operations issue).

use std::net::SocketAddr;
use std::path::PathBuf;

use pushgate_shared::queue::QueueOptions;

use crate::auth::AuthConfig;
use crate::secrets::SECRET_ARN_VARIABLE;
use crate::sync_wait::MAX_SYNC_WAIT;
use crate::tls::TlsConfig;
use crate::webhook::WebhookConfig;

/// Where ingest listens, which queue it writes to, and how large a request may be.
#[derive(Debug, Clone, PartialEq)]
pub struct IngestConfig {
    /// `PUSHGATE_LISTEN`, default `127.0.0.1:8080`; unused under Lambda.
    pub listen: SocketAddr,
    /// `PUSHGATE_REDIS_URL`, else `REDIS_URL`; without either the embedded queue is used.
    /// Under Lambda it is instead read at start-up from the secret named by
    /// `PUSHGATE_REDIS_SECRET_ARN` (see [`crate::secrets`]).
    pub redis_url: Option<String>,
    /// `PUSHGATE_MAX_BODY_BYTES`, default 65536: larger bodies get 413 unparsed.
    pub max_body_bytes: usize,
    /// `PUSHGATE_QUEUE_PREFIX` (default `pushgate`) and `PUSHGATE_QUEUE_SHARDS` (default 1).
    pub queue: QueueOptions,
    /// `PUSHGATE_SYNC_WAIT_MS`, default 0 (off): how long a request waits for the first
    /// attempt's outcome before answering 200 anyway; at most 1500.
    pub sync_wait_ms: u64,
    /// `PUSHGATE_AUTH`, `PUSHGATE_API_KEYS`, `PUSHGATE_PATH_SECRET`: off in `default()`
    /// (tests, the demo), required by `from_env` unless `PUSHGATE_AUTH=off`.
    pub auth: AuthConfig,
    /// The MongooseIM webhook and the device registry's cap.
    pub webhook: WebhookConfig,
    /// `PUSHGATE_TLS_CERT` and `PUSHGATE_TLS_KEY` (both or neither), and
    /// `PUSHGATE_TLS_CLIENT_CA` to require client certificates: TLS on the local listener.
    pub tls: Option<TlsConfig>,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            redis_url: None,
            max_body_bytes: 64 * 1024,
            queue: QueueOptions::default(),
            sync_wait_ms: 0,
            auth: AuthConfig::default(),
            webhook: WebhookConfig::default(),
            tls: None,
        }
    }
}

/// A setting that could not be read; it names the variable at fault.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{variable}: {problem}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub problem: String,
}

impl IngestConfig {
    /// Reads the process environment.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the first variable whose value cannot be used.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `lookup`, so tests need not touch the process environment.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the first variable whose value cannot be used.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut config = IngestConfig::default();
        if let Some(listen) = lookup("PUSHGATE_LISTEN") {
            config.listen = parse("PUSHGATE_LISTEN", &listen)?;
        }
        config.redis_url = lookup("PUSHGATE_REDIS_URL")
            .or_else(|| lookup("REDIS_URL"))
            .filter(|url| !url.trim().is_empty());
        let secret_named = lookup(SECRET_ARN_VARIABLE).is_some_and(|arn| !arn.trim().is_empty());
        if config.redis_url.is_some() && secret_named {
            return Err(ConfigError {
                variable: SECRET_ARN_VARIABLE,
                problem: "set together with PUSHGATE_REDIS_URL (or REDIS_URL): name the Redis \
                          in one place only"
                    .to_owned(),
            });
        }
        if let Some(limit) = lookup("PUSHGATE_MAX_BODY_BYTES") {
            config.max_body_bytes = parse("PUSHGATE_MAX_BODY_BYTES", &limit)?;
        }
        if let Some(prefix) = lookup("PUSHGATE_QUEUE_PREFIX") {
            config.queue.prefix = prefix;
        }
        if let Some(shards) = lookup("PUSHGATE_QUEUE_SHARDS") {
            config.queue.shards = parse("PUSHGATE_QUEUE_SHARDS", &shards)?;
            if config.queue.shards == 0 {
                return Err(ConfigError {
                    variable: "PUSHGATE_QUEUE_SHARDS",
                    problem: "must be at least 1".to_owned(),
                });
            }
        }
        if let Some(wait) = lookup("PUSHGATE_SYNC_WAIT_MS") {
            config.sync_wait_ms = parse("PUSHGATE_SYNC_WAIT_MS", &wait)?;
            if config.sync_wait_ms > MAX_SYNC_WAIT.as_millis() as u64 {
                return Err(ConfigError {
                    variable: "PUSHGATE_SYNC_WAIT_MS",
                    problem: format!(
                        "{} is above 1500: MongooseIM gives up after 2000 ms",
                        config.sync_wait_ms
                    ),
                });
            }
        }
        // The secret may add credentials: `serve::run` validates once it has read it.
        config.auth = if secret_named {
            AuthConfig::read(&lookup)?
        } else {
            AuthConfig::from_lookup(&lookup)?
        };
        config.webhook = WebhookConfig::from_lookup(&lookup)?;
        config.tls = tls_from_lookup(&lookup)?;
        Ok(config)
    }
}

fn tls_from_lookup(
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<TlsConfig>, ConfigError> {
    let set = |name| lookup(name).filter(|value: &String| !value.trim().is_empty());
    let client_ca_path = set("PUSHGATE_TLS_CLIENT_CA").map(PathBuf::from);
    match (set("PUSHGATE_TLS_CERT"), set("PUSHGATE_TLS_KEY")) {
        (Some(cert), Some(key)) => Ok(Some(TlsConfig {
            cert_path: cert.into(),
            key_path: key.into(),
            client_ca_path,
        })),
        (None, None) if client_ca_path.is_none() => Ok(None),
        (None, None) => Err(ConfigError {
            variable: "PUSHGATE_TLS_CLIENT_CA",
            problem: "needs PUSHGATE_TLS_CERT and PUSHGATE_TLS_KEY (client certificates are \
                      checked only over TLS)"
                .to_owned(),
        }),
        (Some(_), None) => Err(ConfigError {
            variable: "PUSHGATE_TLS_KEY",
            problem: "is needed with PUSHGATE_TLS_CERT".to_owned(),
        }),
        (None, Some(_)) => Err(ConfigError {
            variable: "PUSHGATE_TLS_CERT",
            problem: "is needed with PUSHGATE_TLS_KEY".to_owned(),
        }),
    }
}

pub(crate) fn parse<T: std::str::FromStr>(
    variable: &'static str,
    value: &str,
) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    value.trim().parse().map_err(|error: T::Err| ConfigError {
        variable,
        problem: format!("cannot use {value:?}: {error}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A lookup answering `pairs`, with `PUSHGATE_AUTH=off` unless `pairs` names it.
    fn lookup_from(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let mut pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        if !pairs.iter().any(|(k, _)| k == "PUSHGATE_AUTH") {
            pairs.push(("PUSHGATE_AUTH".to_owned(), "off".to_owned()));
        }
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }
    }

    #[test]
    fn defaults_without_environment() {
        let config = IngestConfig::from_lookup(lookup_from(&[])).unwrap();
        assert_eq!(config, IngestConfig::default());
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.redis_url, None);
    }

    #[test]
    fn authentication_is_required_unless_turned_off() {
        let error = IngestConfig::from_lookup(|_| None).unwrap_err();
        assert_eq!(error.variable, "PUSHGATE_AUTH");
        let config = IngestConfig::from_lookup(lookup_from(&[
            ("PUSHGATE_AUTH", "required"),
            ("PUSHGATE_API_KEYS", "k-0123456789abcdef"),
        ]))
        .unwrap();
        assert_eq!(config.auth.mode, crate::auth::AuthMode::Required);
        assert_eq!(config.auth.api_keys, ["k-0123456789abcdef"]);
    }

    #[test]
    fn webhook_settings_are_read_and_checked() {
        let config = IngestConfig::from_lookup(lookup_from(&[
            ("PUSHGATE_WEBHOOK_PATH", "/hooks/mim"),
            ("PUSHGATE_DEFAULT_DOMAIN", "Example.COM"),
            ("PUSHGATE_WEBHOOK_MAX_BODY_BYTES", "1024"),
            ("PUSHGATE_MAX_DEVICES_PER_USER", "5"),
        ]))
        .unwrap();
        let expected = WebhookConfig {
            path: "/hooks/mim".to_owned(),
            default_domain: Some("example.com".to_owned()),
            max_body_bytes: 1024,
            max_devices_per_user: 5,
        };
        assert_eq!(config.webhook, expected);
        for (variable, value) in [
            ("PUSHGATE_WEBHOOK_PATH", "hooks"),
            ("PUSHGATE_WEBHOOK_PATH", "/hooks//mim"),
            ("PUSHGATE_WEBHOOK_PATH", "/v3/hook"),
            ("PUSHGATE_WEBHOOK_PATH", "/hook/{id}"),
            ("PUSHGATE_DEFAULT_DOMAIN", "a@b"),
            ("PUSHGATE_WEBHOOK_MAX_BODY_BYTES", "lots"),
            ("PUSHGATE_MAX_DEVICES_PER_USER", "0"),
            ("PUSHGATE_MAX_DEVICES_PER_USER", "1001"),
        ] {
            let error = IngestConfig::from_lookup(lookup_from(&[(variable, value)])).unwrap_err();
            assert_eq!(error.variable, variable, "{value}");
        }
    }

    #[test]
    fn pushgate_redis_url_wins_over_redis_url() {
        let config = IngestConfig::from_lookup(lookup_from(&[
            ("REDIS_URL", "redis://a:1"),
            ("PUSHGATE_REDIS_URL", "redis://b:2"),
        ]))
        .unwrap();
        assert_eq!(config.redis_url.as_deref(), Some("redis://b:2"));
        let config =
            IngestConfig::from_lookup(lookup_from(&[("REDIS_URL", "redis://a:1")])).unwrap();
        assert_eq!(config.redis_url.as_deref(), Some("redis://a:1"));
    }

    #[test]
    fn errors_name_the_variable() {
        let error =
            IngestConfig::from_lookup(lookup_from(&[("PUSHGATE_LISTEN", "nowhere")])).unwrap_err();
        assert_eq!(error.variable, "PUSHGATE_LISTEN");
        let error = IngestConfig::from_lookup(lookup_from(&[("PUSHGATE_MAX_BODY_BYTES", "-1")]))
            .unwrap_err();
        assert_eq!(error.variable, "PUSHGATE_MAX_BODY_BYTES");
        let error =
            IngestConfig::from_lookup(lookup_from(&[("PUSHGATE_QUEUE_SHARDS", "0")])).unwrap_err();
        assert_eq!(error.variable, "PUSHGATE_QUEUE_SHARDS");
    }

    #[test]
    fn redis_secret_and_redis_url_exclude_each_other() {
        let arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:redis-AbCdEf";
        for url_variable in ["PUSHGATE_REDIS_URL", "REDIS_URL"] {
            let error = IngestConfig::from_lookup(lookup_from(&[
                (url_variable, "redis://a:1"),
                ("PUSHGATE_REDIS_SECRET_ARN", arn),
            ]))
            .unwrap_err();
            assert_eq!(error.variable, "PUSHGATE_REDIS_SECRET_ARN");
        }
        let config =
            IngestConfig::from_lookup(lookup_from(&[("PUSHGATE_REDIS_SECRET_ARN", arn)])).unwrap();
        assert_eq!(config.redis_url, None, "filled in at start-up, not here");
    }
}

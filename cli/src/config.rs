//! The `pushgate.toml` file shared by every subcommand: ingest, queue and dispatcher
//! sections. Unknown keys are refused, and every error names the file and the key.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use dispatcher::DispatcherConfig;
use ingest::{AuthConfig, AuthMode, IngestConfig};
use pushgate_shared::queue::{EmbeddedQueue, Queue, QueueOptions, RedisQueue};
use serde::Deserialize;

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PushgateConfig {
    pub ingest: IngestSection,
    pub queue: QueueSection,
    pub dispatcher: DispatcherConfig,
}

/// `[ingest]`: the HTTP front door.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestSection {
    pub listen: SocketAddr,
    pub max_body_bytes: usize,
    pub sync_wait_ms: u64,
    pub auth: AuthSection,
}

impl Default for IngestSection {
    fn default() -> Self {
        let defaults = IngestConfig::default();
        IngestSection {
            listen: defaults.listen,
            max_body_bytes: defaults.max_body_bytes,
            sync_wait_ms: defaults.sync_wait_ms,
            auth: AuthSection::default(),
        }
    }
}

/// `[ingest.auth]`: bearer keys and the secret path prefix. Unset `required` means
/// "required when a key or the secret is configured"; without either ingest runs open,
/// with a warning at start-up.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSection {
    pub api_keys: Vec<String>,
    pub path_secret: Option<String>,
    pub required: Option<bool>,
}

impl AuthSection {
    fn auth_config(&self) -> AuthConfig {
        let configured = !self.api_keys.is_empty() || self.path_secret.is_some();
        AuthConfig {
            mode: if self.required.unwrap_or(configured) {
                AuthMode::Required
            } else {
                AuthMode::Off
            },
            api_keys: self.api_keys.clone(),
            path_secret: self.path_secret.clone(),
        }
    }
}

/// `[queue]`: Redis, or the in-memory queue when `redis_url` is unset.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueueSection {
    pub redis_url: Option<String>,
    pub prefix: String,
    pub shards: u16,
}

impl Default for QueueSection {
    fn default() -> Self {
        let defaults = QueueOptions::default();
        QueueSection {
            redis_url: None,
            prefix: defaults.prefix,
            shards: defaults.shards,
        }
    }
}

impl PushgateConfig {
    /// Reads `path`, then lets `PUSHGATE_REDIS_URL` (or `REDIS_URL`) override the Redis URL.
    ///
    /// # Errors
    ///
    /// An unreadable file, TOML that does not parse, or a key this version does not know;
    /// the message names the file and the key.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the configuration {}", path.display()))?;
        let mut config: PushgateConfig = toml::from_str(&text)
            .with_context(|| format!("configuration {} is not valid", path.display()))?;
        if let Some(url) = redis_url_from_env() {
            config.queue.redis_url = Some(url);
        }
        if config.queue.shards == 0 {
            anyhow::bail!(
                "configuration {}: queue.shards must be at least 1",
                path.display()
            );
        }
        Ok(config)
    }

    /// The queue options of the `[queue]` section.
    pub fn queue_options(&self) -> QueueOptions {
        QueueOptions {
            prefix: self.queue.prefix.clone(),
            shards: self.queue.shards,
            ..QueueOptions::default()
        }
    }

    /// The ingest settings of the `[ingest]` and `[queue]` sections.
    pub fn ingest_config(&self) -> IngestConfig {
        IngestConfig {
            listen: self.ingest.listen,
            redis_url: self.queue.redis_url.clone(),
            max_body_bytes: self.ingest.max_body_bytes,
            queue: self.queue_options(),
            sync_wait_ms: self.ingest.sync_wait_ms,
            auth: self.ingest.auth.auth_config(),
            ..IngestConfig::default()
        }
    }

    /// Connects the configured queue, saying which one it is.
    ///
    /// # Errors
    ///
    /// Redis configured but unreachable.
    pub async fn connect_queue(&self) -> anyhow::Result<Arc<dyn Queue>> {
        match &self.queue.redis_url {
            Some(url) => {
                let queue = RedisQueue::connect(url, self.queue_options())
                    .await
                    .with_context(|| format!("cannot connect to Redis at {}", redacted(url)))?;
                tracing::info!(queue = "redis", prefix = %self.queue.prefix, "queue connected");
                Ok(Arc::new(queue))
            }
            None => {
                tracing::warn!(
                    queue = "embedded",
                    "no Redis configured: queued jobs live in memory and are lost on restart"
                );
                Ok(Arc::new(EmbeddedQueue::new(self.queue_options())))
            }
        }
    }
}

fn redis_url_from_env() -> Option<String> {
    std::env::var("PUSHGATE_REDIS_URL")
        .ok()
        .or_else(|| std::env::var("REDIS_URL").ok())
        .filter(|url| !url.trim().is_empty())
}

/// A Redis URL with any password replaced, fit for messages.
pub fn redacted(url: &str) -> String {
    match (url.split_once("://"), url.rfind('@')) {
        (Some((scheme, _)), Some(at)) => format!("{scheme}://***{}", &url[at..]),
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_hidden_in_messages() {
        assert_eq!(
            redacted("redis://:secret@cache:6379/0"),
            "redis://***@cache:6379/0"
        );
        assert_eq!(redacted("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
    }

    #[test]
    fn unknown_keys_are_refused_with_their_name() {
        let error = toml::from_str::<PushgateConfig>("[queue]\nredis_ulr = \"x\"\n").unwrap_err();
        assert!(error.to_string().contains("redis_ulr"), "{error}");
    }

    #[test]
    fn configured_credentials_turn_authentication_on() {
        let open: PushgateConfig = toml::from_str("").unwrap();
        assert_eq!(open.ingest_config().auth.mode, AuthMode::Off);
        let keyed: PushgateConfig =
            toml::from_str("[ingest.auth]\napi_keys = [\"k-0123456789abcdef\"]\n").unwrap();
        assert_eq!(keyed.ingest_config().auth.mode, AuthMode::Required);
        assert_eq!(keyed.ingest_config().auth.api_keys, ["k-0123456789abcdef"]);
        let forced: PushgateConfig = toml::from_str("[ingest.auth]\nrequired = true\n").unwrap();
        assert_eq!(forced.ingest_config().auth.mode, AuthMode::Required);
    }

    /// The example in the repository is a real configuration: it parses with every
    /// section present, and its defaults-as-documented are the code's defaults.
    #[test]
    fn the_example_file_parses_and_documents_the_defaults() {
        let example: PushgateConfig =
            toml::from_str(include_str!("../../pushgate.example.toml")).unwrap();
        let defaults = PushgateConfig::default();

        assert_eq!(example.ingest.listen, defaults.ingest.listen);
        assert_eq!(
            example.ingest.max_body_bytes,
            defaults.ingest.max_body_bytes
        );
        assert_eq!(example.ingest.sync_wait_ms, defaults.ingest.sync_wait_ms);
        let auth = example.ingest_config().auth;
        assert_eq!(auth.mode, AuthMode::Required);
        assert_eq!(auth.validate(), Ok(()));
        assert_eq!(
            example.queue.redis_url.as_deref(),
            Some("redis://127.0.0.1:6379")
        );
        assert_eq!(example.queue_options(), defaults.queue_options());

        let DispatcherConfig { apps, .. } = &example.dispatcher;
        let names: Vec<&str> = apps.iter().map(|app| app.name.as_str()).collect();
        assert_eq!(names, ["fcm", "apns-prod", "apns-dev"]);
        let without_apps = DispatcherConfig {
            apps: Vec::new(),
            ..example.dispatcher.clone()
        };
        assert_eq!(without_apps, defaults.dispatcher);
        assert_eq!(apps[1].connections, dispatcher::apps::DEFAULT_CONNECTIONS);
    }

    #[test]
    fn an_empty_file_is_all_defaults() {
        let config: PushgateConfig = toml::from_str("").unwrap();
        assert_eq!(config, PushgateConfig::default());
        assert_eq!(config.ingest_config().listen.to_string(), "127.0.0.1:8080");
    }
}

//! The `pushgate.toml` file shared by every subcommand: ingest, queue and dispatcher
//! sections. Unknown keys are refused, and every error names the file and the key.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use dispatcher::DispatcherConfig;
use dispatcher::mongoosepush::{ServiceSection, apps_from_env, apps_from_service_section};
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use ingest::sync_wait::MAX_SYNC_WAIT;
use ingest::tls::TlsConfig;
use ingest::{AuthConfig, AuthMode, IngestConfig};
use pushgate_shared::Service;
use pushgate_shared::queue::{EmbeddedQueue, Queue, QueueOptions, RedisQueue};
use serde::Deserialize;

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PushgateConfig {
    pub ingest: IngestSection,
    pub queue: QueueSection,
    pub dispatcher: DispatcherConfig,
    /// MongoosePush's pools (`[[service.fcm]]`, `[[service.apns]]`), read as it reads them
    /// and added after `[[dispatcher.apps]]`.
    pub service: ServiceSection,
    /// MongoosePush's `[general]` section (logging, its HTTPS listener), accepted so its
    /// file loads unchanged, and not used: pushgate's own keys say the same.
    pub general: Option<figment::value::Value>,
}

/// `[ingest]`: the HTTP front door.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestSection {
    pub listen: SocketAddr,
    pub max_body_bytes: usize,
    pub sync_wait_ms: u64,
    pub auth: AuthSection,
    /// `[ingest.tls]`: `cert_path`, `key_path`, optional `client_ca_path`.
    pub tls: Option<TlsConfig>,
}

impl Default for IngestSection {
    fn default() -> Self {
        let defaults = IngestConfig::default();
        IngestSection {
            listen: defaults.listen,
            max_body_bytes: defaults.max_body_bytes,
            sync_wait_ms: defaults.sync_wait_ms,
            auth: AuthSection::default(),
            tls: None,
        }
    }
}

/// `[ingest.auth]`: bearer keys and the secret path prefix. Authentication is required
/// unless `required = false` says otherwise (the demo does); required without a key or
/// a secret stops `pushgate up` at start.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSection {
    pub api_keys: Vec<String>,
    pub path_secret: Option<String>,
    pub required: bool,
}

impl Default for AuthSection {
    fn default() -> Self {
        AuthSection {
            api_keys: Vec::new(),
            path_secret: None,
            required: true,
        }
    }
}

impl AuthSection {
    fn auth_config(&self) -> AuthConfig {
        AuthConfig {
            mode: if self.required {
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
    /// Reads `path`, then the environment over it (the environment wins):
    /// `PUSHGATE_<SECTION>__<KEY>` for any key (`PUSHGATE_DISPATCHER__RETRY__MAX_ATTEMPTS`),
    /// and ingest's own names for its settings ([`ENV_ALIASES`], `PUSHGATE_API_KEYS` as a
    /// comma-separated list, `PUSHGATE_AUTH=required|off`, `REDIS_URL`).
    ///
    /// # Errors
    ///
    /// An unreadable file, TOML that does not parse, a key this version does not know or a
    /// value of the wrong type; the message names the file or variable and the key.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the configuration {}", path.display()))?;
        let folder = path.parent().unwrap_or(Path::new("."));
        Self::build(&text, folder)
            .with_context(|| format!("configuration {} is not valid", path.display()))
    }

    /// The configuration the environment alone gives (as [`load`](Self::load) with an
    /// empty file), or `None` when it configures neither Redis nor an app: then
    /// `pushgate up` runs the demo.
    ///
    /// # Errors
    ///
    /// As [`load`](Self::load), naming the variable.
    pub fn from_environment() -> anyhow::Result<Option<Self>> {
        let folder = std::env::current_dir().unwrap_or_else(|_| ".".into());
        let config = Self::build("", &folder).context("the environment's configuration")?;
        let configured = config.queue.redis_url.is_some() || !config.dispatcher.apps.is_empty();
        Ok(configured.then_some(config))
    }

    fn build(text: &str, folder: &Path) -> anyhow::Result<Self> {
        let mut config: PushgateConfig = Figment::new()
            .merge(Toml::string(text))
            .merge(environment()?)
            .extract()
            .map_err(|error| {
                let messages: Vec<String> = error.into_iter().map(|e| e.to_string()).collect();
                anyhow::anyhow!(messages.join("; "))
            })?;
        config.queue.redis_url = config.queue.redis_url.filter(|url| !url.trim().is_empty());
        for app in &mut config.dispatcher.apps {
            app.resolve_paths(folder);
        }
        if let Some(tls) = &mut config.ingest.tls {
            for path in [&mut tls.cert_path, &mut tls.key_path]
                .into_iter()
                .chain(tls.client_ca_path.as_mut())
            {
                if path.is_relative() {
                    *path = folder.join(&*path);
                }
            }
        }
        config.add_mongoosepush_apps(folder, |name| std::env::var(name).ok())?;
        if config.general.is_some() {
            tracing::warn!(
                "MongoosePush's [general] section is ignored: set [ingest] and RUST_LOG instead"
            );
        }
        if config.queue.shards == 0 {
            anyhow::bail!("queue.shards must be at least 1");
        }
        Ok(config)
    }

    /// Adds the apps MongoosePush would create: from the `[service]` pools (credential
    /// paths relative to `folder`), then from its `PUSH_*` variables for each service that
    /// has no such pool (its TOML pools replace its variables' pools, as in MongoosePush).
    ///
    /// # Errors
    ///
    /// A pool or variable MongoosePush itself would refuse, named.
    pub fn add_mongoosepush_apps(
        &mut self,
        folder: &Path,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> anyhow::Result<()> {
        let pools = apps_from_service_section(&self.service, folder)?;
        let working_dir = std::env::current_dir().unwrap_or_else(|_| folder.to_owned());
        let from_variables = apps_from_env(lookup, &working_dir)?;
        let pooled: Vec<Service> = pools.iter().map(|app| app.service).collect();
        self.dispatcher.apps.extend(pools);
        self.dispatcher.apps.extend(
            from_variables
                .into_iter()
                .filter(|app| !pooled.contains(&app.service)),
        );
        Ok(())
    }

    /// Checks what only serving needs (`pushgate up`), naming the key at fault:
    /// credentials when authentication is required, and a sync-wait MongooseIM survives.
    ///
    /// # Errors
    ///
    /// The key and what is wrong with it.
    pub fn check_serving(&self) -> anyhow::Result<()> {
        let wait = self.ingest.sync_wait_ms;
        if wait > MAX_SYNC_WAIT.as_millis() as u64 {
            anyhow::bail!(
                "ingest.sync_wait_ms: {wait} is above 1500: MongooseIM gives up after 2000 ms"
            );
        }
        self.ingest_config()
            .auth
            .validate()
            .map_err(|error| match error.variable {
                "PUSHGATE_API_KEYS" => anyhow::anyhow!("ingest.auth.api_keys: {}", error.problem),
                "PUSHGATE_PATH_SECRET" => {
                    anyhow::anyhow!("ingest.auth.path_secret: {}", error.problem)
                }
                _ => anyhow::anyhow!(
                    "ingest.auth: authentication is required but there is nothing to check: set \
                 api_keys or path_secret (or PUSHGATE_API_KEYS / PUSHGATE_PATH_SECRET), or \
                 required = false to accept every caller"
                ),
            })
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
            tls: self.ingest.tls.clone(),
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

/// Ingest's environment variables and the keys of the file they set.
pub const ENV_ALIASES: &[(&str, &str)] = &[
    ("LISTEN", "ingest.listen"),
    ("MAX_BODY_BYTES", "ingest.max_body_bytes"),
    ("SYNC_WAIT_MS", "ingest.sync_wait_ms"),
    ("PATH_SECRET", "ingest.auth.path_secret"),
    ("REDIS_URL", "queue.redis_url"),
    ("QUEUE_PREFIX", "queue.prefix"),
    ("QUEUE_SHARDS", "queue.shards"),
];

/// The environment's part of the configuration, lowest precedence first.
fn environment() -> anyhow::Result<Figment> {
    let mut figment = Figment::new()
        .merge(
            Env::raw()
                .only(&["REDIS_URL"])
                .map(|_| "queue.redis_url".into()),
        )
        .merge(Env::prefixed("PUSHGATE_").filter_map(|key| {
            if key.as_str().contains("__") {
                return Some(key.as_str().replace("__", ".").into());
            }
            ENV_ALIASES
                .iter()
                .find(|(name, _)| key == *name)
                .map(|(_, path)| (*path).into())
        }));
    if let Ok(keys) = std::env::var("PUSHGATE_API_KEYS") {
        let keys: Vec<String> = keys
            .split(',')
            .map(str::trim)
            .filter(|key| !key.is_empty())
            .map(str::to_owned)
            .collect();
        figment = figment.merge(Serialized::default("ingest.auth.api_keys", keys));
    }
    let required = match std::env::var("PUSHGATE_AUTH").as_deref().map(str::trim) {
        Err(_) => return Ok(figment),
        Ok("required") => true,
        Ok("off") => false,
        Ok(other) => anyhow::bail!("PUSHGATE_AUTH must be `required` or `off`, not {other:?}"),
    };
    Ok(figment.merge(Serialized::default("ingest.auth.required", required)))
}

/// A Redis URL with any password replaced, fit for messages.
pub fn redacted(url: &str) -> String {
    match (url.split_once("://"), url.rfind('@')) {
        (Some((scheme, _)), Some(at)) => format!("{scheme}://***{}", &url[at..]),
        _ => url.to_owned(),
    }
}

#[cfg(test)]
#[allow(
    clippy::result_large_err,
    reason = "figment::Jail's closures return figment's own large error"
)]
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
    fn authentication_is_off_only_when_the_file_says_so() {
        let unsaid: PushgateConfig = toml::from_str("").unwrap();
        assert_eq!(unsaid.ingest_config().auth.mode, AuthMode::Required);
        let error = unsaid.check_serving().unwrap_err().to_string();
        assert!(error.starts_with("ingest.auth: "), "{error}");
        let open: PushgateConfig = toml::from_str("[ingest.auth]\nrequired = false\n").unwrap();
        assert_eq!(open.ingest_config().auth.mode, AuthMode::Off);
        assert!(open.check_serving().is_ok());
        let keyed: PushgateConfig =
            toml::from_str("[ingest.auth]\napi_keys = [\"k-0123456789abcdef\"]\n").unwrap();
        assert_eq!(keyed.ingest_config().auth.mode, AuthMode::Required);
        assert_eq!(keyed.ingest_config().auth.api_keys, ["k-0123456789abcdef"]);
        assert!(keyed.check_serving().is_ok());
        let short: PushgateConfig =
            toml::from_str("[ingest.auth]\napi_keys = [\"short\"]\n").unwrap();
        let error = short.check_serving().unwrap_err().to_string();
        assert!(error.starts_with("ingest.auth.api_keys: "), "{error}");
        let impatient: PushgateConfig =
            toml::from_str("[ingest]\nsync_wait_ms = 2000\n[ingest.auth]\nrequired = false\n")
                .unwrap();
        let error = impatient.check_serving().unwrap_err().to_string();
        assert!(error.starts_with("ingest.sync_wait_ms: "), "{error}");
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

    const FILE: &str = r#"
[ingest]
listen = "127.0.0.1:9999"
[queue]
redis_url = "redis://from-the-file:6379"
[dispatcher]
read_batch = 10
"#;

    fn load_in(jail: &mut figment::Jail, text: &str) -> anyhow::Result<PushgateConfig> {
        jail.create_file("pushgate.toml", text).unwrap();
        PushgateConfig::load(Path::new("pushgate.toml"))
    }

    #[test]
    fn the_environment_overrides_the_file() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("PUSHGATE_LISTEN", "127.0.0.1:7777");
            jail.set_env("PUSHGATE_DISPATCHER__READ_BATCH", "20");
            jail.set_env("PUSHGATE_DISPATCHER__RETRY__MAX_ATTEMPTS", "3");
            jail.set_env(
                "PUSHGATE_API_KEYS",
                "k-one-0123456789abc, k-two-0123456789abc",
            );
            jail.set_env("PUSHGATE_QUEUE_PREFIX", "staging");
            jail.set_env("REDIS_URL", "redis://plain:6379");
            // Not keys of the file: ignored here, not refused.
            jail.set_env("PUSHGATE_CONFIG", "pushgate.toml");
            jail.set_env("PUSHGATE_DISPATCHER_CONFIG", "/etc/elsewhere.toml");

            let config = load_in(jail, FILE).unwrap();
            assert_eq!(config.ingest.listen.to_string(), "127.0.0.1:7777");
            assert_eq!(config.dispatcher.read_batch, 20);
            assert_eq!(config.dispatcher.retry.max_attempts, 3);
            assert_eq!(
                config.ingest.auth.api_keys,
                ["k-one-0123456789abc", "k-two-0123456789abc"]
            );
            assert_eq!(config.ingest_config().auth.mode, AuthMode::Required);
            assert_eq!(config.queue.prefix, "staging");
            assert_eq!(
                config.queue.redis_url.as_deref(),
                Some("redis://plain:6379")
            );

            jail.set_env("PUSHGATE_REDIS_URL", "redis://pushgate:6379");
            jail.set_env("PUSHGATE_AUTH", "off");
            let config = load_in(jail, FILE).unwrap();
            assert_eq!(
                config.queue.redis_url.as_deref(),
                Some("redis://pushgate:6379")
            );
            assert_eq!(config.ingest_config().auth.mode, AuthMode::Off);
            Ok(())
        });
    }

    #[test]
    fn invalid_settings_are_refused_naming_the_key() {
        figment::Jail::expect_with(|jail| {
            let cases = [
                ("[queue]\nredis_ulr = \"x\"\n", "redis_ulr"),
                ("[ingest]\nlisten = \"not an address\"\n", "listen"),
                ("[dispatcher]\nread_batch = \"many\"\n", "read_batch"),
                (
                    "[[dispatcher.apps]]\nname = \"a\"\nservice = \"gcm\"\n",
                    "service",
                ),
                ("[queue]\nshards = 0\n", "queue.shards"),
            ];
            for (text, key) in cases {
                let error = format!("{:#}", load_in(jail, text).unwrap_err());
                assert!(error.contains(key), "{text}: {error}");
                assert!(error.contains("pushgate.toml"), "{text}: {error}");
            }

            jail.set_env("PUSHGATE_DISPATCHER__READ_BATCHES", "1");
            let error = format!("{:#}", load_in(jail, "").unwrap_err());
            assert!(error.contains("read_batches"), "{error}");
            jail.clear_env();
            jail.set_env("PUSHGATE_QUEUE_SHARDS", "many");
            let error = format!("{:#}", load_in(jail, "").unwrap_err());
            // Figment names environment keys in upper case.
            assert!(error.contains("QUEUE.SHARDS"), "{error}");
            jail.clear_env();
            jail.set_env("PUSHGATE_AUTH", "sometimes");
            let error = format!("{:#}", load_in(jail, "").unwrap_err());
            assert!(error.contains("PUSHGATE_AUTH"), "{error}");
            Ok(())
        });
    }

    /// A MongoosePush file, as it ships one, loads unchanged: its pools become apps (paths
    /// relative to the file), its `[general]` is accepted, and its `PUSH_*` variables add
    /// the pools of the services the file does not configure.
    #[test]
    fn a_mongoosepush_file_and_its_variables_give_its_apps() {
        figment::Jail::expect_with(|jail| {
            let file = r#"
[general.logging]
level = "info"
format = "json"

[general.https]
bind.addr = "0.0.0.0"
bind.port = 8443

[[service.apns]]
mode = "prod"
default_topic = "com.example.chat"
auth.token.key_id = "KEY"
auth.token.team_id = "TEAM"
auth.token.tokenfile = "priv/apns/token.p8"
"#;
            jail.set_env("PUSH_FCM_ENABLED", "true");
            jail.set_env("PUSH_FCM_APP_FILE", "/secrets/fcm.json");
            // Replaced by the file's APNs pool, as MongoosePush does.
            jail.set_env("PUSH_APNS_ENABLED", "true");
            jail.set_env("PUSH_APNS_PROD_KEY_ID", "ENVKEY");
            jail.set_env("PUSH_APNS_PROD_TEAM_ID", "ENVTEAM");
            jail.set_env("PUSH_APNS_DEV_KEY_ID", "ENVKEY");
            jail.set_env("PUSH_APNS_DEV_TEAM_ID", "ENVTEAM");

            let config = load_in(jail, file).unwrap();
            let apps: Vec<(&str, Service)> = config
                .dispatcher
                .apps
                .iter()
                .map(|app| (app.name.as_str(), app.service))
                .collect();
            assert_eq!(apps, [("apns_1", Service::Apns), ("default", Service::Fcm)]);
            assert_eq!(
                config.dispatcher.apps[0].credentials,
                dispatcher::Credentials::ApnsToken {
                    key_path: "priv/apns/token.p8".into(),
                    key_id: "KEY".to_owned(),
                    team_id: "TEAM".to_owned(),
                }
            );
            Ok(())
        });
    }

    #[test]
    fn without_redis_or_apps_the_environment_configures_nothing() {
        figment::Jail::expect_with(|jail| {
            assert_eq!(PushgateConfig::from_environment().unwrap(), None);
            jail.set_env("PUSHGATE_REDIS_URL", "redis://127.0.0.1:6379");
            let config = PushgateConfig::from_environment()
                .unwrap()
                .expect("configured");
            assert_eq!(
                config.queue.redis_url.as_deref(),
                Some("redis://127.0.0.1:6379")
            );
            Ok(())
        });
    }

    #[test]
    fn an_empty_file_is_all_defaults() {
        let config: PushgateConfig = toml::from_str("").unwrap();
        assert_eq!(config, PushgateConfig::default());
        assert_eq!(config.ingest_config().listen.to_string(), "127.0.0.1:8080");
    }
}

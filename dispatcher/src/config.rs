//! Dispatcher settings: the apps to deliver through, the consumer's pace and limits, and
//! the retry policy. Units are in the field names.

use serde::Deserialize;

use crate::apps::AppConfig;
use crate::retry::RetryPolicy;

/// Everything one dispatcher process needs besides its queue.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DispatcherConfig {
    /// The apps (MongoosePush's pools), in selection order.
    pub apps: Vec<AppConfig>,
    /// The consumer name in the group; unset means a unique name per process. Reuse a
    /// name only for the same process restarted (it takes over its own pending entries).
    pub consumer_name: Option<String>,
    /// Entries read per queue call.
    pub read_batch: usize,
    /// How long one read waits for new entries; also the longest delay before a
    /// shutdown request is noticed by the reader.
    pub read_block_ms: u64,
    /// Sends in flight at once per app; reading pauses while an app is at its limit.
    pub max_in_flight_per_app: usize,
    /// Entries pending on another consumer longer than this are taken over.
    pub claim_idle_ms: u64,
    /// How often to look for such entries.
    pub claim_interval_ms: u64,
    /// How often due retries are moved back into the streams.
    pub retry_poll_ms: u64,
    /// How long a token a provider declared dead is remembered.
    pub dead_token_ttl_secs: u64,
    /// On shutdown, how long in-flight sends may take to finish before they are abandoned
    /// (abandoned entries stay pending and are delivered by another dispatcher).
    pub shutdown_deadline_ms: u64,
    pub retry: RetryPolicy,
}

impl Default for DispatcherConfig {
    fn default() -> Self {
        DispatcherConfig {
            apps: Vec::new(),
            consumer_name: None,
            read_batch: 64,
            read_block_ms: 1000,
            max_in_flight_per_app: 512,
            claim_idle_ms: 60_000,
            claim_interval_ms: 5_000,
            retry_poll_ms: 250,
            dead_token_ttl_secs: 30 * 24 * 3600,
            shutdown_deadline_ms: 10_000,
            retry: RetryPolicy::default(),
        }
    }
}

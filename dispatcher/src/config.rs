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

/// A setting that would stop the dispatcher from working; it names the key at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {problem}")]
pub struct ConfigError {
    pub key: &'static str,
    pub problem: &'static str,
}

impl DispatcherConfig {
    /// Checks the values no dispatcher can run with (apps are checked when built).
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the first key at fault: a zero `read_batch` or
    /// `read_block_ms` would turn the reader into a busy loop, and a zero
    /// `retry.max_attempts` would dead-letter every job that needs a retry.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let at_least_one = |key, value: u64| {
            if value == 0 {
                Err(ConfigError {
                    key,
                    problem: "must be at least 1",
                })
            } else {
                Ok(())
            }
        };
        at_least_one("read_batch", self.read_batch as u64)?;
        at_least_one("read_block_ms", self.read_block_ms)?;
        at_least_one("max_in_flight_per_app", self.max_in_flight_per_app as u64)?;
        at_least_one("retry.max_attempts", u64::from(self.retry.max_attempts))?;
        at_least_one("retry.max_deliveries", self.retry.max_deliveries)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(DispatcherConfig::default().validate(), Ok(()));
    }

    #[test]
    fn zero_values_that_stall_or_spin_are_refused_by_name() {
        type Change = fn(&mut DispatcherConfig);
        let cases: [(&str, Change); 5] = [
            ("read_batch", |c| c.read_batch = 0),
            ("read_block_ms", |c| c.read_block_ms = 0),
            ("max_in_flight_per_app", |c| c.max_in_flight_per_app = 0),
            ("retry.max_attempts", |c| c.retry.max_attempts = 0),
            ("retry.max_deliveries", |c| c.retry.max_deliveries = 0),
        ];
        for (key, change) in cases {
            let mut config = DispatcherConfig::default();
            change(&mut config);
            let error = config.validate().unwrap_err();
            assert_eq!(error.key, key);
            assert_eq!(error.to_string(), format!("{key}: must be at least 1"));
        }
    }
}

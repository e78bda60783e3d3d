//! When to try a failed job again: exponential backoff with full jitter, a provider's
//! `Retry-After` honoured, and the limits past which a job is dead-lettered instead.

use std::time::Duration;

use rand::Rng;
use serde::Deserialize;

/// Retry limits and backoff shape.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryPolicy {
    /// Attempts after which a job is dead-lettered (the first attempt counts).
    pub max_attempts: u32,
    /// Age after which a job is dead-lettered rather than retried.
    pub max_age_secs: u64,
    /// Backoff ceiling for the first retry; it doubles per attempt.
    pub base_delay_ms: u64,
    /// No retry waits longer than this.
    pub max_delay_ms: u64,
    /// Deliveries of one stream entry after which it is dead-lettered as poison
    /// (it keeps crashing or stalling the consumers that take it).
    pub max_deliveries: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 10,
            max_age_secs: 24 * 3600,
            base_delay_ms: 1000,
            max_delay_ms: 10 * 60 * 1000,
            max_deliveries: 5,
        }
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempt + 1`, given that `attempt` attempts failed.
    ///
    /// Full jitter: a uniform draw in `[0, min(max, base * 2^(attempt-1))]`. A provider's
    /// `retry_after` is a floor, since retrying sooner only earns another refusal.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let exponent = attempt.saturating_sub(1).min(30);
        let ceiling = self
            .base_delay_ms
            .saturating_mul(1u64 << exponent)
            .min(self.max_delay_ms);
        let jittered = rand::rng().random_range(0..=ceiling);
        let floor = retry_after.map_or(0, |after| after.as_millis() as u64);
        Duration::from_millis(jittered.max(floor).min(self.max_delay_ms.max(floor)))
    }

    /// Why a job that has made `attempts` attempts and was accepted `age` ago must not be
    /// retried, if it must not.
    pub fn exhausted(&self, attempts: u32, age: Duration) -> Option<&'static str> {
        if attempts >= self.max_attempts {
            Some("max_attempts")
        } else if age >= Duration::from_secs(self.max_age_secs) {
            Some("max_age")
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_stay_within_the_growing_ceiling() {
        let policy = RetryPolicy::default();
        for attempt in 1..=12 {
            let ceiling = (1000u64 << (attempt - 1)).min(policy.max_delay_ms);
            for _ in 0..200 {
                let delay = policy.delay(attempt, None).as_millis() as u64;
                assert!(delay <= ceiling, "attempt {attempt}: {delay} > {ceiling}");
            }
        }
    }

    #[test]
    fn jitter_spreads_the_delays() {
        let policy = RetryPolicy::default();
        let delays: std::collections::HashSet<u128> =
            (0..50).map(|_| policy.delay(5, None).as_millis()).collect();
        assert!(delays.len() > 10, "full jitter gives many distinct delays");
    }

    #[test]
    fn retry_after_is_a_floor() {
        let policy = RetryPolicy::default();
        for _ in 0..100 {
            let delay = policy.delay(1, Some(Duration::from_secs(30)));
            assert!(delay >= Duration::from_secs(30));
        }
    }

    #[test]
    fn limits_name_the_reason() {
        let policy = RetryPolicy {
            max_attempts: 3,
            max_age_secs: 60,
            ..RetryPolicy::default()
        };
        assert_eq!(policy.exhausted(2, Duration::from_secs(1)), None);
        assert_eq!(
            policy.exhausted(3, Duration::from_secs(1)),
            Some("max_attempts")
        );
        assert_eq!(
            policy.exhausted(1, Duration::from_secs(61)),
            Some("max_age")
        );
    }
}

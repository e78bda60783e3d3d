//! Whether each app can reach its provider, learnt from its sends, for `/healthcheck`.
//!
//! An app passes until [`FAILURES_TO_FAIL`] sends in a row could not be delivered for a
//! reason on our side of the provider's answer: no connection, a timeout, a provider
//! error (5xx), or credentials it refuses. Any answer the provider gives about the
//! notification itself (delivered, dead token, rejected, throttled) shows the link works.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pushgate_shared::health::{Check, HealthSource};
use serde_json::json;

use crate::apps::{App, Apps};
use crate::outcome::{Attempt, Outcome};

/// Sends in a row that must fail before an app's check fails.
pub const FAILURES_TO_FAIL: u64 = 3;

/// What an app's recent sends say about its link to the provider.
#[derive(Debug, Default)]
pub(crate) struct LinkHealth {
    failures_in_a_row: AtomicU64,
    /// When a send last reached the provider (ms since the epoch), 0 for never.
    last_reached_ms: AtomicU64,
}

impl LinkHealth {
    pub(crate) fn record(&self, attempt: &Attempt) {
        match attempt.class {
            Outcome::ProviderDown | Outcome::OurCredentials => {
                self.failures_in_a_row.fetch_add(1, Ordering::Relaxed);
            }
            _ => {
                self.failures_in_a_row.store(0, Ordering::Relaxed);
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |since| since.as_millis() as u64);
                self.last_reached_ms.store(now, Ordering::Relaxed);
            }
        }
    }

    fn check(&self, app: &App) -> Check {
        let failures = self.failures_in_a_row.load(Ordering::Relaxed);
        let last_reached = match self.last_reached_ms.load(Ordering::Relaxed) {
            0 => serde_json::Value::Null,
            ms => {
                let at = UNIX_EPOCH + Duration::from_millis(ms);
                json!(humantime::format_rfc3339_millis(at).to_string())
            }
        };
        Check {
            name: format!("pool:{}", app.name()),
            passed: failures < FAILURES_TO_FAIL,
            output: json!({
                "service": app.service().as_str(),
                "mode": app.mode().as_str(),
                "connections": app.connections(),
                "failures_in_a_row": failures,
                "last_reached_provider": last_reached,
            }),
        }
    }
}

impl HealthSource for Apps {
    fn checks(&self) -> Vec<Check> {
        self.iter().map(|app| app.link.check(app)).collect()
    }
}

//! One function per job outcome: each bumps the counter and writes the log line together,
//! so logs and metrics never disagree (repeated warnings are thinned, see [`THROTTLE`],
//! and say how many lines they stand for). Labels stay low-cardinality (service,
//! outcome, reason).

use std::sync::LazyLock;
use std::time::Duration;

use pushgate_shared::Service;
use pushgate_shared::logging::LogThrottle;

use crate::outcome::Attempt;

/// Repeated warnings and errors: at most five lines of one kind (event, service and
/// reason) per ten seconds; each line says how many of its kind were held back before it.
static THROTTLE: LazyLock<LogThrottle> =
    LazyLock::new(|| LogThrottle::new(Duration::from_secs(10), 5));

fn admit(event: &str, service: Service, reason: &str) -> Option<u32> {
    THROTTLE.admit(&format!("{event}:{}:{reason}", service.as_str()))
}

/// The last six characters of a device token, enough to find it, too little to use it.
pub fn masked(token: &str) -> String {
    let tail: String = token
        .chars()
        .rev()
        .take(6)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("…{tail}")
}

/// The provider answered; `elapsed` is the send time including retries inside the app.
pub fn attempt_finished(service: Service, attempt: &Attempt, elapsed: Duration) {
    let (category, reason) = attempt.error_labels();
    let status = if attempt.error.is_none() {
        "success"
    } else {
        "error"
    };
    metrics::histogram!(
        pushgate_shared::metrics::SEND_TIME_HISTOGRAM,
        "error_category" => category.to_owned(),
        "error_reason" => reason.to_owned(),
        "service" => service.as_str(),
        "status" => status,
    )
    .record(elapsed.as_micros() as f64);
    metrics::histogram!("pushgate_provider_latency_seconds", "service" => service.as_str())
        .record(elapsed.as_secs_f64());
    metrics::counter!(
        "pushgate_jobs_finished_total",
        "service" => service.as_str(),
        "outcome" => attempt.class.as_str(),
    )
    .increment(1);
}

pub fn delivered(service: Service, token: &str) {
    tracing::debug!(service = service.as_str(), token = %masked(token), "delivered");
}

pub fn dead_token(service: Service, token: &str, reason: &str) {
    metrics::counter!("pushgate_dead_tokens_total", "service" => service.as_str()).increment(1);
    if let Some(suppressed) = admit("dead_token", service, reason) {
        tracing::warn!(service = service.as_str(), token = %masked(token), reason, suppressed, "device token is dead");
    }
}

pub fn dead_device_forgotten(service: Service, token: &str) {
    metrics::counter!("pushgate_registry_devices_removed_total", "service" => service.as_str())
        .increment(1);
    tracing::debug!(service = service.as_str(), token = %masked(token), "dead device removed from the registry");
}

pub fn rejected(service: Service, token: &str, reason: &str) {
    if let Some(suppressed) = admit("rejected", service, reason) {
        tracing::warn!(service = service.as_str(), token = %masked(token), reason, suppressed, "provider rejected the notification");
    }
}

pub fn retry_scheduled(service: Service, attempt: u32, delay: Duration, reason: &str) {
    metrics::counter!("pushgate_retries_total", "service" => service.as_str()).increment(1);
    if let Some(suppressed) = admit("retry", service, reason) {
        tracing::warn!(
            service = service.as_str(),
            attempt,
            delay_ms = delay.as_millis() as u64,
            reason,
            suppressed,
            "delivery failed, retry scheduled"
        );
    }
}

pub fn dead_lettered(service: Service, reason: &str, error: &str) {
    metrics::counter!(
        "pushgate_dead_letters_total",
        "service" => service.as_str(),
        "reason" => reason.to_owned(),
    )
    .increment(1);
    if let Some(suppressed) = admit("dead_letter", service, reason) {
        tracing::error!(
            service = service.as_str(),
            reason,
            error,
            suppressed,
            "job dead-lettered"
        );
    }
}

pub fn expired(service: Service) {
    metrics::counter!("pushgate_jobs_expired_total", "service" => service.as_str()).increment(1);
    tracing::debug!(
        service = service.as_str(),
        "job expired before delivery, dropped"
    );
}

/// A queue step settling an entry failed and is tried again after a pause.
pub fn queue_step_retried(operation: &'static str, tries: u32, error: &dyn std::fmt::Display) {
    metrics::counter!("pushgate_queue_retries_total", "operation" => operation).increment(1);
    if let Some(suppressed) = THROTTLE.admit(&format!("queue_retry:{operation}")) {
        tracing::warn!(operation, tries, error = %error, suppressed, "queue operation failed; trying again");
    }
}

pub fn queue_failed(operation: &'static str, error: &dyn std::fmt::Display) {
    metrics::counter!("pushgate_queue_errors_total", "operation" => operation).increment(1);
    if let Some(suppressed) = THROTTLE.admit(&format!("queue_failed:{operation}")) {
        tracing::error!(operation, error = %error, suppressed, "queue operation failed; the entry stays pending");
    }
}

/// One send in flight on `app`, counted in `pushgate_sends_in_flight` until dropped.
pub struct InFlight(String);

impl InFlight {
    pub fn start(app: &str) -> Self {
        metrics::gauge!("pushgate_sends_in_flight", "app" => app.to_owned()).increment(1.0);
        InFlight(app.to_owned())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        metrics::gauge!("pushgate_sends_in_flight", "app" => self.0.clone()).decrement(1.0);
    }
}

/// A provider credential (an FCM access token, an APNs JWT) was obtained or renewed.
pub fn credential_renewed(service: Service) {
    metrics::counter!("pushgate_credential_renewals_total", "service" => service.as_str())
        .increment(1);
}

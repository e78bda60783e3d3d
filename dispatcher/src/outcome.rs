//! What one delivery attempt came to: the outcome class that tells the dispatcher what to
//! do next, and the MongoosePush-style error that tells the API caller what happened.

use std::time::{Duration, SystemTime};

use pushgate_shared::api::{Category, PushError};

/// The shortest wait a provider's `Retry-After` can ask for; shorter values are raised to it.
pub const MIN_RETRY_AFTER: Duration = Duration::from_secs(1);

/// The longest wait a provider's `Retry-After` can ask for; longer values are cut to it.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// How many characters of a provider answer an [`Attempt`] keeps for logs and dead letters.
pub const ANSWER_KEEP_CHARS: usize = 512;

/// The outcome class of an attempt: what the dispatcher does with the job (DESIGN.md §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The provider accepted the notification: acknowledge.
    Delivered,
    /// The device token is dead for good: acknowledge and remember the token.
    DeadToken,
    /// The provider refused this notification; sending it again cannot help.
    Rejected,
    /// The provider asks us to slow down: retry after `retry_after` or a backoff.
    Throttled,
    /// The provider or the way to it failed: retry with backoff and jitter.
    ProviderDown,
    /// Our credentials were refused even after one renewal and one retry: alert.
    OurCredentials,
    /// The app's configuration is wrong (topic, path, no matching app): dead letter.
    Configuration,
}

impl Outcome {
    /// The name used in logs and metric labels, e.g. `dead_token`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Delivered => "delivered",
            Outcome::DeadToken => "dead_token",
            Outcome::Rejected => "rejected",
            Outcome::Throttled => "throttled",
            Outcome::ProviderDown => "provider_down",
            Outcome::OurCredentials => "our_credentials",
            Outcome::Configuration => "configuration",
        }
    }

    /// True when sending the same notification again later may succeed.
    pub fn is_retryable(self) -> bool {
        matches!(self, Outcome::Throttled | Outcome::ProviderDown)
    }
}

/// The result of one delivery attempt, as [`crate::apps::App::send`] returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub class: Outcome,
    /// MongoosePush's `{category, reason}` for the answer; `None` when delivered.
    pub error: Option<PushError>,
    /// How long the provider asked us to wait, clamped to
    /// [`MIN_RETRY_AFTER`]..=[`MAX_RETRY_AFTER`].
    pub retry_after: Option<Duration>,
    /// `"<status> <body>"` of the provider's answer (or a transport error), cut to
    /// [`ANSWER_KEEP_CHARS`], for logs and dead letters; never holds a device token.
    pub answer: Option<String>,
}

impl Attempt {
    /// A delivered notification.
    pub fn delivered() -> Self {
        Attempt {
            class: Outcome::Delivered,
            error: None,
            retry_after: None,
            answer: None,
        }
    }

    /// A failed attempt of class `class`, described to the API caller as `error`.
    pub fn failed(class: Outcome, error: PushError) -> Self {
        Attempt {
            class,
            error: Some(error),
            retry_after: None,
            answer: None,
        }
    }

    /// The attempt for a notification no configured app can carry: MongoosePush's
    /// `{generic, no_matching_pool}` (400 in v3), never sent to a provider.
    pub fn no_matching_pool() -> Self {
        Attempt::failed(
            Outcome::Configuration,
            PushError::generic("no_matching_pool"),
        )
    }

    /// The attempt for a request that never got an answer from the provider.
    pub fn transport(failure: TransportFailure, detail: impl std::fmt::Display) -> Self {
        let mut attempt = Attempt::failed(Outcome::ProviderDown, failure.push_error());
        attempt.answer = Some(truncate(&format!("no answer: {detail}")));
        attempt
    }

    /// The attempt for a reqwest `error` that left us without an answer; the error text
    /// (with its causes, without the URL and so without the device token) is kept.
    pub fn transport_error(error: reqwest::Error) -> Self {
        let failure = TransportFailure::of(&error);
        let error = error.without_url();
        let mut detail = error.to_string();
        let mut source = std::error::Error::source(&error);
        while let Some(cause) = source {
            detail.push_str(": ");
            detail.push_str(&cause.to_string());
            source = cause.source();
        }
        Attempt::transport(failure, detail)
    }

    /// Keeps the provider's answer (`status` and `body`) for logs and dead letters.
    pub fn with_answer(mut self, status: u16, body: &[u8]) -> Self {
        let body = String::from_utf8_lossy(body);
        self.answer = Some(truncate(format!("{status} {}", body.trim()).trim_end()));
        self
    }

    /// The category and reason of the error, as strings for logs and metric labels;
    /// two empty strings when delivered (MongoosePush's labels on success).
    pub fn error_labels(&self) -> (&'static str, &str) {
        match &self.error {
            Some(error) => (error.category.as_str(), error.reason.as_str()),
            None => ("", ""),
        }
    }
}

/// Why a request got no answer from the provider; each is retried as [`Outcome::ProviderDown`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportFailure {
    /// No connection could be made (refused, DNS, TLS handshake).
    Connect,
    /// The request took longer than the app's `request_timeout_ms`.
    Timeout,
    /// The connection broke after the request was sent, before a full answer arrived.
    Lost,
}

impl TransportFailure {
    /// Sorts a reqwest error into one of the three failures.
    pub fn of(error: &reqwest::Error) -> Self {
        if error.is_timeout() {
            TransportFailure::Timeout
        } else if error.is_connect() {
            TransportFailure::Connect
        } else {
            TransportFailure::Lost
        }
    }

    /// MongoosePush's error for the failure: `unable_to_connect` and `connection_lost`
    /// (503 in v3) or `request_timeout` (500 in v3), all in the `generic` category.
    pub fn push_error(self) -> PushError {
        PushError::new(
            Category::Generic,
            match self {
                TransportFailure::Connect => "unable_to_connect",
                TransportFailure::Timeout => "request_timeout",
                TransportFailure::Lost => "connection_lost",
            },
        )
    }
}

/// Reads a `Retry-After` value: whole seconds or an HTTP date, as seen at `now`.
///
/// The wait is clamped to [`MIN_RETRY_AFTER`]..=[`MAX_RETRY_AFTER`], so a date in the
/// past gives one second and a provider asking for a day gets an hour; a value that is
/// neither form gives `None`.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    let wait = match value.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => {
            let at = httpdate::parse_http_date(value).ok()?;
            at.duration_since(now).unwrap_or(Duration::ZERO)
        }
    };
    Some(wait.clamp(MIN_RETRY_AFTER, MAX_RETRY_AFTER))
}

/// The `Retry-After` header of an answer, read with [`parse_retry_after`].
pub fn retry_after_header(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    parse_retry_after(value, SystemTime::now())
}

fn truncate(text: &str) -> String {
    match text.char_indices().nth(ANSWER_KEEP_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates_and_clamps() {
        let now = httpdate::parse_http_date("Wed, 21 Oct 2026 07:28:00 GMT").unwrap();
        let cases = [
            ("30", Some(30)),
            (" 120 ", Some(120)),
            ("0", Some(1)),
            ("86400", Some(3600)),
            ("Wed, 21 Oct 2026 07:29:00 GMT", Some(60)),
            ("Wed, 21 Oct 2026 07:00:00 GMT", Some(1)),
            ("Thu, 22 Oct 2026 07:28:00 GMT", Some(3600)),
            ("-5", None),
            ("soon", None),
            ("", None),
        ];
        for (value, expected) in cases {
            let got = parse_retry_after(value, now).map(|d| d.as_secs());
            assert_eq!(got, expected, "Retry-After {value:?}");
        }
    }

    #[test]
    fn answers_are_cut_without_splitting_characters() {
        let body = "é".repeat(2 * ANSWER_KEEP_CHARS);
        let attempt = Attempt::failed(Outcome::Rejected, PushError::generic("x"))
            .with_answer(400, body.as_bytes());
        let answer = attempt.answer.unwrap();
        assert!(answer.starts_with("400 é"));
        assert!(answer.ends_with('…'));
        assert_eq!(answer.chars().count(), ANSWER_KEEP_CHARS + 1);
    }

    #[test]
    fn short_answers_are_kept_whole() {
        let attempt = Attempt::delivered().with_answer(200, b"{\"name\":\"x\"}\n");
        assert_eq!(attempt.answer.as_deref(), Some("200 {\"name\":\"x\"}"));
        assert_eq!(
            Attempt::delivered().with_answer(200, b"").answer.as_deref(),
            Some("200")
        );
    }

    #[test]
    fn transport_failures_keep_mongoosepush_reasons() {
        let cases = [
            (TransportFailure::Connect, "unable_to_connect"),
            (TransportFailure::Timeout, "request_timeout"),
            (TransportFailure::Lost, "connection_lost"),
        ];
        for (failure, reason) in cases {
            let attempt = Attempt::transport(failure, "boom");
            assert_eq!(attempt.class, Outcome::ProviderDown);
            assert_eq!(attempt.error, Some(PushError::generic(reason)));
            assert_eq!(attempt.answer.as_deref(), Some("no answer: boom"));
        }
    }

    #[test]
    fn no_matching_pool_is_a_configuration_problem() {
        let attempt = Attempt::no_matching_pool();
        assert_eq!(attempt.class, Outcome::Configuration);
        assert_eq!(attempt.error_labels(), ("generic", "no_matching_pool"));
        assert_eq!(Attempt::delivered().error_labels(), ("", ""));
    }

    #[test]
    fn only_throttled_and_provider_down_are_retried() {
        let retryable: Vec<_> = [
            Outcome::Delivered,
            Outcome::DeadToken,
            Outcome::Rejected,
            Outcome::Throttled,
            Outcome::ProviderDown,
            Outcome::OurCredentials,
            Outcome::Configuration,
        ]
        .into_iter()
        .filter(|o| o.is_retryable())
        .collect();
        assert_eq!(retryable, [Outcome::Throttled, Outcome::ProviderDown]);
    }
}

//! How every pushgate binary logs: text for people, JSON for log pipelines, one format
//! choice and one level filter read the same way everywhere.
//!
//! - Format: `PUSHGATE_LOG_FORMAT` (`text` or `json`), else Lambda's
//!   `AWS_LAMBDA_LOG_FORMAT` (`Text` or `JSON`), else text.
//! - Level: `RUST_LOG` (an `EnvFilter`), else Lambda's `AWS_LAMBDA_LOG_LEVEL` (`TRACE` ..
//!   `ERROR`, `FATAL` as `error`), else the binary's default.
//!
//! What is logged is decided where it is logged: device tokens only masked, secrets never.

use std::collections::HashMap;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// The log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// The settings [`init`] reads from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSettings {
    pub format: LogFormat,
    /// An `EnvFilter` directive such as `info` or `info,dispatcher=debug`.
    pub filter: String,
}

impl LogSettings {
    /// Reads the settings through `lookup`; `default_filter` applies when neither
    /// `RUST_LOG` nor `AWS_LAMBDA_LOG_LEVEL` is set.
    ///
    /// # Errors
    ///
    /// The variable and the value that cannot be used.
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
        default_filter: &str,
    ) -> Result<Self, String> {
        let format = match lookup("PUSHGATE_LOG_FORMAT") {
            Some(value) => match value.trim().to_ascii_lowercase().as_str() {
                "text" => LogFormat::Text,
                "json" => LogFormat::Json,
                _ => {
                    return Err(format!(
                        "PUSHGATE_LOG_FORMAT must be `text` or `json`, not {value:?}"
                    ));
                }
            },
            None => match lookup("AWS_LAMBDA_LOG_FORMAT").as_deref().map(str::trim) {
                Some(json) if json.eq_ignore_ascii_case("json") => LogFormat::Json,
                _ => LogFormat::Text,
            },
        };
        let filter = match (lookup("RUST_LOG"), lookup("AWS_LAMBDA_LOG_LEVEL")) {
            (Some(filter), _) if !filter.trim().is_empty() => filter,
            (_, Some(level)) if !level.trim().is_empty() => {
                match level.trim().to_ascii_lowercase().as_str() {
                    "fatal" => "error".to_owned(),
                    level => level.to_owned(),
                }
            }
            _ => default_filter.to_owned(),
        };
        Ok(LogSettings { format, filter })
    }
}

/// Installs the global subscriber writing to standard error, with the settings of the
/// environment. An unusable setting is reported on standard error and the defaults
/// (text, `default_filter`) are used, so a typo never silences a gateway.
pub fn init(default_filter: &str) {
    let settings = LogSettings::from_lookup(|name| std::env::var(name).ok(), default_filter)
        .unwrap_or_else(|problem| {
            eprintln!("pushgate: {problem}; logging as text");
            LogSettings {
                format: LogFormat::Text,
                filter: default_filter.to_owned(),
            }
        });
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    init_with(&settings, std::io::stderr, ansi);
}

/// Installs the global subscriber with `settings`, writing to `writer` (tests capture the
/// lines this way). A subscriber installed before is left in place.
pub fn init_with<W>(settings: &LogSettings, writer: W, ansi: bool)
where
    W: for<'writer> MakeWriter<'writer> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_new(&settings.filter).unwrap_or_else(|error| {
        eprintln!(
            "pushgate: log filter {:?} is not valid ({error}); using `info`",
            settings.filter
        );
        EnvFilter::new("info")
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    let _ = match settings.format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
        LogFormat::Text => builder.with_ansi(ansi).try_init(),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Result<LogSettings, String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        LogSettings::from_lookup(
            |name| {
                pairs
                    .iter()
                    .find(|(key, _)| key == name)
                    .map(|(_, v)| v.clone())
            },
            "info",
        )
    }

    #[test]
    fn defaults_are_text_at_the_binary_s_level() {
        let read = settings(&[]).unwrap();
        assert_eq!(read.format, LogFormat::Text);
        assert_eq!(read.filter, "info");
    }

    #[test]
    fn lambda_s_advanced_logging_controls_are_honoured() {
        let read = settings(&[
            ("AWS_LAMBDA_LOG_FORMAT", "JSON"),
            ("AWS_LAMBDA_LOG_LEVEL", "WARN"),
        ])
        .unwrap();
        assert_eq!(
            read,
            LogSettings {
                format: LogFormat::Json,
                filter: "warn".to_owned()
            }
        );
        let fatal = settings(&[("AWS_LAMBDA_LOG_LEVEL", "FATAL")]).unwrap();
        assert_eq!(fatal.filter, "error");
        let text = settings(&[("AWS_LAMBDA_LOG_FORMAT", "Text")]).unwrap();
        assert_eq!(text.format, LogFormat::Text);
    }

    #[test]
    fn pushgate_s_own_variables_win() {
        let read = settings(&[
            ("AWS_LAMBDA_LOG_FORMAT", "JSON"),
            ("AWS_LAMBDA_LOG_LEVEL", "WARN"),
            ("PUSHGATE_LOG_FORMAT", "text"),
            ("RUST_LOG", "debug,h2=info"),
        ])
        .unwrap();
        assert_eq!(
            read,
            LogSettings {
                format: LogFormat::Text,
                filter: "debug,h2=info".to_owned()
            }
        );
    }

    #[test]
    fn an_unknown_format_is_refused_by_name() {
        let error = settings(&[("PUSHGATE_LOG_FORMAT", "yaml")]).unwrap_err();
        assert!(
            error.contains("PUSHGATE_LOG_FORMAT") && error.contains("yaml"),
            "{error}"
        );
    }
}

/// An error and its causes on one line, `outer: cause: root`, leaving out a cause whose
/// text the line already holds (errors that print their source and also return it).
pub fn error_report(error: &(dyn std::error::Error + 'static)) -> String {
    let mut line = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        let text = inner.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        cause = inner.source();
    }
    line
}

#[cfg(test)]
mod report_tests {
    use super::error_report;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot read `x`: {0}")]
    struct Echoing(#[source] std::io::Error);

    #[derive(Debug, thiserror::Error)]
    #[error("the app cannot be built")]
    struct Quiet(#[source] Echoing);

    #[test]
    fn causes_already_told_are_not_repeated() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let error = Quiet(Echoing(io));
        assert_eq!(
            error_report(&error),
            "the app cannot be built: cannot read `x`: no such file"
        );
    }
}

/// Lets at most `burst` log lines of one kind through per `window`, so an outage that
/// fails every job writes a few lines and a count instead of one line per job. Metrics
/// still count every event; only the lines are thinned.
pub struct LogThrottle {
    window: std::time::Duration,
    burst: u32,
    kinds: std::sync::Mutex<HashMap<String, Window>>,
}

struct Window {
    started: tokio::time::Instant,
    seen: u32,
}

/// The most kinds a throttle tracks; past it, it starts over (kinds are reasons and
/// operations, so this is never reached in practice).
const MAX_KINDS: usize = 1024;

impl LogThrottle {
    pub fn new(window: std::time::Duration, burst: u32) -> Self {
        LogThrottle {
            window,
            burst,
            kinds: std::sync::Mutex::default(),
        }
    }

    /// `Some(suppressed)` when a line of `kind` may be written now, with how many lines
    /// of that kind were held back since the last one written; `None` to hold it back.
    pub fn admit(&self, kind: &str) -> Option<u32> {
        let now = tokio::time::Instant::now();
        let mut kinds = self
            .kinds
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if kinds.len() >= MAX_KINDS && !kinds.contains_key(kind) {
            kinds.clear();
        }
        let window = kinds.entry(kind.to_owned()).or_insert(Window {
            started: now,
            seen: 0,
        });
        if now.duration_since(window.started) >= self.window {
            let suppressed = window.seen.saturating_sub(self.burst);
            *window = Window {
                started: now,
                seen: 1,
            };
            return Some(suppressed);
        }
        window.seen = window.seen.saturating_add(1);
        (window.seen <= self.burst).then_some(0)
    }
}

#[cfg(test)]
mod throttle_tests {
    use std::time::Duration;

    use super::LogThrottle;

    #[tokio::test(start_paused = true)]
    async fn a_burst_passes_then_the_rest_is_counted_until_the_window_ends() {
        let throttle = LogThrottle::new(Duration::from_secs(10), 2);
        let first: Vec<Option<u32>> = (0..5).map(|_| throttle.admit("dead_token")).collect();
        assert_eq!(first, [Some(0), Some(0), None, None, None]);
        assert_eq!(throttle.admit("rejected"), Some(0), "kinds are apart");

        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(
            throttle.admit("dead_token"),
            Some(3),
            "three were held back"
        );
        assert_eq!(throttle.admit("dead_token"), Some(0));
        assert_eq!(throttle.admit("dead_token"), None);
    }
}

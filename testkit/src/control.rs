//! What both mocks share: the programmable error table, the recorded activity, the outage
//! switch and the added latency, reachable from Rust ([`Control`]) and over HTTP through
//! MongoosePush's `/mock/*` control API plus a few extensions (routes in `control_http`).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::Notify;

/// Default bound of the activity list, so long benchmarks do not grow memory without end.
pub const DEFAULT_ACTIVITY_LIMIT: usize = 100_000;

/// One entry of the error table: sends to `device_token` are answered with an error.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorToken {
    /// The device token (FCM: the message's `token`, `topic` or `condition`).
    pub device_token: String,
    /// The HTTP status to answer with (an invalid code is answered as 500).
    pub status: u16,
    /// The provider's reason: APNs `reason`, FCM `errorCode` (or `error.status`).
    pub reason: String,
    /// APNs: the `timestamp` to put in the body (410 answers get the current time if unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<u64>,
    /// FCM: whether the answer carries an `FcmError` detail; unset means the mock's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<bool>,
    /// Adds a `Retry-After` header with this many seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_secs: Option<u64>,
    /// Answer only this many sends, then forget the entry; unset means until reset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub times: Option<u32>,
}

impl ErrorToken {
    /// An entry answering every send to `device_token` with `status` and `reason`.
    pub fn new(device_token: impl Into<String>, status: u16, reason: impl Into<String>) -> Self {
        Self {
            device_token: device_token.into(),
            status,
            reason: reason.into(),
            timestamp: None,
            details: None,
            retry_after_secs: None,
            times: None,
        }
    }

    /// Sets whether an FCM answer carries the `FcmError` detail.
    pub fn with_details(mut self, details: bool) -> Self {
        self.details = Some(details);
        self
    }

    /// Adds a `Retry-After` header to the answer.
    pub fn with_retry_after_secs(mut self, secs: u64) -> Self {
        self.retry_after_secs = Some(secs);
        self
    }

    /// Limits the entry to the next `times` sends.
    pub fn times(mut self, times: u32) -> Self {
        self.times = Some(times);
        self
    }

    /// Sets the APNs `timestamp` of the answer.
    pub fn with_timestamp(mut self, timestamp: u64) -> Self {
        self.timestamp = Some(timestamp);
        self
    }

    /// The status to answer with, 500 when the stored code is not a valid HTTP status.
    pub(crate) fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

/// One send the mock received and how it answered.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Activity {
    /// The device token (FCM: the message target; empty when the message had none).
    pub device_token: String,
    /// The request headers, names in lowercase; repeated headers joined with `, `.
    pub request_headers: BTreeMap<String, String>,
    /// The request body parsed as JSON, or the raw text as a JSON string if it is not JSON.
    pub request_data: Value,
    /// The status answered.
    pub status: u16,
    /// The body answered (`null` when empty).
    pub response_data: Value,
    /// The request path.
    pub path: String,
    /// `HTTP/1.1` or `HTTP/2.0`.
    pub http_version: String,
    /// Whether the connection presented a verified TLS client certificate.
    #[serde(default)]
    pub client_certificate: bool,
}

/// When a send to one device token arrived, as kept by [`Control::keep_arrivals`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Arrival {
    /// The device token (FCM: the message target).
    pub device_token: String,
    /// When the mock read the request's head, before any added latency.
    pub at: Instant,
}

/// The outage switch: while set, every send is answered with `status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outage {
    /// The HTTP status of every send (an invalid code is answered as 503).
    pub status: u16,
    /// Adds a `Retry-After` header with this many seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_secs: Option<u64>,
}

impl Outage {
    /// An outage answering `status` with no `Retry-After`.
    pub fn new(status: u16) -> Self {
        Self {
            status,
            retry_after_secs: None,
        }
    }

    /// The status to answer with, 503 when the stored code is not a valid HTTP status.
    pub(crate) fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE)
    }
}

/// A bad control request, answered 400 with `{"error": "<message>"}`.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The body is not the JSON the route expects (for example a missing key).
    #[error("invalid body: {0}")]
    InvalidBody(String),
    /// A `status` is not an HTTP status code.
    #[error("{0} is not an HTTP status code")]
    InvalidStatus(u16),
}

impl IntoResponse for ControlError {
    fn into_response(self) -> Response {
        let body = json!({ "error": self.to_string() });
        (StatusCode::BAD_REQUEST, axum::Json(body)).into_response()
    }
}

/// The conditions a send is answered under, read once at its start.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Conditions {
    pub latency: Duration,
    pub outage: Option<Outage>,
}

#[derive(Default)]
struct Inner {
    error_tokens: HashMap<String, ErrorToken>,
    activity: VecDeque<Activity>,
    /// When each send arrived, while an arrival log is kept (`None` otherwise).
    arrivals: Option<Vec<Arrival>>,
    requests: u64,
    outage: Option<Outage>,
    latency: Duration,
}

/// The shared control state of one mock.
pub struct Control {
    inner: Mutex<Inner>,
    activity_limit: usize,
    recorded: Notify,
}

impl Control {
    /// Empty state keeping at most `activity_limit` activity entries (0 keeps none).
    pub fn new(activity_limit: usize) -> Self {
        Self {
            inner: Mutex::default(),
            activity_limit,
            recorded: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding this lock leaves plain data behind; keep serving it.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Adds entries to the error table, replacing any entry for the same device token.
    pub fn set_error_tokens(&self, tokens: impl IntoIterator<Item = ErrorToken>) {
        let mut inner = self.lock();
        for token in tokens {
            inner.error_tokens.insert(token.device_token.clone(), token);
        }
    }

    /// The error table, sorted by device token.
    pub fn error_tokens(&self) -> Vec<ErrorToken> {
        let mut tokens: Vec<_> = self.lock().error_tokens.values().cloned().collect();
        tokens.sort_by(|a, b| a.device_token.cmp(&b.device_token));
        tokens
    }

    /// The recorded sends, newest first.
    pub fn activity(&self) -> Vec<Activity> {
        self.lock().activity.iter().cloned().collect()
    }

    /// How many sends arrived since start or the last reset (not bounded like the activity).
    pub fn request_count(&self) -> u64 {
        self.lock().requests
    }

    /// Waits until at least `count` sends arrived; false if `timeout` passed first.
    pub async fn wait_for_requests(&self, count: u64, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.recorded.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.request_count() >= count {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.request_count() >= count;
            }
        }
    }

    /// Starts keeping an arrival log (token and time of every send, much cheaper than the
    /// activity), dropping the one kept so far.
    pub fn keep_arrivals(&self) {
        self.lock().arrivals = Some(Vec::new());
    }

    /// The arrivals logged since [`Control::keep_arrivals`] or the last take, oldest first;
    /// the log goes on.
    pub fn take_arrivals(&self) -> Vec<Arrival> {
        self.lock()
            .arrivals
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// Stops the arrival log and returns what it held since the last take.
    pub fn end_arrivals(&self) -> Vec<Arrival> {
        self.lock().arrivals.take().unwrap_or_default()
    }

    /// Clears the error table, the activity and the request count.
    pub fn reset(&self) {
        let mut inner = self.lock();
        inner.error_tokens.clear();
        inner.activity.clear();
        if let Some(arrivals) = &mut inner.arrivals {
            arrivals.clear();
        }
        inner.requests = 0;
    }

    /// Starts (`Some`) or ends (`None`) an outage.
    pub fn set_outage(&self, outage: Option<Outage>) {
        self.lock().outage = outage;
    }

    /// The current outage, if any.
    pub fn outage(&self) -> Option<Outage> {
        self.lock().outage
    }

    /// Delays every send answer by `latency` (zero for none).
    pub fn set_latency(&self, latency: Duration) {
        self.lock().latency = latency;
    }

    /// The added latency.
    pub fn latency(&self) -> Duration {
        self.lock().latency
    }

    pub(crate) fn conditions(&self) -> Conditions {
        let inner = self.lock();
        Conditions {
            latency: inner.latency,
            outage: inner.outage,
        }
    }

    /// The error-table entry for `target`, counting one use of a limited entry.
    pub(crate) fn take_error(&self, target: &str) -> Option<ErrorToken> {
        let mut inner = self.lock();
        let entry = inner.error_tokens.get_mut(target)?;
        let found = entry.clone();
        match entry.times {
            Some(left) if left <= 1 => {
                inner.error_tokens.remove(target);
            }
            Some(left) => entry.times = Some(left - 1),
            None => {}
        }
        Some(found)
    }

    /// Counts one send to `device_token` that arrived at `arrived`; `activity` is called
    /// only when the activity is kept, so a mock with a zero limit stays cheap under load.
    pub(crate) fn record(
        &self,
        arrived: Instant,
        device_token: String,
        activity: impl FnOnce(String) -> Activity,
    ) {
        let activity = (self.activity_limit > 0).then(|| activity(device_token.clone()));
        {
            let mut inner = self.lock();
            inner.requests += 1;
            if let Some(arrivals) = &mut inner.arrivals {
                arrivals.push(Arrival {
                    device_token,
                    at: arrived,
                });
            }
            if let Some(activity) = activity {
                if inner.activity.len() >= self.activity_limit {
                    inner.activity.pop_back();
                }
                inner.activity.push_front(activity);
            }
        }
        self.recorded.notify_waiters();
    }
}

/// Headers as recorded in [`Activity::request_headers`].
pub(crate) fn header_map(headers: &HeaderMap) -> BTreeMap<String, String> {
    let mut map = BTreeMap::<String, String>::new();
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes());
        map.entry(name.as_str().to_owned())
            .and_modify(|joined| {
                joined.push_str(", ");
                joined.push_str(&value);
            })
            .or_insert_with(|| value.into_owned());
    }
    map
}

/// A body as recorded in [`Activity::request_data`].
pub(crate) fn body_value(body: &[u8]) -> Value {
    if body.is_empty() {
        return Value::Null;
    }
    serde_json::from_slice(body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}

//! The job envelope: one accepted notification as it travels through the queue.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::notification::Notification;

/// The envelope format written by this version; readers reject formats they do not know.
pub const JOB_FORMAT: u32 = 1;

/// A job's identity, unique per accepted request; appends and deliveries dedupe on it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(pub String);

impl JobId {
    /// A fresh random id.
    pub fn new() -> Self {
        JobId(uuid::Uuid::new_v4().simple().to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for JobId {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Display for JobId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The MongoosePush API version a request arrived through; it decides the answer's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApiVersion {
    V1,
    V2,
    V3,
}

impl ApiVersion {
    pub fn as_str(self) -> &'static str {
        match self {
            ApiVersion::V1 => "v1",
            ApiVersion::V2 => "v2",
            ApiVersion::V3 => "v3",
        }
    }
}

/// One accepted notification plus what the queue and the dispatcher need to track it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// Envelope format version ([`JOB_FORMAT`]).
    pub format: u32,
    pub id: JobId,
    /// When ingest accepted the request, in milliseconds since the Unix epoch.
    pub accepted_at_ms: u64,
    pub api_version: ApiVersion,
    /// Delivery attempts made so far; 0 until the first attempt ends.
    #[serde(default)]
    pub attempt: u32,
    /// After this instant (ms since the epoch) the job is dropped as expired, not sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at_ms: Option<u64>,
    /// The ingest instance waiting for the first attempt's outcome (sync-wait), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
    /// The registry user (bare JID) whose device this job targets, for jobs fanned out by
    /// the webhook: a provider's dead-token answer then removes the device from the registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry_user: Option<String>,
    pub notification: Notification,
}

impl Job {
    /// Wraps a freshly accepted notification; the expiry follows its time to live.
    ///
    /// A time to live of 0 means "now or never" to the providers, which is theirs to
    /// enforce: it sets no expiry here, since any queueing delay would drop the job.
    pub fn new(notification: Notification, api_version: ApiVersion) -> Self {
        let accepted_at_ms = now_ms();
        let expires_at_ms = notification
            .time_to_live_secs
            .filter(|ttl| *ttl > 0)
            .map(|ttl| accepted_at_ms + u64::from(ttl.unsigned_abs()) * 1000);
        Job {
            format: JOB_FORMAT,
            id: JobId::new(),
            accepted_at_ms,
            api_version,
            attempt: 0,
            expires_at_ms,
            reply_to: None,
            registry_user: None,
            notification,
        }
    }

    /// True when the job's time to live has passed at `now_ms`.
    pub fn is_expired(&self, now_ms: u64) -> bool {
        self.expires_at_ms.is_some_and(|at| now_ms > at)
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notification::{Service, Target};

    fn job() -> Job {
        let notification = Notification {
            target: Target {
                service: Service::Fcm,
                mode: Default::default(),
                device_token: "t".to_owned(),
                tags: Vec::new(),
                topic: None,
            },
            alert: None,
            data: None,
            priority: None,
            time_to_live_secs: None,
            mutable_content: false,
        };
        Job::new(notification, ApiVersion::V3)
    }

    #[test]
    fn registry_user_is_optional_in_the_envelope() {
        let plain = job();
        let text = serde_json::to_string(&plain).unwrap();
        assert!(!text.contains("registry_user"), "absent when unset: {text}");
        assert_eq!(serde_json::from_str::<Job>(&text).unwrap(), plain);

        let mut fanned_out = job();
        fanned_out.registry_user = Some("bob@example.com".to_owned());
        let text = serde_json::to_string(&fanned_out).unwrap();
        assert!(
            text.contains(r#""registry_user":"bob@example.com""#),
            "{text}"
        );
        assert_eq!(serde_json::from_str::<Job>(&text).unwrap(), fanned_out);
    }
}

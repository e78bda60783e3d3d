//! What a dispatcher tells a waiting ingest about a job's first attempt (sync-wait).

use serde::{Deserialize, Serialize};

use crate::api::PushError;
use crate::job::JobId;

/// The fate of a job's first attempt, as far as the caller of the API is concerned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum FirstAttempt {
    /// The provider accepted the notification.
    Delivered,
    /// The attempt failed for good (or the job was dead-lettered); answer with this error.
    Failed { error: PushError },
    /// The attempt failed in a way that is being retried; the job stays queued. The
    /// caller is answered with `error` as MongoosePush would have answered it, and told
    /// the provider's `Retry-After` when there was one.
    Retrying {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<PushError>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after_secs: Option<u64>,
    },
}

/// One message on an ingest instance's reply channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobReply {
    pub job_id: JobId,
    #[serde(flatten)]
    pub first_attempt: FirstAttempt,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Category;

    #[test]
    fn retrying_carries_the_error_and_reads_replies_without_it() {
        let reply = JobReply {
            job_id: JobId("j1".to_owned()),
            first_attempt: FirstAttempt::Retrying {
                error: Some(PushError::new(Category::TooManyRequests, "QUOTA_EXCEEDED")),
                retry_after_secs: Some(30),
            },
        };
        let text = serde_json::to_string(&reply).unwrap();
        assert_eq!(serde_json::from_str::<JobReply>(&text).unwrap(), reply);

        let bare: JobReply =
            serde_json::from_str(r#"{"job_id":"j2","outcome":"retrying"}"#).unwrap();
        assert_eq!(
            bare.first_attempt,
            FirstAttempt::Retrying {
                error: None,
                retry_after_secs: None
            }
        );
    }
}

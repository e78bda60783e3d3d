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
    /// The attempt failed in a way that is being retried; the job stays queued.
    Retrying,
}

/// One message on an ingest instance's reply channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobReply {
    pub job_id: JobId,
    #[serde(flatten)]
    pub first_attempt: FirstAttempt,
}

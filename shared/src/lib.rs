//! pushgate's shared core: the notification model, the MongoosePush API contract
//! (decoding and answers), the job envelope, the queue between ingest and dispatch, and
//! the device registry of the webhook path.

pub mod api;
pub mod health;
pub mod job;
pub mod logging;
pub mod metrics;
pub mod notification;
pub mod queue;
pub mod registry;
pub mod reply;

pub use job::{ApiVersion, Job, JobId};
pub use notification::{Alert, Mode, Notification, Priority, Service, Target};

//! pushgate's dispatcher: delivers queued notifications to FCM and APNs through the
//! configured apps, and classifies every provider answer into an outcome class.

pub mod apns;
pub mod apps;
mod connections;
pub mod fcm;
pub mod outcome;

pub use apps::{App, AppConfig, AppError, Apps, Credentials};
pub use outcome::{Attempt, Outcome};

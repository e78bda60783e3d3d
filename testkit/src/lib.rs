//! Test parts that speak the real wire protocols: mock FCM and APNs servers, and a
//! throwaway `redis-server` for tests that need a real Redis.

pub mod apns;
mod apns_auth;
pub mod control;
mod control_http;
pub mod credentials;
pub mod fcm;
mod fcm_message;
mod fcm_oauth;
pub mod redis_server;
mod server;
pub mod tls;

pub use apns::{ApnsAuth, MockApns, MockApnsOptions};
pub use control::{Activity, Arrival, Control, ControlError, ErrorToken, Outage};
pub use credentials::{ApnsCredentials, ServiceAccountFile};
pub use fcm::{MockFcm, MockFcmOptions};
pub use fcm_oauth::JWT_BEARER_GRANT;
pub use server::StartError;

//! The device registry behind the webhook path: which devices each user (bare JID) has, so
//! one chat event fans out to all of them. A trait with one contract and two backends.

pub mod embedded;
pub mod jid;
pub mod redis;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::notification::{Mode, Priority, Service};

pub use self::embedded::EmbeddedDeviceRegistry;
pub use self::jid::{JidError, bare_jid, bare_jid_of};
pub use self::redis::RedisDeviceRegistry;

/// What a device registered with: its provider, the app selection keys and how it wants
/// to be notified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceSettings {
    pub service: Service,
    #[serde(default)]
    pub mode: Mode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Data-only pushes instead of alerts.
    #[serde(default)]
    pub silent: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<Priority>,
}

/// One registered device of a user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    pub device_token: String,
    #[serde(flatten)]
    pub settings: DeviceSettings,
    /// When the device was last registered (ms since the epoch); the oldest is evicted first.
    pub registered_at_ms: u64,
}

/// What a registration did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// True when the device was new, false when an existing entry was updated.
    pub created: bool,
    /// Device tokens removed to stay within the cap, oldest first.
    pub evicted: Vec<String>,
    /// How many devices the user has now.
    pub devices: usize,
}

/// Why a registry operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("redis: {0}")]
    Redis(#[from] ::redis::RedisError),
}

/// The registry contract. Both backends pass one test suite
/// (`shared/tests/registry_contract.rs`).
///
/// `user` is a bare JID already normalized by [`bare_jid`]; the registry does not check it.
#[async_trait]
pub trait DeviceRegistry: Send + Sync + 'static {
    /// `redis` or `embedded`, for logs.
    fn kind(&self) -> &'static str;

    /// Registers `device` for `user`, or updates it when its token is already there, then
    /// evicts the user's oldest other devices until at most `max_devices` (at least 1)
    /// remain, as one atomic step.
    async fn register(
        &self,
        user: &str,
        device: &Device,
        max_devices: usize,
    ) -> Result<Registration, RegistryError>;

    /// The user's devices, oldest registration first (ties by token); none for an unknown user.
    async fn devices(&self, user: &str) -> Result<Vec<Device>, RegistryError>;

    /// Removes one device; false when it was not registered.
    async fn remove_device(&self, user: &str, device_token: &str) -> Result<bool, RegistryError>;

    /// Removes every device of `user`; returns how many there were.
    async fn forget_user(&self, user: &str) -> Result<usize, RegistryError>;
}

/// Sorts devices oldest registration first, ties by token, the order eviction follows.
pub(crate) fn sort_oldest_first(devices: &mut [Device]) {
    devices.sort_by(|a, b| {
        (a.registered_at_ms, &a.device_token).cmp(&(b.registered_at_ms, &b.device_token))
    });
}

/// A device as a registry entry stores it: everything but the token, which is the entry's key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StoredDevice {
    #[serde(flatten)]
    pub settings: DeviceSettings,
    pub registered_at_ms: u64,
}

impl StoredDevice {
    pub(crate) fn of(device: &Device) -> Self {
        StoredDevice {
            settings: device.settings.clone(),
            registered_at_ms: device.registered_at_ms,
        }
    }

    pub(crate) fn into_device(self, device_token: String) -> Device {
        Device {
            device_token,
            settings: self.settings,
            registered_at_ms: self.registered_at_ms,
        }
    }
}

//! The in-process backend: the registry kept in memory for single-process runs; it is lost
//! when the process ends.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;

use super::{Device, DeviceRegistry, Registration, RegistryError, StoredDevice, sort_oldest_first};

/// Devices by user, then by token.
type Users = HashMap<String, HashMap<String, StoredDevice>>;

/// The in-memory registry; clones share the same devices.
#[derive(Clone, Default)]
pub struct EmbeddedDeviceRegistry {
    users: Arc<Mutex<Users>>,
}

impl EmbeddedDeviceRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    fn users(&self) -> MutexGuard<'_, Users> {
        self.users
            .lock()
            .expect("no code panics while holding the registry lock")
    }
}

#[async_trait]
impl DeviceRegistry for EmbeddedDeviceRegistry {
    fn kind(&self) -> &'static str {
        "embedded"
    }

    async fn register(
        &self,
        user: &str,
        device: &Device,
        max_devices: usize,
    ) -> Result<Registration, RegistryError> {
        let mut users = self.users();
        let devices = users.entry(user.to_owned()).or_default();
        let created = devices
            .insert(device.device_token.clone(), StoredDevice::of(device))
            .is_none();

        let cap = max_devices.max(1);
        let mut evicted = Vec::new();
        if devices.len() > cap {
            let mut others: Vec<Device> = devices
                .iter()
                .filter(|(token, _)| **token != device.device_token)
                .map(|(token, stored)| stored.clone().into_device(token.clone()))
                .collect();
            sort_oldest_first(&mut others);
            let excess = devices.len() - cap;
            for oldest in others.into_iter().take(excess) {
                devices.remove(&oldest.device_token);
                evicted.push(oldest.device_token);
            }
        }
        Ok(Registration {
            created,
            evicted,
            devices: devices.len(),
        })
    }

    async fn devices(&self, user: &str) -> Result<Vec<Device>, RegistryError> {
        let mut devices: Vec<Device> = self
            .users()
            .get(user)
            .into_iter()
            .flatten()
            .map(|(token, stored)| stored.clone().into_device(token.clone()))
            .collect();
        sort_oldest_first(&mut devices);
        Ok(devices)
    }

    async fn remove_device(&self, user: &str, device_token: &str) -> Result<bool, RegistryError> {
        let mut users = self.users();
        let Some(devices) = users.get_mut(user) else {
            return Ok(false);
        };
        let removed = devices.remove(device_token).is_some();
        if devices.is_empty() {
            users.remove(user);
        }
        Ok(removed)
    }

    async fn forget_user(&self, user: &str) -> Result<usize, RegistryError> {
        Ok(self.users().remove(user).map_or(0, |devices| devices.len()))
    }
}

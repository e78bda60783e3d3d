//! The Redis backend: one hash per user, `{prefix}:devices:{user}`, field = device token,
//! value = the device's settings and registration time as JSON. Registering and evicting
//! run as one Lua script, so concurrent registrations never leave a user over the cap.

use std::collections::HashMap;

use ::redis::aio::ConnectionManager;
use ::redis::{Client, Script};
use async_trait::async_trait;

use super::{Device, DeviceRegistry, Registration, RegistryError, StoredDevice, sort_oldest_first};

/// Sets the device's entry, then evicts the oldest other entries (by `registered_at_ms`,
/// ties by token; unreadable entries count as oldest) while the hash holds more than the cap.
/// KEYS: the user's hash. ARGV: token, entry JSON, cap.
/// Returns `{created (0|1), {evicted tokens...}, devices left}`.
const REGISTER_SCRIPT: &str = r"
local created = redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
local cap = tonumber(ARGV[3])
local evicted = {}
local count = redis.call('HLEN', KEYS[1])
if count > cap then
  local entries = redis.call('HGETALL', KEYS[1])
  local others = {}
  for i = 1, #entries, 2 do
    if entries[i] ~= ARGV[1] then
      local ok, device = pcall(cjson.decode, entries[i + 1])
      local at = 0
      if ok and type(device) == 'table' then
        at = tonumber(device['registered_at_ms']) or 0
      end
      table.insert(others, {entries[i], at})
    end
  end
  table.sort(others, function(a, b)
    if a[2] ~= b[2] then return a[2] < b[2] end
    return a[1] < b[1]
  end)
  for i = 1, count - cap do
    redis.call('HDEL', KEYS[1], others[i][1])
    table.insert(evicted, others[i][1])
  end
  count = cap
end
return {created, evicted, count}
";

/// The registry on a Redis server; clones share the connection.
#[derive(Clone)]
pub struct RedisDeviceRegistry {
    manager: ConnectionManager,
    prefix: String,
    register: Script,
}

impl RedisDeviceRegistry {
    /// Connects to the Redis at `url`; keys start with `prefix` (the queue's, `pushgate` by
    /// default).
    ///
    /// # Errors
    ///
    /// A bad URL or a server that does not answer.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, RegistryError> {
        let manager = ConnectionManager::new(Client::open(url)?).await?;
        Ok(RedisDeviceRegistry {
            manager,
            prefix: prefix.to_owned(),
            register: Script::new(REGISTER_SCRIPT),
        })
    }

    /// The hash holding `user`'s devices.
    pub fn key(&self, user: &str) -> String {
        format!("{}:devices:{user}", self.prefix)
    }

    fn connection(&self) -> ConnectionManager {
        self.manager.clone()
    }
}

#[async_trait]
impl DeviceRegistry for RedisDeviceRegistry {
    fn kind(&self) -> &'static str {
        "redis"
    }

    async fn register(
        &self,
        user: &str,
        device: &Device,
        max_devices: usize,
    ) -> Result<Registration, RegistryError> {
        let entry = serde_json::to_string(&StoredDevice::of(device))
            .expect("a device always serializes: every map key is a string");
        let (created, evicted, devices): (i64, Vec<String>, usize) = self
            .register
            .key(self.key(user))
            .arg(&device.device_token)
            .arg(entry)
            .arg(max_devices.max(1))
            .invoke_async(&mut self.connection())
            .await?;
        Ok(Registration {
            created: created == 1,
            evicted,
            devices,
        })
    }

    /// An entry that cannot be read (written by hand or by a newer version) is skipped
    /// with a warning rather than hiding every other device of the user.
    async fn devices(&self, user: &str) -> Result<Vec<Device>, RegistryError> {
        let entries: HashMap<String, String> = ::redis::cmd("HGETALL")
            .arg(self.key(user))
            .query_async(&mut self.connection())
            .await?;
        let mut devices: Vec<Device> = entries
            .into_iter()
            .filter_map(
                |(token, raw)| match serde_json::from_str::<StoredDevice>(&raw) {
                    Ok(stored) => Some(stored.into_device(token)),
                    Err(error) => {
                        tracing::warn!(%error, "unreadable device registry entry skipped");
                        None
                    }
                },
            )
            .collect();
        sort_oldest_first(&mut devices);
        Ok(devices)
    }

    async fn remove_device(&self, user: &str, device_token: &str) -> Result<bool, RegistryError> {
        let removed: usize = ::redis::cmd("HDEL")
            .arg(self.key(user))
            .arg(device_token)
            .query_async(&mut self.connection())
            .await?;
        Ok(removed > 0)
    }

    async fn forget_user(&self, user: &str) -> Result<usize, RegistryError> {
        let key = self.key(user);
        let (count, _deleted): (usize, usize) = ::redis::pipe()
            .atomic()
            .cmd("HLEN")
            .arg(&key)
            .cmd("DEL")
            .arg(&key)
            .query_async(&mut self.connection())
            .await?;
        Ok(count)
    }
}

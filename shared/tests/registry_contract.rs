//! The device registry contract: every test runs against both backends, Redis on a real
//! `redis-server` (REDIS_URL or one started for this process) and the embedded one.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use pushgate_shared::registry::{
    Device, DeviceRegistry, DeviceSettings, EmbeddedDeviceRegistry, RedisDeviceRegistry,
};
use pushgate_shared::{Mode, Priority, Service};
use pushgate_testkit::redis_server::{redis_url, unique_prefix};
use serde_json::Value;

/// Upper bound for any one test, so a hang fails instead of stalling the run.
const HANG_GUARD: Duration = Duration::from_secs(60);

const BOB: &str = "bob@example.com";
const ALICE: &str = "alice@example.com";
/// An FCM-shaped token: a colon inside, as MongooseIM passes it.
const FCM_TOKEN: &str = "dGVzdA:APA91bHqN3Y-token_part";

/// How one backend is set up for a test.
trait Harness {
    /// A fresh, empty registry for the test `name`, and what must live as long as it.
    async fn start(name: &str) -> (Arc<dyn DeviceRegistry>, Option<DeleteKeysOnDrop>);
}

struct RedisHarness;

impl Harness for RedisHarness {
    async fn start(name: &str) -> (Arc<dyn DeviceRegistry>, Option<DeleteKeysOnDrop>) {
        let url = redis_url();
        let prefix = unique_prefix(name);
        let registry = RedisDeviceRegistry::connect(&url, &prefix)
            .await
            .expect("connecting to the test Redis");
        let cleanup = DeleteKeysOnDrop { url, prefix };
        (Arc::new(registry), Some(cleanup))
    }
}

struct EmbeddedHarness;

impl Harness for EmbeddedHarness {
    async fn start(_name: &str) -> (Arc<dyn DeviceRegistry>, Option<DeleteKeysOnDrop>) {
        (Arc::new(EmbeddedDeviceRegistry::new()), None)
    }
}

/// Deletes a test's keys when dropped, so a long-lived Redis named by `REDIS_URL` does not
/// fill up.
struct DeleteKeysOnDrop {
    url: String,
    prefix: String,
}

impl Drop for DeleteKeysOnDrop {
    fn drop(&mut self) {
        let Ok(mut connection) =
            redis::Client::open(self.url.as_str()).and_then(|client| client.get_connection())
        else {
            return;
        };
        let pattern = format!("{}:*", self.prefix);
        let keys: Vec<String> = match redis::Commands::scan_match(&mut connection, &pattern) {
            Ok(keys) => keys.filter_map(Result::ok).collect(),
            Err(_) => return,
        };
        if !keys.is_empty() {
            let _ = redis::cmd("DEL").arg(keys).exec(&mut connection);
        }
    }
}

/// Runs one contract test under the hang guard.
async fn guarded(test: impl Future<Output = ()>) {
    tokio::time::timeout(HANG_GUARD, test)
        .await
        .expect("the test hung");
}

macro_rules! contract_tests {
    ($($name:ident),* $(,)?) => {
        mod redis_backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::guarded(super::$name::<super::RedisHarness>()).await;
                }
            )*
        }
        mod embedded_backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::guarded(super::$name::<super::EmbeddedHarness>()).await;
                }
            )*
        }
    };
}

contract_tests!(
    register_then_list_returns_every_field,
    registering_again_updates_in_place,
    devices_are_listed_oldest_first,
    an_unknown_user_has_no_devices,
    remove_device_removes_only_that_device,
    forget_user_removes_every_device_and_counts_them,
    the_cap_evicts_the_oldest_and_says_which,
    the_device_just_registered_is_never_evicted,
    an_update_at_the_cap_evicts_nothing,
    a_lower_cap_evicts_several_at_once,
    users_are_kept_apart,
    concurrent_registrations_never_exceed_the_cap,
);

fn fcm(token: &str, at_ms: u64) -> Device {
    Device {
        device_token: token.to_owned(),
        settings: DeviceSettings {
            service: Service::Fcm,
            mode: Mode::Prod,
            topic: None,
            tags: Vec::new(),
            silent: false,
            priority: None,
        },
        registered_at_ms: at_ms,
    }
}

/// A device with every optional setting filled in.
fn full_apns(token: &str, at_ms: u64) -> Device {
    Device {
        device_token: token.to_owned(),
        settings: DeviceSettings {
            service: Service::Apns,
            mode: Mode::Dev,
            topic: Some("com.example.chat".to_owned()),
            tags: vec!["beta".to_owned(), "ünïcödé".to_owned()],
            silent: true,
            priority: Some(Priority::High),
        },
        registered_at_ms: at_ms,
    }
}

fn tokens(devices: &[Device]) -> Vec<&str> {
    devices.iter().map(|d| d.device_token.as_str()).collect()
}

async fn register_then_list_returns_every_field<H: Harness>() {
    let (registry, _cleanup) = H::start("register_list").await;
    let full = full_apns("a1b2c3", 1_700_000_000_001);
    let plain = fcm(FCM_TOKEN, 1_700_000_000_002);

    let first = registry.register(BOB, &full, 20).await.unwrap();
    let second = registry.register(BOB, &plain, 20).await.unwrap();
    let listed = registry.devices(BOB).await.unwrap();

    assert!(first.created && second.created);
    assert!(first.evicted.is_empty() && second.evicted.is_empty());
    assert_eq!((first.devices, second.devices), (1, 2));
    assert_eq!(listed, vec![full, plain]);
}

async fn registering_again_updates_in_place<H: Harness>() {
    let (registry, _cleanup) = H::start("update").await;
    registry.register(BOB, &fcm("t1", 10), 20).await.unwrap();
    registry.register(BOB, &fcm("t2", 20), 20).await.unwrap();

    let mut updated = full_apns("t1", 30);
    updated.settings.service = Service::Fcm;
    let again = registry.register(BOB, &updated, 20).await.unwrap();
    let listed = registry.devices(BOB).await.unwrap();

    assert!(!again.created);
    assert_eq!(again.devices, 2);
    assert_eq!(listed, vec![fcm("t2", 20), updated]);
}

async fn devices_are_listed_oldest_first<H: Harness>() {
    let (registry, _cleanup) = H::start("order").await;
    for (token, at) in [("c", 30), ("a", 10), ("d", 20), ("b", 20)] {
        registry.register(BOB, &fcm(token, at), 20).await.unwrap();
    }

    let listed = registry.devices(BOB).await.unwrap();

    assert_eq!(
        tokens(&listed),
        ["a", "b", "d", "c"],
        "by time, ties by token"
    );
}

async fn an_unknown_user_has_no_devices<H: Harness>() {
    let (registry, _cleanup) = H::start("unknown").await;

    assert!(
        registry
            .devices("nobody@example.com")
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        !registry
            .remove_device("nobody@example.com", "t")
            .await
            .unwrap()
    );
    assert_eq!(registry.forget_user("nobody@example.com").await.unwrap(), 0);
}

async fn remove_device_removes_only_that_device<H: Harness>() {
    let (registry, _cleanup) = H::start("remove").await;
    registry
        .register(BOB, &fcm(FCM_TOKEN, 1), 20)
        .await
        .unwrap();
    registry.register(BOB, &fcm("other", 2), 20).await.unwrap();

    let removed = registry.remove_device(BOB, FCM_TOKEN).await.unwrap();
    let removed_again = registry.remove_device(BOB, FCM_TOKEN).await.unwrap();
    let listed = registry.devices(BOB).await.unwrap();
    let last = registry.remove_device(BOB, "other").await.unwrap();

    assert!(removed);
    assert!(!removed_again, "a second removal finds nothing");
    assert_eq!(tokens(&listed), ["other"]);
    assert!(last);
    assert!(registry.devices(BOB).await.unwrap().is_empty());
}

async fn forget_user_removes_every_device_and_counts_them<H: Harness>() {
    let (registry, _cleanup) = H::start("forget").await;
    for (i, token) in ["t1", "t2", "t3"].into_iter().enumerate() {
        registry
            .register(BOB, &fcm(token, i as u64), 20)
            .await
            .unwrap();
    }
    registry.register(ALICE, &fcm("t1", 9), 20).await.unwrap();

    let forgotten = registry.forget_user(BOB).await.unwrap();
    let again = registry.forget_user(BOB).await.unwrap();

    assert_eq!((forgotten, again), (3, 0));
    assert!(registry.devices(BOB).await.unwrap().is_empty());
    assert_eq!(tokens(&registry.devices(ALICE).await.unwrap()), ["t1"]);
}

async fn the_cap_evicts_the_oldest_and_says_which<H: Harness>() {
    let (registry, _cleanup) = H::start("cap").await;
    for (token, at) in [("t1", 10), ("t2", 20), ("t3", 30)] {
        let registration = registry.register(BOB, &fcm(token, at), 3).await.unwrap();
        assert!(registration.evicted.is_empty());
    }

    let fourth = registry.register(BOB, &fcm("t4", 40), 3).await.unwrap();
    let listed = registry.devices(BOB).await.unwrap();

    assert!(fourth.created);
    assert_eq!(fourth.evicted, ["t1"]);
    assert_eq!(fourth.devices, 3);
    assert_eq!(tokens(&listed), ["t2", "t3", "t4"]);
}

async fn the_device_just_registered_is_never_evicted<H: Harness>() {
    let (registry, _cleanup) = H::start("keep_new").await;
    registry.register(BOB, &fcm("t1", 50), 2).await.unwrap();
    registry.register(BOB, &fcm("t2", 60), 2).await.unwrap();

    // A clock behind the others' must not make the new device its own victim.
    let late = registry.register(BOB, &fcm("t0", 5), 2).await.unwrap();

    assert_eq!(late.evicted, ["t1"]);
    assert_eq!(tokens(&registry.devices(BOB).await.unwrap()), ["t0", "t2"]);
}

async fn an_update_at_the_cap_evicts_nothing<H: Harness>() {
    let (registry, _cleanup) = H::start("update_at_cap").await;
    registry.register(BOB, &fcm("t1", 10), 2).await.unwrap();
    registry.register(BOB, &fcm("t2", 20), 2).await.unwrap();

    let update = registry.register(BOB, &fcm("t1", 30), 2).await.unwrap();

    assert!(!update.created);
    assert!(update.evicted.is_empty());
    assert_eq!(tokens(&registry.devices(BOB).await.unwrap()), ["t2", "t1"]);
}

async fn a_lower_cap_evicts_several_at_once<H: Harness>() {
    let (registry, _cleanup) = H::start("lower_cap").await;
    for at in 1..=5 {
        registry
            .register(BOB, &fcm(&format!("t{at}"), at), 20)
            .await
            .unwrap();
    }

    let registration = registry.register(BOB, &fcm("t6", 6), 2).await.unwrap();
    let zero_cap = registry.register(BOB, &fcm("t7", 7), 0).await.unwrap();

    assert_eq!(registration.evicted, ["t1", "t2", "t3", "t4"]);
    assert_eq!(
        zero_cap.evicted,
        ["t5", "t6"],
        "a cap of 0 keeps the new device"
    );
    assert_eq!(tokens(&registry.devices(BOB).await.unwrap()), ["t7"]);
}

async fn users_are_kept_apart<H: Harness>() {
    let (registry, _cleanup) = H::start("apart").await;
    registry
        .register(BOB, &fcm("shared-token", 1), 1)
        .await
        .unwrap();
    registry
        .register(ALICE, &fcm("shared-token", 2), 1)
        .await
        .unwrap();
    registry
        .register(ALICE, &fcm("alice-2", 3), 1)
        .await
        .unwrap();

    assert!(registry.remove_device(ALICE, "alice-2").await.unwrap());
    assert_eq!(
        tokens(&registry.devices(BOB).await.unwrap()),
        ["shared-token"]
    );
    assert!(registry.devices(ALICE).await.unwrap().is_empty());
}

async fn concurrent_registrations_never_exceed_the_cap<H: Harness>() {
    let (registry, _cleanup) = H::start("concurrent").await;
    let registrations = (0..40u64).map(|i| {
        let registry = registry.clone();
        tokio::spawn(async move {
            registry
                .register(BOB, &fcm(&format!("t{i:02}"), 1000 + i), 5)
                .await
                .unwrap()
        })
    });
    let mut evicted = BTreeSet::new();
    for registration in registrations.collect::<Vec<_>>() {
        let registration = registration.await.unwrap();
        assert!(registration.devices <= 5);
        for token in registration.evicted {
            assert!(evicted.insert(token), "a device is evicted once");
        }
    }

    let left = registry.devices(BOB).await.unwrap();
    assert_eq!(left.len(), 5);
    let mut all: BTreeSet<String> = evicted;
    all.extend(left.iter().map(|d| d.device_token.clone()));
    assert_eq!(
        all.len(),
        40,
        "every device is either kept or reported evicted"
    );
}

/// Redis only: the key layout DESIGN.md documents, and entries this version cannot read.
mod redis_layout {
    use super::*;

    async fn raw_connection() -> redis::aio::MultiplexedConnection {
        redis::Client::open(redis_url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_hash_per_user_with_json_per_token() {
        let prefix = unique_prefix("layout");
        let _cleanup = DeleteKeysOnDrop {
            url: redis_url(),
            prefix: prefix.clone(),
        };
        let registry = RedisDeviceRegistry::connect(&redis_url(), &prefix)
            .await
            .unwrap();
        registry
            .register(BOB, &full_apns(FCM_TOKEN, 1_700_000_000_123), 20)
            .await
            .unwrap();
        let mut redis = raw_connection().await;

        let key = format!("{prefix}:devices:{BOB}");
        let kind: String = redis::cmd("TYPE")
            .arg(&key)
            .query_async(&mut redis)
            .await
            .unwrap();
        let raw: String = redis::cmd("HGET")
            .arg(&key)
            .arg(FCM_TOKEN)
            .query_async(&mut redis)
            .await
            .unwrap();
        let entry: Value = serde_json::from_str(&raw).unwrap();

        assert_eq!(registry.key(BOB), key);
        assert_eq!(kind, "hash");
        assert_eq!(
            entry,
            serde_json::json!({
                "service": "apns", "mode": "dev", "topic": "com.example.chat",
                "tags": ["beta", "ünïcödé"], "silent": true, "priority": "high",
                "registered_at_ms": 1_700_000_000_123u64,
            })
        );
    }

    #[tokio::test]
    async fn unreadable_entries_are_skipped_and_evicted_first() {
        let prefix = unique_prefix("unreadable");
        let _cleanup = DeleteKeysOnDrop {
            url: redis_url(),
            prefix: prefix.clone(),
        };
        let registry = RedisDeviceRegistry::connect(&redis_url(), &prefix)
            .await
            .unwrap();
        registry.register(BOB, &fcm("good", 10), 2).await.unwrap();
        let mut redis = raw_connection().await;
        let _: usize = redis::cmd("HSET")
            .arg(registry.key(BOB))
            .arg("garbage")
            .arg("{not json")
            .query_async(&mut redis)
            .await
            .unwrap();

        let listed = registry.devices(BOB).await.unwrap();
        let registration = registry.register(BOB, &fcm("new", 5), 2).await.unwrap();

        assert_eq!(tokens(&listed), ["good"]);
        assert_eq!(registration.evicted, ["garbage"]);
        assert_eq!(
            tokens(&registry.devices(BOB).await.unwrap()),
            ["new", "good"]
        );
    }
}

//! The gateway's queue on either backend, how to open it again as a restarted process
//! would, and the cleanup of a test's Redis keys.

use std::sync::Arc;

use pushgate_shared::queue::{EmbeddedQueue, Queue, QueueOptions, RedisQueue};
use pushgate_testkit::redis_server::{redis_url, unique_prefix};

use super::Backend;

/// The gateway's queue and what it takes to open it again.
pub(super) struct OpenedQueue {
    pub(super) queue: Arc<dyn Queue>,
    pub(super) backend: OpenedBackend,
}

pub(super) enum OpenedBackend {
    Redis {
        url: String,
        options: QueueOptions,
        _cleanup: DeleteKeysOnDrop,
    },
    Embedded(EmbeddedQueue),
}

pub(super) async fn open_queue(backend: Backend, name: &str) -> OpenedQueue {
    match backend {
        Backend::Redis => {
            let url = redis_url();
            let options = QueueOptions {
                prefix: unique_prefix(name),
                ..QueueOptions::default()
            };
            let cleanup = DeleteKeysOnDrop {
                url: url.clone(),
                prefix: options.prefix.clone(),
            };
            let queue = RedisQueue::connect(&url, options.clone())
                .await
                .expect("connecting to the test Redis");
            OpenedQueue {
                queue: Arc::new(queue),
                backend: OpenedBackend::Redis {
                    url,
                    options,
                    _cleanup: cleanup,
                },
            }
        }
        Backend::Embedded => {
            let root = EmbeddedQueue::new(QueueOptions::default());
            OpenedQueue {
                queue: Arc::new(root.clone()),
                backend: OpenedBackend::Embedded(root),
            }
        }
    }
}

/// Deletes a test's keys when dropped, so a long-lived Redis named by `REDIS_URL` does not
/// fill up.
pub(super) struct DeleteKeysOnDrop {
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

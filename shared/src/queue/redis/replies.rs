//! Sync-wait replies over Redis pub/sub: one channel per ingest instance, listened to by
//! a task that resubscribes when its connection drops.

use std::time::Duration;

use ::redis::Client;
use futures::StreamExt;
use tokio::sync::mpsc;

use crate::queue::QueueError;
use crate::reply::JobReply;

/// Replies buffered before the listener task waits for the receiver to catch up.
const REPLY_BUFFER: usize = 4096;

/// Subscribes to `channel` and forwards every reply on it until the receiver is dropped.
///
/// The first subscription happens before this returns, so a reply published afterwards
/// is seen. A dropped connection is resubscribed; replies sent meanwhile are lost, and
/// their waiters time out (they answer as if sync-wait were off).
pub(super) async fn subscribe(
    client: Client,
    channel: String,
) -> Result<mpsc::Receiver<JobReply>, QueueError> {
    let (sender, receiver) = mpsc::channel(REPLY_BUFFER);
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub.subscribe(&channel).await?;

    tokio::spawn(async move {
        let mut messages = pubsub.into_on_message();
        loop {
            while let Some(message) = messages.next().await {
                let Ok(payload) = message.get_payload::<String>() else {
                    continue;
                };
                match serde_json::from_str::<JobReply>(&payload) {
                    Ok(reply) => {
                        if sender.send(reply).await.is_err() {
                            return;
                        }
                    }
                    Err(error) => tracing::warn!(error = %error, "unreadable sync-wait reply"),
                }
            }
            // The connection ended: resubscribe until it works or nobody listens.
            loop {
                if sender.is_closed() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
                let Ok(mut pubsub) = client.get_async_pubsub().await else {
                    continue;
                };
                if pubsub.subscribe(&channel).await.is_ok() {
                    messages = pubsub.into_on_message();
                    break;
                }
            }
        }
    });
    Ok(receiver)
}

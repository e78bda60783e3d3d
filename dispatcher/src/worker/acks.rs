//! Acknowledgements sent in batches: each caller waits for its own entry's, and the
//! entries that pile up while one batch is on its way to the queue go in the next one,
//! so under load one `XACK` covers many jobs and an idle dispatcher adds no delay.

use std::sync::Arc;

use pushgate_shared::queue::{EntryId, Queue};
use tokio::sync::{mpsc, oneshot};

/// At most this many entries in one acknowledgement.
const MAX_BATCH: usize = 256;

/// Why an acknowledgement did not take: the queue's error, as text (one error answers
/// every caller of its batch).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct AckFailed(String);

struct Waiting {
    entry: EntryId,
    done: oneshot::Sender<Result<(), AckFailed>>,
}

/// The sending side; the batching task ends when the last clone is dropped.
#[derive(Clone)]
pub(crate) struct Acks {
    waiting: mpsc::UnboundedSender<Waiting>,
}

impl Acks {
    /// Starts the batching task on the current runtime.
    pub(crate) fn start(queue: Arc<dyn Queue>) -> Self {
        let (waiting, mut queued) = mpsc::unbounded_channel::<Waiting>();
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(MAX_BATCH);
            while queued.recv_many(&mut batch, MAX_BATCH).await > 0 {
                let entries: Vec<EntryId> = batch.iter().map(|w| w.entry.clone()).collect();
                let result = queue.ack(&entries).await;
                for waiting in batch.drain(..) {
                    let answer = match &result {
                        Ok(()) => Ok(()),
                        Err(error) => Err(AckFailed(error.to_string())),
                    };
                    // A caller that gave up waiting needs no answer.
                    let _ = waiting.done.send(answer);
                }
            }
        });
        Acks { waiting }
    }

    /// Acknowledges `entry` with the next batch and waits until it took.
    pub(crate) async fn ack(&self, entry: &EntryId) -> Result<(), AckFailed> {
        let (done, answer) = oneshot::channel();
        let waiting = Waiting {
            entry: entry.clone(),
            done,
        };
        self.waiting
            .send(waiting)
            .map_err(|_| AckFailed("the acknowledgement task has stopped".to_owned()))?;
        answer
            .await
            .map_err(|_| AckFailed("the acknowledgement task has stopped".to_owned()))?
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use pushgate_shared::queue::{EmbeddedQueue, QueueOptions};
    use pushgate_shared::{ApiVersion, Job, Notification, Service};

    use super::*;

    fn job(token: &str) -> Job {
        Job::new(
            Notification::alert(Service::Fcm, token, "t", "b"),
            ApiVersion::V3,
        )
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_acks_all_take_and_nothing_is_handed_out_again() {
        let queue = Arc::new(EmbeddedQueue::new(QueueOptions::default()));
        queue.ensure_group().await.unwrap();
        for index in 0..300 {
            queue.append(&job(&format!("t{index}"))).await.unwrap();
        }
        let read = queue.read("c1", 300, Duration::ZERO).await.unwrap();
        assert_eq!(read.len(), 300);
        let acks = Acks::start(queue.clone());

        let mut tasks = tokio::task::JoinSet::new();
        for delivery in read {
            let acks = acks.clone();
            tasks.spawn(async move { acks.ack(&delivery.entry).await });
        }
        while let Some(result) = tasks.join_next().await {
            result.unwrap().unwrap();
        }

        let backlog = queue.backlog().await.unwrap();
        assert_eq!((backlog.waiting, backlog.in_progress), (0, 0));
        let claimed = queue.claim_idle("c2", Duration::ZERO, 10).await.unwrap();
        assert!(
            claimed.is_empty(),
            "an acknowledged entry was handed out again"
        );
    }

    #[tokio::test]
    async fn an_unknown_entry_fails_its_batch() {
        let queue = Arc::new(EmbeddedQueue::new(QueueOptions::default()));
        queue.ensure_group().await.unwrap();
        let acks = Acks::start(queue);
        let unknown = EntryId {
            shard: 7,
            id: "1-0".to_owned(),
        };
        assert!(acks.ack(&unknown).await.is_err());
    }
}

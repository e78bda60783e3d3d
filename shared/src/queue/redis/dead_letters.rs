//! The dead-letter stream on Redis: adding letters together with the acknowledgement of
//! their entry, listing them oldest first, and removing them.

use ::redis::streams::{StreamId, StreamRangeReply};

use super::RedisQueue;
use crate::job::now_ms;
use crate::queue::{
    DeadLetter, EntryId, QueueError, StoredDeadLetter, UnreadableDeadLetter, decode_job, encode_job,
};

/// A dead-letter stream entry, decoded as far as it goes.
enum Record {
    Readable(Box<StoredDeadLetter>),
    Unreadable(UnreadableDeadLetter),
}

impl Record {
    fn parse(entry: &StreamId) -> Record {
        let text = |field: &str| entry.get::<String>(field);
        let raw_job = text("job").unwrap_or_default();
        let decoded = decode_job(&raw_job);
        let reason = text("reason");
        let attempts = entry.get::<u32>("attempts");
        let failed_at_ms = entry.get::<u64>("failed_at_ms");

        match (decoded, reason, attempts, failed_at_ms) {
            (Ok(job), Some(reason), Some(attempts), Some(failed_at_ms)) => {
                Record::Readable(Box::new(StoredDeadLetter {
                    id: entry.id.clone(),
                    letter: DeadLetter {
                        job,
                        reason,
                        attempts,
                        last_answer: text("last_answer"),
                        failed_at_ms,
                    },
                }))
            }
            (decoded, reason, _, failed_at_ms) => Record::Unreadable(UnreadableDeadLetter {
                id: entry.id.clone(),
                raw_job,
                reason: reason.unwrap_or_default(),
                error: text("error")
                    .or(decoded.err())
                    .unwrap_or_else(|| "a dead-letter field is missing".to_owned()),
                failed_at_ms: failed_at_ms.unwrap_or(0),
            }),
        }
    }
}

/// True for ids of the `milliseconds-sequence` form every stream entry has.
fn is_entry_id(id: &str) -> bool {
    id.split_once('-').is_some_and(|(millis, sequence)| {
        millis.parse::<u64>().is_ok() && sequence.parse::<u64>().is_ok()
    })
}

impl RedisQueue {
    /// `XADD` to the dead-letter stream and, when given, `XACK` of `entry`, in one MULTI.
    pub(super) async fn add_dead_letter(
        &self,
        entry: Option<&EntryId>,
        letter: &DeadLetter,
    ) -> Result<(), QueueError> {
        let stream = entry.map(|entry| self.stream_of(entry)).transpose()?;
        let mut fields = vec![
            ("job", encode_job(&letter.job)),
            ("reason", letter.reason.clone()),
            ("attempts", letter.attempts.to_string()),
            ("failed_at_ms", letter.failed_at_ms.to_string()),
        ];
        if let Some(answer) = &letter.last_answer {
            fields.push(("last_answer", answer.clone()));
        }

        let mut pipe = ::redis::pipe();
        pipe.atomic()
            .xadd(&self.inner.keys.dead_letters, "*", &fields)
            .ignore();
        if let (Some(stream), Some(entry)) = (stream, entry) {
            pipe.xack(stream, self.group(), &[&entry.id]).ignore();
        }
        pipe.exec_async(&mut self.connection()).await?;
        Ok(())
    }

    /// Dead-letters a stream entry whose job cannot be decoded, keeping its raw text, and
    /// acknowledges it, in one MULTI.
    pub(super) async fn add_corrupt_dead_letter(
        &self,
        entry: &EntryId,
        raw_job: &str,
        error: &str,
    ) -> Result<(), QueueError> {
        let stream = self.stream_of(entry)?;
        tracing::error!(
            shard = entry.shard,
            entry = %entry.id,
            %error,
            "corrupt queue entry dead-lettered"
        );
        let origin = format!("{stream}/{}", entry.id);
        let fields = [
            ("job", raw_job),
            ("reason", "corrupt"),
            ("error", error),
            ("failed_at_ms", &now_ms().to_string()),
            ("entry", &origin),
        ];
        ::redis::pipe()
            .atomic()
            .xadd(&self.inner.keys.dead_letters, "*", &fields)
            .ignore()
            .xack(stream, self.group(), &[&entry.id])
            .ignore()
            .exec_async(&mut self.connection())
            .await?;
        Ok(())
    }

    pub(super) async fn list_dead_letters(
        &self,
        count: usize,
    ) -> Result<Vec<StoredDeadLetter>, QueueError> {
        self.scan_dead_letters(count, |record| match record {
            Record::Readable(letter) => Some(*letter),
            Record::Unreadable(_) => None,
        })
        .await
    }

    pub(super) async fn list_unreadable_dead_letters(
        &self,
        count: usize,
    ) -> Result<Vec<UnreadableDeadLetter>, QueueError> {
        self.scan_dead_letters(count, |record| match record {
            Record::Unreadable(letter) => Some(letter),
            Record::Readable(_) => None,
        })
        .await
    }

    /// Walks the dead-letter stream oldest first until `count` records pass `keep`.
    async fn scan_dead_letters<T>(
        &self,
        count: usize,
        keep: impl Fn(Record) -> Option<T> + Send,
    ) -> Result<Vec<T>, QueueError> {
        let mut found = Vec::new();
        let mut start = "-".to_owned();
        let mut connection = self.connection();
        // Pages stay small whatever `count` is (`usize::MAX` means "all").
        let page_size = count.min(DEAD_LETTER_PAGE);
        while found.len() < count {
            let page: StreamRangeReply = ::redis::cmd("XRANGE")
                .arg(&self.inner.keys.dead_letters)
                .arg(&start)
                .arg("+")
                .arg("COUNT")
                .arg(page_size)
                .query_async(&mut connection)
                .await?;
            let page_len = page.ids.len();
            for entry in &page.ids {
                start = format!("({}", entry.id);
                if found.len() < count
                    && let Some(item) = keep(Record::parse(entry))
                {
                    found.push(item);
                }
            }
            if page_len < page_size {
                break;
            }
        }
        Ok(found)
    }

    pub(super) async fn delete_dead_letters(&self, ids: &[String]) -> Result<usize, QueueError> {
        let ids: Vec<&String> = ids.iter().filter(|id| is_entry_id(id)).collect();
        if ids.is_empty() {
            return Ok(0);
        }
        let removed: usize = ::redis::cmd("XDEL")
            .arg(&self.inner.keys.dead_letters)
            .arg(ids)
            .query_async(&mut self.connection())
            .await?;
        Ok(removed)
    }
}

/// Dead letters read per `XRANGE` call.
const DEAD_LETTER_PAGE: usize = 500;

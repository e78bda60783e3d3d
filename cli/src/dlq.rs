//! `pushgate dlq`: list, replay and purge dead letters in Redis.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use pushgate_shared::JobId;
use pushgate_shared::queue::{Queue, StoredDeadLetter};
use serde_json::json;

use crate::config::PushgateConfig;

/// Options of `pushgate dlq`.
#[derive(Debug, clap::Args)]
pub struct DlqArgs {
    /// Configuration file naming the Redis queue (`[queue] redis_url`).
    #[arg(long, env = "PUSHGATE_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: DlqCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum DlqCommand {
    /// Print dead letters, oldest first, one JSON object per line (tokens masked).
    List {
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        count: usize,
    },
    /// Queue dead letters again as new jobs (attempts reset), then remove them.
    Replay {
        /// Only these dead-letter ids; without any, the oldest `--count`.
        #[arg(long = "id")]
        ids: Vec<String>,
        #[arg(long, default_value_t = 100)]
        count: usize,
    },
    /// Remove dead letters for good.
    Purge {
        /// Only these dead-letter ids.
        #[arg(long = "id")]
        ids: Vec<String>,
        /// Every dead letter, including unreadable ones.
        #[arg(long, conflicts_with = "ids")]
        all: bool,
    },
}

/// Runs one `dlq` subcommand.
///
/// # Errors
///
/// No Redis configured (dead letters of the in-memory queue die with its process), or a
/// queue error.
pub async fn run(args: DlqArgs) -> anyhow::Result<()> {
    let path = args
        .config
        .context("dead letters live in Redis: pass --config with [queue] redis_url")?;
    let config = PushgateConfig::load(&path)?;
    if config.queue.redis_url.is_none() {
        anyhow::bail!(
            "{} names no Redis ([queue] redis_url): the in-memory queue keeps no dead letters \
             outside its own process",
            path.display()
        );
    }
    let queue = config.connect_queue().await?;
    match args.command {
        DlqCommand::List { count } => list(&queue, count).await,
        DlqCommand::Replay { ids, count } => replay(&queue, &ids, count).await,
        DlqCommand::Purge { ids, all } => purge(&queue, &ids, all).await,
    }
}

async fn list(queue: &Arc<dyn Queue>, count: usize) -> anyhow::Result<()> {
    for stored in queue.dead_letters(count).await? {
        println!("{}", describe(&stored));
    }
    for unreadable in queue.unreadable_dead_letters(count).await? {
        let line = json!({
            "id": unreadable.id,
            "reason": unreadable.reason,
            "error": unreadable.error,
            "failed_at_ms": unreadable.failed_at_ms,
        });
        println!("{line}");
    }
    Ok(())
}

fn describe(stored: &StoredDeadLetter) -> serde_json::Value {
    let letter = &stored.letter;
    let target = &letter.job.notification.target;
    json!({
        "id": stored.id,
        "job_id": letter.job.id,
        "reason": letter.reason,
        "attempts": letter.attempts,
        "service": target.service.as_str(),
        "device_token": dispatcher::telemetry::masked(&target.device_token),
        "failed_at_ms": letter.failed_at_ms,
        "last_answer": letter.last_answer,
    })
}

async fn replay(queue: &Arc<dyn Queue>, ids: &[String], count: usize) -> anyhow::Result<()> {
    let letters = selected(queue, ids, count).await?;
    let mut replayed = Vec::new();
    for stored in letters {
        let mut job = stored.letter.job.clone();
        // A new id: the old one is still remembered by the append's idempotency window.
        job.id = JobId::new();
        job.attempt = 0;
        job.reply_to = None;
        queue.append(&job).await?;
        replayed.push(stored.id);
    }
    let removed = queue.remove_dead_letters(&replayed).await?;
    println!(
        "replayed {} dead letters ({removed} removed)",
        replayed.len()
    );
    Ok(())
}

async fn purge(queue: &Arc<dyn Queue>, ids: &[String], all: bool) -> anyhow::Result<()> {
    let ids: Vec<String> = if all {
        let mut ids: Vec<String> = queue
            .dead_letters(usize::MAX)
            .await?
            .into_iter()
            .map(|stored| stored.id)
            .collect();
        ids.extend(
            queue
                .unreadable_dead_letters(usize::MAX)
                .await?
                .into_iter()
                .map(|unreadable| unreadable.id),
        );
        ids
    } else if ids.is_empty() {
        anyhow::bail!("name dead letters with --id, or pass --all");
    } else {
        ids.to_vec()
    };
    let removed = queue.remove_dead_letters(&ids).await?;
    println!("purged {removed} dead letters");
    Ok(())
}

async fn selected(
    queue: &Arc<dyn Queue>,
    ids: &[String],
    count: usize,
) -> anyhow::Result<Vec<StoredDeadLetter>> {
    if ids.is_empty() {
        return Ok(queue.dead_letters(count).await?);
    }
    let all = queue.dead_letters(usize::MAX).await?;
    let missing: Vec<&String> = ids
        .iter()
        .filter(|id| !all.iter().any(|stored| &stored.id == *id))
        .collect();
    if !missing.is_empty() {
        anyhow::bail!("no dead letter with id {missing:?}");
    }
    Ok(all
        .into_iter()
        .filter(|stored| ids.contains(&stored.id))
        .collect())
}

//! The dispatcher binary: `dispatcher --config FILE`, one consumer of the job queue.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use dispatcher::DispatcherConfig;
use pushgate_shared::queue::{QueueOptions, RedisQueue};
use serde::Deserialize;
use tracing_subscriber::EnvFilter;

/// Delivers queued pushes to FCM and APNs as one consumer of the dispatcher group.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// TOML file: `redis_url`, `[queue]` (prefix, shards) and `[dispatcher]` with its
    /// `[[dispatcher.apps]]`.
    #[arg(long, env = "PUSHGATE_DISPATCHER_CONFIG")]
    config: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    redis_url: String,
    #[serde(default)]
    queue: QueueSettings,
    #[serde(default)]
    dispatcher: DispatcherConfig,
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct QueueSettings {
    prefix: String,
    shards: u16,
}

impl Default for QueueSettings {
    fn default() -> Self {
        let options = QueueOptions::default();
        QueueSettings {
            prefix: options.prefix,
            shards: options.shards,
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let args = Args::parse();
    let text = std::fs::read_to_string(&args.config)
        .with_context(|| format!("cannot read {}", args.config.display()))?;
    let file: File =
        toml::from_str(&text).with_context(|| format!("{} is not valid", args.config.display()))?;

    let options = QueueOptions {
        prefix: file.queue.prefix,
        shards: file.queue.shards.max(1),
        ..QueueOptions::default()
    };
    let queue = RedisQueue::connect(&file.redis_url, options)
        .await
        .context("cannot connect to Redis")?;
    dispatcher::run(file.dispatcher, Arc::new(queue), shutdown_signal()).await?;
    Ok(())
}

async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}

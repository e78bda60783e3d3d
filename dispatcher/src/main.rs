//! The dispatcher binary: `dispatcher --config FILE`, one consumer of the job queue.
//! SIGTERM or SIGINT stops reading; sends in flight finish and settle before it exits.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use dispatcher::{Dispatcher, DispatcherConfig};
use pushgate_shared::queue::{Queue, QueueOptions, RedisQueue};
use pushgate_shared::registry::RedisDeviceRegistry;
use serde::Deserialize;
use tokio::signal::unix::{SignalKind, signal};

/// Delivers queued pushes to FCM and APNs as one consumer of the dispatcher group.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// TOML file: `redis_url`, optional `listen` (status routes), `[queue]` (prefix,
    /// shards) and `[dispatcher]` with its `[[dispatcher.apps]]`.
    #[arg(long, env = "PUSHGATE_DISPATCHER_CONFIG")]
    config: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    /// The Redis URL, here or as `[queue] redis_url` (as in `pushgate.toml`).
    #[serde(default)]
    redis_url: Option<String>,
    /// `pushgate.toml`'s ingest section, accepted so one file serves both; not used here.
    #[serde(default, rename = "ingest")]
    _ingest: Option<toml::Value>,
    /// Where to serve `/healthcheck`, `/health/live` and `/metrics`; unset serves none.
    #[serde(default)]
    listen: Option<SocketAddr>,
    #[serde(default)]
    queue: QueueSettings,
    #[serde(default)]
    dispatcher: DispatcherConfig,
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct QueueSettings {
    redis_url: Option<String>,
    prefix: String,
    shards: u16,
}

impl Default for QueueSettings {
    fn default() -> Self {
        let options = QueueOptions::default();
        QueueSettings {
            redis_url: None,
            prefix: options.prefix,
            shards: options.shards,
        }
    }
}

/// mimalloc instead of the system allocator: under load, glibc's malloc and free took
/// about a seventh of the process's CPU time (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    pushgate_shared::logging::init("info");
    let args = Args::parse();
    match serve(&args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // The whole chain on one report, without the backtrace `RUST_BACKTRACE` adds.
            eprintln!(
                "error: {}",
                pushgate_shared::logging::error_report(error.as_ref())
            );
            ExitCode::FAILURE
        }
    }
}

/// Loads the configuration, connects the queue and dispatches until a signal.
async fn serve(args: &Args) -> anyhow::Result<()> {
    // Listen before anything else: a SIGTERM during start-up must stop the process
    // cleanly, not end it with the signal's default action.
    let mut shutdown = Box::pin(shutdown_signal().context("cannot listen for signals")?);
    let (redis_url, file) = load(&args.config)?;

    let options = QueueOptions {
        prefix: file.queue.prefix,
        shards: file.queue.shards.max(1),
        ..QueueOptions::default()
    };
    // The device registry lives beside the queue (same Redis, same prefix), as ingest's.
    let prefix = options.prefix.clone();
    let connect = async {
        let queue = RedisQueue::connect(&redis_url, options).await?;
        let registry = RedisDeviceRegistry::connect(&redis_url, &prefix).await?;
        anyhow::Ok((queue, registry))
    };
    let (queue, registry) = tokio::select! {
        connected = connect => connected.with_context(|| {
            let path = args.config.display();
            format!("cannot connect to the Redis of `redis_url` in {path}")
        })?,
        () = &mut shutdown => {
            tracing::info!("stopped before the queue was connected");
            return Ok(());
        }
    };
    let queue: Arc<dyn Queue> = Arc::new(queue);
    let dispatcher =
        Dispatcher::new(file.dispatcher, queue.clone())?.with_registry(Arc::new(registry));
    if let Some(address) = file.listen {
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .with_context(|| format!("cannot listen on `listen` = {address}"))?;
        tracing::info!(%address, "serving /healthcheck, /health/live and /metrics");
        let routes = dispatcher::status::router(queue, dispatcher.apps());
        // Ends with the process, once the dispatcher has drained.
        tokio::spawn(async move { axum::serve(listener, routes).await });
    }
    dispatcher.run(shutdown).await?;
    Ok(())
}

/// Reads and checks the configuration file; errors name the file and the key at fault.
/// Returns the Redis URL (from the top or from `[queue]`) beside the file.
fn load(path: &Path) -> anyhow::Result<(String, File)> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the configuration file {}", path.display()))?;
    let mut file: File = toml::from_str(&text)
        .with_context(|| format!("{} is not a valid configuration", path.display()))?;
    let Some(redis_url) = file
        .redis_url
        .take()
        .or_else(|| file.queue.redis_url.take())
    else {
        anyhow::bail!(
            "{}: redis_url is missing (at the top or in [queue]): the dispatcher needs Redis",
            path.display()
        );
    };
    let folder = path.parent().unwrap_or(Path::new("."));
    for app in &mut file.dispatcher.apps {
        app.resolve_paths(folder);
    }
    Ok((redis_url, file))
}

/// Completes at the first SIGTERM or SIGINT; the handlers are installed at once.
fn shutdown_signal() -> std::io::Result<impl Future<Output = ()> + Send + 'static> {
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    Ok(async move {
        let received = tokio::select! {
            _ = terminate.recv() => "SIGTERM",
            _ = interrupt.recv() => "SIGINT",
        };
        tracing::info!(
            signal = received,
            "shutdown requested: finishing sends in flight"
        );
    })
}

//! The Lambda figures: the size of the ingest binary, and how long the process takes from
//! start to its first poll of the Lambda Runtime API, the moment it can take an event.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::procs::Proc;
use crate::report::Lambda;

/// Where `cargo lambda build --release --arm64` leaves the ingest binary.
const ARM64_BOOTSTRAP: &str = "target/lambda/ingest/bootstrap";

/// Measures the binary (the arm64 build when there is one) and `runs` starts of `ingest`
/// under a stand-in Runtime API that never hands out an event.
pub async fn measure(
    ingest: &Path,
    redis_url: &str,
    dir: &Path,
    runs: usize,
) -> anyhow::Result<Lambda> {
    let arm64 = workspace_root().map(|root| root.join(ARM64_BOOTSTRAP));
    let (binary, path) = match arm64.filter(|path| path.is_file()) {
        Some(path) => (
            "arm64, `cargo lambda build --release --arm64`".to_owned(),
            path,
        ),
        None => (
            "x86_64 release build (no arm64 build found)".to_owned(),
            ingest.to_owned(),
        ),
    };
    let size = std::fs::metadata(&path)
        .with_context(|| format!("reading {}", path.display()))?
        .len();

    let (polled, mut polls) = mpsc::unbounded_channel();
    let api = Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .with_state(polled);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let api_addr = listener.local_addr()?;
    let server = tokio::spawn(async move { axum::serve(listener, api).await });

    let mut times = Vec::with_capacity(runs);
    for run in 0..runs {
        let mut command = crate::procs::clean_command(ingest);
        command
            .env("AWS_LAMBDA_RUNTIME_API", api_addr.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", "pushgate-ingest")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", "bench")
            .env("PUSHGATE_REDIS_URL", redis_url)
            .env("PUSHGATE_AUTH", "off");
        let started = Instant::now();
        let proc = Proc::spawn(
            "ingest (Lambda)",
            command,
            &dir.join(format!("lambda-{run}.log")),
        )?;
        let polled_at = tokio::time::timeout(Duration::from_secs(30), polls.recv())
            .await
            .context("ingest under the stand-in Runtime API never asked for an event")?
            .context("the stand-in Runtime API stopped")?;
        times.push(polled_at - started);
        proc.stop();
    }
    server.abort();
    times.sort();
    Ok(Lambda {
        binary,
        size,
        ready_median: times
            .get(times.len().saturating_sub(1) / 2)
            .copied()
            .unwrap_or_default(),
        ready_max: times.last().copied().unwrap_or_default(),
        runs,
    })
}

/// The Runtime API's "next invocation": note the time, then hold the poll open, as the
/// real API does while no event is waiting.
async fn next(State(polled): State<mpsc::UnboundedSender<Instant>>) -> &'static str {
    let _ = polled.send(Instant::now());
    std::future::pending::<()>().await;
    ""
}

fn workspace_root() -> Option<PathBuf> {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_owned)
}

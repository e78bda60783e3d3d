//! The ingest binary: under AWS Lambda when its runtime API is set, otherwise a local
//! HTTP server on `PUSHGATE_LISTEN`.

use std::process::ExitCode;

use ingest::IngestConfig;

/// mimalloc instead of the system allocator: under load, glibc's malloc and free took
/// about a seventh of the process's CPU time (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    // Under Lambda, AWS_LAMBDA_LOG_FORMAT and AWS_LAMBDA_LOG_LEVEL apply.
    pushgate_shared::logging::init("info");
    let started = match IngestConfig::from_env() {
        Ok(config) => ingest::run(config, shutdown_signal())
            .await
            .map_err(anyhow::Error::from),
        Err(error) => Err(error.into()),
    };
    match started {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!(
                "ingest: {}",
                pushgate_shared::logging::error_report(error.as_ref())
            );
            ExitCode::FAILURE
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

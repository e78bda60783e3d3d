//! The `pushgate` command: run the gateway, the mock providers, send a test push, and
//! manage dead letters.

mod config;
mod demo;
mod dlq;
mod mock;
mod send;
mod up;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

/// A MongoosePush-compatible push gateway for FCM and APNs.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run ingest and dispatcher in one process (demo mode without --config).
    Up(up::UpArgs),
    /// Run the mock FCM and APNs alone.
    Mock(mock::MockArgs),
    /// Send one notification through the configured apps and print the provider's answer.
    Send(send::SendArgs),
    /// Inspect, replay or purge dead letters.
    Dlq(dlq::DlqArgs),
}

/// mimalloc instead of the system allocator: under load, glibc's malloc and free took
/// about a seventh of the process's CPU time (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let demo = matches!(&cli.command, Command::Up(args) if args.config.is_none());
    // Demo mode shows each delivery; in production per-notification lines are debug.
    let default_filter = if demo {
        "info,dispatcher::telemetry=debug"
    } else {
        "info"
    };
    pushgate_shared::logging::init(default_filter);

    let stop = CancellationToken::new();
    tokio::spawn(cancel_on_signal(stop.clone()));
    let result = match cli.command {
        Command::Up(args) => up::run(args, stop).await.map(|()| true),
        Command::Mock(args) => mock::run(args, stop).await.map(|()| true),
        Command::Send(args) => send::run(args).await,
        Command::Dlq(args) => dlq::run(args).await.map(|()| true),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!(
                "pushgate: {}",
                pushgate_shared::logging::error_report(error.as_ref())
            );
            ExitCode::from(2)
        }
    }
}

/// Cancels `stop` on Ctrl-C or SIGTERM.
async fn cancel_on_signal(stop: CancellationToken) {
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
    tracing::info!("stopping");
    stop.cancel();
}

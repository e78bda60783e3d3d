//! `pushgate mock`: the mock FCM and APNs alone, for local runs and benchmarks.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use pushgate_testkit::{MockApns, MockApnsOptions, MockFcm, MockFcmOptions};
use tokio_util::sync::CancellationToken;

/// Options of `pushgate mock`.
#[derive(Debug, clap::Args)]
pub struct MockArgs {
    /// Mock FCM (OAuth token endpoint and messages:send, HTTP/1.1 and h2c).
    #[arg(long, default_value = "127.0.0.1:4001")]
    pub fcm: SocketAddr,
    /// Mock APNs over HTTP/2 with TLS (a certificate generated at start).
    #[arg(long, default_value = "127.0.0.1:2197")]
    pub apns_tls: SocketAddr,
    /// Mock APNs over h2c (HTTP/2 without TLS).
    #[arg(long, default_value = "127.0.0.1:2198")]
    pub apns_h2c: SocketAddr,
    /// Where to write the mock APNs certificate (PEM), for `extra_root_pem`.
    #[arg(long)]
    pub write_ca: Option<PathBuf>,
    /// Where to write a service-account JSON whose `token_uri` is the mock FCM.
    #[arg(long)]
    pub write_service_account: Option<PathBuf>,
}

/// Runs the mocks until `stop` is cancelled.
///
/// # Errors
///
/// A port that cannot be bound or a file that cannot be written.
pub async fn run(args: MockArgs, stop: CancellationToken) -> anyhow::Result<()> {
    let fcm = MockFcm::start(MockFcmOptions {
        http_addr: args.fcm,
        ..MockFcmOptions::default()
    })
    .await
    .context("cannot start the mock FCM")?;
    let apns = MockApns::start(MockApnsOptions {
        tls_addr: args.apns_tls,
        h2c_addr: args.apns_h2c,
        ..MockApnsOptions::default()
    })
    .await
    .context("cannot start the mock APNs")?;

    if let Some(path) = &args.write_ca {
        std::fs::write(path, apns.ca_pem())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let service_account = fcm.service_account()?;
    if let Some(path) = &args.write_service_account {
        std::fs::copy(service_account.path(), path)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }

    println!("mock FCM on {} (project {})", fcm.url(), fcm.project_id());
    println!("  token endpoint {}", fcm.token_uri());
    println!(
        "mock APNs on {} (TLS) and {} (h2c)",
        apns.tls_url(),
        apns.h2c_url()
    );
    println!(
        "control API on each: /mock/error-tokens, /mock/activity, /mock/reset, /mock/outage, /mock/latency"
    );

    stop.cancelled().await;
    fcm.shutdown().await;
    apns.shutdown().await;
    Ok(())
}

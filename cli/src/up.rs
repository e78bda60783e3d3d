//! `pushgate up`: ingest and dispatcher in one process, sharing one queue. Without a
//! configuration it runs the demo: in-memory queue and in-process mock providers.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::PushgateConfig;
use crate::demo::Demo;

/// Options of `pushgate up`.
#[derive(Debug, clap::Args)]
pub struct UpArgs {
    /// Configuration file (TOML); without it, and without Redis or apps in the environment
    /// (`PUSHGATE_REDIS_URL`, MongoosePush's `PUSH_*`), pushgate runs the demo.
    #[arg(long, env = "PUSHGATE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address of the HTTP listener; overrides `ingest.listen`.
    #[arg(long)]
    pub listen: Option<SocketAddr>,
}

/// Runs until `stop` is cancelled, then drains the dispatcher and returns.
///
/// # Errors
///
/// A configuration, queue, listener or app that cannot be set up.
pub async fn run(args: UpArgs, stop: CancellationToken) -> anyhow::Result<()> {
    let from_environment = match &args.config {
        Some(path) => Some(PushgateConfig::load(path)?),
        None => PushgateConfig::from_environment()?,
    };
    let (mut config, demo) = match from_environment {
        Some(config) => (config, None),
        None => {
            let demo = Demo::start()
                .await
                .context("cannot start the mock providers")?;
            let mut config = PushgateConfig::default();
            config.dispatcher.apps = demo.apps.clone();
            // Open on purpose: the demo listens on loopback and delivers to mocks.
            config.ingest.auth.required = false;
            (config, Some(demo))
        }
    };
    if let Some(listen) = args.listen {
        config.ingest.listen = listen;
    }
    config.check_serving()?;

    let queue = config.connect_queue().await?;
    let ingest_config = config.ingest_config();
    // One registry for both halves: ingest fans events out to its devices, the dispatcher
    // removes the dead ones.
    let registry = ingest::serve::connect_registry(&ingest_config).await?;
    let dispatcher = dispatcher::Dispatcher::new(config.dispatcher.clone(), queue.clone())?
        .with_registry(registry.clone());
    // /healthcheck reports the dispatcher's apps beside the queue.
    let state = ingest::serve::state_with_registry(&ingest_config, queue, registry)
        .await?
        .with_health(dispatcher.apps());
    let listener = TcpListener::bind(ingest_config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", ingest_config.listen))?;
    let address = listener.local_addr()?;

    let dispatcher_stop = stop.clone();
    let dispatcher = tokio::spawn(dispatcher.run(async move { dispatcher_stop.cancelled().await }));
    let ingest_stop = stop.clone();
    let router = ingest::app(state);
    let until_stopped = async move { ingest_stop.cancelled().await };
    let server = match &ingest_config.tls {
        Some(tls) => tokio::spawn(ingest::tls::serve_tls(
            listener,
            router,
            tls.server_config()?,
            until_stopped,
        )),
        None => tokio::spawn(ingest::serve_listener(listener, router, until_stopped)),
    };

    let scheme = if ingest_config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    announce(scheme, address, demo.as_ref());

    let (dispatched, served) = tokio::join!(dispatcher, server);
    dispatched.context("the dispatcher task failed")??;
    served.context("the HTTP server task failed")??;
    drop(demo);
    tracing::info!("pushgate stopped");
    Ok(())
}

/// Prints where pushgate listens and, in demo mode, the mocks and a push to try. A closed
/// standard output (`pushgate up | head -3`) must not stop the gateway, so write errors
/// are ignored.
fn announce(scheme: &str, address: SocketAddr, demo: Option<&Demo>) {
    use std::io::Write;

    let mut text = format!("pushgate listening on {scheme}://{address}\n");
    if let Some(demo) = demo {
        let apns = demo.apns.h2c_url();
        text.push_str(&format!(
            "demo mode: in-memory queue, mock providers in this process\n\
             mock FCM on {fcm}\n\
             mock APNs on {apns}\n\
             \n\
             Send a push (MongoosePush v3, as MongooseIM does):\n\
             \n  \
             curl -i http://{address}/v3/notification/f534534543 -H 'content-type: application/json' \\\n    \
             -d '{{\"service\":\"apns\",\"alert\":{{\"title\":\"alice@localhost\",\"body\":\"OH, HAI!\"}}}}'\n\
             \n\
             See what the mock APNs received: curl {apns}/mock/activity\n",
            fcm = demo.fcm.url(),
        ));
    }
    let mut stdout = std::io::stdout().lock();
    let _ = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush());
}

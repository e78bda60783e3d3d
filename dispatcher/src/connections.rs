//! An app's HTTP connections to its provider: one reqwest client per connection (each
//! keeps one HTTP/2 connection and multiplexes requests over it), used in turn.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// How often an idle HTTP/2 connection is pinged so a dead one is noticed early.
const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(30);

/// How the clients of one app are built.
#[derive(Clone, Default)]
pub(crate) struct ClientSettings {
    pub count: usize,
    pub request_timeout: Duration,
    pub extra_roots: Vec<reqwest::Certificate>,
    pub identity: Option<reqwest::Identity>,
    /// Speak HTTP/2 only: prior knowledge on `http://` (h2c), ALPN `h2` alone on TLS.
    pub http2_only: bool,
}

impl ClientSettings {
    /// One client with these settings.
    pub fn client(&self) -> reqwest::Result<reqwest::Client> {
        let mut builder = reqwest::Client::builder()
            .timeout(self.request_timeout)
            .connect_timeout(self.request_timeout)
            .http2_keep_alive_interval(KEEP_ALIVE_INTERVAL)
            .http2_keep_alive_timeout(self.request_timeout)
            .http2_keep_alive_while_idle(true);
        if !self.extra_roots.is_empty() {
            builder = builder.tls_certs_merge(self.extra_roots.iter().cloned());
        }
        if let Some(identity) = &self.identity {
            builder = builder.identity(identity.clone());
        }
        if self.http2_only {
            builder = builder.http2_prior_knowledge();
        }
        builder.build()
    }
}

/// The clients of one app, handed out round-robin.
pub(crate) struct Connections {
    clients: Vec<reqwest::Client>,
    next: AtomicUsize,
}

impl Connections {
    /// Builds `settings.count` clients (at least one).
    pub fn build(settings: &ClientSettings) -> reqwest::Result<Self> {
        let clients = (0..settings.count.max(1))
            .map(|_| settings.client())
            .collect::<reqwest::Result<_>>()?;
        Ok(Connections {
            clients,
            next: AtomicUsize::new(0),
        })
    }

    /// The client for the next request.
    pub fn pick(&self) -> &reqwest::Client {
        let turn = self.next.fetch_add(1, Ordering::Relaxed);
        &self.clients[turn % self.clients.len()]
    }

    /// How many clients (connections) there are.
    pub fn len(&self) -> usize {
        self.clients.len()
    }
}

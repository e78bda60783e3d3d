//! TLS on the local listener (PEM certificate chain and key), with optional client
//! certificate verification: MongooseIM's HTTP pools can present one, so a gateway
//! reachable beyond loopback can require it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum_server::tls_rustls::RustlsConfig;
use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;

/// How long requests in progress may take to finish once shutdown begins.
const GRACE: Duration = Duration::from_secs(10);

/// The files of the listener's TLS identity, and the CA its clients must chain to.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain, the server's own certificate first.
    pub cert_path: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key_path: PathBuf,
    /// PEM CA certificates; when set, every client must present a certificate that
    /// chains to one of them, and connections without one are refused.
    #[serde(default)]
    pub client_ca_path: Option<PathBuf>,
}

/// Why the TLS settings cannot be used; each names the file at fault.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {what} {path}: {reason}")]
    Read {
        what: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error("{what} {path} holds no certificate")]
    NoCertificate { what: &'static str, path: PathBuf },
    #[error("the TLS identity ({cert} and {key}) is refused: {reason}")]
    Identity {
        cert: PathBuf,
        key: PathBuf,
        reason: String,
    },
}

fn certificates(what: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let read = |reason: String| TlsError::Read {
        what,
        path: path.to_owned(),
        reason,
    };
    let bytes = std::fs::read(path).map_err(|error| read(error.to_string()))?;
    let certificates = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| read(error.to_string()))?;
    if certificates.is_empty() {
        return Err(TlsError::NoCertificate {
            what,
            path: path.to_owned(),
        });
    }
    Ok(certificates)
}

impl TlsConfig {
    /// The rustls server configuration: ALPN `h2` and `http/1.1`, and client verification
    /// when a client CA is set.
    ///
    /// # Errors
    ///
    /// A [`TlsError`] naming the file that cannot be read or used.
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let chain = certificates("certificate", &self.cert_path)?;
        let key = PrivateKeyDer::from_pem_file(&self.key_path).map_err(|error| TlsError::Read {
            what: "private key",
            path: self.key_path.clone(),
            reason: error.to_string(),
        })?;
        let identity_refused = |reason: String| TlsError::Identity {
            cert: self.cert_path.clone(),
            key: self.key_path.clone(),
            reason,
        };
        let builder = rustls::ServerConfig::builder();
        let builder = match &self.client_ca_path {
            None => builder.with_no_client_auth(),
            Some(path) => {
                let mut roots = RootCertStore::empty();
                for certificate in certificates("client CA", path)? {
                    roots.add(certificate).map_err(|error| TlsError::Read {
                        what: "client CA",
                        path: path.clone(),
                        reason: error.to_string(),
                    })?;
                }
                let verifier = WebPkiClientVerifier::builder(Arc::new(roots))
                    .build()
                    .map_err(|error| TlsError::Read {
                        what: "client CA",
                        path: path.clone(),
                        reason: error.to_string(),
                    })?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder
            .with_single_cert(chain, key)
            .map_err(|error| identity_refused(error.to_string()))?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

/// Serves `router` over TLS on `listener` until `shutdown` completes, then lets requests
/// in progress finish (up to ten seconds).
///
/// # Errors
///
/// The listener's I/O error.
pub async fn serve_tls(
    listener: tokio::net::TcpListener,
    router: Router,
    tls: Arc<rustls::ServerConfig>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let handle = axum_server::Handle::<SocketAddr>::new();
    let stopper = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        stopper.graceful_shutdown(Some(GRACE));
    });
    let listener = listener.into_std()?;
    axum_server::from_tcp_rustls(listener, RustlsConfig::from_config(tls))?
        .handle(handle)
        .serve(router.into_make_service())
        .await
}

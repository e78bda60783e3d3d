//! TLS for the mocks: self-signed certificates made with rcgen (a server certificate for
//! `localhost` and `127.0.0.1`, a client certificate for APNs certificate auth) and a
//! rustls server configuration that offers HTTP/2 and HTTP/1.1 by ALPN.

use std::sync::Arc;

use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, KeyPair};
use rustls::RootCertStore;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;

/// ALPN protocols the mock servers offer, most preferred first.
pub const ALPN_PROTOCOLS: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// Why a certificate or a TLS server configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// rcgen could not generate the key or the certificate.
    #[error("cannot generate the certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// The PEM given as the trusted client certificate holds no usable certificate.
    #[error("invalid trusted client certificate PEM: {0}")]
    ClientCertificate(String),
    /// rustls refused the certificate, the key or the verifier.
    #[error("cannot build the TLS configuration: {0}")]
    Config(#[from] rustls::Error),
    /// rustls refused the trusted client certificate as a trust anchor.
    #[error("cannot build the client-certificate verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
}

/// Installs aws-lc-rs as the process-wide rustls crypto provider unless one is installed.
///
/// rustls panics when it finds more than one provider compiled in and none installed, so
/// the mocks call this before building a configuration; tests and binaries may call it too.
pub fn ensure_crypto_provider() {
    // An Err only says that some provider is already installed, which is all we need.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// A self-signed certificate and its private key, in PEM and DER.
pub struct SelfSignedCertificate {
    cert_pem: String,
    key_pem: String,
    cert_der: CertificateDer<'static>,
    key_der: PrivatePkcs8KeyDer<'static>,
}

impl SelfSignedCertificate {
    /// A server certificate valid for `localhost` and `127.0.0.1` (an IP address SAN).
    ///
    /// # Errors
    /// Fails only when rcgen cannot generate the key or sign the certificate.
    pub fn localhost() -> Result<Self, TlsError> {
        let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        Self::generate(
            names,
            "pushgate mock server",
            ExtendedKeyUsagePurpose::ServerAuth,
        )
    }

    /// A client certificate named `common_name`, for TLS client authentication.
    ///
    /// # Errors
    /// Fails only when rcgen cannot generate the key or sign the certificate.
    pub fn client(common_name: &str) -> Result<Self, TlsError> {
        Self::generate(Vec::new(), common_name, ExtendedKeyUsagePurpose::ClientAuth)
    }

    fn generate(
        names: Vec<String>,
        common_name: &str,
        usage: ExtendedKeyUsagePurpose,
    ) -> Result<Self, TlsError> {
        let mut params = CertificateParams::new(names)?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.extended_key_usages = vec![usage];

        let key = KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        Ok(Self {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            cert_der: cert.der().clone(),
            key_der: PrivatePkcs8KeyDer::from(key.serialize_der()),
        })
    }

    /// The certificate in PEM; clients trust it as a root (`Certificate::from_pem`).
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The PKCS#8 private key in PEM.
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }
}

/// Builds a rustls server configuration for `identity` with ALPN `h2` then `http/1.1`.
///
/// With `trusted_client_cert_pem`, the server asks for a client certificate and accepts
/// one that chains to it, but still lets clients without a certificate connect (so the
/// mock can answer them the way APNs does).
///
/// # Errors
/// Fails when the trusted PEM holds no certificate or rustls refuses a part.
pub fn server_config(
    identity: &SelfSignedCertificate,
    trusted_client_cert_pem: Option<&str>,
) -> Result<Arc<ServerConfig>, TlsError> {
    ensure_crypto_provider();

    let builder = ServerConfig::builder();
    let builder = match trusted_client_cert_pem {
        None => builder.with_no_client_auth(),
        Some(pem) => {
            let mut roots = RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                let cert = cert.map_err(|error| TlsError::ClientCertificate(error.to_string()))?;
                roots.add(cert)?;
            }
            if roots.is_empty() {
                return Err(TlsError::ClientCertificate(
                    "no certificate found".to_owned(),
                ));
            }
            let verifier = WebPkiClientVerifier::builder(Arc::new(roots))
                .allow_unauthenticated()
                .build()?;
            builder.with_client_cert_verifier(verifier)
        }
    };

    let key = PrivateKeyDer::Pkcs8(identity.key_der.clone_key());
    let mut config = builder.with_single_cert(vec![identity.cert_der.clone()], key)?;
    config.alpn_protocols = ALPN_PROTOCOLS.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

//! TLS on the real listener: a push over HTTPS, and with a client CA configured, refusal
//! of clients without a certificate or with one from another CA.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::*;
use ingest::IngestConfig;
use ingest::tls::{TlsConfig, TlsError, serve_tls};
use pushgate_testkit::credentials::TempDir;
use pushgate_testkit::tls::SelfSignedCertificate;
use tokio::net::TcpListener;

struct Files {
    _dir: TempDir,
    server_cert: PathBuf,
    server_key: PathBuf,
    client_ca: PathBuf,
    server_pem: String,
    client: SelfSignedCertificate,
    stranger: SelfSignedCertificate,
}

fn files() -> Files {
    let dir = TempDir::new().unwrap();
    let server = SelfSignedCertificate::localhost().unwrap();
    let client = SelfSignedCertificate::client("mongooseim").unwrap();
    let stranger = SelfSignedCertificate::client("someone else").unwrap();
    Files {
        server_cert: dir.write("server.pem", server.cert_pem()).unwrap(),
        server_key: dir.write("server-key.pem", server.key_pem()).unwrap(),
        // A self-signed client certificate is its own CA.
        client_ca: dir.write("client-ca.pem", client.cert_pem()).unwrap(),
        server_pem: server.cert_pem().to_owned(),
        client,
        stranger,
        _dir: dir,
    }
}

/// Serves a fresh router over TLS with `tls`; returns its `https://127.0.0.1:port` URL.
async fn serve(tls: &TlsConfig) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "https://127.0.0.1:{}",
        listener.local_addr().unwrap().port()
    );
    let config = tls.server_config().unwrap();
    tokio::spawn(serve_tls(
        listener,
        router(embedded()),
        config,
        std::future::pending(),
    ));
    url
}

fn client(files: &Files, identity: Option<&SelfSignedCertificate>) -> reqwest::Client {
    let root = reqwest::Certificate::from_pem(files.server_pem.as_bytes()).unwrap();
    let mut builder = reqwest::Client::builder()
        .tls_certs_only([root])
        .timeout(Duration::from_secs(10));
    if let Some(identity) = identity {
        let pem = format!("{}{}", identity.cert_pem(), identity.key_pem());
        builder = builder.identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap());
    }
    builder.build().unwrap()
}

async fn push(client: &reqwest::Client, url: &str) -> reqwest::Result<reqwest::Response> {
    client
        .post(format!("{url}/v3/notification/f534534543"))
        .header("content-type", "application/json")
        .body(MONGOOSEIM_ALERT)
        .send()
        .await
}

#[tokio::test]
async fn pushes_arrive_over_tls_without_client_certificates() {
    let files = files();
    let url = serve(&TlsConfig {
        cert_path: files.server_cert.clone(),
        key_path: files.server_key.clone(),
        client_ca_path: None,
    })
    .await;

    let answer = push(&client(&files, None), &url).await.unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.text().await.unwrap(), "null");
}

#[tokio::test]
async fn a_required_client_certificate_is_checked() {
    let files = files();
    let url = serve(&TlsConfig {
        cert_path: files.server_cert.clone(),
        key_path: files.server_key.clone(),
        client_ca_path: Some(files.client_ca.clone()),
    })
    .await;

    let trusted = push(&client(&files, Some(&files.client)), &url)
        .await
        .unwrap();
    assert_eq!(trusted.status(), 200);

    let anonymous = push(&client(&files, None), &url).await;
    assert!(anonymous.is_err(), "no certificate: {anonymous:?}");
    let stranger = push(&client(&files, Some(&files.stranger)), &url).await;
    assert!(
        stranger.is_err(),
        "a certificate of another CA: {stranger:?}"
    );
}

#[tokio::test]
async fn unusable_tls_files_are_refused_naming_the_file() {
    let files = files();
    let missing = files.server_cert.with_file_name("absent.pem");
    let cases = [
        (
            missing.clone(),
            files.server_key.clone(),
            None,
            missing.clone(),
        ),
        (
            files.server_key.clone(),
            files.server_key.clone(),
            None,
            files.server_key.clone(),
        ),
        (
            files.server_cert.clone(),
            files.server_key.clone(),
            Some(missing.clone()),
            missing.clone(),
        ),
    ];
    for (cert_path, key_path, client_ca_path, named) in cases {
        let tls = TlsConfig {
            cert_path,
            key_path,
            client_ca_path,
        };
        let error: TlsError = tls.server_config().unwrap_err();
        assert!(
            error.to_string().contains(&named.display().to_string()),
            "{tls:?}: {error}"
        );
    }
}

fn lookup_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let pairs: Vec<(String, String)> = pairs
        .iter()
        .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
        .collect();
    move |name| {
        pairs
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
    }
}

#[test]
fn tls_variables_go_together() {
    let open = ("PUSHGATE_AUTH", "off");
    let config = IngestConfig::from_lookup(lookup_of(&[
        open,
        ("PUSHGATE_TLS_CERT", "/etc/pushgate/cert.pem"),
        ("PUSHGATE_TLS_KEY", "/etc/pushgate/key.pem"),
        ("PUSHGATE_TLS_CLIENT_CA", "/etc/pushgate/mongooseim-ca.pem"),
    ]))
    .unwrap();
    let tls = config.tls.expect("TLS configured");
    assert_eq!(tls.cert_path, PathBuf::from("/etc/pushgate/cert.pem"));
    assert_eq!(
        tls.client_ca_path,
        Some(PathBuf::from("/etc/pushgate/mongooseim-ca.pem"))
    );

    let cases = [
        (("PUSHGATE_TLS_CERT", "c.pem"), "PUSHGATE_TLS_KEY"),
        (("PUSHGATE_TLS_KEY", "k.pem"), "PUSHGATE_TLS_CERT"),
        (
            ("PUSHGATE_TLS_CLIENT_CA", "ca.pem"),
            "PUSHGATE_TLS_CLIENT_CA",
        ),
    ];
    for (alone, variable) in cases {
        let error = IngestConfig::from_lookup(lookup_of(&[open, alone])).unwrap_err();
        assert_eq!(error.variable, variable);
    }
}

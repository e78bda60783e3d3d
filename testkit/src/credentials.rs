//! Throwaway provider credentials for tests: an FCM service-account file whose `token_uri`
//! points at a mock, and a generated APNs signing key (.p8) with a client certificate.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rcgen::KeyPair;
use serde_json::{Value, json};

use crate::apns::ApnsAuth;
use crate::tls::{SelfSignedCertificate, TlsError};

/// A test-only RSA private key (PKCS#8 PEM), made for this repository with `openssl genpkey`;
/// it belongs to no Google account and guards nothing (see `fixtures/README.md`).
pub const FCM_TEST_PRIVATE_KEY_PEM: &str =
    include_str!("../fixtures/fcm-test-service-account-key.pem");
/// The public half of [`FCM_TEST_PRIVATE_KEY_PEM`], which the mock FCM verifies against.
pub const FCM_TEST_PUBLIC_KEY_PEM: &str =
    include_str!("../fixtures/fcm-test-service-account-key.pub.pem");
/// The `client_email` of the test service account (the assertion's `iss`).
pub const FCM_TEST_CLIENT_EMAIL: &str = "pushgate-test@pushgate-test.iam.gserviceaccount.com";
/// The `private_key_id` of the test service account (the assertion's `kid`).
pub const FCM_TEST_PRIVATE_KEY_ID: &str = "0123456789abcdef0123456789abcdef01234567";
/// The `client_id` of the test service account.
pub const FCM_TEST_CLIENT_ID: &str = "100000000000000000001";

/// A directory under the system temp dir, removed with its content when dropped.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates a new, empty, uniquely named directory.
    ///
    /// # Errors
    /// Fails when the directory cannot be created.
    pub fn new() -> std::io::Result<Self> {
        let name = format!(
            "pushgate-testkit-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4()
        );
        let path = std::env::temp_dir().join(name);
        std::fs::create_dir(&path)?;
        Ok(Self { path })
    }

    /// The directory's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `contents` to `name` inside the directory, readable by the owner only.
    ///
    /// # Errors
    /// Fails when the file cannot be written.
    pub fn write(&self, name: &str, contents: &str) -> std::io::Result<PathBuf> {
        let path = self.path.join(name);
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        file.write_all(contents.as_bytes())?;
        Ok(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// The service-account JSON for `project_id`, signed by the test key, using `token_uri`.
pub fn service_account_json(project_id: &str, token_uri: &str) -> Value {
    json!({
        "type": "service_account",
        "project_id": project_id,
        "private_key_id": FCM_TEST_PRIVATE_KEY_ID,
        "private_key": FCM_TEST_PRIVATE_KEY_PEM,
        "client_email": FCM_TEST_CLIENT_EMAIL,
        "client_id": FCM_TEST_CLIENT_ID,
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
    })
}

/// A service-account JSON file in a temporary directory, deleted when dropped.
#[derive(Debug)]
pub struct ServiceAccountFile {
    dir: TempDir,
    path: PathBuf,
    json: Value,
}

impl ServiceAccountFile {
    /// Writes [`service_account_json`] to `service-account.json` in a new temporary directory.
    ///
    /// # Errors
    /// Fails when the file cannot be written.
    pub fn write(project_id: &str, token_uri: &str) -> std::io::Result<Self> {
        let json = service_account_json(project_id, token_uri);
        let dir = TempDir::new()?;
        let path = dir.write("service-account.json", &json.to_string())?;
        Ok(Self { dir, path, json })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The directory holding the file.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The JSON written to the file.
    pub fn json(&self) -> &Value {
        &self.json
    }
}

/// Generated APNs credentials: a token-auth signing key and a certificate-auth identity.
#[derive(Clone, Debug)]
pub struct ApnsCredentials {
    /// The key id (`kid` of the provider token), 10 characters like Apple's.
    pub key_id: String,
    /// The team id (`iss` of the provider token), 10 characters like Apple's.
    pub team_id: String,
    /// The .p8 signing key: a P-256 key in PKCS#8 PEM.
    pub signing_key_pem: String,
    /// The public half of the signing key in PEM, for the mock to verify tokens.
    pub verify_key_pem: String,
    /// The client certificate in PEM, for certificate auth.
    pub client_cert_pem: String,
    /// The client certificate's PKCS#8 private key in PEM.
    pub client_key_pem: String,
}

impl ApnsCredentials {
    /// Generates a fresh signing key and client certificate.
    ///
    /// # Errors
    /// Fails only when rcgen cannot generate a key or sign the certificate.
    pub fn generate() -> Result<Self, TlsError> {
        let key = KeyPair::generate()?;
        let client = SelfSignedCertificate::client("pushgate test APNs client")?;
        Ok(Self {
            key_id: apple_style_id(),
            team_id: apple_style_id(),
            signing_key_pem: key.serialize_pem(),
            verify_key_pem: key.public_key_pem(),
            client_cert_pem: client.cert_pem().to_owned(),
            client_key_pem: client.key_pem().to_owned(),
        })
    }

    /// The mock option that requires provider tokens signed by this key.
    pub fn token_auth(&self) -> ApnsAuth {
        ApnsAuth::Token {
            verify_key_pem: Some(self.verify_key_pem.clone()),
        }
    }

    /// The mock option that requires this client certificate.
    pub fn certificate_auth(&self) -> ApnsAuth {
        ApnsAuth::Certificate {
            trusted_cert_pem: self.client_cert_pem.clone(),
        }
    }

    /// Writes `AuthKey_<key_id>.p8`, `client-cert.pem` and `client-key.pem` to a new
    /// temporary directory.
    ///
    /// # Errors
    /// Fails when a file cannot be written.
    pub fn write_files(&self) -> std::io::Result<ApnsCredentialFiles> {
        let dir = TempDir::new()?;
        let p8_path = dir.write(
            &format!("AuthKey_{}.p8", self.key_id),
            &self.signing_key_pem,
        )?;
        let client_cert_path = dir.write("client-cert.pem", &self.client_cert_pem)?;
        let client_key_path = dir.write("client-key.pem", &self.client_key_pem)?;
        Ok(ApnsCredentialFiles {
            dir,
            p8_path,
            client_cert_path,
            client_key_path,
        })
    }
}

/// [`ApnsCredentials`] written to files, deleted when dropped.
#[derive(Debug)]
pub struct ApnsCredentialFiles {
    dir: TempDir,
    /// The .p8 signing key.
    pub p8_path: PathBuf,
    /// The client certificate PEM.
    pub client_cert_path: PathBuf,
    /// The client key PEM.
    pub client_key_path: PathBuf,
}

impl ApnsCredentialFiles {
    /// The directory holding the files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// Ten upper-case hex characters, the shape of Apple's key and team ids.
fn apple_style_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..10].to_uppercase()
}

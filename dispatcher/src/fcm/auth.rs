//! OAuth2 access tokens for FCM from a Google service account: an RS256 JWT exchanged at
//! the account's `token_uri`, cached, and renewed by one task at a time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};

/// The OAuth2 scope that allows sending FCM messages.
pub const FCM_SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";

/// Google's token endpoint, used when the service account names none.
pub const DEFAULT_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";

/// How long before its expiry a cached access token is renewed, in seconds; a token that
/// lives less than twice as long is renewed halfway through its life instead.
pub const RENEW_MARGIN_SECS: u64 = 300;

/// How long the signed assertion is valid, in seconds (Google's maximum).
const ASSERTION_LIFETIME_SECS: u64 = 3600;

/// The fields pushgate reads from a service-account JSON key file.
#[derive(Clone, Deserialize)]
pub struct ServiceAccount {
    pub project_id: String,
    pub client_email: String,
    pub private_key: String,
    #[serde(default)]
    pub private_key_id: Option<String>,
    #[serde(default)]
    pub token_uri: Option<String>,
}

impl std::fmt::Debug for ServiceAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccount")
            .field("project_id", &self.project_id)
            .field("client_email", &self.client_email)
            .field("private_key", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// Why no access token could be had.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The token endpoint could not be reached or broke off.
    #[error("the OAuth token endpoint could not be reached: {0}")]
    Transport(#[source] reqwest::Error),
    /// The token endpoint answered with an error status.
    #[error("the OAuth token endpoint answered {status}: {body}")]
    Refused { status: u16, body: String },
    /// The token endpoint's answer had no usable token.
    #[error("the OAuth token endpoint's answer is not a token: {0}")]
    BadAnswer(String),
    /// The assertion could not be signed with the service account's key.
    #[error("the service account's key cannot sign: {0}")]
    Sign(#[source] jsonwebtoken::errors::Error),
}

impl TokenError {
    /// True when the failure is on Google's side or the way there, so a later try may work.
    pub fn is_transient(&self) -> bool {
        match self {
            TokenError::Transport(_) => true,
            TokenError::Refused { status, .. } => *status >= 500 || *status == 429,
            TokenError::BadAnswer(_) | TokenError::Sign(_) => false,
        }
    }
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    scope: &'a str,
    aud: &'a str,
    iat: u64,
    exp: u64,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// A cached access token and the Unix second from which it is renewed.
#[derive(Debug, Clone)]
struct Cached {
    token: Arc<str>,
    renew_at: u64,
}

impl Cached {
    /// A token fetched at `now` that expires `lifetime` seconds later.
    fn new(token: Arc<str>, now: u64, lifetime: u64) -> Self {
        let margin = RENEW_MARGIN_SECS.min(lifetime / 2);
        Cached {
            token,
            renew_at: now + lifetime - margin,
        }
    }

    /// True while the token needs no renewal at `now`.
    fn is_fresh_at(&self, now: u64) -> bool {
        now < self.renew_at
    }
}

/// FCM access tokens for one service account, shared by all connections of an app.
pub struct AccessTokens {
    account: ServiceAccount,
    token_uri: String,
    key: EncodingKey,
    http: reqwest::Client,
    cached: RwLock<Option<Cached>>,
    renewing: tokio::sync::Mutex<()>,
    fetched: AtomicU64,
}

impl AccessTokens {
    /// Prepares token fetching for `account`; `token_uri` overrides the account's own.
    ///
    /// # Errors
    ///
    /// The key is not an RSA private key in PEM.
    pub fn new(
        account: ServiceAccount,
        token_uri: Option<String>,
        http: reqwest::Client,
    ) -> Result<Self, jsonwebtoken::errors::Error> {
        let key = EncodingKey::from_rsa_pem(account.private_key.as_bytes())?;
        let token_uri = token_uri
            .or_else(|| account.token_uri.clone())
            .unwrap_or_else(|| DEFAULT_TOKEN_URI.to_owned());
        Ok(AccessTokens {
            account,
            token_uri,
            key,
            http,
            cached: RwLock::new(None),
            renewing: tokio::sync::Mutex::new(()),
            fetched: AtomicU64::new(0),
        })
    }

    /// The Firebase project the account belongs to.
    pub fn project_id(&self) -> &str {
        &self.account.project_id
    }

    /// How many access tokens were fetched so far.
    pub fn fetched(&self) -> u64 {
        self.fetched.load(Ordering::Relaxed)
    }

    /// A token valid for at least [`RENEW_MARGIN_SECS`] more: the cached one, or a new one
    /// fetched by exactly one caller while the others wait for it.
    ///
    /// # Errors
    ///
    /// The token endpoint failed or refused the assertion.
    pub async fn token(&self) -> Result<Arc<str>, TokenError> {
        if let Some(token) = self.fresh_at(now_secs()) {
            return Ok(token);
        }
        let _turn = self.renewing.lock().await;
        if let Some(token) = self.fresh_at(now_secs()) {
            return Ok(token);
        }
        let fetched = self.fetch().await?;
        let token = fetched.token.clone();
        *self
            .cached
            .write()
            .expect("the token cache lock is never poisoned") = Some(fetched);
        Ok(token)
    }

    /// Drops `rejected` from the cache so the next [`AccessTokens::token`] fetches a new
    /// one; a token already replaced by another task is left alone.
    pub fn reject(&self, rejected: &str) {
        let mut cached = self
            .cached
            .write()
            .expect("the token cache lock is never poisoned");
        if cached.as_ref().is_some_and(|c| &*c.token == rejected) {
            *cached = None;
        }
    }

    fn fresh_at(&self, now: u64) -> Option<Arc<str>> {
        let cached = self
            .cached
            .read()
            .expect("the token cache lock is never poisoned");
        cached
            .as_ref()
            .filter(|c| c.is_fresh_at(now))
            .map(|c| c.token.clone())
    }

    async fn fetch(&self) -> Result<Cached, TokenError> {
        let now = now_secs();
        let assertion = self.assertion(now)?;
        let response = self
            .http
            .post(&self.token_uri)
            .form(&[
                ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                ("assertion", assertion.as_str()),
            ])
            .send()
            .await
            .map_err(|e| TokenError::Transport(e.without_url()))?;

        let status = response.status().as_u16();
        let body = response
            .bytes()
            .await
            .map_err(|e| TokenError::Transport(e.without_url()))?;
        if status != 200 {
            let body = String::from_utf8_lossy(&body).chars().take(200).collect();
            return Err(TokenError::Refused { status, body });
        }
        let answer: TokenAnswer =
            serde_json::from_slice(&body).map_err(|e| TokenError::BadAnswer(e.to_string()))?;
        if answer.access_token.is_empty() {
            return Err(TokenError::BadAnswer("empty access_token".to_owned()));
        }
        self.fetched.fetch_add(1, Ordering::Relaxed);
        crate::telemetry::credential_renewed(pushgate_shared::Service::Fcm);
        let lifetime = answer.expires_in.unwrap_or(ASSERTION_LIFETIME_SECS);
        Ok(Cached::new(answer.access_token.into(), now, lifetime))
    }

    /// The signed JWT that asks for an access token, issued at `now`.
    fn assertion(&self, now: u64) -> Result<String, TokenError> {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = self.account.private_key_id.clone();
        let claims = Claims {
            iss: &self.account.client_email,
            scope: FCM_SCOPE,
            aud: &self.token_uri,
            iat: now,
            exp: now + ASSERTION_LIFETIME_SECS,
        };
        jsonwebtoken::encode(&header, &claims, &self.key).map_err(TokenError::Sign)
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_renewed_five_minutes_before_expiry() {
        let cached = Cached::new("t".into(), 1_000, 3_600);
        assert!(cached.is_fresh_at(1_000));
        assert!(cached.is_fresh_at(4_600 - RENEW_MARGIN_SECS - 1));
        assert!(!cached.is_fresh_at(4_600 - RENEW_MARGIN_SECS));
        assert!(!cached.is_fresh_at(9_000));
    }

    #[test]
    fn short_lived_tokens_are_renewed_halfway() {
        let cached = Cached::new("t".into(), 1_000, 60);
        assert!(cached.is_fresh_at(1_029));
        assert!(!cached.is_fresh_at(1_030));
        assert!(!Cached::new("t".into(), 1_000, 0).is_fresh_at(1_000));
    }

    #[test]
    fn token_endpoint_failures_say_whether_to_retry() {
        let refused = |status| TokenError::Refused {
            status,
            body: String::new(),
        };
        assert!(refused(503).is_transient());
        assert!(refused(429).is_transient());
        assert!(!refused(400).is_transient());
        assert!(!refused(401).is_transient());
        assert!(!TokenError::BadAnswer("x".to_owned()).is_transient());
    }

    #[test]
    fn debug_output_hides_the_private_key() {
        let account = ServiceAccount {
            project_id: "demo-project".to_owned(),
            client_email: "pushgate@demo-project.iam.gserviceaccount.com".to_owned(),
            private_key: "-----BEGIN PRIVATE KEY-----secret".to_owned(),
            private_key_id: Some("kid1".to_owned()),
            token_uri: None,
        };
        let shown = format!("{account:?}");
        assert!(shown.contains("demo-project"));
        assert!(!shown.contains("secret"));
    }
}

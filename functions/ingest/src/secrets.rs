//! The Redis URL (and, optionally, ingest's API keys and path secret) from AWS Secrets
//! Manager, read once at cold start through the AWS Parameters and Secrets Lambda
//! Extension, so neither the URL's password nor a key ever sits in the function's
//! environment.

use std::time::Duration;

use serde::Deserialize;

/// The variable naming the secret (ARN or name) that holds the Redis URL.
pub const SECRET_ARN_VARIABLE: &str = "PUSHGATE_REDIS_SECRET_ARN";
/// The variable that moves the extension's address (tests point it at a stand-in).
pub const EXTENSION_URL_VARIABLE: &str = "PUSHGATE_SECRETS_EXTENSION_URL";
/// Where the extension listens inside Lambda unless its port was changed.
pub const DEFAULT_EXTENSION_URL: &str = "http://localhost:2773";

/// How long one request to the extension may take; the extension itself calls Secrets
/// Manager on a cache miss, so this also bounds a slow network path to that service.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest piece of an error answer kept in an error message.
const MAX_MESSAGE_CHARS: usize = 200;

/// Why the Redis secret could not be read; no variant carries the secret's value.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error(
        "{SECRET_ARN_VARIABLE} is set but AWS_SESSION_TOKEN is not: the Parameters and \
         Secrets extension only answers requests carrying the session token"
    )]
    NoSessionToken,
    #[error("{EXTENSION_URL_VARIABLE}: cannot use {url:?}: {reason}")]
    BadExtensionUrl { url: String, reason: String },
    #[error(
        "cannot reach the Parameters and Secrets extension at {url} after {attempts} \
         attempts (is its layer attached to the function?): {source}"
    )]
    Unreachable {
        url: String,
        attempts: u32,
        #[source]
        source: reqwest::Error,
    },
    #[error(
        "the Parameters and Secrets extension did not answer for {secret_id} (can it reach \
         Secrets Manager? a function in a VPC needs a Secrets Manager endpoint or a NAT): \
         {source}"
    )]
    NoAnswer {
        secret_id: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("the Parameters and Secrets extension answered {status} for {secret_id}: {message}")]
    Refused {
        secret_id: String,
        status: u16,
        message: String,
    },
    #[error("the extension's answer for {secret_id} is not a GetSecretValue result: {reason}")]
    BadAnswer { secret_id: String, reason: String },
    #[error("secret {secret_id} has no SecretString (a binary secret cannot hold the Redis URL)")]
    NotText { secret_id: String },
    #[error(
        "secret {secret_id} is neither a Redis URL nor a JSON object with a non-empty \
         string field \"url\""
    )]
    NoUrl { secret_id: String },
    #[error("secret {secret_id}: field \"{field}\" must be {expected} (its value is not shown)")]
    BadField {
        secret_id: String,
        field: &'static str,
        expected: &'static str,
    },
}

/// What the secret holds: the Redis URL, and optionally credentials callers of ingest must
/// present (added to those of `PUSHGATE_API_KEYS` and `PUSHGATE_PATH_SECRET`).
#[derive(Clone, PartialEq, Eq)]
pub struct IngestSecret {
    pub redis_url: String,
    /// JSON field `api_keys`: bearer keys.
    pub api_keys: Vec<String>,
    /// JSON field `path_secret`: the secret path prefix.
    pub path_secret: Option<String>,
}

/// Shows the shape, never the values.
impl std::fmt::Debug for IngestSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IngestSecret")
            .field("redis_url", &"<set>")
            .field("api_keys", &self.api_keys.len())
            .field("path_secret", &self.path_secret.as_ref().map(|_| "<set>"))
            .finish()
    }
}

/// Where the Redis URL comes from when it is kept in Secrets Manager.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisSecret {
    /// `PUSHGATE_REDIS_SECRET_ARN`: the secret's ARN (a name works too).
    pub secret_id: String,
    /// `PUSHGATE_SECRETS_EXTENSION_URL`, default `http://localhost:2773`.
    pub extension_url: String,
    /// `AWS_SESSION_TOKEN`, sent as `X-Aws-Parameters-Secrets-Token` as the extension asks.
    pub session_token: String,
    /// Requests made while the extension is not listening yet: Lambda starts the function
    /// as soon as the extension has registered, not once it serves.
    pub connect_attempts: u32,
    /// The pause between two such requests.
    pub connect_retry_delay: Duration,
}

#[derive(Deserialize)]
struct GetSecretValue {
    #[serde(rename = "SecretString")]
    secret_string: Option<String>,
}

impl RedisSecret {
    /// Reads `PUSHGATE_REDIS_SECRET_ARN` and its companions from the process environment.
    ///
    /// # Errors
    ///
    /// [`SecretError::NoSessionToken`] when the ARN is set without `AWS_SESSION_TOKEN`.
    pub fn from_env() -> Result<Option<Self>, SecretError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the settings through `lookup`; `None` when no secret is named.
    ///
    /// # Errors
    ///
    /// [`SecretError::NoSessionToken`] when the ARN is set without `AWS_SESSION_TOKEN`.
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>, SecretError> {
        let Some(secret_id) = lookup(SECRET_ARN_VARIABLE).filter(|id| !id.trim().is_empty()) else {
            return Ok(None);
        };
        let session_token = lookup("AWS_SESSION_TOKEN")
            .filter(|token| !token.is_empty())
            .ok_or(SecretError::NoSessionToken)?;
        let extension_url = lookup(EXTENSION_URL_VARIABLE)
            .filter(|url| !url.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_EXTENSION_URL.to_owned());
        Ok(Some(RedisSecret {
            secret_id: secret_id.trim().to_owned(),
            extension_url: extension_url.trim().to_owned(),
            session_token,
            connect_attempts: 20,
            connect_retry_delay: Duration::from_millis(100),
        }))
    }

    /// Asks the extension for the secret and reads the Redis URL and any credentials.
    ///
    /// # Errors
    ///
    /// A [`SecretError`] saying which step failed; it never contains the secret.
    pub async fn fetch(&self) -> Result<IngestSecret, SecretError> {
        let secret = self.fetch_secret_string().await?;
        ingest_secret_from(&self.secret_id, &secret)
    }

    /// Asks the extension for the secret and takes the Redis URL out of it.
    ///
    /// # Errors
    ///
    /// A [`SecretError`] saying which step failed; it never contains the secret.
    pub async fn fetch_redis_url(&self) -> Result<String, SecretError> {
        Ok(self.fetch().await?.redis_url)
    }

    /// The secret's `SecretString`, as the extension returns it.
    async fn fetch_secret_string(&self) -> Result<String, SecretError> {
        let url = self.request_url()?;
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|error| self.bad_url(error.to_string()))?;

        let mut attempt = 1;
        let response = loop {
            let sent = client
                .get(url.clone())
                .header("X-Aws-Parameters-Secrets-Token", &self.session_token)
                .send()
                .await;
            match sent {
                Ok(response) => break response,
                Err(error) if error.is_connect() && attempt < self.connect_attempts => {
                    attempt += 1;
                    tokio::time::sleep(self.connect_retry_delay).await;
                }
                Err(error) if error.is_connect() => {
                    return Err(SecretError::Unreachable {
                        url: self.extension_url.clone(),
                        attempts: attempt,
                        source: error,
                    });
                }
                Err(error) => return Err(self.no_answer(error)),
            }
        };

        let status = response.status();
        let body = response
            .text()
            .await
            .map_err(|error| self.no_answer(error))?;
        if !status.is_success() {
            return Err(SecretError::Refused {
                secret_id: self.secret_id.clone(),
                status: status.as_u16(),
                message: body.trim().chars().take(MAX_MESSAGE_CHARS).collect(),
            });
        }
        let answer: GetSecretValue =
            serde_json::from_str(&body).map_err(|error| SecretError::BadAnswer {
                secret_id: self.secret_id.clone(),
                // Not the serde message: it may quote a value from the answer.
                reason: format!(
                    "{:?} error at line {} column {}",
                    error.classify(),
                    error.line(),
                    error.column()
                ),
            })?;
        answer.secret_string.ok_or_else(|| SecretError::NotText {
            secret_id: self.secret_id.clone(),
        })
    }

    /// `{extension}/secretsmanager/get?secretId={id}`, the id percent-encoded.
    fn request_url(&self) -> Result<reqwest::Url, SecretError> {
        let mut url = reqwest::Url::parse(&self.extension_url)
            .and_then(|base| base.join("/secretsmanager/get"))
            .map_err(|error| self.bad_url(error.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(self.bad_url("the scheme must be http".to_owned()));
        }
        url.query_pairs_mut()
            .append_pair("secretId", &self.secret_id);
        Ok(url)
    }

    fn bad_url(&self, reason: String) -> SecretError {
        SecretError::BadExtensionUrl {
            url: self.extension_url.clone(),
            reason,
        }
    }

    fn no_answer(&self, source: reqwest::Error) -> SecretError {
        SecretError::NoAnswer {
            secret_id: self.secret_id.clone(),
            source,
        }
    }
}

/// Takes the Redis URL out of a secret string: either the URL itself
/// (`rediss://user:password@host:6379`) or a JSON object with a string field `url`.
///
/// # Errors
///
/// [`SecretError::NoUrl`] when the string is empty, or JSON without a usable `url`.
pub fn redis_url_from_secret(secret_id: &str, secret: &str) -> Result<String, SecretError> {
    Ok(ingest_secret_from(secret_id, secret)?.redis_url)
}

/// Reads a secret string: the Redis URL alone, or a JSON object with a string field `url`
/// and, optionally, `api_keys` (an array of strings) and `path_secret` (a string).
///
/// # Errors
///
/// [`SecretError::NoUrl`] without a usable URL, [`SecretError::BadField`] when an optional
/// field has the wrong type.
pub fn ingest_secret_from(secret_id: &str, secret: &str) -> Result<IngestSecret, SecretError> {
    let no_url = || SecretError::NoUrl {
        secret_id: secret_id.to_owned(),
    };
    let bad_field = |field, expected| SecretError::BadField {
        secret_id: secret_id.to_owned(),
        field,
        expected,
    };
    let secret = secret.trim();
    if !secret.starts_with('{') {
        if secret.is_empty() {
            return Err(no_url());
        }
        return Ok(IngestSecret {
            redis_url: secret.to_owned(),
            api_keys: Vec::new(),
            path_secret: None,
        });
    }
    let object: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(secret).map_err(|_| no_url())?;
    let redis_url = match object.get("url") {
        Some(serde_json::Value::String(url)) if !url.trim().is_empty() => url.trim().to_owned(),
        _ => return Err(no_url()),
    };
    let api_keys = match object.get("api_keys") {
        None | Some(serde_json::Value::Null) => Vec::new(),
        Some(serde_json::Value::Array(keys)) => keys
            .iter()
            .map(|key| key.as_str().map(|key| key.trim().to_owned()))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| bad_field("api_keys", "an array of strings"))?,
        Some(_) => return Err(bad_field("api_keys", "an array of strings")),
    };
    let path_secret = match object.get("path_secret") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(secret)) => Some(secret.trim().to_owned()),
        Some(_) => return Err(bad_field("path_secret", "a string")),
    };
    Ok(IngestSecret {
        redis_url,
        api_keys,
        path_secret,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup_from(pairs: &[(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        let pairs = pairs.to_vec();
        move |name| {
            pairs
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| (*value).to_owned())
        }
    }

    const ARN: &str = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:pushgate/redis-AbCdEf";

    #[test]
    fn no_arn_means_no_secret() {
        let settings = RedisSecret::from_lookup(lookup_from(&[("AWS_SESSION_TOKEN", "t")]));
        assert_eq!(settings.unwrap(), None);
        let blank = RedisSecret::from_lookup(lookup_from(&[(SECRET_ARN_VARIABLE, " ")]));
        assert_eq!(blank.unwrap(), None);
    }

    #[test]
    fn arn_with_session_token_uses_the_default_extension_address() {
        let settings = RedisSecret::from_lookup(lookup_from(&[
            (SECRET_ARN_VARIABLE, ARN),
            ("AWS_SESSION_TOKEN", "session-token"),
        ]))
        .unwrap()
        .expect("a secret is named");
        assert_eq!(settings.secret_id, ARN);
        assert_eq!(settings.extension_url, "http://localhost:2773");
        assert_eq!(settings.session_token, "session-token");
        assert_eq!(
            settings.request_url().unwrap().as_str(),
            "http://localhost:2773/secretsmanager/get?secretId=arn%3Aaws%3Asecretsmanager%3A\
             eu-west-1%3A123456789012%3Asecret%3Apushgate%2Fredis-AbCdEf"
        );
    }

    #[test]
    fn arn_without_session_token_is_refused() {
        let error = RedisSecret::from_lookup(lookup_from(&[(SECRET_ARN_VARIABLE, ARN)]));
        assert!(matches!(error, Err(SecretError::NoSessionToken)));
    }

    #[test]
    fn extension_url_can_be_moved_but_must_be_http() {
        let settings = RedisSecret::from_lookup(lookup_from(&[
            (SECRET_ARN_VARIABLE, ARN),
            ("AWS_SESSION_TOKEN", "t"),
            (EXTENSION_URL_VARIABLE, "http://127.0.0.1:9/ignored/path"),
        ]))
        .unwrap()
        .unwrap();
        assert!(
            settings
                .request_url()
                .unwrap()
                .as_str()
                .starts_with("http://127.0.0.1:9/secretsmanager/get?secretId=")
        );
        for bad in ["localhost:2773", "not a url", "ftp://localhost:2773"] {
            let settings = RedisSecret {
                extension_url: bad.to_owned(),
                ..settings.clone()
            };
            let error = settings.request_url().unwrap_err();
            assert!(
                matches!(error, SecretError::BadExtensionUrl { ref url, .. } if url == bad),
                "{bad}: {error}"
            );
        }
    }

    #[test]
    fn a_plain_secret_is_the_url() {
        let url = redis_url_from_secret(ARN, " rediss://pushgate:pw@redis.internal:6379 \n");
        assert_eq!(url.unwrap(), "rediss://pushgate:pw@redis.internal:6379");
    }

    #[test]
    fn a_json_secret_gives_its_url_field() {
        let secret = r#"{"url": "rediss://pushgate:pw@redis.internal:6379", "note": "x"}"#;
        let url = redis_url_from_secret(ARN, secret).unwrap();
        assert_eq!(url, "rediss://pushgate:pw@redis.internal:6379");
    }

    #[test]
    fn secrets_without_a_usable_url_are_refused_without_echoing_them() {
        for secret in [
            "",
            "   ",
            r#"{"host": "redis.internal", "password": "hunter2"}"#,
            r#"{"url": 6379, "password": "hunter2"}"#,
            r#"{"url": "  ", "password": "hunter2"}"#,
            r#"{"url": "rediss://hunter2@x" "#,
        ] {
            let error = redis_url_from_secret(ARN, secret).unwrap_err();
            assert!(
                matches!(error, SecretError::NoUrl { .. }),
                "{secret}: {error}"
            );
            assert!(!error.to_string().contains("hunter2"), "{error}");
            assert!(error.to_string().contains(ARN), "{error}");
        }
    }

    #[test]
    fn a_json_secret_may_carry_ingest_credentials() {
        let secret = r#"{"url": "redis://r:6379", "api_keys": [" k-0123456789abcdef "],
                         "path_secret": "s3cr3t-path-0123456789"}"#;
        let read = ingest_secret_from(ARN, secret).unwrap();
        assert_eq!(read.redis_url, "redis://r:6379");
        assert_eq!(read.api_keys, ["k-0123456789abcdef"]);
        assert_eq!(read.path_secret.as_deref(), Some("s3cr3t-path-0123456789"));
        assert!(!format!("{read:?}").contains("0123456789"), "{read:?}");

        let plain = ingest_secret_from(ARN, "redis://r:6379").unwrap();
        assert!(plain.api_keys.is_empty() && plain.path_secret.is_none());
    }

    #[test]
    fn credentials_of_the_wrong_type_are_refused_by_field_without_echoing_them() {
        for (secret, field) in [
            (
                r#"{"url": "redis://r", "api_keys": "hunter2hunter2hunter2"}"#,
                "api_keys",
            ),
            (
                r#"{"url": "redis://r", "api_keys": ["hunter2", 7]}"#,
                "api_keys",
            ),
            (
                r#"{"url": "redis://r", "path_secret": ["hunter2"]}"#,
                "path_secret",
            ),
        ] {
            let error = ingest_secret_from(ARN, secret).unwrap_err();
            assert!(
                matches!(error, SecretError::BadField { field: f, .. } if f == field),
                "{secret}: {error}"
            );
            assert!(!error.to_string().contains("hunter2"), "{error}");
        }
    }
}

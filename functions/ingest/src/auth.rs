//! Who may call ingest: an `Authorization: Bearer` key, or a secret first path segment for
//! senders that cannot add headers (MongooseIM's `path_prefix = "/<secret>/"`). Every
//! route but `/healthcheck` needs one unless authentication is turned off explicitly.

use std::fmt;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Uri, header};
use axum::middleware::Next;
use axum::response::Response;
use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};

use crate::config::ConfigError;
use crate::reply::error_response;

/// The shortest bearer key or path secret accepted, so neither can be guessed by trying.
pub const MIN_SECRET_CHARS: usize = 16;

/// The route that answers without credentials, for load balancers and probes.
/// Paths answered without credentials: health checks, for load balancers and platforms.
const OPEN_PATHS: [&str; 2] = ["/healthcheck", "/health/live"];

/// `PUSHGATE_AUTH`: whether requests must authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// `required` (the default of `from_env`): a key or the path secret on every request.
    Required,
    /// `off`: anyone who reaches the port may call every route.
    Off,
}

/// The credentials ingest accepts. Its `Debug` shows how many there are, never their value.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthConfig {
    pub mode: AuthMode,
    /// `PUSHGATE_API_KEYS`: bearer keys, comma-separated, each at least 16 characters.
    pub api_keys: Vec<String>,
    /// `PUSHGATE_PATH_SECRET`: the secret first path segment, at least 16 characters of
    /// `A-Z a-z 0-9 - . _ ~` so that it needs no percent-encoding.
    pub path_secret: Option<String>,
}

impl Default for AuthConfig {
    /// Off, as tests and the one-command demo need; `IngestConfig::from_env` requires it.
    fn default() -> Self {
        AuthConfig {
            mode: AuthMode::Off,
            api_keys: Vec::new(),
            path_secret: None,
        }
    }
}

impl fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthConfig")
            .field("mode", &self.mode)
            .field("api_keys", &format_args!("<{} keys>", self.api_keys.len()))
            .field(
                "path_secret",
                &format_args!(
                    "<{}>",
                    if self.path_secret.is_some() {
                        "set"
                    } else {
                        "unset"
                    }
                ),
            )
            .finish()
    }
}

impl AuthConfig {
    /// Reads `PUSHGATE_AUTH`, `PUSHGATE_API_KEYS` and `PUSHGATE_PATH_SECRET`, then
    /// [`validate`](Self::validate)s them; without `PUSHGATE_AUTH` authentication is
    /// required.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the variable at fault, including "required but nothing
    /// configured".
    pub fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let config = Self::read(lookup)?;
        config.validate()?;
        Ok(config)
    }

    /// Reads the same variables without validating them, for a start-up that adds
    /// credentials from elsewhere (a Secrets Manager secret) and validates afterwards.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] for a `PUSHGATE_AUTH` that is neither `required` nor `off`.
    pub fn read(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mode = match lookup("PUSHGATE_AUTH").as_deref().map(str::trim) {
            None | Some("required") => AuthMode::Required,
            Some("off") => AuthMode::Off,
            Some(other) => {
                return Err(ConfigError {
                    variable: "PUSHGATE_AUTH",
                    problem: format!("must be `required` or `off`, not {other:?}"),
                });
            }
        };
        let api_keys = lookup("PUSHGATE_API_KEYS")
            .map(|keys| {
                keys.split(',')
                    .map(str::trim)
                    .filter(|key| !key.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        let path_secret = lookup("PUSHGATE_PATH_SECRET")
            .map(|secret| secret.trim().to_owned())
            .filter(|secret| !secret.is_empty());
        Ok(AuthConfig {
            mode,
            api_keys,
            path_secret,
        })
    }

    /// Checks the credentials' shape, and that required authentication has some.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the variable at fault.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for key in &self.api_keys {
            if key.chars().count() < MIN_SECRET_CHARS {
                return Err(ConfigError {
                    variable: "PUSHGATE_API_KEYS",
                    problem: format!("every key needs at least {MIN_SECRET_CHARS} characters"),
                });
            }
            if !key.chars().all(|c| c.is_ascii_graphic()) {
                return Err(ConfigError {
                    variable: "PUSHGATE_API_KEYS",
                    problem: "keys are printable ASCII without spaces (they travel in a header)"
                        .to_owned(),
                });
            }
        }
        if let Some(secret) = &self.path_secret {
            if secret.chars().count() < MIN_SECRET_CHARS {
                return Err(ConfigError {
                    variable: "PUSHGATE_PATH_SECRET",
                    problem: format!("needs at least {MIN_SECRET_CHARS} characters"),
                });
            }
            if !secret
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-._~".contains(c))
            {
                return Err(ConfigError {
                    variable: "PUSHGATE_PATH_SECRET",
                    problem: "only A-Z a-z 0-9 - . _ ~ (it is a path segment)".to_owned(),
                });
            }
        }
        if self.mode == AuthMode::Required && self.api_keys.is_empty() && self.path_secret.is_none()
        {
            return Err(ConfigError {
                variable: "PUSHGATE_AUTH",
                problem: "authentication is required but there is nothing to check: set \
                          PUSHGATE_API_KEYS (bearer keys) or PUSHGATE_PATH_SECRET (a secret \
                          path prefix), or `api_keys` / `path_secret` in the secret named by \
                          PUSHGATE_REDIS_SECRET_ARN, or PUSHGATE_AUTH=off to accept every \
                          caller"
                    .to_owned(),
            });
        }
        Ok(())
    }
}

/// The credential checks of one ingest instance, built once from an [`AuthConfig`].
///
/// Keys and the path secret are kept as SHA-256 digests and compared in constant time
/// (`subtle`), so neither the match position nor the length of a secret shows in timing.
pub struct Authenticator {
    required: bool,
    key_digests: Vec<[u8; 32]>,
    secret_digest: Option<[u8; 32]>,
}

impl Authenticator {
    /// The checks `config` describes.
    ///
    /// # Errors
    ///
    /// The [`ConfigError`] of [`AuthConfig::validate`].
    pub fn new(config: &AuthConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Authenticator {
            required: config.mode == AuthMode::Required,
            key_digests: config.api_keys.iter().map(|key| digest(key)).collect(),
            secret_digest: config.path_secret.as_deref().map(digest),
        })
    }

    /// Every request is let through (tests and the demo).
    pub fn off() -> Self {
        Authenticator {
            required: false,
            key_digests: Vec::new(),
            secret_digest: None,
        }
    }

    /// True when requests must carry credentials.
    pub fn is_required(&self) -> bool {
        self.required
    }

    /// The path without its first segment when that segment is the secret.
    fn strip_secret<'a>(&self, path: &'a str) -> Option<&'a str> {
        let secret = self.secret_digest.as_ref()?;
        let rest = path.strip_prefix('/')?;
        let (segment, tail) = match rest.find('/') {
            Some(slash) => rest.split_at(slash),
            None => (rest, ""),
        };
        bool::from(digest(segment).ct_eq(secret)).then_some(tail)
    }

    /// True when `authorization` is `Bearer <key>` with a configured key.
    fn bearer_matches(&self, authorization: Option<&HeaderValue>) -> bool {
        let Some(key) = authorization
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, key)| key.trim())
        else {
            return false;
        };
        let offered = digest(key);
        // Look at every key, so the time taken does not say which one matched.
        let matched = self
            .key_digests
            .iter()
            .fold(Choice::from(0), |found, known| {
                found | known.ct_eq(&offered)
            });
        bool::from(matched)
    }
}

fn digest(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

/// The middleware in front of every route: strips the secret prefix (routing goes on
/// with the rest of the path), then lets the request through or answers 401.
pub(crate) async fn authenticate(
    State(auth): State<std::sync::Arc<Authenticator>>,
    mut request: Request,
    next: Next,
) -> Response {
    let stripped = auth
        .strip_secret(request.uri().path())
        .map(|rest| without_prefix(request.uri(), rest));
    let by_secret = stripped.is_some();
    if let Some(uri) = stripped {
        *request.uri_mut() = uri;
    }

    let open = OPEN_PATHS.contains(&request.uri().path());
    if !auth.required || by_secret || open {
        return next.run(request).await;
    }
    let authorization = request.headers().get(header::AUTHORIZATION);
    if auth.bearer_matches(authorization) {
        return next.run(request).await;
    }

    let (reason, message) = if authorization.is_some() {
        (
            "invalid",
            "the Authorization header does not carry a valid bearer key",
        )
    } else {
        (
            "missing",
            "send `Authorization: Bearer <key>`, or call under the secret path prefix",
        )
    };
    metrics::counter!("pushgate_auth_failures_total", "reason" => reason).increment(1);
    if let Some(suppressed) = crate::metrics::admit(reason) {
        tracing::info!(
            reason = message,
            suppressed,
            "request refused: not authenticated"
        );
    }
    let mut response = error_response(401, "unauthorized", message);
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"pushgate\""),
    );
    response
}

/// `uri` with its path replaced by `rest` (`/` when empty), keeping the query.
fn without_prefix(uri: &Uri, rest: &str) -> Uri {
    let path = if rest.is_empty() { "/" } else { rest };
    let path_and_query = match uri.query() {
        Some(query) => format!("{path}?{query}"),
        None => path.to_owned(),
    };
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(
        path_and_query
            .parse()
            .expect("a suffix of a valid path, with the same query, is valid"),
    );
    Uri::from_parts(parts).expect("only the path changed")
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "k-0123456789abcdef";
    const SECRET: &str = "s3cret-path-0123456789";

    fn config(mode: AuthMode, keys: &[&str], secret: Option<&str>) -> AuthConfig {
        AuthConfig {
            mode,
            api_keys: keys.iter().map(|k| (*k).to_owned()).collect(),
            path_secret: secret.map(str::to_owned),
        }
    }

    #[test]
    fn the_secret_segment_is_stripped_only_when_it_matches() {
        let auth = Authenticator::new(&config(AuthMode::Required, &[], Some(SECRET))).unwrap();
        let path = format!("/{SECRET}/v3/notification/dGVzdA:APA91b");
        assert_eq!(
            auth.strip_secret(&path),
            Some("/v3/notification/dGVzdA:APA91b")
        );
        assert_eq!(auth.strip_secret(&format!("/{SECRET}")), Some(""));
        assert_eq!(auth.strip_secret("/v3/notification/x"), None);
        assert_eq!(auth.strip_secret(&format!("/{SECRET}x/v3")), None);
        assert_eq!(auth.strip_secret(&format!("/x/{SECRET}/v3")), None);
    }

    #[test]
    fn bearer_keys_match_exactly_with_any_scheme_case() {
        let auth = Authenticator::new(&config(
            AuthMode::Required,
            &["another-key-000000", KEY],
            None,
        ))
        .unwrap();
        let header = |text: &str| HeaderValue::from_str(text).unwrap();
        assert!(auth.bearer_matches(Some(&header(&format!("Bearer {KEY}")))));
        assert!(auth.bearer_matches(Some(&header(&format!("bearer {KEY}")))));
        assert!(!auth.bearer_matches(Some(&header(&format!("Bearer {KEY}x")))));
        assert!(!auth.bearer_matches(Some(&header(&format!("Basic {KEY}")))));
        assert!(!auth.bearer_matches(Some(&header(KEY))));
        assert!(!auth.bearer_matches(None));
    }

    #[test]
    fn required_without_credentials_names_every_way_out() {
        let error = AuthConfig::from_lookup(&|_| None).unwrap_err();
        assert_eq!(error.variable, "PUSHGATE_AUTH");
        for name in [
            "PUSHGATE_API_KEYS",
            "PUSHGATE_PATH_SECRET",
            "PUSHGATE_AUTH=off",
        ] {
            assert!(error.problem.contains(name), "{name} in {error}");
        }
    }

    #[test]
    fn variables_are_read_and_checked() {
        let lookup = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        let config = AuthConfig::from_lookup(&lookup(&[
            (
                "PUSHGATE_API_KEYS",
                " k-0123456789abcdef , , k-fedcba9876543210 ",
            ),
            ("PUSHGATE_PATH_SECRET", "s3cret-path-0123456789"),
        ]))
        .unwrap();
        assert_eq!(config.mode, AuthMode::Required);
        assert_eq!(config.api_keys, [KEY, "k-fedcba9876543210"]);
        assert_eq!(config.path_secret.as_deref(), Some(SECRET));
        assert!(!format!("{config:?}").contains(KEY), "Debug hides keys");
        assert!(
            !format!("{config:?}").contains(SECRET),
            "Debug hides the secret"
        );

        let off = AuthConfig::from_lookup(&lookup(&[("PUSHGATE_AUTH", "off")])).unwrap();
        assert_eq!(off.mode, AuthMode::Off);

        for (pairs, variable) in [
            (&[("PUSHGATE_AUTH", "maybe")][..], "PUSHGATE_AUTH"),
            (&[("PUSHGATE_API_KEYS", "short")][..], "PUSHGATE_API_KEYS"),
            (
                &[("PUSHGATE_API_KEYS", "has a space in it ok")][..],
                "PUSHGATE_API_KEYS",
            ),
            (
                &[("PUSHGATE_PATH_SECRET", "short")][..],
                "PUSHGATE_PATH_SECRET",
            ),
            (
                &[("PUSHGATE_PATH_SECRET", "with/slash/0123456789")][..],
                "PUSHGATE_PATH_SECRET",
            ),
        ] {
            let error = AuthConfig::from_lookup(&lookup(pairs)).unwrap_err();
            assert_eq!(error.variable, variable, "{pairs:?}");
        }
    }
}

//! The mock FCM's OAuth side: the service-account token endpoint (`POST /token`, JWT-bearer
//! grant, RS256 assertion checked against the test key) and the store of issued access
//! tokens that `messages:send` accepts until they expire or are revoked.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Form;
use axum::extract::State;
use axum::extract::rejection::FormRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::json;

/// The only grant type the token endpoint accepts.
pub const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// Longest lifetime (`exp - iat`) Google accepts for an assertion, in seconds.
const MAX_ASSERTION_LIFETIME_SECS: u64 = 3600;
/// How far in the future an assertion's `iat` may lie, in seconds.
const CLOCK_SKEW_SECS: u64 = 300;

/// What the store says about the bearer token of a send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TokenStatus {
    Valid,
    /// No `authorization: Bearer` header.
    Missing,
    /// A token this mock never issued.
    Unknown,
    /// Issued here, but revoked or past its lifetime.
    Expired,
}

struct Issued {
    expires_at: Instant,
    revoked: bool,
}

#[derive(Default)]
struct Tokens {
    issued: HashMap<String, Issued>,
    count: u64,
}

/// The access tokens the mock issued.
pub(crate) struct TokenStore {
    tokens: Mutex<Tokens>,
    lifetime: Duration,
}

impl TokenStore {
    pub(crate) fn new(lifetime: Duration) -> Self {
        Self {
            tokens: Mutex::default(),
            lifetime,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Tokens> {
        // The map stays consistent even if a holder panicked; keep serving it.
        self.tokens
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Issues a new token, valid for the store's lifetime.
    pub(crate) fn issue(&self) -> String {
        let mut tokens = self.lock();
        tokens.count += 1;
        let token = format!(
            "ya29.mock-{}-{}",
            tokens.count,
            uuid::Uuid::new_v4().simple()
        );
        let issued = Issued {
            expires_at: Instant::now() + self.lifetime,
            revoked: false,
        };
        tokens.issued.insert(token.clone(), issued);
        token
    }

    pub(crate) fn issued_count(&self) -> u64 {
        self.lock().count
    }

    /// Makes every token issued so far invalid (answered 401 from now on).
    pub(crate) fn revoke_all(&self) {
        for issued in self.lock().issued.values_mut() {
            issued.revoked = true;
        }
    }

    pub(crate) fn lifetime(&self) -> Duration {
        self.lifetime
    }

    /// Checks an `authorization` header value.
    pub(crate) fn check(&self, authorization: Option<&str>) -> TokenStatus {
        let token = authorization
            .and_then(|value| value.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim());
        let Some(token) = token else {
            return TokenStatus::Missing;
        };
        match self.lock().issued.get(token) {
            None => TokenStatus::Unknown,
            Some(issued) if issued.revoked || issued.expires_at <= Instant::now() => {
                TokenStatus::Expired
            }
            Some(_) => TokenStatus::Valid,
        }
    }
}

/// Checks assertion JWTs against the service account's public key.
pub(crate) struct AssertionVerifier {
    key: DecodingKey,
    validation: Validation,
    client_email: String,
}

impl AssertionVerifier {
    /// A verifier accepting assertions from `client_email`, signed by the key of
    /// `public_key_pem`, with `aud` one of `audiences` (the mock's token URIs).
    pub(crate) fn new(
        public_key_pem: &str,
        client_email: &str,
        audiences: &[String],
    ) -> Result<Self, jsonwebtoken::errors::Error> {
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_audience(audiences);
        validation.set_required_spec_claims(&["exp", "iat", "aud", "iss"]);
        Ok(Self {
            key: DecodingKey::from_rsa_pem(public_key_pem.as_bytes())?,
            validation,
            client_email: client_email.to_owned(),
        })
    }

    fn verify(&self, assertion: &str) -> Result<(), OAuthError> {
        let data = jsonwebtoken::decode::<AssertionClaims>(assertion, &self.key, &self.validation)
            .map_err(|error| {
                use jsonwebtoken::errors::ErrorKind;
                match error.kind() {
                    ErrorKind::InvalidSignature => OAuthError::grant("Invalid JWT Signature."),
                    ErrorKind::ExpiredSignature => OAuthError::grant(TIMEFRAME),
                    _ => OAuthError::grant(&format!("Invalid JWT: {error}")),
                }
            })?;
        let claims = data.claims;

        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let lifetime = claims.exp.saturating_sub(claims.iat);
        if lifetime > MAX_ASSERTION_LIFETIME_SECS || claims.iat > now + CLOCK_SKEW_SECS {
            return Err(OAuthError::grant(TIMEFRAME));
        }
        if claims.iss != self.client_email {
            return Err(OAuthError::grant("Invalid grant: account not found"));
        }
        if claims.scope.as_deref().is_none_or(str::is_empty) {
            let description = "Empty or missing scope not allowed.";
            return Err(OAuthError {
                error: "invalid_scope",
                description: description.to_owned(),
            });
        }
        Ok(())
    }
}

const TIMEFRAME: &str = "Invalid JWT: Token must be a short-lived token (60 minutes) and in a \
                         reasonable timeframe. Check your iat and exp values in the JWT claim.";

#[derive(Deserialize)]
struct AssertionClaims {
    iss: String,
    #[serde(default)]
    scope: Option<String>,
    iat: u64,
    exp: u64,
}

/// An OAuth error answer: 400 `{"error": .., "error_description": ..}`.
#[derive(Debug)]
struct OAuthError {
    error: &'static str,
    description: String,
}

impl OAuthError {
    fn grant(description: &str) -> Self {
        Self {
            error: "invalid_grant",
            description: description.to_owned(),
        }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = json!({ "error": self.error, "error_description": self.description });
        (StatusCode::BAD_REQUEST, axum::Json(body)).into_response()
    }
}

/// State of the token endpoint.
pub(crate) struct OAuthState {
    pub tokens: Arc<TokenStore>,
    pub verifier: Option<AssertionVerifier>,
}

#[derive(Deserialize)]
pub(crate) struct TokenRequest {
    grant_type: Option<String>,
    assertion: Option<String>,
}

/// `POST /token`: exchanges a signed assertion for an access token.
pub(crate) async fn token(
    State(state): State<Arc<OAuthState>>,
    form: Result<Form<TokenRequest>, FormRejection>,
) -> Response {
    match issue_token(&state, form) {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

fn issue_token(
    state: &OAuthState,
    form: Result<Form<TokenRequest>, FormRejection>,
) -> Result<Response, OAuthError> {
    let Form(request) = form.map_err(|rejection| OAuthError {
        error: "invalid_request",
        description: rejection.body_text(),
    })?;

    let grant_type = request.grant_type.unwrap_or_default();
    if grant_type != JWT_BEARER_GRANT {
        return Err(OAuthError {
            error: "unsupported_grant_type",
            description: format!("Invalid grant_type: {grant_type}"),
        });
    }
    let Some(assertion) = request.assertion.filter(|assertion| !assertion.is_empty()) else {
        let description = "Missing required parameter: assertion".to_owned();
        return Err(OAuthError {
            error: "invalid_request",
            description,
        });
    };
    if let Some(verifier) = &state.verifier {
        verifier.verify(&assertion)?;
    }

    let body = json!({
        "access_token": state.tokens.issue(),
        "token_type": "Bearer",
        "expires_in": state.tokens.lifetime().as_secs(),
    });
    Ok(axum::Json(body).into_response())
}

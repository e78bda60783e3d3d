//! Credential checks of the mock APNs: provider tokens (`authorization: bearer <jwt>`, ES256,
//! `kid`, `iss`, fresh `iat`) or a verified TLS client certificate, answered with Apple's
//! 403 reasons.

use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::header;
use axum::http::request::Parts;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use crate::apns::{ApnsAuth, PROVIDER_TOKEN_MAX_AGE_SECS};
use crate::server::{ConnectionInfo, StartError};

/// [`ApnsAuth`] prepared for the request path.
pub(crate) enum AuthCheck {
    None,
    Token {
        key: Option<DecodingKey>,
        /// The last token that passed, with its `iat`, so a reused token is not re-verified.
        last_valid: Mutex<Option<(String, u64)>>,
    },
    Certificate,
}

#[derive(Deserialize)]
struct ProviderClaims {
    iss: String,
    iat: u64,
}

impl AuthCheck {
    pub(crate) fn new(auth: &ApnsAuth) -> Result<Self, StartError> {
        Ok(match auth {
            ApnsAuth::None => Self::None,
            ApnsAuth::Token { verify_key_pem } => Self::Token {
                key: verify_key_pem
                    .as_deref()
                    .map(|pem| DecodingKey::from_ec_pem(pem.as_bytes()))
                    .transpose()?,
                last_valid: Mutex::new(None),
            },
            ApnsAuth::Certificate { .. } => Self::Certificate,
        })
    }

    /// Checks the request's credentials; the error is APNs' 403 reason.
    pub(crate) fn check(&self, parts: &Parts) -> Result<(), &'static str> {
        let (key, last_valid) = match self {
            Self::None => return Ok(()),
            Self::Certificate => {
                let info = parts
                    .extensions
                    .get::<ConnectionInfo>()
                    .copied()
                    .unwrap_or_default();
                return if info.client_certificate {
                    Ok(())
                } else {
                    Err("MissingProviderToken")
                };
            }
            Self::Token { key, last_valid } => (key, last_valid),
        };

        let jwt = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, jwt)| jwt.trim())
            .ok_or("MissingProviderToken")?;

        let mut last = last_valid
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let iat = match last.as_ref() {
            Some((known, iat)) if known == jwt => *iat,
            _ => {
                let iat = verify_provider_token(jwt, key.as_ref())?;
                *last = Some((jwt.to_owned(), iat));
                iat
            }
        };
        if unix_now().as_secs().saturating_sub(iat) > PROVIDER_TOKEN_MAX_AGE_SECS {
            return Err("ExpiredProviderToken");
        }
        Ok(())
    }
}

/// Verifies an APNs provider token's shape (and signature, given a key); returns its `iat`.
fn verify_provider_token(jwt: &str, key: Option<&DecodingKey>) -> Result<u64, &'static str> {
    let data = match key {
        Some(key) => {
            let mut validation = Validation::new(Algorithm::ES256);
            validation.validate_exp = false;
            validation.required_spec_claims.clear();
            jsonwebtoken::decode::<ProviderClaims>(jwt, key, &validation)
        }
        None => jsonwebtoken::dangerous::insecure_decode::<ProviderClaims>(jwt),
    }
    .map_err(|_| "InvalidProviderToken")?;

    if data.header.kid.is_none_or(|kid| kid.is_empty()) || data.claims.iss.is_empty() {
        return Err("InvalidProviderToken");
    }
    Ok(data.claims.iat)
}

pub(crate) fn unix_now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

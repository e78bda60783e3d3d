//! APNs provider tokens: an ES256 JWT (`kid`, `iss`, `iat`) shared by all connections of
//! a key, renewed inside Apple's window of 20 to 60 minutes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;

/// Age in seconds at which a token is replaced: 50 minutes, inside Apple's window
/// (no more often than every 20 minutes, no less often than every 60).
pub const RENEW_AFTER_SECS: u64 = 50 * 60;

/// Apple's floor: a token younger than this is replaced early at most once in a row.
pub const MIN_RENEW_SECS: u64 = 20 * 60;

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    iat: u64,
}

#[derive(Debug, Clone)]
struct Signed {
    jwt: Arc<str>,
    issued_at: u64,
    /// True when this token replaced a rejected one younger than [`MIN_RENEW_SECS`].
    early: bool,
}

#[derive(Debug, Default)]
struct State {
    current: Option<Signed>,
    /// Set when the next token replaces a rejected one younger than [`MIN_RENEW_SECS`].
    next_is_early: bool,
}

/// The provider token of one APNs signing key.
pub struct ProviderToken {
    key: EncodingKey,
    key_id: String,
    team_id: String,
    state: RwLock<State>,
    signed: AtomicU64,
}

impl ProviderToken {
    /// A token source for the PKCS#8 EC P-256 key `p8_pem` (Apple's `.p8` file).
    ///
    /// # Errors
    ///
    /// The PEM is not an EC private key.
    pub fn new(
        p8_pem: &[u8],
        key_id: impl Into<String>,
        team_id: impl Into<String>,
    ) -> Result<Self, jsonwebtoken::errors::Error> {
        Ok(ProviderToken {
            key: EncodingKey::from_ec_pem(p8_pem)?,
            key_id: key_id.into(),
            team_id: team_id.into(),
            state: RwLock::new(State::default()),
            signed: AtomicU64::new(0),
        })
    }

    /// How many tokens were signed so far.
    pub fn signed(&self) -> u64 {
        self.signed.load(Ordering::Relaxed)
    }

    /// The JWT to send now: the current one until it is [`RENEW_AFTER_SECS`] old, then a
    /// new one signed by exactly one caller.
    ///
    /// # Errors
    ///
    /// Signing failed.
    pub fn bearer(&self) -> Result<Arc<str>, jsonwebtoken::errors::Error> {
        self.bearer_at(now_secs())
    }

    /// [`ProviderToken::bearer`] as seen at Unix second `now`.
    ///
    /// # Errors
    ///
    /// Signing failed.
    pub fn bearer_at(&self, now: u64) -> Result<Arc<str>, jsonwebtoken::errors::Error> {
        if let Some(jwt) = self.usable_at(now) {
            return Ok(jwt);
        }
        let mut state = self
            .state
            .write()
            .expect("the token lock is never poisoned");
        if let Some(signed) = state.current.as_ref().filter(|s| is_usable(s, now)) {
            return Ok(signed.jwt.clone());
        }
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.key_id.clone());
        let claims = Claims {
            iss: &self.team_id,
            iat: now,
        };
        let jwt: Arc<str> = jsonwebtoken::encode(&header, &claims, &self.key)?.into();
        state.current = Some(Signed {
            jwt: jwt.clone(),
            issued_at: now,
            early: std::mem::take(&mut state.next_is_early),
        });
        self.signed.fetch_add(1, Ordering::Relaxed);
        crate::telemetry::credential_renewed(pushgate_shared::Service::Apns);
        Ok(jwt)
    }

    /// Handles Apple's `ExpiredProviderToken` for `rejected`, seen at Unix second `now`;
    /// true when the caller should retry once with [`ProviderToken::bearer`].
    ///
    /// The rejected token is dropped even when younger than [`MIN_RENEW_SECS`], because
    /// Apple will not take it again; but a token that was itself such an early
    /// replacement is kept until it is 20 minutes old, so a clock skew cannot turn into
    /// a burst of new tokens and `TooManyProviderTokenUpdates`. A token already replaced
    /// by another caller needs no renewal, only the retry.
    pub fn reject_at(&self, rejected: &str, now: u64) -> bool {
        let mut state = self
            .state
            .write()
            .expect("the token lock is never poisoned");
        let Some(signed) = state.current.as_ref() else {
            return true;
        };
        if &*signed.jwt != rejected {
            return true;
        }
        let age = now.saturating_sub(signed.issued_at);
        if signed.early && age < MIN_RENEW_SECS {
            return false;
        }
        state.next_is_early = age < MIN_RENEW_SECS;
        state.current = None;
        true
    }

    /// [`ProviderToken::reject_at`] now.
    pub fn reject(&self, rejected: &str) -> bool {
        self.reject_at(rejected, now_secs())
    }

    fn usable_at(&self, now: u64) -> Option<Arc<str>> {
        let state = self.state.read().expect("the token lock is never poisoned");
        state
            .current
            .as_ref()
            .filter(|s| is_usable(s, now))
            .map(|s| s.jwt.clone())
    }
}

/// A token stays in use until it is [`RENEW_AFTER_SECS`] old; a clock that went back keeps it.
fn is_usable(signed: &Signed, now: u64) -> bool {
    now.saturating_sub(signed.issued_at) < RENEW_AFTER_SECS
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{DecodingKey, Validation};
    use serde_json::Value;

    use super::*;

    const T0: u64 = 1_800_000_000;

    fn token() -> (ProviderToken, DecodingKey) {
        let key = rcgen::KeyPair::generate().unwrap();
        let public = DecodingKey::from_ec_pem(key.public_key_pem().as_bytes()).unwrap();
        let source = ProviderToken::new(key.serialize_pem().as_bytes(), "KEY1234567", "TEAM123456");
        (source.unwrap(), public)
    }

    fn decode(jwt: &str, public: &DecodingKey) -> (jsonwebtoken::Header, Value) {
        let mut validation = Validation::new(Algorithm::ES256);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        let data = jsonwebtoken::decode::<Value>(jwt, public, &validation).unwrap();
        (data.header, data.claims)
    }

    #[test]
    fn token_is_signed_with_kid_iss_and_iat() {
        let (source, public) = token();
        let jwt = source.bearer_at(T0).unwrap();
        let (header, claims) = decode(&jwt, &public);
        assert_eq!(header.alg, Algorithm::ES256);
        assert_eq!(header.kid.as_deref(), Some("KEY1234567"));
        assert_eq!(claims, serde_json::json!({"iss": "TEAM123456", "iat": T0}));
    }

    #[test]
    fn token_is_reused_until_fifty_minutes_then_renewed_once() {
        let (source, public) = token();
        let first = source.bearer_at(T0).unwrap();
        for minute in [0, 1, 19, 20, 49] {
            assert_eq!(
                source.bearer_at(T0 + minute * 60).unwrap(),
                first,
                "minute {minute}"
            );
        }
        assert_eq!(source.signed(), 1);

        let second = source.bearer_at(T0 + RENEW_AFTER_SECS).unwrap();
        assert_ne!(second, first);
        assert_eq!(decode(&second, &public).1["iat"], T0 + RENEW_AFTER_SECS);
        assert_eq!(
            source.bearer_at(T0 + RENEW_AFTER_SECS + 600).unwrap(),
            second
        );
        assert_eq!(source.signed(), 2);
    }

    #[test]
    fn clock_going_back_keeps_the_token() {
        let (source, _) = token();
        let first = source.bearer_at(T0).unwrap();
        assert_eq!(source.bearer_at(T0 - 3600).unwrap(), first);
        assert_eq!(source.signed(), 1);
    }

    #[test]
    fn rejected_token_is_replaced_once_early_then_only_after_twenty_minutes() {
        let (source, _) = token();
        let first = source.bearer_at(T0).unwrap();

        assert!(source.reject_at(&first, T0 + 5));
        let second = source.bearer_at(T0 + 6).unwrap();
        assert_ne!(second, first);
        assert_eq!(source.signed(), 2);

        assert!(
            !source.reject_at(&second, T0 + 60),
            "a second early renewal in a row"
        );
        assert_eq!(source.bearer_at(T0 + 61).unwrap(), second);

        assert!(source.reject_at(&second, T0 + 6 + MIN_RENEW_SECS));
        let third = source.bearer_at(T0 + 7 + MIN_RENEW_SECS).unwrap();
        assert_ne!(third, second);
        assert_eq!(source.signed(), 3);
    }

    #[test]
    fn rejecting_an_old_token_after_renewal_keeps_the_new_one() {
        let (source, _) = token();
        let first = source.bearer_at(T0).unwrap();
        assert!(source.reject_at(&first, T0 + 1));
        let second = source.bearer_at(T0 + 2).unwrap();

        assert!(
            source.reject_at(&first, T0 + 3),
            "another task's late rejection"
        );
        assert_eq!(source.bearer_at(T0 + 4).unwrap(), second);
        assert_eq!(source.signed(), 2);
    }

    #[test]
    fn a_token_rejected_after_twenty_minutes_is_not_an_early_renewal() {
        let (source, _) = token();
        let first = source.bearer_at(T0).unwrap();
        assert!(source.reject_at(&first, T0 + MIN_RENEW_SECS));
        let second = source.bearer_at(T0 + MIN_RENEW_SECS + 1).unwrap();
        assert!(source.reject_at(&second, T0 + MIN_RENEW_SECS + 2));
        assert_ne!(source.bearer_at(T0 + MIN_RENEW_SECS + 3).unwrap(), second);
    }

    #[test]
    fn a_key_that_is_not_ec_is_refused() {
        assert!(ProviderToken::new(b"not a key", "K", "T").is_err());
    }
}

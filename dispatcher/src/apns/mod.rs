//! Delivery to the Apple Push Notification service over HTTP/2 (TLS or h2c), with
//! token (JWT) or certificate authentication.

pub mod auth;
pub mod classify;
pub mod payload;

use pushgate_shared::Notification;
use pushgate_shared::api::{Category, PushError};
use reqwest::Url;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};

use crate::connections::Connections;
use crate::outcome::{Attempt, Outcome, retry_after_header};
use auth::ProviderToken;
use payload::{ApnsRequest, MAX_PAYLOAD_BYTES};

/// Apple's production endpoint.
pub const PRODUCTION_ENDPOINT: &str = "https://api.push.apple.com";

/// Apple's development (sandbox) endpoint.
pub const SANDBOX_ENDPOINT: &str = "https://api.sandbox.push.apple.com";

/// How an app proves itself to APNs.
pub(crate) enum ApnsAuth {
    /// A provider token in the `authorization` header.
    Token(ProviderToken),
    /// A TLS client certificate, already part of the connections.
    Certificate,
}

/// Sends notifications for one APNs app.
pub(crate) struct ApnsSender {
    pub connections: Connections,
    pub endpoint: Url,
    pub default_topic: Option<String>,
    pub auth: ApnsAuth,
}

impl ApnsSender {
    /// Sends `notification`, accepted at `accepted_at_ms`, and classifies the answer.
    ///
    /// Not sent at all: a payload over 4096 bytes (413 `payload_too_large`) and, with
    /// token auth, a push with no topic and no default topic (APNs would answer
    /// `MissingTopic`). On `ExpiredProviderToken` the token is renewed (see
    /// [`ProviderToken::reject`]) and the push is sent once more.
    pub async fn send(&self, notification: &Notification, accepted_at_ms: u64) -> Attempt {
        let request = payload::build(notification, self.default_topic.as_deref(), accepted_at_ms);
        if request.is_too_large() {
            let mut attempt = Attempt::failed(
                Outcome::Rejected,
                PushError::new(Category::PayloadTooLarge, "PayloadTooLarge"),
            );
            attempt.answer = Some(format!(
                "not sent: the payload is {} bytes, over {MAX_PAYLOAD_BYTES}",
                request.payload.len()
            ));
            return attempt;
        }
        let ApnsAuth::Token(provider_token) = &self.auth else {
            return self.post(notification, &request, None).await;
        };
        if request.topic.is_none() {
            let mut attempt = Attempt::failed(
                Outcome::Configuration,
                PushError::new(Category::InternalConfig, "MissingTopic"),
            );
            attempt.answer =
                Some("not sent: no topic and no default_topic, required with token auth".into());
            return attempt;
        }

        let jwt = match provider_token.bearer() {
            Ok(jwt) => jwt,
            Err(error) => return signing_failed(&error),
        };
        let attempt = self.post(notification, &request, Some(&jwt)).await;
        if !is_expired_provider_token(&attempt) || !provider_token.reject(&jwt) {
            return attempt;
        }
        tracing::warn!(
            reason = classify::EXPIRED_PROVIDER_TOKEN,
            "APNs refused the provider token; signing a new one and sending again"
        );
        match provider_token.bearer() {
            Ok(jwt) => self.post(notification, &request, Some(&jwt)).await,
            Err(error) => signing_failed(&error),
        }
    }

    async fn post(
        &self,
        notification: &Notification,
        request: &ApnsRequest,
        jwt: Option<&str>,
    ) -> Attempt {
        let mut url = self.endpoint.clone();
        url.path_segments_mut()
            .expect("the endpoint was checked to be a base URL")
            .pop_if_empty()
            .extend(["3", "device", notification.target.device_token.as_str()]);

        let mut builder = self
            .connections
            .pick()
            .post(url)
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "application/json");
        for (name, value) in request.headers() {
            builder = builder.header(name, value);
        }
        if let Some(jwt) = jwt {
            builder = builder.header(AUTHORIZATION, format!("bearer {jwt}"));
        }

        let response = match builder.body(request.payload.clone()).send().await {
            Ok(response) => response,
            Err(error) => return Attempt::transport_error(error),
        };
        let status = response.status().as_u16();
        let retry_after = retry_after_header(response.headers());
        match response.bytes().await {
            Ok(body) => Attempt {
                retry_after,
                ..classify::classify(status, &body)
            },
            Err(error) => Attempt::transport_error(error),
        }
    }
}

fn is_expired_provider_token(attempt: &Attempt) -> bool {
    attempt
        .error
        .as_ref()
        .is_some_and(|e| e.reason == classify::EXPIRED_PROVIDER_TOKEN)
}

fn signing_failed(error: &jsonwebtoken::errors::Error) -> Attempt {
    let mut attempt = Attempt::failed(
        Outcome::OurCredentials,
        PushError::new(Category::Auth, "provider_token_signing_failed"),
    );
    attempt.answer = Some(format!(
        "not sent: the provider token cannot be signed: {error}"
    ));
    attempt
}

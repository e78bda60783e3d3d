//! Delivery to Firebase Cloud Messaging through the HTTP v1 API, authenticated with
//! OAuth2 access tokens from a service account.

pub mod auth;
pub mod classify;
pub mod message;

use pushgate_shared::Notification;
use pushgate_shared::api::{Category, PushError};
use reqwest::Url;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};

use crate::connections::Connections;
use crate::outcome::{Attempt, Outcome, retry_after_header};
use auth::{AccessTokens, TokenError};
use message::MAX_CONTENT_BYTES;

/// Google's FCM endpoint.
pub const DEFAULT_ENDPOINT: &str = "https://fcm.googleapis.com";

/// Sends notifications for one FCM app (one Firebase project).
pub(crate) struct FcmSender {
    pub connections: Connections,
    /// `{endpoint}/v1/projects/{project_id}/messages:send`.
    pub send_url: Url,
    pub tokens: AccessTokens,
}

impl FcmSender {
    /// The send URL for `project_id` under `endpoint`.
    pub fn url_for(endpoint: &Url, project_id: &str) -> Url {
        let mut url = endpoint.clone();
        url.path_segments_mut()
            .expect("the endpoint was checked to be a base URL")
            .pop_if_empty()
            .extend(["v1", "projects", project_id, "messages:send"]);
        url
    }

    /// Sends `notification` and classifies the answer.
    ///
    /// A message whose content is over 4096 bytes is not sent (413 `payload_too_large`).
    /// When FCM refuses our access token (401 without an FCM error code), the token is
    /// renewed and the message is sent once more.
    pub async fn send(&self, notification: &Notification) -> Attempt {
        let size = message::content_size(notification);
        if size > MAX_CONTENT_BYTES {
            let mut attempt = Attempt::failed(
                Outcome::Rejected,
                PushError::new(Category::PayloadTooLarge, "payload_too_large"),
            );
            attempt.answer = Some(format!(
                "not sent: the data and alert texts are {size} bytes, over {MAX_CONTENT_BYTES}"
            ));
            return attempt;
        }
        let body = message::request_body(notification);

        let token = match self.tokens.token().await {
            Ok(token) => token,
            Err(error) => return token_unavailable(&error),
        };
        let attempt = self.post(&body, &token).await;
        if attempt.class != Outcome::OurCredentials {
            return attempt;
        }
        tracing::warn!(
            reason = attempt.error_labels().1,
            "FCM refused the access token; fetching a new one and sending again"
        );
        self.tokens.reject(&token);
        match self.tokens.token().await {
            Ok(token) => self.post(&body, &token).await,
            Err(error) => token_unavailable(&error),
        }
    }

    async fn post(&self, body: &[u8], token: &str) -> Attempt {
        let sent = self
            .connections
            .pick()
            .post(self.send_url.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(AUTHORIZATION, format!("Bearer {token}"))
            .body(body.to_vec())
            .send()
            .await;
        let response = match sent {
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

/// The attempt when no access token could be had: `auth` (503 `service_internal` in v3),
/// retried later when Google's side failed, our credentials' fault otherwise.
fn token_unavailable(error: &TokenError) -> Attempt {
    let class = if error.is_transient() {
        Outcome::ProviderDown
    } else {
        Outcome::OurCredentials
    };
    let mut attempt = Attempt::failed(
        class,
        PushError::new(Category::Auth, "oauth_token_unavailable"),
    );
    attempt.answer = Some(format!("not sent: {error}"));
    attempt
}

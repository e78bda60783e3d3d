//! APNs delivery against the testkit's mock APNs over HTTP/2 with TLS and h2c: exact
//! payloads and headers (scenarios 47, 48, 50, 51, 53, 54, 57; field reports B05-B08),
//! the provider token's reuse and renewal (B17), and every error class end to end
//! (scenarios 1-10, 19).

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use dispatcher::outcome::Outcome;
use dispatcher::{App, AppConfig, Apps};
use pushgate_shared::api::{Category, PushError, answer_for_outcome};
use pushgate_shared::{Alert, ApiVersion, Mode, Priority, Service};
use pushgate_testkit::credentials::ApnsCredentialFiles;
use pushgate_testkit::{Activity, ApnsCredentials, ErrorToken, MockApns, MockApnsOptions};
use serde_json::json;
use support::{TOK64, TOPIC, alert, silent};

const ACCEPTED: u64 = support::ACCEPTED_AT_MS;

#[derive(Clone, Copy, PartialEq)]
enum Transport {
    Tls,
    H2c,
}

#[derive(Clone, Copy, PartialEq)]
enum Auth {
    Token,
    Certificate,
}

struct Setup {
    mock: MockApns,
    apps: Apps,
    _files: ApnsCredentialFiles,
}

impl Setup {
    async fn start(transport: Transport, auth: Auth) -> Self {
        Self::with(transport, auth, |_| {}).await
    }

    async fn with(transport: Transport, auth: Auth, change: impl FnOnce(&mut AppConfig)) -> Self {
        let credentials = ApnsCredentials::generate().unwrap();
        let files = credentials.write_files().unwrap();
        let options = MockApnsOptions {
            auth: match auth {
                Auth::Token => credentials.token_auth(),
                Auth::Certificate => credentials.certificate_auth(),
            },
            ..MockApnsOptions::default()
        };
        let mock = MockApns::start(options).await.unwrap();
        let endpoint = match transport {
            Transport::Tls => mock.tls_url(),
            Transport::H2c => mock.h2c_url(),
        };
        let app_credentials = match auth {
            Auth::Token => support::apns_token(&credentials, &files),
            Auth::Certificate => support::apns_certificate(&files),
        };
        let mut config = support::app(
            "apns",
            Service::Apns,
            Mode::Prod,
            &endpoint,
            app_credentials,
        );
        config.extra_root_pem = Some(mock.ca_pem().to_owned());
        change(&mut config);
        let apps = Apps::build(&[config]).unwrap();
        Setup {
            mock,
            apps,
            _files: files,
        }
    }

    fn app(&self) -> &App {
        self.apps.iter().next().unwrap()
    }

    fn only_request(&self) -> Activity {
        let activity = self.mock.activity();
        assert_eq!(activity.len(), 1, "exactly one upstream call");
        activity.into_iter().next().unwrap()
    }
}

/// The `apns-*` headers of a recorded request.
fn apns_headers(activity: &Activity) -> BTreeMap<&str, &str> {
    activity
        .request_headers
        .iter()
        .filter(|(name, _)| name.starts_with("apns-"))
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect()
}

fn full_alert() -> pushgate_shared::Notification {
    let mut n = alert(Service::Apns, TOK64);
    n.alert = Some(Alert {
        title: "title value".to_owned(),
        body: "body value".to_owned(),
        badge: Some(7),
        click_action: Some("click.action".to_owned()),
        tag: Some("tag value".to_owned()),
        sound: Some("bing".to_owned()),
    });
    n.data = json!({"meta": {"room": "r1", "n": 2}, "tags": ["a", "b"]})
        .as_object()
        .cloned();
    n.priority = Some(Priority::High);
    n.time_to_live_secs = Some(3600);
    n.mutable_content = true;
    n.target.topic = Some(TOPIC.to_owned());
    n
}

async fn full_alert_arrives_exactly(transport: Transport) {
    let setup = Setup::start(transport, Auth::Token).await;

    let attempt = setup.app().send(&full_alert(), ACCEPTED).await;

    assert_eq!(attempt.class, Outcome::Delivered, "{attempt:?}");
    let request = setup.only_request();
    assert_eq!(request.http_version, "HTTP/2.0");
    assert_eq!(request.path, format!("/3/device/{TOK64}"));
    assert_eq!(
        request.request_data,
        json!({"aps": {"alert": {"title": "title value", "body": "body value"}, "badge": 7,
                       "sound": "bing", "category": "click.action", "mutable-content": 1},
               "meta": {"room": "r1", "n": 2}, "tags": ["a", "b"]})
    );
    let expiration = (ACCEPTED / 1000 + 3600).to_string();
    assert_eq!(
        apns_headers(&request),
        BTreeMap::from([
            ("apns-expiration", expiration.as_str()),
            ("apns-priority", "10"),
            ("apns-push-type", "alert"),
            ("apns-topic", TOPIC),
        ])
    );
    assert!(request.request_headers["authorization"].starts_with("bearer "));
    assert_eq!(request.request_headers["content-type"], "application/json");
}

#[tokio::test]
async fn full_alert_arrives_exactly_over_tls() {
    full_alert_arrives_exactly(Transport::Tls).await;
}

#[tokio::test]
async fn full_alert_arrives_exactly_over_h2c() {
    full_alert_arrives_exactly(Transport::H2c).await;
}

#[tokio::test]
async fn silent_push_is_background_priority_five_with_the_default_topic_b07_b08() {
    let setup = Setup::with(Transport::Tls, Auth::Token, |c| {
        c.default_topic = Some(TOPIC.to_owned());
    })
    .await;
    let mut n = silent(
        Service::Apns,
        TOK64,
        json!({"last-message-body": "hi", "last-message-sender": "alice@example.com",
               "message-count": 1}),
    );
    n.priority = Some(Priority::High);

    let attempt = setup.app().send(&n, ACCEPTED).await;

    assert_eq!(attempt.class, Outcome::Delivered, "{attempt:?}");
    let request = setup.only_request();
    assert_eq!(
        request.request_data,
        json!({"aps": {"content-available": 1}, "last-message-body": "hi",
               "last-message-sender": "alice@example.com", "message-count": 1})
    );
    assert_eq!(
        apns_headers(&request),
        BTreeMap::from([
            ("apns-priority", "5"),
            ("apns-push-type", "background"),
            ("apns-topic", TOPIC),
        ])
    );
}

#[tokio::test]
async fn topic_comes_from_the_request_else_the_default_b06() {
    let setup = Setup::with(Transport::H2c, Auth::Token, |c| {
        c.default_topic = Some(TOPIC.to_owned());
    })
    .await;
    let mut explicit = alert(Service::Apns, TOK64);
    explicit.target.topic = Some("com.example.other".to_owned());
    let mut null_topic = alert(Service::Apns, TOK64);
    null_topic.target.topic = None;

    for n in [&explicit, &null_topic] {
        assert_eq!(
            setup.app().send(n, ACCEPTED).await.class,
            Outcome::Delivered
        );
    }

    let topics: Vec<String> = setup
        .mock
        .activity()
        .iter()
        .rev()
        .map(|a| a.request_headers["apns-topic"].clone())
        .collect();
    assert_eq!(topics, ["com.example.other", TOPIC]);
}

#[tokio::test]
async fn certificate_auth_sends_no_token_and_no_topic_when_none_is_known() {
    let setup = Setup::start(Transport::Tls, Auth::Certificate).await;

    let attempt = setup
        .app()
        .send(&alert(Service::Apns, TOK64), ACCEPTED)
        .await;

    assert_eq!(attempt.class, Outcome::Delivered, "{attempt:?}");
    let request = setup.only_request();
    assert!(request.client_certificate);
    assert!(!request.request_headers.contains_key("authorization"));
    assert!(!request.request_headers.contains_key("apns-topic"));
    assert_eq!(
        request.request_data,
        json!({"aps": {"alert": {"title": "t", "body": "b"}}})
    );
    assert_eq!(setup.app().tokens_issued(), 0);
}

#[tokio::test]
async fn token_auth_without_any_topic_is_not_sent() {
    let setup = Setup::start(Transport::H2c, Auth::Token).await;

    let attempt = setup
        .app()
        .send(&alert(Service::Apns, TOK64), ACCEPTED)
        .await;

    assert_eq!(attempt.class, Outcome::Configuration);
    assert_eq!(
        attempt.error,
        Some(PushError::new(Category::InternalConfig, "MissingTopic"))
    );
    assert!(setup.mock.activity().is_empty());
}

#[tokio::test]
async fn one_provider_token_serves_all_connections() {
    let setup = Setup::start(Transport::Tls, Auth::Token).await;
    let mut n = alert(Service::Apns, TOK64);
    n.target.topic = Some(TOPIC.to_owned());

    let sends = (0..10).map(|_| setup.app().send(&n, ACCEPTED));
    let attempts = futures::future::join_all(sends).await;

    assert!(
        attempts.iter().all(|a| a.class == Outcome::Delivered),
        "{attempts:?}"
    );
    let activity = setup.mock.activity();
    assert_eq!(activity.len(), 10);
    let first = &activity[0].request_headers["authorization"];
    assert!(
        activity
            .iter()
            .all(|a| &a.request_headers["authorization"] == first)
    );
    assert_eq!(setup.app().tokens_issued(), 1);
}

#[tokio::test]
async fn expired_provider_token_is_renewed_and_the_push_sent_again_b17() {
    let setup = Setup::start(Transport::H2c, Auth::Token).await;
    setup
        .mock
        .set_error_tokens([ErrorToken::new(TOK64, 403, "ExpiredProviderToken").times(1)]);
    let mut n = alert(Service::Apns, TOK64);
    n.target.topic = Some(TOPIC.to_owned());

    let attempt = setup.app().send(&n, ACCEPTED).await;

    assert_eq!(attempt.class, Outcome::Delivered, "{attempt:?}");
    let statuses: Vec<u16> = setup.mock.activity().iter().map(|a| a.status).collect();
    assert_eq!(statuses, [200, 403], "newest first");
    assert_eq!(
        setup.app().tokens_issued(),
        2,
        "a new token was signed for the retry"
    );

    setup
        .mock
        .set_error_tokens([ErrorToken::new(TOK64, 403, "ExpiredProviderToken").times(2)]);
    let attempt = setup.app().send(&n, ACCEPTED).await;
    assert_eq!(
        attempt.class,
        Outcome::OurCredentials,
        "refused twice: {attempt:?}"
    );
    assert_eq!(
        setup.mock.activity().len(),
        3,
        "no retry: the young token was an early renewal"
    );
    let v3 = answer_for_outcome(ApiVersion::V3, attempt.error.as_ref().unwrap());
    assert_eq!(
        (v3.status, v3.body),
        (503, json!({"reason": "service_internal"}))
    );
}

#[tokio::test]
async fn oversized_payload_is_refused_without_a_call() {
    let setup = Setup::start(Transport::H2c, Auth::Token).await;
    let mut n = silent(Service::Apns, TOK64, json!({"blob": "y".repeat(4100)}));
    n.target.topic = Some(TOPIC.to_owned());

    let attempt = setup.app().send(&n, ACCEPTED).await;

    assert_eq!(attempt.class, Outcome::Rejected);
    assert_eq!(
        attempt.error,
        Some(PushError::new(Category::PayloadTooLarge, "PayloadTooLarge"))
    );
    let v3 = answer_for_outcome(ApiVersion::V3, attempt.error.as_ref().unwrap());
    assert_eq!(
        (v3.status, v3.body),
        (413, json!({"reason": "payload_too_large"}))
    );
    assert!(setup.mock.activity().is_empty());
    assert_eq!(setup.app().tokens_issued(), 0);
}

#[tokio::test]
async fn error_answers_classify_end_to_end() {
    #[rustfmt::skip]
    let table = [
        (400, "BadDeviceToken", Outcome::Rejected, 400, "invalid_request"),
        (403, "BadCertificate", Outcome::OurCredentials, 503, "service_internal"),
        (404, "BadPath", Outcome::Configuration, 503, "internal_config"),
        (405, "MethodNotAllowed", Outcome::Configuration, 503, "internal_config"),
        (410, "Unregistered", Outcome::DeadToken, 410, "unregistered"),
        (413, "PayloadTooLarge", Outcome::Rejected, 413, "payload_too_large"),
        (500, "InternalServerError", Outcome::ProviderDown, 503, "service_internal"),
        (429, "TooManyRequests", Outcome::Throttled, 429, "too_many_requests"),
        (503, "ServiceUnavailable", Outcome::ProviderDown, 503, "service_internal"),
        (410, "ExpiredToken", Outcome::DeadToken, 410, "unregistered"),
        (400, "InvalidPushType", Outcome::Configuration, 500, "InvalidPushType"),
    ];
    let setup = Setup::with(Transport::Tls, Auth::Token, |c| {
        c.default_topic = Some(TOPIC.to_owned());
    })
    .await;
    let entries = table
        .iter()
        .enumerate()
        .map(|(i, (status, reason, ..))| ErrorToken::new(format!("{i:064}"), *status, *reason));
    setup.mock.set_error_tokens(entries.collect::<Vec<_>>());

    for (i, (status, reason, class, v3_status, v3_reason)) in table.into_iter().enumerate() {
        let attempt = setup
            .app()
            .send(&alert(Service::Apns, &format!("{i:064}")), ACCEPTED)
            .await;
        let case = format!("{status} {reason}");
        assert_eq!(attempt.class, class, "{case}: {attempt:?}");
        let error = attempt.error.as_ref().unwrap();
        let v3 = answer_for_outcome(ApiVersion::V3, error);
        assert_eq!(
            (v3.status, v3.body),
            (v3_status, json!({"reason": v3_reason})),
            "{case}"
        );
        let v2 = answer_for_outcome(ApiVersion::V2, error);
        assert_eq!(
            (v2.status, v2.body),
            (500, json!({"details": reason})),
            "{case}"
        );
    }
    assert_eq!(
        setup.mock.activity().len(),
        table.len(),
        "one call each, no retry"
    );

    let delivered = setup
        .app()
        .send(&alert(Service::Apns, TOK64), ACCEPTED)
        .await;
    assert_eq!(
        delivered,
        dispatcher::Attempt::delivered().with_answer(200, b"")
    );
}

#[tokio::test]
async fn throttling_passes_retry_after_on_b22() {
    let setup = Setup::with(Transport::H2c, Auth::Token, |c| {
        c.default_topic = Some(TOPIC.to_owned());
    })
    .await;
    setup.mock.set_error_tokens([
        ErrorToken::new(TOK64, 429, "TooManyRequests").with_retry_after_secs(30)
    ]);

    let attempt = setup
        .app()
        .send(&alert(Service::Apns, TOK64), ACCEPTED)
        .await;

    assert_eq!(attempt.class, Outcome::Throttled);
    assert_eq!(attempt.retry_after, Some(Duration::from_secs(30)));
    assert_eq!(setup.mock.activity().len(), 1);
}

#[tokio::test]
async fn dev_mode_reaches_the_sandbox_app_and_prod_the_production_app_b05() {
    let credentials = ApnsCredentials::generate().unwrap();
    let files = credentials.write_files().unwrap();
    let prod = MockApns::start(MockApnsOptions::default()).await.unwrap();
    let sandbox = MockApns::start(MockApnsOptions::default()).await.unwrap();
    prod.set_error_tokens([ErrorToken::new(TOK64, 400, "BadDeviceToken")]);
    let mut configs: Vec<AppConfig> = [("prod", Mode::Prod, &prod), ("dev", Mode::Dev, &sandbox)]
        .into_iter()
        .map(|(name, mode, mock)| {
            let credentials = support::apns_token(&credentials, &files);
            support::app(name, Service::Apns, mode, &mock.h2c_url(), credentials)
        })
        .collect();
    for config in &mut configs {
        config.default_topic = Some(TOPIC.to_owned());
    }
    let apps = Apps::build(&configs).unwrap();

    let mut dev = alert(Service::Apns, TOK64);
    dev.target.mode = Mode::Dev;
    assert_eq!(apps.send(&dev, ACCEPTED).await.class, Outcome::Delivered);
    assert_eq!((sandbox.activity().len(), prod.activity().len()), (1, 0));

    let attempt = apps.send(&alert(Service::Apns, TOK64), ACCEPTED).await;
    assert_eq!(attempt.class, Outcome::Rejected);
    assert_eq!(
        attempt.error,
        Some(PushError::new(Category::InvalidRequest, "BadDeviceToken"))
    );
    assert_eq!((sandbox.activity().len(), prod.activity().len()), (1, 1));
    assert!(!prod.activity()[0].request_data.to_string().contains("null"));
}

#[tokio::test]
async fn unreachable_apns_is_provider_down_unable_to_connect() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = format!("https://{}", listener.local_addr().unwrap());
    drop(listener);
    let setup = Setup::with(Transport::Tls, Auth::Token, |c| {
        c.endpoint = Some(closed);
        c.default_topic = Some(TOPIC.to_owned());
    })
    .await;

    let attempt = setup
        .app()
        .send(&alert(Service::Apns, TOK64), ACCEPTED)
        .await;

    assert_eq!(attempt.class, Outcome::ProviderDown);
    assert_eq!(attempt.error, Some(PushError::generic("unable_to_connect")));
    let answer = attempt.answer.unwrap();
    assert!(
        !answer.contains(TOK64),
        "the device token stays out of logs: {answer}"
    );
}

#[tokio::test]
async fn untrusted_server_certificate_is_refused() {
    let setup = Setup::with(Transport::Tls, Auth::Token, |c| {
        c.extra_root_pem = None;
        c.default_topic = Some(TOPIC.to_owned());
    })
    .await;

    let attempt = setup
        .app()
        .send(&alert(Service::Apns, TOK64), ACCEPTED)
        .await;

    assert_eq!(attempt.class, Outcome::ProviderDown);
    assert_eq!(attempt.error, Some(PushError::generic("unable_to_connect")));
    assert!(setup.mock.activity().is_empty());
}

#[tokio::test]
async fn device_tokens_are_escaped_in_the_path() {
    let setup = Setup::with(Transport::H2c, Auth::Token, |c| {
        c.default_topic = Some(TOPIC.to_owned());
    })
    .await;

    let attempt = setup
        .app()
        .send(&alert(Service::Apns, "a/b c"), ACCEPTED)
        .await;

    assert_eq!(attempt.class, Outcome::Delivered, "{attempt:?}");
    assert_eq!(setup.only_request().path, "/3/device/a%2Fb%20c");
}

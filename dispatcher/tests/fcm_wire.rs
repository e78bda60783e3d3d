//! FCM delivery against the testkit's mock FCM over real sockets: the exact messages
//! (scenarios 52 and 53, field reports B01, B02, B16, B21), the OAuth token life cycle
//! (B18), and every error class end to end (scenarios 11-17, B22).

mod support;

use dispatcher::outcome::Outcome;
use dispatcher::{App, AppConfig, Apps, Credentials};
use pushgate_shared::api::{Category, PushError, answer_for_outcome};
use pushgate_shared::{Alert, ApiVersion, Mode, Priority, Service};
use pushgate_testkit::{ErrorToken, MockFcm, MockFcmOptions, Outage, ServiceAccountFile};
use serde_json::{Value, json};
use support::{FCM_TOKEN, TOPIC, alert, silent};

const ACCEPTED: u64 = support::ACCEPTED_AT_MS;

struct Setup {
    mock: MockFcm,
    apps: Apps,
    _account: ServiceAccountFile,
}

impl Setup {
    async fn start() -> Self {
        Self::with(MockFcmOptions::default(), |_| {}).await
    }

    async fn with(options: MockFcmOptions, change: impl FnOnce(&mut AppConfig)) -> Self {
        let mock = MockFcm::start(options).await.unwrap();
        let account = mock.service_account().unwrap();
        let mut config = support::app(
            "fcm",
            Service::Fcm,
            Mode::Prod,
            &mock.url(),
            support::fcm_account(&account),
        );
        change(&mut config);
        let apps = Apps::build(&[config]).unwrap();
        Setup {
            mock,
            apps,
            _account: account,
        }
    }

    fn app(&self) -> &App {
        self.apps.iter().next().unwrap()
    }

    /// The body of the only message the mock received.
    fn only_message(&self) -> Value {
        let activity = self.mock.activity();
        assert_eq!(activity.len(), 1, "exactly one upstream call");
        activity[0].request_data.clone()
    }
}

fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    url
}

#[tokio::test]
async fn full_alert_arrives_exactly() {
    let setup = Setup::start().await;
    let mut n = alert(Service::Fcm, FCM_TOKEN);
    n.alert = Some(Alert {
        title: "title value".to_owned(),
        body: "body value".to_owned(),
        badge: Some(7),
        click_action: Some("click.action".to_owned()),
        tag: Some("tag value".to_owned()),
        sound: Some("bing".to_owned()),
    });
    n.data = json!({"k": "v"}).as_object().cloned();
    n.priority = Some(Priority::Normal);
    n.time_to_live_secs = Some(3600);
    n.mutable_content = true;
    n.target.topic = Some(TOPIC.to_owned());

    let attempt = setup.app().send(&n, ACCEPTED).await;

    assert_eq!(attempt.class, Outcome::Delivered, "{attempt:?}");
    assert_eq!(
        setup.only_message(),
        json!({"message": {
            "token": FCM_TOKEN,
            "data": {"k": "v"},
            "android": {"priority": "NORMAL", "ttl": "3600s", "notification": {
                "title": "title value", "body": "body value", "click_action": "click.action",
                "tag": "tag value", "sound": "bing"}}}})
    );
    let activity = &setup.mock.activity()[0];
    assert_eq!(activity.path, "/v1/projects/demo-project/messages:send");
    assert!(activity.request_headers["authorization"].starts_with("Bearer "));
    assert_eq!(activity.request_headers["content-type"], "application/json");
}

#[tokio::test]
async fn silent_data_values_are_strings_b01() {
    let setup = Setup::start().await;
    let n = silent(
        Service::Fcm,
        FCM_TOKEN,
        json!({"last-message-body": "1250", "last-message-sender": "alice@example.com",
               "message-count": 1, "urgent": true}),
    );

    let attempt = setup.app().send(&n, ACCEPTED).await;

    assert_eq!(attempt.class, Outcome::Delivered, "{attempt:?}");
    assert_eq!(
        setup.only_message(),
        json!({"message": {"token": FCM_TOKEN, "data": {
            "last-message-body": "1250", "last-message-sender": "alice@example.com",
            "message-count": "1", "urgent": "true"}}})
    );
}

#[tokio::test]
async fn nested_data_is_sent_as_json_text_with_no_empty_objects_b02() {
    let setup = Setup::start().await;
    let mut n = alert(Service::Fcm, FCM_TOKEN);
    n.alert = Some(Alert {
        title: "Hi".to_owned(),
        body: "Body text".to_owned(),
        ..Alert::default()
    });
    n.data = json!({"event": "eyJrIjoidiJ9", "meta": {"room": "r1", "n": 2}, "tags": ["a", "b"]})
        .as_object()
        .cloned();

    let attempt = setup.app().send(&n, ACCEPTED).await;

    assert_eq!(attempt.class, Outcome::Delivered, "{attempt:?}");
    let message = &setup.only_message()["message"];
    assert_eq!(message["data"]["event"], "eyJrIjoidiJ9");
    let meta: Value = serde_json::from_str(message["data"]["meta"].as_str().unwrap()).unwrap();
    assert_eq!(meta, json!({"room": "r1", "n": 2}));
    assert_eq!(message["data"]["tags"], "[\"a\",\"b\"]");
    assert_eq!(
        message["android"]["notification"],
        json!({"title": "Hi", "body": "Body text"})
    );
    assert!(
        !message.to_string().contains("{}"),
        "no empty object in {message}"
    );
}

#[tokio::test]
async fn dev_mode_and_topic_change_nothing_for_fcm_b21() {
    let setup = Setup::start().await;
    let mut n = silent(Service::Fcm, FCM_TOKEN, json!({"message-count": 1}));
    n.target.mode = Mode::Dev;
    n.target.topic = Some(TOPIC.to_owned());
    n.priority = Some(Priority::High);

    let attempt = setup.apps.send(&n, ACCEPTED).await;

    assert_eq!(attempt.class, Outcome::Delivered, "{attempt:?}");
    assert_eq!(
        setup.only_message(),
        json!({"message": {"token": FCM_TOKEN, "data": {"message-count": "1"},
                           "android": {"priority": "HIGH"}}})
    );
}

#[tokio::test]
async fn one_access_token_serves_many_sends_and_is_renewed_after_a_401_b18() {
    let setup = Setup::start().await;
    let n = alert(Service::Fcm, FCM_TOKEN);
    let sends = (0..8).map(|_| setup.app().send(&n, ACCEPTED));
    let attempts = futures::future::join_all(sends).await;
    assert!(
        attempts.iter().all(|a| a.class == Outcome::Delivered),
        "{attempts:?}"
    );
    assert_eq!(setup.mock.tokens_issued(), 1);
    assert_eq!(setup.app().tokens_issued(), 1);

    setup.mock.revoke_tokens();
    let attempt = setup
        .app()
        .send(&alert(Service::Fcm, FCM_TOKEN), ACCEPTED)
        .await;

    assert_eq!(attempt.class, Outcome::Delivered, "{attempt:?}");
    assert_eq!(setup.mock.tokens_issued(), 2);
    assert_eq!(setup.app().tokens_issued(), 2);
    let statuses: Vec<u16> = setup
        .mock
        .activity()
        .iter()
        .take(2)
        .map(|a| a.status)
        .collect();
    assert_eq!(
        statuses,
        [200, 401],
        "the refused send, then its one retry (newest first)"
    );
    let activity = setup.mock.activity();
    let retried = &activity[0].request_headers["authorization"];
    let refused = &activity[1].request_headers["authorization"];
    assert_ne!(retried, refused, "the retry carries the new token");
}

#[tokio::test]
async fn error_answers_classify_end_to_end() {
    // (reason, HTTP status, with FcmError detail, class, v3 status, v3 reason)
    #[rustfmt::skip]
    let table = [
        ("SENDER_ID_MISMATCH", 403, false, Outcome::Rejected, 503, "service_internal"),
        ("UNREGISTERED", 404, false, Outcome::Rejected, 410, "unregistered"),
        ("UNREGISTERED", 404, true, Outcome::DeadToken, 410, "unregistered"),
        ("QUOTA_EXCEEDED", 429, false, Outcome::Throttled, 429, "too_many_requests"),
        ("INTERNAL", 500, true, Outcome::ProviderDown, 503, "service_internal"),
        ("THIRD_PARTY_AUTH_ERROR", 401, false, Outcome::Configuration, 503, "service_internal"),
        ("THIRD_PARTY_AUTH_ERROR", 401, true, Outcome::Configuration, 503, "service_internal"),
        ("UNAVAILABLE", 503, true, Outcome::ProviderDown, 503, "service_internal"),
        ("INVALID_ARGUMENT", 400, true, Outcome::Rejected, 400, "invalid_request"),
    ];
    let setup = Setup::start().await;
    let entries = table
        .iter()
        .enumerate()
        .map(|(i, (reason, status, details, ..))| {
            ErrorToken::new(format!("token-{i}"), *status, *reason).with_details(*details)
        });
    setup.mock.set_error_tokens(entries.collect::<Vec<_>>());

    for (i, (reason, status, details, class, v3_status, v3_reason)) in table.into_iter().enumerate()
    {
        let attempt = setup
            .app()
            .send(&alert(Service::Fcm, &format!("token-{i}")), ACCEPTED)
            .await;
        let case = format!("{status} {reason} details={details}");
        assert_eq!(attempt.class, class, "{case}: {attempt:?}");
        let error = attempt.error.as_ref().unwrap();
        assert_eq!(error.reason, reason, "{case}");
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
        assert!(
            attempt
                .answer
                .as_deref()
                .unwrap()
                .starts_with(&status.to_string())
        );
    }
    assert_eq!(
        setup.mock.activity().len(),
        table.len(),
        "one call each, no retry"
    );
}

#[tokio::test]
async fn throttling_passes_retry_after_on_b22() {
    let setup = Setup::start().await;
    setup
        .mock
        .set_error_tokens([ErrorToken::new(FCM_TOKEN, 429, "QUOTA_EXCEEDED")
            .with_retry_after_secs(30)
            .times(1)]);

    let attempt = setup
        .app()
        .send(&alert(Service::Fcm, FCM_TOKEN), ACCEPTED)
        .await;

    assert_eq!(attempt.class, Outcome::Throttled);
    assert_eq!(
        attempt.retry_after,
        Some(std::time::Duration::from_secs(30))
    );
    assert_eq!(setup.mock.activity().len(), 1, "no retry inside the send");
    let again = setup
        .app()
        .send(&alert(Service::Fcm, FCM_TOKEN), ACCEPTED)
        .await;
    assert_eq!(again.class, Outcome::Delivered);
}

#[tokio::test]
async fn outage_is_provider_down_with_retry_after() {
    let setup = Setup::start().await;
    setup.mock.set_outage(Some(Outage {
        status: 503,
        retry_after_secs: Some(7200),
    }));

    let attempt = setup
        .app()
        .send(&alert(Service::Fcm, FCM_TOKEN), ACCEPTED)
        .await;

    assert_eq!(attempt.class, Outcome::ProviderDown);
    assert_eq!(
        attempt.retry_after,
        Some(dispatcher::outcome::MAX_RETRY_AFTER)
    );
}

#[tokio::test]
async fn oversized_content_is_refused_without_a_call_b16() {
    let setup = Setup::start().await;
    let big = silent(Service::Fcm, FCM_TOKEN, json!({"blob": "y".repeat(5000)}));

    let attempt = setup.app().send(&big, ACCEPTED).await;

    assert_eq!(attempt.class, Outcome::Rejected);
    assert_eq!(
        attempt.error,
        Some(PushError::new(
            Category::PayloadTooLarge,
            "payload_too_large"
        ))
    );
    assert_eq!(setup.mock.activity().len(), 0);
    assert_eq!(
        setup.mock.tokens_issued(),
        0,
        "not even a token was fetched"
    );

    let fits = silent(Service::Fcm, FCM_TOKEN, json!({"blob": "y".repeat(3500)}));
    assert_eq!(
        setup.app().send(&fits, ACCEPTED).await.class,
        Outcome::Delivered
    );
}

#[tokio::test]
async fn a_wrong_project_is_a_configuration_problem() {
    let setup = Setup::start().await;
    let other = ServiceAccountFile::write("other-project", &setup.mock.token_uri()).unwrap();
    let config = support::app(
        "other",
        Service::Fcm,
        Mode::Prod,
        &setup.mock.url(),
        support::fcm_account(&other),
    );
    let apps = Apps::build(&[config]).unwrap();

    let attempt = apps.send(&alert(Service::Fcm, FCM_TOKEN), ACCEPTED).await;

    assert_eq!(attempt.class, Outcome::Configuration, "{attempt:?}");
    assert_eq!(attempt.error, Some(PushError::generic("PERMISSION_DENIED")));
}

#[tokio::test]
async fn unreachable_fcm_is_provider_down_unable_to_connect() {
    let endpoint = closed_port_url();
    let setup = Setup::with(MockFcmOptions::default(), |c| c.endpoint = Some(endpoint)).await;

    let attempt = setup
        .app()
        .send(&alert(Service::Fcm, FCM_TOKEN), ACCEPTED)
        .await;

    assert_eq!(attempt.class, Outcome::ProviderDown);
    assert_eq!(attempt.error, Some(PushError::generic("unable_to_connect")));
    assert!(attempt.answer.unwrap().starts_with("no answer: "));
}

#[tokio::test]
async fn a_slow_answer_is_a_request_timeout() {
    let setup = Setup::with(MockFcmOptions::default(), |c| c.request_timeout_ms = 300).await;
    // Fetch the token first, so that only the send meets the latency.
    assert_eq!(
        setup
            .app()
            .send(&alert(Service::Fcm, FCM_TOKEN), ACCEPTED)
            .await
            .class,
        Outcome::Delivered
    );
    setup.mock.set_latency(std::time::Duration::from_secs(30));

    let attempt = setup
        .app()
        .send(&alert(Service::Fcm, FCM_TOKEN), ACCEPTED)
        .await;

    assert_eq!(attempt.class, Outcome::ProviderDown);
    assert_eq!(attempt.error, Some(PushError::generic("request_timeout")));
}

#[tokio::test]
async fn token_endpoint_failures_are_reported_as_auth() {
    let unreachable = closed_port_url();
    let setup = Setup::with(MockFcmOptions::default(), |c| {
        let Credentials::FcmServiceAccount { token_uri, .. } = &mut c.credentials else {
            unreachable!("an FCM app has service-account credentials")
        };
        *token_uri = Some(format!("{unreachable}/token"));
    })
    .await;
    let attempt = setup
        .app()
        .send(&alert(Service::Fcm, FCM_TOKEN), ACCEPTED)
        .await;
    assert_eq!(attempt.class, Outcome::ProviderDown, "{attempt:?}");
    assert_eq!(
        attempt.error,
        Some(PushError::new(Category::Auth, "oauth_token_unavailable"))
    );
    let v3 = answer_for_outcome(ApiVersion::V3, attempt.error.as_ref().unwrap());
    assert_eq!(
        (v3.status, v3.body),
        (503, json!({"reason": "service_internal"}))
    );

    let refusing = Setup::with(MockFcmOptions::default(), |c| {
        let Credentials::FcmServiceAccount { token_uri, .. } = &mut c.credentials else {
            unreachable!("an FCM app has service-account credentials")
        };
        *token_uri = Some(format!(
            "{}/no-such-token-endpoint",
            c.endpoint.clone().unwrap()
        ));
    })
    .await;
    let attempt = refusing
        .app()
        .send(&alert(Service::Fcm, FCM_TOKEN), ACCEPTED)
        .await;
    assert_eq!(attempt.class, Outcome::OurCredentials, "{attempt:?}");
    assert!(attempt.answer.unwrap().contains("answered 404"));
    assert_eq!(refusing.mock.activity().len(), 0);
}

#[tokio::test]
async fn fcm_over_tls_speaks_http2() {
    let options = MockFcmOptions {
        tls_addr: Some(std::net::SocketAddr::from(([127, 0, 0, 1], 0))),
        ..MockFcmOptions::default()
    };
    let mock = MockFcm::start(options).await.unwrap();
    let account = mock.service_account().unwrap();
    let mut config = support::app(
        "fcm_tls",
        Service::Fcm,
        Mode::Prod,
        &mock.tls_url().unwrap(),
        support::fcm_account(&account),
    );
    config.extra_root_pem = mock.ca_pem().map(str::to_owned);
    let apps = Apps::build(&[config]).unwrap();

    let attempt = apps.send(&alert(Service::Fcm, FCM_TOKEN), ACCEPTED).await;

    assert_eq!(attempt.class, Outcome::Delivered, "{attempt:?}");
    assert_eq!(mock.activity()[0].http_version, "HTTP/2.0");
}

//! MongoosePush's answers end to end with sync-wait on: each provider answer of the mocks
//! comes back to the API caller as MongoosePush gives it, v3 statuses and reasons and v2
//! `500 {"details": "<raw reason>"}` (reference 4.3 scenarios 1-20, 55, 59; field reports
//! B03, B22), and the job's fate matches (retried and delivered, dead-lettered, remembered).

mod support;

use pushgate_shared::Service;
use pushgate_testkit::{Control, ErrorToken};
use serde_json::{Value, json};
use support::*;

/// One provider answer and what the API caller gets for it.
struct Case {
    scenario: u8,
    status: u16,
    reason: &'static str,
    v3_status: u16,
    v3_reason: &'static str,
    /// The dispatcher retries it (and the mock answers 200 the second time).
    retried: bool,
    /// The job ends in the dead letters with this reason.
    dead_letter: Option<&'static str>,
}

const fn case(
    scenario: u8,
    status: u16,
    reason: &'static str,
    v3: (u16, &'static str),
    retried: bool,
    dead_letter: Option<&'static str>,
) -> Case {
    Case {
        scenario,
        status,
        reason,
        v3_status: v3.0,
        v3_reason: v3.1,
        retried,
        dead_letter,
    }
}

/// Scenarios 1-9: the APNs mock's answers and MongoosePush's v3 answers for them.
const APNS_CASES: [Case; 9] = [
    case(
        1,
        400,
        "BadDeviceToken",
        (400, "invalid_request"),
        false,
        None,
    ),
    case(
        2,
        403,
        "BadCertificate",
        (503, "service_internal"),
        false,
        Some("our_credentials"),
    ),
    case(
        3,
        404,
        "BadPath",
        (503, "internal_config"),
        false,
        Some("configuration"),
    ),
    case(
        4,
        405,
        "MethodNotAllowed",
        (503, "internal_config"),
        false,
        Some("configuration"),
    ),
    case(5, 410, "Unregistered", (410, "unregistered"), false, None),
    case(
        6,
        413,
        "PayloadTooLarge",
        (413, "payload_too_large"),
        false,
        None,
    ),
    case(
        7,
        500,
        "InternalServerError",
        (503, "service_internal"),
        true,
        None,
    ),
    case(
        8,
        429,
        "TooManyRequests",
        (429, "too_many_requests"),
        true,
        None,
    ),
    case(
        9,
        503,
        "ServiceUnavailable",
        (503, "service_internal"),
        true,
        None,
    ),
];

/// Scenarios 11-16: the FCM mock's answers (with FCM's `FcmError` detail) and
/// MongoosePush's v3 answers for them.
const FCM_CASES: [Case; 6] = [
    case(
        11,
        403,
        "SENDER_ID_MISMATCH",
        (503, "service_internal"),
        false,
        None,
    ),
    case(12, 404, "UNREGISTERED", (410, "unregistered"), false, None),
    case(
        13,
        429,
        "QUOTA_EXCEEDED",
        (429, "too_many_requests"),
        true,
        None,
    ),
    case(14, 500, "INTERNAL", (503, "service_internal"), true, None),
    case(
        15,
        401,
        "THIRD_PARTY_AUTH_ERROR",
        (503, "service_internal"),
        false,
        Some("configuration"),
    ),
    case(
        16,
        503,
        "UNAVAILABLE",
        (503, "service_internal"),
        true,
        None,
    ),
];

/// MongoosePush's `sample_notification` for `service`.
fn sample(service: &str) -> Value {
    json!({
        "service": service,
        "alert": {
            "title": "title value",
            "body": "body value",
            "click_action": "click.action",
            "tag": "tag value"
        }
    })
}

/// Sends one push per case through `version` and checks the answer and the job's fate.
async fn replay(
    gateway: &Gateway,
    service: Service,
    version: &str,
    cases: &[Case],
    expected: impl Fn(&Case) -> (u16, Value),
) {
    let control: &Control = match service {
        Service::Apns => gateway.apns.control(),
        Service::Fcm => gateway.fcm.control(),
    };
    let token = |case: &Case| format!("{}-{version}-s{:02}", service.as_str(), case.scenario);
    control.set_error_tokens(
        cases
            .iter()
            .map(|case| ErrorToken::new(token(case), case.status, case.reason).times(1)),
    );

    for case in cases {
        let token = token(case);
        let what = format!(
            "scenario {} ({} {})",
            case.scenario, case.status, case.reason
        );
        let reply = gateway
            .push(version, &token, &sample(service.as_str()))
            .await;
        assert_eq!((reply.status, reply.body), expected(case), "{what}");

        if case.retried {
            wait_delivered(control, &token).await;
            let statuses: Vec<u16> = sends_to(control, &token).iter().map(|s| s.status).collect();
            assert_eq!(
                statuses,
                [case.status, 200],
                "{what}: retried, then delivered"
            );
        } else {
            let send = only_send_to(control, &token);
            assert_eq!(send.status, case.status, "{what}: the mock's answer");
        }

        let letter = gateway.dead_letter_for(&token).await;
        match case.dead_letter {
            Some(reason) => {
                let letter = letter
                    .unwrap_or_else(|| panic!("{what}: dead-lettered"))
                    .letter;
                assert_eq!(letter.reason, reason, "{what}");
                assert_eq!(letter.attempts, 1, "{what}");
                let answer = letter.last_answer.unwrap_or_default();
                assert!(
                    answer.starts_with(&case.status.to_string()) && answer.contains(case.reason),
                    "{what}: the last answer is kept, got {answer:?}"
                );
            }
            None => assert!(letter.is_none(), "{what}: not dead-lettered"),
        }
    }
}

fn v3(case: &Case) -> (u16, Value) {
    (case.v3_status, json!({ "reason": case.v3_reason }))
}

fn v2(case: &Case) -> (u16, Value) {
    (500, json!({ "details": case.reason }))
}

async fn apns_answers_in_v3_scenarios_1_to_10(backend: Backend) {
    let gateway = Setup::new(backend, "answers-apns-v3").start().await;
    replay(&gateway, Service::Apns, "v3", &APNS_CASES, v3).await;

    // Scenario 10: no error configured.
    gateway
        .push_v3("apns-v3-s10", &sample("apns"))
        .await
        .assert_ok("scenario 10");
    assert_eq!(
        only_send_to(gateway.apns.control(), "apns-v3-s10").status,
        200
    );

    // Scenario 5 remembered the token as dead; the other rejections did not.
    assert!(gateway.is_dead(Service::Apns, "apns-v3-s05").await);
    assert!(!gateway.is_dead(Service::Apns, "apns-v3-s01").await);
    gateway.stop().await;
}

async fn apns_answers_in_v2_scenario_19(backend: Backend) {
    let gateway = Setup::new(backend, "answers-apns-v2").start().await;
    replay(&gateway, Service::Apns, "v2", &APNS_CASES, v2).await;
    gateway
        .push("v2", "apns-v2-ok", &sample("apns"))
        .await
        .assert_ok("v2 success");
    gateway.stop().await;
}

async fn fcm_answers_in_v3_scenarios_11_to_18(backend: Backend) {
    let gateway = Setup::new(backend, "answers-fcm-v3").start().await;
    replay(&gateway, Service::Fcm, "v3", &FCM_CASES, v3).await;

    // Scenario 17: no error.
    let reply = gateway.push_v3("fcm-v3-s17", &sample("fcm")).await;
    reply.assert_ok("scenario 17");
    assert_eq!(
        only_send_to(gateway.fcm.control(), "fcm-v3-s17").status,
        200
    );

    // Scenario 18, changed on purpose: nested data is sent as JSON text, where
    // MongoosePush answered 400 invalid_notification.
    let mut bad = sample("fcm");
    bad["data"] = json!({"x": {"a": 222}});
    gateway
        .push_v3("fcm-v3-s18", &bad)
        .await
        .assert_ok("scenario 18");
    let send = only_send_to(gateway.fcm.control(), "fcm-v3-s18");
    assert_eq!(fcm_message(&send)["data"], json!({"x": r#"{"a":222}"#}));

    // Scenario 55: UNREGISTERED is remembered as a dead token.
    assert!(gateway.is_dead(Service::Fcm, "fcm-v3-s12").await);
    assert!(!gateway.is_dead(Service::Fcm, "fcm-v3-s11").await);
    gateway.stop().await;
}

async fn fcm_answers_in_v2_scenario_20(backend: Backend) {
    let gateway = Setup::new(backend, "answers-fcm-v2").start().await;
    replay(&gateway, Service::Fcm, "v2", &FCM_CASES, v2).await;
    gateway.stop().await;
}

/// B03: a 404 is a dead token only with `UNREGISTERED` in `error.details`; FCM's bare
/// NOT_FOUND (a wrong project, say) must not make MongooseIM drop the device.
async fn fcm_not_found_is_unregistered_only_with_the_detail_b03(backend: Backend) {
    let gateway = Setup::new(backend, "answers-b03").start().await;
    let control = gateway.fcm.control();
    control.set_error_tokens([
        ErrorToken::new("fcm-stale-token-0002", 404, "UNREGISTERED").with_details(true),
        ErrorToken::new("fcm-wrong-project", 404, "NOT_FOUND")
            .with_details(false)
            .times(1),
    ]);
    let body = json!({"service": "fcm", "alert": {"title": "alice@example.com", "body": "ping"}});

    let reply = gateway.push_v3("fcm-stale-token-0002", &body).await;
    assert_eq!(
        (reply.status, reply.body),
        (410, json!({"reason": "unregistered"}))
    );
    only_send_to(control, "fcm-stale-token-0002");
    assert!(gateway.is_dead(Service::Fcm, "fcm-stale-token-0002").await);

    let reply = gateway.push_v3("fcm-wrong-project", &body).await;
    assert_eq!(
        (reply.status, reply.body),
        (503, json!({"reason": "internal_config"}))
    );
    assert!(!gateway.is_dead(Service::Fcm, "fcm-wrong-project").await);
    let letter = gateway.dead_letter_for("fcm-wrong-project").await;
    assert_eq!(
        letter.expect("dead-lettered").letter.reason,
        "configuration"
    );

    // The token was not remembered: the next push reaches FCM again.
    gateway
        .push_v3("fcm-wrong-project", &body)
        .await
        .assert_ok("after NOT_FOUND");
    assert_eq!(sends_to(control, "fcm-wrong-project").len(), 2);
    gateway.stop().await;
}

/// B22: throttling answers 429 with the provider's `Retry-After`, and the job waits at
/// least that long before its retry (the retry delays are otherwise 100 ms at most).
async fn throttling_passes_retry_after_on_and_waits_b22(backend: Backend) {
    let gateway = Setup::new(backend, "answers-b22").start().await;
    gateway
        .fcm
        .set_error_tokens([ErrorToken::new(FCM_TOKEN, 429, "QUOTA_EXCEEDED")
            .with_retry_after_secs(30)
            .times(1)]);
    gateway
        .apns
        .set_error_tokens([ErrorToken::new(TOK64, 429, "TooManyRequests")
            .with_retry_after_secs(30)
            .times(1)]);
    let alert = |service: &str| json!({"service": service, "alert": {"title": "t", "body": "b"}});

    for (service, token) in [("fcm", FCM_TOKEN), ("apns", TOK64)] {
        let reply = gateway.push_v3(token, &alert(service)).await;
        assert_eq!(
            (reply.status, &reply.body, reply.retry_after.as_deref()),
            (429, &json!({"reason": "too_many_requests"}), Some("30")),
            "{service}"
        );
        let v2 = gateway
            .push("v2", &format!("{token}-v2"), &alert(service))
            .await;
        v2.assert_ok("an unthrottled token");
    }

    // Many retry polls later, neither job was sent again inside the 30 s window.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(sends_to(gateway.fcm.control(), FCM_TOKEN).len(), 1);
    assert_eq!(sends_to(gateway.apns.control(), TOK64).len(), 1);
    assert!(gateway.dead_letters().await.is_empty());
    gateway.stop().await;
}

/// Scenario 59 (and 56): a push no app can carry is answered 400 `no_matching_pool`
/// without any provider call, and dead-lettered for the operator.
async fn unmatched_pushes_are_no_matching_pool_scenario_59(backend: Backend) {
    let gateway = Setup::new(backend, "answers-s59").start().await;
    let mut tagged = sample("apns");
    tagged["tags"] = json!(["no-such-tag"]);
    let reply = gateway.push_v3("apns-s59", &tagged).await;
    assert_eq!(
        (reply.status, reply.body),
        (400, json!({"reason": "no_matching_pool"}))
    );
    let reply = gateway.push("v2", "apns-s59-v2", &tagged).await;
    assert_eq!(
        (reply.status, reply.body),
        (500, json!({"details": "no_matching_pool"}))
    );

    assert_eq!(gateway.upstream_requests(), 0);
    let letter = gateway
        .dead_letter_for("apns-s59")
        .await
        .expect("dead-lettered");
    assert_eq!(letter.letter.reason, "configuration");
    assert_eq!(letter.letter.attempts, 0, "no attempt was made");
    gateway.stop().await;
}

/// An unreachable provider (scenario 68 with the listener gone): v3 503
/// `unable_to_connect`, v2 503 "Please try again later"; the job is retried until the
/// attempt limit and dead-lettered with what happened.
async fn an_unreachable_provider_is_unable_to_connect(backend: Backend) {
    let closed = closed_port_url().await;
    let gateway = Setup::new(backend, "answers-unreachable")
        .dispatcher(move |config| app_mut(config, "fcm").endpoint = Some(closed))
        .start()
        .await;
    let reply = gateway.push_v3("fcm-unreachable", &sample("fcm")).await;
    assert_eq!(
        (reply.status, reply.body),
        (503, json!({"reason": "unable_to_connect"}))
    );
    let reply = gateway
        .push("v2", "fcm-unreachable-v2", &sample("fcm"))
        .await;
    assert_eq!(
        (reply.status, reply.body),
        (503, json!({"details": "Please try again later"}))
    );

    let letters = gateway.wait_for_dead_letters(2).await;
    for stored in letters {
        let letter = stored.letter;
        assert_eq!(letter.reason, "max_attempts");
        assert_eq!(letter.attempts, gateway.config.retry.max_attempts);
        let answer = letter.last_answer.unwrap_or_default();
        assert!(answer.starts_with("no answer"), "{answer:?}");
    }
    gateway.stop().await;
}

on_both_backends!(
    an_unreachable_provider_is_unable_to_connect,
    apns_answers_in_v3_scenarios_1_to_10,
    apns_answers_in_v2_scenario_19,
    fcm_answers_in_v3_scenarios_11_to_18,
    fcm_answers_in_v2_scenario_20,
    fcm_not_found_is_unregistered_only_with_the_detail_b03,
    throttling_passes_retry_after_on_and_waits_b22,
    unmatched_pushes_are_no_matching_pool_scenario_59,
);

//! Delivery guarantees end to end: retries through an outage, dead tokens answered 410
//! without a provider call, answers that do not wait on a slow provider, provider tokens
//! reused and renewed (B17, B18), duplicates delivered once, expired jobs dropped, and
//! poison entries and exhausted jobs dead-lettered with their reason.

mod support;

use std::time::Duration;

use futures::future::join_all;
use pushgate_shared::job::now_ms;
use pushgate_shared::{ApiVersion, Job, Service};
use pushgate_testkit::{ErrorToken, Outage};
use serde_json::{Value, json};
use support::*;

fn alert(service: &str) -> Value {
    json!({"service": service, "alert": {"title": "t", "body": "b"}})
}

/// A job as ingest would queue it, for tests that append behind ingest's back.
fn job(service: Service, device_token: &str) -> Job {
    Job::new(alert_notification(service, device_token), ApiVersion::V3)
}

/// The tokens of `count` devices of `service`.
fn devices(service: &str, count: usize) -> Vec<String> {
    (0..count)
        .map(|i| format!("{service}-device-{i:02}"))
        .collect()
}

/// Scenarios 68 and 69 and the outage guarantee: while both providers answer 503 the
/// caller hears 503 and every job keeps being retried; once they recover every job is
/// delivered exactly once and none ends in the dead letters.
async fn every_job_survives_an_outage(backend: Backend) {
    let gateway = Setup::new(backend, "delivery-outage")
        .dispatcher(|config| config.retry.max_attempts = 10_000)
        .start()
        .await;
    let outage = Outage::new(503);
    gateway.fcm.set_outage(Some(outage));
    gateway.apns.set_outage(Some(outage));
    let fcm_devices = devices("fcm", 8);
    let apns_devices = devices("apns", 8);

    let (fcm_alert, apns_alert) = (alert("fcm"), alert("apns"));
    let pushes = fcm_devices
        .iter()
        .map(|token| gateway.push_v3(token, &fcm_alert))
        .chain(
            apns_devices
                .iter()
                .map(|token| gateway.push_v3(token, &apns_alert)),
        );
    for reply in join_all(pushes).await {
        assert_eq!(
            (reply.status, reply.body),
            (503, json!({"reason": "service_internal"}))
        );
    }
    let retried = 3 * fcm_devices.len() as u64;
    for control in [gateway.fcm.control(), gateway.apns.control()] {
        assert!(
            control.wait_for_requests(retried, WAIT_LIMIT).await,
            "every job was retried during the outage"
        );
    }

    gateway.fcm.set_outage(None);
    gateway.apns.set_outage(None);
    for (control, tokens) in [
        (gateway.fcm.control(), &fcm_devices),
        (gateway.apns.control(), &apns_devices),
    ] {
        for token in tokens {
            wait_delivered(control, token).await;
            let delivered = sends_to(control, token)
                .iter()
                .filter(|send| send.status == 200)
                .count();
            assert_eq!(delivered, 1, "{token} delivered once");
        }
    }
    assert!(gateway.dead_letters().await.is_empty(), "no dead letters");

    // After the outage, answers are successes again.
    gateway
        .push_v3("fcm-after", &alert("fcm"))
        .await
        .assert_ok("scenario 69");
    gateway.stop().await;
}

/// Default mode (no sync-wait): a provider slowed to 3 s per request does not slow the
/// answers; a dead token is answered 200 the first time and, once the dispatcher has
/// heard the provider, 410 without another provider call.
async fn dead_tokens_without_sync_wait_and_a_slow_provider(backend: Backend) {
    let gateway = Setup::new(backend, "delivery-dead-default")
        .sync_wait(false)
        .start()
        .await;
    gateway.fcm.set_latency(Duration::from_secs(3));
    gateway.apns.set_latency(Duration::from_secs(3));
    gateway
        .fcm
        .set_error_tokens([ErrorToken::new("fcm-dead", 404, "UNREGISTERED")]);
    gateway
        .apns
        .set_error_tokens([ErrorToken::new("apns-dead", 410, "Unregistered")]);

    for (service, token) in [("fcm", "fcm-dead"), ("apns", "apns-dead")] {
        gateway
            .push_v3(token, &alert(service))
            .await
            .assert_ok(token);
        for other in devices(service, 3) {
            gateway
                .push_v3(&other, &alert(service))
                .await
                .assert_ok(&other);
        }
    }
    assert_eq!(
        gateway.upstream_requests(),
        0,
        "every answer came before any provider answered"
    );

    for (service, token) in [(Service::Fcm, "fcm-dead"), (Service::Apns, "apns-dead")] {
        let what = format!("{token} remembered as dead");
        eventually(&what, async || gateway.is_dead(service, token).await).await;
        let reply = gateway.push_v3(token, &alert(service.as_str())).await;
        assert_eq!(
            (reply.status, reply.body),
            (410, json!({"reason": "unregistered"})),
            "{token}"
        );
    }
    for control in [gateway.fcm.control(), gateway.apns.control()] {
        assert!(control.wait_for_requests(4, WAIT_LIMIT).await);
    }
    assert_eq!(sends_to(gateway.fcm.control(), "fcm-dead").len(), 1);
    assert_eq!(sends_to(gateway.apns.control(), "apns-dead").len(), 1);
    gateway.stop().await;
}

/// With sync-wait the first push to a dead token is already answered 410; the next one
/// is answered 410 without reaching the provider.
async fn dead_tokens_with_sync_wait(backend: Backend) {
    let gateway = Setup::new(backend, "delivery-dead-sync").start().await;
    gateway
        .fcm
        .set_error_tokens([ErrorToken::new("fcm-dead", 404, "UNREGISTERED")]);
    gateway
        .apns
        .set_error_tokens([ErrorToken::new("apns-dead", 410, "Unregistered")]);
    let gone = (410, json!({"reason": "unregistered"}));

    for (service, token) in [("fcm", "fcm-dead"), ("apns", "apns-dead")] {
        for round in ["first", "second"] {
            let reply = gateway.push_v3(token, &alert(service)).await;
            assert_eq!((reply.status, reply.body), gone, "{token}, {round} push");
        }
    }
    assert_eq!(sends_to(gateway.fcm.control(), "fcm-dead").len(), 1);
    assert_eq!(sends_to(gateway.apns.control(), "apns-dead").len(), 1);
    gateway.stop().await;
}

/// B17 and B18: one APNs provider token and one FCM access token serve many concurrent
/// sends; a revoked FCM token is renewed once and the sends still succeed; a forced
/// `ExpiredProviderToken` is renewed and the push sent once more, but that early
/// replacement is not replaced again when refused too.
async fn provider_tokens_are_shared_and_renewed_b17_b18(backend: Backend) {
    let gateway = Setup::new(backend, "delivery-tokens").start().await;
    let burst = |service: &'static str, round: &'static str| {
        let gateway = &gateway;
        join_all(
            devices(service, 20)
                .into_iter()
                .map(move |token| async move {
                    let token = format!("{token}-{round}");
                    gateway.push_v3(&token, &alert(service)).await
                }),
        )
    };

    for reply in burst("apns", "a")
        .await
        .into_iter()
        .chain(burst("fcm", "a").await)
    {
        reply.assert_ok("burst");
    }
    let authorizations: std::collections::BTreeSet<String> = gateway
        .apns
        .activity()
        .iter()
        .map(|send| send.request_headers["authorization"].clone())
        .collect();
    assert_eq!(authorizations.len(), 1, "one provider token for every send");
    assert_eq!(
        gateway.fcm.tokens_issued(),
        1,
        "one access token for every send"
    );

    gateway.fcm.revoke_tokens();
    for reply in burst("fcm", "b").await {
        reply.assert_ok("after the revocation");
    }
    assert_eq!(gateway.fcm.tokens_issued(), 2, "renewed once");

    gateway
        .apns
        .set_error_tokens([ErrorToken::new(TOK64, 403, "ExpiredProviderToken").times(1)]);
    gateway
        .push_v3(TOK64, &alert("apns"))
        .await
        .assert_ok("B17");
    let statuses: Vec<u16> = sends_to(gateway.apns.control(), TOK64)
        .iter()
        .map(|send| send.status)
        .collect();
    assert_eq!(statuses, [403, 200], "renewed and sent once more");

    // The token now in use is itself an early replacement: refused again, it is kept
    // (Apple's 20-minute floor, no TooManyProviderTokenUpdates) and the caller hears 503.
    let again = "apns-expired-again";
    let refusal = ErrorToken::new(again, 403, "ExpiredProviderToken").times(1);
    gateway.apns.set_error_tokens([refusal]);
    let reply = gateway.push_v3(again, &alert("apns")).await;
    assert_eq!(
        (reply.status, reply.body),
        (503, json!({"reason": "service_internal"}))
    );
    assert_eq!(sends_to(gateway.apns.control(), again).len(), 1);
    gateway.stop().await;
}

/// B18: when no access token can be had (the token endpoint is unreachable), the caller
/// hears 503 service_internal and the job waits for a retry instead of being lost.
async fn an_unreachable_token_endpoint_is_service_internal_b18(backend: Backend) {
    let closed = closed_port_url().await;
    let gateway = Setup::new(backend, "delivery-oauth-down")
        .dispatcher(move |config| {
            let fcm = app_mut(config, "fcm");
            if let dispatcher::Credentials::FcmServiceAccount { token_uri, .. } =
                &mut fcm.credentials
            {
                *token_uri = Some(format!("{closed}/token"));
            }
        })
        .start()
        .await;
    let reply = gateway.push_v3(FCM_TOKEN, &alert("fcm")).await;
    assert_eq!(
        (reply.status, reply.body),
        (503, json!({"reason": "service_internal"}))
    );
    assert_eq!(gateway.fcm.control().request_count(), 0, "nothing was sent");
    let letter = gateway.wait_for_dead_letters(1).await.remove(0).letter;
    assert_eq!(letter.reason, "max_attempts", "retried until the limit");
    gateway.stop().await;
}

/// A job appended twice with one id (an append retried after a lost answer) is one job.
async fn a_job_appended_twice_is_delivered_once(backend: Backend) {
    // One send at a time: the sentinel's delivery means every earlier entry was handled.
    let gateway = Setup::new(backend, "delivery-duplicate")
        .sync_wait(false)
        .dispatcher(|config| config.max_in_flight_per_app = 1)
        .start()
        .await;
    let job = job(Service::Fcm, "fcm-twice");
    assert!(gateway.queue.append(&job).await.unwrap(), "first append");
    assert!(
        !gateway.queue.append(&job).await.unwrap(),
        "second append adds nothing"
    );

    gateway
        .push_v3("fcm-sentinel", &alert("fcm"))
        .await
        .assert_ok("sentinel");
    wait_delivered(gateway.fcm.control(), "fcm-sentinel").await;
    assert_eq!(only_send_to(gateway.fcm.control(), "fcm-twice").status, 200);
    gateway.stop().await;
}

/// A job whose time to live passed before its attempt is dropped: not sent, not a dead
/// letter.
async fn an_expired_job_is_dropped(backend: Backend) {
    let gateway = Setup::new(backend, "delivery-expired")
        .sync_wait(false)
        .dispatcher(|config| config.max_in_flight_per_app = 1)
        .start()
        .await;
    let mut expired = job(Service::Apns, "apns-expired");
    expired.notification.time_to_live_secs = Some(1);
    expired.expires_at_ms = Some(now_ms() - 1000);
    gateway.queue.append(&expired).await.unwrap();

    gateway
        .push_v3("apns-sentinel", &alert("apns"))
        .await
        .assert_ok("sentinel");
    wait_delivered(gateway.apns.control(), "apns-sentinel").await;
    assert!(sends_to(gateway.apns.control(), "apns-expired").is_empty());
    assert!(gateway.dead_letters().await.is_empty());
    gateway.stop().await;
}

/// An entry handed out more than `max_deliveries` times (it kept stalling the consumers
/// that took it) is dead-lettered as poison without a provider call.
async fn a_poison_entry_is_dead_lettered(backend: Backend) {
    let mut gateway = Setup::new(backend, "delivery-poison")
        .sync_wait(false)
        .defer_dispatcher()
        .dispatcher(|config| {
            config.retry.max_deliveries = 2;
            config.claim_idle_ms = 50;
        })
        .start()
        .await;
    let poison = job(Service::Fcm, "fcm-poison");
    gateway.queue.ensure_group().await.unwrap();
    gateway.queue.append(&poison).await.unwrap();

    // Two consumers take the entry in turn and vanish without settling it.
    let taken = gateway
        .queue
        .read("vanished-1", 10, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(taken.len(), 1);
    let taken = gateway
        .queue
        .claim_idle("vanished-2", Duration::ZERO, 10)
        .await
        .unwrap();
    assert_eq!(taken[0].times_delivered, 2);

    gateway.start_dispatcher();
    let letters = gateway.wait_for_dead_letters(1).await;
    let letter = &letters[0].letter;
    assert_eq!(letter.reason, "poison");
    assert_eq!(letter.job.id, poison.id);
    assert_eq!(letter.last_answer, None);
    assert_eq!(gateway.upstream_requests(), 0);
    gateway.stop().await;
}

/// A job that keeps failing is dead-lettered after `max_attempts` attempts, with the
/// reason and the provider's last answer.
async fn max_attempts_end_in_the_dead_letters(backend: Backend) {
    let gateway = Setup::new(backend, "delivery-max-attempts")
        .sync_wait(false)
        .dispatcher(|config| config.retry.max_attempts = 3)
        .start()
        .await;
    gateway
        .apns
        .set_error_tokens([ErrorToken::new("apns-down", 503, "ServiceUnavailable")]);
    gateway
        .fcm
        .set_error_tokens([ErrorToken::new("fcm-down", 500, "INTERNAL")]);
    gateway
        .push_v3("apns-down", &alert("apns"))
        .await
        .assert_ok("apns");
    gateway
        .push_v3("fcm-down", &alert("fcm"))
        .await
        .assert_ok("fcm");

    gateway.wait_for_dead_letters(2).await;
    for (token, status, reason) in [
        ("apns-down", "503", "ServiceUnavailable"),
        ("fcm-down", "500", "INTERNAL"),
    ] {
        let letter = gateway.dead_letter_for(token).await.unwrap().letter;
        assert_eq!(letter.reason, "max_attempts", "{token}");
        assert_eq!(letter.attempts, 3, "{token}");
        let answer = letter.last_answer.unwrap_or_default();
        assert!(
            answer.starts_with(status) && answer.contains(reason),
            "{token}: {answer:?}"
        );
    }
    assert_eq!(sends_to(gateway.apns.control(), "apns-down").len(), 3);
    assert_eq!(sends_to(gateway.fcm.control(), "fcm-down").len(), 3);
    gateway.stop().await;
}

on_both_backends!(
    every_job_survives_an_outage,
    an_unreachable_token_endpoint_is_service_internal_b18,
    dead_tokens_without_sync_wait_and_a_slow_provider,
    dead_tokens_with_sync_wait,
    provider_tokens_are_shared_and_renewed_b17_b18,
    a_job_appended_twice_is_delivered_once,
    an_expired_job_is_dropped,
    a_poison_entry_is_dead_lettered,
    max_attempts_end_in_the_dead_letters,
);

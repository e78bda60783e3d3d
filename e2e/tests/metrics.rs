//! `GET /metrics` after pushes with mixed outcomes: the counters and MongoosePush's
//! histogram count exactly what was sent. One test in its own binary, because the
//! Prometheus recorder is global to the process.

mod support;

use pushgate_testkit::ErrorToken;
use serde_json::json;
use support::*;

/// The value of the sample `name{labels}` whose labels include every pair of `labels`
/// (Prometheus text format); `None` when no sample matches.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (series_name, series_labels) = match series.split_once('{') {
                Some((series_name, rest)) => (series_name, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let all_present = labels
                .iter()
                .all(|(key, wanted)| series_labels.contains(&format!("{key}=\"{wanted}\"")));
            (series_name == name && all_present).then(|| value.parse().ok())?
        })
        .next()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_and_the_mongoosepush_histogram_match_what_was_sent() {
    guarded(async {
        let gateway = Setup::new(Backend::Redis, "metrics").start().await;
        gateway
            .apns
            .set_error_tokens([ErrorToken::new("apns-dead", 410, "Unregistered")]);
        let alert =
            |service: &str| json!({"service": service, "alert": {"title": "t", "body": "b"}});

        for token in ["fcm-1", "fcm-2"] {
            gateway.push_v3(token, &alert("fcm")).await.assert_ok(token);
        }
        gateway
            .push_v3(TOK64, &alert("apns"))
            .await
            .assert_ok("apns");
        // Sync-wait is on in this setup: these answers carry the first attempt.
        assert_eq!(
            gateway.push_v3("apns-dead", &alert("apns")).await.status,
            410
        );
        let mut untagged = alert("apns");
        untagged["tags"] = json!(["no-such-tag"]);
        assert_eq!(gateway.push_v3("apns-x", &untagged).await.status, 400);
        assert_eq!(gateway.push_v3("bad", &json!({})).await.status, 422);

        let scrape = reqwest::get(format!("http://{}/metrics", gateway.address()))
            .await
            .expect("ingest answers");
        assert_eq!(scrape.status(), 200);
        assert!(
            scrape.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/plain"),
        );
        let text = scrape.text().await.unwrap();
        let value = |name: &str, labels: &[(&str, &str)]| {
            sample(&text, name, labels).unwrap_or_else(|| panic!("{name} {labels:?} in:\n{text}"))
        };

        let accepted = "pushgate_jobs_accepted_total";
        assert_eq!(value(accepted, &[("service", "fcm"), ("api", "v3")]), 2.0);
        assert_eq!(value(accepted, &[("service", "apns"), ("api", "v3")]), 3.0);

        let sends = "mongoose_push_notification_send_time_microsecond_count";
        let ok = [
            ("error_category", ""),
            ("error_reason", ""),
            ("status", "success"),
        ];
        assert_eq!(
            value(sends, &[&ok[..], &[("service", "fcm")]].concat()),
            2.0
        );
        assert_eq!(
            value(sends, &[&ok[..], &[("service", "apns")]].concat()),
            1.0
        );
        let dead = [
            ("error_category", "unregistered"),
            ("error_reason", "Unregistered"),
            ("service", "apns"),
            ("status", "error"),
        ];
        assert_eq!(value(sends, &dead), 1.0);
        let unmatched = [("error_reason", "no_matching_pool"), ("service", "apns")];
        assert_eq!(value(sends, &unmatched), 1.0);
        // MongoosePush's buckets, so its dashboards' quantiles still work.
        let bucket = "mongoose_push_notification_send_time_microsecond_bucket";
        for le in ["1000", "250000", "1000000", "+Inf"] {
            let labels = [&ok[..], &[("service", "fcm"), ("le", le)]].concat();
            assert!(value(bucket, &labels) <= 2.0, "bucket {le}");
        }
        assert_eq!(
            value(
                bucket,
                &[&ok[..], &[("service", "fcm"), ("le", "+Inf")]].concat()
            ),
            2.0
        );

        assert_eq!(
            value("pushgate_dead_tokens_total", &[("service", "apns")]),
            1.0
        );
        let finished = "pushgate_jobs_finished_total";
        assert_eq!(
            value(finished, &[("service", "fcm"), ("outcome", "delivered")]),
            2.0
        );
        assert_eq!(
            value(finished, &[("service", "apns"), ("outcome", "dead_token")]),
            1.0
        );

        let answers = "pushgate_http_responses_total";
        let route = ("route", "/v3/notification/{device_id}");
        assert_eq!(value(answers, &[route, ("status", "200")]), 3.0);
        assert_eq!(value(answers, &[route, ("status", "410")]), 1.0);
        assert_eq!(value(answers, &[route, ("status", "400")]), 1.0);
        assert_eq!(value(answers, &[route, ("status", "422")]), 1.0);
        // Read from the queue at scrape time: everything settled, the unmatched push
        // dead-lettered.
        assert_eq!(value("pushgate_queue_waiting", &[]), 0.0);
        assert_eq!(value("pushgate_queue_in_progress", &[]), 0.0);
        assert_eq!(value("pushgate_queue_oldest_waiting_seconds", &[]), 0.0);
        assert_eq!(value("pushgate_queue_dead_letters", &[]), 1.0);
        assert!(
            !text.contains("fcm-1") && !text.contains(TOK64),
            "no device token is a label"
        );
        gateway.stop().await;
    })
    .await;
}

//! The process's Prometheus recorder, installed once, and the text `GET /metrics` serves.
//!
//! Metrics are recorded with the `metrics` macros wherever the event happens (ingest's
//! answers, the dispatcher's outcomes); this module only decides how they are exposed.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// MongoosePush's histogram, kept under its name so existing dashboards keep working.
pub const SEND_TIME_HISTOGRAM: &str = "mongoose_push_notification_send_time_microsecond";

/// MongoosePush's buckets for [`SEND_TIME_HISTOGRAM`], in microseconds.
const SEND_TIME_BUCKETS: &[f64] = &[
    1_000.0,
    10_000.0,
    25_000.0,
    50_000.0,
    100_000.0,
    250_000.0,
    500_000.0,
    1_000_000.0,
];

/// Buckets for pushgate's own latency histograms, in seconds.
const SECONDS_BUCKETS: &[f64] = &[
    0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// How often histogram samples are folded into their buckets between scrapes.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the Prometheus recorder as the process's global `metrics` recorder, once;
/// later calls return the same handle. `None` when another recorder was installed first
/// (an embedding program's own), in which case pushgate's metrics go there.
pub fn install() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full(SEND_TIME_HISTOGRAM.to_owned()),
                    SEND_TIME_BUCKETS,
                )
                .and_then(|builder| {
                    builder.set_buckets_for_metric(
                        Matcher::Suffix("_seconds".to_owned()),
                        SECONDS_BUCKETS,
                    )
                })
                .expect("the bucket lists are not empty")
                .build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                let upkept = handle.clone();
                runtime.spawn(async move {
                    let mut ticks = tokio::time::interval(UPKEEP_INTERVAL);
                    loop {
                        ticks.tick().await;
                        upkept.run_upkeep();
                    }
                });
            }
            Some(handle)
        })
        .as_ref()
}

/// The Prometheus text of every metric recorded so far (empty when another recorder is
/// installed). A metric appears once its first event happened, as in MongoosePush.
pub fn render() -> String {
    install().map(PrometheusHandle::render).unwrap_or_default()
}

/// The content type of [`render`]'s text.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Sets the queue gauges from `queue`'s backlog, read now (at scrape time). A backlog
/// that cannot be read leaves the gauges as they were; the health check reports the queue.
pub async fn record_backlog(queue: &dyn crate::queue::Queue) {
    let Ok(backlog) = queue.backlog().await else {
        return;
    };
    let age_secs = backlog.oldest_waiting_at_ms.map_or(0.0, |at| {
        crate::job::now_ms().saturating_sub(at) as f64 / 1000.0
    });
    metrics::gauge!("pushgate_queue_waiting").set(backlog.waiting as f64);
    metrics::gauge!("pushgate_queue_oldest_waiting_seconds").set(age_secs);
    metrics::gauge!("pushgate_queue_in_progress").set(backlog.in_progress as f64);
    metrics::gauge!("pushgate_queue_retrying").set(backlog.retrying as f64);
    metrics::gauge!("pushgate_queue_dead_letters").set(backlog.dead_letters as f64);
}

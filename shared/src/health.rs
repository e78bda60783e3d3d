//! Health answers in MongoosePush's `GET /healthcheck` shape, shared by ingest and the
//! dispatcher: named checks (the queue, one per app), each pass or fail with an output.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use crate::queue::Queue;

/// One check of a health answer: `queue`, or `pool:<app name>` as MongoosePush names pools.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    pub name: String,
    pub passed: bool,
    pub output: Value,
}

/// Something that can report checks of its own (the dispatcher's apps), for a health
/// answer served by another part (ingest, in one process).
pub trait HealthSource: Send + Sync + 'static {
    fn checks(&self) -> Vec<Check>;
}

/// How long the queue may take to answer a ping before it counts as unreachable.
const PING_TIMEOUT: Duration = Duration::from_secs(1);

/// Pings `queue`; the check fails when it errs or does not answer within a second.
pub async fn queue_check(queue: &Arc<dyn Queue>) -> Check {
    let ping = tokio::time::timeout(PING_TIMEOUT, queue.ping()).await;
    let (passed, output) = match ping {
        Ok(Ok(())) => (true, json!({ "backend": queue.kind() })),
        Ok(Err(error)) => (
            false,
            json!({ "backend": queue.kind(), "error": error.to_string() }),
        ),
        Err(_) => (
            false,
            json!({ "backend": queue.kind(), "error": "no answer within 1 s" }),
        ),
    };
    Check {
        name: "queue".to_owned(),
        passed,
        output,
    }
}

/// The status code and body of a health answer. The body has MongoosePush's keys
/// (`status`: `pass`, `fail` when every check fails, `warn` otherwise; `version`;
/// `description`; `checks`). The status is 503 when nothing can be delivered: the queue
/// check failed, or every app check failed; 200 otherwise.
pub fn answer(description: &str, checks: &[Check]) -> (u16, Value) {
    let time = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
    let all = |passed| checks.iter().all(|check| check.passed == passed);
    let status = if all(true) {
        "pass"
    } else if all(false) {
        "fail"
    } else {
        "warn"
    };
    let queue_failed = checks
        .iter()
        .any(|check| check.name == "queue" && !check.passed);
    let apps: Vec<&Check> = checks
        .iter()
        .filter(|c| c.name.starts_with("pool:"))
        .collect();
    let no_app_can_deliver = !apps.is_empty() && apps.iter().all(|check| !check.passed);
    let code = if queue_failed || no_app_can_deliver {
        503
    } else {
        200
    };
    let checks: serde_json::Map<String, Value> = checks
        .iter()
        .map(|check| {
            let entry = json!([{
                "status": if check.passed { "pass" } else { "fail" },
                "time": time,
                "output": check.output,
            }]);
            (check.name.clone(), entry)
        })
        .collect();
    let body = json!({
        "status": status,
        "version": env!("CARGO_PKG_VERSION"),
        "description": description,
        "checks": checks,
    });
    (code, body)
}

/// The liveness answer for container platforms: the process serves requests. It checks
/// nothing else, so a Redis outage does not get healthy processes restarted.
pub fn liveness() -> Value {
    json!({ "status": "pass", "version": env!("CARGO_PKG_VERSION") })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(name: &str, passed: bool) -> Check {
        Check {
            name: name.to_owned(),
            passed,
            output: json!({}),
        }
    }

    #[test]
    fn status_and_code_follow_the_checks() {
        let cases = [
            (vec![check("queue", true)], "pass", 200),
            (vec![check("queue", false)], "fail", 503),
            (
                vec![check("queue", true), check("pool:a", true)],
                "pass",
                200,
            ),
            (
                vec![
                    check("queue", true),
                    check("pool:a", false),
                    check("pool:b", true),
                ],
                "warn",
                200,
            ),
            (
                vec![check("queue", true), check("pool:a", false)],
                "warn",
                503,
            ),
            (
                vec![check("queue", false), check("pool:a", true)],
                "warn",
                503,
            ),
        ];
        for (checks, status, code) in cases {
            let (answered, body) = answer("d", &checks);
            assert_eq!(
                (answered, body["status"].as_str().unwrap()),
                (code, status),
                "{checks:?}"
            );
            for check in &checks {
                let entry = &body["checks"][&check.name][0];
                assert_eq!(entry["status"], if check.passed { "pass" } else { "fail" });
                assert!(entry["time"].as_str().unwrap().ends_with('Z'));
            }
        }
    }
}

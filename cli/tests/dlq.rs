//! `pushgate dlq` against a real Redis: list shows dead letters with masked tokens, replay
//! queues them again as new jobs, purge removes them.

use std::process::{Command, Output};
use std::time::Duration;

use pushgate_shared::job::now_ms;
use pushgate_shared::queue::{DeadLetter, Queue, QueueOptions, RedisQueue};
use pushgate_shared::{ApiVersion, Job, Notification, Service};
use pushgate_testkit::redis_server::{redis_url, unique_prefix};

fn dlq(config: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pushgate"))
        .arg("dlq")
        .args(args)
        .arg("--config")
        .arg(config)
        .env_remove("PUSHGATE_REDIS_URL")
        .env_remove("REDIS_URL")
        .output()
        .expect("pushgate runs")
}

fn letter(token: &str) -> DeadLetter {
    let notification = Notification::alert(Service::Apns, token, "t", "b");
    let mut job = Job::new(notification, ApiVersion::V3);
    job.attempt = 10;
    DeadLetter {
        job,
        reason: "max_attempts".to_owned(),
        attempts: 10,
        last_answer: Some("503 {\"reason\":\"ServiceUnavailable\"}".to_owned()),
        failed_at_ms: now_ms(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_replay_and_purge_dead_letters() {
    let url = redis_url();
    let prefix = unique_prefix("cli-dlq");
    let options = QueueOptions {
        prefix: prefix.clone(),
        ..QueueOptions::default()
    };
    let queue = RedisQueue::connect(&url, options).await.unwrap();
    queue.ensure_group().await.unwrap();
    for token in [
        "device-token-000001",
        "device-token-000002",
        "device-token-000003",
    ] {
        queue.dead_letter(None, &letter(token)).await.unwrap();
    }
    let dir = std::env::temp_dir().join(format!("pushgate-dlq-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("pushgate.toml");
    std::fs::write(
        &config,
        format!("[queue]\nredis_url = \"{url}\"\nprefix = \"{prefix}\"\n"),
    )
    .unwrap();

    let listed = tokio::task::spawn_blocking({
        let config = config.clone();
        move || dlq(&config, &["list"])
    })
    .await
    .unwrap();
    assert!(listed.status.success());
    let stdout = String::from_utf8(listed.stdout).unwrap();
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert_eq!(lines[0]["reason"], "max_attempts");
    assert_eq!(lines[0]["attempts"], 10);
    assert_eq!(lines[0]["device_token"], "…000001");
    assert!(!stdout.contains("device-token-000001"), "tokens are masked");
    let first_id = lines[0]["id"].as_str().unwrap().to_owned();

    let replayed = tokio::task::spawn_blocking({
        let config = config.clone();
        let first_id = first_id.clone();
        move || dlq(&config, &["replay", "--id", &first_id])
    })
    .await
    .unwrap();
    assert!(
        replayed.status.success(),
        "{}",
        String::from_utf8_lossy(&replayed.stderr)
    );
    let jobs = queue
        .read("checker", 10, Duration::from_millis(100))
        .await
        .unwrap();
    assert_eq!(jobs.len(), 1, "the replayed letter is queued again");
    assert_eq!(
        jobs[0].job.notification.target.device_token,
        "device-token-000001"
    );
    assert_eq!(
        jobs[0].job.attempt, 0,
        "a replay starts its attempts afresh"
    );
    assert_eq!(queue.dead_letters(10).await.unwrap().len(), 2);

    let purged = tokio::task::spawn_blocking({
        let config = config.clone();
        move || dlq(&config, &["purge", "--all"])
    })
    .await
    .unwrap();
    assert!(purged.status.success());
    assert!(String::from_utf8_lossy(&purged.stdout).contains("purged 2"));
    assert!(queue.dead_letters(10).await.unwrap().is_empty());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn dlq_without_redis_explains_why() {
    let dir = std::env::temp_dir().join(format!("pushgate-dlq-none-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("memory.toml");
    std::fs::write(&config, "").unwrap();
    let output = dlq(&config, &["list"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("redis_url"));
    std::fs::remove_dir_all(dir).unwrap();
}

//! `pushgate send` against the mock providers: the provider's answer is printed for a good
//! token and for a dead one, and the exit code tells them apart.

use std::process::{Command, Output};

use pushgate_testkit::{
    ApnsCredentials, ErrorToken, MockApns, MockApnsOptions, MockFcm, MockFcmOptions,
};

fn send(config: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pushgate"))
        .arg("send")
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("PUSHGATE_REDIS_URL")
        .env_remove("REDIS_URL")
        .output()
        .expect("pushgate runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_prints_the_providers_answer_for_good_and_dead_tokens() {
    let credentials = ApnsCredentials::generate().unwrap();
    let apns = MockApns::start(MockApnsOptions {
        auth: credentials.token_auth(),
        ..MockApnsOptions::default()
    })
    .await
    .unwrap();
    let fcm = MockFcm::start(MockFcmOptions::default()).await.unwrap();
    let account = fcm.service_account().unwrap();
    let files = credentials.write_files().unwrap();
    apns.set_error_tokens([ErrorToken::new("dead-apns", 410, "Unregistered")]);
    fcm.set_error_tokens([ErrorToken::new("dead-fcm", 404, "UNREGISTERED")]);

    let config = files.dir().join("pushgate.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[[dispatcher.apps]]
name = "apns-check"
service = "apns"
mode = "prod"
endpoint = "{apns_url}"
default_topic = "com.example.chat"
credentials = {{ type = "apns_token", key_path = "{p8}", key_id = "{key_id}", team_id = "{team_id}" }}

[[dispatcher.apps]]
name = "fcm-check"
service = "fcm"
endpoint = "{fcm_url}"
credentials = {{ type = "fcm_service_account", path = "{account}" }}
"#,
            apns_url = apns.h2c_url(),
            p8 = files.p8_path.display(),
            key_id = credentials.key_id,
            team_id = credentials.team_id,
            fcm_url = fcm.url(),
            account = account.path().display(),
        ),
    )
    .unwrap();

    let cases = [
        ("apns", "good-apns", true, "delivered", None),
        ("apns", "dead-apns", false, "dead_token", Some("410")),
        ("fcm", "good-fcm", true, "delivered", None),
        ("fcm", "dead-fcm", false, "dead_token", Some("404")),
    ];
    for (service, token, succeeds, outcome, status) in cases {
        let output = tokio::task::spawn_blocking({
            let config = config.clone();
            move || send(&config, &["--service", service, "--token", token])
        })
        .await
        .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert_eq!(output.status.success(), succeeds, "{token}: {stdout}");
        assert!(
            stdout.contains(&format!("outcome:  {outcome}")),
            "{token}: {stdout}"
        );
        if let Some(status) = status {
            assert!(
                stdout.contains(&format!("answer:   {status}")),
                "{token}: {stdout}"
            );
        }
    }
    assert_eq!(apns.activity().len(), 2, "both APNs sends reached the mock");
    assert_eq!(fcm.activity().len(), 2, "both FCM sends reached the mock");
}

#[test]
fn send_without_a_matching_app_says_so() {
    let dir = std::env::temp_dir().join(format!("pushgate-send-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("empty.toml");
    std::fs::write(&config, "").unwrap();
    let output = send(&config, &["--service", "apns", "--token", "x"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success());
    assert!(stdout.contains("(none matches)"), "{stdout}");
    assert!(stdout.contains("no_matching_pool"), "{stdout}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_bad_configuration_is_named() {
    let dir = std::env::temp_dir().join(format!("pushgate-badconf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("bad.toml");
    std::fs::write(&config, "[queue]\nredis_ulr = \"redis://x\"\n").unwrap();
    let output = send(&config, &["--service", "apns", "--token", "x"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr.contains("redis_ulr"), "{stderr}");
    assert!(stderr.contains("bad.toml"), "{stderr}");
    std::fs::remove_dir_all(dir).unwrap();
}

//! App selection (MongoosePush scenarios 58 and 59, adapted so FCM apps match any mode),
//! building apps from configuration, and every configuration error.

mod support;

use dispatcher::outcome::Outcome;
use dispatcher::{AppConfig, AppError, Apps, Credentials};
use pushgate_shared::api::PushError;
use pushgate_shared::{Mode, Service, Target};
use pushgate_testkit::credentials::TempDir;
use pushgate_testkit::{ApnsCredentials, ServiceAccountFile};
use support::{apns_certificate, apns_token, app, fcm_account};

const UNUSED_ENDPOINT: &str = "http://127.0.0.1:9";

fn tagged(mut config: AppConfig, tags: &[&str]) -> AppConfig {
    config.tags = tags.iter().map(|t| (*t).to_owned()).collect();
    config
}

fn target(service: Service, mode: Mode, tags: &[&str]) -> Target {
    Target {
        service,
        mode,
        device_token: "t".to_owned(),
        tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        topic: None,
    }
}

struct Fixture {
    apns: ApnsCredentials,
    apns_files: pushgate_testkit::credentials::ApnsCredentialFiles,
    account: ServiceAccountFile,
}

impl Fixture {
    fn new() -> Self {
        let apns = ApnsCredentials::generate().unwrap();
        let apns_files = apns.write_files().unwrap();
        let account =
            ServiceAccountFile::write("demo-project", "http://127.0.0.1:9/token").unwrap();
        Fixture {
            apns,
            apns_files,
            account,
        }
    }

    fn apns(&self, name: &str, mode: Mode, tags: &[&str]) -> AppConfig {
        let credentials = apns_token(&self.apns, &self.apns_files);
        tagged(
            app(name, Service::Apns, mode, UNUSED_ENDPOINT, credentials),
            tags,
        )
    }

    fn fcm(&self, name: &str, mode: Mode, tags: &[&str]) -> AppConfig {
        let credentials = fcm_account(&self.account);
        tagged(
            app(name, Service::Fcm, mode, UNUSED_ENDPOINT, credentials),
            tags,
        )
    }
}

fn selected(apps: &Apps, target: &Target) -> Option<String> {
    apps.select(target).map(|app| app.name().to_owned())
}

#[test]
fn apns_apps_are_chosen_by_mode_and_tags_first_match_wins() {
    let f = Fixture::new();
    let apps = Apps::build(&[
        f.apns("dev1", Mode::Dev, &["tag1", "tag2"]),
        f.apns("dev2", Mode::Dev, &["tag2", "tag3"]),
    ])
    .unwrap();
    #[rustfmt::skip]
    let cases: &[(&[&str], Option<&str>)] = &[
        (&["tag1"], Some("dev1")),
        (&["tag3"], Some("dev2")),
        (&["tag2"], Some("dev1")),
        (&[], Some("dev1")),
        (&["tag2", "tag3"], Some("dev2")),
        (&["tag1", "tag2", "tag3"], None),
        (&["TAG1"], None),
    ];
    for (tags, expected) in cases {
        let got = selected(&apps, &target(Service::Apns, Mode::Dev, tags));
        assert_eq!(got.as_deref(), *expected, "dev with tags {tags:?}");
    }
    assert_eq!(
        selected(&apps, &target(Service::Apns, Mode::Prod, &[])),
        None,
        "prod (B21)"
    );
    assert_eq!(
        selected(&apps, &target(Service::Fcm, Mode::Dev, &[])),
        None,
        "wrong service"
    );
}

#[test]
fn fcm_apps_are_chosen_by_tags_whatever_the_mode() {
    let f = Fixture::new();
    let apps = Apps::build(&[
        f.fcm("pool1", Mode::Prod, &["tag1", "tag2", "tag3"]),
        f.fcm("pool2", Mode::Dev, &["tag2", "tag3", "tag4"]),
    ])
    .unwrap();
    #[rustfmt::skip]
    let cases: &[(Mode, &[&str], Option<&str>)] = &[
        (Mode::Prod, &[], Some("pool1")),
        (Mode::Dev, &[], Some("pool1")),
        (Mode::Prod, &["tag2", "tag3", "tag4"], Some("pool2")),
        (Mode::Dev, &["tag4"], Some("pool2")),
        (Mode::Prod, &["tag1", "tag4"], None),
        (Mode::Prod, &["tag5"], None),
    ];
    for (mode, tags, expected) in cases {
        let got = selected(&apps, &target(Service::Fcm, *mode, tags));
        assert_eq!(got.as_deref(), *expected, "{mode:?} with tags {tags:?}");
    }
}

#[tokio::test]
async fn no_matching_app_answers_no_matching_pool() {
    let f = Fixture::new();
    let apps = Apps::build(&[f.apns("dev", Mode::Dev, &[])]).unwrap();
    let mut notification = support::alert(Service::Apns, support::TOK64);
    notification.target.mode = Mode::Prod;

    let attempt = apps.send(&notification, support::ACCEPTED_AT_MS).await;

    assert_eq!(attempt.class, Outcome::Configuration);
    assert_eq!(attempt.error, Some(PushError::generic("no_matching_pool")));
    assert!(
        Apps::build(&[])
            .unwrap()
            .select(&notification.target)
            .is_none()
    );
}

#[test]
fn apps_keep_their_configuration() {
    let f = Fixture::new();
    let mut config = f.apns("apns_prod", Mode::Prod, &["ios"]);
    config.connections = 3;
    let apps = Apps::build(&[config, f.fcm("fcm", Mode::Prod, &[])]).unwrap();
    let names: Vec<_> = apps
        .iter()
        .map(|a| (a.name(), a.service(), a.connections()))
        .collect();
    assert_eq!(
        names,
        [("apns_prod", Service::Apns, 3), ("fcm", Service::Fcm, 2)]
    );
    let first = apps.iter().next().unwrap();
    assert_eq!(
        (first.mode(), first.tags()),
        (Mode::Prod, &["ios".to_owned()][..])
    );
    assert_eq!(
        first.tokens_issued(),
        0,
        "nothing is signed before the first send"
    );
}

#[test]
fn certificate_apps_build_from_pem_files() {
    let f = Fixture::new();
    let config = app(
        "cert",
        Service::Apns,
        Mode::Dev,
        UNUSED_ENDPOINT,
        apns_certificate(&f.apns_files),
    );
    assert_eq!(Apps::build(&[config]).unwrap().len(), 1);
}

fn build_error(configs: &[AppConfig]) -> String {
    let error: AppError = Apps::build(configs).unwrap_err();
    error.to_string()
}

#[test]
fn every_configuration_error_names_the_app_and_key() {
    let f = Fixture::new();
    let dir = TempDir::new().unwrap();
    let not_a_key = dir.write("not-a-key.pem", "hello").unwrap();
    let not_json = dir.write("account.json", "{").unwrap();

    let with = |change: &dyn Fn(&mut AppConfig)| {
        let mut config = f.apns("a1", Mode::Prod, &[]);
        change(&mut config);
        build_error(&[config])
    };
    let cases: Vec<(String, &str)> = vec![
        (
            build_error(&[f.apns("a1", Mode::Prod, &[]), f.fcm("a1", Mode::Prod, &[])]),
            "app name `a1` is used twice",
        ),
        (
            with(&|c| c.name = " ".to_owned()),
            "name is invalid: must not be empty",
        ),
        (
            with(&|c| c.connections = 0),
            "app `a1`: connections is invalid: must be at least 1",
        ),
        (
            with(&|c| c.request_timeout_ms = 0),
            "app `a1`: request_timeout_ms is invalid",
        ),
        (
            with(&|c| c.endpoint = Some("not a url".to_owned())),
            "app `a1`: endpoint is invalid",
        ),
        (
            with(&|c| c.endpoint = Some("ftp://h".to_owned())),
            "must be an http:// or https://",
        ),
        (
            with(&|c| c.endpoint = Some("http://h/?q=1".to_owned())),
            "no query",
        ),
        (
            with(&|c| c.extra_root_pem = Some("/nonexistent/ca.pem".to_owned())),
            "cannot read extra_root_pem",
        ),
        (
            with(&|c| c.extra_root_pem = Some("-----BEGIN CERTIFICATE-----\nxx\n".to_owned())),
            "app `a1`: extra_root_pem is invalid",
        ),
        (
            with(&|c| c.credentials = fcm_account(&f.account)),
            "app `a1`: credentials.type is invalid: does not fit service `apns`",
        ),
        (
            with(&|c| {
                c.credentials = Credentials::ApnsToken {
                    key_path: not_a_key.clone(),
                    key_id: "K".to_owned(),
                    team_id: "T".to_owned(),
                }
            }),
            "app `a1`: credentials.key_path is invalid: not an EC key",
        ),
        (
            with(&|c| {
                c.credentials = Credentials::ApnsToken {
                    key_path: "/nonexistent/key.p8".into(),
                    key_id: "K".to_owned(),
                    team_id: "T".to_owned(),
                }
            }),
            "app `a1`: cannot read credentials.key_path `/nonexistent/key.p8`",
        ),
        (
            with(&|c| {
                c.credentials = Credentials::ApnsCertificate {
                    cert_path: not_a_key.clone(),
                    key_path: not_a_key.clone(),
                }
            }),
            "app `a1`: credentials is invalid: certificate or key",
        ),
        (
            {
                let mut config = f.fcm("f1", Mode::Prod, &[]);
                config.credentials = Credentials::FcmServiceAccount {
                    path: not_json.clone(),
                    token_uri: None,
                };
                build_error(&[config])
            },
            "app `f1`: credentials.path is invalid: not a service-account JSON",
        ),
        (
            {
                let mut config = f.fcm("f1", Mode::Prod, &[]);
                config.default_topic = Some("com.example.chat".to_owned());
                build_error(&[config])
            },
            "app `f1`: default_topic is invalid: applies to APNs apps only",
        ),
        (
            {
                let mut config = f.fcm("f1", Mode::Prod, &[]);
                config.credentials = apns_certificate(&f.apns_files);
                build_error(&[config])
            },
            "does not fit service `fcm`",
        ),
    ];
    for (error, expected) in cases {
        assert!(
            error.contains(expected),
            "{error:?} should contain {expected:?}"
        );
    }
}

#[test]
fn a_service_account_with_a_bad_key_is_refused() {
    let dir = TempDir::new().unwrap();
    let mut json = pushgate_testkit::credentials::service_account_json("p", "http://127.0.0.1:9/t");
    json["private_key"] = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".into();
    let path = dir.write("account.json", &json.to_string()).unwrap();
    let config = app(
        "f1",
        Service::Fcm,
        Mode::Prod,
        UNUSED_ENDPOINT,
        Credentials::FcmServiceAccount {
            path,
            token_uri: None,
        },
    );
    let error = build_error(&[config]);
    assert!(
        error.contains("app `f1`: credentials.path is invalid: private_key"),
        "{error}"
    );
}

#[test]
fn configuration_reads_from_toml() {
    let text = r#"
        name = "apns_dev"
        service = "apns"
        mode = "dev"
        tags = ["ios", "beta"]
        endpoint = "https://api.sandbox.push.apple.com:2197"
        default_topic = "com.example.chat"
        credentials = { type = "apns_token", key_path = "/etc/pushgate/AuthKey.p8", key_id = "ABC123DEFG", team_id = "DEF123GHIJ" }
    "#;
    let config: AppConfig = toml::from_str(text).unwrap();
    assert_eq!(config.mode, Mode::Dev);
    assert_eq!(config.tags, ["ios", "beta"]);
    assert_eq!(config.connections, dispatcher::apps::DEFAULT_CONNECTIONS);
    assert_eq!(
        config.request_timeout_ms,
        dispatcher::apps::DEFAULT_REQUEST_TIMEOUT_MS
    );
    assert_eq!(
        config.credentials,
        Credentials::ApnsToken {
            key_path: "/etc/pushgate/AuthKey.p8".into(),
            key_id: "ABC123DEFG".to_owned(),
            team_id: "DEF123GHIJ".to_owned(),
        }
    );

    let fcm: AppConfig = toml::from_str(
        r#"
        name = "fcm"
        service = "fcm"
        connections = 8
        request_timeout_ms = 2000
        credentials = { type = "fcm_service_account", path = "/etc/pushgate/sa.json" }
        "#,
    )
    .unwrap();
    assert_eq!(
        (fcm.mode, fcm.connections, fcm.request_timeout_ms),
        (Mode::Prod, 8, 2000)
    );

    let cert: AppConfig = toml::from_str(
        r#"
        name = "apns_cert"
        service = "apns"
        [credentials]
        type = "apns_certificate"
        cert_path = "/c.pem"
        key_path = "/k.pem"
        "#,
    )
    .unwrap();
    assert!(matches!(
        cert.credentials,
        Credentials::ApnsCertificate { .. }
    ));
}

#[test]
fn unknown_configuration_keys_are_refused() {
    let cases = [
        (
            r#"name = "a"
               service = "apns"
               pool_size = 3
               credentials = { type = "apns_certificate", cert_path = "/c", key_path = "/k" }"#,
            "pool_size",
        ),
        (
            r#"name = "a"
               service = "apns"
               credentials = { type = "apns_certificate", cert_path = "/c", key_path = "/k", password = "x" }"#,
            "password",
        ),
        (
            r#"name = "a"
               service = "apns"
               credentials = { type = "apns_p12", path = "/c" }"#,
            "apns_p12",
        ),
        (
            r#"name = "a"
               service = "hms""#,
            "hms",
        ),
    ];
    for (text, key) in cases {
        let error = toml::from_str::<AppConfig>(text).unwrap_err().to_string();
        assert!(error.contains(key), "{error:?} should name {key:?}");
    }
}

//! MongoosePush's configuration becomes the apps MongoosePush would create: its `PUSH_*`
//! environment variables and its `[[service.*]]` TOML pools.

use std::path::{Path, PathBuf};

use dispatcher::Credentials;
use dispatcher::mongoosepush::{
    MongoosePushConfigError, ServiceSection, apps_from_env, apps_from_service_section,
};
use pushgate_shared::{Mode, Service};

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let pairs: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |name| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }
}

const BASE: &str = "/opt/app";

#[test]
fn nothing_enabled_means_no_apps() {
    assert!(apps_from_env(env(&[]), Path::new(BASE)).unwrap().is_empty());
}

#[test]
fn env_gives_an_fcm_default_pool_and_apns_dev_and_prod_pools() {
    let apps = apps_from_env(
        env(&[
            ("PUSH_FCM_ENABLED", "true"),
            ("PUSH_FCM_APP_FILE", "priv/fcm/acme.json"),
            ("PUSH_FCM_POOL_SIZE", "3"),
            ("FCM_AUTH_ENDPOINT", "http://127.0.0.1:4001/oauth2/v4/token"),
            ("PUSH_APNS_ENABLED", "true"),
            ("PUSH_APNS_DEV_KEY_ID", "DEVKEY"),
            ("PUSH_APNS_DEV_TEAM_ID", "DEVTEAM"),
            ("PUSH_APNS_PROD_KEY_ID", "PRODKEY"),
            ("PUSH_APNS_PROD_TEAM_ID", "PRODTEAM"),
            ("PUSH_APNS_PROD_P8_TOKEN", "/secrets/prod.p8"),
            ("PUSH_APNS_PROD_DEFAULT_TOPIC", "com.example.chat"),
            ("PUSH_APNS_DEV_USE_2197", "true"),
        ]),
        Path::new(BASE),
    )
    .unwrap();
    let names: Vec<&str> = apps.iter().map(|app| app.name.as_str()).collect();
    assert_eq!(names, ["default", "dev", "prod"]);

    let fcm = &apps[0];
    assert_eq!(
        (fcm.service, fcm.mode, fcm.connections),
        (Service::Fcm, Mode::Prod, 3)
    );
    assert_eq!(
        fcm.endpoint, None,
        "Google's host unless PUSH_FCM_ENDPOINT says otherwise"
    );
    assert_eq!(
        fcm.credentials,
        Credentials::FcmServiceAccount {
            path: PathBuf::from("/opt/app/priv/fcm/acme.json"),
            token_uri: Some("http://127.0.0.1:4001/oauth2/v4/token".to_owned()),
        }
    );

    let dev = &apps[1];
    assert_eq!(
        (dev.service, dev.mode, dev.connections),
        (Service::Apns, Mode::Dev, 5)
    );
    assert_eq!(
        dev.endpoint.as_deref(),
        Some("https://api.sandbox.push.apple.com:2197")
    );
    assert_eq!(
        dev.credentials,
        Credentials::ApnsToken {
            key_path: PathBuf::from("/opt/app/priv/apns/token.p8"),
            key_id: "DEVKEY".to_owned(),
            team_id: "DEVTEAM".to_owned(),
        }
    );

    let prod = &apps[2];
    assert_eq!(prod.mode, Mode::Prod);
    assert_eq!(prod.endpoint, None);
    assert_eq!(prod.default_topic.as_deref(), Some("com.example.chat"));
    assert!(
        matches!(&prod.credentials, Credentials::ApnsToken { key_path, .. } if key_path == Path::new("/secrets/prod.p8"))
    );
}

#[test]
fn token_auth_without_ids_names_the_variable() {
    let error = apps_from_env(
        env(&[("PUSH_APNS_ENABLED", "true"), ("PUSH_APNS_DEV_KEY_ID", "K")]),
        Path::new(BASE),
    )
    .unwrap_err();
    assert_eq!(
        error,
        MongoosePushConfigError::Variable {
            variable: "PUSH_APNS_DEV_TEAM_ID".to_owned(),
            problem: "required for token auth".to_owned(),
        }
    );
}

#[test]
fn certificate_auth_uses_mongoosepush_default_paths() {
    let apps = apps_from_env(
        env(&[
            ("PUSH_APNS_ENABLED", "true"),
            ("PUSH_APNS_AUTH_TYPE", "certificate"),
            ("PUSH_APNS_PROD_CERT", "/certs/prod.pem"),
            ("PUSH_APNS_PROD_ENDPOINT", "apns.internal"),
        ]),
        Path::new(BASE),
    )
    .unwrap();
    assert_eq!(
        apps[0].credentials,
        Credentials::ApnsCertificate {
            cert_path: PathBuf::from("/opt/app/priv/apns/dev_cert.pem"),
            key_path: PathBuf::from("/opt/app/priv/apns/dev_key.pem"),
        }
    );
    assert_eq!(
        apps[1].credentials,
        Credentials::ApnsCertificate {
            cert_path: PathBuf::from("/certs/prod.pem"),
            key_path: PathBuf::from("/opt/app/priv/apns/prod_key.pem"),
        }
    );
    assert_eq!(
        apps[1].endpoint.as_deref(),
        Some("https://apns.internal:443")
    );
}

#[test]
fn bad_values_name_their_variable() {
    for (pairs, variable) in [
        (vec![("PUSH_FCM_ENABLED", "yes")], "PUSH_FCM_ENABLED"),
        (
            vec![("PUSH_FCM_ENABLED", "true"), ("PUSH_FCM_POOL_SIZE", "0")],
            "PUSH_FCM_POOL_SIZE",
        ),
        (
            vec![
                ("PUSH_APNS_ENABLED", "true"),
                ("PUSH_APNS_AUTH_TYPE", "p12"),
            ],
            "PUSH_APNS_AUTH_TYPE",
        ),
    ] {
        let error = apps_from_env(env(&pairs), Path::new(BASE)).unwrap_err();
        assert!(error.to_string().starts_with(variable), "{error}");
    }
}

const MONGOOSEPUSH_TOML: &str = r#"
[[fcm]]
tags = ["tag1", "tag2"]
auth.appfile = "priv/fcm/token.json"
connection.count = 2

[[fcm]]
connection.endpoint = "fcm.internal"
connection.port = 4000
auth.appfile = "/abs/other.json"

[[apns]]
mode = "dev"
default_topic = "dev_topic"
tags = ["tag1"]
auth.certificate.keyfile = "priv/apns/dev_key.pem"
auth.certificate.certfile = "priv/apns/dev_cert.pem"

[[apns]]
mode = "prod"
connection.use_2197 = true
auth.token.key_id = "KEY"
auth.token.team_id = "TEAM"
auth.token.tokenfile = "priv/apns/token.p8"
"#;

#[test]
fn toml_pools_are_named_and_configured_like_mongoosepush() {
    let service: ServiceSection = toml::from_str(MONGOOSEPUSH_TOML).unwrap();
    let apps = apps_from_service_section(&service, Path::new("/etc/mpush")).unwrap();
    let names: Vec<&str> = apps.iter().map(|app| app.name.as_str()).collect();
    assert_eq!(names, ["fcm_1", "fcm_2", "apns_1", "apns_2"]);

    assert_eq!(apps[0].tags, ["tag1", "tag2"]);
    assert_eq!(apps[0].connections, 2);
    assert_eq!(
        apps[0].mode,
        Mode::Prod,
        "FCM pools are always prod in MongoosePush"
    );
    assert_eq!(
        apps[1].endpoint.as_deref(),
        Some("https://fcm.internal:4000")
    );
    assert!(
        matches!(&apps[1].credentials, Credentials::FcmServiceAccount { path, .. } if path == Path::new("/abs/other.json"))
    );

    assert_eq!(
        (apps[2].mode, apps[2].default_topic.as_deref()),
        (Mode::Dev, Some("dev_topic"))
    );
    assert_eq!(
        apps[2].credentials,
        Credentials::ApnsCertificate {
            cert_path: PathBuf::from("/etc/mpush/priv/apns/dev_cert.pem"),
            key_path: PathBuf::from("/etc/mpush/priv/apns/dev_key.pem"),
        }
    );
    assert_eq!(
        apps[3].endpoint.as_deref(),
        Some("https://api.push.apple.com:2197")
    );
    assert!(
        matches!(&apps[3].credentials, Credentials::ApnsToken { key_id, .. } if key_id == "KEY")
    );
}

#[test]
fn an_apns_pool_without_auth_is_refused() {
    let service: ServiceSection = toml::from_str("[[apns]]\nmode = \"prod\"\n").unwrap();
    let error = apps_from_service_section(&service, Path::new("/")).unwrap_err();
    assert_eq!(
        error.to_string(),
        "service.apns[0].auth: No auth method provided for APNS pool"
    );
}

#[test]
fn unknown_pool_keys_are_refused() {
    let error =
        toml::from_str::<ServiceSection>("[[fcm]]\nauth.appfile = \"x\"\nsize = 3\n").unwrap_err();
    assert!(error.to_string().contains("size"), "{error}");
}

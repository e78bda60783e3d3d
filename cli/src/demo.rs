//! Demo mode: mock FCM and APNs started in this process, with throwaway credentials and
//! apps pointing at them, so a newcomer sees a push delivered without any account.

use dispatcher::{AppConfig, Credentials};
use pushgate_shared::{Mode, Service};
use pushgate_testkit::credentials::ApnsCredentialFiles;
use pushgate_testkit::{
    ApnsCredentials, MockApns, MockApnsOptions, MockFcm, MockFcmOptions, ServiceAccountFile,
};

/// The topic the demo APNs apps use when a request names none.
pub const DEMO_TOPIC: &str = "com.example.pushgate-demo";

/// The running mocks and the credential files the demo apps read; dropping it removes
/// the files.
pub struct Demo {
    pub fcm: MockFcm,
    pub apns: MockApns,
    _service_account: ServiceAccountFile,
    _apns_files: ApnsCredentialFiles,
    pub apps: Vec<AppConfig>,
}

impl Demo {
    /// Starts both mocks on free local ports and describes apps for them: one FCM app,
    /// and one APNs app per mode (token auth, over h2c).
    ///
    /// # Errors
    ///
    /// A mock that cannot listen, or credential files that cannot be written.
    pub async fn start() -> anyhow::Result<Demo> {
        let apns_credentials = ApnsCredentials::generate()?;
        let apns = MockApns::start(MockApnsOptions {
            auth: apns_credentials.token_auth(),
            ..MockApnsOptions::default()
        })
        .await?;
        let fcm = MockFcm::start(MockFcmOptions::default()).await?;
        let service_account = fcm.service_account()?;
        let apns_files = apns_credentials.write_files()?;

        let mut apps = vec![AppConfig {
            name: "fcm-demo".to_owned(),
            service: Service::Fcm,
            mode: Mode::Prod,
            tags: Vec::new(),
            endpoint: Some(fcm.url()),
            extra_root_pem: None,
            connections: 1,
            request_timeout_ms: 5_000,
            default_topic: None,
            credentials: Credentials::FcmServiceAccount {
                path: service_account.path().to_owned(),
                token_uri: None,
            },
        }];
        for mode in [Mode::Prod, Mode::Dev] {
            apps.push(AppConfig {
                name: format!("apns-demo-{}", mode.as_str()),
                service: Service::Apns,
                mode,
                tags: Vec::new(),
                endpoint: Some(apns.h2c_url()),
                extra_root_pem: None,
                connections: 1,
                request_timeout_ms: 5_000,
                default_topic: Some(DEMO_TOPIC.to_owned()),
                credentials: Credentials::ApnsToken {
                    key_path: apns_files.p8_path.clone(),
                    key_id: apns_credentials.key_id.clone(),
                    team_id: apns_credentials.team_id.clone(),
                },
            });
        }
        Ok(Demo {
            fcm,
            apns,
            _service_account: service_account,
            _apns_files: apns_files,
            apps,
        })
    }
}

//! `pushgate send`: one notification from the command line through the configured apps,
//! printing the provider's answer, for operators checking credentials.

use std::path::PathBuf;

use anyhow::Context;
use dispatcher::{Apps, Outcome};
use pushgate_shared::job::now_ms;
use pushgate_shared::{Alert, Mode, Notification, Priority, Service, Target};

use crate::config::PushgateConfig;

/// Options of `pushgate send`.
#[derive(Debug, clap::Args)]
pub struct SendArgs {
    /// Configuration file with the apps (`[[dispatcher.apps]]`).
    #[arg(long, env = "PUSHGATE_CONFIG")]
    pub config: PathBuf,
    /// `fcm` or `apns`.
    #[arg(long, value_parser = parse_service)]
    pub service: Service,
    /// The device token.
    #[arg(long)]
    pub token: String,
    /// `prod` or `dev` (APNs sandbox).
    #[arg(long, default_value = "prod", value_parser = parse_mode)]
    pub mode: Mode,
    #[arg(long, default_value = "pushgate")]
    pub title: String,
    #[arg(long, default_value = "Test notification from pushgate send")]
    pub body: String,
    /// APNs topic (bundle id); the app's default topic otherwise.
    #[arg(long)]
    pub topic: Option<String>,
    /// Send a silent (data-only) push instead of an alert.
    #[arg(long)]
    pub silent: bool,
    /// Custom data, a JSON object.
    #[arg(long)]
    pub data: Option<String>,
    /// Send with high priority.
    #[arg(long)]
    pub high: bool,
}

/// Sends once and prints the outcome; returns whether the provider accepted it.
///
/// # Errors
///
/// A configuration, app or `--data` that cannot be used.
pub async fn run(args: SendArgs) -> anyhow::Result<bool> {
    let config = PushgateConfig::load(&args.config)?;
    let apps = Apps::build(&config.dispatcher.apps).context("cannot build the apps")?;
    let data = match &args.data {
        Some(text) => Some(
            serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(text)
                .context("--data must be a JSON object")?,
        ),
        None => None,
    };
    let alert = (!args.silent).then(|| Alert {
        title: args.title.clone(),
        body: args.body.clone(),
        ..Alert::default()
    });
    if alert.is_none() && data.is_none() {
        anyhow::bail!("a silent push needs --data");
    }
    let notification = Notification {
        target: Target {
            service: args.service,
            mode: args.mode,
            device_token: args.token.clone(),
            tags: Vec::new(),
            topic: args.topic.clone(),
        },
        alert,
        data,
        priority: args.high.then_some(Priority::High),
        time_to_live_secs: None,
        mutable_content: false,
    };

    let app = apps
        .select(&notification.target)
        .map(|app| app.name().to_owned());
    let attempt = apps.send(&notification, now_ms()).await;
    println!("app:      {}", app.as_deref().unwrap_or("(none matches)"));
    println!("outcome:  {}", attempt.class.as_str());
    if let Some(error) = &attempt.error {
        println!("error:    {} {}", error.category.as_str(), error.reason);
    }
    if let Some(answer) = &attempt.answer {
        println!("answer:   {answer}");
    }
    Ok(attempt.class == Outcome::Delivered)
}

fn parse_service(text: &str) -> Result<Service, String> {
    match text {
        "fcm" => Ok(Service::Fcm),
        "apns" => Ok(Service::Apns),
        other => Err(format!("`{other}` is not a service: use fcm or apns")),
    }
}

fn parse_mode(text: &str) -> Result<Mode, String> {
    match text {
        "prod" => Ok(Mode::Prod),
        "dev" => Ok(Mode::Dev),
        other => Err(format!("`{other}` is not a mode: use prod or dev")),
    }
}

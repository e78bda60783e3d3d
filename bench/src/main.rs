//! `pushgate-bench`: starts Redis, the ingest and dispatcher binaries (separate processes,
//! as deployed) and the mock providers, measures them and the baselines in one run, and
//! writes the figures as a Markdown table. `bench/run` builds the release binaries first.

mod lambda;
mod load;
mod procs;
mod providers;
mod report;

/// The hello-world baseline runs in this binary: the same allocator as pushgate's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::{Parser, Subcommand};
use pushgate_testkit::Arrival;
use pushgate_testkit::credentials::TempDir;
use serde_json::json;
use tokio::time::Instant;

use crate::load::{MakeRequest, Outcome, Plan};
use crate::procs::{Proc, Usage};
use crate::providers::{BarePlan, Providers};
use crate::report::{CpuPer10k, EndToEnd, Figures, Load};

#[derive(Debug, Parser)]
#[command(about = "Measures pushgate and its baselines on this machine")]
struct Args {
    #[command(subcommand)]
    command: Option<Sub>,
    /// A tiny run that checks the harness works; its figures mean nothing.
    #[arg(long)]
    quick: bool,
    /// Notifications per end-to-end run.
    #[arg(long, default_value_t = 100_000)]
    notifications: u64,
    /// Keep-alive HTTP/1.1 connections of the load generator.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Seconds of each closed-loop ingest and hello-world load.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Starts of the ingest binary under the stand-in Lambda Runtime API.
    #[arg(long, default_value_t = 20)]
    lambda_starts: usize,
    /// Where to write the Markdown report.
    #[arg(long, default_value = "target/bench/report.md")]
    out: PathBuf,
}

#[derive(Debug, Subcommand)]
enum Sub {
    /// The HTTP baseline: an axum hello-world server (run by the harness itself).
    Hello {
        #[arg(long)]
        listen: SocketAddr,
    },
}

/// Requests in flight at once the dispatcher allows per app (its default), also used by
/// the bare client so both have the same room.
const IN_FLIGHT: usize = 512;

/// HTTP/2 connections per app (the dispatcher's default), also the bare client's.
const PROVIDER_CONNECTIONS: usize = 5;

/// Longest wait for the mocks to receive what ingest accepted; a hang guard only.
const DRAIN_GUARD: Duration = Duration::from_secs(600);

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Runtime::new()?;
    match args.command {
        Some(Sub::Hello { listen }) => runtime.block_on(hello(listen)),
        None => runtime.block_on(bench(args.scaled())),
    }
}

async fn hello(listen: SocketAddr) -> anyhow::Result<()> {
    let app = axum::Router::new().route(
        "/v3/notification/{device_id}",
        axum::routing::post(|| async { "Hello, World!" }),
    );
    let listener = tokio::net::TcpListener::bind(listen).await?;
    axum::serve(listener, app).await?;
    Ok(())
}

impl Args {
    fn scaled(mut self) -> Self {
        if self.quick {
            self.notifications = self.notifications.min(2_000);
            self.connections = self.connections.min(8);
            self.seconds = 1;
            self.lambda_starts = self.lambda_starts.min(2);
        }
        self
    }

    fn peak(&self) -> Plan {
        Plan::closed(
            self.connections,
            u64::MAX,
            Duration::from_secs(self.seconds),
        )
    }

    fn warm_up(&self) -> Plan {
        Plan::closed(self.connections, 2_000, Duration::from_secs(2))
    }

    /// An open loop at half of `peak`'s rate for as long as the peak run took.
    fn half_of(&self, peak: &Outcome) -> Plan {
        let rate = (peak.rate() / 2.0).max(1.0);
        let requests = (rate * self.seconds as f64).ceil() as u64;
        Plan::open(self.connections, requests.max(1), rate)
    }
}

/// The processes and mocks of one run, and how many notifications the mocks should have
/// received once everything ingest accepted is delivered.
struct Rig {
    args: Args,
    dir: TempDir,
    providers: Providers,
    redis: Proc,
    redis_url: String,
    ingest: Proc,
    ingest_addr: SocketAddr,
    dispatcher: Proc,
    accepted: u64,
    figures: Figures,
}

async fn bench(args: Args) -> anyhow::Result<()> {
    let ingest_bin = procs::sibling_binary("ingest")?;
    let dispatcher_bin = procs::sibling_binary("dispatcher")?;
    let dir = TempDir::new()?;
    let mut figures = Figures {
        machine: machine(),
        settings: vec![
            (
                "load".into(),
                format!(
                    "{} keep-alive HTTP/1.1 connections, one request at a time on each",
                    args.connections
                ),
            ),
            (
                "closed-loop runs".into(),
                format!(
                    "{} s each, after a warm-up of 2,000 requests (2 s at most)",
                    args.seconds
                ),
            ),
            (
                "end-to-end runs".into(),
                format!("{} notifications each", args.notifications),
            ),
            (
                "dispatcher".into(),
                format!(
                    "defaults: {PROVIDER_CONNECTIONS} HTTP/2 connections and {IN_FLIGHT} sends in flight per app, TLS to the mocks, APNs token auth, FCM service account"
                ),
            ),
            (
                "ingest".into(),
                "authentication off, default queue (Redis streams), sync-wait off unless said"
                    .into(),
            ),
        ],
        ..Figures::default()
    };
    if args.quick {
        figures.settings.push((
            "quick".into(),
            "yes: a smoke run, the figures mean nothing".into(),
        ));
    }

    eprintln!("== baselines");
    let providers = Providers::start().await?;
    let (redis, redis_url) = procs::start_redis(dir.path()).await?;
    let (hello_peak, hello_half, hello_cpu) = hello_baseline(&args, dir.path()).await?;
    figures
        .other_cpu
        .push(("axum hello-world, peak".to_owned(), hello_cpu));
    figures.hello_peak = hello_peak;
    figures.hello_half = hello_half;
    figures.redis_xadd = redis_xadd(&redis_url, args.connections, args.notifications * 2)?;
    let bare = BarePlan {
        requests: args.notifications,
        connections: PROVIDER_CONNECTIONS,
        in_flight: IN_FLIGHT,
    };
    let before = procs::own_cpu()?;
    let apns = providers::bare_apns(&providers, bare).await?;
    let between = procs::own_cpu()?;
    figures.bare_apns = Load::new(apns.rate(), &apns.latency, 0);
    let bare_apns_cpu = per_10k(between - before, apns.ok);
    let fcm = providers::bare_fcm(&providers, bare).await?;
    figures.bare_fcm = Load::new(fcm.rate(), &fcm.latency, 0);
    let bare_fcm_cpu = per_10k(procs::own_cpu()? - between, fcm.ok);
    figures.other_cpu.extend([
        (
            "bare client → mock APNs".to_owned(),
            [None, None, Some(bare_apns_cpu)],
        ),
        (
            "bare client → mock FCM".to_owned(),
            [None, None, Some(bare_fcm_cpu)],
        ),
    ]);
    let baseline_sends = providers.received();

    eprintln!("== pushgate");
    let (ingest, ingest_addr) = start_ingest(&ingest_bin, &redis_url, dir.path(), None).await?;
    let dispatcher = start_dispatcher(&dispatcher_bin, &providers, &redis_url, dir.path()).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    figures.ingest_memory.idle = ingest.usage()?.rss;
    figures.dispatcher_memory.idle = dispatcher.usage()?.rss;

    let mut rig = Rig {
        args,
        dir,
        providers,
        redis,
        redis_url,
        ingest,
        ingest_addr,
        dispatcher,
        accepted: baseline_sends,
        figures,
    };
    rig.run().await?;
    let Rig { args, figures, .. } = rig;

    let report = figures.markdown();
    if let Some(folder) = args.out.parent() {
        std::fs::create_dir_all(folder)?;
    }
    std::fs::write(&args.out, &report)?;
    println!("{report}");
    eprintln!("report written to {}", args.out.display());
    Ok(())
}

impl Rig {
    async fn run(&mut self) -> anyhow::Result<()> {
        eprintln!("== end to end, APNs");
        self.figures.apns = self.end_to_end(Target::Apns).await?;
        eprintln!("== end to end, FCM");
        self.figures.fcm = self.end_to_end(Target::Fcm).await?;

        eprintln!("== ingest, sync-wait off");
        // Measured alone, as the hello-world server is and as deployed (Lambda does not
        // share its cores with the dispatcher): the dispatcher catches up afterwards.
        self.dispatcher.set_paused(true)?;
        let loads = self.ingest_loads("ingest alone, sync-wait off, peak").await;
        self.dispatcher.set_paused(false)?;
        let (peak, half) = loads?;
        self.figures.ingest_peak = peak;
        self.figures.ingest_half = half;
        self.drain().await?;

        eprintln!("== ingest, sync-wait on");
        self.figures.ingest_memory.peak = self.ingest.usage()?.peak_rss;
        let (ingest, addr) = start_ingest(
            &procs::sibling_binary("ingest")?,
            &self.redis_url,
            self.dir.path(),
            Some(1000),
        )
        .await?;
        std::mem::replace(&mut self.ingest, ingest).stop();
        self.ingest_addr = addr;
        let (peak, half) = self
            .ingest_loads("ingest, sync-wait on (with the dispatcher), peak")
            .await?;
        self.figures.sync_wait_peak = peak;
        self.figures.sync_wait_half = half;
        self.drain().await?;
        self.figures.ingest_memory.peak = self
            .figures
            .ingest_memory
            .peak
            .max(self.ingest.usage()?.peak_rss);
        self.figures.dispatcher_memory.peak = self.dispatcher.usage()?.peak_rss;

        eprintln!("== Lambda");
        self.figures.lambda = lambda::measure(
            &procs::sibling_binary("ingest")?,
            &self.redis_url,
            self.dir.path(),
            self.args.lambda_starts,
        )
        .await?;
        self.check_running()
    }

    /// Ingest at its peak (closed loop) and at half of it (open loop), with MongooseIM's
    /// v3 alert to APNs.
    async fn ingest_loads(&mut self, name: &str) -> anyhow::Result<(Load, Load)> {
        let make = Target::Apns.request(0);
        self.load(self.args.warm_up(), make.clone()).await?;
        let (before, own_before) = (self.usage()?, procs::own_cpu()?);
        let peak = self.load(self.args.peak(), make.clone()).await?;
        let (after, own_after) = (self.usage()?, procs::own_cpu()?);
        self.figures.other_cpu.push((
            name.to_owned(),
            [
                Some(per_10k(after[0].cpu - before[0].cpu, peak.ok)),
                Some(per_10k(after[2].cpu - before[2].cpu, peak.ok)),
                Some(per_10k(own_after - own_before, peak.ok)),
            ],
        ));
        let half = self.load(self.args.half_of(&peak), make).await?;
        Ok((Load::of(&peak), Load::of(&half)))
    }

    /// `notifications` through ingest to one provider as fast as they are taken, then as
    /// many at half that rate; the rate and latency are those the mock saw.
    async fn end_to_end(&mut self, target: Target) -> anyhow::Result<EndToEnd> {
        let count = self.args.notifications;
        let closed = Plan::closed(self.args.connections, count, DRAIN_GUARD);
        // The backlog of earlier runs is not this run's work.
        self.drain().await?;
        let (before, own_before) = (self.usage()?, procs::own_cpu()?);
        let (peak, _) = self.delivered(target, closed).await?;
        let (after, own_after) = (self.usage()?, procs::own_cpu()?);
        let cpu = CpuPer10k {
            ingest: per_10k(after[0].cpu - before[0].cpu, count),
            dispatcher: per_10k(after[1].cpu - before[1].cpu, count),
            redis: per_10k(after[2].cpu - before[2].cpu, count),
            harness: per_10k(own_after - own_before, count),
        };
        let rate = (peak.rate / 2.0).max(1.0);
        let open = Plan::open(self.args.connections, count, rate);
        let (half, _) = self.delivered(target, open).await?;
        Ok(EndToEnd { peak, half, cpu })
    }

    /// Sends `plan` to `target` with one fresh device token per notification and matches
    /// each arrival at the mock to its request's start.
    async fn delivered(&mut self, target: Target, plan: Plan) -> anyhow::Result<(Load, Outcome)> {
        self.drain().await?;
        target.control(&self.providers).keep_arrivals();
        let outcome = self.load(plan, target.request(0)).await?;
        if outcome.failed > 0 {
            bail!(
                "{} of {} requests failed: {}",
                outcome.failed,
                plan.requests,
                outcome.first_failure.as_deref().unwrap_or("?")
            );
        }
        self.drain().await?;
        let arrivals = target.control(&self.providers).end_arrivals();
        let mut latency = load::new_histogram();
        let mut last = outcome.began;
        for Arrival { device_token, at } in &arrivals {
            let at = Instant::from_std(*at);
            let started = target
                .index_of(device_token)
                .and_then(|index| {
                    outcome
                        .started
                        .get(usize::try_from(index).ok()?)
                        .copied()
                        .flatten()
                })
                .with_context(|| {
                    format!("the mock received {device_token}, which was never sent")
                })?;
            let micros = u64::try_from((at - started).as_micros()).unwrap_or(u64::MAX);
            latency.saturating_record(micros.max(1));
            last = last.max(at);
        }
        if latency.len() != outcome.ok {
            bail!(
                "ingest accepted {} notifications and the mock received {}",
                outcome.ok,
                latency.len()
            );
        }
        let rate = latency.len() as f64 / (last - outcome.began).as_secs_f64().max(1e-9);
        Ok((Load::new(rate, &latency, outcome.failed), outcome))
    }

    async fn load(&mut self, plan: Plan, make: MakeRequest) -> anyhow::Result<Outcome> {
        let outcome = load::run(self.ingest_addr, plan, make).await?;
        self.accepted += outcome.ok;
        self.check_running()?;
        Ok(outcome)
    }

    /// Waits until the mocks received everything ingest accepted.
    async fn drain(&mut self) -> anyhow::Result<()> {
        self.providers
            .wait_received(self.accepted, DRAIN_GUARD)
            .await?;
        self.check_running()
    }

    /// Usage of ingest, the dispatcher and Redis, in that order.
    fn usage(&self) -> anyhow::Result<[Usage; 3]> {
        Ok([
            self.ingest.usage()?,
            self.dispatcher.usage()?,
            self.redis.usage()?,
        ])
    }

    fn check_running(&mut self) -> anyhow::Result<()> {
        self.ingest.check_running()?;
        self.dispatcher.check_running()?;
        self.redis.check_running()
    }
}

/// The provider a load is addressed to.
#[derive(Clone, Copy, Debug)]
enum Target {
    Apns,
    Fcm,
}

impl Target {
    /// MongooseIM's v3 alert for a 1:1 chat message, to device `index` (from `first`).
    fn request(self, first: u64) -> MakeRequest {
        let service = match self {
            Target::Apns => "apns",
            Target::Fcm => "fcm",
        };
        let body: Bytes = json!({
            "alert": {"badge": 1, "body": "OH, HAI!", "tag": "alice@localhost",
                      "title": "alice@localhost", "click_action": "OPEN_CHAT"},
            "service": service, "priority": "high", "topic": providers::TOPIC,
        })
        .to_string()
        .into();
        Arc::new(move |index| {
            let device = self.token(first + index);
            (format!("/v3/notification/{device}"), body.clone())
        })
    }

    fn token(self, index: u64) -> String {
        match self {
            Target::Apns => format!("{index:064x}"),
            Target::Fcm => format!("bench-{index}"),
        }
    }

    fn index_of(self, token: &str) -> Option<u64> {
        match self {
            Target::Apns => u64::from_str_radix(token, 16).ok(),
            Target::Fcm => token.strip_prefix("bench-")?.parse().ok(),
        }
    }

    fn control(self, providers: &Providers) -> &pushgate_testkit::Control {
        match self {
            Target::Apns => providers.apns.control(),
            Target::Fcm => providers.fcm.control(),
        }
    }
}

/// The hello-world server at its peak and half of it, and its CPU per 10,000 requests
/// at the peak (with the harness's).
async fn hello_baseline(args: &Args, dir: &Path) -> anyhow::Result<(Load, Load, [Option<f64>; 3])> {
    let addr = procs::free_addr()?;
    let mut command = Command::new(std::env::current_exe()?);
    command.args(["hello", "--listen", &addr.to_string()]);
    let mut server = Proc::spawn("hello-world", command, &dir.join("hello.log"))?;
    let url = format!("http://{addr}/v3/notification/x");
    wait_until_listening(&mut server, addr)
        .await
        .with_context(|| url.clone())?;
    let make = Target::Apns.request(0);
    load::run(addr, args.warm_up(), make.clone()).await?;
    let (before, own_before) = (server.usage()?.cpu, procs::own_cpu()?);
    let peak = load::run(addr, args.peak(), make.clone()).await?;
    let (after, own_after) = (server.usage()?.cpu, procs::own_cpu()?);
    let cpu = [
        Some(per_10k(after - before, peak.ok)),
        None,
        Some(per_10k(own_after - own_before, peak.ok)),
    ];
    let half = load::run(addr, args.half_of(&peak), make).await?;
    server.stop();
    Ok((Load::of(&peak), Load::of(&half), cpu))
}

async fn wait_until_listening(proc: &mut Proc, addr: SocketAddr) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        proc.check_running()?;
        if Instant::now() > deadline {
            bail!("{} is not listening on {addr}", proc.name);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// `redis-benchmark` appending `requests` entries with a job-sized field, over as many
/// connections as the load generator uses; requests per second.
fn redis_xadd(redis_url: &str, connections: usize, requests: u64) -> anyhow::Result<f64> {
    let addr = redis_url.trim_start_matches("redis://");
    let (host, port) = addr.rsplit_once(':').context("a host:port Redis URL")?;
    // About the size of the job JSON ingest appends for the v3 alert.
    let job = "j".repeat(600);
    let output = Command::new("redis-benchmark")
        .args(["-h", host, "-p", port, "-c", &connections.to_string()])
        .args(["-n", &requests.to_string(), "--csv"])
        .args(["XADD", "bench:xadd", "*", "job", &job])
        .output()
        .context("running redis-benchmark (it comes with redis-server)")?;
    if !output.status.success() {
        bail!(
            "redis-benchmark failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let text = String::from_utf8_lossy(&output.stdout);
    // A header line, then `"<command>","<rps>",...`.
    let rps = text
        .lines()
        .filter(|line| line.starts_with("\"XADD"))
        .find_map(|line| line.split("\",\"").nth(1))
        .and_then(|rps| rps.trim_matches('"').parse().ok())
        .with_context(|| format!("no XADD rate in redis-benchmark's output: {text}"))?;
    let mut connection = redis::Client::open(redis_url)?.get_connection()?;
    redis::cmd("DEL")
        .arg("bench:xadd")
        .query::<()>(&mut connection)?;
    Ok(rps)
}

async fn start_ingest(
    binary: &Path,
    redis_url: &str,
    dir: &Path,
    sync_wait_ms: Option<u64>,
) -> anyhow::Result<(Proc, SocketAddr)> {
    let addr = procs::free_addr()?;
    let mut command = procs::clean_command(binary);
    command
        .env("PUSHGATE_LISTEN", addr.to_string())
        .env("PUSHGATE_REDIS_URL", redis_url)
        .env("PUSHGATE_QUEUE_PREFIX", "bench")
        .env("PUSHGATE_AUTH", "off");
    if let Some(wait) = sync_wait_ms {
        command.env("PUSHGATE_SYNC_WAIT_MS", wait.to_string());
    }
    let log = dir.join(format!("ingest-{}.log", addr.port()));
    let mut proc = Proc::spawn("ingest", command, &log)?;
    procs::wait_http_ready(&mut proc, &format!("http://{addr}/health/live")).await?;
    Ok((proc, addr))
}

async fn start_dispatcher(
    binary: &Path,
    providers: &Providers,
    redis_url: &str,
    dir: &Path,
) -> anyhow::Result<Proc> {
    let listen = procs::free_addr()?;
    let config = json!({
        "redis_url": redis_url,
        "listen": listen.to_string(),
        "queue": { "prefix": "bench" },
        "dispatcher": { "apps": providers.dispatcher_apps() },
    });
    let path = dir.join("dispatcher.toml");
    std::fs::write(&path, toml::to_string(&config)?)?;
    let mut command = procs::clean_command(binary);
    command.arg("--config").arg(&path);
    let mut proc = Proc::spawn("dispatcher", command, &dir.join("dispatcher.log"))?;
    procs::wait_http_ready(&mut proc, &format!("http://{listen}/health/live")).await?;
    Ok(proc)
}

/// CPU seconds per 10,000 of `count` requests (or notifications) that took `cpu`.
fn per_10k(cpu: Duration, count: u64) -> f64 {
    cpu.as_secs_f64() * 10_000.0 / count.max(1) as f64
}

/// What the report says about the machine.
fn machine() -> Vec<(String, String)> {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split_once(':'))
                .map(|(_, model)| model.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory = procfs::Current::current()
        .map(|info: procfs::Meminfo| {
            format!("{:.1} GiB", info.mem_total as f64 / (1u64 << 30) as f64)
        })
        .unwrap_or_else(|_| "unknown".to_owned());
    let version = |program: &str, arg: &str| {
        Command::new(program)
            .arg(arg)
            .output()
            .ok()
            .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
            .unwrap_or_else(|| "unknown".to_owned())
    };
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|release| release.trim().to_owned())
        .unwrap_or_else(|_| "unknown".to_owned());
    vec![
        ("CPU".into(), format!("{cpu}, {cores} cores available")),
        ("memory".into(), memory),
        ("kernel".into(), kernel),
        ("rustc".into(), version("rustc", "--version")),
        ("redis-server".into(), version("redis-server", "--version")),
        (
            "load generator, mocks and bare client".into(),
            "this harness, on the same machine as everything else".into(),
        ),
    ]
}

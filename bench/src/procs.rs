//! The processes under test, each started as an operator would, with its resident memory
//! and CPU time read from `/proc`.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::time::Instant;

/// How long a process may take to answer after it started.
const READY_GUARD: Duration = Duration::from_secs(30);

/// A process of the benchmark; killed when dropped.
pub struct Proc {
    pub name: &'static str,
    child: Child,
}

/// Resident memory and CPU time of one process at one moment.
#[derive(Clone, Copy, Debug, Default)]
pub struct Usage {
    /// Resident set now, in bytes.
    pub rss: u64,
    /// The largest resident set since the process started, in bytes.
    pub peak_rss: u64,
    /// User plus system CPU time since the process started.
    pub cpu: Duration,
}

impl Proc {
    /// Starts `command` with its output appended to `log`.
    pub fn spawn(name: &'static str, mut command: Command, log: &Path) -> anyhow::Result<Self> {
        let out =
            std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        command
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out);
        let child = command
            .spawn()
            .with_context(|| format!("starting {name}: {command:?}"))?;
        Ok(Proc { name, child })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Memory and CPU time now.
    pub fn usage(&self) -> anyhow::Result<Usage> {
        let pid = i32::try_from(self.pid())?;
        let process = procfs::process::Process::new(pid)
            .with_context(|| format!("{} (pid {pid}) is not running", self.name))?;
        let status = process.status()?;
        let stat = process.stat()?;
        let ticks = procfs::ticks_per_second() as f64;
        Ok(Usage {
            rss: status.vmrss.unwrap_or(0) * 1024,
            peak_rss: status.vmhwm.unwrap_or(0) * 1024,
            cpu: Duration::from_secs_f64((stat.utime + stat.stime) as f64 / ticks),
        })
    }

    /// Fails when the process has exited, naming its status.
    pub fn check_running(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!("{} exited early: {status}", self.name);
        }
        Ok(())
    }

    /// Stops (`SIGSTOP`) or continues (`SIGCONT`) the process, to keep it off the CPU
    /// while another one is measured alone.
    pub fn set_paused(&self, paused: bool) -> anyhow::Result<()> {
        let signal = if paused {
            Signal::SIGSTOP
        } else {
            Signal::SIGCONT
        };
        let pid = Pid::from_raw(i32::try_from(self.pid())?);
        kill(pid, signal).with_context(|| format!("sending {signal} to {}", self.name))
    }

    /// Stops the process and waits for it.
    pub fn stop(mut self) {
        self.kill();
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// CPU time this harness process (load generator, mocks, bare client) has used.
pub fn own_cpu() -> anyhow::Result<Duration> {
    let stat = procfs::process::Process::myself()?.stat()?;
    let ticks = procfs::ticks_per_second() as f64;
    Ok(Duration::from_secs_f64(
        (stat.utime + stat.stime) as f64 / ticks,
    ))
}

/// A command for one of pushgate's binaries that inherits none of the caller's
/// `PUSHGATE_*` or `AWS_LAMBDA_*` variables, so a setting in the shell cannot change
/// what is measured.
pub fn clean_command(binary: &Path) -> Command {
    let mut command = Command::new(binary);
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if name.starts_with("PUSHGATE_") || name.starts_with("AWS_LAMBDA_") {
            command.env_remove(name.as_ref());
        }
    }
    command
}

/// A loopback address with a port nothing listens on now.
pub fn free_addr() -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?)
}

/// Waits until `proc` answers `GET url` with a success, failing if it exits first.
pub async fn wait_http_ready(proc: &mut Proc, url: &str) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + READY_GUARD;
    loop {
        proc.check_running()?;
        if let Ok(response) = client.get(url).send().await
            && response.status().is_success()
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{} did not answer {url} within {READY_GUARD:?}", proc.name);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A `redis-server` of its own on a free port, keeping nothing on disk.
pub async fn start_redis(dir: &Path) -> anyhow::Result<(Proc, String)> {
    let addr = free_addr()?;
    let mut command = Command::new("redis-server");
    command.args([
        "--bind",
        "127.0.0.1",
        "--port",
        &addr.port().to_string(),
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        &dir.display().to_string(),
    ]);
    let mut proc = Proc::spawn("redis", command, &dir.join("redis.log"))
        .context("is redis-server installed? (apt-get install redis-server)")?;
    let url = format!("redis://{addr}");
    let client = redis::Client::open(url.as_str())?;
    let deadline = Instant::now() + READY_GUARD;
    loop {
        proc.check_running()?;
        if let Ok(mut connection) = client.get_multiplexed_async_connection().await
            && redis::cmd("PING")
                .query_async::<String>(&mut connection)
                .await
                .is_ok()
        {
            return Ok((proc, url));
        }
        if Instant::now() > deadline {
            bail!("redis-server did not answer PING within {READY_GUARD:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Where the release binaries of the workspace are: beside this harness's own binary.
pub fn sibling_binary(name: &str) -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe()?;
    let dir = me.parent().context("the harness binary has a folder")?;
    let path = dir.join(name);
    if !path.is_file() {
        bail!(
            "{} is missing: build it first (`cargo build --release -p ingest -p dispatcher -p pushgate-bench`, as bench/run does)",
            path.display()
        );
    }
    Ok(path)
}

//! A throwaway `redis-server` shared by the tests of one process (or the one `REDIS_URL`
//! names), per-test key prefixes, and a relay that cuts Redis connections on demand.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, anyhow, bail};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How long a fresh server may take to answer PING.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// The URL of the Redis the tests use: `REDIS_URL` when set, otherwise a `redis-server`
/// started once per test process on a free loopback port, killed when the process ends.
///
/// # Panics
///
/// When `REDIS_URL` is unset and no `redis-server` can be started; the message says to
/// install redis-server or set `REDIS_URL`.
pub fn redis_url() -> String {
    if let Ok(url) = std::env::var("REDIS_URL")
        && !url.is_empty()
    {
        return url;
    }
    static SERVER: OnceLock<Result<String, String>> = OnceLock::new();
    let started = SERVER.get_or_init(|| start_owned_server().map_err(|error| format!("{error:#}")));
    match started {
        Ok(url) => url.clone(),
        Err(error) => panic!("no Redis for the tests: {error}"),
    }
}

/// A key prefix no other test (in this run or an earlier one on the same server) uses.
pub fn unique_prefix(name: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_nanos())
        .unwrap_or(0);
    let serial = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("test:{name}:{}:{nanos}:{serial}", std::process::id())
}

/// Starts `redis-server` from a thread that lives as long as the process, because the
/// kernel's parent-death signal fires when the spawning thread exits.
fn start_owned_server() -> anyhow::Result<String> {
    let (started_tx, started_rx) = mpsc::channel();
    thread::Builder::new()
        .name("redis-server".to_owned())
        .spawn(move || match start_until_ready() {
            Ok((mut child, url)) => {
                let _ = started_tx.send(Ok(url));
                // Returns only once the server died, so this thread outlives the server.
                let _ = child.wait();
            }
            Err(error) => {
                let _ = started_tx.send(Err(error));
            }
        })
        .context("spawning the redis-server thread")?;
    started_rx
        .recv()
        .context("the redis-server thread ended without an answer")?
}

/// Picks a free port and starts a server on it, trying again if another process took
/// the port in between.
fn start_until_ready() -> anyhow::Result<(Child, String)> {
    let mut last_error = anyhow!("no attempt made");
    for _ in 0..5 {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|listener| listener.local_addr())
            .context("finding a free port")?
            .port();
        let mut command = Command::new("redis-server");
        command
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(std::env::temp_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = match spawn_dying_with_thread(&mut command) {
            Ok(child) => child,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                bail!("redis-server is not installed: install redis-server or set REDIS_URL")
            }
            Err(error) => return Err(error).context("starting redis-server"),
        };
        match wait_for_pong(&mut child, port) {
            Ok(()) => return Ok((child, format!("redis://127.0.0.1:{port}/"))),
            Err(error) => {
                let _ = child.kill();
                let _ = child.wait();
                last_error = error;
            }
        }
    }
    Err(last_error.context("redis-server did not start (install redis-server or set REDIS_URL)"))
}

/// Spawns `command` so that the kernel kills it when the calling thread exits.
#[allow(
    unsafe_code,
    reason = "pre_exec is unsafe; the closure only calls prctl and getppid"
)]
fn spawn_dying_with_thread(command: &mut Command) -> std::io::Result<Child> {
    use std::os::unix::process::CommandExt;

    let parent = std::process::id();
    // SAFETY: between fork and exec the closure calls only async-signal-safe functions
    // (prctl, getppid) and allocates nothing.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died before prctl took effect.
            if libc::getppid() as u32 != parent {
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
    command.spawn()
}

fn wait_for_pong(child: &mut Child, port: u16) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            bail!("redis-server on port {port} exited at start-up: {status}");
        }
        if ping(port).is_ok() {
            return Ok(());
        }
        if started.elapsed() > START_TIMEOUT {
            bail!("redis-server on port {port} did not answer PING within {START_TIMEOUT:?}");
        }
        thread::sleep(Duration::from_millis(20));
    }
}

fn ping(port: u16) -> std::io::Result<()> {
    let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port))?;
    stream.set_read_timeout(Some(Duration::from_secs(1)))?;
    stream.write_all(b"PING\r\n")?;
    let mut answer = [0u8; 7];
    stream.read_exact(&mut answer)?;
    if &answer == b"+PONG\r\n" {
        Ok(())
    } else {
        Err(std::io::Error::other("unexpected answer to PING"))
    }
}

/// A TCP relay in front of a Redis whose connections a test can cut, to see how a client
/// copes with a dropped connection without disturbing other tests on the same server.
pub struct CuttableRelay {
    url: String,
    cuts: watch::Sender<u64>,
    accept_loop: JoinHandle<()>,
}

impl CuttableRelay {
    /// Starts relaying to the Redis at `redis_url`; connect through [`CuttableRelay::url`].
    ///
    /// # Errors
    ///
    /// A URL without a host and port, or no free local port.
    pub async fn start(redis_url: &str) -> anyhow::Result<Self> {
        let (target, rewrite) = split_authority(redis_url)?;
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let local: SocketAddr = listener.local_addr()?;
        let url = rewrite(&local.to_string());
        let (cuts, _) = watch::channel(0u64);

        let cuts_for_loop = cuts.clone();
        let accept_loop = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let mut cut = cuts_for_loop.subscribe();
                let target = target.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(&target).await else {
                        return;
                    };
                    let mut client = client;
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Ok(CuttableRelay {
            url,
            cuts,
            accept_loop,
        })
    }

    /// The Redis URL that goes through the relay.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Closes every connection relayed so far; new connections are relayed as before.
    pub fn cut_all(&self) {
        self.cuts.send_modify(|generation| *generation += 1);
    }
}

impl Drop for CuttableRelay {
    fn drop(&mut self) {
        self.accept_loop.abort();
        self.cut_all();
    }
}

/// Splits a `redis://[user[:password]@]host[:port][/db]` URL into its `host:port` and a
/// function that puts another `host:port` in its place.
fn split_authority(url: &str) -> anyhow::Result<(String, impl Fn(&str) -> String + use<>)> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| anyhow!("{url} is not a redis:// URL"))?;
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let (credentials, host_port) = match authority.rsplit_once('@') {
        Some((credentials, host_port)) => (format!("{credentials}@"), host_port),
        None => (String::new(), authority),
    };
    if host_port.is_empty() {
        bail!("{url} names no host");
    }
    let target = if host_port.contains(':') && !host_port.ends_with(']') {
        host_port.to_owned()
    } else {
        format!("{host_port}:6379")
    };
    let (scheme, tail) = (scheme.to_owned(), tail.to_owned());
    Ok((target, move |replacement: &str| {
        format!("{scheme}://{credentials}{replacement}{tail}")
    }))
}

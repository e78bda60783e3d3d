//! The load generator: MongooseIM's way of calling a push service, many keep-alive
//! HTTP/1.1 connections with one request at a time on each, either as fast as answers
//! come back (closed loop) or on a fixed schedule (open loop, for latency at a set load).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// Builds request number `index` (its path and body; the generator adds the host).
pub type MakeRequest = Arc<dyn Fn(u64) -> (String, Bytes) + Send + Sync>;

/// How much load to send.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    /// Keep-alive connections, each with one request in flight at most.
    pub connections: usize,
    /// Requests in all; the run also ends at `deadline`, whichever comes first.
    pub requests: u64,
    /// No request starts after this long.
    pub deadline: Duration,
    /// Requests per second over all connections; `None` sends the next request as soon
    /// as the previous one on its connection is answered.
    pub rate: Option<f64>,
}

impl Plan {
    /// How many start times a run keeps: one per request when their number is bounded
    /// (end-to-end runs match arrivals to them), none for runs bounded by time only.
    fn recorded_starts(&self) -> usize {
        match usize::try_from(self.requests) {
            Ok(requests) if requests <= 10_000_000 => requests,
            _ => 0,
        }
    }

    /// As fast as answers come back, for `duration` (bounded by `requests`).
    pub fn closed(connections: usize, requests: u64, duration: Duration) -> Self {
        Plan {
            connections,
            requests,
            deadline: duration,
            rate: None,
        }
    }

    /// `requests` on a fixed schedule of `rate` per second.
    pub fn open(connections: usize, requests: u64, rate: f64) -> Self {
        // The schedule itself takes requests / rate; the rest is a hang guard.
        let schedule = Duration::from_secs_f64(requests as f64 / rate);
        Plan {
            connections,
            requests,
            deadline: schedule + Duration::from_secs(30),
            rate: Some(rate),
        }
    }
}

/// What one run measured.
pub struct Outcome {
    /// From the first request's start to the last answer.
    pub elapsed: Duration,
    /// Answers with a 2xx status.
    pub ok: u64,
    /// Other answers and failed requests; the first one is described in `first_failure`.
    pub failed: u64,
    pub first_failure: Option<String>,
    /// Latency in microseconds of answered requests. In an open loop it counts from
    /// the scheduled start, so a request delayed by a slow one before it is not hidden.
    pub latency: Histogram<u64>,
    /// When request `index` started (scheduled start in an open loop), for the
    /// requests that were started.
    pub started: Vec<Option<Instant>>,
    pub began: Instant,
}

impl Outcome {
    /// Answered requests per second.
    pub fn rate(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Runs `plan` against `addr`.
///
/// # Errors
///
/// When a connection cannot be opened.
pub async fn run(addr: SocketAddr, plan: Plan, make: MakeRequest) -> anyhow::Result<Outcome> {
    let mut senders = Vec::with_capacity(plan.connections);
    for _ in 0..plan.connections {
        senders.push(connect(addr).await?);
    }
    let next = Arc::new(AtomicU64::new(0));
    let began = Instant::now();
    let host = addr.to_string();
    let mut connections = JoinSet::new();
    for sender in senders {
        let lane = Lane {
            addr,
            host: host.clone(),
            sender,
            next: next.clone(),
            make: make.clone(),
            plan,
            began,
        };
        connections.spawn(lane.drive());
    }

    let mut latency = new_histogram();
    let mut started = vec![None; plan.recorded_starts()];
    let (mut ok, mut failed, mut first_failure) = (0, 0, None);
    let mut last_answer = began;
    while let Some(lane) = connections.join_next().await {
        let lane = lane.context("a load connection panicked")?;
        latency
            .add(&lane.latency)
            .context("histograms of one shape")?;
        for (index, at) in lane.started {
            if let Some(slot) = started.get_mut(usize::try_from(index).unwrap_or(usize::MAX)) {
                *slot = Some(at);
            }
        }
        ok += lane.ok;
        failed += lane.failed;
        first_failure = first_failure.or(lane.first_failure);
        last_answer = last_answer.max(lane.last_answer);
    }
    Ok(Outcome {
        elapsed: last_answer - began,
        ok,
        failed,
        first_failure,
        latency,
        started,
        began,
    })
}

/// A histogram of microseconds from 1 µs to 100 s at 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 100_000_000, 3).expect("valid histogram bounds")
}

async fn connect(addr: SocketAddr) -> anyhow::Result<SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    stream.set_nodelay(true)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .context("HTTP/1.1 handshake")?;
    tokio::spawn(async move {
        // Ends when the sender is dropped or the server closes the connection.
        let _ = connection.await;
    });
    Ok(sender)
}

/// One keep-alive connection taking request numbers from the shared counter.
struct Lane {
    addr: SocketAddr,
    host: String,
    sender: SendRequest<Full<Bytes>>,
    next: Arc<AtomicU64>,
    make: MakeRequest,
    plan: Plan,
    began: Instant,
}

/// What one connection measured.
struct LaneOutcome {
    latency: Histogram<u64>,
    started: Vec<(u64, Instant)>,
    ok: u64,
    failed: u64,
    first_failure: Option<String>,
    last_answer: Instant,
}

impl Lane {
    async fn drive(mut self) -> LaneOutcome {
        let mut outcome = LaneOutcome {
            latency: new_histogram(),
            started: Vec::new(),
            ok: 0,
            failed: 0,
            first_failure: None,
            last_answer: self.began,
        };
        let deadline = self.began + self.plan.deadline;
        let record_starts = self.plan.recorded_starts() > 0;
        loop {
            let index = self.next.fetch_add(1, Ordering::Relaxed);
            if index >= self.plan.requests {
                break;
            }
            let start = match self.plan.rate {
                Some(rate) => {
                    let due = self.began + Duration::from_secs_f64(index as f64 / rate);
                    tokio::time::sleep_until(due).await;
                    due
                }
                None => Instant::now(),
            };
            if Instant::now() > deadline {
                break;
            }
            if record_starts {
                outcome.started.push((index, start));
            }
            match self.send(index).await {
                Ok(status) if (200..300).contains(&status) => {
                    let answered = Instant::now();
                    let micros = u64::try_from((answered - start).as_micros()).unwrap_or(u64::MAX);
                    outcome.latency.saturating_record(micros.max(1));
                    outcome.ok += 1;
                    outcome.last_answer = answered;
                }
                Ok(status) => outcome.fail(format!("answered {status}")),
                Err(error) => {
                    outcome.fail(format!("{error:#}"));
                    // The connection may be gone: open a fresh one and go on.
                    match connect(self.addr).await {
                        Ok(sender) => self.sender = sender,
                        Err(_) => break,
                    }
                }
            }
        }
        outcome
    }

    async fn send(&mut self, index: u64) -> anyhow::Result<u16> {
        let (path, body) = (self.make)(index);
        let request = Request::post(path)
            .header(http::header::HOST, &self.host)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Full::new(body))?;
        self.sender.ready().await?;
        let response = self.sender.send_request(request).await?;
        let status = response.status().as_u16();
        response.into_body().collect().await?;
        Ok(status)
    }
}

impl LaneOutcome {
    fn fail(&mut self, why: String) {
        self.failed += 1;
        self.first_failure.get_or_insert(why);
    }
}

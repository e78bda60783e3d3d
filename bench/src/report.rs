//! The figures of one run and the Markdown table they are reported in: every figure next
//! to its baseline, the ratio between them, and the target it is held to.

use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;

/// Rate and latency percentiles of one load.
#[derive(Clone, Copy, Debug, Default)]
pub struct Load {
    /// Requests (or notifications) per second.
    pub rate: f64,
    pub p50: Duration,
    pub p99: Duration,
    pub p999: Duration,
    pub count: u64,
    pub failed: u64,
}

impl Load {
    /// The rate, latency and failures of one load run.
    pub fn of(outcome: &crate::load::Outcome) -> Self {
        Load::new(outcome.rate(), &outcome.latency, outcome.failed)
    }

    pub fn new(rate: f64, latency: &Histogram<u64>, failed: u64) -> Self {
        let at = |q: f64| Duration::from_micros(latency.value_at_quantile(q));
        Load {
            rate,
            p50: at(0.50),
            p99: at(0.99),
            p999: at(0.999),
            count: latency.len(),
            failed,
        }
    }
}

/// CPU seconds each process spent per 10,000 notifications.
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuPer10k {
    pub ingest: f64,
    pub dispatcher: f64,
    pub redis: f64,
    /// The harness process: the load generator and the mocks (or the bare client and
    /// the mocks in a baseline run).
    pub harness: f64,
}

/// One end-to-end provider run: the fastest load and half of it.
#[derive(Clone, Copy, Debug, Default)]
pub struct EndToEnd {
    pub peak: Load,
    pub half: Load,
    pub cpu: CpuPer10k,
}

/// Resident memory of one process, in bytes.
#[derive(Clone, Copy, Debug, Default)]
pub struct Memory {
    pub idle: u64,
    pub peak: u64,
}

/// The Lambda figures.
#[derive(Clone, Debug, Default)]
pub struct Lambda {
    /// The binary measured and its size.
    pub binary: String,
    pub size: u64,
    /// Process start to the first poll of the runtime API, over the runs.
    pub ready_median: Duration,
    pub ready_max: Duration,
    pub runs: usize,
}

/// Everything one run measured.
#[derive(Clone, Debug, Default)]
pub struct Figures {
    pub machine: Vec<(String, String)>,
    pub settings: Vec<(String, String)>,
    pub hello_peak: Load,
    pub hello_half: Load,
    pub redis_xadd: f64,
    pub bare_apns: Load,
    pub bare_fcm: Load,
    /// CPU seconds per 10,000 requests of the runs that are not end to end, by run:
    /// ingest (or the hello-world server), Redis, and the harness, where measured.
    pub other_cpu: Vec<(String, [Option<f64>; 3])>,
    pub ingest_peak: Load,
    pub ingest_half: Load,
    pub sync_wait_peak: Load,
    pub sync_wait_half: Load,
    pub apns: EndToEnd,
    pub fcm: EndToEnd,
    pub ingest_memory: Memory,
    pub dispatcher_memory: Memory,
    pub lambda: Lambda,
}

const MB: f64 = 1024.0 * 1024.0;

fn ms(duration: Duration) -> String {
    format!("{:.2} ms", duration.as_secs_f64() * 1000.0)
}

fn per_s(rate: f64) -> String {
    format!("{rate:.0}/s")
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / MB)
}

fn ratio(value: f64, baseline: f64) -> String {
    if baseline > 0.0 {
        format!("{:.0} %", 100.0 * value / baseline)
    } else {
        "–".to_owned()
    }
}

fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "**not met**" }
}

impl Figures {
    /// The report: machine, settings, the table of targets, then every latency figure.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        out.push_str("### Machine\n\n");
        for (key, value) in &self.machine {
            let _ = writeln!(out, "- {key}: {value}");
        }
        out.push_str("\n### Settings\n\n");
        for (key, value) in &self.settings {
            let _ = writeln!(out, "- {key}: {value}");
        }
        out.push_str(&self.targets());
        out.push_str(&self.loads());
        out.push_str(&self.resources());
        out
    }

    fn targets(&self) -> String {
        let mut out = String::from(
            "\n### Targets\n\n| Figure | pushgate | Baseline | Ratio | Target | |\n|---|---|---|---|---|---|\n",
        );
        let mut row =
            |figure: &str, value: String, base: String, ratio: String, target: &str, ok| {
                let _ = writeln!(
                    out,
                    "| {figure} | {value} | {base} | {ratio} | {target} | {} |",
                    met(ok)
                );
            };
        let (ingest, hello) = (self.ingest_peak.rate, self.hello_peak.rate);
        row(
            "Ingest rate, sync-wait off",
            per_s(ingest),
            format!("{} (axum hello-world)", per_s(hello)),
            ratio(ingest, hello),
            "≥ 50 %",
            ingest >= 0.5 * hello,
        );
        row(
            "Ingest p99 at half of peak, sync-wait off",
            ms(self.ingest_half.p99),
            format!(
                "{} (hello-world at half of its peak)",
                ms(self.hello_half.p99)
            ),
            "–".to_owned(),
            "< 5 ms",
            self.ingest_half.p99 < Duration::from_millis(5),
        );
        for (name, run, bare) in [
            ("APNs", &self.apns, &self.bare_apns),
            ("FCM", &self.fcm, &self.bare_fcm),
        ] {
            row(
                &format!("End-to-end rate to mock {name}"),
                per_s(run.peak.rate),
                format!("{} (bare HTTP/2 client)", per_s(bare.rate)),
                ratio(run.peak.rate, bare.rate),
                "≥ 50 %",
                run.peak.rate >= 0.5 * bare.rate,
            );
            row(
                &format!("End-to-end p99 at half of peak, {name}"),
                ms(run.half.p99),
                format!("{} (bare client p99 at its peak)", ms(bare.p99)),
                "–".to_owned(),
                "< 20 ms",
                run.half.p99 < Duration::from_millis(20),
            );
        }
        for (name, memory, idle_mb, peak_mb) in [
            ("ingest", self.ingest_memory, 15.0, 100.0),
            ("dispatcher", self.dispatcher_memory, 25.0, 100.0),
        ] {
            row(
                &format!("Idle memory, {name}"),
                mb(memory.idle),
                "–".to_owned(),
                "–".to_owned(),
                &format!("< {idle_mb} MB"),
                (memory.idle as f64) < idle_mb * MB,
            );
            row(
                &format!("Peak memory, {name}"),
                mb(memory.peak),
                "–".to_owned(),
                "–".to_owned(),
                &format!("< {peak_mb} MB"),
                (memory.peak as f64) < peak_mb * MB,
            );
        }
        row(
            "Lambda binary size",
            mb(self.lambda.size),
            self.lambda.binary.clone(),
            "–".to_owned(),
            "< 15 MB",
            (self.lambda.size as f64) < 15.0 * MB,
        );
        row(
            "Lambda start to ready (median)",
            ms(self.lambda.ready_median),
            format!(
                "max {} over {} starts",
                ms(self.lambda.ready_max),
                self.lambda.runs
            ),
            "–".to_owned(),
            "< 30 ms",
            self.lambda.ready_median < Duration::from_millis(30),
        );
        out
    }

    fn loads(&self) -> String {
        let mut out = String::from(
            "\n### Rates and latency\n\n| Load | Rate | p50 | p99 | p99.9 | Measured | Failed | vs. baseline |\n|---|---|---|---|---|---|---|---|\n",
        );
        let mut row = |name: &str, load: &Load, base: Option<f64>| {
            let _ = writeln!(
                out,
                "| {name} | {} | {} | {} | {} | {} | {} | {} |",
                per_s(load.rate),
                ms(load.p50),
                ms(load.p99),
                ms(load.p999),
                load.count,
                load.failed,
                base.map_or("baseline".to_owned(), |base| ratio(load.rate, base)),
            );
        };
        let hello = self.hello_peak.rate;
        row("axum hello-world, peak", &self.hello_peak, None);
        row("axum hello-world, half of peak", &self.hello_half, None);
        row(
            "ingest v3 alert, sync-wait off, peak",
            &self.ingest_peak,
            Some(hello),
        );
        row(
            "ingest v3 alert, sync-wait off, half of peak",
            &self.ingest_half,
            Some(hello),
        );
        row(
            "ingest v3 alert, sync-wait on, peak",
            &self.sync_wait_peak,
            Some(hello),
        );
        row(
            "ingest v3 alert, sync-wait on, half of peak",
            &self.sync_wait_half,
            Some(hello),
        );
        row("bare HTTP/2 client → mock APNs", &self.bare_apns, None);
        row("bare HTTP/2 client → mock FCM", &self.bare_fcm, None);
        row(
            "end to end → mock APNs, peak",
            &self.apns.peak,
            Some(self.bare_apns.rate),
        );
        row(
            "end to end → mock APNs, half of peak",
            &self.apns.half,
            Some(self.bare_apns.rate),
        );
        row(
            "end to end → mock FCM, peak",
            &self.fcm.peak,
            Some(self.bare_fcm.rate),
        );
        row(
            "end to end → mock FCM, half of peak",
            &self.fcm.half,
            Some(self.bare_fcm.rate),
        );
        let _ = writeln!(
            out,
            "\n`redis-benchmark` `XADD` (the queue ceiling): {} — ingest at peak is {} of it.",
            per_s(self.redis_xadd),
            ratio(self.ingest_peak.rate, self.redis_xadd)
        );
        out.push_str(
            "\nIngest latency is request to answer; end-to-end latency is request start to the \
             mock reading the provider request. Half-of-peak loads are open loops (a fixed \
             schedule, latency counted from the scheduled start).\n",
        );
        out
    }

    fn resources(&self) -> String {
        let mut out = String::from(
            "\n### CPU seconds per 10,000 notifications (at peak)\n\n| Run | ingest | dispatcher | redis | harness |\n|---|---|---|---|---|\n",
        );
        for (name, run) in [
            ("end to end, APNs", &self.apns),
            ("end to end, FCM", &self.fcm),
        ] {
            let _ = writeln!(
                out,
                "| {name} | {:.2} s | {:.2} s | {:.2} s | {:.2} s |",
                run.cpu.ingest, run.cpu.dispatcher, run.cpu.redis, run.cpu.harness
            );
        }
        let cell = |value: Option<f64>| value.map_or("–".to_owned(), |v| format!("{v:.2} s"));
        for (name, [server, redis, harness]) in &self.other_cpu {
            let _ = writeln!(
                out,
                "| {name} | {} | – | {} | {} |",
                cell(*server),
                cell(*redis),
                cell(*harness)
            );
        }
        out.push_str(
            "\nThe harness column is this harness's own process: the HTTP/1.1 load generator \
             (and the mocks, which take no sends in the hello-world and solo ingest runs), \
             or the bare HTTP/2 client and the mock. The hello-world server's CPU is in the \
             ingest column.\n",
        );
        out
    }
}

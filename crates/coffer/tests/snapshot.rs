//! Snapshots end to end: the real `coffer` binary on its durable storage, the real `bao` CLI's
//! `operator raft snapshot save|restore` (which checks the archive it receives) and Coffer's own
//! `operator snapshot` commands; restores over later writes, into fresh servers of the file and
//! PostgreSQL backends with other keys (forced, then unsealed with the snapshot's keys), and bad
//! input refused without touching the storage.
mod common;
use common::*;
use std::path::Path;

fn ok(bin: &str, addr: &str, token: &str, args: &[&str]) -> String {
    let o = cli(bin, addr, Some(token), args);
    assert!(o.status.success(), "{bin} {args:?}: {}", out(&o));
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn kv_value(bao: &str, addr: &str, token: &str, path: &str) -> Option<String> {
    let o = cli(bao, addr, Some(token), &["kv", "get", "-field=v", path]);
    o.status.success().then(|| String::from_utf8_lossy(&o.stdout).trim().to_string())
}

fn sealed(addr: &str) -> bool {
    let (_, body) = http(addr, "GET", "/v1/sys/seal-status", &[], b"");
    json(&body)["sealed"].as_bool().unwrap()
}

fn pg_config(dir: &Path, url: &str) -> std::path::PathBuf {
    let n = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let config = dir.join("pg.hcl");
    std::fs::write(
        &config,
        format!(
            "storage \"postgresql\" {{\n  connection_url = \"{url}\"\n  table = \"t_snap_{}_{}\"\n}}\n\
             listener \"tcp\" {{\n  address = \"127.0.0.1:0\"\n  tls_disable = true\n}}\ndisable_mlock = true\n",
            std::process::id(),
            n % 1_000_000_000
        ),
    )
    .unwrap();
    config
}

#[test]
fn snapshots_restore_over_later_writes_and_into_fresh_servers_of_both_backends() {
    let Some(bao) = bao_path() else { return };
    let coffer = coffer_bin();
    let work = tempfile::tempdir().unwrap();
    let snap = work.path().join("a.snap");
    let snap_s = snap.to_str().unwrap();

    // Server A, durable: data, a policy and a token that must all come back.
    let a_dir = work.path().join("a");
    std::fs::create_dir_all(&a_dir).unwrap();
    let a = Server::start_file(&a_dir);
    let (a_keys, a_root) = init_unseal(&a.addr);
    ok(&bao, &a.addr, &a_root, &["secrets", "enable", "-path=secret", "-version=2", "kv"]);
    ok(&bao, &a.addr, &a_root, &["kv", "put", "secret/a", "v=1"]);
    let policy = work.path().join("reader.hcl");
    std::fs::write(&policy, "path \"secret/*\" { capabilities = [\"read\"] }\n").unwrap();
    ok(&bao, &a.addr, &a_root, &["policy", "write", "reader", policy.to_str().unwrap()]);
    let reader = ok(&bao, &a.addr, &a_root, &["token", "create", "-policy=reader", "-field=token"]);

    // bao checks the archive it receives (gzip, tar, a non-empty SHA256SUMS.sealed): rc 0.
    ok(&bao, &a.addr, &a_root, &["operator", "raft", "snapshot", "save", snap_s]);
    let listed = std::process::Command::new("tar").arg("tzf").arg(&snap).output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&listed.stdout).lines().collect::<Vec<_>>(),
        ["meta.json", "state.bin", "SHA256SUMS", "SHA256SUMS.sealed"]
    );
    let bytes = std::fs::read(&snap).unwrap();
    assert!(!bytes.windows(5).any(|w| w == b"v\":\"1"), "the snapshot holds only ciphertext");

    // Later writes, then a restore of the same server's snapshot: back to the snapshot, and the
    // server keeps serving (no unseal needed), the old token working again.
    ok(&bao, &a.addr, &a_root, &["kv", "put", "secret/a", "v=2"]);
    ok(&bao, &a.addr, &a_root, &["kv", "put", "secret/b", "v=later"]);
    ok(&bao, &a.addr, &a_root, &["operator", "raft", "snapshot", "restore", snap_s]);
    assert!(!sealed(&a.addr));
    assert_eq!(kv_value(&bao, &a.addr, &a_root, "secret/a").as_deref(), Some("1"));
    assert_eq!(kv_value(&bao, &a.addr, &a_root, "secret/b"), None, "written after the snapshot: gone");
    ok(&bao, &a.addr, &reader, &["token", "lookup"]);
    // Coffer's own spelling saves the same way.
    let snap2 = work.path().join("a2.snap");
    ok(coffer, &a.addr, &a_root, &["operator", "snapshot", "save", snap2.to_str().unwrap()]);
    assert!(std::fs::metadata(&snap2).unwrap().len() > 100);

    // Bad input: refused with 400 and nothing changed.
    let mut damaged = bytes.clone();
    let mid = damaged.len() / 2;
    damaged[mid] ^= 0x55;
    let t = [("X-Vault-Token", a_root.as_str())];
    for (body, words) in [
        (damaged.clone(), "cannot restore"),
        (b"not a snapshot at all".to_vec(), "not a Coffer snapshot"),
        (br#"{"json": true}"#.to_vec(), "must be a snapshot file"),
    ] {
        let (st, resp) = http(&a.addr, "POST", "/v1/sys/storage/raft/snapshot", &t, &body);
        assert_eq!(st, 400, "{resp}");
        assert!(resp.contains(words), "{words:?} in {resp}");
    }
    assert_eq!(kv_value(&bao, &a.addr, &a_root, "secret/a").as_deref(), Some("1"));
    // Root-protected: a token without sudo is refused.
    let (st, _) = http(&a.addr, "GET", "/v1/sys/storage/raft/snapshot", &[("X-Vault-Token", reader.as_str())], b"");
    assert_eq!(st, 403);

    // Server B, fresh, other keys: refused unless forced; forced, it seals and opens with A's
    // keys and serves A's data to A's root token.
    let b_dir = work.path().join("b");
    std::fs::create_dir_all(&b_dir).unwrap();
    let b = Server::start_file(&b_dir);
    let (_, b_root) = init_unseal(&b.addr);
    let o = cli(&bao, &b.addr, Some(&b_root), &["operator", "raft", "snapshot", "restore", snap_s]);
    assert!(!o.status.success(), "other keys need -force: {}", out(&o));
    ok(coffer, &b.addr, &b_root, &["operator", "raft", "snapshot", "restore", "-force", snap_s]);
    assert!(sealed(&b.addr), "a forced restore with other keys seals");
    let (st, _) = http(&b.addr, "GET", "/v1/sys/storage/raft/snapshot", &[("X-Vault-Token", a_root.as_str())], b"");
    assert_eq!(st, 503, "a sealed server gives no snapshot");
    unseal(&b.addr, &a_keys[..3]);
    assert_eq!(kv_value(&bao, &b.addr, &a_root, "secret/a").as_deref(), Some("1"));
    ok(&bao, &b.addr, &reader, &["token", "lookup"]);

    // Server C, fresh, on PostgreSQL: the file backend's snapshot restores there too.
    let Some(url) = pg_url() else { return };
    let c = Server::start_with_config(&pg_config(work.path(), &url));
    let (_, c_root) = init_unseal(&c.addr);
    ok(&bao, &c.addr, &c_root, &["operator", "raft", "snapshot", "restore", "-force", snap_s]);
    assert!(sealed(&c.addr));
    unseal(&c.addr, &a_keys[..3]);
    assert_eq!(kv_value(&bao, &c.addr, &a_root, "secret/a").as_deref(), Some("1"));
    // And back: a PostgreSQL snapshot restores into a file server.
    let from_pg = work.path().join("c.snap");
    ok(&bao, &c.addr, &a_root, &["kv", "put", "secret/a", "v=from-pg"]);
    ok(&bao, &c.addr, &a_root, &["operator", "raft", "snapshot", "save", from_pg.to_str().unwrap()]);
    ok(&bao, &a.addr, &a_root, &["operator", "raft", "snapshot", "restore", from_pg.to_str().unwrap()]);
    assert_eq!(kv_value(&bao, &a.addr, &a_root, "secret/a").as_deref(), Some("from-pg"), "same keys: no -force needed");
}

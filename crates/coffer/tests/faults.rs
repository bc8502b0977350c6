//! Storage faults under write load, with the real `coffer` binary: PostgreSQL stopped hard
//! (`pg_ctl stop -m immediate`, as a crash) and started again, and the file backend's disk
//! filling up (a small tmpfs). In both, every acknowledged write is there afterwards, writes
//! during the fault fail with a 5xx and a Vault-style error, the server recovers without a
//! restart once the fault is gone, and a snapshot taken afterwards restores into a fresh server
//! with every acknowledged write.
//!
//! The PostgreSQL test runs its own cluster (initdb as the `postgres` user, as scripts/test
//! does) so that restarting it disturbs no other test; the disk test mounts a tmpfs and needs
//! root. Each is skipped with a notice where it cannot run (and the PostgreSQL one fails instead
//! when COFFER_TEST_PG_URL is set, i.e. under scripts/test).
mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The faults run one at a time: each starts servers and a write load on a 2-core machine.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// What one write got back.
#[derive(Debug, Clone)]
struct Outcome {
    key: String,
    value: String,
    status: u16,
    body: String,
}

/// Writes `kv/w<n>` one after another until `stop`, recording each answer.
fn write_load(addr: String, token: String, stop: Arc<AtomicBool>, log: Arc<Mutex<Vec<Outcome>>>, pad: usize) {
    let filler = "x".repeat(pad);
    let mut n = 0u64;
    while !stop.load(Ordering::SeqCst) {
        n += 1;
        let key = format!("w{n}");
        let value = format!("{n}-{filler}");
        let body = format!("{{\"v\":\"{value}\"}}");
        let (status, resp) =
            http(&addr, "PUT", &format!("/v1/kv/{key}"), &[("X-Vault-Token", &token)], body.as_bytes());
        log.lock().unwrap().push(Outcome { key, value, status, body: resp });
        if !(200..300).contains(&status) {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn acked(log: &[Outcome]) -> Vec<&Outcome> {
    log.iter().filter(|o| (200..300).contains(&o.status)).collect()
}

/// Every acknowledged write, read back through `addr`: the keys missing or changed.
fn lost(addr: &str, token: &str, log: &[Outcome]) -> Vec<String> {
    acked(log)
        .into_iter()
        .filter(|o| {
            let (st, body) = http(addr, "GET", &format!("/v1/kv/{}", o.key), &[("X-Vault-Token", token)], b"");
            st != 200 || json(&body)["data"]["v"] != o.value.as_str()
        })
        .map(|o| o.key.clone())
        .collect()
}

/// The failed writes: each must be a 5xx with `{"errors":[…]}` naming the cause. Returns the
/// distinct error texts.
fn check_failures(log: &[Outcome]) -> Vec<String> {
    let mut texts = std::collections::BTreeSet::new();
    for o in log.iter().filter(|o| !(200..300).contains(&o.status)) {
        assert!((500..600).contains(&o.status), "a write during the fault got {} {}", o.status, o.body);
        let v = json(&o.body);
        let errors = v["errors"].as_array().unwrap_or_else(|| panic!("no errors list: {}", o.body));
        assert!(errors.iter().any(|e| e.as_str().is_some_and(|s| !s.is_empty())), "empty error: {}", o.body);
        texts.insert(errors.iter().filter_map(|e| e.as_str()).collect::<Vec<_>>().join("; "));
    }
    texts.into_iter().collect()
}

/// Saves a snapshot of `addr` with the real bao CLI, restores it into a fresh file server
/// (forced, then unsealed with the source's keys) and returns the acknowledged writes missing
/// there.
fn snapshot_restore_check(
    bao: &str,
    work: &Path,
    addr: &str,
    root: &str,
    keys: &[String],
    log: &[Outcome],
) -> Vec<String> {
    let snap = work.join("after-fault.snap");
    let o = cli(bao, addr, Some(root), &["operator", "raft", "snapshot", "save", snap.to_str().unwrap()]);
    assert!(o.status.success(), "snapshot save: {}", out(&o));
    let dir = work.join("restored");
    std::fs::create_dir_all(&dir).unwrap();
    let fresh = Server::start_file(&dir);
    let (_, fresh_root) = init_unseal(&fresh.addr);
    let o = cli(
        bao,
        &fresh.addr,
        Some(&fresh_root),
        &["operator", "raft", "snapshot", "restore", "-force", snap.to_str().unwrap()],
    );
    assert!(o.status.success(), "snapshot restore: {}", out(&o));
    unseal(&fresh.addr, &keys[..3]);
    lost(&fresh.addr, root, log)
}

/// A PostgreSQL cluster of this test's own, run as the `postgres` user.
struct OwnPg {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
}

impl OwnPg {
    fn as_pg(&self, tool: &str, args: &[&str]) -> std::process::Output {
        Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join(tool))
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("runuser {tool}: {e}"))
    }

    fn start(&self) {
        let data = self.dir.join("data");
        let opts = format!("-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=on", self.port, self.dir.display());
        let o = self.as_pg(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-l",
                self.dir.join("server.log").to_str().unwrap(),
                "-w",
                "-t",
                "60",
                "-o",
                &opts,
                "start",
            ],
        );
        assert!(o.status.success(), "pg_ctl start: {}", out(&o));
    }

    /// As a crash: no checkpoint, the server's processes killed; recovery replays the WAL.
    fn stop_immediate(&self) {
        let data = self.dir.join("data");
        let o = self.as_pg("pg_ctl", &["-D", data.to_str().unwrap(), "-m", "immediate", "-w", "stop"]);
        assert!(o.status.success(), "pg_ctl stop: {}", out(&o));
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres?sslmode=disable", self.port)
    }
}

impl Drop for OwnPg {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        let _ = self.as_pg("pg_ctl", &["-D", data.to_str().unwrap(), "-m", "immediate", "stop"]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn own_pg() -> Option<OwnPg> {
    let required = std::env::var("COFFER_TEST_PG_URL").is_ok_and(|v| !v.is_empty());
    let skip = |why: &str| {
        assert!(!required, "the PostgreSQL fault test cannot run: {why}");
        eprintln!("SKIPPED: {why}");
        None
    };
    let mut bins: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path().join("bin")).filter(|b| b.join("initdb").exists()).collect())
        .unwrap_or_default();
    bins.sort();
    let Some(bin) = bins.pop() else { return skip("no PostgreSQL server binaries (Debian package postgresql)") };
    if !Command::new("id").arg("postgres").output().is_ok_and(|o| o.status.success()) {
        return skip("no postgres user");
    }
    let dir = std::env::temp_dir().join(format!("coffer-fault-pg-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let st = Command::new("chown").args(["postgres", dir.to_str().unwrap()]).status().unwrap();
    assert!(st.success(), "chown postgres {}", dir.display());
    let pg = OwnPg { bin, dir, port: free_port() };
    let data = pg.dir.join("data");
    let o = pg.as_pg(
        "initdb",
        &["-D", data.to_str().unwrap(), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"],
    );
    assert!(o.status.success(), "initdb: {}", out(&o));
    pg.start();
    Some(pg)
}

fn start_pg_server(dir: &Path, url: &str) -> Server {
    let config = dir.join("pg.hcl");
    std::fs::write(
        &config,
        format!(
            "storage \"postgresql\" {{\n  connection_url = \"{url}\"\n}}\n\
             listener \"tcp\" {{\n  address = \"127.0.0.1:0\"\n  tls_disable = true\n}}\ndisable_mlock = true\n"
        ),
    )
    .unwrap();
    Server::start_with_config(&config)
}

fn enable_kv(addr: &str, root: &str) {
    let (st, body) = http(addr, "POST", "/v1/sys/mounts/kv", &[("X-Vault-Token", root)], br#"{"type":"kv"}"#);
    assert!(st == 204 || st == 200, "{body}");
}

/// Waits until a write through `addr` is acknowledged again; returns how long it took.
fn wait_for_writes(addr: &str, root: &str, within: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let (st, body) = http(addr, "PUT", "/v1/kv/probe", &[("X-Vault-Token", root)], br#"{"v":"p"}"#);
        if (200..300).contains(&st) {
            return started.elapsed();
        }
        assert!(started.elapsed() < within, "writes did not recover within {within:?}: {st} {body}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn postgresql_restarted_under_write_load_loses_no_acknowledged_write_and_recovers_without_a_restart() {
    let _serial = serial();
    let Some(bao) = bao_path() else { return };
    let Some(pg) = own_pg() else { return };
    let work = tempfile::tempdir().unwrap();
    let server = start_pg_server(work.path(), &pg.url());
    let (keys, root) = init_unseal(&server.addr);
    enable_kv(&server.addr, &root);

    let stop = Arc::new(AtomicBool::new(false));
    let log = Arc::new(Mutex::new(Vec::new()));
    let load = {
        let (addr, root, stop, log) = (server.addr.clone(), root.clone(), stop.clone(), log.clone());
        std::thread::spawn(move || write_load(addr, root, stop, log, 64))
    };
    std::thread::sleep(Duration::from_secs(2));
    let before = acked(&log.lock().unwrap()).len();
    assert!(before > 0, "no write acknowledged before the fault");
    pg.stop_immediate();
    let stopped_at = Instant::now();
    std::thread::sleep(Duration::from_secs(3));
    let during: Vec<Outcome> = log.lock().unwrap().clone();
    pg.start();
    let recovered = wait_for_writes(&server.addr, &root, Duration::from_secs(60));
    eprintln!(
        "MEASURED: writes accepted again {recovered:?} after PostgreSQL was back ({:?} after the stop)",
        stopped_at.elapsed()
    );
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::SeqCst);
    load.join().unwrap();
    let log = log.lock().unwrap().clone();

    let failed_during = during.iter().filter(|o| !(200..300).contains(&o.status)).count();
    assert!(failed_during > 0, "no write failed while PostgreSQL was down: the test did not test the outage");
    let texts = check_failures(&log);
    eprintln!(
        "MEASURED: {} writes acknowledged, {} failed; errors seen: {texts:?}",
        acked(&log).len(),
        log.len() - acked(&log).len()
    );
    assert!(acked(&log).len() > before, "no write acknowledged after the restart");
    let missing = lost(&server.addr, &root, &log);
    assert!(missing.is_empty(), "acknowledged writes lost: {missing:?}");
    assert!(!server.log_text().contains("panicked"), "{}", server.log_text());

    let missing = snapshot_restore_check(&bao, work.path(), &server.addr, &root, &keys, &log);
    assert!(missing.is_empty(), "acknowledged writes missing from the restored snapshot: {missing:?}");
}

/// A tmpfs of its own, unmounted on drop.
struct Tmpfs {
    dir: PathBuf,
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

/// Fills the filesystem at `dir` with `filler` until it is full, then frees `leave` bytes.
fn fill(filler: &Path, leave: u64) {
    use std::io::Write;
    let mut f = std::fs::File::create(filler).unwrap();
    let chunk = vec![0u8; 64 << 10];
    loop {
        if f.write_all(&chunk).is_err() || f.sync_all().is_err() {
            break;
        }
    }
    let len = std::fs::metadata(filler).unwrap().len();
    f.set_len(len.saturating_sub(leave)).unwrap();
    f.sync_all().unwrap();
}

#[test]
fn a_full_disk_fails_writes_clearly_loses_no_acknowledged_write_and_recovers_when_space_frees() {
    let _serial = serial();
    let Some(bao) = bao_path() else { return };
    let work = tempfile::tempdir().unwrap();
    let mnt = work.path().join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=24m", "tmpfs"])
        .arg(&mnt)
        .output()
        .is_ok_and(|o| o.status.success());
    if !mounted {
        eprintln!("SKIPPED: cannot mount a tmpfs here (needs root and CAP_SYS_ADMIN)");
        return;
    }
    let _tmpfs = Tmpfs { dir: mnt.clone() };
    let data = mnt.join("coffer");
    std::fs::create_dir_all(&data).unwrap();
    let config = work.path().join("file.hcl");
    std::fs::write(
        &config,
        format!(
            "storage \"file\" {{\n  path = \"{}\"\n}}\nlistener \"tcp\" {{\n  address = \"127.0.0.1:0\"\n  tls_disable = true\n}}\ndisable_mlock = true\n",
            data.display()
        ),
    )
    .unwrap();
    let server = Server::start_with_config(&config);
    let (keys, root) = init_unseal(&server.addr);
    enable_kv(&server.addr, &root);

    // Almost full: a little room, then none.
    let filler = mnt.join("filler");
    fill(&filler, 1 << 20);
    let stop = Arc::new(AtomicBool::new(false));
    let log = Arc::new(Mutex::new(Vec::new()));
    let load = {
        let (addr, root, stop, log) = (server.addr.clone(), root.clone(), stop.clone(), log.clone());
        std::thread::spawn(move || write_load(addr, root, stop, log, 2048))
    };
    let started = Instant::now();
    loop {
        let failures = log.lock().unwrap().iter().filter(|o| !(200..300).contains(&o.status)).count();
        if failures >= 20 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the disk never filled: {} writes",
            log.lock().unwrap().len()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let full_acked = acked(&log.lock().unwrap()).len();
    std::fs::remove_file(&filler).unwrap();
    let recovered = wait_for_writes(&server.addr, &root, Duration::from_secs(30));
    eprintln!("MEASURED: writes accepted again {recovered:?} after space was freed");
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, Ordering::SeqCst);
    load.join().unwrap();
    let log = log.lock().unwrap().clone();
    let texts = check_failures(&log);
    eprintln!(
        "MEASURED: {} writes acknowledged ({full_acked} before space was freed), {} failed; errors seen: {texts:?}",
        acked(&log).len(),
        log.len() - acked(&log).len()
    );
    assert!(acked(&log).len() > full_acked, "no write acknowledged after space was freed");
    let missing = lost(&server.addr, &root, &log);
    assert!(missing.is_empty(), "acknowledged writes lost: {missing:?}");

    // And after a restart of the server, from what is on disk.
    let mut server = server;
    server.kill9();
    let server = Server::start_with_config(&config);
    unseal(&server.addr, &keys[..3]);
    let missing = lost(&server.addr, &root, &log);
    assert!(missing.is_empty(), "acknowledged writes lost after a restart: {missing:?}");
    assert!(!server.log_text().contains("panicked"), "{}", server.log_text());

    let missing = snapshot_restore_check(&bao, work.path(), &server.addr, &root, &keys, &log);
    assert!(missing.is_empty(), "acknowledged writes missing from the restored snapshot: {missing:?}");
}

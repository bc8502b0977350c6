//! Acknowledged writes survive `kill -9`: writers load the server, the process is killed
//! mid-stream, restarted and unsealed, and every write that got a 2xx is read back intact.
//! `COFFER_CRASH_CYCLES` sets the number of kill/restart cycles (CI: 1; bench/: 100).
mod common;
use common::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[test]
fn every_acknowledged_write_survives_kill_9() {
    let cycles: usize = std::env::var("COFFER_CRASH_CYCLES").ok().and_then(|v| v.parse().ok()).unwrap_or(1);
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start_file(dir.path());
    let addr = server.addr.clone();
    let (keys, root) = init_unseal(&addr);
    let auth = [("X-Vault-Token", root.as_str())];
    let (st, body) = http(&addr, "POST", "/v1/sys/mounts/kv", &auth, br#"{"type":"kv"}"#);
    assert_eq!(st, 204, "{body}");

    let acked: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let mut total_lost = 0usize;
    for cycle in 0..cycles {
        let stop = Arc::new(AtomicBool::new(false));
        let mut writers = Vec::new();
        for w in 0..8 {
            let (addr, root, stop, acked) = (addr.clone(), root.clone(), stop.clone(), acked.clone());
            writers.push(std::thread::spawn(move || {
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let key = format!("c{cycle}/w{w}/k{i}");
                    let val = format!("v-{cycle}-{w}-{i}");
                    let (st, _) = http(
                        &addr,
                        "PUT",
                        &format!("/v1/kv/{key}"),
                        &[("X-Vault-Token", &root)],
                        format!("{{\"value\":\"{val}\"}}").as_bytes(),
                    );
                    if st == 204 {
                        acked.lock().unwrap().push((key, val));
                    } else if st == 0 {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    i += 1;
                }
            }));
        }
        std::thread::sleep(Duration::from_millis(700));
        server.kill9();
        std::thread::sleep(Duration::from_millis(100));
        stop.store(true, Ordering::Relaxed);
        for w in writers {
            w.join().unwrap();
        }
        server = Server::start_with_config(&server.config);
        assert_eq!(server.addr, addr, "the restart comes back at the pinned address");
        unseal(&addr, &keys[..3]);
        // Each cycle checks its own writes; the end checks every cycle's again.
        let this_cycle: Vec<(String, String)> =
            acked.lock().unwrap().iter().filter(|(k, _)| k.starts_with(&format!("c{cycle}/"))).cloned().collect();
        let lost = count_lost(&addr, &root, &this_cycle);
        eprintln!("crash cycle {cycle}: {} acknowledged writes, {lost} lost", this_cycle.len());
        total_lost += lost;
        assert!(this_cycle.len() > 50, "the load produced too few writes to prove anything");
    }
    let all = acked.lock().unwrap().clone();
    let lost_at_end = count_lost(&addr, &root, &all);
    eprintln!("after {cycles} cycles: {} acknowledged writes, {lost_at_end} lost", all.len());
    assert_eq!(total_lost + lost_at_end, 0, "acknowledged writes were lost");
}

fn count_lost(addr: &str, root: &str, writes: &[(String, String)]) -> usize {
    let auth = [("X-Vault-Token", root)];
    writes
        .iter()
        .filter(|(k, v)| {
            let (st, body) = http(addr, "GET", &format!("/v1/kv/{k}"), &auth, b"");
            st != 200 || json(&body)["data"]["value"] != v.as_str()
        })
        .count()
}

//! The transit seal against a real OpenBao dev server and against a second Coffer: recovery
//! keys at init, auto-unseal after restart, and a transit server that is down (sealed, clear
//! message, unsealed in the background once it is back).

mod common;
mod seal_common;

use common::{bao_path, cli, http, init_unseal, json, out, unseal, Server};
use seal_common::*;
use std::time::{Duration, Instant};

#[test]
fn transit_seal_against_openbao_dev_auto_unseals_after_restart() {
    let Some(bao) = bao_path() else { return };
    let work = tempfile::tempdir().unwrap();
    let dev = bao_dev(&bao, work.path(), port(), "bao-root");
    transit_key(&dev.addr, "bao-root", "coffer-unseal");

    let dir = tempfile::tempdir().unwrap();
    let p = port();
    let config = write_config(dir.path(), p, &transit_stanza(&dev.addr, "bao-root", "coffer-unseal"));
    let mut s = start(&config, p, &[]);
    let st = seal_status(&s.addr);
    assert_eq!((st["type"].as_str(), st["recovery_seal"].as_bool()), (Some("transit"), Some(true)), "{st}");

    let o =
        cli(&bao, &s.addr, None, &["operator", "init", "-recovery-shares=1", "-recovery-threshold=1", "-format=json"]);
    assert!(o.status.success(), "bao operator init: {}", out(&o));
    let v = json(&String::from_utf8_lossy(&o.stdout));
    assert_eq!(v["recovery_keys_b64"].as_array().map(Vec::len), Some(1), "{v}");
    let root = v["root_token"].as_str().unwrap().to_string();
    wait_sealed(&s, false, Duration::from_secs(5));
    write_proof(&s.addr, &root, "wrapped by OpenBao transit");

    s.kill9();
    let s = start(&config, p, &[]);
    let took = wait_sealed(&s, false, Duration::from_secs(10));
    eprintln!("auto-unseal through OpenBao transit after start: {took:?}");
    assert_eq!(read_proof(&s.addr, &root), "wrapped by OpenBao transit");
    let status = out(&cli(&bao, &s.addr, None, &["status"]));
    assert!(status.contains("transit") && status.contains("Recovery Seal Type"), "bao status: {status}");
    assert!(!s.log_text().contains("bao-root"), "the transit token appears in the log");

    // The transit server gone, a restart stays sealed and says why.
    drop(dev);
    drop(s);
    let s = start(&config, p, &[]);
    let err = wait_seal_error(&s, Duration::from_secs(10));
    assert!(err.contains("unreachable") && err.contains(&format!("127.0.0.1:{}", p_of(&err))), "clear error: {err}");
    assert_eq!(seal_status(&s.addr)["sealed"], true);
    let (code, health) = http(&s.addr, "GET", "/v1/sys/health", &[], b"");
    assert_eq!(code, 503, "{health}");
    assert!(json(&health)["seal_error"].as_str().is_some_and(|e| e.contains("unreachable")), "{health}");
}

/// The port named in an error (so the assertion checks the address is the transit server's).
fn p_of(err: &str) -> String {
    err.split("127.0.0.1:").nth(1).map(|r| r.chars().take_while(char::is_ascii_digit).collect()).unwrap_or_default()
}

/// A second Coffer with file storage (so it can be restarted), Shamir-sealed, with a transit key.
fn transit_coffer(dir: &std::path::Path) -> (Server, Vec<String>, String) {
    let s = Server::start_file(dir);
    let (keys, root) = init_unseal(&s.addr);
    transit_key(&s.addr, &root, "coffer-unseal");
    (s, keys, root)
}

#[test]
fn transit_seal_against_a_second_coffer_survives_the_transit_server_going_away() {
    let tdir = tempfile::tempdir().unwrap();
    let (mut transit, tkeys, troot) = transit_coffer(tdir.path());

    let dir = tempfile::tempdir().unwrap();
    let p = port();
    let config = write_config(dir.path(), p, &transit_stanza(&transit.addr, &troot, "coffer-unseal"));
    let mut s = start(&config, p, &[]);
    let (recovery, root) = init_recovery(&s.addr, 3, 2);
    assert_eq!(recovery.len(), 3);
    wait_sealed(&s, false, Duration::from_secs(5));
    write_proof(&s.addr, &root, "wrapped by Coffer transit");

    // Restart with the transit server up: unseals by itself.
    s.kill9();
    let mut s = start(&config, p, &[]);
    let took = wait_sealed(&s, false, Duration::from_secs(10));
    eprintln!("auto-unseal through Coffer transit after start: {took:?}");
    assert_eq!(read_proof(&s.addr, &root), "wrapped by Coffer transit");

    // The transit server goes away; our server restarts sealed with a clear message.
    transit.kill9();
    s.kill9();
    let s = start(&config, p, &[]);
    let err = wait_seal_error(&s, Duration::from_secs(10));
    assert!(
        err.contains("transit") && err.contains("unreachable") && err.contains(&transit.addr),
        "clear error: {err}"
    );
    assert_eq!(seal_status(&s.addr)["sealed"], true);
    let (code, _) = http(&s.addr, "GET", "/v1/kv/proof", &[("X-Vault-Token", &root)], b"");
    assert_eq!(code, 503, "sealed: nothing served");

    // The transit server comes back sealed: still sealed, the message says so (503 from it).
    let transit = Server::start_with_config(&transit.config, &transit.addr);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(seal_status(&s.addr)["sealed"], true);
    // Once the transit server is unsealed, ours unseals in the background with no operator.
    let back = Instant::now();
    unseal(&transit.addr, &tkeys[..3]);
    let took = wait_sealed(&s, false, Duration::from_secs(20));
    eprintln!("unsealed {took:?} after the transit server returned (retry interval ≤ 5 s; {:?} since)", back.elapsed());
    assert_eq!(read_proof(&s.addr, &root), "wrapped by Coffer transit");
    assert!(seal_status(&s.addr).get("seal_error").is_none(), "no error left once unsealed");
    assert!(s.log_text().contains("retries"), "the log says it retries:\n{}", s.log_text());
}

#[test]
fn coffer_cli_initialises_a_transit_sealed_server_with_recovery_keys() {
    let transit = Server::start_dev("dev-root");
    transit_key(&transit.addr, "dev-root", "coffer-unseal");
    let dir = tempfile::tempdir().unwrap();
    let p = port();
    let config = write_config(dir.path(), p, &transit_stanza(&transit.addr, "dev-root", "coffer-unseal"));
    let s = start(&config, p, &[]);
    let bin = common::coffer_bin();
    let o = cli(bin, &s.addr, None, &["operator", "init", "-recovery-shares=2", "-recovery-threshold=2"]);
    let text = out(&o);
    assert!(o.status.success(), "coffer operator init: {text}");
    assert!(text.contains("Recovery Key 1:") && text.contains("Recovery Key 2:"), "{text}");
    assert!(!text.contains("Unseal Key"), "{text}");
    wait_sealed(&s, false, Duration::from_secs(5));
    let o = cli(bin, &s.addr, None, &["status"]);
    let text = out(&o);
    assert!(text.contains("Recovery Seal Type") && text.contains("transit"), "coffer status: {text}");
}

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
    let dev = bao_dev(&bao, work.path(), "bao-root");
    transit_key(&dev.addr, "bao-root", "coffer-unseal");

    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &transit_stanza(&dev.addr, "bao-root", "coffer-unseal"));
    let mut s = start(&config, &[]);
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
    let s = start(&config, &[]);
    let took = wait_sealed(&s, false, Duration::from_secs(10));
    eprintln!("auto-unseal through OpenBao transit after start: {took:?}");
    assert_eq!(read_proof(&s.addr, &root), "wrapped by OpenBao transit");
    let status = out(&cli(&bao, &s.addr, None, &["status"]));
    assert!(status.contains("transit") && status.contains("Recovery Seal Type"), "bao status: {status}");
    assert!(!s.log_text().contains("bao-root"), "the transit token appears in the log");

    // The transit server gone, a restart stays sealed and says why.
    let dev_addr = dev.addr.clone();
    drop(dev);
    drop(s);
    let s = start(&config, &[]);
    let err = wait_seal_error(&s, Duration::from_secs(10));
    assert!(err.contains("unreachable") && err.contains(&dev_addr), "clear error names the transit server: {err}");
    assert_eq!(seal_status(&s.addr)["sealed"], true);
    let (code, health) = http(&s.addr, "GET", "/v1/sys/health", &[], b"");
    assert_eq!(code, 503, "{health}");
    assert!(json(&health)["seal_error"].as_str().is_some_and(|e| e.contains("unreachable")), "{health}");
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
    let config = write_config(dir.path(), &transit_stanza(&transit.addr, &troot, "coffer-unseal"));
    let mut s = start(&config, &[]);
    let (recovery, root) = init_recovery(&s.addr, 3, 2);
    assert_eq!(recovery.len(), 3);
    wait_sealed(&s, false, Duration::from_secs(5));
    write_proof(&s.addr, &root, "wrapped by Coffer transit");

    // Restart with the transit server up: unseals by itself.
    s.kill9();
    let mut s = start(&config, &[]);
    let took = wait_sealed(&s, false, Duration::from_secs(10));
    eprintln!("auto-unseal through Coffer transit after start: {took:?}");
    assert_eq!(read_proof(&s.addr, &root), "wrapped by Coffer transit");

    // The transit server goes away; our server restarts sealed with a clear message.
    transit.kill9();
    s.kill9();
    let s = start(&config, &[]);
    let err = wait_seal_error(&s, Duration::from_secs(10));
    assert!(
        err.contains("transit") && err.contains("unreachable") && err.contains(&transit.addr),
        "clear error: {err}"
    );
    assert_eq!(seal_status(&s.addr)["sealed"], true);
    let (code, _) = http(&s.addr, "GET", "/v1/kv/proof", &[("X-Vault-Token", &root)], b"");
    assert_eq!(code, 503, "sealed: nothing served");

    // The transit server comes back sealed: still sealed, the message says so (503 from it).
    let transit = Server::start_with_config(&transit.config);
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
    let config = write_config(dir.path(), &transit_stanza(&transit.addr, "dev-root", "coffer-unseal"));
    let s = start(&config, &[]);
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

#[test]
fn transit_seal_over_tls_trusts_tls_ca_cert_and_refuses_an_unknown_ca() {
    let Some(bao) = bao_path() else { return };
    let work = tempfile::tempdir().unwrap();
    let (ca, cert, key) = ca_and_leaf(work.path());
    // The transit server: a Coffer dev server on an HTTPS listener.
    let tcfg = work.path().join("transit.hcl");
    std::fs::write(
        &tcfg,
        format!(
            "listener \"tcp\" {{\n  address = \"127.0.0.1:0\"\n  tls_cert_file = \"{}\"\n  tls_key_file = \"{}\"\n}}\n",
            cert.display(),
            key.display()
        ),
    )
    .unwrap();
    let transit = common::Server::start_dev_logging_to(
        "tls-root",
        &[&format!("-config={}", tcfg.display())],
        &work.path().join("transit.log"),
    );
    // The dev listener (plain HTTP) comes first; the configured HTTPS one after it.
    let tport = transit.addrs[1].rsplit(':').next().unwrap().to_string();
    let bao_tls = |args: &[&str]| {
        std::process::Command::new(&bao)
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", work.path())
            .env("BAO_ADDR", format!("https://127.0.0.1:{tport}"))
            .env("BAO_CACERT", &ca)
            .env("BAO_TOKEN", "tls-root")
            .output()
            .unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    while !bao_tls(&["secrets", "enable", "transit"]).status.success() {
        assert!(Instant::now() < deadline, "the TLS transit server did not come up");
        std::thread::sleep(Duration::from_millis(100));
    }
    let o = bao_tls(&["write", "-f", "transit/keys/coffer-unseal"]);
    assert!(o.status.success(), "{}", out(&o));

    let https_stanza = |ca: Option<&std::path::Path>| {
        let mut st = format!(
            "seal \"transit\" {{\n  address = \"https://127.0.0.1:{tport}\"\n  token = \"tls-root\"\n  key_name = \"coffer-unseal\"\n  mount_path = \"transit/\"\n"
        );
        if let Some(ca) = ca {
            st.push_str(&format!("  tls_ca_cert = \"{}\"\n", ca.display()));
        }
        st.push_str("}\n");
        st
    };
    // Without the CA the certificate is refused, and init says why.
    let dir = tempfile::tempdir().unwrap();
    let s = start(&write_config(dir.path(), &https_stanza(None)), &[]);
    let (code, body) = http(&s.addr, "PUT", "/v1/sys/init", &[], br#"{"recovery_shares":1,"recovery_threshold":1}"#);
    assert!(code >= 400 && body.to_lowercase().contains("certificate"), "{code} {body}");
    assert_eq!(seal_status(&s.addr)["initialized"], false);
    drop(s);

    // tls_skip_verify accepts the unknown CA (testing only).
    let dir = tempfile::tempdir().unwrap();
    let skip = https_stanza(None).replace("mount_path", "tls_skip_verify = \"true\"\n  mount_path");
    let s = start(&write_config(dir.path(), &skip), &[]);
    init_recovery(&s.addr, 1, 1);
    drop(s);

    // With tls_ca_cert it works, and survives a restart.
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &https_stanza(Some(&ca)));
    let mut s = start(&config, &[]);
    let (_, root) = init_recovery(&s.addr, 1, 1);
    write_proof(&s.addr, &root, "over TLS");
    s.kill9();
    let s = start(&config, &[]);
    wait_sealed(&s, false, Duration::from_secs(10));
    assert_eq!(read_proof(&s.addr, &root), "over TLS");
    drop(transit);
}

/// A test CA and a server certificate for 127.0.0.1 signed by it: (ca.pem, cert.pem, key.pem).
fn ca_and_leaf(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let p = |n: &str| dir.join(n);
    let run = |args: &[&str]| {
        let o = std::process::Command::new("openssl").args(args).current_dir(dir).output().expect("openssl");
        assert!(o.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    };
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
    let mut a = vec!["req", "-x509"];
    a.extend(ec);
    a.extend(["-days", "1", "-subj", "/CN=coffer test CA", "-keyout", "ca.key", "-out", "ca.pem"]);
    a.extend(["-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign"]);
    run(&a);
    let mut a = vec!["req"];
    a.extend(ec);
    a.extend(["-subj", "/CN=localhost", "-keyout", "key.pem", "-out", "leaf.csr"]);
    run(&a);
    std::fs::write(
        p("leaf.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "1",
        "-out",
        "cert.pem",
        "-extfile",
        "leaf.ext",
    ]);
    (p("ca.pem"), p("cert.pem"), p("key.pem"))
}

#[test]
fn transit_seal_renews_a_short_lived_token() {
    let Some(bao) = bao_path() else { return };
    let work = tempfile::tempdir().unwrap();
    let dev = bao_dev(&bao, work.path(), "bao-root");
    transit_key(&dev.addr, "bao-root", "coffer-unseal");
    let (c, body) = http(
        &dev.addr,
        "POST",
        "/v1/auth/token/create",
        &[("X-Vault-Token", "bao-root")],
        br#"{"ttl":"4s","policies":["root"],"renewable":true}"#,
    );
    assert_eq!(c, 200, "{body}");
    let token = json(&body)["auth"]["client_token"].as_str().unwrap().to_string();

    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &transit_stanza(&dev.addr, &token, "coffer-unseal"));
    let mut s = start(&config, &[]);
    let (_, root) = init_recovery(&s.addr, 1, 1);
    write_proof(&s.addr, &root, "token kept alive");
    // Well past the 4 s TTL: only renewal keeps the token valid.
    std::thread::sleep(Duration::from_secs(7));
    let (c, body) = http(&dev.addr, "GET", "/v1/auth/token/lookup-self", &[("X-Vault-Token", &token)], b"");
    assert_eq!(c, 200, "the transit seal's token expired: {body}");
    s.kill9();
    let s = start(&config, &[]);
    wait_sealed(&s, false, Duration::from_secs(10));
    assert_eq!(read_proof(&s.addr, &root), "token kept alive");
}

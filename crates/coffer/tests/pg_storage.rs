//! `storage "postgresql"` end to end: a real Coffer server on a real PostgreSQL, driven with the
//! real `bao` CLI; bad connection settings; the database going away under a running server.
//!
//! Needs `COFFER_TEST_PG_URL` (scripts/test starts PostgreSQL and sets it): without it these
//! tests print a notice and pass; with it set and the server unreachable they fail.
mod common;
#[path = "common/pg_proxy.rs"]
mod pg_proxy;
use common::*;
use pg_proxy::Proxy;
use std::path::Path;
use std::time::{Duration, Instant};

/// A table name no other test (or earlier run) uses.
fn unique_table(tag: &str) -> String {
    let n = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("t_{tag}_{}_{}", std::process::id(), n % 1_000_000_000)
}

fn write_pg_config(dir: &Path, url: &str, table: &str, extra: &str) -> std::path::PathBuf {
    let config = tempfile::Builder::new().prefix("coffer-").suffix(".hcl").tempfile_in(dir).unwrap().into_temp_path();
    let config = config.keep().unwrap();
    std::fs::write(
        &config,
        format!(
            "storage \"postgresql\" {{\n  connection_url = \"{url}\"\n  table = \"{table}\"\n  max_parallel = \"8\"\n{extra}}}\n\
             listener \"tcp\" {{\n  address = \"127.0.0.1:0\"\n  tls_disable = true\n}}\ndisable_mlock = true\n"
        ),
    )
    .unwrap();
    config
}

/// A server on PostgreSQL keeps what `bao` wrote across a restart, and unseals again with the
/// same keys: the storage is the database, not the process.
#[test]
fn bao_kv_on_postgresql_survives_restart() {
    let Some(url) = pg_url() else { return };
    let Some(bao) = bao_path() else { return };
    let dir = tempfile::tempdir().unwrap();
    let table = unique_table("restart");
    let config = write_pg_config(dir.path(), &url, &table, "");
    let mut s = Server::start_with_config(&config);
    let (keys, root) = init_unseal(&s.addr);
    let o = cli(&bao, &s.addr, Some(&root), &["secrets", "enable", "-path=secret", "-version=2", "kv"]);
    assert!(o.status.success(), "{}", out(&o));
    for i in 0..10 {
        let o = cli(&bao, &s.addr, Some(&root), &["kv", "put", &format!("secret/app{i}"), &format!("n={i}")]);
        assert!(o.status.success(), "{}", out(&o));
    }
    s.kill9();
    let s = Server::start_with_config(&config);
    unseal(&s.addr, &keys[..3]);
    for i in 0..10 {
        let o = cli(&bao, &s.addr, Some(&root), &["kv", "get", "-field=n", &format!("secret/app{i}")]);
        assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), i.to_string(), "{}", out(&o));
    }
    assert!(s.log_text().contains("Storage: postgresql"), "{}", s.log_text());
}

/// A wrong password or an unreachable server stops start-up with a message that says where it
/// tried to connect, and never prints the password.
#[test]
fn bad_connection_settings_fail_start_up_clearly() {
    let Some(url) = pg_url() else { return };
    let dir = tempfile::tempdir().unwrap();
    let hostpart = url.rsplit_once('@').map(|(_, h)| h.to_string()).unwrap();
    let user = url.trim_start_matches("postgres://").split(':').next().unwrap().to_string();
    for (bad, what) in [
        (format!("postgres://{user}:NotThePassw0rd@{hostpart}"), "password authentication failed"),
        ("postgres://coffer:NotThePassw0rd@127.0.0.1:1/coffer".to_string(), "127.0.0.1:1"),
    ] {
        let config = write_pg_config(dir.path(), &bad, "t_bad", "");
        let o = std::process::Command::new(coffer_bin())
            .args(["server", &format!("-config={}", config.display())])
            .output()
            .unwrap();
        let text = out(&o);
        assert!(!o.status.success(), "start-up must fail: {text}");
        assert!(text.contains("cannot connect to PostgreSQL at"), "{text}");
        assert!(text.contains(what), "expected {what:?} in: {text}");
        assert!(!text.contains("NotThePassw0rd"), "the password leaked: {text}");
    }
}

/// With the database gone, requests fail with a 5xx and a Vault-style `{"errors":[…]}` body (the
/// server does not crash or hang); when the database is back, the same server serves again
/// without a restart, and nothing acknowledged before the outage is lost.
#[test]
fn database_going_away_fails_requests_cleanly_and_recovers() {
    let Some(url) = pg_url() else { return };
    let (userinfo, rest) = url.trim_start_matches("postgres://").rsplit_once('@').unwrap();
    let (hostport, db) = rest.split_once('/').unwrap();
    let proxy = Proxy::start(hostport.to_string());
    let proxied = format!("postgres://{userinfo}@127.0.0.1:{}/{db}", proxy.port);
    let dir = tempfile::tempdir().unwrap();
    let config = write_pg_config(dir.path(), &proxied, &unique_table("outage"), "");
    let s = Server::start_with_config(&config);
    let (_, root) = init_unseal(&s.addr);
    let tok = [("X-Vault-Token", root.as_str())];
    let (st, body) = http(&s.addr, "POST", "/v1/sys/mounts/kv", &tok, br#"{"type":"kv"}"#);
    assert!(st == 204 || st == 200, "{st} {body}");
    let (st, body) = http(&s.addr, "PUT", "/v1/kv/before", &tok, br#"{"v":"1"}"#);
    assert!(st == 204 || st == 200, "{st} {body}");

    proxy.cut();
    for path in ["/v1/kv/before", "/v1/kv/during"] {
        let started = Instant::now();
        let (st, body) = if path.ends_with("during") {
            http(&s.addr, "PUT", path, &tok, br#"{"v":"2"}"#)
        } else {
            http(&s.addr, "GET", path, &tok, b"")
        };
        assert!((500..600).contains(&st), "{path}: expected a 5xx, got {st} {body}");
        let v = json(&body);
        assert!(v["errors"].as_array().is_some_and(|e| !e.is_empty()), "{body}");
        assert!(!body.contains(userinfo.split(':').nth(1).unwrap_or("\u{0}")), "password in error: {body}");
        assert!(started.elapsed() < Duration::from_secs(25), "request hung for {:?}", started.elapsed());
    }
    assert!(s.log_text().find("panicked").is_none(), "{}", s.log_text());

    proxy.restore();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (st, body) = http(&s.addr, "GET", "/v1/kv/before", &tok, b"");
        if st == 200 {
            assert_eq!(json(&body)["data"]["v"], "1");
            break;
        }
        assert!(Instant::now() < deadline, "did not recover: {st} {body}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let (st, body) = http(&s.addr, "PUT", "/v1/kv/after", &tok, br#"{"v":"3"}"#);
    assert!(st == 204 || st == 200, "{st} {body}");
}

/// Runs `sql` as the suite's PostgreSQL user (`COFFER_TEST_PG_URL`) with psql.
fn psql_as_test_user(url: &str, sql: &str) -> String {
    let o = std::process::Command::new("psql")
        .arg(url)
        .args(["-v", "ON_ERROR_STOP=1", "-tA", "-c", sql])
        .env("PGSSLMODE", "disable")
        .output()
        .expect("run psql (Debian package postgresql-client)");
    assert!(o.status.success(), "psql {sql:?}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// TLS to PostgreSQL, as libpq's options ask: with `sslmode=verify-full` and the suite's CA the
/// server runs and its sessions are encrypted (PostgreSQL's own `pg_stat_ssl` says so); a CA
/// that did not sign the server's certificate stops start-up with an error saying why; and a
/// client certificate (`sslcert`/`sslkey`) logs in a user whose only way in is that
/// certificate (pg_hba `cert`).
#[test]
fn postgresql_storage_speaks_tls_verifies_the_server_and_logs_in_with_a_client_certificate() {
    let Some(url) = pg_url() else { return };
    let Some(bao) = bao_path() else { return };
    let (Ok(ca), Ok(cert_url), Ok(client_cert), Ok(client_key)) = (
        std::env::var("COFFER_TEST_PG_CA"),
        std::env::var("COFFER_TEST_PG_CERT_URL"),
        std::env::var("COFFER_TEST_PG_CLIENT_CERT"),
        std::env::var("COFFER_TEST_PG_CLIENT_KEY"),
    ) else {
        assert!(std::env::var("CI").is_err(), "scripts/test sets the PostgreSQL TLS variables in CI");
        eprintln!("NOTICE: COFFER_TEST_PG_CA / _CERT_URL / _CLIENT_CERT / _CLIENT_KEY unset: TLS test skipped");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let table = unique_table("tls");
    let tls_url = format!("{url}?sslmode=verify-full&sslrootcert={ca}");
    let config = write_pg_config(dir.path(), &tls_url, &table, "");
    let s = Server::start_with_config(&config);
    let (_, root) = init_unseal(&s.addr);
    let o = cli(&bao, &s.addr, Some(&root), &["secrets", "enable", "-path=secret", "-version=2", "kv"]);
    assert!(o.status.success(), "{}", out(&o));
    let o = cli(&bao, &s.addr, Some(&root), &["kv", "put", "secret/tls", "over=tls"]);
    assert!(o.status.success(), "{}", out(&o));
    let sessions = psql_as_test_user(
        &url,
        "SELECT count(*) || ' ' || bool_and(s.ssl) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
         WHERE a.application_name = 'coffer'",
    );
    let (count, all_tls) = sessions.split_once(' ').unwrap();
    assert!(count.parse::<u32>().unwrap() >= 1 && all_tls == "true", "Coffer's sessions must all be TLS: {sessions}");
    drop(s);

    // A CA that never signed the server's certificate: start-up fails and says why.
    let other = dir.path().join("other-ca.pem");
    let made = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1"])
        .args(["-subj", "/CN=not the PostgreSQL CA", "-keyout"])
        .arg(dir.path().join("other-ca.key"))
        .arg("-out")
        .arg(&other)
        .output()
        .unwrap();
    assert!(made.status.success());
    let bad =
        write_pg_config(dir.path(), &format!("{url}?sslmode=verify-ca&sslrootcert={}", other.display()), &table, "");
    let o = std::process::Command::new(coffer_bin())
        .args(["server", &format!("-config={}", bad.display())])
        .output()
        .unwrap();
    let text = out(&o);
    assert!(!o.status.success(), "start-up must fail: {text}");
    assert!(text.contains("cannot connect to PostgreSQL at") && text.contains("UnknownIssuer"), "{text}");
    let password = url.split_once("://").unwrap().1.rsplit_once('@').unwrap().0.split_once(':').unwrap().1;
    assert!(!text.contains(password), "the password leaked: {text}");

    // A bad sslmode is refused by name.
    let bad = write_pg_config(dir.path(), &format!("{url}?sslmode=sometimes"), &table, "");
    let o = std::process::Command::new(coffer_bin())
        .args(["server", &format!("-config={}", bad.display())])
        .output()
        .unwrap();
    assert!(out(&o).contains("invalid sslmode \"sometimes\""), "{}", out(&o));

    // The certificate-only user: no password anywhere, only sslcert/sslkey.
    let cert_only =
        format!("{cert_url}?sslmode=verify-full&sslrootcert={ca}&sslcert={client_cert}&sslkey={client_key}");
    let config = write_pg_config(dir.path(), &cert_only, &unique_table("cert"), "");
    let s = Server::start_with_config(&config);
    let (_, root) = init_unseal(&s.addr);
    let o = cli(&bao, &s.addr, Some(&root), &["secrets", "enable", "-path=secret", "-version=2", "kv"]);
    assert!(o.status.success(), "{}", out(&o));
    let o = cli(&bao, &s.addr, Some(&root), &["kv", "put", "secret/cert", "by=certificate"]);
    assert!(o.status.success(), "{}", out(&o));
    let o = cli(&bao, &s.addr, Some(&root), &["kv", "get", "-field=by", "secret/cert"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "certificate", "{}", out(&o));
    // Without the certificate the same user is turned away.
    let no_cert = write_pg_config(dir.path(), &format!("{cert_url}?sslmode=require"), "t_nocert", "");
    let o = std::process::Command::new(coffer_bin())
        .args(["server", &format!("-config={}", no_cert.display())])
        .output()
        .unwrap();
    assert!(!o.status.success() && out(&o).contains("cannot connect to PostgreSQL at"), "{}", out(&o));
}

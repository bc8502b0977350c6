//! The `coffer` client's access-control commands against a dev `coffer server`:
//! `policy write|list|read|fmt|delete`, `token create|lookup|renew|capabilities|revoke`,
//! `auth enable|list`, and `login` (token, userpass), with Vault's exit codes
//! (0 ok, 1 usage/local error, 2 API error).
mod common;
use common::*;
use std::process::{Command, Output, Stdio};

const APP_POLICY: &str = "path \"kv/app/*\" {\n  capabilities = [\"create\", \"update\", \"read\"]\n}\n";

/// Runs the coffer CLI and asserts it exits 0; returns stdout.
fn ok(addr: &str, token: Option<&str>, args: &[&str]) -> String {
    let o = cli(coffer_bin(), addr, token, args);
    assert!(o.status.success(), "coffer {args:?} failed ({:?}):\n{}", o.status.code(), out(&o));
    String::from_utf8_lossy(&o.stdout).to_string()
}

/// Runs the coffer CLI with its own HOME (for `~/.vault-token`) and no token in the environment.
fn cli_with_home(addr: &str, home: &std::path::Path, args: &[&str]) -> Output {
    Command::new(coffer_bin())
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("BAO_ADDR", format!("http://{addr}"))
        .stdin(Stdio::null())
        .output()
        .expect("run coffer")
}

/// A dev server with a KV v1 mount at `kv/` and the `app` policy (create/update/read on `kv/app/*`),
/// written from an HCL file with `policy write`.
fn server_with_app_policy(dir: &std::path::Path) -> Server {
    let s = Server::start_dev("root");
    let root = Some("root");
    ok(&s.addr, root, &["secrets", "enable", "-path=kv", "kv"]);
    let file = dir.join("app.hcl");
    std::fs::write(&file, APP_POLICY).unwrap();
    let o = ok(&s.addr, root, &["policy", "write", "app", file.to_str().unwrap()]);
    assert_eq!(o, "Success! Uploaded policy: app\n");
    s
}

fn create_token(addr: &str, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["token", "create", "-format=json"];
    all.extend_from_slice(args);
    json(&ok(addr, Some("root"), &all))
}

#[test]
fn policy_write_from_file_then_list_read_and_delete() {
    let dir = tempfile::tempdir().unwrap();
    let s = server_with_app_policy(dir.path());
    let root = Some("root");
    let listed = ok(&s.addr, root, &["policy", "list"]);
    assert_eq!(listed.lines().collect::<Vec<_>>(), ["app", "default", "root"], "{listed}");
    assert_eq!(ok(&s.addr, root, &["policy", "read", "app"]), APP_POLICY, "read prints the stored HCL");
    let v = json(&ok(&s.addr, root, &["policy", "read", "-format=json", "app"]));
    assert_eq!(v["policy"], APP_POLICY);
    // From stdin with '-'.
    let mut child = Command::new(coffer_bin())
        .args(["policy", "write", "from-stdin", "-"])
        .env("BAO_ADDR", format!("http://{}", s.addr))
        .env("BAO_TOKEN", "root")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), APP_POLICY.as_bytes()).unwrap();
    assert!(child.wait_with_output().unwrap().status.success());
    assert_eq!(ok(&s.addr, root, &["policy", "read", "from-stdin"]), APP_POLICY);
    ok(&s.addr, root, &["policy", "delete", "from-stdin"]);
    // A missing file is an error (exit 2, as bao).
    let o = cli(coffer_bin(), &s.addr, root, &["policy", "write", "x", dir.path().join("nope.hcl").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
    assert!(out(&o).contains("Error opening policy file"), "{}", out(&o));
    // An invalid policy is refused by the server: exit 2 with the server's reason.
    let bad = dir.path().join("bad.hcl");
    std::fs::write(&bad, "path \"x\" { capabilities = [\"reed\"] }\n").unwrap();
    let o = cli(coffer_bin(), &s.addr, root, &["policy", "write", "bad", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
    assert!(out(&o).contains("Error uploading policy"), "{}", out(&o));
    assert_eq!(ok(&s.addr, root, &["policy", "delete", "app"]), "Success! Deleted policy: app\n");
    let o = cli(coffer_bin(), &s.addr, root, &["policy", "read", "app"]);
    assert_eq!(o.status.code(), Some(2), "a deleted policy is gone: {}", out(&o));
    assert!(out(&o).contains("No policy named: app"), "{}", out(&o));
    let o = cli(coffer_bin(), &s.addr, root, &["policy", "read"]);
    assert_eq!(o.status.code(), Some(1), "missing argument is a usage error: {}", out(&o));
}

#[test]
fn policy_fmt_rewrites_messy_hcl_canonically_and_leaves_broken_files_alone() {
    let dir = tempfile::tempdir().unwrap();
    let messy = dir.path().join("messy.hcl");
    std::fs::write(
        &messy,
        "path \"secret/*\"   {\ncapabilities=[\"read\",\"list\"]\n    }\npath \"sys/x\" {\n policy=\"deny\"\n}\n",
    )
    .unwrap();
    let o = Command::new(coffer_bin()).args(["policy", "fmt", messy.to_str().unwrap()]).output().unwrap();
    assert!(o.status.success(), "{}", out(&o));
    assert!(out(&o).contains("Success! Formatted policy:"), "{}", out(&o));
    assert_eq!(
        std::fs::read_to_string(&messy).unwrap(),
        "path \"secret/*\" {\n  capabilities = [\"read\", \"list\"]\n}\n\npath \"sys/x\" {\n  policy = \"deny\"\n}\n"
    );
    let broken = dir.path().join("broken.hcl");
    std::fs::write(&broken, "path \"x\" { capabilities = [").unwrap();
    let o = Command::new(coffer_bin()).args(["policy", "fmt", broken.to_str().unwrap()]).output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    assert!(out(&o).contains("failed to parse policy"), "{}", out(&o));
    assert_eq!(std::fs::read_to_string(&broken).unwrap(), "path \"x\" { capabilities = [", "file untouched");
    let o = Command::new(coffer_bin()).args(["policy", "fmt", dir.path().join("nope.hcl").to_str().unwrap()]).output();
    assert_eq!(o.unwrap().status.code(), Some(1), "missing file is a local error");
}

#[test]
fn token_created_with_a_policy_can_write_only_where_the_policy_allows() {
    let dir = tempfile::tempdir().unwrap();
    let s = server_with_app_policy(dir.path());
    let v = create_token(&s.addr, &["-policy=app", "-ttl=1h", "-metadata=team=web"]);
    let auth = &v["auth"];
    assert_eq!(auth["token_policies"], serde_json::json!(["app", "default"]), "{v}");
    assert_eq!(auth["lease_duration"], 3600);
    assert_eq!(auth["metadata"]["team"], "web");
    let t = auth["client_token"].as_str().unwrap();
    assert_eq!(
        ok(&s.addr, Some(t), &["write", "kv/app/db", "password=s3cret"]),
        "Success! Data written to: kv/app/db\n"
    );
    assert_eq!(ok(&s.addr, Some(t), &["read", "-field=password", "kv/app/db"]), "s3cret");
    let o = cli(coffer_bin(), &s.addr, Some(t), &["write", "kv/other", "a=b"]);
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
    assert!(out(&o).contains("permission denied"), "{}", out(&o));
    // The table output names the token's fields as bao does.
    let table = ok(&s.addr, Some("root"), &["token", "create", "-policy=app", "-ttl=30m"]);
    for row in ["token_duration       30m", "token_renewable      true", "token_policies       [\"app\" \"default\"]"] {
        assert!(table.contains(row), "missing {row:?} in:\n{table}");
    }
    assert_eq!(
        ok(&s.addr, Some("root"), &["token", "create", "-field=token_policies", "-policy=app"]),
        "[app default]"
    );
}

#[test]
fn token_capabilities_lookup_by_accessor_and_renew_report_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let s = server_with_app_policy(dir.path());
    let v = create_token(&s.addr, &["-policy=app", "-ttl=1h"]);
    let (t, acc) = (v["auth"]["client_token"].as_str().unwrap(), v["auth"]["accessor"].as_str().unwrap());
    let root = Some("root");
    assert_eq!(ok(&s.addr, root, &["token", "capabilities", t, "kv/app/x"]), "create, read, update\n");
    assert_eq!(ok(&s.addr, root, &["token", "capabilities", t, "kv/other"]), "deny\n");
    assert_eq!(ok(&s.addr, Some(t), &["token", "capabilities", "kv/app/x"]), "create, read, update\n", "own caps");
    let caps = json(&ok(&s.addr, root, &["token", "capabilities", "-format=json", t, "kv/app/x"]));
    assert_eq!(caps, serde_json::json!(["create", "read", "update"]));

    let l = json(&ok(&s.addr, root, &["token", "lookup", "-format=json", "-accessor", acc]));
    assert_eq!(l["data"]["accessor"], acc);
    assert_eq!(l["data"]["id"], "", "lookup by accessor does not reveal the token");
    assert_eq!(l["data"]["policies"], serde_json::json!(["app", "default"]));
    let table = ok(&s.addr, root, &["token", "lookup", t]);
    assert!(table.contains("creation_ttl        1h") && table.contains("policies            [app default]"), "{table}");

    let r = json(&ok(&s.addr, root, &["token", "renew", "-format=json", "-increment=2h", t]));
    assert_eq!(r["auth"]["lease_duration"], 7200, "{r}");
    let r = ok(&s.addr, Some(t), &["token", "renew", "-increment=30m"]);
    assert!(r.contains("token_duration       30m"), "renew-self: {r}");
    let o = cli(coffer_bin(), &s.addr, root, &["token", "lookup", "-accessor"]);
    assert_eq!(o.status.code(), Some(1), "-accessor without an argument: {}", out(&o));
}

#[test]
fn revoked_tokens_stop_working() {
    let dir = tempfile::tempdir().unwrap();
    let s = server_with_app_policy(dir.path());
    let root = Some("root");
    let t1 = ok(&s.addr, root, &["token", "create", "-policy=app", "-field=token"]);
    ok(&s.addr, Some(&t1), &["write", "kv/app/a", "x=1"]);
    assert_eq!(ok(&s.addr, root, &["token", "revoke", &t1]), "Success! Revoked token (if it existed)\n");
    let o = cli(coffer_bin(), &s.addr, Some(&t1), &["read", "kv/app/a"]);
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
    assert!(out(&o).contains("permission denied"), "{}", out(&o));

    let v = create_token(&s.addr, &["-policy=app"]);
    let (t2, acc2) = (v["auth"]["client_token"].as_str().unwrap(), v["auth"]["accessor"].as_str().unwrap());
    ok(&s.addr, root, &["token", "revoke", "-accessor", acc2]);
    assert_eq!(
        cli(coffer_bin(), &s.addr, Some(t2), &["token", "lookup"]).status.code(),
        Some(2),
        "revoked by accessor"
    );

    let t3 = ok(&s.addr, root, &["token", "create", "-field=token"]);
    ok(&s.addr, Some(&t3), &["token", "revoke", "-self"]);
    assert_eq!(cli(coffer_bin(), &s.addr, Some(&t3), &["token", "lookup"]).status.code(), Some(2), "revoked itself");

    for (args, why) in [
        (vec!["token", "revoke"], "no token"),
        (vec!["token", "revoke", "-self", "x"], "-self takes no argument"),
        (vec!["token", "revoke", "-accessor", "-mode=orphan", "x"], "-accessor with -mode=orphan"),
        (vec!["token", "revoke", "-mode=bad", "x"], "bad mode"),
    ] {
        let o = cli(coffer_bin(), &s.addr, root, &args);
        assert_eq!(o.status.code(), Some(1), "{why}: {}", out(&o));
    }
}

#[test]
fn userpass_login_returns_a_working_token_and_wrong_password_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let s = server_with_app_policy(dir.path());
    let root = Some("root");
    assert_eq!(
        ok(&s.addr, root, &["auth", "enable", "userpass"]),
        "Success! Enabled userpass auth method at: userpass/\n"
    );
    let o = cli(coffer_bin(), &s.addr, root, &["auth", "enable", "userpass"]);
    assert_eq!(o.status.code(), Some(2), "already enabled: {}", out(&o));
    let listed = ok(&s.addr, root, &["auth", "list"]);
    assert!(listed.starts_with("Path "), "{listed}");
    assert!(listed.lines().any(|l| l.starts_with("userpass/ ") && l.contains("userpass")), "{listed}");
    assert!(listed.lines().any(|l| l.starts_with("token/ ")), "{listed}");
    ok(&s.addr, root, &["write", "auth/userpass/users/alice", "password=wonderland", "token_policies=app"]);

    let t = ok(&s.addr, None, &["login", "-method=userpass", "-token-only", "username=alice", "password=wonderland"]);
    assert!(t.starts_with("s.") && !t.ends_with('\n'), "token only, no newline: {t:?}");
    assert_eq!(
        ok(&s.addr, Some(&t), &["write", "kv/app/from-alice", "v=1"]),
        "Success! Data written to: kv/app/from-alice\n"
    );
    let o = cli(coffer_bin(), &s.addr, Some(&t), &["write", "kv/elsewhere", "v=1"]);
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
    let l = json(&ok(&s.addr, Some(&t), &["token", "lookup", "-format=json"]));
    assert_eq!(l["data"]["display_name"], "userpass-alice", "{l}");

    let o = cli(coffer_bin(), &s.addr, None, &["login", "-method=userpass", "username=alice", "password=wrong"]);
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
    assert!(out(&o).contains("Error authenticating"), "{}", out(&o));
    let o = cli(coffer_bin(), &s.addr, None, &["login", "-method=userpass", "password=x"]);
    assert_eq!(o.status.code(), Some(2), "no username: {}", out(&o));
    let o = cli(coffer_bin(), &s.addr, None, &["login", "-method=nope"]);
    assert_eq!(o.status.code(), Some(1), "unknown method: {}", out(&o));

    // auth tune and disable.
    assert_eq!(
        ok(&s.addr, root, &["auth", "tune", "-default-lease-ttl=30m", "userpass"]),
        "Success! Tuned the auth method at: userpass/\n"
    );
    let tune = json(&ok(&s.addr, root, &["read", "-format=json", "sys/auth/userpass/tune"]));
    assert_eq!(tune["data"]["default_lease_ttl"], 1800, "{tune}");
    ok(&s.addr, root, &["auth", "disable", "userpass"]);
    assert!(!ok(&s.addr, root, &["auth", "list"]).contains("userpass/"));
}

#[test]
fn token_login_stores_the_token_for_later_commands() {
    let home = tempfile::tempdir().unwrap();
    let s = Server::start_dev("root");
    let t = ok(&s.addr, Some("root"), &["token", "create", "-policy=default", "-field=token"]);
    let o = cli_with_home(&s.addr, home.path(), &["login", &t]);
    assert!(o.status.success(), "{}", out(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.starts_with("Success! You are now authenticated."), "{stdout}");
    assert!(stdout.contains(&format!("token                {t}")), "{stdout}");
    assert_eq!(std::fs::read_to_string(home.path().join(".vault-token")).unwrap(), t);
    let o = cli_with_home(&s.addr, home.path(), &["token", "lookup", "-format=json"]);
    assert!(o.status.success(), "the stored token is used: {}", out(&o));
    assert_eq!(json(&String::from_utf8_lossy(&o.stdout))["data"]["id"], t.as_str());

    // -no-store leaves the file alone; a bad token exits 2 and stores nothing.
    let other = tempfile::tempdir().unwrap();
    let o = cli_with_home(&s.addr, other.path(), &["login", "-no-store", "root"]);
    assert!(o.status.success(), "{}", out(&o));
    assert!(!other.path().join(".vault-token").exists());
    let o = cli_with_home(&s.addr, other.path(), &["login", "s.notarealtokennotarealtok"]);
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
    assert!(!other.path().join(".vault-token").exists());
}

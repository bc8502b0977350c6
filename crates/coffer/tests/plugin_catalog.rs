//! The plugin catalog refuses a binary whose SHA-256 does not match, a command outside the
//! plugin directory, and a plugin that fails the handshake — each with a clear error, no crash,
//! and the mount table unchanged; `bao plugin register|list|info|deregister` work against it.
mod common;
use common::*;

fn start_dev_with_plugins(dir: &std::path::Path) -> Server {
    Server::start_dev_logging_to("root", &[&format!("-dev-plugin-dir={}", dir.display())], &dir.join("dev.log"))
}

#[test]
fn catalog_refuses_bad_digests_escaping_commands_and_failed_handshakes() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    // A binary that is not a plugin: it exits at once without a handshake line.
    let fake = plugins.join("not-a-plugin");
    std::fs::copy("/bin/true", &fake).unwrap();
    let sha = sha256_hex(&fake);
    let s = start_dev_with_plugins(&plugins);
    let t = [("X-Vault-Token", "root")];
    let mounts_before = json(&http(&s.addr, "GET", "/v1/sys/mounts", &t, b"").1)["data"].clone();

    let wrong = "0".repeat(64);
    let (st, body) = http(
        &s.addr,
        "PUT",
        "/v1/sys/plugins/catalog/secret/not-a-plugin",
        &t,
        format!(r#"{{"sha256":"{wrong}","command":"not-a-plugin"}}"#).as_bytes(),
    );
    assert_eq!(st, 400, "{body}");
    assert!(body.contains("does not match"), "{body}");
    let (st, body) = http(
        &s.addr,
        "PUT",
        "/v1/sys/plugins/catalog/secret/sh",
        &t,
        format!(r#"{{"sha256":"{sha}","command":"../../bin/sh"}}"#).as_bytes(),
    );
    assert_eq!(st, 400, "{body}");
    assert!(body.contains("plugin directory"), "{body}");
    let (st, body) = http(
        &s.addr,
        "PUT",
        "/v1/sys/plugins/catalog/secret/sh2",
        &t,
        format!(r#"{{"sha256":"{sha}","command":"/bin/sh"}}"#).as_bytes(),
    );
    assert_eq!(st, 400, "absolute commands are refused: {body}");

    let (st, body) = http(
        &s.addr,
        "PUT",
        "/v1/sys/plugins/catalog/secret/not-a-plugin",
        &t,
        format!(r#"{{"sha256":"{sha}","command":"not-a-plugin","version":"v1.0.0"}}"#).as_bytes(),
    );
    assert_eq!(st, 204, "{body}");
    let (st, body) = http(&s.addr, "GET", "/v1/sys/plugins/catalog/secret/not-a-plugin", &t, b"");
    assert_eq!(st, 200, "{body}");
    assert_eq!(json(&body)["data"]["sha256"], sha.as_str());

    let (st, body) = http(&s.addr, "POST", "/v1/sys/mounts/np", &t, br#"{"type":"not-a-plugin"}"#);
    assert!(st == 400 || st == 500, "a plugin that fails the handshake cannot be mounted: {st} {body}");
    assert!(body.contains("not-a-plugin"), "{body}");
    let mounts_after = json(&http(&s.addr, "GET", "/v1/sys/mounts", &t, b"").1)["data"].clone();
    assert_eq!(
        mounts_before.as_object().unwrap().keys().collect::<Vec<_>>(),
        mounts_after.as_object().unwrap().keys().collect::<Vec<_>>(),
        "mount table unchanged"
    );

    // Replacing the binary after registration: its digest no longer matches at launch.
    std::fs::write(&fake, b"#!/bin/sh\nexit 0\n").unwrap();
    let (st, body) = http(&s.addr, "POST", "/v1/sys/mounts/np2", &t, br#"{"type":"not-a-plugin"}"#);
    assert_eq!(st, 400, "{body}");
    assert!(body.contains("does not match"), "{body}");
    assert!(!s.log_text().contains("panicked"));
}

#[test]
fn bao_plugin_commands_work_against_coffer() {
    let Some(bao) = bao_path() else { return };
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let bin = plugins.join("my-plugin");
    std::fs::copy("/bin/true", &bin).unwrap();
    let sha = sha256_hex(&bin);
    let s = start_dev_with_plugins(&plugins);
    let ok = |args: &[&str]| {
        let o = cli(&bao, &s.addr, Some("root"), args);
        assert!(o.status.success(), "bao {args:?}: {}", out(&o));
        String::from_utf8_lossy(&o.stdout).to_string()
    };
    ok(&[
        "plugin",
        "register",
        &format!("-sha256={sha}"),
        "-command=my-plugin",
        "-version=v0.2.0",
        "secret",
        "my-plugin",
    ]);
    assert!(ok(&["plugin", "list", "secret"]).contains("my-plugin"));
    let info = ok(&["plugin", "info", "-format=json", "-version=v0.2.0", "secret", "my-plugin"]);
    assert_eq!(json(&info)["sha256"], sha.as_str());
    ok(&["plugin", "deregister", "-version=v0.2.0", "secret", "my-plugin"]);
    let o = cli(&bao, &s.addr, Some("root"), &["plugin", "info", "-version=v0.2.0", "secret", "my-plugin"]);
    assert_eq!(o.status.code(), Some(2), "deregistered: {}", out(&o));
}

/// Pids of processes whose command line starts with `bin`.
fn pids_of(bin: &std::path::Path) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else { continue };
        if cmd.split(|b| *b == 0).next().is_some_and(|a| a == bin.as_os_str().as_encoded_bytes()) {
            out.push(pid);
        }
    }
    out
}

#[test]
fn example_plugin_runs_in_coffer_and_survives_kill_9_and_reload() {
    let Some(bao) = bao_path() else { return };
    let built = std::path::Path::new(coffer_bin()).with_file_name("coffer-plugin-example");
    assert!(built.exists(), "build the workspace first (the example plugin binary is missing)");
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let bin = plugins.join("passphrase");
    std::fs::copy(&built, &bin).unwrap();
    let sha = sha256_hex(&bin);
    let s = start_dev_with_plugins(&plugins);
    let ok = |args: &[&str]| {
        let o = cli(&bao, &s.addr, Some("root"), args);
        assert!(o.status.success(), "bao {args:?}: {}", out(&o));
        String::from_utf8_lossy(&o.stdout).to_string()
    };
    ok(&["plugin", "register", &format!("-sha256={sha}"), "-command=passphrase", "secret", "passphrase"]);
    ok(&["secrets", "enable", "-path=pp", "-plugin-name=passphrase", "plugin"]);
    ok(&["write", "pp/config", "words=5", "separator=_"]);
    let first = json(&ok(&["read", "-format=json", "pp/gen"]));
    let phrase = first["data"]["passphrase"].as_str().unwrap_or_else(|| panic!("{first}")).to_string();
    assert_eq!(phrase.split('_').count(), 5, "{phrase}");
    assert!(ok(&["secrets", "list"]).contains("pp/"));
    // The plugin's path table reaches the host: `bao path-help` documents its fields.
    let help = ok(&["path-help", "pp/config"]);
    assert!(help.contains("Passphrase settings") && help.contains("Number of words in a passphrase"), "{help}");

    // kill -9 the plugin: the next request restarts it transparently.
    let pids = pids_of(&bin.canonicalize().unwrap());
    assert!(!pids.is_empty(), "the plugin process runs");
    for p in &pids {
        let _ = std::process::Command::new("kill").args(["-9", &p.to_string()]).status();
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    let again = json(&ok(&["read", "-format=json", "pp/gen"]));
    assert!(again["data"]["passphrase"].is_string(), "served after the kill: {again}");
    assert_eq!(
        json(&ok(&["read", "-format=json", "pp/config"]))["data"]["words"],
        5,
        "its storage is the host's, so config survived"
    );

    // Reload restarts it too.
    ok(&["plugin", "reload", "-plugin=passphrase"]);
    assert!(json(&ok(&["read", "-format=json", "pp/gen"]))["data"]["passphrase"].is_string());
}

/// A secrets-engine binary registered as an auth method is refused at `bao auth enable` with
/// a message naming both types, as OpenBao does, and the auth table stays as it was; with
/// several versions registered, a mount without a version gets the highest semantic version
/// (v0.10.0 over v0.9.0, which string order would pick).
#[test]
fn a_plugin_of_the_wrong_type_is_refused_and_versions_order_semantically() {
    let Some(bao) = bao_path() else { return };
    let built = std::path::Path::new(coffer_bin()).with_file_name("coffer-plugin-example");
    assert!(built.exists(), "build the workspace first (the example plugin binary is missing)");
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::copy(&built, plugins.join("pp")).unwrap();
    let sha = sha256_hex(&plugins.join("pp"));
    let s = start_dev_with_plugins(&plugins);
    let run = |args: &[&str]| cli(&bao, &s.addr, Some("root"), args);
    let ok = |args: &[&str]| {
        let o = run(args);
        assert!(o.status.success(), "bao {args:?}: {}", out(&o));
        String::from_utf8_lossy(&o.stdout).to_string()
    };
    ok(&["plugin", "register", &format!("-sha256={sha}"), "-command=pp", "auth", "pp-as-auth"]);
    let before = ok(&["auth", "list"]);
    let o = run(&["auth", "enable", "-path=wrong", "pp-as-auth"]);
    assert!(!o.status.success(), "{}", out(&o));
    assert!(out(&o).contains("reports type \"secret\"") && out(&o).contains("\"auth\""), "{}", out(&o));
    assert_eq!(ok(&["auth", "list"]), before, "the auth table is unchanged");

    for v in ["v0.9.0", "v0.10.0"] {
        ok(&["plugin", "register", &format!("-sha256={sha}"), "-command=pp", &format!("-version={v}"), "secret", "pp"]);
    }
    ok(&["secrets", "enable", "-path=pp", "pp"]);
    let mounts = json(&ok(&["secrets", "list", "-format=json"]));
    assert_eq!(mounts["pp/"]["running_plugin_version"], "v0.10.0", "{mounts}");
    assert!(!s.log_text().contains("panicked"));
}

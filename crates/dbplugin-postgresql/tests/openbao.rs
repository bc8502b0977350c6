//! The built-in PostgreSQL plugin, built as an external plugin binary, inside a real OpenBao (`bao server -dev` with a plugin
//! directory): registered in the catalog as type `database`, named by a `database/config`
//! connection, and used by a role; the credentials OpenBao issues log in to PostgreSQL with
//! `psql`, and revoking the lease drops the role. Needs `bao` on PATH (required when
//! COFFER_REQUIRE_BAO is set) and `COFFER_TEST_PG_URL` (scripts/test sets both).

mod common;

use common::{find_on_path, plugin_binary, Pg, CREATE};
use serde_json::Value;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const NAME: &str = "coffer-postgresql";

struct Bao {
    server: Child,
    addr: String,
    home: tempfile::TempDir,
    plugin: PathBuf,
}

impl Bao {
    fn cmd(&self, args: &[&str]) -> Output {
        Command::new("bao")
            .args(args)
            .env("BAO_ADDR", &self.addr)
            .env("BAO_TOKEN", "root")
            .env("HOME", self.home.path())
            .env_remove("VAULT_ADDR")
            .env_remove("VAULT_TOKEN")
            .output()
            .expect("bao runs")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.cmd(args);
        assert!(
            out.status.success(),
            "bao {args:?} failed: {}{}\nserver log tail:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log_tail()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn json(&self, args: &[&str]) -> Value {
        let words = if matches!(args[0], "plugin" | "secrets" | "lease") { 2 } else { 1 };
        let mut full = args[..words].to_vec();
        full.push("-format=json");
        full.extend_from_slice(&args[words..]);
        serde_json::from_str(&self.ok(&full)).expect("bao printed JSON")
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.home.path().join("server.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for Bao {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.server.id().to_string()]).status();
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = self.server.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn start_bao() -> Option<Bao> {
    if find_on_path("bao").is_none() {
        if std::env::var_os("COFFER_REQUIRE_BAO").is_some() {
            panic!("COFFER_REQUIRE_BAO is set but `bao` is not on PATH");
        }
        eprintln!("skipped: `bao` (OpenBao) is not on PATH");
        return None;
    }
    let home = tempfile::tempdir().unwrap();
    let plugins = home.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    let plugin = plugins.join(NAME);
    std::fs::copy(plugin_binary(), &plugin).unwrap();
    let log = std::fs::File::create(home.path().join("server.log")).unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let server = Command::new("bao")
        .args([
            "server",
            "-dev",
            "-dev-root-token-id=root",
            &format!("-dev-listen-address={addr}"),
            &format!("-dev-plugin-dir={}", plugins.display()),
        ])
        .env("HOME", home.path())
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("bao server starts");
    let bao = Bao { server, addr: format!("http://{addr}"), home, plugin };
    let t = Instant::now();
    while !bao.cmd(&["status"]).status.success() {
        assert!(t.elapsed() < Duration::from_secs(60), "bao server did not come up:\n{}", bao.log_tail());
        std::thread::sleep(Duration::from_millis(200));
    }
    Some(bao)
}

#[test]
fn openbao_issues_postgresql_logins_through_the_coffer_plugin_binary_and_revokes_them() {
    let Some(pg) = Pg::from_env() else { return };
    let Some(bao) = start_bao() else { return };
    let bytes = std::fs::read(&bao.plugin).unwrap();
    let sha = coffer_plugin::sha256_file(&bao.plugin).unwrap();
    assert_eq!(sha.len(), 64, "{}", bytes.len());
    let version = format!("-version=v{}", env!("CARGO_PKG_VERSION"));
    bao.ok(&["plugin", "register", &format!("-sha256={sha}"), &version, &format!("-command={NAME}"), "database", NAME]);
    let info = bao.json(&["plugin", "info", &version, "database", NAME]);
    assert_eq!(info["version"], format!("v{}", env!("CARGO_PKG_VERSION")), "{info}");

    bao.ok(&["secrets", "enable", "database"]);
    bao.ok(&[
        "write",
        "database/config/pg",
        &format!("plugin_name={NAME}"),
        &format!("plugin_version=v{}", env!("CARGO_PKG_VERSION")),
        &format!("connection_url={}", pg.template()),
        &format!("username={}", pg.user),
        &format!("password={}", pg.password),
        "allowed_roles=readonly",
    ]);
    let cfg = bao.json(&["read", "database/config/pg"]);
    assert_eq!(cfg["data"]["plugin_name"], NAME, "{cfg}");
    assert!(!cfg.to_string().contains(&pg.password), "OpenBao does not show the root password");

    bao.ok(&[
        "write",
        "database/roles/readonly",
        "db_name=pg",
        "default_ttl=1h",
        "max_ttl=2h",
        &format!("creation_statements={CREATE}"),
    ]);
    let creds = bao.json(&["read", "database/creds/readonly"]);
    let user = creds["data"]["username"].as_str().expect("a username").to_string();
    let pass = creds["data"]["password"].as_str().expect("a password").to_string();
    let lease = creds["lease_id"].as_str().expect("a lease").to_string();
    assert!(user.starts_with("v-"), "{user}");
    assert_eq!(pg.login(&user, &pass).as_deref(), Ok(user.as_str()), "the issued login works");

    // Renewal goes through UpdateUser's expiration change.
    bao.ok(&["lease", "renew", &lease]);
    assert_eq!(pg.login(&user, &pass).as_deref(), Ok(user.as_str()));

    bao.ok(&["lease", "revoke", &lease]);
    let t = Instant::now();
    while pg.role_exists(&user) {
        assert!(t.elapsed() < Duration::from_secs(20), "revoke did not drop {user}:\n{}", bao.log_tail());
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(pg.login(&user, &pass).is_err(), "a revoked login is refused");

    // A configuration key the plugin does not know is refused, by name.
    let out = bao.cmd(&[
        "write",
        "database/config/bad",
        &format!("plugin_name={NAME}"),
        &format!("connection_url={}", pg.template()),
        "pool_size=3",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("pool_size"), "{err}");
}

//! Access control driven by the real `bao` CLI against the real `coffer server`: policies
//! from HCL files, scoped tokens (allowed vs 403), the token tree, userpass logins, identity
//! policies through entities and groups, password policies, and bad input. (Token and mount
//! answers checked over HTTP alone run in-process: crates/testing/tests/api/token_and_mount_answers.rs.)
mod common;
use common::*;

struct Bao {
    bin: String,
    addr: String,
}

impl Bao {
    fn run(&self, token: &str, args: &[&str]) -> std::process::Output {
        cli(&self.bin, &self.addr, Some(token), args)
    }
    fn ok(&self, token: &str, args: &[&str]) -> String {
        let o = self.run(token, args);
        assert!(o.status.success(), "bao {args:?} failed ({:?}):\n{}", o.status.code(), out(&o));
        String::from_utf8_lossy(&o.stdout).to_string()
    }
    fn json(&self, token: &str, args: &[&str]) -> serde_json::Value {
        let mut a = args.to_vec();
        a.insert(a.len().min(2), "-format=json");
        json(&self.ok(token, &a))
    }
    fn denied(&self, token: &str, args: &[&str]) {
        let o = self.run(token, args);
        assert_eq!(o.status.code(), Some(2), "bao {args:?} should be refused:\n{}", out(&o));
        let text = out(&o);
        assert!(
            text.contains("permission denied") || text.contains("preflight capability check returned 403"),
            "bao {args:?}: {text}"
        );
    }
}

fn setup() -> Option<(Server, Bao, tempfile::TempDir)> {
    let bin = bao_path()?;
    let server = Server::start_dev("root");
    let b = Bao { bin, addr: server.addr.clone() };
    let dir = tempfile::tempdir().unwrap();
    b.ok("root", &["secrets", "enable", "-path=kv", "kv"]);
    Some((server, b, dir))
}

#[test]
fn policy_from_hcl_file_scopes_a_token() {
    let Some((_s, b, dir)) = setup() else { return };
    let file = dir.path().join("app.hcl");
    std::fs::write(
        &file,
        "path \"kv/app/*\" {\n  capabilities = [\"create\", \"read\", \"update\", \"list\"]\n}\npath \"kv/app/locked\" {\n  capabilities = [\"deny\"]\n}\n",
    )
    .unwrap();
    b.ok("root", &["policy", "write", "app", file.to_str().unwrap()]);
    assert!(b.ok("root", &["policy", "list"]).contains("app"));
    let t = b.json("root", &["token", "create", "-policy=app"])["auth"]["client_token"].as_str().unwrap().to_string();
    b.ok(&t, &["kv", "put", "kv/app/db", "password=p"]);
    assert_eq!(b.ok(&t, &["kv", "get", "-field=password", "kv/app/db"]).trim(), "p");
    b.denied(&t, &["kv", "put", "kv/other", "x=1"]);
    b.denied(&t, &["kv", "put", "kv/app/locked", "x=1"]);
    b.denied(&t, &["kv", "delete", "kv/app/db"]);
    let caps = b.ok("root", &["token", "capabilities", &t, "kv/app/x"]);
    assert_eq!(caps.trim(), "create, list, read, update");
    assert_eq!(b.ok(&t, &["token", "capabilities", "kv/app/locked"]).trim(), "deny");
    // The token's own lookup works through the default policy.
    let look = b.json(&t, &["token", "lookup"]);
    assert_eq!(look["data"]["policies"], serde_json::json!(["app", "default"]));
}

#[test]
fn revoking_a_parent_revokes_its_children_but_not_orphans() {
    let Some((_s, b, dir)) = setup() else { return };
    let file = dir.path().join("minter.hcl");
    std::fs::write(&file, "path \"auth/token/create\" { capabilities = [\"update\"] }\n").unwrap();
    b.ok("root", &["policy", "write", "minter", file.to_str().unwrap()]);
    let create = |parent: &str, extra: &[&str]| -> String {
        let mut args = vec!["token", "create", "-policy=minter"];
        args.extend_from_slice(extra);
        b.json(parent, &args)["auth"]["client_token"].as_str().unwrap().to_string()
    };
    let parent = create("root", &[]);
    let child = create(&parent, &[]);
    let grandchild = create(&child, &[]);
    let orphan = create("root", &["-orphan"]);
    b.ok(&grandchild, &["token", "lookup"]);
    b.ok("root", &["token", "revoke", &parent]);
    for t in [&parent, &child, &grandchild] {
        let o = b.run(t, &["token", "lookup"]);
        assert_eq!(o.status.code(), Some(2), "revoked tree member still works: {}", out(&o));
    }
    b.ok(&orphan, &["token", "lookup"]);
}

#[test]
fn use_limits_and_ttls_expire_tokens() {
    let Some((_s, b, _dir)) = setup() else { return };
    let once = b.json("root", &["token", "create", "-policy=default", "-use-limit=2"])["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_string();
    b.ok(&once, &["token", "lookup"]);
    b.ok(&once, &["token", "lookup"]);
    let o = b.run(&once, &["token", "lookup"]);
    assert_eq!(o.status.code(), Some(2), "a used-up token is refused: {}", out(&o));
    let short = b.json("root", &["token", "create", "-policy=default", "-ttl=1s"])["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_string();
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let o = b.run(&short, &["token", "lookup"]);
    assert_eq!(o.status.code(), Some(2), "an expired token is refused: {}", out(&o));
    assert!(out(&o).contains("permission denied"));
    // A non-root token cannot hand out policies it does not hold.
    let limited =
        b.json("root", &["token", "create", "-policy=default"])["auth"]["client_token"].as_str().unwrap().to_string();
    let o = b.run(&limited, &["token", "create", "-policy=admin"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn userpass_login_and_identity_policies_through_groups() {
    let Some((_s, b, dir)) = setup() else { return };
    let file = dir.path().join("reader.hcl");
    std::fs::write(&file, "path \"kv/shared/*\" { capabilities = [\"read\"] }\n").unwrap();
    b.ok("root", &["policy", "write", "reader", file.to_str().unwrap()]);
    b.ok("root", &["kv", "put", "kv/shared/x", "v=1"]);
    b.ok("root", &["auth", "enable", "userpass"]);
    b.ok("root", &["write", "auth/userpass/users/alice", "password=correct horse", "token_policies=default"]);

    let login = |pw: &str| {
        b.run(
            "",
            &["login", "-method=userpass", "-no-store", "-format=json", "username=alice", &format!("password={pw}")],
        )
    };
    let o = login("wrong");
    assert_eq!(o.status.code(), Some(2));
    let wrong_pw = out(&o);
    let o = b.run("", &["login", "-method=userpass", "-no-store", "username=nobody", "password=x"]);
    let unknown_user = out(&o);
    assert!(wrong_pw.contains("invalid username or password") && unknown_user.contains("invalid username or password"));

    let o = login("correct horse");
    assert!(o.status.success(), "{}", out(&o));
    let auth = json(&String::from_utf8_lossy(&o.stdout))["auth"].clone();
    let token = auth["client_token"].as_str().unwrap().to_string();
    let entity = auth["entity_id"].as_str().unwrap().to_string();
    assert!(!entity.is_empty(), "a login creates an entity");
    b.denied(&token, &["kv", "get", "kv/shared/x"]);

    // A group holding the entity grants 'reader' to its existing token at request time.
    b.ok(
        "root",
        &["write", "identity/group", "name=readers", "policies=reader", &format!("member_entity_ids={entity}")],
    );
    assert_eq!(b.ok(&token, &["kv", "get", "-field=v", "kv/shared/x"]).trim(), "1");
    let again = json(&String::from_utf8_lossy(&login("correct horse").stdout));
    assert_eq!(again["auth"]["entity_id"], entity.as_str(), "the same alias maps to the same entity");
    assert_eq!(again["auth"]["identity_policies"], serde_json::json!(["reader"]));
    // Disabling the entity locks its tokens out.
    b.ok("root", &["write", &format!("identity/entity/id/{entity}"), "disabled=true"]);
    b.denied(&token, &["kv", "get", "kv/shared/x"]);
}

#[test]
fn password_policies_generate_conforming_passwords() {
    let Some((_s, b, dir)) = setup() else { return };
    let file = dir.path().join("pw.hcl");
    std::fs::write(&file, "length = 16\nrule \"charset\" {\n  charset = \"0123456789\"\n  min-chars = 4\n}\nrule \"charset\" {\n  charset = \"abcdef\"\n}\n").unwrap();
    b.ok("root", &["write", "sys/policies/password/hexish", &format!("policy=@{}", file.display())]);
    for _ in 0..5 {
        let pw = b.ok("root", &["read", "-field=password", "sys/policies/password/hexish/generate"]);
        assert_eq!(pw.len(), 16, "{pw}");
        assert!(
            pw.chars().all(|c| c.is_ascii_hexdigit()) && pw.chars().filter(|c| c.is_ascii_digit()).count() >= 4,
            "{pw}"
        );
    }
    let o = b.run("root", &["write", "sys/policies/password/bad", "policy=length = 2"]);
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
}

#[test]
fn bad_policies_are_refused_with_line_and_problem() {
    let Some((_s, b, dir)) = setup() else { return };
    let file = dir.path().join("bad.hcl");
    std::fs::write(
        &file,
        "path \"kv/a\" {\n  capabilities = [\"read\"]\n}\npath \"kv/b\" {\n  capabilities = [\"read\", \"fly\"]\n}\n",
    )
    .unwrap();
    let o = b.run("root", &["policy", "write", "bad", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        out(&o).contains("line 4") && out(&o).contains("invalid capability \\\"fly\\\"") || out(&o).contains("fly"),
        "{}",
        out(&o)
    );
    std::fs::write(&file, "path \"kv/a\" {\n  capabilities = [\"read\"\n").unwrap();
    let o = b.run("root", &["policy", "write", "bad", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(out(&o).contains("failed to parse policy"), "{}", out(&o));
    let o = b.run("root", &["policy", "delete", "default"]);
    assert_eq!(o.status.code(), Some(2), "the default policy cannot be deleted");
    let o = b.run("root", &["policy", "write", "root", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "the root policy cannot be changed");
}

#[test]
fn approle_role_id_and_secret_id_login() {
    let Some((_s, b, dir)) = setup() else { return };
    let file = dir.path().join("ci.hcl");
    std::fs::write(&file, "path \"kv/ci/*\" { capabilities = [\"create\", \"update\", \"read\"] }\n").unwrap();
    b.ok("root", &["policy", "write", "ci", file.to_str().unwrap()]);
    b.ok("root", &["auth", "enable", "approle"]);
    b.ok(
        "root",
        &[
            "write",
            "auth/approle/role/builder",
            "token_policies=ci",
            "secret_id_ttl=10m",
            "secret_id_num_uses=2",
            "token_ttl=20m",
        ],
    );
    let role = b.json("root", &["read", "auth/approle/role/builder"]);
    assert_eq!(role["data"]["token_policies"], serde_json::json!(["ci"]));
    let role_id = b.ok("root", &["read", "-field=role_id", "auth/approle/role/builder/role-id"]);
    let sid = b.json("root", &["write", "-f", "auth/approle/role/builder/secret-id"]);
    let secret_id = sid["data"]["secret_id"].as_str().unwrap().to_string();
    let accessor = sid["data"]["secret_id_accessor"].as_str().unwrap().to_string();

    let login = |rid: &str, sid: &str| {
        b.run(
            "",
            &["write", "-format=json", "auth/approle/login", &format!("role_id={rid}"), &format!("secret_id={sid}")],
        )
    };
    let o = login(&role_id, &secret_id);
    assert!(o.status.success(), "{}", out(&o));
    let auth = json(&String::from_utf8_lossy(&o.stdout))["auth"].clone();
    let token = auth["client_token"].as_str().unwrap().to_string();
    assert_eq!(auth["lease_duration"], 1200, "token_ttl applies");
    assert_eq!(auth["metadata"]["role_name"], "builder");
    b.ok(&token, &["kv", "put", "kv/ci/artifact", "sha=abc"]);
    b.denied(&token, &["kv", "put", "kv/prod/x", "a=b"]);

    // Wrong secret-id, then the second (last) use, then refused.
    assert_eq!(login(&role_id, "not-the-secret").status.code(), Some(2));
    assert!(login(&role_id, &secret_id).status.success());
    let o = login(&role_id, &secret_id);
    assert_eq!(o.status.code(), Some(2), "a secret-id past its use limit is refused: {}", out(&o));

    // A secret-id past its TTL is refused; destroy by accessor works.
    let short = b.json("root", &["write", "auth/approle/role/builder/secret-id", "ttl=1s"])["data"]["secret_id"]
        .as_str()
        .unwrap()
        .to_string();
    std::thread::sleep(std::time::Duration::from_millis(2100));
    assert_eq!(login(&role_id, &short).status.code(), Some(2), "an expired secret-id is refused");
    let used_up = b.run(
        "root",
        &["write", "auth/approle/role/builder/secret-id-accessor/destroy", &format!("secret_id_accessor={accessor}")],
    );
    assert_eq!(used_up.status.code(), Some(2), "a used-up secret-id is already gone: {}", out(&used_up));
    let live = b.json("root", &["write", "-f", "auth/approle/role/builder/secret-id"]);
    let (live_sid, live_acc) =
        (live["data"]["secret_id"].as_str().unwrap(), live["data"]["secret_id_accessor"].as_str().unwrap());
    b.ok(
        "root",
        &["write", "auth/approle/role/builder/secret-id-accessor/destroy", &format!("secret_id_accessor={live_acc}")],
    );
    assert_eq!(login(&role_id, live_sid).status.code(), Some(2), "a destroyed secret-id is refused");
}

#[test]
fn token_roles_renewal_and_batch_tokens() {
    let Some((_s, b, _dir)) = setup() else { return };
    b.ok(
        "root",
        &["write", "auth/token/roles/deployer", "allowed_policies=default,deploy", "orphan=true", "token_period=1h"],
    );
    let role = b.json("root", &["read", "auth/token/roles/deployer"]);
    assert_eq!(role["data"]["allowed_policies"], serde_json::json!(["default", "deploy"]));
    let t = b.json("root", &["token", "create", "-role=deployer", "-policy=deploy"])["auth"].clone();
    assert_eq!(t["orphan"], true, "the role makes orphans");
    assert_eq!(t["lease_duration"], 3600, "a periodic token lives one period");
    let o = b.run("root", &["token", "create", "-role=deployer", "-policy=admin"]);
    assert_eq!(o.status.code(), Some(2), "a policy outside the role is refused: {}", out(&o));
    let look = b.json("root", &["token", "lookup", t["client_token"].as_str().unwrap()]);
    assert_eq!(look["data"]["role"], "deployer");

    // Renewal extends a renewable token up to its max; a non-renewable one refuses.
    let r = b.json("root", &["token", "create", "-policy=default", "-ttl=10m", "-explicit-max-ttl=1h"])["auth"].clone();
    let tok = r["client_token"].as_str().unwrap().to_string();
    let renewed = b.json(&tok, &["token", "renew", "-increment=30m"]);
    assert_eq!(renewed["auth"]["lease_duration"], 1800);
    let fixed = b.json("root", &["token", "create", "-policy=default", "-renewable=false"])["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(b.run(&fixed, &["token", "renew"]).status.code(), Some(2));

    // Batch tokens work without being stored, and cannot be revoked or be root.
    let batch = b.json("root", &["token", "create", "-type=batch", "-policy=default", "-ttl=5m"])["auth"].clone();
    let bt = batch["client_token"].as_str().unwrap().to_string();
    assert!(bt.starts_with("b.") && batch["accessor"] == "", "{batch}");
    assert_eq!(b.json(&bt, &["token", "lookup"])["data"]["type"], "batch");
    assert_eq!(b.run("root", &["token", "create", "-type=batch", "-policy=root"]).status.code(), Some(2));
    // Accessors and tidy (sudo paths) work for root.
    assert!(b.ok("root", &["list", "auth/token/accessors"]).contains(look["data"]["accessor"].as_str().unwrap()));
    b.ok("root", &["write", "-f", "auth/token/tidy"]);
}

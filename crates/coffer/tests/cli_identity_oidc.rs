//! Identity tokens through the CLIs, as operators use them (`bao`/`coffer` read, write, list,
//! delete on `identity/oidc/…`): the real `bao` CLI and the `coffer` CLI against a Coffer dev
//! server, and the `bao` CLI against a real OpenBao dev server, with the same expectations —
//! including the answers served outside Vault's envelope (discovery, introspection), which the
//! CLIs show as the secret's data.
mod common;
use common::*;

fn run(bin: &str, addr: &str, args: &[&str]) -> (i32, String) {
    let o = cli(bin, addr, Some("root"), args);
    (o.status.code().unwrap_or(-1), out(&o))
}

fn ok(bin: &str, addr: &str, args: &[&str]) -> String {
    let (code, text) = run(bin, addr, args);
    assert_eq!(code, 0, "{bin} {args:?}:\n{text}");
    text
}

#[test]
fn the_cli_reads_and_writes_identity_keys_roles_discovery_and_introspection() {
    let Some(bao) = bao_path() else { return };
    let coffer = Server::start_dev("root");
    let real = RealBao::start(&bao);
    for (cli_bin, addr, what) in [
        (bao.as_str(), &coffer.addr, "bao on Coffer"),
        (coffer_bin(), &coffer.addr, "coffer on Coffer"),
        (bao.as_str(), &real.addr, "bao on OpenBao"),
    ] {
        let tag = if cli_bin == bao { "b" } else { "c" };
        let key = format!("cli-{tag}");
        ok(cli_bin, addr, &["write", &format!("identity/oidc/key/{key}"), "algorithm=ES256", "allowed_client_ids=*"]);
        let table = ok(cli_bin, addr, &["read", &format!("identity/oidc/key/{key}")]);
        assert!(table.contains("algorithm             ES256"), "{what}:\n{table}");
        assert!(table.contains("rotation_period       24h"), "{what}:\n{table}");
        let list = ok(cli_bin, addr, &["list", "identity/oidc/key"]);
        assert!(
            list.lines().any(|l| l.trim() == key) && list.lines().any(|l| l.trim() == "default"),
            "{what}:\n{list}"
        );
        ok(cli_bin, addr, &["write", &format!("identity/oidc/role/{key}"), &format!("key={key}"), "ttl=1h"]);
        let cid = ok(cli_bin, addr, &["read", "-field=client_id", &format!("identity/oidc/role/{key}")]);
        assert_eq!(cid.trim().len(), 26, "{what}: {cid}");
        let iss = ok(cli_bin, addr, &["read", "-field=issuer", "identity/oidc/.well-known/openid-configuration"]);
        // Listening on port 0 without api_addr, OpenBao names itself by the configured address
        // (`http://127.0.0.1:0`); Coffer uses the bound one.
        let expected = if what.ends_with("OpenBao") {
            "http://127.0.0.1:0/v1/identity/oidc".to_string()
        } else {
            format!("http://{addr}/v1/identity/oidc")
        };
        assert_eq!(iss.trim(), expected, "{what}");
        let active = ok(cli_bin, addr, &["write", "-field=active", "identity/oidc/introspect", "token=not.a.jwt"]);
        assert_eq!(active.trim(), "false", "{what}");
        ok(cli_bin, addr, &["write", "-force", &format!("identity/oidc/key/{key}/rotate")]);
        let (code, text) = run(cli_bin, addr, &["delete", &format!("identity/oidc/key/{key}")]);
        assert_eq!(code, 2, "{what}: a key in use was deleted:\n{text}");
        assert!(text.contains("currently referenced by these roles"), "{what}:\n{text}");
        ok(cli_bin, addr, &["delete", &format!("identity/oidc/role/{key}")]);
        ok(cli_bin, addr, &["delete", &format!("identity/oidc/key/{key}")]);
    }
}

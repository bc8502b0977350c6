//! Flows a Rust application runs through vaultrs against the server at VAULT_ADDR (root token in
//! VAULT_TOKEN): response wrapping (the application unwraps with the wrapping token as its own
//! token), auth method listing into vaultrs' typed structs (which need `config.token_type`),
//! token roles (typed reads), token leases renewed and revoked, KV v2. Prints one line per flow
//! and `vaultrs: N passed, N failed`; exits non-zero on a failure.
use std::collections::HashMap;
use vaultrs::api::kv2::requests::ReadSecretRequest;
use vaultrs::api::token::requests::{CreateTokenRequest, SetTokenRoleRequest};
use vaultrs::api::ResponseWrapper;
use vaultrs::client::{VaultClient, VaultClientSettingsBuilder};
use vaultrs::error::ClientError;
use vaultrs::{kv2, sys, token};

type R = Result<(), String>;

fn client(addr: &str, token: &str) -> VaultClient {
    VaultClient::new(VaultClientSettingsBuilder::default().address(addr).token(token).build().expect("settings"))
        .expect("client")
}

fn e(what: &str) -> impl Fn(ClientError) -> String + '_ {
    move |err| format!("{what}: {err:?}")
}

fn check(ok: bool, what: &str) -> R {
    if ok {
        Ok(())
    } else {
        Err(what.to_string())
    }
}

async fn wrapping(addr: &str, root: &str, tag: &str) -> R {
    let c = client(addr, root);
    let path = format!("vaultrs/{tag}");
    let mut data = HashMap::new();
    data.insert("pw", "s3cret");
    kv2::set(&c, "secret", &path, &data).await.map_err(e("kv2 set"))?;
    let wrapped = ReadSecretRequest::builder()
        .mount("secret")
        .path(&path)
        .build()
        .map_err(|x| x.to_string())?
        .wrap(&c)
        .await
        .map_err(e("wrap"))?;
    let info = wrapped.lookup(&c).await.map_err(e("wrapping lookup"))?;
    check(info.creation_path == format!("secret/data/{path}"), "creation_path")?;
    // The application holds only the wrapping token and unwraps with it as its own token.
    let app = client(addr, &wrapped.info.token);
    let inner: serde_json::Value = sys::wrapping::unwrap(&app, None).await.map_err(e("unwrap"))?;
    check(inner["data"]["pw"] == "s3cret", &format!("unwrapped data: {inner}"))?;
    match sys::wrapping::unwrap::<serde_json::Value>(&app, None).await {
        Err(ClientError::APIError { code: 400, .. }) => Ok(()),
        other => Err(format!("a second unwrap must fail with 400: {other:?}")),
    }
}

async fn auth_listing(addr: &str, root: &str, tag: &str) -> R {
    let c = client(addr, root);
    let path = format!("vr-up-{tag}");
    sys::auth::enable(&c, &path, "userpass", None).await.map_err(e("auth enable"))?;
    // Typed: each mount's config must carry token_type.
    let list = sys::auth::list(&c).await.map_err(e("auth list"))?;
    let m = list.get(&format!("{path}/")).ok_or("mount missing")?;
    check(m.mount_type == "userpass" && m.config.token_type == "default-service", "userpass mount")?;
    check(list.get("token/").is_some_and(|t| t.config.token_type == "default-service"), "token mount")?;
    sys::auth::disable(&c, &path).await.map_err(e("auth disable"))
}

async fn token_roles(addr: &str, root: &str, tag: &str) -> R {
    let c = client(addr, root);
    let role = format!("vr-role-{tag}");
    token::role::set(
        &c,
        &role,
        Some(SetTokenRoleRequest::builder().allowed_policies(vec!["default".into(), "app".into()]).orphan(true).token_period("1h")),
    )
    .await
    .map_err(e("role set"))?;
    let r = token::role::read(&c, &role).await.map_err(e("role read"))?;
    check(r.name == role && r.orphan && r.token_period == 3600, &format!("role read: {r:?}"))?;
    check(r.allowed_policies == ["app", "default"], &format!("allowed_policies sorted: {:?}", r.allowed_policies))?;
    check(token::role::list(&c).await.map_err(e("role list"))?.keys.contains(&role), "role listed")?;
    let t = token::new_role(&c, &role, None).await.map_err(e("token from role"))?;
    check(t.orphan && t.renewable, &format!("role token: {t:?}"))?;
    let look = token::lookup(&c, &t.client_token).await.map_err(e("lookup"))?;
    check(look.role.as_deref() == Some(role.as_str()), &format!("lookup role: {look:?}"))?;
    token::role::delete(&c, &role).await.map_err(e("role delete"))
}

async fn token_leases(addr: &str, root: &str, _tag: &str) -> R {
    let c = client(addr, root);
    let t = token::new(&c, Some(CreateTokenRequest::builder().policies(vec!["default".into()]).ttl("1h")))
        .await
        .map_err(e("token create"))?;
    check(t.lease_duration == 3600 && t.renewable, &format!("created: {t:?}"))?;
    let renewed = token::renew(&c, &t.client_token, Some("2h")).await.map_err(e("renew"))?;
    check(renewed.lease_duration == 7200, &format!("renewed: {renewed:?}"))?;
    let look = token::lookup(&c, &t.client_token).await.map_err(e("lookup"))?;
    check(look.ttl > 7000 && look.renewable == Some(true), &format!("lookup: {look:?}"))?;
    token::revoke(&c, &t.client_token).await.map_err(e("revoke"))?;
    match token::lookup(&c, &t.client_token).await {
        Err(ClientError::APIError { code, .. }) if code == 403 || code == 400 => Ok(()),
        other => Err(format!("a revoked token must not be found: {other:?}")),
    }
}

async fn kv_v2(addr: &str, root: &str, tag: &str) -> R {
    let c = client(addr, root);
    let path = format!("vaultrs/kv-{tag}");
    let mut data = HashMap::new();
    data.insert("user", "u");
    let v1 = kv2::set(&c, "secret", &path, &data).await.map_err(e("set"))?;
    data.insert("user", "u2");
    let v2 = kv2::set(&c, "secret", &path, &data).await.map_err(e("set again"))?;
    check(v1.version == 1 && v2.version == 2, "versions")?;
    let read: HashMap<String, String> = kv2::read(&c, "secret", &path).await.map_err(e("read"))?;
    check(read.get("user").map(String::as_str) == Some("u2"), "latest version read")?;
    let meta = kv2::read_metadata(&c, "secret", &path).await.map_err(e("metadata"))?;
    check(meta.current_version == 2, "current_version")
}

#[tokio::main]
async fn main() {
    let addr = std::env::var("VAULT_ADDR").expect("VAULT_ADDR");
    let root = std::env::var("VAULT_TOKEN").expect("VAULT_TOKEN");
    let tag = format!("{:x}", std::process::id());
    let (mut passed, mut failed) = (0, 0);
    macro_rules! flow {
        ($f:ident) => {
            match $f(&addr, &root, &tag).await {
                Ok(()) => {
                    passed += 1;
                    println!("ok   {}", stringify!($f));
                }
                Err(why) => {
                    failed += 1;
                    println!("FAIL {}: {why}", stringify!($f));
                }
            }
        };
    }
    flow!(wrapping);
    flow!(auth_listing);
    flow!(token_roles);
    flow!(token_leases);
    flow!(kv_v2);
    println!("vaultrs: {passed} passed, {failed} failed");
    std::process::exit(if failed == 0 { 0 } else { 1 });
}

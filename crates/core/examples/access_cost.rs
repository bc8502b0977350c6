//! Measures the cost of an ACL decision and of a (cached) token lookup, and of a whole
//! in-process request through `Core::handle` with a policy-checked token.
//! Usage: cargo run --release -p coffer-core --example access_cost
use coffer_acl::{parse, Acl};
use coffer_core::{Core, CoreConfig, CoreRequest};
use coffer_sdk::Operation;
use serde_json::{json, Map};
use std::sync::Arc;
use std::time::Instant;

fn policy_20_rules() -> String {
    let mut s = String::new();
    for i in 0..8 {
        s.push_str(&format!("path \"kv/team{i}/*\" {{ capabilities = [\"read\", \"list\"] }}\n"));
        s.push_str(&format!("path \"kv/team{i}/+/private\" {{ capabilities = [\"deny\"] }}\n"));
    }
    s.push_str("path \"kv/app/db\" { capabilities = [\"read\"] }\n");
    s.push_str(
        "path \"kv/app/*\" {\n  capabilities = [\"create\", \"update\"]\n  allowed_parameters = { \"name\" = [] }\n}\n",
    );
    s.push_str("path \"sys/mounts\" { capabilities = [\"read\"] }\n");
    s.push_str("path \"auth/token/lookup-self\" { capabilities = [\"read\"] }\n");
    s
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let acl = Acl::new(&[Arc::new(parse("p", &policy_20_rules()).unwrap())]);
    let data = Map::new();
    let paths = ["kv/team3/x/y", "kv/app/db", "kv/team7/a/private", "kv/nothing/here"];
    let n = 2_000_000u32;
    let t = Instant::now();
    let mut allowed = 0u32;
    for i in 0..n {
        if acl.allow(Operation::Read, paths[(i % 4) as usize], &data, false).allowed {
            allowed += 1;
        }
    }
    let per = t.elapsed().as_nanos() as f64 / n as f64;
    println!(
        "ACL decision, 20-rule policy (exact, glob, + and deny paths): {per:.0} ns/check ({allowed} allowed of {n})"
    );

    let barrier = Arc::new(coffer_barrier::Barrier::new(Arc::new(coffer_storage_inmem::InmemStorage::new())));
    let core = Core::new(barrier, CoreConfig::default(), coffer_builtins::registry());
    let (_, root) = core.init_with(1, 1, Some("root"), true).await.unwrap();
    let call = |path: &str, op: Operation, data: serde_json::Value, token: &str| CoreRequest {
        operation: op,
        path: path.into(),
        data: data.as_object().cloned().unwrap_or_default(),
        token: Some(token.into()),
        remote_addr: None,
        wrap_ttl: None,
        basic_auth: None,
    };
    core.handle(call("sys/mounts/kv", Operation::Update, json!({"type": "kv"}), &root)).await.unwrap();
    core.handle(call("kv/app/db", Operation::Update, json!({"password": "x"}), &root)).await.unwrap();
    core.handle(call("sys/policies/acl/p", Operation::Update, json!({"policy": policy_20_rules()}), &root))
        .await
        .unwrap();
    let r = core.handle(call("auth/token/create", Operation::Update, json!({"policies": ["p"]}), &root)).await.unwrap();
    let token = r.auth.unwrap().client_token;

    let active = core.active().unwrap();
    let n = 500_000u32;
    let t = Instant::now();
    for _ in 0..n {
        let e = active.tokens.lookup(&token).await.unwrap();
        assert!(e.is_some());
    }
    let per = t.elapsed().as_nanos() as f64 / n as f64;
    println!("token lookup (HMAC of the token + cache hit): {per:.0} ns/lookup");

    let n = 200_000u32;
    let t = Instant::now();
    for _ in 0..n {
        let r = core.handle(call("kv/app/db", Operation::Read, json!({}), &token)).await.unwrap();
        assert!(r.data.is_some());
    }
    let per = t.elapsed().as_nanos() as f64 / n as f64 / 1000.0;
    println!(
        "whole in-process KV v1 read with a policy-checked token (lookup, ACL, barrier decrypt): {per:.2} µs/request"
    );
}

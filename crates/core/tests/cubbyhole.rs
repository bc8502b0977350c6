//! A revoked token's cubbyhole is gone from physical storage, not merely unreachable.
use coffer_core::{Core, CoreConfig, CoreRequest};
use coffer_physical::Storage;
use coffer_sdk::Operation;
use serde_json::json;
use std::sync::Arc;

fn req(path: &str, op: Operation, data: serde_json::Value, token: &str) -> CoreRequest {
    CoreRequest {
        operation: op,
        path: path.into(),
        data: data.as_object().cloned().unwrap_or_default(),
        token: Some(token.into()),
        remote_addr: None,
        wrap_ttl: None,
        basic_auth: None,
    }
}

#[tokio::test]
async fn revoking_a_token_destroys_its_cubbyhole() {
    let phys = Arc::new(coffer_storage_inmem::InmemStorage::new());
    let core = Core::new(
        Arc::new(coffer_barrier::Barrier::new(phys.clone())),
        CoreConfig::default(),
        coffer_builtins::registry(),
    );
    core.init_with(1, 1, Some("root"), true).await.unwrap();
    let r = core
        .handle(req("auth/token/create", Operation::Update, json!({"policies": ["default"]}), "root"))
        .await
        .unwrap();
    let t = r.auth.unwrap().client_token;
    core.handle(req("cubbyhole/a/b", Operation::Update, json!({"k": "v"}), &t)).await.unwrap();
    assert_eq!(phys.list("cubbyhole/").await.unwrap().len(), 1, "the token has a cubbyhole");
    core.handle(req("auth/token/revoke-self", Operation::Update, json!({}), &t)).await.unwrap();
    assert!(phys.list("cubbyhole/").await.unwrap().is_empty(), "the cubbyhole is gone with its token");
}

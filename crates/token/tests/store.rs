//! The token store on a real (in-memory) barrier.

use coffer_barrier::{Barrier, SecureStorage};
use coffer_crypto::Key;
use coffer_sdk::{ErrorKind, LogicalError};
use coffer_storage_inmem::InmemStorage;
use coffer_token::{TokenEntry, TokenError, TokenStore, ID_PREFIX};
use std::sync::Arc;

async fn barrier() -> Arc<Barrier> {
    let b = Barrier::new(Arc::new(InmemStorage::new()));
    let kek = Key::generate().unwrap();
    b.initialize(&kek, b"{}".to_vec()).await.unwrap();
    b.unseal(&kek).await.unwrap();
    Arc::new(b)
}

fn entry(policies: &[&str]) -> TokenEntry {
    TokenEntry {
        policies: policies.iter().map(|p| p.to_string()).collect(),
        path: "auth/token/create".into(),
        display_name: "token".into(),
        creation_time: coffer_token::now(),
        token_type: "service".into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn tokens_are_stored_under_their_hmac_and_found_by_token_and_by_accessor() {
    let b = barrier().await;
    let store = TokenStore::load(b.clone()).await.unwrap();
    let (token, e) = store.create(entry(&["b", "a", "a"]), None).await.unwrap();
    assert!(token.starts_with("s.") && token.len() == 2 + coffer_token::TOKEN_RANDOM_LEN);
    assert_eq!(e.policies, ["a", "b"], "policies are kept sorted and unique");
    let ids = b.list(ID_PREFIX).await.unwrap();
    assert_eq!(ids, [store.hash(&token)]);
    assert!(!ids[0].contains(&token[2..]), "the token itself is never a storage key");
    // A second store over the same barrier (a restart) finds it: the salt is persisted.
    let again = TokenStore::load(b).await.unwrap();
    assert_eq!(again.lookup(&token).await.unwrap().unwrap().accessor, e.accessor);
    let (h, by_accessor) = again.lookup_accessor(&e.accessor).await.unwrap().unwrap();
    assert_eq!((h, by_accessor.policies.clone()), (store.hash(&token), e.policies));
    assert!(again.lookup("s.unknown").await.unwrap().is_none());
}

#[tokio::test]
async fn revoking_a_parent_revokes_its_children_and_their_cubbyholes() {
    let b = barrier().await;
    let store = TokenStore::load(b.clone()).await.unwrap();
    let (parent, _) = store.create(entry(&["default"]), None).await.unwrap();
    let mut child = entry(&["default"]);
    child.parent = Some(store.hash(&parent));
    let (child, _) = store.create(child, None).await.unwrap();
    let cubby = format!("{}secret", coffer_token::cubbyhole_prefix(&store.hash(&child)));
    b.put(&cubby, b"x").await.unwrap();
    store.revoke(&parent, true).await.unwrap();
    assert!(store.lookup(&parent).await.unwrap().is_none());
    assert!(store.lookup(&child).await.unwrap().is_none());
    assert!(b.get(&cubby).await.unwrap().is_none(), "the child's cubbyhole went with it");
    let revoked: Vec<String> = store.take_revoked().into_iter().map(|r| r.hash).collect();
    assert!(revoked.contains(&store.hash(&parent)) && revoked.contains(&store.hash(&child)));
}

#[tokio::test]
async fn batch_tokens_live_in_the_token_and_refuse_revocation_as_a_bad_request() {
    let store = TokenStore::load(barrier().await).await.unwrap();
    let mut e = entry(&["default"]);
    e.token_type = "batch".into();
    let (token, _) = store.create(e, None).await.unwrap();
    assert!(token.starts_with("b."));
    assert_eq!(store.lookup(&token).await.unwrap().unwrap().policies, ["default"]);
    let err = store.revoke(&token, true).await.unwrap_err();
    assert!(matches!(err, TokenError::BatchNotRevocable));
    let l = LogicalError::from(err);
    assert_eq!((l.kind, l.messages), (ErrorKind::BadRequest, vec!["batch tokens cannot be revoked".to_string()]));
}

#[tokio::test]
async fn a_duplicate_token_id_is_refused_with_the_same_message_as_before() {
    let store = TokenStore::load(barrier().await).await.unwrap();
    store.create_root(Some("root")).await.unwrap();
    let err = store.create(entry(&["default"]), Some("root")).await.unwrap_err();
    let l = LogicalError::from(err);
    assert_eq!(
        (l.kind, l.messages),
        (ErrorKind::BadRequest, vec!["cannot create a token with a duplicate ID".to_string()])
    );
}

#[tokio::test]
async fn a_sealed_barrier_is_reported_as_sealed() {
    let b = barrier().await;
    let store = TokenStore::load(b.clone()).await.unwrap();
    b.seal().await;
    let l = LogicalError::from(store.create(entry(&["default"]), None).await.unwrap_err());
    assert_eq!(l.kind, LogicalError::sealed().kind);
}

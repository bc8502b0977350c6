//! The lease store on a real (in-memory) barrier.

use coffer_barrier::{Barrier, SecureStorage};
use coffer_crypto::Key;
use coffer_expiration::{Lease, LeaseStore};
use coffer_sdk::SecretLease;
use coffer_storage_inmem::InmemStorage;
use std::sync::Arc;

async fn barrier() -> Arc<Barrier> {
    let b = Barrier::new(Arc::new(InmemStorage::new()));
    let kek = Key::generate().unwrap();
    b.initialize(&kek, b"{}".to_vec()).await.unwrap();
    b.unseal(&kek).await.unwrap();
    Arc::new(b)
}

fn secret(ttl: i64, max_ttl: i64) -> SecretLease {
    SecretLease { ttl, max_ttl, renewable: true, internal: Default::default() }
}

#[tokio::test]
async fn a_secret_lease_takes_the_shorter_of_its_ttls_and_is_found_by_id_prefix_token_and_minute() {
    let b = barrier().await;
    let store = LeaseStore::new(b.clone());
    let now = 6_000_000;
    // The secret asks 2h within 3h; the mount allows 1h at most: both are capped.
    let l = Lease::for_secret("db/creds/ro/", "tokhash", &secret(7200, 10800), 600, 3600, now).unwrap();
    assert!(l.id.starts_with("db/creds/ro/") && l.id.len() == "db/creds/ro/".len() + 24, "{}", l.id);
    assert_eq!((l.ttl, l.expire_time, l.max_expire), (3600, now + 3600, now + 3600));
    // No TTL of its own: the mount's default.
    let d = Lease::for_secret("db/creds/ro", "", &secret(0, 0), 600, 3600, now).unwrap();
    assert_eq!(d.ttl, 600);
    store.put(&l, None).await.unwrap();
    store.put(&d, None).await.unwrap();

    assert_eq!(store.get(&l.id).await.unwrap().unwrap().token_hash, "tokhash");
    for bad in ["", "../x", "a\0b"] {
        assert!(store.get(bad).await.unwrap().is_none(), "{bad:?} names no lease");
    }
    let mut under = store.ids_under("db/creds").await.unwrap();
    under.sort();
    let mut want = vec![l.id.clone(), d.id.clone()];
    want.sort();
    assert_eq!(under, want);
    assert_eq!(store.list("db/").await.unwrap(), vec!["creds/"]);
    let of_token = store.of_token("tokhash").await.unwrap();
    assert_eq!(of_token.iter().map(|e| e.lease_id.clone()).collect::<Vec<_>>(), vec![Some(l.id.clone())]);

    // Due minutes: the minute of d (600 s on) and of l (3600 s on), in order.
    let current = (now + 4000) / 60;
    let minutes = store.due_minutes(None, current).await.unwrap();
    assert_eq!(minutes, vec![(now + 600) / 60, (now + 3600) / 60]);
    assert_eq!(store.due_minutes(Some(current - 1), current).await.unwrap(), vec![current - 1, current]);
    let due = store.due_in((now + 600) / 60).await.unwrap();
    assert_eq!(due.iter().map(|e| e.lease_id.clone()).collect::<Vec<_>>(), vec![Some(d.id.clone())]);

    // A renewal moves the time index entry; removal takes every entry.
    let mut renewed = l.clone();
    renewed.expire_time = now + 7200;
    store.put(&renewed, Some(l.expire_time)).await.unwrap();
    assert!(store.due_in((now + 3600) / 60).await.unwrap().is_empty(), "the old minute is left");
    store.remove(&renewed).await.unwrap();
    assert!(store.get(&l.id).await.unwrap().is_none());
    assert!(store.of_token("tokhash").await.unwrap().is_empty());
    assert!(store.due_in((now + 7200) / 60).await.unwrap().is_empty());
    assert_eq!(store.tidy().await.unwrap(), 0, "nothing stale after a removal");
}

#[tokio::test]
async fn tidy_drops_time_entries_whose_lease_is_gone_and_lookup_shows_rfc3339_times() {
    let b = barrier().await;
    let store = LeaseStore::new(b.clone());
    let l = Lease::for_secret("kv/x", "", &secret(60, 0), 60, 600, 1_700_000_000).unwrap();
    store.put(&l, None).await.unwrap();
    // The lease entry vanishes behind the store's back: its index entry is stale.
    b.delete(&format!("sys/expire/id/{}", l.id)).await.unwrap();
    assert_eq!(store.tidy().await.unwrap(), 1);
    assert_eq!(store.tidy().await.unwrap(), 0);
    let shown = l.to_json(1_700_000_030);
    assert_eq!(shown["issue_time"], "2023-11-14T22:13:20Z");
    assert_eq!(shown["ttl"], 30);
    assert!(shown["last_renewal"].is_null());
    assert_eq!(Lease::token_lease_id("auth/token/create/", "h"), "auth/token/create/h");
}

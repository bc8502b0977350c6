//! Behaviour of the barrier against a real (in-memory) physical store.
use coffer_barrier::{Barrier, BarrierError, RotationConfig, SecureStorage};
use coffer_crypto::Key;
use coffer_physical::Storage;
use coffer_storage_inmem::InmemStorage;
use std::sync::Arc;

async fn fresh() -> (Arc<InmemStorage>, Barrier, Key) {
    let phys = Arc::new(InmemStorage::new());
    let b = Barrier::new(phys.clone());
    let kek = Key::generate().unwrap();
    b.initialize(&kek, b"{}".to_vec()).await.unwrap();
    b.unseal(&kek).await.unwrap();
    (phys, b, kek)
}

#[tokio::test]
async fn stored_bytes_never_contain_the_plaintext() {
    let (phys, b, _) = fresh().await;
    b.put("secret/a", b"hunter2-hunter2").await.unwrap();
    let raw = phys.get("secret/a").await.unwrap().unwrap();
    assert!(!raw.windows(7).any(|w| w == b"hunter2"), "plaintext leaked to storage");
    assert_eq!(&**b.get("secret/a").await.unwrap().unwrap(), b"hunter2-hunter2");
}

#[tokio::test]
async fn wrong_kek_refused_and_sealed_barrier_refuses_access() {
    let (_, b, kek) = fresh().await;
    b.put("x", b"1").await.unwrap();
    b.seal().await;
    assert!(matches!(b.get("x").await, Err(BarrierError::Sealed)));
    assert!(matches!(b.unseal(&Key::generate().unwrap()).await, Err(BarrierError::WrongKey)));
    assert!(b.is_sealed());
    b.unseal(&kek).await.unwrap();
    assert_eq!(&**b.get("x").await.unwrap().unwrap(), b"1");
}

#[tokio::test]
async fn ciphertext_moved_to_another_path_fails_authentication() {
    let (phys, b, _) = fresh().await;
    b.put("a", b"one").await.unwrap();
    let blob = phys.get("a").await.unwrap().unwrap();
    phys.put("b", blob.clone()).await.unwrap();
    assert!(matches!(b.get("b").await, Err(BarrierError::Corrupt(_))));
    let mut tampered = blob;
    let n = tampered.len();
    tampered[n - 1] ^= 0x01;
    phys.put("a", tampered).await.unwrap();
    assert!(matches!(b.get("a").await, Err(BarrierError::Corrupt(_))));
}

#[tokio::test]
async fn rotation_adds_a_term_and_old_entries_stay_readable_after_restart() {
    let (phys, b, kek) = fresh().await;
    b.put("old", b"v1").await.unwrap();
    assert_eq!(b.key_status().unwrap().term, 1);
    assert_eq!(b.rotate().await.unwrap(), 2);
    b.put("new", b"v2").await.unwrap();
    let raw_new = phys.get("new").await.unwrap().unwrap();
    assert_eq!(&raw_new[1..5], &2u32.to_be_bytes(), "new writes use the new term");
    // A new barrier over the same storage (a restart) reads both.
    let b2 = Barrier::new(phys.clone());
    b2.unseal(&kek).await.unwrap();
    assert_eq!(b2.key_status().unwrap().term, 2);
    assert_eq!(&**b2.get("old").await.unwrap().unwrap(), b"v1");
    assert_eq!(&**b2.get("new").await.unwrap().unwrap(), b"v2");
}

#[tokio::test]
async fn operation_count_triggers_automatic_rotation() {
    let (_, b, _) = fresh().await;
    b.set_rotation_config(RotationConfig { max_operations: 5, interval: 0, enabled: true }).await.unwrap();
    for i in 0..5 {
        b.put(&format!("k{i}"), b"v").await.unwrap();
    }
    assert_eq!(b.key_status().unwrap().term, 2, "fifth encryption rotated the key");
    assert_eq!(b.key_status().unwrap().encryptions, 0);
}

#[tokio::test]
async fn rekey_rewraps_root_key_old_kek_stops_working() {
    let (phys, b, old) = fresh().await;
    b.put("x", b"1").await.unwrap();
    let new = Key::generate().unwrap();
    b.rewrap_root(&new, b"{}".to_vec()).await.unwrap();
    let b2 = Barrier::new(phys.clone());
    assert!(matches!(b2.unseal(&old).await, Err(BarrierError::WrongKey)));
    b2.unseal(&new).await.unwrap();
    assert_eq!(&**b2.get("x").await.unwrap().unwrap(), b"1");
}

#[tokio::test]
async fn reserved_paths_are_not_reachable_through_the_plaintext_view() {
    let (_, b, _) = fresh().await;
    assert!(matches!(b.get("core/keyring").await, Err(BarrierError::Reserved(_))));
    assert!(matches!(b.put("core/root-key", b"x").await, Err(BarrierError::Reserved(_))));
    let fresh_init = b.initialize(&Key::generate().unwrap(), vec![]).await;
    assert!(matches!(fresh_init, Err(BarrierError::AlreadyInitialized)));
}

#[tokio::test]
async fn a_snapshot_restores_whole_and_one_with_other_keys_needs_force_then_its_own_keys() {
    let (_, b, _) = fresh().await;
    b.put("kv/a", b"before").await.unwrap();
    let snap = b.export_physical().await.unwrap();
    assert!(snap.iter().all(|(_, v)| !v.windows(6).any(|w| w == b"before")), "a snapshot holds ciphertext only");
    b.put("kv/a", b"after").await.unwrap();
    b.put("kv/b", b"new").await.unwrap();
    // Same keys: restored and still unsealed, the later writes gone.
    assert_eq!(b.restore_physical(snap, false).await.unwrap(), coffer_barrier::Restored::Unsealed);
    assert_eq!(&**b.get("kv/a").await.unwrap().unwrap(), b"before");
    assert!(b.get("kv/b").await.unwrap().is_none());

    // Another server's snapshot: refused without force, nothing changed.
    let (_, other, other_kek) = fresh().await;
    other.put("kv/a", b"other server").await.unwrap();
    let foreign = other.export_physical().await.unwrap();
    assert!(matches!(b.restore_physical(foreign.clone(), false).await, Err(BarrierError::SnapshotKeys)));
    assert_eq!(&**b.get("kv/a").await.unwrap().unwrap(), b"before");
    // Forced: sealed, and only the other server's key opens it.
    assert_eq!(b.restore_physical(foreign, true).await.unwrap(), coffer_barrier::Restored::Sealed);
    assert!(b.is_sealed());
    b.seal().await;
    assert!(b.unseal(&Key::generate().unwrap()).await.is_err());
    b.unseal(&other_kek).await.unwrap();
    assert_eq!(&**b.get("kv/a").await.unwrap().unwrap(), b"other server");

    // Not a server's snapshot at all.
    let e = b.restore_physical(vec![("kv/x".into(), vec![1])], true).await.unwrap_err();
    assert!(e.to_string().contains("holds no keyring"), "{e}");
}

//! The conformance suite every storage backend runs: `run(&backend).await` from a test.
//!
//! Each check panics with a message naming the broken rule, so a failing backend says what it
//! got wrong.

use crate::{Storage, TxnOp};
use std::sync::Arc;

/// Runs every conformance check against an empty backend.
pub async fn run(s: Arc<dyn Storage>) {
    assert!(s.list("").await.expect("list root").is_empty(), "conformance suite needs an empty backend");
    put_get_delete(&*s).await;
    overwrite_replaces(&*s).await;
    list_children(&*s).await;
    binary_and_large_values(&*s).await;
    transaction_is_atomic(&*s).await;
    concurrent_writers(s.clone()).await;
    unusual_keys(&*s).await;
    export_and_replace_all(&*s).await;
    invalid_keys_refused(&*s).await;
}

async fn put_get_delete(s: &dyn Storage) {
    assert_eq!(s.get("missing").await.unwrap(), None, "get of a missing key is None");
    s.put("foo", b"bar".to_vec()).await.unwrap();
    assert_eq!(s.get("foo").await.unwrap().as_deref(), Some(&b"bar"[..]), "get returns put");
    s.delete("foo").await.unwrap();
    assert_eq!(s.get("foo").await.unwrap(), None, "delete removes the key");
    s.delete("foo").await.expect("deleting a missing key is not an error");
    s.put("empty", Vec::new()).await.unwrap();
    assert_eq!(s.get("empty").await.unwrap().as_deref(), Some(&b""[..]), "empty value is kept");
    s.delete("empty").await.unwrap();
}

async fn overwrite_replaces(s: &dyn Storage) {
    s.put("ow", b"one".to_vec()).await.unwrap();
    s.put("ow", b"two".to_vec()).await.unwrap();
    assert_eq!(s.get("ow").await.unwrap().as_deref(), Some(&b"two"[..]), "put overwrites");
    s.delete("ow").await.unwrap();
}

async fn list_children(s: &dyn Storage) {
    for k in ["l/a", "l/b/c", "l/b/d", "l/b/e/f", "l/c", "lz", "l/bz"] {
        s.put(k, k.as_bytes().to_vec()).await.unwrap();
    }
    assert_eq!(s.list("l/").await.unwrap(), vec!["a", "b/", "bz", "c"], "immediate children");
    assert_eq!(s.list("l/b/").await.unwrap(), vec!["c", "d", "e/"], "nested children");
    assert_eq!(s.list("").await.unwrap(), vec!["l/", "lz"], "root listing");
    assert!(s.list("nothing/").await.unwrap().is_empty(), "missing prefix lists nothing");
    assert_eq!(s.list("l/b").await.unwrap(), vec!["/", "z"], "prefix without slash is raw");
    for k in ["l/a", "l/b/c", "l/b/d", "l/b/e/f", "l/c", "lz", "l/bz"] {
        s.delete(k).await.unwrap();
    }
    assert!(s.list("l/").await.unwrap().is_empty(), "folders vanish with their last key");
    assert!(s.list("").await.unwrap().is_empty());
}

async fn binary_and_large_values(s: &dyn Storage) {
    let bin: Vec<u8> = (0..=255u8).cycle().take(4096).collect();
    s.put("bin", bin.clone()).await.unwrap();
    assert_eq!(s.get("bin").await.unwrap(), Some(bin), "binary values survive");
    let big = vec![0xA5u8; 4 * 1024 * 1024];
    s.put("big", big.clone()).await.unwrap();
    assert_eq!(s.get("big").await.unwrap().map(|v| v.len()), Some(big.len()), "4 MiB values");
    s.delete("bin").await.unwrap();
    s.delete("big").await.unwrap();
}

async fn transaction_is_atomic(s: &dyn Storage) {
    s.put("t/old", b"x".to_vec()).await.unwrap();
    s.transaction(vec![
        TxnOp::Put { key: "t/a".into(), value: b"1".to_vec() },
        TxnOp::Put { key: "t/b".into(), value: b"2".to_vec() },
        TxnOp::Delete { key: "t/old".into() },
    ])
    .await
    .unwrap();
    assert_eq!(s.list("t/").await.unwrap(), vec!["a", "b"], "transaction applied whole");
    // An invalid key anywhere aborts the whole transaction.
    let bad = s
        .transaction(vec![TxnOp::Delete { key: "t/a".into() }, TxnOp::Put { key: "".into(), value: b"3".to_vec() }])
        .await;
    assert!(bad.is_err(), "transaction with an invalid key fails");
    assert_eq!(s.get("t/a").await.unwrap().as_deref(), Some(&b"1"[..]), "failed txn applies nothing");
    s.transaction(vec![TxnOp::Delete { key: "t/a".into() }, TxnOp::Delete { key: "t/b".into() }]).await.unwrap();
    assert!(s.list("t/").await.unwrap().is_empty());
}

async fn concurrent_writers(s: Arc<dyn Storage>) {
    let mut tasks = Vec::new();
    for w in 0..8 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..25 {
                s.put(&format!("c/{w}/{i}"), format!("{w}-{i}").into_bytes()).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    for w in 0..8 {
        let keys = s.list(&format!("c/{w}/")).await.unwrap();
        assert_eq!(keys.len(), 25, "every concurrent write is present");
        for i in 0..25 {
            let v = s.get(&format!("c/{w}/{i}")).await.unwrap();
            assert_eq!(v, Some(format!("{w}-{i}").into_bytes()));
            s.delete(&format!("c/{w}/{i}")).await.unwrap();
        }
    }
}

async fn unusual_keys(s: &dyn Storage) {
    let keys = ["sp ace", "uni/cødé/ключ", "dots/.hidden", "pct/%2F", "trail/"];
    for k in keys {
        s.put(k, k.as_bytes().to_vec()).await.unwrap();
        assert_eq!(s.get(k).await.unwrap(), Some(k.as_bytes().to_vec()), "key {k:?} round-trips");
    }
    assert_eq!(s.list("uni/").await.unwrap(), vec!["cødé/"]);
    for k in keys {
        s.delete(k).await.unwrap();
    }
}

/// A snapshot's two halves: `export` gives every entry in key order, `replace_all` leaves
/// exactly the entries given.
async fn export_and_replace_all(s: &dyn Storage) {
    let before = s.export().await.unwrap();
    let mine = [("snap/a", &b"1"[..]), ("snap/b/c", &b""[..]), ("snap/z", &[0u8, 255][..])];
    for (k, v) in mine {
        s.put(k, v.to_vec()).await.unwrap();
    }
    let mut want: Vec<(String, Vec<u8>)> = before.clone();
    want.extend(mine.iter().map(|(k, v)| (k.to_string(), v.to_vec())));
    want.sort();
    assert_eq!(s.export().await.unwrap(), want, "export gives every entry, in key order");
    let replacement = vec![("other/1".to_string(), b"x".to_vec()), ("snap/a".to_string(), b"2".to_vec())];
    s.replace_all(replacement.clone()).await.unwrap();
    assert_eq!(s.export().await.unwrap(), replacement, "replace_all leaves exactly what it was given");
    assert_eq!(s.list("snap/").await.unwrap(), vec!["a"], "listing agrees after a replace");
    s.delete("other/1").await.unwrap();
    s.delete("snap/a").await.unwrap();
}

async fn invalid_keys_refused(s: &dyn Storage) {
    assert!(s.put("", b"x".to_vec()).await.is_err(), "empty key refused");
    assert!(s.put("a/../b", b"x".to_vec()).await.is_err(), "'..' refused");
    assert!(s.get("a\0b").await.is_err(), "NUL refused");
    assert!(s.list("").await.unwrap().is_empty(), "refused writes left nothing");
}

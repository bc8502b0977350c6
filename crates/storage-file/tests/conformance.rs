//! Proves the durable file backend keeps the physical storage contract, and that what it
//! acknowledged is there after the store is closed and reopened.
use coffer_physical::Storage;
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_backend_passes_storage_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    let s = coffer_storage_file::FileStorage::open(dir.path()).unwrap();
    coffer_physical::conformance::run(Arc::new(s)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = coffer_storage_file::FileStorage::open(dir.path()).unwrap();
        for i in 0..50 {
            s.put(&format!("k/{i}"), vec![i as u8; 100]).await.unwrap();
        }
        s.delete("k/7").await.unwrap();
    }
    // Dropping the handle closed the file cleanly: it reopens at once, without a repair (a
    // repair reads the whole file, so start-up time would grow with the store).
    let s = coffer_storage_file::FileStorage::open(dir.path()).expect("reopen right after drop");
    assert!(!s.was_repaired(), "a dropped store is closed cleanly");
    assert_eq!(s.list("k/").await.unwrap().len(), 49);
    assert_eq!(s.get("k/3").await.unwrap(), Some(vec![3u8; 100]));
    assert_eq!(s.get("k/7").await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_directory_and_file_are_owner_only_whatever_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    let base = tempfile::tempdir().unwrap();
    // A permissive directory above, and a file left world-readable by an older version.
    std::fs::set_permissions(base.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let dir = base.path().join("data");
    {
        let _s = coffer_storage_file::FileStorage::open(&dir).unwrap();
    }
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700, "a data directory the server creates is owner-only");
    let file = dir.join("coffer.redb");
    assert_eq!(mode(&file), 0o600, "the store file is owner-only");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let _s = coffer_storage_file::FileStorage::open(&dir).unwrap();
    assert_eq!(mode(&file), 0o600, "opening tightens a store file left readable by others");
}

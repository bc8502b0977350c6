//! Proves the in-memory backend keeps the physical storage contract.
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inmem_passes_storage_conformance_suite() {
    coffer_physical::conformance::run(Arc::new(coffer_storage_inmem::InmemStorage::new())).await;
}

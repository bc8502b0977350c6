//! The request future stays small: axum boxes (moves) the handler future on every request,
//! and a future that inlined every rarely used branch's state was 7.5 KiB to copy (2.2 KiB then;
//! 3.1 KiB since the request carries the caller's display name and raw answers their headers).
use coffer_core::{Core, CoreConfig, CoreRequest};
use coffer_sdk::Operation;
use std::sync::Arc;

#[test]
fn the_core_request_future_is_small() {
    let phys = Arc::new(coffer_storage_inmem::InmemStorage::new());
    let core =
        Core::new(Arc::new(coffer_barrier::Barrier::new(phys)), CoreConfig::default(), coffer_builtins::registry());
    let req = CoreRequest {
        operation: Operation::Read,
        path: "kv/x".into(),
        data: Default::default(),
        token: None,
        remote_addr: None,
        wrap_ttl: None,
        basic_auth: None,
        client_certs: None,
    };
    let fut = core.handle(req);
    let size = std::mem::size_of_val(&fut);
    eprintln!("Core::handle future: {size} bytes");
    assert!(size <= 3200, "Core::handle's future is {size} bytes");
}

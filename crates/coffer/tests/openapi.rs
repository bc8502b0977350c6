//! `bao path-help` against the real server: the help of system and backend paths reaches the
//! real CLI, and an unknown path is an error. (The OpenAPI document and `?help=1`, which need
//! no process, are checked in-process: crates/testing/tests/api/openapi.rs.)
mod common;
use common::*;

#[test]
fn bao_path_help_shows_system_and_backend_help_and_refuses_unknown_paths() {
    let Some(bao) = bao_path() else { return };
    let server = Server::start_dev("root");
    let addr = server.addr.as_str();
    let o = cli(&bao, addr, Some("root"), &["path-help", "sys/mounts"]);
    assert!(o.status.success(), "{}", out(&o));
    assert!(out(&o).contains("Secrets engines"), "{}", out(&o));
    let o = cli(&bao, addr, Some("root"), &["secrets", "enable", "-path=kv1", "kv"]);
    assert!(o.status.success(), "{}", out(&o));
    let o = cli(&bao, addr, Some("root"), &["path-help", "kv1/foo"]);
    assert!(o.status.success(), "{}", out(&o));
    let text = out(&o);
    assert!(text.contains("Pass-through") && text.contains("ttl"), "{text}");
    let o = cli(&bao, addr, Some("root"), &["path-help", "sys/nope"]);
    assert!(!o.status.success(), "{}", out(&o));
}

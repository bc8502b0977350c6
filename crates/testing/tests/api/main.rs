//! Behaviour tests of the HTTP API, in-process: one test binary (one link, one process) for
//! every module, each a `TestCore` driven through the full router. Tests that read process-wide
//! state (the metrics registry) live in binaries of their own (tests/metrics.rs).

#[path = "../../../coffer/tests/python/mod.rs"]
mod python;

#[path = "../../../coffer/tests/gpg_operator/mod.rs"]
mod gpg_operator;

mod audit;
mod bad_input;
mod cors;
mod identity;
mod identity_oidc;
mod leases;
mod openapi;
mod path_table;
mod pgp_shares;
mod raw_storage;
mod runtime_endpoints;
mod sys_fields;
mod token_and_mount_answers;
mod web_ui;
mod wire_conventions;
mod wrapping;

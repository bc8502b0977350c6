//! The root-protected (sudo) and unauthenticated system paths (and `identity/oidc/…`) are
//! those of OpenBao 2.7.2.
//!
//! The table below was recorded from a real `bao server -dev` (OpenBao 2.7.2): its OpenAPI
//! document's `x-vault-sudo` / `x-vault-unauthenticated` markers, and, where a handler decides
//! rather than the router (sys/seal, sys/step-down, auth/token/revoke-orphan, …), by sending
//! the request with a token whose policy grants every capability but `sudo` and without a
//! token at all. Only paths Coffer serves are listed; Coffer's flags come from the rows that
//! route the requests, so this checks what the router does.

use coffer_core::system_path_flags;

/// (path, root-protected, served without a token) as OpenBao 2.7.2 treats them.
const OPENBAO: &[(&str, bool, bool)] = &[
    // Root-protected in OpenBao's OpenAPI document.
    ("auth/token/accessors", true, false),
    ("auth/token/accessors/", true, false),
    ("sys/audit", true, false),
    ("sys/audit/file", true, false),
    ("sys/auth/userpass", true, false),
    ("sys/auth/userpass/tune", true, false),
    ("sys/config/cors", true, false),
    ("sys/leases/lookup/", true, false),
    ("sys/leases/lookup/secret/x", true, false),
    ("sys/leases/revoke-force/secret", true, false),
    ("sys/leases/revoke-prefix/secret", true, false),
    ("sys/plugins/catalog/secret", true, false),
    ("sys/plugins/catalog/secret/kv", true, false),
    ("sys/plugins/catalog/kv", true, false),
    ("sys/raw", true, false),
    ("sys/raw/core/keyring", true, false),
    ("sys/remount", true, false),
    ("sys/rotate", true, false),
    ("sys/rotate/keyring", true, false),
    // Refused with 403 to a token without sudo (behaviour).
    ("sys/seal", true, false),
    ("sys/revoke-prefix/secret", true, false),
    ("sys/revoke-force/secret", true, false),
    // Served to a token without sudo (behaviour).
    ("sys/step-down", false, false),
    ("sys/rotate/config", false, false),
    ("sys/rotate/keyring/config", false, false),
    ("sys/config/state/sanitized", false, false),
    ("sys/plugins/catalog", false, false),
    ("sys/plugins/reload/backend", false, false),
    ("auth/token/revoke-orphan", false, false),
    ("sys/mounts", false, false),
    ("sys/mounts/secret", false, false),
    ("sys/mounts/secret/tune", false, false),
    ("sys/auth", false, false),
    ("sys/loggers", false, false),
    ("sys/in-flight-req", false, false),
    ("sys/host-info", false, false),
    ("sys/key-status", false, false),
    ("sys/metrics", false, false),
    ("sys/monitor", false, false),
    ("sys/ha-status", false, false),
    ("sys/audit-hash/file", false, false),
    ("sys/capabilities-accessor", false, false),
    ("sys/tools/hash", false, false),
    ("sys/internal/counters/tokens", false, false),
    ("sys/internal/ui/resultant-acl", false, false),
    ("sys/policies/acl/default", false, false),
    ("sys/leases/lookup", false, false),
    ("sys/leases/tidy", false, false),
    ("sys/wrapping/wrap", false, false),
    // Served with a token only (403 without one).
    ("sys/generate-root-token/attempt", false, false),
    ("sys/rotate/root/init", false, false),
    ("sys/rotate/recovery/init", false, false),
    ("sys/rekey/backup", false, false),
    ("sys/rotate/root/backup", false, false),
    ("sys/rotate/recovery/backup", false, false),
    // Unauthenticated in OpenBao's OpenAPI document.
    ("sys/generate-root/attempt", false, true),
    ("sys/generate-root/update", false, true),
    ("sys/health", false, true),
    ("sys/init", false, true),
    ("sys/internal/specs/openapi", false, true),
    ("sys/internal/ui/mounts", false, true),
    ("sys/internal/ui/mounts/secret", false, true),
    ("sys/leader", false, true),
    ("sys/rekey/init", false, true),
    ("sys/rekey/update", false, true),
    ("sys/rekey/verify", false, true),
    ("sys/seal-status", false, true),
    ("sys/unseal", false, true),
    ("sys/wrapping/lookup", false, true),
    ("identity/oidc/.well-known/keys", false, true),
    ("identity/oidc/.well-known/openid-configuration", false, true),
    ("identity/oidc/provider/p/.well-known/keys", false, true),
    ("identity/oidc/provider/p/.well-known/openid-configuration", false, true),
    ("identity/oidc/provider/p/token", false, true),
    // Not marked in OpenBao's OpenAPI document, but answered without a token by its handler
    // (401 invalid_token, not the router's 403): the access token is checked there (behaviour).
    ("identity/oidc/provider/p/userinfo", false, true),
    // The rest of identity/oidc needs a token.
    ("identity/oidc/config", false, false),
    ("identity/oidc/key/k", false, false),
    ("identity/oidc/key/k/rotate", false, false),
    ("identity/oidc/role/r", false, false),
    ("identity/oidc/token/r", false, false),
    ("identity/oidc/introspect", false, false),
    ("identity/oidc/scope/s", false, false),
    ("identity/oidc/assignment/a", false, false),
    ("identity/oidc/client/c", false, false),
    ("identity/oidc/provider/p", false, false),
    ("identity/oidc/provider/p/authorize", false, false),
];

#[test]
fn sudo_and_unauthenticated_system_paths_are_openbaos() {
    let mut wrong = Vec::new();
    for (path, sudo, unauth) in OPENBAO {
        match system_path_flags(path) {
            None => wrong.push(format!("{path}: no row serves it")),
            Some(f) if f.sudo != *sudo || f.unauthenticated != *unauth => wrong.push(format!(
                "{path}: sudo {} unauthenticated {} (OpenBao: sudo {sudo} unauthenticated {unauth})",
                f.sudo, f.unauthenticated
            )),
            Some(_) => {}
        }
    }
    assert!(wrong.is_empty(), "flags differing from OpenBao 2.7.2:\n{}", wrong.join("\n"));
}

/// Vault's recovery-key rekey (`sys/rekey-recovery-key/*`) is served without a token, as Vault
/// documents it; OpenBao 2.7.2 no longer serves it (404) and has `sys/rotate/recovery/*`,
/// which needs a token. Coffer serves both: a deliberate difference.
#[test]
fn vaults_recovery_rekey_ceremony_is_unauthenticated_like_vaults() {
    for op in ["init", "update", "verify"] {
        let f = system_path_flags(&format!("sys/rekey-recovery-key/{op}")).expect("served");
        assert!(f.unauthenticated && !f.sudo, "{op}");
        let t = system_path_flags(&format!("sys/rotate/recovery/{op}")).expect("served");
        assert!(!t.unauthenticated, "{op}");
    }
}

#[test]
fn status_endpoints_answer_sealed_and_on_standbys_and_nothing_else_does() {
    for path in ["sys/seal-status", "sys/leader", "sys/init", "sys/unseal", "sys/health"] {
        let f = system_path_flags(path).expect("served");
        assert!(f.sealed && f.standby && !f.audited, "{path}");
    }
    for path in ["sys/mounts", "sys/seal", "sys/generate-root/attempt", "auth/token/create", "cubbyhole/x"] {
        let f = system_path_flags(path).expect("served");
        assert!(!f.sealed && !f.standby, "{path}");
    }
}

#[test]
fn paths_no_row_names_are_not_served() {
    for path in ["sys/nope", "sys/generate-root/bogus", "sys/mounts/", "auth/token/nope", "identity/nope", "sys"] {
        assert_eq!(system_path_flags(path), None, "{path}");
    }
}

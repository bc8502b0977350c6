//! Builds the configured seals and hands them to the core: the PKCS#11 and transit seals live
//! in their own crates (FFI, HTTP) so the core loads no library and does no HTTP.

use crate::error::StartError;
use coffer_config::{SealDecl, ServerConfig};
use coffer_core::Core;
use coffer_seal::{Seal, ShamirSeal};
use std::sync::Arc;
use zeroize::Zeroize;

fn env(k: &str) -> Option<String> {
    std::env::var(k).ok()
}

fn build(decl: &SealDecl) -> Result<Arc<dyn Seal>, StartError> {
    let seal: Arc<dyn Seal> = match decl.kind.as_str() {
        "shamir" => Arc::new(ShamirSeal),
        "pkcs11" => {
            let cfg = coffer_seal_pkcs11::Pkcs11Config::from_options(&decl.options, env)?;
            Arc::new(coffer_seal_pkcs11::Pkcs11Seal::new(cfg))
        }
        "transit" => {
            let cfg = coffer_seal_transit::TransitConfig::from_options(&decl.options, env)?;
            Arc::new(coffer_seal_transit::TransitSeal::new(cfg)?)
        }
        other => return Err(StartError::UnknownSeal(other.to_string())),
    };
    Ok(seal)
}

/// Installs the enabled seal (none: Shamir) and the disabled one of a migration, then starts
/// auto-unsealing. The PIN and token are wiped from the parsed configuration once the seals
/// hold their own (zeroizing) copies.
pub fn install(core: &Arc<Core>, cfg: &mut ServerConfig) -> Result<(), StartError> {
    let (enabled, disabled) = cfg.seal_pair()?;
    let built = enabled.map(build).transpose().and_then(|c| Ok((c, disabled.map(build).transpose()?)));
    for decl in &mut cfg.seals {
        for (k, v) in decl.options.iter_mut() {
            if k == "pin" || k == "token" {
                v.zeroize();
            }
        }
    }
    let (current, old) = built?;
    if let Some(s) = &current {
        tracing::info!(seal = s.seal_type(), "auto-unseal seal configured");
    }
    if let Some(o) = &old {
        tracing::info!(seal = o.seal_type(), "disabled seal configured: seal migration available");
    }
    core.set_seals(current, old);
    core.spawn_auto_unseal();
    Ok(())
}

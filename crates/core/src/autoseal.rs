//! Auto-unseal seals (PKCS#11, transit) and seal migration.
//!
//! With an auto seal the key-encryption key (KEK) is random; the seal wraps it and the wrapped
//! blob is stored beside the wrapped root key (`core/seal-wrapped-kek`, readable sealed). The
//! server unseals itself by asking the seal to unwrap it. Operators hold *recovery* key shares
//! instead of unseal keys: the recovery key is stored inside the barrier
//! (`core/recovery-key`), so checking it needs the barrier open, which the seal can always do.
//!
//! Migration (the old seal's stanza kept with `disabled = "true"`, `sys/unseal` with
//! `migrate = true`):
//! - Shamir → auto: the unseal keys open the barrier, a new random KEK is wrapped by the new
//!   seal and the old combined unseal key becomes the recovery key (so the operators' shares
//!   keep working, as recovery keys).
//! - auto → Shamir: the old seal unwraps the KEK, the recovery key shares are checked and the
//!   recovery key becomes the new KEK (so the recovery shares become the unseal keys).
//! - auto → another auto seal: the old seal unwraps the KEK, the recovery key shares are
//!   checked, a new KEK is wrapped by the new seal; the recovery keys stay the same.
//!
//! The seals themselves are injected by the `coffer` binary ([`Core::set_seals`]): the core does
//! no HTTP and loads no PKCS#11 library.

use crate::error::barrier_err;
use crate::{Core, Result};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use coffer_barrier::SecureStorage;
use coffer_crypto::Key;
use coffer_sdk::{ErrorKind, LogicalError};
use coffer_seal::{Seal, SealConfig, SealError};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use zeroize::Zeroizing;

/// The recovery key of an auto seal, inside the barrier.
pub(crate) const RECOVERY_KEY_PATH: &str = "core/recovery-key";

/// The seals the binary configured.
#[derive(Default)]
pub(crate) struct Seals {
    /// The enabled seal; `None` is Shamir.
    current: Option<Arc<dyn Seal>>,
    /// The disabled seal of a migration (`disabled = "true"`).
    old: Option<Arc<dyn Seal>>,
    /// The last auto-unseal failure, shown by seal-status and health while sealed.
    last_error: Option<String>,
}

/// What the stored seal and the configured ones call for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SealMode {
    /// The configured seal is the stored one (or the server is not initialised).
    Normal,
    /// Stored Shamir, configured auto seal: migrate with the unseal keys.
    ToAuto,
    /// Stored auto seal, configured Shamir with the old seal disabled: migrate with the
    /// recovery keys.
    ToShamir,
    /// Stored auto seal, another auto seal enabled and the old one disabled: migrate with the
    /// recovery keys (they stay the same).
    AutoToAuto,
    /// A combination that cannot work; the message says what to change.
    Mismatch(String),
}

impl SealMode {
    /// Whether operators must finish a seal migration (`sys/unseal` with `migrate`).
    pub(crate) fn is_migration(&self) -> bool {
        matches!(self, SealMode::ToAuto | SealMode::ToShamir | SealMode::AutoToAuto)
    }
}

/// The stored form of the seal-wrapped KEK: the seal type, so a configuration naming another
/// seal fails clearly, and the seal's opaque blob.
#[derive(Serialize, Deserialize)]
struct WrappedKek {
    seal_type: String,
    blob: String,
}

fn seal_failure(what: &str, e: SealError) -> LogicalError {
    match e {
        SealError::Unavailable(m) => LogicalError::new(ErrorKind::Unavailable, format!("{what}: {m}")),
        SealError::InvalidParameters(m) => LogicalError::bad_request(m),
        other => LogicalError::internal(format!("{what}: {other}")),
    }
}

fn is_zero_json(v: Option<&serde_json::Value>) -> bool {
    v.is_none_or(|v| v.is_null() || v == &serde_json::json!(0) || v == &serde_json::json!("0"))
}

impl Core {
    /// Installs the configured seals: the enabled one (`None` = Shamir) and the disabled old
    /// seal of a migration, if any.
    pub fn set_seals(&self, current: Option<Arc<dyn Seal>>, old: Option<Arc<dyn Seal>>) {
        if let Ok(mut s) = self.seals.write() {
            s.current = current;
            s.old = old;
        }
    }

    pub(crate) fn current_seal(&self) -> Option<Arc<dyn Seal>> {
        self.seals.read().ok().and_then(|s| s.current.clone())
    }

    fn old_seal(&self) -> Option<Arc<dyn Seal>> {
        self.seals.read().ok().and_then(|s| s.old.clone())
    }

    /// The type of the configured (enabled) seal.
    pub fn configured_seal_type(&self) -> &'static str {
        self.current_seal().map(|s| s.seal_type()).unwrap_or("shamir")
    }

    /// The last auto-unseal failure, while sealed.
    pub fn seal_error(&self) -> Option<String> {
        if !self.is_sealed() {
            return None;
        }
        self.seals.read().ok().and_then(|s| s.last_error.clone())
    }

    fn set_seal_error(&self, e: Option<String>) {
        if let Ok(mut s) = self.seals.write() {
            s.last_error = e;
        }
    }

    pub(crate) fn seal_mode(&self, cfg: Option<&SealConfig>) -> SealMode {
        let Some(cfg) = cfg else { return SealMode::Normal };
        let current = self.configured_seal_type();
        let old = self.old_seal().map(|s| s.seal_type());
        if cfg.seal_type == current {
            return SealMode::Normal;
        }
        if !cfg.is_auto() && current != "shamir" && old.is_none_or(|o| o == "shamir") {
            return SealMode::ToAuto;
        }
        if cfg.is_auto() && current == "shamir" && old == Some(cfg.seal_type.as_str()) {
            return SealMode::ToShamir;
        }
        if cfg.is_auto() && current != "shamir" && old == Some(cfg.seal_type.as_str()) {
            return SealMode::AutoToAuto;
        }
        SealMode::Mismatch(format!(
            "the server was initialised with the {stored} seal but the configuration enables the {current} seal; \
             to migrate, keep the old seal's stanza with disabled = \"true\" (supported: shamir to an auto seal, \
             an auto seal to shamir or to another auto seal)",
            stored = cfg.seal_type
        ))
    }

    /// `sys/init` with an auto seal: a random KEK wrapped by the seal, recovery key shares for
    /// the operators. The server is left unsealed, as Vault does.
    pub(crate) async fn init_auto(
        &self,
        seal: Arc<dyn Seal>,
        data: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<(Vec<Zeroizing<Vec<u8>>>, String)> {
        use coffer_sdk::field::parse_int;
        let zero = serde_json::json!(0);
        let shares = parse_int("recovery_shares", data.get("recovery_shares").unwrap_or(&zero))?;
        let threshold = parse_int("recovery_threshold", data.get("recovery_threshold").unwrap_or(&zero))?;
        if !is_zero_json(data.get("secret_shares")) && data.get("secret_shares") != Some(&serde_json::json!(1)) {
            tracing::warn!("secret_shares is ignored with an auto-unseal seal; recovery_shares is used");
        }
        if !(0..=255).contains(&shares) || !(0..=255).contains(&threshold) {
            return Err(LogicalError::bad_request("recovery_shares and recovery_threshold must be between 1 and 255"));
        }
        let cfg = SealConfig::auto(seal.seal_type(), shares as u32, threshold as u32)
            .map_err(|e| LogicalError::bad_request(e.to_string()))?;
        let _st = self.seal.lock().await;
        if self.barrier.is_initialized().await.map_err(barrier_err)? {
            return Err(LogicalError::bad_request("Vault is already initialized"));
        }
        let kek = Key::generate().map_err(|e| LogicalError::internal(e.to_string()))?;
        let wrapped = self.wrap_kek(seal.as_ref(), &kek).await?;
        let raw_cfg = serde_json::to_vec(&cfg).map_err(|e| LogicalError::internal(e.to_string()))?;
        self.barrier.initialize_with(&kek, raw_cfg, Some(wrapped)).await.map_err(barrier_err)?;
        self.barrier.unseal(&kek).await.map_err(barrier_err)?;
        let recovery_cfg = SealConfig::shamir(cfg.recovery_shares, cfg.recovery_threshold)
            .map_err(|e| LogicalError::bad_request(e.to_string()))?;
        let (recovery, shares) = coffer_seal::ShamirSeal::new_key_shares(&recovery_cfg)
            .map_err(|e| LogicalError::internal(e.to_string()))?;
        let result = async {
            self.barrier.put(RECOVERY_KEY_PATH, recovery.as_bytes()).await.map_err(barrier_err)?;
            let active = self.post_unseal().await?;
            let (root, _) = active.tokens.create_root(None).await?;
            Ok::<_, LogicalError>((active, root))
        }
        .await;
        let (active, root) = match result {
            Ok(x) => x,
            Err(e) => {
                self.barrier.seal().await;
                return Err(e);
            }
        };
        if let Ok(mut c) = self.seal_config.write() {
            *c = Some(cfg);
        }
        *self.active.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(active);
        self.set_seal_error(None);
        tracing::info!(seal = seal.seal_type(), "core initialized with recovery keys and unsealed by the seal");
        Ok((shares, root))
    }

    async fn wrap_kek(&self, seal: &dyn Seal, kek: &Key) -> Result<Vec<u8>> {
        let blob = seal
            .wrap(kek.as_bytes())
            .await
            .map_err(|e| seal_failure(&format!("the {} seal could not wrap the key", seal.seal_type()), e))?;
        serde_json::to_vec(&WrappedKek { seal_type: seal.seal_type().to_string(), blob: B64.encode(blob) })
            .map_err(|e| LogicalError::internal(e.to_string()))
    }

    /// Asks `seal` to unwrap the stored KEK.
    async fn unwrap_stored_kek(&self, seal: &dyn Seal) -> std::result::Result<Key, SealError> {
        let raw = self
            .barrier
            .wrapped_kek()
            .await
            .map_err(|e| SealError::Failed(format!("cannot read the wrapped key: {e}")))?
            .ok_or_else(|| SealError::Failed("no seal-wrapped key is stored".into()))?;
        let w: WrappedKek = serde_json::from_slice(&raw)
            .map_err(|e| SealError::Failed(format!("the stored wrapped key is unreadable: {e}")))?;
        if w.seal_type != seal.seal_type() {
            return Err(SealError::Config(format!(
                "the stored key was wrapped by the {} seal, not the configured {} seal",
                w.seal_type,
                seal.seal_type()
            )));
        }
        let blob =
            B64.decode(w.blob).map_err(|e| SealError::Failed(format!("the stored wrapped key is unreadable: {e}")))?;
        let kek = seal.unwrap(&blob).await?;
        // drop-cause: the only failure is the length, which the message says (the bytes are key material).
        Key::from_slice(&kek).map_err(|_| SealError::Failed("the seal returned a key of the wrong length".into()))
    }

    /// Opens the barrier with `kek` and builds the unsealed state.
    pub(crate) async fn finish_unseal(&self, kek: &Key) -> Result<()> {
        match self.barrier.unseal(kek).await {
            Ok(()) => {}
            Err(coffer_barrier::BarrierError::WrongKey) => {
                return Err(LogicalError::bad_request(
                    "unable to retrieve stored keys: the combined unseal key is invalid (one or more key shares are wrong); progress reset",
                ));
            }
            Err(e) => return Err(barrier_err(e)),
        }
        self.activate(kek).await
    }

    /// The barrier is open with `kek`: serve (or, with HA storage, become a standby that
    /// contends for the lock and activates when it holds it).
    async fn activate(&self, kek: &Key) -> Result<()> {
        if self.ha_enabled() {
            self.enter_standby(kek.clone());
            self.set_seal_error(None);
            return Ok(());
        }
        match self.post_unseal().await {
            Ok(active) => {
                *self.active.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(active);
                self.set_seal_error(None);
                tracing::info!("vault is unsealed");
                Ok(())
            }
            Err(e) => {
                self.barrier.seal().await;
                Err(e)
            }
        }
    }

    /// Checks a combined recovery key against the stored one. The barrier must be open.
    pub(crate) async fn verify_recovery_key(&self, candidate: &Key) -> Result<bool> {
        let stored = self
            .barrier
            .get(RECOVERY_KEY_PATH)
            .await
            .map_err(barrier_err)?
            .ok_or_else(|| LogicalError::internal("no recovery key is stored"))?;
        Ok(coffer_crypto::ct_eq(&stored, candidate.as_bytes()))
    }

    /// Unwraps the KEK with `seal`, opens the barrier and checks the recovery key; the barrier
    /// is closed again when the recovery key is wrong.
    async fn open_with_recovery_key(&self, seal: &dyn Seal, recovery: &Key) -> Result<Key> {
        let kek = self
            .unwrap_stored_kek(seal)
            .await
            .map_err(|e| seal_failure(&format!("the {} seal could not unwrap the key", seal.seal_type()), e))?;
        self.barrier.unseal(&kek).await.map_err(barrier_err)?;
        if !self.verify_recovery_key(recovery).await? {
            self.barrier.seal().await;
            return Err(LogicalError::bad_request(
                "the recovery key shares given are not valid for this server; progress reset",
            ));
        }
        Ok(kek)
    }

    /// Completes `sys/unseal` once the operator shares combined to `combined`, for every case
    /// but a plain Shamir unseal.
    pub(crate) async fn unseal_with(&self, mode: &SealMode, cfg: &SealConfig, combined: Key) -> Result<()> {
        match mode {
            SealMode::Mismatch(m) => Err(LogicalError::bad_request(m.clone())),
            SealMode::Normal if !cfg.is_auto() => self.finish_unseal(&combined).await,
            SealMode::Normal => {
                // An auto-sealed server sealed by hand: the recovery keys open it again.
                let seal = self.current_seal().ok_or_else(|| LogicalError::internal("no seal configured"))?;
                let kek = self.open_with_recovery_key(seal.as_ref(), &combined).await?;
                self.activate(&kek).await
            }
            SealMode::ToAuto => {
                let seal = self.current_seal().ok_or_else(|| LogicalError::internal("no seal configured"))?;
                match self.barrier.unseal(&combined).await {
                    Ok(()) => {}
                    Err(coffer_barrier::BarrierError::WrongKey) => {
                        return Err(LogicalError::bad_request(
                            "the combined unseal key is invalid (one or more key shares are wrong); progress reset",
                        ))
                    }
                    Err(e) => return Err(barrier_err(e)),
                }
                let r = async {
                    let new_cfg = SealConfig::auto(seal.seal_type(), cfg.secret_shares, cfg.secret_threshold)
                        .map_err(|e| LogicalError::bad_request(e.to_string()))?;
                    let new_kek = Key::generate().map_err(|e| LogicalError::internal(e.to_string()))?;
                    let wrapped = self.wrap_kek(seal.as_ref(), &new_kek).await?;
                    // The old unseal key becomes the recovery key: the operators keep their shares.
                    self.barrier.put(RECOVERY_KEY_PATH, combined.as_bytes()).await.map_err(barrier_err)?;
                    let raw = serde_json::to_vec(&new_cfg).map_err(|e| LogicalError::internal(e.to_string()))?;
                    self.barrier.rewrap_root_for_seal(&new_kek, raw, Some(wrapped)).await.map_err(barrier_err)?;
                    Ok::<_, LogicalError>((new_cfg, new_kek))
                }
                .await;
                match r {
                    Ok((new_cfg, new_kek)) => {
                        if let Ok(mut c) = self.seal_config.write() {
                            *c = Some(new_cfg);
                        }
                        tracing::info!(seal = seal.seal_type(), "seal migration from shamir complete");
                        self.activate(&new_kek).await
                    }
                    Err(e) => {
                        self.barrier.seal().await;
                        Err(e)
                    }
                }
            }
            SealMode::AutoToAuto => {
                let old = self.old_seal().ok_or_else(|| LogicalError::internal("no old seal configured"))?;
                let seal = self.current_seal().ok_or_else(|| LogicalError::internal("no seal configured"))?;
                self.open_with_recovery_key(old.as_ref(), &combined).await?;
                let r = async {
                    let mut new_cfg = cfg.clone();
                    new_cfg.seal_type = seal.seal_type().to_string();
                    // A fresh KEK under the new seal; the recovery key stays as it is.
                    let new_kek = Key::generate().map_err(|e| LogicalError::internal(e.to_string()))?;
                    let wrapped = self.wrap_kek(seal.as_ref(), &new_kek).await?;
                    let raw = serde_json::to_vec(&new_cfg).map_err(|e| LogicalError::internal(e.to_string()))?;
                    self.barrier.rewrap_root_for_seal(&new_kek, raw, Some(wrapped)).await.map_err(barrier_err)?;
                    Ok::<_, LogicalError>((new_cfg, new_kek))
                }
                .await;
                match r {
                    Ok((new_cfg, new_kek)) => {
                        if let Ok(mut c) = self.seal_config.write() {
                            *c = Some(new_cfg);
                        }
                        tracing::info!(from = old.seal_type(), to = seal.seal_type(), "seal migration complete");
                        self.activate(&new_kek).await
                    }
                    Err(e) => {
                        self.barrier.seal().await;
                        Err(e)
                    }
                }
            }
            SealMode::ToShamir => {
                let old = self.old_seal().ok_or_else(|| LogicalError::internal("no old seal configured"))?;
                self.open_with_recovery_key(old.as_ref(), &combined).await?;
                let r = async {
                    let new_cfg = SealConfig::shamir(cfg.recovery_shares, cfg.recovery_threshold)
                        .map_err(|e| LogicalError::bad_request(e.to_string()))?;
                    let raw = serde_json::to_vec(&new_cfg).map_err(|e| LogicalError::internal(e.to_string()))?;
                    // The recovery key becomes the KEK: the recovery shares are the unseal keys now.
                    self.barrier.rewrap_root_for_seal(&combined, raw, None).await.map_err(barrier_err)?;
                    self.barrier.delete(RECOVERY_KEY_PATH).await.map_err(barrier_err)?;
                    Ok::<_, LogicalError>(new_cfg)
                }
                .await;
                match r {
                    Ok(new_cfg) => {
                        if let Ok(mut c) = self.seal_config.write() {
                            *c = Some(new_cfg);
                        }
                        tracing::info!(seal = old.seal_type(), "seal migration to shamir complete");
                        self.activate(&combined).await
                    }
                    Err(e) => {
                        self.barrier.seal().await;
                        Err(e)
                    }
                }
            }
        }
    }

    /// Unseals with the configured auto seal if the server is initialised with it and sealed.
    /// `Ok(true)`: unsealed now; `Ok(false)`: nothing to do (not initialised, not an auto seal,
    /// or a migration waiting for the operators).
    pub async fn try_auto_unseal(&self) -> std::result::Result<bool, SealError> {
        // A standby holds the key already: nothing to unseal.
        if !self.barrier_sealed() {
            return Ok(false);
        }
        let cfg = self.load_seal_config().await.map_err(|e| SealError::Failed(e.to_string()))?;
        let Some(cfg) = cfg else { return Ok(false) };
        if !cfg.is_auto() {
            return Ok(false);
        }
        match self.seal_mode(Some(&cfg)) {
            SealMode::Normal => {}
            SealMode::Mismatch(m) => {
                self.set_seal_error(Some(m.clone()));
                return Err(SealError::Config(m));
            }
            SealMode::ToAuto | SealMode::ToShamir | SealMode::AutoToAuto => return Ok(false),
        }
        let Some(seal) = self.current_seal() else { return Ok(false) };
        let started = std::time::Instant::now();
        // Unwrapped before taking the seal lock: a slow HSM or transit server must not hold up
        // sys/seal-status.
        let kek = match self.unwrap_stored_kek(seal.as_ref()).await {
            Ok(k) => k,
            Err(e) => {
                let msg = format!("auto-unseal with the {} seal failed: {e}", seal.seal_type());
                self.set_seal_error(Some(msg));
                return Err(e);
            }
        };
        let _st = self.seal.lock().await;
        if !self.barrier_sealed() {
            return Ok(false);
        }
        if let Err(e) = self.finish_unseal(&kek).await {
            let msg = format!("auto-unseal with the {} seal failed: {e}", seal.seal_type());
            self.set_seal_error(Some(msg.clone()));
            return Err(SealError::Failed(msg));
        }
        tracing::info!(
            seal = seal.seal_type(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "unsealed by the seal"
        );
        Ok(true)
    }

    /// Tries to auto-unseal now and, while the seal's device or server is unreachable, again in
    /// the background (1 s, doubling to 5 s), until unsealed. A configuration error (wrong
    /// PIN, missing key) is not retried: retrying a wrong PIN can lock an HSM token.
    pub fn spawn_auto_unseal(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut delay = std::time::Duration::from_secs(1);
            loop {
                let Some(core) = weak.upgrade() else { break };
                if core.current_seal().is_none() {
                    // Shamir (or a migration to it): operators unseal.
                    break;
                }
                match core.try_auto_unseal().await {
                    Ok(true) => break,
                    Ok(false) => {
                        let initialized = core.barrier.is_initialized().await.unwrap_or(false);
                        let cfg = core.load_seal_config().await.ok().flatten();
                        // Done once initialised and unsealed, or on a Shamir server.
                        if initialized && (!core.is_sealed() || cfg.is_some_and(|c| !c.is_auto())) {
                            break;
                        }
                        delay = std::time::Duration::from_secs(1);
                    }
                    Err(e) if e.is_transient() => {
                        tracing::warn!(error = %e, retry_in_s = delay.as_secs(), "auto-unseal failed; the server stays sealed and retries");
                        delay = (delay * 2).min(std::time::Duration::from_secs(5));
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "auto-unseal failed; the server stays sealed (not retried: fix the seal configuration and restart)");
                        break;
                    }
                }
                drop(core);
                tokio::time::sleep(delay).await;
            }
        });
    }
}

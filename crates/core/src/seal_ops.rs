//! Initialisation, unsealing, sealing, root token generation and rekeying: the operator
//! ceremonies around the Shamir seal. Response shapes follow Vault's so `bao operator` works.

use crate::error::{barrier_err, ceremony_err};
use crate::{Core, CoreResponse, Result};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use coffer_barrier::SecureStorage;
use coffer_ceremony::{CeremonyError, GenerateRoot, Rekey, Verified};
use coffer_crypto::Key;
use coffer_pgp::PublicKey as PgpKey;
use coffer_sdk::field::{parse_bool, parse_int};
use coffer_sdk::LogicalError;
use coffer_seal::{SealConfig, SealError, ShamirSeal, ShareCollector};
use serde_json::{json, Map, Value};
use zeroize::Zeroizing;

#[derive(Default)]
pub(crate) struct SealState {
    unseal: Option<(String, ShareCollector)>,
    generate_root: Option<GenerateRoot>,
    rekey: Option<Rekey>,
}

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn seal_err(e: SealError) -> LogicalError {
    LogicalError::bad_request(e.to_string())
}

fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The length of a root token, which an OTP must have.
fn otp_len() -> usize {
    crate::token::SERVICE_TOKEN_PREFIX.len() + crate::token::TOKEN_RANDOM_LEN
}

/// Where the PGP-encrypted new unseal keys of a rekey with `backup` are kept (inside the barrier).
pub(crate) const UNSEAL_KEYS_BACKUP_PATH: &str = "core/unseal-keys-backup";
/// The same for the recovery keys of an auto seal.
pub(crate) const RECOVERY_KEYS_BACKUP_PATH: &str = "core/recovery-keys-backup";

/// A list of base64 PGP keys (`pgp_keys`, `recovery_pgp_keys`): `None` when absent or empty.
/// `keybase:` names are refused: this server looks nothing up on the network.
fn pgp_keys_field(name: &str, data: &Map<String, Value>) -> Result<Option<Vec<PgpKey>>> {
    let list = match data.get(name) {
        None | Some(Value::Null) => return Ok(None),
        Some(v) => coffer_sdk::field::parse_string_slice(name, v)?,
    };
    coffer_ceremony::parse_pgp_keys(name, &list).map_err(ceremony_err)
}

/// One base64 PGP key (`root_token_pgp_key`, `pgp_key`): `None` when absent or empty.
fn pgp_key_field(name: &str, data: &Map<String, Value>) -> Result<Option<PgpKey>> {
    let key = match data.get(name) {
        None | Some(Value::Null) => return Ok(None),
        Some(v) => coffer_sdk::field::parse_string(name, v)?,
    };
    coffer_ceremony::parse_pgp_key(name, &key).map_err(ceremony_err)
}

impl Core {
    pub(crate) async fn load_seal_config(&self) -> Result<Option<SealConfig>> {
        if let Some(c) = self.seal_config.read().ok().and_then(|c| c.clone()) {
            return Ok(Some(c));
        }
        let Some(raw) = self.barrier.seal_config().await.map_err(barrier_err)? else { return Ok(None) };
        let cfg: SealConfig = serde_json::from_slice(&raw)
            .map_err(|e| LogicalError::internal("seal configuration is unreadable").with_source(e))?;
        if let Ok(mut c) = self.seal_config.write() {
            *c = Some(cfg.clone());
        }
        Ok(Some(cfg))
    }

    /// `sys/seal-status`.
    pub async fn seal_status(&self) -> Result<Map<String, Value>> {
        let cfg = self.load_seal_config().await?;
        let st = self.seal.lock().await;
        let (progress, nonce) = match &st.unseal {
            Some((n, c)) => (c.progress(), n.clone()),
            None => (0, String::new()),
        };
        let mode = self.seal_mode(cfg.as_ref());
        let (shares, threshold) = cfg.as_ref().map(|c| c.operator_shares()).unwrap_or((0, 0));
        let seal_type = cfg.as_ref().map(|c| c.seal_type.clone()).unwrap_or_else(|| self.configured_seal_type().into());
        let recovery_seal = seal_type != "shamir";
        let mut m = obj(json!({
            "type": seal_type,
            "initialized": cfg.is_some(),
            "sealed": self.barrier_sealed(),
            "t": threshold,
            "n": shares,
            "progress": progress,
            "nonce": nonce,
            "recovery_seal": recovery_seal,
            "version": crate::version_string(),
            "commit_date": crate::BUILD_DATE,
            "migration": mode.is_migration(),
        }));
        if recovery_seal {
            m.insert("recovery_seal_type".into(), "shamir".into());
        }
        let mismatch = match &mode {
            crate::autoseal::SealMode::Mismatch(msg) if self.is_sealed() => Some(msg.clone()),
            _ => None,
        };
        if let Some(e) = self.seal_error().or(mismatch) {
            m.insert("seal_error".into(), e.into());
        }
        if let Some(a) = self.active() {
            m.insert("cluster_name".into(), a.cluster.name.clone().into());
            m.insert("cluster_id".into(), a.cluster.id.clone().into());
        }
        m.insert("storage_type".into(), self.barrier.storage_kind().into());
        Ok(m)
    }

    /// `sys/init` (PUT). Returns the key shares and the root token; the server stays sealed.
    /// With `pgp_keys` (`recovery_pgp_keys` for an auto seal) each share comes back encrypted
    /// to its key; with `root_token_pgp_key` the root token does. Every key is checked before
    /// anything is initialised.
    pub async fn initialize(&self, data: &Map<String, Value>) -> Result<CoreResponse> {
        let pgp = pgp_keys_field("pgp_keys", data)?;
        let recovery_pgp = pgp_keys_field("recovery_pgp_keys", data)?;
        let root_pgp = pgp_key_field("root_token_pgp_key", data)?;
        let encrypt_root = |root: String| -> Result<String> {
            match &root_pgp {
                None => Ok(root),
                Some(k) => k.encrypt_base64(root.as_bytes()).map_err(|e| LogicalError::internal(e.to_string())),
            }
        };
        if let Some(seal) = self.current_seal() {
            if pgp.is_some() {
                return Err(LogicalError::bad_request(
                    "pgp_keys does not apply with an auto-unseal seal: its operators hold recovery keys; use recovery_pgp_keys",
                ));
            }
            let n = parse_int("recovery_shares", data.get("recovery_shares").unwrap_or(&json!(0)))?;
            coffer_ceremony::check_pgp_count("recovery_pgp_keys", recovery_pgp.as_ref(), n).map_err(ceremony_err)?;
            let (keys, root) = self.init_auto(seal, data).await?;
            let enc = coffer_ceremony::encode_shares(&keys, recovery_pgp.as_deref()).map_err(ceremony_err)?;
            return Ok(CoreResponse::raw(obj(json!({
                "keys": [],
                "keys_base64": [],
                "recovery_keys": enc.hex,
                "recovery_keys_base64": enc.b64,
                "root_token": encrypt_root(root)?,
            }))));
        }
        if recovery_pgp.is_some() {
            return Err(LogicalError::bad_request(
                "recovery_pgp_keys applies only with an auto-unseal seal (pkcs11, transit); use pgp_keys for unseal keys",
            ));
        }
        let shares = parse_int("secret_shares", data.get("secret_shares").unwrap_or(&json!(0)))?;
        let threshold = parse_int("secret_threshold", data.get("secret_threshold").unwrap_or(&json!(0)))?;
        if !(0..=255).contains(&shares) || !(0..=255).contains(&threshold) {
            return Err(LogicalError::bad_request("secret_shares and secret_threshold must be between 1 and 255"));
        }
        coffer_ceremony::check_pgp_count("pgp_keys", pgp.as_ref(), shares).map_err(ceremony_err)?;
        let (keys, root) = self.init_with(shares as u32, threshold as u32, None, false).await?;
        let enc = coffer_ceremony::encode_shares(&keys, pgp.as_deref()).map_err(ceremony_err)?;
        Ok(CoreResponse::raw(obj(json!({
            "keys": enc.hex,
            "keys_base64": enc.b64,
            "root_token": encrypt_root(root)?,
        }))))
    }

    /// Initialises the barrier; with `stay_unsealed` (dev mode) it is left unsealed.
    pub async fn init_with(
        &self,
        shares: u32,
        threshold: u32,
        root_token_id: Option<&str>,
        stay_unsealed: bool,
    ) -> Result<(Vec<Zeroizing<Vec<u8>>>, String)> {
        let _st = self.seal.lock().await;
        if self.barrier.is_initialized().await.map_err(barrier_err)? {
            return Err(LogicalError::bad_request("Vault is already initialized"));
        }
        let cfg = SealConfig::shamir(shares, threshold).map_err(seal_err)?;
        let (kek, keys) = ShamirSeal::new_key_shares(&cfg).map_err(seal_err)?;
        let raw_cfg = serde_json::to_vec(&cfg).map_err(|e| LogicalError::internal(e.to_string()))?;
        self.barrier.initialize(&kek, raw_cfg).await.map_err(barrier_err)?;
        self.barrier.unseal(&kek).await.map_err(barrier_err)?;
        let active = self.post_unseal().await?;
        let (root, _) = active.tokens.create_root(root_token_id).await?;
        if let Ok(mut c) = self.seal_config.write() {
            *c = Some(cfg);
        }
        if stay_unsealed {
            *self.active.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(active);
        } else {
            self.barrier.seal().await;
        }
        tracing::info!("core initialized");
        Ok((keys, root))
    }

    /// `sys/unseal`.
    pub async fn unseal(&self, data: &Map<String, Value>) -> Result<CoreResponse> {
        let reset = match data.get("reset") {
            Some(v) if !v.is_null() => parse_bool("reset", v)?,
            _ => false,
        };
        let key = data.get("key").and_then(Value::as_str).unwrap_or("");
        if !reset && key.is_empty() {
            return Err(LogicalError::bad_request(
                "'key' must be specified in request body as JSON, or 'reset' set to true",
            ));
        }
        let migrate = match data.get("migrate") {
            Some(v) if !v.is_null() => parse_bool("migrate", v)?,
            _ => false,
        };
        let Some(cfg) = self.load_seal_config().await? else {
            return Err(LogicalError::bad_request("Vault is not initialized"));
        };
        let mode = self.seal_mode(Some(&cfg));
        if let crate::autoseal::SealMode::Mismatch(m) = &mode {
            return Err(LogicalError::bad_request(m.clone()));
        }
        let migrating = mode.is_migration();
        if !reset && self.is_sealed() && migrating != migrate {
            return Err(LogicalError::bad_request(if migrating {
                "a seal migration is pending: give the keys with migrate set (bao operator unseal -migrate)"
            } else {
                "migrate option given but no seal migration is pending"
            }));
        }
        {
            let mut st = self.seal.lock().await;
            if reset && !self.barrier_sealed() {
                return Err(LogicalError::bad_request("vault is unsealed"));
            }
            if reset {
                st.unseal = None;
            } else if self.barrier_sealed() {
                let (_, collector) =
                    st.unseal.get_or_insert_with(|| (uuid(), ShareCollector::new(cfg.operator_shares().1)));
                let combined = collector.add(key);
                match combined {
                    // A share given twice is ignored, as Vault does.
                    Err(SealError::DuplicateShare) => {}
                    Err(SealError::BadEncoding) => return Err(seal_err(SealError::BadEncoding)),
                    Err(e) => {
                        st.unseal = None;
                        return Err(LogicalError::bad_request(format!(
                            "unable to combine the key shares, progress reset: {e}"
                        )));
                    }
                    Ok(None) => {}
                    Ok(Some(kek)) => {
                        st.unseal = None;
                        self.unseal_with(&mode, &cfg, kek).await?;
                    }
                }
            }
        }
        Ok(CoreResponse::raw(self.seal_status().await?))
    }

    /// Seals: drops the unsealed state and every key.
    pub async fn seal_now(&self) -> Result<()> {
        let mut st = self.seal.lock().await;
        st.unseal = None;
        st.generate_root = None;
        st.rekey = None;
        if self.ha_enabled() && self.active().is_some() {
            // While the HA lock is still ours: once it is given up this node's writes are
            // refused (decision 0025), and a standby's keyring may be stale, so the barrier's
            // own write on sealing below is refused there.
            if let Err(e) = self.barrier.checkpoint().await {
                tracing::warn!(error = %e, "could not record the encryption count before sealing");
            }
        }
        self.leave_ha().await;
        if let Ok(mut a) = self.active.write() {
            *a = None;
        }
        self.barrier.seal().await;
        tracing::info!("vault is sealed");
        Ok(())
    }

    // ----- generate-root -----

    pub async fn generate_root(
        &self,
        op: coffer_sdk::Operation,
        sub: &str,
        data: &Map<String, Value>,
    ) -> Result<CoreResponse> {
        use coffer_sdk::Operation::*;
        let Some(cfg) = self.load_seal_config().await? else {
            return Err(LogicalError::bad_request("Vault is not initialized"));
        };
        let required = cfg.operator_shares().1;
        let mut st = self.seal.lock().await;
        let status =
            |st: &SealState| CoreResponse::raw(GenerateRoot::status(st.generate_root.as_ref(), required, otp_len()));
        match (sub, op) {
            ("attempt", Read) => Ok(status(&st)),
            ("attempt", Delete) => {
                st.generate_root = None;
                Ok(CoreResponse::default())
            }
            ("attempt", Update | Create) => {
                if st.generate_root.is_some() {
                    return Err(ceremony_err(CeremonyError::GenerateRootInProgress));
                }
                let pgp = pgp_key_field("pgp_key", data)?;
                let given = data.get("otp").and_then(Value::as_str).unwrap_or("");
                let (attempt, shown) = GenerateRoot::start(required, given, pgp, otp_len()).map_err(ceremony_err)?;
                st.generate_root = Some(attempt);
                let mut r = status(&st);
                if let (Some(otp), Some(d)) = (shown, r.data.as_mut()) {
                    d.insert("otp".into(), otp.as_str().into());
                }
                Ok(r)
            }
            ("update", Update | Create) => {
                let key = data.get("key").and_then(Value::as_str).unwrap_or("");
                let nonce = data.get("nonce").and_then(Value::as_str).unwrap_or("");
                if key.is_empty() {
                    return Err(ceremony_err(CeremonyError::MissingKey));
                }
                let Some(g) = st.generate_root.as_mut() else {
                    return Err(ceremony_err(CeremonyError::NoGenerateRoot));
                };
                let Some(kek) = g.add_share(key, nonce).map_err(ceremony_err)? else { return Ok(status(&st)) };
                // With an auto seal the operators hold recovery keys, checked against the stored one.
                let valid = if cfg.is_auto() {
                    self.verify_recovery_key(&kek).await?
                } else {
                    self.barrier.verify_kek(&kek).await.is_ok()
                };
                if !valid {
                    return Err(ceremony_err(g.reject()));
                }
                let active = self.active().ok_or_else(LogicalError::sealed)?;
                let (token, _) = active.tokens.create_root(None).await?;
                g.finish(&token).map_err(ceremony_err)?;
                let answer = status(&st);
                st.generate_root = None;
                Ok(answer)
            }
            _ => Err(LogicalError::unsupported_operation()),
        }
    }

    // ----- rekey -----

    pub async fn rekey(&self, op: coffer_sdk::Operation, sub: &str, data: &Map<String, Value>) -> Result<CoreResponse> {
        self.rekey_target(op, sub, data, false).await
    }

    /// `sys/rekey/*` (`recovery` false: the unseal keys) or `sys/rekey-recovery-key/*`
    /// (`recovery` true: the recovery keys of an auto seal). One ceremony at a time.
    pub async fn rekey_target(
        &self,
        op: coffer_sdk::Operation,
        sub: &str,
        data: &Map<String, Value>,
        recovery: bool,
    ) -> Result<CoreResponse> {
        use coffer_sdk::Operation::*;
        let Some(cfg) = self.load_seal_config().await? else {
            return Err(LogicalError::bad_request("Vault is not initialized"));
        };
        if self.is_sealed() {
            return Err(LogicalError::sealed());
        }
        if cfg.is_auto() && !recovery && !matches!(op, Read) {
            return Err(LogicalError::bad_request(format!(
                "the {} seal has no unseal keys to rekey; its operators hold recovery keys (sys/rekey-recovery-key)",
                cfg.seal_type
            )));
        }
        if !cfg.is_auto() && recovery {
            return Err(LogicalError::bad_request(
                "recovery keys exist only with an auto-unseal seal (pkcs11, transit)",
            ));
        }
        let required = cfg.operator_shares().1;
        let mut st = self.seal.lock().await;
        match (sub, op) {
            ("init", Read) => Ok(CoreResponse::raw(Rekey::status(st.rekey.as_ref(), required))),
            ("init", Delete) => {
                st.rekey = None;
                Ok(CoreResponse::default())
            }
            ("init", Update | Create) => {
                if st.rekey.is_some() {
                    return Err(ceremony_err(CeremonyError::RekeyInProgress));
                }
                let pgp = pgp_keys_field("pgp_keys", data)?;
                let flag = |name: &str| match data.get(name) {
                    Some(v) if !v.is_null() => parse_bool(name, v),
                    _ => Ok(false),
                };
                let backup = flag("backup")?;
                let require_verification = flag("require_verification")?;
                let n = parse_int("secret_shares", data.get("secret_shares").unwrap_or(&json!(0)))?;
                let t = parse_int("secret_threshold", data.get("secret_threshold").unwrap_or(&json!(0)))?;
                let rekey = Rekey::start(required, n, t, pgp, backup, require_verification).map_err(ceremony_err)?;
                st.rekey = Some(rekey);
                Ok(CoreResponse::raw(Rekey::status(st.rekey.as_ref(), required)))
            }
            ("update", Update | Create) => {
                let key = data.get("key").and_then(Value::as_str).unwrap_or("");
                let nonce = data.get("nonce").and_then(Value::as_str).unwrap_or("");
                if key.is_empty() {
                    return Err(ceremony_err(CeremonyError::MissingKey));
                }
                let Some(r) = st.rekey.as_mut() else {
                    return Err(ceremony_err(CeremonyError::NoRekey));
                };
                let Some(old) = r.add_share(key, nonce).map_err(ceremony_err)? else {
                    return Ok(CoreResponse::raw(Rekey::status(st.rekey.as_ref(), required)));
                };
                let valid = if recovery {
                    self.verify_recovery_key(&old).await?
                } else {
                    self.barrier.verify_kek(&old).await.is_ok()
                };
                if !valid {
                    return Err(ceremony_err(r.reject()));
                }
                let keys = r.new_keys().map_err(ceremony_err)?;
                if let Some(b) = &keys.backup {
                    // Kept before the new keys take effect, so that a verification or an
                    // operator who loses the answer can still fetch them (sys/rekey/backup).
                    let raw = serde_json::to_vec(&b.to_json()).map_err(|e| LogicalError::internal(e.to_string()))?;
                    let path = if recovery { RECOVERY_KEYS_BACKUP_PATH } else { UNSEAL_KEYS_BACKUP_PATH };
                    self.barrier.put(path, &raw).await.map_err(barrier_err)?;
                }
                if let Some((new_kek, new_cfg)) = keys.install {
                    self.apply_rekey_target(&new_kek, new_cfg, recovery).await?;
                    st.rekey = None;
                }
                Ok(CoreResponse::raw(keys.answer))
            }
            ("verify", Read) => {
                let Some(r) = st.rekey.as_ref() else {
                    return Err(ceremony_err(CeremonyError::NoRekeyConfiguration));
                };
                Ok(CoreResponse::raw(r.verification_status()))
            }
            ("verify", Delete) => {
                let Some(r) = st.rekey.as_mut() else {
                    return Err(ceremony_err(CeremonyError::NoRekey));
                };
                r.restart_verification();
                Ok(CoreResponse::default())
            }
            ("verify", Update | Create) => {
                let key = data.get("key").and_then(Value::as_str).unwrap_or("");
                let nonce = data.get("nonce").and_then(Value::as_str).unwrap_or("");
                let Some(r) = st.rekey.as_mut() else {
                    return Err(ceremony_err(CeremonyError::NoRekey));
                };
                match r.verify_share(key, nonce).map_err(ceremony_err)? {
                    Verified::Progress(status) => Ok(CoreResponse::raw(status)),
                    Verified::Complete { kek, config, answer } => {
                        self.apply_rekey_target(&kek, config, recovery).await?;
                        st.rekey = None;
                        Ok(CoreResponse::raw(answer))
                    }
                }
            }
            _ => Err(LogicalError::unsupported_operation()),
        }
    }

    /// `sys/rekey/backup`, `sys/rotate/root/backup` (`recovery` false) and
    /// `sys/rekey/recovery-key-backup`, `sys/rotate/recovery/backup` (`recovery` true): read or
    /// delete the PGP-encrypted shares a rekey with `backup` stored.
    pub(crate) async fn rekey_backup(&self, op: coffer_sdk::Operation, recovery: bool) -> Result<CoreResponse> {
        use coffer_sdk::Operation::*;
        let path = if recovery { RECOVERY_KEYS_BACKUP_PATH } else { UNSEAL_KEYS_BACKUP_PATH };
        match op {
            Read => {
                let Some(raw) = self.barrier.get(path).await.map_err(barrier_err)? else {
                    return Err(LogicalError::bad_request("no backed-up keys found"));
                };
                let b = serde_json::from_slice::<Value>(&raw)
                    .map_err(|e| LogicalError::internal("the stored key backup is unreadable").with_source(e))?;
                let b = coffer_ceremony::Backup::from_json(&b)
                    .ok_or_else(|| LogicalError::internal("the stored key backup is unreadable"))?;
                let mut b64 = Map::new();
                for (fp, list) in &b.keys {
                    let encoded: Vec<Value> = list
                        .iter()
                        .map(|h| hex::decode(h).map(|m| Value::String(B64.encode(m))))
                        .collect::<std::result::Result<_, _>>()
                        .map_err(|e| LogicalError::internal("the stored key backup is unreadable").with_source(e))?;
                    b64.insert(fp.clone(), Value::Array(encoded));
                }
                Ok(CoreResponse::legacy(obj(json!({ "nonce": b.nonce, "keys": b.keys, "keys_base64": b64 }))))
            }
            Delete => {
                self.barrier.delete(path).await.map_err(barrier_err)?;
                Ok(CoreResponse::default())
            }
            _ => Err(LogicalError::unsupported_operation()),
        }
    }

    async fn apply_rekey_target(&self, key: &Key, new: SealConfig, recovery: bool) -> Result<()> {
        if !recovery {
            return self.apply_rekey(key, new).await;
        }
        let mut cfg = self.load_seal_config().await?.ok_or_else(|| LogicalError::internal("not initialized"))?;
        cfg.recovery_shares = new.secret_shares;
        cfg.recovery_threshold = new.secret_threshold;
        let raw = serde_json::to_vec(&cfg).map_err(|e| LogicalError::internal(e.to_string()))?;
        self.barrier
            .put_seal_config_with(raw, crate::autoseal::RECOVERY_KEY_PATH, key.as_bytes())
            .await
            .map_err(barrier_err)?;
        if let Ok(mut c) = self.seal_config.write() {
            *c = Some(cfg);
        }
        tracing::info!("recovery keys rekeyed");
        Ok(())
    }

    async fn apply_rekey(&self, kek: &Key, cfg: SealConfig) -> Result<()> {
        let raw = serde_json::to_vec(&cfg).map_err(|e| LogicalError::internal(e.to_string()))?;
        self.barrier.rewrap_root(kek, raw).await.map_err(barrier_err)?;
        if let Ok(mut c) = self.seal_config.write() {
            *c = Some(cfg);
        }
        self.ha_rekeyed(kek);
        tracing::info!("unseal keys rekeyed");
        Ok(())
    }
}

//! Initialisation, unsealing, sealing, root token generation and rekeying: the operator
//! ceremonies around the Shamir seal. Response shapes follow Vault's so `bao operator` works.

use crate::error::barrier_err;
use crate::{Core, CoreResponse, Result};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use coffer_barrier::SecureStorage;
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

struct GenerateRoot {
    nonce: String,
    otp: Zeroizing<String>,
    /// With `pgp_key`: the token is encrypted to this key instead of XORed with the OTP.
    pgp: Option<PgpKey>,
    collector: ShareCollector,
    encoded: Option<String>,
}

struct Rekey {
    nonce: String,
    config: SealConfig,
    require_verification: bool,
    /// With `pgp_keys`: the new shares are encrypted to these keys, one per share.
    pgp: Option<Vec<PgpKey>>,
    /// Store the encrypted new shares (`sys/rekey/backup`).
    backup: bool,
    collector: ShareCollector,
    /// After the old keys were given, with verification required: the pending new key.
    pending: Option<PendingRekey>,
}

struct PendingRekey {
    kek: Key,
    verification_nonce: String,
    collector: ShareCollector,
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

fn encode_shares(shares: &[Zeroizing<Vec<u8>>]) -> (Vec<String>, Vec<String>) {
    (shares.iter().map(hex::encode).collect(), shares.iter().map(|s| B64.encode(&***s)).collect())
}

/// Where the PGP-encrypted new unseal keys of a rekey with `backup` are kept (inside the barrier).
pub(crate) const UNSEAL_KEYS_BACKUP_PATH: &str = "core/unseal-keys-backup";
/// The same for the recovery keys of an auto seal.
pub(crate) const RECOVERY_KEYS_BACKUP_PATH: &str = "core/recovery-keys-backup";

/// Shares as the operators receive them: plain (hex and base64), or each one's hex text
/// encrypted to its operator's PGP key (the message in hex and in base64), as Vault does, so
/// `base64 -d | gpg --decrypt` yields the key to give to `unseal`.
struct EncodedShares {
    hex: Vec<String>,
    b64: Vec<String>,
    /// With PGP: the fingerprint of each share's key, in order.
    fingerprints: Option<Vec<String>>,
}

fn encode_shares_for(shares: &[Zeroizing<Vec<u8>>], pgp: Option<&[PgpKey]>) -> Result<EncodedShares> {
    let Some(keys) = pgp else {
        let (hex, b64) = encode_shares(shares);
        return Ok(EncodedShares { hex, b64, fingerprints: None });
    };
    if keys.len() != shares.len() {
        return Err(LogicalError::internal("PGP key count does not match the share count"));
    }
    let mut out = EncodedShares { hex: vec![], b64: vec![], fingerprints: Some(vec![]) };
    for (share, key) in shares.iter().zip(keys) {
        let text = Zeroizing::new(hex::encode(&***share));
        let msg = key.encrypt(text.as_bytes()).map_err(|e| LogicalError::internal(e.to_string()))?;
        out.hex.push(hex::encode(&msg));
        out.b64.push(B64.encode(&msg));
        if let Some(f) = out.fingerprints.as_mut() {
            f.push(key.fingerprint());
        }
    }
    Ok(out)
}

/// A list of base64 PGP keys (`pgp_keys`, `recovery_pgp_keys`): `None` when absent or empty.
/// `keybase:` names are refused: this server looks nothing up on the network.
fn pgp_keys_field(name: &str, data: &Map<String, Value>) -> Result<Option<Vec<PgpKey>>> {
    let list = match data.get(name) {
        None | Some(Value::Null) => return Ok(None),
        Some(v) => coffer_sdk::field::parse_string_slice(name, v)?,
    };
    if list.is_empty() {
        return Ok(None);
    }
    if list.iter().any(|k| k.starts_with("keybase:")) {
        return Err(LogicalError::bad_request(format!(
            "{name}: keybase: names are not supported; give base64 of each binary public key (gpg --export KEY | base64)"
        )));
    }
    coffer_pgp::parse_keys(&list)
        .map(Some)
        .map_err(|e| LogicalError::bad_request(format!("invalid seal configuration: {name}: {e}")))
}

/// One base64 PGP key (`root_token_pgp_key`, `pgp_key`): `None` when absent or empty.
fn pgp_key_field(name: &str, data: &Map<String, Value>) -> Result<Option<PgpKey>> {
    let key = match data.get(name) {
        None | Some(Value::Null) => return Ok(None),
        Some(v) => coffer_sdk::field::parse_string(name, v)?,
    };
    let key = key.trim();
    if key.is_empty() {
        return Ok(None);
    }
    if key.starts_with("keybase:") {
        return Err(LogicalError::bad_request(format!(
            "{name}: keybase: names are not supported; give base64 of the binary public key (gpg --export KEY | base64)"
        )));
    }
    PgpKey::parse_base64(key).map(Some).map_err(|e| LogicalError::bad_request(format!("{name}: {e}")))
}

fn check_pgp_count(name: &str, keys: Option<&Vec<PgpKey>>, shares: i64) -> Result<()> {
    match keys {
        Some(k) if k.len() as i64 != shares => Err(LogicalError::bad_request(format!(
            "invalid seal configuration: count mismatch between number of provided PGP keys and number of shares \
             ({name} has {} keys for {shares} shares)",
            k.len()
        ))),
        _ => Ok(()),
    }
}

/// The stored backup of a rekey's PGP-encrypted new shares.
#[derive(serde::Serialize, serde::Deserialize)]
struct RekeyBackup {
    nonce: String,
    /// Fingerprint → the encrypted shares (hex) for that key, in share order.
    keys: std::collections::BTreeMap<String, Vec<String>>,
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
            check_pgp_count("recovery_pgp_keys", recovery_pgp.as_ref(), n)?;
            let (keys, root) = self.init_auto(seal, data).await?;
            let enc = encode_shares_for(&keys, recovery_pgp.as_deref())?;
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
        check_pgp_count("pgp_keys", pgp.as_ref(), shares)?;
        let (keys, root) = self.init_with(shares as u32, threshold as u32, None, false).await?;
        let enc = encode_shares_for(&keys, pgp.as_deref())?;
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

    fn generate_root_status(&self, st: &SealState, cfg: &SealConfig) -> Map<String, Value> {
        let otp_len = crate::token::SERVICE_TOKEN_PREFIX.len() + crate::token::TOKEN_RANDOM_LEN;
        match &st.generate_root {
            None => obj(json!({
                "started": false, "nonce": "", "progress": 0, "required": cfg.operator_shares().1,
                "complete": false, "encoded_token": "", "encoded_root_token": "",
                "pgp_fingerprint": "", "otp": "", "otp_length": otp_len,
            })),
            Some(g) => obj(json!({
                "started": true, "nonce": g.nonce, "progress": g.collector.progress(),
                "required": cfg.operator_shares().1, "complete": g.encoded.is_some(),
                "encoded_token": g.encoded.clone().unwrap_or_default(),
                "encoded_root_token": g.encoded.clone().unwrap_or_default(),
                "pgp_fingerprint": g.pgp.as_ref().map(PgpKey::fingerprint).unwrap_or_default(),
                "otp": "", "otp_length": otp_len,
            })),
        }
    }

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
        let mut st = self.seal.lock().await;
        match (sub, op) {
            ("attempt", Read) => Ok(CoreResponse::raw(self.generate_root_status(&st, &cfg))),
            ("attempt", Delete) => {
                st.generate_root = None;
                Ok(CoreResponse::default())
            }
            ("attempt", Update | Create) => {
                if st.generate_root.is_some() {
                    return Err(LogicalError::bad_request("root generation already in progress for this namespace"));
                }
                let pgp = pgp_key_field("pgp_key", data)?;
                let otp_len = crate::token::SERVICE_TOKEN_PREFIX.len() + crate::token::TOKEN_RANDOM_LEN;
                let given = data.get("otp").and_then(Value::as_str).unwrap_or("");
                if pgp.is_some() && !given.is_empty() {
                    return Err(LogicalError::bad_request(
                        "give either otp or pgp_key, not both: the new root token is either XORed with the OTP or encrypted to the PGP key",
                    ));
                }
                if let Some(key) = pgp {
                    st.generate_root = Some(GenerateRoot {
                        nonce: uuid(),
                        otp: Zeroizing::new(String::new()),
                        pgp: Some(key),
                        collector: ShareCollector::new(cfg.operator_shares().1),
                        encoded: None,
                    });
                    return Ok(CoreResponse::raw(self.generate_root_status(&st, &cfg)));
                }
                let otp = if given.is_empty() {
                    coffer_crypto::random_base62(otp_len).map_err(|e| LogicalError::internal(e.to_string()))?
                } else {
                    let raw = B64.decode(given).ok().and_then(|b| String::from_utf8(b).ok());
                    match raw {
                        Some(s) if s.len() == otp_len => s,
                        _ => given.to_string(),
                    }
                };
                if otp.len() != otp_len {
                    return Err(LogicalError::bad_request("OTP string has incorrect length"));
                }
                st.generate_root = Some(GenerateRoot {
                    nonce: uuid(),
                    otp: Zeroizing::new(otp.clone()),
                    pgp: None,
                    collector: ShareCollector::new(cfg.operator_shares().1),
                    encoded: None,
                });
                let mut status = self.generate_root_status(&st, &cfg);
                if given.is_empty() {
                    status.insert("otp".into(), otp.into());
                }
                Ok(CoreResponse::raw(status))
            }
            ("update", Update | Create) => {
                let key = data.get("key").and_then(Value::as_str).unwrap_or("");
                let nonce = data.get("nonce").and_then(Value::as_str).unwrap_or("");
                if key.is_empty() {
                    return Err(LogicalError::bad_request("'key' must be specified in request body as JSON"));
                }
                let Some(g) = st.generate_root.as_mut() else {
                    return Err(LogicalError::bad_request("no root generation in progress"));
                };
                if !coffer_crypto::ct_eq(g.nonce.as_bytes(), nonce.as_bytes()) {
                    return Err(LogicalError::bad_request(format!(
                        "incorrect nonce supplied; nonce for this root generation operation is {:?}",
                        g.nonce
                    )));
                }
                if g.encoded.is_some() {
                    return Err(LogicalError::bad_request("root generation already completed"));
                }
                let kek = match g.collector.add(key) {
                    Ok(Some(k)) => k,
                    Ok(None) => return Ok(CoreResponse::raw(self.generate_root_status(&st, &cfg))),
                    Err(SealError::DuplicateShare) => {
                        return Err(LogicalError::bad_request(
                            "given key has already been provided during this generation operation",
                        ))
                    }
                    Err(e) => return Err(seal_err(e)),
                };
                // With an auto seal the operators hold recovery keys, checked against the stored one.
                let valid = if cfg.is_auto() {
                    self.verify_recovery_key(&kek).await?
                } else {
                    self.barrier.verify_kek(&kek).await.is_ok()
                };
                if !valid {
                    g.collector.reset();
                    return Err(LogicalError::bad_request(
                        "unable to authenticate: the key shares given do not unseal this server",
                    ));
                }
                let active = self.active().ok_or_else(LogicalError::sealed)?;
                let (token, _) = active.tokens.create_root(None).await?;
                g.encoded = Some(match &g.pgp {
                    Some(key) => {
                        key.encrypt_base64(token.as_bytes()).map_err(|e| LogicalError::internal(e.to_string()))?
                    }
                    None => {
                        let xored: Vec<u8> = token.bytes().zip(g.otp.bytes()).map(|(a, b)| a ^ b).collect();
                        base64::engine::general_purpose::STANDARD_NO_PAD.encode(xored)
                    }
                });
                let status = self.generate_root_status(&st, &cfg);
                st.generate_root = None;
                Ok(CoreResponse::raw(status))
            }
            _ => Err(LogicalError::unsupported_operation()),
        }
    }

    // ----- rekey -----

    fn rekey_status(&self, st: &SealState, cfg: &SealConfig) -> Map<String, Value> {
        match &st.rekey {
            None => obj(json!({
                "nonce": "", "started": false, "t": 0, "n": 0, "progress": 0,
                "required": cfg.operator_shares().1, "pgp_fingerprints": null, "backup": false,
                "verification_required": false,
            })),
            Some(r) => obj(json!({
                "nonce": r.nonce, "started": true, "t": r.config.secret_threshold,
                "n": r.config.secret_shares, "progress": r.collector.progress(),
                "required": cfg.operator_shares().1,
                "pgp_fingerprints": r.pgp.as_ref().map(|k| k.iter().map(PgpKey::fingerprint).collect::<Vec<_>>()),
                "backup": r.backup,
                "verification_required": r.require_verification,
                "verification_nonce": r.pending.as_ref().map(|p| p.verification_nonce.clone()).unwrap_or_default(),
            })),
        }
    }

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
        let mut st = self.seal.lock().await;
        match (sub, op) {
            ("init", Read) => Ok(CoreResponse::raw(self.rekey_status(&st, &cfg))),
            ("init", Delete) => {
                st.rekey = None;
                Ok(CoreResponse::default())
            }
            ("init", Update | Create) => {
                if st.rekey.is_some() {
                    return Err(LogicalError::bad_request("rekey already in progress"));
                }
                let pgp = pgp_keys_field("pgp_keys", data)?;
                let backup = match data.get("backup") {
                    Some(v) if !v.is_null() => parse_bool("backup", v)?,
                    _ => false,
                };
                if backup && pgp.is_none() {
                    return Err(LogicalError::bad_request(
                        "backup requires pgp_keys: only PGP-encrypted key shares are backed up",
                    ));
                }
                let n = parse_int("secret_shares", data.get("secret_shares").unwrap_or(&json!(0)))?;
                let t = parse_int("secret_threshold", data.get("secret_threshold").unwrap_or(&json!(0)))?;
                let new_cfg = SealConfig::shamir(n.clamp(0, 1000) as u32, t.clamp(0, 1000) as u32).map_err(seal_err)?;
                check_pgp_count("pgp_keys", pgp.as_ref(), n)?;
                let require_verification = match data.get("require_verification") {
                    Some(v) if !v.is_null() => parse_bool("require_verification", v)?,
                    _ => false,
                };
                st.rekey = Some(Rekey {
                    nonce: uuid(),
                    config: new_cfg,
                    require_verification,
                    pgp,
                    backup,
                    collector: ShareCollector::new(cfg.operator_shares().1),
                    pending: None,
                });
                Ok(CoreResponse::raw(self.rekey_status(&st, &cfg)))
            }
            ("update", Update | Create) => {
                let key = data.get("key").and_then(Value::as_str).unwrap_or("");
                let nonce = data.get("nonce").and_then(Value::as_str).unwrap_or("");
                if key.is_empty() {
                    return Err(LogicalError::bad_request("'key' must be specified in request body as JSON"));
                }
                let Some(r) = st.rekey.as_mut() else {
                    return Err(LogicalError::bad_request("no rekey in progress"));
                };
                if !coffer_crypto::ct_eq(r.nonce.as_bytes(), nonce.as_bytes()) {
                    return Err(LogicalError::bad_request(format!(
                        "incorrect nonce supplied; nonce for this rekey operation is {:?}",
                        r.nonce
                    )));
                }
                if r.pending.is_some() {
                    return Err(LogicalError::bad_request("rekey is awaiting verification of the new keys"));
                }
                let old = match r.collector.add(key) {
                    Ok(Some(k)) => k,
                    Ok(None) => return Ok(CoreResponse::raw(self.rekey_status(&st, &cfg))),
                    Err(SealError::DuplicateShare) => {
                        return Err(LogicalError::bad_request(
                            "given key has already been provided during this generation operation",
                        ))
                    }
                    Err(e) => return Err(seal_err(e)),
                };
                let valid = if recovery {
                    self.verify_recovery_key(&old).await?
                } else {
                    self.barrier.verify_kek(&old).await.is_ok()
                };
                if !valid {
                    r.collector.reset();
                    return Err(LogicalError::bad_request(
                        "failed to authenticate: the key shares given do not unseal this server; progress reset",
                    ));
                }
                let (new_kek, shares) = ShamirSeal::new_key_shares(&r.config).map_err(seal_err)?;
                let enc = encode_shares_for(&shares, r.pgp.as_deref())?;
                let nonce = r.nonce.clone();
                if r.backup {
                    // Kept before the new keys take effect, so that a verification or an
                    // operator who loses the answer can still fetch them (sys/rekey/backup).
                    let mut keys = std::collections::BTreeMap::<String, Vec<String>>::new();
                    for (fp, msg) in enc.fingerprints.iter().flatten().zip(&enc.hex) {
                        keys.entry(fp.clone()).or_default().push(msg.clone());
                    }
                    let raw = serde_json::to_vec(&RekeyBackup { nonce: nonce.clone(), keys })
                        .map_err(|e| LogicalError::internal(e.to_string()))?;
                    let path = if recovery { RECOVERY_KEYS_BACKUP_PATH } else { UNSEAL_KEYS_BACKUP_PATH };
                    self.barrier.put(path, &raw).await.map_err(barrier_err)?;
                }
                let mut out = obj(json!({
                    "nonce": nonce, "complete": true, "keys": enc.hex, "keys_base64": enc.b64,
                    "pgp_fingerprints": enc.fingerprints, "backup": r.backup,
                    "verification_required": r.require_verification,
                }));
                if r.require_verification {
                    let vn = uuid();
                    out.insert("verification_nonce".into(), vn.clone().into());
                    r.pending = Some(PendingRekey {
                        kek: new_kek,
                        verification_nonce: vn,
                        collector: ShareCollector::new(r.config.secret_threshold),
                    });
                } else {
                    let new_cfg = r.config.clone();
                    self.apply_rekey_target(&new_kek, new_cfg, recovery).await?;
                    st.rekey = None;
                }
                Ok(CoreResponse::raw(out))
            }
            ("verify", Read) => {
                let Some(r) = st.rekey.as_ref() else {
                    return Err(LogicalError::bad_request("no rekey configuration found"));
                };
                let Some(p) = r.pending.as_ref() else {
                    return Ok(CoreResponse::raw(obj(json!({
                        "nonce": "", "started": false, "t": r.config.secret_threshold,
                        "n": r.config.secret_shares, "progress": 0,
                    }))));
                };
                Ok(CoreResponse::raw(obj(json!({
                    "nonce": p.verification_nonce, "started": true, "t": r.config.secret_threshold,
                    "n": r.config.secret_shares, "progress": p.collector.progress(),
                }))))
            }
            ("verify", Delete) => {
                let Some(r) = st.rekey.as_mut() else {
                    return Err(LogicalError::bad_request("no rekey in progress"));
                };
                if let Some(p) = r.pending.as_mut() {
                    p.verification_nonce = uuid();
                    p.collector.reset();
                }
                Ok(CoreResponse::default())
            }
            ("verify", Update | Create) => {
                let key = data.get("key").and_then(Value::as_str).unwrap_or("");
                let nonce = data.get("nonce").and_then(Value::as_str).unwrap_or("");
                let Some(r) = st.rekey.as_mut() else {
                    return Err(LogicalError::bad_request("no rekey in progress"));
                };
                let Some(p) = r.pending.as_mut() else {
                    return Err(LogicalError::bad_request("no rekey verification in progress"));
                };
                if !coffer_crypto::ct_eq(p.verification_nonce.as_bytes(), nonce.as_bytes()) {
                    return Err(LogicalError::bad_request(format!(
                        "incorrect nonce supplied; nonce for this verify operation is {:?}",
                        p.verification_nonce
                    )));
                }
                let got = match p.collector.add(key) {
                    Ok(Some(k)) => k,
                    Ok(None) => {
                        return Ok(CoreResponse::raw(obj(json!({
                            "nonce": p.verification_nonce, "started": true, "t": r.config.secret_threshold,
                            "n": r.config.secret_shares, "progress": p.collector.progress(),
                        }))))
                    }
                    Err(e) => return Err(seal_err(e)),
                };
                if !coffer_crypto::ct_eq(got.as_bytes(), p.kek.as_bytes()) {
                    p.collector.reset();
                    return Err(LogicalError::bad_request(
                        "the new key shares given do not match; verification progress reset",
                    ));
                }
                let vn = p.verification_nonce.clone();
                let new_cfg = r.config.clone();
                self.apply_rekey_target(&got, new_cfg, recovery).await?;
                st.rekey = None;
                Ok(CoreResponse::raw(obj(json!({ "nonce": vn, "complete": true }))))
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
                let b: RekeyBackup = serde_json::from_slice(&raw)
                    .map_err(|e| LogicalError::internal("the stored key backup is unreadable").with_source(e))?;
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

//! The operator ceremonies' state machines — root token generation, and the rekey of unseal or
//! recovery keys with its optional verification — and the encoding of key shares as operators
//! receive them (hex and base64, or encrypted to their PGP keys).
//!
//! Pure computation over the seal's share collector: no storage, no barrier, no core. The core
//! does the I/O around each step — checking a combined key against the barrier (or the stored
//! recovery key), minting the root token, storing a backup, installing the new key — and maps
//! [`CeremonyError`] to its answers. The answers' shapes and messages are OpenBao's, so `bao
//! operator generate-root` and `bao operator rekey` work unchanged.
#![forbid(unsafe_code)]

use base64::engine::general_purpose::{STANDARD as B64, STANDARD_NO_PAD as B64_NO_PAD};
use base64::Engine;
use coffer_crypto::Key;
use coffer_pgp::{PgpError, PublicKey as PgpKey};
use coffer_seal::{SealConfig, SealError, ShamirSeal, ShareCollector};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use zeroize::Zeroizing;

/// Why a ceremony step is refused. Every variant but [`CeremonyError::Encrypt`] is the
/// operator's doing (a 400); the messages are what the client sees.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CeremonyError {
    #[error("root generation already in progress for this namespace")]
    GenerateRootInProgress,
    #[error("no root generation in progress")]
    NoGenerateRoot,
    #[error("root generation already completed")]
    GenerateRootCompleted,
    #[error(
        "give either otp or pgp_key, not both: the new root token is either XORed with the OTP or encrypted to the \
         PGP key"
    )]
    OtpAndPgpKey,
    #[error("OTP string has incorrect length")]
    OtpLength,
    #[error("'key' must be specified in request body as JSON")]
    MissingKey,
    /// The nonce does not name the ceremony in progress (`operation`: "root generation",
    /// "rekey", "verify").
    #[error("incorrect nonce supplied; nonce for this {operation} operation is {nonce:?}")]
    WrongNonce { operation: &'static str, nonce: String },
    #[error("given key has already been provided during this generation operation")]
    DuplicateShare,
    /// A share that cannot be decoded, or a configuration the seal refuses.
    #[error(transparent)]
    Seal(SealError),
    /// The combined shares of a root generation do not unseal this server (progress reset).
    #[error("unable to authenticate: the key shares given do not unseal this server")]
    GenerateRootKeysInvalid,
    #[error("rekey already in progress")]
    RekeyInProgress,
    #[error("no rekey in progress")]
    NoRekey,
    #[error("no rekey configuration found")]
    NoRekeyConfiguration,
    #[error("rekey is awaiting verification of the new keys")]
    AwaitingVerification,
    #[error("no rekey verification in progress")]
    NoVerification,
    /// The combined current shares of a rekey do not unseal this server (progress reset).
    #[error("failed to authenticate: the key shares given do not unseal this server; progress reset")]
    RekeyKeysInvalid,
    #[error("the new key shares given do not match; verification progress reset")]
    VerificationMismatch,
    #[error("backup requires pgp_keys: only PGP-encrypted key shares are backed up")]
    BackupNeedsPgpKeys,
    /// `keybase:` names: nothing is looked up on the network (`list`: the field takes several).
    #[error(
        "{name}: keybase: names are not supported; give base64 of {} (gpg --export KEY | base64)",
        if *list { "each binary public key" } else { "the binary public key" }
    )]
    KeybaseName { name: String, list: bool },
    /// A key of a list field (`pgp_keys`, `recovery_pgp_keys`) that cannot be used.
    #[error("invalid seal configuration: {name}: {source}")]
    PgpKeys { name: String, source: PgpError },
    /// The key of a one-key field (`pgp_key`, `root_token_pgp_key`) that cannot be used.
    #[error("{name}: {source}")]
    PgpKey { name: String, source: PgpError },
    #[error(
        "invalid seal configuration: count mismatch between number of provided PGP keys and number of shares \
         ({name} has {keys} keys for {shares} shares)"
    )]
    PgpKeyCount { name: String, keys: usize, shares: i64 },
    /// Encrypting to a checked key failed: the server's fault (a 500).
    #[error("{0}")]
    Encrypt(String),
}

impl CeremonyError {
    /// Whether the client is at fault (a 400) rather than the server (a 500).
    pub fn is_client_error(&self) -> bool {
        !matches!(self, CeremonyError::Encrypt(_))
    }
}

impl From<SealError> for CeremonyError {
    fn from(e: SealError) -> Self {
        match e {
            SealError::DuplicateShare => CeremonyError::DuplicateShare,
            e => CeremonyError::Seal(e),
        }
    }
}

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn nonce() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn check_nonce(operation: &'static str, expected: &str, given: &str) -> Result<(), CeremonyError> {
    if coffer_crypto::ct_eq(expected.as_bytes(), given.as_bytes()) {
        Ok(())
    } else {
        Err(CeremonyError::WrongNonce { operation, nonce: expected.to_string() })
    }
}

// ----- PGP keys and share encoding -----

/// The keys of a list field (`pgp_keys`, `recovery_pgp_keys`, base64 of binary public keys):
/// `None` when there are none.
pub fn parse_pgp_keys(name: &str, list: &[String]) -> Result<Option<Vec<PgpKey>>, CeremonyError> {
    if list.is_empty() {
        return Ok(None);
    }
    if list.iter().any(|k| k.starts_with("keybase:")) {
        return Err(CeremonyError::KeybaseName { name: name.to_string(), list: true });
    }
    coffer_pgp::parse_keys(list).map(Some).map_err(|source| CeremonyError::PgpKeys { name: name.to_string(), source })
}

/// The key of a one-key field (`pgp_key`, `root_token_pgp_key`): `None` when blank.
pub fn parse_pgp_key(name: &str, key: &str) -> Result<Option<PgpKey>, CeremonyError> {
    let key = key.trim();
    if key.is_empty() {
        return Ok(None);
    }
    if key.starts_with("keybase:") {
        return Err(CeremonyError::KeybaseName { name: name.to_string(), list: false });
    }
    PgpKey::parse_base64(key).map(Some).map_err(|source| CeremonyError::PgpKey { name: name.to_string(), source })
}

/// One PGP key per share, when keys are given.
pub fn check_pgp_count(name: &str, keys: Option<&Vec<PgpKey>>, shares: i64) -> Result<(), CeremonyError> {
    match keys {
        Some(k) if k.len() as i64 != shares => {
            Err(CeremonyError::PgpKeyCount { name: name.to_string(), keys: k.len(), shares })
        }
        _ => Ok(()),
    }
}

/// Shares as the operators receive them: plain (hex and base64), or each one's hex text
/// encrypted to its operator's PGP key (the message in hex and in base64), as Vault does, so
/// `base64 -d | gpg --decrypt` yields the key to give to `unseal`.
pub struct EncodedShares {
    pub hex: Vec<String>,
    pub b64: Vec<String>,
    /// With PGP: the fingerprint of each share's key, in order.
    pub fingerprints: Option<Vec<String>>,
}

/// Encodes new shares, encrypted to `pgp` (one key per share) when given.
pub fn encode_shares(shares: &[Zeroizing<Vec<u8>>], pgp: Option<&[PgpKey]>) -> Result<EncodedShares, CeremonyError> {
    let Some(keys) = pgp else {
        return Ok(EncodedShares {
            hex: shares.iter().map(hex::encode).collect(),
            b64: shares.iter().map(|s| B64.encode(&***s)).collect(),
            fingerprints: None,
        });
    };
    if keys.len() != shares.len() {
        return Err(CeremonyError::Encrypt("PGP key count does not match the share count".into()));
    }
    let mut out = EncodedShares { hex: vec![], b64: vec![], fingerprints: Some(vec![]) };
    for (share, key) in shares.iter().zip(keys) {
        let text = Zeroizing::new(hex::encode(&***share));
        let msg = key.encrypt(text.as_bytes()).map_err(|e| CeremonyError::Encrypt(e.to_string()))?;
        out.hex.push(hex::encode(&msg));
        out.b64.push(B64.encode(&msg));
        if let Some(f) = out.fingerprints.as_mut() {
            f.push(key.fingerprint());
        }
    }
    Ok(out)
}

// ----- generate-root -----

/// A root token generation in progress: the operators give key shares; once they combine into
/// the key (which the core checks), the new root token is handed out XORed with the OTP or
/// encrypted to the PGP key.
pub struct GenerateRoot {
    nonce: String,
    otp: Zeroizing<String>,
    /// With `pgp_key`: the token is encrypted to this key instead of XORed with the OTP.
    pgp: Option<PgpKey>,
    collector: ShareCollector,
    encoded: Option<String>,
}

impl GenerateRoot {
    /// Starts an attempt needing `required` shares. `given_otp` is the client's OTP (raw or
    /// base64 of it; empty: one is generated and returned, to be shown once); `otp_len` is the
    /// length of a root token.
    pub fn start(
        required: u32,
        given_otp: &str,
        pgp: Option<PgpKey>,
        otp_len: usize,
    ) -> Result<(GenerateRoot, Option<Zeroizing<String>>), CeremonyError> {
        if pgp.is_some() && !given_otp.is_empty() {
            return Err(CeremonyError::OtpAndPgpKey);
        }
        let attempt = |otp: String, pgp| GenerateRoot {
            nonce: nonce(),
            otp: Zeroizing::new(otp),
            pgp,
            collector: ShareCollector::new(required),
            encoded: None,
        };
        if pgp.is_some() {
            return Ok((attempt(String::new(), pgp), None));
        }
        let otp = if given_otp.is_empty() {
            coffer_crypto::random_base62(otp_len).map_err(|e| CeremonyError::Encrypt(e.to_string()))?
        } else {
            let raw = B64.decode(given_otp).ok().and_then(|b| String::from_utf8(b).ok());
            match raw {
                Some(s) if s.len() == otp_len => s,
                _ => given_otp.to_string(),
            }
        };
        if otp.len() != otp_len {
            return Err(CeremonyError::OtpLength);
        }
        let shown = given_otp.is_empty().then(|| Zeroizing::new(otp.clone()));
        Ok((attempt(otp, None), shown))
    }

    /// The status answer of `generate-root/attempt` (no attempt: `None`).
    pub fn status(attempt: Option<&GenerateRoot>, required: u32, otp_len: usize) -> Map<String, Value> {
        match attempt {
            None => obj(json!({
                "started": false, "nonce": "", "progress": 0, "required": required,
                "complete": false, "encoded_token": "", "encoded_root_token": "",
                "pgp_fingerprint": "", "otp": "", "otp_length": otp_len,
            })),
            Some(g) => obj(json!({
                "started": true, "nonce": g.nonce, "progress": g.collector.progress(),
                "required": required, "complete": g.encoded.is_some(),
                "encoded_token": g.encoded.clone().unwrap_or_default(),
                "encoded_root_token": g.encoded.clone().unwrap_or_default(),
                "pgp_fingerprint": g.pgp.as_ref().map(PgpKey::fingerprint).unwrap_or_default(),
                "otp": "", "otp_length": otp_len,
            })),
        }
    }

    /// Adds a share under `nonce`: the combined key once enough were given (for the core to
    /// check; [`GenerateRoot::reject`] if it does not unseal), `None` before.
    pub fn add_share(&mut self, key: &str, nonce: &str) -> Result<Option<Key>, CeremonyError> {
        check_nonce("root generation", &self.nonce, nonce)?;
        if self.encoded.is_some() {
            return Err(CeremonyError::GenerateRootCompleted);
        }
        Ok(self.collector.add(key)?)
    }

    /// The combined key does not unseal this server: progress starts over.
    pub fn reject(&mut self) -> CeremonyError {
        self.collector.reset();
        CeremonyError::GenerateRootKeysInvalid
    }

    /// Hands out the new root token: XORed with the OTP (base64 without padding), or
    /// encrypted to the PGP key.
    pub fn finish(&mut self, token: &str) -> Result<(), CeremonyError> {
        self.encoded = Some(match &self.pgp {
            Some(key) => key.encrypt_base64(token.as_bytes()).map_err(|e| CeremonyError::Encrypt(e.to_string()))?,
            None => {
                let xored: Vec<u8> = token.bytes().zip(self.otp.bytes()).map(|(a, b)| a ^ b).collect();
                B64_NO_PAD.encode(xored)
            }
        });
        Ok(())
    }
}

// ----- rekey -----

/// The PGP-encrypted new shares of a rekey with `backup`, as stored (inside the barrier) and
/// shown by `sys/rekey/backup`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backup {
    pub nonce: String,
    /// Fingerprint → the encrypted shares (hex) for that key, in share order.
    pub keys: BTreeMap<String, Vec<String>>,
}

impl Backup {
    /// The stored form.
    pub fn to_json(&self) -> Value {
        json!({ "nonce": self.nonce, "keys": self.keys })
    }

    /// Reads the stored form; `None` when it is not one.
    pub fn from_json(v: &Value) -> Option<Backup> {
        let nonce = v.get("nonce")?.as_str()?.to_string();
        let keys = serde_json::from_value(v.get("keys")?.clone()).ok()?;
        Some(Backup { nonce, keys })
    }
}

/// A rekey in progress: the operators give the current shares; once they combine into the key
/// (which the core checks), new shares are made for the new configuration. With verification
/// required the new key takes effect only once a threshold of the new shares is given back.
pub struct Rekey {
    nonce: String,
    config: SealConfig,
    require_verification: bool,
    /// With `pgp_keys`: the new shares are encrypted to these keys, one per share.
    pgp: Option<Vec<PgpKey>>,
    /// Store the encrypted new shares (`sys/rekey/backup`).
    backup: bool,
    collector: ShareCollector,
    /// After the current keys were given, with verification required: the pending new key.
    pending: Option<PendingRekey>,
}

struct PendingRekey {
    kek: Key,
    verification_nonce: String,
    collector: ShareCollector,
}

/// What the current shares of a rekey produced.
pub struct NewKeys {
    /// The answer: the new shares (encoded), the nonce, and the verification nonce when
    /// verification is required.
    pub answer: Map<String, Value>,
    /// To store before the new key takes effect, when the rekey asked for a backup.
    pub backup: Option<Backup>,
    /// The new key and configuration to install now; `None` while verification is pending.
    pub install: Option<(Key, SealConfig)>,
}

/// One step of a rekey's verification.
pub enum Verified {
    /// More new shares are needed: the progress answer.
    Progress(Map<String, Value>),
    /// The new shares match: install the key and configuration, then answer.
    Complete { kek: Key, config: SealConfig, answer: Map<String, Value> },
}

impl Rekey {
    /// Starts a rekey to `secret_shares` shares with `secret_threshold`, needing `required`
    /// current shares.
    pub fn start(
        required: u32,
        secret_shares: i64,
        secret_threshold: i64,
        pgp: Option<Vec<PgpKey>>,
        backup: bool,
        require_verification: bool,
    ) -> Result<Rekey, CeremonyError> {
        if backup && pgp.is_none() {
            return Err(CeremonyError::BackupNeedsPgpKeys);
        }
        let config = SealConfig::shamir(secret_shares.clamp(0, 1000) as u32, secret_threshold.clamp(0, 1000) as u32)
            .map_err(CeremonyError::Seal)?;
        check_pgp_count("pgp_keys", pgp.as_ref(), secret_shares)?;
        Ok(Rekey {
            nonce: nonce(),
            config,
            require_verification,
            pgp,
            backup,
            collector: ShareCollector::new(required),
            pending: None,
        })
    }

    /// The status answer of `rekey/init` (no rekey: `None`).
    pub fn status(rekey: Option<&Rekey>, required: u32) -> Map<String, Value> {
        match rekey {
            None => obj(json!({
                "nonce": "", "started": false, "t": 0, "n": 0, "progress": 0,
                "required": required, "pgp_fingerprints": null, "backup": false,
                "verification_required": false,
            })),
            Some(r) => obj(json!({
                "nonce": r.nonce, "started": true, "t": r.config.secret_threshold,
                "n": r.config.secret_shares, "progress": r.collector.progress(),
                "required": required,
                "pgp_fingerprints": r.pgp.as_ref().map(|k| k.iter().map(PgpKey::fingerprint).collect::<Vec<_>>()),
                "backup": r.backup,
                "verification_required": r.require_verification,
                "verification_nonce": r.pending.as_ref().map(|p| p.verification_nonce.clone()).unwrap_or_default(),
            })),
        }
    }

    /// Adds a current share under `nonce`: the combined key once enough were given (for the
    /// core to check; [`Rekey::reject`] if it does not unseal), `None` before.
    pub fn add_share(&mut self, key: &str, nonce: &str) -> Result<Option<Key>, CeremonyError> {
        check_nonce("rekey", &self.nonce, nonce)?;
        if self.pending.is_some() {
            return Err(CeremonyError::AwaitingVerification);
        }
        Ok(self.collector.add(key)?)
    }

    /// The combined current key does not unseal this server: progress starts over.
    pub fn reject(&mut self) -> CeremonyError {
        self.collector.reset();
        CeremonyError::RekeyKeysInvalid
    }

    /// Once the current key is checked: makes the new key and its shares.
    pub fn new_keys(&mut self) -> Result<NewKeys, CeremonyError> {
        let (new_kek, shares) = ShamirSeal::new_key_shares(&self.config).map_err(CeremonyError::Seal)?;
        let enc = encode_shares(&shares, self.pgp.as_deref())?;
        let backup = self.backup.then(|| {
            let mut keys = BTreeMap::<String, Vec<String>>::new();
            for (fp, msg) in enc.fingerprints.iter().flatten().zip(&enc.hex) {
                keys.entry(fp.clone()).or_default().push(msg.clone());
            }
            Backup { nonce: self.nonce.clone(), keys }
        });
        let mut answer = obj(json!({
            "nonce": self.nonce, "complete": true, "keys": enc.hex, "keys_base64": enc.b64,
            "pgp_fingerprints": enc.fingerprints, "backup": self.backup,
            "verification_required": self.require_verification,
        }));
        let install = if self.require_verification {
            let vn = nonce();
            answer.insert("verification_nonce".into(), vn.clone().into());
            self.pending = Some(PendingRekey {
                kek: new_kek,
                verification_nonce: vn,
                collector: ShareCollector::new(self.config.secret_threshold),
            });
            None
        } else {
            Some((new_kek, self.config.clone()))
        };
        Ok(NewKeys { answer, backup, install })
    }

    /// The status answer of `rekey/verify`.
    pub fn verification_status(&self) -> Map<String, Value> {
        let (nonce, started, progress) = match &self.pending {
            None => (String::new(), false, 0),
            Some(p) => (p.verification_nonce.clone(), true, p.collector.progress()),
        };
        obj(json!({
            "nonce": nonce, "started": started, "t": self.config.secret_threshold,
            "n": self.config.secret_shares, "progress": progress,
        }))
    }

    /// Starts the verification over, under a new nonce.
    pub fn restart_verification(&mut self) {
        if let Some(p) = self.pending.as_mut() {
            p.verification_nonce = nonce();
            p.collector.reset();
        }
    }

    /// Adds one of the new shares under the verification nonce.
    pub fn verify_share(&mut self, key: &str, nonce: &str) -> Result<Verified, CeremonyError> {
        let Some(p) = self.pending.as_mut() else {
            return Err(CeremonyError::NoVerification);
        };
        check_nonce("verify", &p.verification_nonce, nonce)?;
        let got = match p.collector.add(key).map_err(CeremonyError::Seal)? {
            Some(k) => k,
            None => return Ok(Verified::Progress(self.verification_status())),
        };
        if !coffer_crypto::ct_eq(got.as_bytes(), p.kek.as_bytes()) {
            p.collector.reset();
            return Err(CeremonyError::VerificationMismatch);
        }
        let answer = obj(json!({ "nonce": p.verification_nonce, "complete": true }));
        Ok(Verified::Complete { kek: got, config: self.config.clone(), answer })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_root_generation_hands_out_the_token_xored_with_the_otp() {
        let (mut g, otp) = GenerateRoot::start(1, "", None, 28).unwrap();
        let otp = otp.expect("a generated OTP is shown");
        assert_eq!(otp.len(), 28);
        let nonce = GenerateRoot::status(Some(&g), 1, 28)["nonce"].as_str().unwrap().to_string();
        assert!(matches!(g.add_share("00", "wrong"), Err(CeremonyError::WrongNonce { .. })));
        g.finish("s.abcdefghijklmnopqrstuvwxyz").unwrap();
        let status = GenerateRoot::status(Some(&g), 1, 28);
        let encoded = B64_NO_PAD.decode(status["encoded_token"].as_str().unwrap()).unwrap();
        let token: Vec<u8> = encoded.iter().zip(otp.bytes()).map(|(a, b)| a ^ b).collect();
        assert_eq!(token, b"s.abcdefghijklmnopqrstuvwxyz");
        assert!(matches!(g.add_share("00", &nonce), Err(CeremonyError::GenerateRootCompleted)));
        assert!(matches!(GenerateRoot::start(1, "short", None, 28), Err(CeremonyError::OtpLength)));
    }

    #[test]
    fn a_rekey_with_verification_installs_the_new_key_only_once_its_shares_come_back() {
        let old = SealConfig::shamir(1, 1).unwrap();
        let (old_kek, old_shares) = ShamirSeal::new_key_shares(&old).unwrap();
        let mut r = Rekey::start(1, 3, 2, None, false, true).unwrap();
        let nonce = Rekey::status(Some(&r), 1)["nonce"].as_str().unwrap().to_string();
        let combined = r.add_share(&hex::encode(&*old_shares[0]), &nonce).unwrap().expect("threshold 1");
        assert_eq!(combined.as_bytes(), old_kek.as_bytes());
        let keys = r.new_keys().unwrap();
        assert!(keys.install.is_none(), "verification pending");
        let shares: Vec<String> =
            keys.answer["keys"].as_array().unwrap().iter().map(|k| k.as_str().unwrap().to_string()).collect();
        let vn = keys.answer["verification_nonce"].as_str().unwrap().to_string();
        assert!(matches!(r.add_share(&shares[0], &nonce), Err(CeremonyError::AwaitingVerification)));
        assert!(matches!(r.verify_share(&shares[0], &vn), Ok(Verified::Progress(_))));
        match r.verify_share(&shares[1], &vn) {
            Ok(Verified::Complete { config, .. }) => {
                assert_eq!((config.secret_shares, config.secret_threshold), (3, 2))
            }
            _ => panic!("two of the new shares complete the verification"),
        }
        assert!(matches!(Rekey::start(1, 3, 2, None, true, false), Err(CeremonyError::BackupNeedsPgpKeys)));
    }

    #[test]
    fn error_messages_are_the_ones_clients_see() {
        assert_eq!(
            CeremonyError::WrongNonce { operation: "rekey", nonce: "n1".into() }.to_string(),
            "incorrect nonce supplied; nonce for this rekey operation is \"n1\""
        );
        assert_eq!(
            CeremonyError::KeybaseName { name: "pgp_keys".into(), list: true }.to_string(),
            "pgp_keys: keybase: names are not supported; give base64 of each binary public key (gpg --export KEY | \
             base64)"
        );
        assert_eq!(
            check_pgp_count("pgp_keys", Some(&vec![]), 2).unwrap_err().to_string(),
            "invalid seal configuration: count mismatch between number of provided PGP keys and number of shares \
             (pgp_keys has 0 keys for 2 shares)"
        );
        assert!(!CeremonyError::Encrypt("x".into()).is_client_error());
    }
}

//! The PKCS#11 seal: the key-encryption key is wrapped by an AES key that never leaves the HSM.
//!
//! Configured with Vault's `seal "pkcs11"` options and `VAULT_HSM_*` / `BAO_HSM_*` variables.
//! Everything goes through the `cryptoki` crate, which owns the FFI, so this crate needs no
//! `unsafe` of its own. The PIN lives in zeroizing buffers (and in cryptoki's `SecretString`
//! for the login call) and is never printed.
//!
//! A wrapped blob is `[1][mechanism: u8][iv: 12][ciphertext ‖ GCM tag]`, followed, when an HMAC
//! key is configured, by a 32-byte HMAC-SHA-256 computed by the HSM over everything before it.
//! The IV comes from the HSM's random generator.
#![forbid(unsafe_code)]

use async_trait::async_trait;
use coffer_seal::{Seal, SealError};
use cryptoki::context::{CInitializeArgs, Pkcs11};
use cryptoki::error::{Error as PkError, RvError};
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use zeroize::Zeroizing;

/// `CKM_AES_GCM`, the default (and for now only) wrapping mechanism.
pub const CKM_AES_GCM: u64 = 0x1087;
const BLOB_VERSION: u8 = 1;
const MECH_AES_GCM: u8 = 1;
const IV_LEN: usize = 12;
const TAG_BITS: u64 = 128;
const HMAC_LEN: usize = 32;
/// Additional authenticated data: binds a blob to its purpose.
const AAD: &[u8] = b"coffer-seal-pkcs11/kek";

/// The `seal "pkcs11"` settings after environment overrides.
pub struct Pkcs11Config {
    pub lib: String,
    pub slot: Option<u64>,
    pub token_label: Option<String>,
    pin: Zeroizing<String>,
    pub key_label: String,
    pub hmac_key_label: Option<String>,
    pub mechanism: u64,
    pub generate_key: bool,
}

impl std::fmt::Debug for Pkcs11Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11Config")
            .field("lib", &self.lib)
            .field("slot", &self.slot)
            .field("token_label", &self.token_label)
            .field("pin", &"<redacted>")
            .field("key_label", &self.key_label)
            .field("hmac_key_label", &self.hmac_key_label)
            .field("mechanism", &format_args!("{:#x}", self.mechanism))
            .field("generate_key", &self.generate_key)
            .finish()
    }
}

fn parse_bool(name: &str, v: &str) -> Result<bool, SealError> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "t" | "yes" => Ok(true),
        "false" | "0" | "f" | "no" | "" => Ok(false),
        _ => Err(SealError::Config(format!("seal \"pkcs11\": {name} = {v:?} is not a boolean"))),
    }
}

fn parse_number(name: &str, v: &str) -> Result<u64, SealError> {
    let t = v.trim();
    let r = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16),
        None => t.parse::<u64>(),
    };
    r.map_err(|e| SealError::config_because(format!("seal \"pkcs11\": {name} = {v:?} is not a number"), e))
}

impl Pkcs11Config {
    /// Reads the stanza's options; `env` looks up variables (`BAO_HSM_X` wins over
    /// `VAULT_HSM_X`, and either wins over the file, as in Vault).
    pub fn from_options(
        options: &BTreeMap<String, String>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, SealError> {
        let get = |opt: &str, var: &str| -> Option<String> {
            env(&format!("BAO_HSM_{var}"))
                .or_else(|| env(&format!("VAULT_HSM_{var}")))
                .filter(|v| !v.is_empty())
                .or_else(|| options.get(opt).cloned().filter(|v| !v.is_empty()))
        };
        const KNOWN: &[&str] = &[
            "lib",
            "slot",
            "token_label",
            "pin",
            "key_label",
            "default_key_label",
            "hmac_key_label",
            "hmac_default_key_label",
            "mechanism",
            "hmac_mechanism",
            "generate_key",
            "disabled",
            "force_rw_session",
        ];
        if let Some(k) = options.keys().find(|k| !KNOWN.contains(&k.as_str())) {
            return Err(SealError::Config(format!(
                "seal \"pkcs11\": option {k:?} is not supported (supported: {})",
                KNOWN.join(", ")
            )));
        }
        let lib = get("lib", "LIB")
            .ok_or_else(|| SealError::Config("seal \"pkcs11\": lib (VAULT_HSM_LIB) is required".into()))?;
        let pin = Zeroizing::new(
            get("pin", "PIN")
                .ok_or_else(|| SealError::Config("seal \"pkcs11\": pin (VAULT_HSM_PIN) is required".into()))?,
        );
        let slot = get("slot", "SLOT").map(|s| parse_number("slot", &s)).transpose()?;
        let token_label = get("token_label", "TOKEN_LABEL");
        if slot.is_none() && token_label.is_none() {
            return Err(SealError::Config(
                "seal \"pkcs11\": slot (VAULT_HSM_SLOT) or token_label (VAULT_HSM_TOKEN_LABEL) is required".into(),
            ));
        }
        let key_label = get("key_label", "KEY_LABEL")
            .or_else(|| get("default_key_label", "DEFAULT_KEY_LABEL"))
            .ok_or_else(|| SealError::Config("seal \"pkcs11\": key_label (VAULT_HSM_KEY_LABEL) is required".into()))?;
        let hmac_key_label =
            get("hmac_key_label", "HMAC_KEY_LABEL").or_else(|| get("hmac_default_key_label", "HMAC_DEFAULT_KEY_LABEL"));
        let mechanism = get("mechanism", "MECHANISM").map(|m| parse_number("mechanism", &m)).transpose()?;
        let mechanism = mechanism.unwrap_or(CKM_AES_GCM);
        if mechanism != CKM_AES_GCM {
            return Err(SealError::Config(format!(
                "seal \"pkcs11\": mechanism {mechanism:#x} is not supported (supported: 0x1087, CKM_AES_GCM)"
            )));
        }
        if let Some(m) = get("hmac_mechanism", "HMAC_MECHANISM") {
            // CKM_SHA256_HMAC
            if parse_number("hmac_mechanism", &m)? != 0x0251 {
                return Err(SealError::Config(
                    "seal \"pkcs11\": hmac_mechanism must be 0x0251 (CKM_SHA256_HMAC)".into(),
                ));
            }
        }
        let generate_key = get("generate_key", "GENERATE_KEY").map(|v| parse_bool("generate_key", &v)).transpose()?;
        Ok(Pkcs11Config {
            lib,
            slot,
            token_label,
            pin,
            key_label,
            hmac_key_label,
            mechanism,
            generate_key: generate_key.unwrap_or(false),
        })
    }
}

/// An open, logged-in session with the keys found.
struct Conn {
    session: Session,
    key: ObjectHandle,
    hmac: Option<ObjectHandle>,
    // Declared last: the library is finalized after the session is closed.
    _ctx: Pkcs11,
}

struct Inner {
    cfg: Pkcs11Config,
    conn: Mutex<Option<Conn>>,
}

/// The PKCS#11 auto-unseal seal.
pub struct Pkcs11Seal {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Pkcs11Seal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11Seal").field("config", &self.inner.cfg).finish()
    }
}

fn is_pin_error(rv: RvError) -> bool {
    matches!(
        rv,
        RvError::PinIncorrect | RvError::PinInvalid | RvError::PinLenRange | RvError::PinExpired | RvError::PinLocked
    )
}

fn is_transient(rv: RvError) -> bool {
    matches!(
        rv,
        RvError::DeviceError
            | RvError::DeviceMemory
            | RvError::DeviceRemoved
            | RvError::TokenNotPresent
            | RvError::TokenNotRecognized
            | RvError::SessionClosed
            | RvError::SessionHandleInvalid
            | RvError::SessionCount
            | RvError::UserNotLoggedIn
            | RvError::CryptokiNotInitialized
    )
}

/// Maps a cryptoki error; `what` says which step failed. Never includes the PIN.
fn map_err(what: &str, e: PkError) -> SealError {
    match e {
        PkError::Pkcs11(rv, _) if is_pin_error(rv) => {
            SealError::Config(format!("HSM login failed: the PIN is not accepted by the token ({rv:?})"))
        }
        PkError::Pkcs11(rv, _) if is_transient(rv) => {
            SealError::Unavailable(format!("HSM unavailable ({what}): {rv:?}"))
        }
        PkError::Pkcs11(rv @ (RvError::EncryptedDataInvalid | RvError::EncryptedDataLenRange), _) => {
            SealError::Failed(format!("HSM refused to decrypt ({what}): {rv:?}: the blob was not wrapped by this key"))
        }
        PkError::LibraryLoading(e) => SealError::Config(format!("cannot load the PKCS#11 library: {e}")),
        other => SealError::Failed(format!("HSM error ({what}): {other}")),
    }
}

impl Inner {
    fn find_key(session: &Session, label: &str) -> Result<Option<ObjectHandle>, SealError> {
        let found = session
            .find_objects(&[Attribute::Class(ObjectClass::SECRET_KEY), Attribute::Label(label.as_bytes().to_vec())])
            .map_err(|e| map_err("finding the key", e))?;
        match found.len() {
            0 => Ok(None),
            1 => Ok(found.first().copied()),
            n => Err(SealError::Config(format!(
                "{n} keys on the token carry the label {label:?}; labels must be unique"
            ))),
        }
    }

    fn key_or_generate(&self, session: &Session, label: &str, kind: KeyType) -> Result<ObjectHandle, SealError> {
        if let Some(k) = Self::find_key(session, label)? {
            return Ok(k);
        }
        if !self.cfg.generate_key {
            return Err(SealError::Config(format!(
                "key {label:?} not found on the HSM token and generate_key is false: \
                 create it, or set generate_key = \"true\" to let the server generate it"
            )));
        }
        let (mech, usage) = if kind == KeyType::AES {
            (Mechanism::AesKeyGen, vec![Attribute::Encrypt(true), Attribute::Decrypt(true)])
        } else {
            (Mechanism::GenericSecretKeyGen, vec![Attribute::Sign(true), Attribute::Verify(true)])
        };
        let mut template = vec![
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(kind),
            Attribute::ValueLen(32.into()),
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Label(label.as_bytes().to_vec()),
        ];
        template.extend(usage);
        let k = session.generate_key(&mech, &template).map_err(|e| map_err("generating the key", e))?;
        tracing::info!(key_label = %label, "generated a new key on the HSM");
        Ok(k)
    }

    fn connect(&self) -> Result<Conn, SealError> {
        let ctx = Pkcs11::new(&self.cfg.lib).map_err(|e| match e {
            PkError::LibraryLoading(e) => {
                SealError::Config(format!("cannot load the PKCS#11 library {:?}: {e}", self.cfg.lib))
            }
            other => map_err("loading the library", other),
        })?;
        match ctx.initialize(CInitializeArgs::OsThreads) {
            Ok(()) | Err(PkError::AlreadyInitialized) => {}
            Err(PkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
            Err(e) => return Err(map_err("initialising the library", e)),
        }
        let slots = ctx.get_slots_with_token().map_err(|e| map_err("listing slots", e))?;
        let slot = match (&self.cfg.token_label, self.cfg.slot) {
            (Some(label), _) => slots
                .into_iter()
                .find(|s| ctx.get_token_info(*s).map(|t| t.label().trim_end() == label.trim_end()).unwrap_or(false)),
            (None, Some(id)) => slots.into_iter().find(|s| s.id() == id),
            (None, None) => None,
        };
        let Some(slot) = slot else {
            return Err(SealError::Unavailable(match &self.cfg.token_label {
                Some(l) => format!("HSM unavailable: no token labelled {l:?} is present"),
                None => format!("HSM unavailable: no token in slot {}", self.cfg.slot.unwrap_or_default()),
            }));
        };
        let session = ctx.open_rw_session(slot).map_err(|e| map_err("opening a session", e))?;
        let pin = AuthPin::new(self.cfg.pin.as_str().to_owned());
        match session.login(UserType::User, Some(&pin)) {
            Ok(()) | Err(PkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
            Err(e) => return Err(map_err("logging in", e)),
        }
        let key = self.key_or_generate(&session, &self.cfg.key_label, KeyType::AES)?;
        let hmac = match &self.cfg.hmac_key_label {
            Some(l) => Some(self.key_or_generate(&session, l, KeyType::GENERIC_SECRET)?),
            None => None,
        };
        Ok(Conn { session, key, hmac, _ctx: ctx })
    }

    /// Runs `op` on the open session, connecting first when needed. A transient failure drops
    /// the connection so the next call reconnects.
    fn with_conn<T>(&self, op: impl FnOnce(&Conn) -> Result<T, SealError>) -> Result<T, SealError> {
        // A panic while the lock was held may have left the session half-used: drop it and
        // reconnect, rather than refuse every later call.
        let mut guard = self.conn.lock().unwrap_or_else(|poisoned| {
            let mut g = poisoned.into_inner();
            *g = None;
            g
        });
        if guard.is_none() {
            *guard = Some(self.connect()?);
        }
        let conn = guard.as_ref().ok_or_else(|| SealError::Failed("no HSM connection".into()))?;
        let r = op(conn);
        if matches!(&r, Err(e) if e.is_transient()) {
            *guard = None;
        }
        r
    }

    fn wrap(&self, plaintext: &[u8]) -> Result<Vec<u8>, SealError> {
        self.with_conn(|c| {
            let mut iv = c.session.generate_random_vec(IV_LEN as u32).map_err(|e| map_err("generating an IV", e))?;
            let mut out = vec![BLOB_VERSION, MECH_AES_GCM];
            out.extend_from_slice(&iv);
            let params = GcmParams::new(&mut iv, AAD, TAG_BITS.into()).map_err(|e| map_err("GCM parameters", e))?;
            let ct = c
                .session
                .encrypt(&Mechanism::AesGcm(params), c.key, plaintext)
                .map_err(|e| map_err("encrypting", e))?;
            out.extend_from_slice(&ct);
            if let Some(h) = c.hmac {
                let mac = c.session.sign(&Mechanism::Sha256Hmac, h, &out).map_err(|e| map_err("HMAC", e))?;
                out.extend_from_slice(&mac);
            }
            Ok(out)
        })
    }

    fn unwrap(&self, blob: &[u8]) -> Result<Zeroizing<Vec<u8>>, SealError> {
        self.with_conn(|c| {
            let mut body = blob;
            if let Some(h) = c.hmac {
                if blob.len() < HMAC_LEN {
                    return Err(SealError::Failed("wrapped key is truncated".into()));
                }
                let (b, mac) = blob.split_at(blob.len() - HMAC_LEN);
                c.session.verify(&Mechanism::Sha256Hmac, h, b, mac).map_err(|e| {
                    SealError::failed_because("the wrapped key's HMAC does not verify with the configured HMAC key", e)
                })?;
                body = b;
            }
            if body.len() < 2 + IV_LEN || body[0] != BLOB_VERSION || body[1] != MECH_AES_GCM {
                return Err(SealError::Failed("the wrapped key is not a PKCS#11 seal blob".into()));
            }
            let mut iv = body[2..2 + IV_LEN].to_vec();
            let params = GcmParams::new(&mut iv, AAD, TAG_BITS.into()).map_err(|e| map_err("GCM parameters", e))?;
            let pt =
                c.session.decrypt(&Mechanism::AesGcm(params), c.key, &body[2 + IV_LEN..]).map_err(
                    |e| match map_err("decrypting", e) {
                        SealError::Failed(_) => SealError::Failed(format!(
                            "the HSM key {:?} does not decrypt the stored key: wrong key or tampered blob",
                            self.cfg.key_label
                        )),
                        other => other,
                    },
                )?;
            Ok(Zeroizing::new(pt))
        })
    }
}

impl Pkcs11Seal {
    /// Builds the seal without touching the HSM (the first wrap/unwrap, or [`Pkcs11Seal::check`],
    /// connects), so a server whose HSM is away still starts, sealed.
    pub fn new(cfg: Pkcs11Config) -> Self {
        Pkcs11Seal { inner: Arc::new(Inner { cfg, conn: Mutex::new(None) }) }
    }

    /// Connects, logs in and finds (or generates) the keys now.
    pub async fn check(&self) -> Result<(), SealError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || inner.with_conn(|_| Ok(())))
            .await
            .map_err(|e| SealError::Failed(format!("HSM task failed: {e}")))?
    }
}

#[async_trait]
impl Seal for Pkcs11Seal {
    fn seal_type(&self) -> &'static str {
        "pkcs11"
    }
    fn auto_unseal(&self) -> bool {
        true
    }
    async fn wrap(&self, plaintext: &[u8]) -> Result<Vec<u8>, SealError> {
        let inner = self.inner.clone();
        let pt = Zeroizing::new(plaintext.to_vec());
        tokio::task::spawn_blocking(move || inner.wrap(&pt))
            .await
            .map_err(|e| SealError::Failed(format!("HSM task failed: {e}")))?
    }
    async fn unwrap(&self, blob: &[u8]) -> Result<Zeroizing<Vec<u8>>, SealError> {
        let inner = self.inner.clone();
        let blob = blob.to_vec();
        tokio::task::spawn_blocking(move || inner.unwrap(&blob))
            .await
            .map_err(|e| SealError::Failed(format!("HSM task failed: {e}")))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn options_env_overrides_and_redacted_pin() {
        let o =
            opts(&[("lib", "/x.so"), ("slot", "0x2"), ("pin", "1234"), ("key_label", "k"), ("generate_key", "true")]);
        let c = Pkcs11Config::from_options(&o, |_| None).unwrap();
        assert_eq!(c.slot, Some(2));
        assert!(c.generate_key);
        assert_eq!(c.mechanism, CKM_AES_GCM);
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("1234") && dbg.contains("redacted"), "{dbg}");
        let env = |k: &str| match k {
            "BAO_HSM_KEY_LABEL" => Some("from-bao".to_string()),
            "VAULT_HSM_KEY_LABEL" => Some("from-vault".to_string()),
            "VAULT_HSM_PIN" => Some("9999".to_string()),
            _ => None,
        };
        let c = Pkcs11Config::from_options(&o, env).unwrap();
        assert_eq!(c.key_label, "from-bao");
        assert_eq!(c.pin.as_str(), "9999");
    }

    #[test]
    fn missing_and_unknown_options_are_named() {
        let e = Pkcs11Config::from_options(&opts(&[("lib", "/x.so"), ("slot", "0")]), |_| None).unwrap_err();
        assert!(e.to_string().contains("pin"), "{e}");
        let e = Pkcs11Config::from_options(
            &opts(&[("lib", "/x.so"), ("slot", "0"), ("pin", "1"), ("key_label", "k"), ("colour", "red")]),
            |_| None,
        )
        .unwrap_err();
        assert!(e.to_string().contains("colour"), "{e}");
        let e = Pkcs11Config::from_options(
            &opts(&[("lib", "/x.so"), ("slot", "0"), ("pin", "1"), ("key_label", "k"), ("mechanism", "0x0009")]),
            |_| None,
        )
        .unwrap_err();
        assert!(e.to_string().contains("0x9"), "{e}");
    }
}

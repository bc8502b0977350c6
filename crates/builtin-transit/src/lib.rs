#![forbid(unsafe_code)]
//! The transit secrets engine: encryption as a service, signing, HMAC, hashing and random
//! bytes with named, versioned keys that never leave the server (except through `export` and
//! `backup` when a key allows it).
//!
//! Wire behaviour follows OpenBao's transit engine: paths, field names, the `vault:v<N>:`
//! prefix, the AEAD ciphertext layout (nonce first), HKDF key derivation, convergent nonces and
//! the backup document, so data and keys move between the two servers.

mod backup;
mod der;
mod keys;
mod ops;

pub use keys::KeyType;

use async_trait::async_trait;
use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD as B64URL};
use base64::Engine;
use coffer_sdk::cache::GenCache;
use coffer_sdk::field::FieldType;
use coffer_sdk::framework::{FieldData, FieldSpec, Handler, PathFlags, PathSpec, Paths};
use coffer_sdk::{LogicalError, Operation, Request, Response, Result, StorageView};
use keys::{KeyEntry, Policy, Secret};
use ops::{HashAlg, Marshaling, RsaScheme, SaltLength, SignOptions};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use zeroize::Zeroizing;

/// Key settings (and, separately, key versions) kept decoded at most.
const KEY_CACHE_CAPACITY: usize = 4096;
/// Where `cache-config` keeps the cache size.
const CACHE_CONFIG_KEY: &str = "config/cache";

/// A key name as OpenBao's generic name pattern allows it.
const NAME: &str = r"\w(?:[\w.@-]*\w)?";

/// The paths of the transit engine, one variant per row of [`build_specs`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    ListKeys,
    Key,
    KeyConfig,
    Rotate,
    Trim,
    Export,
    Backup,
    Restore,
    Encrypt,
    Decrypt,
    Rewrap,
    Datakey,
    Hmac,
    Sign,
    Verify,
    Hash,
    Random,
    ConfigKeys,
    CacheConfig,
}

/// The transit backend. One instance serves one mount, wrapped in
/// [`coffer_sdk::framework::Backend`].
pub struct Transit {
    paths: Paths<Route>,
    /// Serialises changes to keys (create, rotate, config, trim, delete, backup, restore) so
    /// concurrent writers cannot lose a version; reads and crypto operations do not take it.
    write_lock: tokio::sync::Mutex<()>,
    /// Decoded key settings and versions kept between requests, so an encryption does not read,
    /// decrypt and parse its key from storage three times (the ACL's existence check, the
    /// settings, the version). Emptied after every change to any key (`invalidate`).
    policies: GenCache<Policy>,
    /// Versions by `<name>/<version>`.
    versions: GenCache<KeyEntry>,
    /// Whether the stored cache-config size has been applied to the caches (first request).
    cache_size_loaded: std::sync::atomic::AtomicBool,
}

impl Default for Transit {
    fn default() -> Self {
        Self::new()
    }
}

fn f(name: &'static str, ty: FieldType, description: &'static str) -> FieldSpec {
    FieldSpec::new(name, ty, description)
}

fn leak(s: String) -> &'static str {
    // Patterns are built once per process (see `specs`), so this is a bounded, one-time cost.
    Box::leak(s.into_boxed_str())
}

fn specs() -> &'static [(Route, PathSpec)] {
    static SPECS: OnceLock<Vec<(Route, PathSpec)>> = OnceLock::new();
    SPECS.get_or_init(build_specs)
}

fn build_specs() -> Vec<(Route, PathSpec)> {
    use FieldType::*;
    let name = || f("name", String, "Name of the key");
    let ctx = || f("context", String, "Base64 context for key derivation (derived keys)");
    let nonce = || f("nonce", String, "Nonce (legacy convergent encryption only; refused otherwise)");
    let key_version = || f("key_version", Int, "Key version to use; 0 or unset for the latest");
    let batch = || f("batch_input", Raw, "A list of items to process in one request");
    let aad = || f("associated_data", String, "Base64 associated data for AEAD key types");
    let partial = || f("partial_failure_response_code", Int, "Accepted for compatibility; batch failures answer 200");
    let upd = |d: &'static str| vec![(Operation::Update, d)];
    let spec =
        |pattern: std::string::String, fields: Vec<FieldSpec>, operations: Vec<(Operation, &'static str)>, synopsis| {
            PathSpec {
                flags: PathFlags::NORMAL,
                pattern: leak(pattern),
                fields,
                operations,
                passthrough: false,
                synopsis,
                description: synopsis,
            }
        };
    let sign_fields = |verify: bool| {
        let mut v = vec![
            name(),
            f("urlalgorithm", String, "Hash algorithm (URL form)"),
            f("input", String, "Base64 input"),
            ctx(),
            f("hash_algorithm", String, "sha1, sha2-224/256/384/512, sha3-224/256/384/512 or none"),
            f("algorithm", String, "Deprecated spelling of hash_algorithm"),
            f("prehashed", Bool, "The input is already a digest"),
            f("signature_algorithm", String, "RSA: pss (default) or pkcs1v15"),
            f("marshaling_algorithm", String, "asn1 (default) or jws").default(json!("asn1")),
            f("salt_length", String, "RSA-PSS salt length: auto, hash or a number of bytes").default(json!("auto")),
            batch(),
        ];
        if verify {
            v.push(f("signature", String, "The signature, vault:v<N>:…"));
            v.push(f("hmac", String, "The HMAC, vault:v<N>:…"));
        } else {
            v.push(key_version());
        }
        v
    };
    vec![
        (Route::ListKeys, spec("keys/?".into(), vec![], vec![(Operation::List, "List the keys")], "List named keys")),
        (
            Route::Key,
            spec(
                format!("keys/(?P<name>{NAME})"),
                vec![
                    name(),
                    f("type", String, "Key type").default(json!("aes256-gcm96")),
                    f("derived", Bool, "Derive a key per context"),
                    f("convergent_encryption", Bool, "Deterministic encryption (needs derived)"),
                    f("exportable", Bool, "Allow exporting the key material"),
                    f("allow_plaintext_backup", Bool, "Allow plaintext backups"),
                    ctx(),
                    f("auto_rotate_period", DurationSecond, "Rotate automatically after this long (0 = never)"),
                    f("key_size", Int, "HMAC keys: key length in bytes (32 to 512)"),
                ],
                vec![
                    (Operation::Read, "Read the key's settings and public parts"),
                    (Operation::Create, "Create the key"),
                    (Operation::Update, "Create the key"),
                    (Operation::Delete, "Delete the key (needs deletion_allowed)"),
                ],
                "Manage named encryption keys",
            ),
        ),
        (
            Route::KeyConfig,
            spec(
                format!("keys/(?P<name>{NAME})/config"),
                vec![
                    name(),
                    f("min_decryption_version", Int, "Oldest version usable to decrypt, verify and rewrap"),
                    f("min_encryption_version", Int, "Oldest version usable to encrypt, sign and HMAC"),
                    f("deletion_allowed", Bool, "Whether the key may be deleted"),
                    f("exportable", Bool, "Allow exporting (cannot be unset)"),
                    f("allow_plaintext_backup", Bool, "Allow plaintext backups (cannot be unset)"),
                    f("auto_rotate_period", DurationSecond, "Automatic rotation period"),
                ],
                upd("Configure the key"),
                "Configure a named key",
            ),
        ),
        (Route::Rotate, spec(format!("keys/(?P<name>{NAME})/rotate"), vec![name()], upd("Rotate"), "Rotate a key")),
        (
            Route::Trim,
            spec(
                format!("keys/(?P<name>{NAME})/trim"),
                vec![name(), f("min_available_version", Int, "Delete versions older than this")],
                upd("Trim old versions"),
                "Trim old key versions",
            ),
        ),
        (
            Route::Export,
            spec(
                format!("export/(?P<type>{NAME})/(?P<name>{NAME})(?:/(?P<version>{NAME}))?"),
                vec![
                    f("type", String, "encryption-key, signing-key, hmac-key or public-key"),
                    name(),
                    f("version", String, "A version, or latest"),
                    f("format", String, "'' (default), raw, der or pem"),
                ],
                vec![(Operation::Read, "Export key material")],
                "Export a key",
            ),
        ),
        (
            Route::Backup,
            spec(
                format!("backup/(?P<name>{NAME})"),
                vec![name()],
                vec![(Operation::Read, "Back up the key")],
                "Back up a key (OpenBao-compatible format)",
            ),
        ),
        (
            Route::Restore,
            spec(
                format!("restore(?:/(?P<name>{NAME}))?"),
                vec![name(), f("backup", String, "The backup"), f("force", Bool, "Overwrite an existing key")],
                upd("Restore a key"),
                "Restore a key from a backup",
            ),
        ),
        (
            Route::Encrypt,
            spec(
                format!("encrypt/(?P<name>{NAME})"),
                vec![
                    name(),
                    f("plaintext", String, "Base64 plaintext"),
                    ctx(),
                    nonce(),
                    key_version(),
                    f("type", String, "Key type when the key is created by this request")
                        .default(json!("aes256-gcm96")),
                    f("convergent_encryption", Bool, "Convergent, when the key is created by this request"),
                    aad(),
                    batch(),
                    partial(),
                ],
                vec![(Operation::Create, "Encrypt (creating the key)"), (Operation::Update, "Encrypt")],
                "Encrypt with a named key",
            ),
        ),
        (
            Route::Decrypt,
            spec(
                format!("decrypt/(?P<name>{NAME})"),
                vec![name(), f("ciphertext", String, "vault:v<N>:…"), ctx(), nonce(), aad(), batch(), partial()],
                upd("Decrypt"),
                "Decrypt with a named key",
            ),
        ),
        (
            Route::Rewrap,
            spec(
                format!("rewrap/(?P<name>{NAME})"),
                vec![name(), f("ciphertext", String, "vault:v<N>:…"), ctx(), nonce(), key_version(), batch()],
                upd("Rewrap"),
                "Re-encrypt with the latest (or given) key version",
            ),
        ),
        (
            Route::Datakey,
            spec(
                format!("datakey/(?P<plaintext>{NAME})/(?P<name>{NAME})"),
                vec![
                    f("plaintext", String, "plaintext or wrapped"),
                    name(),
                    ctx(),
                    nonce(),
                    f("bits", Int, "128, 256 or 512").default(json!(256)),
                    key_version(),
                    aad(),
                ],
                upd("Generate a data key"),
                "Generate a data key",
            ),
        ),
        (
            Route::Hmac,
            spec(
                format!("hmac/(?P<name>{NAME})(?:/(?P<urlalgorithm>{NAME}))?"),
                vec![
                    name(),
                    f("urlalgorithm", String, "Hash algorithm (URL form)"),
                    f("input", String, "Base64 input"),
                    f("algorithm", String, "Hash algorithm").default(json!("sha2-256")),
                    key_version(),
                    batch(),
                ],
                upd("Generate an HMAC"),
                "HMAC with a named key",
            ),
        ),
        (
            Route::Sign,
            spec(
                format!("sign/(?P<name>{NAME})(?:/(?P<urlalgorithm>{NAME}))?"),
                sign_fields(false),
                upd("Sign"),
                "Sign with a named key",
            ),
        ),
        (
            Route::Verify,
            spec(
                format!("verify/(?P<name>{NAME})(?:/(?P<urlalgorithm>{NAME}))?"),
                sign_fields(true),
                upd("Verify"),
                "Verify a signature or HMAC",
            ),
        ),
        (
            Route::Hash,
            spec(
                format!("hash(?:/(?P<urlalgorithm>{NAME}))?"),
                vec![
                    f("urlalgorithm", String, "Hash algorithm (URL form)"),
                    f("input", String, "Base64 input"),
                    f("algorithm", String, "Hash algorithm").default(json!("sha2-256")),
                    f("format", String, "hex or base64").default(json!("hex")),
                ],
                upd("Hash"),
                "Hash data",
            ),
        ),
        (
            Route::Random,
            spec(
                "random(?:/(?P<source>[a-z]+))?(?:/(?P<urlbytes>[^/]+))?".into(),
                vec![
                    f("source", String, "platform (default), seal or all"),
                    f("urlbytes", String, "Number of bytes (URL form)"),
                    f("bytes", Int, "Number of bytes").default(json!(32)),
                    f("format", String, "base64 or hex").default(json!("base64")),
                ],
                upd("Random bytes"),
                "Generate random bytes",
            ),
        ),
        (
            Route::ConfigKeys,
            spec(
                "config/keys".into(),
                vec![f("disable_upsert", Bool, "Refuse to create keys on encrypt")],
                vec![(Operation::Read, "Read"), (Operation::Update, "Configure")],
                "Mount-wide key settings",
            ),
        ),
        (
            Route::CacheConfig,
            spec(
                "cache-config".into(),
                vec![f(
                    "size",
                    Int,
                    "Most keys the mount's key cache holds: 0 (Coffer's default bound) or at least 10",
                )],
                vec![(Operation::Read, "Read"), (Operation::Update, "Configure")],
                "The size of the mount's key cache",
            ),
        ),
    ]
}

impl Transit {
    pub fn new() -> Self {
        Transit {
            paths: Paths::new(specs().to_vec()),
            write_lock: tokio::sync::Mutex::new(()),
            policies: GenCache::new(KEY_CACHE_CAPACITY),
            versions: GenCache::new(KEY_CACHE_CAPACITY),
            cache_size_loaded: std::sync::atomic::AtomicBool::new(false),
        }
    }
}

fn bad(msg: impl Into<String>) -> LogicalError {
    LogicalError::bad_request(msg)
}

fn response(pairs: Vec<(&str, Value)>) -> Option<Response> {
    let mut m = Map::new();
    for (k, v) in pairs {
        m.insert(k.to_string(), v);
    }
    Some(Response::data(m))
}

/// The associated data of batch item `i` (base64), refused for key types that are not AEAD.
fn item_aad(p: &Policy, i: usize, aad_b64: &str) -> Result<Zeroizing<Vec<u8>>> {
    if aad_b64.is_empty() {
        return Ok(Zeroizing::new(vec![]));
    }
    if !p.key_type.is_aead() {
        return Err(bad(format!("'[{i}].associated_data' provided for non-AEAD cipher suite {}", p.key_type.as_str())));
    }
    Ok(b64_decode(aad_b64)?)
}

/// A base64 input that does not decode, in Go's wording. It keeps only the position: the
/// decoder's own error quotes the offending byte, which may belong to a secret plaintext.
#[derive(Debug, Clone, thiserror::Error)]
#[error("illegal base64 data at input byte {at}")]
struct Base64Error {
    at: usize,
}

impl From<Base64Error> for LogicalError {
    fn from(e: Base64Error) -> Self {
        bad(e.to_string()).with_source(e)
    }
}

/// Base64 decoding with Go's error wording.
fn b64_decode(s: &str) -> std::result::Result<Secret, Base64Error> {
    B64.decode(s.as_bytes()).map(Zeroizing::new).map_err(|e| {
        let at = match e {
            base64::DecodeError::InvalidByte(i, _) | base64::DecodeError::InvalidLastSymbol(i, _) => i,
            _ => s.len(),
        };
        Base64Error { at }
    })
}

fn str_field<'a>(d: &'a FieldData, name: &str) -> &'a str {
    d.str(name).unwrap_or("")
}

/// The `batch_input` items: a JSON array of objects, or a string holding one.
fn batch_items(d: &FieldData) -> Result<Option<Vec<Map<String, Value>>>> {
    let Some(raw) = d.get("batch_input") else {
        return Ok(None);
    };
    let parsed;
    let raw = match raw {
        Value::String(s) => {
            parsed = serde_json::from_str::<Value>(s).map_err(|e| bad(format!("failed to parse batch input: {e}")))?;
            &parsed
        }
        v => v,
    };
    let Value::Array(items) = raw else {
        return Err(bad("failed to parse batch input: source data must be an array or slice"));
    };
    if items.is_empty() {
        return Err(bad("missing batch input to process"));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, v)| match v {
            Value::Object(o) => Ok(o.clone()),
            _ => Err(bad(format!("failed to parse batch input: [{i}] expected a map"))),
        })
        .collect::<Result<Vec<_>>>()
        .map(Some)
}

/// A string member of a batch item (numbers and booleans become their text).
fn item_str(item: &Map<String, Value>, key: &str) -> Option<String> {
    match item.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn item_int(item: &Map<String, Value>, key: &str, i: usize) -> Result<i64> {
    match item.get(key) {
        None | Some(Value::Null) => Ok(0),
        Some(v) => coffer_sdk::field::parse_int(&format!("[{i}].{key}"), v),
    }
}

/// Applies OpenBao's key-version rules for operations that create output (encrypt, sign).
fn encryption_version(p: &Policy, requested: i64, verb: &str) -> Result<i64> {
    let v = if requested == 0 { p.latest_version } else { requested };
    if requested < 0 {
        return Err(bad(format!("requested version for {verb} is negative")));
    }
    if v > p.latest_version {
        return Err(bad(format!("requested version for {verb} is higher than the latest key version")));
    }
    if p.min_encryption_version > 0 && v < p.min_encryption_version {
        return Err(bad(format!("requested version for {verb} is less than the minimum encryption key version")));
    }
    Ok(v)
}

const TOO_OLD: &str = "ciphertext or signature version is disallowed by policy (too old)";

/// One batch item's outcome.
type ItemResult<T> = std::result::Result<T, LogicalError>;

impl Transit {
    /// A key's settings, from the cache when an earlier request decoded them.
    async fn policy(&self, s: &dyn StorageView, name: &str) -> Result<Option<Arc<Policy>>> {
        self.policies.get_or_load(name, keys::load_policy(s, name)).await
    }

    /// One version of a key, which must exist; from the cache when it can be.
    async fn version(&self, s: &dyn StorageView, p: &Policy, version: i64) -> Result<Arc<KeyEntry>> {
        let id = format!("{}/{version}", p.name);
        let e = self.versions.get_or_load(&id, keys::load_entry(s, &p.name, version)).await?;
        e.ok_or_else(keys::missing_version)
    }

    /// Forgets every cached key: called after any change to keys.
    fn invalidate(&self) {
        self.policies.clear();
        self.versions.clear();
    }

    /// A key for an operation that uses it (rotated first if its auto-rotate period is over).
    async fn load(&self, s: &dyn StorageView, name: &str) -> Result<Option<Arc<Policy>>> {
        let Some(p) = self.policy(s, name).await? else {
            return Ok(None);
        };
        self.maybe_auto_rotate(s, p).await.map(Some)
    }

    /// Rotates a key whose latest version is older than its auto-rotate period (checked lazily
    /// whenever the key is used).
    async fn maybe_auto_rotate(&self, s: &dyn StorageView, p: Arc<Policy>) -> Result<Arc<Policy>> {
        if p.auto_rotate_period <= 0 {
            return Ok(p);
        }
        let due = |e: &KeyEntry| {
            let created = keys::parse_time(&e.time).unwrap_or(e.creation_time);
            keys::now().1 >= created.saturating_add(p.auto_rotate_period)
        };
        match self.version(s, &p, p.latest_version).await {
            Ok(e) if due(&e) => {}
            _ => return Ok(p),
        }
        let _guard = self.write_lock.lock().await;
        let Some(mut fresh) = keys::load_policy(s, &p.name).await? else {
            return Ok(p);
        };
        if let Some(e) = keys::load_entry(s, &fresh.name, fresh.latest_version).await? {
            if due(&e) {
                // A change made by a request that only uses the key: `changes_keys` does not
                // cover it, so the cache forgets the key here.
                let r = self.rotate(s, &mut fresh).await;
                self.invalidate();
                r?;
            }
        }
        Ok(Arc::new(fresh))
    }

    async fn rotate(&self, s: &dyn StorageView, p: &mut Policy) -> Result<()> {
        if p.key_type.is_rsa() {
            // RSA generation takes long enough to keep it off the async workers.
            let snapshot = p.clone();
            let e = tokio::task::spawn_blocking(move || KeyEntry::generate(&snapshot))
                .await
                .map_err(|cause| LogicalError::internal("key generation failed").with_source(cause))??;
            let v = p.latest_version + 1;
            keys::save_entry(s, &p.name, v, &e).await?;
            p.latest_version = v;
            return keys::save_policy(s, p).await;
        }
        keys::rotate(s, p).await
    }

    async fn format_key(&self, s: &dyn StorageView, p: &Policy, context: &[u8]) -> Result<Map<String, Value>> {
        let t = p.key_type;
        let mut m = BTreeMap::<&str, Value>::new();
        m.insert("allow_plaintext_backup", p.allow_plaintext_backup.into());
        m.insert("auto_rotate_period", p.auto_rotate_period.into());
        if let Some(i) = &p.backup_info {
            m.insert("backup_info", json!({"time": i.time, "version": i.version}));
        }
        m.insert("deletion_allowed", p.deletion_allowed.into());
        m.insert("derived", p.derived.into());
        m.insert("exportable", p.exportable.into());
        m.insert("imported_key", p.imported.into());
        if p.key_size != 0 {
            m.insert("key_size", p.key_size.into());
        }
        if p.derived {
            m.insert("kdf", if p.kdf == 0 { "hmac-sha256-counter" } else { "hkdf_sha256" }.into());
            if p.kdf == 0 {
                m.insert("kdf_mode", "hmac-sha256-counter".into());
            }
            m.insert("convergent_encryption", p.convergent_encryption.into());
            if p.convergent_encryption {
                m.insert("convergent_encryption_version", p.convergent_version.into());
            }
        }
        if t != keys::KeyType::Hmac {
            let mut versions = Map::new();
            for v in p.min_decryption_version.max(1)..=p.latest_version {
                let Some(e) = keys::load_entry(s, &p.name, v).await? else {
                    continue;
                };
                let value = if t.is_aead() {
                    Value::from(e.creation_time)
                } else {
                    let name = match t {
                        _ if t.is_ecdsa() => keys::curve(t).map(|c| c.name).unwrap_or_default(),
                        keys::KeyType::Ed25519 => "ed25519",
                        _ => t.as_str(),
                    };
                    let public = if t == keys::KeyType::Ed25519 && p.derived {
                        if context.is_empty() {
                            String::new()
                        } else {
                            let seed = keys::derive(p, &e, context, 32)?;
                            let kp = aws_lc_rs::signature::Ed25519KeyPair::from_seed_unchecked(&seed)
                                .map_err(|cause| LogicalError::internal("key derivation failed").with_source(cause))?;
                            use aws_lc_rs::signature::KeyPair;
                            B64.encode(kp.public_key().as_ref())
                        }
                    } else {
                        e.formatted_public_key(t)?
                    };
                    json!({"certificate_chain": "", "creation_time": e.time, "name": name, "public_key": public})
                };
                versions.insert(v.to_string(), value);
            }
            m.insert("keys", Value::Object(versions));
        }
        m.insert("latest_version", p.latest_version.into());
        m.insert("min_available_version", p.min_available_version.into());
        m.insert("min_decryption_version", p.min_decryption_version.into());
        m.insert("min_encryption_version", p.min_encryption_version.into());
        m.insert("name", p.name.clone().into());
        if let Some(i) = &p.restore_info {
            m.insert("restore_info", json!({"time": i.time, "version": i.version}));
        }
        m.insert("soft_deleted", false.into());
        m.insert("supports_decryption", t.encryption_supported().into());
        m.insert("supports_derivation", t.derivation_supported().into());
        m.insert("supports_encryption", t.encryption_supported().into());
        m.insert("supports_signing", t.signing_supported().into());
        m.insert("type", t.as_str().into());
        Ok(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
    }

    async fn key_response(&self, s: &dyn StorageView, p: &Policy, warnings: Vec<String>) -> Result<Option<Response>> {
        let mut r = Response::data(self.format_key(s, p, &[]).await?);
        r.warnings = warnings;
        Ok(Some(r))
    }

    // ---- keys/<name> ----

    async fn key_read(&self, s: &dyn StorageView, d: &FieldData) -> Result<Option<Response>> {
        let Some(p) = self.load(s, str_field(d, "name")).await? else {
            return Ok(None);
        };
        let context = b64_decode(str_field(d, "context"))
            .map_err(|cause| bad("failed to base64-decode context").with_source(cause))?;
        Ok(Some(Response::data(self.format_key(s, &p, &context).await?)))
    }

    async fn key_create(&self, s: &dyn StorageView, d: &FieldData) -> Result<Option<Response>> {
        let name = str_field(d, "name");
        let derived = d.bool("derived").unwrap_or(false);
        let convergent = d.bool("convergent_encryption").unwrap_or(false);
        let period = d.int("auto_rotate_period").unwrap_or(0);
        if period != 0 && period < 3600 {
            return Err(bad("auto rotate period must be 0 to disable or at least an hour"));
        }
        if !derived && convergent {
            return Err(bad("convergent encryption requires derivation to be enabled"));
        }
        let type_name = str_field(d, "type");
        let t = KeyType::parse(type_name).ok_or_else(|| bad(format!("unknown key type {type_name}")))?;
        let key_size = d.int("key_size").unwrap_or(0);
        if key_size != 0 {
            if t != KeyType::Hmac {
                return Err(bad(format!("key_size is not valid for algorithm {}", t.as_str())));
            }
            if !(32..=512).contains(&key_size) {
                return Err(bad(format!("invalid key_size {key_size}")));
            }
        }
        if t == KeyType::Ed25519 && convergent {
            return Err(bad("convergent encryption not supported for keys of type ed25519"));
        }
        if !t.derivation_supported() && (derived || convergent) {
            return Err(bad(format!(
                "key derivation and convergent encryption not supported for keys of type {}",
                t.as_str()
            )));
        }
        if t == KeyType::Hmac && key_size == 0 {
            return Err(bad("invalid key size for HMAC key, must be between 32 and 512 bytes"));
        }
        let _guard = self.write_lock.lock().await;
        if let Some(existing) = keys::load_policy(s, name).await? {
            return self.key_response(s, &existing, vec![]).await;
        }
        let mut p = Policy::new(name, t);
        p.derived = derived;
        if derived {
            p.kdf = 1;
            if convergent {
                p.convergent_encryption = true;
                p.convergent_version = -1;
            }
        }
        p.exportable = d.bool("exportable").unwrap_or(false);
        p.allow_plaintext_backup = d.bool("allow_plaintext_backup").unwrap_or(false);
        p.auto_rotate_period = period;
        p.key_size = key_size;
        self.rotate(s, &mut p).await?;
        self.key_response(s, &p, vec![]).await
    }

    async fn key_delete(&self, s: &dyn StorageView, d: &FieldData) -> Result<Option<Response>> {
        let name = str_field(d, "name");
        let _guard = self.write_lock.lock().await;
        let Some(p) = keys::load_policy(s, name).await? else {
            return Err(bad(format!("error deleting policy {name}: could not delete key; not found")));
        };
        if !p.deletion_allowed {
            return Err(bad(format!("error deleting policy {name}: deletion is not allowed for this key")));
        }
        keys::delete_policy(s, name).await?;
        for v in p.min_available_version.max(1)..=p.latest_version {
            keys::delete_entry(s, name, v).await?;
        }
        Ok(None)
    }

    async fn key_config(&self, s: &dyn StorageView, d: &FieldData) -> Result<Option<Response>> {
        let name = str_field(d, "name");
        let _guard = self.write_lock.lock().await;
        let Some(mut p) = keys::load_policy(s, name).await? else {
            return Err(bad(format!("no existing key named {name} could be found")));
        };
        let mut warnings = vec![];
        if let Some(mut v) = d.is_set("min_decryption_version").then(|| d.int("min_decryption_version")).flatten() {
            if v <= 0 {
                v = 1;
                warnings.push(
                    "since Vault 0.3 (prior to the OpenBao fork), transit key numbering starts at 1; forcing minimum to 1"
                        .to_string(),
                );
            }
            if v > p.latest_version {
                return Err(bad(format!(
                    "cannot set min decryption version of {v}, latest key version is {}",
                    p.latest_version
                )));
            }
            if v < p.min_available_version {
                return Err(bad("min decryption version should not be less then min available version"));
            }
            p.min_decryption_version = v;
        }
        if let Some(v) = d.is_set("min_encryption_version").then(|| d.int("min_encryption_version")).flatten() {
            if v < 0 {
                return Err(bad("min encryption version cannot be negative"));
            }
            if v > p.latest_version {
                return Err(bad(format!(
                    "cannot set min encryption version of {v}, latest key version is {}",
                    p.latest_version
                )));
            }
            p.min_encryption_version = v;
        }
        if p.min_encryption_version > 0 && p.min_encryption_version < p.min_decryption_version {
            return Err(bad(format!(
                "cannot set min encryption/decryption values; min encryption version of {} must be greater than or \
                 equal to min decryption version of {}",
                p.min_encryption_version, p.min_decryption_version
            )));
        }
        if let Some(v) = d.bool("deletion_allowed") {
            p.deletion_allowed = v;
        }
        // Exportability and plaintext backups can be granted, never withdrawn.
        if d.bool("exportable") == Some(true) {
            p.exportable = true;
        }
        if d.bool("allow_plaintext_backup") == Some(true) {
            p.allow_plaintext_backup = true;
        }
        if d.is_set("auto_rotate_period") {
            let period = d.int("auto_rotate_period").unwrap_or(0);
            if period != 0 && period < 3600 {
                return Err(bad("auto rotate period must be 0 to disable or at least an hour"));
            }
            p.auto_rotate_period = period;
        }
        keys::save_policy(s, &p).await?;
        self.key_response(s, &p, warnings).await
    }

    async fn key_rotate(&self, s: &dyn StorageView, d: &FieldData) -> Result<Option<Response>> {
        let _guard = self.write_lock.lock().await;
        let Some(mut p) = keys::load_policy(s, str_field(d, "name")).await? else {
            return Err(bad("key not found"));
        };
        self.rotate(s, &mut p).await?;
        self.key_response(s, &p, vec![]).await
    }

    async fn key_trim(&self, s: &dyn StorageView, d: &FieldData) -> Result<Option<Response>> {
        let _guard = self.write_lock.lock().await;
        let Some(mut p) = keys::load_policy(s, str_field(d, "name")).await? else {
            return Err(bad("invalid key name"));
        };
        let Some(v) = d.int("min_available_version") else {
            return Err(bad("missing min_available_version"));
        };
        if p.min_encryption_version == 0 {
            return Err(bad("minimum available version cannot be set when minimum encryption version is not set"));
        }
        if v > p.min_decryption_version {
            return Err(bad("minimum available version cannot be greater than minimum decryption version"));
        }
        if v > p.min_encryption_version {
            return Err(bad("minimum available version cannot be greater than minimum encryption version"));
        }
        if v < p.min_available_version {
            return Err(bad("minimum available version cannot be decremented"));
        }
        if v <= 0 {
            return Err(bad("minimum available version should be positive"));
        }
        let old = p.min_available_version.max(1);
        p.min_available_version = v;
        keys::save_policy(s, &p).await?;
        for version in old..v {
            keys::delete_entry(s, &p.name, version).await?;
        }
        self.key_response(s, &p, vec![]).await
    }

    // ---- export, backup, restore ----

    async fn export(&self, s: &dyn StorageView, d: &FieldData) -> Result<Option<Response>> {
        let kind = str_field(d, "type");
        if !["encryption-key", "signing-key", "hmac-key", "public-key"].contains(&kind) {
            return Err(bad(format!("invalid export type: {kind}")));
        }
        let format = str_field(d, "format");
        if !["", "raw", "der", "pem"].contains(&format) {
            return Err(bad(format!("invalid format: {format}")));
        }
        let Some(p) = self.load(s, str_field(d, "name")).await? else {
            return Ok(None);
        };
        let t = p.key_type;
        if !p.exportable && kind != "public-key" {
            return Err(bad("private key material is not exportable"));
        }
        if kind == "encryption-key" && !t.encryption_supported() {
            return Err(bad("encryption not supported for the key"));
        }
        if kind == "signing-key" && !t.signing_supported() {
            return Err(bad("signing not supported for the key"));
        }
        if kind == "public-key" && !t.signing_supported() {
            return Err(bad(format!("unknown key type {} for export type public-key", t.as_str())));
        }
        let versions: Vec<i64> = match str_field(d, "version") {
            "" => (p.min_decryption_version.max(1)..=p.latest_version).collect(),
            v => {
                let n = if v == "latest" {
                    p.latest_version
                } else {
                    v.trim_start_matches('v')
                        .parse::<i64>()
                        .map_err(|cause| bad("invalid key version").with_source(cause))?
                };
                if n < p.min_decryption_version {
                    return Err(bad("version for export is below minimum decryption version"));
                }
                vec![n]
            }
        };
        let mut out = Map::new();
        for v in versions {
            let Some(e) = keys::load_entry(s, &p.name, v).await? else {
                return Err(bad("version does not exist or cannot be found"));
            };
            out.insert(v.to_string(), Value::String(export_one(t, &e, kind, format)?.to_string()));
        }
        Ok(response(vec![("keys", Value::Object(out)), ("name", p.name.clone().into()), ("type", t.as_str().into())]))
    }

    async fn backup(&self, s: &dyn StorageView, d: &FieldData) -> Result<Option<Response>> {
        let name = str_field(d, "name");
        let _guard = self.write_lock.lock().await;
        let Some(mut p) = keys::load_policy(s, name).await? else {
            return Err(bad(format!("key {name:?} not found")));
        };
        if !p.exportable {
            return Err(bad("exporting is disallowed on the policy"));
        }
        if !p.allow_plaintext_backup {
            return Err(bad("plaintext backup is disallowed on the policy"));
        }
        p.backup_info = Some(keys::EventInfo { time: keys::now().0, version: p.latest_version });
        keys::save_policy(s, &p).await?;
        let mut entries = BTreeMap::new();
        for v in p.min_available_version.max(1)..=p.latest_version {
            entries.insert(v, keys::entry(s, name, v).await?);
        }
        let encoded = backup::encode(&p, &entries)?;
        Ok(response(vec![("backup", Value::String(encoded.to_string()))]))
    }

    async fn restore(&self, s: &dyn StorageView, d: &FieldData) -> Result<Option<Response>> {
        let data = str_field(d, "backup");
        if data.is_empty() {
            return Err(bad("'backup' must be supplied"));
        }
        let (mut p, entries) = backup::decode(data)?;
        let name = str_field(d, "name");
        if !name.is_empty() {
            p.name = name.to_string();
        }
        if !keys::valid_name(&p.name) {
            return Err(bad(format!("invalid key name {:?} in backup", p.name)));
        }
        let _guard = self.write_lock.lock().await;
        let existing = keys::load_policy(s, &p.name).await?;
        if existing.is_some() && !d.bool("force").unwrap_or(false) {
            return Err(bad(format!("key {:?} already exists", p.name)));
        }
        for (v, e) in &entries {
            keys::save_entry(s, &p.name, *v, e).await?;
        }
        p.restore_info = Some(keys::EventInfo { time: keys::now().0, version: p.latest_version });
        keys::save_policy(s, &p).await?;
        if let Some(old) = existing {
            for v in old.min_available_version.max(1)..=old.latest_version {
                if !entries.contains_key(&v) {
                    keys::delete_entry(s, &p.name, v).await?;
                }
            }
        }
        Ok(None)
    }

    // ---- encrypt, decrypt, rewrap, datakey ----

    /// Encrypts one plaintext with version `requested` (0 = latest); returns (ciphertext, version).
    async fn encrypt_one(
        &self,
        s: &dyn StorageView,
        p: &Policy,
        plaintext: &[u8],
        context: &[u8],
        requested: i64,
        aad: &[u8],
    ) -> ItemResult<(String, i64)> {
        let t = p.key_type;
        if !t.encryption_supported() {
            return Err(bad(format!("message encryption not supported for key type {}", t.as_str())));
        }
        let v = encryption_version(p, requested, "encryption")?;
        let e = self.version(s, p, v).await?;
        let raw = if t.is_rsa() {
            ops::rsa_encrypt(&e, plaintext)?
        } else {
            let enc_len = t.aead_key_len();
            let convergent = p.convergent_version_of(&e);
            if p.convergent_encryption && convergent < keys::CONVERGENT_VERSION {
                return Err(bad(format!(
                    "refusing to support decryption with old convergent encryption key: version {convergent}"
                )));
            }
            let hmac_len = if convergent > 2 { 32 } else { 0 };
            let key = if p.derived {
                keys::derive(p, &e, context, enc_len + hmac_len)?
            } else {
                e.key.clone().ok_or_else(|| LogicalError::internal("key version has no key"))?
            };
            if key.len() < enc_len + hmac_len {
                return Err(LogicalError::internal("could not derive key, length too small"));
            }
            let nonce = if p.convergent_encryption {
                ops::convergent_nonce(&key[enc_len..enc_len + hmac_len], plaintext)
            } else {
                keys::random(ops::NONCE_LEN)?.to_vec()
            };
            ops::aead_seal(t, &key[..enc_len], &nonce, plaintext, aad)?
        };
        Ok((format!("vault:v{v}:{}", B64.encode(raw)), v))
    }

    async fn decrypt_one(
        &self,
        s: &dyn StorageView,
        p: &Policy,
        ciphertext: &str,
        context: &[u8],
        aad: &[u8],
    ) -> ItemResult<Secret> {
        let t = p.key_type;
        if !t.encryption_supported() {
            return Err(bad(format!("message decryption not supported for key type {}", t.as_str())));
        }
        let (mut v, payload) = ops::split_versioned(ciphertext, "ciphertext")?;
        if v == 0 {
            v = 1;
        }
        if v > p.latest_version {
            return Err(bad("invalid ciphertext: version is too new"));
        }
        if v < p.min_decryption_version {
            return Err(bad(TOO_OLD));
        }
        let e = self.version(s, p, v).await?;
        let convergent = p.convergent_version_of(&e);
        if p.convergent_encryption && convergent < keys::CONVERGENT_VERSION && convergent > 0 {
            return Err(bad(format!(
                "refusing to support decryption with old convergent encryption key: version {convergent}"
            )));
        }
        let raw = B64
            .decode(payload.as_bytes())
            .map_err(|cause| bad("invalid ciphertext: could not decode base64").with_source(cause))?;
        if t.is_rsa() {
            return ops::rsa_decrypt(&e, &raw);
        }
        let enc_len = t.aead_key_len();
        let key = if p.derived {
            keys::derive(p, &e, context, enc_len)?
        } else {
            e.key.clone().ok_or_else(|| LogicalError::internal("key version has no key"))?
        };
        if key.len() != enc_len {
            return Err(LogicalError::internal("could not derive enc key, length not correct"));
        }
        ops::aead_open(t, &key, &raw, aad)
    }

    async fn encrypt(&self, s: &dyn StorageView, op: Operation, d: &FieldData) -> Result<Option<Response>> {
        let name = str_field(d, "name");
        if !str_field(d, "nonce").is_empty() {
            return Err(bad("nonce provided when not allowed"));
        }
        let batch = batch_items(d)?;
        struct Item {
            plaintext: std::result::Result<Secret, Base64Error>,
            context: std::result::Result<Secret, Base64Error>,
            version: i64,
            aad: String,
            reference: Option<String>,
        }
        let items: Vec<Item> = match &batch {
            Some(list) => {
                let mut out = vec![];
                let mut missing = vec![];
                for (i, it) in list.iter().enumerate() {
                    let Some(pt) = item_str(it, "plaintext") else {
                        missing.push(format!("'[{i}].plaintext' missing plaintext to encrypt"));
                        continue;
                    };
                    out.push(Item {
                        plaintext: b64_decode(&pt),
                        context: b64_decode(&item_str(it, "context").unwrap_or_default()),
                        version: item_int(it, "key_version", i)?,
                        aad: item_str(it, "associated_data").unwrap_or_default(),
                        reference: Some(item_str(it, "reference").unwrap_or_default()),
                    });
                }
                if !missing.is_empty() {
                    return Err(bad(format!("failed to parse batch input: {}", missing.join("; "))));
                }
                out
            }
            None => {
                let Some(pt) = d.str("plaintext") else {
                    return Err(bad("missing plaintext to encrypt"));
                };
                vec![Item {
                    plaintext: b64_decode(pt),
                    context: b64_decode(str_field(d, "context")),
                    version: d.int("key_version").unwrap_or(0),
                    aad: str_field(d, "associated_data").to_string(),
                    reference: None,
                }]
            }
        };
        let has_context = |it: &Item| !matches!(&it.context, Ok(c) if c.is_empty());
        let context_set = has_context(&items[0]);
        if items.iter().any(|it| has_context(it) != context_set) {
            return Err(bad("context should be set either in all the request blocks or in none"));
        }
        // Find the key, creating it on a create (upsert) request.
        let mut warnings = vec![];
        let p = match self.load(s, name).await? {
            Some(p) => {
                if op == Operation::Create {
                    warnings.push(
                        "Attempted creation of the key during the encrypt operation, but it was created beforehand"
                            .to_string(),
                    );
                }
                p
            }
            None if op == Operation::Create && !self.upsert_disabled(s).await? => {
                let convergent = d.bool("convergent_encryption").unwrap_or(false);
                if convergent && !context_set {
                    return Err(bad("convergent encryption requires derivation to be enabled, so context is required"));
                }
                let type_name = str_field(d, "type");
                let t = match KeyType::parse(type_name) {
                    Some(t) if t.is_aead() => t,
                    Some(t) if t.is_ecdsa() => {
                        return Err(bad(format!("key type {type_name} not supported for this operation")))
                    }
                    _ => return Err(bad(format!("unknown key type {type_name}"))),
                };
                let _guard = self.write_lock.lock().await;
                Arc::new(match keys::load_policy(s, name).await? {
                    Some(p) => p,
                    None => {
                        let mut p = Policy::new(name, t);
                        if context_set {
                            p.derived = true;
                            p.kdf = 1;
                            if convergent {
                                p.convergent_encryption = true;
                                p.convergent_version = -1;
                            }
                        }
                        self.rotate(s, &mut p).await?;
                        p
                    }
                })
            }
            None => return Err(bad("encryption key not found")),
        };
        let mut results: Vec<ItemResult<(String, i64)>> = Vec::with_capacity(items.len());
        for (i, it) in items.iter().enumerate() {
            let r = async {
                let plaintext = it.plaintext.as_ref().map_err(|e| LogicalError::from(e.clone()))?;
                let context = it.context.as_ref().map_err(|e| LogicalError::from(e.clone()))?;
                let aad = item_aad(&p, i, &it.aad)?;
                self.encrypt_one(s, &p, plaintext, context, it.version, &aad).await
            }
            .await;
            results.push(r);
        }
        let mut resp = if batch.is_some() {
            let list: Vec<Value> = results
                .into_iter()
                .zip(&items)
                .map(|(r, it)| {
                    let reference = it.reference.clone().unwrap_or_default();
                    match r {
                        Ok((c, v)) => json!({"ciphertext": c, "key_version": v, "reference": reference}),
                        Err(e) => json!({"error": e.to_string(), "reference": reference}),
                    }
                })
                .collect();
            Response::data(Map::from_iter([("batch_results".to_string(), Value::Array(list))]))
        } else {
            let (c, v) = results.remove(0)?;
            Response::data(Map::from_iter([
                ("ciphertext".to_string(), Value::String(c)),
                ("key_version".to_string(), Value::from(v)),
            ]))
        };
        resp.warnings = warnings;
        Ok(Some(resp))
    }

    async fn upsert_disabled(&self, s: &dyn StorageView) -> Result<bool> {
        Ok(match s.get("config/keys").await? {
            Some(raw) => serde_json::from_slice::<Value>(&raw)
                .ok()
                .and_then(|v| v.get("disable_upsert").and_then(Value::as_bool))
                .unwrap_or(false),
            None => false,
        })
    }

    async fn decrypt(&self, s: &dyn StorageView, d: &FieldData) -> Result<Option<Response>> {
        let batch = batch_items(d)?;
        struct Item {
            ciphertext: String,
            context: std::result::Result<Secret, Base64Error>,
            aad: String,
            reference: String,
        }
        let items: Vec<Item> = match &batch {
            Some(list) => {
                let mut out = vec![];
                let mut missing = vec![];
                for (i, it) in list.iter().enumerate() {
                    let Some(c) = item_str(it, "ciphertext") else {
                        missing.push(format!("'[{i}].ciphertext' missing ciphertext to decrypt"));
                        continue;
                    };
                    out.push(Item {
                        ciphertext: c,
                        context: b64_decode(&item_str(it, "context").unwrap_or_default()),
                        aad: item_str(it, "associated_data").unwrap_or_default(),
                        reference: item_str(it, "reference").unwrap_or_default(),
                    });
                }
                if !missing.is_empty() {
                    return Err(bad(format!("failed to parse batch input: {}", missing.join("; "))));
                }
                out
            }
            None => {
                let c = str_field(d, "ciphertext");
                if c.is_empty() {
                    return Err(bad("missing ciphertext to decrypt"));
                }
                vec![Item {
                    ciphertext: c.to_string(),
                    context: b64_decode(str_field(d, "context")),
                    aad: str_field(d, "associated_data").to_string(),
                    reference: String::new(),
                }]
            }
        };
        let has_context = |it: &Item| !matches!(&it.context, Ok(c) if c.is_empty());
        let context_set = has_context(&items[0]);
        if items.iter().any(|it| has_context(it) != context_set) {
            return Err(bad("context should be set either in all the request blocks or in none"));
        }
        let Some(p) = self.load(s, str_field(d, "name")).await? else {
            return Err(bad("encryption key not found"));
        };
        let mut results = Vec::with_capacity(items.len());
        for (i, it) in items.iter().enumerate() {
            let r = async {
                if it.ciphertext.is_empty() {
                    return Err(bad("missing ciphertext to decrypt"));
                }
                let context = it.context.as_ref().map_err(|e| LogicalError::from(e.clone()))?;
                let aad = item_aad(&p, i, &it.aad)?;
                self.decrypt_one(s, &p, &it.ciphertext, context, &aad).await
            }
            .await;
            results.push(r);
        }
        if batch.is_some() {
            let list: Vec<Value> = results
                .into_iter()
                .zip(&items)
                .map(|(r, it)| match r {
                    Ok(pt) => json!({"plaintext": B64.encode(pt.as_slice()), "reference": it.reference}),
                    Err(e) => json!({"plaintext": "", "error": e.to_string(), "reference": it.reference}),
                })
                .collect();
            return Ok(response(vec![("batch_results", Value::Array(list))]));
        }
        let pt = results.remove(0)?;
        Ok(response(vec![("plaintext", Value::String(B64.encode(pt.as_slice())))]))
    }

    async fn rewrap(&self, s: &dyn StorageView, d: &FieldData) -> Result<Option<Response>> {
        let batch = batch_items(d)?;
        let items: Vec<(String, std::result::Result<Secret, Base64Error>, i64, String)> = match &batch {
            Some(list) => list
                .iter()
                .enumerate()
                .map(|(i, it)| {
                    Ok((
                        item_str(it, "ciphertext").unwrap_or_default(),
                        b64_decode(&item_str(it, "context").unwrap_or_default()),
                        item_int(it, "key_version", i)?,
                        item_str(it, "reference").unwrap_or_default(),
                    ))
                })
                .collect::<Result<_>>()?,
            None => {
                let c = str_field(d, "ciphertext");
                if c.is_empty() {
                    return Err(bad("missing ciphertext to decrypt"));
                }
                vec![(
                    c.to_string(),
                    b64_decode(str_field(d, "context")),
                    d.int("key_version").unwrap_or(0),
                    String::new(),
                )]
            }
        };
        let has_context = |c: &std::result::Result<Secret, Base64Error>| !matches!(c, Ok(c) if c.is_empty());
        let context_set = has_context(&items[0].1);
        if items.iter().any(|it| has_context(&it.1) != context_set) {
            return Err(bad("context should be set either in all the request blocks or in none"));
        }
        let Some(p) = self.load(s, str_field(d, "name")).await? else {
            return Err(bad("encryption key not found"));
        };
        let mut results = Vec::with_capacity(items.len());
        for (c, ctx, ver, _) in &items {
            let r = async {
                if c.is_empty() {
                    return Err(bad("missing ciphertext to decrypt"));
                }
                let ctx = ctx.as_ref().map_err(|e| LogicalError::from(e.clone()))?;
                let pt = self.decrypt_one(s, &p, c, ctx, &[]).await?;
                self.encrypt_one(s, &p, &pt, ctx, *ver, &[]).await
            }
            .await;
            results.push(r);
        }
        if batch.is_some() {
            let list: Vec<Value> = results
                .into_iter()
                .zip(&items)
                .map(|(r, it)| match r {
                    Ok((c, v)) => json!({"ciphertext": c, "key_version": v, "reference": it.3}),
                    Err(e) => json!({"error": e.to_string(), "reference": it.3}),
                })
                .collect();
            return Ok(response(vec![("batch_results", Value::Array(list))]));
        }
        let (c, v) = results.remove(0)?;
        Ok(response(vec![("ciphertext", c.into()), ("key_version", v.into())]))
    }

    async fn datakey(&self, s: &dyn StorageView, d: &FieldData) -> Result<Option<Response>> {
        let mode = str_field(d, "plaintext");
        if mode != "plaintext" && mode != "wrapped" {
            return Err(bad("Invalid path, must be 'plaintext' or 'wrapped'"));
        }
        if !str_field(d, "nonce").is_empty() {
            return Err(bad("nonce provided when not allowed"));
        }
        let bits = d.int("bits").unwrap_or(256);
        if ![128, 256, 512].contains(&bits) {
            return Err(bad("invalid bit length"));
        }
        let context = b64_decode(str_field(d, "context"))
            .map_err(|cause| bad("failed to base64-decode context").with_source(cause))?;
        let Some(p) = self.load(s, str_field(d, "name")).await? else {
            return Err(bad("encryption key not found"));
        };
        let aad = b64_decode(str_field(d, "associated_data"))?;
        if !aad.is_empty() && !p.key_type.is_aead() {
            return Err(bad(format!("associated_data provided for non-AEAD cipher suite {}", p.key_type.as_str())));
        }
        let key = keys::random(bits as usize / 8)?;
        let (ciphertext, v) = self.encrypt_one(s, &p, &key, &context, d.int("key_version").unwrap_or(0), &aad).await?;
        let mut pairs = vec![("ciphertext", Value::String(ciphertext)), ("key_version", Value::from(v))];
        if mode == "plaintext" {
            pairs.push(("plaintext", Value::String(B64.encode(key.as_slice()))));
        }
        Ok(response(pairs))
    }

    // ---- hmac, sign, verify ----

    async fn hmac(&self, s: &dyn StorageView, d: &FieldData) -> Result<Option<Response>> {
        let Some(p) = self.load(s, str_field(d, "name")).await? else {
            return Err(bad("encryption key not found"));
        };
        let mut ver = d.int("key_version").unwrap_or(0);
        if ver == 0 {
            ver = p.latest_version;
        }
        if ver < 0 {
            return Err(bad("key version does not exist (cannot be negative)"));
        }
        if ver > p.latest_version {
            return Err(bad(format!("key version does not exist; latest key version is {}", p.latest_version)));
        }
        if ver != p.latest_version && p.min_encryption_version > 0 && ver < p.min_encryption_version {
            return Err(bad("cannot generate HMAC: version is too old (disallowed by policy)"));
        }
        let e = self.version(s, &p, ver).await?;
        let key = hmac_key(&p, &e)?;
        let alg_name = algorithm_field(d, &["urlalgorithm", "algorithm"]);
        let alg = HashAlg::parse(&alg_name)
            .filter(|a| *a != HashAlg::None)
            .ok_or_else(|| bad(format!("unsupported algorithm {alg_name:?}")))?;
        let batch = batch_items(d)?;
        let inputs: Vec<(Option<String>, String)> = match &batch {
            Some(list) => {
                list.iter().map(|it| (item_str(it, "input"), item_str(it, "reference").unwrap_or_default())).collect()
            }
            None => match d.str("input") {
                Some(i) => vec![(Some(i.to_string()), String::new())],
                None => return Err(bad("missing input for HMAC")),
            },
        };
        let results: Vec<ItemResult<String>> = inputs
            .iter()
            .map(|(input, _)| {
                let input = input.as_ref().ok_or_else(|| bad("missing input for HMAC"))?;
                let data = b64_decode(input).map_err(|e| bad(format!("unable to decode input as base64: {e}")))?;
                let mac = alg.hmac(&key, &data).ok_or_else(|| bad("unsupported algorithm"))?;
                Ok(format!("vault:v{ver}:{}", B64.encode(mac)))
            })
            .collect();
        if batch.is_some() {
            let list: Vec<Value> = results
                .into_iter()
                .zip(&inputs)
                .map(|(r, (_, reference))| match r {
                    Ok(h) => json!({"hmac": h, "reference": reference}),
                    Err(e) => json!({"error": e.to_string(), "reference": reference}),
                })
                .collect();
            return Ok(response(vec![("batch_results", Value::Array(list))]));
        }
        let mut results = results;
        Ok(response(vec![("hmac", Value::String(results.remove(0)?))]))
    }

    async fn hmac_verify(&self, s: &dyn StorageView, d: &FieldData) -> Result<Option<Response>> {
        let Some(p) = self.load(s, str_field(d, "name")).await? else {
            return Err(bad("encryption key not found"));
        };
        let alg_name = algorithm_field(d, &["urlalgorithm", "algorithm"]);
        let alg = HashAlg::parse(&alg_name)
            .filter(|a| *a != HashAlg::None)
            .ok_or_else(|| bad(format!("unsupported algorithm {alg_name:?}")))?;
        let batch = batch_items(d)?;
        let items: Vec<(Option<String>, Option<String>, String)> = match &batch {
            Some(list) => list
                .iter()
                .map(|it| (item_str(it, "input"), item_str(it, "hmac"), item_str(it, "reference").unwrap_or_default()))
                .collect(),
            None => {
                vec![(Some(str_field(d, "input").to_string()), Some(str_field(d, "hmac").to_string()), String::new())]
            }
        };
        let mut results: Vec<ItemResult<bool>> = Vec::with_capacity(items.len());
        for (input, mac, _) in &items {
            let r = async {
                let input = input.as_ref().ok_or_else(|| bad("missing input"))?;
                let data = b64_decode(input).map_err(|e| bad(format!("unable to decode input as base64: {e}")))?;
                let mac = mac.as_ref().ok_or_else(|| bad("missing hmac"))?;
                let rest = mac.strip_prefix("vault:v").ok_or_else(|| bad("invalid HMAC to verify: no prefix"))?;
                let (ver, payload) = rest.split_once(':').ok_or_else(|| bad("invalid HMAC: wrong number of fields"))?;
                let ver: i64 = ver
                    .parse()
                    .map_err(|cause| bad("invalid HMAC: version number could not be decoded").with_source(cause))?;
                let given = b64_decode(payload)
                    .map_err(|e| bad(format!("unable to decode verification HMAC as base64: {e}")))?;
                if ver > p.latest_version {
                    return Err(bad("invalid HMAC: version is too new"));
                }
                if ver < p.min_decryption_version {
                    return Err(bad("cannot verify HMAC: version is too old (disallowed by policy)"));
                }
                let e = self.version(s, &p, ver).await?;
                let key = hmac_key(&p, &e)?;
                let expected = alg.hmac(&key, &data).ok_or_else(|| bad("unsupported algorithm"))?;
                use subtle::ConstantTimeEq;
                Ok(expected.len() == given.len() && bool::from(expected.ct_eq(&given)))
            }
            .await;
            results.push(r);
        }
        verify_response(batch.is_some(), results, items.iter().map(|i| i.2.clone()).collect())
    }

    fn sign_options(d: &FieldData) -> Result<(SignOptions, bool)> {
        let hash_name = algorithm_field(d, &["urlalgorithm", "hash_algorithm", "algorithm"]);
        let hash = HashAlg::parse(&hash_name).ok_or_else(|| bad(format!("invalid hash algorithm {hash_name:?}")))?;
        let marshaling = match str_field(d, "marshaling_algorithm") {
            "" | "asn1" => Marshaling::Asn1,
            "jws" => Marshaling::Jws,
            other => return Err(bad(format!("invalid marshaling type {other:?}"))),
        };
        let salt = SaltLength::parse(str_field(d, "salt_length"))?;
        let prehashed = d.bool("prehashed").unwrap_or(false);
        let scheme = match str_field(d, "signature_algorithm") {
            "" | "pss" => RsaScheme::Pss,
            "pkcs1v15" => RsaScheme::Pkcs1v15,
            other => return Err(bad(format!("unsupported rsa signature algorithm {other}"))),
        };
        if hash == HashAlg::None && (!prehashed || scheme != RsaScheme::Pkcs1v15) {
            return Err(bad("hash_algorithm=none requires both prehashed=true and signature_algorithm=pkcs1v15"));
        }
        Ok((SignOptions { hash, scheme, salt, marshaling }, prehashed))
    }

    async fn sign(&self, s: &dyn StorageView, d: &FieldData) -> Result<Option<Response>> {
        let (opts, prehashed) = Self::sign_options(d)?;
        let Some(p) = self.load(s, str_field(d, "name")).await? else {
            return Err(bad("signing key not found"));
        };
        let t = p.key_type;
        if !t.signing_supported() {
            return Err(bad(format!("key type {} does not support signing", t.as_str())));
        }
        let batch = batch_items(d)?;
        let items: Vec<(Option<String>, String, String)> = match &batch {
            Some(list) => list
                .iter()
                .map(|it| {
                    (
                        item_str(it, "input"),
                        item_str(it, "context").unwrap_or_default(),
                        item_str(it, "reference").unwrap_or_default(),
                    )
                })
                .collect(),
            None => vec![(Some(str_field(d, "input").to_string()), str_field(d, "context").to_string(), String::new())],
        };
        let ver = encryption_version(&p, d.int("key_version").unwrap_or(0), "signing")?;
        let e = self.version(s, &p, ver).await?;
        let mut results: Vec<ItemResult<(String, Option<String>)>> = Vec::with_capacity(items.len());
        for (input, context, _) in &items {
            let r = (|| {
                let input = input.as_ref().ok_or_else(|| bad("missing input"))?;
                let mut data = b64_decode(input).map_err(|e| bad(format!("unable to decode input as base64: {e}")))?;
                if t.hashes_signature_input() && !prehashed {
                    data = Zeroizing::new(opts.hash.digest(&data));
                }
                let context =
                    b64_decode(context).map_err(|cause| bad("failed to base64-decode context").with_source(cause))?;
                let (derived_kp, public) = if t == KeyType::Ed25519 && p.derived {
                    let seed = keys::derive(&p, &e, &context, 32)?;
                    let kp = aws_lc_rs::signature::Ed25519KeyPair::from_seed_unchecked(&seed)
                        .map_err(|cause| LogicalError::internal("error deriving key").with_source(cause))?;
                    use aws_lc_rs::signature::KeyPair;
                    let public = B64.encode(kp.public_key().as_ref());
                    (Some(kp), Some(public))
                } else {
                    (None, None)
                };
                let sig = ops::sign(t, &e, derived_kp.as_ref(), &data, &opts)?;
                let encoded = match opts.marshaling {
                    Marshaling::Asn1 => B64.encode(sig),
                    Marshaling::Jws => B64URL.encode(sig),
                };
                Ok((format!("vault:v{ver}:{encoded}"), public))
            })();
            results.push(r);
        }
        if batch.is_some() {
            let list: Vec<Value> = results
                .into_iter()
                .zip(&items)
                .map(|(r, it)| match r {
                    Ok((sig, public)) => {
                        let mut m = json!({"signature": sig, "key_version": ver, "reference": it.2});
                        if let Some(pk) = public {
                            m["publickey"] = pk.into();
                        }
                        m
                    }
                    Err(e) => json!({"key_version": 0, "error": e.to_string(), "reference": it.2}),
                })
                .collect();
            return Ok(response(vec![("batch_results", Value::Array(list))]));
        }
        let (sig, public) = results.remove(0)?;
        let mut pairs = vec![("key_version", Value::from(ver))];
        if let Some(pk) = public {
            pairs.push(("public_key", pk.into()));
        }
        pairs.push(("signature", sig.into()));
        Ok(response(pairs))
    }

    async fn verify(&self, s: &dyn StorageView, d: &FieldData) -> Result<Option<Response>> {
        let batch = batch_items(d)?;
        let has = |k: &str| -> (bool, bool) {
            match &batch {
                Some(list) => (list.iter().any(|it| it.contains_key(k)), list.iter().all(|it| it.contains_key(k))),
                None => (d.is_set(k), d.is_set(k)),
            }
        };
        let (any_sig, all_sig) = has("signature");
        let (any_hmac, all_hmac) = has("hmac");
        match (batch.is_some(), any_sig, any_hmac) {
            (false, true, true) => return Err(bad("provide one of 'signature' or 'hmac'")),
            (false, false, false) => return Err(bad("neither a 'signature' nor an 'hmac' were given to verify")),
            (true, true, true) => {
                return Err(bad("elements of batch_input must all provide 'signature' or all provide 'hmac'"))
            }
            (true, true, false) if !all_sig => return Err(bad("some elements of batch_input are missing 'signature'")),
            (true, false, true) if !all_hmac => return Err(bad("some elements of batch_input are missing 'hmac'")),
            (true, false, false) => return Err(bad("no batch_input elements have 'signature' or 'hmac'")),
            (_, false, true) => return self.hmac_verify(s, d).await,
            _ => {}
        }
        let (opts, prehashed) = Self::sign_options(d)?;
        let Some(p) = self.load(s, str_field(d, "name")).await? else {
            return Err(bad("signature verification key not found"));
        };
        let t = p.key_type;
        if !t.signing_supported() {
            return Err(bad(format!("key type {} does not support verification", t.as_str())));
        }
        let items: Vec<(Option<String>, Option<String>, String, String)> = match &batch {
            Some(list) => list
                .iter()
                .map(|it| {
                    (
                        item_str(it, "input"),
                        item_str(it, "signature"),
                        item_str(it, "context").unwrap_or_default(),
                        item_str(it, "reference").unwrap_or_default(),
                    )
                })
                .collect(),
            None => vec![(
                Some(str_field(d, "input").to_string()),
                Some(str_field(d, "signature").to_string()),
                str_field(d, "context").to_string(),
                String::new(),
            )],
        };
        let mut results: Vec<ItemResult<bool>> = Vec::with_capacity(items.len());
        for (input, sig, context, _) in &items {
            let r = async {
                let input = input.as_ref().ok_or_else(|| bad("missing input"))?;
                let mut data = b64_decode(input).map_err(|e| bad(format!("unable to decode input as base64: {e}")))?;
                let sig = sig.as_ref().ok_or_else(|| bad("missing signature"))?;
                if t.hashes_signature_input() && !prehashed {
                    data = Zeroizing::new(opts.hash.digest(&data));
                }
                let context =
                    b64_decode(context).map_err(|cause| bad("failed to base64-decode context").with_source(cause))?;
                let (ver, payload) = ops::split_versioned(sig, "signature")?;
                if ver > p.latest_version {
                    return Err(bad("invalid signature: version is too new"));
                }
                if ver < p.min_decryption_version {
                    return Err(bad(TOO_OLD));
                }
                let sig_bytes = match opts.marshaling {
                    Marshaling::Asn1 => B64.decode(payload.as_bytes()),
                    Marshaling::Jws => B64URL.decode(payload.as_bytes()),
                }
                .map_err(|cause| bad("invalid base64 signature value").with_source(cause))?;
                let e = self.version(s, &p, ver).await?;
                let derived_public = if t == KeyType::Ed25519 && p.derived {
                    let seed = keys::derive(&p, &e, &context, 32)?;
                    let kp = aws_lc_rs::signature::Ed25519KeyPair::from_seed_unchecked(&seed)
                        .map_err(|cause| LogicalError::internal("error deriving key").with_source(cause))?;
                    use aws_lc_rs::signature::KeyPair;
                    Some(kp.public_key().as_ref().to_vec())
                } else {
                    None
                };
                ops::verify(t, &e, derived_public.as_deref(), &data, &sig_bytes, &opts)
            }
            .await;
            results.push(r);
        }
        verify_response(batch.is_some(), results, items.iter().map(|i| i.3.clone()).collect())
    }

    // ---- hash, random, config/keys ----

    fn hash(d: &FieldData) -> Result<Option<Response>> {
        let name = algorithm_field(d, &["urlalgorithm", "algorithm"]);
        let alg = match HashAlg::parse(&name) {
            Some(a) if !matches!(a, HashAlg::Sha1 | HashAlg::None) => a,
            _ => return Err(bad(format!("unsupported algorithm {name}"))),
        };
        let format = str_field(d, "format");
        if format != "hex" && format != "base64" {
            return Err(bad(format!("unsupported encoding format {format}; must be \"hex\" or \"base64\"")));
        }
        let input =
            b64_decode(str_field(d, "input")).map_err(|e| bad(format!("unable to decode input as base64: {e}")))?;
        let sum = alg.digest(&input);
        let out = if format == "hex" { hex::encode(sum) } else { B64.encode(sum) };
        Ok(response(vec![("sum", out.into())]))
    }

    fn random(d: &FieldData) -> Result<Option<Response>> {
        let mut warnings = vec![];
        match str_field(d, "source") {
            "" | "platform" | "all" => {}
            "seal" => {
                warnings.push("no seal/entropy augmentation available, using platform entropy source".to_string())
            }
            other => {
                return Err(bad(format!(
                    "unsupported entropy source {other:?}; must be \"platform\" or \"seal\", or \"all\""
                )))
            }
        }
        let bytes = match str_field(d, "urlbytes") {
            "" => d.int("bytes").unwrap_or(32),
            s => s.parse::<i64>().map_err(|e| bad(format!("error parsing url-set byte count: {e}")))?,
        };
        if bytes < 1 {
            return Err(bad("bytes cannot be less than 1"));
        }
        if bytes > 128 * 1024 {
            return Err(bad("bytes cannot be more than 131072"));
        }
        let format = str_field(d, "format");
        if format != "hex" && format != "base64" {
            return Err(bad(format!("unsupported encoding format {format}; must be \"hex\" or \"base64\"")));
        }
        let buf = keys::random(bytes as usize)?;
        let out = if format == "hex" { hex::encode(buf.as_slice()) } else { B64.encode(buf.as_slice()) };
        let mut r = Response::data(Map::from_iter([("random_bytes".to_string(), Value::String(out))]));
        r.warnings = warnings;
        Ok(Some(r))
    }

    /// The stored cache size (`cache-config`); 0 when never set.
    async fn stored_cache_size(&self, s: &dyn StorageView) -> Result<i64> {
        Ok(match s.get(CACHE_CONFIG_KEY).await? {
            Some(raw) => serde_json::from_slice::<Value>(&raw)
                .ok()
                .and_then(|v| v.get("size").and_then(Value::as_i64))
                .unwrap_or(0),
            None => 0,
        })
    }

    /// Bounds both key caches by `size` (0: Coffer's default bound).
    fn apply_cache_size(&self, size: i64) {
        let n = if size > 0 { usize::try_from(size).unwrap_or(usize::MAX) } else { KEY_CACHE_CAPACITY };
        self.policies.set_capacity(n);
        self.versions.set_capacity(n);
    }

    /// Applies the stored cache size once, on the mount's first request.
    async fn load_cache_size(&self, s: &dyn StorageView) -> Result<()> {
        use std::sync::atomic::Ordering;
        if !self.cache_size_loaded.load(Ordering::Acquire) {
            self.apply_cache_size(self.stored_cache_size(s).await?);
            self.cache_size_loaded.store(true, Ordering::Release);
        }
        Ok(())
    }

    /// `cache-config`: the size of the key cache, as OpenBao serves it (0, or at least 10;
    /// a write without `size` sets 0). Unlike OpenBao, a new size applies at once.
    async fn cache_config(&self, s: &dyn StorageView, op: Operation, d: &FieldData) -> Result<Option<Response>> {
        if op == Operation::Update {
            let size = d.int("size").unwrap_or(0);
            if size != 0 && size < 10 {
                return Err(bad("size must be 0 or a value greater or equal to 10"));
            }
            let _g = self.write_lock.lock().await;
            s.put(CACHE_CONFIG_KEY, json!({ "size": size }).to_string().as_bytes()).await?;
            self.apply_cache_size(size);
        }
        Ok(response(vec![("size", self.stored_cache_size(s).await?.into())]))
    }

    async fn config_keys(&self, s: &dyn StorageView, op: Operation, d: &FieldData) -> Result<Option<Response>> {
        if op == Operation::Update {
            let v = json!({"disable_upsert": d.bool("disable_upsert").unwrap_or(false)});
            s.put("config/keys", v.to_string().as_bytes()).await?;
        }
        Ok(response(vec![("disable_upsert", self.upsert_disabled(s).await?.into())]))
    }
}

fn hmac_key(p: &Policy, e: &KeyEntry) -> Result<Secret> {
    let k = if p.key_type == KeyType::Hmac { e.key.as_ref() } else { e.hmac_key.as_ref() };
    k.cloned().ok_or_else(|| bad("no HMAC key exists for that key version"))
}

/// The first non-empty of the named fields (URL form first), else sha2-256.
fn algorithm_field(d: &FieldData, names: &[&str]) -> String {
    for n in names {
        if let Some(v) = d.str(n).filter(|v| !v.is_empty()) {
            if *n == "urlalgorithm" || d.is_set(n) {
                return v.to_string();
            }
        }
    }
    "sha2-256".to_string()
}

fn verify_response(batch: bool, results: Vec<ItemResult<bool>>, references: Vec<String>) -> Result<Option<Response>> {
    if batch {
        let list: Vec<Value> = results
            .into_iter()
            .zip(references)
            .map(|(r, reference)| match r {
                Ok(valid) => json!({"valid": valid, "reference": reference}),
                Err(e) => json!({"valid": false, "error": e.to_string(), "reference": reference}),
            })
            .collect();
        return Ok(response(vec![("batch_results", Value::Array(list))]));
    }
    let mut results = results;
    Ok(response(vec![("valid", results.remove(0)?.into())]))
}

/// One version's key material in the requested export form.
fn export_one(t: KeyType, e: &KeyEntry, kind: &str, format: &str) -> Result<Zeroizing<String>> {
    let pem_trimmed = |label: &str, der: &[u8]| Zeroizing::new(der::pem(label, der).trim_end().to_string());
    let b64 = |b: &[u8]| Zeroizing::new(B64.encode(b));
    let rsa = |format: &str| -> Result<Zeroizing<String>> {
        let pkcs1 = e.rsa.as_ref().ok_or_else(|| LogicalError::internal("key version has no private part"))?;
        match format {
            "" => Ok(der::pem("RSA PRIVATE KEY", pkcs1)),
            "der" => Ok(b64(&der::rsa_pkcs8(pkcs1))),
            "pem" => Ok(der::pem("PRIVATE KEY", &der::rsa_pkcs8(pkcs1))),
            _ => Err(bad("unknown key format for rsa key; supported values are ``, `der`, or `pem`")),
        }
    };
    match kind {
        "hmac-key" => {
            if format == "der" || format == "pem" {
                return Err(bad("unknown format for HMAC key; supported values are `` or `raw`"));
            }
            let k = if t == KeyType::Hmac { e.key.as_ref() } else { e.hmac_key.as_ref() };
            Ok(b64(k.ok_or_else(|| LogicalError::internal("no HMAC key"))?))
        }
        "encryption-key" if t.is_aead() => {
            if format == "der" || format == "pem" {
                return Err(bad("unknown format for HMAC key; supported values are `` or `raw`"));
            }
            Ok(b64(e.key.as_ref().ok_or_else(|| LogicalError::internal("no key"))?))
        }
        "encryption-key" | "signing-key" if t.is_rsa() => rsa(format),
        "signing-key" if t.is_ecdsa() => {
            let c = keys::curve(t).ok_or_else(|| LogicalError::internal("curve"))?;
            let d = e.ec_d.as_ref().ok_or_else(|| LogicalError::internal("key version has no private part"))?;
            let point = e.ec_point(&c).ok_or_else(|| LogicalError::internal("no public point"))?;
            let d = keys::pad(d, c.len);
            match format {
                "" => Ok(pem_trimmed("EC PRIVATE KEY", &der::ec_private(c.oid, &d, &point, true))),
                "der" => Ok(b64(&der::ec_pkcs8(c.oid, &d, &point))),
                "pem" => Ok(pem_trimmed("PRIVATE KEY", &der::ec_pkcs8(c.oid, &d, &point))),
                _ => Err(bad("unknown key format for ec key; supported values are ``, `der`, or `pem`")),
            }
        }
        "signing-key" if t == KeyType::Ed25519 => {
            let k = e.key.as_ref().ok_or_else(|| LogicalError::internal("key version has no private part"))?;
            match format {
                "" | "raw" => Ok(b64(k)),
                "der" => Ok(b64(&der::ed25519_pkcs8(&k[..32]))),
                _ => Ok(pem_trimmed("PRIVATE KEY", &der::ed25519_pkcs8(&k[..32]))),
            }
        }
        "public-key" if t.is_ecdsa() => {
            let c = keys::curve(t).ok_or_else(|| LogicalError::internal("curve"))?;
            let point = e.ec_point(&c).ok_or_else(|| LogicalError::internal("no public point"))?;
            let spki = der::ec_spki(c.oid, &point);
            match format {
                "" | "pem" => Ok(pem_trimmed("PUBLIC KEY", &spki)),
                "der" => Ok(b64(&spki)),
                _ => Err(bad("unknown key format for ec key; supported values are ``, `der`, or `pem`")),
            }
        }
        "public-key" if t == KeyType::Ed25519 => {
            let public = e.ed25519_public()?;
            match format {
                "" | "raw" => Ok(b64(&public)),
                "der" => Ok(b64(&der::ed25519_spki(&public))),
                _ => Ok(pem_trimmed("PUBLIC KEY", &der::ed25519_spki(&public))),
            }
        }
        "public-key" if t.is_rsa() => {
            let spki = e.rsa_spki()?;
            match format {
                "" | "pem" => Ok(der::pem("PUBLIC KEY", &spki)),
                "der" => Ok(b64(&spki)),
                _ => Err(bad("unknown key format for rsa key; supported values are ``, `der`, or `pem`")),
            }
        }
        _ => Err(bad(format!("unknown key type {} for export type {kind}", t.as_str()))),
    }
}

#[async_trait]
impl Handler for Transit {
    type Route = Route;

    fn backend_type(&self) -> &'static str {
        "transit"
    }

    fn paths(&self) -> &Paths<Route> {
        &self.paths
    }

    async fn handle(&self, route: Route, req: Request, fields: FieldData) -> Result<Option<Response>> {
        let mut out = self.dispatch(route, req, &fields).await?;
        // As OpenBao: a batch in which any item failed answers 400, with every item's result.
        if let Some(r) = out.as_mut() {
            let failed =
                r.data.as_ref().and_then(|d| d.get("batch_results")).and_then(Value::as_array).is_some_and(|items| {
                    items.iter().any(|i| i.get("error").and_then(Value::as_str).is_some_and(|e| !e.is_empty()))
                });
            if failed {
                r.status = coffer_sdk::ResponseStatus::Error(coffer_sdk::ErrorKind::BadRequest);
            }
        }
        Ok(out)
    }

    /// `encrypt/<name>` writes to a missing key are "create" (the key is made on the fly).
    async fn exists(&self, route: Route, req: &Request, fields: &FieldData) -> Result<Option<bool>> {
        if route != Route::Encrypt {
            return Ok(None);
        }
        // The path has no read, so the check may come without its captured fields.
        let Some(name) = fields.str("name").or_else(|| req.path.strip_prefix("encrypt/")) else {
            return Ok(None);
        };
        Ok(Some(self.policy(req.storage.as_ref(), name).await?.is_some()))
    }
}

impl Transit {
    /// Whether a request may change a key's settings or versions (the key cache is emptied
    /// after it). Operations that only use keys read them through the cache.
    fn changes_keys(route: Route, op: Operation) -> bool {
        match route {
            Route::Key => op != Operation::Read,
            // An encrypt "create" makes a missing key on the fly.
            Route::Encrypt => op == Operation::Create,
            Route::KeyConfig | Route::Rotate | Route::Trim | Route::Backup | Route::Restore => true,
            Route::ListKeys
            | Route::Export
            | Route::Decrypt
            | Route::Rewrap
            | Route::Datakey
            | Route::Hmac
            | Route::Sign
            | Route::Verify
            | Route::Hash
            | Route::Random
            | Route::ConfigKeys
            | Route::CacheConfig => false,
        }
    }

    async fn dispatch(&self, route: Route, req: Request, fields: &FieldData) -> Result<Option<Response>> {
        self.load_cache_size(req.storage.as_ref()).await?;
        let out = self.run(route, fields, &req).await;
        if Self::changes_keys(route, req.operation) {
            // Whether or not it succeeded: a failed change may have written part of its work.
            self.invalidate();
        }
        out
    }

    async fn run(&self, route: Route, d: &FieldData, req: &Request) -> Result<Option<Response>> {
        let s: &dyn StorageView = req.storage.as_ref();
        let op = req.operation;
        match (route, op) {
            (Route::ListKeys, _) => {
                let names = keys::list_policies(s).await?;
                Ok(if names.is_empty() { None } else { Some(Response::list(names)) })
            }
            (Route::Key, Operation::Read) => self.key_read(s, d).await,
            (Route::Key, Operation::Delete) => self.key_delete(s, d).await,
            (Route::Key, _) => self.key_create(s, d).await,
            (Route::KeyConfig, _) => self.key_config(s, d).await,
            (Route::Rotate, _) => self.key_rotate(s, d).await,
            (Route::Trim, _) => self.key_trim(s, d).await,
            (Route::Export, _) => self.export(s, d).await,
            (Route::Backup, _) => self.backup(s, d).await,
            (Route::Restore, _) => self.restore(s, d).await,
            (Route::Encrypt, _) => self.encrypt(s, op, d).await,
            (Route::Decrypt, _) => self.decrypt(s, d).await,
            (Route::Rewrap, _) => self.rewrap(s, d).await,
            (Route::Datakey, _) => self.datakey(s, d).await,
            (Route::Hmac, _) => self.hmac(s, d).await,
            (Route::Sign, _) => self.sign(s, d).await,
            (Route::Verify, _) => self.verify(s, d).await,
            (Route::Hash, _) => Self::hash(d),
            (Route::Random, _) => Self::random(d),
            (Route::ConfigKeys, _) => self.config_keys(s, op, d).await,
            (Route::CacheConfig, _) => self.cache_config(s, op, d).await,
        }
    }
}

#[cfg(test)]
mod cache_size_tests {
    use super::*;
    use coffer_sdk::framework::Backend as Framework;
    use coffer_sdk::testing::MapView;
    use coffer_sdk::Backend;
    use std::sync::Arc;

    fn req(s: &Arc<MapView>, op: Operation, path: &str, data: Value) -> Request {
        Request {
            operation: op,
            path: path.into(),
            data: data.as_object().cloned().unwrap_or_default(),
            mount_point: "transit/".into(),
            storage: s.clone(),
            system: coffer_sdk::SystemInfo::default(),
            remote_addr: None,
            services: None,
            client_certs: None,
            display_name: String::new(),
            entity_id: String::new(),
        }
    }

    #[tokio::test]
    async fn the_cache_size_bounds_both_key_caches_at_once_and_after_a_restart() {
        let s = Arc::new(MapView::default());
        let t = Framework::new(Transit::new());
        assert_eq!(t.0.policies.capacity(), KEY_CACHE_CAPACITY);
        t.handle_request(req(&s, Operation::Update, "cache-config", json!({"size": 12}))).await.unwrap();
        assert_eq!((t.0.policies.capacity(), t.0.versions.capacity()), (12, 12));
        // A new instance of the mount (unseal, restart) applies the stored size on its first request.
        let t2 = Framework::new(Transit::new());
        t2.handle_request(req(&s, Operation::Read, "cache-config", json!({}))).await.unwrap();
        assert_eq!((t2.0.policies.capacity(), t2.0.versions.capacity()), (12, 12));
        // 0 is Coffer's default bound.
        t2.handle_request(req(&s, Operation::Update, "cache-config", json!({"size": 0}))).await.unwrap();
        assert_eq!(t2.0.policies.capacity(), KEY_CACHE_CAPACITY);
    }
}

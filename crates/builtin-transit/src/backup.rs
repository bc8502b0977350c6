//! Key backups in OpenBao's format: base64 of a JSON document `{"policy": …, "archived_keys":
//! {"keys": […]}}` whose field names, numeric key types and big-integer encodings (ECDSA and RSA
//! components as bare decimal JSON numbers, durations in nanoseconds) are Go's, so a backup
//! taken on either server restores on the other.

use crate::der;
use crate::keys::{curve, pad, EventInfo, KeyEntry, KeyType, Policy, Secret};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use coffer_sdk::{LogicalError, Result};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::collections::BTreeMap;
use zeroize::Zeroizing;

type Big = Box<RawValue>;

#[derive(Serialize, Deserialize)]
struct GoInfo {
    time: String,
    version: i64,
}

#[allow(non_snake_case)]
#[derive(Serialize, Deserialize)]
struct GoPrecomputed {
    #[serde(default)]
    Dp: Option<Big>,
    #[serde(default)]
    Dq: Option<Big>,
    #[serde(default)]
    Qinv: Option<Big>,
    #[serde(default)]
    CRTValues: Option<Vec<serde_json::Value>>,
}

#[allow(non_snake_case)]
#[derive(Serialize, Deserialize)]
struct GoRsaKey {
    N: Big,
    E: Big,
    D: Big,
    Primes: Vec<Big>,
    #[serde(default)]
    Precomputed: Option<GoPrecomputed>,
}

#[allow(non_snake_case)]
#[derive(Serialize, Deserialize)]
struct GoRsaPublic {
    N: Big,
    E: Big,
}

#[derive(Serialize, Deserialize)]
struct GoKeyEntry {
    #[serde(default)]
    key: Option<Zeroizing<String>>,
    #[serde(default)]
    hmac_key: Option<Zeroizing<String>>,
    #[serde(default)]
    time: String,
    #[serde(default)]
    ec_x: Option<Big>,
    #[serde(default)]
    ec_y: Option<Big>,
    #[serde(default)]
    ec_d: Option<Big>,
    #[serde(default)]
    rsa_key: Option<GoRsaKey>,
    #[serde(default)]
    rsa_public_key: Option<GoRsaPublic>,
    #[serde(default)]
    public_key: String,
    #[serde(default)]
    convergent_version: i64,
    #[serde(default)]
    creation_time: i64,
    #[serde(default)]
    certificate_chain: Option<Vec<String>>,
    #[serde(default)]
    external_key_ref: String,
}

#[allow(non_snake_case)]
#[derive(Serialize, Deserialize)]
struct GoPolicy {
    name: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    key_size: i64,
    #[serde(default)]
    keys: BTreeMap<String, GoKeyEntry>,
    #[serde(default)]
    derived: bool,
    #[serde(default)]
    kdf: i64,
    #[serde(default)]
    convergent_encryption: bool,
    #[serde(default)]
    exportable: bool,
    #[serde(default)]
    min_decryption_version: i64,
    #[serde(default)]
    min_encryption_version: i64,
    #[serde(default)]
    latest_version: i64,
    #[serde(default)]
    archive_version: i64,
    #[serde(default)]
    archive_min_version: i64,
    #[serde(default)]
    min_available_version: i64,
    #[serde(default)]
    deletion_allowed: bool,
    #[serde(default)]
    convergent_version: i64,
    #[serde(rename = "type", default)]
    key_type: i64,
    #[serde(default)]
    backup_info: Option<GoInfo>,
    #[serde(default)]
    restore_info: Option<GoInfo>,
    #[serde(default)]
    allow_plaintext_backup: bool,
    #[serde(default)]
    version_template: String,
    #[serde(default)]
    storage_prefix: String,
    /// Nanoseconds (Go's time.Duration).
    #[serde(default)]
    auto_rotate_period: i64,
    #[serde(default)]
    Imported: bool,
    #[serde(default)]
    AllowImportedKeyRotation: bool,
    #[serde(default)]
    soft_deleted: bool,
}

#[derive(Serialize, Deserialize)]
struct GoArchive {
    #[serde(default)]
    keys: Vec<GoKeyEntry>,
}

#[derive(Serialize, Deserialize)]
struct KeyData {
    policy: GoPolicy,
    #[serde(default)]
    archived_keys: Option<GoArchive>,
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

/// Big-endian magnitude to decimal digits (schoolbook; backups only).
pub(crate) fn to_decimal(be: &[u8]) -> Zeroizing<String> {
    // Little-endian base-2^32 limbs.
    let mut limbs: Zeroizing<Vec<u32>> = Zeroizing::new(Vec::with_capacity(be.len() / 4 + 1));
    for chunk in be.rchunks(4) {
        let mut v = 0u32;
        for b in chunk {
            v = (v << 8) | *b as u32;
        }
        limbs.push(v);
    }
    while limbs.last() == Some(&0) {
        limbs.pop();
    }
    if limbs.is_empty() {
        return Zeroizing::new("0".to_string());
    }
    let mut groups: Zeroizing<Vec<u32>> = Zeroizing::new(Vec::new());
    while !limbs.is_empty() {
        let mut rem = 0u64;
        for l in limbs.iter_mut().rev() {
            let cur = (rem << 32) | *l as u64;
            *l = (cur / 1_000_000_000) as u32;
            rem = cur % 1_000_000_000;
        }
        groups.push(rem as u32);
        while limbs.last() == Some(&0) {
            limbs.pop();
        }
    }
    let mut out = Zeroizing::new(String::with_capacity(groups.len() * 9));
    for (i, g) in groups.iter().rev().enumerate() {
        if i == 0 {
            out.push_str(&g.to_string());
        } else {
            out.push_str(&format!("{g:09}"));
        }
    }
    out
}

/// Decimal digits to a big-endian magnitude (no leading zeros; empty for zero).
pub(crate) fn from_decimal(s: &str) -> Option<Secret> {
    let s = s.trim();
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut limbs: Zeroizing<Vec<u32>> = Zeroizing::new(Vec::new());
    for chunk in s.as_bytes().chunks(9) {
        let mut mul = 1u64;
        let mut add = 0u64;
        for d in chunk {
            mul *= 10;
            add = add * 10 + (d - b'0') as u64;
        }
        let mut carry = add;
        for l in limbs.iter_mut() {
            let cur = *l as u64 * mul + carry;
            *l = cur as u32;
            carry = cur >> 32;
        }
        if carry > 0 {
            limbs.push(carry as u32);
        }
    }
    let mut out = Zeroizing::new(Vec::with_capacity(limbs.len() * 4));
    for l in limbs.iter().rev() {
        out.extend_from_slice(&l.to_be_bytes());
    }
    let start = out.iter().take_while(|b| **b == 0).count();
    out.drain(..start);
    Some(out)
}

fn big(be: &[u8]) -> Result<Big> {
    RawValue::from_string(to_decimal(be).to_string())
        .map_err(|cause| LogicalError::internal("encoding a backup").with_source(cause))
}

fn unbig(v: &RawValue, what: &str) -> Result<Secret> {
    from_decimal(v.get()).ok_or_else(|| bad(&format!("invalid {what} in backup")))
}

fn bad(msg: &str) -> LogicalError {
    LogicalError::bad_request(msg.to_string())
}

fn go_entry(t: KeyType, e: &KeyEntry) -> Result<GoKeyEntry> {
    let b64 = |v: &Option<Secret>| v.as_ref().map(|b| Zeroizing::new(B64.encode(b.as_slice())));
    let mut g = GoKeyEntry {
        key: b64(&e.key),
        hmac_key: b64(&e.hmac_key),
        time: e.time.clone(),
        ec_x: None,
        ec_y: None,
        ec_d: None,
        rsa_key: None,
        rsa_public_key: None,
        public_key: e.public_key.clone(),
        convergent_version: e.convergent_version,
        creation_time: e.creation_time,
        certificate_chain: None,
        external_key_ref: String::new(),
    };
    if t.is_ecdsa() {
        g.ec_x = e.ec_x.as_deref().map(|v| big(v)).transpose()?;
        g.ec_y = e.ec_y.as_deref().map(|v| big(v)).transpose()?;
        g.ec_d = e.ec_d.as_deref().map(|v| big(v)).transpose()?;
    }
    if let Some(pkcs1) = &e.rsa {
        let p = der::parse_rsa_private(pkcs1).ok_or_else(|| LogicalError::internal("stored RSA key is invalid"))?;
        g.rsa_key = Some(GoRsaKey {
            N: big(&p.n)?,
            E: big(&p.e)?,
            D: big(&p.d)?,
            Primes: vec![big(&p.p)?, big(&p.q)?],
            Precomputed: Some(GoPrecomputed {
                Dp: Some(big(&p.dp)?),
                Dq: Some(big(&p.dq)?),
                Qinv: Some(big(&p.qinv)?),
                CRTValues: Some(vec![]),
            }),
        });
    }
    Ok(g)
}

fn empty_go_entry() -> GoKeyEntry {
    GoKeyEntry {
        key: None,
        hmac_key: None,
        time: "0001-01-01T00:00:00Z".into(),
        ec_x: None,
        ec_y: None,
        ec_d: None,
        rsa_key: None,
        rsa_public_key: None,
        public_key: String::new(),
        convergent_version: 0,
        creation_time: 0,
        certificate_chain: None,
        external_key_ref: String::new(),
    }
}

/// Builds the backup string (base64 of the JSON document) for a key and its versions
/// `min_available_version..=latest_version`.
pub fn encode(p: &Policy, entries: &BTreeMap<i64, KeyEntry>) -> Result<Zeroizing<String>> {
    let mut keys = BTreeMap::new();
    let first = p.min_available_version.max(1);
    let mut archive = Vec::new();
    if p.min_available_version == 0 {
        archive.push(empty_go_entry());
    }
    for v in first..=p.latest_version {
        let e = entries.get(&v).ok_or_else(|| LogicalError::internal(format!("key version {v} is missing")))?;
        archive.push(go_entry(p.key_type, e)?);
        if v >= p.min_decryption_version {
            keys.insert(v.to_string(), go_entry(p.key_type, e)?);
        }
    }
    let info = |i: &Option<EventInfo>| i.as_ref().map(|i| GoInfo { time: i.time.clone(), version: i.version });
    let doc = KeyData {
        policy: GoPolicy {
            name: p.name.clone(),
            key_size: p.key_size,
            keys,
            derived: p.derived,
            kdf: p.kdf,
            convergent_encryption: p.convergent_encryption,
            exportable: p.exportable,
            min_decryption_version: p.min_decryption_version,
            min_encryption_version: p.min_encryption_version,
            latest_version: p.latest_version,
            archive_version: p.latest_version,
            archive_min_version: p.min_available_version,
            min_available_version: p.min_available_version,
            deletion_allowed: p.deletion_allowed,
            convergent_version: p.convergent_version,
            key_type: p.key_type.openbao_id(),
            backup_info: info(&p.backup_info),
            restore_info: info(&p.restore_info),
            allow_plaintext_backup: p.allow_plaintext_backup,
            version_template: String::new(),
            storage_prefix: String::new(),
            auto_rotate_period: p.auto_rotate_period.saturating_mul(1_000_000_000),
            Imported: p.imported,
            AllowImportedKeyRotation: false,
            soft_deleted: false,
        },
        archived_keys: Some(GoArchive { keys: archive }),
    };
    let json = Zeroizing::new(
        serde_json::to_vec(&doc).map_err(|cause| LogicalError::internal("encoding a backup").with_source(cause))?,
    );
    Ok(Zeroizing::new(B64.encode(json.as_slice())))
}

fn entry_from_go(t: KeyType, v: i64, g: &GoKeyEntry) -> Result<KeyEntry> {
    let unb64 = |s: &Option<Zeroizing<String>>, what: &str| -> Result<Option<Secret>> {
        match s {
            None => Ok(None),
            Some(s) => B64
                .decode(s.as_bytes())
                .map(|b| Some(Zeroizing::new(b)))
                // drop-cause: a base64 error quotes a byte of the key material.
                .map_err(|_| bad(&format!("invalid {what} for key version {v} in backup"))),
        }
    };
    let mut e = KeyEntry {
        key: unb64(&g.key, "key")?,
        hmac_key: unb64(&g.hmac_key, "hmac_key")?,
        time: g.time.clone(),
        creation_time: g.creation_time,
        public_key: g.public_key.clone(),
        convergent_version: g.convergent_version,
        ..Default::default()
    };
    let missing = || bad(&format!("backup has no private key material for version {v}"));
    match t {
        _ if t.is_aead() => {
            if e.key.as_ref().map(|k| k.len()) != Some(t.aead_key_len()) {
                return Err(missing());
            }
        }
        KeyType::Hmac => {
            if e.key.as_ref().is_none_or(|k| k.len() < 32) {
                return Err(missing());
            }
        }
        KeyType::Ed25519 => {
            let key = e.key.as_ref().ok_or_else(missing)?;
            if key.len() != 64 {
                return Err(missing());
            }
            if e.public_key.is_empty() {
                e.public_key = B64.encode(&key[32..]);
            }
        }
        _ if t.is_ecdsa() => {
            let c = curve(t).ok_or_else(|| LogicalError::internal("curve"))?;
            let (Some(x), Some(y), Some(d)) = (&g.ec_x, &g.ec_y, &g.ec_d) else {
                return Err(missing());
            };
            e.ec_x = Some(pad(&unbig(x, "ec_x")?, c.len));
            e.ec_y = Some(pad(&unbig(y, "ec_y")?, c.len));
            e.ec_d = Some(pad(&unbig(d, "ec_d")?, c.len));
            if e.public_key.is_empty() {
                let point = e.ec_point(&c).ok_or_else(missing)?;
                e.public_key = der::pem("PUBLIC KEY", &der::ec_spki(c.oid, &point)).to_string();
            }
            // Proves the point and scalar belong together before accepting them.
            e.ecdsa_keypair(t, false)
                .map_err(|cause| bad(&format!("invalid ECDSA key for version {v} in backup")).with_source(cause))?;
        }
        _ if t.is_rsa() => {
            let r = g.rsa_key.as_ref().ok_or_else(missing)?;
            if r.Primes.len() != 2 {
                return Err(bad("multi-prime RSA keys are not supported"));
            }
            let pre = r.Precomputed.as_ref().ok_or_else(|| bad("RSA key in backup lacks precomputed values"))?;
            let (Some(dp), Some(dq), Some(qinv)) = (&pre.Dp, &pre.Dq, &pre.Qinv) else {
                return Err(bad("RSA key in backup lacks precomputed values"));
            };
            let parts = der::RsaParts {
                n: unbig(&r.N, "N")?,
                e: unbig(&r.E, "E")?,
                d: unbig(&r.D, "D")?,
                p: unbig(&r.Primes[0], "prime")?,
                q: unbig(&r.Primes[1], "prime")?,
                dp: unbig(dp, "Dp")?,
                dq: unbig(dq, "Dq")?,
                qinv: unbig(qinv, "Qinv")?,
            };
            e.rsa = Some(der::rsa_private(&parts));
            let kp = e
                .rsa_keypair()
                .map_err(|cause| bad(&format!("invalid RSA key for version {v} in backup")).with_source(cause))?;
            if kp.public_modulus_len() * 8 != t.rsa_bits() {
                return Err(bad(&format!("RSA key size of version {v} does not match the key type")));
            }
        }
        _ => return Err(missing()),
    }
    Ok(e)
}

/// Parses a backup string into the key settings and its versions.
pub fn decode(backup: &str) -> Result<(Policy, BTreeMap<i64, KeyEntry>)> {
    let raw = Zeroizing::new(B64.decode(backup.trim().as_bytes()).map_err(|e| bad(&e.to_string()))?);
    let doc: KeyData = serde_json::from_slice(&raw).map_err(|e| bad(&format!("invalid backup: {e}")))?;
    let g = doc.policy;
    let t = KeyType::from_openbao_id(g.key_type)
        .ok_or_else(|| bad(&format!("key type {} in backup is not supported by this server", g.key_type)))?;
    if !g.version_template.is_empty() && g.version_template != "vault:v{{version}}:" {
        return Err(bad("custom version templates are not supported"));
    }
    if g.latest_version < 1 {
        return Err(bad("backup has no key versions"));
    }
    let mut p = Policy::new(&g.name, t);
    p.derived = g.derived;
    p.kdf = g.kdf;
    p.convergent_encryption = g.convergent_encryption;
    p.convergent_version = g.convergent_version;
    p.exportable = g.exportable;
    p.allow_plaintext_backup = g.allow_plaintext_backup;
    p.deletion_allowed = g.deletion_allowed;
    p.min_decryption_version = g.min_decryption_version.max(1);
    p.min_encryption_version = g.min_encryption_version;
    p.min_available_version = g.min_available_version;
    p.latest_version = g.latest_version;
    p.auto_rotate_period = g.auto_rotate_period / 1_000_000_000;
    p.key_size = g.key_size;
    p.imported = g.Imported;
    p.backup_info = g.backup_info.map(|i| EventInfo { time: i.time, version: i.version });
    p.restore_info = g.restore_info.map(|i| EventInfo { time: i.time, version: i.version });
    let archive = doc.archived_keys.map(|a| a.keys).unwrap_or_default();
    let mut entries = BTreeMap::new();
    for v in p.min_available_version.max(1)..=p.latest_version {
        let from_archive = usize::try_from(v - p.min_available_version).ok().and_then(|i| archive.get(i));
        let go =
            g.keys.get(&v.to_string()).or(from_archive).ok_or_else(|| bad(&format!("backup lacks key version {v}")))?;
        entries.insert(v, entry_from_go(t, v, go)?);
    }
    if t == KeyType::Hmac && p.key_size == 0 {
        p.key_size = entries.values().last().and_then(|e| e.key.as_ref()).map(|k| k.len() as i64).unwrap_or(0);
    }
    Ok((p, entries))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_conversion_round_trips() {
        for hex_in in ["", "01", "ff", "0100000000", "123456789abcdef0123456789abcdef"] {
            let be =
                hex::decode(if hex_in.len() % 2 == 1 { format!("0{hex_in}") } else { hex_in.to_string() }).unwrap();
            let dec = to_decimal(&be);
            let back = from_decimal(&dec).unwrap();
            let stripped: Vec<u8> = be.iter().copied().skip_while(|b| *b == 0).collect();
            assert_eq!(back.as_slice(), stripped.as_slice(), "{hex_in} -> {}", dec.as_str());
        }
        assert_eq!(to_decimal(&[0x01, 0x00]).as_str(), "256");
        assert_eq!(to_decimal(&hex::decode("0de0b6b3a7640000").unwrap()).as_str(), "1000000000000000000");
        assert_eq!(from_decimal("1000000000000000000").unwrap().as_slice(), hex::decode("0de0b6b3a7640000").unwrap());
        assert!(from_decimal("12a").is_none());
    }
}

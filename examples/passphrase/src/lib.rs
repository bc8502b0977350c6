#![forbid(unsafe_code)]
//! `passphrase`: a small secrets engine that issues random passphrases, shipped as an external
//! plugin (see `main.rs`) to show and test Coffer's plugin protocol end to end.
//!
//! Words come from a generated list: every consonant-vowel-consonant-vowel-consonant
//! combination of 16 consonants and 5 vowels (102 400 pronounceable words, 16.6 bits each),
//! picked with the operating system's random generator. When a password policy is configured,
//! the host generates the secret instead (through the plugin protocol's system view).
//!
//! | path | operations |
//! |---|---|
//! | `config` | read, write: `words`, `separator`, `ttl`, `password_policy` |
//! | `gen` | read: a passphrase with the configured settings; write: with `words`/`separator` overridden |
//! | `issued/` | list the ids of issued passphrases |
//! | `issued/<id>` | read (passphrase and metadata), delete |
//!
//! Storage (the mount's own view), all JSON: `config`, `issued/<id>`. With a `ttl`, each
//! passphrase is leased: revoking the lease deletes its record.

use async_trait::async_trait;
use coffer_sdk::field::FieldType;
use coffer_sdk::framework::{FieldData, FieldSpec, Handler, PathFlags, PathSpec, Paths};
use coffer_sdk::{LogicalError, Operation, Request, Response, Result, SecretLease, StorageView};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::time::{SystemTime, UNIX_EPOCH};

const CONSONANTS: &[u8] = b"bdfghjklmnprstvz";
const VOWELS: &[u8] = b"aeiou";
const MIN_WORDS: i64 = 3;
const MAX_WORDS: i64 = 24;
const MAX_SEPARATOR: usize = 4;

/// Number of words in the generated list.
pub const WORD_COUNT: u32 = 16 * 5 * 16 * 5 * 16;

/// The `index`-th word of the list (`index < WORD_COUNT`).
pub fn word(index: u32) -> String {
    let mut i = index % WORD_COUNT;
    let mut out = [0u8; 5];
    for (pos, slot) in out.iter_mut().enumerate().rev() {
        let alphabet = if pos % 2 == 0 { CONSONANTS } else { VOWELS };
        let n = alphabet.len() as u32;
        *slot = alphabet[(i % n) as usize];
        i /= n;
    }
    out.iter().map(|&b| b as char).collect()
}

/// Bits of entropy of a passphrase of `words` words.
pub fn entropy_bits(words: i64) -> f64 {
    ((words as f64) * f64::from(WORD_COUNT).log2() * 10.0).round() / 10.0
}

/// A uniformly random number below `n` (rejection sampling: no modulo bias).
fn random_below(n: u32) -> Result<u32> {
    let zone = u32::MAX - (u32::MAX % n);
    loop {
        let mut b = [0u8; 4];
        aws_lc_rs::rand::fill(&mut b).map_err(|_| LogicalError::internal("random generator failed"))?;
        let v = u32::from_le_bytes(b);
        if v < zone {
            return Ok(v % n);
        }
    }
}

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Config {
    words: i64,
    separator: String,
    /// Seconds; 0 = passphrases are not leased.
    ttl: i64,
    /// A host password policy to generate secrets with, instead of words.
    #[serde(default)]
    password_policy: String,
}

impl Default for Config {
    fn default() -> Self {
        Config { words: 6, separator: "-".into(), ttl: 0, password_policy: String::new() }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Issued {
    id: String,
    passphrase: String,
    /// 0 when a password policy generated it.
    words: i64,
    created_unix: i64,
    #[serde(default)]
    expires_unix: i64,
}

/// The paths of the engine, one variant per row of [`path_specs`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Config,
    Gen,
    List,
    Issued,
}

fn path_specs() -> Vec<(Route, PathSpec)> {
    let words = || FieldSpec::new("words", FieldType::Int, "Number of words in a passphrase (3 to 24)");
    let sep = || FieldSpec::new("separator", FieldType::String, "Text between words (at most 4 characters)");
    vec![
        (
            Route::Config,
            PathSpec {
                flags: PathFlags::NORMAL,
                pattern: "config",
                fields: vec![
                    words(),
                    sep(),
                    FieldSpec::new(
                        "ttl",
                        FieldType::DurationSecond,
                        "Lease duration of issued passphrases; 0 = no lease",
                    ),
                    FieldSpec::new(
                        "password_policy",
                        FieldType::String,
                        "Generate with this host password policy instead of words; empty = words",
                    ),
                ],
                operations: vec![
                    (Operation::Read, "Read the settings"),
                    (Operation::Create, "Change the settings"),
                    (Operation::Update, "Change the settings"),
                ],
                passthrough: false,
                synopsis: "Passphrase settings",
                description:
                    "Word count, separator, lease duration and optional password policy of issued passphrases.",
            },
        ),
        (
            Route::Gen,
            PathSpec {
                flags: PathFlags::NORMAL,
                pattern: "gen",
                fields: vec![words(), sep()],
                operations: vec![
                    (Operation::Read, "Issue a passphrase with the configured settings"),
                    (Operation::Update, "Issue a passphrase, overriding words or separator"),
                ],
                passthrough: false,
                synopsis: "Issue a passphrase",
                description: "Returns a new random passphrase and records it under issued/<id>.",
            },
        ),
        (
            Route::List,
            PathSpec {
                flags: PathFlags::NORMAL,
                pattern: "issued/?",
                fields: vec![],
                operations: vec![(Operation::List, "List the ids of issued passphrases")],
                passthrough: false,
                synopsis: "List issued passphrases",
                description: "Lists the ids of the passphrases issued and not yet deleted or revoked.",
            },
        ),
        (
            Route::Issued,
            PathSpec {
                flags: PathFlags::NORMAL,
                pattern: r"issued/(?P<id>[0-9a-f\-]{36})",
                fields: vec![FieldSpec::new("id", FieldType::String, "Id of the issued passphrase")],
                operations: vec![
                    (Operation::Read, "Read a passphrase and its metadata"),
                    (Operation::Delete, "Forget it"),
                ],
                passthrough: false,
                synopsis: "An issued passphrase",
                description: "Reads or deletes the record of an issued passphrase.",
            },
        ),
    ]
}

async fn get_json<T: for<'de> Deserialize<'de>>(s: &dyn StorageView, key: &str) -> Result<Option<T>> {
    match s.get(key).await? {
        None => Ok(None),
        Some(raw) => serde_json::from_slice(&raw)
            .map(Some)
            .map_err(|_| LogicalError::internal(format!("stored entry at {key:?} is malformed"))),
    }
}

async fn put_json<T: Serialize>(s: &dyn StorageView, key: &str, v: &T) -> Result<()> {
    let bytes = serde_json::to_vec(v).map_err(|e| LogicalError::internal(e.to_string()))?;
    s.put(key, &bytes).await
}

fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn check_words(n: i64) -> Result<i64> {
    if !(MIN_WORDS..=MAX_WORDS).contains(&n) {
        return Err(LogicalError::bad_request(format!("words must be between {MIN_WORDS} and {MAX_WORDS}")));
    }
    Ok(n)
}

fn check_separator(s: &str) -> Result<String> {
    if s.chars().count() > MAX_SEPARATOR || s.chars().any(|c| c.is_control()) {
        return Err(LogicalError::bad_request(format!(
            "separator must be at most {MAX_SEPARATOR} printable characters"
        )));
    }
    Ok(s.to_string())
}

/// The passphrase secrets engine: a [`Handler`], served wrapped in
/// [`coffer_sdk::framework::Backend`].
pub struct Passphrase {
    paths: Paths<Route>,
}

impl Default for Passphrase {
    fn default() -> Self {
        Self::new()
    }
}

impl Passphrase {
    pub fn new() -> Self {
        Passphrase { paths: Paths::new(path_specs()) }
    }

    async fn config(&self, s: &dyn StorageView) -> Result<Config> {
        Ok(get_json::<Config>(s, "config").await?.unwrap_or_default())
    }

    async fn write_config(&self, req: &Request, f: &FieldData) -> Result<Option<Response>> {
        let mut c = self.config(req.storage.as_ref()).await?;
        if let Some(n) = f.int("words") {
            c.words = check_words(n)?;
        }
        if let Some(s) = f.str("separator") {
            c.separator = check_separator(s)?;
        }
        if let Some(t) = f.int("ttl") {
            if t < 0 {
                return Err(LogicalError::bad_request("ttl cannot be negative"));
            }
            c.ttl = t;
        }
        if let Some(p) = f.str("password_policy") {
            c.password_policy = p.to_string();
        }
        put_json(req.storage.as_ref(), "config", &c).await?;
        Ok(None)
    }

    async fn generate(&self, req: &Request, f: &FieldData) -> Result<Option<Response>> {
        let c = self.config(req.storage.as_ref()).await?;
        let words = match f.int("words") {
            Some(n) => check_words(n)?,
            None => c.words,
        };
        let separator = match f.str("separator") {
            Some(s) => check_separator(s)?,
            None => c.separator.clone(),
        };
        let (passphrase, words) = if c.password_policy.is_empty() {
            let mut parts = Vec::with_capacity(words as usize);
            for _ in 0..words {
                parts.push(word(random_below(WORD_COUNT)?));
            }
            (parts.join(&separator), words)
        } else {
            let services = req
                .services
                .as_ref()
                .ok_or_else(|| LogicalError::bad_request("password policies are not available on this server"))?;
            (services.generate_password(&c.password_policy).await?, 0)
        };
        let created = now();
        let rec = Issued {
            id: uuid::Uuid::new_v4().to_string(),
            passphrase,
            words,
            created_unix: created,
            expires_unix: if c.ttl > 0 { created + c.ttl } else { 0 },
        };
        put_json(req.storage.as_ref(), &format!("issued/{}", rec.id), &rec).await?;
        let mut data = object(json!({
            "id": rec.id,
            "passphrase": rec.passphrase,
            "created_unix": rec.created_unix,
        }));
        if words > 0 {
            data.insert("words".into(), json!(words));
            data.insert("entropy_bits".into(), json!(entropy_bits(words)));
        } else {
            data.insert("password_policy".into(), json!(c.password_policy));
        }
        let mut resp = Response::data(data);
        if c.ttl > 0 {
            resp.secret = Some(SecretLease {
                ttl: c.ttl,
                max_ttl: c.ttl,
                renewable: false,
                internal: object(json!({ "id": rec.id })),
            });
        }
        Ok(Some(resp))
    }
}

#[async_trait]
impl Handler for Passphrase {
    type Route = Route;

    fn backend_type(&self) -> &'static str {
        "passphrase"
    }

    fn paths(&self) -> &Paths<Route> {
        &self.paths
    }

    async fn handle(&self, route: Route, req: Request, f: FieldData) -> Result<Option<Response>> {
        let s = req.storage.as_ref();
        match (route, req.operation) {
            (Route::Config, Operation::Read) => {
                let c = self.config(s).await?;
                Ok(Some(Response::data(object(serde_json::to_value(c).unwrap_or_default()))))
            }
            (Route::Config, _) => self.write_config(&req, &f).await,
            (Route::Gen, _) => self.generate(&req, &f).await,
            (Route::List, _) => Ok(Some(Response::list(s.list("issued/").await?))),
            (Route::Issued, op) => {
                let id = f.str("id").unwrap_or_default();
                let key = format!("issued/{id}");
                if op == Operation::Delete {
                    s.delete(&key).await?;
                    return Ok(None);
                }
                let rec = get_json::<Issued>(s, &key).await?.ok_or_else(LogicalError::not_found)?;
                Ok(Some(Response::data(object(serde_json::to_value(rec).unwrap_or_default()))))
            }
        }
    }

    /// A write to a missing `config` is a `create`.
    async fn exists(&self, route: Route, req: &Request, _f: &FieldData) -> Result<Option<bool>> {
        if route == Route::Config {
            return Ok(Some(req.storage.get("config").await?.is_some()));
        }
        Ok(None)
    }

    async fn revoke_secret(&self, req: &Request, internal: &Map<String, Value>) -> Result<()> {
        let id = internal.get("id").and_then(Value::as_str).unwrap_or_default();
        if id.is_empty() {
            return Err(LogicalError::bad_request("lease carries no passphrase id"));
        }
        req.storage.delete(&format!("issued/{id}")).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_word_list_is_a_bijection_of_pronounceable_words() {
        assert_eq!(word(0), "babab");
        assert_eq!(word(WORD_COUNT - 1), "zuzuz");
        let mut seen = std::collections::HashSet::new();
        for i in (0..WORD_COUNT).step_by(97) {
            let w = word(i);
            assert_eq!(w.len(), 5);
            assert!(seen.insert(w));
        }
        assert!((entropy_bits(6) - 99.8).abs() < 0.2);
    }

    #[test]
    fn random_below_stays_in_range() {
        for _ in 0..1000 {
            assert!(random_below(7).unwrap() < 7);
        }
    }
}

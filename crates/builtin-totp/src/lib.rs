#![forbid(unsafe_code)]
//! The TOTP secrets engine: time-based one-time passwords (RFC 6238 over RFC 4226 HOTP).
//!
//! Keys are generated (the answer carries the otpauth URL and its QR code, once) or imported
//! from an otpauth URL or a base32 secret. `code/<name>` reads the current code, or checks a
//! given one; a checked code is refused for as long as it could still be valid.
//!
//! Storage (the mount's own view), all JSON:
//!
//! | key | content |
//! |---|---|
//! | `key/<name>` | the secret (base32), issuer, account, period, algorithm, digits, skew |
//! | `used/<name>/<hex of code>` | a code already checked against the key, with its expiry (unix seconds) |

mod barcode;
pub mod otp;
pub mod otpauth;

use async_trait::async_trait;
use coffer_sdk::field::FieldType;
use coffer_sdk::framework::{FieldData, FieldSpec, Handler, PathFlags, PathSpec, Paths};
use coffer_sdk::{LogicalError, Operation, Request, Response, Result, StorageView};
use otp::Algorithm;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// A key name as OpenBao accepts it: word characters, with `-` and `.` inside.
macro_rules! name_pattern {
    () => {
        r"(?P<name>[A-Za-z0-9_](?:[A-Za-z0-9_.\-]*[A-Za-z0-9_])?)"
    };
}

/// The paths of the TOTP engine, one variant per row of [`path_specs`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    List,
    Key,
    Code,
}

/// Generated secrets and QR images are capped (OpenBao has no cap) so that one request cannot
/// exhaust memory.
const MAX_KEY_SIZE: i64 = 4096;
const MAX_QR_SIZE: i64 = 8192;

const CODE_USED: &str = "code already used; wait until the next time period";

/// A key as stored. Zeroised when dropped.
#[derive(Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
struct KeyEntry {
    /// The shared secret, base32 without padding.
    key: String,
    issuer: String,
    account_name: String,
    period: u64,
    algorithm: String,
    digits: u32,
    skew: u64,
}

impl KeyEntry {
    fn algorithm(&self) -> Result<Algorithm> {
        Algorithm::parse(&self.algorithm).ok_or_else(|| LogicalError::internal("stored key has an unknown algorithm"))
    }
    fn secret(&self) -> Result<Zeroizing<Vec<u8>>> {
        otp::base32_decode(&self.key)
            .map(Zeroizing::new)
            .map_err(|cause| LogicalError::internal("stored key has a malformed secret").with_source(cause))
    }
}

#[derive(Serialize, Deserialize)]
struct UsedEntry {
    expires: u64,
}

/// Where the current time comes from (unix seconds); replaceable for tests.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

fn system_clock() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// The TOTP secrets engine; serve it wrapped in [`coffer_sdk::framework::Backend`].
pub struct Totp {
    paths: Paths<Route>,
    clock: Clock,
    /// Serialises the check-and-record of used codes; holds, per key name, when its expired
    /// used-code entries are next swept.
    used: tokio::sync::Mutex<HashMap<String, u64>>,
}

impl Default for Totp {
    fn default() -> Self {
        Self::new()
    }
}

fn path_specs() -> Vec<(Route, PathSpec)> {
    let name = || FieldSpec::new("name", FieldType::String, "Name of the key");
    vec![
        (
            Route::List,
            PathSpec {
                flags: PathFlags::NORMAL,
                pattern: "keys/?",
                fields: vec![],
                operations: vec![(Operation::List, "List the names of the keys")],
                passthrough: false,
                synopsis: "List keys",
                description: "Lists the names of the keys of this mount.",
            },
        ),
        (
            Route::Key,
            PathSpec {
                flags: PathFlags::NORMAL,
                pattern: concat!("keys/", name_pattern!()),
                fields: vec![
                    name(),
                    FieldSpec::new("generate", FieldType::Bool, "Generate a new key instead of importing one")
                        .default(json!(false)),
                    FieldSpec::new(
                        "exported",
                        FieldType::Bool,
                        "Return the URL and QR code of a generated key (only when generate is true)",
                    )
                    .default(json!(true)),
                    FieldSpec::new("key_size", FieldType::Int, "Size in bytes of a generated secret")
                        .default(json!(20)),
                    FieldSpec::new("url", FieldType::String, "otpauth:// URL to import the key from"),
                    FieldSpec::new("key", FieldType::String, "The secret to import, base32"),
                    FieldSpec::new("issuer", FieldType::String, "Name of the issuer of the key"),
                    FieldSpec::new("account_name", FieldType::String, "Name of the account the key belongs to"),
                    FieldSpec::new("period", FieldType::DurationSecond, "Length of a time step, in seconds")
                        .default(json!(30)),
                    FieldSpec::new("algorithm", FieldType::String, "HMAC hash: SHA1, SHA256 or SHA512")
                        .default(json!("SHA1")),
                    FieldSpec::new("digits", FieldType::Int, "Length of a code: 6 or 8").default(json!(6)),
                    FieldSpec::new("skew", FieldType::Int, "Time steps of drift accepted either side: 0 or 1")
                        .default(json!(1)),
                    FieldSpec::new("qr_size", FieldType::Int, "Width and height in pixels of the QR code; 0 for none")
                        .default(json!(200)),
                ],
                operations: vec![
                    (Operation::Create, "Create or import a key"),
                    (Operation::Update, "Create or import a key"),
                    (Operation::Read, "Read the key's settings (never its secret)"),
                    (Operation::Delete, "Delete the key"),
                ],
                passthrough: false,
                synopsis: "Manage a key",
                description: "Generates a key (returning its otpauth URL and QR code once) or imports one from a \
                          URL or a base32 secret; reads its settings; deletes it.",
            },
        ),
        (
            Route::Code,
            PathSpec {
                flags: PathFlags::NORMAL,
                pattern: concat!("code/", name_pattern!()),
                fields: vec![name(), FieldSpec::new("code", FieldType::String, "The code to check")],
                operations: vec![
                    (Operation::Read, "Generate the current code"),
                    (Operation::Update, "Check a code; each code is accepted once"),
                ],
                passthrough: false,
                synopsis: "Generate or check a code",
                description: "Reading returns the current code of the key; writing a code returns whether it is \
                          valid now, and refuses a code that was already checked while it could still be valid.",
            },
        ),
    ]
}

async fn get_json<T: for<'de> Deserialize<'de>>(s: &dyn StorageView, key: &str) -> Result<Option<T>> {
    match s.get(key).await? {
        None => Ok(None),
        Some(raw) => serde_json::from_slice(&raw)
            .map(Some)
            // drop-cause: entries hold the TOTP key, which a JSON error could quote.
            .map_err(|_| LogicalError::internal(format!("stored entry at {key:?} is malformed"))),
    }
}

async fn put_json<T: Serialize>(s: &dyn StorageView, key: &str, v: &T) -> Result<()> {
    let bytes = Zeroizing::new(serde_json::to_vec(v).map_err(|e| LogicalError::internal(e.to_string()))?);
    s.put(key, &bytes).await
}

fn key_path(name: &str) -> String {
    format!("key/{name}")
}

fn used_prefix(name: &str) -> String {
    format!("used/{name}/")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn bad(msg: impl Into<String>) -> LogicalError {
    LogicalError::bad_request(msg)
}

impl Totp {
    pub fn new() -> Self {
        Self::with_clock(Arc::new(system_clock))
    }

    /// An engine that reads the time from `clock` (unix seconds).
    pub fn with_clock(clock: Clock) -> Self {
        Totp { paths: Paths::new(path_specs()), clock, used: tokio::sync::Mutex::new(HashMap::new()) }
    }

    async fn load(&self, s: &dyn StorageView, name: &str) -> Result<KeyEntry> {
        get_json::<KeyEntry>(s, &key_path(name)).await?.ok_or_else(|| bad(format!("unknown key: {name}")))
    }

    async fn write_key(&self, req: &Request, name: &str, f: &FieldData) -> Result<Option<Response>> {
        let generate = f.bool("generate").unwrap_or(false);
        let exported = f.bool("exported").unwrap_or(true);
        let key_size = f.int("key_size").unwrap_or(20);
        let url = f.str("url").unwrap_or("");
        let mut key_string = Zeroizing::new(f.str("key").unwrap_or("").to_string());
        let mut issuer = f.str("issuer").unwrap_or("").to_string();
        let mut account_name = f.str("account_name").unwrap_or("").to_string();
        let mut period = f.int("period").unwrap_or(30);
        let mut algorithm = f.str("algorithm").unwrap_or("SHA1").to_string();
        let mut digits = f.int("digits").unwrap_or(6);
        let skew = f.int("skew").unwrap_or(1);
        let qr_size = f.int("qr_size").unwrap_or(200);
        if period < 0 {
            return Err(bad(format!(
                "Field validation failed: error converting input for field \"period\": cannot provide negative value '{period}'"
            )));
        }
        if generate {
            if !key_string.is_empty() {
                return Err(bad("a key should not be passed if generate is true"));
            }
            if !url.is_empty() {
                return Err(bad("a url should not be passed if generate is true"));
            }
        }
        if !url.is_empty() {
            let u = otpauth::parse(url).ok_or_else(|| bad("an error occurred while parsing url string"))?;
            match u.label.split_once(':') {
                Some((i, a)) => {
                    issuer = i.to_string();
                    account_name = a.to_string();
                }
                None => account_name = u.label.clone(),
            }
            if let Some(v) = u.get("issuer") {
                issuer = v.to_string();
            }
            if let Some(v) = u.get("secret") {
                *key_string = v.to_string();
            }
            if let Some(v) = u.get("algorithm") {
                algorithm = v.to_string();
            }
            if let Some(v) = u.get("period") {
                period = v
                    .parse()
                    .map_err(|cause| bad("an error occurred while parsing period value in url").with_source(cause))?;
            }
            if let Some(v) = u.get("digits") {
                digits = v
                    .parse()
                    .map_err(|cause| bad("an error occurred while parsing digits value in url").with_source(cause))?;
            }
        }
        if digits != 6 && digits != 8 {
            return Err(bad("the digits value can only be 6 or 8"));
        }
        let Some(alg) = Algorithm::parse(&algorithm) else {
            return Err(bad("the algorithm value is not valid"));
        };
        if period <= 0 {
            return Err(bad("the period value must be greater than zero"));
        }
        if skew != 0 && skew != 1 {
            return Err(bad("the skew value must be 0 or 1"));
        }
        if qr_size < 0 {
            return Err(bad("the qr_size value must be greater than or equal to zero"));
        }
        if key_size <= 0 {
            return Err(bad("the key_size value must be greater than zero"));
        }
        if qr_size > MAX_QR_SIZE {
            return Err(bad(format!("the qr_size value must not be greater than {MAX_QR_SIZE}")));
        }
        if key_size > MAX_KEY_SIZE {
            return Err(bad(format!("the key_size value must not be greater than {MAX_KEY_SIZE}")));
        }

        let secret: Zeroizing<Vec<u8>> = if generate {
            if account_name.is_empty() {
                return Err(bad("the account_name value is required for generated keys"));
            }
            if issuer.is_empty() {
                return Err(bad("the issuer value is required for generated keys"));
            }
            let mut buf = Zeroizing::new(vec![0u8; key_size as usize]);
            aws_lc_rs::rand::fill(&mut buf)
                .map_err(|cause| LogicalError::internal("random generator failed").with_source(cause))?;
            buf
        } else {
            if key_string.is_empty() {
                return Err(bad("the key value is required"));
            }
            Zeroizing::new(otp::base32_decode(&key_string).map_err(|e| bad(format!("invalid key value: {e}")))?)
        };

        let entry = KeyEntry {
            key: otp::base32_encode(&secret),
            issuer,
            account_name,
            period: period as u64,
            algorithm: alg.as_str().to_string(),
            digits: digits as u32,
            skew: skew as u64,
        };
        // The answer is built before storing: a key whose QR code cannot be drawn is not kept.
        let mut resp = None;
        if generate && exported {
            let url = otpauth::build(
                &entry.issuer,
                &entry.account_name,
                &entry.algorithm,
                entry.digits,
                entry.period,
                &entry.key,
            );
            let mut out = Map::new();
            if qr_size > 0 {
                let image = barcode::png(&url, qr_size as u32).map_err(|e| {
                    LogicalError::internal(format!("failed to generate QR code image: {e}")).with_source(e)
                })?;
                out.insert("barcode".into(), Value::String(data_encoding::BASE64.encode(&image)));
            }
            out.insert("url".into(), Value::String(url));
            resp = Some(Response::data(out));
        }
        put_json(req.storage.as_ref(), &key_path(name), &entry).await?;
        Ok(resp)
    }

    async fn read_code(&self, req: &Request, name: &str) -> Result<Option<Response>> {
        let entry = self.load(req.storage.as_ref(), name).await?;
        let now = (self.clock)();
        let secret = entry.secret()?;
        let code = otp::totp_at(entry.algorithm()?, &secret, now, entry.period, entry.digits);
        let expire = (now / entry.period).saturating_add(1).saturating_mul(entry.period);
        let mut out = Map::new();
        out.insert("code".into(), Value::String(code));
        out.insert("expire_time".into(), json!(expire));
        out.insert("generated".into(), json!(now));
        out.insert("period".into(), Value::String(otp::go_duration(entry.period)));
        Ok(Some(Response::data(out)))
    }

    async fn check_code(&self, req: &Request, name: &str, f: &FieldData) -> Result<Option<Response>> {
        let s = req.storage.as_ref();
        let entry = self.load(s, name).await?;
        let code = f.str("code").unwrap_or("");
        if code.is_empty() {
            return Err(bad("the code value is required"));
        }
        let code = code.trim();
        if code.len() != entry.digits as usize {
            return Err(bad("invalid number of digits for the code"));
        }
        let alg = entry.algorithm()?;
        let secret = entry.secret()?;
        let window = entry.skew.saturating_add(2).saturating_mul(entry.period);

        let mut sweeps = self.used.lock().await;
        let now = (self.clock)();
        let used_key = format!("{}{}", used_prefix(name), hex(code.as_bytes()));
        if let Some(used) = get_json::<UsedEntry>(s, &used_key).await? {
            if used.expires > now {
                return Err(bad(CODE_USED));
            }
        }
        let valid = otp::validate(alg, &secret, code, now, entry.period, entry.digits, entry.skew);
        // Every checked code is recorded, valid or not, as OpenBao does: each code gets one try
        // per validity window.
        put_json(s, &used_key, &UsedEntry { expires: now.saturating_add(window) }).await?;
        if sweeps.get(name).is_none_or(|next| *next <= now) {
            sweep_used(s, name, now).await?;
            sweeps.insert(name.to_string(), now.saturating_add(window));
        }
        drop(sweeps);

        let mut out = Map::new();
        out.insert("valid".into(), Value::Bool(valid));
        Ok(Some(Response::data(out)))
    }
}

/// Deletes the expired used-code entries of a key.
async fn sweep_used(s: &dyn StorageView, name: &str, now: u64) -> Result<()> {
    let prefix = used_prefix(name);
    for k in s.list(&prefix).await? {
        let path = format!("{prefix}{k}");
        let expired = match get_json::<UsedEntry>(s, &path).await {
            Ok(Some(u)) => u.expires <= now,
            Ok(None) => false,
            Err(_) => true,
        };
        if expired {
            s.delete(&path).await?;
        }
    }
    Ok(())
}

#[async_trait]
impl Handler for Totp {
    type Route = Route;

    fn backend_type(&self) -> &'static str {
        "totp"
    }

    fn paths(&self) -> &Paths<Route> {
        &self.paths
    }

    async fn handle(&self, route: Route, req: Request, fields: FieldData) -> Result<Option<Response>> {
        self.dispatch(route, req, &fields).await
    }
}

impl Totp {
    /// Serves a routed request (the ignored-parameters warning is added around it).
    async fn dispatch(&self, route: Route, req: Request, f: &FieldData) -> Result<Option<Response>> {
        let name = f.str("name").unwrap_or("").to_string();
        let s = req.storage.as_ref();
        match (route, req.operation) {
            (Route::List, _) => {
                let keys = s.list("key/").await?;
                if keys.is_empty() {
                    return Ok(None);
                }
                Ok(Some(Response::list(keys)))
            }
            (Route::Key, Operation::Read) => {
                let Some(entry) = get_json::<KeyEntry>(s, &key_path(&name)).await? else {
                    return Ok(None);
                };
                let mut out = Map::new();
                out.insert("account_name".into(), Value::String(entry.account_name.clone()));
                out.insert("algorithm".into(), Value::String(entry.algorithm.clone()));
                out.insert("digits".into(), json!(entry.digits));
                out.insert("issuer".into(), Value::String(entry.issuer.clone()));
                out.insert("period".into(), json!(entry.period));
                Ok(Some(Response::data(out)))
            }
            (Route::Key, Operation::Create | Operation::Update) => self.write_key(&req, &name, f).await,
            (Route::Key, Operation::Delete) => {
                s.delete(&key_path(&name)).await?;
                let _guard = self.used.lock().await;
                let prefix = used_prefix(&name);
                for k in s.list(&prefix).await? {
                    s.delete(&format!("{prefix}{k}")).await?;
                }
                Ok(None)
            }
            (Route::Code, Operation::Read) => self.read_code(&req, &name).await,
            (Route::Code, Operation::Update) => self.check_code(&req, &name, f).await,
            _ => Err(LogicalError::unsupported_operation()),
        }
    }
}

#![forbid(unsafe_code)]
//! The userpass auth method: named users with a password and token settings.
//!
//! Storage (the mount's own view): `user/<lower-cased name>` → JSON [`UserEntry`]: the
//! argon2id PHC string of the password and the shared `token_*` settings. The password itself
//! is never stored, logged or returned; reads show only the token settings.
//!
//! Login answers "invalid username or password" for an unknown user, a wrong password and an
//! address outside the user's `token_bound_cidrs` alike, and runs one argon2id verification in
//! every case (against a fixed dummy hash when the user is unknown), so neither the message nor
//! the time tells which it was.

use async_trait::async_trait;
use coffer_sdk::field::FieldType;
use coffer_sdk::framework::{FieldData, FieldSpec, Handler, PathFlags, PathSpec, Paths};
use coffer_sdk::tokenutil::{addr_in_cidrs, token_fields, TokenParams};
use coffer_sdk::{LogicalError, Operation, Request, Response, Result};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::sync::OnceLock;

use argon2::password_hash::{PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

/// Argon2id parameters for new hashes: 19 MiB of memory, 2 passes, 1 lane (the first of
/// OWASP's equivalent argon2id settings, and the `argon2` crate's defaults). Measured on the
/// 2-core development machine, release build: a whole login through the backend (storage read,
/// one verification, token settings) takes a median 15-17 ms, the same (±2%) for a correct
/// password, a wrong one and an unknown user (`cargo test --release -p coffer-builtin-userpass
/// login_timing -- --ignored --nocapture`).
/// Existing hashes keep the parameters recorded in their PHC string, so these may be raised
/// later without invalidating stored passwords.
const ARGON2_M_COST_KIB: u32 = 19 * 1024;
const ARGON2_T_COST: u32 = 2;
const ARGON2_P_COST: u32 = 1;

const INVALID_CREDENTIALS: &str = "invalid username or password";
const MISSING_PASSWORD_ON_CREATE: &str = "must provide either password or password_hash";

/// A user name as OpenBao accepts it: word characters, with `-` and `.` inside.
const NAME: &str = r"[A-Za-z0-9_](?:[A-Za-z0-9_.\-]*[A-Za-z0-9_])?";

/// The paths of the userpass method, one variant per row of [`build_specs`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    List,
    User,
    Password,
    Policies,
    Login,
}

/// One user as stored.
#[derive(Clone, Serialize, Deserialize)]
struct UserEntry {
    /// argon2id PHC string.
    password_hash: String,
    #[serde(flatten)]
    token: TokenParams,
}

/// Serve it wrapped in [`coffer_sdk::framework::Backend`].
pub struct UserPass {
    paths: Paths<Route>,
}

impl Default for UserPass {
    fn default() -> Self {
        Self::new()
    }
}

fn username_field() -> FieldSpec {
    FieldSpec::new("username", FieldType::String, "Name of the user (case-insensitive: stored lower-cased)")
}

fn build_specs() -> Vec<(Route, PathSpec)> {
    let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
    let mut user_fields = vec![
        username_field(),
        FieldSpec::new(
            "password",
            FieldType::String,
            "Password of the user; required when the user is created, never returned",
        ),
    ];
    user_fields.extend(token_fields());
    vec![
        (
            Route::List,
            PathSpec {
                flags: PathFlags::NORMAL,
                pattern: "users/?",
                fields: vec![],
                operations: vec![(Operation::List, "List the users of this mount")],
                passthrough: false,
                synopsis: "List users",
                description: "Lists the names of the users registered with this auth method.",
            },
        ),
        (
            Route::User,
            PathSpec {
                flags: PathFlags::NORMAL,
                pattern: leak(format!("users/(?P<username>{NAME})")),
                fields: user_fields,
                operations: vec![
                    (Operation::Create, "Create the user"),
                    (Operation::Update, "Update the user's settings (and password, if given)"),
                    (Operation::Read, "Read the user's token settings"),
                    (Operation::Delete, "Delete the user"),
                ],
                passthrough: false,
                synopsis: "Manage a user",
                description: "Creates, reads, updates or deletes a user: its password (write-only) and the \
                          settings of the tokens its logins receive.",
            },
        ),
        (
            Route::Password,
            PathSpec {
                flags: PathFlags::NORMAL,
                pattern: leak(format!("users/(?P<username>{NAME})/password")),
                fields: vec![
                    username_field(),
                    FieldSpec::new("password", FieldType::String, "The new password of the user (required)"),
                ],
                operations: vec![(Operation::Update, "Replace the user's password")],
                passthrough: false,
                synopsis: "Change a user's password",
                description: "Replaces the password of an existing user.",
            },
        ),
        (
            Route::Policies,
            PathSpec {
                flags: PathFlags::NORMAL,
                pattern: leak(format!("users/(?P<username>{NAME})/policies")),
                fields: vec![
                    username_field(),
                    FieldSpec::new("token_policies", FieldType::CommaStringSlice, "Policies attached to issued tokens"),
                    FieldSpec::new("policies", FieldType::CommaStringSlice, "Deprecated alias of token_policies"),
                ],
                operations: vec![(Operation::Update, "Replace the user's token policies")],
                passthrough: false,
                synopsis: "Change a user's policies",
                description: "Replaces the policies attached to the tokens an existing user's logins receive.",
            },
        ),
        (
            Route::Login,
            PathSpec {
                flags: PathFlags::NORMAL.unauthenticated(),
                pattern: leak(format!("login/(?P<username>{NAME})")),
                fields: vec![username_field(), FieldSpec::new("password", FieldType::String, "Password of the user")],
                operations: vec![(Operation::Update, "Log in with a user name and password")],
                passthrough: false,
                synopsis: "Log in as a user",
                description: "Checks the user's password (and, if the user has token_bound_cidrs, the client's \
                          address) and returns a token with the user's settings.",
            },
        ),
    ]
}

/// The rows, built once per process: their patterns are leaked strings.
fn specs_static() -> &'static [(Route, PathSpec)] {
    static P: OnceLock<Vec<(Route, PathSpec)>> = OnceLock::new();
    P.get_or_init(build_specs)
}

impl UserPass {
    pub fn new() -> Self {
        // Compute the dummy hash now, off the caller's thread, so that the first login of an
        // unknown user does not take twice as long as the others.
        if DUMMY_HASH.get().is_none() {
            std::thread::spawn(|| {
                dummy_hash();
            });
        }
        UserPass { paths: Paths::new(specs_static().to_vec()) }
    }
}

fn hasher() -> Argon2<'static> {
    let params = Params::new(ARGON2_M_COST_KIB, ARGON2_T_COST, ARGON2_P_COST, None).expect("valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Argon2's working memory (19 MiB per hash), kept for reuse instead of allocated and freed on
/// every login: with many threads, 19 MiB allocations freed back to the allocator fragment its
/// per-thread arenas, and a login burst left gigabytes resident (seen in `bench/run`, audit mode).
/// Hashing is bounded by [`hash_permits`], so the pool never holds more buffers than permits.
/// A buffer is wiped before it goes back (it held password-derived state).
fn with_argon2_memory<T>(blocks: usize, f: impl FnOnce(&mut [argon2::Block]) -> T) -> T {
    static POOL: std::sync::Mutex<Vec<Vec<argon2::Block>>> = std::sync::Mutex::new(Vec::new());
    let reused = POOL.lock().unwrap_or_else(|e| e.into_inner()).pop().filter(|b| b.len() == blocks);
    let mut buf = reused.unwrap_or_else(|| vec![argon2::Block::default(); blocks]);
    let out = f(&mut buf);
    buf.fill(argon2::Block::default());
    let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
    if pool.len() < hash_permits_count() {
        pool.push(buf);
    }
    out
}

/// Runs argon2 with `argon2`'s parameters into `out`, on pooled memory.
fn argon2_into(a: &Argon2<'_>, password: &[u8], salt: &[u8], out: &mut [u8]) -> std::result::Result<(), argon2::Error> {
    with_argon2_memory(a.params().block_count(), |m| a.hash_password_into_with_memory(password, salt, out, m))
}

/// Hashes `password` with argon2id and a fresh 16-byte random salt, as a PHC string.
fn hash_password(password: &str) -> Result<String> {
    let fail = || LogicalError::internal("failed to hash the password");
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt)
        .map_err(|cause| LogicalError::internal("failed to generate a salt").with_source(cause))?;
    let salt_string = SaltString::encode_b64(&salt)
        .map_err(|cause| LogicalError::internal("failed to encode a salt").with_source(cause))?;
    let a = hasher();
    let mut out = [0u8; 32];
    argon2_into(&a, password.as_bytes(), &salt, &mut out).map_err(|cause| fail().with_source(cause))?;
    let hash = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: argon2::password_hash::ParamsString::try_from(a.params()).map_err(|cause| fail().with_source(cause))?,
        salt: Some(salt_string.as_salt()),
        hash: Some(argon2::password_hash::Output::new(&out).map_err(|cause| fail().with_source(cause))?),
    };
    Ok(hash.to_string())
}

/// Whether `password` matches the PHC string (algorithm, version and parameters are taken from
/// the string). The comparison is constant-time.
fn verify_password(password: &str, phc: &str) -> bool {
    let check = || -> Option<bool> {
        let h = PasswordHash::new(phc).ok()?;
        let algorithm = Algorithm::try_from(h.algorithm).ok()?;
        let version = match h.version {
            Some(v) => Version::try_from(v).ok()?,
            None => Version::default(),
        };
        let params = Params::try_from(&h).ok()?;
        let expected = h.hash?;
        let mut salt = [0u8; 64];
        let salt = h.salt?.decode_b64(&mut salt).ok()?;
        let mut out = vec![0u8; expected.len()];
        argon2_into(&Argon2::new(algorithm, version, params), password.as_bytes(), salt, &mut out).ok()?;
        Some(argon2::password_hash::Output::new(&out).ok()? == expected)
    };
    check().unwrap_or(false)
}

/// A hash with the current parameters of a random password nobody knows, verified against
/// when the user does not exist so that the work done is the same.
static DUMMY_HASH: OnceLock<String> = OnceLock::new();

fn dummy_hash() -> &'static str {
    DUMMY_HASH.get_or_init(|| {
        let mut pw = [0u8; 32];
        let _ = getrandom::fill(&mut pw);
        let pw: String = pw.iter().map(|b| format!("{b:02x}")).collect();
        hash_password(&pw).unwrap_or_else(|_| {
            // Unreachable in practice; a valid PHC string that matches nothing typed.
            "$argon2id$v=19$m=19456,t=2,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
                .to_string()
        })
    })
}

/// At most this many Argon2 computations run at once (one per core). Each needs 19 MiB, so
/// without a bound a burst of unauthenticated logins would grow memory without limit; with it,
/// hashing uses at most cores × 19 MiB and extra logins wait their turn.
fn hash_permits() -> &'static tokio::sync::Semaphore {
    static S: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    S.get_or_init(|| tokio::sync::Semaphore::new(hash_permits_count()))
}

fn hash_permits_count() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2)
}

/// Runs the (CPU- and memory-heavy) hash off the async workers, bounded by [`hash_permits`].
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    let _permit = hash_permits()
        .acquire()
        .await
        .map_err(|cause| LogicalError::internal("password hashing is unavailable").with_source(cause))?;
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|cause| LogicalError::internal("password hashing task failed").with_source(cause))
}

fn user_key(name: &str) -> String {
    format!("user/{name}")
}

async fn load_user(req: &Request, name: &str) -> Result<Option<UserEntry>> {
    match req.storage.get(&user_key(name)).await? {
        None => Ok(None),
        Some(raw) => serde_json::from_slice(&raw)
            .map(Some)
            // drop-cause: the entry holds the password hash, which a JSON error could quote.
            .map_err(|_| LogicalError::internal(format!("stored entry of user {name:?} is malformed"))),
    }
}

async fn save_user(req: &Request, name: &str, entry: &UserEntry) -> Result<()> {
    let bytes = serde_json::to_vec(entry).map_err(|e| LogicalError::internal(e.to_string()))?;
    req.storage.put(&user_key(name), &bytes).await
}

/// Fresh token settings. (`TokenParams::default()` leaves `token_type` empty; OpenBao's is
/// "default".)
fn new_token_params() -> TokenParams {
    TokenParams { token_type: "default".into(), ..TokenParams::default() }
}

/// OpenBao refuses batch tokens with a use limit.
fn check_token_type(t: &TokenParams) -> Result<()> {
    if t.token_type == "batch" && t.token_num_uses > 0 {
        return Err(LogicalError::bad_request(
            "'token_type' cannot be 'batch' or 'default_batch' when set to generate tokens with limited use count",
        ));
    }
    Ok(())
}

impl UserPass {
    async fn write_user(&self, req: &Request, name: &str, password: Option<&str>) -> Result<Option<Response>> {
        let existing = load_user(req, name).await?;
        let password = password.filter(|p| !p.is_empty());
        let hash = match (password, &existing) {
            (Some(p), _) => {
                let p = p.to_string();
                blocking(move || hash_password(&p)).await??
            }
            (None, Some(e)) => e.password_hash.clone(),
            (None, None) => return Err(LogicalError::bad_request(MISSING_PASSWORD_ON_CREATE)),
        };
        let mut token = existing.map(|e| e.token).unwrap_or_else(new_token_params);
        token.update_from(&req.data)?;
        check_token_type(&token)?;
        save_user(req, name, &UserEntry { password_hash: hash, token }).await?;
        Ok(None)
    }

    async fn login(&self, req: &Request, name: &str, password: Option<&str>) -> Result<Option<Response>> {
        // OpenBao answers a missing password with a 500; it is the client's error: 400.
        let password = match password {
            Some(p) if !p.is_empty() => p.to_string(),
            _ => return Err(LogicalError::bad_request("missing password")),
        };
        let user = load_user(req, name).await?;
        let phc = user.as_ref().map(|u| u.password_hash.clone());
        let matched =
            blocking(move || verify_password(&password, phc.as_deref().unwrap_or_else(|| dummy_hash()))).await?;
        let Some(user) = user.filter(|_| matched) else {
            return Err(LogicalError::bad_request(INVALID_CREDENTIALS));
        };
        if !addr_in_cidrs(req.remote_addr, &user.token.token_bound_cidrs) {
            return Err(LogicalError::bad_request(INVALID_CREDENTIALS));
        }
        let mut auth = user.token.to_auth(&format!("userpass-{name}"), name, req.remote_addr);
        auth.metadata.insert("username".into(), Value::String(name.to_string()));
        Ok(Some(Response { auth: Some(auth), ..Default::default() }))
    }
}

#[async_trait]
impl Handler for UserPass {
    type Route = Route;

    fn backend_type(&self) -> &'static str {
        "userpass"
    }

    /// The rows; `login`'s is flagged unauthenticated (reachable without a token).
    fn paths(&self) -> &Paths<Route> {
        &self.paths
    }

    async fn handle(&self, route: Route, req: Request, fields: FieldData) -> Result<Option<Response>> {
        self.dispatch(route, req, &fields).await
    }

    /// A write to a missing user is a `create`.
    async fn exists(&self, route: Route, req: &Request, fields: &FieldData) -> Result<Option<bool>> {
        match route {
            Route::User => {
                let name = fields.str("username").map(str::to_lowercase).unwrap_or_default();
                Ok(Some(req.storage.get(&user_key(&name)).await?.is_some()))
            }
            _ => Ok(None),
        }
    }
}

impl UserPass {
    /// Serves a routed request (the ignored-parameters warning is added around it).
    async fn dispatch(&self, route: Route, req: Request, f: &FieldData) -> Result<Option<Response>> {
        let name = f.str("username").map(str::to_lowercase).unwrap_or_default();
        match (route, req.operation) {
            (Route::List, _) => {
                let keys = req.storage.list("user/").await?;
                if keys.is_empty() {
                    return Ok(None);
                }
                Ok(Some(Response::list(keys)))
            }
            (Route::User, Operation::Read) => {
                let Some(user) = load_user(&req, &name).await? else {
                    return Ok(None);
                };
                let mut out = Map::new();
                user.token.to_response(&mut out);
                Ok(Some(Response::data(out)))
            }
            (Route::User, Operation::Create | Operation::Update) => {
                self.write_user(&req, &name, f.str("password")).await
            }
            (Route::User, Operation::Delete) => {
                req.storage.delete(&user_key(&name)).await?;
                Ok(None)
            }
            (Route::Password, _) => {
                let Some(mut user) = load_user(&req, &name).await? else {
                    return Err(LogicalError::internal("username does not exist"));
                };
                let password = match f.str("password") {
                    Some(p) if !p.is_empty() => p.to_string(),
                    _ => return Err(LogicalError::bad_request(MISSING_PASSWORD_ON_CREATE)),
                };
                user.password_hash = blocking(move || hash_password(&password)).await??;
                save_user(&req, &name, &user).await?;
                Ok(None)
            }
            (Route::Policies, _) => {
                let Some(mut user) = load_user(&req, &name).await? else {
                    return Err(LogicalError::internal("username does not exist"));
                };
                let mut only_policies = Map::new();
                for k in ["token_policies", "policies"] {
                    if let Some(v) = req.data.get(k) {
                        only_policies.insert(k.to_string(), v.clone());
                    }
                }
                user.token.update_from(&only_policies)?;
                save_user(&req, &name, &user).await?;
                Ok(None)
            }
            (Route::Login, _) => self.login(&req, &name, f.str("password")).await,
            _ => Err(LogicalError::unsupported_operation()),
        }
    }
}

#[cfg(test)]
mod hash_tests {
    use super::*;
    use argon2::password_hash::{PasswordHasher, PasswordVerifier};

    /// Hashes written before the pooled-memory change (by the argon2 crate's own hasher) still
    /// verify, and the crate's verifier accepts the new ones: the stored format is unchanged.
    #[test]
    fn pooled_hashing_is_compatible_with_the_argon2_crate_both_ways() {
        let salt = SaltString::encode_b64(&[7u8; 16]).unwrap();
        let old = hasher().hash_password(b"hunter2", &salt).unwrap().to_string();
        assert!(verify_password("hunter2", &old));
        assert!(!verify_password("hunter3", &old));

        let new = hash_password("correct horse").unwrap();
        assert!(new.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{new}");
        let parsed = PasswordHash::new(&new).unwrap();
        assert!(hasher().verify_password(b"correct horse", &parsed).is_ok());
        assert!(hasher().verify_password(b"wrong", &parsed).is_err());
        assert_ne!(hash_password("correct horse").unwrap(), new, "a fresh salt each time");
        assert!(!verify_password("x", "not a phc string"));
        // Other parameters in the string are honoured (m=8 MiB here).
        let small = Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::new(8192, 1, 1, None).unwrap());
        let phc = small.hash_password(b"pw", &salt).unwrap().to_string();
        assert!(verify_password("pw", &phc) && !verify_password("pw2", &phc));
    }
}

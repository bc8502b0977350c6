//! Fetching a plugin binary into the plugin directory, shared by `coffer plugin install` and
//! the server's declared plugins (`plugin "type" "name" { url = … }`).
//!
//! Nothing from the network is trusted before it is checked: the download streams into a
//! hidden temporary file created owner-read/write only (0600) in the plugin directory, hashed
//! as it comes (SHA-256, and BLAKE2b for a minisign signature) and cut off past the size cap;
//! then the signature is verified with the trusted public key (when one is given), then the
//! SHA-256 is compared with the pinned one, and only then is the file made executable (0700)
//! and renamed to its final name. On any failure the temporary file is removed: nothing
//! half-installed is left, and nothing unchecked is ever executable.

use minisign_verify::{PublicKey, Signature};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
pub use ureq::Agent;

/// Why a download, a signature or a check failed: the operator's message, and the error that
/// caused it (an I/O, HTTP, TLS or minisign error) kept as the source.
#[derive(Debug)]
pub struct FetchError {
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl FetchError {
    fn msg(message: impl Into<String>) -> FetchError {
        FetchError { message: message.into(), source: None }
    }

    fn with(message: impl Into<String>, source: impl std::error::Error + Send + Sync + 'static) -> FetchError {
        FetchError { message: message.into(), source: Some(Box::new(source)) }
    }

    /// The same error, its message followed by `: more`.
    fn and(self, more: &str) -> FetchError {
        FetchError { message: format!("{}: {more}", self.message), source: self.source }
    }
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for FetchError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// Largest signature file accepted (a minisign signature is a few hundred bytes).
const MAX_SIGNATURE: u64 = 64 * 1024;

/// A trusted minisign public key and the detached signature the binary must carry.
pub struct Trust {
    pub public_key: PublicKey,
    pub signature: Signature,
    /// Where the signature came from, for messages.
    pub signature_source: String,
}

impl Trust {
    /// The signature's trusted comment (signed with the binary: minisign puts the signing
    /// time and file name there).
    pub fn trusted_comment(&self) -> &str {
        self.signature.trusted_comment()
    }
}

/// A minisign public key: the base64 line (`RW…`), the two lines of a `minisign.pub` file, or
/// the path of such a file.
pub fn parse_public_key(s: &str) -> Result<PublicKey, FetchError> {
    let t = s.trim();
    if let Ok(k) = PublicKey::from_base64(t) {
        return Ok(k);
    }
    if let Ok(k) = PublicKey::decode(t) {
        return Ok(k);
    }
    if !t.contains('\n') && Path::new(t).is_file() {
        let text = std::fs::read_to_string(t)
            .map_err(|e| FetchError::with(format!("cannot read the public key file {t:?}: {e}"), e))?;
        return PublicKey::decode(text.trim())
            .or_else(|_| PublicKey::from_base64(text.trim()))
            .map_err(|e| FetchError::with(format!("{t:?} is not a minisign public key file: {e}"), e));
    }
    Err(FetchError::msg(
        "the public key is not a minisign public key (the base64 line starting with RW, or a minisign.pub file)",
    ))
}

fn is_url(s: &str) -> bool {
    let l = s.to_ascii_lowercase();
    l.starts_with("https://") || l.starts_with("http://")
}

/// Reads the detached signature at `source` (a URL, or a file path), size-capped.
pub fn load_signature(agent: &ureq::Agent, source: &str) -> Result<Signature, FetchError> {
    let text = if is_url(source) {
        let resp = agent
            .get(source)
            .call()
            .map_err(|e| FetchError::with(format!("cannot download the signature {source}: {e}"), e))?;
        let status = resp.status().as_u16();
        if status != 200 {
            return Err(FetchError::msg(format!(
                "cannot download the signature {source}: the server answered HTTP {status}"
            )));
        }
        resp.into_body()
            .into_with_config()
            .limit(MAX_SIGNATURE)
            .read_to_string()
            .map_err(|e| FetchError::with(format!("cannot read the signature {source}: {e}"), e))?
    } else {
        let meta = std::fs::metadata(source)
            .map_err(|e| FetchError::with(format!("cannot read the signature {source:?}: {e}"), e))?;
        if meta.len() > MAX_SIGNATURE {
            return Err(FetchError::msg(format!("the signature {source:?} is larger than {MAX_SIGNATURE} bytes")));
        }
        std::fs::read_to_string(source)
            .map_err(|e| FetchError::with(format!("cannot read the signature {source:?}: {e}"), e))?
    };
    Signature::decode(&text).map_err(|e| FetchError::with(format!("{source} is not a minisign signature: {e}"), e))
}

/// Why a signature does not verify, in the operator's words.
fn signature_error(e: minisign_verify::Error, source: &str) -> FetchError {
    use minisign_verify::Error as E;
    let message = match &e {
        E::UnexpectedKeyId => {
            format!("the signature {source} was made with another key than the trusted public key")
        }
        E::UnsupportedLegacyMode | E::UnexpectedAlgorithm => format!(
            "the signature {source} is a legacy (not pre-hashed) minisign signature: sign with minisign 0.8 or later"
        ),
        E::InvalidSignature => format!(
            "the signature {source} does not verify with the trusted public key: the binary is not the one that was signed"
        ),
        other => format!("the signature {source} cannot be checked: {other}"),
    };
    FetchError::with(message, e)
}

/// An HTTP agent for downloads: HTTPS only unless `allow_http`, trusting `ca_cert` (a PEM
/// file) when given, else the bundled web roots.
pub fn agent(allow_http: bool, ca_cert: Option<&str>, skip_verify: bool) -> Result<ureq::Agent, FetchError> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let mut tls = ureq::tls::TlsConfig::builder().disable_verification(skip_verify);
    if let Some(path) = ca_cert {
        let pem = std::fs::read(path)
            .map_err(|e| FetchError::with(format!("cannot read CA certificate {path:?}: {e}"), e))?;
        let certs: Vec<_> = ureq::tls::parse_pem(&pem)
            .filter_map(|i| match i {
                Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                _ => None,
            })
            .collect();
        if certs.is_empty() {
            return Err(FetchError::msg(format!("no certificate found in {path:?}")));
        }
        tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(&certs));
    }
    let config = ureq::Agent::config_builder()
        .https_only(!allow_http)
        .http_status_as_error(false)
        .user_agent(concat!("coffer/", env!("CARGO_PKG_VERSION")))
        .tls_config(tls.build())
        .timeout_connect(Some(std::time::Duration::from_secs(30)))
        .timeout_global(Some(std::time::Duration::from_secs(30 * 60)))
        .build();
    Ok(ureq::Agent::new_with_config(config))
}

/// A file being downloaded into the plugin directory: removed on drop unless kept.
struct Partial {
    path: PathBuf,
    file: Option<std::fs::File>,
    keep: bool,
}

impl Partial {
    fn create(dir: &Path, final_name: &str) -> std::io::Result<Partial> {
        let nonce =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        let path = dir.join(format!(".{final_name}.download-{}-{nonce}", std::process::id()));
        let mut o = std::fs::OpenOptions::new();
        o.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
        let file = o.open(&path)?;
        Ok(Partial { path, file: Some(file), keep: false })
    }
}

impl Drop for Partial {
    fn drop(&mut self) {
        self.file.take();
        if !self.keep {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// SHA-256 of a file, lower-case hex; with `trust`, the file's signature is verified too.
fn digest_file(path: &Path, trust: Option<&Trust>) -> Result<String, FetchError> {
    let mut f =
        std::fs::File::open(path).map_err(|e| FetchError::with(format!("cannot read {}: {e}", path.display()), e))?;
    let mut h = Sha256::new();
    let mut verifier = match trust {
        Some(t) => Some(t.public_key.verify_stream(&t.signature).map_err(|e| signature_error(e, &t.signature_source))?),
        None => None,
    };
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f.read(&mut buf).map_err(|e| FetchError::with(format!("cannot read {}: {e}", path.display()), e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        if let Some(v) = verifier.as_mut() {
            v.update(&buf[..n]);
        }
    }
    if let (Some(v), Some(t)) = (verifier.as_mut(), trust) {
        v.finalize().map_err(|e| signature_error(e, &t.signature_source))?;
    }
    Ok(hex(&h.finalize()))
}

/// SHA-256 of a file, lower-case hex.
pub fn sha256_file(path: &Path) -> Result<String, FetchError> {
    digest_file(path, None)
}

/// What is at `path` already: `Absent`, `Matches` (the pinned digest, and the signature
/// verifies when `trust` is given), or `Differs` (another digest).
#[derive(Debug, PartialEq, Eq)]
pub enum Present {
    Absent,
    Matches,
    Differs(String),
}

/// Checks a file already in the plugin directory against the pinned digest (and signature).
/// A signature that does not verify over a file with the pinned digest is an error.
pub fn check_present(path: &Path, sha256: &str, trust: Option<&Trust>) -> Result<Present, FetchError> {
    if !path.exists() {
        return Ok(Present::Absent);
    }
    let have = sha256_file(path)?;
    if have != sha256 {
        return Ok(Present::Differs(have));
    }
    if trust.is_some() {
        digest_file(path, trust)?;
    }
    Ok(Present::Matches)
}

/// One download: `url` into `dir/file_name`, refused unless its SHA-256 is `sha256` (lower-case
/// hex), it is at most `max_size` bytes and, with `trust`, its signature verifies.
pub struct Download<'a> {
    pub url: &'a str,
    pub dir: &'a Path,
    pub file_name: &'a str,
    pub sha256: &'a str,
    pub max_size: u64,
    pub trust: Option<&'a Trust>,
}

/// Downloads, checks and places the binary (replacing a file of that name only once the new
/// one has passed every check). Returns its size.
pub fn download(agent: &ureq::Agent, d: &Download<'_>) -> Result<u64, FetchError> {
    let url = d.url;
    let resp = agent.get(url).call().map_err(|e| FetchError::with(format!("cannot download {url}: {e}"), e))?;
    let status = resp.status().as_u16();
    if status != 200 {
        return Err(FetchError::msg(format!("cannot download {url}: the server answered HTTP {status}")));
    }
    let announced =
        resp.headers().get("content-length").and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u64>().ok());
    if let Some(n) = announced.filter(|n| *n > d.max_size) {
        return Err(FetchError::msg(format!(
            "{url} is {n} bytes, larger than the {} bytes allowed (plugin_download_max_size): nothing was installed",
            d.max_size
        )));
    }
    let mut part = Partial::create(d.dir, d.file_name)
        .map_err(|e| FetchError::with(format!("cannot write in the plugin directory {}: {e}", d.dir.display()), e))?;
    let mut reader = resp.into_body().into_with_config().limit(d.max_size.saturating_add(1)).reader();
    let mut hasher = Sha256::new();
    let mut verifier = match d.trust {
        Some(t) => Some(t.public_key.verify_stream(&t.signature).map_err(|e| signature_error(e, &t.signature_source))?),
        None => None,
    };
    let mut size: u64 = 0;
    let mut buf = vec![0u8; 64 * 1024];
    let path = part.path.clone();
    let file = part.file.as_mut().ok_or_else(|| FetchError::msg("download file closed"))?;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(n) => n,
            // The reader's own cap, one byte past ours: the body is too large.
            Err(_) if size >= d.max_size => d.max_size as usize + 1,
            Err(e) => return Err(FetchError::msg(format!("download of {url} failed: {e}"))),
        };
        if n == 0 {
            break;
        }
        size = size.saturating_add(n as u64);
        if size > d.max_size {
            return Err(FetchError::msg(format!(
                "{url} is larger than the {} bytes allowed (plugin_download_max_size): the download was stopped and \
                 nothing was installed",
                d.max_size
            )));
        }
        hasher.update(&buf[..n]);
        if let Some(v) = verifier.as_mut() {
            v.update(&buf[..n]);
        }
        file.write_all(&buf[..n]).map_err(|e| FetchError::with(format!("cannot write {}: {e}", path.display()), e))?;
    }
    file.sync_all().map_err(|e| FetchError::with(format!("cannot write {}: {e}", path.display()), e))?;
    // The signature first: a digest is only worth trusting once the signer is.
    if let (Some(v), Some(t)) = (verifier.as_mut(), d.trust) {
        v.finalize().map_err(|e| signature_error(e, &t.signature_source).and("nothing was installed"))?;
    }
    let actual = hex(&hasher.finalize());
    if actual != d.sha256 {
        return Err(FetchError::msg(format!(
            "SHA-256 mismatch for {url}:\n  expected   {}\n  downloaded {actual}\n\
             The download was discarded: nothing was installed or registered.",
            d.sha256
        )));
    }
    // Executable by its owner only (the server's user), whatever the umask.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&part.path, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| FetchError::with(format!("cannot make {} executable: {e}", part.path.display()), e))?;
    }
    part.file.take();
    let dest = d.dir.join(d.file_name);
    std::fs::rename(&part.path, &dest)
        .map_err(|e| FetchError::with(format!("cannot move the download to {}: {e}", dest.display()), e))?;
    part.keep = true;
    if let Ok(dir) = std::fs::File::open(d.dir) {
        let _ = dir.sync_all();
    }
    Ok(size)
}

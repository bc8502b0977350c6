//! Automatic snapshots on S3-compatible object storage: a bucket (and a key prefix in it) that
//! snapshot files are put in, listed from and deleted from. `rusty-s3` builds and signs each
//! request (AWS Signature V4, as a presigned URL valid for a minute) and parses S3's XML
//! answers; `ureq` with rustls sends it — no HTTP client or TLS stack of its own (decision
//! 0028). The calls block: callers run them on a blocking thread.
#![forbid(unsafe_code)]

use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};
use std::io::Read;
use std::time::Duration;
use zeroize::Zeroizing;

/// How long a signed request stays valid.
const SIGNED_FOR: Duration = Duration::from_secs(60);
/// The most of an error answer kept for the message.
const MAX_ERROR_BODY: u64 = 16 << 10;
/// The most of a listing answer read (one page of up to 1000 keys is far less).
const MAX_LIST_BODY: u64 = 16 << 20;

/// Where and how to reach the bucket (the `aws_*` fields of an automatic snapshot
/// configuration). `Debug` never shows the secret key or the session token.
#[derive(Clone, Default)]
pub struct S3Config {
    pub bucket: String,
    pub region: String,
    /// `https://host[:port]` of an S3-compatible server; AWS's regional endpoint when empty.
    pub endpoint: Option<String>,
    /// Plain HTTP to the endpoint (tests against a local server only).
    pub disable_tls: bool,
    /// `endpoint/bucket/key` URLs instead of `bucket.endpoint/key`.
    pub force_path_style: bool,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<Zeroizing<String>>,
    pub session_token: Option<Zeroizing<String>>,
    /// `x-amz-server-side-encryption` to ask for: `AES256` or `aws:kms`.
    pub server_side_encryption: Option<String>,
    /// The KMS key for `aws:kms` (the bucket's default key when `None`).
    pub kms_key_id: Option<String>,
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .field("disable_tls", &self.disable_tls)
            .field("force_path_style", &self.force_path_style)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &self.secret_access_key.as_ref().map(|_| "<redacted>"))
            .field("session_token", &self.session_token.as_ref().map(|_| "<redacted>"))
            .field("server_side_encryption", &self.server_side_encryption)
            .field("kms_key_id", &self.kms_key_id)
            .finish()
    }
}

/// Why an S3 call failed. Messages name the bucket, key and S3's error code and message,
/// never a credential (signed URLs are not quoted: they carry the access key id and signature).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum S3Error {
    /// The configuration cannot make a bucket URL.
    #[error("S3 configuration: {0}")]
    Config(String),
    /// No credentials given and none in the environment.
    #[error(
        "no S3 credentials: set aws_access_key_id and aws_secret_access_key, or AWS_ACCESS_KEY_ID and \
         AWS_SECRET_ACCESS_KEY in the server's environment"
    )]
    NoCredentials,
    /// The server could not be reached or the answer not read.
    #[error("S3 {op} of {what} at {endpoint}: {source}")]
    Transport {
        op: &'static str,
        what: String,
        endpoint: String,
        #[source]
        source: Box<ureq::Error>,
    },
    /// Reading the answer failed.
    #[error("S3 {op} of {what}: reading the answer failed: {source}")]
    Read {
        op: &'static str,
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// S3 answered with an error status.
    #[error("S3 {op} of {what} answered {status}: {message}")]
    Status { op: &'static str, what: String, status: u16, message: String },
    /// A listing that is not S3's XML.
    #[error("S3 listing of {what}: the answer is not a ListObjectsV2 result: {detail}")]
    Listing { what: String, detail: String },
}

/// An object under the prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    /// The full key.
    pub key: String,
    pub size: u64,
}

/// A bucket, ready to use.
pub struct S3Bucket {
    bucket: Bucket,
    endpoint: String,
    credentials: Credentials,
    sse: Option<String>,
    kms_key_id: Option<String>,
    agent: ureq::Agent,
}

impl std::fmt::Debug for S3Bucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Bucket").field("bucket", &self.bucket.name()).field("endpoint", &self.endpoint).finish()
    }
}

impl S3Bucket {
    /// Checks the configuration and builds the client; no request is sent. Without an access
    /// key in `cfg`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` (and `AWS_SESSION_TOKEN`)
    /// are read from the environment now.
    pub fn new(cfg: &S3Config) -> Result<Self, S3Error> {
        if cfg.bucket.is_empty() {
            return Err(S3Error::Config("aws_s3_bucket is empty".into()));
        }
        if cfg.region.is_empty() {
            return Err(S3Error::Config("aws_s3_region is empty".into()));
        }
        let scheme = if cfg.disable_tls { "http" } else { "https" };
        let endpoint = match cfg.endpoint.as_deref().map(str::trim).filter(|e| !e.is_empty()) {
            Some(e) if e.contains("://") => e.to_string(),
            Some(e) => format!("{scheme}://{e}"),
            None => format!("{scheme}://s3.{}.amazonaws.com", cfg.region),
        };
        let url = url::Url::parse(&endpoint)
            .map_err(|e| S3Error::Config(format!("aws_s3_endpoint {endpoint:?} is not a URL: {e}")))?;
        if cfg.disable_tls && url.scheme() == "https" {
            return Err(S3Error::Config(format!(
                "aws_s3_disable_tls is set but aws_s3_endpoint {endpoint:?} asks for https"
            )));
        }
        let style = if cfg.force_path_style { UrlStyle::Path } else { UrlStyle::VirtualHost };
        let bucket = Bucket::new(url, style, cfg.bucket.clone(), cfg.region.clone()).map_err(|e| {
            S3Error::Config(format!(
                "bucket {:?} at {endpoint}: {e}{}",
                cfg.bucket,
                if cfg.force_path_style {
                    ""
                } else {
                    " (an IP address or a bucket name with dots needs aws_s3_force_path_style)"
                }
            ))
        })?;
        let credentials = match (&cfg.access_key_id, &cfg.secret_access_key) {
            (Some(id), Some(secret)) => match &cfg.session_token {
                Some(t) => Credentials::new_with_token(id.clone(), secret.to_string(), t.to_string()),
                None => Credentials::new(id.clone(), secret.to_string()),
            },
            (None, None) => Credentials::from_env().ok_or(S3Error::NoCredentials)?,
            _ => {
                return Err(S3Error::Config(
                    "aws_access_key_id and aws_secret_access_key are given together or not at all".into(),
                ))
            }
        };
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(10)))
            .timeout_global(Some(Duration::from_secs(300)))
            .build();
        Ok(S3Bucket {
            bucket,
            endpoint,
            credentials,
            sse: cfg.server_side_encryption.clone(),
            kms_key_id: cfg.kms_key_id.clone(),
            agent: ureq::Agent::new_with_config(config),
        })
    }

    /// `s3://bucket/key`, as a snapshot's status names where it went.
    pub fn url_of(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket.name())
    }

    fn what(&self, key: &str) -> String {
        format!("{:?} in bucket {:?}", key, self.bucket.name())
    }

    fn send(
        &self,
        op: &'static str,
        key: &str,
        req: ureq::http::Request<Vec<u8>>,
    ) -> Result<ureq::http::Response<ureq::Body>, S3Error> {
        let resp = self.agent.run(req).map_err(|source| S3Error::Transport {
            op,
            what: self.what(key),
            endpoint: self.endpoint.clone(),
            source: Box::new(source),
        })?;
        let status = resp.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(resp);
        }
        let mut text = String::new();
        let _ = resp.into_body().into_reader().take(MAX_ERROR_BODY).read_to_string(&mut text);
        Err(S3Error::Status { op, what: self.what(key), status, message: s3_message(&text) })
    }

    /// Uploads `body` as `key` (one PUT: a snapshot up to S3's 5 GiB single-object limit).
    pub fn put(&self, key: &str, body: Vec<u8>) -> Result<(), S3Error> {
        let mut action = self.bucket.put_object(Some(&self.credentials), key);
        if let Some(sse) = &self.sse {
            action.headers_mut().insert("x-amz-server-side-encryption", sse.clone());
            if let Some(k) = &self.kms_key_id {
                action.headers_mut().insert("x-amz-server-side-encryption-aws-kms-key-id", k.clone());
            }
        }
        let url = action.sign(SIGNED_FOR);
        // ureq sends the body's Content-Length (S3 refuses chunked uploads of unknown length).
        let mut req = ureq::http::Request::put(url.as_str()).header("content-type", "application/octet-stream");
        if let Some(sse) = &self.sse {
            req = req.header("x-amz-server-side-encryption", sse.as_str());
            if let Some(k) = &self.kms_key_id {
                req = req.header("x-amz-server-side-encryption-aws-kms-key-id", k.as_str());
            }
        }
        let req = req.body(body).map_err(|e| S3Error::Config(format!("request for {}: {e}", self.what(key))))?;
        self.send("upload", key, req).map(drop)
    }

    /// Every object whose key starts with `prefix`, following continuation tokens.
    pub fn list(&self, prefix: &str) -> Result<Vec<Object>, S3Error> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut action = self.bucket.list_objects_v2(Some(&self.credentials));
            action.with_prefix(prefix);
            if let Some(t) = &token {
                action.with_continuation_token(t.clone());
            }
            let url = action.sign(SIGNED_FOR);
            let req = ureq::http::Request::get(url.as_str())
                .body(Vec::new())
                .map_err(|e| S3Error::Config(format!("request for {}: {e}", self.what(prefix))))?;
            let resp = self.send("listing", prefix, req)?;
            let mut text = String::new();
            resp.into_body()
                .into_reader()
                .take(MAX_LIST_BODY)
                .read_to_string(&mut text)
                .map_err(|source| S3Error::Read { op: "listing", what: self.what(prefix), source })?;
            let page = rusty_s3::actions::ListObjectsV2::parse_response(&text)
                .map_err(|e| S3Error::Listing { what: self.what(prefix), detail: e.to_string() })?;
            out.extend(page.contents.into_iter().map(|c| Object { key: c.key, size: c.size.unwrap_or(0) }));
            match page.next_continuation_token {
                Some(t) => token = Some(t),
                None => return Ok(out),
            }
        }
    }

    /// Deletes `key` (S3 answers success for a key that is already gone).
    pub fn delete(&self, key: &str) -> Result<(), S3Error> {
        let url = self.bucket.delete_object(Some(&self.credentials), key).sign(SIGNED_FOR);
        let req = ureq::http::Request::delete(url.as_str())
            .body(Vec::new())
            .map_err(|e| S3Error::Config(format!("request for {}: {e}", self.what(key))))?;
        self.send("deletion", key, req).map(drop)
    }
}

/// S3's `<Code>` and `<Message>` from an error answer, or the start of the text.
fn s3_message(text: &str) -> String {
    let tag = |name: &str| {
        let open = format!("<{name}>");
        let start = text.find(&open)? + open.len();
        let end = text[start..].find(&format!("</{name}>"))? + start;
        Some(text[start..end].to_string())
    };
    match (tag("Code"), tag("Message")) {
        (Some(c), Some(m)) => format!("{c}: {m}"),
        (Some(c), None) => c,
        _ if text.trim().is_empty() => "no error message".into(),
        _ => text.chars().take(200).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> S3Config {
        S3Config {
            bucket: "snaps".into(),
            region: "us-east-1".into(),
            access_key_id: Some("AKIDEXAMPLE".into()),
            secret_access_key: Some(Zeroizing::new("very-secret-key".into())),
            ..Default::default()
        }
    }

    #[test]
    fn the_secret_key_never_shows_in_debug_output() {
        let text = format!("{:?}", cfg());
        assert!(!text.contains("very-secret-key"), "{text}");
        assert!(text.contains("AKIDEXAMPLE") && text.contains("<redacted>"));
    }

    #[test]
    fn endpoints_and_url_styles_are_checked_before_any_request() {
        let b = S3Bucket::new(&cfg()).unwrap();
        assert_eq!(b.endpoint, "https://s3.us-east-1.amazonaws.com");
        assert_eq!(b.url_of("p/x.snap"), "s3://snaps/p/x.snap");
        let mut c = cfg();
        c.endpoint = Some("127.0.0.1:9000".into());
        c.disable_tls = true;
        let err = S3Bucket::new(&c).unwrap_err().to_string();
        assert!(err.contains("aws_s3_force_path_style"), "an IP endpoint needs path style: {err}");
        c.force_path_style = true;
        assert_eq!(S3Bucket::new(&c).unwrap().endpoint, "http://127.0.0.1:9000");
        c.endpoint = Some("https://127.0.0.1:9000".into());
        assert!(S3Bucket::new(&c).unwrap_err().to_string().contains("aws_s3_disable_tls"));
        let mut c = cfg();
        c.secret_access_key = None;
        assert!(S3Bucket::new(&c).unwrap_err().to_string().contains("together"));
    }

    #[test]
    fn error_answers_give_s3s_code_and_message() {
        let xml = "<?xml version=\"1.0\"?><Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message></Error>";
        assert_eq!(s3_message(xml), "NoSuchBucket: The specified bucket does not exist");
        assert_eq!(s3_message(""), "no error message");
    }
}

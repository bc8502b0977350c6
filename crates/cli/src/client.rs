//! A small blocking HTTP client for the Vault API.

use serde_json::Value;
use std::io::Read;

pub struct Client {
    pub addr: String,
    pub token: Option<String>,
    /// `-wrap-ttl` / `VAULT_WRAP_TTL`: ask the server to wrap every answer.
    pub wrap_ttl: Option<String>,
    agent: ureq::Agent,
}

/// What went wrong talking to the server.
#[derive(Debug)]
pub enum ApiError {
    /// Could not reach the server (exit code 1).
    Transport(String),
    /// The server answered with an error status (exit code 2).
    Status { method: String, url: String, code: u16, errors: Vec<String> },
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiError::Transport(m) => f.write_str(m),
            ApiError::Status { method, url, code, errors } => {
                write!(f, "Error making API request.\n\nURL: {method} {url}\nCode: {code}. Errors:\n\n")?;
                for e in errors {
                    writeln!(f, "* {e}")?;
                }
                Ok(())
            }
        }
    }
}

impl ApiError {
    pub fn exit_code(&self) -> i32 {
        match self {
            ApiError::Transport(_) => 1,
            ApiError::Status { .. } => 2,
        }
    }
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Status { code, .. } => Some(*code),
            _ => None,
        }
    }
}

fn env_any(names: &[&str]) -> Option<String> {
    names.iter().find_map(|n| std::env::var(n).ok().filter(|v| !v.is_empty()))
}

/// Why the CLI's HTTP client could not be set up from its flags and environment.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    #[error("cannot read {what} {path:?}: {source}")]
    Read {
        what: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("no certificate found in {0:?}")]
    NoCertificate(String),
    #[error("no private key found in {0:?}")]
    NoPrivateKey(String),
    #[error("-client-cert and -client-key (VAULT_CLIENT_CERT and VAULT_CLIENT_KEY) must be set together")]
    ClientCertPair,
}

impl Client {
    /// Builds a client from flags and the environment (`BAO_*` before `VAULT_*`). The
    /// `-client-cert`/`-client-key` flags win over `BAO_CLIENT_CERT`/`VAULT_CLIENT_CERT` and
    /// their `_KEY` pair.
    pub fn from_env(
        address: Option<&str>,
        skip_verify: bool,
        ca_cert: Option<&str>,
        client_cert: Option<&str>,
        client_key: Option<&str>,
    ) -> Result<Client, SetupError> {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let addr = address
            .map(str::to_string)
            .or_else(|| env_any(&["BAO_ADDR", "VAULT_ADDR"]))
            .unwrap_or_else(|| "https://127.0.0.1:8200".into())
            .trim_end_matches('/')
            .to_string();
        let token = env_any(&["BAO_TOKEN", "VAULT_TOKEN"]).or_else(|| {
            let home = std::env::var_os("HOME")?;
            let t = std::fs::read_to_string(std::path::Path::new(&home).join(".vault-token")).ok()?;
            Some(t.trim().to_string()).filter(|t| !t.is_empty())
        });
        let skip = skip_verify
            || env_any(&["BAO_SKIP_VERIFY", "VAULT_SKIP_VERIFY"])
                .is_some_and(|v| matches!(v.as_str(), "1" | "true" | "t"));
        let mut tls = ureq::tls::TlsConfig::builder().disable_verification(skip);
        if let Some(path) = ca_cert.map(str::to_string).or_else(|| env_any(&["BAO_CACERT", "VAULT_CACERT"])) {
            let pem = std::fs::read(&path).map_err(|source| SetupError::Read {
                what: "CA certificate",
                path: path.clone(),
                source,
            })?;
            let certs: Vec<_> = ureq::tls::parse_pem(&pem)
                .filter_map(|i| match i {
                    Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                    _ => None,
                })
                .collect();
            if certs.is_empty() {
                return Err(SetupError::NoCertificate(path));
            }
            tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(&certs));
        }
        // A client certificate for listeners that require one (VAULT_CLIENT_CERT/_KEY, as bao).
        let flag = |v: Option<&str>| v.filter(|s| !s.is_empty()).map(str::to_string);
        match (
            flag(client_cert).or_else(|| env_any(&["BAO_CLIENT_CERT", "VAULT_CLIENT_CERT"])),
            flag(client_key).or_else(|| env_any(&["BAO_CLIENT_KEY", "VAULT_CLIENT_KEY"])),
        ) {
            (Some(cert), Some(key)) => {
                let read = |p: &str, what: &'static str| {
                    std::fs::read(p).map_err(|source| SetupError::Read { what, path: p.to_string(), source })
                };
                let cert_pem = read(&cert, "client certificate")?;
                let key_pem = read(&key, "client key")?;
                let chain: Vec<_> = ureq::tls::parse_pem(&cert_pem)
                    .filter_map(|i| match i {
                        Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                        _ => None,
                    })
                    .collect();
                if chain.is_empty() {
                    return Err(SetupError::NoCertificate(cert));
                }
                let pk = ureq::tls::parse_pem(&key_pem)
                    .find_map(|i| match i {
                        Ok(ureq::tls::PemItem::PrivateKey(k)) => Some(k),
                        _ => None,
                    })
                    .ok_or_else(|| SetupError::NoPrivateKey(key.clone()))?;
                tls = tls.client_cert(Some(ureq::tls::ClientCert::new_with_certs(&chain, pk)));
            }
            (None, None) => {}
            _ => return Err(SetupError::ClientCertPair),
        }
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .tls_config(tls.build())
            .timeout_global(Some(std::time::Duration::from_secs(60)))
            .build();
        let wrap_ttl =
            std::env::var("BAO_WRAP_TTL").or_else(|_| std::env::var("VAULT_WRAP_TTL")).ok().filter(|v| !v.is_empty());
        Ok(Client { addr, token, wrap_ttl, agent: ureq::Agent::new_with_config(config) })
    }

    /// The same client sending `token` (or no token) instead.
    pub fn with_token(&self, token: Option<&str>) -> Client {
        Client {
            addr: self.addr.clone(),
            token: token.map(str::to_string),
            wrap_ttl: self.wrap_ttl.clone(),
            agent: self.agent.clone(),
        }
    }

    /// Streams a GET's body to `sink` as it arrives (`sys/monitor`), without the global
    /// timeout; an error status is returned like `request` returns it.
    pub fn stream(&self, path: &str, sink: &mut dyn std::io::Write) -> Result<(), ApiError> {
        let url = format!("{}/v1/{}", self.addr, path.trim_start_matches('/'));
        let mut b = ureq::http::Request::builder().method("GET").uri(&url).header("X-Vault-Request", "true");
        if let Some(t) = &self.token {
            b = b.header("X-Vault-Token", t);
        }
        let req = b.body(Vec::new()).map_err(|e| ApiError::Transport(e.to_string()))?;
        let agent: ureq::Agent =
            ureq::Agent::config_builder().http_status_as_error(false).timeout_global(None).build().into();
        let agent = if self.addr.starts_with("https") { self.agent.clone() } else { agent };
        let resp = agent.run(req).map_err(|e| ApiError::Transport(format!("GET {url}: {e}")))?;
        let code = resp.status().as_u16();
        let mut reader = resp.into_body().into_reader();
        if !(200..300).contains(&code) {
            let mut text = String::new();
            let _ = reader.read_to_string(&mut text);
            let errors = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|j| j.get("errors").and_then(Value::as_array).cloned())
                .map(|a| a.iter().filter_map(|e| e.as_str().map(str::to_string)).collect())
                .unwrap_or_default();
            return Err(ApiError::Status { method: "GET".into(), url, code, errors });
        }
        let mut buf = [0u8; 8192];
        loop {
            let n = reader.read(&mut buf).map_err(|e| ApiError::Transport(e.to_string()))?;
            if n == 0 {
                return Ok(());
            }
            sink.write_all(&buf[..n]).and_then(|_| sink.flush()).map_err(|e| ApiError::Transport(e.to_string()))?;
        }
    }

    /// Sends `body` as it is (`application/octet-stream`: a snapshot).
    pub fn send_bytes(&self, method: &str, path: &str, body: Vec<u8>) -> Result<(), ApiError> {
        let url = format!("{}/v1/{}", self.addr, path.trim_start_matches('/'));
        let mut b = ureq::http::Request::builder()
            .method(method)
            .uri(&url)
            .header("X-Vault-Request", "true")
            .header("Content-Type", "application/octet-stream");
        if let Some(t) = &self.token {
            b = b.header("X-Vault-Token", t);
        }
        let req = b.body(body).map_err(|e| ApiError::Transport(e.to_string()))?;
        let resp = self.agent.run(req).map_err(|e| ApiError::Transport(format!("{method} {url}: {e}")))?;
        let code = resp.status().as_u16();
        let mut text = String::new();
        let _ = resp.into_body().into_reader().read_to_string(&mut text);
        if (200..300).contains(&code) {
            return Ok(());
        }
        let errors = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|j| j.get("errors").and_then(Value::as_array).cloned())
            .map(|a| a.iter().filter_map(|e| e.as_str().map(str::to_string)).collect())
            .unwrap_or_default();
        Err(ApiError::Status { method: method.into(), url, code, errors })
    }

    /// Sends a request; `Ok(None)` for 204 and 404-with-no-errors on reads.
    pub fn request(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Option<Value>, ApiError> {
        let url = format!("{}/v1/{}", self.addr, path.trim_start_matches('/'));
        let mut b = ureq::http::Request::builder().method(method).uri(&url).header("X-Vault-Request", "true");
        if let Some(t) = &self.token {
            b = b.header("X-Vault-Token", t);
        }
        // As the bao CLI: sys/wrapping/wrap is always wrapped, for 5 minutes unless told otherwise.
        let wrap = match &self.wrap_ttl {
            Some(t) => Some(t.as_str()),
            None if path.trim_start_matches('/') == "sys/wrapping/wrap" => Some("5m"),
            None => None,
        };
        if let Some(t) = wrap {
            b = b.header("X-Vault-Wrap-TTL", t);
        }
        let payload = body.map(|v| serde_json::to_vec(v).unwrap_or_default()).unwrap_or_default();
        let req = b.body(payload).map_err(|e| ApiError::Transport(e.to_string()))?;
        let resp = self.agent.run(req).map_err(|e| ApiError::Transport(format!("{method} {url}: {e}")))?;
        let code = resp.status().as_u16();
        let mut text = String::new();
        resp.into_body().into_reader().read_to_string(&mut text).map_err(|e| ApiError::Transport(e.to_string()))?;
        let json: Option<Value> = if text.trim().is_empty() { None } else { serde_json::from_str(&text).ok() };
        if (200..300).contains(&code) {
            return Ok(json);
        }
        let errors = json
            .as_ref()
            .and_then(|j| j.get("errors"))
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|e| e.as_str().map(str::to_string)).collect())
            .unwrap_or_default();
        Err(ApiError::Status { method: method.into(), url, code, errors })
    }
}

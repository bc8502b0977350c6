//! The transit seal: the key-encryption key is encrypted by a transit key on another server
//! (OpenBao, Vault or Coffer: `POST <mount>/encrypt/<key>` and `<mount>/decrypt/<key>`).
//!
//! Configured with Vault's `seal "transit"` options. Seal-specific variables
//! (`VAULT_TRANSIT_SEAL_KEY_NAME`, `VAULT_TRANSIT_SEAL_MOUNT_PATH`, `VAULT_TRANSIT_SEAL_TOKEN`,
//! `VAULT_TRANSIT_SEAL_ADDR`, `VAULT_TRANSIT_SEAL_DISABLE_RENEWAL`, and their `BAO_` spellings)
//! override the file, as in Vault. The generic client variables (`VAULT_ADDR`, `VAULT_TOKEN`,
//! `VAULT_NAMESPACE`, `VAULT_CACERT`, `VAULT_SKIP_VERIFY`, `VAULT_TLS_SERVER_NAME`) only fill in
//! options the file leaves out: a server's own `VAULT_ADDR` usually points at itself.
//!
//! The blob stored is the transit ciphertext (`vault:v1:…`). The token is held zeroized and
//! never printed. This crate does HTTP, so it lives outside the core; the `coffer` binary
//! injects it.
#![forbid(unsafe_code)]

use async_trait::async_trait;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use coffer_seal::{Seal, SealError};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use zeroize::Zeroizing;

/// The `seal "transit"` settings after environment overrides.
pub struct TransitConfig {
    pub address: String,
    token: Zeroizing<String>,
    pub key_name: String,
    pub mount_path: String,
    pub namespace: Option<String>,
    pub tls_ca_cert: Option<String>,
    pub tls_skip_verify: bool,
    pub tls_server_name: Option<String>,
    pub disable_renewal: bool,
}

impl std::fmt::Debug for TransitConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransitConfig")
            .field("address", &self.address)
            .field("token", &"<redacted>")
            .field("key_name", &self.key_name)
            .field("mount_path", &self.mount_path)
            .field("namespace", &self.namespace)
            .field("tls_ca_cert", &self.tls_ca_cert)
            .field("tls_skip_verify", &self.tls_skip_verify)
            .field("tls_server_name", &self.tls_server_name)
            .finish()
    }
}

fn parse_bool(name: &str, v: &str) -> Result<bool, SealError> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "t" | "yes" => Ok(true),
        "false" | "0" | "f" | "no" | "" => Ok(false),
        _ => Err(SealError::Config(format!("seal \"transit\": {name} = {v:?} is not a boolean"))),
    }
}

impl TransitConfig {
    pub fn from_options(
        options: &BTreeMap<String, String>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, SealError> {
        const KNOWN: &[&str] = &[
            "address",
            "token",
            "key_name",
            "mount_path",
            "namespace",
            "tls_ca_cert",
            "tls_skip_verify",
            "tls_server_name",
            "disable_renewal",
            "key_id_prefix",
            "disabled",
        ];
        if let Some(k) = options.keys().find(|k| !KNOWN.contains(&k.as_str())) {
            return Err(SealError::Config(format!(
                "seal \"transit\": option {k:?} is not supported (supported: {})",
                KNOWN.join(", ")
            )));
        }
        let env_any = |names: &[&str]| -> Option<String> {
            names
                .iter()
                .find_map(|n| env(&format!("BAO_{n}")).or_else(|| env(&format!("VAULT_{n}"))).filter(|v| !v.is_empty()))
        };
        let opt = |k: &str| options.get(k).cloned().filter(|v| !v.is_empty());
        // Seal-specific variables win over the file; generic ones only fill in.
        let specific_then_file_then_generic = |specific: &str, key: &str, generic: Option<&str>| {
            env_any(&[specific]).or_else(|| opt(key)).or_else(|| generic.and_then(|g| env_any(&[g])))
        };
        let address = specific_then_file_then_generic("TRANSIT_SEAL_ADDR", "address", Some("ADDR"))
            .ok_or_else(|| SealError::Config("seal \"transit\": address is required".into()))?;
        let token =
            Zeroizing::new(specific_then_file_then_generic("TRANSIT_SEAL_TOKEN", "token", Some("TOKEN")).ok_or_else(
                || SealError::Config("seal \"transit\": token (VAULT_TRANSIT_SEAL_TOKEN) is required".into()),
            )?);
        let key_name = specific_then_file_then_generic("TRANSIT_SEAL_KEY_NAME", "key_name", None)
            .ok_or_else(|| SealError::Config("seal \"transit\": key_name is required".into()))?;
        let mount_path = specific_then_file_then_generic("TRANSIT_SEAL_MOUNT_PATH", "mount_path", None)
            .ok_or_else(|| SealError::Config("seal \"transit\": mount_path is required".into()))?;
        let namespace = specific_then_file_then_generic("TRANSIT_SEAL_NAMESPACE", "namespace", Some("NAMESPACE"));
        let tls_ca_cert = specific_then_file_then_generic("TRANSIT_SEAL_CACERT", "tls_ca_cert", Some("CACERT"));
        let tls_server_name =
            specific_then_file_then_generic("TRANSIT_SEAL_TLS_SERVER_NAME", "tls_server_name", Some("TLS_SERVER_NAME"));
        let tls_skip_verify =
            specific_then_file_then_generic("TRANSIT_SEAL_SKIP_VERIFY", "tls_skip_verify", Some("SKIP_VERIFY"))
                .map(|v| parse_bool("tls_skip_verify", &v))
                .transpose()?
                .unwrap_or(false);
        let disable_renewal = specific_then_file_then_generic("TRANSIT_SEAL_DISABLE_RENEWAL", "disable_renewal", None)
            .map(|v| parse_bool("disable_renewal", &v))
            .transpose()?
            .unwrap_or(false);
        if !(address.starts_with("http://") || address.starts_with("https://")) {
            return Err(SealError::Config(format!(
                "seal \"transit\": address {address:?} must start with http:// or https://"
            )));
        }
        Ok(TransitConfig {
            address: address.trim_end_matches('/').to_string(),
            token,
            key_name,
            mount_path: mount_path.trim_matches('/').to_string(),
            namespace,
            tls_ca_cert,
            tls_skip_verify,
            tls_server_name,
            disable_renewal,
        })
    }
}

struct Inner {
    cfg: TransitConfig,
    agent: ureq::Agent,
}

/// The transit auto-unseal seal.
pub struct TransitSeal {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for TransitSeal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransitSeal").field("config", &self.inner.cfg).finish()
    }
}

impl Inner {
    /// One JSON request to the transit server. Transport failures and 5xx answers are
    /// `Unavailable` (retried); 4xx are `Failed`, with the server's messages (never the token).
    fn call(&self, op: &str, body: &Value) -> Result<Value, SealError> {
        self.call_path(op, &format!("{}/{op}/{}", self.cfg.mount_path, self.cfg.key_name), body)
    }

    fn call_path(&self, op: &str, path: &str, body: &Value) -> Result<Value, SealError> {
        let url = format!("{}/v1/{path}", self.cfg.address);
        let mut req = ureq::http::Request::builder()
            .method("POST")
            .uri(&url)
            .header("X-Vault-Token", self.cfg.token.as_str())
            .header("X-Vault-Request", "true")
            .header("Content-Type", "application/json");
        if let Some(ns) = &self.cfg.namespace {
            req = req.header("X-Vault-Namespace", ns);
        }
        let payload = Zeroizing::new(serde_json::to_vec(body).map_err(|e| SealError::Failed(e.to_string()))?);
        let req = req.body(payload.to_vec()).map_err(|e| SealError::Failed(e.to_string()))?;
        let resp = self
            .agent
            .run(req)
            .map_err(|e| SealError::Unavailable(format!("transit server {} unreachable: {e}", self.cfg.address)))?;
        let code = resp.status().as_u16();
        let mut text = Zeroizing::new(String::new());
        std::io::Read::read_to_string(&mut resp.into_body().into_reader(), &mut text)
            .map_err(|e| SealError::Unavailable(format!("transit server {}: {e}", self.cfg.address)))?;
        let json: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if (200..300).contains(&code) {
            return Ok(json);
        }
        let errors: Vec<String> = json
            .get("errors")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|e| e.as_str().map(str::to_string)).collect())
            .unwrap_or_default();
        let msg = format!(
            "transit server {} answered {code} to {op} with key {:?} at {}/: {}",
            self.cfg.address,
            self.cfg.key_name,
            self.cfg.mount_path,
            if errors.is_empty() { "no error message".to_string() } else { errors.join("; ") }
        );
        if code >= 500 {
            // 503 is also what a sealed transit server answers: it may come back.
            Err(SealError::Unavailable(msg))
        } else {
            Err(SealError::Failed(msg))
        }
    }

    fn encrypt(&self, plaintext: &[u8]) -> Result<Vec<u8>, SealError> {
        let body = json!({ "plaintext": B64.encode(plaintext) });
        let v = self.call("encrypt", &body)?;
        let ct = v["data"]["ciphertext"]
            .as_str()
            .ok_or_else(|| SealError::Failed("transit encrypt answer has no ciphertext".into()))?;
        Ok(ct.as_bytes().to_vec())
    }

    fn decrypt(&self, blob: &[u8]) -> Result<Zeroizing<Vec<u8>>, SealError> {
        let ct = std::str::from_utf8(blob)
            .map_err(|e| SealError::failed_because("the wrapped key is not a transit ciphertext", e))?;
        let v = self.call("decrypt", &json!({ "ciphertext": ct }))?;
        let pt = Zeroizing::new(
            v["data"]["plaintext"]
                .as_str()
                .ok_or_else(|| SealError::Failed("transit decrypt answer has no plaintext".into()))?
                .to_string(),
        );
        B64.decode(pt.as_bytes())
            .map(Zeroizing::new)
            // drop-cause: a base64 error quotes a byte of the answer, which is key material.
            .map_err(|_| SealError::Failed("transit decrypt answer is not base64".into()))
    }
}

impl TransitSeal {
    pub fn new(cfg: TransitConfig) -> Result<Self, SealError> {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let mut tls = ureq::tls::TlsConfig::builder().disable_verification(cfg.tls_skip_verify);
        if let Some(path) = &cfg.tls_ca_cert {
            let pem = std::fs::read(path)
                .map_err(|e| SealError::Config(format!("seal \"transit\": cannot read tls_ca_cert {path:?}: {e}")))?;
            let certs: Vec<_> = ureq::tls::parse_pem(&pem)
                .filter_map(|i| match i {
                    Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                    _ => None,
                })
                .collect();
            if certs.is_empty() {
                return Err(SealError::Config(format!("seal \"transit\": no certificate in tls_ca_cert {path:?}")));
            }
            tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(&certs));
        }
        if cfg.tls_server_name.is_some() {
            tracing::warn!("seal \"transit\": tls_server_name is accepted but not acted on yet");
        }
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .tls_config(tls.build())
            .timeout_global(Some(Duration::from_secs(15)))
            .timeout_connect(Some(Duration::from_secs(5)))
            .build();
        let renew = !cfg.disable_renewal;
        let inner = Arc::new(Inner { cfg, agent: ureq::Agent::new_with_config(config) });
        if renew {
            spawn_renewal(Arc::downgrade(&inner));
        }
        Ok(TransitSeal { inner })
    }
}

/// Keeps a renewable token alive, as Vault's transit seal does unless `disable_renewal`:
/// looks the token up, renews it at half its TTL, and stops for a token that does not expire
/// or cannot be renewed. Failures (server away) are retried every 10 s. Ends with the seal.
fn spawn_renewal(weak: std::sync::Weak<Inner>) {
    let spawned = std::thread::Builder::new().name("transit-seal-renew".into()).spawn(move || {
        let retry = Duration::from_secs(10);
        loop {
            let Some(inner) = weak.upgrade() else { return };
            let wait = match inner.call_path("lookup-self", "auth/token/lookup-self", &json!({})) {
                Ok(v) => {
                    let ttl = v["data"]["ttl"].as_u64().unwrap_or(0);
                    if ttl == 0 || !v["data"]["renewable"].as_bool().unwrap_or(false) {
                        tracing::debug!("transit seal token does not expire or is not renewable: not renewing");
                        return;
                    }
                    let half = Duration::from_secs((ttl / 2).max(1));
                    drop(inner);
                    std::thread::sleep(half);
                    let Some(inner) = weak.upgrade() else { return };
                    match inner.call_path("renew-self", "auth/token/renew-self", &json!({})) {
                        Ok(_) => {
                            tracing::debug!("transit seal token renewed");
                            Duration::ZERO
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "renewing the transit seal token failed; retrying");
                            retry
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "looking up the transit seal token failed; retrying");
                    retry
                }
            };
            std::thread::sleep(wait);
        }
    });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start the transit seal token renewal");
    }
}

#[async_trait]
impl Seal for TransitSeal {
    fn seal_type(&self) -> &'static str {
        "transit"
    }
    fn auto_unseal(&self) -> bool {
        true
    }
    async fn wrap(&self, plaintext: &[u8]) -> Result<Vec<u8>, SealError> {
        let inner = self.inner.clone();
        let pt = Zeroizing::new(plaintext.to_vec());
        tokio::task::spawn_blocking(move || inner.encrypt(&pt))
            .await
            .map_err(|e| SealError::Failed(format!("transit task failed: {e}")))?
    }
    async fn unwrap(&self, blob: &[u8]) -> Result<Zeroizing<Vec<u8>>, SealError> {
        let inner = self.inner.clone();
        let blob = blob.to_vec();
        tokio::task::spawn_blocking(move || inner.decrypt(&blob))
            .await
            .map_err(|e| SealError::Failed(format!("transit task failed: {e}")))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn specific_variables_win_generic_ones_only_fill_in() {
        let o = opts(&[
            ("address", "http://file:8200"),
            ("token", "s.file"),
            ("key_name", "k"),
            ("mount_path", "transit/"),
        ]);
        let env = |k: &str| match k {
            "VAULT_ADDR" => Some("http://generic:8200".to_string()),
            "VAULT_TRANSIT_SEAL_TOKEN" => Some("s.env".to_string()),
            "BAO_TRANSIT_SEAL_KEY_NAME" => Some("bao-key".to_string()),
            _ => None,
        };
        let c = TransitConfig::from_options(&o, env).unwrap();
        assert_eq!(c.address, "http://file:8200");
        assert_eq!(c.token.as_str(), "s.env");
        assert_eq!(c.key_name, "bao-key");
        assert_eq!(c.mount_path, "transit");
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("s.env") && dbg.contains("redacted"), "{dbg}");
        let c = TransitConfig::from_options(&opts(&[("key_name", "k"), ("mount_path", "t")]), |k| match k {
            "VAULT_ADDR" => Some("http://generic:8200".to_string()),
            "VAULT_TOKEN" => Some("s.generic".to_string()),
            _ => None,
        })
        .unwrap();
        assert_eq!(c.address, "http://generic:8200");
    }

    #[test]
    fn missing_and_unknown_options_are_named() {
        let e = TransitConfig::from_options(&opts(&[("address", "http://x")]), |_| None).unwrap_err();
        assert!(e.to_string().contains("token"), "{e}");
        let e = TransitConfig::from_options(&opts(&[("adress", "http://x")]), |_| None).unwrap_err();
        assert!(e.to_string().contains("adress"), "{e}");
    }

    #[tokio::test]
    async fn unreachable_server_is_transient_and_names_the_address() {
        let o =
            opts(&[("address", "http://127.0.0.1:9"), ("token", "t"), ("key_name", "k"), ("mount_path", "transit")]);
        let s = TransitSeal::new(TransitConfig::from_options(&o, |_| None).unwrap()).unwrap();
        let e = s.wrap(b"0123456789abcdef0123456789abcdef").await.unwrap_err();
        assert!(e.is_transient(), "{e:?}");
        assert!(e.to_string().contains("127.0.0.1:9"), "{e}");
    }
}

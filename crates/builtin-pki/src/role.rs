//! PKI roles: which names a certificate may carry, its key type, usages and lifetime.

use crate::ca::{KeySpec, Result, Subject, Usage};
use coffer_sdk::field::FieldType;
use coffer_sdk::framework::{FieldData, FieldSpec};
use coffer_sdk::LogicalError;
use rcgen::{ExtendedKeyUsagePurpose, KeyUsagePurpose};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

fn bad(msg: impl Into<String>) -> LogicalError {
    LogicalError::bad_request(msg)
}

#[derive(Serialize, Deserialize, Clone)]
pub struct Role {
    pub ttl: i64,
    pub max_ttl: i64,
    pub allow_localhost: bool,
    pub allowed_domains: Vec<String>,
    pub allow_bare_domains: bool,
    pub allow_subdomains: bool,
    pub allow_glob_domains: bool,
    pub allow_wildcard_certificates: bool,
    pub allow_any_name: bool,
    pub enforce_hostnames: bool,
    pub allow_ip_sans: bool,
    pub allowed_uri_sans: Vec<String>,
    pub server_flag: bool,
    pub client_flag: bool,
    pub code_signing_flag: bool,
    pub email_protection_flag: bool,
    pub key_type: String,
    pub key_bits: i64,
    pub key_usage: Vec<String>,
    pub ext_key_usage: Vec<String>,
    pub use_csr_common_name: bool,
    pub use_csr_sans: bool,
    pub ou: Vec<String>,
    pub organization: Vec<String>,
    pub country: Vec<String>,
    pub locality: Vec<String>,
    pub province: Vec<String>,
    pub street_address: Vec<String>,
    pub postal_code: Vec<String>,
    pub no_store: bool,
    pub require_cn: bool,
    pub issuer_ref: String,
    pub not_before_duration: Option<i64>,
    /// Issued certificates get a lease; revoking the lease revokes the certificate.
    #[serde(default)]
    pub generate_lease: bool,
}

/// The fields of `roles/:name`.
pub fn fields() -> Vec<FieldSpec> {
    let list = |n: &'static str, d: &'static str| FieldSpec::new(n, FieldType::CommaStringSlice, d);
    let flag = |n: &'static str, d: &'static str, v: bool| FieldSpec::new(n, FieldType::Bool, d).default(json!(v));
    vec![
        FieldSpec::new("role", FieldType::String, "Name of the role"),
        FieldSpec::new("ttl", FieldType::DurationSecond, "Default lifetime of certificates"),
        FieldSpec::new("max_ttl", FieldType::DurationSecond, "Maximum lifetime of certificates"),
        flag("allow_localhost", "Allow localhost and localdomain", true),
        list("allowed_domains", "Domains the names may be in"),
        flag("allow_bare_domains", "Allow the allowed domains themselves", false),
        flag("allow_subdomains", "Allow names under the allowed domains", false),
        flag("allow_glob_domains", "Allowed domains may hold globs (*)", false),
        flag("allow_wildcard_certificates", "Allow wildcard names (*.example.com)", true),
        flag("allow_any_name", "Allow any name", false),
        flag("enforce_hostnames", "Names must be valid hostnames", true),
        flag("allow_ip_sans", "Allow IP addresses", true),
        list("allowed_uri_sans", "URI SANs allowed (globs)"),
        list("allowed_other_sans", "Refused: other SANs are not supported yet"),
        list("allowed_serial_numbers", "Refused: subject serial numbers are not supported yet"),
        flag("server_flag", "TLS server usage", true),
        flag("client_flag", "TLS client usage", true),
        flag("code_signing_flag", "Code signing usage", false),
        flag("email_protection_flag", "Email protection usage", false),
        FieldSpec::new("key_type", FieldType::String, "rsa, ec, ed25519 or any").default(json!("rsa")),
        FieldSpec::new("key_bits", FieldType::Int, "Key size; 0 for the type's default").default(json!(0)),
        FieldSpec::new("signature_bits", FieldType::Int, "Refused unless 0 or 256").default(json!(0)),
        FieldSpec::new("use_pss", FieldType::Bool, "Refused when true").default(json!(false)),
        list("key_usage", "Key usages (DigitalSignature, KeyAgreement, KeyEncipherment, …)"),
        list("ext_key_usage", "Extended key usages (ServerAuth, ClientAuth, …)"),
        list("ext_key_usage_oids", "Refused: custom extended key usage OIDs are not supported yet"),
        flag("use_csr_common_name", "Take the common name from the CSR", true),
        flag("use_csr_sans", "Take the SANs from the CSR", true),
        list("ou", "Organizational units"),
        list("organization", "Organizations"),
        list("country", "Countries"),
        list("locality", "Localities"),
        list("province", "Provinces"),
        list("street_address", "Street addresses"),
        list("postal_code", "Postal codes"),
        flag("generate_lease", "Give issued certificates a lease whose revocation revokes them", false),
        flag("no_store", "Do not store issued certificates (they cannot be revoked)", false),
        flag("require_cn", "A common name is required", true),
        list("policy_identifiers", "Refused: policy identifiers are not supported yet"),
        flag("basic_constraints_valid_for_non_ca", "Accepted: leaf certificates carry no basic constraints", false),
        FieldSpec::new("not_before_duration", FieldType::DurationSecond, "Backdating of NotBefore").default(json!(30)),
        FieldSpec::new("issuer_ref", FieldType::String, "The issuer certificates of this role come from")
            .default(json!("default")),
        flag("allow_token_displayname", "Refused when true", false),
        list("cn_validations", "email, hostname (accepted as given; hostname rules follow enforce_hostnames)"),
    ]
}

fn strs(f: &FieldData, name: &str) -> Option<Vec<String>> {
    f.get(name)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).filter(|s| !s.is_empty()).collect())
}

impl Role {
    /// sign-verbatim without a role: any name, the CSR's values.
    pub fn verbatim() -> Role {
        Role {
            ttl: 0,
            max_ttl: 0,
            allow_localhost: true,
            allowed_domains: vec![],
            allow_bare_domains: true,
            allow_subdomains: true,
            allow_glob_domains: true,
            allow_wildcard_certificates: true,
            allow_any_name: true,
            enforce_hostnames: false,
            allow_ip_sans: true,
            allowed_uri_sans: vec!["*".into()],
            server_flag: true,
            client_flag: true,
            code_signing_flag: false,
            email_protection_flag: false,
            key_type: "any".into(),
            key_bits: 0,
            key_usage: vec!["DigitalSignature".into(), "KeyAgreement".into(), "KeyEncipherment".into()],
            ext_key_usage: vec![],
            use_csr_common_name: true,
            use_csr_sans: true,
            ou: vec![],
            organization: vec![],
            country: vec![],
            locality: vec![],
            province: vec![],
            street_address: vec![],
            postal_code: vec![],
            no_store: false,
            require_cn: false,
            issuer_ref: "default".into(),
            not_before_duration: None,
            generate_lease: false,
        }
    }

    /// A role from a write, over the stored one (a write sets only what it names).
    pub fn from_fields(existing: Option<Role>, f: &FieldData, mount_max_ttl: i64) -> Result<Role> {
        for k in ["allowed_other_sans", "allowed_serial_numbers", "ext_key_usage_oids", "policy_identifiers"] {
            if strs(f, k).is_some_and(|v| !v.is_empty()) {
                return Err(bad(format!("{k} is not supported yet")));
            }
        }
        for k in ["use_pss", "allow_token_displayname"] {
            if f.bool(k).unwrap_or(false) {
                return Err(bad(format!("{k}=true is not supported yet")));
            }
        }
        if !matches!(f.int("signature_bits").unwrap_or(0), 0 | 256) {
            return Err(bad("signature_bits other than 256 is not supported yet"));
        }
        let base = existing.is_some();
        let mut r = existing.unwrap_or_else(|| Role { require_cn: true, ..Role::verbatim() });
        if !base {
            r.allow_any_name = false;
            r.allow_bare_domains = false;
            r.allow_subdomains = false;
            r.allow_glob_domains = false;
            r.enforce_hostnames = true;
            r.allowed_uri_sans = vec![];
            r.key_type = "rsa".into();
            r.key_usage = vec!["DigitalSignature".into(), "KeyAgreement".into(), "KeyEncipherment".into()];
        }
        let set_b = |slot: &mut bool, k: &str| {
            if !base || f.is_set(k) {
                if let Some(v) = f.bool(k) {
                    *slot = v;
                }
            }
        };
        set_b(&mut r.allow_localhost, "allow_localhost");
        set_b(&mut r.allow_bare_domains, "allow_bare_domains");
        set_b(&mut r.allow_subdomains, "allow_subdomains");
        set_b(&mut r.allow_glob_domains, "allow_glob_domains");
        set_b(&mut r.allow_wildcard_certificates, "allow_wildcard_certificates");
        set_b(&mut r.allow_any_name, "allow_any_name");
        set_b(&mut r.enforce_hostnames, "enforce_hostnames");
        set_b(&mut r.allow_ip_sans, "allow_ip_sans");
        set_b(&mut r.server_flag, "server_flag");
        set_b(&mut r.client_flag, "client_flag");
        set_b(&mut r.code_signing_flag, "code_signing_flag");
        set_b(&mut r.email_protection_flag, "email_protection_flag");
        set_b(&mut r.use_csr_common_name, "use_csr_common_name");
        set_b(&mut r.use_csr_sans, "use_csr_sans");
        set_b(&mut r.no_store, "no_store");
        set_b(&mut r.generate_lease, "generate_lease");
        set_b(&mut r.require_cn, "require_cn");
        let set_l = |slot: &mut Vec<String>, k: &str| {
            if f.is_set(k) {
                *slot = strs(f, k).unwrap_or_default();
            }
        };
        set_l(&mut r.allowed_domains, "allowed_domains");
        set_l(&mut r.allowed_uri_sans, "allowed_uri_sans");
        set_l(&mut r.key_usage, "key_usage");
        set_l(&mut r.ext_key_usage, "ext_key_usage");
        set_l(&mut r.ou, "ou");
        set_l(&mut r.organization, "organization");
        set_l(&mut r.country, "country");
        set_l(&mut r.locality, "locality");
        set_l(&mut r.province, "province");
        set_l(&mut r.street_address, "street_address");
        set_l(&mut r.postal_code, "postal_code");
        if f.is_set("ttl") {
            r.ttl = f.int("ttl").unwrap_or(0);
        }
        if f.is_set("max_ttl") {
            r.max_ttl = f.int("max_ttl").unwrap_or(0);
        }
        if f.is_set("not_before_duration") {
            r.not_before_duration = f.int("not_before_duration");
        }
        if f.is_set("issuer_ref") || !base {
            r.issuer_ref = f.str("issuer_ref").filter(|s| !s.is_empty()).unwrap_or("default").to_string();
        }
        if f.is_set("key_type") || !base {
            r.key_type = f.str("key_type").unwrap_or("rsa").to_string();
        }
        if f.is_set("key_bits") || !base {
            r.key_bits = f.int("key_bits").unwrap_or(0);
        }
        if r.key_type != "any" {
            KeySpec::parse(&r.key_type, r.key_bits)?;
        }
        if r.ttl < 0 || r.max_ttl < 0 {
            return Err(bad("ttl and max_ttl must not be negative"));
        }
        if r.max_ttl > 0 && r.ttl > r.max_ttl {
            return Err(bad("\"ttl\" value must be less than \"max_ttl\" value"));
        }
        let _ = mount_max_ttl;
        usages_from(&r.key_usage, &r.ext_key_usage, false)?;
        Ok(r)
    }

    pub fn to_data(&self) -> Map<String, Value> {
        let v = json!({
            "ttl": self.ttl, "max_ttl": self.max_ttl, "allow_localhost": self.allow_localhost,
            "allowed_domains": self.allowed_domains, "allow_bare_domains": self.allow_bare_domains,
            "allow_subdomains": self.allow_subdomains, "allow_glob_domains": self.allow_glob_domains,
            "allow_wildcard_certificates": self.allow_wildcard_certificates, "allow_any_name": self.allow_any_name,
            "enforce_hostnames": self.enforce_hostnames, "allow_ip_sans": self.allow_ip_sans,
            "allowed_uri_sans": self.allowed_uri_sans, "server_flag": self.server_flag, "client_flag": self.client_flag,
            "code_signing_flag": self.code_signing_flag, "email_protection_flag": self.email_protection_flag,
            "key_type": self.key_type, "key_bits": self.effective_bits(), "signature_bits": 256, "use_pss": false,
            "key_usage": self.key_usage, "ext_key_usage": self.ext_key_usage, "ext_key_usage_oids": [],
            "use_csr_common_name": self.use_csr_common_name, "use_csr_sans": self.use_csr_sans,
            "ou": self.ou, "organization": self.organization, "country": self.country, "locality": self.locality,
            "province": self.province, "street_address": self.street_address, "postal_code": self.postal_code,
            "generate_lease": self.generate_lease, "no_store": self.no_store, "require_cn": self.require_cn,
            "not_before_duration": self.not_before_duration.unwrap_or(30), "issuer_ref": self.issuer_ref,
            "allowed_other_sans": [], "allowed_serial_numbers": [], "policy_identifiers": [],
            "basic_constraints_valid_for_non_ca": false,
        });
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    fn effective_bits(&self) -> i64 {
        match (self.key_type.as_str(), self.key_bits) {
            ("rsa", 0) => 2048,
            ("ec", 0) => 256,
            (_, b) => b,
        }
    }

    /// The key `issue` generates.
    pub fn key_spec(&self) -> Result<KeySpec> {
        if self.key_type == "any" {
            return Err(bad("role key type \"any\" not allowed for issuing certificates, only signing"));
        }
        KeySpec::parse(&self.key_type, self.key_bits)
    }

    /// A CSR's key must be of the role's type and size.
    pub fn check_csr_key(&self, csr: &rcgen::CertificateSigningRequestParams) -> Result<()> {
        if self.key_type == "any" {
            return Ok(());
        }
        let alg = csr.public_key.algorithm();
        let kind = if alg == &rcgen::PKCS_ED25519 {
            "ed25519"
        } else if alg == &rcgen::PKCS_ECDSA_P256_SHA256
            || alg == &rcgen::PKCS_ECDSA_P384_SHA384
            || alg == &rcgen::PKCS_ECDSA_P521_SHA512
        {
            "ec"
        } else {
            "rsa"
        };
        if kind != self.key_type {
            return Err(bad(format!("role requires keys of type {} but the CSR's key is {kind}", self.key_type)));
        }
        if kind == "ec" {
            let bits = if alg == &rcgen::PKCS_ECDSA_P384_SHA384 {
                384
            } else if alg == &rcgen::PKCS_ECDSA_P521_SHA512 {
                521
            } else {
                256
            };
            if self.effective_bits() != bits {
                return Err(bad(format!(
                    "role requires a key of {} bits but the CSR's key has {bits}",
                    self.effective_bits()
                )));
            }
        }
        Ok(())
    }

    /// The role's subject fields, where the request gave none.
    pub fn apply_subject_defaults(&self, sub: &mut Subject) {
        let fill = |slot: &mut Vec<String>, v: &Vec<String>| {
            if slot.is_empty() {
                slot.clone_from(v);
            }
        };
        fill(&mut sub.ou, &self.ou);
        fill(&mut sub.organization, &self.organization);
        fill(&mut sub.country, &self.country);
        fill(&mut sub.locality, &self.locality);
        fill(&mut sub.province, &self.province);
        fill(&mut sub.street_address, &self.street_address);
        fill(&mut sub.postal_code, &self.postal_code);
    }

    /// Every name must be allowed by the role.
    pub fn check_names(&self, sub: &Subject) -> Result<()> {
        let mut names: Vec<&str> = sub.dns_names.iter().map(String::as_str).collect();
        names.extend(sub.emails.iter().map(String::as_str));
        if !sub.common_name.is_empty()
            && !names.contains(&sub.common_name.as_str())
            && sub.common_name.parse::<std::net::IpAddr>().is_err()
        {
            names.push(&sub.common_name);
        }
        for n in names {
            if !self.name_allowed(n) {
                return Err(bad(format!("subject alternate name {n} not allowed by this role")));
            }
        }
        if !sub.ips.is_empty() && !self.allow_ip_sans {
            return Err(bad(format!(
                "IP Subject Alternative Names are not allowed in this role, but was provided {}",
                sub.ips[0]
            )));
        }
        for u in &sub.uris {
            if !self.allowed_uri_sans.iter().any(|p| glob(p, u)) {
                return Err(bad(format!(
                    "URI Subject Alternative Names are not allowed in this role, but was provided {u}"
                )));
            }
        }
        Ok(())
    }

    fn name_allowed(&self, name: &str) -> bool {
        if self.allow_any_name {
            return !self.enforce_hostnames || valid_name(name, self.allow_wildcard_certificates);
        }
        let (host, is_email) = match name.rsplit_once('@') {
            Some((_, domain)) => (domain, true),
            None => (name, false),
        };
        if self.enforce_hostnames && !valid_name(host, self.allow_wildcard_certificates && !is_email) {
            return false;
        }
        if host.starts_with("*.") && !self.allow_wildcard_certificates {
            return false;
        }
        if self.allow_localhost
            && (host == "localhost"
                || host == "localdomain"
                || host.ends_with(".localhost")
                || host.ends_with(".localdomain"))
        {
            return true;
        }
        for pattern in &self.allowed_domains {
            let d = pattern.trim_start_matches("*.");
            if self.allow_bare_domains && host.eq_ignore_ascii_case(d) {
                return true;
            }
            if self.allow_subdomains {
                let bare = host.strip_prefix("*.").unwrap_or(host);
                let suffix = format!(".{}", d.to_ascii_lowercase());
                if bare.to_ascii_lowercase().ends_with(&suffix)
                    || (host.starts_with("*.") && bare.eq_ignore_ascii_case(d))
                {
                    return true;
                }
            }
            if self.allow_glob_domains
                && pattern.contains('*')
                && glob(&pattern.to_ascii_lowercase(), &host.to_ascii_lowercase())
            {
                return true;
            }
        }
        false
    }

    /// The usages of certificates of this role.
    pub fn usage(&self) -> Result<Usage> {
        let mut ext = self.ext_key_usage.clone();
        for (on, name) in [
            (self.server_flag, "ServerAuth"),
            (self.client_flag, "ClientAuth"),
            (self.code_signing_flag, "CodeSigning"),
            (self.email_protection_flag, "EmailProtection"),
        ] {
            if on && !ext.iter().any(|e| e.eq_ignore_ascii_case(name)) {
                ext.push(name.to_string());
            }
        }
        usages_from(&self.key_usage, &ext, false)
    }
}

/// Key usages and extended key usages by their names (as OpenBao writes them, any case).
pub fn usages_from(ku: &[String], eku: &[String], verbatim_defaults: bool) -> Result<Usage> {
    let mut key_usages = Vec::new();
    let ku: Vec<String> = if ku.is_empty() && verbatim_defaults {
        vec!["DigitalSignature".into(), "KeyAgreement".into(), "KeyEncipherment".into()]
    } else {
        ku.to_vec()
    };
    for k in &ku {
        key_usages.push(match k.to_ascii_lowercase().as_str() {
            "digitalsignature" => KeyUsagePurpose::DigitalSignature,
            "contentcommitment" | "nonrepudiation" => KeyUsagePurpose::ContentCommitment,
            "keyencipherment" => KeyUsagePurpose::KeyEncipherment,
            "dataencipherment" => KeyUsagePurpose::DataEncipherment,
            "keyagreement" => KeyUsagePurpose::KeyAgreement,
            "certsign" => KeyUsagePurpose::KeyCertSign,
            "crlsign" => KeyUsagePurpose::CrlSign,
            "encipheronly" => KeyUsagePurpose::EncipherOnly,
            "decipheronly" => KeyUsagePurpose::DecipherOnly,
            _ => return Err(bad(format!("unknown key usage: {k}"))),
        });
    }
    let mut ext = Vec::new();
    for e in eku {
        ext.push(match e.to_ascii_lowercase().as_str() {
            "serverauth" => ExtendedKeyUsagePurpose::ServerAuth,
            "clientauth" => ExtendedKeyUsagePurpose::ClientAuth,
            "codesigning" => ExtendedKeyUsagePurpose::CodeSigning,
            "emailprotection" => ExtendedKeyUsagePurpose::EmailProtection,
            "timestamping" => ExtendedKeyUsagePurpose::TimeStamping,
            "ocspsigning" => ExtendedKeyUsagePurpose::OcspSigning,
            "any" => ExtendedKeyUsagePurpose::Any,
            _ => return Err(bad(format!("unknown extended key usage: {e}"))),
        });
    }
    Ok(Usage::Leaf { key_usages, ext_key_usages: ext })
}

/// A hostname (or `*.`-wildcard one when allowed): labels of letters, digits and inner
/// hyphens.
fn valid_name(host: &str, wildcard_ok: bool) -> bool {
    let h = match host.strip_prefix("*.") {
        Some(rest) if wildcard_ok => rest,
        Some(_) => return false,
        None => host,
    };
    !h.is_empty()
        && h.len() <= 253
        && h.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

use coffer_sdk::strutil::glob_match as glob;

#[cfg(test)]
mod tests {
    use super::*;

    fn role(domains: &[&str]) -> Role {
        let mut r = Role::verbatim();
        r.allow_any_name = false;
        r.enforce_hostnames = true;
        r.allowed_domains = domains.iter().map(|s| s.to_string()).collect();
        r.allow_bare_domains = false;
        r.allow_subdomains = false;
        r.allow_glob_domains = false;
        r
    }

    #[test]
    fn names_follow_bare_subdomain_glob_and_localhost_rules() {
        let mut r = role(&["example.com"]);
        assert!(!r.name_allowed("example.com"), "bare needs allow_bare_domains");
        assert!(!r.name_allowed("www.example.com"), "subdomains need allow_subdomains");
        assert!(r.name_allowed("localhost"));
        r.allow_bare_domains = true;
        r.allow_subdomains = true;
        assert!(r.name_allowed("example.com") && r.name_allowed("a.b.example.com") && r.name_allowed("*.example.com"));
        assert!(!r.name_allowed("evilexample.com"), "a suffix is not a subdomain");
        assert!(!r.name_allowed("example.com.evil.org"));
        assert!(!r.name_allowed("bad_host!.example.com"), "enforce_hostnames");
        r.allow_wildcard_certificates = false;
        assert!(!r.name_allowed("*.example.com"));
        let mut g = role(&["*.dev.example.com"]);
        assert!(!g.name_allowed("a.dev.example.com"), "globs need allow_glob_domains");
        g.allow_glob_domains = true;
        assert!(g.name_allowed("a.dev.example.com") && !g.name_allowed("a.prod.example.com"));
        r.allow_localhost = false;
        assert!(!r.name_allowed("localhost"));
    }

    #[test]
    fn globs_match_runs_of_characters() {
        assert!(glob("spiffe://*", "spiffe://a/b"));
        assert!(glob("a*c*e", "abcde"));
        assert!(!glob("a*c", "abd"));
    }
}

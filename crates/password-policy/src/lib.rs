//! Password policies (`sys/policies/password/<name>`): HCL documents with a length and
//! charset rules (`rule "charset" { charset = "…" min-chars = N }`), and a generator that
//! draws every character uniformly from the system CSPRNG. Pure: storing policies and the
//! `sys/policies/password/` handlers live in the core.
//!
//! Errors are [`PasswordPolicyError`]; `From<PasswordPolicyError> for LogicalError` gives
//! the client-facing messages.

#![forbid(unsafe_code)]

use coffer_sdk::LogicalError;
use serde_json::Value;

/// What parsing a policy or generating from it can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PasswordPolicyError {
    #[error("invalid password policy: {0}")]
    Syntax(#[source] hcl::Error),
    #[error("invalid password policy: {0}")]
    Invalid(String),
    #[error(transparent)]
    Random(#[from] coffer_crypto::CryptoError),
    #[error("unable to generate a password satisfying the policy")]
    Unsatisfiable,
}

/// A refused policy is the client's mistake (400); a failed generation is an internal error.
impl From<PasswordPolicyError> for LogicalError {
    fn from(e: PasswordPolicyError) -> Self {
        match e {
            PasswordPolicyError::Syntax(_) | PasswordPolicyError::Invalid(_) => {
                LogicalError::bad_request(e.to_string()).with_source(e)
            }
            other => LogicalError::internal(other.to_string()).with_source(other),
        }
    }
}

type Result<T, E = PasswordPolicyError> = std::result::Result<T, E>;

const MAX_LENGTH: usize = 100;
const MIN_LENGTH: usize = 4;

/// A parsed password policy.
#[derive(Debug, Clone, PartialEq)]
pub struct PasswordPolicy {
    pub length: usize,
    pub rules: Vec<(Vec<char>, usize)>,
}

impl PasswordPolicy {
    /// The policy used when none is named: 20 characters, at least one lower-case letter,
    /// one upper-case letter, one digit and one '-'.
    pub fn default_policy() -> PasswordPolicy {
        PasswordPolicy {
            length: 20,
            rules: vec![
                ("abcdefghijklmnopqrstuvwxyz".chars().collect(), 1),
                ("ABCDEFGHIJKLMNOPQRSTUVWXYZ".chars().collect(), 1),
                ("0123456789".chars().collect(), 1),
                ("-".chars().collect(), 1),
            ],
        }
    }

    pub fn parse(text: &str) -> Result<PasswordPolicy> {
        let bad = PasswordPolicyError::Invalid;
        let body: hcl::Body = hcl::parse(text).map_err(PasswordPolicyError::Syntax)?;
        let mut length = None;
        let mut rules = Vec::new();
        for s in body.into_iter() {
            match s {
                hcl::Structure::Attribute(a) if a.key.as_str() == "length" => {
                    let v = serde_json::to_value(&a.expr).unwrap_or(Value::Null);
                    let n = v.as_u64().or_else(|| v.as_str().and_then(|s| s.parse().ok()));
                    length = Some(n.ok_or_else(|| bad("length must be a positive integer".into()))? as usize);
                }
                hcl::Structure::Block(b) if b.identifier.as_str() == "rule" => {
                    let kind = b.labels.first().map(|l| l.as_str().to_string()).unwrap_or_default();
                    if kind != "charset" {
                        return Err(bad(format!("unrecognized rule type {kind:?}")));
                    }
                    let v: Value = hcl::from_body(b.body).map_err(PasswordPolicyError::Syntax)?;
                    let charset = v.get("charset").and_then(Value::as_str).unwrap_or("");
                    if charset.is_empty() {
                        return Err(bad("a charset rule needs a non-empty charset".into()));
                    }
                    let min = v
                        .get("min-chars")
                        .or_else(|| v.get("min_chars"))
                        .map(|m| m.as_u64().ok_or_else(|| bad("min-chars must be a non-negative integer".into())))
                        .transpose()?
                        .unwrap_or(0) as usize;
                    let mut chars: Vec<char> = charset.chars().collect();
                    chars.sort_unstable();
                    chars.dedup();
                    rules.push((chars, min));
                }
                hcl::Structure::Attribute(a) => return Err(bad(format!("unknown setting {:?}", a.key.as_str()))),
                hcl::Structure::Block(b) => return Err(bad(format!("unknown block {:?}", b.identifier.as_str()))),
            }
        }
        let length = length.ok_or_else(|| bad("length is required".into()))?;
        if !(MIN_LENGTH..=MAX_LENGTH).contains(&length) {
            return Err(bad(format!("length must be between {MIN_LENGTH} and {MAX_LENGTH}")));
        }
        if rules.is_empty() {
            return Err(bad("at least one charset rule is required".into()));
        }
        let min_total: usize = rules.iter().map(|(_, m)| m).sum();
        if min_total > length {
            return Err(bad(format!("the rules need {min_total} characters but length is {length}")));
        }
        Ok(PasswordPolicy { length, rules })
    }

    /// Generates a password satisfying every rule.
    pub fn generate(&self) -> Result<String> {
        let mut all: Vec<char> = self.rules.iter().flat_map(|(c, _)| c.iter().copied()).collect();
        all.sort_unstable();
        all.dedup();
        for _ in 0..1000 {
            let mut out = String::with_capacity(self.length);
            while out.chars().count() < self.length {
                let buf = coffer_crypto::random_bytes(self.length * 4)?;
                for pair in buf.chunks(2) {
                    let r = u16::from_le_bytes([pair[0], *pair.get(1).unwrap_or(&0)]) as usize;
                    // Rejection sampling keeps the choice uniform.
                    let limit = (65536 / all.len()) * all.len();
                    if r < limit {
                        out.push(all[r % all.len()]);
                        if out.chars().count() == self.length {
                            break;
                        }
                    }
                }
            }
            if self.rules.iter().all(|(cs, min)| out.chars().filter(|c| cs.binary_search(c).is_ok()).count() >= *min) {
                return Ok(out);
            }
        }
        Err(PasswordPolicyError::Unsatisfiable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_passwords_follow_the_rules() {
        let p = PasswordPolicy::parse(
            "length = 12\nrule \"charset\" {\n  charset = \"abc\"\n  min-chars = 2\n}\nrule \"charset\" {\n  charset = \"0123456789\"\n  min-chars = 3\n}\n",
        )
        .unwrap();
        for _ in 0..50 {
            let pw = p.generate().unwrap();
            assert_eq!(pw.chars().count(), 12);
            assert!(pw.chars().filter(|c| "abc".contains(*c)).count() >= 2);
            assert!(pw.chars().filter(|c| c.is_ascii_digit()).count() >= 3);
            assert!(pw.chars().all(|c| "abc0123456789".contains(c)));
        }
        let d = PasswordPolicy::default_policy().generate().unwrap();
        assert_eq!(d.len(), 20);
    }

    #[test]
    fn impossible_or_malformed_policies_are_refused() {
        assert!(PasswordPolicy::parse("length = 3\nrule \"charset\" { charset = \"a\" }").is_err());
        assert!(PasswordPolicy::parse("length = 5\nrule \"charset\" {\n charset = \"a\"\n min-chars = 6\n}").is_err());
        assert!(PasswordPolicy::parse("length = 10").is_err());
        assert!(PasswordPolicy::parse("length = 10\nrule \"other\" { charset = \"a\" }").is_err());
        assert!(PasswordPolicy::parse("length = ").is_err());
    }
}

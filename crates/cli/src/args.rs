//! Go-style flags as Vault's CLI takes them: `-name=value`, `-name value`, `--name=value`,
//! boolean `-name`, flags before the positional arguments (parsing stops at the first
//! positional, as Go's flag package does), `--` ends flags.

use std::collections::HashMap;

/// Flags that take no value.
const BOOL_FLAGS: &[&str] = &[
    "reset",
    "migrate",
    "init",
    "cancel",
    "status",
    "verify",
    "generate-otp",
    "detailed",
    "orphan",
    "local",
    "seal-wrap",
    "force",
    "f",
    "tls-skip-verify",
    "no-print",
    "help",
    "h",
    "external-entropy-access",
    "no-store",
    "dev",
    "recursive",
    "r",
    "self",
    "accessor",
    "no-default-policy",
    "token-only",
    "renewable",
    "backup",
    "backup-retrieve",
    "backup-delete",
];

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Parsed {
    pub flags: HashMap<String, Vec<String>>,
    pub positional: Vec<String>,
}

impl Parsed {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.flags.get(name).and_then(|v| v.last()).map(String::as_str)
    }
    pub fn all(&self, name: &str) -> Vec<String> {
        self.flags.get(name).cloned().unwrap_or_default()
    }
    pub fn has(&self, name: &str) -> bool {
        match self.get(name) {
            Some(v) => !matches!(v, "false" | "0" | "f" | "FALSE" | "False"),
            None => false,
        }
    }
}

/// A flag given without the value it takes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("flag needs an argument: -{0}")]
pub struct MissingValue(pub String);

pub fn parse(args: &[String]) -> Result<Parsed, MissingValue> {
    let mut p = Parsed::default();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if a == "--" {
            p.positional.extend(args[i + 1..].iter().cloned());
            break;
        }
        if a == "-" || !a.starts_with('-') || a.len() < 2 {
            p.positional.extend(args[i..].iter().cloned());
            break;
        }
        let body = a.trim_start_matches('-');
        let (name, value) = match body.split_once('=') {
            Some((n, v)) => (n.to_string(), v.to_string()),
            None if BOOL_FLAGS.contains(&body) => (body.to_string(), "true".to_string()),
            None => {
                i += 1;
                let v = args.get(i).ok_or_else(|| MissingValue(body.to_string()))?;
                (body.to_string(), v.clone())
            }
        };
        p.flags.entry(name).or_default().push(value);
        i += 1;
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn go_style_flags_then_positionals() {
        let p = parse(&s(&["-path=kv1", "-description", "my kv", "-local", "kv", "-notaflag"])).unwrap();
        assert_eq!(p.get("path"), Some("kv1"));
        assert_eq!(p.get("description"), Some("my kv"));
        assert!(p.has("local"));
        assert_eq!(p.positional, vec!["kv", "-notaflag"]);
        let p = parse(&s(&["--format=json", "-reset=false", "--", "-x"])).unwrap();
        assert_eq!(p.get("format"), Some("json"));
        assert!(!p.has("reset"));
        assert_eq!(p.positional, vec!["-x"]);
        assert!(parse(&s(&["-address"])).is_err());
    }
}

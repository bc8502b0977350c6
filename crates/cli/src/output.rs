//! Output in Vault's table or JSON formats.

use crate::args::Parsed;
use serde_json::Value;

pub struct Out {
    pub json: bool,
}

impl Out {
    pub fn from_flags(p: &Parsed) -> Result<Out, String> {
        let f = p
            .get("format")
            .map(str::to_string)
            .or_else(|| std::env::var("BAO_FORMAT").ok())
            .or_else(|| std::env::var("VAULT_FORMAT").ok())
            .unwrap_or_else(|| "table".into());
        match f.as_str() {
            "table" | "" => Ok(Out { json: false }),
            "json" => Ok(Out { json: true }),
            other => Err(format!("invalid output format {other:?}: use table or json")),
        }
    }

    pub fn print_json(&self, v: &Value) {
        println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
    }
}

/// A value as the table shows it: strings bare, everything else as compact JSON.
pub fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "<nil>".into(),
        Value::Array(a) => format!("[{}]", a.iter().map(scalar).collect::<Vec<_>>().join(" ")),
        other => other.to_string(),
    }
}

pub fn duration(secs: i64) -> String {
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    match (h, m, s) {
        (0, 0, s) => format!("{s}s"),
        (0, m, 0) => format!("{m}m"),
        (0, m, s) => format!("{m}m{s}s"),
        (h, 0, 0) => format!("{h}h"),
        (h, m, 0) => format!("{h}h{m}m"),
        (h, m, s) => format!("{h}h{m}m{s}s"),
    }
}

pub fn banner(title: &str, value: &str) -> String {
    if value.is_empty() {
        format!("== {title} ==")
    } else {
        format!("== {title} ==\n{value}")
    }
}

pub fn print_columns(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(c.len());
            }
        }
    }
    let line = |cells: Vec<String>| {
        let n = cells.len();
        let mut s = String::new();
        for (i, c) in cells.into_iter().enumerate() {
            if i + 1 == n {
                s.push_str(&c);
            } else {
                s.push_str(&format!("{c:<w$}    ", w = widths[i]));
            }
        }
        println!("{}", s.trim_end());
    };
    line(header.iter().map(|h| h.to_string()).collect());
    line(header.iter().map(|h| "-".repeat(h.len())).collect());
    for r in rows {
        line(r.clone());
    }
}

pub fn print_kv_table(rows: &[(String, String)]) {
    let r: Vec<Vec<String>> = rows.iter().map(|(k, v)| vec![k.clone(), v.clone()]).collect();
    print_columns(&["Key", "Value"], &r);
}

/// Key/value lines without a header (as `operator key-status` prints them).
pub fn print_kv_table_plain(rows: &[(String, String)]) {
    let w = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (k, v) in rows {
        println!("{k:<w$}    {v}");
    }
}

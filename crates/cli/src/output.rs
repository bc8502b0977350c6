//! Output in Vault's table or JSON formats.

use crate::args::Parsed;
use serde_json::Value;

/// A `-format` (or `BAO_FORMAT`) other than `table` and `json`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid output format {0:?}: use table or json")]
pub struct UnknownFormat(pub String);

/// A duration flag that does not parse (Go's wording).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DurationError {
    #[error("time: invalid duration {input:?}")]
    Invalid {
        input: String,
        #[source]
        source: Option<std::num::ParseFloatError>,
    },
    #[error("time: missing unit in duration {0:?}")]
    MissingUnit(String),
    #[error("time: unknown unit {unit:?} in duration {input:?}")]
    UnknownUnit { unit: String, input: String },
}

pub struct Out {
    pub json: bool,
}

impl Out {
    pub fn from_flags(p: &Parsed) -> Result<Out, UnknownFormat> {
        let f = p
            .get("format")
            .map(str::to_string)
            .or_else(|| std::env::var("BAO_FORMAT").ok())
            .or_else(|| std::env::var("VAULT_FORMAT").ok())
            .unwrap_or_else(|| "table".into());
        match f.as_str() {
            "table" | "" => Ok(Out { json: false }),
            "json" => Ok(Out { json: true }),
            other => Err(UnknownFormat(other.to_string())),
        }
    }

    pub fn print_json(&self, v: &Value) {
        println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
    }
}

/// A value as the table shows it, the way Go's `%v` prints it: strings bare, `<nil>`,
/// `[a b]` for lists and `map[k:v]` (keys sorted) for objects.
pub fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "<nil>".into(),
        Value::Array(a) => format!("[{}]", a.iter().map(scalar).collect::<Vec<_>>().join(" ")),
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            format!(
                "map[{}]",
                keys.iter().map(|k| format!("{k}:{}", scalar(&m[k.as_str()]))).collect::<Vec<_>>().join(" ")
            )
        }
        other => other.to_string(),
    }
}

/// A list of strings as Go's `%q` prints a `[]string`: `["a" "b"]` (`[]` for null).
pub fn quoted_list(v: Option<&Value>) -> String {
    let items: Vec<String> = v
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|x| {
            serde_json::to_string(&Value::String(x.as_str().map(str::to_string).unwrap_or_else(|| scalar(x))))
                .unwrap_or_default()
        })
        .collect();
    format!("[{}]", items.join(" "))
}

/// Seconds as Vault's tables show durations: Go's `Duration.String()` without a trailing
/// `0s` or a `0m` after hours (`1h`, `1h5s`, `1m30s`, `768h`).
pub fn duration(secs: i64) -> String {
    if secs == 0 {
        return "0s".into();
    }
    let mut s = go_duration(i128::from(secs) * 1_000_000_000);
    if s.ends_with("m0s") {
        s.truncate(s.len() - 2);
    }
    if let Some(i) = s.find("h0m") {
        s.replace_range(i + 1..i + 3, "");
    }
    s
}

/// Nanoseconds as Go's `time.Duration.String()` writes them (`1h0m0s`, `1m30s`, `1.5s`, `300ms`, `0s`).
pub fn go_duration(nanos: i128) -> String {
    if nanos == 0 {
        return "0s".into();
    }
    let sign = if nanos < 0 { "-" } else { "" };
    let n = nanos.unsigned_abs();
    let frac = |v: u128, unit: u128| -> String {
        let whole = v / unit;
        let rest = v % unit;
        if rest == 0 {
            return whole.to_string();
        }
        let digits = unit.to_string().len() - 1;
        let f = format!("{rest:0digits$}");
        format!("{whole}.{}", f.trim_end_matches('0'))
    };
    if n < 1_000 {
        return format!("{sign}{n}ns");
    }
    if n < 1_000_000 {
        return format!("{sign}{}µs", frac(n, 1_000));
    }
    if n < 1_000_000_000 {
        return format!("{sign}{}ms", frac(n, 1_000_000));
    }
    let secs_part = n % 60_000_000_000;
    let mins = n / 60_000_000_000;
    let (h, m) = (mins / 60, mins % 60);
    let s = frac(secs_part, 1_000_000_000);
    if h > 0 {
        format!("{sign}{h}h{m}m{s}s")
    } else if m > 0 {
        format!("{sign}{m}m{s}s")
    } else {
        format!("{sign}{s}s")
    }
}

/// Parses a duration as Vault's CLI flags take it: bare seconds (`90`), Go durations
/// (`1h30m`, `1.5s`, `300ms`) or days (`7d`). Returns nanoseconds.
pub fn parse_duration(input: &str) -> Result<i128, DurationError> {
    let s = input.trim();
    if s.is_empty() {
        return Ok(0);
    }
    if let Ok(secs) = s.parse::<i64>() {
        return Ok(i128::from(secs) * 1_000_000_000);
    }
    if let Some(d) = s.strip_suffix('d') {
        if let Ok(days) = d.parse::<i64>() {
            return Ok(i128::from(days) * 86_400 * 1_000_000_000);
        }
    }
    let bad = || DurationError::Invalid { input: s.to_string(), source: None };
    let (neg, mut rest) = match s.as_bytes()[0] {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        if num_len == 0 {
            return Err(bad());
        }
        let num: f64 =
            rest[..num_len].parse().map_err(|e| DurationError::Invalid { input: s.to_string(), source: Some(e) })?;
        rest = &rest[num_len..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let unit: f64 = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "" => return Err(DurationError::MissingUnit(s.to_string())),
            u => return Err(DurationError::UnknownUnit { unit: u.to_string(), input: s.to_string() }),
        };
        rest = &rest[unit_len..];
        total += num * unit;
    }
    let n = total.round() as i128;
    Ok(if neg { -n } else { n })
}

/// Whether Vault's table output shows the key's integer value as a duration.
pub fn looks_like_duration(k: &str) -> bool {
    k == "period"
        || k.ends_with("_period")
        || k == "ttl"
        || k.ends_with("_ttl")
        || k == "duration"
        || k.ends_with("_duration")
        || k == "lease_max"
        || k == "ttl_max"
}

/// Word-wraps at `width` columns (words longer than that stay whole), as Vault's
/// `wrapAtLength` does; existing line breaks are kept.
pub fn wrap(s: &str, width: usize) -> String {
    let mut out = Vec::new();
    for line in s.split('\n') {
        let mut cur = String::new();
        for word in line.split(' ').filter(|w| !w.is_empty()) {
            if !cur.is_empty() && cur.chars().count() + 1 + word.chars().count() > width {
                out.push(std::mem::take(&mut cur));
            }
            if !cur.is_empty() {
                cur.push(' ');
            }
            cur.push_str(word);
        }
        out.push(cur);
    }
    out.join("\n")
}

/// A JSON value with every object's keys sorted, as Go marshals maps.
pub fn sorted(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            Value::Object(keys.into_iter().map(|k| (k.clone(), sorted(&m[k.as_str()]))).collect())
        }
        Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
        other => other.clone(),
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

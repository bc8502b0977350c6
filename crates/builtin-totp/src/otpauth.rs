//! `otpauth://totp/<issuer>:<account>?secret=…` URLs: a parser with the leniencies of Go's
//! `net/url` that OpenBao's import relies on, and the writer for generated keys.

/// The parts of an otpauth URL that an import uses. Empty strings mean "not given".
#[derive(Debug, Default, PartialEq, Eq)]
pub struct OtpUrl {
    /// The label (path without its leading `/`), percent-decoded.
    pub label: String,
    /// Query parameters in order, decoded; malformed pairs are dropped as Go drops them.
    pub query: Vec<(String, String)>,
}

impl OtpUrl {
    /// The first value of `key`, when given and non-empty.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
    }
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-decoding; `plus_is_space` for query components. None on a malformed escape or
/// when the result is not UTF-8.
fn unescape(s: &str, plus_is_space: bool) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hi = b.get(i + 1).copied().and_then(hex_val)?;
                let lo = b.get(i + 2).copied().and_then(hex_val)?;
                out.push(hi << 4 | lo);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// The scheme of a URL reference, as Go's parser finds it: letters first, then letters,
/// digits, `+`, `-` or `.`, up to a `:`.
fn split_scheme(s: &str) -> Option<(&str, &str)> {
    let colon = s.find(':')?;
    let scheme = &s[..colon];
    let mut chars = scheme.chars();
    let first = chars.next()?;
    if !first.is_ascii_alphabetic() || !chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')) {
        return None;
    }
    Some((scheme, &s[colon + 1..]))
}

/// Parses `raw`. None where Go's `url.Parse` errors: control characters, malformed escapes
/// in the host or path, a colon in the first segment of a scheme-less reference.
pub fn parse(raw: &str) -> Option<OtpUrl> {
    if raw.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return None;
    }
    let without_fragment = raw.split_once('#').map_or(raw, |(a, _)| a);
    let (rest, query) = match without_fragment.split_once('?') {
        Some((r, q)) => (r, q),
        None => (without_fragment, ""),
    };
    let path = match split_scheme(rest) {
        Some((_, after)) => match after.strip_prefix("//") {
            Some(authority_and_path) => {
                let (host, path) = match authority_and_path.find('/') {
                    Some(i) => authority_and_path.split_at(i),
                    None => (authority_and_path, ""),
                };
                unescape(host, false)?;
                path
            }
            // "otpauth:totp/…" is opaque: no path at all.
            None if !after.starts_with('/') => "",
            None => after,
        },
        None => {
            if rest.split('/').next().is_some_and(|seg| seg.contains(':')) {
                return None;
            }
            rest
        }
    };
    let path = unescape(path, false)?;
    let label = path.strip_prefix('/').unwrap_or(&path).to_string();
    let mut pairs = Vec::new();
    for part in query.split('&') {
        if part.is_empty() || part.contains(';') {
            continue;
        }
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        if let (Some(k), Some(v)) = (unescape(k, true), unescape(v, true)) {
            pairs.push((k, v));
        }
    }
    Some(OtpUrl { label, query: pairs })
}

fn escape(s: &str, keep: &[u8]) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') || keep.contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The URL of a generated key. The label is escaped as Go escapes a URL path; query values
/// as a path segment, except that `&`, `=` and `+` are escaped too so that every value
/// reads back as written.
pub fn build(issuer: &str, account: &str, algorithm: &str, digits: u32, period: u64, secret_b32: &str) -> String {
    let label = escape(&format!("{issuer}:{account}"), b"$&+,/:;=@");
    let q = |v: &str| escape(v, b"$:@");
    format!(
        "otpauth://totp/{label}?algorithm={}&digits={digits}&issuer={}&period={period}&secret={}",
        q(algorithm),
        q(issuer),
        q(secret_b32)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_labels_queries_and_go_leniencies() {
        let u = parse("otpauth://totp/Iss%20X:acc%40y?secret=ABC&issuer=a+b%20c&issuer=second").unwrap();
        assert_eq!(u.label, "Iss X:acc@y");
        assert_eq!(u.get("issuer"), Some("a b c"));
        assert_eq!(u.get("secret"), Some("ABC"));
        assert_eq!(parse("otpauth:totp/Iss:acc?secret=A").unwrap().label, "");
        assert_eq!(parse("garbage").unwrap().label, "garbage");
        assert!(parse("otpauth://totp/L%zz?secret=A").is_none());
        assert!(parse("otpauth://to%zztp/L?secret=A").is_none());
        let u = parse("otpauth://totp/L?secret=A;x=1&issuer=%zz&digits=8").unwrap();
        assert_eq!((u.get("secret"), u.get("issuer"), u.get("digits")), (None, None, Some("8")));
        assert_eq!(parse("otpauth://totp/L#f?secret=A").unwrap().get("secret"), None);
    }

    #[test]
    fn builds_urls_that_read_back() {
        let url = build("Ac me/x", "a b@c:d", "SHA512", 8, 60, "MX3ATNVPKGGSO5QG");
        assert_eq!(url, "otpauth://totp/Ac%20me/x:a%20b@c:d?algorithm=SHA512&digits=8&issuer=Ac%20me%2Fx&period=60&secret=MX3ATNVPKGGSO5QG");
        let odd = "a&b=c+d?e;f#g";
        let u = parse(&build(odd, "acct", "SHA1", 6, 30, "AA")).unwrap();
        assert_eq!(u.get("issuer"), Some(odd));
        assert_eq!(u.label, format!("{odd}:acct"));
    }
}

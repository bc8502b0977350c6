//! Small pure helpers for KV version 2: timestamps and durations in the notation the Vault API
//! uses, JSON merge patch (RFC 7386) and the "subkeys" projection of a secret.

use serde_json::{Map, Value};

/// Nanoseconds since the Unix epoch, from the system clock.
pub fn system_now_nanos() -> i64 {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// Converts a day count since 1970-01-01 into (year, month, day) of the proleptic Gregorian
/// calendar (Howard Hinnant's civil-from-days algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Formats nanoseconds since the epoch as RFC 3339 in UTC with up to nine fractional digits,
/// trailing zeros dropped (and no fraction at all on a whole second), e.g.
/// `2026-11-26T11:45:53.23067423Z`.
pub fn rfc3339_nanos(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let frac = ns.rem_euclid(1_000_000_000) as u64;
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400) as u64;
    if !(0..=9999).contains(&y) {
        // Outside four-digit years (never for real clocks): the general formatter.
        let mut s = format!("{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}", sod / 3600, (sod % 3600) / 60, sod % 60);
        if frac != 0 {
            s.push('.');
            s.push_str(format!("{frac:09}").trim_end_matches('0'));
        }
        s.push('Z');
        return s;
    }
    // Every read of a KV v2 secret prints its times: written digit by digit, not via `format!`.
    let mut b = [0u8; 30];
    let mut put = |at: usize, v: u64, width: usize| {
        let mut v = v;
        for i in (0..width).rev() {
            b[at + i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, y as u64, 4);
    put(5, mo as u64, 2);
    put(8, d as u64, 2);
    put(11, sod / 3600, 2);
    put(14, (sod % 3600) / 60, 2);
    put(17, sod % 60, 2);
    put(20, frac, 9);
    for (at, c) in [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':'), (19, b'.')] {
        b[at] = c;
    }
    // Go drops trailing zeros of the fraction, and the dot with a whole second.
    let mut end = 29;
    while end > 20 && b[end - 1] == b'0' {
        end -= 1;
    }
    if end == 20 {
        end = 19;
    }
    b[end] = b'Z';
    String::from_utf8_lossy(&b[..=end]).into_owned()
}

/// Formats whole seconds the way Go prints a `time.Duration`: `0s`, `45s`, `30m0s`, `1h0m0s`.
pub fn go_duration(secs: i64) -> String {
    if secs == 0 {
        return "0s".to_string();
    }
    let sign = if secs < 0 { "-" } else { "" };
    let a = secs.unsigned_abs();
    let (h, m, s) = (a / 3600, (a % 3600) / 60, a % 60);
    if h > 0 {
        format!("{sign}{h}h{m}m{s}s")
    } else if m > 0 {
        format!("{sign}{m}m{s}s")
    } else {
        format!("{sign}{s}s")
    }
}

/// Applies a JSON merge patch (RFC 7386) to `target`: members of an object patch are merged
/// recursively, a `null` member removes the key, anything else replaces the target.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(t) = target else { return };
    for (k, v) in p {
        if v.is_null() {
            t.remove(k);
        } else {
            merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
        }
    }
}

/// The structure of a secret with every leaf value replaced by `null`. Non-empty objects are
/// descended into while `level < depth` (`depth == 0`: no limit); arrays, scalars and empty
/// objects are leaves. A negative depth shows the top level only, as OpenBao does.
pub fn subkeys(data: &Map<String, Value>, depth: i64) -> Map<String, Value> {
    fn walk(m: &Map<String, Value>, depth: i64, level: i64) -> Map<String, Value> {
        m.iter()
            .map(|(k, v)| {
                let deeper = depth == 0 || level < depth;
                let shown = match v {
                    Value::Object(inner) if !inner.is_empty() && deeper => Value::Object(walk(inner, depth, level + 1)),
                    _ => Value::Null,
                };
                (k.clone(), shown)
            })
            .collect()
    }
    walk(data, if depth < 0 { 1 } else { depth }, 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn timestamps_match_go_rfc3339nano() {
        assert_eq!(rfc3339_nanos(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_nanos(1_795_693_553_230_674_231), "2026-11-26T11:45:53.230674231Z");
        assert_eq!(rfc3339_nanos(1_795_693_553_230_000_000), "2026-11-26T11:45:53.23Z");
        assert_eq!(rfc3339_nanos(951_782_400_000_000_000), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339_nanos(1_795_693_553_000_000_100), "2026-11-26T11:45:53.0000001Z");
        assert_eq!(rfc3339_nanos(-1), "1969-12-31T23:59:59.999999999Z");
    }

    #[test]
    fn durations_print_like_go() {
        assert_eq!(go_duration(0), "0s");
        assert_eq!(go_duration(1), "1s");
        assert_eq!(go_duration(1800), "30m0s");
        assert_eq!(go_duration(3600), "1h0m0s");
        assert_eq!(go_duration(90061), "25h1m1s");
        assert_eq!(go_duration(-1), "-1s");
    }

    #[test]
    fn merge_patch_follows_rfc7386() {
        let mut t = json!({"a": "b", "c": {"d": "e", "f": "g"}});
        merge_patch(&mut t, &json!({"a": "z", "c": {"f": null}}));
        assert_eq!(t, json!({"a": "z", "c": {"d": "e"}}));
        let mut t = json!({"a": [1, 2]});
        merge_patch(&mut t, &json!({"a": [3], "b": {"x": null, "y": 1}}));
        assert_eq!(t, json!({"a": [3], "b": {"y": 1}}));
    }

    #[test]
    fn subkeys_hide_values_and_honour_depth() {
        let d = json!({"a": 1, "arr": [1], "e": {}, "o": {"x": 1, "y": {"z": 2}}});
        let d = d.as_object().unwrap();
        assert_eq!(
            Value::Object(subkeys(d, 0)),
            json!({"a": null, "arr": null, "e": null, "o": {"x": null, "y": {"z": null}}})
        );
        assert_eq!(Value::Object(subkeys(d, 1)), json!({"a": null, "arr": null, "e": null, "o": null}));
        assert_eq!(
            Value::Object(subkeys(d, 2)),
            json!({"a": null, "arr": null, "e": null, "o": {"x": null, "y": null}})
        );
        assert_eq!(Value::Object(subkeys(d, -1)), json!({"a": null, "arr": null, "e": null, "o": null}));
    }
}

//! String helpers backends share.

/// Whether `s` matches `pattern`, where `*` matches any run of characters (none included) and
/// everything else is literal: the glob of Vault's role fields (`bound_claims`,
/// `allowed_common_names`, `bound_service_account_names`, …), as Go's `ryanuber/go-glob` does.
///
/// ```
/// use coffer_sdk::strutil::glob_match;
/// assert!(glob_match("*.example.com", "db.example.com"));
/// assert!(glob_match("a*c*e", "abcde"));
/// assert!(!glob_match("a*c", "abd"));
/// ```
pub fn glob_match(pattern: &str, s: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == s;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !s.starts_with(first) || s.len() < first.len() + last.len() || !s.ends_with(last) {
        return false;
    }
    let mut rest = &s[first.len()..s.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn stars_match_runs_and_the_rest_is_literal() {
        assert!(glob_match("*", "") && glob_match("*", "anything"));
        assert!(glob_match("spiffe://*", "spiffe://a/b"));
        assert!(glob_match("a*", "a") && glob_match("*a", "a") && glob_match("a*a", "aa"));
        assert!(!glob_match("a*a", "a"), "prefix and suffix may not overlap");
        assert!(!glob_match("a?c", "abc") && glob_match("a?c", "a?c"), "only * is special");
        assert!(glob_match("*.dev.*", "x.dev.example") && !glob_match("*.dev.*", "x.prod.example"));
    }
}

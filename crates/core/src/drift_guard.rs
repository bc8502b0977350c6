//! The drift guard between the core's handlers and the rows of `coffer-system-paths`: every
//! body parameter a handler reads is declared by a row of its tree.

#[cfg(test)]
mod tests {
    use crate::system_paths::*;
    use coffer_sdk::framework::PathSpec;
    use std::collections::BTreeSet;

    /// The body parameters a handler source reads by name: `d.get("x")` and `data.get("x")`
    /// (across a line break too), `opt(d, "x")`, `opt_str(d, "x")`, `string_param(d, "x")`,
    /// `pgp_keys_field("x", data)`, and the names of a `for name in ["x", …]` (or
    /// `for (name, slot) in [("x", …), …]`) loop whose body reads `d.get(name)`.
    fn names_read(source: &str) -> BTreeSet<String> {
        let direct = regex::Regex::new(
            r#"(?:\b(?:opt(?:_str)?|string_param)\((?:d|data)\d?, "([a-z_]+)"\)|\b(?:d|data)\d?\s*\.get\("([a-z_]+)"\)|_field\("([a-z_]+)", (?:d|data)\))"#,
        )
        .expect("valid pattern");
        let mut out: BTreeSet<String> = direct
            .captures_iter(source)
            .filter_map(|c| c.get(1).or_else(|| c.get(2)).or_else(|| c.get(3)).map(|m| m.as_str().to_string()))
            .collect();
        let looped = regex::Regex::new(r#"(?s)for \(?([a-z]+)(?:, [a-z]+\))? in \[(.{0,300}?)\] \{(.{0,120})"#)
            .expect("valid pattern");
        let quoted = regex::Regex::new(r#""([a-z_]+)""#).expect("valid pattern");
        for c in looped.captures_iter(source) {
            let var = &c[1];
            if c[3].contains(&format!("d.get({var})")) || c[3].contains(&format!("data.get({var})")) {
                out.extend(quoted.captures_iter(&c[2]).map(|q| q[1].to_string()));
            }
        }
        out
    }

    fn declared(specs: &[PathSpec]) -> BTreeSet<&str> {
        specs.iter().flat_map(|s| s.fields.iter().map(|f| f.name)).collect()
    }

    /// A handler that reads a parameter no row of its tree declares drifts from its rows: the
    /// parameter is either acted on while the answer warns that it was ignored, or (the
    /// handlers reading only the coerced fields) never seen at all; and help and OpenAPI do
    /// not show it. Every name the sys, token and identity handlers read must be some row's
    /// field of their tree.
    #[test]
    fn every_parameter_the_core_handlers_read_is_declared_by_a_row() {
        let sys = declared(sys_paths().specs());
        let cases = [
            ("token_api.rs", include_str!("token_api.rs"), declared(token_paths().specs())),
            ("identity.rs", include_str!("identity.rs"), declared(identity_paths().specs())),
            ("identity_oidc.rs", include_str!("identity_oidc.rs"), declared(identity_paths().specs())),
            ("sys.rs", include_str!("../../system/src/sys.rs"), sys.clone()),
            ("sys_acl.rs", include_str!("../../system/src/sys_acl.rs"), sys.clone()),
            ("sys_runtime.rs", include_str!("../../system/src/runtime.rs"), sys.clone()),
            ("seal_ops.rs", include_str!("seal_ops.rs"), sys.clone()),
            ("autoseal.rs", include_str!("autoseal.rs"), sys.clone()),
            ("leases.rs", include_str!("leases.rs"), sys.clone()),
            ("wrapping.rs", include_str!("wrapping.rs"), sys.clone()),
            ("catalog.rs", include_str!("../../system/src/catalog.rs"), sys.clone()),
            ("core_catalog.rs", include_str!("catalog.rs"), sys.clone()),
            ("raw.rs", include_str!("../../system/src/raw.rs"), sys.clone()),
            ("tools.rs", include_str!("../../system/src/tools.rs"), sys.clone()),
            ("password.rs", include_str!("../../system/src/password.rs"), sys.clone()),
            ("cors.rs", include_str!("../../system/src/cors.rs"), sys.clone()),
            ("metrics.rs", include_str!("../../system/src/metrics.rs"), sys.clone()),
            ("snapshot_auto.rs", include_str!("snapshot_auto.rs"), sys.clone()),
        ];
        // Read from a mount's `config` map (`sys/mounts/<path>` with config={…}), which the same
        // function applies as tune's body; tune does not declare it, as OpenBao's does not.
        let not_body = [("sys.rs", "force_no_cache")];
        // The scan sees the reads it is meant to see, the looped and multi-line ones included.
        let seen =
            |file: &str, name: &str| names_read(cases.iter().find(|c| c.0 == file).expect("listed").1).contains(name);
        for (file, name) in [
            ("token_api.rs", "renewable"),
            ("identity.rs", "canonical_id"),
            ("sys.rs", "external_entropy_access"),
            ("sys_acl.rs", "cas_required"),
            ("sys_runtime.rs", "level"),
            ("seal_ops.rs", "root_token_pgp_key"),
            ("catalog.rs", "env"),
        ] {
            assert!(seen(file, name), "{file}: the scan no longer sees {name}: has the code changed?");
        }
        let mut undeclared = vec![];
        for (file, source, fields) in &cases {
            let read = names_read(source);
            undeclared.extend(
                read.into_iter()
                    .filter(|n| !fields.contains(n.as_str()) && !not_body.contains(&(*file, n.as_str())))
                    .map(|n| format!("{file}: {n}")),
            );
        }
        assert!(undeclared.is_empty(), "handlers read parameters no row declares: {undeclared:?}");
    }
}

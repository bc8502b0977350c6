//! Access-control commands: `token create|lookup|renew|revoke|capabilities`,
//! `policy write|read|list|delete|fmt`, `login`, `auth enable|disable|list|tune`.
//! Requests, messages and exit codes follow the `bao` CLI (2.7.2).

use crate::args::Parsed;
use crate::client::Client;
use crate::output::{self, Out};
use crate::{api_in, data_of, mount_path, parse_kv_args, print_field, print_secret, secret_field, Fail, R};
use serde_json::{json, Map, Value};

/// `Not enough arguments (expected N, got M)` / `Too many arguments (...)`.
fn arg_count(p: &Parsed, min: usize, max: usize, expected: &str) -> Result<(), Fail> {
    let n = p.positional.len();
    if n < min {
        return Err(Fail::Usage(format!("Not enough arguments (expected {expected}, got {n})")));
    }
    if n > max {
        return Err(Fail::Usage(format!("Too many arguments (expected {expected}, got {n})")));
    }
    Ok(())
}

/// A duration flag as nanoseconds (0 when absent).
fn duration_flag(p: &Parsed, name: &str) -> Result<Option<i128>, Fail> {
    match p.get(name) {
        None => Ok(None),
        Some(v) => output::parse_duration(v)
            .map(Some)
            .map_err(|e| Fail::Usage(format!("invalid value {v:?} for flag -{name}: {e}"))),
    }
}

/// A duration flag as the Go duration string the `bao` CLI sends (`"1h0m0s"`, `"0s"`).
fn duration_body(p: &Parsed, name: &str) -> Result<String, Fail> {
    Ok(output::go_duration(duration_flag(p, name)?.unwrap_or(0)))
}

/// Repeatable flags that also take comma-separated lists (`-policy=a,b -policy=c`).
fn string_slice(p: &Parsed, name: &str) -> Vec<String> {
    p.all(name).iter().flat_map(|v| v.split(',')).map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect()
}

/// Repeatable `-name=k=v` flags as a map.
fn string_map(p: &Parsed, name: &str) -> Result<Map<String, Value>, Fail> {
    let mut m = Map::new();
    for kv in p.all(name) {
        let Some((k, v)) = kv.split_once('=') else {
            return Err(Fail::Usage(format!("invalid value {kv:?} for flag -{name}: missing = in KV pair: {kv:?}")));
        };
        m.insert(k.to_string(), Value::String(v.to_string()));
    }
    Ok(m)
}

fn io_text(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

fn read_stdin() -> Result<String, Fail> {
    let mut s = String::new();
    std::io::Read::read_to_string(&mut std::io::stdin(), &mut s).map_err(|e| Fail::Local(e.to_string()))?;
    Ok(s)
}

// ----- token -----

pub(crate) fn token_create(p: &Parsed, c: &Client, out: &Out) -> R {
    arg_count(p, 0, 0, "0")?;
    let mut body = Map::new();
    let policies = string_slice(p, "policy");
    if !policies.is_empty() {
        body.insert("policies".into(), json!(policies));
    }
    let meta = string_map(p, "metadata")?;
    if !meta.is_empty() {
        body.insert("meta".into(), output::sorted(&Value::Object(meta)));
    }
    body.insert("ttl".into(), duration_body(p, "ttl")?.into());
    body.insert("explicit_max_ttl".into(), duration_body(p, "explicit-max-ttl")?.into());
    body.insert("period".into(), duration_body(p, "period")?.into());
    if p.has("orphan") {
        body.insert("no_parent".into(), true.into());
    }
    if p.has("no-default-policy") {
        body.insert("no_default_policy".into(), true.into());
    }
    body.insert("display_name".into(), p.get("display-name").unwrap_or("").into());
    // drop-cause: a usage error in the bao CLI's wording, which names the flag and the value.
    let uses: i64 = p.get("use-limit").unwrap_or("0").parse().map_err(|_| {
        Fail::Usage(format!("invalid value {:?} for flag -use-limit", p.get("use-limit").unwrap_or("")))
    })?;
    body.insert("num_uses".into(), uses.into());
    let ty = p.get("type").unwrap_or("service");
    // Batch tokens are never renewable; the bao CLI sends `renewable: false` for them.
    let renewable = ty != "batch" && (p.get("renewable").is_none() || p.has("renewable"));
    body.insert("renewable".into(), renewable.into());
    body.insert("type".into(), ty.into());
    body.insert("entity_alias".into(), p.get("entity-alias").unwrap_or("").into());
    let path = match p.get("role").filter(|r| !r.is_empty()) {
        Some(role) => format!("auth/token/create/{role}"),
        None => "auth/token/create".into(),
    };
    let r = c.request("POST", &path, Some(&Value::Object(body))).map_err(api_in("Error creating token"))?;
    print_secret(r, out, p.get("field"))
}

pub(crate) fn token_lookup(p: &Parsed, c: &Client, out: &Out) -> R {
    let r = if p.has("accessor") {
        match p.positional.as_slice() {
            [a] => c.request("POST", "auth/token/lookup-accessor", Some(&json!({ "accessor": a }))),
            [] => return Err(Fail::Usage("Not enough arguments with -accessor (expected 1, got 0)".into())),
            more => {
                return Err(Fail::Usage(format!("Too many arguments with -accessor (expected 1, got {})", more.len())))
            }
        }
    } else {
        match p.positional.as_slice() {
            [] => c.request("GET", "auth/token/lookup-self", None),
            [t] => c.request("POST", "auth/token/lookup", Some(&json!({ "token": t }))),
            more => return Err(Fail::Usage(format!("Too many arguments (expected 0-1, got {})", more.len()))),
        }
    };
    let r = r.map_err(api_in("Error looking up token"))?;
    print_secret(r, out, p.get("field"))
}

pub(crate) fn token_renew(p: &Parsed, c: &Client, out: &Out) -> R {
    let increment = i64::try_from(duration_flag(p, "increment")?.unwrap_or(0) / 1_000_000_000).unwrap_or(0);
    let r = if p.has("accessor") {
        let [a] = p.positional.as_slice() else {
            return Err(Fail::Usage(format!(
                "Not enough arguments with -accessor (expected 1, got {})",
                p.positional.len()
            )));
        };
        c.request("PUT", "auth/token/renew-accessor", Some(&json!({ "accessor": a, "increment": increment })))
    } else {
        match p.positional.as_slice() {
            [] => c.request("PUT", "auth/token/renew-self", Some(&json!({ "increment": increment }))),
            [t] => c.request("PUT", "auth/token/renew", Some(&json!({ "increment": increment, "token": t }))),
            more => return Err(Fail::Usage(format!("Too many arguments (expected 0-1, got {})", more.len()))),
        }
    };
    let r = r.map_err(api_in("Error renewing token"))?;
    print_secret(r, out, p.get("field"))
}

pub(crate) fn token_revoke(p: &Parsed, c: &Client) -> R {
    let mode = p.get("mode").unwrap_or("");
    if !matches!(mode, "" | "orphan" | "path") {
        return Err(Fail::Usage(format!("Invalid mode: {mode}")));
    }
    let (is_self, accessor) = (p.has("self"), p.has("accessor"));
    if is_self && accessor {
        return Err(Fail::Usage("Cannot use -self with -accessor!".into()));
    }
    if accessor && !mode.is_empty() {
        return Err(Fail::Usage(format!("Cannot use -accessor with -mode={mode}!")));
    }
    if is_self && !mode.is_empty() {
        return Err(Fail::Usage(format!("Cannot use -self with -mode={mode}!")));
    }
    let n = p.positional.len();
    if is_self && n > 0 {
        return Err(Fail::Usage(format!("Too many arguments with -self (expected 0, got {n})")));
    }
    if !is_self && n == 0 {
        return Err(Fail::Usage("Not enough arguments (expected 1 or -self, got 0)".into()));
    }
    if !is_self && n > 1 {
        return Err(Fail::Usage(format!("Too many arguments (expected 1 or -self, got {n})")));
    }
    let arg = p.positional.first().cloned().unwrap_or_default();
    let r = if is_self {
        c.request("PUT", "auth/token/revoke-self", None)
    } else if accessor {
        c.request("POST", "auth/token/revoke-accessor", Some(&json!({ "accessor": arg })))
    } else if mode == "orphan" {
        c.request("PUT", "auth/token/revoke-orphan", Some(&json!({ "token": arg })))
    } else if mode == "path" {
        c.request("PUT", &format!("sys/leases/revoke-prefix/{}", arg.trim_start_matches('/')), None)
    } else {
        c.request("PUT", "auth/token/revoke", Some(&json!({ "token": arg })))
    };
    r.map_err(api_in("Error revoking token"))?;
    println!("Success! Revoked token (if it existed)");
    Ok(0)
}

pub(crate) fn token_capabilities(p: &Parsed, c: &Client, out: &Out) -> R {
    arg_count(p, 1, 2, "1-2")?;
    let (path, r) = match (p.positional.as_slice(), p.has("accessor")) {
        ([a, path], true) => {
            (path, c.request("POST", "sys/capabilities-accessor", Some(&json!({ "accessor": a, "path": path }))))
        }
        ([_], true) => return Err(Fail::Usage("Not enough arguments with -accessor (expected 2, got 1)".into())),
        ([t, path], false) => (path, c.request("POST", "sys/capabilities", Some(&json!({ "path": path, "token": t })))),
        ([path], false) => (
            path,
            c.request(
                "POST",
                "sys/capabilities-self",
                Some(&json!({ "path": path, "token": c.token.clone().unwrap_or_default() })),
            ),
        ),
        _ => unreachable!("argument count checked"),
    };
    let r = r.map_err(api_in("Error listing capabilities"))?;
    let d = data_of(&r);
    let caps = d.get("capabilities").or_else(|| d.get(path.as_str())).and_then(Value::as_array);
    let mut caps: Vec<String> = caps.into_iter().flatten().filter_map(Value::as_str).map(String::from).collect();
    caps.sort();
    if out.json {
        out.print_json(&json!(caps));
    } else {
        println!("{}", caps.join(", "));
    }
    Ok(0)
}

// ----- policy -----

pub(crate) fn policy_write(p: &Parsed, c: &Client) -> R {
    arg_count(p, 2, 2, "2")?;
    let name = p.positional[0].trim().to_lowercase();
    if name != p.positional[0] {
        eprintln!("Policy name was converted from \"{}\" to \"{name}\"", p.positional[0]);
    }
    let src = &p.positional[1];
    let text = if src == "-" {
        read_stdin()?
    } else {
        std::fs::read_to_string(src)
            .map_err(|e| Fail::Exit(2, format!("Error opening policy file: open {src}: {}", io_text(&e))))?
    };
    c.request("PUT", &format!("sys/policies/acl/{name}"), Some(&json!({ "policy": text })))
        .map_err(api_in("Error uploading policy"))?;
    println!("Success! Uploaded policy: {name}");
    Ok(0)
}

pub(crate) fn policy_read(p: &Parsed, c: &Client, out: &Out) -> R {
    arg_count(p, 1, 1, "1")?;
    let name = p.positional[0].trim().to_lowercase();
    let r = match c.request("GET", &format!("sys/policies/acl/{name}"), None) {
        Ok(r) => r,
        Err(e) if e.status() == Some(404) => None,
        Err(e) => return Err(api_in(format!("Error reading policy named {name}"))(e)),
    };
    let text = data_of(&r).get("policy").and_then(Value::as_str).unwrap_or("").to_string();
    if text.is_empty() {
        return Err(Fail::Exit(2, format!("No policy named: {name}")));
    }
    if out.json {
        out.print_json(&json!({ "policy": text }));
    } else {
        println!("{}", text.trim());
    }
    Ok(0)
}

pub(crate) fn policy_list(p: &Parsed, c: &Client, out: &Out) -> R {
    arg_count(p, 0, 0, "0")?;
    let r = c.request("GET", "sys/policies/acl?list=true", None).map_err(api_in("Error listing policies"))?;
    let keys: Vec<String> = data_of(&r)
        .get("keys")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(String::from)
        .collect();
    if out.json {
        out.print_json(&json!(keys));
    } else {
        for k in keys {
            println!("{k}");
        }
    }
    Ok(0)
}

pub(crate) fn policy_delete(p: &Parsed, c: &Client) -> R {
    arg_count(p, 1, 1, "1")?;
    let name = p.positional[0].trim().to_lowercase();
    c.request("DELETE", &format!("sys/policies/acl/{name}"), None).map_err(api_in(format!("Error deleting {name}")))?;
    println!("Success! Deleted policy: {name}");
    Ok(0)
}

/// Parses a policy's HCL and checks its top level holds only `name = ...` and
/// `path "PATTERN" { ... }`; returns the canonically formatted text.
/// Why `policy fmt` refused a policy file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum PolicyFormatError {
    #[error("failed to parse policy: {}", .0.to_string().trim_start())]
    Parse(#[source] hcl::Error),
    #[error("failed to parse policy: invalid key {0:?}")]
    InvalidKey(String),
    #[error("failed to parse policy: a path block takes exactly one label (the path)")]
    PathLabels,
    #[error("failed to format policy: {0}")]
    Format(#[source] hcl::Error),
}

pub(crate) fn format_policy(text: &str) -> Result<String, PolicyFormatError> {
    let body = hcl::parse(text).map_err(PolicyFormatError::Parse)?;
    for s in body.iter() {
        match s {
            hcl::Structure::Attribute(a) if a.key() == "name" => {}
            hcl::Structure::Attribute(a) => return Err(PolicyFormatError::InvalidKey(a.key().to_string())),
            hcl::Structure::Block(b) if b.identifier() == "path" && b.labels().len() == 1 => {}
            hcl::Structure::Block(b) if b.identifier() == "path" => return Err(PolicyFormatError::PathLabels),
            hcl::Structure::Block(b) => return Err(PolicyFormatError::InvalidKey(b.identifier().to_string())),
        }
    }
    // Lists on one line (`capabilities = ["read", "list"]`), as `bao policy fmt` writes them.
    let mut formatter = hcl::format::Formatter::builder().compact_arrays(true).build_vec();
    let mut s = hcl::format::Format::format_string(&body, &mut formatter).map_err(PolicyFormatError::Format)?;
    if !s.ends_with('\n') {
        s.push('\n');
    }
    Ok(s)
}

pub(crate) fn policy_fmt(p: &Parsed) -> R {
    arg_count(p, 1, 1, "1")?;
    let path = &p.positional[0];
    let text = std::fs::read_to_string(path)
        .map_err(|e| Fail::Exit(1, format!("Error reading source file: open {path}: {}", io_text(&e))))?;
    let formatted = format_policy(&text).map_err(|e| Fail::Exit(1, e.to_string()))?;
    std::fs::write(path, formatted)
        .map_err(|e| Fail::Exit(1, format!("Error writing formatted policy: open {path}: {}", io_text(&e))))?;
    println!("Success! Formatted policy: {path}");
    Ok(0)
}

// ----- login -----

fn env_token_name() -> Option<&'static str> {
    ["BAO_TOKEN", "VAULT_TOKEN"].into_iter().find(|n| std::env::var(n).is_ok_and(|v| !v.is_empty()))
}

/// `login [-method=token|userpass|approle|cert|ldap|jwt|oidc|kubernetes] [-path=P] [-no-store] [-token-only] [-field=F] [TOKEN | K=V...]`.
/// `cert` logs in with the TLS client certificate (`-client-cert`/`-client-key`), `name=` picks
/// the trusted certificate; `ldap` takes `username=` and `password=`.
pub(crate) fn login(p: &Parsed, c: &Client, out: &Out) -> R {
    let method = p.get("method").unwrap_or("token").to_string();
    if !matches!(method.as_str(), "token" | "userpass" | "approle" | "cert" | "ldap" | "jwt" | "oidc" | "kubernetes") {
        return Err(Fail::Usage(output::wrap(
            &format!(
                "Unknown auth method: {method}. Use \"coffer auth list\" to see the complete list of auth methods. \
                 Additionally, some auth methods are only available via the HTTP API."
            ),
            78,
        )));
    }
    let token_only = p.has("token-only");
    let no_store = p.has("no-store") || token_only;
    let field = if token_only { Some("token") } else { p.get("field") };
    let mount = p.get("path").unwrap_or(&method).trim_matches('/').to_string();

    let mut args = p.positional.clone();
    if method == "token" && args.first().is_some_and(|a| !a.contains('=')) {
        args[0] = format!("token={}", args[0]);
    }
    let config = parse_kv_args(&args).map_err(|e| match e {
        Fail::Usage(m) | Fail::Local(m) => Fail::Exit(
            1,
            format!("Error parsing configuration: {}", m.replace(": expected key=value", ": format must be key=value")),
        ),
        other => other,
    })?;
    let cfg = |k: &str| config.get(k).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty());
    let auth_err = |m: &str| Fail::Exit(2, format!("Error authenticating: {m}"));

    if !token_only {
        if let Some(var) = env_token_name() {
            eprintln!(
                "{}\n",
                output::wrap(
                    &format!(
                        "WARNING! The {var} environment variable is set! The value of this variable will take \
                         precedence; if this is unwanted please unset {var} or update its value accordingly."
                    ),
                    78
                )
            );
        }
    }

    let secret = match method.as_str() {
        "token" => {
            let Some(token) = cfg("token") else {
                return Err(auth_err(
                    "no token given: pass the token as an argument or \"-\" to read it from stdin \
                     (interactive prompts are not supported)",
                ));
            };
            let r = c
                .with_token(Some(token))
                .request("GET", "auth/token/lookup-self", None)
                .map_err(api_in("Error authenticating: error looking up token"))?;
            let d = data_of(&r);
            let g = |k: &str| d.get(k).cloned().unwrap_or(Value::Null);
            json!({
                "request_id": "", "lease_id": "", "lease_duration": 0, "renewable": false,
                "data": null, "warnings": null,
                "auth": {
                    "client_token": g("id"), "accessor": g("accessor"),
                    "policies": g("policies"), "token_policies": g("policies"),
                    "identity_policies": null, "metadata": null, "orphan": false, "entity_id": "",
                    "lease_duration": g("ttl"), "renewable": g("renewable").as_bool().unwrap_or(false),
                    "mfa_requirement": null,
                },
            })
        }
        "cert" => {
            let mut body = json!({});
            if let Some(name) = cfg("name") {
                body["name"] = name.into();
            }
            c.with_token(None)
                .request("PUT", &format!("auth/{mount}/login"), Some(&body))
                .map_err(api_in("Error authenticating"))?
                .unwrap_or(Value::Null)
        }
        "userpass" | "ldap" => {
            let user = cfg("username").ok_or_else(|| auth_err("'username' must be specified"))?;
            let pass = config
                .get("password")
                .and_then(Value::as_str)
                .ok_or_else(|| auth_err("'password' must be specified (interactive prompts are not supported)"))?;
            c.with_token(None)
                .request("PUT", &format!("auth/{mount}/login/{user}"), Some(&json!({ "password": pass })))
                .map_err(api_in("Error authenticating"))?
                .unwrap_or(Value::Null)
        }
        "jwt" => crate::login_sso::jwt(c, &mount, &config)?,
        "oidc" => crate::login_sso::oidc(c, &mount, &config)?,
        "kubernetes" => crate::login_sso::kubernetes(c, &mount, &config)?,
        _ => {
            let role_id = cfg("role_id").ok_or_else(|| auth_err("'role_id' must be specified"))?;
            let mut body = json!({ "role_id": role_id });
            if let Some(sid) = cfg("secret_id") {
                body["secret_id"] = sid.into();
            }
            c.with_token(None)
                .request("POST", &format!("auth/{mount}/login"), Some(&body))
                .map_err(api_in("Error authenticating"))?
                .unwrap_or(Value::Null)
        }
    };
    let Some(token) = secret.get("auth").and_then(|a| a.get("client_token")).and_then(Value::as_str) else {
        return Err(auth_err("no authentication information returned"));
    };

    if no_store {
        if !token_only {
            eprintln!(
                "{}\n",
                output::wrap(
                    "The token was not stored in token helper. Set the BAO_TOKEN environment variable or pass the \
                     token below with each request to Coffer.",
                    78
                )
            );
        }
    } else {
        let home =
            std::env::var_os("HOME").ok_or_else(|| Fail::Exit(2, "Error storing token: $HOME is not set".into()))?;
        let file = std::path::Path::new(&home).join(".vault-token");
        store_token(&file, token)
            .map_err(|e| Fail::Exit(2, format!("Error storing token: open {}: {}", file.display(), io_text(&e))))?;
    }

    if let Some(f) = field {
        return print_field(secret_field(&secret, f), f, out);
    }
    if !out.json {
        println!(
            "{}\n",
            output::wrap(
                "Success! You are now authenticated. The token information displayed below is already stored in \
                 the token helper. You do NOT need to run \"coffer login\" again. Future Coffer requests will \
                 automatically use this token.",
                78
            )
        );
    }
    if p.has("no-print") {
        return Ok(0);
    }
    print_secret(Some(secret), out, None)
}

/// Writes the token helper file `~/.vault-token` (mode 0600, no newline).
fn store_token(file: &std::path::Path, token: &str) -> std::io::Result<()> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    std::io::Write::write_all(&mut o.open(file)?, token.as_bytes())
}

// ----- auth -----

pub(crate) fn auth_enable(p: &Parsed, c: &Client) -> R {
    arg_count(p, 1, 1, "1")?;
    let ty = p.positional[0].trim().to_string();
    let path = mount_path(p.get("path").unwrap_or(&ty));
    let mut config = Map::new();
    config.insert("options".into(), Value::Null);
    config.insert("default_lease_ttl".into(), duration_body(p, "default-lease-ttl")?.into());
    config.insert("max_lease_ttl".into(), duration_body(p, "max-lease-ttl")?.into());
    config.insert("force_no_cache".into(), false.into());
    for (flag, key) in [
        ("listing-visibility", "listing_visibility"),
        ("token-type", "token_type"),
        ("plugin-version", "plugin_version"),
    ] {
        if let Some(v) = p.get(flag) {
            config.insert(key.into(), v.into());
        }
    }
    let options = string_map(p, "options")?;
    let body = json!({
        "type": ty,
        "description": p.get("description").unwrap_or(""),
        "config": config,
        "local": p.has("local"),
        "seal_wrap": p.has("seal-wrap"),
        "external_entropy_access": p.has("external-entropy-access"),
        "options": if options.is_empty() { Value::Null } else { Value::Object(options) },
    });
    c.request("POST", &format!("sys/auth/{}", path.trim_end_matches('/')), Some(&body))
        .map_err(api_in(format!("Error enabling {ty} auth")))?;
    println!("Success! Enabled {ty} auth method at: {path}");
    Ok(0)
}

pub(crate) fn auth_disable(p: &Parsed, c: &Client) -> R {
    arg_count(p, 1, 1, "1")?;
    let path = mount_path(&p.positional[0]);
    c.request("DELETE", &format!("sys/auth/{}", path.trim_end_matches('/')), None)
        .map_err(api_in(format!("Error disabling auth method at {path}")))?;
    println!("Success! Disabled the auth method (if it existed) at: {path}");
    Ok(0)
}

pub(crate) fn auth_list(p: &Parsed, c: &Client, out: &Out) -> R {
    arg_count(p, 0, 0, "0")?;
    let r = c.request("GET", "sys/auth", None).map_err(api_in("Error listing enabled authentications"))?;
    let mut mounts = data_of(&r);
    if mounts.is_empty() {
        // A legacy response carries the mounts at the top level only.
        if let Some(Value::Object(top)) = &r {
            mounts = top
                .iter()
                .filter(|(k, v)| k.ends_with('/') && v.is_object())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
        }
    }
    let mut paths: Vec<String> = mounts.keys().cloned().collect();
    paths.sort();
    if out.json {
        out.print_json(&output::sorted(&Value::Object(mounts)));
        return Ok(0);
    }
    let na = |s: String| if s.is_empty() { "n/a".to_string() } else { s };
    let detailed = p.has("detailed");
    let mut rows = vec![];
    for path in &paths {
        let m = &mounts[path.as_str()];
        let s = |k: &str| match m.get(k) {
            None | Some(Value::Null) => String::new(),
            Some(v) => output::scalar(v),
        };
        if !detailed {
            rows.push(vec![path.clone(), s("type"), s("accessor"), na(s("description")), na(s("plugin_version"))]);
            continue;
        }
        let ttl = |k: &str| match m["config"].get(k) {
            Some(Value::Number(n)) if n.as_i64() != Some(0) => n.to_string(),
            _ => "system".to_string(),
        };
        let options = match m.get("options") {
            Some(Value::Object(o)) => output::scalar(&Value::Object(o.clone())),
            _ => "map[]".into(),
        };
        let token_type = m["config"].get("token_type").and_then(Value::as_str).unwrap_or("").to_string();
        rows.push(vec![
            path.clone(),
            s("type"),
            s("accessor"),
            ttl("default_lease_ttl"),
            ttl("max_lease_ttl"),
            na(token_type),
            if m.get("local").and_then(Value::as_bool) == Some(true) { "local" } else { "replicated" }.into(),
            m.get("seal_wrap").and_then(Value::as_bool).unwrap_or(false).to_string(),
            m.get("external_entropy_access").and_then(Value::as_bool).unwrap_or(false).to_string(),
            options,
            na(s("description")),
            s("uuid"),
            na(s("plugin_version")),
            na(s("running_plugin_version")),
            na(s("running_sha256")),
            na(s("deprecation_status")),
        ]);
    }
    let header: &[&str] = if detailed {
        &[
            "Path",
            "Plugin",
            "Accessor",
            "Default TTL",
            "Max TTL",
            "Token Type",
            "Replication",
            "Seal Wrap",
            "External Entropy Access",
            "Options",
            "Description",
            "UUID",
            "Version",
            "Running Version",
            "Running SHA256",
            "Deprecation Status",
        ]
    } else {
        &["Path", "Type", "Accessor", "Description", "Version"]
    };
    output::print_columns(header, &rows);
    Ok(0)
}

pub(crate) fn auth_tune(p: &Parsed, c: &Client) -> R {
    arg_count(p, 1, 1, "1")?;
    let path = mount_path(&p.positional[0]);
    let ttl = |name: &str| -> Result<String, Fail> {
        Ok(duration_flag(p, name)?.map(output::go_duration).unwrap_or_default())
    };
    let mut body = Map::new();
    let options = string_map(p, "options")?;
    body.insert("options".into(), if options.is_empty() { Value::Null } else { Value::Object(options) });
    body.insert("default_lease_ttl".into(), ttl("default-lease-ttl")?.into());
    if let Some(d) = p.get("description") {
        body.insert("description".into(), d.into());
    }
    body.insert("max_lease_ttl".into(), ttl("max-lease-ttl")?.into());
    body.insert("force_no_cache".into(), false.into());
    for (flag, key) in [
        ("listing-visibility", "listing_visibility"),
        ("token-type", "token_type"),
        ("plugin-version", "plugin_version"),
    ] {
        if let Some(v) = p.get(flag) {
            body.insert(key.into(), v.into());
        }
    }
    c.request("POST", &format!("sys/auth/{}/tune", path.trim_end_matches('/')), Some(&Value::Object(body)))
        .map_err(api_in(format!("Error tuning auth method {path}")))?;
    println!("Success! Tuned the auth method at: {path}");
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_formatting_is_canonical_and_rejects_non_policies() {
        let messy = "path \"secret/*\"   {\ncapabilities=[\"read\",\"list\"]\n    }\n";
        let f = format_policy(messy).unwrap();
        assert!(f.starts_with("path \"secret/*\" {\n  capabilities = [\"read\", \"list\"]\n}"), "{f}");
        assert_eq!(format_policy(&f).unwrap(), f, "formatting is idempotent");
        assert!(format_policy("path \"x\" { capabilities = [").is_err());
        assert!(format_policy("foo = \"bar\"\n").unwrap_err().to_string().contains("invalid key \"foo\""));
    }

    #[test]
    fn durations_round_trip_like_go() {
        assert_eq!(output::go_duration(output::parse_duration("1h").unwrap()), "1h0m0s");
        assert_eq!(output::go_duration(output::parse_duration("90").unwrap()), "1m30s");
        assert_eq!(output::go_duration(output::parse_duration("1.5s").unwrap()), "1.5s");
        assert_eq!(output::go_duration(output::parse_duration("300ms").unwrap()), "300ms");
        assert_eq!(output::go_duration(0), "0s");
        assert_eq!(output::duration(3605), "1h5s");
        assert_eq!(output::duration(2_764_800), "768h");
        assert!(output::parse_duration("5x").is_err());
    }
}

//! The coffer command-line client, compatible with the `vault`/`bao` CLIs: the same commands,
//! flags (`-address`, `-format=json`, …), environment (`BAO_ADDR`/`VAULT_ADDR`,
//! `BAO_TOKEN`/`VAULT_TOKEN`, `~/.vault-token`) and exit codes (0 ok, 1 local error,
//! 2 API error or, for `status`, sealed).
#![forbid(unsafe_code)]

mod access;
mod args;
mod client;
pub mod fetch;
mod login_sso;
mod output;
mod plugin;

use args::Parsed;
use client::{ApiError, Client};
use output::Out;
use serde_json::{json, Map, Value};

const USAGE: &str = "Usage: coffer <command> [args]

Common commands:
    read        Read data and retrieve secrets
    write       Write data, configuration, and secrets
    delete      Delete secrets and configuration
    list        List data or secrets
    status      Print seal and HA status
    kv          Interact with the KV secrets engine (get, put, delete, list)
    secrets     Interact with secrets engines (enable, disable, list, tune, move)
    operator    Perform operator tasks (init, unseal, seal, rotate, key-status, generate-root, rekey,
                snapshot save|restore|auto)
    token       Interact with tokens (create, lookup, renew, revoke, capabilities)
    policy      Interact with policies (write, read, list, delete, fmt)
    auth        Interact with auth methods (enable, disable, list, tune)
    login       Authenticate locally
    plugin      Create, verify and install plugins (new, verify, install, init)
    monitor     Stream the server's log (-log-level, -log-format=standard|json)
    unwrap      Unwrap a wrapped secret (a token argument, or the client's own token)

Any command takes -wrap-ttl=DURATION (or VAULT_WRAP_TTL) to have the answer wrapped.
    server      Start a Coffer server
";

enum Fail {
    Usage(String),
    Local(String),
    Api(ApiError),
    /// An API error after a context prefix (`Error creating token: ...`).
    ApiIn(String, ApiError),
    /// A message printed as is, with its exit code.
    Exit(i32, String),
}

/// Wraps an API error with Vault's `Error <doing something>:` prefix.
fn api_in(context: impl Into<String>) -> impl FnOnce(ApiError) -> Fail {
    let context = context.into();
    move |e| Fail::ApiIn(context, e)
}

impl From<ApiError> for Fail {
    fn from(e: ApiError) -> Self {
        Fail::Api(e)
    }
}

type R = Result<i32, Fail>;

/// Runs the client with the arguments after the program name; returns the exit code.
/// `builtin_names`: the names of the server's builtin engines and auth methods (the binary's
/// backend registry), which `plugin new` refuses as plugin names.
pub fn run(argv: &[String], builtin_names: &[&str]) -> i32 {
    let Some(cmd) = argv.first() else {
        eprint!("{USAGE}");
        return 127;
    };
    if matches!(cmd.as_str(), "-h" | "-help" | "--help" | "help") {
        print!("{USAGE}");
        return 0;
    }
    if matches!(cmd.as_str(), "version" | "-version" | "--version") {
        println!("Coffer v{} (OpenBao API 2.7.2)", env!("CARGO_PKG_VERSION"));
        return 0;
    }
    // Two-word commands take their subcommand before the flags.
    let (name, rest) = match cmd.as_str() {
        // `operator raft snapshot save|restore` (bao's spelling) and `operator snapshot save|restore`.
        "operator" if argv.get(1).map(String::as_str) == Some("raft") && argv.len() >= 4 => {
            (format!("operator raft {} {}", argv[2], argv[3]), &argv[4..])
        }
        "operator" if argv.get(1).map(String::as_str) == Some("snapshot") && argv.len() >= 3 => {
            (format!("operator snapshot {}", argv[2]), &argv[3..])
        }
        "operator" | "secrets" | "kv" | "token" | "policy" | "auth" | "plugin" => match argv.get(1) {
            Some(sub) => (format!("{cmd} {sub}"), &argv[2..]),
            None => {
                eprintln!("Usage: coffer {cmd} <subcommand> [options] [args]");
                return 1;
            }
        },
        _ => (cmd.clone(), &argv[1..]),
    };
    let p = match args::parse(rest) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("Error: {e}");
            return 1;
        }
    };
    let out = match Out::from_flags(&p) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("Error: {e}");
            return 1;
        }
    };
    let client = match Client::from_env(
        p.get("address"),
        p.has("tls-skip-verify"),
        p.get("ca-cert"),
        p.get("client-cert"),
        p.get("client-key"),
    ) {
        Ok(mut c) => {
            if let Some(t) = p.get("wrap-ttl").filter(|t| !t.is_empty()) {
                c.wrap_ttl = Some(t.to_string());
            }
            c
        }
        Err(e) => {
            eprintln!("Error: {e}");
            return 1;
        }
    };
    let result = dispatch(&name, &p, &client, &out, builtin_names);
    match result {
        Ok(code) => code,
        Err(Fail::Usage(m)) => {
            eprintln!("{m}");
            1
        }
        Err(Fail::Local(m)) => {
            eprintln!("Error: {m}");
            1
        }
        Err(Fail::Api(e)) => {
            eprintln!("{}", e.to_string().trim_end());
            e.exit_code()
        }
        Err(Fail::ApiIn(context, e)) => {
            eprintln!("{context}: {}", e.to_string().trim_end());
            e.exit_code()
        }
        Err(Fail::Exit(code, m)) => {
            eprintln!("{m}");
            code
        }
    }
}

fn dispatch(name: &str, p: &Parsed, c: &Client, out: &Out, builtin_names: &[&str]) -> R {
    match name {
        "status" => status(c, out),
        "read" => read(p, c, out),
        "write" => write(p, c, out),
        "delete" => delete(p, c),
        "list" => list(p, c, out),
        "operator init" => operator_init(p, c, out),
        "operator unseal" => operator_unseal(p, c, out),
        "operator seal" => {
            c.request("PUT", "sys/seal", None)?;
            println!("Success! Vault is sealed.");
            Ok(0)
        }
        "operator rotate" => {
            c.request("POST", "sys/rotate/keyring", None)?;
            let ks = c.request("GET", "sys/key-status", None)?;
            if !out.json {
                println!("Success! Rotated key\n");
            }
            key_status(ks, out)
        }
        "operator key-status" => {
            let ks = c.request("GET", "sys/key-status", None)?;
            key_status(ks, out)
        }
        "operator raft snapshot save" | "operator snapshot save" => {
            let file = one_arg(p, "operator snapshot save FILE")?;
            snapshot_save(c, &file)
        }
        "operator raft snapshot restore" | "operator snapshot restore" => {
            let file = one_arg(p, "operator snapshot restore [-force] FILE")?;
            snapshot_restore(c, &file, p.has("force"))
        }
        "operator snapshot auto" => snapshot_auto(p, c, out),
        "operator generate-root" => generate_root(p, c, out),
        "operator rekey" | "operator rotate-keys" => rekey(p, c, out),
        "secrets enable" => secrets_enable(p, c),
        "secrets disable" => {
            let path = one_arg(p, "secrets disable PATH")?;
            let path = mount_path(&path);
            c.request("DELETE", &format!("sys/mounts/{}", path.trim_end_matches('/')), None)?;
            println!("Success! Disabled the secrets engine (if it existed) at: {path}");
            Ok(0)
        }
        "secrets list" => secrets_list(p, c, out),
        "secrets tune" => secrets_tune(p, c),
        "secrets move" => secrets_move(p, c),
        "kv get" => kv_get(p, c, out),
        "kv put" => kv_put(p, c, out),
        "kv delete" => kv_delete(p, c),
        "kv list" => kv_list(p, c, out),
        "token create" => access::token_create(p, c, out),
        "token lookup" => access::token_lookup(p, c, out),
        "token renew" => access::token_renew(p, c, out),
        "token revoke" => access::token_revoke(p, c),
        "token capabilities" => access::token_capabilities(p, c, out),
        "policy write" => access::policy_write(p, c),
        "policy read" => access::policy_read(p, c, out),
        "policy list" => access::policy_list(p, c, out),
        "policy delete" => access::policy_delete(p, c),
        "policy fmt" => access::policy_fmt(p),
        "login" => access::login(p, c, out),
        "auth enable" => access::auth_enable(p, c),
        "auth disable" => access::auth_disable(p, c),
        "auth list" => access::auth_list(p, c, out),
        "auth tune" => access::auth_tune(p, c),
        "unwrap" => {
            // The wrapping token as an argument, or (none given) the client's own token.
            let body = match p.positional.as_slice() {
                [] => None,
                [t] => Some(json!({ "token": t })),
                _ => return Err(Fail::Usage("Usage: coffer unwrap [options] [TOKEN]".into())),
            };
            let r = c.request("PUT", "sys/wrapping/unwrap", body.as_ref())?;
            print_secret(r, out, p.get("field"))
        }
        "monitor" => {
            // As `bao monitor`: the server's log, streamed until interrupted.
            let level = p.get("log-level").unwrap_or("info");
            let format = p.get("log-format").unwrap_or("standard");
            let path = format!("sys/monitor?log_level={level}&log_format={format}");
            c.stream(&path, &mut std::io::stdout())?;
            Ok(0)
        }
        "plugin new" => plugin::new(p, builtin_names),
        "plugin install" => plugin::install(p, c),
        other => Err(Fail::Usage(format!("Unknown command: {other}\n\n{USAGE}"))),
    }
}

/// Saves the server's snapshot (`sys/storage/raft/snapshot`, as bao asks for it) to `file`,
/// written next to it first and renamed into place once complete.
fn snapshot_save(c: &Client, file: &str) -> R {
    let path = std::path::Path::new(file);
    let tmp = path.with_extension("partial");
    let mut f =
        std::fs::File::create(&tmp).map_err(|e| Fail::Local(format!("cannot create {}: {e}", tmp.display())))?;
    let streamed = c.stream("sys/storage/raft/snapshot", &mut f);
    if let Err(e) = streamed {
        let _ = std::fs::remove_file(&tmp);
        return Err(e.into());
    }
    f.sync_all().map_err(|e| Fail::Local(format!("cannot write {}: {e}", tmp.display())))?;
    std::fs::rename(&tmp, path).map_err(|e| Fail::Local(format!("cannot write {file}: {e}")))?;
    Ok(0)
}

/// Restores a snapshot file (`-force`: one taken from a server with other keys).
fn snapshot_restore(c: &Client, file: &str, force: bool) -> R {
    let bytes = std::fs::read(file).map_err(|e| Fail::Local(format!("cannot read {file}: {e}")))?;
    let path = if force { "sys/storage/raft/snapshot-force" } else { "sys/storage/raft/snapshot" };
    c.send_bytes("POST", path, bytes)?;
    Ok(0)
}

/// `operator snapshot auto config NAME [K=V...]` (read, or create/update with fields),
/// `… status NAME`, `… list`, `… delete NAME`: the automatic snapshot paths
/// (`sys/storage/snapshot-auto/…`) with the generic read, write, list and delete.
fn snapshot_auto(p: &Parsed, c: &Client, out: &Out) -> R {
    const USAGE: &str = "Usage: coffer operator snapshot auto config NAME [K=V...] | status NAME | list | delete NAME";
    let base = "sys/storage/snapshot-auto";
    let with = |positional: Vec<String>| Parsed { flags: p.flags.clone(), positional };
    match p.positional.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["config", name] => read(&with(vec![format!("{base}/config/{name}")]), c, out),
        ["config", name, fields @ ..] => {
            let mut positional = vec![format!("{base}/config/{name}")];
            positional.extend(fields.iter().map(|f| f.to_string()));
            write(&with(positional), c, out)
        }
        ["status", name] => read(&with(vec![format!("{base}/status/{name}")]), c, out),
        ["list"] => list(&with(vec![format!("{base}/config")]), c, out),
        ["delete", name] => delete(&with(vec![format!("{base}/config/{name}")]), c),
        _ => Err(Fail::Usage(USAGE.into())),
    }
}

fn one_arg(p: &Parsed, usage: &str) -> Result<String, Fail> {
    match p.positional.as_slice() {
        [a] => Ok(a.clone()),
        _ => Err(Fail::Usage(format!("Usage: coffer {usage}"))),
    }
}

fn mount_path(p: &str) -> String {
    format!("{}/", p.trim_matches('/'))
}

fn data_of(v: &Option<Value>) -> Map<String, Value> {
    v.as_ref().and_then(|v| v.get("data")).and_then(Value::as_object).cloned().unwrap_or_default()
}

// ----- status and operator -----

fn print_seal_status(s: &Value, out: &Out) {
    if out.json {
        out.print_json(s);
        return;
    }
    let g = |k: &str| s.get(k).cloned().unwrap_or(Value::Null);
    let sealed = g("sealed").as_bool().unwrap_or(true);
    let recovery = g("recovery_seal").as_bool().unwrap_or(false);
    let mut rows: Vec<(String, String)> = vec![("Seal Type".into(), output::scalar(&g("type")))];
    if recovery {
        rows.push(("Recovery Seal Type".into(), output::scalar(&g("recovery_seal_type"))));
    }
    rows.extend([
        ("Initialized".into(), output::scalar(&g("initialized"))),
        ("Sealed".into(), output::scalar(&g("sealed"))),
        (if recovery { "Total Recovery Shares" } else { "Total Shares" }.into(), output::scalar(&g("n"))),
        ("Threshold".into(), output::scalar(&g("t"))),
    ]);
    if g("migration").as_bool().unwrap_or(false) {
        rows.push(("Seal Migration in Progress".into(), "true".into()));
    }
    if sealed {
        rows.push((
            "Unseal Progress".into(),
            format!("{}/{}", output::scalar(&g("progress")), output::scalar(&g("t"))),
        ));
        let n = output::scalar(&g("nonce"));
        rows.push(("Unseal Nonce".into(), if n.is_empty() { "n/a".into() } else { n }));
    }
    rows.push(("Version".into(), output::scalar(&g("version"))));
    rows.push(("Storage Type".into(), output::scalar(&g("storage_type"))));
    if !sealed {
        rows.push(("Cluster Name".into(), output::scalar(&g("cluster_name"))));
        rows.push(("Cluster ID".into(), output::scalar(&g("cluster_id"))));
    }
    rows.push(("HA Enabled".into(), "false".into()));
    output::print_kv_table(&rows);
}

fn status(c: &Client, out: &Out) -> R {
    let s = match c.request("GET", "sys/seal-status", None) {
        Ok(Some(s)) => s,
        Ok(None) => return Err(Fail::Local("empty seal status".into())),
        Err(e) => {
            eprintln!("Error checking seal status: {e}");
            return Ok(1);
        }
    };
    print_seal_status(&s, out);
    Ok(if s.get("sealed").and_then(Value::as_bool).unwrap_or(true) { 2 } else { 0 })
}

/// A whole-number flag (`default` when absent).
fn number_flag(p: &Parsed, name: &str, default: &str) -> Result<u32, Fail> {
    // drop-cause: a usage error: the message names the flag; the parse error adds nothing.
    p.get(name).unwrap_or(default).parse().map_err(|_| Fail::Usage(format!("-{name} must be a number")))
}

fn operator_init(p: &Parsed, c: &Client, out: &Out) -> R {
    let n = number_flag(p, "key-shares", "5")?;
    let t = number_flag(p, "key-threshold", "3")?;
    let rn = number_flag(p, "recovery-shares", "5")?;
    let rt = number_flag(p, "recovery-threshold", "3")?;
    // With an auto-unseal seal the server hands out recovery keys instead of unseal keys.
    let auto = c
        .request("GET", "sys/seal-status", None)
        .ok()
        .flatten()
        .and_then(|s| s.get("recovery_seal").and_then(Value::as_bool))
        .unwrap_or(false);
    let mut body = if auto {
        json!({ "recovery_shares": rn, "recovery_threshold": rt })
    } else {
        json!({ "secret_shares": n, "secret_threshold": t })
    };
    for (flag, field) in [("pgp-keys", "pgp_keys"), ("recovery-pgp-keys", "recovery_pgp_keys")] {
        if let Some(v) = p.get(flag) {
            body[field] = json!(pgp_key_files(flag, v)?);
        }
    }
    if let Some(v) = p.get("root-token-pgp-key") {
        let mut keys = pgp_key_files("root-token-pgp-key", v)?;
        if keys.len() != 1 {
            return Err(Fail::Usage("-root-token-pgp-key takes exactly one key file".into()));
        }
        body["root_token_pgp_key"] = json!(keys.remove(0));
    }
    let r = c.request("PUT", "sys/init", Some(&body))?.unwrap_or(Value::Null);
    if auto {
        let list = |k: &str| -> Vec<String> {
            r[k].as_array()
                .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
                .unwrap_or_default()
        };
        let (b64, hexk) = (list("recovery_keys_base64"), list("recovery_keys"));
        let root = r["root_token"].as_str().unwrap_or("");
        if out.json {
            out.print_json(&json!({
                "unseal_keys_b64": [], "unseal_keys_hex": [], "unseal_shares": 1, "unseal_threshold": 1,
                "recovery_keys_b64": b64, "recovery_keys_hex": hexk, "recovery_keys_shares": rn,
                "recovery_keys_threshold": rt, "root_token": root,
            }));
            return Ok(0);
        }
        for (i, k) in b64.iter().enumerate() {
            println!("Recovery Key {}: {k}", i + 1);
        }
        println!("\nInitial Root Token: {root}\n");
        println!("Success! Coffer is initialized\n");
        println!("Recovery key initialized with {rn} key shares and a key threshold of {rt}. Please");
        println!("securely distribute the key shares printed above.");
        return Ok(0);
    }
    let b64: Vec<String> = r["keys_base64"]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    let hexk: Vec<String> = r["keys"]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    let root = r["root_token"].as_str().unwrap_or("");
    if out.json {
        out.print_json(&json!({
            "unseal_keys_b64": b64, "unseal_keys_hex": hexk, "unseal_shares": n, "unseal_threshold": t,
            "recovery_keys_b64": [], "recovery_keys_hex": [], "recovery_keys_shares": 0, "recovery_keys_threshold": 0,
            "root_token": root,
        }));
        return Ok(0);
    }
    for (i, k) in b64.iter().enumerate() {
        println!("Unseal Key {}: {k}", i + 1);
    }
    println!("\nInitial Root Token: {root}\n");
    println!("Coffer initialized with {n} key shares and a key threshold of {t}. Please securely");
    println!("distribute the key shares printed above. When the server is re-sealed,");
    println!("restarted, or stopped, you must supply at least {t} of these keys to unseal it");
    println!("before it can start servicing requests.\n");
    println!("Coffer does not store the generated root key. Without at least {t} keys to");
    println!("reconstruct the root key, Coffer will remain permanently sealed!");
    Ok(0)
}

fn operator_unseal(p: &Parsed, c: &Client, out: &Out) -> R {
    let body = if p.has("reset") {
        json!({ "reset": true })
    } else {
        let key = match p.positional.first() {
            Some(k) if k == "-" => {
                let mut s = String::new();
                std::io::Read::read_to_string(&mut std::io::stdin(), &mut s).map_err(|e| Fail::Local(e.to_string()))?;
                s.trim().to_string()
            }
            Some(k) => k.clone(),
            None => {
                return Err(Fail::Usage(
                    "Usage: coffer operator unseal [-reset] KEY  (interactive prompt not supported; pass the key or '-' for stdin)"
                        .into(),
                ))
            }
        };
        json!({ "key": key, "reset": false, "migrate": p.has("migrate") })
    };
    let s = c.request("PUT", "sys/unseal", Some(&body))?.unwrap_or(Value::Null);
    print_seal_status(&s, out);
    Ok(0)
}

fn key_status(ks: Option<Value>, out: &Out) -> R {
    let d = data_of(&ks);
    if out.json {
        out.print_json(&Value::Object(d));
        return Ok(0);
    }
    output::print_kv_table_plain(&[
        ("Key Term".into(), output::scalar(d.get("term").unwrap_or(&Value::Null))),
        ("Install Time".into(), output::scalar(d.get("install_time").unwrap_or(&Value::Null))),
        ("Encryption Count".into(), output::scalar(d.get("encryptions").unwrap_or(&Value::Null))),
    ]);
    Ok(0)
}

fn print_data_table(d: &Map<String, Value>, out: &Out) {
    if out.json {
        out.print_json(&Value::Object(d.clone()));
        return;
    }
    let rows: Vec<(String, String)> = d
        .iter()
        .map(|(k, v)| {
            (k.clone(), if v.is_string() && v.as_str() == Some("") { "n/a".into() } else { output::scalar(v) })
        })
        .collect();
    output::print_kv_table(&rows);
}

fn generate_root(p: &Parsed, c: &Client, out: &Out) -> R {
    const BASE: &str = "sys/generate-root-token";
    if p.has("generate-otp") {
        let s = c.request("GET", &format!("{BASE}/attempt"), None)?;
        let len = data_of(&s).get("otp_length").and_then(Value::as_u64).unwrap_or(26) as usize;
        // drop-cause: rustls's GetRandomFailed carries no detail beyond its name.
        println!("{}", random_otp(len).map_err(|_| Fail::Local("random number generator failed".into()))?);
        return Ok(0);
    }
    if let Some(enc) = p.get("decode") {
        let otp = p.get("otp").ok_or_else(|| Fail::Usage("-decode requires -otp".into()))?;
        use base64::Engine;
        let raw = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(enc.trim_end_matches('='))
            .map_err(|e| Fail::Local(format!("error decoding base64 token: {e}")))?;
        if raw.len() != otp.len() {
            return Err(Fail::Local("the OTP and the encoded token have different lengths".into()));
        }
        let token: Vec<u8> = raw.iter().zip(otp.bytes()).map(|(a, b)| a ^ b).collect();
        println!("{}", String::from_utf8_lossy(&token));
        return Ok(0);
    }
    if p.has("cancel") {
        c.request("DELETE", &format!("{BASE}/attempt"), None)?;
        println!("Success! Root token generation canceled (if it was started)");
        return Ok(0);
    }
    if p.has("status") {
        let s = c.request("GET", &format!("{BASE}/attempt"), None)?;
        print_data_table(&data_of(&s), out);
        return Ok(0);
    }
    if p.has("init") {
        let pgp_key = match p.get("pgp-key") {
            Some(v) => {
                let mut keys = pgp_key_files("pgp-key", v)?;
                if keys.len() != 1 {
                    return Err(Fail::Usage("-pgp-key takes exactly one key file".into()));
                }
                keys.remove(0)
            }
            None => String::new(),
        };
        let body = json!({ "otp": p.get("otp").unwrap_or(""), "pgp_key": pgp_key });
        let s = c.request("PUT", &format!("{BASE}/attempt"), Some(&body))?;
        print_data_table(&data_of(&s), out);
        return Ok(0);
    }
    let key = one_arg(p, "operator generate-root -nonce=NONCE KEY")?;
    let nonce =
        p.get("nonce").ok_or_else(|| Fail::Usage("Missing nonce value: specify it via the -nonce flag".into()))?;
    let s = c.request("PUT", &format!("{BASE}/update"), Some(&json!({ "key": key, "nonce": nonce })))?;
    print_data_table(&data_of(&s), out);
    Ok(0)
}

fn random_otp(len: usize) -> Result<String, rustls::crypto::GetRandomFailed> {
    const A: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut out = String::new();
    let mut buf = vec![0u8; len * 2];
    while out.len() < len {
        aws_lc_rs_fill(&mut buf)?;
        for b in &buf {
            if *b < 248 && out.len() < len {
                out.push(A[(*b % 62) as usize] as char);
            }
        }
    }
    Ok(out)
}

fn aws_lc_rs_fill(buf: &mut [u8]) -> Result<(), rustls::crypto::GetRandomFailed> {
    rustls::crypto::aws_lc_rs::default_provider().secure_random.fill(buf)
}

/// The public keys named by a `-pgp-keys`-style flag (comma-separated files), each as base64
/// of the binary key, which is what the server takes: an ASCII-armored file is de-armored, a
/// file holding base64 already is sent as it is, a binary file is encoded. `keybase:` names are
/// refused: nothing is fetched from the network.
fn pgp_key_files(flag: &str, value: &str) -> Result<Vec<String>, Fail> {
    use base64::engine::general_purpose::STANDARD as B64;
    use base64::Engine;
    let mut keys = Vec::new();
    for name in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        if name.starts_with("keybase:") {
            return Err(Fail::Usage(format!(
                "invalid value {value:?} for flag -{flag}: keybase: names are not supported; \
                 give files holding the public keys (gpg --export KEY > key.gpg)"
            )));
        }
        let raw = std::fs::read(name)
            .map_err(|e| Fail::Usage(format!("invalid value {value:?} for flag -{flag}: open {name}: {e}")))?;
        let text = String::from_utf8_lossy(&raw);
        let trimmed = text.trim();
        let key = if trimmed.starts_with("-----BEGIN PGP") {
            dearmor(trimmed).ok_or_else(|| {
                Fail::Usage(format!("invalid value {value:?} for flag -{flag}: {name}: unreadable ASCII armor"))
            })?
        } else {
            let compact: String = trimmed.chars().filter(|c| !c.is_ascii_whitespace()).collect();
            match B64.decode(compact.as_bytes()) {
                Ok(bin) if !compact.is_empty() && bin.first().is_some_and(|b| b & 0x80 != 0) => compact,
                _ => B64.encode(&raw),
            }
        };
        keys.push(key);
    }
    if keys.is_empty() {
        return Err(Fail::Usage(format!("flag -{flag} names no key file")));
    }
    Ok(keys)
}

/// The base64 body of an ASCII-armored block: the lines after the header block's blank line,
/// up to the checksum (`=XXXX`) or the END line.
fn dearmor(text: &str) -> Option<String> {
    let mut lines = text.lines().map(str::trim);
    lines.next()?;
    // Armor headers ("Comment: ...") end at the first blank line.
    let mut body = String::new();
    let mut in_body = false;
    for line in lines {
        if line.starts_with("-----END") {
            break;
        }
        if !in_body {
            if line.is_empty() {
                in_body = true;
            } else if !line.contains(": ") {
                // No header block at all.
                in_body = true;
                body.push_str(line);
            }
            continue;
        }
        if line.starts_with('=') {
            break;
        }
        body.push_str(line);
    }
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(body.as_bytes()).ok()?;
    Some(body)
}

fn rekey(p: &Parsed, c: &Client, out: &Out) -> R {
    let recovery = match p.get("target").unwrap_or("barrier") {
        "barrier" => false,
        "recovery" => true,
        other => return Err(Fail::Usage(format!("unknown -target {other:?}: barrier or recovery"))),
    };
    let base = if recovery { "sys/rotate/recovery" } else { "sys/rotate/root" };
    if p.has("backup-retrieve") {
        let s = c.request("GET", &format!("{base}/backup"), None)?;
        print_data_table(&data_of(&s), out);
        return Ok(0);
    }
    if p.has("backup-delete") {
        c.request("DELETE", &format!("{base}/backup"), None)?;
        println!("Success! Deleted backed up keys (if they existed)");
        return Ok(0);
    }
    rekey_ceremony(p, c, out, base)
}

fn rekey_ceremony(p: &Parsed, c: &Client, out: &Out, base: &str) -> R {
    let verify = p.has("verify");
    if p.has("cancel") {
        c.request("DELETE", &format!("{base}/{}", if verify { "verify" } else { "init" }), None)?;
        println!("Success! Canceled rekeying (if it was started)");
        return Ok(0);
    }
    if p.has("status") {
        let s = c.request("GET", &format!("{base}/{}", if verify { "verify" } else { "init" }), None)?;
        print_data_table(&data_of(&s), out);
        return Ok(0);
    }
    if p.has("init") {
        let body = json!({
            "secret_shares": number_flag(p, "key-shares", "5")?,
            "secret_threshold": number_flag(p, "key-threshold", "3")?,
            "require_verification": verify,
            "backup": p.has("backup"),
        });
        let mut body = body;
        if let Some(v) = p.get("pgp-keys") {
            body["pgp_keys"] = json!(pgp_key_files("pgp-keys", v)?);
        }
        let s = c.request("PUT", &format!("{base}/init"), Some(&body))?;
        print_data_table(&data_of(&s), out);
        return Ok(0);
    }
    let key = one_arg(p, "operator rekey -nonce=NONCE KEY")?;
    let nonce =
        p.get("nonce").ok_or_else(|| Fail::Usage("Missing nonce value: specify it via the -nonce flag".into()))?;
    let path = if verify { "verify" } else { "update" };
    let s = c.request("PUT", &format!("{base}/{path}"), Some(&json!({ "key": key, "nonce": nonce })))?;
    let d = data_of(&s);
    if out.json {
        out.print_json(&Value::Object(d));
        return Ok(0);
    }
    if d.get("complete").and_then(Value::as_bool) == Some(true) {
        if verify {
            println!("Success! Rekey verification was successful. The rekey operation is complete and the new keys are now active.");
            return Ok(0);
        }
        let fingerprints = d.get("pgp_fingerprints").and_then(Value::as_array);
        if let Some(keys) = d.get("keys_base64").and_then(Value::as_array) {
            for (i, k) in keys.iter().enumerate() {
                match fingerprints.and_then(|f| f.get(i)).and_then(Value::as_str) {
                    Some(fp) => println!("Key {} fingerprint: {fp}; value: {}", i + 1, k.as_str().unwrap_or("")),
                    None => println!("Key {}: {}", i + 1, k.as_str().unwrap_or("")),
                }
            }
        }
        println!("\nOperation nonce: {}", d.get("nonce").and_then(Value::as_str).unwrap_or(""));
        if d.get("backup").and_then(Value::as_bool) == Some(true) {
            println!("\nThe encrypted keys are backed up in the server's storage. Remove them with");
            println!("\"coffer operator rekey -backup-delete\" once every holder has their key.");
        }
        if d.get("verification_required").and_then(Value::as_bool) == Some(true) {
            println!("Verification nonce: {}", d.get("verification_nonce").and_then(Value::as_str).unwrap_or(""));
            println!("\nThe new keys are not active until a threshold of them is given with -verify.");
        } else {
            println!("\nThe rekey is complete: the keys above replace the old unseal keys.");
        }
        return Ok(0);
    }
    print_data_table(&d, out);
    Ok(0)
}

// ----- secrets -----

/// `-options=k=v` (repeatable) and `-version=N` as a mount's options map.
fn mount_options(p: &Parsed) -> Map<String, Value> {
    let mut options = Map::new();
    for kv in p.all("options") {
        if let Some((k, v)) = kv.split_once('=') {
            options.insert(k.into(), v.into());
        }
    }
    if let Some(v) = p.get("version") {
        options.insert("version".into(), v.into());
    }
    options
}

fn secrets_enable(p: &Parsed, c: &Client) -> R {
    let ty = one_arg(p, "secrets enable [options] TYPE")?;
    let path = mount_path(p.get("path").unwrap_or(&ty));
    let options = mount_options(p);
    let mut config = Map::new();
    for (flag, key) in [("default-lease-ttl", "default_lease_ttl"), ("max-lease-ttl", "max_lease_ttl")] {
        if let Some(v) = p.get(flag) {
            config.insert(key.into(), v.into());
        }
    }
    let body = json!({
        "type": ty,
        "description": p.get("description").unwrap_or(""),
        "config": config,
        "local": p.has("local"),
        "seal_wrap": p.has("seal-wrap"),
        "external_entropy_access": p.has("external-entropy-access"),
        "options": if options.is_empty() { Value::Null } else { Value::Object(options) },
    });
    c.request("POST", &format!("sys/mounts/{}", path.trim_end_matches('/')), Some(&body))?;
    println!("Success! Enabled the {ty} secrets engine at: {path}");
    Ok(0)
}

fn secrets_list(p: &Parsed, c: &Client, out: &Out) -> R {
    let r = c.request("GET", "sys/mounts", None)?;
    let d = data_of(&r);
    if out.json {
        out.print_json(&Value::Object(d));
        return Ok(0);
    }
    let mut rows = vec![];
    let detailed = p.has("detailed");
    for (path, m) in &d {
        let s = |k: &str| m.get(k).map(output::scalar).unwrap_or_default();
        let desc = if s("description").is_empty() { "n/a".to_string() } else { s("description") };
        let mut row = vec![path.clone(), s("type"), s("accessor")];
        if detailed {
            let ttl = |k: &str| match m["config"].get(k).and_then(Value::as_i64) {
                Some(0) | None => "system".to_string(),
                Some(n) => format!("{n}s"),
            };
            row.push(ttl("default_lease_ttl"));
            row.push(ttl("max_lease_ttl"));
            row.push(if m.get("local").and_then(Value::as_bool) == Some(true) { "local" } else { "replicated" }.into());
            row.push(s("seal_wrap"));
            row.push(m.get("options").map(output::scalar).unwrap_or_default());
            row.push(s("uuid"));
        }
        row.push(desc);
        rows.push(row);
    }
    let mut header = vec!["Path", "Type", "Accessor"];
    if detailed {
        header.extend(["Default TTL", "Max TTL", "Replication", "Seal Wrap", "Options", "UUID"]);
    }
    header.push("Description");
    output::print_columns(&header, &rows);
    Ok(0)
}

fn secrets_tune(p: &Parsed, c: &Client) -> R {
    let path = mount_path(&one_arg(p, "secrets tune [options] PATH")?);
    let mut body = Map::new();
    for (flag, key) in [
        ("default-lease-ttl", "default_lease_ttl"),
        ("max-lease-ttl", "max_lease_ttl"),
        ("description", "description"),
        ("listing-visibility", "listing_visibility"),
        ("plugin-version", "plugin_version"),
    ] {
        if let Some(v) = p.get(flag) {
            body.insert(key.into(), v.into());
        }
    }
    let options = mount_options(p);
    if !options.is_empty() {
        body.insert("options".into(), Value::Object(options));
    }
    c.request("POST", &format!("sys/mounts/{}/tune", path.trim_end_matches('/')), Some(&Value::Object(body)))?;
    println!("Success! Tuned the secrets engine at: {path}");
    Ok(0)
}

fn secrets_move(p: &Parsed, c: &Client) -> R {
    let [from, to] = p.positional.as_slice() else {
        return Err(Fail::Usage("Usage: coffer secrets move SOURCE DESTINATION".into()));
    };
    let (from, to) = (mount_path(from), mount_path(to));
    let r = c.request("POST", "sys/remount", Some(&json!({ "from": from, "to": to })))?;
    let id = data_of(&r).get("migration_id").and_then(Value::as_str).unwrap_or("").to_string();
    println!("Started moving secrets engine {from} to {to}, with migration ID {id}");
    for _ in 0..300 {
        let st = c.request("GET", &format!("sys/remount/status/{id}"), None)?;
        let status = data_of(&st)
            .get("migration_info")
            .and_then(|m| m.get("status"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        match status.as_str() {
            "success" => {
                println!("Success! Finished moving secrets engine {from} to {to}, with migration ID {id}");
                return Ok(0);
            }
            "failure" => return Err(Fail::Local(format!("moving {from} to {to} failed (migration ID {id})"))),
            _ => std::thread::sleep(std::time::Duration::from_millis(100)),
        }
    }
    Err(Fail::Local(format!("timed out waiting for migration {id}")))
}

// ----- generic read/write/delete/list -----

fn parse_kv_args(args: &[String]) -> Result<Map<String, Value>, Fail> {
    let mut m = Map::new();
    for a in args {
        if a == "-" {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut s).map_err(|e| Fail::Local(e.to_string()))?;
            let v: Value =
                serde_json::from_str(&s).map_err(|e| Fail::Local(format!("failed to parse JSON from stdin: {e}")))?;
            let Value::Object(o) = v else { return Err(Fail::Local("stdin must hold a JSON object".into())) };
            m.extend(o);
            continue;
        }
        let Some((k, v)) = a.split_once('=') else {
            return Err(Fail::Usage(format!("invalid key/value pair {a:?}: expected key=value")));
        };
        let value = if let Some(file) = v.strip_prefix('@') {
            std::fs::read_to_string(file).map_err(|e| Fail::Local(format!("cannot read {file:?}: {e}")))?
        } else if v == "-" {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut s).map_err(|e| Fail::Local(e.to_string()))?;
            s
        } else {
            v.to_string()
        };
        m.insert(k.to_string(), Value::String(value));
    }
    Ok(m)
}

/// `-field=NAME`: the bare value, no newline, as Vault prints it (JSON with `-format=json`).
fn print_field(v: Option<&Value>, name: &str, out: &Out) -> R {
    match v.filter(|v| !v.is_null()) {
        Some(v) => {
            if out.json {
                print!("{}", serde_json::to_string_pretty(&output::sorted(v)).unwrap_or_default());
            } else {
                print!("{}", output::scalar(v));
            }
            Ok(0)
        }
        None => Err(Fail::Exit(1, format!("Field \"{name}\" not present in secret"))),
    }
}

/// The value `-field=NAME` selects: for a response with `auth`, Vault's token fields
/// (`token`, `token_accessor`, `token_duration`, ...); otherwise a key of `data`.
fn secret_field<'a>(r: &'a Value, name: &str) -> Option<&'a Value> {
    match r.get("auth").filter(|a| a.is_object()) {
        Some(a) => match name {
            "token" => a.get("client_token"),
            "token_accessor" => a.get("accessor"),
            "token_duration" => a.get("lease_duration"),
            "token_renewable" => a.get("renewable"),
            "token_policies" | "identity_policies" | "policies" => a.get(name),
            _ => None,
        },
        None => r.get("data").and_then(|d| d.get(name)),
    }
}

/// A response as Vault's `api.Secret` marshals it: its fields in struct order, maps sorted.
fn go_secret(r: &Value) -> Value {
    let g = |k: &str, d: Value| r.get(k).cloned().filter(|v| !v.is_null()).unwrap_or(d);
    let mut m = Map::new();
    m.insert("request_id".into(), g("request_id", json!("")));
    m.insert("lease_id".into(), g("lease_id", json!("")));
    m.insert("lease_duration".into(), g("lease_duration", json!(0)));
    m.insert("renewable".into(), g("renewable", json!(false)));
    m.insert("data".into(), output::sorted(&g("data", Value::Null)));
    m.insert("warnings".into(), g("warnings", Value::Null));
    if let Some(a) = r.get("auth").filter(|a| a.is_object()) {
        let ga = |k: &str, d: Value| a.get(k).cloned().filter(|v| !v.is_null()).unwrap_or(d);
        m.insert(
            "auth".into(),
            json!({
                "client_token": ga("client_token", json!("")),
                "accessor": ga("accessor", json!("")),
                "policies": ga("policies", Value::Null),
                "token_policies": ga("token_policies", Value::Null),
                "identity_policies": ga("identity_policies", Value::Null),
                "metadata": output::sorted(&ga("metadata", Value::Null)),
                "orphan": ga("orphan", json!(false)),
                "entity_id": ga("entity_id", json!("")),
                "lease_duration": ga("lease_duration", json!(0)),
                "renewable": ga("renewable", json!(false)),
                "mfa_requirement": ga("mfa_requirement", Value::Null),
            }),
        );
    }
    if let Some(w) = r.get("wrap_info").filter(|w| w.is_object()) {
        m.insert("wrap_info".into(), w.clone());
    }
    Value::Object(m)
}

/// Vault's table for a secret: lease, then the token (`auth`), then `data` sorted by key,
/// with TTL-like integers as durations and empty strings as `n/a`.
fn print_secret_table(r: &Value) {
    let mut rows: Vec<(String, String)> = vec![];
    // A wrapped answer shows the wrapping token instead of the data, as the bao CLI does.
    if let Some(w) = r.get("wrap_info").filter(|w| w.is_object()) {
        let s = |k: &str| w.get(k).map(output::scalar).unwrap_or_default();
        rows.push(("wrapping_token:".into(), s("token")));
        rows.push(("wrapping_accessor:".into(), s("accessor")));
        rows.push(("wrapping_token_ttl:".into(), output::duration(w.get("ttl").and_then(Value::as_i64).unwrap_or(0))));
        rows.push(("wrapping_token_creation_time:".into(), s("creation_time")));
        rows.push(("wrapping_token_creation_path:".into(), s("creation_path")));
        if let Some(a) = w.get("wrapped_accessor").and_then(Value::as_str).filter(|a| !a.is_empty()) {
            rows.push(("wrapped_accessor:".into(), a.to_string()));
        }
        output::print_kv_table(&rows);
        return;
    }
    if let Some(ld) = r.get("lease_duration").and_then(Value::as_i64).filter(|n| *n > 0) {
        match r.get("lease_id").and_then(Value::as_str).filter(|s| !s.is_empty()) {
            Some(id) => {
                rows.push(("lease_id".into(), id.into()));
                rows.push(("lease_duration".into(), output::duration(ld)));
                rows.push((
                    "lease_renewable".into(),
                    r.get("renewable").and_then(Value::as_bool).unwrap_or(false).to_string(),
                ));
            }
            None => rows.push(("refresh_interval".into(), output::duration(ld))),
        }
    }
    if let Some(a) = r.get("auth").filter(|a| a.is_object()) {
        let s = |k: &str| a.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        rows.push(("token".into(), s("client_token")));
        rows.push(("token_accessor".into(), s("accessor")));
        let ld = a.get("lease_duration").and_then(Value::as_i64).unwrap_or(0);
        rows.push(("token_duration".into(), if ld == 0 { "∞".into() } else { output::duration(ld) }));
        rows.push(("token_renewable".into(), a.get("renewable").and_then(Value::as_bool).unwrap_or(false).to_string()));
        for k in ["token_policies", "identity_policies", "policies"] {
            rows.push((k.into(), output::quoted_list(a.get(k))));
        }
        if let Some(Value::Object(md)) = a.get("metadata") {
            let mut keys: Vec<&String> = md.keys().collect();
            keys.sort();
            for k in keys {
                rows.push((format!("token_meta_{k}"), output::scalar(&md[k.as_str()])));
            }
        }
    }
    if let Some(Value::Object(d)) = r.get("data") {
        let mut keys: Vec<&String> = d.keys().collect();
        keys.sort();
        for k in keys {
            let v = &d[k.as_str()];
            let shown = match v {
                Value::String(s) if s.is_empty() => "n/a".to_string(),
                Value::Number(n) if output::looks_like_duration(k) && n.as_i64().is_some() => {
                    output::duration(n.as_i64().unwrap_or(0))
                }
                other => output::scalar(other),
            };
            rows.push((k.clone(), shown));
        }
    }
    if !rows.is_empty() {
        output::print_kv_table(&rows);
    }
}

/// The response's warnings on stderr, as Vault prints them after a table.
fn print_warnings(r: &Value) {
    let warnings: Vec<&str> =
        r.get("warnings").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
    if warnings.is_empty() {
        return;
    }
    eprintln!("WARNING! The following warnings were returned from Coffer:\n");
    for w in warnings {
        let wrapped = output::wrap(&format!("* {w}"), 76);
        for line in wrapped.lines() {
            eprintln!("  {line}");
        }
        eprintln!();
    }
}

fn print_secret(r: Option<Value>, out: &Out, field: Option<&str>) -> R {
    let Some(r) = r else { return Ok(0) };
    // A body served as is, not in Vault's envelope (the OIDC discovery documents,
    // introspection, sys/seal-status …): the bao CLI shows its fields as the secret's data.
    let r = match r {
        Value::Object(m) if !m.contains_key("request_id") && !m.contains_key("data") && !m.contains_key("auth") => {
            json!({ "request_id": "", "data": Value::Object(m) })
        }
        other => other,
    };
    if let Some(f) = field {
        return print_field(secret_field(&r, f), f, out);
    }
    if out.json {
        out.print_json(&go_secret(&r));
        return Ok(0);
    }
    print_secret_table(&r);
    print_warnings(&r);
    Ok(0)
}

fn read(p: &Parsed, c: &Client, out: &Out) -> R {
    let path = one_arg(p, "read [options] PATH")?;
    match c.request("GET", &path, None) {
        Ok(r) => print_secret(r, out, p.get("field")),
        Err(e) if e.status() == Some(404) => {
            eprintln!("No value found at {path}");
            Ok(2)
        }
        Err(e) => Err(e.into()),
    }
}

fn write(p: &Parsed, c: &Client, out: &Out) -> R {
    let Some((path, rest)) = p.positional.split_first() else {
        return Err(Fail::Usage("Usage: coffer write [options] PATH [DATA K=V...]".into()));
    };
    let body = parse_kv_args(rest)?;
    let r = c.request("PUT", path, Some(&Value::Object(body)))?;
    match r {
        None => {
            println!("Success! Data written to: {path}");
            Ok(0)
        }
        Some(r) => print_secret(Some(r), out, p.get("field")),
    }
}

fn delete(p: &Parsed, c: &Client) -> R {
    let path = one_arg(p, "delete [options] PATH")?;
    c.request("DELETE", &path, None)?;
    println!("Success! Data deleted (if it existed) at: {path}");
    Ok(0)
}

fn print_keys(r: Option<Value>, out: &Out) -> R {
    let keys = data_of(&r).get("keys").cloned().unwrap_or(Value::Array(vec![]));
    if out.json {
        out.print_json(&keys);
        return Ok(0);
    }
    println!("Keys\n----");
    for k in keys.as_array().into_iter().flatten() {
        println!("{}", k.as_str().unwrap_or(""));
    }
    Ok(0)
}

fn list(p: &Parsed, c: &Client, out: &Out) -> R {
    let path = one_arg(p, "list [options] PATH")?;
    // GET with list=true, as the bao CLI does: some HTTP stacks refuse the LIST verb.
    match c.request("GET", &format!("{}?list=true", path.trim_end_matches('/')), None) {
        Ok(r) => print_keys(r, out),
        Err(e) if e.status() == Some(404) => {
            eprintln!("No value found at {}/", path.trim_end_matches('/'));
            Ok(2)
        }
        Err(e) => Err(e.into()),
    }
}

// ----- kv -----

/// Finds the mount of `path` and its KV version (1 or 2).
fn kv_mount(c: &Client, path: &str) -> Result<(String, u8), Fail> {
    let r = c.request("GET", &format!("sys/internal/ui/mounts/{}", path.trim_start_matches('/')), None)?;
    let d = data_of(&r);
    let mount = d.get("path").and_then(Value::as_str).unwrap_or("").to_string();
    let version = d.get("options").and_then(|o| o.get("version")).and_then(Value::as_str).unwrap_or("1");
    Ok((mount, if version == "2" { 2 } else { 1 }))
}

fn kv_path(p: &Parsed, usage: &str) -> Result<(String, Vec<String>), Fail> {
    let Some((first, rest)) = p.positional.split_first() else {
        return Err(Fail::Usage(format!("Usage: coffer {usage}")));
    };
    let path = match p.get("mount") {
        Some(m) => format!("{}/{}", m.trim_matches('/'), first.trim_start_matches('/')),
        None => first.trim_start_matches('/').to_string(),
    };
    Ok((path, rest.to_vec()))
}

fn v2_path(mount: &str, path: &str, kind: &str) -> String {
    let rel = path.strip_prefix(mount).unwrap_or(path);
    format!("{mount}{kind}/{rel}")
}

fn kv_get(p: &Parsed, c: &Client, out: &Out) -> R {
    let (path, _) = kv_path(p, "kv get [options] KEY")?;
    let (mount, version) = kv_mount(c, &path)?;
    let api = if version == 2 {
        let mut a = v2_path(&mount, &path, "data");
        if let Some(v) = p.get("version") {
            a = format!("{a}?version={v}");
        }
        a
    } else {
        path.clone()
    };
    let r = match c.request("GET", &api, None) {
        Ok(Some(r)) => r,
        Ok(None) => Value::Null,
        Err(e) if e.status() == Some(404) => {
            eprintln!("No value found at {api}");
            return Ok(2);
        }
        Err(e) => return Err(e.into()),
    };
    let data = if version == 2 { r["data"]["data"].clone() } else { r["data"].clone() };
    if let Some(f) = p.get("field") {
        return print_field(data.get(f), f, out);
    }
    if out.json {
        out.print_json(&r);
        return Ok(0);
    }
    if version == 2 {
        if let Some(Value::Object(md)) = r["data"].get("metadata") {
            println!("{}", output::banner("Secret Path", &api));
            println!("{}", output::banner("Metadata", ""));
            output::print_kv_table(&md.iter().map(|(k, v)| (k.clone(), output::scalar(v))).collect::<Vec<_>>());
            println!();
        }
    }
    println!("== Data ==");
    let rows: Vec<(String, String)> =
        data.as_object().into_iter().flatten().map(|(k, v)| (k.clone(), output::scalar(v))).collect();
    output::print_kv_table(&rows);
    Ok(0)
}

fn kv_put(p: &Parsed, c: &Client, out: &Out) -> R {
    let (path, rest) = kv_path(p, "kv put [options] KEY [DATA K=V...]")?;
    if rest.is_empty() {
        return Err(Fail::Usage("Must supply data".into()));
    }
    let data = parse_kv_args(&rest)?;
    let (mount, version) = kv_mount(c, &path)?;
    if version == 2 {
        let mut options = Map::new();
        if let Some(cas) = p.get("cas") {
            options.insert("cas".into(), cas.parse::<i64>().map(Value::from).unwrap_or(Value::Null));
        }
        let body = json!({ "data": data, "options": options });
        let r = c.request("PUT", &v2_path(&mount, &path, "data"), Some(&body))?;
        return print_secret(r, out, p.get("field"));
    }
    c.request("PUT", &path, Some(&Value::Object(data)))?;
    println!("Success! Data written to: {path}");
    Ok(0)
}

fn kv_delete(p: &Parsed, c: &Client) -> R {
    let (path, _) = kv_path(p, "kv delete [options] KEY")?;
    let (mount, version) = kv_mount(c, &path)?;
    let api = if version == 2 { v2_path(&mount, &path, "data") } else { path.clone() };
    c.request("DELETE", &api, None)?;
    println!("Success! Data deleted (if it existed) at: {path}");
    Ok(0)
}

fn kv_list(p: &Parsed, c: &Client, out: &Out) -> R {
    let (path, _) = kv_path(p, "kv list [options] PATH")?;
    let (mount, version) = kv_mount(c, &path)?;
    let api = if version == 2 { v2_path(&mount, &path, "metadata") } else { path.clone() };
    match c.request("GET", &format!("{}?list=true", api.trim_end_matches('/')), None) {
        Ok(r) => print_keys(r, out),
        Err(e) if e.status() == Some(404) => {
            eprintln!("No value found at {}/", api.trim_end_matches('/'));
            Ok(2)
        }
        Err(e) => Err(e.into()),
    }
}

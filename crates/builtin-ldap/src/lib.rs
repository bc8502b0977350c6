#![forbid(unsafe_code)]
//! The LDAP auth method (`ldap`), with Vault's documented API: `config`, `groups/<name>`,
//! `users/<name>`, `login/<username>`.
//!
//! A login finds the user's DN (a search with `userfilter` under `userdn` when `discoverdn` or
//! a bind DN is configured, `user@upndomain`, or `userattr=<user>,userdn`), binds as the user
//! with the password, then searches `groupdn` with `groupfilter` for the user's groups and —
//! Coffer's addition — the same filter again for each group found, so nested `groupOfNames`
//! resolve on servers without a transitive matching rule. Policies come from the token
//! settings, `users/<name>` and `groups/<name>`; every group becomes a group alias (external
//! groups sync from them) and the user an entity alias.
//!
//! The user name is escaped wherever it meets LDAP (RFC 4515 in filters, RFC 4514 in DNs).
//! A wrong password and an unknown user get the same answer; an unreachable server gets its
//! own (it says nothing of the credentials). The bind password is never returned.
//!
//! Storage: `config` → [`Config`], `user/<name>`, `group/<name>` (lower-cased unless
//! `case_sensitive_names`).

use async_trait::async_trait;
use coffer_sdk::field::FieldType;
use coffer_sdk::framework::{FieldData, FieldSpec, Handler, PathFlags, PathSpec, Paths};
use coffer_sdk::tokenutil::{addr_in_cidrs, equivalent_policies, normalize_policies, token_fields, TokenParams};
use coffer_sdk::{ErrorKind, LogicalError, LoginRenewal, Operation, Request, Response, Result};
use ldap3::{dn_escape, ldap_escape, Ldap as Conn, LdapConnAsync, LdapConnSettings, Scope, SearchEntry};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

const INVALID_CREDENTIALS: &str = "ldap operation failed: invalid username or password";
const UNREACHABLE: &str = "ldap operation failed: could not reach any LDAP server";
const DEFAULT_GROUP_FILTER: &str = "(|(memberUid={{.Username}})(member={{.UserDN}})(uniqueMember={{.UserDN}}))";
const DEFAULT_USER_FILTER: &str = "({{.UserAttr}}={{.Username}})";
/// How deep nested groups are followed.
const MAX_GROUP_DEPTH: usize = 10;

/// A user or group name in a path: anything but `/`.
const NAME: &str = r"[^/]+";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Config,
    GroupList,
    Group,
    UserList,
    User,
    Login,
}

/// The mount's directory settings and token settings.
#[derive(Clone, Serialize, Deserialize)]
struct Config {
    url: String,
    #[serde(default)]
    starttls: bool,
    #[serde(default)]
    insecure_tls: bool,
    #[serde(default)]
    certificate: String,
    #[serde(default)]
    binddn: String,
    /// Never returned.
    #[serde(default)]
    bindpass: String,
    #[serde(default)]
    userdn: String,
    userattr: String,
    #[serde(default)]
    upndomain: String,
    userfilter: String,
    #[serde(default)]
    groupdn: String,
    groupfilter: String,
    groupattr: String,
    #[serde(default)]
    discoverdn: bool,
    deny_null_bind: bool,
    #[serde(default)]
    case_sensitive_names: bool,
    #[serde(default)]
    username_as_alias: bool,
    #[serde(default)]
    anonymous_group_search: bool,
    connection_timeout: i64,
    request_timeout: i64,
    #[serde(flatten)]
    token: TokenParams,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            url: "ldap://127.0.0.1".into(),
            starttls: false,
            insecure_tls: false,
            certificate: String::new(),
            binddn: String::new(),
            bindpass: String::new(),
            userdn: String::new(),
            userattr: "cn".into(),
            upndomain: String::new(),
            userfilter: DEFAULT_USER_FILTER.into(),
            groupdn: String::new(),
            groupfilter: DEFAULT_GROUP_FILTER.into(),
            groupattr: "cn".into(),
            discoverdn: false,
            deny_null_bind: true,
            case_sensitive_names: false,
            username_as_alias: false,
            anonymous_group_search: false,
            connection_timeout: 30,
            request_timeout: 90,
            token: TokenParams::default(),
        }
    }
}

#[derive(Clone, Serialize, Deserialize, Default)]
struct UserEntry {
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    policies: Vec<String>,
}

#[derive(Clone, Serialize, Deserialize, Default)]
struct GroupEntry {
    #[serde(default)]
    policies: Vec<String>,
}

pub struct Ldap {
    paths: Paths<Route>,
}

impl Default for Ldap {
    fn default() -> Self {
        Self::new()
    }
}

impl Ldap {
    pub fn new() -> Self {
        Ldap { paths: Paths::new(specs_static().to_vec()) }
    }
}

fn s(name: &'static str, help: &'static str) -> FieldSpec {
    FieldSpec::new(name, FieldType::String, help)
}

fn b(name: &'static str, help: &'static str) -> FieldSpec {
    FieldSpec::new(name, FieldType::Bool, help)
}

/// Fields whose only accepted value is their default: Coffer does not implement them.
const UNSUPPORTED: [(&str, &str); 3] = [
    ("use_token_groups", "Active Directory tokenGroups are not read: use a groupfilter"),
    ("client_tls_cert", "client certificates towards the LDAP server are not supported"),
    ("client_tls_key", "client certificates towards the LDAP server are not supported"),
];

fn build_specs() -> Vec<(Route, PathSpec)> {
    let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
    let mut config_fields = vec![
        s("url", "LDAP URL(s), comma-separated: tried in order until one answers (ldap:// or ldaps://)"),
        b("starttls", "Upgrade ldap:// connections with StartTLS"),
        b("insecure_tls", "Skip verifying the server's certificate (testing only)"),
        s("certificate", "PEM CA certificate(s) the server's certificate must chain to (default: the system roots)"),
        s("binddn", "DN to bind as for searches (user discovery, groups)"),
        s("bindpass", "Password of binddn (never returned)"),
        s("userdn", "Base DN under which users are searched"),
        s("userattr", "Attribute holding the user name (default cn)"),
        s("upndomain", "Bind as user@upndomain (Active Directory)"),
        s("userfilter", "Filter finding the user ({{.UserAttr}}, {{.Username}})"),
        s("groupdn", "Base DN under which groups are searched"),
        s("groupfilter", "Filter finding the user's groups ({{.UserDN}}, {{.Username}})"),
        s("groupattr", "Attribute of a group entry holding its name (default cn)"),
        b("discoverdn", "Find the user's DN by searching (anonymously unless binddn is set)"),
        b("deny_null_bind", "Refuse empty passwords (default true)"),
        b("case_sensitive_names", "Match user and group names case-sensitively"),
        b("username_as_alias", "Use the user name as typed as the identity alias name"),
        b("anonymous_group_search", "Search groups anonymously instead of as binddn"),
        FieldSpec::new("connection_timeout", FieldType::DurationSecond, "Connection timeout per server (default 30s)"),
        FieldSpec::new("request_timeout", FieldType::DurationSecond, "Timeout of each LDAP operation (default 90s)"),
        b("use_token_groups", "Not supported (Active Directory tokenGroups)"),
        s("client_tls_cert", "Not supported"),
        s("client_tls_key", "Not supported"),
    ];
    config_fields.extend(token_fields());
    let name_field = || s("name", "Name of the LDAP user or group");
    vec![
        (
            Route::Config,
            PathSpec {
                flags: PathFlags::NORMAL,
                pattern: "config",
                fields: config_fields,
                operations: vec![
                    (Operation::Update, "Configure the directory"),
                    (Operation::Read, "Read the configuration"),
                ],
                passthrough: false,
                synopsis: "Configure the LDAP server",
                description: "Where the directory is, how users and groups are found, and the settings of the tokens \
                              logins receive.",
            },
        ),
        (
            Route::GroupList,
            PathSpec {
                flags: PathFlags::NORMAL,
                pattern: "groups/?",
                fields: vec![],
                operations: vec![(Operation::List, "List the group policy mappings")],
                passthrough: false,
                synopsis: "List LDAP groups",
                description: "Lists the LDAP groups that have policies mapped.",
            },
        ),
        (
            Route::Group,
            PathSpec {
                flags: PathFlags::NORMAL,
                pattern: leak(format!("groups/(?P<name>{NAME})")),
                fields: vec![
                    name_field(),
                    FieldSpec::new("policies", FieldType::CommaStringSlice, "Policies of the group's members"),
                ],
                operations: vec![
                    (Operation::Update, "Map policies to the group"),
                    (Operation::Read, "Read the group's policies"),
                    (Operation::Delete, "Delete the mapping"),
                ],
                passthrough: false,
                synopsis: "Map an LDAP group to policies",
                description: "Members of the LDAP group get these policies when they log in.",
            },
        ),
        (
            Route::UserList,
            PathSpec {
                flags: PathFlags::NORMAL,
                pattern: "users/?",
                fields: vec![],
                operations: vec![(Operation::List, "List the user mappings")],
                passthrough: false,
                synopsis: "List LDAP users",
                description: "Lists the LDAP users that have policies or extra groups mapped.",
            },
        ),
        (
            Route::User,
            PathSpec {
                flags: PathFlags::NORMAL,
                pattern: leak(format!("users/(?P<name>{NAME})")),
                fields: vec![
                    name_field(),
                    FieldSpec::new("groups", FieldType::CommaStringSlice, "Groups the user is treated as a member of"),
                    FieldSpec::new("policies", FieldType::CommaStringSlice, "Policies of the user"),
                ],
                operations: vec![
                    (Operation::Update, "Map policies and groups to the user"),
                    (Operation::Read, "Read the user's mapping"),
                    (Operation::Delete, "Delete the mapping"),
                ],
                passthrough: false,
                synopsis: "Map an LDAP user to policies and groups",
                description: "The user gets these policies, and those of these groups, when logging in.",
            },
        ),
        (
            Route::Login,
            PathSpec {
                flags: PathFlags::NORMAL.unauthenticated(),
                pattern: leak(format!("login/(?P<username>{NAME})")),
                fields: vec![s("username", "LDAP user name"), s("password", "Password of the user")],
                operations: vec![(Operation::Update, "Log in with an LDAP user name and password")],
                passthrough: false,
                synopsis: "Log in with LDAP credentials",
                description: "Binds to the directory as the user, resolves the user's groups and returns a token \
                              with their policies.",
            },
        ),
    ]
}

fn specs_static() -> &'static [(Route, PathSpec)] {
    static P: OnceLock<Vec<(Route, PathSpec)>> = OnceLock::new();
    P.get_or_init(build_specs)
}

// ----- storage -----

async fn load<T: for<'de> Deserialize<'de>>(req: &Request, key: &str) -> Result<Option<T>> {
    match req.storage.get(key).await? {
        None => Ok(None),
        Some(raw) => serde_json::from_slice(&raw)
            .map(Some)
            // drop-cause: the config entry holds the bind password, which a JSON error could quote.
            .map_err(|_| LogicalError::internal(format!("stored entry {key:?} is malformed"))),
    }
}

async fn save<T: Serialize>(req: &Request, key: &str, v: &T) -> Result<()> {
    // drop-cause: the config entry holds the bind password.
    let bytes = serde_json::to_vec(v).map_err(|_| LogicalError::internal(format!("cannot encode entry {key:?}")))?;
    req.storage.put(key, &bytes).await
}

fn strings(f: &FieldData, name: &str) -> Option<Vec<String>> {
    match f.get(name)? {
        Value::Array(a) => {
            Some(a.iter().filter_map(|v| v.as_str().map(|s| s.trim().to_string())).filter(|s| !s.is_empty()).collect())
        }
        Value::String(s) => Some(s.split(',').map(|x| x.trim().to_string()).filter(|x| !x.is_empty()).collect()),
        _ => None,
    }
}

/// A filter template that does not render.
#[derive(Debug)]
struct TemplateError(String);

impl std::fmt::Display for TemplateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Renders one of Vault's filter templates: only `{{.Username}}`, `{{.UserAttr}}` and
/// `{{.UserDN}}` (spaces inside the braces allowed); anything else in braces is an error.
fn render(template: &str, vars: &[(&str, &str)]) -> std::result::Result<String, TemplateError> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(i) = rest.find("{{") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let Some(j) = after.find("}}") else { return Err(TemplateError("unclosed {{".into())) };
        let key = after[..j].trim().trim_start_matches('.');
        match vars.iter().find(|(k, _)| *k == key) {
            Some((_, v)) => out.push_str(v),
            None => return Err(TemplateError(format!("unknown template field .{key}"))),
        }
        rest = &after[j + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

fn check_template(field: &str, t: &str, allowed: &[&str]) -> Result<()> {
    let vars: Vec<(&str, &str)> = allowed.iter().map(|k| (*k, "x")).collect();
    render(t, &vars).map(|_| ()).map_err(|e| {
        LogicalError::bad_request(format!("invalid {field}: {e} (allowed: {{{{.{}}}}})", allowed.join("}}, {{.")))
    })
}

fn config_json(c: &Config) -> Map<String, Value> {
    let mut m = json!({
        "url": c.url,
        "starttls": c.starttls,
        "insecure_tls": c.insecure_tls,
        "certificate": c.certificate,
        "binddn": c.binddn,
        "userdn": c.userdn,
        "userattr": c.userattr,
        "upndomain": c.upndomain,
        "userfilter": c.userfilter,
        "groupdn": c.groupdn,
        "groupfilter": c.groupfilter,
        "groupattr": c.groupattr,
        "discoverdn": c.discoverdn,
        "deny_null_bind": c.deny_null_bind,
        "case_sensitive_names": c.case_sensitive_names,
        "username_as_alias": c.username_as_alias,
        "anonymous_group_search": c.anonymous_group_search,
        "connection_timeout": c.connection_timeout,
        "request_timeout": c.request_timeout,
        "use_token_groups": false,
        "client_tls_cert": "",
        "client_tls_key": "",
    });
    let mut out = m.as_object_mut().map(std::mem::take).unwrap_or_default();
    c.token.to_response(&mut out);
    out
}

async fn write_config(req: &Request, f: &FieldData) -> Result<Option<Response>> {
    for (name, why) in UNSUPPORTED {
        let set = match f.get(name) {
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) => !s.is_empty(),
            Some(Value::Null) | None => false,
            Some(_) => true,
        };
        if set {
            return Err(LogicalError::bad_request(format!("{name} is not supported: {why}")));
        }
    }
    let mut c: Config = load(req, "config").await?.unwrap_or_default();
    for (k, slot) in [
        ("url", &mut c.url),
        ("certificate", &mut c.certificate),
        ("binddn", &mut c.binddn),
        ("bindpass", &mut c.bindpass),
        ("userdn", &mut c.userdn),
        ("userattr", &mut c.userattr),
        ("upndomain", &mut c.upndomain),
        ("userfilter", &mut c.userfilter),
        ("groupdn", &mut c.groupdn),
        ("groupfilter", &mut c.groupfilter),
        ("groupattr", &mut c.groupattr),
    ] {
        if let Some(v) = f.str(k) {
            *slot = v.trim().to_string();
        }
    }
    for (k, slot) in [
        ("starttls", &mut c.starttls),
        ("insecure_tls", &mut c.insecure_tls),
        ("discoverdn", &mut c.discoverdn),
        ("deny_null_bind", &mut c.deny_null_bind),
        ("case_sensitive_names", &mut c.case_sensitive_names),
        ("username_as_alias", &mut c.username_as_alias),
        ("anonymous_group_search", &mut c.anonymous_group_search),
    ] {
        if let Some(v) = f.bool(k) {
            *slot = v;
        }
    }
    for (k, slot) in [("connection_timeout", &mut c.connection_timeout), ("request_timeout", &mut c.request_timeout)] {
        if let Some(v) = f.int(k) {
            if v <= 0 {
                return Err(LogicalError::bad_request(format!("{k} must be positive")));
            }
            *slot = v;
        }
    }
    if c.userattr.is_empty() {
        c.userattr = "cn".into();
    }
    if c.groupattr.is_empty() {
        c.groupattr = "cn".into();
    }
    if c.userfilter.is_empty() {
        c.userfilter = DEFAULT_USER_FILTER.into();
    }
    if c.url.is_empty() {
        return Err(LogicalError::bad_request("url must not be empty"));
    }
    for u in urls(&c.url) {
        if !(u.starts_with("ldap://") || u.starts_with("ldaps://")) {
            return Err(LogicalError::bad_request(format!("invalid url {u:?}: must start with ldap:// or ldaps://")));
        }
    }
    check_template("userfilter", &c.userfilter, &["UserAttr", "Username"])?;
    check_template("groupfilter", &c.groupfilter, &["UserDN", "Username"])?;
    if !c.certificate.is_empty() {
        root_store(&c.certificate)?;
    }
    c.token.update_from(&req.data)?;
    if c.token.token_type == "batch" && c.token.token_num_uses > 0 {
        return Err(LogicalError::bad_request(
            "'token_type' cannot be 'batch' or 'default_batch' when set to generate tokens with limited use count",
        ));
    }
    save(req, "config", &c).await?;
    Ok(None)
}

fn urls(list: &str) -> Vec<String> {
    list.split([',', ' ']).map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
}

fn root_store(pem: &str) -> Result<rustls::RootCertStore> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        let c = c.map_err(|e| LogicalError::bad_request("failed to parse certificate: not PEM").with_source(e))?;
        roots.add(c).map_err(|e| {
            LogicalError::bad_request("failed to parse certificate: malformed certificate").with_source(e)
        })?;
    }
    if roots.is_empty() {
        return Err(LogicalError::bad_request("failed to parse certificate: no PEM certificate found"));
    }
    Ok(roots)
}

// ----- talking to the directory -----

/// Why a login did not succeed, before it becomes the client's answer.
enum Fail {
    /// Unknown user, wrong password, user not unique: one answer for all.
    Credentials,
    /// No server answered.
    Unreachable,
    /// Anything else: the configuration or the directory is wrong (logged, generic to clients).
    Directory(String),
}

fn dir_err(what: &str) -> impl Fn(ldap3::LdapError) -> Fail + '_ {
    move |e| Fail::Directory(format!("{what}: {e}"))
}

async fn connect(c: &Config) -> std::result::Result<Conn, Fail> {
    let tls = if c.insecure_tls || c.certificate.is_empty() {
        None
    } else {
        let roots = root_store(&c.certificate).map_err(|e| Fail::Directory(e.to_string()))?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let cfg = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Fail::Directory(format!("TLS setup: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Some(Arc::new(cfg))
    };
    for url in urls(&c.url) {
        let mut settings = LdapConnSettings::new()
            .set_conn_timeout(Duration::from_secs(c.connection_timeout.max(1) as u64))
            .set_starttls(c.starttls && url.starts_with("ldap://"))
            .set_no_tls_verify(c.insecure_tls);
        if let Some(t) = &tls {
            settings = settings.set_config(t.clone());
        }
        match LdapConnAsync::with_settings(settings, &url).await {
            Ok((conn, ldap)) => {
                tokio::spawn(async move {
                    let _ = conn.drive().await;
                });
                return Ok(ldap);
            }
            Err(e) => tracing_note(&format!("ldap: cannot connect to {url}: {e}")),
        }
    }
    Err(Fail::Unreachable)
}

/// Operators see why a server was skipped or a login failed in the server's log; clients never
/// do (the messages hold no password).
fn tracing_note(msg: &str) {
    tracing::warn!("{msg}");
}

/// Binds; `Ok(false)` when the directory refused the credentials.
fn op_timeout(c: &Config) -> Duration {
    Duration::from_secs(c.request_timeout.max(1) as u64)
}

async fn bind(ldap: &mut Conn, c: &Config, dn: &str, pw: &str) -> std::result::Result<bool, Fail> {
    let r = ldap.with_timeout(op_timeout(c)).simple_bind(dn, pw).await.map_err(dir_err("bind"))?;
    match r.rc {
        0 => Ok(true),
        // invalidCredentials, invalidDNSyntax, noSuchObject, inappropriateAuthentication,
        // unwillingToPerform (an unauthenticated bind).
        49 | 34 | 32 | 48 | 53 => Ok(false),
        rc => Err(Fail::Directory(format!("bind answered result code {rc}: {}", r.text))),
    }
}

async fn search(
    ldap: &mut Conn,
    c: &Config,
    base: &str,
    filter: &str,
    attrs: Vec<&str>,
) -> std::result::Result<Vec<SearchEntry>, Fail> {
    let r = ldap
        .with_timeout(op_timeout(c))
        .search(base, Scope::Subtree, filter, attrs)
        .await
        .map_err(dir_err("search"))?;
    match r.1.rc {
        0 => Ok(r.0.into_iter().map(SearchEntry::construct).collect()),
        32 => Ok(vec![]),
        rc => Err(Fail::Directory(format!("search under {base:?} answered result code {rc}: {}", r.1.text))),
    }
}

/// Binds as the configured search DN (anonymously without one).
async fn bind_service(ldap: &mut Conn, c: &Config) -> std::result::Result<(), Fail> {
    if c.binddn.is_empty() {
        return Ok(());
    }
    if bind(ldap, c, &c.binddn, &c.bindpass).await? {
        Ok(())
    } else {
        Err(Fail::Directory("the directory refused binddn's credentials".into()))
    }
}

/// The outcome of a successful directory login.
struct DirLogin {
    alias: String,
    groups: Vec<String>,
}

async fn directory_login(c: &Config, username: &str, password: &str) -> std::result::Result<DirLogin, Fail> {
    let mut ldap = connect(c).await?;
    let out = directory_login_on(&mut ldap, c, username, password).await;
    let _ = ldap.unbind().await;
    out
}

async fn directory_login_on(
    ldap: &mut Conn,
    c: &Config,
    username: &str,
    password: &str,
) -> std::result::Result<DirLogin, Fail> {
    let user_filter = || {
        render(&c.userfilter, &[("UserAttr", &c.userattr), ("Username", &ldap_escape(username))])
            .map_err(|e| Fail::Directory(e.to_string()))
    };
    // The DN to bind as.
    let bind_dn = if c.discoverdn || (!c.binddn.is_empty() && !c.bindpass.is_empty()) {
        bind_service(ldap, c).await?;
        let found = search(ldap, c, &c.userdn, &user_filter()?, vec!["1.1"]).await?;
        if found.len() != 1 {
            return Err(Fail::Credentials);
        }
        found[0].dn.clone()
    } else if !c.upndomain.is_empty() {
        format!("{}@{}", dn_escape(username), c.upndomain)
    } else {
        format!("{}={},{}", c.userattr, dn_escape(username), c.userdn)
    };
    if !bind(ldap, c, &bind_dn, password).await? {
        return Err(Fail::Credentials);
    }
    // The user's DN for the group search.
    let user_dn = if !c.upndomain.is_empty() {
        let f = format!("(userPrincipalName={})", ldap_escape(&bind_dn));
        let found = search(ldap, c, &c.userdn, &f, vec!["1.1"]).await?;
        found.first().map(|e| e.dn.clone()).unwrap_or(bind_dn.clone())
    } else {
        bind_dn.clone()
    };
    // Back to the service account (or anonymous) for the searches, as Vault does.
    if c.anonymous_group_search {
        let _ = ldap.simple_bind("", "").await;
    } else if !c.binddn.is_empty() && !c.bindpass.is_empty() {
        bind_service(ldap, c).await?;
    }
    let alias = if c.username_as_alias {
        username.to_string()
    } else {
        let found = search(ldap, c, &c.userdn, &user_filter()?, vec![c.userattr.as_str()]).await.unwrap_or_default();
        found
            .first()
            .and_then(|e| attr_ci(e, &c.userattr).and_then(|v| v.first().cloned()))
            .unwrap_or_else(|| username.to_string())
    };
    let groups = if c.groupdn.is_empty() || c.groupfilter.is_empty() {
        vec![]
    } else {
        resolve_groups(ldap, c, &user_dn, username).await?
    };
    Ok(DirLogin { alias, groups })
}

/// An attribute's values, its name matched case-insensitively.
fn attr_ci<'a>(e: &'a SearchEntry, name: &str) -> Option<&'a Vec<String>> {
    e.attrs.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v)
}

/// The names of the user's groups: the group filter for the user, then for each group found
/// (nested groups), breadth first, each DN once.
async fn resolve_groups(
    ldap: &mut Conn,
    c: &Config,
    user_dn: &str,
    username: &str,
) -> std::result::Result<Vec<String>, Fail> {
    let mut names: Vec<String> = vec![];
    let mut seen: Vec<String> = vec![];
    let mut frontier = vec![user_dn.to_string()];
    for _ in 0..MAX_GROUP_DEPTH {
        let mut next = vec![];
        for member in &frontier {
            let filter =
                render(&c.groupfilter, &[("UserDN", &ldap_escape(member)), ("Username", &ldap_escape(username))])
                    .map_err(|e| Fail::Directory(e.to_string()))?;
            for e in search(ldap, c, &c.groupdn, &filter, vec![c.groupattr.as_str()]).await? {
                if seen.iter().any(|d| d.eq_ignore_ascii_case(&e.dn)) {
                    continue;
                }
                seen.push(e.dn.clone());
                let vals = attr_ci(&e, &c.groupattr).cloned().unwrap_or_default();
                let vals = if vals.is_empty() { rdn_value(&e.dn, &c.groupattr).into_iter().collect() } else { vals };
                for v in vals {
                    if !names.contains(&v) {
                        names.push(v);
                    }
                }
                next.push(e.dn);
            }
        }
        if next.is_empty() {
            break;
        }
        frontier = next;
    }
    Ok(names)
}

/// The value of the first RDN of `dn` whose type is `attr` (`cn=ops,ou=groups` → `ops`).
fn rdn_value(dn: &str, attr: &str) -> Option<String> {
    dn.split(',').find_map(|rdn| {
        let (k, v) = rdn.split_once('=')?;
        k.trim().eq_ignore_ascii_case(attr).then(|| v.trim().to_string())
    })
}

// ----- login -----

/// Checks `username`/`password` against the directory (the configuration's rules first).
async fn check_directory(c: &Config, username: &str, password: &str) -> Result<DirLogin> {
    if password.is_empty() && c.deny_null_bind {
        return Err(LogicalError::bad_request(
            "password cannot be of zero length when passwordless binds are being denied",
        ));
    }
    if username.is_empty() {
        return Err(LogicalError::bad_request(INVALID_CREDENTIALS));
    }
    match directory_login(c, username, password).await {
        Ok(d) => Ok(d),
        Err(Fail::Credentials) => Err(LogicalError::bad_request(INVALID_CREDENTIALS)),
        Err(Fail::Unreachable) => Err(LogicalError::new(ErrorKind::Unavailable, UNREACHABLE)),
        Err(Fail::Directory(why)) => {
            tracing_note(&format!("ldap: login failed: {why}"));
            Err(LogicalError::internal("ldap operation failed: the directory answered unexpectedly"))
        }
    }
}

/// The policies and group names a directory login earns: the method's token policies, the
/// user's mapped policies and groups, and the mapped policies of every group.
async fn entitlements(req: &Request, c: &Config, username: &str, dir: &DirLogin) -> Result<(Vec<String>, Vec<String>)> {
    let fold = |s: &str| if c.case_sensitive_names { s.to_string() } else { s.to_lowercase() };
    let mut groups = dir.groups.clone();
    let mut policies = c.token.token_policies.clone();
    if let Some(u) = load::<UserEntry>(req, &format!("user/{}", fold(username))).await? {
        policies.extend(u.policies);
        for g in u.groups {
            if !groups.contains(&g) {
                groups.push(g);
            }
        }
    }
    for g in &groups {
        if let Some(e) = load::<GroupEntry>(req, &format!("group/{}", fold(g))).await? {
            policies.extend(e.policies);
        }
    }
    Ok((normalize_policies(policies), groups))
}

async fn login(req: &Request, username: &str, password: Option<&str>) -> Result<Option<Response>> {
    let Some(c) = load::<Config>(req, "config").await? else {
        return Err(LogicalError::bad_request("ldap backend not configured"));
    };
    let password = password.unwrap_or("");
    let dir = check_directory(&c, username, password).await?;
    if !addr_in_cidrs(req.remote_addr, &c.token.token_bound_cidrs) {
        return Err(LogicalError::new(ErrorKind::PermissionDenied, "permission denied"));
    }
    let (policies, groups) = entitlements(req, &c, username, &dir).await?;
    let mut auth = c.token.to_auth(username, &dir.alias, req.remote_addr);
    auth.policies = policies;
    auth.metadata.insert("username".into(), Value::String(username.to_string()));
    auth.alias_metadata.insert("name".into(), Value::String(username.to_string()));
    auth.group_aliases = groups.into_iter().filter(|g| !g.is_empty()).collect();
    // Kept with the token (behind the barrier, never shown) so a renewal can bind again and
    // see whether the directory still says the same, as Vault's LDAP method does.
    auth.internal_data.insert("password".into(), Value::String(password.to_string()));
    let mut resp = Response { auth: Some(auth), ..Default::default() };
    if c.groupdn.is_empty() {
        resp.warnings.push("no groupdn configured: LDAP groups were not searched".into());
    }
    Ok(Some(resp))
}

/// A token from an LDAP login is renewed only while the user can still bind with the password
/// it logged in with and still earns the same policies.
async fn renew(req: &Request, login: &LoginRenewal) -> Result<()> {
    let Some(c) = load::<Config>(req, "config").await? else {
        return Err(LogicalError::bad_request("ldap backend not configured"));
    };
    let username = login.metadata.get("username").and_then(Value::as_str).unwrap_or_default();
    let Some(password) = login.internal_data.get("password").and_then(Value::as_str) else {
        return Err(LogicalError::bad_request(
            "this token's login kept nothing to check the directory with: log in again",
        ));
    };
    let dir = check_directory(&c, username, password).await?;
    let (policies, _) = entitlements(req, &c, username, &dir).await?;
    if !equivalent_policies(&policies, &login.policies) {
        return Err(LogicalError::bad_request("policies have changed, not renewing"));
    }
    Ok(())
}

#[async_trait]
impl Handler for Ldap {
    type Route = Route;

    fn backend_type(&self) -> &'static str {
        "ldap"
    }

    fn paths(&self) -> &Paths<Route> {
        &self.paths
    }

    async fn handle(&self, route: Route, req: Request, f: FieldData) -> Result<Option<Response>> {
        let sensitive = match route {
            Route::Group | Route::User => {
                load::<Config>(&req, "config").await?.map(|c| c.case_sensitive_names).unwrap_or(false)
            }
            _ => false,
        };
        let name = f.str("name").unwrap_or_default();
        let name = if sensitive { name.to_string() } else { name.to_lowercase() };
        match (route, req.operation) {
            (Route::Config, Operation::Read) => {
                Ok(load::<Config>(&req, "config").await?.map(|c| Response::data(config_json(&c))))
            }
            (Route::Config, _) => write_config(&req, &f).await,
            (Route::GroupList, _) | (Route::UserList, _) => {
                let prefix = if route == Route::GroupList { "group/" } else { "user/" };
                let keys = req.storage.list(prefix).await?;
                Ok(if keys.is_empty() { None } else { Some(Response::list(keys)) })
            }
            (Route::Group, Operation::Read) => Ok(load::<GroupEntry>(&req, &format!("group/{name}"))
                .await?
                .map(|g| Response::data(json!({"policies": g.policies}).as_object().cloned().unwrap_or_default()))),
            (Route::Group, Operation::Delete) => {
                req.storage.delete(&format!("group/{name}")).await?;
                Ok(None)
            }
            (Route::Group, _) => {
                let policies = normalize_policies(strings(&f, "policies").unwrap_or_default());
                save(&req, &format!("group/{name}"), &GroupEntry { policies }).await?;
                Ok(None)
            }
            (Route::User, Operation::Read) => Ok(load::<UserEntry>(&req, &format!("user/{name}")).await?.map(|u| {
                Response::data(
                    json!({"groups": u.groups, "policies": u.policies}).as_object().cloned().unwrap_or_default(),
                )
            })),
            (Route::User, Operation::Delete) => {
                req.storage.delete(&format!("user/{name}")).await?;
                Ok(None)
            }
            (Route::User, _) => {
                let mut u: UserEntry = load(&req, &format!("user/{name}")).await?.unwrap_or_default();
                if let Some(g) = strings(&f, "groups") {
                    u.groups = g;
                }
                if let Some(p) = strings(&f, "policies") {
                    u.policies = normalize_policies(p);
                }
                save(&req, &format!("user/{name}"), &u).await?;
                Ok(None)
            }
            (Route::Login, _) => login(&req, f.str("username").unwrap_or_default(), f.str("password")).await,
        }
    }

    async fn renew_login(&self, req: &Request, login: &LoginRenewal) -> Result<()> {
        renew(req, login).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_render_only_their_known_fields() {
        let out = render(DEFAULT_GROUP_FILTER, &[("Username", "bob"), ("UserDN", "uid=bob,dc=x")]).unwrap();
        assert_eq!(out, "(|(memberUid=bob)(member=uid=bob,dc=x)(uniqueMember=uid=bob,dc=x))");
        assert_eq!(
            render("({{ .UserAttr }}={{.Username}})", &[("UserAttr", "uid"), ("Username", "a")]).unwrap(),
            "(uid=a)"
        );
        assert!(render("({{.Password}})", &[("Username", "a")]).is_err());
        assert!(render("({{.Username)", &[("Username", "a")]).is_err());
    }

    #[test]
    fn user_names_are_escaped_for_filters_and_dns() {
        assert_eq!(ldap_escape("*)(uid=*"), "\\2a\\29\\28uid=\\2a");
        assert_eq!(dn_escape("a,b=c+d"), "a\\2cb\\3dc\\2bd");
    }

    #[test]
    fn url_lists_split_on_commas_and_spaces() {
        assert_eq!(urls("ldap://a, ldaps://b ldap://c"), ["ldap://a", "ldaps://b", "ldap://c"]);
        assert_eq!(rdn_value("cn=ops,ou=groups,dc=x", "CN").as_deref(), Some("ops"));
    }
}

//! The paths the core serves itself — `sys/`, `auth/token/`, `identity/` and `cubbyhole/` — as
//! path tables whose rows carry a typed route and the path's flags (unauthenticated, sudo,
//! sealed, standby, audited). Routing, the ACL's sudo check, the sealed and standby gates,
//! help and the OpenAPI document all read these rows: a path is served if and only if a row
//! names it. Declarations only (and the routing that coerces a request's fields to them): the
//! handlers are `coffer-system`'s (`sys/`) and the core's (the other trees), which depend on
//! this crate, never the other way.
#![forbid(unsafe_code)]

use coffer_sdk::field::FieldType;
use coffer_sdk::framework::{FieldSpec, PathFlags, PathSpec, Paths};
use coffer_sdk::Operation;
use serde_json::json;
use std::sync::OnceLock;

/// The routes of the system backend (`sys/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SysRoute {
    SealStatus,
    Health,
    Init,
    Unseal,
    Seal,
    Leader,
    HaStatus,
    StepDown,
    Cors,
    HostInfo,
    KeyStatus,
    Rotate,
    RotateConfig,
    /// A step of the unauthenticated ceremony (`generate-root/*`).
    GenerateRoot(Step),
    /// The same with a token (`generate-root-token/*`, OpenBao 2.x).
    GenerateRootToken(Step),
    /// A step of the unauthenticated ceremony (`rekey/*`).
    Rekey(Step),
    /// The same with a token (`rotate/root/*`).
    RotateRoot(Step),
    /// A step of the recovery keys' rekey (`rekey-recovery-key/*`, unauthenticated).
    RekeyRecovery(Step),
    /// The same with a token (`rotate/recovery/*`).
    RotateRecovery(Step),
    RekeyBackup,
    RecoveryBackup,
    Mounts,
    MountTune,
    Mount,
    Remount,
    RemountStatus,
    Auths,
    AuthTune,
    Auth,
    LegacyPolicies,
    LegacyPolicy,
    AclPolicies,
    AclPolicy,
    PasswordPolicies,
    PasswordGenerate,
    PasswordPolicy,
    Capabilities,
    CapabilitiesAccessor,
    CapabilitiesSelf,
    UiMounts,
    ResultantAcl,
    OpenApi,
    Leases(LeaseOp),
    Wrapping,
    Random,
    Hash,
    AuditList,
    Audit,
    AuditHash,
    Metrics,
    Raw,
    /// `storage/raft/snapshot` (and `storage/snapshot`); `force`: the `-force` variant.
    Snapshot {
        force: bool,
    },
    /// `storage/(raft/)snapshot-auto/…`: automatic snapshots.
    SnapshotAuto(AutoSnapshotOp),
    Catalog(CatalogOp),
    Reload,
    Loggers,
    Monitor,
    InFlight,
    SanitizedConfig,
    Counters,
    /// `quotas/config`.
    QuotaConfig,
    /// `quotas/rate-limit/` or `quotas/lease-count/` (a list).
    Quotas(QuotaKind),
    /// One quota of that kind, by name.
    Quota(QuotaKind),
}

/// The two kinds of resource quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaKind {
    RateLimit,
    LeaseCount,
}

impl QuotaKind {
    /// The kind as its path segment and `type` field name it.
    pub fn as_str(self) -> &'static str {
        match self {
            QuotaKind::RateLimit => "rate-limit",
            QuotaKind::LeaseCount => "lease-count",
        }
    }
}

/// A step of a key ceremony (generate-root, rekey and their token-authenticated twins), as
/// the last segment of its row's path names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// `generate-root…/attempt`.
    Attempt,
    /// `…/init` of a rekey.
    Init,
    /// `…/update`: one more key share.
    Update,
    /// `…/verify` of a rekey.
    Verify,
}

impl Step {
    /// The path segment, as the ceremony handlers take it.
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Attempt => "attempt",
            Step::Init => "init",
            Step::Update => "update",
            Step::Verify => "verify",
        }
    }
}

/// The automatic snapshot endpoints (`storage/snapshot-auto/…`, also under `storage/raft/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoSnapshotOp {
    /// `config`: the configurations' names.
    ConfigList,
    /// `config/<name>`: one configuration.
    Config,
    /// `status/<name>`: its last snapshot.
    Status,
}

/// The lease endpoints (`sys/leases/…`, and the older `sys/renew`, `sys/revoke…`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseOp {
    /// `leases/lookup`: one lease by id.
    Lookup,
    /// `leases/lookup/<prefix>`: the lease ids under a prefix.
    LookupList,
    Renew,
    Revoke,
    RevokePrefix,
    RevokeForce,
    Tidy,
}

/// The plugin catalog's endpoints (`sys/plugins/catalog…`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CatalogOp {
    /// `plugins/catalog`: every plugin of every type.
    All,
    /// `plugins/catalog/<type>`: the names of one type.
    OfType,
    /// `plugins/catalog/<type>/<name>`: one entry.
    Entry,
    /// `plugins/catalog/<name>`: the type-less form (not served: 404).
    ByName,
}

/// The token store's routes (`auth/token/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRoute {
    Accessors,
    Create,
    CreateOrphan,
    CreateWithRole,
    Lookup,
    LookupAccessor,
    LookupSelf,
    Renew,
    RenewAccessor,
    RenewSelf,
    Revoke,
    RevokeAccessor,
    RevokeOrphan,
    RevokeSelf,
    Roles,
    Role,
    Tidy,
}

/// The identity store's routes (`identity/`), one per row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityRoute {
    Entity,
    EntityIds,
    EntityById,
    EntityNames,
    EntityByName,
    EntityMerge,
    EntityBatchDelete,
    EntityAlias,
    EntityAliasIds,
    EntityAliasById,
    Group,
    GroupIds,
    GroupById,
    GroupNames,
    GroupByName,
    GroupAlias,
    GroupAliasIds,
    GroupAliasById,
    LookupEntity,
    LookupGroup,
    OidcConfig,
    OidcKeys,
    OidcKey,
    OidcKeyRotate,
    OidcRoles,
    OidcRole,
    OidcToken,
    OidcIntrospect,
    OidcWellKnownConfig,
    OidcWellKnownKeys,
    OidcScopes,
    OidcScope,
    OidcAssignments,
    OidcAssignment,
    OidcClients,
    OidcClient,
    OidcProviders,
    OidcProvider,
    ProviderWellKnownConfig,
    ProviderWellKnownKeys,
    ProviderAuthorize,
    ProviderToken,
    ProviderUserinfo,
}

impl IdentityRoute {
    /// Whether the route is one of `identity/oidc/…` (served by `identity_oidc`).
    pub fn is_oidc(self) -> bool {
        use IdentityRoute as R;
        !matches!(
            self,
            R::Entity
                | R::EntityIds
                | R::EntityById
                | R::EntityNames
                | R::EntityByName
                | R::EntityMerge
                | R::EntityBatchDelete
                | R::EntityAlias
                | R::EntityAliasIds
                | R::EntityAliasById
                | R::Group
                | R::GroupIds
                | R::GroupById
                | R::GroupNames
                | R::GroupByName
                | R::GroupAlias
                | R::GroupAliasIds
                | R::GroupAliasById
                | R::LookupEntity
                | R::LookupGroup
        )
    }
}

/// Cubbyhole's one route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CubbyholeRoute {
    Secret,
}

/// Status endpoints: no token, answered sealed and on a standby, not audited (nothing can
/// record them while sealed).
const OPEN: PathFlags = PathFlags::NORMAL.unauthenticated().sealed().standby().unaudited();
/// The unauthenticated ceremonies (generate-root, rekey): no token; audited when unsealed, as
/// OpenBao records them.
const CEREMONY: PathFlags = PathFlags::NORMAL.unauthenticated();
const SUDO: PathFlags = PathFlags::NORMAL.sudo();

pub fn sys_paths() -> &'static Paths<SysRoute> {
    static S: OnceLock<Paths<SysRoute>> = OnceLock::new();
    S.get_or_init(|| {
        let mut rows = sys_rows();
        rows.extend(sys_rows_more());
        rows.extend(sys_rows_quotas());
        Paths::new(rows)
    })
}

pub fn token_paths() -> &'static Paths<TokenRoute> {
    static S: OnceLock<Paths<TokenRoute>> = OnceLock::new();
    S.get_or_init(|| {
        Paths::new(
            token_specs()
                .into_iter()
                .map(|(route, s)| {
                    // Listing accessors is root-protected (orphaning revocation checks sudo in
                    // its handler, as OpenBao does).
                    (route, if route == TokenRoute::Accessors { s.with_flags(SUDO) } else { s })
                })
                .collect(),
        )
    })
}

pub fn identity_paths() -> &'static Paths<IdentityRoute> {
    static S: OnceLock<Paths<IdentityRoute>> = OnceLock::new();
    S.get_or_init(|| {
        let mut rows = identity_specs();
        rows.extend(oidc_specs());
        Paths::new(rows)
    })
}

/// The flags of the `identity/` row serving `rel` (the normal flags when none does).
pub fn identity_flags(rel: &str) -> PathFlags {
    identity_paths().flags_for(rel)
}

pub fn cubbyhole_paths() -> &'static Paths<CubbyholeRoute> {
    static S: OnceLock<Paths<CubbyholeRoute>> = OnceLock::new();
    S.get_or_init(|| Paths::new(cubbyhole_specs().into_iter().map(|s| (CubbyholeRoute::Secret, s)).collect()))
}

/// One of the core's own trees, as help, OpenAPI and the router see it.
pub struct Tree {
    /// `sys/`, `auth/token/`, …
    pub prefix: &'static str,
    /// `system`, `auth`, `identity` or `secrets`.
    pub tag: &'static str,
    pub specs: &'static [PathSpec],
    pub overview: &'static str,
    flags: fn(&str) -> Option<PathFlags>,
}

impl Tree {
    /// The flags of `rel` (a path below the prefix); `None` when no row serves it.
    pub fn flags_for(&self, rel: &str) -> Option<PathFlags> {
        (self.flags)(rel)
    }
}

/// The core's trees, in document order.
pub fn trees() -> [Tree; 4] {
    [
        Tree {
            prefix: "sys/",
            tag: "system",
            specs: sys_paths().specs(),
            overview: "The system backend: seal state, mounts, auth methods, policies, leases, response \
                       wrapping and tools.",
            flags: |rel| sys_paths().find(rel).map(|(_, s)| s.flags),
        },
        Tree {
            prefix: "auth/token/",
            tag: "auth",
            specs: token_paths().specs(),
            overview: "The token store: create, look up, renew and revoke tokens; token roles.",
            flags: |rel| token_paths().find(rel).map(|(_, s)| s.flags),
        },
        Tree {
            prefix: "identity/",
            tag: "identity",
            specs: identity_paths().specs(),
            overview: "The identity store: entities, their aliases, and groups.",
            flags: |rel| identity_paths().find(rel).map(|(_, s)| s.flags),
        },
        Tree {
            prefix: "cubbyhole/",
            tag: "secrets",
            specs: cubbyhole_paths().specs(),
            overview: "Private storage of the calling token, destroyed with it.",
            flags: |rel| cubbyhole_paths().find(rel).map(|(_, s)| s.flags),
        },
    ]
}

/// A `sys/` request matched to its row: what the handlers read.
pub struct SysRouted {
    pub route: SysRoute,
    /// The row's fields the request set — from the URL or the body —, coerced to their declared
    /// types, and nothing else. An explicit `null` stays `null` (it unsets `listing_visibility`);
    /// defaults are the handlers' own.
    pub fields: serde_json::Map<String, serde_json::Value>,
    /// The parameters the row does not declare, sorted, for OpenBao's warning.
    pub ignored: Vec<String>,
}

/// The request key under which the HTTP layer hands over a body that is not JSON (base64).
pub const RAW_BODY: &str = "http_raw_body";

/// Routes `rel` (the path below `sys/`) to its row and coerces the row's fields, as OpenBao's
/// framework validates every field a request gives before the handler runs (a value of the
/// wrong type is a 400 whatever the operation). `None`: no row serves the path. The operation
/// is left to the handlers, which answer 405 for those they do not take.
pub fn route_sys(
    rel: &str,
    op: Operation,
    data: &serde_json::Map<String, serde_json::Value>,
) -> Result<Option<SysRouted>, coffer_sdk::LogicalError> {
    use serde_json::Value;
    let Some((route, spec)) = sys_paths().find(rel) else { return Ok(None) };
    let url = sys_paths().match_url(rel).map(|(_, f)| f);
    let mut fields = serde_json::Map::new();
    for f in &spec.fields {
        if let Some(v) = url.as_ref().filter(|u| u.is_set(f.name)).and_then(|u| u.get(f.name)) {
            fields.insert(f.name.to_string(), v.clone());
            continue;
        }
        match data.get(f.name) {
            None => {}
            Some(Value::Null) => {
                fields.insert(f.name.to_string(), Value::Null);
            }
            Some(v) => {
                fields.insert(f.name.to_string(), coffer_sdk::field::coerce(f.name, f.ty, v)?);
            }
        }
    }
    // A body that is not JSON (a snapshot to restore) reaches the handler as Vault's raw-body
    // key, set by the HTTP layer: transport, not a field of the row.
    if let Some(raw) = data.get(RAW_BODY) {
        fields.insert(RAW_BODY.to_string(), raw.clone());
    }
    let mut ignored: Vec<String> = if op == Operation::Help {
        vec![]
    } else {
        data.keys()
            .filter(|k| k.as_str() != RAW_BODY && !spec.fields.iter().any(|f| f.name == k.as_str()))
            .cloned()
            .collect()
    };
    ignored.sort();
    Ok(Some(SysRouted { route, fields, ignored }))
}

/// The tree serving `path` (a full path: `sys/…`, `auth/token/…`) and the path below it.
pub fn tree_of(path: &str) -> Option<(Tree, &str)> {
    trees().into_iter().find_map(|t| {
        let rel = path.strip_prefix(t.prefix).or_else(|| (path == t.prefix.trim_end_matches('/')).then_some(""))?;
        Some((t, rel))
    })
}

use FieldType::{
    Bool, CommaStringSlice as List, DurationSecond as Duration, Int, KvPairs, Map as MapT, Raw, String as Str,
};
use Operation::{Create, Delete, List as ListOp, Read, Update};

fn f(name: &'static str, ty: FieldType, description: &'static str) -> FieldSpec {
    FieldSpec::new(name, ty, description)
}

fn p(
    pattern: &'static str,
    fields: Vec<FieldSpec>,
    operations: Vec<(Operation, &'static str)>,
    synopsis: &'static str,
    description: &'static str,
) -> PathSpec {
    PathSpec { flags: PathFlags::NORMAL, pattern, fields, operations, passthrough: false, synopsis, description }
}

fn mount_fields() -> Vec<FieldSpec> {
    vec![
        f("path", Str, "Where to mount, e.g. \"secret\" or \"team/kv\""),
        f("type", Str, "The backend type, e.g. \"kv\" or \"kv-v2\"").required(),
        f("description", Str, "A human-readable description of the mount"),
        f(
            "config",
            MapT,
            "Tunables: default_lease_ttl, max_lease_ttl, listing_visibility, audit \
                          and header lists",
        ),
        f("options", MapT, "Options for the backend, as string pairs (kv: version)"),
        f("local", Bool, "Keep the mount out of replication"),
        f("seal_wrap", Bool, "Seal-wrap the mount's storage"),
        f("external_entropy_access", Bool, "Give the mount access to external entropy"),
        f("plugin_version", Str, "The plugin version to run"),
        f("plugin_name", Str, "The catalog name of an external plugin (with type \"plugin\" or the same name)"),
    ]
}

fn auto_snapshot_fields() -> Vec<FieldSpec> {
    vec![
        f("name", Str, "The configuration's name"),
        f("interval", Duration, "Time between snapshots: seconds, or a duration such as \"24h\"").required(),
        f("retain", Int, "How many snapshots to keep; the oldest beyond are deleted").default(json!(1)),
        f("path_prefix", Str, "local: the directory to write to (absolute); aws-s3: the key prefix in the bucket")
            .required(),
        f("file_prefix", Str, "Snapshot names start with this, then -<unix nanoseconds>.snap")
            .default(json!("coffer-snapshot")),
        f("storage_type", Str, "local or aws-s3 (azure-blob and google-gcs are refused)").required(),
        f("local_max_space", Int, "local: the most bytes this configuration's snapshots may take; 0: no limit"),
        f("aws_s3_bucket", Str, "aws-s3: the bucket"),
        f("aws_s3_region", Str, "aws-s3: the bucket's region"),
        f("aws_access_key_id", Str, "aws-s3: access key id (else the server's AWS_ACCESS_KEY_ID)"),
        f("aws_secret_access_key", Str, "aws-s3: secret access key; stored encrypted, never read back"),
        f("aws_session_token", Str, "aws-s3: session token of temporary credentials; never read back"),
        f("aws_s3_endpoint", Str, "aws-s3: endpoint of an S3-compatible server (AWS's regional one when empty)"),
        f("aws_s3_disable_tls", Bool, "aws-s3: plain HTTP to the endpoint (testing only)"),
        f(
            "aws_s3_force_path_style",
            Bool,
            "aws-s3: endpoint/bucket/key URLs (needed for IP endpoints, most non-AWS servers)",
        ),
        f("aws_s3_enable_kms", Bool, "aws-s3: ask for SSE-KMS encryption of the objects"),
        f("aws_s3_server_side_encryption", Bool, "aws-s3: ask for SSE-S3 (AES256) encryption of the objects"),
        f("aws_s3_kms_key", Str, "aws-s3: the KMS key id for aws_s3_enable_kms"),
        f("google_gcs_bucket", Str, "Refused: google-gcs is not built"),
        f("google_service_account_key", Str, "Refused: google-gcs is not built"),
        f("google_endpoint", Str, "Refused: google-gcs is not built"),
        f("google_disable_tls", Bool, "Refused: google-gcs is not built"),
        f("azure_container_name", Str, "Refused: azure-blob is not built"),
        f("azure_account_name", Str, "Refused: azure-blob is not built"),
        f("azure_account_key", Str, "Refused: azure-blob is not built"),
        f("azure_blob_environment", Str, "Refused: azure-blob is not built"),
        f("azure_endpoint", Str, "Refused: azure-blob is not built"),
    ]
}

fn tune_fields() -> Vec<FieldSpec> {
    vec![
        f("path", Str, "The mount to tune"),
        // Text, as OpenBao types them: a duration, or "system" (the server's value).
        f("default_lease_ttl", Str, "Default lease TTL of the mount; \"system\" or 0 uses the server's"),
        f("max_lease_ttl", Str, "Maximum lease TTL of the mount; \"system\" or 0 uses the server's"),
        f("description", Str, "A new description"),
        f(
            "listing_visibility",
            Str,
            "\"unauth\" to list the mount in the UI without a token, \"hidden\" or \
                          \"\"",
        ),
        f("options", MapT, "Options for the backend, as string pairs"),
        f("token_type", Str, "For auth mounts: default-service, default-batch, service or batch"),
        f("audit_non_hmac_request_keys", List, "Request keys the audit log shows in clear"),
        f("audit_non_hmac_response_keys", List, "Response keys the audit log shows in clear"),
        f("passthrough_request_headers", List, "Request headers passed to the backend"),
        f("allowed_response_headers", List, "Response headers the backend may set"),
        f("plugin_version", Str, "The plugin version to run"),
    ]
}

fn policy_text() -> FieldSpec {
    f("policy", Str, "The policy document, in HCL or JSON")
}

/// The write options of an ACL policy (both paths).
fn policy_options() -> Vec<FieldSpec> {
    vec![
        f("cas", Int, "Write only if the policy's current version is this one (0: only if it does not exist)"),
        f("cas_required", Bool, "Require cas on every later write of this policy"),
        f("allow_slashes_in_identity_templates", Bool, "Not supported: refused when true"),
        f("allow_wildcards_in_identity_templates", Bool, "Not supported: refused when true"),
    ]
}

fn lease_fields() -> Vec<FieldSpec> {
    vec![
        f("lease_id", Str, "The lease"),
        f("url_lease_id", Str, "The lease, given in the URL"),
        f("increment", Duration, "Requested TTL extension"),
        f("sync", Bool, "Revoke before answering (always the case in Coffer)"),
    ]
}

fn random_fields() -> Vec<FieldSpec> {
    vec![
        f("urlbytes", Str, "How many bytes, given in the URL"),
        f("source", Str, "Entropy source: platform, seal or all"),
        f("bytes", Int, "How many bytes (1 to 131072)").default(json!(32)),
        f("format", Str, "Output encoding: base64 or hex").default(json!("base64")),
    ]
}

fn hash_fields() -> Vec<FieldSpec> {
    vec![
        f("urlalgorithm", Str, "Algorithm, given in the URL"),
        f("input", Str, "Base64-encoded input").required(),
        f("algorithm", Str, "sha2-224, sha2-256, sha2-384, sha2-512, sha3-*").default(json!("sha2-256")),
        f("format", Str, "Output encoding: hex or base64").default(json!("hex")),
    ]
}

fn shares_fields() -> Vec<FieldSpec> {
    vec![
        f("secret_shares", Int, "How many key shares to split the key into"),
        f("secret_threshold", Int, "How many shares rebuild the key"),
        f(
            "pgp_keys",
            List,
            "Base64 OpenPGP public keys, one per new share: each share comes back encrypted to its key",
        ),
        f("backup", Bool, "Store the PGP-encrypted new shares for rekey/backup (needs pgp_keys)"),
        f("require_verification", Bool, "Require the new shares to be verified before they take effect"),
    ]
}

fn key_nonce() -> Vec<FieldSpec> {
    vec![f("key", Str, "A key share, base64 or hex"), f("nonce", Str, "The nonce of the operation in progress")]
}

fn sys_rows() -> Vec<(SysRoute, PathSpec)> {
    {
        vec![
            (
                SysRoute::SealStatus,
                p(
                    "seal-status",
                    vec![],
                    vec![(Read, "Show the seal state")],
                    "Seal state",
                    "Whether the server is initialised and sealed, the seal's shares and \
                          threshold, and unseal progress.",
                )
                .with_flags(OPEN),
            ),
            (
                SysRoute::Health,
                p(
                    "health",
                    vec![
                        f("standbyok", Bool, "Answer a standby with the active code"),
                        f("activecode", Int, "Status code when active"),
                        f("standbycode", Int, "Status code when standby"),
                        f("sealedcode", Int, "Status code when sealed"),
                        f("uninitcode", Int, "Status code when not initialised"),
                    ],
                    vec![(Read, "Show the server's health")],
                    "Health check",
                    "The status code tells the state (200 active, 429 standby, 503 sealed, \
                          501 not initialised); the query parameters choose other codes.",
                )
                .with_flags(OPEN),
            ),
            (
                SysRoute::Init,
                p(
                    "init",
                    vec![
                        f("secret_shares", Int, "How many key shares"),
                        f("secret_threshold", Int, "How many shares unseal"),
                        f(
                            "pgp_keys",
                            List,
                            "Base64 OpenPGP public keys, one per share: each share comes back encrypted to its key",
                        ),
                        f(
                            "root_token_pgp_key",
                            Str,
                            "Base64 OpenPGP public key the root token comes back encrypted to",
                        ),
                        f(
                            "recovery_pgp_keys",
                            List,
                            "Base64 OpenPGP public keys, one per recovery share (auto-unseal only)",
                        ),
                        f("stored_shares", Int, "Shares stored by an auto-unseal (not supported)"),
                        f("recovery_shares", Int, "Recovery shares (auto-unseal only)"),
                        f("recovery_threshold", Int, "Recovery threshold (auto-unseal only)"),
                    ],
                    vec![(Read, "Whether the server is initialised"), (Update, "Initialise the server")],
                    "Initialisation",
                    "Creates the root key and its shares and the first root token; only \
                          once per storage.",
                )
                .with_flags(OPEN),
            ),
            (
                SysRoute::Unseal,
                p(
                    "unseal",
                    vec![
                        f("key", Str, "One key share"),
                        f("reset", Bool, "Forget the shares given so far"),
                        f("migrate", Bool, "Seal migration (not supported)"),
                    ],
                    vec![(Update, "Give one key share")],
                    "Unseal",
                    "Collects key shares; when the threshold is reached the server unseals.",
                )
                .with_flags(OPEN),
            ),
            (
                SysRoute::Seal,
                p(
                    "seal",
                    vec![],
                    vec![(Update, "Seal the server")],
                    "Seal",
                    "Drops the keys from memory: nothing is served until the next unseal.",
                )
                .with_flags(SUDO),
            ),
            (
                SysRoute::Leader,
                p(
                    "leader",
                    vec![],
                    vec![(Read, "Show the HA leader")],
                    "HA leader",
                    "Whether HA is enabled (storage \"postgresql\" with ha_enabled) and which node is active.",
                )
                .with_flags(OPEN),
            ),
            (
                SysRoute::HaStatus,
                p(
                    "ha-status",
                    vec![],
                    vec![(Read, "Show the HA nodes")],
                    "HA nodes",
                    "The nodes of the cluster: the active one and the standbys heard from recently.",
                ),
            ),
            (
                SysRoute::StepDown,
                p(
                    "step-down",
                    vec![],
                    vec![(Update, "Give up the HA lock")],
                    "Step down",
                    "The active node becomes a standby and lets another node take over.",
                ),
            ),
            (
                SysRoute::Cors,
                p(
                    "config/cors",
                    vec![
                        f(
                            "allowed_origins",
                            List,
                            "Origins allowed to make cross-origin requests; \"*\" (alone) for any",
                        )
                        .required(),
                        f("allowed_headers", List, "Request headers allowed besides the standard ones"),
                        f("allow_credentials", Bool, "Send Access-Control-Allow-Credentials: true"),
                    ],
                    vec![
                        (Read, "Show the CORS configuration"),
                        (Update, "Enable CORS with these settings"),
                        (Delete, "Disable CORS"),
                    ],
                    "CORS configuration",
                    "Which web origins may call the API from a browser (docs/cors.md).",
                )
                .with_flags(SUDO),
            ),
            (
                SysRoute::HostInfo,
                p(
                    "host-info",
                    vec![],
                    vec![(Read, "Show host information")],
                    "Host information",
                    "CPU, memory, disk and host details of the server.",
                ),
            ),
            (
                SysRoute::KeyStatus,
                p(
                    "key-status",
                    vec![],
                    vec![(Read, "Show the active key term")],
                    "Encryption key status",
                    "The term of the active barrier key, when it was installed and how \
                          many encryptions it made.",
                ),
            ),
            (
                SysRoute::Rotate,
                p(
                    "rotate(?:/keyring)?",
                    vec![],
                    vec![(Update, "Rotate the barrier key")],
                    "Key rotation",
                    "Installs a new barrier key term; older terms stay to decrypt older \
                          entries.",
                )
                .with_flags(SUDO),
            ),
            (
                SysRoute::RotateConfig,
                p(
                    "rotate(?:/keyring)?/config",
                    vec![
                        f("max_operations", Int, "Rotate after this many encryptions (1000000 to 3865470566)"),
                        f("interval", Duration, "Rotate after this long (at least 24h; 0 disables)"),
                        f("enabled", Bool, "Whether automatic rotation is on"),
                    ],
                    vec![
                        (Read, "Show the automatic rotation settings"),
                        (Update, "Change the automatic rotation settings"),
                    ],
                    "Automatic key rotation",
                    "When the barrier key is rotated without being asked.",
                ),
            ),
            (
                SysRoute::GenerateRoot(Step::Attempt),
                p(
                    "generate-root/attempt",
                    vec![
                        f(
                            "pgp_key",
                            Str,
                            "Base64 OpenPGP public key the new token is encrypted to (instead of an OTP)",
                        ),
                        f("otp", Str, "One-time pad the new token is XORed with"),
                    ],
                    vec![
                        (Read, "Show the attempt's progress"),
                        (Update, "Start an attempt"),
                        (Delete, "Cancel the attempt"),
                    ],
                    "Root token generation",
                    "Creates a new root token from a quorum of key shares.",
                )
                .with_flags(CEREMONY),
            ),
            (
                SysRoute::GenerateRootToken(Step::Attempt),
                p(
                    "generate-root-token/attempt",
                    vec![
                        f(
                            "pgp_key",
                            Str,
                            "Base64 OpenPGP public key the new token is encrypted to (instead of an OTP)",
                        ),
                        f("otp", Str, "One-time pad the new token is XORed with"),
                    ],
                    vec![
                        (Read, "Show the attempt's progress"),
                        (Update, "Start an attempt"),
                        (Delete, "Cancel the attempt"),
                    ],
                    "Root token generation",
                    "Creates a new root token from a quorum of key shares.",
                ),
            ),
            (
                SysRoute::GenerateRoot(Step::Update),
                p(
                    "generate-root/update",
                    key_nonce(),
                    vec![(Update, "Give one key share")],
                    "Root token generation: shares",
                    "Collects key shares for the attempt in progress; the last one returns \
                          the encoded token.",
                )
                .with_flags(CEREMONY),
            ),
            (
                SysRoute::GenerateRootToken(Step::Update),
                p(
                    "generate-root-token/update",
                    key_nonce(),
                    vec![(Update, "Give one key share")],
                    "Root token generation: shares",
                    "Collects key shares for the attempt in progress; the last one returns \
                          the encoded token.",
                ),
            ),
            (
                SysRoute::Rekey(Step::Init),
                p(
                    "rekey/init",
                    shares_fields(),
                    vec![(Read, "Show the rekey's progress"), (Update, "Start a rekey"), (Delete, "Cancel the rekey")],
                    "Rekey",
                    "Splits the root key into a new set of shares, with a new threshold.",
                )
                .with_flags(CEREMONY),
            ),
            (
                SysRoute::RotateRoot(Step::Init),
                p(
                    "rotate/root/init",
                    shares_fields(),
                    vec![(Read, "Show the rekey's progress"), (Update, "Start a rekey"), (Delete, "Cancel the rekey")],
                    "Rekey",
                    "Splits the root key into a new set of shares, with a new threshold.",
                ),
            ),
            (
                SysRoute::Rekey(Step::Update),
                p(
                    "rekey/update",
                    key_nonce(),
                    vec![(Update, "Give one current key share")],
                    "Rekey: shares",
                    "Collects current key shares; the last one returns the new shares.",
                )
                .with_flags(CEREMONY),
            ),
            (
                SysRoute::RotateRoot(Step::Update),
                p(
                    "rotate/root/update",
                    key_nonce(),
                    vec![(Update, "Give one current key share")],
                    "Rekey: shares",
                    "Collects current key shares; the last one returns the new shares.",
                ),
            ),
            (
                SysRoute::Rekey(Step::Verify),
                p(
                    "rekey/verify",
                    key_nonce(),
                    vec![
                        (Read, "Show the verification's progress"),
                        (Update, "Give one new key share"),
                        (Delete, "Restart the verification"),
                    ],
                    "Rekey: verification",
                    "Proves the new shares were received before they take effect.",
                )
                .with_flags(CEREMONY),
            ),
            (
                SysRoute::RotateRoot(Step::Verify),
                p(
                    "rotate/root/verify",
                    key_nonce(),
                    vec![
                        (Read, "Show the verification's progress"),
                        (Update, "Give one new key share"),
                        (Delete, "Restart the verification"),
                    ],
                    "Rekey: verification",
                    "Proves the new shares were received before they take effect.",
                ),
            ),
            (
                SysRoute::RekeyBackup,
                p(
                    "(?:rekey|rotate/root)/backup",
                    vec![],
                    vec![(Read, "Read the backed-up encrypted unseal key shares"), (Delete, "Delete the backup")],
                    "Rekey: backup",
                    "The PGP-encrypted new shares a rekey with backup stored, by key fingerprint.",
                ),
            ),
            (
                SysRoute::RecoveryBackup,
                p(
                    "(?:rekey/recovery-key-backup|rotate/recovery/backup)",
                    vec![],
                    vec![(Read, "Read the backed-up encrypted recovery key shares"), (Delete, "Delete the backup")],
                    "Recovery rekey: backup",
                    "The PGP-encrypted new recovery shares a recovery rekey with backup stored.",
                ),
            ),
            (
                SysRoute::Mounts,
                p(
                    "mounts",
                    vec![],
                    vec![(Read, "List the secrets engines")],
                    "Secrets engines",
                    "Every mounted secrets engine, with its type, accessor and \
                          configuration.",
                ),
            ),
            (
                SysRoute::MountTune,
                p(
                    "mounts/(?P<path>.+)/tune",
                    tune_fields(),
                    vec![(Read, "Show the mount's tunables"), (Update, "Change the mount's tunables")],
                    "Mount tuning",
                    "Lease TTLs, description, visibility and options of a mount.",
                ),
            ),
            (
                SysRoute::Mount,
                p(
                    "mounts/(?P<path>.+)",
                    mount_fields(),
                    vec![
                        (Read, "Show the mount"),
                        (Update, "Mount a secrets engine"),
                        (Delete, "Unmount it and delete its data"),
                    ],
                    "A secrets engine mount",
                    "Mounts a secrets engine at the path, shows it, or unmounts it (its \
                          data and leases go with it).",
                ),
            ),
            (
                SysRoute::Remount,
                p(
                    "remount",
                    vec![
                        f("from", Str, "The current mount path").required(),
                        f("to", Str, "The new mount path").required(),
                    ],
                    vec![(Update, "Move a mount")],
                    "Move a mount",
                    "Moves a secrets engine or auth method to another path, keeping its \
                          data.",
                )
                .with_flags(SUDO),
            ),
            (
                SysRoute::RemountStatus,
                p(
                    "remount/status/(?P<migration_id>.+)",
                    vec![f("migration_id", Str, "The id a remount returned")],
                    vec![(Read, "Show the remount's state")],
                    "Remount status",
                    "Whether a remount finished.",
                ),
            ),
            (
                SysRoute::Auths,
                p(
                    "auth",
                    vec![],
                    vec![(Read, "List the auth methods")],
                    "Auth methods",
                    "Every enabled auth method, with its type, accessor and configuration.",
                ),
            ),
            (
                SysRoute::AuthTune,
                p(
                    "auth/(?P<path>.+)/tune",
                    tune_fields(),
                    vec![(Read, "Show the auth mount's tunables"), (Update, "Change the auth mount's tunables")],
                    "Auth mount tuning",
                    "Token TTLs, token type, description and visibility of an auth method.",
                )
                .with_flags(SUDO),
            ),
            (
                SysRoute::Auth,
                p(
                    "auth/(?P<path>.+)",
                    mount_fields(),
                    vec![
                        (Read, "Show the auth method"),
                        (Update, "Enable an auth method"),
                        (Delete, "Disable it, revoking its tokens"),
                    ],
                    "An auth method mount",
                    "Enables an auth method at auth/<path>, shows it, or disables it.",
                )
                .with_flags(SUDO),
            ),
            (
                SysRoute::LegacyPolicies,
                p(
                    "policy/?",
                    vec![],
                    vec![(Read, "List the ACL policies"), (ListOp, "List the ACL policies")],
                    "ACL policies (legacy path)",
                    "The names of every ACL policy.",
                ),
            ),
            (
                SysRoute::LegacyPolicy,
                p(
                    "policy/(?P<name>.+)",
                    [
                        vec![
                            f("name", Str, "The policy's name"),
                            f("rules", Str, "The policy document (legacy name of policy)"),
                            policy_text(),
                        ],
                        policy_options(),
                    ]
                    .concat(),
                    vec![(Read, "Read the policy"), (Update, "Write the policy"), (Delete, "Delete the policy")],
                    "An ACL policy (legacy path)",
                    "Reads, writes or deletes an ACL policy; root and default cannot be \
                          deleted.",
                ),
            ),
            (
                SysRoute::AclPolicies,
                p(
                    "policies/acl/?",
                    vec![],
                    vec![(ListOp, "List the ACL policies")],
                    "ACL policies",
                    "The names of every ACL policy.",
                ),
            ),
            (
                SysRoute::AclPolicy,
                p(
                    "policies/acl/(?P<name>.+)",
                    [vec![f("name", Str, "The policy's name"), policy_text()], policy_options()].concat(),
                    vec![(Read, "Read the policy"), (Update, "Write the policy"), (Delete, "Delete the policy")],
                    "An ACL policy",
                    "Reads, writes or deletes an ACL policy; root and default cannot be \
                          deleted.",
                ),
            ),
            (
                SysRoute::PasswordPolicies,
                p(
                    "policies/password/?",
                    vec![],
                    vec![(ListOp, "List the password policies")],
                    "Password policies",
                    "The names of every password policy.",
                ),
            ),
            (
                SysRoute::PasswordGenerate,
                p(
                    "policies/password/(?P<name>[^/]+)/generate",
                    vec![f("name", Str, "The policy's name")],
                    vec![(Read, "Generate a password")],
                    "Generate a password",
                    "Returns a new password that satisfies the policy.",
                ),
            ),
            (
                SysRoute::PasswordPolicy,
                p(
                    "policies/password/(?P<name>[^/]+)",
                    vec![f("name", Str, "The policy's name"), f("policy", Str, "The password policy, in HCL")],
                    vec![(Read, "Read the policy"), (Update, "Write the policy"), (Delete, "Delete the policy")],
                    "A password policy",
                    "Length and character rules passwords are generated from.",
                ),
            ),
            (
                SysRoute::Capabilities,
                p(
                    "capabilities",
                    vec![
                        f("token", Str, "The token to check"),
                        f("paths", List, "The paths to check"),
                        f("path", List, "Deprecated: use paths"),
                    ],
                    vec![(Update, "Show a token's capabilities")],
                    "Capabilities of a token",
                    "The capabilities a token's policies give it on each path.",
                ),
            ),
            (
                SysRoute::CapabilitiesAccessor,
                p(
                    "capabilities-accessor",
                    vec![
                        f("accessor", Str, "The accessor of the token to check"),
                        f("paths", List, "The paths to check"),
                        f("path", List, "Deprecated: use paths"),
                    ],
                    vec![(Update, "Show a token's capabilities by accessor")],
                    "Capabilities by accessor",
                    "The capabilities of the token with this accessor on each path.",
                ),
            ),
            (
                SysRoute::CapabilitiesSelf,
                p(
                    "capabilities-self",
                    vec![f("paths", List, "The paths to check"), f("path", List, "Deprecated: use paths")],
                    vec![(Update, "Show the caller's capabilities")],
                    "Capabilities of the caller",
                    "The capabilities of the calling token on each path.",
                ),
            ),
            (
                SysRoute::UiMounts,
                p(
                    "internal/ui/mounts",
                    vec![],
                    vec![(Read, "List visible mounts")],
                    "Mounts for the UI",
                    "The mounts the caller's policies reach, or those marked unauth \
                          without a token.",
                )
                .with_flags(PathFlags::NORMAL.unauthenticated()),
            ),
            (
                SysRoute::UiMounts,
                p(
                    "internal/ui/mounts/(?P<path>.+)",
                    vec![f("path", Str, "A path inside the mount")],
                    vec![(Read, "Show the mount serving a path")],
                    "Mount of a path",
                    "The mount serving the path, if the caller may see it.",
                )
                .with_flags(PathFlags::NORMAL.unauthenticated()),
            ),
            (
                SysRoute::ResultantAcl,
                p(
                    "internal/ui/resultant-acl",
                    vec![],
                    vec![(Read, "Show the caller's merged policy")],
                    "Resultant ACL",
                    "The caller's policies merged into one set of path rules.",
                ),
            ),
            (
                SysRoute::OpenApi,
                p(
                    "internal/specs/openapi",
                    vec![f("generic_mount_paths", Bool, "Accepted for compatibility; ignored")],
                    vec![(Read, "The OpenAPI document")],
                    "OpenAPI document",
                    "An OpenAPI 3 document of every system path and of the mounts the \
                          caller's policies reach.",
                )
                .with_flags(PathFlags::NORMAL.unauthenticated()),
            ),
            (
                SysRoute::Leases(LeaseOp::Lookup),
                p(
                    "leases/lookup",
                    vec![f("lease_id", Str, "The lease").required()],
                    vec![(Update, "Look up a lease")],
                    "Lease lookup",
                    "A lease's issue, expiry and renewal times and whether it is renewable.",
                ),
            ),
            (
                SysRoute::Leases(LeaseOp::LookupList),
                p(
                    "leases/lookup/(?P<prefix>.*?)/?",
                    vec![f("prefix", Str, "A lease id prefix")],
                    vec![(ListOp, "List lease ids below a prefix")],
                    "Lease ids",
                    "The lease ids below a prefix.",
                )
                .with_flags(SUDO),
            ),
            (
                SysRoute::Leases(LeaseOp::Renew),
                p(
                    "(?:leases/)?renew(?:/(?P<url_lease_id>.+))?",
                    lease_fields(),
                    vec![(Update, "Renew a lease")],
                    "Lease renewal",
                    "Extends a renewable lease, within its maximum TTL.",
                ),
            ),
            (
                SysRoute::Leases(LeaseOp::Revoke),
                p(
                    "(?:leases/)?revoke(?:/(?P<url_lease_id>.+))?",
                    lease_fields(),
                    vec![(Update, "Revoke a lease")],
                    "Lease revocation",
                    "Revokes a lease and whatever it stands for.",
                ),
            ),
            (
                SysRoute::Leases(LeaseOp::RevokePrefix),
                p(
                    "(?:leases/)?revoke-prefix/(?P<prefix>.+)",
                    vec![
                        f("prefix", Str, "The lease id prefix"),
                        f("sync", Bool, "Revoke before answering (always the case)"),
                    ],
                    vec![(Update, "Revoke every lease below a prefix")],
                    "Revoke by prefix",
                    "Revokes every lease whose id starts with the prefix.",
                )
                .with_flags(SUDO),
            ),
            (
                SysRoute::Leases(LeaseOp::RevokeForce),
                p(
                    "(?:leases/)?revoke-force/(?P<prefix>.+)",
                    vec![f("prefix", Str, "The lease id prefix")],
                    vec![(Update, "Forget every lease below a prefix, ignoring backend errors")],
                    "Forced revocation",
                    "Revokes every lease below the prefix even when its backend fails to \
                          revoke it.",
                )
                .with_flags(SUDO),
            ),
            (
                SysRoute::Leases(LeaseOp::Tidy),
                p(
                    "leases/tidy",
                    vec![],
                    vec![(Update, "Remove stale lease index entries")],
                    "Lease tidy",
                    "Removes index entries of leases that no longer exist.",
                ),
            ),
            (
                SysRoute::Wrapping,
                p(
                    "wrapping/wrap",
                    vec![],
                    vec![(Update, "Wrap the request body")],
                    "Wrap data",
                    "Stores the request body in a new single-use wrapping token (set \
                          X-Vault-Wrap-TTL).",
                ),
            ),
            (
                SysRoute::Wrapping,
                p(
                    "wrapping/unwrap",
                    vec![f("token", Str, "The wrapping token (or send it as the request token)")],
                    vec![(Update, "Unwrap a response")],
                    "Unwrap",
                    "Returns the wrapped response and destroys the wrapping token.",
                ),
            ),
            (
                SysRoute::Wrapping,
                p(
                    "wrapping/lookup",
                    vec![f("token", Str, "The wrapping token").required()],
                    vec![(Update, "Look up a wrapping token")],
                    "Wrapping lookup",
                    "The creation time, TTL and path of a wrapping token.",
                )
                .with_flags(PathFlags::NORMAL.unauthenticated()),
            ),
            (
                SysRoute::Wrapping,
                p(
                    "wrapping/rewrap",
                    vec![f("token", Str, "The wrapping token")],
                    vec![(Update, "Rewrap a response")],
                    "Rewrap",
                    "Moves a wrapped response into a new wrapping token.",
                ),
            ),
            (
                SysRoute::Random,
                p(
                    "(?:tools/)?random(?:/(?P<urlbytes>[0-9]+))?",
                    random_fields(),
                    vec![(Update, "Generate random bytes")],
                    "Random bytes",
                    "Returns random bytes from the server's generator, base64 or hex \
                          encoded.",
                ),
            ),
            (
                SysRoute::Random,
                p(
                    "(?:tools/)?random/(?P<source>platform|seal|all)(?:/(?P<urlbytes>[0-9]+))?",
                    random_fields(),
                    vec![(Update, "Generate random bytes from a source")],
                    "Random bytes from a source",
                    "Returns random bytes from the named source (all sources are the \
                          server's generator).",
                ),
            ),
            (
                SysRoute::Hash,
                p(
                    "tools/hash(?:/(?P<urlalgorithm>.+))?",
                    hash_fields(),
                    vec![(Update, "Hash the input")],
                    "Hash",
                    "Hashes base64-encoded input with a SHA-2 or SHA-3 function.",
                ),
            ),
            (
                SysRoute::AuditList,
                p(
                    "audit",
                    vec![],
                    vec![(Read, "List the audit devices")],
                    "Audit devices",
                    "Every enabled audit device.",
                )
                .with_flags(SUDO),
            ),
            (
                SysRoute::Audit,
                p(
                    "audit/(?P<path>.+)",
                    vec![
                        f("path", Str, "Where to enable the device"),
                        f("type", Str, "The device type, e.g. \"file\"").required(),
                        f("description", Str, "A human-readable description"),
                        f("options", MapT, "Device options, e.g. file_path"),
                        f("local", Bool, "Keep the device out of replication"),
                    ],
                    vec![(Update, "Enable an audit device"), (Delete, "Disable the audit device")],
                    "An audit device",
                    "Enables or disables an audit device; every request and response is \
                          recorded by each device.",
                )
                .with_flags(SUDO),
            ),
            (
                SysRoute::AuditHash,
                p(
                    "audit-hash/(?P<path>.+)",
                    vec![f("path", Str, "The audit device"), f("input", Str, "The value to hash").required()],
                    vec![(Update, "Hash a value as the device would")],
                    "Audit hash",
                    "The HMAC the audit device would log for a value.",
                ),
            ),
            (
                SysRoute::Metrics,
                p(
                    "metrics",
                    vec![f("format", Str, "\"prometheus\" for the text exposition format")],
                    vec![(Read, "Show the server's metrics")],
                    "Metrics",
                    "Request counts and timings, as JSON or in Prometheus' format.",
                ),
            ),
        ]
    }
}

/// The resource quotas (`quotas/…`).
fn sys_rows_quotas() -> Vec<(SysRoute, PathSpec)> {
    let common = || {
        vec![
            f("name", Str, "The quota's name"),
            f(
                "path",
                Str,
                "What it covers: empty for every request, a mount (secret/, auth/userpass/), or a path under a \
                 mount, with a trailing * for every path that starts so",
            ),
            f("role", Str, "A role of the auth mount in path (not supported: refused when set)"),
        ]
    };
    let mut rate = common();
    rate.extend([
        f("rate", Raw, "Requests allowed per interval and client address; positive"),
        f("interval", Duration, "The interval the rate counts over (default 1s)"),
        f("block_interval", Duration, "After the rate is spent, refuse the client for this long"),
        f("inheritable", Bool, "Whether child namespaces use this quota (only the root namespace exists)"),
    ]);
    let mut lease = common();
    lease.extend([
        f("max_leases", Int, "The most live leases the quota allows"),
        f("inheritable", Bool, "Whether child namespaces use this quota (only the root namespace exists)"),
    ]);
    vec![
        (
            SysRoute::QuotaConfig,
            p(
                "quotas/config",
                vec![
                    f(
                        "rate_limit_exempt_paths",
                        List,
                        "Paths no rate-limit quota applies to (a trailing * for prefixes)",
                    ),
                    f("enable_rate_limit_audit_logging", Bool, "Record refused requests in the audit log"),
                    f("enable_rate_limit_response_headers", Bool, "Send X-Ratelimit-* and Retry-After headers"),
                ],
                vec![(Read, "Read the quota configuration"), (Update, "Replace the quota configuration")],
                "Quota configuration",
                "Exempt paths, and whether refusals are audited and rate-limit headers sent.",
            ),
        ),
        (
            SysRoute::Quotas(QuotaKind::RateLimit),
            p(
                "quotas/rate-limit/?",
                vec![],
                vec![(ListOp, "List the rate-limit quotas")],
                "Rate-limit quotas",
                "The names of every rate-limit quota.",
            ),
        ),
        (
            SysRoute::Quota(QuotaKind::RateLimit),
            p(
                "quotas/rate-limit/(?P<name>[^/]+)",
                rate,
                vec![(Read, "Read the quota"), (Update, "Create or replace the quota"), (Delete, "Delete the quota")],
                "A rate-limit quota",
                "A request budget per client address and interval, for the whole server, a mount or a path; the \
                 most specific quota matching a request alone applies.",
            ),
        ),
        (
            SysRoute::Quotas(QuotaKind::LeaseCount),
            p(
                "quotas/lease-count/?",
                vec![],
                vec![(ListOp, "List the lease-count quotas")],
                "Lease-count quotas",
                "The names of every lease-count quota.",
            ),
        ),
        (
            SysRoute::Quota(QuotaKind::LeaseCount),
            p(
                "quotas/lease-count/(?P<name>[^/]+)",
                lease,
                vec![(Read, "Read the quota"), (Update, "Create or replace the quota"), (Delete, "Delete the quota")],
                "A lease-count quota",
                "A ceiling on the live leases made under the whole server, a mount or a path (root tokens are not \
                 limited).",
            ),
        ),
    ]
}

/// Rows of system paths served by their own modules (raw storage, audit, plugins, runtime).
fn sys_rows_more() -> Vec<(SysRoute, PathSpec)> {
    vec![
        (
            SysRoute::Raw,
            p(
                "raw(?:/(?P<path>.*))?",
                vec![
                    f("path", Str, "The storage key"),
                    f("value", Str, "The value to write"),
                    f("encoding", Str, "base64 when value is base64-encoded"),
                    f("compressed", Bool, "Accepted for compatibility; values are never compressed"),
                    f("compression_type", Str, "Accepted for compatibility"),
                ],
                vec![
                    (Read, "Read a storage entry"),
                    (Update, "Write a storage entry"),
                    (Delete, "Delete a storage entry"),
                    (ListOp, "List storage keys"),
                ],
                "Raw storage",
                "Reads and writes the decrypted storage below the barrier (raw_storage_endpoint = true).",
            )
            .with_flags(SUDO),
        ),
        (
            SysRoute::Snapshot { force: false },
            p(
                "storage/(?:raft/)?snapshot",
                vec![],
                vec![
                    (Read, "Take a snapshot of the whole storage (encrypted as stored)"),
                    (Update, "Restore a snapshot taken from this server or one sharing its keys"),
                ],
                "Storage snapshot",
                "GET streams a snapshot file (every stored entry, still encrypted, with a SHA-256 checksum); \
                 POST with a snapshot file as the body restores it. bao operator raft snapshot save/restore use these.",
            )
            .with_flags(SUDO),
        ),
        (
            SysRoute::Snapshot { force: true },
            p(
                "storage/(?:raft/)?snapshot-force",
                vec![],
                vec![(Update, "Restore a snapshot taken from a server with other keys (the server seals)")],
                "Forced snapshot restore",
                "Restores a snapshot whatever keys it was taken with; the server then seals and opens with the unseal \
                 keys of the server the snapshot came from.",
            )
            .with_flags(SUDO),
        ),
        (
            SysRoute::SnapshotAuto(AutoSnapshotOp::ConfigList),
            p(
                "storage/(?:raft/)?snapshot-auto/config/?",
                vec![],
                vec![(ListOp, "List the automatic snapshot configurations")],
                "Automatic snapshot configurations",
                "The names of the automatic snapshot configurations.",
            )
            .with_flags(SUDO),
        ),
        (
            SysRoute::SnapshotAuto(AutoSnapshotOp::Config),
            p(
                "storage/(?:raft/)?snapshot-auto/config/(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)",
                auto_snapshot_fields(),
                vec![
                    (Read, "Read an automatic snapshot configuration (never its S3 secret key)"),
                    (Update, "Create or update an automatic snapshot configuration"),
                    (Delete, "Delete an automatic snapshot configuration (its snapshots stay)"),
                ],
                "Automatic snapshot configuration",
                "A named schedule: every interval the active node takes a snapshot, writes it to a local directory \
                 (storage_type=local) or an S3-compatible bucket (storage_type=aws-s3) and deletes the oldest beyond \
                 retain. azure-blob and google-gcs are not built and are refused.",
            )
            .with_flags(SUDO),
        ),
        (
            SysRoute::SnapshotAuto(AutoSnapshotOp::Status),
            p(
                "storage/(?:raft/)?snapshot-auto/status/(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)",
                vec![f("name", Str, "The configuration's name")],
                vec![(Read, "Show when the configuration's last snapshot was taken, where to, and any error")],
                "Automatic snapshot status",
                "The last attempt of a configuration: start and end times, URL, size, error (empty when it \
                 succeeded) and how many attempts in a row failed.",
            ),
        ),
        (
            SysRoute::Catalog(CatalogOp::All),
            p(
                "plugins/catalog/?",
                vec![],
                vec![(Read, "List the plugins"), (ListOp, "List the plugins")],
                "Plugin catalog",
                "Every builtin and registered plugin, by type.",
            ),
        ),
        (
            SysRoute::Catalog(CatalogOp::OfType),
            p(
                "plugins/catalog/(?P<type>auth|secret|database)/?",
                vec![f("type", Str, "auth, secret or database")],
                vec![(ListOp, "List the plugins of a type")],
                "Plugins of a type",
                "The names of the registered plugins of one type.",
            )
            .with_flags(SUDO),
        ),
        (
            SysRoute::Catalog(CatalogOp::Entry),
            p(
                "plugins/catalog/(?P<type>auth|secret|database)/(?P<name>.+)",
                vec![
                    f("type", Str, "auth, secret or database"),
                    f("name", Str, "The plugin's name"),
                    f("command", Str, "The executable, relative to plugin_directory"),
                    f("sha256", Str, "Hex SHA-256 of the executable"),
                    f("args", List, "Arguments to the executable"),
                    f("env", List, "Environment variables, KEY=VALUE"),
                    f("version", Str, "Semantic version of the plugin"),
                ],
                vec![(Read, "Read a plugin"), (Update, "Register a plugin"), (Delete, "Remove a plugin")],
                "A registered plugin",
                "Registers, reads or removes a plugin of the catalog.",
            )
            .with_flags(SUDO),
        ),
        (
            SysRoute::Catalog(CatalogOp::ByName),
            p(
                "plugins/catalog/(?P<name>[^/]+)",
                vec![f("name", Str, "The plugin's name")],
                vec![(Read, "Read a plugin"), (Update, "Register a plugin"), (Delete, "Remove a plugin")],
                "A registered plugin (legacy path)",
                "The catalog entry of a plugin named without its type.",
            )
            .with_flags(SUDO),
        ),
        (
            SysRoute::Reload,
            p(
                "plugins/reload/backend",
                vec![
                    f("plugin", Str, "Reload every mount of this plugin"),
                    f("mounts", List, "Reload these mounts"),
                    f("scope", Str, "Only the local node is reloaded"),
                ],
                vec![(Update, "Reload plugins")],
                "Plugin reload",
                "Restarts the processes of a plugin's mounts, or of the given mounts.",
            ),
        ),
        (
            SysRoute::Loggers,
            p(
                "loggers",
                vec![f("level", Str, "trace, debug, info, warn or error")],
                vec![(Read, "Show the log levels"), (Update, "Set every log level"), (Delete, "Reset every log level")],
                "Log levels",
                "The level of each logger of the server, changed without a restart.",
            ),
        ),
        (
            SysRoute::Loggers,
            p(
                "loggers/(?P<name>.+)",
                vec![f("name", Str, "The logger"), f("level", Str, "trace, debug, info, warn or error")],
                vec![(Read, "Show a log level"), (Update, "Set a log level"), (Delete, "Reset a log level")],
                "A log level",
                "The level of one logger.",
            ),
        ),
        (
            SysRoute::Monitor,
            p(
                "monitor",
                vec![f("log_level", Str, "The lowest level streamed"), f("log_format", Str, "standard or json")],
                vec![(Read, "Stream the server's log")],
                "Log stream",
                "Streams the server's log lines until the client goes away.",
            ),
        ),
        (
            SysRoute::InFlight,
            p(
                "in-flight-req",
                vec![],
                vec![(Read, "List the requests being served")],
                "Requests in flight",
                "The requests the server is serving now.",
            ),
        ),
        (
            SysRoute::SanitizedConfig,
            p(
                "config/state/sanitized",
                vec![],
                vec![(Read, "Show the configuration without secrets")],
                "Sanitized configuration",
                "The server's configuration, with secrets left out.",
            ),
        ),
        (
            SysRoute::Counters,
            p(
                "internal/counters/(?P<kind>tokens|entities|requests)",
                vec![f("kind", Str, "tokens, entities or requests")],
                vec![(Read, "Show a counter")],
                "Counters",
                "How many tokens and entities exist, and how many requests were served.",
            ),
        ),
        (
            SysRoute::RekeyRecovery(Step::Init),
            p(
                "rekey-recovery-key/init",
                shares_fields(),
                vec![(Read, "Show the progress"), (Update, "Start"), (Delete, "Cancel")],
                "Recovery key rekey",
                "Splits the recovery key into new shares (auto-unseal servers), from a quorum of recovery shares.",
            )
            .with_flags(CEREMONY),
        ),
        (
            SysRoute::RekeyRecovery(Step::Update),
            p(
                "rekey-recovery-key/update",
                key_nonce(),
                vec![(Update, "Give one current recovery share")],
                "Recovery key rekey: shares",
                "Collects current recovery shares; the last one returns the new shares.",
            )
            .with_flags(CEREMONY),
        ),
        (
            SysRoute::RekeyRecovery(Step::Verify),
            p(
                "rekey-recovery-key/verify",
                key_nonce(),
                vec![
                    (Read, "Show the verification's progress"),
                    (Update, "Give one new recovery share"),
                    (Delete, "Restart the verification"),
                ],
                "Recovery key rekey: verification",
                "Proves the new recovery shares were received before they take effect.",
            )
            .with_flags(CEREMONY),
        ),
        (
            SysRoute::RotateRecovery(Step::Init),
            p(
                "rotate/recovery/init",
                shares_fields(),
                vec![(Read, "Show the progress"), (Update, "Start"), (Delete, "Cancel")],
                "Recovery key rotation",
                "Splits the recovery key into new shares (auto-unseal servers), from a quorum of recovery shares.",
            ),
        ),
        (
            SysRoute::RotateRecovery(Step::Update),
            p(
                "rotate/recovery/update",
                key_nonce(),
                vec![(Update, "Give one current recovery share")],
                "Recovery key rotation: shares",
                "Collects current recovery shares; the last one returns the new shares.",
            ),
        ),
        (
            SysRoute::RotateRecovery(Step::Verify),
            p(
                "rotate/recovery/verify",
                key_nonce(),
                vec![
                    (Read, "Show the verification's progress"),
                    (Update, "Give one new recovery share"),
                    (Delete, "Restart the verification"),
                ],
                "Recovery key rotation: verification",
                "Proves the new recovery shares were received before they take effect.",
            ),
        ),
    ]
}
fn token_create_fields() -> Vec<FieldSpec> {
    vec![
        f("role_name", Str, "The token role to create the token with"),
        f("id", Str, "The token's value (root tokens only)"),
        f("policies", List, "Policies of the token"),
        f("meta", KvPairs, "Metadata string pairs"),
        f("no_parent", Bool, "Create an orphan token (root or sudo)"),
        f("no_default_policy", Bool, "Leave out the default policy"),
        f("renewable", Bool, "Whether the token can be renewed").default(json!(true)),
        f("ttl", Duration, "Initial TTL"),
        f("explicit_max_ttl", Duration, "Hard cap on the token's lifetime"),
        f("period", Duration, "Make the token periodic"),
        f("type", Str, "service or batch"),
        f("display_name", Str, "A display name"),
        f("num_uses", Int, "How many uses (0 = unlimited)"),
        f("entity_alias", Str, "Entity alias to attach the token to"),
        f("lease", Duration, "Deprecated alias of ttl"),
    ]
}

fn token_specs() -> Vec<(TokenRoute, PathSpec)> {
    {
        // The fields OpenBao's token roles take (not token_ttl, token_max_ttl, token_policies).
        let role_fields = vec![
            f("role_name", Str, "The role's name"),
            f("allowed_policies", List, "Policies tokens of this role may have"),
            f("disallowed_policies", List, "Policies tokens of this role may not have"),
            f("allowed_policies_glob", List, "Glob patterns of allowed policies"),
            f("disallowed_policies_glob", List, "Glob patterns of disallowed policies"),
            f("orphan", Bool, "Create orphan tokens"),
            f("renewable", Bool, "Whether tokens can be renewed").default(json!(true)),
            f("path_suffix", Str, "Suffix added to the tokens' creation path"),
            f("allowed_entity_aliases", List, "Entity aliases tokens may be created for"),
            f("bound_cidrs", List, "Deprecated alias of token_bound_cidrs"),
            f("explicit_max_ttl", Duration, "Deprecated alias of token_explicit_max_ttl"),
            f("period", Duration, "Deprecated alias of token_period"),
            f("token_bound_cidrs", List, "CIDR blocks tokens of this role may be used from"),
            f("token_explicit_max_ttl", Duration, "Hard cap on the lifetime of the role's tokens"),
            f("token_no_default_policy", Bool, "Leave the default policy out of the role's tokens"),
            f("token_num_uses", Int, "How many uses the role's tokens have (0 = unlimited)"),
            f("token_period", Duration, "Make the role's tokens periodic"),
            f("token_type", Str, "service, batch, default-service or default-batch"),
        ];
        let tok = || f("token", Str, "The token");
        let acc = || f("accessor", Str, "The token's accessor");
        let inc = || f("increment", Duration, "Requested TTL extension");
        vec![
            (
                TokenRoute::Accessors,
                p(
                    "accessors/?",
                    vec![],
                    vec![(ListOp, "List token accessors")],
                    "Token accessors",
                    "The accessors of every token.",
                ),
            ),
            (
                TokenRoute::Create,
                p(
                    "create",
                    token_create_fields(),
                    vec![(Update, "Create a child token")],
                    "Create a token",
                    "Creates a token, a child of the caller's unless no_parent is set.",
                ),
            ),
            (
                TokenRoute::CreateOrphan,
                p(
                    "create-orphan",
                    token_create_fields(),
                    vec![(Update, "Create an orphan token")],
                    "Create an orphan token",
                    "Creates a token without a parent.",
                ),
            ),
            (
                TokenRoute::CreateWithRole,
                p(
                    "create/(?P<role_name>.+)",
                    token_create_fields(),
                    vec![(Update, "Create a token with a role")],
                    "Create a token with a role",
                    "Creates a token whose settings the role constrains.",
                ),
            ),
            (
                TokenRoute::Lookup,
                p(
                    "lookup",
                    vec![tok()],
                    vec![(Read, "Look up a token"), (Update, "Look up a token")],
                    "Token lookup",
                    "The properties of a token.",
                ),
            ),
            (
                TokenRoute::LookupAccessor,
                p(
                    "lookup-accessor",
                    vec![acc()],
                    vec![(Update, "Look up a token by accessor")],
                    "Token lookup by accessor",
                    "The properties of the token with this accessor.",
                ),
            ),
            (
                TokenRoute::LookupSelf,
                p(
                    "lookup-self",
                    vec![tok()],
                    vec![(Read, "Look up the caller's token"), (Update, "Look up the caller's token")],
                    "Own token lookup",
                    "The properties of the calling token.",
                ),
            ),
            (
                TokenRoute::Renew,
                p(
                    "renew",
                    vec![tok(), inc()],
                    vec![(Update, "Renew a token")],
                    "Token renewal",
                    "Extends a renewable token's TTL within its limits.",
                ),
            ),
            (
                TokenRoute::RenewAccessor,
                p(
                    "renew-accessor",
                    vec![acc(), inc()],
                    vec![(Update, "Renew a token by accessor")],
                    "Token renewal by accessor",
                    "Extends the TTL of the token with this accessor.",
                ),
            ),
            (
                TokenRoute::RenewSelf,
                p(
                    "renew-self",
                    vec![tok(), inc()],
                    vec![(Update, "Renew the caller's token")],
                    "Own token renewal",
                    "Extends the calling token's TTL.",
                ),
            ),
            (
                TokenRoute::Revoke,
                p(
                    "revoke",
                    vec![tok()],
                    vec![(Update, "Revoke a token and its children")],
                    "Token revocation",
                    "Revokes a token, its children and their leases.",
                ),
            ),
            (
                TokenRoute::RevokeAccessor,
                p(
                    "revoke-accessor",
                    vec![acc()],
                    vec![(Update, "Revoke a token by accessor")],
                    "Token revocation by accessor",
                    "Revokes the token with this accessor and its children.",
                ),
            ),
            (
                TokenRoute::RevokeOrphan,
                p(
                    "revoke-orphan",
                    vec![tok()],
                    vec![(Update, "Revoke a token, orphaning its children")],
                    "Revoke, keeping children",
                    "Revokes a token; its children become orphans.",
                ),
            ),
            (
                TokenRoute::RevokeSelf,
                p(
                    "revoke-self",
                    vec![],
                    vec![(Update, "Revoke the caller's token")],
                    "Own token revocation",
                    "Revokes the calling token and its children.",
                ),
            ),
            (
                TokenRoute::Roles,
                p(
                    "roles/?",
                    vec![],
                    vec![(ListOp, "List token roles")],
                    "Token roles",
                    "The names of every token role.",
                ),
            ),
            (
                TokenRoute::Role,
                p(
                    "roles/(?P<role_name>[^/]+)",
                    role_fields,
                    vec![(Read, "Read the role"), (Update, "Write the role"), (Delete, "Delete the role")],
                    "A token role",
                    "Constraints and defaults for tokens created with the role.",
                ),
            ),
            (
                TokenRoute::Tidy,
                p(
                    "tidy",
                    vec![],
                    vec![(Update, "Remove stale token entries")],
                    "Token tidy",
                    "Removes leftovers of expired and revoked tokens.",
                ),
            ),
        ]
    }
}

fn identity_specs() -> Vec<(IdentityRoute, PathSpec)> {
    use IdentityRoute as R;
    let entity = || {
        vec![
            f("id", Str, "The entity's id"),
            f("name", Str, "The entity's name"),
            f("policies", List, "Policies granted to the entity's tokens"),
            f("metadata", KvPairs, "Metadata string pairs (key=value)"),
            f("disabled", Bool, "Refuse the entity's tokens"),
        ]
    };
    let alias = || {
        vec![
            f("id", Str, "The alias' id"),
            f("name", Str, "The alias' name in its auth method"),
            f("canonical_id", Str, "The entity the alias belongs to (a new entity when not given)"),
            f("mount_accessor", Str, "The accessor of the alias' auth method"),
            f("metadata", KvPairs, "Metadata string pairs"),
            f("custom_metadata", KvPairs, "Metadata string pairs set by operators"),
        ]
    };
    let group = || {
        vec![
            f("id", Str, "The group's id"),
            f("name", Str, "The group's name"),
            f("type", Str, "internal (members set here) or external (members follow logins); fixed at creation"),
            f("policies", List, "Policies granted to the members' tokens"),
            f("metadata", KvPairs, "Metadata string pairs"),
            f("member_entity_ids", List, "Member entities (internal groups only)"),
            f("member_group_ids", List, "Member groups"),
        ]
    };
    let group_alias = || {
        vec![
            f("id", Str, "The group alias' id"),
            f("name", Str, "The group name the auth method reports at login"),
            f("mount_accessor", Str, "The accessor of the auth method"),
            f("canonical_id", Str, "The external group the alias binds (a new one when not given)"),
        ]
    };
    let lookup = |what: &'static str| {
        vec![
            f("id", Str, what),
            f("name", Str, "The name"),
            f("alias_id", Str, "The id of one of its aliases"),
            f("alias_name", Str, "The name of one of its aliases (with alias_mount_accessor)"),
            f("alias_mount_accessor", Str, "The accessor of that alias' auth method"),
        ]
    };
    let rwd = || vec![(Read, "Read it"), (Update, "Create or update it"), (Delete, "Delete it")];
    let listing = |what: &'static str| vec![(ListOp, what)];
    vec![
        (
            R::Entity,
            p(
                "entity",
                entity(),
                vec![(Update, "Create or update an entity")],
                "Entities",
                "Creates an entity, or updates the one with the given id or name.",
            ),
        ),
        (
            R::EntityIds,
            p("entity/id/?", vec![], listing("List entities by id"), "Entity ids", "The ids of every entity."),
        ),
        (
            R::EntityById,
            p("entity/id/(?P<id>[^/]+)", entity(), rwd(), "An entity by id", "Reads, updates or deletes an entity."),
        ),
        (
            R::EntityNames,
            p("entity/name/?", vec![], listing("List entities by name"), "Entity names", "The names of every entity."),
        ),
        (
            R::EntityByName,
            p(
                "entity/name/(?P<name>[^/]+)",
                entity(),
                rwd(),
                "An entity by name",
                "Reads, creates or updates, or deletes an entity.",
            ),
        ),
        (
            R::EntityMerge,
            p(
                "entity/merge/?",
                vec![
                    f("from_entity_ids", List, "The entities to merge into the target; they are deleted"),
                    f("to_entity_id", Str, "The entity that receives the aliases and group memberships"),
                    f("force", Bool, "Accepted for clients; entities hold no MFA secrets that could conflict"),
                    f(
                        "conflicting_alias_ids_to_keep",
                        List,
                        "Where both entities have an alias on one mount, the alias to keep (one source entity only)",
                    ),
                ],
                vec![(Update, "Merge entities")],
                "Merge entities",
                "Moves the aliases and group memberships of entities into one entity and deletes them.",
            ),
        ),
        (
            R::EntityBatchDelete,
            p(
                "entity/batch-delete/?",
                vec![f("entity_ids", List, "The entities to delete (unknown ids are skipped)")],
                vec![(Update, "Delete entities")],
                "Delete entities",
                "Deletes several entities with their aliases.",
            ),
        ),
        (
            R::EntityAlias,
            p(
                "entity-alias/?",
                alias(),
                vec![(Update, "Create or update an entity alias")],
                "Entity aliases",
                "Ties a name in an auth method to an entity.",
            ),
        ),
        (
            R::EntityAliasIds,
            p(
                "entity-alias/id/?",
                vec![],
                listing("List entity aliases"),
                "Entity alias ids",
                "The ids of every entity alias.",
            ),
        ),
        (
            R::EntityAliasById,
            p(
                "entity-alias/id/(?P<id>[^/]+)",
                alias(),
                rwd(),
                "An entity alias",
                "Reads, updates or deletes an entity alias.",
            ),
        ),
        (
            R::Group,
            p(
                "group/?",
                group(),
                vec![(Update, "Create or update a group")],
                "Groups",
                "Creates a group, or updates the one with the given id or name.",
            ),
        ),
        (R::GroupIds, p("group/id/?", vec![], listing("List groups by id"), "Group ids", "The ids of every group.")),
        (
            R::GroupById,
            p("group/id/(?P<id>[^/]+)", group(), rwd(), "A group by id", "Reads, updates or deletes a group."),
        ),
        (
            R::GroupNames,
            p("group/name/?", vec![], listing("List groups by name"), "Group names", "The names of every group."),
        ),
        (
            R::GroupByName,
            p(
                "group/name/(?P<name>[^/]+)",
                group(),
                rwd(),
                "A group by name",
                "Reads, creates or updates, or deletes a group.",
            ),
        ),
        (
            R::GroupAlias,
            p(
                "group-alias/?",
                group_alias(),
                vec![(Update, "Create or update a group alias")],
                "Group aliases",
                "Binds an external group to a group name an auth method reports at login.",
            ),
        ),
        (
            R::GroupAliasIds,
            p(
                "group-alias/id/?",
                vec![],
                listing("List group aliases"),
                "Group alias ids",
                "The ids of every group alias.",
            ),
        ),
        (
            R::GroupAliasById,
            p(
                "group-alias/id/(?P<id>[^/]+)",
                group_alias(),
                rwd(),
                "A group alias",
                "Reads, updates or deletes a group alias.",
            ),
        ),
        (
            R::LookupEntity,
            p(
                "lookup/entity/?",
                lookup("The entity's id"),
                vec![(Update, "Find an entity")],
                "Entity lookup",
                "Finds an entity by id, name or alias.",
            ),
        ),
        (
            R::LookupGroup,
            p(
                "lookup/group/?",
                lookup("The group's id"),
                vec![(Update, "Find a group")],
                "Group lookup",
                "Finds a group by id, name or alias.",
            ),
        ),
    ]
}

/// Served without a token (the OIDC discovery documents, the provider's token and userinfo
/// endpoints, which authenticate clients and access tokens themselves), audited.
const OIDC_OPEN: PathFlags = PathFlags::NORMAL.unauthenticated();

fn oidc_specs() -> Vec<(IdentityRoute, PathSpec)> {
    use IdentityRoute as R;
    let name = || f("name", Str, "The object's name");
    let rwd = |what: &'static str| vec![(Read, what), (Update, what), (Delete, what)];
    let listing = |what: &'static str| vec![(ListOp, what)];
    let open = |s: PathSpec| s.with_flags(OIDC_OPEN);
    vec![
        (
            R::OidcConfig,
            p(
                "oidc/config/?",
                vec![f(
                    "issuer",
                    Str,
                    "Scheme, host and optional port of the issuer (empty: the server's API address)",
                )],
                vec![(Read, "Read the issuer"), (Update, "Set the issuer")],
                "Identity token configuration",
                "The issuer identity tokens name.",
            ),
        ),
        (
            R::OidcKeys,
            p("oidc/key/?", vec![], listing("List named keys"), "Named keys", "The names of the signing keys."),
        ),
        (
            R::OidcKey,
            p(
                "oidc/key/(?P<name>[^/]+)",
                vec![
                    name(),
                    f("algorithm", Str, "RS256, RS384, RS512, ES256, ES384, ES512 or EdDSA").default(json!("RS256")),
                    f("rotation_period", Duration, "How often the key is rotated").default(json!(86400)),
                    f("verification_ttl", Duration, "How long a rotated-out key still verifies tokens")
                        .default(json!(86400)),
                    f("allowed_client_ids", List, "Client ids (role and client ids) that may use the key; * for any"),
                ],
                rwd("A named key"),
                "A named key",
                "Creates, reads or deletes a signing key; a key used by a role or client cannot be deleted.",
            ),
        ),
        (
            R::OidcKeyRotate,
            p(
                "oidc/key/(?P<name>[^/]+)/rotate/?",
                vec![name(), f("verification_ttl", Duration, "How long the rotated-out key still verifies tokens")],
                vec![(Update, "Rotate the key")],
                "Rotate a named key",
                "Makes the published next key the signing key and retires the current one.",
            ),
        ),
        (R::OidcRoles, p("oidc/role/?", vec![], listing("List roles"), "Roles", "The names of the roles.")),
        (
            R::OidcRole,
            p(
                "oidc/role/(?P<name>[^/]+)",
                vec![
                    name(),
                    f("key", Str, "The named key that signs the role's tokens"),
                    f("template", Str, "JSON claims with identity template parameters (or base64 of it)"),
                    f("ttl", Duration, "Lifetime of the tokens").default(json!(86400)),
                    f("client_id", Str, "The tokens' audience (generated when not given)"),
                ],
                rwd("A role"),
                "A role",
                "Creates, reads or deletes a role for identity tokens.",
            ),
        ),
        (
            R::OidcToken,
            p(
                "oidc/token/(?P<name>[^/]+)",
                vec![name()],
                vec![(Read, "Issue a token")],
                "Issue an identity token",
                "A signed JWT about the calling token's entity.",
            ),
        ),
        (
            R::OidcIntrospect,
            p(
                "oidc/introspect/?",
                vec![f("token", Str, "The identity token"), f("client_id", Str, "The audience the token must have")],
                vec![(Update, "Check a token")],
                "Introspect a token",
                "Whether an identity token is valid (signature, expiry, audience).",
            ),
        ),
        (
            R::OidcWellKnownConfig,
            open(p(
                "oidc/\\.well-known/openid-configuration/?",
                vec![],
                vec![(Read, "The discovery document")],
                "OIDC discovery",
                "The issuer's OpenID Connect discovery document.",
            )),
        ),
        (
            R::OidcWellKnownKeys,
            open(p(
                "oidc/\\.well-known/keys/?",
                vec![],
                vec![(Read, "The public keys")],
                "Public keys",
                "The JSON Web Key Set that verifies identity tokens.",
            )),
        ),
        (R::OidcScopes, p("oidc/scope/?", vec![], listing("List scopes"), "Scopes", "The names of the scopes.")),
        (
            R::OidcScope,
            p(
                "oidc/scope/(?P<name>[^/]+)",
                vec![
                    name(),
                    f("template", Str, "JSON claims with identity template parameters (or base64 of it)"),
                    f("description", Str, "A description"),
                ],
                rwd("A scope"),
                "A scope",
                "Creates, reads or deletes a scope of the OIDC provider.",
            ),
        ),
        (
            R::OidcAssignments,
            p("oidc/assignment/?", vec![], listing("List assignments"), "Assignments", "The names of the assignments."),
        ),
        (
            R::OidcAssignment,
            p(
                "oidc/assignment/(?P<name>[^/]+)",
                vec![
                    name(),
                    f("entity_ids", List, "Entities allowed to sign in"),
                    f("group_ids", List, "Groups whose members may sign in"),
                ],
                rwd("An assignment"),
                "An assignment",
                "Who may sign in to a client.",
            ),
        ),
        (R::OidcClients, p("oidc/client/?", vec![], listing("List clients"), "Clients", "The names of the clients.")),
        (
            R::OidcClient,
            p(
                "oidc/client/(?P<name>[^/]+)",
                vec![
                    name(),
                    f("redirect_uris", List, "Where authorization answers may be sent"),
                    f("assignments", List, "Assignments naming who may sign in"),
                    f("key", Str, "The named key that signs ID tokens").default(json!("default")),
                    f("id_token_ttl", Duration, "Lifetime of ID tokens").default(json!(86400)),
                    f("access_token_ttl", Duration, "Lifetime of access tokens").default(json!(86400)),
                    f("client_type", Str, "confidential (with a secret) or public (PKCE)")
                        .default(json!("confidential")),
                ],
                rwd("A client"),
                "A client",
                "Creates, reads or deletes a relying party of the OIDC provider.",
            ),
        ),
        (
            R::OidcProviders,
            p(
                "oidc/provider/?",
                vec![f("allowed_client_id", Str, "Only providers that allow this client id")],
                listing("List providers"),
                "Providers",
                "The names of the providers.",
            ),
        ),
        (
            R::OidcProvider,
            p(
                "oidc/provider/(?P<name>[^/]+)",
                vec![
                    name(),
                    f("issuer", Str, "Scheme, host and optional port of the issuer"),
                    f("allowed_client_ids", List, "Client ids that may use the provider; * for any"),
                    f("scopes_supported", List, "Scopes the provider offers besides openid"),
                ],
                rwd("A provider"),
                "A provider",
                "Creates, reads or deletes an OIDC provider.",
            ),
        ),
        (
            R::ProviderWellKnownConfig,
            open(p(
                "oidc/provider/(?P<name>[^/]+)/\\.well-known/openid-configuration/?",
                vec![name()],
                vec![(Read, "The discovery document")],
                "Provider discovery",
                "The provider's OpenID Connect discovery document.",
            )),
        ),
        (
            R::ProviderWellKnownKeys,
            open(p(
                "oidc/provider/(?P<name>[^/]+)/\\.well-known/keys/?",
                vec![name()],
                vec![(Read, "The public keys")],
                "Provider keys",
                "The JSON Web Key Set that verifies the provider's ID tokens.",
            )),
        ),
        (
            R::ProviderAuthorize,
            p(
                "oidc/provider/(?P<name>[^/]+)/authorize/?",
                vec![
                    name(),
                    f("client_id", Str, "The client"),
                    f("scope", Str, "Space-separated scopes; must contain openid"),
                    f("redirect_uri", Str, "One of the client's redirect URIs"),
                    f("response_type", Str, "code"),
                    f("state", Str, "Opaque value returned with the code"),
                    f("nonce", Str, "Copied into the ID token"),
                    f("max_age", Int, "Refuse when the Coffer token is older than this many seconds"),
                    f("code_challenge", Str, "PKCE challenge"),
                    f("code_challenge_method", Str, "S256 or plain").default(json!("plain")),
                ],
                vec![(Read, "Authorize"), (Update, "Authorize")],
                "Authorization endpoint",
                "Issues an authorization code for the calling token's entity.",
            ),
        ),
        (
            R::ProviderToken,
            open(p(
                "oidc/provider/(?P<name>[^/]+)/token/?",
                vec![
                    name(),
                    f("grant_type", Str, "authorization_code"),
                    f("code", Str, "The authorization code"),
                    f("redirect_uri", Str, "The redirect URI of the authorization request"),
                    f("code_verifier", Str, "PKCE verifier"),
                    f("client_id", Str, "The client (client_secret_post, or a public client)"),
                    f("client_secret", Str, "The client secret (client_secret_post)"),
                ],
                vec![(Update, "Exchange a code")],
                "Token endpoint",
                "Exchanges an authorization code for an ID token and an access token.",
            )),
        ),
        (
            R::ProviderUserinfo,
            open(p(
                "oidc/provider/(?P<name>[^/]+)/userinfo/?",
                vec![name()],
                vec![(Read, "Claims"), (Update, "Claims")],
                "Userinfo endpoint",
                "The claims of the access token's entity.",
            )),
        ),
    ]
}

fn cubbyhole_specs() -> Vec<PathSpec> {
    {
        vec![PathSpec {
            flags: PathFlags::NORMAL,
            pattern: ".*",
            fields: vec![],
            operations: vec![
                (Read, "Read the secret"),
                (Create, "Store a secret"),
                (Update, "Store a secret"),
                (Delete, "Delete the secret"),
                (ListOp, "List the keys below the path"),
            ],
            passthrough: true,
            synopsis: "The calling token's private storage",
            description: "Stores JSON objects only the calling token can read; they are \
                          destroyed with the token.",
        }]
    }
}

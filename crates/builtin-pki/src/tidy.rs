//! Tidying the certificate store (`tidy`, `tidy-status`, `tidy-cancel`, `config/auto-tidy`):
//! expired certificates leave the store, expired revoked ones leave the CRL, revoked
//! certificates whose issuer is gone are re-associated, expired issuers are removed. A tidy runs
//! in the background (202), one at a time per mount, and can be cancelled between certificates;
//! its status lives in memory, as OpenBao keeps it.
//!
//! Auto-tidy starts once `interval_duration` has passed since the last run: from the core's
//! periodic call (every few seconds on the active node) or from a request to the mount,
//! whichever comes first.

use super::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// What a tidy does (the fields shared by `tidy` and `config/auto-tidy`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub(crate) struct TidyParams {
    tidy_cert_store: bool,
    tidy_revoked_certs: bool,
    tidy_revoked_cert_issuer_associations: bool,
    tidy_expired_issuers: bool,
    tidy_move_legacy_ca_bundle: bool,
    tidy_invalid_certs: bool,
    /// Seconds past expiry before a certificate is removed.
    safety_buffer: i64,
    /// Seconds past expiry before an issuer is removed.
    issuer_safety_buffer: i64,
    /// Seconds to wait between certificates.
    pause_duration: i64,
    page_size: i64,
    /// ACME orders, authorizations and idle accounts (see `acme::tidy`).
    #[serde(default)]
    tidy_acme: bool,
    #[serde(default = "default_acme_buffer")]
    acme_account_safety_buffer: i64,
}

fn default_acme_buffer() -> i64 {
    30 * 24 * 3600
}

impl Default for TidyParams {
    fn default() -> Self {
        TidyParams {
            tidy_cert_store: false,
            tidy_revoked_certs: false,
            tidy_revoked_cert_issuer_associations: false,
            tidy_expired_issuers: false,
            tidy_move_legacy_ca_bundle: false,
            tidy_invalid_certs: false,
            safety_buffer: 72 * 3600,
            issuer_safety_buffer: 365 * 24 * 3600,
            pause_duration: 0,
            page_size: 1000,
            tidy_acme: false,
            acme_account_safety_buffer: default_acme_buffer(),
        }
    }
}

/// `config/auto-tidy`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub(crate) struct AutoTidyConfig {
    enabled: bool,
    interval_duration: i64,
    #[serde(flatten)]
    params: TidyParams,
}

impl Default for AutoTidyConfig {
    fn default() -> Self {
        AutoTidyConfig { enabled: false, interval_duration: 12 * 3600, params: TidyParams::default() }
    }
}

/// The last (or current) tidy, as `tidy-status` shows it.
#[derive(Default, Clone)]
struct TidyRun {
    state: &'static str,
    params: Option<TidyParams>,
    time_started: i64,
    time_finished: i64,
    cert_store_deleted_count: u64,
    revoked_cert_deleted_count: u64,
    missing_issuer_cert_count: u64,
    acme: crate::acme::TidyCounts,
    message: String,
    error: String,
}

/// A mount's tidy state, shared with the background task.
pub(crate) struct TidyState {
    run: std::sync::Mutex<TidyRun>,
    cancel: AtomicBool,
    /// `config/auto-tidy` as last read (None: not read yet), and when it was last acted on.
    auto: std::sync::Mutex<(Option<AutoTidyConfig>, i64)>,
    last_auto_finished: std::sync::Mutex<i64>,
}

impl Default for TidyState {
    fn default() -> Self {
        TidyState {
            run: std::sync::Mutex::new(TidyRun { state: "Inactive", ..TidyRun::default() }),
            cancel: AtomicBool::new(false),
            auto: std::sync::Mutex::new((None, 0)),
            last_auto_finished: std::sync::Mutex::new(0),
        }
    }
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The tidy fields of `tidy` and `config/auto-tidy`.
pub(crate) fn tidy_fields(auto: bool) -> Vec<FieldSpec> {
    let flag = |n: &'static str, d: &'static str| FieldSpec::new(n, FieldType::Bool, d).default(json!(false));
    let mut v = vec![
        flag("tidy_cert_store", "Remove expired certificates (past safety_buffer) from the store"),
        flag("tidy_revoked_certs", "Remove expired revoked certificates (past safety_buffer) and rebuild the CRLs"),
        flag(
            "tidy_revoked_cert_issuer_associations",
            "Associate revoked certificates whose issuer is gone with the issuer that signed them",
        ),
        flag("tidy_expired_issuers", "Remove issuers expired past issuer_safety_buffer (never the default)"),
        flag("tidy_move_legacy_ca_bundle", "Nothing to move: Coffer has no legacy CA bundle"),
        flag("tidy_invalid_certs", "Remove stored certificates that cannot be parsed"),
        flag("tidy_acme", "Remove expired ACME orders and authorizations; revoke, then delete, idle ACME accounts"),
        FieldSpec::new("safety_buffer", FieldType::DurationSecond, "How long past expiry a certificate is kept")
            .default(json!("72h")),
        FieldSpec::new("issuer_safety_buffer", FieldType::DurationSecond, "How long past expiry an issuer is kept")
            .default(json!("8760h")),
        FieldSpec::new(
            "revoked_safety_buffer",
            FieldType::DurationSecond,
            "Accepted as OpenBao's alias: safety_buffer",
        ),
        FieldSpec::new(
            "acme_account_safety_buffer",
            FieldType::DurationSecond,
            "How long an ACME account without orders is kept before it is revoked, and revoked before it is deleted",
        ),
        FieldSpec::new("pause_duration", FieldType::String, "Pause between certificates (a duration)")
            .default(json!("0s")),
        FieldSpec::new("page_size", FieldType::Int, "Certificates per storage page (Coffer lists in one page)")
            .default(json!(1000)),
        flag("maintain_stored_certificate_counts", "Refused when true: not supported yet"),
        flag("publish_stored_certificate_count_metrics", "Refused when true: not supported yet"),
    ];
    if auto {
        v.push(flag("enabled", "Run tidy periodically"));
        v.push(
            FieldSpec::new("interval_duration", FieldType::DurationSecond, "Time between automatic tidies")
                .default(json!("12h")),
        );
    }
    v
}

/// Reads the tidy fields of a write over `base` (a write of `config/auto-tidy` changes what it
/// names); refuses what Coffer cannot do.
fn params_from(f: &FieldData, mut p: TidyParams, partial: bool) -> Result<TidyParams> {
    for k in ["maintain_stored_certificate_counts", "publish_stored_certificate_count_metrics"] {
        if f.bool(k).unwrap_or(false) {
            return Err(bad(format!("{k}=true is not supported")));
        }
    }
    let take = |k: &str| !partial || f.is_set(k);
    for (k, slot) in [
        ("tidy_cert_store", &mut p.tidy_cert_store),
        ("tidy_revoked_certs", &mut p.tidy_revoked_certs),
        ("tidy_revoked_cert_issuer_associations", &mut p.tidy_revoked_cert_issuer_associations),
        ("tidy_expired_issuers", &mut p.tidy_expired_issuers),
        ("tidy_move_legacy_ca_bundle", &mut p.tidy_move_legacy_ca_bundle),
        ("tidy_invalid_certs", &mut p.tidy_invalid_certs),
        ("tidy_acme", &mut p.tidy_acme),
    ] {
        if take(k) {
            *slot = f.bool(k).unwrap_or(false);
        }
    }
    let buffer_key = if f.is_set("safety_buffer") || !f.is_set("revoked_safety_buffer") {
        "safety_buffer"
    } else {
        "revoked_safety_buffer"
    };
    if take(buffer_key) {
        p.safety_buffer = f.int(buffer_key).unwrap_or(72 * 3600);
        if p.safety_buffer < 1 {
            return Err(bad("safety_buffer must be greater than zero"));
        }
    }
    if take("issuer_safety_buffer") {
        p.issuer_safety_buffer = f.int("issuer_safety_buffer").unwrap_or(365 * 24 * 3600);
        if p.issuer_safety_buffer < 1 {
            return Err(bad("issuer_safety_buffer must be greater than zero"));
        }
    }
    if take("acme_account_safety_buffer") {
        p.acme_account_safety_buffer = f.int("acme_account_safety_buffer").unwrap_or(default_acme_buffer());
        if p.acme_account_safety_buffer < 1 {
            return Err(bad("acme_account_safety_buffer must be greater than zero"));
        }
    }
    if take("pause_duration") {
        let raw = f.str("pause_duration").unwrap_or("0s");
        p.pause_duration = coffer_sdk::field::parse_duration_str(raw)
            .filter(|d| *d >= 0)
            .ok_or_else(|| bad(format!("pause_duration {raw:?} is not a duration")))?;
    }
    if take("page_size") {
        p.page_size = f.int("page_size").unwrap_or(1000);
        if p.page_size < 1 {
            return Err(bad("page_size must be positive"));
        }
    }
    Ok(p)
}

fn any_operation(p: &TidyParams) -> bool {
    p.tidy_cert_store
        || p.tidy_revoked_certs
        || p.tidy_revoked_cert_issuer_associations
        || p.tidy_expired_issuers
        || p.tidy_move_legacy_ca_bundle
        || p.tidy_invalid_certs
        || p.tidy_acme
}

fn params_data(p: &TidyParams, d: &mut Map<String, Value>) {
    d.insert("tidy_cert_store".into(), json!(p.tidy_cert_store));
    d.insert("tidy_revoked_certs".into(), json!(p.tidy_revoked_certs));
    d.insert("tidy_revoked_cert_issuer_associations".into(), json!(p.tidy_revoked_cert_issuer_associations));
    d.insert("tidy_expired_issuers".into(), json!(p.tidy_expired_issuers));
    d.insert("tidy_move_legacy_ca_bundle".into(), json!(p.tidy_move_legacy_ca_bundle));
    d.insert("tidy_invalid_certs".into(), json!(p.tidy_invalid_certs));
    d.insert("tidy_acme".into(), json!(p.tidy_acme));
    d.insert("safety_buffer".into(), json!(p.safety_buffer));
    d.insert("revoked_safety_buffer".into(), json!(p.safety_buffer));
    d.insert("issuer_safety_buffer".into(), json!(p.issuer_safety_buffer));
    d.insert("acme_account_safety_buffer".into(), json!(p.acme_account_safety_buffer));
    d.insert("pause_duration".into(), json!(format!("{}s", p.pause_duration)));
    d.insert("page_size".into(), json!(p.page_size));
}

fn time_or_null(t: i64) -> Value {
    if t > 0 {
        json!(rfc3339(t))
    } else {
        Value::Null
    }
}

const STARTED: &str =
    "Tidy operation successfully started. Any information from the operation will be printed to the server's log.";

impl Pki {
    /// `tidy`: starts a tidy in the background.
    pub(crate) async fn tidy(&self, req: &Request, f: &FieldData) -> Result<Response> {
        let p = params_from(f, TidyParams::default(), false)?;
        let mut r = Response::data(Map::new());
        r.data = None;
        r.status = coffer_sdk::ResponseStatus::Accepted;
        if !any_operation(&p) {
            r.warnings.push("Manual tidy requested but no tidy operations were set. Enable at least one tidy operation to be run (tidy_cert_store / tidy_revoked_certs / tidy_invalid_certs / tidy_revoked_cert_issuer_associations / tidy_expired_issuers / tidy_move_legacy_ca_bundle).".into());
            return Ok(r);
        }
        self.start_tidy(req.storage.clone(), p, false)?;
        r.warnings.push(STARTED.into());
        Ok(r)
    }

    /// Starts the background task; refused while one runs.
    fn start_tidy(&self, storage: Arc<dyn StorageView>, p: TidyParams, auto: bool) -> Result<()> {
        {
            let mut run = lock(&self.tidy.run);
            if matches!(run.state, "Running" | "Cancelling") {
                return Err(bad("A tidy operation is already running; wait for it or cancel it (tidy-cancel)"));
            }
            *run = TidyRun { state: "Running", params: Some(p.clone()), time_started: now(), ..TidyRun::default() };
        }
        self.tidy.cancel.store(false, Ordering::SeqCst);
        let me = self.clone();
        tokio::spawn(async move {
            let out = me.run_tidy(storage.as_ref(), &p).await;
            let t = now();
            let mut run = lock(&me.tidy.run);
            run.time_finished = t;
            match out {
                Ok(()) if me.tidy.cancel.load(Ordering::SeqCst) => {
                    run.state = "Cancelled";
                    run.message = "Tidy operation cancelled".into();
                }
                Ok(()) => {
                    run.state = "Finished";
                    run.message = "Tidy operation successfully completed".into();
                }
                Err(e) => {
                    run.state = "Error";
                    run.error = e.to_string();
                }
            }
            if auto {
                *lock(&me.tidy.last_auto_finished) = t;
            }
        });
        Ok(())
    }

    async fn run_tidy(&self, s: &dyn StorageView, p: &TidyParams) -> Result<()> {
        let cancelled = || self.tidy.cancel.load(Ordering::SeqCst);
        let t = now();
        let mut crl_issuers: Vec<String> = Vec::new();
        if p.tidy_cert_store || p.tidy_revoked_certs || p.tidy_invalid_certs || p.tidy_revoked_cert_issuer_associations
        {
            let issuers: Vec<IssuerEntry> = {
                let mut v = Vec::new();
                for id in s.list("issuer/").await? {
                    if let Some(i) = get_json::<IssuerEntry>(s, &format!("issuer/{id}")).await? {
                        v.push(i);
                    }
                }
                v
            };
            for k in s.list("certs/").await? {
                if cancelled() {
                    return Ok(());
                }
                if p.pause_duration > 0 {
                    tokio::time::sleep(std::time::Duration::from_secs(p.pause_duration.unsigned_abs())).await;
                    if cancelled() {
                        return Ok(());
                    }
                }
                let key = format!("certs/{k}");
                let _g = self.lock.lock().await;
                let entry = match s.get(&key).await? {
                    None => continue,
                    Some(raw) => serde_json::from_slice::<CertEntry>(&raw).ok(),
                };
                let Some(mut c) = entry.filter(|c| ca::cert_facts(&c.certificate).is_ok()) else {
                    if p.tidy_invalid_certs {
                        s.delete(&key).await?;
                        lock(&self.tidy.run).cert_store_deleted_count += 1;
                    }
                    continue;
                };
                let expired = c.not_after + p.safety_buffer < t;
                if c.revocation_time > 0 {
                    if expired && p.tidy_revoked_certs {
                        s.delete(&key).await?;
                        let mut run = lock(&self.tidy.run);
                        run.revoked_cert_deleted_count += 1;
                        if p.tidy_cert_store {
                            run.cert_store_deleted_count += 1;
                        }
                        if !crl_issuers.contains(&c.issuer_id) {
                            crl_issuers.push(c.issuer_id.clone());
                        }
                        continue;
                    }
                    if p.tidy_revoked_cert_issuer_associations && !issuers.iter().any(|i| i.id == c.issuer_id) {
                        let facts = ca::cert_facts(&c.certificate)?;
                        let found = issuers.iter().find(|i| {
                            ca::cert_facts(&i.certificate).is_ok_and(|f| f.subject == facts.issuer && f.is_ca)
                        });
                        match found {
                            Some(i) => {
                                c.issuer_id = i.id.clone();
                                put_json(s, &key, &c).await?;
                                if !crl_issuers.contains(&i.id) {
                                    crl_issuers.push(i.id.clone());
                                }
                            }
                            None => lock(&self.tidy.run).missing_issuer_cert_count += 1,
                        }
                    }
                } else if expired && p.tidy_cert_store {
                    s.delete(&key).await?;
                    lock(&self.tidy.run).cert_store_deleted_count += 1;
                }
            }
        }
        if p.tidy_expired_issuers && !cancelled() {
            let _g = self.lock.lock().await;
            let default = get_json::<IssuersConfig>(s, "config/issuers").await?.unwrap_or_default().default;
            for id in s.list("issuer/").await? {
                if let Some(i) = get_json::<IssuerEntry>(s, &format!("issuer/{id}")).await? {
                    if i.id != default && i.not_after + p.issuer_safety_buffer < t {
                        s.delete(&format!("issuer/{id}")).await?;
                        s.delete(&format!("crl/{id}")).await?;
                        crl_issuers.retain(|x| x != &id);
                    }
                }
            }
        }
        if p.tidy_acme && !cancelled() {
            let counts = crate::acme::tidy(self, s, p.safety_buffer, p.acme_account_safety_buffer).await?;
            lock(&self.tidy.run).acme = counts;
        }
        let _g = self.lock.lock().await;
        for id in crl_issuers {
            if let Some(i) = get_json::<IssuerEntry>(s, &format!("issuer/{id}")).await? {
                if !i.key_id.is_empty() {
                    self.rebuild_crl(s, i).await?;
                }
            }
        }
        Ok(())
    }

    /// `tidy-status`.
    pub(crate) fn tidy_status(&self) -> Response {
        let run = lock(&self.tidy.run).clone();
        let mut d = Map::new();
        let p = run.params.clone().unwrap_or_default();
        if run.params.is_some() {
            params_data(&p, &mut d);
        } else {
            for k in [
                "tidy_cert_store",
                "tidy_revoked_certs",
                "tidy_revoked_cert_issuer_associations",
                "tidy_expired_issuers",
                "tidy_move_legacy_ca_bundle",
                "tidy_invalid_certs",
                "tidy_acme",
                "safety_buffer",
                "revoked_safety_buffer",
                "issuer_safety_buffer",
                "acme_account_safety_buffer",
                "pause_duration",
                "page_size",
            ] {
                d.insert(k.into(), Value::Null);
            }
        }
        let started = run.params.is_some();
        d.insert("state".into(), json!(run.state));
        d.insert("time_started".into(), time_or_null(run.time_started));
        d.insert("time_finished".into(), time_or_null(run.time_finished));
        d.insert("error".into(), if run.error.is_empty() { Value::Null } else { json!(run.error) });
        d.insert("message".into(), if run.message.is_empty() { Value::Null } else { json!(run.message) });
        let count = |n: u64| if started { json!(n) } else { Value::Null };
        d.insert("cert_store_deleted_count".into(), count(run.cert_store_deleted_count));
        d.insert("revoked_cert_deleted_count".into(), count(run.revoked_cert_deleted_count));
        d.insert("missing_issuer_cert_count".into(), count(run.missing_issuer_cert_count));
        let acme = |n: u64| if started && p.tidy_acme { json!(n) } else { Value::Null };
        d.insert("acme_orders_deleted_count".into(), acme(run.acme.orders_deleted));
        d.insert("acme_account_revoked_count".into(), acme(run.acme.accounts_revoked));
        d.insert("acme_account_deleted_count".into(), acme(run.acme.accounts_deleted));
        d.insert("total_acme_account_count".into(), acme(run.acme.accounts_total));
        d.insert("current_cert_store_count".into(), Value::Null);
        d.insert("current_revoked_cert_count".into(), Value::Null);
        let last_auto = *lock(&self.tidy.last_auto_finished);
        d.insert("last_auto_tidy_finished".into(), time_or_null(last_auto));
        Response::data(d)
    }

    /// `tidy-cancel`.
    pub(crate) fn tidy_cancel(&self) -> Response {
        let mut run = lock(&self.tidy.run);
        if run.state != "Running" {
            drop(run);
            let mut r = Response::data(Map::new());
            r.data = None;
            r.warnings.push("Tidy operation cannot be cancelled as none is currently running.".into());
            return r;
        }
        run.state = "Cancelling";
        self.tidy.cancel.store(true, Ordering::SeqCst);
        drop(run);
        self.tidy_status()
    }

    /// `config/auto-tidy`.
    pub(crate) async fn config_auto_tidy(&self, s: &dyn StorageView, op: Operation, f: &FieldData) -> Result<Response> {
        let mut c = get_json::<AutoTidyConfig>(s, "config/auto-tidy").await?.unwrap_or_default();
        if op != Operation::Read {
            c.params = params_from(f, c.params.clone(), true)?;
            if f.is_set("enabled") {
                c.enabled = f.bool("enabled").unwrap_or(false);
            }
            if f.is_set("interval_duration") {
                c.interval_duration = f.int("interval_duration").unwrap_or(12 * 3600);
                if c.interval_duration < 1 {
                    return Err(bad("interval_duration must be greater than zero"));
                }
            }
            if c.enabled && !any_operation(&c.params) {
                return Err(bad("Auto-tidy enabled but no tidy operations were requested. Enable at least one tidy operation to be run (tidy_cert_store / tidy_revoked_certs / tidy_invalid_certs / tidy_revoked_cert_issuer_associations / tidy_expired_issuers / tidy_move_legacy_ca_bundle)."));
            }
            put_json(s, "config/auto-tidy", &c).await?;
            let mut auto = lock(&self.tidy.auto);
            // The interval counts from when auto-tidy was (re)configured.
            *auto = (Some(c.clone()), now());
        }
        let mut d = Map::new();
        params_data(&c.params, &mut d);
        d.insert("enabled".into(), json!(c.enabled));
        d.insert("interval_duration".into(), json!(c.interval_duration));
        d.insert("maintain_stored_certificate_counts".into(), json!(false));
        d.insert("publish_stored_certificate_count_metrics".into(), json!(false));
        Ok(Response::data(d))
    }

    /// Starts an automatic tidy when one is due: auto-tidy enabled, `interval_duration` past the
    /// last one (or the configuration), none running.
    pub(crate) async fn auto_tidy_tick(&self, storage: &Arc<dyn StorageView>) -> Result<()> {
        let loaded = lock(&self.tidy.auto).0.is_some();
        if !loaded {
            let c = get_json::<AutoTidyConfig>(storage.as_ref(), "config/auto-tidy").await?.unwrap_or_default();
            let mut auto = lock(&self.tidy.auto);
            if auto.0.is_none() {
                *auto = (Some(c), now());
            }
        }
        let due = {
            let mut auto = lock(&self.tidy.auto);
            let (cfg, last) = (auto.0.clone(), auto.1);
            match cfg {
                Some(c) if c.enabled && now() >= last + c.interval_duration => {
                    auto.1 = now();
                    Some(c.params)
                }
                _ => None,
            }
        };
        if let Some(p) = due {
            // A manual tidy already running: this round is skipped.
            let _ = self.start_tidy(storage.clone(), p, true);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_tidy_config_round_trips_with_flattened_params() {
        let c = AutoTidyConfig::default();
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(v["interval_duration"], 43200);
        assert_eq!(v["safety_buffer"], 259200);
        assert_eq!(serde_json::from_value::<AutoTidyConfig>(v).unwrap(), c);
    }
}

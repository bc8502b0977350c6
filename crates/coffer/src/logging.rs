//! The server's log: an output layer (stderr or `log_file`, text or JSON, colour only on a
//! terminal) whose per-logger levels can be changed at run time, and a monitor layer that
//! streams the log to `sys/monitor` clients. Implements the core's `LogControl`.

use coffer::error::StartError;
use coffer_core::logging::{LogControl, LogControlError, LogStream};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{filter, reload, EnvFilter, Layer, Registry};

/// Coffer's loggers (the names `sys/loggers` shows) and the code each covers.
const LOGGERS: &[(&str, &[&str])] = &[
    ("core", &["coffer", "coffer_core", "coffer_token"]),
    ("audit", &["coffer_audit"]),
    ("expiration", &["coffer_core::leases"]),
    ("identity", &["coffer_core::identity", "coffer_identity"]),
    ("policy", &["coffer_core::policy_store"]),
    ("ha", &["coffer_core::ha", "coffer::ha"]),
    (
        "seals",
        &["coffer_core::autoseal", "coffer_core::seal_ops", "coffer_seal", "coffer_seal_pkcs11", "coffer_seal_transit"],
    ),
    ("storage", &["coffer_barrier", "coffer_storage_file", "coffer_storage_inmem", "coffer_storage_postgresql"]),
    ("http", &["coffer_http"]),
    ("plugins", &["coffer_core::catalog", "coffer_plugin"]),
    ("secrets.kv", &["coffer_builtin_kv"]),
    ("secrets.transit", &["coffer_builtin_transit"]),
    ("secrets.totp", &["coffer_builtin_totp"]),
    ("auth.userpass", &["coffer_builtin_userpass"]),
    ("auth.approle", &["coffer_builtin_approle"]),
];

/// Third-party crates kept quiet whatever the level.
const QUIET: &str = "hyper=warn,h2=warn,rustls=warn,tokio_postgres=warn";

fn canonical_level(l: &str) -> Result<&'static str, LogControlError> {
    Ok(match l.to_ascii_lowercase().as_str() {
        "trace" => "trace",
        "debug" => "debug",
        "info" => "info",
        "warn" | "warning" => "warn",
        "error" | "err" => "error",
        "off" => "off",
        _ => return Err(LogControlError::UnknownLevel(l.to_string())),
    })
}

fn level_rank(l: &Level) -> u8 {
    match *l {
        Level::ERROR => 1,
        Level::WARN => 2,
        Level::INFO => 3,
        Level::DEBUG => 4,
        Level::TRACE => 5,
    }
}

fn rank_of(l: &str) -> u8 {
    match l {
        "off" => 0,
        "error" => 1,
        "warn" => 2,
        "info" => 3,
        "debug" => 4,
        _ => 5,
    }
}

/// The logger an event's target belongs to (the most specific match).
fn logger_of(target: &str) -> &'static str {
    let mut best: (&str, usize) = ("core", 0);
    for (name, targets) in LOGGERS {
        for t in *targets {
            let hit = target == *t || target.starts_with(&format!("{t}::"));
            if hit && t.len() > best.1 {
                best = (name, t.len());
            }
        }
    }
    best.0
}

struct Watcher {
    rank: u8,
    json: bool,
    tx: tokio::sync::mpsc::Sender<String>,
}

/// `sys/monitor` subscribers.
#[derive(Default)]
struct Hub {
    subs: Mutex<Vec<Watcher>>,
    /// The most verbose level any subscriber wants (0: none), read on every event.
    max_rank: AtomicU8,
}

impl Hub {
    fn recompute(&self, subs: &[Watcher]) {
        self.max_rank.store(subs.iter().map(|s| s.rank).max().unwrap_or(0), Ordering::Relaxed);
    }
}

#[derive(Default)]
struct Fields {
    message: String,
    pairs: Vec<(String, String)>,
}

impl Visit for Fields {
    fn record_str(&mut self, f: &Field, v: &str) {
        if f.name() == "message" {
            self.message = v.to_string();
        } else {
            self.pairs.push((f.name().to_string(), v.to_string()));
        }
    }
    fn record_debug(&mut self, f: &Field, v: &dyn std::fmt::Debug) {
        if f.name() == "message" {
            self.message = format!("{v:?}");
        } else {
            self.pairs.push((f.name().to_string(), format!("{v:?}")));
        }
    }
}

struct MonitorLayer(Arc<Hub>);

impl<S: Subscriber> Layer<S> for MonitorLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        let rank = level_rank(meta.level());
        let Ok(mut subs) = self.0.subs.lock() else { return };
        if !subs.iter().any(|s| s.rank >= rank) {
            return;
        }
        let mut f = Fields::default();
        event.record(&mut f);
        let now = time::OffsetDateTime::now_utc();
        let logger = logger_of(meta.target());
        let level = meta.level().as_str().to_ascii_lowercase();
        let (mut text, mut json) = (None, None);
        let before = subs.len();
        subs.retain(|s| {
            if s.rank < rank {
                return !s.tx.is_closed();
            }
            let line = if s.json {
                json.get_or_insert_with(|| {
                    let mut m = serde_json::Map::new();
                    m.insert("@level".into(), level.clone().into());
                    m.insert("@message".into(), f.message.clone().into());
                    m.insert("@module".into(), logger.into());
                    m.insert(
                        "@timestamp".into(),
                        now.format(&time::format_description::well_known::Rfc3339).unwrap_or_default().into(),
                    );
                    for (k, v) in &f.pairs {
                        m.insert(k.clone(), v.clone().into());
                    }
                    format!("{}\n", serde_json::Value::Object(m))
                })
                .clone()
            } else {
                text.get_or_insert_with(|| {
                    let ts = format!(
                        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
                        now.year(),
                        u8::from(now.month()),
                        now.day(),
                        now.hour(),
                        now.minute(),
                        now.second(),
                        now.millisecond()
                    );
                    let tag = format!("[{}]", meta.level().as_str());
                    let mut line = format!("{ts} {tag:<8}{logger}: {}", f.message);
                    for (i, (k, v)) in f.pairs.iter().enumerate() {
                        line.push_str(if i == 0 { ": " } else { " " });
                        line.push_str(&format!("{k}={v}"));
                    }
                    line.push('\n');
                    line
                })
                .clone()
            };
            // A slow client loses lines rather than slowing the server; a gone one is dropped.
            !matches!(s.tx.try_send(line), Err(tokio::sync::mpsc::error::TrySendError::Closed(_)))
        });
        if subs.len() != before {
            self.0.recompute(&subs);
        }
    }
}

/// The log of a running server, as `sys/loggers` and `sys/monitor` see it.
pub struct Logs {
    /// The level the server started with.
    started: &'static str,
    state: Mutex<LevelState>,
    handle: reload::Handle<EnvFilter, Registry>,
    hub: Arc<Hub>,
}

struct LevelState {
    base: &'static str,
    loggers: BTreeMap<&'static str, &'static str>,
}

impl LevelState {
    fn spec(&self) -> String {
        let mut s = format!("{},{QUIET}", self.base);
        for (name, targets) in LOGGERS {
            let l = self.loggers.get(name).copied().unwrap_or(self.base);
            for t in *targets {
                s.push_str(&format!(",{t}={l}"));
            }
        }
        s
    }
}

impl Logs {
    /// Installs the global subscriber. `file`: the `log_file` to append to instead of stderr.
    pub fn init(level: &str, json: bool, file: Option<std::fs::File>) -> Result<Arc<Logs>, StartError> {
        use std::io::IsTerminal;
        let started = canonical_level(level).map_err(StartError::LogLevel)?;
        let state = LevelState { base: started, loggers: BTreeMap::new() };
        let filter = EnvFilter::try_new(state.spec()).map_err(StartError::LogFilter)?;
        let (filter, handle) = reload::Layer::new(filter);
        let out: Box<dyn Layer<Registry> + Send + Sync> = match (file, json) {
            (Some(f), true) => {
                tracing_subscriber::fmt::layer().with_ansi(false).with_writer(Mutex::new(f)).json().boxed()
            }
            (Some(f), false) => tracing_subscriber::fmt::layer().with_ansi(false).with_writer(Mutex::new(f)).boxed(),
            (None, j) => {
                let l = tracing_subscriber::fmt::layer()
                    .with_ansi(std::io::stderr().is_terminal())
                    .with_writer(std::io::stderr);
                if j {
                    l.json().boxed()
                } else {
                    l.boxed()
                }
            }
        };
        let hub = Arc::new(Hub::default());
        let wanted = hub.clone();
        let monitor = MonitorLayer(hub.clone()).with_filter(filter::DynFilterFn::new(move |meta, _| {
            level_rank(meta.level()) <= wanted.max_rank.load(Ordering::Relaxed)
        }));
        tracing_subscriber::registry()
            .with(out.with_filter(filter))
            .with(monitor)
            .try_init()
            .map_err(StartError::LogInstall)?;
        Ok(Arc::new(Logs { started, state: Mutex::new(state), handle, hub }))
    }

    fn apply(&self, st: &LevelState) -> Result<(), LogControlError> {
        if let Ok(f) = EnvFilter::try_new(st.spec()) {
            let _ = self.handle.reload(f);
        }
        Ok(())
    }

    fn known(name: &str) -> Result<&'static str, LogControlError> {
        LOGGERS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(n, _)| *n)
            .ok_or_else(|| LogControlError::UnknownLogger(name.into()))
    }
}

impl LogControl for Logs {
    fn levels(&self) -> BTreeMap<String, String> {
        let Ok(st) = self.state.lock() else { return BTreeMap::new() };
        LOGGERS
            .iter()
            .map(|(n, _)| (n.to_string(), st.loggers.get(n).copied().unwrap_or(st.base).to_string()))
            .collect()
    }

    fn set_level(&self, logger: Option<&str>, level: &str) -> Result<(), LogControlError> {
        let level = canonical_level(level)?;
        let Ok(mut st) = self.state.lock() else { return Ok(()) };
        match logger {
            None => {
                st.base = level;
                st.loggers.clear();
            }
            Some(name) => {
                let name = Self::known(name)?;
                st.loggers.insert(name, level);
            }
        }
        self.apply(&st)
    }

    fn reset(&self, logger: Option<&str>) -> Result<(), LogControlError> {
        let Ok(mut st) = self.state.lock() else { return Ok(()) };
        match logger {
            None => {
                st.base = self.started;
                st.loggers.clear();
            }
            Some(name) => {
                let name = Self::known(name)?;
                st.loggers.insert(name, self.started);
            }
        }
        self.apply(&st)
    }

    fn subscribe(&self, level: &str, format: &str) -> Result<LogStream, LogControlError> {
        let level = canonical_level(level)?;
        let json = match format {
            "" | "standard" => false,
            "json" => true,
            other => return Err(LogControlError::UnknownFormat(other.into())),
        };
        let (tx, rx) = tokio::sync::mpsc::channel(1024);
        if let Ok(mut subs) = self.hub.subs.lock() {
            subs.push(Watcher { rank: rank_of(level), json, tx });
            self.hub.recompute(&subs);
        }
        tracing::callsite::rebuild_interest_cache();
        Ok(LogStream::new(rx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_belong_to_the_most_specific_logger() {
        assert_eq!(logger_of("coffer_audit"), "audit");
        assert_eq!(logger_of("coffer_audit::x"), "audit");
        assert_eq!(logger_of("coffer_core::identity"), "identity");
        assert_eq!(logger_of("coffer_identity"), "identity");
        assert_eq!(logger_of("coffer_core::router"), "core");
        assert_eq!(logger_of("coffer_storage_file"), "storage");
        assert_eq!(logger_of("coffer_core_other"), "core");
    }

    #[test]
    fn the_filter_names_every_logger_at_its_level() {
        let mut st = LevelState { base: "info", loggers: BTreeMap::new() };
        st.loggers.insert("audit", "debug");
        let spec = st.spec();
        assert!(spec.starts_with("info,"));
        assert!(spec.contains(",coffer_audit=debug"));
        assert!(spec.contains(",coffer_core=info"));
        assert!(EnvFilter::try_new(&spec).is_ok(), "{spec}");
    }
}

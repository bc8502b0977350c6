//! Multiplexed plugins, host side: one process serving several mounts.
//!
//! Right after the handshake the host asks the plugin `MultiplexingSupport`
//! (`pluginutil.multiplexing.PluginMultiplexing`; a plugin without the service answers
//! Unimplemented, which means no). A plugin that says yes is started once per catalog entry
//! (same binary, digest, arguments, environment and version) and shared: every mount gets an
//! id of its own, sent as the gRPC metadata `multiplex_id` on each of its calls, its own
//! brokered `Storage`/`SystemView` server and its own `Setup`, so the plugin keeps one backend
//! per mount. A mount going away sends `Cleanup` with its id; the process stops when its last
//! mount is gone. A process that dies is restarted by the first mount that notices, and every
//! mount sets itself up again on the new process before its next call.
//!
//! Plugins that do not multiplex keep a process per mount. Operators can opt plugins out by
//! name with `BAO_PLUGIN_MULTIPLEXING_OPT_OUT` (or `VAULT_PLUGIN_MULTIPLEXING_OPT_OUT`): a
//! comma-separated list, read from the server's environment, as OpenBao does.

use crate::host::{PluginClient, Slot};
use crate::proto::multiplexing::{plugin_multiplexing_client::PluginMultiplexingClient, MultiplexingSupportRequest};
use crate::{ConnectError, LaunchSpec, PluginError};
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, Weak};
use std::time::Duration;
use tonic::transport::Channel;

/// The server environment variables listing plugin names that must not be multiplexed.
pub const OPT_OUT_VARS: [&str; 2] = ["BAO_PLUGIN_MULTIPLEXING_OPT_OUT", "VAULT_PLUGIN_MULTIPLEXING_OPT_OUT"];

/// Whether `name` is listed in an opt-out variable of the server's environment.
fn opted_out(name: &str) -> bool {
    OPT_OUT_VARS
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .any(|list| list.split(',').any(|n| !n.trim().is_empty() && n.trim() == name))
}

/// Asks a freshly connected plugin whether it serves several mounts.
pub(crate) async fn multiplexing_supported(ch: &Channel, name: &str) -> Result<bool, ConnectError> {
    if opted_out(name) {
        return Ok(false);
    }
    let mut c = PluginMultiplexingClient::new(ch.clone());
    match tokio::time::timeout(Duration::from_secs(10), c.multiplexing_support(MultiplexingSupportRequest {})).await {
        Err(_) => Err(ConnectError::RpcTimeout { rpc: "MultiplexingSupport" }),
        Ok(Ok(r)) => Ok(r.into_inner().supported),
        Ok(Err(s)) if s.code() == tonic::Code::Unimplemented => Ok(false),
        Ok(Err(source)) => Err(ConnectError::Rpc { rpc: "MultiplexingSupport", source }),
    }
}

/// What makes two launches the same process: everything that was started.
#[derive(Clone, PartialEq, Eq, Hash)]
struct Key {
    name: String,
    command: std::path::PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    sha256: String,
    server_version: String,
}

impl Key {
    fn of(spec: &LaunchSpec) -> Key {
        Key {
            name: spec.name.clone(),
            command: spec.command.clone(),
            args: spec.args.clone(),
            env: spec.env.clone(),
            sha256: spec.sha256.trim().to_ascii_lowercase(),
            server_version: spec.server_version.clone(),
        }
    }
}

/// The running multiplexed processes, by what started them; each entry's lock is held while
/// its process starts, so concurrent mounts of one plugin wait for one process.
type Pool = Mutex<HashMap<Key, Arc<tokio::sync::Mutex<Weak<Slot>>>>>;

static POOL: LazyLock<Pool> = LazyLock::new(Default::default);

/// Starts a mount of the plugin `spec` describes: on the running process of the same plugin
/// when that process multiplexes, on a new process otherwise.
pub async fn launch_shared(spec: LaunchSpec) -> Result<PluginClient, PluginError> {
    let key = Key::of(&spec);
    let entry = {
        let mut pool = POOL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        pool.retain(|k, e| k == &key || e.try_lock().map(|w| w.strong_count() > 0).unwrap_or(true));
        pool.entry(key).or_default().clone()
    };
    let mut shared = entry.lock().await;
    if let Some(slot) = shared.upgrade() {
        if slot.multiplexed().await && slot.is_open() {
            drop(shared);
            tracing::debug!(plugin = %spec.name, "new mount on the running multiplexed plugin process");
            return PluginClient::on_slot(slot).await;
        }
    }
    let slot = Slot::start(spec).await?;
    if slot.multiplexed().await {
        *shared = Arc::downgrade(&slot);
    }
    drop(shared);
    PluginClient::on_slot(slot).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opt_out_lists_are_comma_separated_names() {
        // The variables are read from the environment at each start; no other test sets them.
        std::env::set_var("VAULT_PLUGIN_MULTIPLEXING_OPT_OUT", "alpha, beta,,");
        assert!(opted_out("alpha") && opted_out("beta"));
        assert!(!opted_out("alph") && !opted_out(""));
        std::env::remove_var("VAULT_PLUGIN_MULTIPLEXING_OPT_OUT");
        assert!(!opted_out("alpha"));
    }
}

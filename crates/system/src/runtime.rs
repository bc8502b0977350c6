//! System endpoints about the running server rather than its data: `sys/loggers` (log levels
//! changed at run time), `sys/monitor` (the log streamed to the client), `sys/in-flight-req`
//! (requests being served now), `sys/config/state/sanitized` (the configuration without its
//! secrets) and `sys/internal/counters/{tokens,entities}`.

use crate::logging::LogControlError;
use crate::services::SystemCore;
use crate::{obj, CoreResponse, Result};
use coffer_sdk::field::parse_string;
use coffer_sdk::{LogicalError, Operation};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// One request being served, as `sys/in-flight-req` lists it.
#[derive(Debug, Clone)]
pub struct InFlightInfo {
    pub started: std::time::SystemTime,
    pub client_remote_address: Option<std::net::SocketAddr>,
    pub request_path: String,
    pub request_method: String,
}

/// The requests being served now, by request id.
#[derive(Default)]
pub struct InFlight {
    reqs: Mutex<HashMap<u64, InFlightInfo>>,
    next: std::sync::atomic::AtomicU64,
}

/// Removes its request from the in-flight table when the request ends (dropped).
pub struct InFlightGuard {
    table: Arc<InFlight>,
    key: u64,
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        if let Ok(mut m) = self.table.reqs.lock() {
            m.remove(&self.key);
        }
    }
}

impl InFlight {
    /// Records a request until the returned guard is dropped.
    pub fn begin(self: &Arc<Self>, info: InFlightInfo) -> InFlightGuard {
        let key = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let Ok(mut m) = self.reqs.lock() {
            m.insert(key, info);
        }
        InFlightGuard { table: self.clone(), key }
    }

    fn snapshot(&self) -> Map<String, Value> {
        let Ok(m) = self.reqs.lock() else { return Map::new() };
        // The id is made only when someone reads the table, not for every request: it is the
        // request's sequence number in UUID form, unique for the life of the process.
        m.iter()
            .map(|(key, i)| {
                (
                    uuid::Uuid::from_u128(u128::from(*key)).to_string(),
                    json!({
                        "start_time": time::OffsetDateTime::from(i.started)
                            .format(&time::format_description::well_known::Rfc3339)
                            .unwrap_or_default(),
                        "client_remote_address": i.client_remote_address.map(|a| a.to_string()).unwrap_or_default(),
                        "request_path": i.request_path,
                        "request_method": i.request_method,
                        // OpenBao derives a client id from the token's entity; the table is
                        // filled before the token is looked up, so none is known here.
                        "client_id": "",
                    }),
                )
            })
            .collect()
    }
}

fn log_error(e: LogControlError) -> LogicalError {
    LogicalError::bad_request(e.to_string())
}

fn string_param(d: &Map<String, Value>, name: &str) -> Result<Option<String>> {
    d.get(name).filter(|v| !v.is_null()).map(|v| parse_string(name, v)).transpose()
}

/// `sys/loggers…`, `sys/monitor`, `sys/in-flight-req`, `sys/config/state/sanitized` and
/// `sys/internal/counters/…`.
pub(crate) async fn handle_runtime<S: SystemCore>(
    s: &S,
    op: Operation,
    path: &str,
    d: &Map<String, Value>,
) -> Result<CoreResponse> {
    use Operation::*;
    match (path, op) {
        ("sys/loggers", Read) => {
            let levels = s.log_control()?.levels();
            Ok(CoreResponse::data(levels.into_iter().map(|(k, v)| (k, Value::String(v))).collect()))
        }
        ("sys/loggers", Update | Create) => {
            let level = string_param(d, "level")?
                .filter(|l| !l.is_empty())
                .ok_or_else(|| LogicalError::bad_request("level is required"))?;
            s.log_control()?.set_level(None, &level).map_err(log_error)?;
            Ok(CoreResponse::default())
        }
        ("sys/loggers", Delete) => {
            s.log_control()?.reset(None).map_err(log_error)?;
            Ok(CoreResponse::default())
        }
        (p, op) if p.starts_with("sys/loggers/") => {
            let name = &p["sys/loggers/".len()..];
            let c = s.log_control()?;
            match op {
                Read => match c.levels().get(name) {
                    Some(l) => Ok(CoreResponse::data(obj(json!({ name: l })))),
                    None => Err(LogicalError::bad_request(format!("logger {name:?} not found"))),
                },
                Update | Create => {
                    let level = string_param(d, "level")?
                        .filter(|l| !l.is_empty())
                        .ok_or_else(|| LogicalError::bad_request("level is required"))?;
                    c.set_level(Some(name), &level).map_err(log_error)?;
                    Ok(CoreResponse::default())
                }
                Delete => {
                    c.reset(Some(name)).map_err(log_error)?;
                    Ok(CoreResponse::default())
                }
                _ => Err(LogicalError::unsupported_operation()),
            }
        }
        ("sys/monitor", Read) => {
            let level = string_param(d, "log_level")?.filter(|l| !l.is_empty()).unwrap_or_else(|| "info".into());
            let format = string_param(d, "log_format")?.filter(|l| !l.is_empty()).unwrap_or_else(|| "standard".into());
            let stream = s.log_control()?.subscribe(&level.to_lowercase(), &format).map_err(|e| match e {
                LogControlError::UnknownLevel(_) => LogicalError::bad_request("unknown log level"),
                other => log_error(other),
            })?;
            Ok(CoreResponse { stream: Some(stream), ..Default::default() })
        }
        ("sys/in-flight-req", Read) => Ok(CoreResponse::raw(s.in_flight().snapshot())),
        ("sys/config/state/sanitized", Read) => Ok(CoreResponse::data(s.sanitized_config().unwrap_or_default())),
        ("sys/internal/counters/tokens", Read) => {
            let n = s.token_count().await?;
            Ok(CoreResponse::data(obj(json!({ "counters": { "service_tokens": { "total": n } } }))))
        }
        ("sys/internal/counters/entities", Read) => {
            let n = s.entity_count().await?;
            Ok(CoreResponse::data(obj(json!({ "counters": { "entities": { "total": n } } }))))
        }
        ("sys/internal/counters/requests", Read) => {
            Err(LogicalError::bad_request("The functionality has been removed on this path"))
        }
        _ => Err(LogicalError::unsupported_operation()),
    }
}

//! The system backend: the handlers of `sys/…` (mounts, auth methods, policies, capabilities,
//! audit devices, key rotation, host and cluster information, the server's log and in-flight
//! requests), the mount tables and the policy store they act on, and the response type the
//! core answers with.
//!
//! The handlers know the core only through [`SystemCore`], the narrow list of services they
//! need from it (the barrier, the ceremonies' state, the router, the token and identity
//! stores, the subsystems it still serves itself). `coffer-core` implements it and depends on
//! this crate, never the reverse (decision 0026).
#![forbid(unsafe_code)]

pub mod catalog;
pub mod cors;
pub mod logging;
pub mod metrics;
pub mod mount_table;
pub mod password;
pub mod policy_store;
mod raw;
pub mod runtime;
mod services;
mod sys;
mod sys_acl;
pub mod tools;

pub use services::{MountTableKind, SystemCore};
pub use sys::{handle, handle_unauthenticated, host_info, hostname, mount_ttls};

use serde_json::{Map, Value};

/// The handlers' result: a logical error carries its kind (the HTTP layer picks the status).
pub type Result<T> = std::result::Result<T, coffer_sdk::LogicalError>;

/// The OpenBao API version Coffer answers as, and Coffer's own version.
pub const COMPAT_VERSION: &str = "2.7.2";
/// `2.7.2+coffer.<version>`: what `sys/seal-status`, `sys/ha-status` and snapshots name.
pub fn version_string() -> String {
    format!("{COMPAT_VERSION}+coffer.{}", env!("CARGO_PKG_VERSION"))
}
/// The build date `sys/seal-status` reports.
pub const BUILD_DATE: &str = "2026-11-26T00:00:00Z";

/// How the HTTP layer should shape the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BodyShape {
    /// The standard envelope.
    #[default]
    Envelope,
    /// The envelope with `data`'s keys also at the top level (older sys endpoints).
    EnvelopeAndTopLevel,
    /// `data` alone is the body (sys/init, sys/seal-status, …).
    Raw,
}

/// The core's answer to a request, before the HTTP layer shapes it.
#[derive(Clone, Default)]
pub struct CoreResponse {
    pub data: Option<Map<String, Value>>,
    pub warnings: Vec<String>,
    pub auth: Option<coffer_api::Auth>,
    pub lease_id: String,
    pub lease_duration: i64,
    pub renewable: bool,
    pub mount_type: String,
    pub shape: BodyShape,
    pub wrap_info: Option<coffer_api::WrapInfo>,
    /// A body served as is (content type, bytes), e.g. Prometheus metrics.
    pub raw_body: Option<(String, Vec<u8>)>,
    /// The status the answer goes out with (the HTTP layer picks the code).
    pub status: coffer_sdk::ResponseStatus,
    /// Lines streamed as the body until the client goes (`sys/monitor`).
    pub stream: Option<logging::LogStream>,
    /// A raw answer's exact status code (`http_status_code`), when the backend set one.
    pub raw_status_code: Option<u16>,
    /// A raw answer's headers (`http_headers`), those the mount's `allowed_response_headers`
    /// lets through (as OpenBao filters them: ACME's `Replay-Nonce`, `Location`, `Link`).
    /// (Boxed: most answers have none, and every request's future carries this struct.)
    pub raw_headers: Option<Box<Vec<(String, String)>>>,
}

impl CoreResponse {
    /// `data` alone is the body.
    pub fn raw(data: Map<String, Value>) -> Self {
        CoreResponse { data: Some(data), shape: BodyShape::Raw, ..Default::default() }
    }
    /// `data` in the standard envelope.
    pub fn data(data: Map<String, Value>) -> Self {
        CoreResponse { data: Some(data), ..Default::default() }
    }
    /// `data` in the envelope and at the top level (older `sys/` endpoints).
    pub fn legacy(data: Map<String, Value>) -> Self {
        CoreResponse { data: Some(data), shape: BodyShape::EnvelopeAndTopLevel, ..Default::default() }
    }

    /// Adds OpenBao's warning naming the parameters the endpoint ignored, as its framework
    /// does: only to an answer with an enveloped body (data, auth or warnings), never to a raw,
    /// streamed, wrapped, 202 or empty (204) one.
    pub fn warn_ignored(&mut self, ignored: &[String]) {
        let enveloped = self.shape != BodyShape::Raw
            && self.raw_body.is_none()
            && self.stream.is_none()
            && self.wrap_info.is_none()
            && self.status != coffer_sdk::ResponseStatus::Accepted;
        if !ignored.is_empty() && enveloped && (self.data.is_some() || self.auth.is_some() || !self.warnings.is_empty())
        {
            self.warnings.push(coffer_sdk::framework::ignored_parameters_warning(ignored));
        }
    }
}

impl std::fmt::Debug for CoreResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CoreResponse")
            .field("data_keys", &self.data.as_ref().map(|d| d.keys().collect::<Vec<_>>()))
            .field("auth", &self.auth.as_ref().map(|_| "<redacted>"))
            .field("shape", &self.shape)
            .finish_non_exhaustive()
    }
}

/// The object inside a `json!` value (empty for anything else).
pub(crate) fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

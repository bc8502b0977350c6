//! Plugins declared in the server configuration (`plugin "type" "name" { … }`, OpenBao's
//! declarative plugins): checked at start, before storage is opened or any listener answers.
//!
//! With `plugin_auto_download`, a stanza's `url` is downloaded into `plugin_directory` unless
//! a file with the pinned `sha256sum` (and a signature by `public_key`, when given) is there
//! already; `coffer_cli::fetch` does the download, the size cap (`plugin_download_max_size`)
//! and the checks, so nothing unchecked is ever executable. With `plugin_auto_register`, every
//! stanza whose file is there and matches becomes a catalog entry, which the core writes at
//! each unseal. A stanza that does not match stops the start with a message naming it, except
//! a failed download under `plugin_download_behavior = "warn"`, which is logged and skipped.

use crate::error::StartError;
use coffer_cli::fetch;
use coffer_config::{PluginDecl, ServerConfig, DEFAULT_PLUGIN_DOWNLOAD_MAX_SIZE};
use coffer_core::catalog::CatalogEntry;
use std::path::Path;

/// Why one stanza's plugin cannot be used: a failed download or signature (the fetch error
/// kept as the cause, after a prefix saying which key it concerns), or a file that does not
/// match the stanza.
#[derive(Debug, thiserror::Error)]
enum DeclError {
    #[error("{0}{1}")]
    Fetch(&'static str, #[source] fetch::FetchError),
    #[error("{0}")]
    Check(String),
}

/// The trusted key and signature of a stanza that has `public_key`.
fn trust_for(d: &PluginDecl, dir: &Path, agent: &fetch::Agent) -> Result<Option<fetch::Trust>, DeclError> {
    let Some(key) = &d.public_key else { return Ok(None) };
    let public_key = fetch::parse_public_key(key).map_err(|e| DeclError::Fetch("public_key: ", e))?;
    let source = match (&d.signature, &d.url) {
        (Some(s), _) => s.clone(),
        (None, Some(u)) => format!("{u}.minisig"),
        (None, None) => dir.join(format!("{}.minisig", d.file_name())).display().to_string(),
    };
    let signature = fetch::load_signature(agent, &source)
        .map_err(|e| DeclError::Fetch("public_key is set, so a signature is required: ", e))?;
    Ok(Some(fetch::Trust { public_key, signature, signature_source: source }))
}

/// Installs one stanza's binary when it is missing (or differs) and `download` allows it;
/// checks it otherwise. Returns whether it was downloaded.
fn install(
    d: &PluginDecl,
    cfg: &ServerConfig,
    dir: &Path,
    agent: &fetch::Agent,
    download: bool,
) -> Result<bool, DeclError> {
    let trust = trust_for(d, dir, agent)?;
    let file = d.file_name();
    let path = dir.join(&file);
    let present = fetch::check_present(&path, &d.sha256sum, trust.as_ref()).map_err(|e| DeclError::Fetch("", e))?;
    let download_from = d.url.as_deref().filter(|_| download);
    match (present, download_from) {
        (fetch::Present::Matches, _) => {
            tracing::info!(plugin = %d.name, path = %path.display(), "declared plugin already present with its sha256sum");
            return Ok(false);
        }
        (fetch::Present::Differs(have), None) => {
            return Err(DeclError::Check(format!(
                "{} has SHA-256 {have}, not the declared sha256sum {}",
                path.display(),
                d.sha256sum
            )))
        }
        (fetch::Present::Absent, None) => {
            let why = if d.url.is_some() { " (plugin_auto_download is false, so it is not downloaded)" } else { "" };
            return Err(DeclError::Check(format!("{} is not in the plugin directory{why}", path.display())));
        }
        (fetch::Present::Differs(have), Some(_)) => {
            tracing::warn!(plugin = %d.name, path = %path.display(), found = %have, "declared plugin file differs from its sha256sum: downloading it again");
        }
        (fetch::Present::Absent, Some(_)) => {}
    }
    let url = download_from.unwrap_or_default();
    let max_size = cfg.plugin_download_max_size.unwrap_or(DEFAULT_PLUGIN_DOWNLOAD_MAX_SIZE);
    let size = fetch::download(
        agent,
        &fetch::Download { url, dir, file_name: &file, sha256: &d.sha256sum, max_size, trust: trust.as_ref() },
    )
    .map_err(|e| DeclError::Fetch("", e))?;
    tracing::info!(plugin = %d.name, url, path = %path.display(), size, sha256 = %d.sha256sum, signed = trust.is_some(), "downloaded declared plugin");
    Ok(true)
}

/// Checks (and with `plugin_auto_download`, downloads) every declared plugin; returns the
/// catalog entries to register (none unless `plugin_auto_register`).
pub fn prepare(cfg: &ServerConfig) -> Result<Vec<CatalogEntry>, StartError> {
    if cfg.plugins.is_empty() {
        return Ok(Vec::new());
    }
    if !cfg.plugin_auto_download && !cfg.plugin_auto_register {
        tracing::warn!(
            count = cfg.plugins.len(),
            "plugin stanzas are declared but plugin_auto_download and plugin_auto_register are both false: \
             they are neither downloaded nor registered (as in OpenBao)"
        );
        return Ok(Vec::new());
    }
    let dir = cfg.plugin_directory.as_deref().filter(|d| !d.is_empty()).ok_or_else(|| {
        StartError::Plugin("plugin stanzas are declared but no plugin_directory is configured".into())
    })?;
    let dir = Path::new(dir);
    if cfg.plugin_auto_download && !dir.is_dir() {
        std::fs::create_dir_all(dir)
            .map_err(|e| StartError::Plugin(format!("cannot create plugin_directory {}: {e}", dir.display())))?;
    }
    let agent = fetch::agent(true, None, false).map_err(|e| StartError::Plugin(e.to_string()))?;
    let mut entries = Vec::new();
    for d in &cfg.plugins {
        if let Err(e) = install(d, cfg, dir, &agent, cfg.plugin_auto_download) {
            let msg = format!("{}: {e}", d.label());
            let is_download = d.url.is_some() && cfg.plugin_auto_download;
            if is_download && cfg.plugin_download_warn == Some(true) {
                tracing::warn!("{msg} (plugin_download_behavior = \"warn\": starting without it)");
                continue;
            }
            return Err(StartError::Plugin(msg));
        }
        if cfg.plugin_auto_register {
            entries.push(CatalogEntry {
                name: d.name.clone(),
                plugin_type: d.plugin_type.clone(),
                command: d.file_name(),
                args: d.args.clone(),
                env: d.env.clone(),
                sha256: d.sha256sum.clone(),
                version: d.version.clone(),
                declarative: true,
            });
        }
    }
    Ok(entries)
}

/// `coffer plugin init` (OpenBao's `bao plugin init`): downloads and checks every declared
/// plugin into `dir` (the configuration's `plugin_directory` unless given), whatever
/// `plugin_auto_download` says, and registers nothing. Returns one line per stanza, or the
/// first failure, naming its stanza.
pub fn init(cfg: &ServerConfig, dir: Option<&str>) -> Result<Vec<String>, StartError> {
    if cfg.plugins.is_empty() {
        return Err(StartError::Plugin("the configuration declares no plugin stanza".into()));
    }
    let dir = dir
        .or(cfg.plugin_directory.as_deref())
        .filter(|d| !d.is_empty())
        .ok_or_else(|| StartError::Plugin("no plugin directory: give -directory or set plugin_directory".into()))?;
    let dir = Path::new(dir);
    std::fs::create_dir_all(dir)
        .map_err(|e| StartError::Plugin(format!("cannot create the plugin directory {}: {e}", dir.display())))?;
    let agent = fetch::agent(true, None, false).map_err(|e| StartError::Plugin(e.to_string()))?;
    let mut lines = Vec::new();
    for d in &cfg.plugins {
        let fetched =
            install(d, cfg, dir, &agent, true).map_err(|e| StartError::Plugin(format!("{}: {e}", d.label())))?;
        let what = if fetched { "downloaded and checked" } else { "already present and checked" };
        lines.push(format!(
            "{} {} {}: {what} ({})",
            d.plugin_type,
            d.name,
            d.version,
            dir.join(d.file_name()).display()
        ));
    }
    Ok(lines)
}

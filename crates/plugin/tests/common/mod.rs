//! Helpers shared by the integration tests.
#![allow(dead_code)]

use async_trait::async_trait;
use coffer_sdk::{Operation, Request, StorageView, SystemInfo, SystemServices};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// The example plugin binary, built by cargo next to this test's binary (`cargo test -p
/// coffer-plugin -p coffer-plugin-example`, or the whole workspace, builds it).
pub fn example_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let profile_dir = exe.parent().and_then(|d| d.parent()).expect("target/<profile>/deps/<test>");
    let bin = profile_dir.join("coffer-plugin-example");
    assert!(
        bin.is_file(),
        "{} is missing: build it first (cargo test -p coffer-plugin -p coffer-plugin-example builds it)",
        bin.display()
    );
    bin
}

pub fn sha256_hex(path: &std::path::Path) -> String {
    let bytes = std::fs::read(path).unwrap();
    hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &bytes).as_ref())
}

/// Whether a process with this pid still exists (a zombie counts as gone).
pub fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat.rsplit_once(')').map(|(_, rest)| rest.trim_start().chars().next()).unwrap_or(None);
            !matches!(state, Some('Z') | Some('X'))
        }
        Err(_) => false,
    }
}

pub fn kill9(pid: u32) {
    let st = std::process::Command::new("kill").args(["-9", &pid.to_string()]).status().unwrap();
    assert!(st.success(), "kill -9 {pid} failed");
}

#[derive(Default)]
pub struct Mem(pub Mutex<BTreeMap<String, Vec<u8>>>);

#[async_trait]
impl StorageView for Mem {
    async fn get(&self, key: &str) -> coffer_sdk::Result<Option<Vec<u8>>> {
        Ok(self.0.lock().unwrap().get(key).cloned())
    }
    async fn put(&self, key: &str, value: &[u8]) -> coffer_sdk::Result<()> {
        self.0.lock().unwrap().insert(key.to_string(), value.to_vec());
        Ok(())
    }
    async fn delete(&self, key: &str) -> coffer_sdk::Result<()> {
        self.0.lock().unwrap().remove(key);
        Ok(())
    }
    async fn list(&self, prefix: &str) -> coffer_sdk::Result<Vec<String>> {
        let m = self.0.lock().unwrap();
        let mut out: Vec<String> = Vec::new();
        for k in m.keys().filter_map(|k| k.strip_prefix(prefix)) {
            let item = match k.find('/') {
                Some(i) => k[..=i].to_string(),
                None => k.to_string(),
            };
            if out.last() != Some(&item) {
                out.push(item);
            }
        }
        Ok(out)
    }
}

/// A password-policy service that answers with a fixed text.
pub struct FixedPasswords;

#[async_trait]
impl SystemServices for FixedPasswords {
    async fn generate_password(&self, policy: &str) -> coffer_sdk::Result<String> {
        if policy == "strict" {
            Ok("P@ssw0rd-from-the-host".to_string())
        } else {
            Err(coffer_sdk::LogicalError::bad_request(format!("unknown password policy {policy:?}")))
        }
    }
}

pub fn req(storage: &Arc<Mem>, op: Operation, path: &str, data: Value) -> Request {
    Request {
        operation: op,
        path: path.to_string(),
        data: data.as_object().cloned().unwrap_or_else(Map::new),
        mount_point: "pp/".into(),
        storage: storage.clone(),
        system: SystemInfo { default_lease_ttl: 3600, max_lease_ttl: 7200 },
        remote_addr: None,
        services: Some(Arc::new(FixedPasswords)),
        client_certs: None,
        display_name: String::new(),
        entity_id: String::new(),
    }
}

//! Python tools the end-to-end tests use (openapi-spec-validator, schemathesis): found, or
//! installed from PyPI with pip when missing.
#![allow(dead_code)]

use std::process::Command;

fn importable(module: &str) -> bool {
    Command::new("python3").args(["-c", &format!("import {module}")]).output().is_ok_and(|o| o.status.success())
}

fn pip_install(package: &str, extra: &[&str]) -> bool {
    Command::new("python3")
        .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", package])
        .args(extra)
        .env("PIP_ROOT_USER_ACTION", "ignore")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Whether `import module` works, installing `package` first if it does not. Without it the
/// test fails when COFFER_REQUIRE_BAO is set (CI, scripts/test) and is skipped otherwise.
pub fn ensure(module: &str, package: &str) -> bool {
    if importable(module) {
        return true;
    }
    // One pip at a time, across threads and test binaries: two installs sharing a dependency
    // (certbot and hvac both pull in `cryptography`) interleave their files and leave it broken
    // (seen on a fresh machine: cryptography's Python half from one version, its Rust half
    // from another). The lock is released when the file is dropped.
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(std::env::temp_dir().join("coffer-tests-pip.lock"))
        .expect("open the pip lock file");
    lock.lock().expect("take the pip lock");
    if importable(module) {
        return true;
    }
    eprintln!("installing {package} from PyPI");
    // Debian's python3 is "externally managed" (PEP 668): pip must be told explicitly.
    if (pip_install(package, &[]) || pip_install(package, &["--break-system-packages"])) && importable(module) {
        return true;
    }
    if std::env::var("COFFER_REQUIRE_BAO").is_ok_and(|v| !v.is_empty() && v != "0") {
        panic!("python3 module {module} is required (python3 -m pip install {package})");
    }
    eprintln!("SKIPPED: python3 module {module} not available (python3 -m pip install {package})");
    false
}

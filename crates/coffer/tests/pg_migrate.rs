//! `coffer operator migrate`: file → postgresql → file round trip keeps every entry byte for
//! byte, the migrated servers unseal with the original keys and serve the data to `bao`, and a
//! destination that already holds an initialised Coffer is refused unless `-force` is given.
//!
//! Needs `COFFER_TEST_PG_URL` (see pg_storage.rs); skipped with a notice when it is unset.
mod common;
use coffer_physical::Storage;
use common::*;
use std::collections::BTreeMap;
use std::path::Path;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// Every (key, value) of a backend, walking the listing tree.
async fn dump(s: &dyn Storage) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![String::new()];
    while let Some(p) = stack.pop() {
        for c in s.list(&p).await.unwrap() {
            let full = format!("{p}{c}");
            if let Some(v) = s.get(&full).await.unwrap() {
                out.insert(full.clone(), v);
            }
            if full.ends_with('/') {
                stack.push(full);
            }
        }
    }
    out
}

async fn dump_file(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let s = coffer_storage_file::FileStorage::open(dir).unwrap();
    dump(&s).await
}

async fn dump_pg(url: &str, table: &str) -> BTreeMap<String, Vec<u8>> {
    let mut o = coffer_storage_postgresql::PgOptions::with_url(url);
    o.table = table.into();
    let s = coffer_storage_postgresql::PgStorage::open(o).await.unwrap();
    dump(&s).await
}

fn migrate(dir: &Path, name: &str, src: &str, dst: &str, extra: &[&str]) -> std::process::Output {
    let cfg = dir.join(name);
    std::fs::write(&cfg, format!("storage_source {src}\nstorage_destination {dst}\n")).unwrap();
    let mut args = vec!["operator".to_string(), "migrate".into(), format!("-config={}", cfg.display())];
    args.extend(extra.iter().map(|s| s.to_string()));
    std::process::Command::new(coffer_bin()).args(&args).output().unwrap()
}

fn server_config(dir: &Path, storage: &str) -> std::path::PathBuf {
    let config = tempfile::Builder::new().prefix("server-").suffix(".hcl").tempfile_in(dir).unwrap().into_temp_path();
    let config = config.keep().unwrap();
    std::fs::write(
        &config,
        format!(
            "storage {storage}\nlistener \"tcp\" {{\n  address = \"127.0.0.1:0\"\n  tls_disable = true\n}}\ndisable_mlock = true\n"
        ),
    )
    .unwrap();
    config
}

#[test]
fn migration_file_to_postgresql_to_file_keeps_every_entry_and_the_keys() {
    let Some(url) = pg_url() else { return };
    let Some(bao) = bao_path() else { return };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let n = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() % 1_000_000_000;
    let table = format!("t_migrate_{}_{n}", std::process::id());

    // A file-backed server with some state: a KV v2 mount, secrets with versions, a policy.
    let mut s = Server::start_file(d);
    let (keys, root) = init_unseal(&s.addr);
    let o = cli(&bao, &s.addr, Some(&root), &["secrets", "enable", "-path=secret", "-version=2", "kv"]);
    assert!(o.status.success(), "{}", out(&o));
    for i in 0..20 {
        for v in 0..2 {
            let o = cli(&bao, &s.addr, Some(&root), &["kv", "put", &format!("secret/app/{i}"), &format!("v={i}-{v}")]);
            assert!(o.status.success(), "{}", out(&o));
        }
    }
    let pol = d.join("p.hcl");
    std::fs::write(&pol, "path \"secret/*\" { capabilities = [\"read\"] }\n").unwrap();
    let o = cli(&bao, &s.addr, Some(&root), &["policy", "write", "reader", pol.to_str().unwrap()]);
    assert!(o.status.success(), "{}", out(&o));
    s.kill9();
    std::thread::sleep(std::time::Duration::from_millis(300));

    let src_file = format!("\"file\" {{\n  path = \"{}\"\n}}", d.join("data").display());
    let pg = format!("\"postgresql\" {{\n  connection_url = \"{url}\"\n  table = \"{table}\"\n}}");
    let back_file = format!("\"file\" {{\n  path = \"{}\"\n}}", d.join("back").display());

    let o = migrate(d, "m1.hcl", &src_file, &pg, &[]);
    assert!(o.status.success(), "file → postgresql: {}", out(&o));
    assert!(out(&o).contains("Success!"), "{}", out(&o));
    let o = migrate(d, "m2.hcl", &pg, &back_file, &[]);
    assert!(o.status.success(), "postgresql → file: {}", out(&o));

    let rt = rt();
    let original = rt.block_on(dump_file(&d.join("data")));
    let in_pg = rt.block_on(dump_pg(&url, &table));
    let round_trip = rt.block_on(dump_file(&d.join("back")));
    assert!(original.len() > 40, "expected a populated store, got {} entries", original.len());
    assert!(original.contains_key("core/seal-config") && original.contains_key("core/keyring"));
    assert_eq!(original, in_pg, "postgresql holds every entry byte for byte");
    assert_eq!(original, round_trip, "the round trip holds every entry byte for byte");
    drop(rt);

    // Both migrated copies unseal with the original keys and serve the data.
    for storage in [back_file.clone(), pg.clone()] {
        let config = server_config(d, &storage);
        let s = Server::start_with_config(&config);
        unseal(&s.addr, &keys[2..5]);
        for i in [0, 7, 19] {
            let o = cli(&bao, &s.addr, Some(&root), &["kv", "get", "-field=v", &format!("secret/app/{i}")]);
            assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), format!("{i}-1"), "{}", out(&o));
        }
        let o = cli(&bao, &s.addr, Some(&root), &["policy", "read", "reader"]);
        assert!(out(&o).contains("secret/*"), "{}", out(&o));
    }

    // The destination now holds an initialised Coffer: a second migration into it is refused…
    let o = migrate(d, "m3.hcl", &src_file, &pg, &[]);
    assert!(!o.status.success(), "must refuse: {}", out(&o));
    assert!(out(&o).contains("core/seal-config"), "{}", out(&o));
    // …unless told otherwise.
    let o = migrate(d, "m4.hcl", &src_file, &pg, &["-force"]);
    assert!(o.status.success(), "{}", out(&o));
}

/// Bad migration configurations are refused with a message, before anything is copied.
#[test]
fn migration_config_errors_are_clear() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cfg = d.join("bad.hcl");
    std::fs::write(&cfg, format!("storage_source \"file\" {{\n  path = \"{}\"\n}}\n", d.display())).unwrap();
    let o = std::process::Command::new(coffer_bin())
        .args(["operator", "migrate", &format!("-config={}", cfg.display())])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(out(&o).contains("missing storage_destination"), "{}", out(&o));
    let o = migrate(d, "m.hcl", "\"consul\" {\n}", "\"inmem\" {\n}", &[]);
    assert!(!o.status.success());
    assert!(out(&o).contains("unknown storage type \"consul\""), "{}", out(&o));
}

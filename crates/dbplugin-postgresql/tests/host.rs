//! Coffer's host side of the database plugin protocol (`coffer_plugin::launch_database`) drives
//! the built-in PostgreSQL plugin, built as an external plugin binary, against a real PostgreSQL: users it issues log in with `psql`,
//! password changes take effect, deleted users cannot log in, a killed process is restarted. Needs `COFFER_TEST_PG_URL` (a
//! user with CREATEROLE; scripts/test sets it) and skips without it.

mod common;

use coffer_plugin::{launch_database, sha256_file, LaunchSpec};
use coffer_sdk::database::{
    ChangePassword, CredentialType, Database, DeleteUserRequest, InitializeRequest, NewUserRequest, SecretString,
    Statements, UpdateUserRequest, UsernameMetadata,
};
use common::{plugin_binary, Pg, CREATE};
use serde_json::json;
use std::time::{Duration, SystemTime};

fn spec() -> LaunchSpec {
    let bin = plugin_binary();
    LaunchSpec { sha256: sha256_file(&bin).unwrap(), ..LaunchSpec::new(bin) }
}

#[tokio::test]
async fn coffer_host_drives_the_external_postgresql_plugin_to_create_change_and_drop_real_logins() {
    let Some(pg) = Pg::from_env() else { return };
    let db = launch_database(spec()).await.expect("the plugin starts and answers Type");
    assert_eq!(db.type_name(), "postgresql-database-plugin");
    assert_eq!(db.version().await.unwrap(), format!("v{}", env!("CARGO_PKG_VERSION")));

    let config = json!({ "connection_url": pg.template(), "username": pg.user, "password": pg.password });
    let out = db
        .initialize(InitializeRequest { config: config.as_object().unwrap().clone(), verify_connection: true })
        .await
        .expect("initialize");
    assert_eq!(out.config["username"], json!(pg.user), "the stored configuration comes back");

    let created = db
        .new_user(NewUserRequest {
            username_config: UsernameMetadata { display_name: "token".into(), role_name: "readonly".into() },
            credential_type: CredentialType::Password,
            password: Some(SecretString::new("Fir5t-passw0rd")),
            expiration: Some(SystemTime::now() + Duration::from_secs(3600)),
            statements: Statements { commands: vec![CREATE.into()] },
            ..Default::default()
        })
        .await
        .expect("new user");
    let user = created.username;
    assert!(user.starts_with("v-token-readonly-"), "{user}");
    assert_eq!(pg.login(&user, "Fir5t-passw0rd").as_deref(), Ok(user.as_str()));

    db.update_user(UpdateUserRequest {
        username: user.clone(),
        password: Some(ChangePassword {
            new_password: SecretString::new("Sec0nd-passw0rd"),
            statements: Default::default(),
        }),
        ..Default::default()
    })
    .await
    .expect("update user");
    assert_eq!(pg.login(&user, "Sec0nd-passw0rd").as_deref(), Ok(user.as_str()));
    assert!(pg.login(&user, "Fir5t-passw0rd").is_err(), "the old password no longer works");

    // The process killed with SIGKILL: the next call starts it again, initialized with the
    // last configuration, and succeeds.
    let before = db.pid().await;
    let st = std::process::Command::new("kill").args(["-9", &before.to_string()]).status().unwrap();
    assert!(st.success());
    db.delete_user(DeleteUserRequest { username: user.clone(), statements: Default::default() }).await.expect("delete");
    assert_eq!(db.restarts(), 1);
    assert_ne!(db.pid().await, before);
    assert!(!pg.role_exists(&user));
    assert!(pg.login(&user, "Sec0nd-passw0rd").is_err());

    // The plugin's errors keep their kind: bad input is a 400, not an internal error.
    let err = db
        .initialize(InitializeRequest {
            config: json!({ "connection_url": pg.template(), "pool_size": 3 }).as_object().unwrap().clone(),
            verify_connection: false,
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind, coffer_sdk::ErrorKind::BadRequest);
    assert!(err.to_string().contains("pool_size"), "{err}");

    let pid = db.pid().await;
    db.close().await.expect("close");
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "close stops and reaps the process");
}

#[tokio::test]
async fn a_binary_whose_digest_does_not_match_is_not_started() {
    let s = LaunchSpec { sha256: "00".repeat(32), ..spec() };
    let err = launch_database(s).await.unwrap_err();
    assert!(err.to_string().contains("SHA-256"), "{err}");
}

#[tokio::test]
async fn the_binary_refuses_to_run_by_hand_or_under_a_backend_plugin_cookie() {
    // Started by hand (no cookie), the binary explains itself and exits non-zero.
    let out = std::process::Command::new(plugin_binary()).env_clear().output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("database plugin"));
    assert!(out.stdout.is_empty(), "nothing but a handshake ever goes to stdout");
    let out = std::process::Command::new(plugin_binary())
        .env_clear()
        .env(coffer_plugin::MAGIC_COOKIE_KEY, coffer_plugin::MAGIC_COOKIE_VALUE)
        .output()
        .unwrap();
    assert!(!out.status.success(), "a backend plugin host's cookie does not start a database plugin");
}

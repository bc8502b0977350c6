//! Response wrapping from the coffer CLI, as the bao CLI does it: `write sys/wrapping/wrap`
//! wraps for 5 minutes by default, `-wrap-ttl` wraps any answer, the table shows the wrapping
//! token, and `coffer unwrap` takes the token as an argument or as the client's own token.
mod common;
use common::*;

fn token_of(table: &str) -> String {
    table
        .lines()
        .find_map(|l| l.strip_prefix("wrapping_token:"))
        .map(|t| t.trim().to_string())
        .unwrap_or_else(|| panic!("no wrapping token in:\n{table}"))
}

#[test]
fn coffer_cli_wraps_and_unwraps_like_bao() {
    let s = Server::start_dev("root");
    let coffer = coffer_bin();
    let ok = |token: &str, args: &[&str]| {
        let o = cli(coffer, &s.addr, Some(token), args);
        assert!(o.status.success(), "coffer {args:?}: {}", out(&o));
        String::from_utf8_lossy(&o.stdout).to_string()
    };
    let table = ok("root", &["write", "sys/wrapping/wrap", "db=s3cret"]);
    assert!(table.contains("wrapping_token_ttl:") && table.contains("5m"), "{table}");
    assert!(table.contains("sys/wrapping/wrap"), "{table}");
    let unwrapped = ok("root", &["unwrap", &token_of(&table)]);
    assert!(unwrapped.contains("db") && unwrapped.contains("s3cret"), "{unwrapped}");

    // -wrap-ttl wraps a read; the application unwraps with the wrapping token as its own token.
    ok("root", &["kv", "put", "secret/app", "pw=1"]);
    let table = ok("root", &["read", "-wrap-ttl=90s", "secret/data/app"]);
    assert!(table.contains("1m30s"), "{table}");
    let wrapping = token_of(&table);
    let unwrapped = ok(&wrapping, &["unwrap", "-format=json"]);
    assert_eq!(json(&unwrapped)["data"]["data"]["pw"], "1", "{unwrapped}");
    let again = cli(coffer, &s.addr, Some(&wrapping), &["unwrap"]);
    assert_eq!(again.status.code(), Some(2), "single use: {}", out(&again));
}

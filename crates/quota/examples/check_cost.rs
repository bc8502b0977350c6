//! What a rate-limit check costs when quotas are defined but none matches (issue #22 asks for
//! almost nothing): `cargo run --release -p coffer-quota --example check_cost`.
//! Prints nanoseconds per `Quotas::check_rate` call for: no quota at all, two quotas on other
//! mounts, and a matching quota (the budget is spent, so most calls are refusals).
use coffer_quota::{QuotaConfig, Quotas, RateLimitQuota, Scope, Target};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

fn quota(name: &str, path: &str) -> (RateLimitQuota, Scope) {
    let q = RateLimitQuota {
        name: name.into(),
        path: path.into(),
        role: String::new(),
        rate: 1_000_000.0,
        interval: 1,
        block_interval: 0,
    };
    let scope = Scope::resolve(path, |p| {
        ["kv2/", "transit/", "sys/"].iter().find(|m| p.starts_with(**m)).map(|m| m.to_string())
    })
    .unwrap();
    (q, scope)
}

fn per_call(q: &Quotas, n: u32) -> f64 {
    let client = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
    let t = Instant::now();
    let mut allowed = 0u32;
    for _ in 0..n {
        let v = q.check_rate(Target { path: "kv2/data/bench/read", mount: "kv2/" }, client, Instant::now());
        allowed += u32::from(v.is_some_and(|v| v.allowed));
    }
    std::hint::black_box(allowed);
    t.elapsed().as_nanos() as f64 / f64::from(n)
}

fn main() {
    let n = 2_000_000;
    let q = Quotas::new();
    println!("no quota defined:            {:6.1} ns per check", per_call(&q, n));
    q.install(QuotaConfig::initial(), vec![quota("a", "transit/"), quota("b", "sys/")], vec![], |_, _| 0);
    println!("two quotas on other mounts:  {:6.1} ns per check", per_call(&q, n));
    q.install(QuotaConfig::initial(), vec![quota("a", "transit/"), quota("c", "kv2/data/bench/*")], vec![], |_, _| 0);
    println!("a matching quota:            {:6.1} ns per check", per_call(&q, n));
}

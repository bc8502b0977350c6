//! Fencing of the HA active node's writes (decision 0025), on a real PostgreSQL: a node whose
//! lock was taken over while it still believed it held it (its lock connection partitioned
//! through a proxy, its backend terminated) has every write refused and applied nowhere, and
//! is told to step down; the new holder's fenced writes keep the storage contract.
//!
//! Needs `COFFER_TEST_PG_URL` (scripts/test starts a server and sets it); skipped with a notice
//! when it is unset.
#[path = "../../coffer/tests/common/pg_proxy.rs"]
mod pg_proxy;
use coffer_physical::{Storage, TxnOp};
use coffer_storage_postgresql::{HaLock, LockHeld, PgOptions, PgStorage};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn pg_url() -> Option<String> {
    match std::env::var("COFFER_TEST_PG_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            eprintln!("NOTICE: COFFER_TEST_PG_URL is not set: PostgreSQL tests skipped (scripts/test sets it)");
            None
        }
    }
}

async fn open(url: &str, table: &str, ha: bool) -> PgStorage {
    let mut o = PgOptions::with_url(url);
    o.table = table.to_string();
    o.ha_table = format!("{table}_ha");
    o.ha_enabled = ha;
    PgStorage::open(o).await.expect("COFFER_TEST_PG_URL is set but PostgreSQL is not usable")
}

async fn admin(url: &str) -> tokio_postgres::Client {
    let (c, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    c
}

async fn acquire(lock: &HaLock, who: &str) -> LockHeld {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(held) = lock.try_acquire(who, &format!("http://{who}"), "{}").await.unwrap() {
            return held;
        }
        assert!(Instant::now() < deadline, "{who} could not take the HA lock");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn fresh_name(tag: &str) -> String {
    let n = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() % 1_000_000_000;
    format!("t_fence_{tag}_{}_{n}", std::process::id())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_of_a_node_whose_lock_was_taken_over_are_refused_and_never_applied() {
    let Some(url) = pg_url() else { return };
    let table = fresh_name("stale");
    let (proxied, proxy) = pg_proxy::proxied(&url);
    let a = open(&proxied, &table, true).await;
    let b = open(&url, &table, true).await;
    let (lock_a, lock_b) = (a.ha_lock(), b.ha_lock());
    let mut held_a = acquire(&lock_a, "a").await;
    let gen_a = held_a.generation();
    a.put("before", b"1".to_vec()).await.unwrap();
    a.transaction(vec![TxnOp::Put { key: "t/x".into(), value: b"x".to_vec() }]).await.unwrap();

    // The partition: a's lock connection goes silent (a is not told), and PostgreSQL ends
    // that session, which frees the advisory lock.
    let db = admin(&url).await;
    let row = db
        .query_one(
            &format!(
                "SELECT h.pid, s.client_port FROM \"{table}_ha\" h JOIN pg_stat_activity s ON s.pid = h.pid \
                 WHERE h.ha_key = 'core/lock'"
            ),
            &[],
        )
        .await
        .unwrap();
    let (pid, port): (i32, i32) = (row.get(0), row.get(1));
    assert!(proxy.black_hole(port as u16), "a's lock connection goes through the proxy");
    db.execute("SELECT pg_terminate_backend($1)", &[&pid]).await.unwrap();

    let held_b = acquire(&lock_b, "b").await;
    assert_eq!(held_b.generation(), gen_a + 1, "taking the lock increments the generation");
    b.put("from-b", b"b".to_vec()).await.unwrap();
    // A third node contending while b holds the lock is a standby: it may not write.
    let c = open(&url, &table, true).await;
    assert!(c.ha_lock().try_acquire("c", "http://c", "{}").await.unwrap().is_err(), "b holds the lock");
    let e = c.put("from-c", b"c".to_vec()).await.unwrap_err().to_string();
    assert!(e.contains("refused") && e.contains("standby"), "{e}");
    assert_eq!(b.get("from-c").await.unwrap(), None);
    assert!(!held_a.is_lost(), "a still believes it holds the lock (its ping has not timed out)");

    // a's writes: refused, naming why, and not applied.
    let e = a.put("from-a", b"a".to_vec()).await.unwrap_err().to_string();
    assert!(e.contains("refused") && e.contains(&format!("generation {gen_a}")), "{e}");
    // a is told to step down at once (not after its ping's timeout).
    tokio::time::timeout(Duration::from_millis(500), held_a.lost()).await.expect("a stale write makes a step down");
    assert!(a.delete("before").await.unwrap_err().to_string().contains("refused"));
    let e = a
        .transaction(vec![TxnOp::Put { key: "t/y".into(), value: b"y".to_vec() }, TxnOp::Delete { key: "t/x".into() }])
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("refused"), "{e}");
    assert_eq!(b.get("from-a").await.unwrap(), None, "the stale put was not applied");
    assert_eq!(b.get("before").await.unwrap().as_deref(), Some(&b"1"[..]), "the stale delete was not applied");
    assert_eq!(b.get("t/y").await.unwrap(), None, "the stale transaction was not applied");
    assert_eq!(b.get("t/x").await.unwrap().as_deref(), Some(&b"x"[..]));
    assert_eq!(a.get("from-b").await.unwrap().as_deref(), Some(&b"b"[..]), "a still reads");

    // b's fenced writes work, a transaction's last operation on a key decides.
    b.transaction(vec![
        TxnOp::Put { key: "t/z".into(), value: b"1".to_vec() },
        TxnOp::Delete { key: "t/z".into() },
        TxnOp::Delete { key: "t/x".into() },
        TxnOp::Put { key: "t/x".into(), value: b"2".to_vec() },
        TxnOp::Put { key: "t/w".into(), value: b"3".to_vec() },
    ])
    .await
    .unwrap();
    assert_eq!(b.get("t/z").await.unwrap(), None);
    assert_eq!(b.get("t/x").await.unwrap().as_deref(), Some(&b"2"[..]));
    assert_eq!(b.get("t/w").await.unwrap().as_deref(), Some(&b"3"[..]));

    // b steps down: its own writes are refused until it takes the lock again (generation + 2).
    held_b.release().await;
    assert!(b.put("after-release", b"x".to_vec()).await.unwrap_err().to_string().contains("refused"));
    let again = acquire(&lock_b, "b").await;
    assert_eq!(again.generation(), gen_a + 2);
    b.put("after-release", b"x".to_vec()).await.unwrap();
    drop(again);
    db.batch_execute(&format!("DROP TABLE \"{table}\"; DROP TABLE \"{table}_ha\"")).await.unwrap();
}

/// The case the fence's row lock exists for: a write that starts while a new holder's increment
/// of the generation is in flight (not yet committed) waits for it, then re-reads the row under
/// READ COMMITTED, finds the new generation and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_racing_an_uncommitted_takeover_waits_for_it_and_is_refused() {
    let Some(url) = pg_url() else { return };
    let table = fresh_name("race");
    let a = Arc::new(open(&url, &table, true).await);
    let held = acquire(&a.ha_lock(), "a").await;
    a.put("k", b"old".to_vec()).await.unwrap();
    // The new holder's increment, held open in a transaction of its own.
    let mut db = admin(&url).await;
    let tx = db.transaction().await.unwrap();
    tx.execute(&format!("UPDATE \"{table}_ha\" SET generation = generation + 1 WHERE ha_key = 'core/lock'"), &[])
        .await
        .unwrap();
    let a2 = a.clone();
    let write = tokio::spawn(async move { a2.put("k", b"stale".to_vec()).await });
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(!write.is_finished(), "the write waits for the increment's row lock");
    tx.commit().await.unwrap();
    let e = tokio::time::timeout(Duration::from_secs(5), write).await.unwrap().unwrap().unwrap_err().to_string();
    assert!(e.contains("superseded"), "{e}");
    let other = open(&url, &table, false).await;
    assert_eq!(other.get("k").await.unwrap().as_deref(), Some(&b"old"[..]), "the racing write changed nothing");
    drop(held);
    db.batch_execute(&format!("DROP TABLE \"{table}\"; DROP TABLE \"{table}_ha\"")).await.unwrap();
}

/// The storage contract holds for the active node's fenced writes too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fenced_backend_passes_storage_conformance_suite() {
    let Some(url) = pg_url() else { return };
    let table = fresh_name("conf");
    let s = Arc::new(open(&url, &table, true).await);
    let held = acquire(&s.ha_lock(), "solo").await;
    coffer_physical::conformance::run(s.clone()).await;
    drop(held);
    let db = admin(&url).await;
    db.batch_execute(&format!("DROP TABLE \"{table}\"; DROP TABLE \"{table}_ha\"")).await.unwrap();
}

/// Not a check: prints what fencing costs a write (`cargo test … -- --ignored --nocapture`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn measure_fenced_write_cost() {
    let Some(url) = pg_url() else { return };
    let table = fresh_name("cost");
    // Same table and HA table; `plain` never takes the lock, so its writes are not fenced.
    let plain = open(&url, &table, true).await;
    let fenced = open(&url, &table, true).await;
    let held = acquire(&fenced.ha_lock(), "bench").await;
    let n: usize = std::env::var("FENCE_BENCH_N").ok().and_then(|v| v.parse().ok()).unwrap_or(2000);
    let value = vec![7u8; 200];
    let rounds: usize = std::env::var("FENCE_BENCH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(5);
    // (sequential µs/op, transaction µs/op, concurrent puts/s) per round, unfenced then fenced.
    let mut figures: [Vec<(f64, f64, f64)>; 2] = [Vec::new(), Vec::new()];
    for round in 0..rounds {
        for (which, (name, s)) in [("unfenced", &plain), ("fenced", &fenced)].into_iter().enumerate() {
            let t = Instant::now();
            for i in 0..n {
                s.put(&format!("seq/{i}"), value.clone()).await.unwrap();
            }
            let seq = t.elapsed();
            let t = Instant::now();
            for i in 0..n / 4 {
                s.transaction(
                    (0..4).map(|j| TxnOp::Put { key: format!("txn/{i}/{j}"), value: value.clone() }).collect(),
                )
                .await
                .unwrap();
            }
            let txn = t.elapsed();
            let t = Instant::now();
            let mut tasks = Vec::new();
            for w in 0..8 {
                let keys: Vec<String> = (0..n / 8).map(|i| format!("par/{w}/{i}")).collect();
                tasks.push(async move {
                    for k in keys {
                        s.put(&k, vec![1u8; 200]).await.unwrap();
                    }
                });
            }
            futures_join(tasks).await;
            let par = t.elapsed();
            let f = (
                seq.as_micros() as f64 / n as f64,
                txn.as_micros() as f64 / (n / 4) as f64,
                n as f64 / par.as_secs_f64(),
            );
            eprintln!(
                "round {round} {name}: sequential put {:.0} µs/op; 4-op transaction {:.0} µs/op; 8 concurrent writers {:.0} puts/s",
                f.0, f.1, f.2
            );
            figures[which].push(f);
        }
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    for (which, name) in ["unfenced", "fenced"].iter().enumerate() {
        let f = &figures[which];
        eprintln!(
            "MEASURED median of {rounds} rounds, {name}: sequential put {:.0} µs/op; 4-op transaction {:.0} µs/op; 8 concurrent writers {:.0} puts/s",
            median(f.iter().map(|x| x.0).collect()),
            median(f.iter().map(|x| x.1).collect()),
            median(f.iter().map(|x| x.2).collect())
        );
    }
    drop(held);
    let db = admin(&url).await;
    db.batch_execute(&format!("DROP TABLE \"{table}\"; DROP TABLE \"{table}_ha\"")).await.unwrap();
}

async fn futures_join<F: std::future::Future<Output = ()>>(fs: Vec<F>) {
    let mut pinned: Vec<std::pin::Pin<Box<F>>> = fs.into_iter().map(Box::pin).collect();
    std::future::poll_fn(|cx| {
        pinned.retain_mut(|f| f.as_mut().poll(cx).is_pending());
        if pinned.is_empty() {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await
}

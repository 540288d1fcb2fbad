//! Engine speed on generated plans in Sim Mode (run with `scripts/bench-runtime.sh`).
//!
//! Prints: the engine's overhead per node (zero-latency sim) for a 1,000-node chain and a
//! 1,000-wide fan-out, in memory, on SQLite and on PostgreSQL (when
//! `GALAXY_TEST_POSTGRES_URL` is set); the makespan of 200- and 1,000-wide fan-outs of 50 ms
//! nodes divided by the critical path (50 ms), and of a chain of 100 × 10 ms nodes divided
//! by 1 s; and resident memory and store size against the number of nodes.
//!
//! `scripts/bench-runtime.sh overhead` (or `makespan`, `memory`) runs one section only.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, Instant};

use runtime::engine::{Engine, NewRun, RunOptions, RunStatus};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use runtime::store::Store;

/// A pack whose flow is a chain of `n` steps, each a call of a simulated tool.
fn chain_pack(n: usize, latency: Option<&str>) -> String {
    let mut out = header(latency);
    out.push_str("    step s0 = src()\n");
    for i in 1..n {
        out.push_str(&format!("    step s{i} = work(x: s{})\n", i - 1));
    }
    out.push_str("  }\n}\n");
    out
}

/// A pack with one source step and `n` steps that all read it.
fn fan_out_pack(n: usize, latency: Option<&str>) -> String {
    let mut out = header(latency);
    out.push_str("    step s0 = src()\n");
    for i in 1..=n {
        out.push_str(&format!("    step s{i} = work(x: s0)\n"));
    }
    out.push_str("  }\n}\n");
    out
}

fn header(latency: Option<&str>) -> String {
    let latency = latency
        .map(|l| format!("    sim_latency: {l}\n"))
        .unwrap_or_default();
    format!(
        "pack bench {{\n  language \"0.1\"\n  tool src() -> Int {{\n    scope: read\n    sim: 1\n  }}\n  tool work(x: Int) -> Int {{\n    scope: read\n    sim: x + 1\n{latency}  }}\n  flow {{\n"
    )
}

/// Runs `source` to its end and returns the time `execute` took (lowering and recording
/// the run excluded).
async fn run(source: &str, store: Option<Store>) -> Duration {
    let (_cancel, receiver) = tokio::sync::watch::channel(false);
    let new_run = NewRun {
        source,
        pack_path: Path::new("bench.gx"),
        inputs: Vec::new(),
        input_json: None,
        options: RunOptions {
            sim: true,
            seed: 1,
            max_concurrency: Some(4096),
            ..RunOptions::default()
        },
    };
    let engine = Engine::start(store, new_run, receiver)
        .await
        .expect("the bench pack checks");
    let start = Instant::now();
    let status = engine.execute().await.expect("runs");
    let elapsed = start.elapsed();
    assert_eq!(status, RunStatus::Succeeded);
    elapsed
}

/// The smallest and the median of `values`.
fn best_and_median(values: &mut [f64]) -> (f64, f64) {
    values.sort_by(f64::total_cmp);
    let best = values.first().copied().unwrap_or(f64::NAN);
    let median = values.get(values.len() / 2).copied().unwrap_or(f64::NAN);
    (best, median)
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}

async fn sqlite_store(dir: &Path, name: &str) -> (Store, PathBuf) {
    let path = dir.join(format!("{name}.db"));
    let _ = std::fs::remove_file(&path);
    (Store::open_sqlite_file(&path).await.expect("sqlite"), path)
}

async fn postgres_store() -> Option<(Store, sqlx::PgPool, String)> {
    let url = std::env::var("GALAXY_TEST_POSTGRES_URL").ok()?;
    let schema = format!("galaxy_bench_{}", std::process::id());
    let admin = sqlx::PgPool::connect(&url).await.ok()?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP SCHEMA IF EXISTS {schema} CASCADE"
    )))
    .execute(&admin)
    .await
    .ok()?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&admin)
        .await
        .ok()?;
    let options = sqlx::postgres::PgConnectOptions::from_str(&url)
        .ok()?
        .options([("search_path", schema.as_str())]);
    let store = Store::open_postgres(options).await.ok()?;
    Some((store, admin, schema))
}

/// Best of `rounds` runs, per node, in microseconds.
async fn per_node(
    source: &str,
    nodes: usize,
    rounds: usize,
    store: impl Fn() -> Option<Store>,
) -> f64 {
    let mut best = f64::MAX;
    for _ in 0..rounds {
        let elapsed = run(source, store()).await;
        best = best.min(elapsed.as_secs_f64() * 1e6 / nodes as f64);
    }
    best
}

fn main() {
    // `cargo bench` passes `--bench`; any other argument picks the sections to run.
    let sections: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let wanted = |section: &str| sections.is_empty() || sections.iter().any(|s| s == section);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let dir = std::env::temp_dir().join(format!("galaxy-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let chain = chain_pack(1000, None);
        let fan = fan_out_pack(1000, None);

        if wanted("overhead") {
            println!("engine overhead per node (zero-latency Sim Mode; best of 3)");
            println!(
                "{:<28} {:>12} {:>12}",
                "store", "chain 1000", "fan-out 1000"
            );
            let mem_chain = per_node(&chain, 1000, 3, || None).await;
            let mem_fan = per_node(&fan, 1001, 3, || None).await;
            println!(
                "{:<28} {:>9.1} µs {:>9.1} µs",
                "in memory", mem_chain, mem_fan
            );

            let mut sqlite = Vec::new();
            for (name, source, nodes) in [("chain", &chain, 1000usize), ("fan", &fan, 1001)] {
                let mut best = f64::MAX;
                for round in 0..3 {
                    let (store, _) = sqlite_store(&dir, &format!("{name}{round}")).await;
                    let elapsed = run(source, Some(store.clone())).await;
                    store.close().await;
                    best = best.min(elapsed.as_secs_f64() * 1e6 / nodes as f64);
                }
                sqlite.push(best);
            }
            println!(
                "{:<28} {:>9.1} µs {:>9.1} µs",
                "sqlite (WAL, group commit)", sqlite[0], sqlite[1]
            );

            match postgres_store().await {
                Some((store, admin, schema)) => {
                    let mut pg = Vec::new();
                    for (source, nodes) in [(&chain, 1000usize), (&fan, 1001)] {
                        let mut best = f64::MAX;
                        for _ in 0..3 {
                            let elapsed = run(source, Some(store.clone())).await;
                            best = best.min(elapsed.as_secs_f64() * 1e6 / nodes as f64);
                        }
                        pg.push(best);
                    }
                    println!("{:<28} {:>9.1} µs {:>9.1} µs", "postgres", pg[0], pg[1]);
                    store.close().await;
                    let _ =
                        sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
                            .execute(&admin)
                            .await;
                }
                None => println!("{:<28} skipped: set GALAXY_TEST_POSTGRES_URL", "postgres"),
            }
            println!();
        }

        if wanted("makespan") {
            println!(
                "makespan / critical path (simulated latency; best and median of 5 runs)"
            );
            println!("{:<24} {:>17} {:>17}", "", "memory", "sqlite");
            for (label, source, critical) in [
                ("fan-out 200 x 50ms", fan_out_pack(200, Some("50ms")), 0.050),
                (
                    "fan-out 1000 x 50ms",
                    fan_out_pack(1000, Some("50ms")),
                    0.050,
                ),
                ("chain 100 x 10ms", chain_pack(101, Some("10ms")), 1.0),
            ] {
                let mut memory = Vec::new();
                let mut durable = Vec::new();
                for _ in 0..5 {
                    memory.push(run(&source, None).await.as_secs_f64() / critical);
                    let (store, _) = sqlite_store(&dir, "latency").await;
                    durable.push(run(&source, Some(store.clone())).await.as_secs_f64() / critical);
                    store.close().await;
                }
                let (memory_best, memory_median) = best_and_median(&mut memory);
                let (durable_best, durable_median) = best_and_median(&mut durable);
                println!(
                    "{label:<24} {memory_best:>7.3}x {memory_median:>7.3}x {durable_best:>7.3}x {durable_median:>7.3}x"
                );
            }
            println!();
        }

        if wanted("memory") {
            println!("memory and storage against the number of nodes (chain, zero latency)");
            for n in [1000usize, 4000] {
                let source = chain_pack(n, None);
                let before = rss_kib();
                run(&source, None).await;
                let after = rss_kib();
                let (store, path) = sqlite_store(&dir, &format!("size{n}")).await;
                run(&source, Some(store.clone())).await;
                store.close().await;
                let bytes = std::fs::metadata(&path).map_or(0, |m| m.len())
                    + std::fs::metadata(path.with_extension("db-wal")).map_or(0, |m| m.len());
                println!(
                    "{n:>5} nodes: rss growth {:>7} KiB; sqlite {:>6} bytes/node",
                    after.saturating_sub(before),
                    bytes / n as u64
                );
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    });
}

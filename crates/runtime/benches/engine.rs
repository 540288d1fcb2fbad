//! Engine speed on generated plans in Sim Mode (run with `scripts/bench-runtime.sh`).
//!
//! Prints: the engine's overhead per node (zero-latency sim) for a 1,000-node chain and a
//! 1,000-wide fan-out, in memory, on SQLite and on PostgreSQL (when
//! `GALAXY_TEST_POSTGRES_URL` is set); the makespan of 200- and 1,000-wide fan-outs of 50 ms
//! nodes divided by the critical path (50 ms), and of a chain of 100 × 10 ms nodes divided
//! by 1 s; and the heap a run needs and the store size against the number of nodes.
//!
//! `scripts/bench-runtime.sh overhead` (or `makespan`, `memory`) runs one section only.

use std::alloc::{GlobalAlloc, Layout};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};
use std::time::{Duration, Instant};

use runtime::engine::{Engine, NewRun, RunOptions, RunStatus};
use runtime::store::Store;

/// The galaxy binary's allocator (mimalloc), able to count the bytes allocated and freed and
/// the peak of their difference, so the memory section measures exactly what a run
/// allocates (RSS mostly shows what the allocator keeps cached). Counting starts with the
/// memory section ([`count_heap`]); until then each allocation pays one relaxed load, so the
/// timed sections run as on plain mimalloc.
struct CountingAlloc {
    inner: mimalloc::MiMalloc,
    counting: AtomicBool,
    /// Bytes allocated minus bytes freed since counting started.
    live: AtomicIsize,
    peak: AtomicIsize,
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc {
    inner: mimalloc::MiMalloc,
    counting: AtomicBool::new(false),
    live: AtomicIsize::new(0),
    peak: AtomicIsize::new(0),
};

impl CountingAlloc {
    fn grew(&self, bytes: usize) {
        if self.counting.load(Ordering::Relaxed) {
            let bytes = bytes as isize;
            let live = self.live.fetch_add(bytes, Ordering::Relaxed) + bytes;
            if live > self.peak.load(Ordering::Relaxed) {
                self.peak.fetch_max(live, Ordering::Relaxed);
            }
        }
    }

    fn shrank(&self, bytes: usize) {
        if self.counting.load(Ordering::Relaxed) {
            self.live.fetch_sub(bytes as isize, Ordering::Relaxed);
        }
    }
}

// SAFETY: every call is forwarded to mimalloc with its arguments unchanged; the counters
// only observe sizes.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        let ptr = unsafe { self.inner.alloc(layout) };
        if !ptr.is_null() {
            self.grew(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        let ptr = unsafe { self.inner.alloc_zeroed(layout) };
        if !ptr.is_null() {
            self.grew(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, passed on.
        unsafe { self.inner.dealloc(ptr, layout) };
        self.shrank(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        let new = unsafe { self.inner.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            if new_size >= layout.size() {
                self.grew(new_size - layout.size());
            } else {
                self.shrank(layout.size() - new_size);
            }
        }
        new
    }
}

/// Starts counting (for the rest of the process).
fn count_heap() {
    GLOBAL.counting.store(true, Ordering::Relaxed);
}

/// Bytes allocated minus bytes freed since counting started: only differences of it mean
/// something (what was live before is not known).
fn heap_live() -> isize {
    GLOBAL.live.load(Ordering::Relaxed)
}

/// The peak of [`heap_live`] since the last [`reset_heap_peak`].
fn heap_peak() -> isize {
    GLOBAL.peak.load(Ordering::Relaxed)
}

/// Starts a new peak from the bytes live now.
fn reset_heap_peak() {
    GLOBAL.peak.store(heap_live(), Ordering::Relaxed);
}

// SQLite (bundled into the binary through sqlx) allocates with the C allocator, not the Rust
// one; its own counters give its share.
unsafe extern "C" {
    fn sqlite3_memory_used() -> i64;
    fn sqlite3_memory_highwater(reset: std::ffi::c_int) -> i64;
}

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

/// Whether the makespan shape `label` is to run (`GALAXY_BENCH_SHAPE`, when set, is part of
/// the labels of those that are).
fn shape_wanted(label: &str) -> bool {
    std::env::var("GALAXY_BENCH_SHAPE").map_or(true, |wanted| label.contains(wanted.as_str()))
}

/// Runs `source` to its end and returns the time `execute` took (lowering and recording
/// the run excluded).
async fn run(source: &str, store: Option<Store>) -> Duration {
    let (engine, _cancel) = start(source, store).await;
    let start = Instant::now();
    let status = engine.execute().await.expect("runs");
    let elapsed = start.elapsed();
    assert_eq!(status, RunStatus::Succeeded);
    elapsed
}

/// What one run of `execute` added to the heap, in bytes over what was live just before it
/// (the lowered plan and the engine included there).
#[derive(Clone, Copy)]
struct HeapUse {
    /// The peak of the Rust heap during `execute`.
    peak: isize,
    /// The Rust heap still live once `execute` returned, the engine not yet dropped.
    retained: isize,
    /// The peak of SQLite's own heap (its page cache and statements) during `execute`.
    sqlite_peak: i64,
}

/// Runs `source` to its end, measuring the heap `execute` needs.
async fn run_measuring_heap(source: &str, store: Option<Store>) -> HeapUse {
    let (engine, _cancel) = start(source, store).await;
    let before = heap_live();
    // SAFETY: plain reads and a reset of SQLite's global counters.
    let sqlite_before = unsafe {
        sqlite3_memory_highwater(1);
        sqlite3_memory_used()
    };
    reset_heap_peak();
    let status = engine.execute().await.expect("runs");
    let peak = heap_peak();
    let after = heap_live();
    // SAFETY: a plain read of SQLite's global high-water mark.
    let sqlite_peak = unsafe { sqlite3_memory_highwater(0) };
    assert_eq!(status, RunStatus::Succeeded);
    drop(engine);
    HeapUse {
        peak: peak - before,
        retained: after - before,
        sqlite_peak: sqlite_peak - sqlite_before,
    }
}

/// Checks and records a run of `source`, ready to execute, with its cancel switch (keep it:
/// a run whose switch is dropped stops its waiting steps).
async fn start(source: &str, store: Option<Store>) -> (Engine, tokio::sync::watch::Sender<bool>) {
    let (cancel, receiver) = tokio::sync::watch::channel(false);
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
    (engine, cancel)
}

/// The smallest and the median of `values`.
fn best_and_median(values: &mut [f64]) -> (f64, f64) {
    values.sort_by(f64::total_cmp);
    let best = values.first().copied().unwrap_or(f64::NAN);
    let median = values.get(values.len() / 2).copied().unwrap_or(f64::NAN);
    (best, median)
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
    // As the galaxy binary does (`no_huge_pages` in crates/cli/src/main.rs): no transparent
    // huge pages, whose zeroing mimalloc would otherwise have the kernel do mid-run.
    // SAFETY: `PR_SET_THP_DISABLE` takes plain integers and sets a flag of this process.
    #[cfg(target_os = "linux")]
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
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
            // `GALAXY_BENCH_ROUNDS=N` runs each shape N times instead of 5, for steadier
            // figures on a busy machine; `GALAXY_BENCH_SHAPE=TEXT` runs only the shapes whose
            // label holds TEXT (`fan-out 1000`).
            let rounds = std::env::var("GALAXY_BENCH_ROUNDS")
                .ok()
                .and_then(|n| n.parse::<usize>().ok())
                .filter(|&n| n > 0)
                .unwrap_or(5);
            println!(
                "makespan / critical path (simulated latency; best and median of {rounds} runs)"
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
                if !shape_wanted(label) {
                    continue;
                }
                let mut memory = Vec::new();
                let mut durable = Vec::new();
                for _ in 0..rounds {
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
            println!(
                "heap and storage against the number of nodes (zero-latency Sim Mode; median of 3)"
            );
            println!(
                "Rust heap over what was live just before execute(): its peak during it, and what \
                 is kept when it returns (the engine not yet dropped); SQLite's own heap at its \
                 peak; database + WAL after the store closes"
            );
            count_heap();
            // Tables built once per process (the stdlib, tokio's timer, SQLite's caches) are
            // not a run's memory: a small run of each kind goes first.
            let warm_up = chain_pack(100, None);
            run_measuring_heap(&warm_up, None).await;
            let (store, _) = sqlite_store(&dir, "warm-up").await;
            run_measuring_heap(&warm_up, Some(store.clone())).await;
            store.close().await;
            println!(
                "{:<8} {:>6} {:<7} {:>10} {:>8} {:>10} {:>8} {:>11} {:>11}",
                "shape",
                "nodes",
                "store",
                "peak KiB",
                "B/node",
                "kept KiB",
                "B/node",
                "sqlite KiB",
                "file B/node"
            );
            for shape in ["chain", "fan-out"] {
                for n in [1000usize, 2000, 4000, 8000] {
                    let (source, nodes) = if shape == "chain" {
                        (chain_pack(n, None), n)
                    } else {
                        (fan_out_pack(n, None), n + 1)
                    };
                    let mut in_memory = Vec::new();
                    let mut durable = Vec::new();
                    let mut file_bytes = 0;
                    for round in 0..3 {
                        in_memory.push(run_measuring_heap(&source, None).await);
                        let (store, path) =
                            sqlite_store(&dir, &format!("size-{shape}-{n}-{round}")).await;
                        durable.push(run_measuring_heap(&source, Some(store.clone())).await);
                        store.close().await;
                        file_bytes = std::fs::metadata(&path).map_or(0, |m| m.len())
                            + std::fs::metadata(path.with_extension("db-wal"))
                                .map_or(0, |m| m.len());
                        let _ = std::fs::remove_file(&path);
                    }
                    for (label, uses, file) in [
                        ("memory", &in_memory, None),
                        ("sqlite", &durable, Some(file_bytes)),
                    ] {
                        let median = |field: fn(&HeapUse) -> f64| {
                            let mut values: Vec<f64> = uses.iter().map(field).collect();
                            best_and_median(&mut values).1
                        };
                        let peak = median(|u| u.peak as f64);
                        let kept = median(|u| u.retained as f64);
                        let sqlite = match file {
                            Some(_) => format!("{:.0}", median(|u| u.sqlite_peak as f64) / 1024.0),
                            None => String::new(),
                        };
                        let file = file.map_or(String::new(), |f| (f / nodes as u64).to_string());
                        println!(
                            "{shape:<8} {n:>6} {label:<7} {:>10.0} {:>8.0} {:>10.0} {:>8.0} {sqlite:>11} {file:>11}",
                            peak / 1024.0,
                            peak / nodes as f64,
                            kept / 1024.0,
                            kept / nodes as f64,
                        );
                    }
                }
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    });
}

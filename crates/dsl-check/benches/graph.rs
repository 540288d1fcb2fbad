//! The graph round-trip benchmark: on a generated 10k-line pack (the front-end benchmark's
//! generator), the latency of `graph::export` (from a checked analysis, as the language
//! server holds one) and of `graph::apply` for one move, one rename and one create (each
//! from the source text: parse/check, edit, re-check, diff).
//!
//! A harness, not a test: it prints figures and asserts nothing about time. Run it with
//! `cargo bench -p dsl-check --bench graph`; `GX_BENCH_QUICK=1` makes fewer runs.

#[allow(dead_code)] // the generator's YAML twin is for the front-end benchmark
mod generate;

use std::hint::black_box;
use std::time::{Duration, Instant};

use dsl_check::NoFiles;
use dsl_check::graph::{self, GraphOp};

/// Median and slowest of `runs` timings of `work`, after one warm-up run.
fn measure(runs: usize, mut work: impl FnMut()) -> (Duration, Duration) {
    work();
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            work();
            start.elapsed()
        })
        .collect();
    times.sort();
    let median = times.get(times.len() / 2).copied().unwrap_or_default();
    let max = times.last().copied().unwrap_or_default();
    (median, max)
}

fn ms(duration: Duration) -> String {
    format!("{:.2} ms", duration.as_secs_f64() * 1000.0)
}

fn main() {
    let quick = std::env::var_os("GX_BENCH_QUICK").is_some();
    let runs = if quick { 5 } else { 21 };
    let workload = generate::workload(10_000);
    let source = workload.pack;
    let lines = generate::line_count(&source);
    let analysis = dsl_check::check(&source, &NoFiles);
    assert!(!analysis.has_errors(), "the generated pack checks clean");
    let graph = graph::export(&analysis);
    println!(
        "graph benchmark: {lines} lines, {} steps, {} edges, {runs} runs each (median / max)",
        graph.nodes.len(),
        graph.edges.len()
    );

    let (median, max) = measure(runs, || {
        black_box(dsl_check::check(black_box(&source), &NoFiles));
    });
    println!(
        "  check (for reference)      {:>10} / {}",
        ms(median),
        ms(max)
    );
    let (median, max) = measure(runs, || {
        black_box(graph::export(black_box(&analysis)));
    });
    println!(
        "  export (from an analysis)  {:>10} / {}",
        ms(median),
        ms(max)
    );
    let (median, max) = measure(runs, || {
        black_box(serde_json::to_string(&graph).unwrap_or_default());
    });
    println!(
        "  graph to JSON              {:>10} / {}",
        ms(median),
        ms(max)
    );

    // A step in the middle that other steps read: the rename touches several statements.
    let middle = graph.nodes.len() / 2;
    let renamed = graph
        .nodes
        .iter()
        .skip(middle)
        .find(|n| graph.edges.iter().any(|e| e.from == n.id))
        .map(|n| n.id.clone())
        .unwrap_or_default();
    let anchor = graph
        .nodes
        .get(middle)
        .map(|n| n.id.clone())
        .unwrap_or_default();
    let cases = [
        (
            "apply: one move",
            GraphOp::Move {
                id: anchor.clone(),
                x: 12.0,
                y: 34.0,
            },
        ),
        (
            "apply: one rename",
            GraphOp::Rename {
                id: renamed.clone(),
                new_id: format!("{renamed}_renamed"),
            },
        ),
        (
            "apply: one create",
            GraphOp::CreateStep {
                id: "bench_added".into(),
                action: format!("{anchor} != none"),
                after: Some(anchor.clone()),
                before: None,
                position: None,
                comment: None,
                separated: None,
            },
        ),
    ];
    for (name, op) in cases {
        let ops = [op];
        let edit = graph::apply(&source, &ops, &NoFiles).expect("the op applies");
        let (median, max) = measure(runs, || {
            black_box(graph::apply(black_box(&source), &ops, &NoFiles).ok());
        });
        let removed: usize = edit.edits.iter().map(|e| e.span.len() as usize).sum();
        let inserted: usize = edit.edits.iter().map(|e| e.new_text.len()).sum();
        println!(
            "  {name:<26} {:>10} / {}   ({} edit(s): {removed} byte(s) out, {inserted} in)",
            ms(median),
            ms(max),
            edit.edits.len()
        );
    }
}

//! Language-server speed on a generated 10k-line pack (prints figures, asserts nothing):
//! time from a one-character edit to diagnostics ready (split into parse and check), hover
//! and completion latency at 1,000 random positions (median, p99), `galaxy/graph` and
//! `galaxy/graphEdit` latency (median, p99), and peak memory (VmHWM).
//!
//! Run: `cargo bench -p lsp --bench lsp` (release profile).

/// The allocator the `galaxy` binary ships with, so the figures are the binary's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[allow(dead_code)]
#[path = "../../dsl-check/benches/generate.rs"]
mod generate;

use std::str::FromStr;
use std::time::{Duration, Instant};

use galaxy_lsp::Engine;
use galaxy_lsp::ls_types as lsp;

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort_unstable();
    let index = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples.get(index).copied().unwrap_or_default()
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

/// A small deterministic random number generator (no dependency, same positions every run).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u32) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) % u64::from(below.max(1))) as u32
    }
}

fn vm_hwm_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn main() {
    let workload = generate::workload(10_000);
    let text = workload.pack;
    let lines: Vec<&str> = text.split('\n').collect();
    println!(
        "pack: {} lines, {} bytes, {} steps",
        lines.len(),
        text.len(),
        workload.steps
    );
    let uri = lsp::Uri::from_str("file:///bench/pack.gx").expect("uri");
    let mut engine = Engine::new();
    engine.open(uri.clone(), 0, text.clone());
    let started = Instant::now();
    let diagnostics = engine.diagnostics(&uri);
    println!(
        "open: first analysis + diagnostics {} ({} diagnostics)",
        ms(started.elapsed()),
        diagnostics.len()
    );

    // One-character edits in the middle of the file: type a space, delete it, repeatedly.
    let middle = (lines.len() / 2) as u32;
    let mut edit_times = Vec::new();
    for version in 1..=40 {
        let (range, new_text) = if version % 2 == 1 {
            (
                lsp::Range {
                    start: lsp::Position {
                        line: middle,
                        character: 0,
                    },
                    end: lsp::Position {
                        line: middle,
                        character: 0,
                    },
                },
                " ",
            )
        } else {
            (
                lsp::Range {
                    start: lsp::Position {
                        line: middle,
                        character: 0,
                    },
                    end: lsp::Position {
                        line: middle,
                        character: 1,
                    },
                },
                "",
            )
        };
        let started = Instant::now();
        engine
            .change(
                &uri,
                version,
                vec![lsp::TextDocumentContentChangeEvent {
                    range: Some(range),
                    range_length: None,
                    text: new_text.to_string(),
                }],
            )
            .expect("change");
        let changed = started.elapsed();
        let diagnostics = engine.diagnostics(&uri);
        edit_times.push(started.elapsed());
        if version == 1 {
            println!(
                "first edit: apply the change and drop the old analysis {}, analysis + diagnostics {}",
                ms(changed),
                ms(started.elapsed() - changed)
            );
        }
        std::hint::black_box(diagnostics);
    }
    let first = edit_times.first().copied().unwrap_or_default();
    let median = percentile(&mut edit_times, 0.5);
    let worst = percentile(&mut edit_times, 1.0);
    println!(
        "edit -> diagnostics ready (40 one-character edits): median {}, max {} (first {}) (target 30 ms; plus the {} ms publish debounce)",
        ms(median),
        ms(worst),
        ms(first),
        galaxy_lsp::server::DIAGNOSTICS_DEBOUNCE.as_millis()
    );

    // Where the time goes.
    let current = engine.text(&uri).unwrap_or("").to_string();
    let mut parse_times = Vec::new();
    let mut check_times = Vec::new();
    for _ in 0..10 {
        let started = Instant::now();
        std::hint::black_box(dsl_syntax::parse(&current));
        parse_times.push(started.elapsed());
        let started = Instant::now();
        std::hint::black_box(dsl_check::check(&current, &dsl_check::NoFiles));
        check_times.push(started.elapsed());
    }
    println!(
        "  of which: parse {} ; parse + check {} (medians of 10)",
        ms(percentile(&mut parse_times, 0.5)),
        ms(percentile(&mut check_times, 0.5))
    );

    // Hover and completion at random positions of the current version (analysis cached).
    let mut rng = Lcg(42);
    let mut positions = Vec::new();
    for _ in 0..1000 {
        let line = rng.next(lines.len() as u32);
        let width = lines.get(line as usize).map_or(1, |l| l.len() as u32 + 1);
        positions.push(lsp::Position {
            line,
            character: rng.next(width),
        });
    }
    let mut hover_times = Vec::new();
    let mut hovers = 0;
    for &position in &positions {
        let started = Instant::now();
        let hover = engine.hover(&uri, position);
        hover_times.push(started.elapsed());
        hovers += usize::from(hover.is_some());
    }
    let mut completion_times = Vec::new();
    let mut items = 0;
    for &position in &positions {
        let started = Instant::now();
        let completion = engine.completion(&uri, position);
        completion_times.push(started.elapsed());
        items += completion.map_or(0, |c| c.len());
    }
    println!(
        "hover (1000 random positions, {hovers} answered): median {}, p99 {} (target p99 < 5 ms)",
        ms(percentile(&mut hover_times, 0.5)),
        ms(percentile(&mut hover_times, 0.99))
    );
    println!(
        "completion (1000 random positions, {items} items): median {}, p99 {} (target p99 < 5 ms)",
        ms(percentile(&mut completion_times, 0.5)),
        ms(percentile(&mut completion_times, 0.99))
    );
    let started = Instant::now();
    std::hint::black_box(engine.semantic_tokens(&uri));
    println!("semantic tokens (full): {}", ms(started.elapsed()));
    let started = Instant::now();
    std::hint::black_box(engine.document_symbols(&uri));
    println!("document symbols: {}", ms(started.elapsed()));

    // galaxy/graph: export of the current version from the cached analysis.
    let mut graph_times = Vec::new();
    let mut graph = None;
    for _ in 0..200 {
        let started = Instant::now();
        let exported = engine.graph(&uri).expect("graph");
        graph_times.push(started.elapsed());
        graph = Some(exported);
    }
    let graph = graph.expect("graph");
    println!(
        "galaxy/graph (200 requests, {} nodes, {} edges): median {}, p99 {} (target < 20 ms)",
        graph.nodes.len(),
        graph.edges.len(),
        ms(percentile(&mut graph_times, 0.5)),
        ms(percentile(&mut graph_times, 0.99))
    );

    // galaxy/graphEdit against the current version, at random steps: a move (layout only,
    // no re-check) and a rename (every reference rewritten, the result re-checked). The
    // engine answers edits without applying them, so every request sees the same version.
    let ids: Vec<String> = graph.nodes.iter().map(|n| n.id.clone()).collect();
    let version = engine.version(&uri).expect("version");
    let mut timed = |label: &str, count: usize, op: &dyn Fn(&str) -> dsl_check::graph::GraphOp| {
        let mut times = Vec::new();
        let mut edits = 0;
        for _ in 0..count {
            let id = &ids[rng.next(ids.len() as u32) as usize];
            let ops = [op(id)];
            let started = Instant::now();
            let answer = engine.graph_edit(&uri, version, &ops).expect("accepted");
            times.push(started.elapsed());
            if let Some(lsp::DocumentChanges::Edits(documents)) = answer.edit.document_changes {
                edits += documents.iter().map(|d| d.edits.len()).sum::<usize>();
            }
        }
        println!(
            "galaxy/graphEdit {label} ({count} requests, {edits} text edits): median {}, p99 {}",
            ms(percentile(&mut times, 0.5)),
            ms(percentile(&mut times, 0.99))
        );
    };
    timed("move", 200, &|id| dsl_check::graph::GraphOp::Move {
        id: id.to_string(),
        x: 10.0,
        y: 20.0,
    });
    timed("rename", 50, &|id| dsl_check::graph::GraphOp::Rename {
        id: id.to_string(),
        new_id: format!("{id}_renamed"),
    });

    match vm_hwm_kb() {
        Some(kb) => println!(
            "memory: VmHWM {:.1} MB (target < 200 MB)",
            kb as f64 / 1024.0
        ),
        None => println!("memory: VmHWM unavailable"),
    }
    println!("analyses run: {}", engine.analysis_count());
}

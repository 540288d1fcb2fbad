//! The front-end speed benchmark: lexing, parsing, checking, planning and formatting of
//! generated 10k- and 100k-line packs, against `serde_yaml` (and `serde_json`) parsing the
//! same workflow, plus peak memory per phase and super-linearity probes.
//!
//! A harness, not a test: it prints figures and asserts nothing about time. Run it with
//! `scripts/bench-frontend.sh` (or `cargo bench -p dsl-check --bench frontend`). Set
//! `GX_BENCH_QUICK=1` for a short smoke run (10k lines, fewer runs, smaller probes).
//!
//! Every phase's peak memory is measured in a fresh child process (this same binary,
//! re-run with `GX_BENCH_CHILD` set): the child builds its input, runs one warm-up (so the
//! process-wide stdlib cache exists), resets the kernel's high-water mark, runs the phase
//! once and reports `VmHWM` from `/proc/self/status`. The probes run in children too, so a
//! stack overflow shows up as a crashed child rather than a lost benchmark.

/// The allocator the `galaxy` binary ships with, so the figures are the binary's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod generate;

use std::hint::black_box;
use std::process::Command;
use std::time::{Duration, Instant};

use dsl_check::{NoFiles, Severity};

/// The environment variable that turns this binary into a one-task child.
const CHILD_VAR: &str = "GX_BENCH_CHILD";

/// The measured phases, in print order.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    Lex,
    Parse,
    Check,
    Plan,
    Full,
    Format,
    Yaml,
    Json,
}

impl Phase {
    const ALL: [Phase; 8] = [
        Phase::Lex,
        Phase::Parse,
        Phase::Check,
        Phase::Plan,
        Phase::Full,
        Phase::Format,
        Phase::Yaml,
        Phase::Json,
    ];

    fn name(self) -> &'static str {
        match self {
            Phase::Lex => "lex",
            Phase::Parse => "parse",
            Phase::Check => "check",
            Phase::Plan => "plan",
            Phase::Full => "full",
            Phase::Format => "format",
            Phase::Yaml => "serde_yaml",
            Phase::Json => "serde_json",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Phase::Lex => "lexing (tokens incl. trivia)",
            Phase::Parse => "parsing (lex + syntax tree)",
            Phase::Check => "checking (parse+resolve+type+policy)",
            Phase::Plan => "planning (lowering a checked pack)",
            Phase::Full => "full pipeline (check + plan)",
            Phase::Format => "formatting (parse + print)",
            Phase::Yaml => "peer: serde_yaml, same workflow",
            Phase::Json => "reference: serde_json, same workflow",
        }
    }

    fn from_name(name: &str) -> Option<Phase> {
        Phase::ALL.into_iter().find(|p| p.name() == name)
    }
}

/// One size's inputs: the pack and its YAML and JSON twins.
struct Inputs {
    pack: String,
    yaml: String,
    json: String,
    units: usize,
    steps: usize,
}

impl Inputs {
    fn new(lines: usize) -> Inputs {
        let workload = generate::workload(lines);
        let value: serde_yaml::Value =
            serde_yaml::from_str(&workload.yaml).expect("the generated YAML parses");
        let json = serde_json::to_string_pretty(&value).expect("the YAML value converts to JSON");
        Inputs {
            pack: workload.pack,
            yaml: workload.yaml,
            json,
            units: workload.units,
            steps: workload.steps,
        }
    }

    /// The text a phase reads.
    fn text(&self, phase: Phase) -> &str {
        match phase {
            Phase::Yaml => &self.yaml,
            Phase::Json => &self.json,
            _ => &self.pack,
        }
    }
}

/// Runs `phase` once over `inputs`; `analysis` is a precomputed check for `Plan` (lowering
/// consumes it, as `galaxy run` and `galaxy plan` do).
fn run_phase(phase: Phase, inputs: &Inputs, analysis: Option<dsl_check::Analysis>) {
    match phase {
        Phase::Lex => {
            black_box(dsl_syntax::lexer::lex(black_box(&inputs.pack)));
        }
        Phase::Parse => {
            black_box(dsl_syntax::parse(black_box(&inputs.pack)));
        }
        Phase::Check => {
            black_box(dsl_check::check(black_box(&inputs.pack), &NoFiles));
        }
        Phase::Plan => {
            if let Some(analysis) = analysis {
                black_box(black_box(analysis).into_plan());
            }
        }
        Phase::Full => {
            let analysis = dsl_check::check(black_box(&inputs.pack), &NoFiles);
            black_box(analysis.into_plan());
        }
        Phase::Format => {
            black_box(dsl_syntax::format::format(black_box(&inputs.pack)).ok());
        }
        Phase::Yaml => {
            let value: serde_yaml::Value =
                serde_yaml::from_str(black_box(&inputs.yaml)).unwrap_or_default();
            black_box(value);
        }
        Phase::Json => {
            let value: serde_json::Value =
                serde_json::from_str(black_box(&inputs.json)).unwrap_or_default();
            black_box(value);
        }
    }
}

/// The median of `runs` timed runs, after one warm-up run.
fn median_time(
    phase: Phase,
    inputs: &Inputs,
    analysis: Option<&dsl_check::Analysis>,
    runs: usize,
) -> Duration {
    run_phase(phase, inputs, analysis.cloned());
    let mut times: Vec<Duration> = (0..runs.max(1))
        .map(|_| {
            let analysis = analysis.cloned();
            let start = Instant::now();
            run_phase(phase, inputs, analysis);
            start.elapsed()
        })
        .collect();
    times.sort_unstable();
    times[times.len() / 2]
}

// ---------------------------------------------------------------------------------------
// Memory.

/// A `kB` field of `/proc/self/status` (`VmHWM`, `VmRSS`), in bytes.
fn proc_status_bytes(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Resets the peak-RSS mark to the current RSS (Linux: write 5 to `clear_refs`).
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// What a child reports: `key=value` pairs on one line.
fn child_report(pairs: &[(&str, String)]) {
    let line: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
    println!("{}", line.join(" "));
}

/// Child task `mem:PHASE:LINES`: one run of a phase, peak memory.
fn child_memory(phase: Phase, lines: usize) {
    let inputs = Inputs::new(lines);
    // Warm up the process-wide stdlib cache so it counts as baseline, not as the phase.
    black_box(dsl_check::check(
        "pack warm { language \"0.1\" flow { step a = 1 } }",
        &NoFiles,
    ));
    let analysis = (phase == Phase::Plan).then(|| dsl_check::check(&inputs.pack, &NoFiles));
    let baseline = proc_status_bytes("VmRSS").unwrap_or(0);
    let reset = reset_peak();
    run_phase(phase, &inputs, analysis);
    let peak = proc_status_bytes("VmHWM").unwrap_or(0);
    child_report(&[
        ("peak", peak.to_string()),
        ("baseline", baseline.to_string()),
        ("reset", reset.to_string()),
    ]);
}

/// Child task `probe:NAME:N`: one super-linearity probe, timed.
fn child_probe(name: &str, n: usize) {
    let source = match name {
        "errors" => generate::broken_pack(n),
        "nested-input" => generate::nested_input_pack(n),
        "nested-list" => generate::nested_pack(n, "[", "]", "1"),
        "nested-parens" => generate::nested_pack(n, "(", ")", "1"),
        "nested-record" => generate::nested_pack(n, "{ a: ", " }", "1"),
        "nested-when" => generate::nested_pack(n, "when true { ", " }", "1"),
        "operator-chain" => generate::nested_pack(0, "", "", &format!("{}1", "1 + ".repeat(n))),
        "not-chain" => generate::nested_pack(n, "not ", "", "true"),
        other => {
            eprintln!("unknown probe {other}");
            std::process::exit(2);
        }
    };
    black_box(dsl_check::check(
        "pack warm { language \"0.1\" flow { step a = 1 } }",
        &NoFiles,
    ));
    let start = Instant::now();
    let analysis = dsl_check::check(&source, &NoFiles);
    let plan = dsl_check::lower(&analysis);
    let check_time = start.elapsed();
    let start = Instant::now();
    let formatted = dsl_syntax::format::format(&source);
    let format_time = start.elapsed();
    let errors = analysis
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count();
    let first = analysis.diagnostics.first().map(|d| d.code).unwrap_or("-");
    let first_message = analysis
        .diagnostics
        .first()
        .map(|d| d.message.replace(' ', "_"))
        .unwrap_or_else(|| "-".to_string());
    child_report(&[
        ("bytes", source.len().to_string()),
        ("check_ns", check_time.as_nanos().to_string()),
        ("format_ns", format_time.as_nanos().to_string()),
        ("errors", errors.to_string()),
        ("first", first.to_string()),
        ("message", first_message),
        ("planned", plan.is_some().to_string()),
        ("formatted", formatted.is_ok().to_string()),
        ("peak", proc_status_bytes("VmHWM").unwrap_or(0).to_string()),
    ]);
}

fn child_main(task: &str) {
    let parts: Vec<&str> = task.split(':').collect();
    match parts.as_slice() {
        ["mem", phase, lines] => {
            let phase = Phase::from_name(phase).expect("a known phase");
            child_memory(phase, lines.parse().expect("a line count"));
        }
        ["probe", name, n] => child_probe(name, n.parse().expect("a count")),
        _ => {
            eprintln!("unknown child task {task}");
            std::process::exit(2);
        }
    }
}

/// Runs a child task; its `key=value` report, or how it died.
fn spawn_child(task: &str) -> Result<Vec<(String, String)>, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let output = Command::new(exe)
        .env(CHILD_VAR, task)
        .output()
        .map_err(|e| e.to_string())?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last = stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim()
            .to_string();
        return Err(format!("child died: {} {}", output.status, last));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().last().unwrap_or("");
    Ok(line
        .split_whitespace()
        .filter_map(|pair| {
            pair.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect())
}

fn field<'a>(report: &'a [(String, String)], key: &str) -> &'a str {
    report
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
}

// ---------------------------------------------------------------------------------------
// Printing.

fn fmt_time(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs >= 1.0 {
        format!("{secs:.2} s")
    } else if secs >= 1e-3 {
        format!("{:.2} ms", secs * 1e3)
    } else {
        format!("{:.1} us", secs * 1e6)
    }
}

fn fmt_mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn fmt_count(n: f64) -> String {
    if n >= 1e6 {
        format!("{:.2} M", n / 1e6)
    } else if n >= 1e3 {
        format!("{:.1} k", n / 1e3)
    } else {
        format!("{n:.0}")
    }
}

/// Checks that the generated pack is clean; exits with the errors otherwise.
fn verify_clean(inputs: &Inputs, lines: usize) -> usize {
    let analysis = dsl_check::check(&inputs.pack, &NoFiles);
    let errors: Vec<_> = analysis
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .collect();
    if !errors.is_empty() {
        let index = dsl_syntax::LineIndex::new(&inputs.pack);
        eprintln!(
            "the generated {lines}-line pack has {} error(s); first ones:",
            errors.len()
        );
        for d in errors.iter().take(10) {
            let at = index.line_col(&inputs.pack, d.span.start);
            eprintln!(
                "  {}:{:?} {} {}",
                d.code,
                at,
                d.message,
                d.help.as_deref().unwrap_or("")
            );
        }
        std::process::exit(1);
    }
    analysis.diagnostics.len()
}

struct SizeResult {
    lines: usize,
    full: Duration,
    yaml: Duration,
}

fn bench_size(lines: usize, runs: usize) -> SizeResult {
    let inputs = Inputs::new(lines);
    let warnings = verify_clean(&inputs, lines);
    let analysis = dsl_check::check(&inputs.pack, &NoFiles);
    let planned = dsl_check::lower(&analysis).is_some();
    let pack_lines = generate::line_count(&inputs.pack);
    println!();
    println!(
        "== {} lines: pack {} lines, {:.2} MB ({} units, {} steps; 0 errors, {} warnings, planned: {})",
        fmt_count(lines as f64),
        pack_lines,
        inputs.pack.len() as f64 / 1e6,
        inputs.units,
        inputs.steps,
        warnings,
        planned,
    );
    println!(
        "   same workflow as YAML: {} lines, {:.2} MB; as JSON (pretty): {} lines, {:.2} MB",
        generate::line_count(&inputs.yaml),
        inputs.yaml.len() as f64 / 1e6,
        generate::line_count(&inputs.json),
        inputs.json.len() as f64 / 1e6,
    );
    println!(
        "   {:<38} {:>10} {:>9} {:>11} {:>13} {:>11}",
        "phase (median of runs)", "time", "MB/s", "lines/s", "peak RSS", "phase RSS"
    );
    let mut full = Duration::ZERO;
    let mut yaml = Duration::ZERO;
    for phase in Phase::ALL {
        if phase == Phase::Plan && !planned {
            println!(
                "   {:<38} {:>10}",
                phase.describe(),
                "n/a: lower() gave no plan"
            );
            continue;
        }
        let time = median_time(phase, &inputs, Some(&analysis), runs);
        let text = inputs.text(phase);
        let secs = time.as_secs_f64().max(1e-9);
        let mbps = text.len() as f64 / 1e6 / secs;
        let lps = generate::line_count(text) as f64 / secs;
        let (peak, delta) = match spawn_child(&format!("mem:{}:{lines}", phase.name())) {
            Ok(report) => {
                let peak: u64 = field(&report, "peak").parse().unwrap_or(0);
                let base: u64 = field(&report, "baseline").parse().unwrap_or(0);
                if field(&report, "reset") == "true" {
                    (
                        fmt_mib(peak),
                        format!("+{}", fmt_mib(peak.saturating_sub(base))),
                    )
                } else {
                    (format!("{} (process)", fmt_mib(peak)), "n/a".to_string())
                }
            }
            Err(e) => (e, String::new()),
        };
        println!(
            "   {:<38} {:>10} {:>9.1} {:>11} {:>13} {:>11}",
            phase.describe(),
            fmt_time(time),
            mbps,
            fmt_count(lps),
            peak,
            delta
        );
        match phase {
            Phase::Full => full = time,
            Phase::Yaml => yaml = time,
            _ => {}
        }
    }
    let ratio = yaml.as_secs_f64() / full.as_secs_f64().max(1e-9);
    println!(
        "   full-check speed / serde_yaml speed (same workflow): {ratio:.2}x ({} vs {})",
        fmt_time(full),
        fmt_time(yaml)
    );
    SizeResult { lines, full, yaml }
}

fn probes(quick: bool) {
    println!();
    println!("== super-linearity probes (each in a fresh process; full check + plan, then format)");
    println!(
        "   {:<34} {:>10} {:>10} {:>8}  first diagnostic",
        "probe", "check", "format", "errors"
    );
    let error_counts: &[usize] = if quick {
        &[1_000, 2_000]
    } else {
        &[2_500, 5_000, 10_000]
    };
    let mut tasks: Vec<(String, String)> = error_counts
        .iter()
        .map(|n| {
            (
                format!("{} broken steps", fmt_count(*n as f64)),
                format!("probe:errors:{n}"),
            )
        })
        .collect();
    let depth = 10_000;
    for name in [
        "nested-input",
        "nested-list",
        "nested-parens",
        "nested-record",
        "nested-when",
        "not-chain",
        "operator-chain",
    ] {
        tasks.push((
            format!("{name}, {} levels", fmt_count(depth as f64)),
            format!("probe:{name}:{depth}"),
        ));
    }
    for (label, task) in tasks {
        match spawn_child(&task) {
            Ok(report) => {
                let ns = |key: &str| Duration::from_nanos(field(&report, key).parse().unwrap_or(0));
                let message = field(&report, "message").replace('_', " ");
                println!(
                    "   {:<34} {:>10} {:>10} {:>8}  {} {}",
                    label,
                    fmt_time(ns("check_ns")),
                    fmt_time(ns("format_ns")),
                    field(&report, "errors"),
                    field(&report, "first"),
                    message
                );
            }
            Err(e) => println!("   {label:<34} FAILED: {e}"),
        }
    }
}

fn main() {
    if let Ok(task) = std::env::var(CHILD_VAR) {
        child_main(&task);
        return;
    }
    let quick = std::env::var("GX_BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
    let started = Instant::now();
    println!("Galaxy front-end benchmark (dsl-syntax + dsl-check), release build");
    println!(
        "machine: {} CPU(s), {}; times are medians; peak RSS is VmHWM of a fresh child running the phase once",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        std::env::consts::ARCH
    );
    let sizes: &[(usize, usize)] = if quick {
        &[(10_000, 3)]
    } else {
        &[(10_000, 15), (100_000, 11)]
    };
    let mut results = Vec::new();
    for &(lines, runs) in sizes {
        results.push(bench_size(lines, runs));
    }
    probes(quick);
    println!();
    println!("== summary");
    for r in &results {
        println!(
            "   {:>6} lines: full check {}, serde_yaml {}: {:.2}x serde_yaml's speed",
            fmt_count(r.lines as f64),
            fmt_time(r.full),
            fmt_time(r.yaml),
            r.yaml.as_secs_f64() / r.full.as_secs_f64().max(1e-9)
        );
    }
    println!("   total bench time {}", fmt_time(started.elapsed()));
}

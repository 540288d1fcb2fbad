//! `galaxy run`, `resume`, `approve`, `runs`, `show` and `trace`: the execution commands,
//! glue between the command line, the durable store and the runtime's engine.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, ValueEnum};
use runtime::engine::{
    BudgetOverrides, Counters, Engine, EngineError, NewRun, Progress, RunOptions, RunStatus, now_ms,
};
use runtime::report::RunReport;
use runtime::store::{Store, Write};
use serde_json::Value;

/// Exit code when the run waits for an approval.
const EXIT_WAITING: u8 = 3;
/// Exit code when a budget ran out.
const EXIT_BUDGET: u8 = 4;
/// Exit code when the run was interrupted (Ctrl-C, SIGTERM).
const EXIT_INTERRUPTED: u8 = 130;

/// `galaxy run`
#[derive(Args)]
pub struct RunArgs {
    /// The pack file
    pack: PathBuf,
    /// Sim Mode: simulated models and tools, no keys, no network
    #[arg(long)]
    sim: bool,
    /// Simulated latency of every call without its own `sim_latency` (e.g. 50ms)
    #[arg(long, value_name = "DUR")]
    sim_latency: Option<String>,
    /// Seed of simulated answers
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// An input, KEY=VALUE (repeatable)
    #[arg(long = "input", value_name = "KEY=VALUE")]
    inputs: Vec<String>,
    /// Inputs from a JSON object file
    #[arg(long, value_name = "FILE")]
    input_file: Option<PathBuf>,
    /// A budget override, KIND=VALUE: money=2, tokens=500000, calls=100, time=10m
    #[arg(long = "budget", value_name = "KIND=VALUE")]
    budgets: Vec<String>,
    /// At most this many calls in flight
    #[arg(long)]
    concurrency: Option<usize>,
    /// Print one JSON result (see docs/run-json.md)
    #[arg(long)]
    json: bool,
}

/// `galaxy test`
#[derive(Args)]
pub struct TestArgs {
    /// The pack file
    pack: PathBuf,
    /// Only the cases whose name contains this text
    #[arg(long, value_name = "TEXT")]
    case: Option<String>,
    /// Seed of simulated answers (for what the mocks leave open)
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Print one JSON result
    #[arg(long)]
    json: bool,
}

/// `galaxy resume`
#[derive(Args)]
pub struct ResumeArgs {
    /// The run id (or a unique prefix)
    run: String,
    /// Raise a budget, KIND=VALUE: money=2, tokens=500000, calls=100, time=10m
    #[arg(long = "budget", value_name = "KIND=VALUE")]
    budgets: Vec<String>,
    /// Print one JSON result
    #[arg(long)]
    json: bool,
}

/// `galaxy approve`
#[derive(Args)]
pub struct ApproveArgs {
    /// The run id
    run: String,
    /// The step waiting for approval (as listed in `pending_approvals`); a step name
    /// decides every pending approval under it
    step: String,
    /// Reject instead of approving
    #[arg(long)]
    reject: bool,
    /// Who decides
    #[arg(long)]
    by: Option<String>,
    /// A note kept in the audit log
    #[arg(long)]
    note: Option<String>,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

/// `galaxy runs`
#[derive(Args)]
pub struct RunsArgs {
    /// How many runs to list
    #[arg(long, default_value_t = 20)]
    limit: i64,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

/// `galaxy show`
#[derive(Args)]
pub struct ShowArgs {
    /// The run id
    run: String,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

/// `galaxy trace`
#[derive(Args)]
pub struct TraceArgs {
    /// The run id
    run: String,
    /// Output format
    #[arg(long, value_enum, default_value_t = TraceFormat::Timeline)]
    format: TraceFormat,
    /// Same as `--format json`
    #[arg(long)]
    json: bool,
}

/// How `galaxy trace` prints.
#[derive(Clone, Copy, ValueEnum)]
pub enum TraceFormat {
    /// A timeline in the terminal
    Timeline,
    /// The spans as JSON
    Json,
    /// Chrome trace-event JSON (Perfetto, chrome://tracing)
    Chrome,
}

fn tokio_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// The store URL: `GALAXY_DATABASE_URL`, else `.galaxy/galaxy.db` in the project (the
/// nearest directory up from here holding `.galaxy` or `.git`, else the current one).
fn store_url() -> anyhow::Result<String> {
    if let Ok(url) = std::env::var("GALAXY_DATABASE_URL")
        && !url.trim().is_empty()
    {
        return Ok(url);
    }
    let cwd = std::env::current_dir()?;
    let root = cwd
        .ancestors()
        .find(|dir| dir.join(".galaxy").is_dir() || dir.join(".git").exists())
        .unwrap_or(&cwd)
        .to_path_buf();
    let dir = root.join(".galaxy");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(format!("sqlite://{}", dir.join("galaxy.db").display()))
}

async fn open_store() -> anyhow::Result<Store> {
    let url = store_url()?;
    Store::open(&url)
        .await
        .with_context(|| format!("cannot open the run store at {}", redact_url(&url)))
}

fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://…@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

fn parse_budgets(items: &[String]) -> anyhow::Result<BudgetOverrides> {
    let mut budget = BudgetOverrides::default();
    for item in items {
        budget
            .parse_assignment(item)
            .map_err(|e| anyhow::anyhow!(e))?;
    }
    Ok(budget)
}

/// A cancellation switch flipped by Ctrl-C or SIGTERM.
fn cancellation() -> tokio::sync::watch::Receiver<bool> {
    let (sender, receiver) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(term) => term,
                    Err(_) => {
                        let _ = tokio::signal::ctrl_c().await;
                        let _ = sender.send(true);
                        return;
                    }
                };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        eprintln!("interrupted: stopping in-flight calls and saving the run");
        let _ = sender.send(true);
    });
    receiver
}

/// Live progress: a bar on a terminal, plain lines otherwise (none with `--json`).
fn progress(
    json: bool,
) -> (
    Option<runtime::engine::ProgressFn>,
    Option<indicatif::ProgressBar>,
) {
    if std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        let shown = bar.clone();
        let callback: runtime::engine::ProgressFn =
            Arc::new(move |event: &Progress, c: &Counters| {
                let last = match event {
                    Progress::Started(k) => format!("started {k}"),
                    Progress::Finished(k, s) => format!("{s} {k}"),
                    Progress::Waiting(k) => format!("waiting for approval: {k}"),
                };
                shown.set_message(format!(
                    "{} done · {} running · {} waiting · ${:.4} · {last}",
                    c.done, c.running, c.waiting, c.cost
                ));
            });
        (Some(callback), Some(bar))
    } else if json {
        (None, None)
    } else {
        let callback: runtime::engine::ProgressFn =
            Arc::new(|event: &Progress, _c: &Counters| match event {
                Progress::Started(_) => {}
                Progress::Finished(k, s) => eprintln!("{s:>10}  {k}"),
                Progress::Waiting(k) => eprintln!("   waiting  {k} (needs approval)"),
            });
        (Some(callback), None)
    }
}

fn exit_code(status: RunStatus) -> u8 {
    match status {
        RunStatus::Succeeded => 0,
        RunStatus::Failed | RunStatus::Running => 1,
        RunStatus::WaitingApproval => EXIT_WAITING,
        RunStatus::BudgetExceeded => EXIT_BUDGET,
        RunStatus::Interrupted => EXIT_INTERRUPTED,
    }
}

/// `galaxy run PACK`
pub fn run(args: RunArgs) -> anyhow::Result<u8> {
    let source = std::fs::read_to_string(&args.pack)
        .with_context(|| format!("cannot read {}", args.pack.display()))?;
    let mut inputs = Vec::new();
    for item in &args.inputs {
        let (key, value) = item
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("--input takes KEY=VALUE, got `{item}`"))?;
        inputs.push((key.trim().to_string(), value.to_string()));
    }
    let input_json = match &args.input_file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            match serde_json::from_str::<Value>(&text) {
                Ok(Value::Object(map)) => Some(map),
                _ => anyhow::bail!("{} must hold a JSON object", path.display()),
            }
        }
        None => None,
    };
    let sim_latency_ms = match &args.sim_latency {
        Some(text) => Some(
            runtime::eval::parse_duration(text)
                .ok_or_else(|| anyhow::anyhow!("invalid --sim-latency `{text}` (e.g. 50ms, 2s)"))?,
        ),
        None => None,
    };
    let options = RunOptions {
        sim: args.sim,
        seed: args.seed,
        sim_latency_ms,
        budget: parse_budgets(&args.budgets)?,
        max_concurrency: args.concurrency,
        per_model_concurrency: None,
        eval: None,
    };
    let rt = tokio_runtime()?;
    rt.block_on(async {
        let store = open_store().await?;
        let cancel = cancellation();
        let new_run = NewRun {
            source: &source,
            pack_path: &args.pack,
            inputs,
            input_json,
            options,
        };
        let engine = match Engine::start(Some(store.clone()), new_run, cancel).await {
            Ok(engine) => engine,
            Err(error) => return refused_start(error, &source, &args.pack),
        };
        execute(engine, &store, args.json).await
    })
}

async fn execute(engine: Engine, store: &Store, json: bool) -> anyhow::Result<u8> {
    let run_id = engine.run_id().to_string();
    if !json {
        eprintln!("run {run_id}: {}", engine.plan().pack.name);
    }
    let (callback, bar) = progress(json);
    let engine = match callback {
        Some(callback) => engine.with_progress(callback),
        None => engine,
    };
    let status = engine.execute().await?;
    // The run's own store connection goes now, in the background (closing the store below
    // waits for it).
    drop(engine);
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let report = RunReport::load(store, &run_id).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_summary(&report);
    }
    store.close().await;
    Ok(exit_code(status))
}

fn print_summary(report: &RunReport) {
    let outcome = report.outcome.as_deref().unwrap_or("-");
    println!(
        "run {}  {}  status: {}  outcome: {}",
        report.run_id, report.pack, report.status, outcome
    );
    let failed = report.steps.iter().filter(|s| s.status == "failed").count();
    println!(
        "steps: {} recorded ({} failed)  duration: {:.2}s  tokens: {}  cost: ${:.4}",
        report.steps.len(),
        failed,
        report.duration_ms as f64 / 1000.0,
        report.usage.tokens,
        report.usage.cost
    );
    if let Some(error) = &report.error {
        println!("error: {error}");
    }
    if let Value::Array(kpis) = &report.kpis {
        for kpi in kpis {
            let target = match kpi.get("on_target") {
                Some(Value::Bool(true)) => " (on target)",
                Some(Value::Bool(false)) => " (off target)",
                _ => "",
            };
            println!(
                "kpi {} = {}{target}",
                kpi.get("name")
                    .map(runtime::eval::display)
                    .unwrap_or_default(),
                kpi.get("value")
                    .map(runtime::eval::display)
                    .unwrap_or_default()
            );
        }
    }
    if let Value::Array(citations) = &report.citations
        && !citations.is_empty()
    {
        println!("citations: {}", citations.len());
        for citation in citations.iter().take(5) {
            println!(
                "  - {} ({})",
                citation
                    .get("title")
                    .map(runtime::eval::display)
                    .unwrap_or_default(),
                citation
                    .get("source")
                    .map(runtime::eval::display)
                    .unwrap_or_default()
            );
        }
    }
    if !report.effects.is_empty() {
        println!("effects: {}", report.effects.len());
    }
    for pending in &report.pending_approvals {
        println!(
            "waiting for approval: {}  {} {}  ({})",
            pending.step, pending.tool, pending.args, pending.reason
        );
    }
    if !report.pending_approvals.is_empty() {
        println!(
            "approve with `galaxy approve {} STEP` (or --reject), then `galaxy resume {}`",
            report.run_id, report.run_id
        );
    }
    if report.status == "budget_exceeded" {
        println!(
            "raise the budget and continue: `galaxy resume {} --budget money=2`",
            report.run_id
        );
    }
}

/// `galaxy test PACK`: every eval case as its own Sim Mode run, on a scratch store (the
/// project's runs stay as they are). Exit 0 when every case passes, 1 when one fails.
pub fn test(args: TestArgs) -> anyhow::Result<u8> {
    let source = std::fs::read_to_string(&args.pack)
        .with_context(|| format!("cannot read {}", args.pack.display()))?;
    let scratch =
        std::env::temp_dir().join(format!("galaxy-test-{}-{}", std::process::id(), now_ms()));
    let rt = tokio_runtime()?;
    let outcome = rt.block_on(async {
        let store = Store::open_sqlite_file(&scratch.join("evals.db"))
            .await
            .context("cannot open a scratch store for the eval runs")?;
        let results =
            runtime::evals::run_cases(&store, &source, &args.pack, args.seed, args.case.as_deref())
                .await;
        store.close().await;
        anyhow::Ok(results)
    });
    let _ = std::fs::remove_dir_all(&scratch);
    let results = match outcome? {
        Ok(results) => results,
        Err(error) => return refused_start(error, &source, &args.pack),
    };
    let failed = results.iter().filter(|r| !r.passed).count();
    if args.json {
        let json = serde_json::json!({
            "pack": args.pack.display().to_string(),
            "passed": results.len() - failed,
            "failed": failed,
            "cases": results,
        });
        println!("{}", serde_json::to_string_pretty(&json)?);
    } else {
        for result in &results {
            let mark = if result.passed { "PASS" } else { "FAIL" };
            println!("{mark}  {}", result.name);
            for failure in &result.failures {
                println!("      {failure}");
            }
        }
        match (&args.case, results.is_empty()) {
            (Some(filter), true) => println!("no eval case matches `{filter}`"),
            (None, true) => println!("the pack has no eval cases"),
            _ => println!(
                "{} case{}: {} passed, {failed} failed",
                results.len(),
                if results.len() == 1 { "" } else { "s" },
                results.len() - failed
            ),
        }
    }
    Ok(if failed > 0 {
        crate::EXIT_FAILED
    } else {
        crate::EXIT_OK
    })
}

/// `galaxy resume RUN`
pub fn resume(args: ResumeArgs) -> anyhow::Result<u8> {
    let budget = parse_budgets(&args.budgets)?;
    let rt = tokio_runtime()?;
    rt.block_on(async {
        let store = open_store().await?;
        let cancel = cancellation();
        let engine = match Engine::resume(store.clone(), &args.run, budget, cancel).await {
            Ok(engine) => engine,
            Err(EngineError::Usage(message))
            | Err(EngineError::Store(runtime::StoreError::NoSuchRun(message))) => {
                eprintln!("error: {message}");
                return Ok(crate::EXIT_USAGE);
            }
            Err(error @ EngineError::NotResumable(..)) => {
                eprintln!("error: {error}");
                return Ok(crate::EXIT_USAGE);
            }
            Err(other) => return Err(other.into()),
        };
        execute(engine, &store, args.json).await
    })
}

/// `galaxy approve RUN STEP`
pub fn approve(args: ApproveArgs) -> anyhow::Result<u8> {
    let rt = tokio_runtime()?;
    rt.block_on(async {
        let store = open_store().await?;
        let run = match store.run(&args.run).await {
            Ok(run) => run,
            Err(error) => {
                eprintln!("error: {error}");
                return Ok(crate::EXIT_USAGE);
            }
        };
        let approvals = store.approvals(&run.id).await?;
        let matching: Vec<_> = approvals
            .iter()
            .filter(|a| a.status == "pending")
            .filter(|a| {
                a.key == args.step
                    || a.key.starts_with(&format!("{}[", args.step))
                    || a.key.starts_with(&format!("{}.", args.step))
            })
            .cloned()
            .collect();
        if matching.is_empty() {
            let pending: Vec<&str> = approvals.iter().filter(|a| a.status == "pending").map(|a| a.key.as_str()).collect();
            eprintln!(
                "error: run {} has no pending approval `{}` (pending: {})",
                run.id,
                args.step,
                if pending.is_empty() { "none".to_string() } else { pending.join(", ") }
            );
            return Ok(crate::EXIT_USAGE);
        }
        let decision = if args.reject { "rejected" } else { "approved" };
        let by = args.by.clone().or_else(|| std::env::var("USER").ok()).unwrap_or_else(|| "unknown".into());
        let mut seq = store.next_audit_seq(&run.id).await?;
        let now = now_ms();
        let mut writes = Vec::new();
        for approval in &matching {
            let mut decided = approval.clone();
            decided.status = decision.to_string();
            decided.decided_by = Some(by.clone());
            decided.note = args.note.clone();
            decided.decided_at = Some(now);
            writes.push(Write::Approval(decided));
            writes.push(Write::Audit(runtime::store::AuditRecord {
                seq,
                at: now,
                kind: format!("approval_{decision}"),
                step_key: Some(approval.key.clone()),
                detail: format!("by {by}{}", args.note.as_deref().map(|n| format!(": {n}")).unwrap_or_default()),
            }));
            seq += 1;
        }
        store.apply(&run.id, &writes).await?;
        if args.json {
            let steps: Vec<&str> = matching.iter().map(|a| a.key.as_str()).collect();
            println!("{}", serde_json::json!({ "run_id": run.id, "decision": decision, "steps": steps, "by": by }));
        } else {
            for approval in &matching {
                println!("{decision} {} ({}) in run {}", approval.key, approval.tool, run.id);
            }
            println!("continue with `galaxy resume {}`", run.id);
        }
        store.close().await;
        Ok(crate::EXIT_OK)
    })
}

/// `galaxy runs`
pub fn runs(args: RunsArgs) -> anyhow::Result<u8> {
    let rt = tokio_runtime()?;
    rt.block_on(async {
        let store = open_store().await?;
        let runs = store.runs(args.limit).await?;
        if args.json {
            let list: Vec<Value> = runs
                .iter()
                .map(|r| {
                    serde_json::json!({
                        "run_id": r.id, "pack": r.pack_name, "status": r.status,
                        "outcome": r.outcome, "created_at": r.created_at, "updated_at": r.updated_at,
                    })
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&list)?);
        } else if runs.is_empty() {
            println!("no runs yet: try `galaxy run PACK --sim`");
        } else {
            println!("{:<22} {:<24} {:<17} {:<8} DURATION", "RUN", "PACK", "STATUS", "OUTCOME");
            for r in &runs {
                println!(
                    "{:<22} {:<24} {:<17} {:<8} {:.2}s",
                    r.id,
                    r.pack_name,
                    r.status,
                    r.outcome.as_deref().unwrap_or("-"),
                    (r.updated_at - r.created_at) as f64 / 1000.0
                );
            }
        }
        store.close().await;
        Ok(crate::EXIT_OK)
    })
}

/// `galaxy show RUN`
pub fn show(args: ShowArgs) -> anyhow::Result<u8> {
    let rt = tokio_runtime()?;
    rt.block_on(async {
        let store = open_store().await?;
        let report = match RunReport::load(&store, &args.run).await {
            Ok(report) => report,
            Err(error) => {
                eprintln!("error: {error}");
                return Ok(crate::EXIT_USAGE);
            }
        };
        if args.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            print_summary(&report);
            println!();
            for step in &report.steps {
                let output =
                    runtime::redact::redact_value(&step.output, runtime::redact::Kinds::ALL)
                        .to_string();
                let short: String = output.chars().take(100).collect();
                println!(
                    "{:<10} {:<36} x{} {:>6}ms  {}",
                    step.status,
                    step.id,
                    step.attempts,
                    step.duration_ms,
                    if output.len() > 100 {
                        format!("{short}…")
                    } else {
                        short
                    }
                );
            }
            for approval in &report.approvals {
                println!("approval {}", approval);
            }
        }
        store.close().await;
        Ok(crate::EXIT_OK)
    })
}

/// `galaxy trace RUN`
pub fn trace(args: TraceArgs) -> anyhow::Result<u8> {
    let rt = tokio_runtime()?;
    rt.block_on(async {
        let store = open_store().await?;
        let spans = match runtime::trace::spans(&store, &args.run).await {
            Ok(spans) => spans,
            Err(error) => {
                eprintln!("error: {error}");
                return Ok(crate::EXIT_USAGE);
            }
        };
        let format = if args.json {
            TraceFormat::Json
        } else {
            args.format
        };
        match format {
            TraceFormat::Timeline => print!("{}", runtime::trace::timeline(&spans, 50)),
            TraceFormat::Json => println!("{}", serde_json::to_string_pretty(&spans)?),
            TraceFormat::Chrome => println!(
                "{}",
                serde_json::to_string(&runtime::trace::chrome(&spans))?
            ),
        }
        store.close().await;
        Ok(crate::EXIT_OK)
    })
}

/// The exit for a run or test that could not start: the pack's diagnostics when it does
/// not check (exit 1), the message of a usage error (exit 2), any other error as is.
fn refused_start(error: EngineError, source: &str, pack: &Path) -> anyhow::Result<u8> {
    match error {
        EngineError::DoesNotCheck => {
            let analysis = dsl_check::check(source, &crate::world_for(pack));
            crate::render::human(
                &pack.display().to_string(),
                source,
                &analysis.diagnostics,
                crate::color(),
                &mut std::io::stderr().lock(),
            );
            Ok(crate::EXIT_FAILED)
        }
        EngineError::Usage(message) => {
            eprintln!("error: {message}");
            Ok(crate::EXIT_USAGE)
        }
        other => Err(other.into()),
    }
}

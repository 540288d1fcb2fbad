//! The executor: runs a plan's nodes as soon as their inputs are ready, within concurrency
//! limits, records every attempt in the store before reporting it done, stops at approval
//! gates and budgets, and resumes a stored run from exactly where it stopped.
//!
//! All node futures of a run are driven by one task (`FuturesUnordered` per graph), so a
//! node's work is cancelled by dropping it: Ctrl-C reaches in-flight model and HTTP calls.
//! Store writes are group commits, each acknowledged once durable: a node alone commits
//! inline; while other nodes are in flight a committer task drains the queue (see `writer`).

mod budget;
mod calls;
mod graph;
mod rate;
mod sim_call;
mod writer;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use dsl_check::plan::Plan;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use tokio::sync::{Semaphore, watch};

use crate::providers::PriceTable;
use crate::redact::Kinds;
use crate::store::{ApprovalRecord, AuditRecord, RunRecord, StepRecord, Store, StoreError, Write};

pub use budget::{Budget, BudgetOverrides};
use writer::Writer;

/// Options of a run, stored with it (a resume uses the same ones, budgets may be raised).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RunOptions {
    /// Sim Mode: simulated models and tools, no keys, no network.
    pub sim: bool,
    /// The seed of simulated answers.
    pub seed: u64,
    /// Simulated latency of every model and tool call without its own `sim_latency`.
    pub sim_latency_ms: Option<u64>,
    /// Budget overrides (raise a budget to resume a run that exceeded it).
    #[serde(default)]
    pub budget: BudgetOverrides,
    /// At most this many calls in flight at once (default 1024).
    pub max_concurrency: Option<usize>,
    /// At most this many calls in flight per model (default 16 for real models).
    pub per_model_concurrency: Option<usize>,
    /// Run as this eval case (`galaxy test`): its mocks replace the pack's, and mocked
    /// tools return their mock instead of their `sim`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval: Option<String>,
}

/// The state of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Still going (or crashed while going).
    Running,
    /// Finished and the outcome holds.
    Succeeded,
    /// A step failed or the outcome does not hold.
    Failed,
    /// Stopped at an approval gate.
    WaitingApproval,
    /// Stopped because a budget ran out.
    BudgetExceeded,
    /// Cancelled (Ctrl-C, SIGTERM).
    Interrupted,
}

impl RunStatus {
    /// The status as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::WaitingApproval => "waiting_approval",
            RunStatus::BudgetExceeded => "budget_exceeded",
            RunStatus::Interrupted => "interrupted",
        }
    }

    /// Parses a stored status.
    pub fn parse(text: &str) -> Option<RunStatus> {
        Some(match text {
            "running" => RunStatus::Running,
            "succeeded" => RunStatus::Succeeded,
            "failed" => RunStatus::Failed,
            "waiting_approval" => RunStatus::WaitingApproval,
            "budget_exceeded" => RunStatus::BudgetExceeded,
            "interrupted" => RunStatus::Interrupted,
            _ => return None,
        })
    }
}

/// A failure to start or continue a run (the pack's own failures are run statuses).
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The pack does not check.
    #[error("the pack has errors; run `galaxy check` to see them")]
    DoesNotCheck,
    /// A value needed before the start is missing (an input, a key).
    #[error("{0}")]
    Usage(String),
    /// The stored plan does not match the stored source any more.
    #[error(
        "the stored plan of run {0} does not match its source (hash {1} vs {2}); the toolchain changed how it lowers this pack"
    )]
    PlanMismatch(String, String, String),
    /// The run cannot be resumed in its state.
    #[error("run {0} is {1}; only interrupted, crashed, approved or over-budget runs resume")]
    NotResumable(String, String),
}

/// Something that happened, for live progress.
#[derive(Debug, Clone)]
pub enum Progress {
    /// A step attempt started.
    Started(String),
    /// A step finished with this status (`succeeded`, `failed`, `cached`, ...).
    Finished(String, String),
    /// A step waits for approval.
    Waiting(String),
}

/// Live progress callback.
pub type ProgressFn = Arc<dyn Fn(&Progress, &Counters) + Send + Sync>;

/// Counters shown by the progress display.
#[derive(Debug, Clone, Default)]
pub struct Counters {
    /// Steps finished.
    pub done: usize,
    /// Steps running.
    pub running: usize,
    /// Steps waiting for approval.
    pub waiting: usize,
    /// Cost so far.
    pub cost: f64,
    /// Tokens so far.
    pub tokens: u64,
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// A value as compact JSON text, written straight into a buffer: `Value::to_string` goes
/// through the formatting machinery, about three times slower, and runs for every step's
/// output and trace detail.
pub(crate) fn json_text(value: &Value) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// The SHA-256 of `text`, hex.
pub fn sha256_hex(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// A new run id: time-ordered and unique (`r` + base-36 millis + random).
pub fn new_run_id() -> String {
    let millis = now_ms() as u64;
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let noise = crate::sim::fnv(format!("{nanos}-{}", std::process::id()).as_bytes());
    format!(
        "r{}{}",
        base36(millis),
        &base36(noise)[..6.min(base36(noise).len())]
    )
}

fn base36(mut n: u64) -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// A pack checked and lowered for a run.
pub struct Lowered {
    /// The plan.
    pub plan: Plan,
    /// The plan JSON.
    pub plan_json: String,
    /// Its hash.
    pub plan_hash: String,
}

/// Checks and lowers `source` (imports resolved next to `pack_path`).
pub fn lower_source(source: &str, pack_path: &Path) -> Result<Lowered, EngineError> {
    let world = DiskWorld {
        dir: pack_path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default(),
    };
    let plan = dsl_check::check(source, &world)
        .into_plan()
        .ok_or(EngineError::DoesNotCheck)?;
    let plan_json = plan.to_json();
    let plan_hash = sha256_hex(&plan_json);
    Ok(Lowered {
        plan,
        plan_json,
        plan_hash,
    })
}

/// Project files from disk, relative to the pack.
struct DiskWorld {
    dir: PathBuf,
}

impl dsl_check::World for DiskWorld {
    fn read_file(&self, path: &str) -> Option<String> {
        std::fs::read_to_string(self.dir.join(path)).ok()
    }
}

/// A run being executed.
pub struct Engine {
    pub(crate) run_id: String,
    pub(crate) plan: Arc<Plan>,
    pub(crate) options: RunOptions,
    pub(crate) inputs: Map<String, Value>,
    pub(crate) base_dir: PathBuf,
    pub(crate) writer: Writer,
    /// Steps finished in earlier invocations, by key.
    pub(crate) prior: HashMap<String, StepRecord>,
    /// Approvals known at the start, by gate key.
    pub(crate) approvals: HashMap<String, ApprovalRecord>,
    /// Effects issued in earlier invocations, by the key of the step that issued them: an
    /// effect issued again with the same arguments keeps its idempotency key.
    pub(crate) effects: HashMap<String, Vec<crate::store::EffectRecord>>,
    /// Top-level step values.
    pub(crate) values: RwLock<crate::eval::StepValues>,
    pub(crate) global_limit: Semaphore,
    /// The policy's `rate` rules.
    pub(crate) rates: rate::RateLimits,
    pub(crate) model_limits: Mutex<HashMap<String, Arc<Semaphore>>>,
    pub(crate) budget: Mutex<Budget>,
    pub(crate) budget_settled: tokio::sync::Notify,
    pub(crate) cancel: watch::Receiver<bool>,
    pub(crate) redact_model: Kinds,
    pub(crate) redact_trace: Kinds,
    pub(crate) prices: PriceTable,
    pub(crate) mocks: HashMap<String, dsl_syntax::ast::Expr>,
    /// The knowledge sources, files read at the start.
    pub(crate) knowledge: crate::knowledge::Library,
    /// The HTTP client, built at the first real call: building one loads the system's root
    /// certificates, which a simulated run never needs.
    http: std::sync::OnceLock<reqwest::Client>,
    pub(crate) providers: Mutex<HashMap<String, Arc<dyn crate::providers::ModelProvider>>>,
    pub(crate) progress: Option<ProgressFn>,
    pub(crate) counters: Mutex<Counters>,
    pub(crate) audit_seq: AtomicI64,
    pub(crate) started: Instant,
}

/// What a new run starts from.
pub struct NewRun<'a> {
    /// The pack's source.
    pub source: &'a str,
    /// The pack file.
    pub pack_path: &'a Path,
    /// `KEY=VALUE` inputs, as given.
    pub inputs: Vec<(String, String)>,
    /// Inputs from a JSON file (given ones override these).
    pub input_json: Option<Map<String, Value>>,
    /// The options.
    pub options: RunOptions,
}

impl Engine {
    /// The HTTP client for providers, tools and knowledge, built at its first use.
    pub(crate) fn http(&self) -> &reqwest::Client {
        self.http.get_or_init(reqwest::Client::new)
    }

    /// Checks, lowers and records a new run; the engine is ready to [`Engine::execute`].
    pub async fn start(
        store: Option<Store>,
        run: NewRun<'_>,
        cancel: watch::Receiver<bool>,
    ) -> Result<Engine, EngineError> {
        let lowered = lower_source(run.source, run.pack_path)?;
        let inputs = resolve_inputs(&lowered.plan, run.input_json, &run.inputs)?;
        if !run.options.sim {
            preflight_keys(&lowered.plan)?;
        }
        let knowledge = load_knowledge(&lowered.plan, run.pack_path)?;
        let run_id = new_run_id();
        let now = now_ms();
        let record = RunRecord {
            id: run_id.clone(),
            pack_name: lowered.plan.pack.name.clone(),
            // Absolute, so a resume from another directory finds the pack's files.
            pack_path: std::path::absolute(run.pack_path)
                .unwrap_or_else(|_| run.pack_path.to_path_buf())
                .display()
                .to_string(),
            source: run.source.to_string(),
            plan_json: lowered.plan_json.clone(),
            plan_hash: lowered.plan_hash.clone(),
            inputs_json: Value::Object(inputs.clone()).to_string(),
            options_json: serde_json::to_string(&run.options).unwrap_or_default(),
            status: RunStatus::Running.as_str().to_string(),
            outcome: None,
            error: None,
            result_json: None,
            created_at: now,
            updated_at: now,
        };
        if let Some(store) = &store {
            store.create_run(&record).await?;
        }
        let base_dir = run
            .pack_path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let mut engine = Engine::build(
            run_id,
            lowered.plan,
            run.options,
            inputs,
            base_dir,
            store,
            HashMap::new(),
            HashMap::new(),
            0,
            cancel,
        );
        engine.knowledge = knowledge;
        engine
            .audit("run_started", None, format!("pack {}", record.pack_name))
            .await;
        Ok(engine)
    }

    /// Loads a stored run to continue it: re-lowers its stored source, checks the plan hash,
    /// and skips every step already done.
    pub async fn resume(
        store: Store,
        run_id: &str,
        budget: BudgetOverrides,
        cancel: watch::Receiver<bool>,
    ) -> Result<Engine, EngineError> {
        let record = store.run(run_id).await?;
        let status = RunStatus::parse(&record.status).unwrap_or(RunStatus::Running);
        if status == RunStatus::Succeeded {
            return Err(EngineError::NotResumable(record.id, record.status));
        }
        let pack_path = PathBuf::from(&record.pack_path);
        let lowered = lower_source(&record.source, &pack_path)?;
        if lowered.plan_hash != record.plan_hash {
            return Err(EngineError::PlanMismatch(
                record.id,
                record.plan_hash,
                lowered.plan_hash,
            ));
        }
        let mut options: RunOptions = serde_json::from_str(&record.options_json)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        options.budget.raise(&budget);
        store
            .set_options(
                &record.id,
                &serde_json::to_string(&options).unwrap_or_default(),
            )
            .await?;
        if !options.sim {
            preflight_keys(&lowered.plan)?;
        }
        let knowledge = load_knowledge(&lowered.plan, &pack_path)?;
        let inputs: Map<String, Value> = serde_json::from_str(&record.inputs_json)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let prior: HashMap<String, StepRecord> = store
            .steps(&record.id)
            .await?
            .into_iter()
            .filter(|s| s.status != "failed")
            .map(|s| (s.key.clone(), s))
            .collect();
        let approvals = store
            .approvals(&record.id)
            .await?
            .into_iter()
            .map(|a| (a.key.clone(), a))
            .collect();
        let effects = store.effects(&record.id).await?;
        let seq = store.next_audit_seq(&record.id).await?;
        // The wall time of earlier invocations counts against the time budget.
        let step_ends: Vec<i64> = prior.values().map(|s| s.ended_at).collect();
        let time_used_ms = budget::elapsed_before(&store.audit(&record.id).await?, &step_ends);
        let base_dir = pack_path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let mut engine = Engine::build(
            record.id.clone(),
            lowered.plan,
            options,
            inputs,
            base_dir,
            Some(store),
            prior,
            approvals,
            seq,
            cancel,
        );
        engine.knowledge = knowledge;
        for effect in effects {
            engine
                .effects
                .entry(effect.step_key.clone())
                .or_default()
                .push(effect);
        }
        {
            let mut budget = engine.budget.lock().unwrap_or_else(|e| e.into_inner());
            budget.time_used_ms = time_used_ms;
            for step in engine.prior.values() {
                budget.add_used(step.input_tokens + step.output_tokens, step.cost);
                if graph::is_call_node(&engine.plan.graph, &step.node) {
                    budget.calls_used += 1;
                }
            }
        }
        engine.audit("run_resumed", None, String::new()).await;
        Ok(engine)
    }

    #[allow(clippy::too_many_arguments)]
    fn build(
        run_id: String,
        plan: Plan,
        options: RunOptions,
        inputs: Map<String, Value>,
        base_dir: PathBuf,
        store: Option<Store>,
        prior: HashMap<String, StepRecord>,
        approvals: HashMap<String, ApprovalRecord>,
        audit_seq: i64,
        cancel: watch::Receiver<bool>,
    ) -> Engine {
        let mut redact_model = Kinds::default();
        let mut redact_trace = Kinds::default();
        for rule in &plan.policy.redact {
            match rule.before.as_str() {
                "model" => redact_model.add(&rule.what),
                "trace" => redact_trace.add(&rule.what),
                _ => {
                    redact_model.add(&rule.what);
                    redact_trace.add(&rule.what);
                }
            }
        }
        // Keys are never written to traces or logs, whatever the policy says.
        redact_trace.keys = true;
        let budget = Budget::from_policy(&plan.policy, &options.budget);
        let mut mocks = HashMap::new();
        for eval in &plan.evals {
            if options.eval.as_ref().is_some_and(|case| *case != eval.name) {
                continue;
            }
            for (target, expr) in &eval.mocks {
                mocks.entry(target.clone()).or_insert_with(|| expr.clone());
            }
        }
        let prices = PriceTable::for_plan(&plan);
        let rates = rate::RateLimits::new(&plan.policy.rates);
        let top_level_nodes = plan.graph.graph.node_count();
        Engine {
            writer: Writer::new(store, run_id.clone()),
            run_id,
            plan: Arc::new(plan),
            global_limit: Semaphore::new(options.max_concurrency.unwrap_or(1024).max(1)),
            rates,
            options,
            inputs,
            base_dir,
            prior,
            approvals,
            effects: HashMap::new(),
            // Every top-level step has a value: sized once, not grown through a wave.
            values: RwLock::new(crate::eval::StepValues::with_capacity_and_hasher(
                top_level_nodes,
                Default::default(),
            )),
            model_limits: Mutex::new(HashMap::new()),
            budget: Mutex::new(budget),
            budget_settled: tokio::sync::Notify::new(),
            cancel,
            redact_model,
            redact_trace,
            prices,
            mocks,
            knowledge: crate::knowledge::Library::default(),
            http: std::sync::OnceLock::new(),
            providers: Mutex::new(HashMap::new()),
            progress: None,
            counters: Mutex::new(Counters::default()),
            audit_seq: AtomicI64::new(audit_seq),
            started: Instant::now(),
        }
    }

    /// Sets the live progress callback.
    pub fn with_progress(mut self, progress: ProgressFn) -> Engine {
        self.progress = Some(progress);
        self
    }

    /// The run's id.
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// The plan being run.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Runs the plan to its end (or to a gate, a budget, a failure or cancellation), then
    /// records the final status and result.
    pub async fn execute(&self) -> Result<RunStatus, EngineError> {
        let plan = Arc::clone(&self.plan);
        let outcome = self.run_graph(&plan.graph, graph::Ctx::root()).await;
        let status = match outcome.blocker {
            Some(graph::Blocker::Interrupted) => RunStatus::Interrupted,
            Some(graph::Blocker::Budget) => RunStatus::BudgetExceeded,
            Some(graph::Blocker::Failed) => RunStatus::Failed,
            Some(graph::Blocker::Waiting) => RunStatus::WaitingApproval,
            None => RunStatus::Succeeded,
        };
        let (status, outcome_text, result) = if status == RunStatus::Succeeded {
            let result = self.result_document();
            let holds = result
                .get("outcome_holds")
                .and_then(Value::as_bool)
                .unwrap_or(true);
            let status = if holds {
                RunStatus::Succeeded
            } else {
                RunStatus::Failed
            };
            let text = if holds { "success" } else { "failure" };
            (status, Some(text.to_string()), Some(result.to_string()))
        } else if status == RunStatus::Failed {
            (status, Some("failure".to_string()), None)
        } else {
            (status, None, None)
        };
        let error = outcome.error.clone();
        let at = now_ms();
        let mut writes = vec![Write::RunStatus {
            status: status.as_str().to_string(),
            outcome: outcome_text,
            error: error.clone(),
            result_json: result,
            at,
        }];
        writes.push(self.audit_write(
            &format!("run_{}", status.as_str()),
            None,
            error.unwrap_or_default(),
        ));
        self.writer.write(writes).await?;
        self.writer.close().await;
        Ok(status)
    }

    /// Outcome, KPIs and citations, evaluated over the finished steps.
    fn result_document(&self) -> Value {
        let values = self.values.read().unwrap_or_else(|e| e.into_inner());
        let scope = crate::eval::Scope {
            inputs: Some(&self.inputs),
            steps: Some(&*values),
            ..crate::eval::Scope::default()
        };
        let outcome = self
            .plan
            .outcome
            .as_ref()
            .map(|expr| crate::eval::eval(expr, &scope));
        let (holds, outcome_error) = match outcome {
            None => (true, None),
            Some(Ok(value)) => (crate::eval::truthy(&value), None),
            Some(Err(error)) => (false, Some(error.to_string())),
        };
        let mut kpis = Vec::new();
        for kpi in &self.plan.kpis {
            let value = crate::eval::eval(&kpi.expr, &scope).unwrap_or(Value::Null);
            let on_target = kpi.target.as_ref().map(|(op, expr)| {
                let target = crate::eval::eval(expr, &scope).unwrap_or(Value::Null);
                compare(*op, &value, &target)
            });
            kpis.push(
                serde_json::json!({ "name": kpi.name, "value": value, "on_target": on_target }),
            );
        }
        let mut citations = Vec::new();
        for value in values.values() {
            collect_citations(value, &mut citations);
        }
        citations.sort_by_key(Value::to_string);
        citations.dedup();
        serde_json::json!({
            "outcome_holds": holds,
            "outcome_error": outcome_error,
            "kpis": kpis,
            "citations": citations,
        })
    }

    pub(crate) fn cancelled(&self) -> bool {
        *self.cancel.borrow()
    }

    /// Whether steps in flight must stop: the run is cancelled, or its switch is gone.
    pub(crate) fn cancel_requested(&self) -> bool {
        self.cancelled() || self.cancel.has_changed().is_err()
    }

    pub(crate) fn audit_write(&self, kind: &str, step: Option<&str>, detail: String) -> Write {
        Write::Audit(AuditRecord {
            seq: self.audit_seq.fetch_add(1, Ordering::SeqCst),
            at: now_ms(),
            kind: kind.to_string(),
            step_key: step.map(str::to_string),
            detail: crate::redact::redact_text(&detail, self.redact_trace),
        })
    }

    async fn audit(&self, kind: &str, step: Option<&str>, detail: String) {
        let write = self.audit_write(kind, step, detail);
        let _ = self.writer.write(vec![write]).await;
    }

    /// Updates the counters and tells the progress display, if any (the event is only built
    /// for one: a run without a display does not allocate it for every step).
    pub(crate) fn report(
        &self,
        event: impl FnOnce() -> Progress,
        change: impl FnOnce(&mut Counters),
    ) {
        let mut counters = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        change(&mut counters);
        if let Some(progress) = &self.progress {
            progress(&event(), &counters);
        }
    }
}

fn compare(op: dsl_syntax::ast::BinaryOp, a: &Value, b: &Value) -> bool {
    use dsl_syntax::ast::{Expr, ExprKind};
    let lit = |v: &Value| Expr {
        kind: match v {
            Value::Number(n) if n.is_i64() => ExprKind::Int(n.as_i64().unwrap_or(0)),
            Value::Number(n) => ExprKind::Float(n.as_f64().unwrap_or(0.0)),
            Value::Bool(b) => ExprKind::Bool(*b),
            _ => ExprKind::None,
        },
        span: dsl_syntax::Span { start: 0, end: 0 },
    };
    let expr = Expr {
        kind: ExprKind::Binary(op, Box::new(lit(a)), Box::new(lit(b))),
        span: dsl_syntax::Span { start: 0, end: 0 },
    };
    crate::eval::eval(&expr, &crate::eval::Scope::default())
        .map(|v| crate::eval::truthy(&v))
        .unwrap_or(false)
}

fn collect_citations(value: &Value, out: &mut Vec<Value>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::Array(citations)) = map.get("citations") {
                out.extend(citations.iter().cloned());
            }
            for (key, inner) in map {
                if key != "citations" {
                    collect_citations(inner, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_citations(v, out)),
        _ => {}
    }
}

/// The inputs of a run: defaults, then the JSON file, then `KEY=VALUE` pairs.
fn resolve_inputs(
    plan: &Plan,
    file: Option<Map<String, Value>>,
    given: &[(String, String)],
) -> Result<Map<String, Value>, EngineError> {
    let mut inputs = Map::new();
    let scope = crate::eval::Scope::default();
    for input in &plan.inputs {
        if let Some(default) = &input.default
            && let Ok(value) = crate::eval::eval(default, &scope)
        {
            inputs.insert(input.name.clone(), value);
        }
    }
    for (key, value) in file.into_iter().flatten() {
        inputs.insert(key, value);
    }
    for (key, text) in given {
        let Some(input) = plan.inputs.iter().find(|i| &i.name == key) else {
            let known: Vec<&str> = plan.inputs.iter().map(|i| i.name.as_str()).collect();
            return Err(EngineError::Usage(format!(
                "the pack has no input `{key}` (inputs: {})",
                known.join(", ")
            )));
        };
        let value = match input.ty.strip_optional() {
            dsl_check::Ty::String
            | dsl_check::Ty::Union(_)
            | dsl_check::Ty::Duration
            | dsl_check::Ty::Money => Value::String(text.clone()),
            _ => serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.clone())),
        };
        inputs.insert(key.clone(), value);
    }
    for input in &plan.inputs {
        let optional = matches!(input.ty, dsl_check::Ty::Optional(_) | dsl_check::Ty::Json);
        if !inputs.contains_key(&input.name) {
            if optional {
                inputs.insert(input.name.clone(), Value::Null);
            } else {
                return Err(EngineError::Usage(format!(
                    "missing input `{}` ({}): pass --input {}=VALUE",
                    input.name, input.type_text, input.name
                )));
            }
        }
    }
    Ok(inputs)
}

/// Reads the pack's knowledge files (relative to the pack): a missing or oversized source
/// fails the run before it starts.
fn load_knowledge(plan: &Plan, pack_path: &Path) -> Result<crate::knowledge::Library, EngineError> {
    let dir = pack_path.parent().unwrap_or(Path::new(""));
    crate::knowledge::Library::load(plan, dir).map_err(|e| EngineError::Usage(e.to_string()))
}

/// The environment variables a real run needs: each model's key (and the secrets of tool
/// requests). A missing one fails the run before it starts.
fn preflight_keys(plan: &Plan) -> Result<(), EngineError> {
    let mut needed: Vec<(String, String)> = Vec::new();
    for model in &plan.models {
        let var = model.provider.api_key_secret.clone().or_else(|| {
            match model.provider.provider.as_str() {
                "openai" => Some("OPENAI_API_KEY".to_string()),
                "anthropic" => Some("ANTHROPIC_API_KEY".to_string()),
                _ => None,
            }
        });
        if let Some(var) = var {
            needed.push((var, format!("model `{}`", model.name)));
        }
    }
    for tool in &plan.tools {
        if let Some(request) = &tool.request {
            let mut secrets = Vec::new();
            calls::secret_names(request, &mut secrets);
            for secret in secrets {
                needed.push((secret, format!("tool `{}`", tool.key())));
            }
        }
    }
    for (var, what) in needed {
        if std::env::var(&var).map_or(true, |v| v.trim().is_empty()) {
            return Err(EngineError::Usage(format!(
                "the environment variable {var} is not set ({what} needs it); set it, or try the pack without keys with --sim"
            )));
        }
    }
    Ok(())
}

//! Eval cases (`galaxy test`): each `eval` of a pack runs as its own Sim Mode run with the
//! case's inputs, its mocks (models and tools: a mocked tool returns its mock, not its
//! `sim`) and its approval decisions, then its `expect`s are checked over the finished steps.
//!
//! A gate the case decides (`approve STEP`, `reject STEP`, `approve all`) is decided in the
//! store and the run resumed, exactly as a person would with `galaxy approve` and
//! `galaxy resume`; a gate the case does not decide fails the case.

use std::path::Path;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::engine::{BudgetOverrides, Engine, EngineError, NewRun, RunOptions, RunStatus};
use crate::store::{Store, Write};

/// How many times one case may stop at gates before it is given up.
const MAX_ROUNDS: usize = 64;

/// The result of one eval case.
#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    /// The case's name.
    pub name: String,
    /// Whether every expectation held and the run finished.
    pub passed: bool,
    /// The run's final status.
    pub status: String,
    /// The run's id in the store the cases ran on.
    pub run_id: String,
    /// The gates it decided, as `(step, approved)`.
    pub decisions: Vec<(String, bool)>,
    /// What went wrong: failed expectations (with their source text), an undecided gate,
    /// a failed run.
    pub failures: Vec<String>,
}

/// Runs the eval cases of the pack `source` (at `pack_path`) on `store`: every case, or
/// only those whose name contains `filter`.
pub async fn run_cases(
    store: &Store,
    source: &str,
    pack_path: &Path,
    seed: u64,
    filter: Option<&str>,
) -> Result<Vec<CaseResult>, EngineError> {
    let lowered = crate::engine::lower_source(source, pack_path)?;
    let base_dir = pack_path.parent().unwrap_or(Path::new(""));
    let mut results = Vec::new();
    for case in &lowered.plan.evals {
        if filter.is_some_and(|f| !case.name.contains(f)) {
            continue;
        }
        results.push(run_case(store, source, pack_path, base_dir, seed, case).await?);
    }
    Ok(results)
}

async fn run_case(
    store: &Store,
    source: &str,
    pack_path: &Path,
    base_dir: &Path,
    seed: u64,
    case: &dsl_check::plan::PlanEval,
) -> Result<CaseResult, EngineError> {
    let mut result = CaseResult {
        name: case.name.clone(),
        passed: false,
        status: String::new(),
        run_id: String::new(),
        decisions: Vec::new(),
        failures: Vec::new(),
    };
    // The case's inputs, evaluated (fixtures relative to the pack).
    let mut inputs = Map::new();
    let scope = crate::eval::Scope {
        base_dir: Some(base_dir),
        ..crate::eval::Scope::default()
    };
    for (name, expr) in &case.inputs {
        match crate::eval::eval(expr, &scope) {
            Ok(value) => {
                inputs.insert(name.clone(), value);
            }
            Err(error) => {
                result.failures.push(format!("input `{name}`: {error}"));
                return Ok(result);
            }
        }
    }
    let (_cancel, receiver) = tokio::sync::watch::channel(false);
    let new_run = NewRun {
        source,
        pack_path,
        inputs: Vec::new(),
        input_json: Some(inputs),
        options: RunOptions {
            sim: true,
            seed,
            eval: Some(case.name.clone()),
            ..RunOptions::default()
        },
    };
    let mut engine = match Engine::start(Some(store.clone()), new_run, receiver.clone()).await {
        Ok(engine) => engine,
        Err(EngineError::Usage(message)) => {
            result.failures.push(message);
            return Ok(result);
        }
        Err(other) => return Err(other),
    };
    result.run_id = engine.run_id().to_string();
    let mut rounds = 0;
    let status = loop {
        let status = engine.execute().await?;
        if status != RunStatus::WaitingApproval {
            break status;
        }
        rounds += 1;
        if rounds > MAX_ROUNDS {
            result.failures.push(format!(
                "still waiting for approvals after {MAX_ROUNDS} rounds"
            ));
            break status;
        }
        let undecided = decide(store, &result.run_id, case, &mut result.decisions).await?;
        if !undecided.is_empty() {
            result.failures.push(format!(
                "waits for approval of {}: add `approve STEP` or `reject STEP` to the case",
                undecided.join(", ")
            ));
            break status;
        }
        engine = Engine::resume(
            store.clone(),
            &result.run_id,
            BudgetOverrides::default(),
            receiver.clone(),
        )
        .await?;
    };
    result.status = status.as_str().to_string();
    let report = crate::report::RunReport::load(store, &result.run_id).await?;
    // A run that reached its end (its outcome held or not) has every value to check.
    let finished =
        status == RunStatus::Succeeded || (status == RunStatus::Failed && report.error.is_none());
    if status == RunStatus::Failed && finished {
        result.failures.push("the outcome does not hold".into());
    } else if !finished && result.failures.is_empty() {
        result.failures.push(format!(
            "the run ended {}{}",
            status.as_str(),
            report.error.map(|e| format!(": {e}")).unwrap_or_default()
        ));
    }
    if finished {
        for expect in &case.expects {
            let text = source
                .get(expect.span.start as usize..expect.span.end as usize)
                .unwrap_or("expectation")
                .to_string();
            match engine.evaluate(expect) {
                Ok(value) if crate::eval::truthy(&value) => {}
                Ok(_) => result
                    .failures
                    .push(format!("expect {text}: does not hold")),
                Err(error) => result.failures.push(format!("expect {text}: {error}")),
            }
        }
    }
    result.passed = result.failures.is_empty();
    Ok(result)
}

/// Decides the run's pending approvals from the case's `approve` / `reject` statements;
/// returns the gates the case leaves undecided.
async fn decide(
    store: &Store,
    run_id: &str,
    case: &dsl_check::plan::PlanEval,
    decisions: &mut Vec<(String, bool)>,
) -> Result<Vec<String>, EngineError> {
    let mut writes = Vec::new();
    let mut undecided = Vec::new();
    let mut seq = store.next_audit_seq(run_id).await?;
    for mut approval in store.approvals(run_id).await? {
        if approval.status != "pending" {
            continue;
        }
        let covers = |step: &str| {
            step == "all"
                || approval.key == step
                || approval.key.starts_with(&format!("{step}["))
                || approval.key.starts_with(&format!("{step}."))
        };
        // The most specific decision wins over `all`.
        let decision = case
            .decisions
            .iter()
            .filter(|(step, _)| covers(step))
            .max_by_key(|(step, _)| step != "all")
            .map(|(_, approved)| *approved);
        let Some(approved) = decision else {
            undecided.push(approval.key.clone());
            continue;
        };
        let status = if approved { "approved" } else { "rejected" };
        approval.status = status.to_string();
        approval.decided_by = Some(format!("eval \"{}\"", case.name));
        approval.decided_at = Some(crate::engine::now_ms());
        decisions.push((approval.key.clone(), approved));
        writes.push(Write::Audit(crate::store::AuditRecord {
            seq,
            at: crate::engine::now_ms(),
            kind: format!("approval_{status}"),
            step_key: Some(approval.key.clone()),
            detail: format!("by eval \"{}\"", case.name),
        }));
        seq += 1;
        writes.push(Write::Approval(approval));
    }
    store.apply(run_id, &writes).await?;
    Ok(undecided)
}

impl Engine {
    /// Evaluates `expr` over the run's inputs and finished steps (after [`Engine::execute`]).
    pub fn evaluate(&self, expr: &dsl_syntax::ast::Expr) -> Result<Value, crate::eval::EvalError> {
        self.eval_in(expr, &[], None)
    }
}

//! The run report: what `galaxy run --json`, `resume --json` and `show --json` print, read
//! back from the store (the store is the single source of truth). Documented in
//! `docs/run-json.md`.

use serde::Serialize;
use serde_json::Value;

use crate::store::{Store, StoreError};

/// One run, as reported.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// The run id.
    pub run_id: String,
    /// The pack's name.
    pub pack: String,
    /// `succeeded`, `failed`, `waiting_approval`, `budget_exceeded`, `interrupted`, `running`.
    pub status: String,
    /// `success`, `failure`, or `null` while unknown.
    pub outcome: Option<String>,
    /// Why the run failed or stopped.
    pub error: Option<String>,
    /// Approvals waiting for a person.
    pub pending_approvals: Vec<PendingApproval>,
    /// Every decided approval.
    pub approvals: Vec<Value>,
    /// Every finished step (map items and sub-steps included).
    pub steps: Vec<StepReport>,
    /// Tokens and cost.
    pub usage: UsageReport,
    /// Every effect issued, with its idempotency key.
    pub effects: Vec<EffectReport>,
    /// KPI values.
    pub kpis: Value,
    /// Citations of the answers.
    pub citations: Value,
    /// Wall time from the run's creation to its last change (ms).
    pub duration_ms: i64,
    /// When the run was created (ms since the epoch).
    pub created_at: i64,
}

/// An approval waiting for a decision.
#[derive(Debug, Clone, Serialize)]
pub struct PendingApproval {
    /// The step key, as `galaxy approve RUN STEP` takes it.
    pub step: String,
    /// The gated tool (`approve` for an approval step).
    pub tool: String,
    /// The call's arguments (redacted).
    pub args: Value,
    /// Why it needs approval.
    pub reason: String,
}

/// One step.
#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    /// The step key (`inbox`, `triage[2]`, `send[0].body.approval`).
    pub id: String,
    /// The plan node.
    pub node: String,
    /// `succeeded`, `failed`, `skipped`, `rejected`.
    pub status: String,
    /// Attempts made.
    pub attempts: i64,
    /// Its output.
    pub output: Value,
    /// Tokens.
    pub tokens: i64,
    /// Cost.
    pub cost: f64,
    /// The error, when failed.
    pub error: Option<String>,
    /// Duration (ms).
    pub duration_ms: i64,
}

/// Tokens and cost of a run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct UsageReport {
    /// Model input tokens.
    pub input_tokens: i64,
    /// Model output tokens.
    pub output_tokens: i64,
    /// All tokens.
    pub tokens: i64,
    /// Cost in USD.
    pub cost: f64,
}

/// One effect.
#[derive(Debug, Clone, Serialize)]
pub struct EffectReport {
    /// The idempotency key.
    pub key: String,
    /// The tool.
    pub tool: String,
    /// The step that issued it.
    pub step: String,
    /// How many times it was sent (always with the same key).
    pub times_issued: i64,
    /// `done`, or `issued` when its outcome is not known yet.
    pub status: String,
}

impl RunReport {
    /// Reads run `id` from the store.
    pub async fn load(store: &Store, id: &str) -> Result<RunReport, StoreError> {
        let run = store.run(id).await?;
        let steps = store.steps(&run.id).await?;
        let approvals = store.approvals(&run.id).await?;
        let effects = store.effects(&run.id).await?;
        let mut usage = UsageReport::default();
        for step in &steps {
            usage.input_tokens += step.input_tokens;
            usage.output_tokens += step.output_tokens;
            usage.cost += step.cost;
        }
        usage.tokens = usage.input_tokens + usage.output_tokens;
        let result: Value = run
            .result_json
            .as_deref()
            .and_then(|r| serde_json::from_str(r).ok())
            .unwrap_or(Value::Null);
        Ok(RunReport {
            run_id: run.id.clone(),
            pack: run.pack_name.clone(),
            status: run.status.clone(),
            outcome: run.outcome.clone(),
            error: run.error.clone(),
            pending_approvals: approvals
                .iter()
                .filter(|a| a.status == "pending")
                .map(|a| PendingApproval {
                    step: a.key.clone(),
                    tool: a.tool.clone(),
                    args: serde_json::from_str(&a.args_json).unwrap_or(Value::Null),
                    reason: a.reason.clone(),
                })
                .collect(),
            approvals: approvals
                .iter()
                .filter(|a| a.status != "pending")
                .map(|a| {
                    serde_json::json!({
                        "step": a.key, "tool": a.tool, "status": a.status,
                        "by": a.decided_by, "note": a.note,
                    })
                })
                .collect(),
            steps: steps
                .iter()
                .map(|s| StepReport {
                    id: s.key.clone(),
                    node: s.node.clone(),
                    status: s.status.clone(),
                    attempts: s.attempts,
                    output: s
                        .output_json
                        .as_deref()
                        .and_then(|o| serde_json::from_str(o).ok())
                        .unwrap_or(Value::Null),
                    tokens: s.input_tokens + s.output_tokens,
                    cost: s.cost,
                    error: s.error.clone(),
                    duration_ms: s.ended_at - s.started_at,
                })
                .collect(),
            usage,
            effects: effects
                .iter()
                .map(|e| EffectReport {
                    key: e.key.clone(),
                    tool: e.tool.clone(),
                    step: e.step_key.clone(),
                    times_issued: e.times_issued,
                    status: e.status.clone(),
                })
                .collect(),
            kpis: result
                .get("kpis")
                .cloned()
                .unwrap_or(Value::Array(Vec::new())),
            citations: result
                .get("citations")
                .cloned()
                .unwrap_or(Value::Array(Vec::new())),
            duration_ms: run.updated_at - run.created_at,
            created_at: run.created_at,
        })
    }
}

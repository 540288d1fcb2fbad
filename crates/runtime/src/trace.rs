//! Traces: a span per node attempt, read from the store, drawn as a terminal timeline, as
//! JSON, or as Chrome trace-event JSON (opens in Perfetto and chrome://tracing).

use serde::Serialize;
use serde_json::Value;

use crate::redact::{Kinds, redact_value};
use crate::store::{Store, StoreError};

/// One span: one attempt of one step.
#[derive(Debug, Clone, Serialize)]
pub struct Span {
    /// The step key.
    pub step: String,
    /// The attempt number.
    pub attempt: i64,
    /// Its status.
    pub status: String,
    /// Start, ms since the run started.
    pub start_ms: i64,
    /// End, ms since the run started.
    pub end_ms: i64,
    /// Tokens.
    pub tokens: i64,
    /// Cost.
    pub cost: f64,
    /// The model or tool used.
    pub model: Option<String>,
    /// The error, redacted.
    pub error: Option<String>,
    /// Inputs, citations and the source span of the step (redacted).
    pub detail: Value,
    /// The step's output (redacted).
    pub output: Value,
}

/// The spans of a run, by start.
pub async fn spans(store: &Store, run_id: &str) -> Result<Vec<Span>, StoreError> {
    let run = store.run(run_id).await?;
    let attempts = store.attempts(&run.id).await?;
    let steps = store.steps(&run.id).await?;
    let outputs: std::collections::HashMap<&str, Value> = steps
        .iter()
        .map(|s| {
            (
                s.key.as_str(),
                s.output_json
                    .as_deref()
                    .and_then(|o| serde_json::from_str(o).ok())
                    .unwrap_or(Value::Null),
            )
        })
        .collect();
    let origin = run.created_at;
    let parse = |text: Option<&str>| {
        text.and_then(|d| serde_json::from_str::<Value>(d).ok())
            .map(|d| redact_value(&d, Kinds::ALL))
            .unwrap_or(Value::Null)
    };
    // Failed, interrupted and over-budget attempts are rows of `attempts`; a step's final
    // successful attempt lives in its `steps` row.
    let mut spans: Vec<Span> = attempts
        .into_iter()
        .filter(|a| a.status != "succeeded")
        .map(|a| Span {
            output: Value::Null,
            detail: parse(a.detail_json.as_deref()),
            step: a.key,
            attempt: a.attempt,
            status: a.status,
            start_ms: a.started_at - origin,
            end_ms: a.ended_at - origin,
            tokens: a.input_tokens + a.output_tokens,
            cost: a.cost,
            model: a.model,
            error: a.error,
        })
        .collect();
    for step in steps.iter().filter(|s| s.status != "failed") {
        spans.push(Span {
            output: redact_value(
                outputs.get(step.key.as_str()).unwrap_or(&Value::Null),
                Kinds::ALL,
            ),
            detail: parse(step.detail_json.as_deref()),
            step: step.key.clone(),
            attempt: step.attempts.max(1),
            status: step.status.clone(),
            start_ms: step.started_at - origin,
            end_ms: step.ended_at - origin,
            tokens: step.input_tokens + step.output_tokens,
            cost: step.cost,
            model: step.model.clone(),
            error: step.error.clone(),
        });
    }
    spans.sort_by(|a, b| (a.start_ms, a.end_ms, &a.step).cmp(&(b.start_ms, b.end_ms, &b.step)));
    Ok(spans)
}

/// Chrome trace-event JSON of the spans.
pub fn chrome(spans: &[Span]) -> Value {
    let mut lanes: Vec<i64> = Vec::new();
    let events: Vec<Value> = spans
        .iter()
        .map(|span| {
            let lane = match lanes.iter().position(|end| *end <= span.start_ms) {
                Some(i) => {
                    if let Some(l) = lanes.get_mut(i) {
                        *l = span.end_ms;
                    }
                    i
                }
                None => {
                    lanes.push(span.end_ms);
                    lanes.len() - 1
                }
            };
            serde_json::json!({
                "name": span.step, "cat": span.status, "ph": "X",
                "ts": span.start_ms * 1000, "dur": (span.end_ms - span.start_ms).max(0) * 1000,
                "pid": 1, "tid": lane,
                "args": { "attempt": span.attempt, "tokens": span.tokens, "cost": span.cost, "model": span.model, "error": span.error, "detail": span.detail },
            })
        })
        .collect();
    serde_json::json!({ "traceEvents": events, "displayTimeUnit": "ms" })
}

/// A terminal timeline: one line per span with a bar scaled to the run's length.
pub fn timeline(spans: &[Span], width: usize) -> String {
    let end = spans.iter().map(|s| s.end_ms).max().unwrap_or(0).max(1);
    let name_width = spans
        .iter()
        .map(|s| s.step.len())
        .max()
        .unwrap_or(4)
        .min(40);
    let mut out = String::new();
    for span in spans {
        let from = (span.start_ms.max(0) as usize * width) / end as usize;
        let to = ((span.end_ms.max(0) as usize * width) / end as usize).max(from + 1);
        let bar: String = (0..width.max(to))
            .map(|i| if i >= from && i < to { '█' } else { ' ' })
            .take(width)
            .collect();
        let mut name: String = span.step.chars().take(name_width).collect();
        while name.chars().count() < name_width {
            name.push(' ');
        }
        out.push_str(&format!(
            "{name} |{bar}| {:>6}ms {:<16} {}\n",
            span.end_ms - span.start_ms,
            span.status,
            span.model.as_deref().unwrap_or("")
        ));
    }
    out
}

//! Simulated model calls keep the real path's rules: a call that outlasts the model's
//! `timeout` is cancelled and fails with the `timeout` class; it is retried `retry` times
//! after a `backoff` with jitter, then each fallback is tried the same way, and every failed
//! attempt is recorded. So `--sim` shows what a slow provider would do to a run.

use std::time::Duration;

use dsl_check::plan::PlanModel;
use dsl_syntax::ast::ExprKind;

use super::calls::{Failure, backoff};
use super::{Engine, now_ms};
use crate::sim::Rng;
use crate::store::AttemptRecord;

/// How a model's calls are bounded and retried: its `timeout`, `retry` and `backoff`, with
/// the defaults of real calls (60 s, 2 retries, 500 ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CallRules {
    /// The longest one attempt may take.
    pub(crate) timeout: Duration,
    /// Attempts after the first, per provider.
    pub(crate) retries: u32,
    /// The base of the exponential backoff.
    pub(crate) backoff_ms: u64,
}

impl CallRules {
    /// The rules of `model`.
    pub(crate) fn of(model: &PlanModel) -> CallRules {
        let value = |key: &str| {
            model
                .props
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, expr)| expr)
        };
        let duration = |key: &str| match value(key).map(|e| &e.kind) {
            Some(ExprKind::Duration(ms)) => Some(*ms),
            _ => None,
        };
        let retries = value("retry")
            .and_then(|e| crate::eval::eval(e, &crate::eval::Scope::default()).ok())
            .and_then(|v| v.as_u64())
            .map_or(2, |n| u32::try_from(n).unwrap_or(u32::MAX));
        CallRules {
            timeout: Duration::from_millis(duration("timeout").unwrap_or(60_000)),
            retries,
            backoff_ms: duration("backoff").unwrap_or(500),
        }
    }
}

impl Engine {
    /// Waits out a simulated call of `model` that takes `latency_ms`, under the model's
    /// timeout, retries and fallbacks. Fails with the `timeout` class when no attempt of any
    /// provider of the chain finished in time.
    pub(crate) async fn simulated_model_call(
        &self,
        model: &PlanModel,
        key: &str,
        latency_ms: u64,
        attempts: &mut Vec<AttemptRecord>,
    ) -> Result<(), Failure> {
        let rules = CallRules::of(model);
        let latency = Duration::from_millis(latency_ms);
        let mut rng = Rng::new(self.options.seed, key);
        let chain = std::iter::once(&model.provider).chain(model.fallback.iter());
        for provider in chain {
            for attempt in 1..=rules.retries.saturating_add(1) {
                let started = now_ms();
                if crate::sim::clock::latency_within(latency, rules.timeout).await {
                    return Ok(());
                }
                attempts.push(AttemptRecord {
                    key: key.to_string(),
                    attempt: attempts.len() as i64 + 1,
                    status: "failed".into(),
                    started_at: started,
                    ended_at: now_ms(),
                    input_tokens: 0,
                    output_tokens: 0,
                    cost: 0.0,
                    model: Some(provider.model.clone()),
                    error: Some(timed_out(rules.timeout)),
                    detail_json: Some(serde_json::json!({ "class": "timeout" }).to_string()),
                });
                if attempt <= rules.retries {
                    tokio::time::sleep(backoff(rules.backoff_ms, attempt, &mut rng)).await;
                }
            }
        }
        Err(Failure {
            class: "timeout",
            message: timed_out(rules.timeout),
            retry_after: None,
            // Every attempt that timed out is recorded above.
            recorded: true,
        })
    }
}

fn timed_out(timeout: Duration) -> String {
    format!(
        "the model call timed out (timeout {} ms)",
        timeout.as_millis()
    )
}

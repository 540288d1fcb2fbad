//! Leaf nodes: tool calls (simulated, HTTP request templates, built-ins), model calls
//! (simulated or through a provider, with retries, backoff, jitter, timeouts and fallbacks),
//! routes and pure expressions. Budgets, egress and redaction are enforced here.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use dsl_check::plan::{Node, NodeKind, PlanArg, PlanModel, ProviderRef};
use dsl_check::program::Scope as ToolScope;
use dsl_check::ty::Ty;
use dsl_syntax::ast::{Expr, ExprKind};
use serde_json::{Map, Value};
use tokio::sync::Semaphore;

use super::graph::{Blocker, Ctx, Finished, NodeResult};
use super::{Engine, Progress, now_ms};
use crate::eval::{self, Scope};
use crate::knowledge::{self, Sources};
use crate::providers::{ChatMessage, CompletionRequest, ProviderError, Usage};
use crate::redact::redact_text;
use crate::sim::{Generator, Rng};
use crate::store::{AttemptRecord, StepRecord, Write};

/// Why a call failed: the class decides whether it is retried.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    pub(crate) class: &'static str,
    pub(crate) message: String,
    pub(crate) retry_after: Option<Duration>,
    /// Whether a failed attempt row already records this failure: the retry loops record
    /// each try they make, so the step's failure adds a row only for a failure no try
    /// recorded (its arguments did not evaluate, an answer was unusable after the call).
    pub(crate) recorded: bool,
}

impl Failure {
    fn new(class: &'static str, message: impl Into<String>) -> Failure {
        Failure {
            class,
            message: message.into(),
            retry_after: None,
            recorded: false,
        }
    }

    /// The failure, marked as recorded by the attempt row of the try that met it.
    pub(crate) fn recorded(mut self) -> Failure {
        self.recorded = true;
        self
    }

    fn retryable(&self) -> bool {
        matches!(
            self.class,
            "transient" | "rate_limited" | "timeout" | "invalid_output"
        )
    }
}

impl From<ProviderError> for Failure {
    fn from(error: ProviderError) -> Failure {
        let retry_after = match &error {
            ProviderError::RateLimited { retry_after } => *retry_after,
            _ => None,
        };
        Failure {
            class: error.class(),
            message: error.to_string(),
            retry_after,
            recorded: false,
        }
    }
}

/// What a leaf produced.
pub(crate) struct LeafDone {
    value: Value,
    input_tokens: u64,
    output_tokens: u64,
    cost: f64,
    model: Option<String>,
    effect: Option<String>,
    detail: Detail,
}

/// What a step's trace shows beside its output.
pub(crate) enum Detail {
    /// A document, redacted and serialized when the step is recorded.
    Doc(Value),
    /// Already redacted and serialized (built before the call, so a wide wave's completions
    /// do not spend their time on it).
    Text(String),
}

/// Collects the names of `secret("NAME")` calls in `expr`.
pub(crate) fn secret_names(expr: &Expr, out: &mut Vec<String>) {
    match &expr.kind {
        ExprKind::Call(callee, args) => {
            if eval::callee_name(callee).as_deref() == Some("secret")
                && let Some(ExprKind::Str(lit)) = args.first().map(|a| &a.value.kind)
                && let Some(name) = lit.as_plain()
            {
                out.push(name);
            }
            for arg in args {
                secret_names(&arg.value, out);
            }
        }
        ExprKind::Record(props) => props.iter().for_each(|p| secret_names(&p.value, out)),
        ExprKind::List(items) => items.iter().for_each(|i| secret_names(i, out)),
        ExprKind::Binary(_, a, b) => {
            secret_names(a, out);
            secret_names(b, out);
        }
        ExprKind::Str(lit) => {
            for part in &lit.parts {
                if let dsl_syntax::ast::StrPart::Hole(hole) = part {
                    secret_names(hole, out);
                }
            }
        }
        _ => {}
    }
}

fn prop<'p>(props: &'p [(String, Expr)], key: &str) -> Option<&'p Expr> {
    props.iter().find(|(k, _)| k == key).map(|(_, e)| e)
}

fn const_eval(expr: Option<&Expr>) -> Option<Value> {
    expr.and_then(|e| eval::eval(e, &Scope::default()).ok())
}

fn duration_prop(props: &[(String, Expr)], key: &str) -> Option<u64> {
    match prop(props, key).map(|e| &e.kind) {
        Some(ExprKind::Duration(ms)) => Some(*ms),
        _ => None,
    }
}

/// Whether an answer of type `ty` carries `citations` (a cited record, or a list or
/// optional of one).
fn carries_citations(ty: &Ty, types: &[Arc<dsl_check::program::TypeInfo>]) -> bool {
    match ty {
        Ty::Optional(inner) | Ty::List(inner) => carries_citations(inner, types),
        Ty::Named(named) => {
            named.cited
                && types
                    .iter()
                    .find(|t| t.module == named.module && t.name == named.name)
                    .is_none_or(|t| t.alias.is_none())
        }
        _ => false,
    }
}

/// The failure of a model call whose every provider the egress allowlist refuses: the
/// model's own refusal, or one naming every refused host of the chain.
fn all_refused(model: &str, chain: &[&ProviderRef], refusals: &[Option<Failure>]) -> Failure {
    let mut hosts: Vec<String> = Vec::new();
    for provider in chain {
        if let Some(host) =
            crate::providers::endpoint_host(&provider.provider, provider.base_url.as_deref())
            && !hosts.contains(&host)
        {
            hosts.push(host);
        }
    }
    match (refusals.first(), chain.len()) {
        (Some(Some(only)), 1) => only.clone(),
        _ => {
            let named: Vec<String> = hosts.iter().map(|h| format!("`{h}`")).collect();
            let quoted: Vec<String> = hosts.iter().map(|h| format!("\"{h}\"")).collect();
            Failure::new(
                "policy",
                format!(
                    "egress to {} is not allowed by the policy (model `{model}` and its fallbacks); add {} to the policy's `egress allow` list to allow it",
                    named.join(", "),
                    quoted.join(", ")
                ),
            )
        }
    }
}

/// How long one attempt of a tool call may take when the tool declares no `timeout`.
const TOOL_TIMEOUT_MS: u64 = 30_000;
/// Attempts of a tool call after the first, when it failed with a retryable class and the
/// tool declares no `retry`.
const TOOL_RETRIES: u32 = 2;
/// The base of a tool call's exponential backoff between attempts when the tool declares
/// no `backoff`.
const TOOL_BACKOFF_MS: u64 = 500;

/// The longest one attempt of a call of `info` may take: its `timeout`, or 30 s.
fn tool_timeout(info: &dsl_check::program::ToolInfo) -> Duration {
    Duration::from_millis(info.timeout_ms.unwrap_or(TOOL_TIMEOUT_MS))
}

/// How many times a call of `info` that failed transiently is tried again: its `retry`,
/// or 2.
fn tool_retries(info: &dsl_check::program::ToolInfo) -> u32 {
    info.retry.unwrap_or(TOOL_RETRIES)
}

/// The base of the backoff between attempts of a call of `info`: its `backoff`, or 500 ms.
fn tool_backoff_ms(info: &dsl_check::program::ToolInfo) -> u64 {
    info.backoff_ms.unwrap_or(TOOL_BACKOFF_MS)
}

fn tool_timed_out(timeout: Duration) -> String {
    format!(
        "the tool call timed out (timeout {} ms)",
        timeout.as_millis()
    )
}

/// Exponential backoff with jitter for attempt `attempt` (1-based): between half and all
/// of `base_ms` doubled per earlier attempt, capped at 30 s.
pub(super) fn backoff(base_ms: u64, attempt: u32, rng: &mut Rng) -> Duration {
    let exp = base_ms.saturating_mul(1u64 << attempt.saturating_sub(1).min(10));
    let capped = exp.min(30_000);
    let jitter = rng.below(capped / 2 + 1);
    Duration::from_millis(capped / 2 + jitter)
}

impl Engine {
    /// The arguments of a call of `tool`, defaults filled in.
    pub(crate) fn tool_args(
        &self,
        tool: &str,
        args: &[PlanArg],
        locals: &[(String, Value)],
    ) -> Result<Map<String, Value>, String> {
        let mut map = Map::new();
        for arg in args {
            let value = self
                .eval_in(&arg.value, locals, None)
                .map_err(|e| e.to_string())?;
            map.insert(arg.name.clone(), value);
        }
        if let Some(info) = self.plan.tool(tool) {
            for param in &info.params {
                if !map.contains_key(&*param.name) {
                    let value = const_eval(param.default.as_ref()).unwrap_or(Value::Null);
                    map.insert(param.name.to_string(), value);
                }
            }
        }
        Ok(map)
    }

    /// The text of an optional prompt or instructions expression (a failure to evaluate it
    /// is permanent).
    fn text_of(
        &self,
        expr: Option<&dsl_syntax::ast::Expr>,
        locals: &[(String, Value)],
    ) -> Result<Option<String>, Failure> {
        expr.map(|e| {
            self.eval_in(e, locals, None)
                .map(|value| eval::display(&value))
                .map_err(|e| Failure::new("permanent", e.to_string()))
        })
        .transpose()
    }

    /// Runs a tool, ask, route or compute node: budget, concurrency, cancellation, record.
    pub(crate) async fn run_leaf(&self, node: &Node, ctx: &Ctx, key: &str) -> NodeResult {
        let started = now_ms();
        let (money, tokens, is_call) = self.estimate(node);
        // Reserve the worst case; while other calls hold reservations, wait for them to
        // settle (their real usage is usually far below the worst case) and try again.
        let reservation = loop {
            let settled = self.budget_settled.notified();
            let attempt = {
                let mut budget = self.budget.lock().unwrap_or_else(|e| e.into_inner());
                let elapsed = self.started.elapsed().as_millis() as u64;
                match budget.reserve(money, tokens, is_call, elapsed) {
                    Err(_) if budget.has_reservations() => None,
                    other => Some(other),
                }
            };
            match attempt {
                Some(result) => break result,
                None => crate::sim::clock::after_wait(settled).await,
            }
        };
        let reservation = match reservation {
            Ok(r) => r,
            Err(message) => {
                let attempt =
                    self.attempt_record(key, 1, "budget_exceeded", started, Some(message.clone()));
                let writes = vec![
                    Write::Attempt(attempt),
                    self.audit_write("budget_exceeded", Some(key), message.clone()),
                ];
                let _ = self.writer.write(writes).await;
                return NodeResult::Blocked(Blocker::Budget, Some(message));
            }
        };
        self.report(|| Progress::Started(key.to_string()), |c| c.running += 1);
        let mut attempts = Vec::new();
        let work = self.leaf(node, ctx, key, &mut attempts);
        let result = tokio::select! {
            // The work first: no random pick per poll (cancellation is still seen at once).
            biased;
            result = work => Some(result),
            // A look, not a wait: the step's graph waits for the cancellation, and polls its
            // steps in flight again when it comes (`Engine::run_graph`). A wait here would
            // put every step in flight on the channel's list of waiters, and each would
            // leave it when it finishes.
            () = std::future::poll_fn(|_| {
                if self.cancel_requested() {
                    std::task::Poll::Ready(())
                } else {
                    std::task::Poll::Pending
                }
            }) => None,
        };
        let Some(result) = result else {
            let attempt = self.attempt_record(
                key,
                attempts.len() as i64 + 1,
                "interrupted",
                started,
                Some("cancelled".into()),
            );
            let _ = self
                .writer
                .write(vec![
                    Write::Attempt(attempt),
                    self.audit_write("step_interrupted", Some(key), String::new()),
                ])
                .await;
            self.report(
                || Progress::Finished(key.to_string(), "interrupted".into()),
                |c| c.running -= 1,
            );
            return NodeResult::Blocked(Blocker::Interrupted, None);
        };
        let ended = now_ms();
        match result {
            Ok(done) => {
                {
                    let mut budget = self.budget.lock().unwrap_or_else(|e| e.into_inner());
                    budget.settle(
                        reservation,
                        done.input_tokens + done.output_tokens,
                        done.cost,
                    );
                }
                self.budget_settled.notify_waiters();
                let tokens = done.input_tokens + done.output_tokens;
                // Without a store nothing would read the step's record: none is built.
                if self.writer.has_store() {
                    let mut record = self.succeeded_record(
                        key,
                        node,
                        attempts.len(),
                        (started, ended),
                        &done.value,
                        &done,
                    );
                    record.detail_json = Some(match done.detail {
                        Detail::Text(text) => text,
                        Detail::Doc(doc) => {
                            serde_json::to_string(&crate::redact::Redacted(&doc, self.redact_trace))
                                .unwrap_or_default()
                        }
                    });
                    let mut writes = vec![Write::Step(record, attempts)];
                    if let Some(effect) = done.effect {
                        writes.push(Write::EffectDone { key: effect });
                    }
                    // With other nodes in flight the record joins their commit and the scheduler
                    // reports the step done once it is durable; alone, it commits inline.
                    if self.writer.shared_commits() {
                        if let Some(ticket) = self.writer.submit(writes) {
                            return NodeResult::Committing(Finished {
                                value: done.value,
                                ticket,
                                // Only a progress display reads it.
                                key: if self.progress.is_some() {
                                    key.to_string()
                                } else {
                                    String::new()
                                },
                                cost: done.cost,
                                tokens,
                            });
                        }
                    } else if let Err(error) = self.writer.write(writes).await {
                        return NodeResult::Blocked(Blocker::Failed, Some(error.to_string()));
                    }
                }
                self.report(
                    || Progress::Finished(key.to_string(), "succeeded".into()),
                    |c| {
                        c.running -= 1;
                        c.done += 1;
                        c.cost += done.cost;
                        c.tokens += tokens;
                    },
                );
                NodeResult::Value(done.value)
            }
            Err(failure) => {
                {
                    let mut budget = self.budget.lock().unwrap_or_else(|e| e.into_inner());
                    budget.settle(reservation, 0, 0.0);
                }
                self.budget_settled.notify_waiters();
                self.record_failure(key, node, (started, ended), &failure, attempts, true)
                    .await
            }
        }
    }

    /// The record of a model or tool step that succeeded with `value` (its final try; the
    /// `failed_tries` before it have rows of their own), with the call's usage and model.
    fn succeeded_record(
        &self,
        key: &str,
        node: &Node,
        failed_tries: usize,
        (started, ended): (i64, i64),
        value: &Value,
        done: &LeafDone,
    ) -> StepRecord {
        StepRecord {
            input_tokens: done.input_tokens as i64,
            output_tokens: done.output_tokens as i64,
            cost: done.cost,
            model: done.model.clone(),
            ..self.step_record(
                key,
                node,
                "succeeded",
                failed_tries as i64 + 1,
                started,
                ended,
                Some(value),
                None,
            )
        }
    }

    /// Records a step that failed with `failure` after the tries in `attempts` (its step row,
    /// one attempt row per try, the audit event), reports it (`running`: it counted as
    /// running) and says what stops the graph.
    async fn record_failure(
        &self,
        key: &str,
        node: &Node,
        (started, ended): (i64, i64),
        failure: &Failure,
        mut attempts: Vec<AttemptRecord>,
        running: bool,
    ) -> NodeResult {
        let message = redact_text(&failure.message, self.redact_trace);
        self.close_failed_attempts(key, node, started, failure, &message, &mut attempts);
        let error = format!("{}: {message}", failure.class);
        let record = StepRecord {
            key: key.to_string(),
            node: node.id.clone(),
            status: "failed".into(),
            attempts: attempts.len() as i64,
            started_at: started,
            ended_at: ended,
            output_json: None,
            input_tokens: 0,
            output_tokens: 0,
            cost: 0.0,
            error: Some(error.clone()),
            model: None,
            detail_json: None,
        };
        let writes = vec![
            Write::Step(record, attempts),
            self.audit_write("step_failed", Some(key), error),
        ];
        let _ = self.writer.write(writes).await;
        self.report(
            || Progress::Finished(key.to_string(), "failed".into()),
            |c| {
                if running {
                    c.running -= 1;
                }
                c.done += 1;
            },
        );
        let blocker = if failure.class == "budget" {
            Blocker::Budget
        } else {
            Blocker::Failed
        };
        NodeResult::Blocked(
            blocker,
            Some(format!(
                "step `{key}` failed ({}): {message}",
                failure.class
            )),
        )
    }

    /// Closes the attempt rows of a step that failed with `failure`, one row per try: the
    /// tries the call made are recorded already; a failure no try recorded (the arguments
    /// did not evaluate, the answer was unusable) is the step's one try. The last row
    /// carries the failure's class and the step's source span.
    fn close_failed_attempts(
        &self,
        key: &str,
        node: &Node,
        started: i64,
        failure: &Failure,
        message: &str,
        attempts: &mut Vec<AttemptRecord>,
    ) {
        let detail =
            serde_json::json!({ "class": failure.class, "span": [node.span.start, node.span.end] })
                .to_string();
        match attempts.last_mut() {
            Some(last) if failure.recorded => last.detail_json = Some(detail),
            _ => {
                let mut last = self.attempt_record(
                    key,
                    attempts.len() as i64 + 1,
                    "failed",
                    started,
                    Some(message.to_string()),
                );
                last.detail_json = Some(detail);
                attempts.push(last);
            }
        }
    }

    fn attempt_record(
        &self,
        key: &str,
        attempt: i64,
        status: &str,
        started: i64,
        error: Option<String>,
    ) -> AttemptRecord {
        AttemptRecord {
            key: key.to_string(),
            attempt,
            status: status.to_string(),
            started_at: started,
            ended_at: now_ms(),
            input_tokens: 0,
            output_tokens: 0,
            cost: 0.0,
            model: None,
            error,
            detail_json: None,
        }
    }

    /// The worst-case money and tokens of a node, and whether it is a tool call.
    fn estimate(&self, node: &Node) -> (f64, u64, bool) {
        let (model, target, cite) = match &node.kind {
            NodeKind::Tool { .. } => return (0.0, 0, true),
            NodeKind::Ask { target, cite, .. } => (self.model_of(target), target, cite),
            NodeKind::Route { router, cite, .. } => (self.model_of(router), router, cite),
            _ => return (0.0, 0, false),
        };
        let Some(model) = model else {
            return (0.0, 0, false);
        };
        let max_tokens = const_eval(prop(&model.props, "max_tokens"))
            .and_then(|v| v.as_u64())
            .unwrap_or(1000);
        // The documents a call sends count too (about four bytes a token).
        let knowledge_bytes = if cite.is_empty() {
            let agent = self.plan.agents.iter().find(|a| &a.name == target);
            agent.map_or(0, |a| self.knowledge.bytes(&a.knowledge))
        } else {
            self.knowledge.bytes(cite)
        };
        let prompt_tokens = 1000 + knowledge_bytes as u64 / 4;
        let usage = Usage {
            input_tokens: prompt_tokens,
            output_tokens: max_tokens,
        };
        let factor = if matches!(node.kind, NodeKind::Route { .. }) {
            2
        } else {
            1
        };
        (
            self.prices.cost(&model.provider.model, &usage) * factor as f64,
            (prompt_tokens + max_tokens) * factor,
            false,
        )
    }

    /// The model an agent (or model name) uses.
    pub(crate) fn model_of(&self, target: &str) -> Option<&PlanModel> {
        let model_name = self
            .plan
            .agents
            .iter()
            .find(|a| a.name == target)
            .and_then(|a| a.model.clone())
            .unwrap_or_else(|| target.to_string());
        self.plan.models.iter().find(|m| m.name == model_name)
    }

    async fn leaf(
        &self,
        node: &Node,
        ctx: &Ctx,
        key: &str,
        attempts: &mut Vec<AttemptRecord>,
    ) -> Result<LeafDone, Failure> {
        match &node.kind {
            NodeKind::Tool { tool, args } => {
                let args = self
                    .tool_args(tool, args, &ctx.locals)
                    .map_err(|e| Failure::new("permanent", e))?;
                // A block, so the document is dropped before the call rather than after it.
                // Only the step's record holds it: without a store, none is built.
                let detail = if self.writer.has_store() {
                    Detail::Text(tool_detail(tool, &args, node.span, self.redact_trace))
                } else {
                    Detail::Text(String::new())
                };
                let (value, effect) = self.call_tool(tool, args, key, attempts).await?;
                Ok(LeafDone {
                    value,
                    input_tokens: 0,
                    output_tokens: 0,
                    cost: 0.0,
                    model: Some(tool.clone()),
                    effect,
                    detail,
                })
            }
            NodeKind::Ask {
                target,
                prompt,
                instructions,
                cite,
                ..
            } => {
                let prompt = self
                    .text_of(prompt.as_ref(), &ctx.locals)?
                    .unwrap_or_default();
                let extra = self.text_of(instructions.as_ref(), &ctx.locals)?;
                // Boxed, as a route is: a model call's future is large, and would make every
                // leaf's future (a simulated tool step's too) so.
                Box::pin(self.ask(
                    target,
                    target,
                    &prompt,
                    extra,
                    cite,
                    &node.output,
                    key,
                    node,
                    attempts,
                ))
                .await
            }
            NodeKind::Route {
                router,
                routes,
                prompt,
                instructions,
                cite,
            } => Box::pin(async move {
                let prompt = self
                    .text_of(prompt.as_ref(), &ctx.locals)?
                    .unwrap_or_default();
                let extra = self.text_of(instructions.as_ref(), &ctx.locals)?;
                let options: Vec<std::sync::Arc<str>> = routes
                    .iter()
                    .map(|r| std::sync::Arc::from(r.as_str()))
                    .collect();
                let route_ty = Ty::Union(options.into());
                let router_prompt = format!(
                    "Pick the specialist for this request. Answer with exactly one of: {}.\n\n{prompt}",
                    routes.join(", ")
                );
                let pick = self
                    .ask(
                        router,
                        router,
                        &router_prompt,
                        None,
                        &[],
                        &route_ty,
                        &format!("{key}.router"),
                        node,
                        attempts,
                    )
                    .await?;
                let chosen = pick.value.as_str().unwrap_or_default().to_string();
                let specialist =
                    routes
                        .iter()
                        .find(|r| **r == chosen)
                        .cloned()
                        .ok_or_else(|| {
                            Failure::new(
                                "invalid_output",
                                format!(
                                    "the router picked `{chosen}`, not one of {}",
                                    routes.join(", ")
                                ),
                            )
                        })?;
                let mut done = self
                    .ask(
                        &specialist,
                        &specialist,
                        &prompt,
                        extra,
                        cite,
                        &node.output,
                        key,
                        node,
                        attempts,
                    )
                    .await?;
                done.input_tokens += pick.input_tokens;
                done.output_tokens += pick.output_tokens;
                done.cost += pick.cost;
                if let Detail::Doc(Value::Object(detail)) = &mut done.detail {
                    detail.insert("routed_to".into(), Value::String(specialist));
                }
                Ok(done)
            })
            .await,
            NodeKind::Compute { expr, .. } => {
                let mut results: HashMap<(u32, u32), Value> = HashMap::new();
                for (n, call) in eval::tool_calls(expr).into_iter().enumerate() {
                    let ExprKind::Call(callee, call_args) = &call.kind else {
                        continue;
                    };
                    let tool = eval::callee_name(callee).unwrap_or_default();
                    let info = self.plan.tool(&tool).cloned();
                    let mut args = Map::new();
                    for (i, arg) in call_args.iter().enumerate() {
                        let name = match &arg.name {
                            Some(name) => name.name.clone(),
                            None => info
                                .as_ref()
                                .and_then(|t| t.params.get(i))
                                .map(|p| p.name.to_string())
                                .unwrap_or_else(|| format!("arg{i}")),
                        };
                        let value = self
                            .eval_in(&arg.value, &ctx.locals, Some(&results))
                            .map_err(|e| Failure::new("permanent", e.to_string()))?;
                        args.insert(name, value);
                    }
                    if let Some(info) = &info {
                        for param in &info.params {
                            if !args.contains_key(&*param.name) {
                                args.insert(
                                    param.name.to_string(),
                                    const_eval(param.default.as_ref()).unwrap_or(Value::Null),
                                );
                            }
                        }
                    }
                    // Boxed: with this loop's state beside it, the call would make every
                    // leaf's future (a plain tool step's too) larger.
                    let (value, _) =
                        Box::pin(self.call_tool(&tool, args, &format!("{key}#{n}"), attempts))
                            .await?;
                    results.insert((call.span.start, call.span.end), value);
                }
                let value = self
                    .eval_in(expr, &ctx.locals, Some(&results))
                    .map_err(|e| Failure::new("permanent", e.to_string()))?;
                Ok(LeafDone {
                    value,
                    input_tokens: 0,
                    output_tokens: 0,
                    cost: 0.0,
                    model: None,
                    effect: None,
                    detail: Detail::Doc(
                        serde_json::json!({ "span": [node.span.start, node.span.end] }),
                    ),
                })
            }
            _ => Err(Failure::new("permanent", "not a leaf node")),
        }
    }

    /// The critic's verdict on a review round's draft.
    pub(crate) async fn critique(
        &self,
        node: &Node,
        key: &str,
        critic: &str,
        draft: &Value,
        round: u64,
    ) -> Result<Value, NodeResult> {
        if let Some(prior) = self.prior.get(key) {
            return Ok(prior
                .output_json
                .as_deref()
                .and_then(|j| serde_json::from_str(j).ok())
                .unwrap_or(Value::Null));
        }
        let critique_ty = Ty::Named(dsl_check::ty::NamedTy {
            module: std::sync::Arc::from("core"),
            name: std::sync::Arc::from("Critique"),
            cited: false,
        });
        let critic_node = Node {
            id: format!("{}.critique", node.id),
            step: node.step.clone(),
            kind: NodeKind::Ask {
                target: critic.to_string(),
                target_kind: "agent".into(),
                prompt: None,
                instructions: None,
                cite: Vec::new(),
            },
            output: critique_ty.clone(),
            span: node.span,
        };
        let prompt = format!(
            "Review this draft (round {round}). Answer as JSON with approved (bool), score (0..1) and feedback.\n\n{draft}"
        );
        let started = now_ms();
        let mut attempts = Vec::new();
        let result = self
            .ask(
                critic,
                critic,
                &prompt,
                None,
                &[],
                &critique_ty,
                key,
                &critic_node,
                &mut attempts,
            )
            .await;
        match result {
            Ok(mut done) => {
                let mut value = std::mem::take(&mut done.value);
                if self.options.sim && !self.mocks.contains_key(critic) {
                    // A simulated critic approves from the second round on, so loops end.
                    if let Value::Object(map) = &mut value {
                        map.insert("approved".into(), Value::Bool(round >= 2));
                    }
                }
                let record = self.succeeded_record(
                    key,
                    &critic_node,
                    attempts.len(),
                    (started, now_ms()),
                    &value,
                    &done,
                );
                if let Err(error) = self.writer.write(vec![Write::Step(record, attempts)]).await {
                    return Err(NodeResult::Blocked(
                        Blocker::Failed,
                        Some(error.to_string()),
                    ));
                }
                Ok(value)
            }
            // As a leaf's failure: one attempt row per try, the error with its class.
            Err(failure) => Err(self
                .record_failure(
                    key,
                    &critic_node,
                    (started, now_ms()),
                    &failure,
                    attempts,
                    false,
                )
                .await),
        }
    }

    /// One model answer of type `ty`: mocked or simulated in Sim Mode, otherwise through the
    /// provider with retries and the fallback chain.
    #[allow(clippy::too_many_arguments)]
    async fn ask(
        &self,
        target: &str,
        mock_key: &str,
        prompt: &str,
        extra_instructions: Option<String>,
        cite: &[String],
        ty: &Ty,
        key: &str,
        node: &Node,
        attempts: &mut Vec<AttemptRecord>,
    ) -> Result<LeafDone, Failure> {
        let agent = self.plan.agents.iter().find(|a| a.name == target);
        let model = self
            .model_of(target)
            .ok_or_else(|| Failure::new("permanent", format!("`{target}` has no model")))?;
        // The egress allowlist decides, before anything is sent (or simulated), which
        // providers of the chain may be called; with none left the call fails here.
        let chain: Vec<&ProviderRef> = std::iter::once(&model.provider)
            .chain(model.fallback.iter())
            .collect();
        let refusals: Vec<Option<Failure>> = chain
            .iter()
            .map(|provider| self.egress_refusal(&model.name, provider))
            .collect();
        if refusals.iter().all(Option::is_some) {
            // Each refused provider is one try that sent nothing, as in a fallback chain.
            for (provider, refusal) in chain.iter().zip(&refusals) {
                if let Some(refusal) = refusal {
                    attempts.push(self.refused_attempt(key, attempts.len(), provider, refusal));
                }
            }
            return Err(all_refused(&model.name, &chain, &refusals).recorded());
        }
        let mut system = agent
            .and_then(|a| a.instructions.as_ref())
            .and_then(|i| eval::eval(i, &Scope::default()).ok())
            .map(|v| eval::display(&v));
        if let Some(extra) = extra_instructions {
            system = Some(match system {
                Some(s) => format!("{s}\n\n{extra}"),
                None => extra,
            });
        }
        let prompt = redact_text(prompt, self.redact_model);
        let system = system.map(|s| redact_text(&s, self.redact_model));
        let cite: Vec<String> = if cite.is_empty() {
            agent.map(|a| a.knowledge.clone()).unwrap_or_default()
        } else {
            cite.to_vec()
        };
        let sources = self.sources_for(&cite, &prompt).await?;
        let mut detail = serde_json::json!({
            "target": target,
            "prompt": prompt,
            "cite": cite,
            "span": [node.span.start, node.span.end],
        });
        if !sources.is_empty()
            && let Value::Object(map) = &mut detail
        {
            map.insert("sources".into(), sources.summary());
        }
        // The model sees the numbered sources after the prompt (redacted like the prompt).
        let prompt = if sources.is_empty() {
            prompt
        } else {
            let section = sources.prompt_section(carries_citations(ty, &self.plan.types));
            format!("{prompt}{}", redact_text(&section, self.redact_model))
        };
        let permit_model = self.model_semaphore(&model.provider);
        let _global = crate::sim::clock::after_wait(self.global_limit.acquire()).await;
        let _model = crate::sim::clock::after_wait(permit_model.acquire()).await;
        if self.options.sim {
            // Simulated calls keep the allowlist: refused providers before the first allowed
            // one are tried and refused in order, and refused ones never answer.
            let first = refusals.iter().position(Option::is_none).unwrap_or(0);
            for (provider, refusal) in chain.iter().zip(&refusals).take(first) {
                if let Some(refusal) = refusal {
                    attempts.push(self.refused_attempt(key, attempts.len(), provider, refusal));
                }
            }
            let allowed_model;
            let model = if refusals.iter().any(Option::is_some) {
                let mut allowed = chain
                    .iter()
                    .zip(&refusals)
                    .filter(|(_, refusal)| refusal.is_none())
                    .map(|(provider, _)| (*provider).clone());
                allowed_model = PlanModel {
                    provider: allowed.next().unwrap_or_else(|| model.provider.clone()),
                    fallback: allowed.collect(),
                    ..model.clone()
                };
                &allowed_model
            } else {
                model
            };
            let latency =
                duration_prop(&model.props, "sim_latency").or(self.options.sim_latency_ms);
            if let Some(ms) = latency.filter(|ms| *ms > 0) {
                self.simulated_model_call(model, key, ms, attempts).await?;
            }
            let value = match self.mocks.get(mock_key) {
                Some(mock) => {
                    let mut value = self.eval_in(mock, &[], None).map_err(|e| {
                        Failure::new("permanent", format!("mock of `{mock_key}`: {e}"))
                    })?;
                    if let (Ty::Named(named), Value::Object(map)) =
                        (ty.strip_optional(), &mut value)
                        && named.cited
                        && !map.contains_key("citations")
                    {
                        let citations =
                            sources.sim_citations(&mut Rng::new(self.options.seed, key));
                        map.insert("citations".into(), Value::Array(citations));
                    }
                    value
                }
                None => {
                    let generator = Generator {
                        types: &self.plan.types,
                        cite: &cite,
                    };
                    let mut value =
                        generator.value(ty, "answer", &mut Rng::new(self.options.seed, key), 0);
                    if !cite.is_empty() {
                        // Cite the documents really loaded, deterministically.
                        let mut rng = Rng::new(self.options.seed, &format!("{key}#citations"));
                        sources.simulate_citations(&mut value, &mut rng);
                    }
                    value
                }
            };
            let usage = Usage {
                input_tokens: ((prompt.len() + system.as_ref().map_or(0, String::len)) / 4 + 1)
                    as u64,
                output_tokens: (value.to_string().len() / 4 + 1) as u64,
            };
            let cost = self.prices.cost(&model.provider.model, &usage);
            return Ok(LeafDone {
                value,
                input_tokens: usage.input_tokens,
                output_tokens: usage.output_tokens,
                cost,
                model: Some(format!("sim:{}", model.provider.model)),
                effect: None,
                detail: Detail::Doc(detail),
            });
        }
        let retries = const_eval(prop(&model.props, "retry"))
            .and_then(|v| v.as_u64())
            .unwrap_or(2) as u32;
        let backoff_ms = duration_prop(&model.props, "backoff").unwrap_or(500);
        let timeout =
            Duration::from_millis(duration_prop(&model.props, "timeout").unwrap_or(60_000));
        let temperature = const_eval(prop(&model.props, "temperature")).and_then(|v| v.as_f64());
        let max_tokens = const_eval(prop(&model.props, "max_tokens"))
            .and_then(|v| v.as_u64())
            .map(|v| v as u32);
        let schema = match ty.strip_optional() {
            Ty::String => None,
            other => Some(crate::providers::json_schema_for(other, &*self.plan)),
        };
        let mut rng = Rng::new(self.options.seed, key);
        let mut last = Failure::new("permanent", "no provider");
        for (provider, refusal) in chain.into_iter().zip(refusals) {
            if let Some(refusal) = refusal {
                // Refused by the egress allowlist: never contacted, not retried; the chain
                // goes on to the next fallback.
                attempts.push(self.refused_attempt(key, attempts.len(), provider, &refusal));
                last = refusal.recorded();
                continue;
            }
            let client = self.provider(provider).map_err(Failure::from)?;
            let request = CompletionRequest {
                model: provider.model.clone(),
                system: system.clone(),
                messages: vec![ChatMessage::user(prompt.clone())],
                temperature,
                max_tokens,
                output_schema: schema.clone(),
                timeout,
            };
            for attempt in 1..=retries + 1 {
                let started = now_ms();
                let result = match tokio::time::timeout(timeout, client.complete(&request)).await {
                    Ok(r) => r.map_err(Failure::from),
                    Err(_) => Err(Failure::new("timeout", "the model call timed out")),
                };
                let result = result.and_then(|completion| {
                    let mut value =
                        crate::providers::parse_output(&completion.text, ty, &*self.plan)
                            .map_err(Failure::from)?;
                    sources
                        .resolve_citations(&mut value)
                        .map_err(|e| Failure::new("invalid_output", e.to_string()))?;
                    Ok((completion, value))
                });
                match result {
                    Ok((completion, value)) => {
                        let cost = self.prices.cost(&provider.model, &completion.usage);
                        return Ok(LeafDone {
                            value,
                            input_tokens: completion.usage.input_tokens,
                            output_tokens: completion.usage.output_tokens,
                            cost,
                            model: Some(completion.model),
                            effect: None,
                            detail: Detail::Doc(detail),
                        });
                    }
                    Err(failure) => {
                        let mut record = self.attempt_record(
                            key,
                            attempts.len() as i64 + 1,
                            "failed",
                            started,
                            Some(redact_text(&failure.message, self.redact_trace)),
                        );
                        record.model = Some(provider.model.clone());
                        record.detail_json =
                            Some(serde_json::json!({ "class": failure.class }).to_string());
                        attempts.push(record);
                        let retry = failure.retryable() && attempt <= retries;
                        let wait = failure
                            .retry_after
                            .unwrap_or_else(|| backoff(backoff_ms, attempt, &mut rng));
                        last = failure.recorded();
                        if !retry {
                            break;
                        }
                        tokio::time::sleep(wait).await;
                    }
                }
            }
            if !last.retryable() && last.class != "auth" && last.class != "policy" {
                break;
            }
        }
        Err(last)
    }

    /// Why the egress allowlist refuses a call of `provider` (in the chain of `model`), if
    /// it does: the host the call would reach (the provider's API host, or the host of its
    /// `base_url`) is not on the list.
    fn egress_refusal(&self, model: &str, provider: &ProviderRef) -> Option<Failure> {
        let host =
            crate::providers::endpoint_host(&provider.provider, provider.base_url.as_deref())?;
        if self.plan.policy.allows_host(&host) {
            return None;
        }
        Some(Failure::new(
            "policy",
            format!(
                "egress to `{host}` is not allowed by the policy (model `{model}`: {}(\"{}\")); add \"{host}\" to the policy's `egress allow` list to allow it",
                provider.provider, provider.model
            ),
        ))
    }

    /// The failed attempt that records a call the egress allowlist refused.
    fn refused_attempt(
        &self,
        key: &str,
        earlier: usize,
        provider: &ProviderRef,
        refusal: &Failure,
    ) -> AttemptRecord {
        let now = now_ms();
        let mut record = self.attempt_record(
            key,
            earlier as i64 + 1,
            "failed",
            now,
            Some(redact_text(&refusal.message, self.redact_trace)),
        );
        record.model = Some(provider.model.clone());
        record.detail_json = Some(serde_json::json!({ "class": refusal.class }).to_string());
        record
    }

    fn model_semaphore(&self, provider: &ProviderRef) -> Arc<Semaphore> {
        let key = format!("{}:{}", provider.provider, provider.model);
        let mut limits = self.model_limits.lock().unwrap_or_else(|e| e.into_inner());
        let default = if self.options.sim {
            Semaphore::MAX_PERMITS
        } else {
            16
        };
        Arc::clone(limits.entry(key).or_insert_with(|| {
            Arc::new(Semaphore::new(
                self.options.per_model_concurrency.unwrap_or(default).max(1),
            ))
        }))
    }

    fn provider(
        &self,
        provider: &ProviderRef,
    ) -> Result<Arc<dyn crate::providers::ModelProvider>, ProviderError> {
        let var = provider
            .api_key_secret
            .clone()
            .or_else(|| match provider.provider.as_str() {
                "openai" => Some("OPENAI_API_KEY".into()),
                "anthropic" => Some("ANTHROPIC_API_KEY".into()),
                _ => None,
            });
        // One client per provider, endpoint and credential: models keyed by different
        // secrets never share a client. The key holds the secret's name, not its value.
        let cache_key = format!(
            "{}|{}|{}",
            provider.provider,
            provider.base_url.clone().unwrap_or_default(),
            var.as_deref().unwrap_or_default()
        );
        let mut cache = self.providers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(client) = cache.get(&cache_key) {
            return Ok(Arc::clone(client));
        }
        let key = var.and_then(|v| std::env::var(v).ok());
        let client = crate::providers::build_provider(
            &provider.provider,
            provider.base_url.as_deref(),
            key,
            self.http().clone(),
        )?;
        cache.insert(cache_key, Arc::clone(&client));
        Ok(client)
    }

    /// The numbered sources of a call citing `names`: files read at the start, URLs fetched
    /// through the egress allowlist (once per run; Sim Mode checks the allowlist but does not
    /// fetch), only the passages that match `prompt` of a source with `top_k`.
    async fn sources_for(&self, names: &[String], prompt: &str) -> Result<Sources, Failure> {
        let needed = self.knowledge.needed(names);
        let mut documents = needed.documents;
        for (source, url) in needed.urls {
            let parsed = reqwest::Url::parse(&url).map_err(|e| {
                Failure::new(
                    "permanent",
                    format!("knowledge `{source}`: bad URL `{url}`: {e}"),
                )
            })?;
            let host = parsed.host_str().unwrap_or_default().to_string();
            if !self.plan.policy.allows_host(&host) {
                return Err(Failure::new(
                    "policy",
                    format!(
                        "egress to `{host}` is not allowed by the policy (knowledge `{source}`: {url})"
                    ),
                ));
            }
            if self.options.sim {
                documents.push(Arc::new(knowledge::unfetched_document(&source, &url)));
            } else if let Some(document) = self.knowledge.fetched(&url) {
                documents.push(document);
            } else {
                let document = self.fetch_document(&source, &url, parsed).await?;
                documents.push(self.knowledge.remember(document));
            }
        }
        let documents = self.knowledge.select(documents, prompt);
        let total: usize = documents.iter().map(|d| d.text.len()).sum();
        if total > knowledge::MAX_CALL_BYTES {
            return Err(Failure::new(
                "permanent",
                format!(
                    "the knowledge of this call holds {} KiB of text, more than the {} KiB one call may send; cite fewer sources",
                    total / 1024,
                    knowledge::MAX_CALL_BYTES / 1024
                ),
            ));
        }
        Ok(Sources { documents })
    }

    /// Fetches one knowledge URL (its host already allowed), reading at most
    /// [`knowledge::MAX_FETCH_BYTES`].
    async fn fetch_document(
        &self,
        source: &str,
        url: &str,
        parsed: reqwest::Url,
    ) -> Result<knowledge::Document, Failure> {
        let what = format!("knowledge `{source}`: {url}");
        let mut response = self
            .http()
            .get(parsed)
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .map_err(|e| {
                if e.is_timeout() {
                    Failure::new("timeout", format!("{what}: the request timed out"))
                } else {
                    Failure::new("transient", format!("{what}: request failed: {e}"))
                }
            })?;
        let status = response.status();
        if !status.is_success() {
            let class = if status.as_u16() == 429 {
                "rate_limited"
            } else if status.is_server_error() {
                "transient"
            } else {
                "permanent"
            };
            return Err(Failure::new(class, format!("{what}: HTTP {status}")));
        }
        let html = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("html"));
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| Failure::new("transient", format!("{what}: {e}")))?
        {
            body.extend_from_slice(&chunk);
            if body.len() >= knowledge::MAX_FETCH_BYTES {
                body.truncate(knowledge::MAX_FETCH_BYTES);
                break;
            }
        }
        let text = String::from_utf8_lossy(&body);
        Ok(knowledge::fetched_document(source, url, &text, html))
    }

    /// The mocked result of `tool` in an eval run (`mock TOOL returns EXPR`), checked
    /// against and normalised to the tool's result type (as a model's answer is, with
    /// `Money` an amount as the pack computes it).
    fn tool_mock(
        &self,
        tool: &str,
        info: &dsl_check::program::ToolInfo,
    ) -> Result<Option<Value>, Failure> {
        if self.options.eval.is_none() {
            return Ok(None);
        }
        let key = info.key();
        let Some(mock) = self.mocks.get(tool).or_else(|| self.mocks.get(&*key)) else {
            return Ok(None);
        };
        let value = self
            .eval_in(mock, &[], None)
            .map_err(|e| Failure::new("permanent", format!("mock of `{key}`: {e}")))?;
        crate::providers::check_value(&value, &info.result, &*self.plan)
            .map(Some)
            .map_err(|e| {
                Failure::new(
                    "permanent",
                    format!(
                        "mock of `{key}` does not fit its result type {}: {e}",
                        info.result
                    ),
                )
            })
    }

    /// The idempotency key of an effect of step `key` sent with the arguments hashed as
    /// `args_hash`: `RUN/STEP` when first issued, and the same key whenever it is issued again
    /// with the same arguments (after a crash left its outcome unknown: the receiver
    /// de-duplicates it). Sent with other arguments (changed after a gate asked anew) it is a
    /// new effect, `RUN/STEP/HASH` with a short hash of the arguments, so a receiver never
    /// answers it with the earlier call's result. An effect stored before arguments were
    /// hashed counts as sent with the same arguments.
    fn effect_key(&self, key: &str, args_hash: &str) -> String {
        let first = format!("{}/{key}", self.run_id);
        let Some(earlier) = self.effects.get(key) else {
            return first;
        };
        earlier
            .iter()
            .find(|e| e.args_hash.as_deref().is_none_or(|hash| hash == args_hash))
            .map(|e| e.key.clone())
            .unwrap_or_else(|| format!("{first}/{}", args_hash.get(..12).unwrap_or(args_hash)))
    }

    /// Calls a tool: egress check, effect record (idempotency key) before an effect is sent,
    /// then the simulated result or the real request.
    pub(crate) async fn call_tool(
        &self,
        tool: &str,
        args: Map<String, Value>,
        key: &str,
        attempts: &mut Vec<AttemptRecord>,
    ) -> Result<(Value, Option<String>), Failure> {
        let info = self
            .plan
            .tool(tool)
            .ok_or_else(|| Failure::new("permanent", format!("unknown tool `{tool}`")))?;
        for host in &info.hosts {
            if !self.plan.policy.allows_host(host) {
                return Err(Failure::new(
                    "policy",
                    format!("egress to `{host}` is not allowed by the policy (tool {tool})"),
                ));
            }
        }
        // The policy's `rate` rules space the calls (before the effect is marked issued).
        // (`tool` is the tool's key: the plan found it by that.)
        self.wait_for_rate(tool).await?;
        // Locals of a block, as the real calls' are of their own function: what lives across
        // the simulated wait below is in every tool step's future.
        let effect_key = if matches!(info.scope, Some(ToolScope::Write | ToolScope::Destructive)) {
            let args_hash = super::sha256_hex(&serde_json::to_string(&args).unwrap_or_default());
            let effect_key = self.effect_key(key, &args_hash);
            let write = Write::EffectIssued {
                key: effect_key.clone(),
                step_key: key.to_string(),
                tool: tool.to_string(),
                at: now_ms(),
                args_hash: Some(args_hash),
            };
            self.writer
                .write(vec![write])
                .await
                .map_err(|e| Failure::new("permanent", e.to_string()))?;
            Some(effect_key)
        } else {
            None
        };
        let _global = crate::sim::clock::after_wait(self.global_limit.acquire()).await;
        if self.options.sim {
            let latency = info.sim_latency_ms.or(self.options.sim_latency_ms);
            // The simulated answer is worked out while the call is in flight (it depends on
            // the arguments alone) and given, or its failure reported, once the call ends.
            let value = self.simulated_tool_value(tool, info, args, key);
            if let Some(ms) = latency.filter(|ms| *ms > 0) {
                self.simulated_tool_latency(info, key, ms, attempts).await?;
            }
            return value.map(|value| (value, effect_key));
        }
        // Boxed: the tries' state (an HTTP request's timeout, a backoff) would make every
        // tool step's future, a simulated one's too, larger.
        let value =
            Box::pin(self.real_tool_tries(tool, info, &args, key, effect_key.as_deref(), attempts))
                .await?;
        Ok((value, effect_key))
    }

    /// Calls a real tool until a try succeeds, fails for good, or the tool's retries are
    /// spent: each try under the tool's `timeout`, a failed one recorded in `attempts` and
    /// retried after the failure's `retry_after` or an exponential backoff with jitter,
    /// once the policy's `rate` rules allow.
    async fn real_tool_tries(
        &self,
        tool: &str,
        info: &dsl_check::program::ToolInfo,
        args: &Map<String, Value>,
        key: &str,
        effect_key: Option<&str>,
        attempts: &mut Vec<AttemptRecord>,
    ) -> Result<Value, Failure> {
        let mut rng = Rng::new(self.options.seed, key);
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            if attempt > 1 {
                // (`tool` is the tool's key, as for the first try.)
                self.wait_for_rate(tool).await?;
            }
            let started = now_ms();
            let timeout = tool_timeout(info);
            // Boxed: an HTTP request's future is large.
            let call = Box::pin(self.real_tool_call(info, args, effect_key, timeout));
            let result = match tokio::time::timeout(timeout, call).await {
                Ok(result) => result,
                Err(_) => Err(Failure::new("timeout", tool_timed_out(timeout))),
            };
            match result {
                Ok(value) => return Ok(value),
                Err(failure) => {
                    let mut record = self.attempt_record(
                        key,
                        attempts.len() as i64 + 1,
                        "failed",
                        started,
                        Some(redact_text(&failure.message, self.redact_trace)),
                    );
                    record.model = Some(tool.to_string());
                    record.detail_json =
                        Some(serde_json::json!({ "class": failure.class }).to_string());
                    attempts.push(record);
                    if !failure.retryable() || attempt > tool_retries(info) {
                        return Err(failure.recorded());
                    }
                    let wait = failure
                        .retry_after
                        .unwrap_or_else(|| backoff(tool_backoff_ms(info), attempt, &mut rng));
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    /// What a simulated call of `tool` answers: the pack's mock, its `sim` expression over
    /// the arguments, or a generated value of its result type.
    fn simulated_tool_value(
        &self,
        tool: &str,
        info: &dsl_check::program::ToolInfo,
        args: Map<String, Value>,
        key: &str,
    ) -> Result<Value, Failure> {
        if let Some(value) = self.tool_mock(tool, info)? {
            return Ok(value);
        }
        let locals: Vec<(String, Value)> = args.into_iter().collect();
        Ok(match &info.sim {
            Some(sim) => self
                .eval_in(sim, &locals, None)
                .map_err(|e| Failure::new("permanent", format!("sim of `{tool}`: {e}")))?,
            None => {
                let generator = Generator {
                    types: &self.plan.types,
                    cite: &[],
                };
                generator.value(
                    &info.result,
                    "result",
                    &mut Rng::new(self.options.seed, key),
                    0,
                )
            }
        })
    }

    /// Waits out a simulated call of `tool` that takes `latency_ms`, under the tool's
    /// `timeout` and the retry rules of real tool calls: an attempt that outlasts the timeout
    /// is cancelled, recorded as a failed attempt of the `timeout` class and retried after a
    /// backoff. Fails with the `timeout` class when no attempt finished in time.
    async fn simulated_tool_latency(
        &self,
        info: &dsl_check::program::ToolInfo,
        key: &str,
        latency_ms: u64,
        attempts: &mut Vec<AttemptRecord>,
    ) -> Result<(), Failure> {
        let timeout = tool_timeout(info);
        let latency = Duration::from_millis(latency_ms);
        let started = now_ms();
        if crate::sim::clock::latency_within(latency, timeout).await {
            return Ok(());
        }
        // Cut off by the timeout: the retries and their state are boxed, off the common path
        // (what lives across the wait above is in every simulated tool step's future).
        Box::pin(self.simulated_retries(info, key, latency, timeout, started, attempts)).await
    }

    /// A simulated call whose first try (started at `first_started`) the timeout cut off:
    /// records it, and retries as [`Engine::simulated_tool_latency`] says.
    async fn simulated_retries(
        &self,
        info: &dsl_check::program::ToolInfo,
        key: &str,
        latency: Duration,
        timeout: Duration,
        first_started: i64,
        attempts: &mut Vec<AttemptRecord>,
    ) -> Result<(), Failure> {
        let tool = info.key();
        let mut rng = Rng::new(self.options.seed, key);
        let retries = tool_retries(info);
        let mut started = first_started;
        let mut attempt = 1;
        loop {
            let mut record = self.attempt_record(
                key,
                attempts.len() as i64 + 1,
                "failed",
                started,
                Some(tool_timed_out(timeout)),
            );
            record.model = Some(tool.clone());
            record.detail_json = Some(serde_json::json!({ "class": "timeout" }).to_string());
            attempts.push(record);
            if attempt > retries {
                return Err(Failure::new("timeout", tool_timed_out(timeout)).recorded());
            }
            tokio::time::sleep(backoff(tool_backoff_ms(info), attempt, &mut rng)).await;
            attempt = attempt.saturating_add(1);
            self.wait_for_rate(&tool).await?;
            started = now_ms();
            if crate::sim::clock::latency_within(latency, timeout).await {
                return Ok(());
            }
        }
    }

    async fn real_tool_call(
        &self,
        info: &dsl_check::program::ToolInfo,
        args: &Map<String, Value>,
        idempotency_key: Option<&str>,
        timeout: Duration,
    ) -> Result<Value, Failure> {
        let locals: Vec<(String, Value)> = args.clone().into_iter().collect();
        let (method, url, headers, query, body) = if let Some(builtin) = &info.builtin {
            match builtin.as_str() {
                "core.now" => return Ok(Value::String(format!("{}", now_ms()))),
                "core.new_id" => {
                    let prefix = args.get("prefix").map(eval::display).unwrap_or_default();
                    return Ok(Value::String(format!("{prefix}_{}", super::new_run_id())));
                }
                "web.fetch" => {
                    let url = args.get("url").map(eval::display).unwrap_or_default();
                    ("GET".to_string(), url, Map::new(), Map::new(), None)
                }
                other => {
                    return Err(Failure::new(
                        "permanent",
                        format!("unknown builtin `{other}`"),
                    ));
                }
            }
        } else if let Some(request) = &info.request {
            let values = self
                .values
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            let scope = Scope {
                inputs: Some(&self.inputs),
                steps: Some(&values),
                locals,
                tool_results: None,
                read_secrets: true,
                base_dir: Some(&self.base_dir),
            };
            let template = eval::eval(request, &scope)
                .map_err(|e| Failure::new("permanent", e.to_string()))?;
            let get = |k: &str| template.get(k).cloned().unwrap_or(Value::Null);
            let method = get("method").as_str().unwrap_or("GET").to_uppercase();
            let url = eval::display(&get("url"));
            let headers = get("headers").as_object().cloned().unwrap_or_default();
            let query = get("query").as_object().cloned().unwrap_or_default();
            let body = template.get("body").cloned().filter(|b| !b.is_null());
            (method, url, headers, query, body)
        } else {
            return Err(Failure::new(
                "permanent",
                format!(
                    "tool `{}` has neither request nor builtin; run it with --sim",
                    info.key()
                ),
            ));
        };
        let parsed = reqwest::Url::parse(&url)
            .map_err(|e| Failure::new("permanent", format!("bad URL: {e}")))?;
        let host = parsed.host_str().unwrap_or_default().to_string();
        if !self.plan.policy.allows_host(&host) {
            return Err(Failure::new(
                "policy",
                format!("egress to `{host}` is not allowed by the policy"),
            ));
        }
        let mut parsed = parsed;
        {
            let pairs: Vec<(String, String)> = query
                .iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), eval::display(v)))
                .collect();
            if !pairs.is_empty() {
                let mut out = parsed.query_pairs_mut();
                for (k, v) in &pairs {
                    out.append_pair(k, v);
                }
            }
        }
        let method = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|e| Failure::new("permanent", e.to_string()))?;
        let mut builder = self.http().request(method, parsed).timeout(timeout);
        for (name, value) in &headers {
            if !value.is_null() {
                builder = builder.header(name.as_str(), eval::display(value));
            }
        }
        if let Some(key) = idempotency_key {
            builder = builder.header("Idempotency-Key", key);
        }
        if let Some(body) = body {
            builder = builder.json(&body);
        }
        let response = builder.send().await.map_err(|e| {
            if e.is_timeout() {
                Failure::new("timeout", tool_timed_out(timeout))
            } else {
                Failure::new("transient", format!("request failed: {e}"))
            }
        })?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| Failure::new("transient", e.to_string()))?;
        if status.as_u16() == 429 {
            return Err(Failure::new(
                "rate_limited",
                format!("HTTP 429 from {host}"),
            ));
        }
        if status.is_server_error() {
            return Err(Failure::new(
                "transient",
                format!("HTTP {status} from {host}"),
            ));
        }
        if !status.is_success() {
            return Err(Failure::new(
                "permanent",
                format!("HTTP {status} from {host}"),
            ));
        }
        if info.builtin.as_deref() == Some("web.fetch") {
            let max = args
                .get("max_chars")
                .and_then(Value::as_u64)
                .unwrap_or(20_000) as usize;
            let text: String = text.chars().take(max).collect();
            return Ok(serde_json::json!({
                "url": url, "status": status.as_u16(), "title": "", "content_type": "text/html",
                "text": text, "fetched_at": format!("{}", now_ms()),
            }));
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }
}

/// A tool step's detail, as JSON text: its arguments, source span and tool, redacted. The
/// same text as a JSON object of the three would give (`{"args":…,"span":[start,end],"tool":…}`),
/// written from the arguments where they are: a document built for it copied them, and the
/// copy and its strings were a third of a tool step's cost on the scheduler (callgrind).
fn tool_detail(
    tool: &str,
    args: &Map<String, Value>,
    span: dsl_syntax::Span,
    kinds: crate::redact::Kinds,
) -> String {
    #[derive(serde::Serialize)]
    struct ToolDetail<'a> {
        args: crate::redact::Redacted<'a, Map<String, Value>>,
        span: [u32; 2],
        tool: std::borrow::Cow<'a, str>,
    }
    let detail = ToolDetail {
        args: crate::redact::Redacted(args, kinds),
        span: [span.start, span.end],
        tool: crate::redact::redact_cow(tool, kinds),
    };
    serde_json::to_string(&detail).unwrap_or_default()
}

#[cfg(test)]
mod egress_tests;

#[cfg(test)]
mod tool_detail_tests {
    use super::*;

    /// The detail is the text the redacted JSON object of the three gives, PII or none.
    #[test]
    fn a_tool_detail_is_the_redacted_object_of_its_parts() {
        let span = dsl_syntax::Span { start: 12, end: 40 };
        let cases = [
            serde_json::json!({ "x": 1 }),
            serde_json::json!({}),
            serde_json::json!({ "to": "dana@northwind.example", "n": 2.5, "tags": ["a", "call 415-555-0134"] }),
            serde_json::json!({ "body": { "text": "key sk-abcdefghijklmnop1234", "ok": true }, "z": null }),
        ];
        for kinds in [crate::redact::Kinds::ALL, crate::redact::Kinds::default()] {
            for args in &cases {
                let args = args.as_object().expect("an object").clone();
                let mut doc = serde_json::json!({ "tool": "send", "args": args, "span": [span.start, span.end] });
                crate::redact::redact_value_in_place(&mut doc, kinds);
                assert_eq!(
                    tool_detail("send", &args, span, kinds),
                    super::super::json_text(&doc)
                );
            }
        }
    }
}

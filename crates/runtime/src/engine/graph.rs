//! Scheduling a graph: every node whose inputs are ready runs at once; `map`, `when` and
//! `review` run their sub-graphs; approval gates stop what they guard; results are written
//! to the store before dependents start.

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::pin::Pin;

use dsl_check::plan::{EdgeKind, Graph, Node, NodeKind};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use petgraph::Direction;
use petgraph::stable_graph::NodeIndex;
use petgraph::visit::EdgeRef;
use serde_json::Value;
use tokio::sync::{Semaphore, watch};

use super::writer::Resolved;
use super::{Engine, Progress, now_ms};
use crate::eval::{self, Scope};
use crate::store::{ApprovalRecord, AttemptRecord, StepRecord, Write};

/// Where a graph runs: how its node ids become step keys, and the local names in scope.
#[derive(Debug, Clone, Default)]
pub(crate) struct Ctx {
    key_base: String,
    id_base: String,
    pub(crate) locals: Vec<(String, Value)>,
    top: bool,
}

impl Ctx {
    pub(crate) fn root() -> Ctx {
        Ctx {
            top: true,
            ..Ctx::default()
        }
    }

    /// The step key of node `id` here: `send`, `send[2].body.approval`.
    pub(crate) fn key(&self, id: &str) -> String {
        if self.id_base.is_empty() {
            return id.to_string();
        }
        let suffix = id.strip_prefix(&self.id_base).unwrap_or(id);
        format!("{}{suffix}", self.key_base)
    }

    fn child(&self, key_base: String, id_base: &str, extra: Vec<(String, Value)>) -> Ctx {
        let mut locals = self.locals.clone();
        locals.extend(extra);
        Ctx {
            key_base,
            id_base: id_base.to_string(),
            locals,
            top: false,
        }
    }
}

/// The next of `running` to finish. While none has, the simulated waits already due are
/// fired here (see [`crate::sim::clock::fire_due`]): the scheduler's thread, awake, does not
/// park to wait for the timer's thread to get a core.
fn next_done<F: Future>(
    running: &mut FuturesUnordered<F>,
) -> impl Future<Output = Option<F::Output>> + '_ {
    std::future::poll_fn(move |cx| match running.poll_next_unpin(cx) {
        std::task::Poll::Pending if crate::sim::clock::fire_due() => running.poll_next_unpin(cx),
        other => other,
    })
}

/// Why a graph stopped before its end (in increasing severity).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Blocker {
    Waiting,
    Failed,
    Budget,
    Interrupted,
}

/// What a node produced.
pub(crate) enum NodeResult {
    Value(Value),
    Rejected,
    Skipped,
    Blocked(Blocker, Option<String>),
    /// A value whose step record is queued for a commit shared with other nodes: the step
    /// is done, and its dependents start, only once that commit is (see [`Finished`]).
    Committing(Finished),
}

/// A leaf's success waiting for its record's commit.
pub(crate) struct Finished {
    pub(crate) value: Value,
    pub(crate) ticket: super::writer::Ticket,
    /// The step key, cost and tokens for the progress report.
    pub(crate) key: String,
    pub(crate) cost: f64,
    pub(crate) tokens: u64,
}

/// What a graph produced.
#[derive(Default)]
pub(crate) struct GraphOutcome {
    /// Node values by id (sub-graphs only: the root's are in `Engine::values`).
    pub(crate) values: crate::eval::StepValues,
    /// How each node ended (sub-graphs only).
    pub(crate) states: HashMap<String, &'static str>,
    pub(crate) blocker: Option<Blocker>,
    pub(crate) error: Option<String>,
}

impl GraphOutcome {
    fn block(&mut self, blocker: Blocker, error: Option<String>) {
        if self.blocker.is_none_or(|b| blocker > b) {
            self.blocker = Some(blocker);
        }
        if self.error.is_none() {
            self.error = error;
        }
    }
}

type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

/// The node whose value is a sub-graph's value: the last node nothing depends on that is
/// not a gate.
pub(crate) fn result_node(graph: &Graph) -> Option<&Node> {
    let g = &graph.graph;
    g.node_indices()
        .filter(|&i| g.edges_directed(i, Direction::Outgoing).next().is_none())
        .filter_map(|i| g.node_weight(i))
        .rfind(|n| !matches!(n.kind, NodeKind::Gate { .. }))
}

/// Whether the node with id `id` (anywhere in the plan) is a tool call.
pub(crate) fn is_call_node(graph: &Graph, id: &str) -> bool {
    find_node(graph, id).is_some_and(|n| matches!(n.kind, NodeKind::Tool { .. }))
}

/// The node with id `id`, searching sub-graphs.
pub(crate) fn find_node<'g>(graph: &'g Graph, id: &str) -> Option<&'g Node> {
    if let Some(node) = graph.node(id) {
        return Some(node);
    }
    for node in graph.nodes() {
        let found = match &node.kind {
            NodeKind::Map { body, .. } | NodeKind::Review { body, .. } => find_node(body, id),
            NodeKind::Branch {
                then, otherwise, ..
            } => find_node(then, id).or_else(|| otherwise.as_ref().and_then(|o| find_node(o, id))),
            _ => None,
        };
        if found.is_some() {
            return found;
        }
    }
    None
}

impl Engine {
    /// Evaluates `expr` with the run's inputs, the finished top-level steps and `locals`.
    pub(crate) fn eval_in(
        &self,
        expr: &dsl_syntax::ast::Expr,
        locals: &[(String, Value)],
        tool_results: Option<&HashMap<(u32, u32), Value>>,
    ) -> Result<Value, eval::EvalError> {
        let values = self.values.read().unwrap_or_else(|e| e.into_inner());
        let scope = Scope {
            inputs: Some(&self.inputs),
            steps: Some(&*values),
            locals: locals.to_vec(),
            tool_results,
            read_secrets: false,
            base_dir: Some(&self.base_dir),
        };
        eval::eval(expr, &scope)
    }

    /// Runs a graph to its end or until every path is blocked.
    pub(crate) fn run_graph<'a>(&'a self, graph: &'a Graph, ctx: Ctx) -> BoxFut<'a, GraphOutcome> {
        Box::pin(async move {
            let g = &graph.graph;
            let nodes = g.node_count();
            let sized = if ctx.top { 0 } else { nodes };
            let mut outcome = GraphOutcome {
                values: crate::eval::StepValues::with_capacity_and_hasher(
                    sized,
                    Default::default(),
                ),
                states: HashMap::with_capacity(sized),
                ..GraphOutcome::default()
            };
            let mut waiting_on: HashMap<NodeIndex, usize> = HashMap::with_capacity(nodes);
            let mut rejected: HashSet<NodeIndex> = HashSet::new();
            let mut running = FuturesUnordered::new();
            // Nodes whose inputs are ready, dispatched as room allows: no more node futures
            // live at once than the run's concurrency (they could not call anything more at
            // once anyway), so a wave of 100,000 ready steps does not hold 100,000 futures.
            let mut ready: VecDeque<NodeIndex> = VecDeque::new();
            let room = self.options.max_concurrency.unwrap_or(1024).max(1);
            for index in g.node_indices() {
                let incoming = g.edges_directed(index, Direction::Incoming).count();
                if incoming == 0 {
                    ready.push_back(index);
                } else {
                    waiting_on.insert(index, incoming);
                }
            }
            // Successes whose records wait for a shared commit. They complete in the order
            // they were queued, and commits resolve the queue in order: the front resolves
            // first.
            let mut committing: VecDeque<(NodeIndex, Finished)> = VecDeque::new();
            let resolved = self.writer.resolved();
            // One wait for the next commit, kept across the loop's turns: a new one at every
            // turn would join the channel's list of waiters whenever the scheduler waits and
            // leave it whenever a step finishes first.
            let mut commit_wait = self.writer.resolved().map(next_commit);
            // The graph, not each step, waits for the run's cancellation (one waiter for the
            // whole graph); when it comes, every step in flight is polled again and sees it.
            let mut cancel = self.cancel.clone();
            let cancel_requested = cancel.wait_for(|c| *c);
            let mut cancel_requested = std::pin::pin!(cancel_requested);
            let mut cancel_seen = false;
            // This turn's results (one list for every turn: most turns have one).
            let mut results = Vec::new();
            loop {
                while running.len() < room
                    && let Some(index) = ready.pop_front()
                {
                    if let Some(node) = g.node_weight(index) {
                        running.push(self.node_future(
                            index,
                            node,
                            &ctx,
                            rejected.contains(&index),
                        ));
                    }
                }
                // Leaves whose commit is known are done (or failed, if it failed). (`results`
                // is empty: the previous turn drained it.)
                if let Some(resolved) = &resolved
                    && !committing.is_empty()
                {
                    let state = resolved.borrow();
                    while let Some((_, finished)) = committing.front()
                        && let Some(outcome) = state.outcome(finished.ticket)
                        && let Some((index, finished)) = committing.pop_front()
                    {
                        results.push((index, self.committed(finished, outcome)));
                    }
                }
                if results.is_empty() {
                    if running.is_empty() && committing.is_empty() {
                        break;
                    }
                    tokio::select! {
                        biased;
                        next = next_done(&mut running), if !running.is_empty() => {
                            if let Some(next) = next {
                                results.push(next);
                            }
                        }
                        receiver = async {
                            match &mut commit_wait {
                                Some(wait) => wait.await,
                                None => std::future::pending().await,
                            }
                        }, if !committing.is_empty() => {
                            // The next wait, from the same receiver (the writer lives as
                            // long as the engine, so its channel stays open while a graph
                            // runs).
                            commit_wait = receiver.map(next_commit);
                        }
                        _ = &mut cancel_requested, if !cancel_seen && !running.is_empty() => {
                            cancel_seen = true;
                            // Pushed again, each step in flight is polled, sees the run
                            // cancelled and stops (its calls are dropped).
                            let in_flight: Vec<_> = std::mem::take(&mut running).into_iter().collect();
                            running.extend(in_flight);
                        }
                    }
                }
                // The root's values, locked once for all of this turn's results.
                let mut root_values = None;
                for (index, result) in results.drain(..) {
                    let Some(node) = g.node_weight(index) else {
                        continue;
                    };
                    let (value, state) = match result {
                        NodeResult::Value(value) => (value, "succeeded"),
                        NodeResult::Rejected => (Value::Null, "rejected"),
                        NodeResult::Skipped => (Value::Null, "skipped"),
                        NodeResult::Blocked(blocker, error) => {
                            outcome.block(blocker, error);
                            continue;
                        }
                        NodeResult::Committing(finished) => {
                            committing.push_back((index, finished));
                            continue;
                        }
                    };
                    let refused =
                        matches!(node.kind, NodeKind::Gate { .. }) && value == Value::Bool(false);
                    if ctx.top {
                        // The root graph's values live where expressions read them; its outcome
                        // only says what stopped it.
                        root_values
                            .get_or_insert_with(|| {
                                self.values.write().unwrap_or_else(|e| e.into_inner())
                            })
                            .insert(node.id.clone(), value);
                    } else {
                        outcome.states.insert(node.id.clone(), state);
                        outcome.values.insert(node.id.clone(), value);
                    }
                    for edge in g.edges_directed(index, Direction::Outgoing) {
                        let target = edge.target();
                        if refused && edge.weight().kind == EdgeKind::Approval {
                            rejected.insert(target);
                        }
                        if let Some(count) = waiting_on.get_mut(&target) {
                            *count -= 1;
                            if *count == 0 {
                                ready.push_back(target);
                            }
                        }
                    }
                }
            }
            outcome
        })
    }

    /// A leaf whose record's commit has resolved: done (reported as such), or failed with
    /// the commit.
    fn committed(&self, finished: Finished, outcome: Result<(), String>) -> NodeResult {
        let Finished {
            value,
            key,
            cost,
            tokens,
            ..
        } = finished;
        match outcome {
            Ok(()) => {
                self.report(
                    || Progress::Finished(key, "succeeded".into()),
                    |c| {
                        c.running -= 1;
                        c.done += 1;
                        c.cost += cost;
                        c.tokens += tokens;
                    },
                );
                NodeResult::Value(value)
            }
            Err(error) => NodeResult::Blocked(
                Blocker::Failed,
                Some(crate::store::StoreError::Commit(error).to_string()),
            ),
        }
    }

    fn node_future<'a>(
        &'a self,
        index: NodeIndex,
        node: &'a Node,
        ctx: &Ctx,
        rejected: bool,
    ) -> BoxFut<'a, (NodeIndex, NodeResult)> {
        let ctx = ctx.clone();
        // Counted from its dispatch: the store writer commits inline only for a node alone.
        let in_flight = self.writer.node_started();
        Box::pin(crate::sim::clock::issued(async move {
            let result = self.run_node(node, &ctx, rejected).await;
            drop(in_flight);
            (index, result)
        }))
    }

    async fn run_node(&self, node: &Node, ctx: &Ctx, rejected: bool) -> NodeResult {
        let key = ctx.key(&node.id);
        if let Some(prior) = self.prior.get(&key)
            && !self.gate_must_recheck(node, ctx)
        {
            self.report(
                || Progress::Finished(key.clone(), "cached".into()),
                |c| c.done += 1,
            );
            return match prior.status.as_str() {
                "rejected" => NodeResult::Rejected,
                "skipped" => NodeResult::Skipped,
                _ => NodeResult::Value(
                    prior
                        .output_json
                        .as_deref()
                        .and_then(|j| serde_json::from_str(j).ok())
                        .unwrap_or(Value::Null),
                ),
            };
        }
        if rejected {
            let now = now_ms();
            let writes = vec![
                Write::Step(
                    self.step_record(&key, node, "rejected", 0, now, now, None, None),
                    Vec::new(),
                ),
                self.audit_write(
                    "step_rejected",
                    Some(&key),
                    "its approval was rejected".into(),
                ),
            ];
            if let Err(error) = self.writer.write(writes).await {
                return NodeResult::Blocked(Blocker::Failed, Some(error.to_string()));
            }
            self.report(
                || Progress::Finished(key, "rejected".into()),
                |c| c.done += 1,
            );
            return NodeResult::Rejected;
        }
        if self.cancelled() {
            return NodeResult::Blocked(Blocker::Interrupted, None);
        }
        // Containers and gates are boxed when they start, so a leaf's future (the common
        // case, and a wide wave's) is no larger than a leaf needs.
        match &node.kind {
            NodeKind::Map {
                var,
                source,
                filter,
                concurrency,
                body,
            } => {
                Box::pin(self.run_map(
                    node,
                    ctx,
                    &key,
                    var,
                    source,
                    filter.as_ref(),
                    concurrency.as_ref(),
                    body,
                ))
                .await
            }
            NodeKind::Branch {
                cond,
                then,
                otherwise,
            } => Box::pin(self.run_branch(node, ctx, &key, cond, then, otherwise.as_ref())).await,
            NodeKind::Review {
                critic,
                until,
                max_rounds,
                body,
            } => {
                Box::pin(self.run_review(node, ctx, &key, critic, until, max_rounds.as_ref(), body))
                    .await
            }
            NodeKind::Gate { .. } | NodeKind::Approval { .. } => {
                Box::pin(self.run_gate(node, ctx, &key)).await
            }
            _ => self.run_leaf(node, ctx, &key).await,
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn step_record(
        &self,
        key: &str,
        node: &Node,
        status: &str,
        attempts: i64,
        started_at: i64,
        ended_at: i64,
        output: Option<&Value>,
        error: Option<String>,
    ) -> StepRecord {
        StepRecord {
            key: key.to_string(),
            node: node.id.clone(),
            status: status.to_string(),
            attempts,
            started_at,
            ended_at,
            output_json: output.map(super::json_text),
            input_tokens: 0,
            output_tokens: 0,
            cost: 0.0,
            error,
            model: None,
            detail_json: None,
        }
    }

    /// Records a container step (map, branch, review) once its parts are done.
    async fn finish_container(
        &self,
        key: &str,
        node: &Node,
        status: &str,
        started: i64,
        value: Value,
    ) -> NodeResult {
        let record = self.step_record(key, node, status, 1, started, now_ms(), Some(&value), None);
        if let Err(error) = self
            .writer
            .write(vec![Write::Step(record, Vec::new())])
            .await
        {
            return NodeResult::Blocked(Blocker::Failed, Some(error.to_string()));
        }
        self.report(
            || Progress::Finished(key.to_string(), status.to_string()),
            |c| c.done += 1,
        );
        if status == "skipped" {
            NodeResult::Skipped
        } else {
            NodeResult::Value(value)
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn run_map(
        &self,
        node: &Node,
        ctx: &Ctx,
        key: &str,
        var: &str,
        source: &dsl_syntax::ast::Expr,
        filter: Option<&dsl_syntax::ast::Expr>,
        concurrency: Option<&dsl_syntax::ast::Expr>,
        body: &Graph,
    ) -> NodeResult {
        let started = now_ms();
        let items = match self.eval_in(source, &ctx.locals, None) {
            Ok(Value::Array(items)) => items,
            Ok(Value::Null) => Vec::new(),
            Ok(other) => {
                return self
                    .fail_step(key, node, started, format!("map needs a list, got {other}"))
                    .await;
            }
            Err(error) => return self.fail_step(key, node, started, error.to_string()).await,
        };
        let mut selected = Vec::new();
        for (i, item) in items.into_iter().enumerate() {
            if let Some(filter) = filter {
                let mut locals = ctx.locals.clone();
                locals.push((var.to_string(), item.clone()));
                match self.eval_in(filter, &locals, None) {
                    Ok(v) if eval::truthy(&v) => {}
                    Ok(_) => continue,
                    Err(error) => {
                        return self.fail_step(key, node, started, error.to_string()).await;
                    }
                }
            }
            selected.push((i, item));
        }
        let limit = concurrency
            .and_then(|c| self.eval_in(c, &ctx.locals, None).ok())
            .and_then(|v| v.as_u64())
            .map_or(Semaphore::MAX_PERMITS, |n| (n as usize).max(1));
        let semaphore = Semaphore::new(limit);
        let result_id = result_node(body).map(|n| n.id.clone());
        let mut running = FuturesUnordered::new();
        for (i, item) in selected {
            let child = ctx.child(
                format!("{key}[{i}]"),
                &node.id,
                vec![(var.to_string(), item)],
            );
            let semaphore = &semaphore;
            running.push(Box::pin(async move {
                let _permit = semaphore.acquire().await;
                (i, self.run_graph(body, child).await)
            }) as BoxFut<'_, (usize, GraphOutcome)>);
        }
        let mut results = Vec::new();
        let mut blocked = GraphOutcome::default();
        while let Some((i, outcome)) = running.next().await {
            if let Some(blocker) = outcome.blocker {
                blocked.block(blocker, outcome.error.clone());
            }
            results.push((i, outcome));
        }
        if let Some(blocker) = blocked.blocker {
            return NodeResult::Blocked(blocker, blocked.error);
        }
        results.sort_by_key(|(i, _)| *i);
        let mut list = Vec::new();
        for (_, mut outcome) in results {
            let Some(id) = &result_id else { continue };
            if outcome.states.get(id.as_str()) == Some(&"succeeded")
                && let Some(value) = outcome.values.remove(id)
            {
                list.push(value);
            }
        }
        self.finish_container(key, node, "succeeded", started, Value::Array(list))
            .await
    }

    async fn run_branch(
        &self,
        node: &Node,
        ctx: &Ctx,
        key: &str,
        cond: &dsl_syntax::ast::Expr,
        then: &Graph,
        otherwise: Option<&Graph>,
    ) -> NodeResult {
        let started = now_ms();
        let holds = match self.eval_in(cond, &ctx.locals, None) {
            Ok(v) => eval::truthy(&v),
            Err(error) => return self.fail_step(key, node, started, error.to_string()).await,
        };
        let graph = if holds { Some(then) } else { otherwise };
        let Some(graph) = graph else {
            return self
                .finish_container(key, node, "skipped", started, Value::Null)
                .await;
        };
        let child = ctx.child(key.to_string(), &node.id, Vec::new());
        let mut outcome = self.run_graph(graph, child).await;
        if let Some(blocker) = outcome.blocker {
            return NodeResult::Blocked(blocker, outcome.error);
        }
        let value = result_node(graph)
            .and_then(|n| outcome.values.remove(&n.id))
            .unwrap_or(Value::Null);
        self.finish_container(key, node, "succeeded", started, value)
            .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn run_review(
        &self,
        node: &Node,
        ctx: &Ctx,
        key: &str,
        critic: &str,
        until: &dsl_syntax::ast::Expr,
        max_rounds: Option<&dsl_syntax::ast::Expr>,
        body: &Graph,
    ) -> NodeResult {
        let started = now_ms();
        let max = max_rounds
            .and_then(|m| self.eval_in(m, &ctx.locals, None).ok())
            .and_then(|v| v.as_u64())
            .unwrap_or(3)
            .max(1);
        let mut critique = serde_json::json!({ "approved": false, "score": 0.0, "feedback": "" });
        let mut draft = Value::Null;
        for round in 1..=max {
            let child = ctx.child(
                format!("{key}#{round}"),
                &node.id,
                vec![("critique".to_string(), critique.clone())],
            );
            let mut outcome = self.run_graph(body, child).await;
            if let Some(blocker) = outcome.blocker {
                return NodeResult::Blocked(blocker, outcome.error);
            }
            draft = result_node(body)
                .and_then(|n| outcome.values.remove(&n.id))
                .unwrap_or(Value::Null);
            let critic_key = format!("{key}#{round}.critique");
            critique = match self
                .critique(node, &critic_key, critic, &draft, round)
                .await
            {
                Ok(c) => c,
                Err(result) => return result,
            };
            let mut locals = ctx.locals.clone();
            locals.push(("critique".to_string(), critique.clone()));
            match self.eval_in(until, &locals, None) {
                Ok(v) if eval::truthy(&v) => break,
                Ok(_) => {}
                Err(error) => return self.fail_step(key, node, started, error.to_string()).await,
            }
        }
        self.finish_container(key, node, "succeeded", started, draft)
            .await
    }

    /// Records a failed step and blocks its dependents.
    pub(crate) async fn fail_step(
        &self,
        key: &str,
        node: &Node,
        started: i64,
        error: String,
    ) -> NodeResult {
        let error = crate::redact::redact_text(&error, self.redact_trace);
        let now = now_ms();
        let attempt = AttemptRecord {
            key: key.to_string(),
            attempt: 1,
            status: "failed".into(),
            started_at: started,
            ended_at: now,
            input_tokens: 0,
            output_tokens: 0,
            cost: 0.0,
            model: None,
            error: Some(error.clone()),
            detail_json: Some(serde_json::json!({ "class": "permanent", "span": [node.span.start, node.span.end] }).to_string()),
        };
        let writes = vec![
            Write::Step(
                self.step_record(
                    key,
                    node,
                    "failed",
                    1,
                    started,
                    now,
                    None,
                    Some(error.clone()),
                ),
                vec![attempt],
            ),
            self.audit_write("step_failed", Some(key), error.clone()),
        ];
        let _ = self.writer.write(writes).await;
        self.report(
            || Progress::Finished(key.to_string(), "failed".into()),
            |c| c.done += 1,
        );
        NodeResult::Blocked(
            Blocker::Failed,
            Some(format!("step `{key}` failed: {error}")),
        )
    }

    /// An approval gate or an explicit `approve` step.
    async fn run_gate(&self, node: &Node, ctx: &Ctx, key: &str) -> NodeResult {
        let started = now_ms();
        let (tool, reason, args, auto) = match &node.kind {
            NodeKind::Gate { calls, guards } => {
                let guarded = ctx_graph_node(&self.plan.graph, guards);
                let args = match guarded.map(|g| &g.kind) {
                    Some(NodeKind::Tool { tool, args }) => {
                        match self.tool_args(tool, args, &ctx.locals) {
                            Ok(a) => Value::Object(a),
                            Err(e) => return self.fail_step(key, node, started, e).await,
                        }
                    }
                    _ => Value::Null,
                };
                let call = calls.first();
                let tool = call.map(|c| c.tool.clone()).unwrap_or_default();
                let reason = call.map(|c| c.reason.clone()).unwrap_or_default();
                let mut auto = false;
                if let Some(when) = call.and_then(|c| c.auto_approve_when.as_ref()) {
                    let mut locals = ctx.locals.clone();
                    if let Value::Object(map) = &args {
                        for (k, v) in map {
                            locals.push((k.clone(), v.clone()));
                        }
                    }
                    auto = self
                        .eval_in(when, &locals, None)
                        .map(|v| eval::truthy(&v))
                        .unwrap_or(false);
                }
                (tool, reason, args, auto)
            }
            NodeKind::Approval { message } => {
                let message = match self.eval_in(message, &ctx.locals, None) {
                    Ok(m) => m,
                    Err(e) => return self.fail_step(key, node, started, e.to_string()).await,
                };
                (
                    "approve".to_string(),
                    "approval step".to_string(),
                    serde_json::json!({ "message": message }),
                    false,
                )
            }
            _ => return NodeResult::Blocked(Blocker::Failed, Some("not a gate".into())),
        };
        let args_redacted = crate::redact::redact_value(&args, self.redact_trace);
        let args_hash = super::sha256_hex(&args.to_string());
        let decision = if auto {
            Some((true, "auto_approved".to_string()))
        } else {
            match self.approvals.get(key) {
                Some(a) if a.status == "approved" && a.args_hash == args_hash => {
                    Some((true, "approved".to_string()))
                }
                Some(a) if a.status == "rejected" => Some((false, "rejected".to_string())),
                _ => None,
            }
        };
        if let Some((approved, how)) = decision {
            let now = now_ms();
            let mut writes = vec![Write::Step(
                self.step_record(
                    key,
                    node,
                    "succeeded",
                    1,
                    started,
                    now,
                    Some(&Value::Bool(approved)),
                    None,
                ),
                Vec::new(),
            )];
            if how == "auto_approved" {
                writes.push(self.audit_write(
                    "auto_approved",
                    Some(key),
                    format!("{tool} {args_redacted}"),
                ));
            }
            if let Err(error) = self.writer.write(writes).await {
                return NodeResult::Blocked(Blocker::Failed, Some(error.to_string()));
            }
            self.report(|| Progress::Finished(key.to_string(), how), |c| c.done += 1);
            return NodeResult::Value(Value::Bool(approved));
        }
        let changed = self
            .approvals
            .get(key)
            .is_some_and(|a| a.status == "approved");
        let record = ApprovalRecord {
            key: key.to_string(),
            tool: tool.clone(),
            args_json: args_redacted.to_string(),
            args_hash,
            reason: if changed {
                format!("{reason} (arguments changed since the last approval)")
            } else {
                reason
            },
            status: "pending".into(),
            decided_by: None,
            note: None,
            requested_at: started,
            decided_at: None,
        };
        let writes = vec![
            Write::Approval(record.clone()),
            self.audit_write(
                "approval_requested",
                Some(key),
                format!("{tool} {} ({})", record.args_json, record.reason),
            ),
        ];
        if let Err(error) = self.writer.write(writes).await {
            return NodeResult::Blocked(Blocker::Failed, Some(error.to_string()));
        }
        self.report(|| Progress::Waiting(key.to_string()), |c| c.waiting += 1);
        NodeResult::Blocked(Blocker::Waiting, None)
    }

    /// Whether a gate passed in an earlier invocation decides again instead of reusing its
    /// recorded result: its guarded call is not done (it failed, or the process stopped
    /// first), so the call runs again, perhaps with other arguments than those approved.
    fn gate_must_recheck(&self, node: &Node, ctx: &Ctx) -> bool {
        match &node.kind {
            NodeKind::Gate { guards, .. } => !self.prior.contains_key(&ctx.key(guards)),
            _ => false,
        }
    }
}

fn ctx_graph_node<'g>(graph: &'g Graph, id: &str) -> Option<&'g Node> {
    find_node(graph, id)
}

/// Waits for the next commit after the ones `receiver` has seen, and gives the receiver back
/// (none if the writer is gone).
fn next_commit(
    mut receiver: watch::Receiver<Resolved>,
) -> BoxFut<'static, Option<watch::Receiver<Resolved>>> {
    Box::pin(async move { receiver.changed().await.ok().map(|()| receiver) })
}

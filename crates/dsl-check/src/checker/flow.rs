//! The flow: step names, the dependency graph between steps (cycles, order) and the type of
//! every step's action.

use crate::fast_hash::{FastMap, FastSet};
use std::sync::Arc;

use dsl_syntax::Span;
use dsl_syntax::ast::{Action, Arg, Expr, ExprKind, Flow, Ident, Item, Prop, StrPart};
use petgraph::graph::{DiGraph, NodeIndex};

use super::{Checker, Local};
use crate::checks;
use crate::checks::properties;
use crate::program::{StepDep, StepInfo, SymbolKind};
use crate::ty::{NamedTy, Ty};

impl<'a> Checker<'a> {
    /// Checks the `flow` block(s) of a pack.
    pub(super) fn check_flow_items(&mut self, items: &'a [Item]) {
        let flows: Vec<&'a Flow> = items
            .iter()
            .filter_map(|item| match item {
                Item::Flow(flow) => Some(flow),
                _ => None,
            })
            .collect();
        for extra in flows.iter().skip(1) {
            checks::duplicates::duplicate_block(self, extra.span, "flow");
        }
        let mut seen: FastMap<&str, Span> = FastMap::default();
        let mut steps = Vec::new();
        for flow in &flows {
            for step in &flow.steps {
                if !checks::duplicates::check(self, &mut seen, &step.name, "step") {
                    continue;
                }
                let name: Arc<str> = Arc::from(step.name.name.as_str());
                let doc = self.doc(step.span);
                self.steps.insert(name.clone(), self.program.steps.len());
                self.program
                    .step_index
                    .insert(name.clone(), self.program.steps.len());
                self.program.steps.push(StepInfo {
                    name,
                    def: self.def(step.name.span),
                    span: step.span,
                    kind: crate::program::StepKind::of(&step.action),
                    doc,
                    ty: Ty::Error,
                    deps: Vec::new(),
                    calls: Vec::new(),
                    referenced: false,
                });
                steps.push(step);
            }
        }
        self.step_types = vec![None; steps.len()];

        // Dependencies, syntactically (loop variables and `critique` shadow step names).
        let mut graph: DiGraph<usize, ()> = DiGraph::with_capacity(steps.len(), steps.len());
        for index in 0..steps.len() {
            graph.add_node(index);
        }
        for (index, step) in steps.iter().enumerate() {
            let mut collector = DepCollector {
                steps: &self.steps,
                locals: Vec::new(),
                out: Vec::new(),
            };
            collector.action(&step.action);
            // One entry per (step, path), in source order.
            let keep: Vec<bool> = {
                let mut seen: FastSet<(usize, &str)> = FastSet::default();
                collector
                    .out
                    .iter()
                    .map(|d| seen.insert((d.step, d.path.as_str())))
                    .collect()
            };
            let deps: Vec<StepDep> = collector
                .out
                .into_iter()
                .zip(keep)
                .filter_map(|(dep, keep)| keep.then_some(dep))
                .collect();
            let mut sources: Vec<usize> = deps.iter().map(|d| d.step).collect();
            sources.sort_unstable();
            sources.dedup();
            for source in sources {
                if source != index
                    && let Some(target) = self.program.steps.get_mut(source)
                {
                    target.referenced = true;
                }
                graph.add_edge(NodeIndex::new(source), NodeIndex::new(index), ());
            }
            if let Some(info) = self.program.steps.get_mut(index) {
                info.deps = deps;
            }
        }

        // Order: Kahn's algorithm, always taking the ready step that comes first in the file
        // (so the order is deterministic and close to source order). Steps left over sit on
        // or behind a cycle: the strongly connected components among them are reported, and
        // they are typed in source order (reads of a step not yet typed are unknown).
        let count = steps.len();
        let mut indegree: Vec<usize> = vec![0; count];
        for edge in graph.raw_edges() {
            if let Some(slot) = indegree.get_mut(edge.target().index()) {
                *slot += 1;
            }
        }
        let mut ready: std::collections::BinaryHeap<std::cmp::Reverse<usize>> = (0..count)
            .filter(|&i| indegree.get(i) == Some(&0))
            .map(std::cmp::Reverse)
            .collect();
        let mut order: Vec<usize> = Vec::with_capacity(count);
        let mut placed = vec![false; count];
        while let Some(std::cmp::Reverse(index)) = ready.pop() {
            order.push(index);
            if let Some(slot) = placed.get_mut(index) {
                *slot = true;
            }
            for next in graph.neighbors(NodeIndex::new(index)) {
                if let Some(slot) = indegree.get_mut(next.index()) {
                    *slot = slot.saturating_sub(1);
                    if *slot == 0 {
                        ready.push(std::cmp::Reverse(next.index()));
                    }
                }
            }
        }
        if order.len() < count {
            let mut components = petgraph::algo::tarjan_scc(&graph);
            components.sort_by_key(|c| c.iter().map(|n| n.index()).min());
            for mut component in components {
                component.sort_unstable();
                let is_cycle = component.len() > 1
                    || component
                        .first()
                        .is_some_and(|&n| graph.contains_edge(n, n));
                if is_cycle {
                    let members: Vec<usize> = component.iter().map(|n| n.index()).collect();
                    checks::cycles::report(self, &members);
                }
            }
            order.extend((0..count).filter(|&i| !placed.get(i).copied().unwrap_or(true)));
        }
        // Fixes that add a declaration (a missing type) insert it before the flow.
        if let Some(flow) = flows.first() {
            self.item_start = flow.span.start;
        }
        for index in order {
            let Some(step) = steps.get(index) else {
                continue;
            };
            self.program.step_order.push(index);
            self.current_step = Some(index);
            let definition = self.program.resolutions.len();
            if self.record {
                let def = self.def(step.name.span);
                self.program.resolutions.push(crate::program::Resolution {
                    span: step.name.span,
                    kind: SymbolKind::Step,
                    def: Some(def),
                    ty: Ty::Error,
                    is_definition: true,
                });
            }
            let ty = self.infer_action(&step.action);
            self.current_step = None;
            if self.record
                && let Some(resolution) = self.program.resolutions.get_mut(definition)
            {
                resolution.ty = ty.clone();
            }
            if let Some(slot) = self.step_types.get_mut(index) {
                *slot = Some(ty.clone());
            }
            if let Some(info) = self.program.steps.get_mut(index) {
                info.ty = ty;
            }
        }
    }

    /// The type of an action's value (recorded by span for the plan).
    pub(crate) fn infer_action(&mut self, action: &'a Action) -> Ty {
        let ty = self.infer_action_inner(action);
        if self.record {
            let span = action.span();
            self.program
                .action_types
                .insert((span.start, span.end), ty.clone());
        }
        ty
    }

    fn infer_action_inner(&mut self, action: &'a Action) -> Ty {
        match action {
            Action::Expr(expr) => self.infer(expr),
            // Names are resolved in source order, so the resolution table needs little sorting.
            Action::Ask(ask) => {
                self.resolve_asker(&ask.target, true, "asked");
                let output = match &ask.output {
                    Some(ty) => cited(self.resolve_type(ty)),
                    None => Ty::String,
                };
                self.check_ask_props(&ask.props, ask.target.span, "ask", true);
                output
            }
            Action::Map(map) => {
                let var_resolution = self.program.resolutions.len();
                self.define(&map.var, SymbolKind::LoopVar, Ty::Error);
                let source = self.infer(&map.source);
                let elem = match source.list_elem() {
                    Some(elem) => elem,
                    None => {
                        checks::map_over_non_list::report(self, &map.source, &source);
                        Ty::Error
                    }
                };
                self.locals.push(Local {
                    name: Arc::from(map.var.name.as_str()),
                    ty: elem.clone(),
                    kind: SymbolKind::LoopVar,
                    def: Some(self.def(map.var.span)),
                });
                if self.record
                    && let Some(resolution) = self.program.resolutions.get_mut(var_resolution)
                {
                    resolution.ty = elem;
                }
                if let Some(filter) = &map.filter {
                    self.check_expr(filter, &Ty::Bool);
                }
                if let Some(concurrency) = &map.concurrency {
                    self.check_expr(concurrency, &Ty::Int);
                }
                self.body_depth += 1;
                let body = self.infer_action(&map.body);
                self.body_depth -= 1;
                self.locals.pop();
                Ty::list(body)
            }
            Action::When(when) => {
                self.check_expr(&when.cond, &Ty::Bool);
                self.body_depth += 1;
                let then = self.infer_action(&when.then);
                let otherwise = when
                    .otherwise
                    .as_ref()
                    .map(|o| (o.span(), self.infer_action(o)));
                self.body_depth -= 1;
                match otherwise {
                    None => Ty::optional(then),
                    Some((span, otherwise)) => {
                        if then.accepts(&otherwise) {
                            then
                        } else if otherwise.accepts(&then) {
                            otherwise
                        } else {
                            checks::type_mismatch::report(self, span, &then, &otherwise);
                            Ty::Error
                        }
                    }
                }
            }
            Action::Route(route) => {
                self.resolve_asker(&route.router, false, "the router");
                let mut seen: FastMap<&str, Span> = FastMap::default();
                for target in &route.routes {
                    if checks::duplicates::check(self, &mut seen, target, "route target") {
                        self.resolve_asker(target, false, "a route target");
                    }
                }
                let output = match &route.output {
                    Some(ty) => cited(self.resolve_type(ty)),
                    None => Ty::String,
                };
                self.check_ask_props(&route.props, route.router.span, "route", true);
                output
            }
            Action::Review(review) => {
                self.resolve_asker(&review.critic, true, "the critic");
                let critique = self.critique_ty();
                self.locals.push(Local {
                    name: Arc::from("critique"),
                    ty: critique,
                    kind: SymbolKind::Critique,
                    def: self
                        .core
                        .as_ref()
                        .and_then(|c| c.types.get("Critique"))
                        .map(|t| t.def.clone()),
                });
                self.check_expr(&review.until, &Ty::Bool);
                if let Some(max) = &review.max_rounds {
                    self.check_expr(max, &Ty::Int);
                    checks::review_bound::check(self, max);
                }
                self.body_depth += 1;
                let body = self.infer_action(&review.body);
                self.body_depth -= 1;
                self.locals.pop();
                body
            }
            Action::Approve(approve) => {
                self.check_expr(&approve.message, &Ty::String);
                Ty::Bool
            }
            Action::Error(_) => Ty::Error,
        }
    }

    /// Resolves the target of `ask`, `route` or `review`: an agent (or, where allowed, a
    /// model).
    fn resolve_asker(&mut self, target: &'a Ident, allow_model: bool, role: &str) {
        let text = target.name.as_str();
        if let Some(agent) = self.agents.get(text) {
            let def = agent.def.clone();
            self.resolve(target.span, SymbolKind::Agent, Some(def), Ty::Agent);
            return;
        }
        if let Some(model) = self.models.get(text) {
            let def = model.def.clone();
            self.resolve(target.span, SymbolKind::Model, Some(def), Ty::Model);
            if !allow_model {
                checks::wrong_kind::report(
                    self,
                    target.span,
                    text,
                    &Ty::Model,
                    &format!("an agent ({role})"),
                );
            }
            return;
        }
        let is_local = self.locals.iter().any(|l| &*l.name == text);
        if !is_local && self.steps.contains_key(text) {
            let wanted = if allow_model {
                "an agent or a model"
            } else {
                "an agent"
            };
            self.infer_name(target);
            checks::wrong_kind::report_described(self, target.span, text, "a step", wanted);
            return;
        }
        let known = self.is_local_or_known(text);
        if known {
            let ty = self.infer_name(target);
            let wanted = if allow_model {
                "an agent or a model"
            } else {
                "an agent"
            };
            checks::wrong_kind::report(self, target.span, text, &ty, wanted);
            return;
        }
        let mut candidates: Vec<&str> = self.agents.keys().map(|k| &**k).collect();
        if allow_model {
            candidates.extend(self.models.keys().map(|k| &**k));
        }
        candidates.sort_unstable();
        let what = if allow_model {
            "agent or model"
        } else {
            "agent"
        };
        let candidates: Vec<String> = candidates.into_iter().map(str::to_string).collect();
        checks::unknown_name::report_among(
            self,
            target,
            what,
            candidates.iter().map(String::as_str),
        );
    }

    fn is_local_or_known(&self, text: &str) -> bool {
        self.locals.iter().any(|l| &*l.name == text)
            || self.steps.contains_key(text)
            || self.knowledge.contains_key(text)
            || self.imports.contains_key(text)
            || self.tools.contains_key(text)
            || text == "input"
    }

    /// The properties of `ask` and `route`.
    fn check_ask_props(&mut self, props: &'a [Prop], at: Span, block: &str, prompt_required: bool) {
        let table = properties::check_props(self, props, properties::ASK_PROPS, block);
        match table.get("prompt") {
            Some(prompt) => self.check_expr(&prompt.value, &Ty::String),
            None if prompt_required => {
                properties::missing(self, at, block, "", "prompt", "prompt: \"...\"")
            }
            None => {}
        }
        if let Some(instructions) = table.get("instructions") {
            self.check_expr(&instructions.value, &Ty::String);
        }
        if let Some(cite) = table.get("cite") {
            self.resolve_knowledge_refs(&cite.value);
        }
    }
}

/// An `ask` answer of a record type carries `citations`.
fn cited(ty: Ty) -> Ty {
    match ty {
        Ty::Named(named) => Ty::Named(NamedTy {
            cited: true,
            ..named
        }),
        other => other,
    }
}

/// Collects the steps an action reads, with the field path read.
struct DepCollector<'s, 'a> {
    steps: &'s FastMap<Arc<str>, usize>,
    locals: Vec<&'a str>,
    out: Vec<StepDep>,
}

impl<'a> DepCollector<'_, 'a> {
    fn action(&mut self, action: &'a Action) {
        match action {
            Action::Expr(expr) => self.expr(expr),
            Action::Ask(ask) => self.props(&ask.props),
            Action::Map(map) => {
                self.expr(&map.source);
                self.locals.push(&map.var.name);
                if let Some(filter) = &map.filter {
                    self.expr(filter);
                }
                if let Some(concurrency) = &map.concurrency {
                    self.expr(concurrency);
                }
                self.action(&map.body);
                self.locals.pop();
            }
            Action::When(when) => {
                self.expr(&when.cond);
                self.action(&when.then);
                if let Some(otherwise) = &when.otherwise {
                    self.action(otherwise);
                }
            }
            Action::Route(route) => self.props(&route.props),
            Action::Review(review) => {
                self.locals.push("critique");
                self.action(&review.body);
                self.expr(&review.until);
                self.locals.pop();
                if let Some(max) = &review.max_rounds {
                    self.expr(max);
                }
            }
            Action::Approve(approve) => self.expr(&approve.message),
            Action::Error(_) => {}
        }
    }

    fn props(&mut self, props: &'a [Prop]) {
        for prop in props {
            self.expr(&prop.value);
        }
    }

    fn args(&mut self, args: &'a [Arg]) {
        for arg in args {
            self.expr(&arg.value);
        }
    }

    fn step_of(&self, name: &Ident) -> Option<usize> {
        if self.locals.contains(&name.name.as_str()) {
            return None;
        }
        self.steps.get(name.name.as_str()).copied()
    }

    fn expr(&mut self, expr: &'a Expr) {
        match &expr.kind {
            ExprKind::Name(name) => {
                if let Some(step) = self.step_of(name) {
                    self.out.push(StepDep {
                        step,
                        path: String::new(),
                        span: name.span,
                    });
                }
            }
            ExprKind::Field(..) => {
                // `inbox.messages.x`: one dependency on `inbox` carrying `messages.x`.
                let mut fields: Vec<&str> = Vec::new();
                let mut current = expr;
                while let ExprKind::Field(base, field) = &current.kind {
                    fields.push(&field.name);
                    current = base;
                }
                match &current.kind {
                    ExprKind::Name(name) => {
                        if let Some(step) = self.step_of(name) {
                            fields.reverse();
                            self.out.push(StepDep {
                                step,
                                path: fields.join("."),
                                span: expr.span,
                            });
                        }
                    }
                    _ => self.expr(current),
                }
            }
            ExprKind::Index(base, index) => {
                self.expr(base);
                self.expr(index);
            }
            ExprKind::Call(callee, args) => {
                // A callee names a tool or built-in, never a step's value.
                match &callee.kind {
                    ExprKind::Name(_) => {}
                    ExprKind::Field(base, _) if matches!(base.kind, ExprKind::Name(_)) => {}
                    _ => self.expr(callee),
                }
                self.args(args);
            }
            ExprKind::List(items) => {
                for item in items {
                    self.expr(item);
                }
            }
            ExprKind::Record(props) => self.props(props),
            ExprKind::Unary(_, operand) => self.expr(operand),
            ExprKind::Binary(_, left, right) => {
                self.expr(left);
                self.expr(right);
            }
            ExprKind::Str(lit) => {
                for part in &lit.parts {
                    if let StrPart::Hole(hole) = part {
                        self.expr(hole);
                    }
                }
            }
            ExprKind::Int(_)
            | ExprKind::Float(_)
            | ExprKind::Bool(_)
            | ExprKind::None
            | ExprKind::Duration(_)
            | ExprKind::Money { .. }
            | ExprKind::Error => {}
        }
    }
}

//! The pack-level blocks after the flow: policy, outcome, KPIs, evals and layout, and the
//! whole-pack checks that need all of them (approvals, egress, unused steps and inputs).

use crate::fast_hash::FastMap;
use std::sync::Arc;

use dsl_syntax::Span;
use dsl_syntax::ast::{Eval, EvalStmtKind, ExprKind, Ident, Item, Policy, PolicyRuleKind};

use super::{Checker, Local};
use crate::checks;
use crate::policy::{ApprovalTarget, AutoApprove, Rate, Redaction};
use crate::program::{KpiInfo, Scope, SymbolKind};
use crate::ty::Ty;

impl<'a> Checker<'a> {
    /// Policy, outcome, KPIs, evals, layout and the whole-pack checks.
    pub(super) fn check_pack_items(&mut self, items: &'a [Item]) {
        let mut policies = 0;
        for item in items {
            if let Item::Policy(policy) = item {
                policies += 1;
                if policies > 1 {
                    checks::duplicates::duplicate_block(self, policy.span, "policy");
                }
                self.item_start = policy.span.start;
                self.check_policy(policy);
            }
        }
        let mut outcomes = 0;
        let mut seen_kpis: FastMap<&str, Span> = FastMap::default();
        let mut seen_evals: FastMap<String, Span> = FastMap::default();
        let mut layouts = 0;
        for item in items {
            self.item_start = item.span().start;
            match item {
                Item::Outcome(outcome) => {
                    outcomes += 1;
                    if outcomes > 1 {
                        checks::duplicates::duplicate_block(self, outcome.span, "outcome");
                    }
                    self.check_expr(&outcome.cond, &Ty::Bool);
                }
                Item::Kpi(kpi) => {
                    if checks::duplicates::check(self, &mut seen_kpis, &kpi.name, "kpi") {
                        let doc = self.doc(kpi.span);
                        self.program.kpis.push(KpiInfo {
                            name: Arc::from(kpi.name.name.as_str()),
                            def: self.def(kpi.name.span),
                            doc,
                        });
                    }
                    let ty = self.infer(&kpi.expr);
                    self.define(&kpi.name, SymbolKind::Kpi, ty.clone());
                    if let Some((op, target)) = &kpi.target {
                        let target_ty = self.infer(target);
                        if checks::operators::binary_result(*op, &ty, &target_ty).is_none() {
                            checks::operators::binary(self, target.span, *op, &ty, &target_ty);
                        }
                    }
                }
                Item::Eval(eval) => {
                    if let Some(name) = eval.name.as_plain() {
                        if let Some(first) = seen_evals.get(&name) {
                            checks::duplicates::report(
                                self,
                                eval.name.span,
                                *first,
                                &format!("eval {name:?}"),
                            );
                        } else {
                            seen_evals.insert(name, eval.name.span);
                        }
                    }
                    self.check_eval(eval);
                }
                Item::Layout(layout) => {
                    layouts += 1;
                    if layouts > 1 {
                        checks::duplicates::duplicate_block(self, layout.span, "layout");
                    }
                    let mut seen: FastMap<&str, Span> = FastMap::default();
                    for entry in &layout.entries {
                        if !checks::duplicates::check(self, &mut seen, &entry.name, "layout entry")
                        {
                            continue;
                        }
                        match self.steps.get(entry.name.name.as_str()).copied() {
                            Some(index) => {
                                let def = self.program.steps.get(index).map(|s| s.def.clone());
                                let ty = self
                                    .program
                                    .steps
                                    .get(index)
                                    .map(|s| s.ty.clone())
                                    .unwrap_or(Ty::Error);
                                self.resolve(entry.name.span, SymbolKind::Step, def, ty);
                            }
                            None => checks::layout::unknown_step(self, &entry.name),
                        }
                    }
                }
                _ => {}
            }
        }
        checks::approvals::check(self);
        checks::egress::check(self);
        checks::model_egress::check(self);
        checks::unused::check_steps(self);
        checks::unused::check_inputs(self);
    }

    fn check_policy(&mut self, policy: &'a Policy) {
        for rule in &policy.rules {
            match &rule.kind {
                PolicyRuleKind::Approve(path) => {
                    self.policy.explicit_approvals = true;
                    if let Some(target) = self.approval_target(path) {
                        self.policy.approve.push(target);
                    }
                }
                PolicyRuleKind::AutoApprove { target, when } => {
                    let resolved = self.approval_target(target);
                    let base = self.locals.len();
                    if let Some(ApprovalTarget::Tool(key)) = &resolved
                        && let Some(tool) = self.tool_by_key(key)
                    {
                        for param in &tool.params {
                            self.locals.push(Local {
                                name: param.name.clone(),
                                ty: param.ty.clone(),
                                kind: SymbolKind::Param,
                                def: Some(param.def.clone()),
                            });
                        }
                    }
                    if let Some(when) = when {
                        self.check_expr(when, &Ty::Bool);
                    }
                    self.locals.truncate(base);
                    if let Some(target) = resolved {
                        self.policy.auto_approve.push(AutoApprove {
                            target,
                            when: when.clone(),
                            span: rule.span,
                        });
                    }
                }
                PolicyRuleKind::Egress(list) => {
                    let hosts = self.plain_string_list(list, "a list of host names");
                    if self.policy.egress_list.is_none() {
                        let last = match &list.kind {
                            ExprKind::List(items) => items.last().map(|i| i.span),
                            _ => None,
                        };
                        self.policy.egress_list = Some((list.span, last));
                    }
                    self.policy
                        .egress
                        .get_or_insert_with(Vec::new)
                        .extend(hosts);
                }
                PolicyRuleKind::Redact { what, before } => {
                    if checks::redaction::check(self, what, before) {
                        self.policy.redact.push(Redaction {
                            what: what.name.clone(),
                            before: before.name.clone(),
                        });
                    }
                }
                PolicyRuleKind::Budget { amount, unit, per } => {
                    if let Some(budget) = checks::budget::check(self, amount, unit.as_ref(), per) {
                        self.policy.budgets.push(budget);
                    }
                }
                PolicyRuleKind::Rate {
                    target,
                    count,
                    window,
                } => {
                    let tool = self.tool_path(target);
                    self.check_expr(count, &Ty::Int);
                    self.check_expr(window, &Ty::Duration);
                    checks::value_range::check_count(
                        self,
                        "a rate count",
                        count,
                        checks::value_range::Minimum::NonNegative,
                        None,
                    );
                    checks::value_range::check_duration(
                        self,
                        "a rate window",
                        window,
                        checks::value_range::Minimum::Positive,
                        None,
                    );
                    if let (Some(tool), ExprKind::Int(count), ExprKind::Duration(window_ms)) =
                        (tool, &count.kind, &window.kind)
                    {
                        self.policy.rates.push(Rate {
                            tool: tool.key(),
                            count: *count,
                            window_ms: *window_ms,
                        });
                    }
                }
                PolicyRuleKind::Error => {}
            }
        }
    }

    /// `destructive` / `write` / `read` or a tool path, in `approve` and `auto approve`.
    fn approval_target(&mut self, path: &'a [Ident]) -> Option<ApprovalTarget> {
        if let [single] = path
            && let Some(scope) = Scope::parse(&single.name)
            && !self.tools.contains_key(single.name.as_str())
        {
            return Some(ApprovalTarget::Scope(scope));
        }
        self.tool_path(path)
            .map(|tool| ApprovalTarget::Tool(tool.key()))
    }

    /// A tool named by a path in a policy rule or mock: `mail.send` or a pack tool.
    pub(crate) fn tool_path(&mut self, path: &'a [Ident]) -> Option<Arc<crate::program::ToolInfo>> {
        match path {
            [single] => match self.tools.get(single.name.as_str()).cloned() {
                Some(tool) => {
                    self.resolve(
                        single.span,
                        SymbolKind::Tool,
                        Some(tool.def.clone()),
                        Ty::Tool,
                    );
                    Some(tool)
                }
                None => {
                    let mut candidates: Vec<String> =
                        self.tools.keys().map(|k| k.to_string()).collect();
                    candidates.extend(["destructive", "write", "read"].map(String::from));
                    candidates.sort_unstable();
                    checks::unknown_name::report_among(
                        self,
                        single,
                        "tool or scope",
                        candidates.iter().map(String::as_str),
                    );
                    None
                }
            },
            [module, name] => self.module_tool(module, name),
            _ => {
                if let (Some(first), Some(last)) = (path.first(), path.last()) {
                    checks::unknown_tool::report_path(self, first.span.cover(last.span));
                }
                None
            }
        }
    }

    fn check_eval(&mut self, eval: &'a Eval) {
        let mut mocks: FastMap<String, Span> = FastMap::default();
        let mut inputs: FastMap<&str, Span> = FastMap::default();
        let mut decisions: FastMap<&str, Span> = FastMap::default();
        for stmt in &eval.stmts {
            match &stmt.kind {
                EvalStmtKind::Mock { target, value } => {
                    let key = target
                        .iter()
                        .map(|i| i.name.as_str())
                        .collect::<Vec<_>>()
                        .join(".");
                    if let (Some(first), Some(last)) = (target.first(), target.last()) {
                        let span = first.span.cover(last.span);
                        if let Some(previous) = mocks.get(&key) {
                            checks::duplicates::report(
                                self,
                                span,
                                *previous,
                                &format!("mock of `{key}`"),
                            );
                        } else {
                            mocks.insert(key, span);
                        }
                    }
                    match checks::evals::mock_target(self, target) {
                        Some(expected) => self.check_expr(value, &expected),
                        None => {
                            self.infer(value);
                        }
                    }
                }
                EvalStmtKind::Input { name, value } => {
                    checks::duplicates::check(self, &mut inputs, name, "eval input");
                    match self.inputs.get(name.name.as_str()).copied() {
                        Some(index) => {
                            let (ty, def) = match self.program.inputs.get(index) {
                                Some(input) => {
                                    (input.field.ty.clone(), Some(input.field.def.clone()))
                                }
                                None => (Ty::Error, None),
                            };
                            self.resolve(name.span, SymbolKind::Input, def, ty.clone());
                            self.check_expr(value, &ty);
                        }
                        None => {
                            checks::evals::unknown_input(self, name);
                            self.infer(value);
                        }
                    }
                }
                EvalStmtKind::Approve { target, .. } => {
                    checks::duplicates::check(self, &mut decisions, target, "approval decision");
                    if target.name == "all" && !self.steps.contains_key("all") {
                        continue;
                    }
                    match self.steps.get(target.name.as_str()).copied() {
                        Some(index) => {
                            self.step_ref_named(target, index);
                        }
                        None => checks::evals::unknown_step(self, target),
                    }
                }
                EvalStmtKind::Expect(expr) => self.check_expr(expr, &Ty::Bool),
                EvalStmtKind::Error => {}
            }
        }
    }

    fn step_ref_named(&mut self, name: &'a Ident, index: usize) {
        if let Some(step) = self.program.steps.get_mut(index) {
            step.referenced = true;
        }
        let def = self.program.steps.get(index).map(|s| s.def.clone());
        let ty = self
            .program
            .steps
            .get(index)
            .map(|s| s.ty.clone())
            .unwrap_or(Ty::Error);
        self.resolve(name.span, SymbolKind::Step, def, ty);
    }
}

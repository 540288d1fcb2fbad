//! GX0401: a destructive tool call with no approval path.
//!
//! Approvals default ON: without any `approve` rule a pack behaves as if it wrote
//! `approve destructive`, so every destructive call stops at a gate. Writing `approve` rules
//! replaces the default with exactly those rules. A destructive call then needs one of: an
//! `approve` rule covering it (`approve destructive`, `approve write`, `approve mail.send`),
//! an unconditional `auto approve` covering it, or an explicit `approve "..."` step upstream
//! of it in the flow. A conditional `auto approve ... when` falls back to the approval rules
//! when its condition fails, so on its own it is no path.

use dsl_syntax::ast::Item;
use dsl_syntax::{Diagnostic, Span};

use super::replace;
use crate::checker::Checker;
use crate::program::{Scope, StepKind};

/// Runs the rule over every step's tool calls.
pub(crate) fn check(checker: &mut Checker<'_>) {
    let steps = &checker.program.steps;
    // Whether each step runs only after an explicit `approve` step (in topological order).
    let mut approved = vec![false; steps.len()];
    for &index in &checker.program.step_order {
        let Some(step) = steps.get(index) else {
            continue;
        };
        let upstream = step.deps.iter().any(|dep| {
            approved.get(dep.step).copied().unwrap_or(false)
                || steps
                    .get(dep.step)
                    .is_some_and(|s| s.kind == StepKind::Approve)
        });
        if let Some(slot) = approved.get_mut(index) {
            *slot = upstream;
        }
    }
    let mut findings: Vec<(String, Span)> = Vec::new();
    for (index, step) in steps.iter().enumerate() {
        if approved.get(index).copied().unwrap_or(false) {
            continue;
        }
        for call in &step.calls {
            if call.scope == Some(Scope::Destructive)
                && !checker.policy.has_approval_path(&call.tool, call.scope)
            {
                findings.push((call.tool.clone(), call.span));
            }
        }
    }
    if findings.is_empty() {
        return;
    }
    let policy = checker.parse.file.items.iter().find_map(|item| match item {
        Item::Policy(policy) => Some(policy),
        _ => None,
    });
    for (tool, span) in findings {
        let mut diagnostic = Diagnostic::error("GX0401", span, format!("destructive call of `{tool}` has no approval path"))
            .with_help(format!(
                "the policy's `approve` rules replace the default `approve destructive` and none covers `{tool}`; add `approve destructive` or `approve {tool}`, or `auto approve {tool}` to let it through without a person"
            ));
        if let Some(policy) = policy {
            let head = Span {
                start: policy.span.start,
                end: policy.span.start.saturating_add(6).min(policy.span.end),
            };
            diagnostic = diagnostic.with_label(head, "these rules do not gate it");
            if let Some(offset) = policy.span.text(checker.src).find('{') {
                let at = policy.span.start as usize + offset + 1;
                diagnostic = diagnostic.with_fix(
                    format!("add `approve {tool}` to the policy"),
                    vec![replace(Span::empty(at), format!("\n    approve {tool}"))],
                );
            }
        }
        checker.report(diagnostic);
    }
}

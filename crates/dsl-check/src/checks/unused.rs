//! GX0502 (warning): a step nothing uses; GX0503 (warning): an input nothing reads.
//!
//! A step counts as used when another step, the outcome, a KPI or an eval (`expect`,
//! `approve`/`reject`) references it, when it is an effect (it calls a `write` or
//! `destructive` tool, or is an explicit `approve` step), or when it is the flow's last step
//! (the run's result).

use dsl_syntax::Diagnostic;

use crate::checker::Checker;
use crate::program::{Scope, StepKind};

/// GX0502.
pub(crate) fn check_steps(checker: &mut Checker<'_>) {
    let last = checker.program.steps.len().saturating_sub(1);
    let mut findings = Vec::new();
    for (index, step) in checker.program.steps.iter().enumerate() {
        let effect = step.kind == StepKind::Approve
            || step
                .calls
                .iter()
                .any(|c| matches!(c.scope, Some(Scope::Write | Scope::Destructive)));
        if step.referenced || effect || index == last {
            continue;
        }
        findings.push((step.def.span, step.name.clone()));
    }
    for (span, name) in findings {
        checker.report(
            Diagnostic::warning("GX0502", span, format!("step `{name}` is never used")).with_help(
                "reference it from another step, the outcome, a KPI or an eval, or remove it",
            ),
        );
    }
}

/// GX0503.
pub(crate) fn check_inputs(checker: &mut Checker<'_>) {
    let findings: Vec<_> = checker
        .program
        .inputs
        .iter()
        .filter(|i| !i.used)
        .map(|i| (i.field.def.span, i.field.name.clone()))
        .collect();
    for (span, name) in findings {
        checker.report(
            Diagnostic::warning("GX0503", span, format!("input `{name}` is never used"))
                .with_help(format!("read it as `input.{name}`, or remove it")),
        );
    }
}

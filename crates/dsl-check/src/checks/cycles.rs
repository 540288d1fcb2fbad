//! GX0501: steps that depend on each other in a circle.

use dsl_syntax::Diagnostic;

use crate::checker::Checker;

/// Reports one cycle, given its member steps (indices, sorted).
pub(crate) fn report(checker: &mut Checker<'_>, members: &[usize]) {
    let Some(&first) = members.first() else {
        return;
    };
    let Some(first_step) = checker.program.steps.get(first) else {
        return;
    };
    let names: Vec<String> = members
        .iter()
        .filter_map(|&m| {
            checker
                .program
                .steps
                .get(m)
                .map(|s| format!("`{}`", s.name))
        })
        .collect();
    let message = if members.len() == 1 {
        format!("step `{}` depends on itself", first_step.name)
    } else {
        format!("cycle in the flow between steps {}", names.join(", "))
    };
    let mut diagnostic = Diagnostic::error("GX0501", first_step.def.span, message)
        .with_help("steps run when the steps they read have finished, so a cycle never starts; break it by removing one of these references");
    for &member in members {
        let Some(step) = checker.program.steps.get(member) else {
            continue;
        };
        for dep in &step.deps {
            if members.contains(&dep.step) {
                let target = checker
                    .program
                    .steps
                    .get(dep.step)
                    .map(|s| s.name.to_string())
                    .unwrap_or_default();
                diagnostic = diagnostic
                    .with_label(dep.span, format!("`{}` reads `{target}` here", step.name));
            }
        }
    }
    checker.report(diagnostic);
}

//! Evals: GX0601 (mock of an unknown tool, agent or model), GX0602 (approve/reject of an
//! unknown step) and GX0603 (an eval input the pack does not declare).

use dsl_syntax::ast::Ident;
use dsl_syntax::{Diagnostic, Span};

use super::{name_list, suggest_or_help, with_suggestion};
use crate::checker::Checker;
use crate::program::{DefSite, SymbolKind};
use crate::ty::Ty;

/// Resolves `mock TARGET`; returns the type the mocked value must have.
pub(crate) fn mock_target<'a>(checker: &mut Checker<'a>, target: &'a [Ident]) -> Option<Ty> {
    match target {
        [single] => {
            let name = single.name.as_str();
            if let Some(agent) = checker.agents.get(name) {
                let def = agent.def.clone();
                checker.resolve(single.span, SymbolKind::Agent, Some(def), Ty::Agent);
                return Some(Ty::Json);
            }
            if let Some(model) = checker.models.get(name) {
                let def = model.def.clone();
                checker.resolve(single.span, SymbolKind::Model, Some(def), Ty::Model);
                return Some(Ty::Json);
            }
            if let Some(tool) = checker.tools.get(name).cloned() {
                checker.resolve(
                    single.span,
                    SymbolKind::Tool,
                    Some(tool.def.clone()),
                    Ty::Tool,
                );
                return Some(tool.result.clone());
            }
            let mut candidates: Vec<String> = checker
                .agents
                .keys()
                .chain(checker.models.keys())
                .chain(checker.tools.keys())
                .map(|k| k.to_string())
                .collect();
            candidates.sort_unstable();
            unknown(
                checker,
                single.span,
                name,
                candidates.iter().map(String::as_str),
            );
            None
        }
        [module, name] => {
            let Some(info) = checker.imports.get(module.name.as_str()).cloned() else {
                if checker.failed_imports.contains(&module.name) {
                    return None;
                }
                let mut modules: Vec<String> =
                    checker.imports.keys().map(|k| k.to_string()).collect();
                modules.sort_unstable();
                unknown(
                    checker,
                    module.span,
                    &module.name,
                    modules.iter().map(String::as_str),
                );
                return None;
            };
            let def = info.file.clone().map(|file| DefSite {
                file,
                span: Span::default(),
            });
            checker.resolve(module.span, SymbolKind::Module, def, Ty::Module);
            match info.tools.get(name.name.as_str()) {
                Some(tool) => {
                    checker.resolve(
                        name.span,
                        SymbolKind::Tool,
                        Some(tool.def.clone()),
                        Ty::Tool,
                    );
                    Some(tool.result.clone())
                }
                None => {
                    let names = info.tool_names();
                    let span = name.span;
                    let text = format!("{}.{}", module.name, name.name);
                    let diagnostic =
                        Diagnostic::error("GX0601", span, format!("mock of unknown tool `{text}`"));
                    let (diagnostic, suggested) =
                        with_suggestion(diagnostic, &name.name, span, names.iter().copied());
                    let diagnostic = if suggested {
                        diagnostic
                    } else {
                        diagnostic.with_help(format!(
                            "module `{}` has the tools {}",
                            module.name,
                            name_list(names.iter().copied())
                        ))
                    };
                    checker.report(diagnostic);
                    None
                }
            }
        }
        _ => {
            if let (Some(first), Some(last)) = (target.first(), target.last()) {
                checker.report(
                    Diagnostic::error(
                        "GX0601",
                        first.span.cover(last.span),
                        "mock of an unknown target",
                    )
                    .with_help("mock a tool (`mail.search`), an agent or a model"),
                );
            }
            None
        }
    }
}

fn unknown<'c>(
    checker: &mut Checker<'_>,
    span: Span,
    name: &str,
    candidates: impl IntoIterator<Item = &'c str>,
) {
    let candidates: Vec<&str> = candidates.into_iter().collect();
    let diagnostic = Diagnostic::error(
        "GX0601",
        span,
        format!("mock of unknown tool, agent or model `{name}`"),
    );
    let (diagnostic, suggested) =
        with_suggestion(diagnostic, name, span, candidates.iter().copied());
    let diagnostic = if suggested {
        diagnostic
    } else {
        diagnostic.with_help("mock a tool (`mail.search`), an agent or a model the pack declares")
    };
    checker.report(diagnostic);
}

/// GX0602: `approve x` / `reject x` for an unknown step.
pub(crate) fn unknown_step(checker: &mut Checker<'_>, name: &Ident) {
    let mut steps = checker.step_candidates();
    steps.push("all".to_string());
    let diagnostic = Diagnostic::error(
        "GX0602",
        name.span,
        format!("approval decision for unknown step `{}`", name.name),
    );
    let diagnostic = suggest_or_help(
        diagnostic,
        &name.name,
        name.span,
        steps.iter().map(String::as_str),
        || "name a step of the flow, or `all`".to_string(),
    );
    checker.report(diagnostic);
}

/// GX0603: `input x = ...` for an input the pack does not declare.
pub(crate) fn unknown_input(checker: &mut Checker<'_>, name: &Ident) {
    let inputs: Vec<String> = checker
        .program
        .inputs
        .iter()
        .map(|i| i.field.name.to_string())
        .collect();
    let diagnostic = Diagnostic::error(
        "GX0603",
        name.span,
        format!("eval sets undeclared input `{}`", name.name),
    );
    let (diagnostic, suggested) = with_suggestion(
        diagnostic,
        &name.name,
        name.span,
        inputs.iter().map(String::as_str),
    );
    let diagnostic = if suggested {
        diagnostic
    } else if inputs.is_empty() {
        diagnostic.with_help("the pack declares no inputs")
    } else {
        diagnostic.with_help(format!(
            "the pack's inputs are {}",
            name_list(inputs.iter().map(String::as_str))
        ))
    };
    checker.report(diagnostic);
}

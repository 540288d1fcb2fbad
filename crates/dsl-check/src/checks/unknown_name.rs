//! GX0201: a name that resolves to nothing, with "did you mean" by edit distance.

use dsl_syntax::Diagnostic;
use dsl_syntax::ast::Ident;

use super::{name_list, with_suggested, with_suggestion};
use crate::checker::Checker;
use crate::suggest::did_you_mean_unordered;

/// An unknown name in value position.
pub(crate) fn report(checker: &mut Checker<'_>, name: &Ident) {
    if checker.failed_imports.contains(&name.name) {
        return;
    }
    let count = checker.steps.len() + checker.locals.len() + checker.agents.len();
    let best = if checker.can_suggest(count) {
        did_you_mean_unordered(&name.name, checker.visible_value_names()).map(str::to_string)
    } else {
        None
    };
    let diagnostic =
        Diagnostic::error("GX0201", name.span, format!("unknown name `{}`", name.name));
    let (mut diagnostic, suggested) = with_suggested(diagnostic, name.span, best.as_deref());
    if !suggested {
        diagnostic = diagnostic.with_help("steps, inputs (`input.NAME`), agents, models, knowledge sources and modules can be named here");
    }
    checker.report(diagnostic);
}

/// An unknown function or tool being called.
pub(crate) fn report_callee(checker: &mut Checker<'_>, name: &Ident) {
    let mut candidates: Vec<&str> = crate::checker::BUILTINS.to_vec();
    let tools: Vec<String> = checker.tools.keys().map(|k| k.to_string()).collect();
    candidates.extend(tools.iter().map(String::as_str));
    candidates.sort_unstable();
    let diagnostic = Diagnostic::error(
        "GX0201",
        name.span,
        format!("unknown function `{}`", name.name),
    );
    let (mut diagnostic, suggested) = with_suggestion(
        diagnostic,
        &name.name,
        name.span,
        candidates.iter().copied(),
    );
    if !suggested {
        diagnostic = diagnostic.with_help(format!(
            "call a built-in ({}) or a tool (`module.tool(...)`)",
            name_list(crate::checker::BUILTINS.iter().copied())
        ));
    }
    checker.report(diagnostic);
}

/// `input.x` with no input `x`.
pub(crate) fn report_input(checker: &mut Checker<'_>, name: &Ident) {
    let candidates: Vec<String> = checker
        .program
        .inputs
        .iter()
        .map(|i| i.field.name.to_string())
        .collect();
    let diagnostic = Diagnostic::error(
        "GX0201",
        name.span,
        format!("unknown input `{}`", name.name),
    );
    let (mut diagnostic, suggested) = with_suggestion(
        diagnostic,
        &name.name,
        name.span,
        candidates.iter().map(String::as_str),
    );
    if !suggested {
        diagnostic = if candidates.is_empty() {
            diagnostic.with_help(format!("declare it: `input {{ {}: String }}`", name.name))
        } else {
            diagnostic.with_help(format!(
                "the inputs are {}",
                name_list(candidates.iter().map(String::as_str))
            ))
        };
    }
    checker.report(diagnostic);
}

/// `x.y` where `x` is not an imported module.
pub(crate) fn report_module(checker: &mut Checker<'_>, module: &Ident) {
    if checker.failed_imports.contains(&module.name) {
        return;
    }
    let mut candidates: Vec<String> = checker.imports.keys().map(|k| k.to_string()).collect();
    candidates.sort_unstable();
    let diagnostic = Diagnostic::error(
        "GX0201",
        module.span,
        format!("unknown module `{}`", module.name),
    );
    let (mut diagnostic, suggested) = with_suggestion(
        diagnostic,
        &module.name,
        module.span,
        candidates.iter().map(String::as_str),
    );
    if !suggested {
        diagnostic =
            diagnostic.with_help(format!("import it first, e.g. `use std.{}`", module.name));
    }
    checker.report(diagnostic);
}

/// An unknown name where only some kinds fit (agents for `ask`, tools in policy rules).
pub(crate) fn report_among<'c>(
    checker: &mut Checker<'_>,
    name: &Ident,
    what: &str,
    candidates: impl IntoIterator<Item = &'c str>,
) {
    let candidates: Vec<&str> = candidates.into_iter().collect();
    let diagnostic = Diagnostic::error(
        "GX0201",
        name.span,
        format!("unknown {what} `{}`", name.name),
    );
    let (mut diagnostic, suggested) = with_suggestion(
        diagnostic,
        &name.name,
        name.span,
        candidates.iter().copied(),
    );
    if !suggested {
        diagnostic = if candidates.is_empty() {
            diagnostic.with_help(format!("declare the {what} first"))
        } else {
            diagnostic.with_help(format!("known: {}", name_list(candidates.iter().copied())))
        };
    }
    checker.report(diagnostic);
}

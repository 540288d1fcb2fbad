//! GX0506 (warning): a layout entry for a step that does not exist.

use dsl_syntax::Diagnostic;
use dsl_syntax::ast::Ident;

use super::suggest_or_help;
use crate::checker::Checker;

/// `layout { nope: (0, 0) }`.
pub(crate) fn unknown_step(checker: &mut Checker<'_>, name: &Ident) {
    let steps = checker.step_candidates();
    let diagnostic = Diagnostic::warning(
        "GX0506",
        name.span,
        format!("layout entry for unknown step `{}`", name.name),
    );
    let diagnostic = suggest_or_help(
        diagnostic,
        &name.name,
        name.span,
        steps.iter().map(String::as_str),
        || "remove the entry; positions are kept for steps only".to_string(),
    );
    checker.report(diagnostic);
}

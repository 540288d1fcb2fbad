//! GX0506 (warning): a layout entry for a step that does not exist.

use dsl_syntax::Diagnostic;
use dsl_syntax::ast::Ident;

use super::with_suggestion;
use crate::checker::Checker;

/// `layout { nope: (0, 0) }`.
pub(crate) fn unknown_step(checker: &mut Checker<'_>, name: &Ident) {
    let mut steps: Vec<String> = if checker.can_suggest(checker.program.steps.len()) {
        checker
            .program
            .steps
            .iter()
            .map(|s| s.name.to_string())
            .collect()
    } else {
        Vec::new()
    };
    steps.sort_unstable();
    let diagnostic = Diagnostic::warning(
        "GX0506",
        name.span,
        format!("layout entry for unknown step `{}`", name.name),
    );
    let (diagnostic, suggested) = with_suggestion(
        diagnostic,
        &name.name,
        name.span,
        steps.iter().map(String::as_str),
    );
    let diagnostic = if suggested {
        diagnostic
    } else {
        diagnostic.with_help("remove the entry; positions are kept for steps only")
    };
    checker.report(diagnostic);
}

//! GX0104: a pack without a `flow`.

use dsl_syntax::{Diagnostic, Span};

use crate::checker::Checker;

/// Reports a pack that has no `flow` block.
pub(crate) fn check(checker: &mut Checker<'_>) {
    let file = &checker.parse.file;
    let span = file
        .name
        .as_ref()
        .map(|n| n.span)
        .unwrap_or(Span::empty(file.span.start as usize));
    checker.report(
        Diagnostic::error("GX0104", span, "pack has no `flow`")
            .with_help("add `flow { step NAME = ... }`; a pack without steps does nothing"),
    );
}

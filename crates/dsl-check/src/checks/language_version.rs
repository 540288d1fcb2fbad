//! GX0101 (a language version this toolchain does not know) and GX0102 (a pack that names
//! no language version).

use dsl_syntax::{Diagnostic, Span, TokenKind};

use super::replace;
use crate::checker::{Checker, KNOWN_LANGUAGES};

/// GX0101 when `version` is not a known language version.
pub(crate) fn check_known(checker: &mut Checker<'_>, version: &str, span: Span) {
    if KNOWN_LANGUAGES.contains(&version) {
        return;
    }
    let known = KNOWN_LANGUAGES
        .iter()
        .map(|v| format!("\"{v}\""))
        .collect::<Vec<_>>()
        .join(", ");
    checker.report(
        Diagnostic::error("GX0101", span, format!("unknown language version \"{version}\""))
            .with_help(format!(
                "this toolchain knows language {known}; `galaxy migrate` rewrites older packs, a newer toolchain reads newer ones"
            )),
    );
}

/// GX0102: a pack without `language`.
pub(crate) fn check_missing(checker: &mut Checker<'_>) {
    let file = &checker.parse.file;
    let span = file
        .name
        .as_ref()
        .map(|n| n.span)
        .unwrap_or(Span::empty(file.span.start as usize));
    let current = KNOWN_LANGUAGES.last().copied().unwrap_or("0.1");
    let mut diagnostic = Diagnostic::warning("GX0102", span, "pack declares no language version")
        .with_help(format!(
            "add `language \"{current}\"`; without it the pack is read as language {current}"
        ));
    let brace = checker
        .parse
        .tokens
        .iter()
        .find(|t| t.kind == TokenKind::LBrace && t.span.start >= span.end);
    if let Some(brace) = brace {
        diagnostic = diagnostic.with_fix(
            format!("add `language \"{current}\"`"),
            vec![replace(
                Span::empty(brace.span.end as usize),
                format!("\n  language \"{current}\""),
            )],
        );
    }
    checker.report(diagnostic);
}

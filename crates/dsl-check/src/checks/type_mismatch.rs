//! GX0301: a value of the wrong type.

use dsl_syntax::{Diagnostic, Span};

use super::with_suggestion;
use crate::checker::Checker;
use crate::ty::Ty;

/// Expected `expected`, found `found`.
pub(crate) fn report(checker: &mut Checker<'_>, span: Span, expected: &Ty, found: &Ty) {
    if expected.is_error() || found.is_error() {
        return;
    }
    let mut diagnostic = Diagnostic::error(
        "GX0301",
        span,
        format!("type mismatch: expected `{expected}`, found `{found}`"),
    );
    diagnostic = match (expected.strip_optional(), found) {
        (Ty::Union(_), Ty::String) => {
            diagnostic.with_help("only one of the listed string literals is accepted here")
        }
        (Ty::Int, Ty::Float) => {
            diagnostic.with_help("use `round(x)` to turn a `Float` into an `Int`")
        }
        (Ty::String, Ty::Int | Ty::Float | Ty::Bool | Ty::Duration | Ty::Money) => {
            diagnostic.with_help("use `string(x)` or interpolate it: `\"{x}\"`")
        }
        (_, Ty::Nothing) => diagnostic.with_help("this tool returns nothing"),
        _ => diagnostic,
    };
    checker.report(diagnostic);
}

/// Expected something described in words.
pub(crate) fn report_text(checker: &mut Checker<'_>, span: Span, expected: &str, found: &str) {
    if found == Ty::Error.to_string() {
        return;
    }
    checker.report(Diagnostic::error(
        "GX0301",
        span,
        format!("type mismatch: expected {expected}, found `{found}`"),
    ));
}

/// A string literal that is not a member of the expected union.
pub(crate) fn not_in_union(checker: &mut Checker<'_>, span: Span, text: &str, union: &Ty) {
    let Ty::Union(options) = union else { return };
    let diagnostic = Diagnostic::error(
        "GX0301",
        span,
        format!("type mismatch: expected `{union}`, found \"{text}\""),
    );
    let quoted: Vec<String> = options.iter().map(|o| format!("\"{o}\"")).collect();
    let (diagnostic, suggested) = with_suggestion(
        diagnostic,
        &format!("\"{text}\""),
        span,
        quoted.iter().map(String::as_str),
    );
    let diagnostic = if suggested {
        diagnostic
    } else {
        diagnostic.with_help(format!("the accepted values are {union}"))
    };
    checker.report(diagnostic);
}

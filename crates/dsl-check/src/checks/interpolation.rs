//! GX0308: a string hole whose value cannot be printed (a record or a map).

use dsl_syntax::Diagnostic;
use dsl_syntax::ast::Expr;

use crate::checker::Checker;
use crate::ty::Ty;

/// `"{draft}"` where `draft` is a record.
pub(crate) fn report(checker: &mut Checker<'_>, hole: &Expr, ty: &Ty) {
    if ty.is_error() {
        return;
    }
    let mut diagnostic = Diagnostic::error(
        "GX0308",
        hole.span,
        format!("cannot interpolate a value of type `{ty}` in a string"),
    );
    let example = match ty.strip_optional() {
        Ty::Named(named) => checker.lookup_type(named).and_then(|info| {
            info.fields
                .iter()
                .find(|f| f.ty.is_printable())
                .map(|f| f.name.to_string())
        }),
        Ty::Record(fields) => fields
            .iter()
            .find(|(_, t)| t.is_printable())
            .map(|(n, _)| n.to_string()),
        _ => None,
    };
    let text = hole.span.text(checker.src);
    diagnostic = match example {
        Some(field) => diagnostic.with_help(format!(
            "interpolate one of its fields, e.g. `{{{text}.{field}}}`"
        )),
        None => diagnostic.with_help(
            "only strings, numbers, booleans, durations, money and lists can be interpolated",
        ),
    };
    checker.report(diagnostic);
}

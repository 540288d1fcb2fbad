//! GX0209: a name of the wrong kind (asking a step, calling an agent, routing to a model).

use dsl_syntax::ast::Ident;
use dsl_syntax::{Diagnostic, Span};

use crate::checker::Checker;
use crate::ty::Ty;

fn kind_of(ty: &Ty) -> String {
    match ty {
        Ty::Agent => "an agent".into(),
        Ty::Model => "a model".into(),
        Ty::Knowledge => "a knowledge source".into(),
        Ty::Tool => "a tool".into(),
        Ty::Module => "a module".into(),
        other => format!("a value of type `{other}`"),
    }
}

/// `name` (of type `found`) where `wanted` is needed.
pub(crate) fn report(checker: &mut Checker<'_>, span: Span, name: &str, found: &Ty, wanted: &str) {
    if found.is_error() {
        return;
    }
    checker.report(
        Diagnostic::error(
            "GX0209",
            span,
            format!("`{name}` is {}, not {wanted}", kind_of(found)),
        )
        .with_help(format!("name {wanted} here")),
    );
}

/// `name` (described as `found`, e.g. "a step") where `wanted` is needed.
pub(crate) fn report_described(
    checker: &mut Checker<'_>,
    span: Span,
    name: &str,
    found: &str,
    wanted: &str,
) {
    checker.report(
        Diagnostic::error("GX0209", span, format!("`{name}` is {found}, not {wanted}"))
            .with_help(format!("name {wanted} here")),
    );
}

/// Calling something that is not a tool or built-in.
pub(crate) fn not_callable(checker: &mut Checker<'_>, name: &Ident, found: &Ty) {
    if found.is_error() {
        return;
    }
    let help = match found {
        Ty::Agent | Ty::Model => {
            format!("to ask it, write `ask {} {{ prompt: \"...\" }}`", name.name)
        }
        _ => "only tools and built-in functions can be called".to_string(),
    };
    checker.report(
        Diagnostic::error(
            "GX0209",
            name.span,
            format!(
                "`{}` is {}, not a function or tool",
                name.name,
                kind_of(found)
            ),
        )
        .with_help(help),
    );
}

/// Calling an expression that is not a tool.
pub(crate) fn not_callable_expr(checker: &mut Checker<'_>, span: Span, found: &Ty) {
    checker.report(
        Diagnostic::error(
            "GX0209",
            span,
            format!("{} cannot be called", kind_of(found)),
        )
        .with_help("only tools and built-in functions can be called"),
    );
}

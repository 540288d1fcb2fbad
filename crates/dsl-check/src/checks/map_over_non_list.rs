//! GX0302: `map` over something that is not a list.

use dsl_syntax::Diagnostic;
use dsl_syntax::ast::Expr;

use crate::checker::Checker;
use crate::ty::Ty;

/// `map x in source` where `source` has type `ty`.
pub(crate) fn report(checker: &mut Checker<'_>, source: &Expr, ty: &Ty) {
    if ty.is_error() {
        return;
    }
    let mut diagnostic = Diagnostic::error(
        "GX0302",
        source.span,
        format!("`map` over a non-list value of type `{ty}`"),
    );
    let list_field = match ty.strip_optional() {
        Ty::Named(named) => checker.lookup_type(named).and_then(|info| {
            info.fields
                .iter()
                .find(|f| f.ty.list_elem().is_some() && !f.ty.is_dynamic())
                .map(|f| f.name.to_string())
        }),
        _ => None,
    };
    diagnostic = match list_field {
        Some(field) => {
            let text = source.span.text(checker.src).to_string();
            diagnostic
                .with_help(format!("did you mean `{text}.{field}`?"))
                .with_fix(
                    format!("map over `{text}.{field}`"),
                    vec![super::replace(source.span, format!("{text}.{field}"))],
                )
        }
        None => diagnostic.with_help("`map` runs its body once per element of a list"),
    };
    checker.report(diagnostic);
}

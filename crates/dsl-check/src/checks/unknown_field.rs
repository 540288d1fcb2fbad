//! GX0202: a field that the type does not have.

use dsl_syntax::Diagnostic;
use dsl_syntax::ast::Ident;

use super::{name_list, with_suggestion};
use crate::checker::Checker;
use crate::program::TypeInfo;
use crate::ty::Ty;

/// `base.name` where `base`'s record type has no field `name`.
pub(crate) fn report(checker: &mut Checker<'_>, name: &Ident, base: &Ty, info: &TypeInfo) {
    let names: Vec<&str> = info.fields.iter().map(|f| &*f.name).collect();
    report_names(checker, name, &base.to_string(), &names);
}

/// The same, for a type given by its display text and field names.
pub(crate) fn report_names(checker: &mut Checker<'_>, name: &Ident, ty: &str, fields: &[&str]) {
    let diagnostic = Diagnostic::error(
        "GX0202",
        name.span,
        format!("unknown field `{}` of `{ty}`", name.name),
    );
    let (mut diagnostic, suggested) =
        with_suggestion(diagnostic, &name.name, name.span, fields.iter().copied());
    if !suggested {
        diagnostic = if fields.is_empty() {
            diagnostic.with_help(format!("`{ty}` has no fields"))
        } else {
            diagnostic.with_help(format!(
                "`{ty}` has the fields {}",
                name_list(fields.iter().copied())
            ))
        };
    }
    checker.report(diagnostic);
}

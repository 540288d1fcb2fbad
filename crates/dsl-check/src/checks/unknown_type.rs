//! GX0204: a type name that resolves to nothing.

use dsl_syntax::ast::Ident;
use dsl_syntax::{Diagnostic, Span};

use super::{name_list, replace, with_suggestion};
use crate::checker::Checker;
use crate::module::ModuleInfo;

/// An unknown type `name`, unqualified (`module` is `None`) or in an imported module.
pub(crate) fn report(checker: &mut Checker<'_>, name: &Ident, module: Option<&ModuleInfo>) {
    match module {
        Some(module) => {
            let diagnostic = Diagnostic::error(
                "GX0204",
                name.span,
                format!("unknown type `{}.{}`", module.name, name.name),
            );
            let names = module.type_names();
            let (mut diagnostic, suggested) =
                with_suggestion(diagnostic, &name.name, name.span, names.iter().copied());
            if !suggested {
                diagnostic = diagnostic.with_help(format!(
                    "module `{}` has the types {}",
                    module.name,
                    name_list(names.iter().copied())
                ));
            }
            checker.report(diagnostic);
        }
        None => {
            let names: Vec<String> = checker
                .visible_type_names()
                .into_iter()
                .map(str::to_string)
                .collect();
            let diagnostic =
                Diagnostic::error("GX0204", name.span, format!("unknown type `{}`", name.name));
            let (mut diagnostic, suggested) = with_suggestion(
                diagnostic,
                &name.name,
                name.span,
                names.iter().map(String::as_str),
            );
            if !suggested {
                let at = Span::empty(checker.item_start as usize);
                let is_type_name = name.name.chars().next().is_some_and(char::is_uppercase);
                diagnostic =
                    diagnostic.with_help(format!("declare it: `type {} {{ ... }}`", name.name));
                if is_type_name {
                    diagnostic = diagnostic.with_fix(
                        format!("create type `{}`", name.name),
                        vec![replace(at, format!("type {} {{\n  }}\n\n  ", name.name))],
                    );
                }
            }
            checker.report(diagnostic);
        }
    }
}

/// A type path with more than two parts.
pub(crate) fn report_path(checker: &mut Checker<'_>, span: Span) {
    checker.report(
        Diagnostic::error("GX0204", span, "unknown type")
            .with_help("a type is `Name` or `module.Name`"),
    );
}

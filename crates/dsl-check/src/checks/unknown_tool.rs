//! GX0205: a tool that the module does not have (`mail.serch`).

use dsl_syntax::ast::Ident;
use dsl_syntax::{Diagnostic, Span};

use super::{name_list, with_suggestion};
use crate::checker::Checker;
use crate::module::ModuleInfo;

/// `alias.name` where the module has no tool `name`.
pub(crate) fn report(checker: &mut Checker<'_>, alias: &str, name: &Ident, module: &ModuleInfo) {
    let names = module.tool_names();
    let diagnostic = Diagnostic::error(
        "GX0205",
        name.span,
        format!("unknown tool `{alias}.{}`", name.name),
    );
    let (mut diagnostic, suggested) =
        with_suggestion(diagnostic, &name.name, name.span, names.iter().copied());
    if !suggested {
        diagnostic = if names.is_empty() {
            diagnostic.with_help(format!("module `{alias}` has no tools"))
        } else {
            diagnostic.with_help(format!(
                "module `{alias}` has the tools {}",
                name_list(names.iter().copied())
            ))
        };
    }
    checker.report(diagnostic);
}

/// A tool path with more than two parts.
pub(crate) fn report_path(checker: &mut Checker<'_>, span: Span) {
    checker.report(
        Diagnostic::error("GX0205", span, "unknown tool")
            .with_help("a tool is `module.tool` or a pack tool's name"),
    );
}

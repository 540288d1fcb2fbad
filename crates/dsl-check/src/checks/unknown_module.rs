//! GX0203 (an unknown module in `use`), GX0208 (an imported file the world does not have)
//! and GX0210 (an imported module file with errors, or an import cycle).

use dsl_syntax::ast::{Ident, UseItem};
use dsl_syntax::{Diagnostic, Span};

use super::{name_list, with_suggestion};
use crate::checker::Checker;
use crate::module::ModuleInfo;

/// `use std.maill`.
pub(crate) fn unknown_std_module(checker: &mut Checker<'_>, name: &Ident) {
    let diagnostic = Diagnostic::error(
        "GX0203",
        name.span,
        format!("unknown module `std.{}`", name.name),
    );
    let (mut diagnostic, suggested) =
        with_suggestion(diagnostic, &name.name, name.span, crate::stdlib::names());
    if !suggested {
        diagnostic = diagnostic.with_help(format!(
            "the stdlib modules are {}",
            name_list(crate::stdlib::names())
        ));
    }
    checker.report(diagnostic);
}

/// `use mail` or `use a.b.c`: only `std.NAME` paths exist.
pub(crate) fn unknown_std_path(checker: &mut Checker<'_>, path: &[Ident], item: &UseItem) {
    let span = match (path.first(), path.last()) {
        (Some(first), Some(last)) => first.span.cover(last.span),
        _ => item.span,
    };
    let written: Vec<&str> = path.iter().map(|i| i.name.as_str()).collect();
    let mut diagnostic = Diagnostic::error(
        "GX0203",
        span,
        format!("unknown module `{}`", written.join(".")),
    );
    if let [single] = path
        && crate::stdlib::source(&single.name).is_some()
    {
        diagnostic = diagnostic
            .with_help(format!(
                "stdlib modules live under `std`: `use std.{}`",
                single.name
            ))
            .with_fix(
                format!("write `std.{}`", single.name),
                vec![super::replace(span, format!("std.{}", single.name))],
            );
    } else {
        diagnostic = diagnostic.with_help(format!(
            "use a stdlib module (`use std.mail`) or a project file (`use \"./lib.gx\" as lib`); the stdlib modules are {}",
            name_list(crate::stdlib::names())
        ));
    }
    checker.report(diagnostic);
}

/// `use "./x.gx"` where `x.gx` is a pack.
pub(crate) fn imported_pack(checker: &mut Checker<'_>, span: Span, path: &str) {
    checker.report(
        Diagnostic::error("GX0203", span, format!("`{path}` is a pack, not a module"))
            .with_help("only `module NAME { ... }` files can be imported"),
    );
}

/// GX0208: the world has no such file.
pub(crate) fn file_not_found(checker: &mut Checker<'_>, span: Span, path: &str) {
    checker.report(
        Diagnostic::error("GX0208", span, format!("imported file `{path}` not found"))
            .with_help("the path is relative to the pack's directory"),
    );
}

/// GX0210: an import cycle between project files.
pub(crate) fn import_cycle(checker: &mut Checker<'_>, span: Span, path: &str) {
    checker.report(
        Diagnostic::error("GX0210", span, format!("import cycle through `{path}`"))
            .with_help("modules may not import each other in a circle; move the shared types into a third module"),
    );
}

/// GX0210: the imported module has errors of its own.
pub(crate) fn module_has_errors(checker: &mut Checker<'_>, span: Span, module: &ModuleInfo) {
    let count = module.errors.len();
    let first = module
        .errors
        .first()
        .map(|d| format!("{}: {}", d.code, d.message))
        .unwrap_or_default();
    let plural = if count == 1 { "" } else { "s" };
    checker.report(
        Diagnostic::error(
            "GX0210",
            span,
            format!(
                "imported module `{}` has {count} error{plural}",
                module.name
            ),
        )
        .with_help(format!(
            "check that file on its own; the first error is {first}"
        )),
    );
}

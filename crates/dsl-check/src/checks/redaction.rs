//! GX0407: an unknown redaction kind or point in `redact KIND before POINT`.

use dsl_syntax::Diagnostic;
use dsl_syntax::ast::Ident;

use super::{name_list, with_suggestion};
use crate::checker::Checker;

/// What can be redacted.
pub(crate) const KINDS: &[&str] = &["cards", "emails", "ids", "keys", "phones", "pii"];
/// Before what.
pub(crate) const POINTS: &[&str] = &["all", "model", "trace"];

/// Checks one rule; returns whether both parts are known.
pub(crate) fn check(checker: &mut Checker<'_>, what: &Ident, before: &Ident) -> bool {
    let mut ok = true;
    for (ident, known, role) in [
        (what, KINDS, "redaction kind"),
        (before, POINTS, "redaction point"),
    ] {
        if known.contains(&ident.name.as_str()) {
            continue;
        }
        ok = false;
        let diagnostic = Diagnostic::error(
            "GX0407",
            ident.span,
            format!("unknown {role} `{}`", ident.name),
        );
        let (diagnostic, suggested) =
            with_suggestion(diagnostic, &ident.name, ident.span, known.iter().copied());
        let diagnostic = if suggested {
            diagnostic
        } else {
            diagnostic.with_help(format!(
                "a {role} is one of {}",
                name_list(known.iter().copied())
            ))
        };
        checker.report(diagnostic);
    }
    ok
}

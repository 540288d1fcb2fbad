//! GX0405: a tool scope that is not `read`, `write` or `destructive`.

use dsl_syntax::Diagnostic;
use dsl_syntax::ast::{ExprKind, Prop};

use super::{replace, with_suggestion};
use crate::checker::Checker;
use crate::program::Scope;

/// Checks `scope: ...`; returns the scope when valid.
pub(crate) fn check(checker: &mut Checker<'_>, prop: &Prop) -> Option<Scope> {
    let value = &prop.value;
    let written = match &value.kind {
        ExprKind::Name(name) => {
            if let Some(scope) = Scope::parse(&name.name) {
                return Some(scope);
            }
            name.name.clone()
        }
        ExprKind::Str(lit) => match lit.as_plain() {
            Some(text) => {
                if let Some(scope) = Scope::parse(&text) {
                    checker.report(
                        Diagnostic::error(
                            "GX0405",
                            value.span,
                            format!("tool scope is written without quotes: `{text}`"),
                        )
                        .with_help("write `scope: read`, `scope: write` or `scope: destructive`")
                        .with_fix(
                            format!("write `{text}`"),
                            vec![replace(value.span, text.clone())],
                        ),
                    );
                    return Some(scope);
                }
                text
            }
            None => String::new(),
        },
        _ => String::new(),
    };
    let shown = if written.is_empty() {
        value.span.text(checker.src).to_string()
    } else {
        written.clone()
    };
    let diagnostic = Diagnostic::error(
        "GX0405",
        value.span,
        format!("invalid tool scope `{shown}`"),
    );
    let (diagnostic, suggested) = with_suggestion(
        diagnostic,
        &written,
        value.span,
        ["read", "write", "destructive"],
    );
    let diagnostic = if suggested {
        diagnostic
    } else {
        diagnostic.with_help("a tool's scope is `read`, `write` (can be undone) or `destructive` (cannot be undone, or seen by others)")
    };
    checker.report(diagnostic);
    None
}

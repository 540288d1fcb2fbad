//! GX0505: a `review` loop whose `max` bound is below 1. Without `max` the bound is 3.

use dsl_syntax::Diagnostic;
use dsl_syntax::ast::{Expr, ExprKind, UnaryOp};

use crate::checker::Checker;

/// Checks `max N` of a review loop.
pub(crate) fn check(checker: &mut Checker<'_>, max: &Expr) {
    let value = match &max.kind {
        ExprKind::Int(n) => Some(*n),
        ExprKind::Unary(UnaryOp::Neg, inner) => match inner.kind {
            ExprKind::Int(n) => Some(-n),
            _ => None,
        },
        _ => None,
    };
    if let Some(rounds) = value
        && rounds < 1
    {
        checker.report(
            Diagnostic::error("GX0505", max.span, format!("review loop bound must be at least 1, found {rounds}"))
                .with_help("`max N` is how many rounds the critic may ask for; leave it out for the default of 3")
                .with_fix("use the default bound of 3", vec![super::replace(max.span, "3")]),
        );
    }
}

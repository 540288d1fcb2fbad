//! GX0309: a duration or count written below what its property can mean.
//!
//! A `timeout` of zero would cancel every attempt before it starts and a `rate` window of
//! zero would hold no call, so both must be longer than zero; a model's `max_tokens` and a
//! knowledge source's `top_k` and `chunk_size` must be at least 1. A `backoff` of zero (retry at
//! once), a `sim_latency` of zero (an instant simulated answer) and a `retry` of zero (no
//! retry) are meaningful; only negative values are refused there. The runtime reads these
//! properties as written, so the check looks at literals (`0s`, `-1s`, `-2`); a value of the
//! wrong type is GX0301's.

use dsl_syntax::Diagnostic;
use dsl_syntax::ast::{Expr, ExprKind, UnaryOp};

use crate::checker::Checker;

/// The smallest value a property accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Minimum {
    /// Longer than zero, or at least 1 (`timeout`, a `rate` window, `max_tokens`, `top_k`,
    /// `chunk_size`).
    Positive,
    /// Zero or more (`backoff`, `sim_latency`, `retry`).
    NonNegative,
}

/// The value of an integer or duration literal, negated ones included (a duration in ms).
fn literal_value(expr: &Expr) -> Option<i128> {
    match &expr.kind {
        ExprKind::Int(n) => Some(i128::from(*n)),
        ExprKind::Duration(ms) => Some(i128::from(*ms)),
        ExprKind::Unary(UnaryOp::Neg, inner) => literal_value(inner).map(|v| -v),
        _ => None,
    }
}

/// Checks the duration `value` of property `name` against `minimum`; `default` is the
/// written default the fix puts instead, when the property has one. `name` is a property's
/// name (`timeout`) or, for a part of a rule, words that say which (`a rate window`).
pub(crate) fn check_duration(
    checker: &mut Checker<'_>,
    name: &str,
    value: &Expr,
    minimum: Minimum,
    default: Option<&str>,
) {
    check(checker, name, value, minimum, default, Kind::Duration);
}

/// Checks the count `value` of property `name` (a whole number) against `minimum`.
pub(crate) fn check_count(
    checker: &mut Checker<'_>,
    name: &str,
    value: &Expr,
    minimum: Minimum,
    default: Option<&str>,
) {
    check(checker, name, value, minimum, default, Kind::Count);
}

/// What a property holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Duration,
    Count,
}

fn check(
    checker: &mut Checker<'_>,
    name: &str,
    value: &Expr,
    minimum: Minimum,
    default: Option<&str>,
    kind: Kind,
) {
    let Some(number) = literal_value(value) else {
        return;
    };
    let written = value.span.text(checker.src).trim().to_string();
    let subject = subject(name);
    let message = match minimum {
        Minimum::Positive if number <= 0 => {
            let bound = match kind {
                Kind::Duration => "be longer than zero",
                Kind::Count => "be at least 1",
            };
            format!("{subject} must {bound}, found `{written}`")
        }
        Minimum::NonNegative if number < 0 => {
            format!("{subject} cannot be negative, found `{written}`")
        }
        _ => return,
    };
    let help = match (minimum, kind) {
        (Minimum::Positive, Kind::Duration) => "write a duration longer than zero",
        (Minimum::Positive, Kind::Count) => "write a count of at least 1",
        (Minimum::NonNegative, Kind::Duration) => "write zero (no wait) or a positive duration",
        (Minimum::NonNegative, Kind::Count) => "write zero or a positive count",
    };
    let help = match default {
        Some(default) => format!("{help}, or leave `{name}` out for the default of {default}"),
        None => help.to_string(),
    };
    report(checker, value, message, help, default);
}

/// Checks a budget's amount `value` (money, a whole number or a duration, as written):
/// not negative. True when it reported.
pub(crate) fn check_amount(checker: &mut Checker<'_>, name: &str, value: &Expr) -> bool {
    let negative = matches!(
        &value.kind,
        ExprKind::Unary(UnaryOp::Neg, inner) if matches!(
            inner.kind,
            ExprKind::Money { .. } | ExprKind::Duration(_) | ExprKind::Int(_) | ExprKind::Float(_)
        )
    );
    if negative {
        let written = value.span.text(checker.src).trim();
        let message = format!("{} cannot be negative, found `{written}`", subject(name));
        let help = "write zero (none may be spent) or a positive amount".to_string();
        report(checker, value, message, help, None);
    }
    negative
}

/// `name` as a diagnostic's subject: a property's name in backticks, words as they are.
fn subject(name: &str) -> String {
    if name.contains(' ') {
        name.to_string()
    } else {
        format!("`{name}`")
    }
}

/// Reports GX0309 on `value`, with a fix writing `default` where the property has one.
fn report(
    checker: &mut Checker<'_>,
    value: &Expr,
    message: String,
    help: String,
    default: Option<&str>,
) {
    let mut diagnostic = Diagnostic::error("GX0309", value.span, message).with_help(help);
    if let Some(default) = default {
        diagnostic = diagnostic.with_fix(
            format!("use the default of {default}"),
            vec![super::replace(value.span, default)],
        );
    }
    checker.report(diagnostic);
}

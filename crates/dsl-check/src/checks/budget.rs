//! GX0403: a budget with an unknown unit, the wrong kind of amount, or an unknown period;
//! GX0309: a budget amount below zero, or a time budget of no time.

use dsl_syntax::ast::{Expr, ExprKind, Ident};
use dsl_syntax::{Diagnostic, Span};

use super::value_range::{self, Minimum};
use super::{name_list, with_suggestion};
use crate::checker::Checker;
use crate::policy::Budget;

/// Units after a plain number.
const COUNT_UNITS: &[&str] = &["calls", "tokens"];
/// What a budget is per.
const PERIODS: &[&str] = &["item", "run", "step"];

fn report(checker: &mut Checker<'_>, span: Span, message: String, help: &str) {
    checker.report(Diagnostic::error("GX0403", span, message).with_help(help.to_string()));
}

const HELP: &str = "write `budget 0.50 usd per run`, `budget 200000 tokens per run`, `budget 10m time per run` or `budget 50 calls per run`";

/// Checks `budget AMOUNT [UNIT] per PERIOD`; returns it when valid.
pub(crate) fn check<'a>(
    checker: &mut Checker<'a>,
    amount: &'a Expr,
    unit: Option<&Ident>,
    per: &Ident,
) -> Option<Budget> {
    let mut ok = true;
    if !PERIODS.contains(&per.name.as_str()) {
        ok = false;
        let diagnostic = Diagnostic::error(
            "GX0403",
            per.span,
            format!("unknown budget period `{}`", per.name),
        );
        let (diagnostic, suggested) =
            with_suggestion(diagnostic, &per.name, per.span, PERIODS.iter().copied());
        let diagnostic = if suggested {
            diagnostic
        } else {
            diagnostic.with_help(format!(
                "a budget is per {}",
                name_list(PERIODS.iter().copied())
            ))
        };
        checker.report(diagnostic);
    }
    // A negative amount, or a time budget of no time, is a literal no budget can mean.
    if value_range::check_amount(checker, "a budget", amount) {
        return None;
    }
    if let ExprKind::Duration(ms) = amount.kind
        && ms == 0
    {
        value_range::check_duration(checker, "a time budget", amount, Minimum::Positive, None);
        return None;
    }
    let budget = match (&amount.kind, unit) {
        (
            ExprKind::Money {
                amount: value,
                currency,
            },
            None,
        ) => Some((currency.clone(), *value)),
        (ExprKind::Duration(ms), None) => Some(("ms".to_string(), *ms as f64)),
        (ExprKind::Duration(ms), Some(unit)) if unit.name == "time" => {
            Some(("ms".to_string(), *ms as f64))
        }
        (ExprKind::Int(n), Some(unit)) if COUNT_UNITS.contains(&unit.name.as_str()) => {
            Some((unit.name.clone(), *n as f64))
        }
        (ExprKind::Money { .. }, Some(unit)) => {
            report(
                checker,
                unit.span,
                format!("a money budget takes no unit, found `{}`", unit.name),
                HELP,
            );
            None
        }
        (ExprKind::Duration(_), Some(unit)) => {
            report(
                checker,
                unit.span,
                format!("a time budget takes the unit `time`, found `{}`", unit.name),
                HELP,
            );
            None
        }
        (ExprKind::Int(_), Some(unit)) => {
            let diagnostic = Diagnostic::error(
                "GX0403",
                unit.span,
                format!("unknown budget unit `{}`", unit.name),
            );
            let (diagnostic, suggested) = with_suggestion(
                diagnostic,
                &unit.name,
                unit.span,
                COUNT_UNITS.iter().copied(),
            );
            let diagnostic = if suggested {
                diagnostic
            } else {
                diagnostic.with_help(HELP)
            };
            checker.report(diagnostic);
            None
        }
        (ExprKind::Int(_), None) => {
            report(
                checker,
                amount.span,
                "budget amount has no unit".to_string(),
                HELP,
            );
            None
        }
        (ExprKind::Float(_), _) => {
            report(
                checker,
                amount.span,
                "budget amount must be money, a duration or a whole number".to_string(),
                HELP,
            );
            None
        }
        _ => {
            checker.infer(amount);
            report(
                checker,
                amount.span,
                "budget amount must be a literal".to_string(),
                HELP,
            );
            None
        }
    };
    let (unit, amount) = budget?;
    ok.then(|| Budget {
        unit,
        amount,
        per: per.name.clone(),
    })
}

//! GX0306: an operator applied to operand types it is not defined for.

use dsl_syntax::ast::{BinaryOp, UnaryOp};
use dsl_syntax::{Diagnostic, Span};

use crate::checker::Checker;
use crate::ty::Ty;

/// The result type of `left op right`, or `None` when the operator does not apply.
pub(crate) fn binary_result(op: BinaryOp, left: &Ty, right: &Ty) -> Option<Ty> {
    let l = left.strip_optional();
    let r = right.strip_optional();
    if l.is_error() || r.is_error() {
        return Some(
            if op.is_comparison() || matches!(op, BinaryOp::And | BinaryOp::Or) {
                Ty::Bool
            } else {
                Ty::Error
            },
        );
    }
    match op {
        BinaryOp::And | BinaryOp::Or => (matches!(l, Ty::Bool | Ty::Json)
            && matches!(r, Ty::Bool | Ty::Json))
        .then_some(Ty::Bool),
        BinaryOp::Eq | BinaryOp::Ne => {
            let comparable = left.accepts(right)
                || right.accepts(left)
                || (l.is_number() && r.is_number())
                || matches!(left, Ty::None)
                || matches!(right, Ty::None);
            comparable.then_some(Ty::Bool)
        }
        BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge => {
            let ordered = (l.is_number() && r.is_number())
                || matches!(
                    (l, r),
                    (Ty::Duration, Ty::Duration) | (Ty::Money, Ty::Money)
                )
                || (l.is_stringish() && r.is_stringish())
                || l.is_dynamic()
                || r.is_dynamic();
            ordered.then_some(Ty::Bool)
        }
        BinaryOp::Add => match (l, r) {
            (Ty::Json, _) | (_, Ty::Json) => Some(Ty::Json),
            (Ty::Int, Ty::Int) => Some(Ty::Int),
            (a, b) if a.is_number() && b.is_number() => Some(Ty::Float),
            (Ty::Duration, Ty::Duration) => Some(Ty::Duration),
            (Ty::Money, Ty::Money) => Some(Ty::Money),
            (Ty::Secret, s) | (s, Ty::Secret) if s.is_stringish() || matches!(s, Ty::Secret) => {
                Some(Ty::Secret)
            }
            (a, b) if a.is_stringish() && b.is_stringish() => Some(Ty::String),
            (Ty::List(a), Ty::List(b)) => {
                if a.accepts(b) {
                    Some(Ty::List(a.clone()))
                } else if b.accepts(a) {
                    Some(Ty::List(b.clone()))
                } else {
                    None
                }
            }
            _ => None,
        },
        BinaryOp::Sub => match (l, r) {
            (Ty::Json, _) | (_, Ty::Json) => Some(Ty::Json),
            (Ty::Int, Ty::Int) => Some(Ty::Int),
            (a, b) if a.is_number() && b.is_number() => Some(Ty::Float),
            (Ty::Duration, Ty::Duration) => Some(Ty::Duration),
            (Ty::Money, Ty::Money) => Some(Ty::Money),
            _ => None,
        },
        BinaryOp::Mul => match (l, r) {
            (Ty::Json, _) | (_, Ty::Json) => Some(Ty::Json),
            (Ty::Int, Ty::Int) => Some(Ty::Int),
            (a, b) if a.is_number() && b.is_number() => Some(Ty::Float),
            (Ty::Duration, n) | (n, Ty::Duration) if n.is_number() => Some(Ty::Duration),
            (Ty::Money, n) | (n, Ty::Money) if n.is_number() => Some(Ty::Money),
            _ => None,
        },
        BinaryOp::Div => match (l, r) {
            (Ty::Json, _) | (_, Ty::Json) => Some(Ty::Json),
            (a, b) if a.is_number() && b.is_number() => Some(Ty::Float),
            (Ty::Duration, Ty::Duration) | (Ty::Money, Ty::Money) => Some(Ty::Float),
            (Ty::Duration, n) if n.is_number() => Some(Ty::Duration),
            (Ty::Money, n) if n.is_number() => Some(Ty::Money),
            _ => None,
        },
    }
}

/// `left op right` is not defined.
pub(crate) fn binary(checker: &mut Checker<'_>, span: Span, op: BinaryOp, left: &Ty, right: &Ty) {
    if left.is_error() || right.is_error() {
        return;
    }
    let message = if op.is_comparison() {
        format!(
            "cannot compare `{left}` with `{right}` using `{}`",
            op.as_str()
        )
    } else {
        format!(
            "operator `{}` is not defined for `{left}` and `{right}`",
            op.as_str()
        )
    };
    let help = match op {
        BinaryOp::And | BinaryOp::Or => "`and` and `or` take two `Bool` operands",
        BinaryOp::Add if left.is_stringish() || right.is_stringish() => {
            "to build a string, interpolate: `\"{a} {b}\"`"
        }
        BinaryOp::Div => "divide numbers, durations or money",
        _ => "the operands must be numbers, durations or money of matching kinds",
    };
    checker.report(Diagnostic::error("GX0306", span, message).with_help(help));
}

/// `not x` / `-x` on the wrong type.
pub(crate) fn unary(checker: &mut Checker<'_>, span: Span, op: UnaryOp, operand: &Ty) {
    let (symbol, help) = match op {
        UnaryOp::Not => ("not", "`not` takes a `Bool`"),
        UnaryOp::Neg => ("-", "`-` takes a number, a duration or money"),
    };
    checker.report(
        Diagnostic::error(
            "GX0306",
            span,
            format!("operator `{symbol}` is not defined for `{operand}`"),
        )
        .with_help(help),
    );
}

/// `x[i]` where `x` is neither a list nor a map.
pub(crate) fn cannot_index(checker: &mut Checker<'_>, span: Span, base: &Ty) {
    checker.report(
        Diagnostic::error(
            "GX0306",
            span,
            format!("cannot index a value of type `{base}`"),
        )
        .with_help("only lists (`xs[0]`) and maps (`m[\"key\"]`) can be indexed"),
    );
}

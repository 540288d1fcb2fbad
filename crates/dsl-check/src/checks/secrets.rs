//! GX0404: a credential written as a literal string instead of `secret("NAME")`.

use dsl_syntax::Diagnostic;
use dsl_syntax::ast::{Expr, ExprKind, Prop};

use super::replace;
use crate::checker::Checker;
use crate::ty::Ty;

/// Header and property names whose values are credentials.
const SENSITIVE: &[&str] = &[
    "authorization",
    "proxy_authorization",
    "api_key",
    "apikey",
    "x_api_key",
    "token",
    "access_token",
    "password",
    "secret",
    "cookie",
    "x_auth_token",
    "auth_token",
];

/// Whether a property or header name holds a credential.
pub(crate) fn is_sensitive(name: &str) -> bool {
    let lower = name.to_ascii_lowercase().replace('-', "_");
    SENSITIVE.contains(&lower.as_str())
}

/// Whether `value` is (or is built only from) literal text.
fn is_literal(value: &Expr) -> bool {
    match &value.kind {
        ExprKind::Str(lit) => lit.as_plain().is_some(),
        ExprKind::Binary(_, left, right) => is_literal(left) && is_literal(right),
        _ => false,
    }
}

fn report(checker: &mut Checker<'_>, key: &str, value: &Expr) {
    let name = key.to_ascii_uppercase().replace('-', "_");
    checker.report(
        Diagnostic::error("GX0404", value.span, format!("literal secret in `{key}`"))
            .with_help(format!(
                "credentials never appear in a pack: write `secret(\"{name}\")` and set the environment variable {name}"
            ))
            .with_fix(format!("read it from the secret `{name}`"), vec![replace(value.span, format!("secret(\"{name}\")"))]),
    );
}

/// `api_key: ...` in a model (or a provider call): must be a secret.
pub(crate) fn check_secret_value<'a>(checker: &mut Checker<'a>, prop: &'a Prop) {
    check_secret_expr(checker, &prop.key.name, &prop.value);
}

/// The same for a value under the name `key`.
pub(crate) fn check_secret_expr<'a>(checker: &mut Checker<'a>, key: &str, value: &'a Expr) {
    if is_literal(value) {
        report(checker, key, value);
        return;
    }
    checker.check_expr(value, &Ty::Secret);
}

/// A request's `headers: { authorization: ... }`.
pub(crate) fn check_headers(checker: &mut Checker<'_>, headers: &Expr) {
    let ExprKind::Record(props) = &headers.kind else {
        return;
    };
    for prop in props {
        if is_sensitive(&prop.key.name) && is_literal(&prop.value) {
            report(checker, &prop.key.name, &prop.value);
        }
    }
}

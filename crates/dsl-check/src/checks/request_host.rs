//! GX0406: a tool's request URL whose host is not among the tool's `hosts`.

use dsl_syntax::ast::{Expr, ExprKind, Prop, StrPart, ToolDecl};
use dsl_syntax::{Diagnostic, Span};

use super::replace;
use crate::checker::Checker;
use crate::policy::host_matches;

/// The HTTP methods a request may use.
const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"];

/// The host of a URL whose scheme and host are literal text (`None` when a hole is in the way).
pub(crate) fn url_host(url: &Expr) -> Option<String> {
    let ExprKind::Str(lit) = &url.kind else {
        return None;
    };
    let Some(StrPart::Text(text)) = lit.parts.first() else {
        return None;
    };
    let rest = text.split_once("://").map(|(_, rest)| rest)?;
    // The host must end inside this text part, or a hole follows it.
    if lit.parts.len() > 1 && !rest.contains(['/', '?', '#', '\\']) {
        return None;
    }
    crate::policy::url_host(text)
}

/// Checks the request URL's host against the tool's hosts.
pub(crate) fn check(
    checker: &mut Checker<'_>,
    url: &Expr,
    hosts: &[String],
    hosts_prop: Option<&Prop>,
    decl: &ToolDecl,
) {
    let Some(host) = url_host(url) else { return };
    if hosts.iter().any(|h| host_matches(h, &host)) {
        return;
    }
    let mut diagnostic = Diagnostic::error(
        "GX0406",
        url.span,
        format!(
            "request URL host `{host}` is not among the hosts of tool `{}`",
            decl.name.name
        ),
    );
    match hosts_prop {
        Some(prop) => {
            diagnostic = diagnostic.with_label(prop.value.span, "the tool's hosts");
            if let ExprKind::List(items) = &prop.value.kind {
                let edit = match items.last() {
                    Some(last) => {
                        replace(Span::empty(last.span.end as usize), format!(", \"{host}\""))
                    }
                    None => replace(
                        Span::empty(prop.value.span.end.saturating_sub(1) as usize),
                        format!("\"{host}\""),
                    ),
                };
                diagnostic =
                    diagnostic.with_fix(format!("add `{host}` to the tool's hosts"), vec![edit]);
            }
            diagnostic = diagnostic.with_help(format!(
                "add \"{host}\" to `hosts`, or call one of the listed hosts"
            ));
        }
        None => {
            diagnostic = diagnostic.with_help(format!(
                "declare the hosts the tool reaches: `hosts: [\"{host}\"]`"
            ));
        }
    }
    checker.report(diagnostic);
}

/// `method: "GET"`: one of the HTTP methods.
pub(crate) fn check_method(checker: &mut Checker<'_>, value: &Expr) {
    let Some(method) = crate::checker::plain_string(value) else {
        return;
    };
    if METHODS.contains(&method.as_str()) {
        return;
    }
    let upper = method.to_ascii_uppercase();
    let mut diagnostic = Diagnostic::error(
        "GX0301",
        value.span,
        format!("unknown HTTP method \"{method}\""),
    )
    .with_help(format!("use one of {}", METHODS.join(", ")));
    if METHODS.contains(&upper.as_str()) {
        diagnostic = diagnostic.with_fix(
            format!("write \"{upper}\""),
            vec![replace(value.span, format!("\"{upper}\""))],
        );
    }
    checker.report(diagnostic);
}

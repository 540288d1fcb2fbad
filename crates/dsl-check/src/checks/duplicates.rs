//! GX0207: a name defined twice where names must be unique (steps, types, fields, inputs,
//! parameters, tools, agents, models, knowledge, properties, arguments, evals, KPIs, layout
//! entries, `use` aliases, metadata, blocks).

use crate::fast_hash::FastMap;

use dsl_syntax::ast::Ident;
use dsl_syntax::{Diagnostic, Span};

use crate::checker::Checker;

/// Records `ident` in `seen`; reports it and returns `false` when already there.
pub(crate) fn check<'a>(
    checker: &mut Checker<'_>,
    seen: &mut FastMap<&'a str, Span>,
    ident: &'a Ident,
    what: &str,
) -> bool {
    if let Some(&first) = seen.get(ident.name.as_str()) {
        report(
            checker,
            ident.span,
            first,
            &format!("{what} `{}`", ident.name),
        );
        return false;
    }
    seen.insert(&ident.name, ident.span);
    true
}

/// Reports a duplicate at `span`, first defined at `first`.
pub(crate) fn report(checker: &mut Checker<'_>, span: Span, first: Span, what: &str) {
    let mut diagnostic = Diagnostic::error("GX0207", span, format!("duplicate {what}"))
        .with_help("rename or remove one of them");
    if first != Span::default() {
        diagnostic = diagnostic.with_label(first, "first defined here");
    }
    checker.report(diagnostic);
}

/// A second `flow`, `policy`, `outcome`, `input` or `layout` block.
pub(crate) fn duplicate_block(checker: &mut Checker<'_>, span: Span, block: &str) {
    let span = Span {
        start: span.start,
        end: span.start.saturating_add(block.len() as u32).min(span.end),
    };
    checker.report(
        Diagnostic::error("GX0207", span, format!("duplicate `{block}` block")).with_help(format!(
            "a pack has at most one `{block}` block; merge them"
        )),
    );
}

//! GX0103: an item that is not allowed where it stands (a `flow` in a module) or metadata
//! with the wrong kind of value (`tags "x"`).

use dsl_syntax::Diagnostic;
use dsl_syntax::ast::{ExprKind, Item, MetaItem};

use crate::checker::Checker;

/// Items a module may not hold.
pub(crate) fn check_module_item(checker: &mut Checker<'_>, item: &Item) {
    let keyword = match item {
        Item::Input(_) => "input",
        Item::Knowledge(_) => "knowledge",
        Item::Flow(_) => "flow",
        Item::Policy(_) => "policy",
        Item::Outcome(_) => "outcome",
        Item::Kpi(_) => "kpi",
        Item::Eval(_) => "eval",
        Item::Layout(_) => "layout",
        _ => return,
    };
    let span = item.span();
    let head = dsl_syntax::Span {
        start: span.start,
        end: span
            .start
            .saturating_add(keyword.len() as u32)
            .min(span.end),
    };
    checker.report(
        Diagnostic::error("GX0103", head, format!("`{keyword}` is not allowed in a module"))
            .with_help("a module may hold only `use`, `type`, `tool`, `model` and `agent` items and metadata; move this into a pack"),
    );
}

/// Metadata values: a plain string, or for `tags` a list of plain strings.
pub(crate) fn check_meta_value(checker: &mut Checker<'_>, meta: &MetaItem) {
    let key = meta.key.name.as_str();
    let ok = match (key, &meta.value.kind) {
        ("tags", ExprKind::List(items)) => items
            .iter()
            .all(|i| matches!(&i.kind, ExprKind::Str(lit) if lit.as_plain().is_some())),
        ("tags", _) => false,
        (_, ExprKind::Str(lit)) => lit.as_plain().is_some(),
        _ => false,
    };
    if !ok {
        let wanted = if key == "tags" {
            "a list of plain strings, e.g. `tags [\"support\"]`"
        } else {
            "a plain string"
        };
        checker.report(
            Diagnostic::error(
                "GX0103",
                meta.value.span,
                format!("metadata `{key}` takes {wanted}"),
            )
            .with_label(meta.key.span, format!("`{key}` metadata"))
            .with_help(format!("write `{key}` followed by {wanted}")),
        );
    }
}

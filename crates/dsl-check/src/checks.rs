//! The static checks, one file per rule: each holds the rule's messages, help and fixes
//! (and, for whole-pack rules, the rule itself). The checker walk calls into them.

pub mod approvals;
pub mod arguments;
pub mod budget;
pub mod builtins;
pub mod cycles;
pub mod duplicates;
pub mod egress;
pub mod evals;
pub mod interpolation;
pub mod item_placement;
pub mod language_version;
pub mod layout;
pub mod map_over_non_list;
pub mod missing_flow;
pub mod model_egress;
pub mod operators;
pub mod properties;
pub mod providers;
pub mod redaction;
pub mod request_host;
pub mod review_bound;
pub mod secrets;
pub mod tool_scope;
pub mod type_mismatch;
pub mod unknown_field;
pub mod unknown_module;
pub mod unknown_name;
pub mod unknown_tool;
pub mod unknown_type;
pub mod unused;
pub mod value_range;
pub mod wrong_kind;

use dsl_syntax::{Diagnostic, Span, TextEdit};

use crate::suggest::did_you_mean;

/// A replacement edit.
pub(crate) fn replace(span: Span, new_text: impl Into<String>) -> TextEdit {
    TextEdit {
        span,
        new_text: new_text.into(),
    }
}

/// Adds "did you mean `x`?" (help and fix) when a candidate is close to `name`.
pub(crate) fn with_suggestion<'c>(
    diagnostic: Diagnostic,
    name: &str,
    span: Span,
    candidates: impl IntoIterator<Item = &'c str>,
) -> (Diagnostic, bool) {
    with_suggested(diagnostic, span, did_you_mean(name, candidates))
}

/// `diagnostic` with "did you mean `best`?" and its fix, when there is a `best`; whether
/// there was.
pub(crate) fn with_suggested(
    diagnostic: Diagnostic,
    span: Span,
    best: Option<&str>,
) -> (Diagnostic, bool) {
    match best {
        Some(best) => (
            diagnostic
                .with_help(format!("did you mean `{best}`?"))
                .with_fix(format!("replace with `{best}`"), vec![replace(span, best)]),
            true,
        ),
        None => (diagnostic, false),
    }
}

/// [`with_suggestion`], and when nothing is close enough, the help line `help` instead.
pub(crate) fn suggest_or_help<'c>(
    diagnostic: Diagnostic,
    name: &str,
    span: Span,
    candidates: impl IntoIterator<Item = &'c str>,
    help: impl FnOnce() -> String,
) -> Diagnostic {
    match with_suggestion(diagnostic, name, span, candidates) {
        (diagnostic, true) => diagnostic,
        (diagnostic, false) => diagnostic.with_help(help()),
    }
}

/// A short, comma-separated list of names for help lines (at most 12 shown).
pub(crate) fn name_list<'n>(names: impl IntoIterator<Item = &'n str>) -> String {
    let names: Vec<&str> = names.into_iter().collect();
    let shown: Vec<String> = names.iter().take(12).map(|n| format!("`{n}`")).collect();
    let mut text = shown.join(", ");
    if names.len() > 12 {
        text.push_str(&format!(" and {} more", names.len() - 12));
    }
    text
}

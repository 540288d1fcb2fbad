//! GX0206 (a property the block does not take) and GX0307 (a required property missing).

use crate::fast_hash::FastMap;

use dsl_syntax::ast::Prop;
use dsl_syntax::{Diagnostic, Span};

use super::{name_list, with_suggestion};
use crate::checker::Checker;

/// Properties of a `tool` block.
pub const TOOL_PROPS: &[&str] = &[
    "scope",
    "hosts",
    "request",
    "builtin",
    "sim",
    "sim_latency",
    "timeout",
    "retry",
    "backoff",
];
/// Properties of a tool's `request` record.
pub const REQUEST_PROPS: &[&str] = &["method", "url", "headers", "query", "body"];
/// Properties of a `model` block.
pub const MODEL_PROPS: &[&str] = &[
    "temperature",
    "max_tokens",
    "fallback",
    "retry",
    "backoff",
    "timeout",
    "api_key",
    "price",
    "sim_latency",
];
/// Properties of a `knowledge` block.
pub const KNOWLEDGE_PROPS: &[&str] = &["description", "chunk_size", "top_k", "refresh"];
/// Properties of an `agent` block.
pub const AGENT_PROPS: &[&str] = &["model", "instructions", "tools", "knowledge"];
/// Properties of `ask` and `route`.
pub const ASK_PROPS: &[&str] = &["prompt", "cite", "instructions"];

/// The known properties of a block, by name, in source order.
#[derive(Debug, Default)]
pub(crate) struct PropTable<'a> {
    entries: Vec<(&'a str, &'a Prop)>,
}

impl<'a> PropTable<'a> {
    /// The property named `key`.
    pub fn get(&self, key: &str) -> Option<&'a Prop> {
        self.entries
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, p)| *p)
    }

    /// The properties in source order.
    pub fn iter(&self) -> impl Iterator<Item = &(&'a str, &'a Prop)> {
        self.entries.iter()
    }
}

/// Reports unknown and duplicate properties; returns the known ones.
pub(crate) fn check_props<'a>(
    checker: &mut Checker<'a>,
    props: &'a [Prop],
    allowed: &[&'static str],
    block: &str,
) -> PropTable<'a> {
    let mut seen: FastMap<&str, Span> = FastMap::default();
    let mut table = PropTable::default();
    for prop in props {
        if !super::duplicates::check(checker, &mut seen, &prop.key, "property") {
            continue;
        }
        if allowed.contains(&prop.key.name.as_str()) {
            table.entries.push((prop.key.name.as_str(), prop));
            continue;
        }
        let diagnostic = Diagnostic::error(
            "GX0206",
            prop.key.span,
            format!("unknown property `{}` in {block}", prop.key.name),
        );
        let (diagnostic, _) = with_suggestion(
            diagnostic,
            &prop.key.name,
            prop.key.span,
            allowed.iter().copied(),
        );
        let diagnostic = match diagnostic.help.clone() {
            Some(help) => diagnostic.with_help(format!(
                "{help} ({block} takes {})",
                name_list(allowed.iter().copied())
            )),
            None => diagnostic.with_help(format!(
                "{block} takes {}",
                name_list(allowed.iter().copied())
            )),
        };
        checker.report(diagnostic);
        checker.infer(&prop.value);
    }
    table
}

/// GX0307: `block name` lacks the required property `prop`.
pub(crate) fn missing(
    checker: &mut Checker<'_>,
    span: Span,
    block: &str,
    name: &str,
    prop: &str,
    example: &str,
) {
    let subject = if name.is_empty() {
        block.to_string()
    } else {
        format!("{block} `{name}`")
    };
    checker.report(
        Diagnostic::error(
            "GX0307",
            span,
            format!("{subject} is missing the required property `{prop}`"),
        )
        .with_help(format!("add `{example}`")),
    );
}

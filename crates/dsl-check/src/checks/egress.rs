//! GX0402: a tool the pack uses reaches a host that the egress allowlist does not include.
//! Only packs with an `egress allow [...]` rule are checked; tools without `hosts` (such as
//! `web.fetch`, whose host is its argument) are checked at run time instead.

use crate::fast_hash::{FastMap, FastSet};
use std::sync::Arc;

use dsl_syntax::{Diagnostic, Span};

use super::replace;
use crate::checker::Checker;
use crate::program::ToolInfo;

/// Runs the rule over the tools called in the flow and listed in agents.
pub(crate) fn check(checker: &mut Checker<'_>) {
    if checker.policy.egress.is_none() {
        return;
    }
    let by_key: FastMap<String, Arc<ToolInfo>> = checker
        .own_tools
        .iter()
        .chain(checker.program.tools.iter())
        .map(|t| (t.key(), t.clone()))
        .collect();
    let uses: Vec<(String, Span)> = checker
        .program
        .flow_tool_uses
        .iter()
        .chain(checker.program.agent_tool_uses.iter())
        .cloned()
        .collect();
    let mut reported: FastSet<(String, String)> = FastSet::default();
    for (key, span) in uses {
        let Some(tool) = by_key.get(&key) else {
            continue;
        };
        for host in &tool.hosts {
            if checker.policy.allows_host(host) || !reported.insert((key.clone(), host.clone())) {
                continue;
            }
            let diagnostic = Diagnostic::error(
                "GX0402",
                span,
                format!("tool `{key}` reaches host `{host}`, which the egress allowlist does not include"),
            )
            .with_help(format!("`{key}` reaches {}; add \"{host}\" to `egress allow`", tool.hosts.iter().map(|h| format!("\"{h}\"")).collect::<Vec<_>>().join(", ")));
            let diagnostic = with_allow_fix(checker, diagnostic, host);
            checker.report(diagnostic);
        }
    }
}

/// Labels the egress allowlist and adds the fix that allows `host` in it.
pub(crate) fn with_allow_fix(
    checker: &Checker<'_>,
    mut diagnostic: Diagnostic,
    host: &str,
) -> Diagnostic {
    if let Some((list, last)) = checker.policy.egress_list {
        diagnostic = diagnostic.with_label(list, "the egress allowlist");
        let edit = match last {
            Some(last) => replace(Span::empty(last.end as usize), format!(", \"{host}\"")),
            None => replace(
                Span::empty(list.end.saturating_sub(1) as usize),
                format!("\"{host}\""),
            ),
        };
        diagnostic = diagnostic.with_fix(format!("allow `{host}`"), vec![edit]);
    }
    diagnostic
}

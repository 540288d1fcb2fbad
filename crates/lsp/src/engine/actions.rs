//! Code actions: each diagnostic's machine-applicable fix (`Diagnostic::fix`) as a quick fix.

use std::collections::HashMap;

use tower_lsp_server::ls_types as lsp;

use super::Snapshot;
use crate::to_proto;

fn overlaps(a: lsp::Range, b: lsp::Range) -> bool {
    let before = |x: lsp::Position, y: lsp::Position| (x.line, x.character) < (y.line, y.character);
    !before(a.end, b.start) && !before(b.end, a.start)
}

/// The quick fixes of the diagnostics that touch `range`.
pub(crate) fn code_actions(snapshot: &Snapshot<'_>, range: lsp::Range) -> Vec<lsp::CodeAction> {
    let mut out = Vec::new();
    for diagnostic in &snapshot.analysis.diagnostics {
        let Some(fix) = &diagnostic.fix else {
            continue;
        };
        let proto = to_proto::diagnostic(snapshot.uri, snapshot.doc, diagnostic);
        if !overlaps(proto.range, range) {
            continue;
        }
        let mut changes = HashMap::new();
        changes.insert(
            snapshot.uri.clone(),
            to_proto::text_edits(snapshot.doc, &fix.edits),
        );
        out.push(lsp::CodeAction {
            title: fix.title.clone(),
            kind: Some(lsp::CodeActionKind::QUICKFIX),
            diagnostics: Some(vec![proto]),
            edit: Some(lsp::WorkspaceEdit {
                changes: Some(changes),
                document_changes: None,
                change_annotations: None,
            }),
            command: None,
            is_preferred: Some(true),
            disabled: None,
            data: None,
        });
    }
    out
}

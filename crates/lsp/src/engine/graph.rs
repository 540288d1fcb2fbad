//! The custom requests `galaxy/graph` and `galaxy/graphEdit`: the document seen as a graph
//! (from the cached analysis), and graph operations answered as one versioned
//! `TextDocumentEdit` of minimal text edits.

use dsl_check::graph::{GraphEdit, IdChange};
use serde::Serialize;
use tower_lsp_server::ls_types as lsp;

use super::Document;

/// The answer to `galaxy/graphEdit`: the edit for the client to apply, and the ids each op
/// created, renamed or deleted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GraphEditResponse {
    /// Exactly one versioned `TextDocumentEdit` (in `documentChanges`) of minimal edits.
    pub edit: lsp::WorkspaceEdit,
    /// One entry per op that created, renamed or deleted ids.
    pub changed: Vec<IdChange>,
}

/// Converts the checker's byte-range edits into the LSP edit against `doc` at its version.
pub(crate) fn response(uri: &lsp::Uri, doc: &Document, edit: GraphEdit) -> GraphEditResponse {
    let edits = crate::to_proto::text_edits(doc, &edit.edits)
        .into_iter()
        .map(lsp::OneOf::Left)
        .collect();
    let document_edit = lsp::TextDocumentEdit {
        text_document: lsp::OptionalVersionedTextDocumentIdentifier {
            uri: uri.clone(),
            version: Some(doc.version),
        },
        edits,
    };
    GraphEditResponse {
        edit: lsp::WorkspaceEdit {
            changes: None,
            document_changes: Some(lsp::DocumentChanges::Edits(vec![document_edit])),
            change_annotations: None,
        },
        changed: edit.changed,
    }
}

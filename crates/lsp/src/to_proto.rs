//! Conversion of the toolchain's plain values to LSP values: the one place where a
//! `dsl_syntax::Diagnostic` becomes an LSP diagnostic.

use dsl_syntax::Severity;
use tower_lsp_server::ls_types as lsp;

use crate::engine::Document;

/// The `source` of every diagnostic the server publishes.
pub(crate) const SOURCE: &str = "galaxy";

/// Converts one diagnostic: same code, message and range as `galaxy check`; labels (and the
/// help line) become related information.
pub(crate) fn diagnostic(
    uri: &lsp::Uri,
    doc: &Document,
    diagnostic: &dsl_syntax::Diagnostic,
) -> lsp::Diagnostic {
    let mut related: Vec<lsp::DiagnosticRelatedInformation> = diagnostic
        .labels
        .iter()
        .map(|label| lsp::DiagnosticRelatedInformation {
            location: lsp::Location {
                uri: uri.clone(),
                range: doc.range(label.span),
            },
            message: label.message.clone(),
        })
        .collect();
    if let Some(help) = &diagnostic.help {
        related.push(lsp::DiagnosticRelatedInformation {
            location: lsp::Location {
                uri: uri.clone(),
                range: doc.range(diagnostic.span),
            },
            message: format!("help: {help}"),
        });
    }
    lsp::Diagnostic {
        range: doc.range(diagnostic.span),
        severity: Some(match diagnostic.severity {
            Severity::Error => lsp::DiagnosticSeverity::ERROR,
            Severity::Warning => lsp::DiagnosticSeverity::WARNING,
        }),
        code: Some(lsp::NumberOrString::String(diagnostic.code.to_string())),
        code_description: None,
        source: Some(SOURCE.to_string()),
        message: diagnostic.message.clone(),
        related_information: (!related.is_empty()).then_some(related),
        tags: None,
        data: None,
    }
}

/// Converts the edits of a fix.
pub(crate) fn text_edits(doc: &Document, edits: &[dsl_syntax::TextEdit]) -> Vec<lsp::TextEdit> {
    edits
        .iter()
        .map(|edit| lsp::TextEdit {
            range: doc.range(edit.span),
            new_text: edit.new_text.clone(),
        })
        .collect()
}

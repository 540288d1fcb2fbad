//! Plain-text rendering of diagnostics (no colour), for snapshots, logs and pipes. The CLI
//! renders richer reports with its own renderer.

use std::fmt::Write as _;

use crate::{Diagnostic, LineIndex, Severity, Span};

fn location(source: &str, index: &LineIndex, span: Span) -> (usize, usize) {
    let pos = index.line_col(source, span.start);
    (pos.line as usize + 1, pos.character as usize + 1)
}

fn excerpt(out: &mut String, source: &str, index: &LineIndex, span: Span, note: &str) {
    let (line, column) = location(source, index, span);
    let start = index.offset(
        source,
        crate::LineCol {
            line: (line - 1) as u32,
            character: 0,
        },
    ) as usize;
    let rest = source.get(start..).unwrap_or("");
    let text = rest.split('\n').next().unwrap_or("").trim_end_matches('\r');
    let width = span
        .text(source)
        .lines()
        .next()
        .map(|l| l.chars().count())
        .unwrap_or(0)
        .max(1);
    let width = width.min(text.chars().count().saturating_sub(column - 1).max(1));
    let _ = writeln!(out, "  {line:>4} | {text}");
    let pad: String = text
        .chars()
        .take(column - 1)
        .map(|c| if c == '\t' { '\t' } else { ' ' })
        .collect();
    let carets = "^".repeat(width);
    if note.is_empty() {
        let _ = writeln!(out, "       | {pad}{carets}");
    } else {
        let _ = writeln!(out, "       | {pad}{carets} {note}");
    }
}

/// Renders diagnostics as plain text: code, severity, message, `line:col`, the source line
/// with carets, labels, help and fix titles.
pub fn plain(source: &str, diagnostics: &[Diagnostic]) -> String {
    let index = LineIndex::new(source);
    let mut out = String::new();
    for diagnostic in diagnostics {
        let severity = match diagnostic.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let (line, column) = location(source, &index, diagnostic.span);
        let _ = writeln!(
            out,
            "{severity}[{}]: {}",
            diagnostic.code, diagnostic.message
        );
        let _ = writeln!(out, "  --> {line}:{column}");
        excerpt(&mut out, source, &index, diagnostic.span, "");
        for label in &diagnostic.labels {
            excerpt(&mut out, source, &index, label.span, &label.message);
        }
        if let Some(help) = &diagnostic.help {
            let _ = writeln!(out, "  help: {help}");
        }
        if let Some(fix) = &diagnostic.fix {
            let _ = writeln!(out, "  fix: {}", fix.title);
        }
        out.push('\n');
    }
    out
}

//! Helpers shared by the syntax tests: rendering diagnostics as plain text for snapshots.

use dsl_syntax::{Diagnostic, LineIndex};

/// Renders diagnostics as `line:col code severity: message` plus the source line and carets.
pub fn render(source: &str, diagnostics: &[Diagnostic]) -> String {
    let index = LineIndex::new(source);
    let mut out = String::new();
    for d in diagnostics {
        let start = index.line_col(source, d.span.start);
        out.push_str(&format!(
            "{}:{} {} {:?}: {}\n",
            start.line + 1,
            start.character + 1,
            d.code,
            d.severity,
            d.message
        ));
        let line = source.lines().nth(start.line as usize).unwrap_or("");
        out.push_str(&format!("  | {line}\n"));
        let width = d.span.len().max(1) as usize;
        let width = width.min(line.len().saturating_sub(start.character as usize).max(1));
        out.push_str(&format!(
            "  | {}{}\n",
            " ".repeat(start.character as usize),
            "^".repeat(width)
        ));
        if let Some(help) = &d.help {
            out.push_str(&format!("  = help: {help}\n"));
        }
    }
    out
}

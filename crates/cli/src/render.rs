//! Rendering diagnostics at the edge: ariadne for people, JSON for machines.

use std::io::Write;

use ariadne::{Color, Config, IndexType, Label, Report, ReportKind, Source};
use dsl_syntax::{Diagnostic, LineIndex, Severity, Span};
use serde::Serialize;

/// Renders `diagnostics` of one file for a person. Colour only when `color` is set.
pub fn human(
    path: &str,
    source: &str,
    diagnostics: &[Diagnostic],
    color: bool,
    out: &mut impl Write,
) {
    for diagnostic in diagnostics {
        let kind = match diagnostic.severity {
            Severity::Error => ReportKind::Error,
            Severity::Warning => ReportKind::Warning,
        };
        let range = clamp(diagnostic.span, source);
        let mut report = Report::build(kind, (path, range.clone()))
            .with_config(
                Config::default()
                    .with_color(color)
                    .with_index_type(IndexType::Byte),
            )
            .with_code(diagnostic.code)
            .with_message(&diagnostic.message)
            .with_label(
                Label::new((path, range))
                    .with_color(Color::Red)
                    .with_message(&diagnostic.message),
            );
        for label in &diagnostic.labels {
            report = report.with_label(
                Label::new((path, clamp(label.span, source)))
                    .with_color(Color::Blue)
                    .with_message(&label.message),
            );
        }
        if let Some(help) = &diagnostic.help {
            report = report.with_help(help);
        }
        let _ = report
            .finish()
            .write((path, Source::from(source)), &mut *out);
    }
}

fn clamp(span: Span, source: &str) -> std::ops::Range<usize> {
    let end = (span.end as usize).min(source.len());
    let start = (span.start as usize).min(end);
    start..end
}

/// A 0-based line/character range, as editors count.
#[derive(Serialize)]
pub struct JsonRange {
    start: JsonPosition,
    end: JsonPosition,
}

/// A 0-based line and UTF-16 character.
#[derive(Serialize)]
pub struct JsonPosition {
    line: u32,
    character: u32,
}

/// A secondary label in JSON output.
#[derive(Serialize)]
pub struct JsonLabel {
    message: String,
    range: JsonRange,
    byte_range: [u32; 2],
}

/// One diagnostic in `--format json` output.
#[derive(Serialize)]
pub struct JsonDiagnostic {
    file: String,
    severity: Severity,
    code: &'static str,
    message: String,
    range: JsonRange,
    byte_range: [u32; 2],
    labels: Vec<JsonLabel>,
    help: Option<String>,
}

/// Converts the diagnostics of one file for JSON output.
pub fn json(path: &str, source: &str, diagnostics: &[Diagnostic]) -> Vec<JsonDiagnostic> {
    let index = LineIndex::new(source);
    let range = |span: Span| {
        let start = index.line_col(source, span.start);
        let end = index.line_col(source, span.end);
        JsonRange {
            start: JsonPosition {
                line: start.line,
                character: start.character,
            },
            end: JsonPosition {
                line: end.line,
                character: end.character,
            },
        }
    };
    diagnostics
        .iter()
        .map(|d| JsonDiagnostic {
            file: path.to_string(),
            severity: d.severity,
            code: d.code,
            message: d.message.clone(),
            range: range(d.span),
            byte_range: [d.span.start, d.span.end],
            labels: d
                .labels
                .iter()
                .map(|l| JsonLabel {
                    message: l.message.clone(),
                    range: range(l.span),
                    byte_range: [l.span.start, l.span.end],
                })
                .collect(),
            help: d.help.clone(),
        })
        .collect()
}

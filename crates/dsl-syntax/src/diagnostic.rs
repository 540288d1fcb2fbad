//! The one plain diagnostic type every stage reports with; rendering happens at the edges.

use serde::Serialize;

use crate::span::Span;

/// The syntax diagnostic codes (the lexer's and the parser's), with a one-line summary each.
/// `grammar.md` documents each with an example; every one has a case under
/// `tests/data/parser/err`.
pub const SYNTAX_CODES: &[(&str, &str)] = &[
    ("GX0001", "unexpected token"),
    ("GX0002", "unterminated string or text block"),
    ("GX0003", "invalid character"),
    ("GX0004", "nesting too deep"),
    (
        "GX0005",
        "invalid literal: unknown escape or number out of range",
    ),
];

/// How serious a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Blocks checking, planning and running.
    Error,
    /// Worth fixing; fails `galaxy check --deny-warnings`.
    Warning,
}

/// A secondary location with a note.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Label {
    /// Where.
    pub span: Span,
    /// What to say there.
    pub message: String,
}

/// A text replacement that fixes (part of) a diagnostic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TextEdit {
    /// The bytes replaced (empty for an insertion).
    pub span: Span,
    /// The new text.
    pub new_text: String,
}

/// A suggested fix: a title and the edits that make it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fix {
    /// What the fix does, e.g. "add `approve destructive` to the policy".
    pub title: String,
    /// The edits, in the same file, non-overlapping.
    pub edits: Vec<TextEdit>,
}

/// One problem found in one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// Stable code such as `GX0201`; documented in `grammar.md`.
    pub code: &'static str,
    /// Error or warning.
    pub severity: Severity,
    /// Lowercase, no final dot.
    pub message: String,
    /// The primary location.
    pub span: Span,
    /// Secondary locations.
    pub labels: Vec<Label>,
    /// A help line, if any.
    pub help: Option<String>,
    /// A machine-applicable fix, if any.
    pub fix: Option<Fix>,
}

impl Diagnostic {
    /// A new error.
    pub fn error(code: &'static str, span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            code,
            severity: Severity::Error,
            message: message.into(),
            span,
            labels: Vec::new(),
            help: None,
            fix: None,
        }
    }

    /// A new warning.
    pub fn warning(code: &'static str, span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(code, span, message)
        }
    }

    /// Adds a secondary label.
    pub fn with_label(mut self, span: Span, message: impl Into<String>) -> Diagnostic {
        self.labels.push(Label {
            span,
            message: message.into(),
        });
        self
    }

    /// Sets the help line.
    pub fn with_help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }

    /// Sets the fix.
    pub fn with_fix(mut self, title: impl Into<String>, edits: Vec<TextEdit>) -> Diagnostic {
        self.fix = Some(Fix {
            title: title.into(),
            edits,
        });
        self
    }

    /// Whether this is an error.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

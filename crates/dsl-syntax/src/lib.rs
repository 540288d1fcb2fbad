//! The Pack language's syntax: tokens, the syntax tree, the parser and the formatter.
//!
//! This crate does no I/O. [`parse`] never fails: it returns a tree and the syntax errors
//! it recovered from, so one broken step never hides the next.

#![deny(clippy::unwrap_used, clippy::indexing_slicing, clippy::unimplemented)]

pub mod ast;
pub mod diagnostic;
pub mod format;
pub mod lexer;
pub mod mutate;
mod parser;
pub mod render;
pub mod span;
mod strings;

pub use diagnostic::{Diagnostic, Fix, Label, SYNTAX_CODES, Severity, TextEdit};
pub use lexer::{Token, TokenKind};
pub use parser::{EVAL_KEYWORDS, ITEM_KEYWORDS, MAX_NESTING, META_KEYS, POLICY_KEYWORDS, RESERVED};
pub use span::{LineCol, LineIndex, Span};

/// The result of parsing one file: always a tree, plus the errors recovered from.
#[derive(Debug, Clone)]
pub struct Parse {
    /// The syntax tree.
    pub file: ast::SourceFile,
    /// Every token of the input, trivia included, in order; together they cover every byte.
    pub tokens: Vec<Token>,
    /// Syntax errors, in source order.
    pub errors: Vec<Diagnostic>,
}

/// Parses `source` into a syntax tree. Never panics and never fails.
pub fn parse(source: &str) -> Parse {
    parser::parse(source)
}

/// The two parsers side by side, for the differential tests: the fast path's tree
/// (`None` where it gives up) and the reporting grammar's tree and its own errors (not the
/// lexer's). Not a stable API.
#[doc(hidden)]
pub fn parse_both(source: &str) -> (Option<ast::SourceFile>, ast::SourceFile, Vec<Diagnostic>) {
    parser::parse_both(source)
}

impl Parse {
    /// Prints the file back from its tokens: always the exact input bytes.
    pub fn print(&self, source: &str) -> String {
        let mut out = String::with_capacity(source.len());
        for token in &self.tokens {
            out.push_str(token.span.text(source));
        }
        out
    }

    /// The doc comment (`///` lines) directly above the construct that starts at `span`,
    /// without the slashes; `None` when there is none.
    pub fn doc_comment(&self, source: &str, span: Span) -> Option<String> {
        let index = self.tokens.partition_point(|t| t.span.start < span.start);
        let mut lines = Vec::new();
        for token in self.tokens.get(..index)?.iter().rev() {
            match token.kind {
                TokenKind::DocComment => {
                    let text = token.span.text(source);
                    let text = text.strip_prefix("///").unwrap_or(text);
                    lines.push(text.strip_prefix(' ').unwrap_or(text).trim_end());
                }
                TokenKind::Whitespace if token.span.text(source).matches('\n').count() <= 1 => {}
                _ => break,
            }
        }
        if lines.is_empty() {
            return None;
        }
        lines.reverse();
        Some(lines.join("\n"))
    }

    /// Whether any syntax error was found.
    pub fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }
}

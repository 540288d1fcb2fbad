//! Semantic tokens: literals and comments from the lexer, names classified by what the
//! checker resolved them to, contextual keywords by position.

use dsl_check::program::SymbolKind;
use dsl_syntax::TokenKind;
use tower_lsp_server::ls_types as lsp;

use super::Snapshot;

/// The token types of the legend, in index order.
pub const SEMANTIC_TOKEN_TYPES: &[lsp::SemanticTokenType] = &[
    lsp::SemanticTokenType::KEYWORD,
    lsp::SemanticTokenType::TYPE,
    lsp::SemanticTokenType::FUNCTION,
    lsp::SemanticTokenType::VARIABLE,
    lsp::SemanticTokenType::PROPERTY,
    lsp::SemanticTokenType::PARAMETER,
    lsp::SemanticTokenType::STRING,
    lsp::SemanticTokenType::NUMBER,
    lsp::SemanticTokenType::COMMENT,
    lsp::SemanticTokenType::OPERATOR,
    lsp::SemanticTokenType::NAMESPACE,
    lsp::SemanticTokenType::CLASS,
    lsp::SemanticTokenType::ENUM_MEMBER,
];

/// The token modifiers of the legend, in bit order.
pub const SEMANTIC_TOKEN_MODIFIERS: &[lsp::SemanticTokenModifier] = &[
    lsp::SemanticTokenModifier::DECLARATION,
    lsp::SemanticTokenModifier::DOCUMENTATION,
    lsp::SemanticTokenModifier::DEFAULT_LIBRARY,
];

const KEYWORD: u32 = 0;
const TYPE: u32 = 1;
const FUNCTION: u32 = 2;
const VARIABLE: u32 = 3;
const PROPERTY: u32 = 4;
const PARAMETER: u32 = 5;
const STRING: u32 = 6;
const NUMBER: u32 = 7;
const COMMENT: u32 = 8;
const OPERATOR: u32 = 9;
const NAMESPACE: u32 = 10;
const CLASS: u32 = 11;
const ENUM_MEMBER: u32 = 12;

const DECLARATION: u32 = 1;
const DOCUMENTATION: u32 = 2;
const DEFAULT_LIBRARY: u32 = 4;

/// Words that are keywords where the grammar expects them.
const KEYWORDS: &[&str] = &[
    "pack",
    "module",
    "use",
    "as",
    "input",
    "type",
    "model",
    "knowledge",
    "agent",
    "tool",
    "flow",
    "step",
    "ask",
    "map",
    "in",
    "where",
    "concurrency",
    "when",
    "else",
    "route",
    "to",
    "review",
    "by",
    "until",
    "max",
    "approve",
    "policy",
    "auto",
    "egress",
    "allow",
    "redact",
    "before",
    "budget",
    "per",
    "rate",
    "outcome",
    "success",
    "kpi",
    "target",
    "eval",
    "mock",
    "returns",
    "expect",
    "reject",
    "layout",
    "title",
    "version",
    "description",
    "owner",
    "tags",
    "language",
    "true",
    "false",
    "none",
    "and",
    "or",
    "not",
    "std",
];

fn classify(kind: SymbolKind) -> u32 {
    match kind {
        SymbolKind::Type => TYPE,
        SymbolKind::Tool | SymbolKind::Builtin => FUNCTION,
        SymbolKind::Step | SymbolKind::LoopVar | SymbolKind::Critique | SymbolKind::Kpi => VARIABLE,
        SymbolKind::Field | SymbolKind::Input => PROPERTY,
        SymbolKind::Param => PARAMETER,
        SymbolKind::Module => NAMESPACE,
        SymbolKind::Agent | SymbolKind::Model => CLASS,
        SymbolKind::Knowledge => ENUM_MEMBER,
    }
}

/// The semantic tokens of the whole document (multi-line tokens split per line).
pub(crate) fn semantic_tokens(snapshot: &Snapshot<'_>) -> lsp::SemanticTokens {
    let analysis = &snapshot.analysis;
    let source = snapshot.text();
    let resolutions = &analysis.program.resolutions;
    let tokens = &analysis.parse.tokens;
    let mut data = Vec::new();
    let (mut last_line, mut last_start) = (0u32, 0u32);
    let mut push = |span: dsl_syntax::Span, token_type: u32, modifiers: u32| {
        // Split at line breaks: one LSP token per line.
        let text = span.text(source);
        let mut offset = span.start;
        for piece in text.split('\n') {
            let length = piece.trim_end_matches('\r').encode_utf16().count() as u32;
            if length > 0 {
                let position = snapshot.doc.position(offset);
                let delta_line = position.line - last_line;
                let delta_start = if delta_line == 0 {
                    position.character - last_start
                } else {
                    position.character
                };
                data.push(lsp::SemanticToken {
                    delta_line,
                    delta_start,
                    length,
                    token_type,
                    token_modifiers_bitset: modifiers,
                });
                last_line = position.line;
                last_start = position.character;
            }
            offset += piece.len() as u32 + 1;
        }
    };
    for (i, token) in tokens.iter().enumerate() {
        let (token_type, modifiers) = match token.kind {
            TokenKind::Whitespace | TokenKind::Error => continue,
            TokenKind::LineComment => (COMMENT, 0),
            TokenKind::DocComment => (COMMENT, DOCUMENTATION),
            TokenKind::String
            | TokenKind::TextBlock
            | TokenKind::UnterminatedString
            | TokenKind::UnterminatedTextBlock
            | TokenKind::StrOpen
            | TokenKind::StrText
            | TokenKind::StrClose => (STRING, 0),
            TokenKind::Int | TokenKind::Float | TokenKind::Duration | TokenKind::Money => {
                (NUMBER, 0)
            }
            TokenKind::Arrow
            | TokenKind::EqEq
            | TokenKind::NotEq
            | TokenKind::Lt
            | TokenKind::LtEq
            | TokenKind::Gt
            | TokenKind::GtEq
            | TokenKind::Plus
            | TokenKind::Minus
            | TokenKind::Star
            | TokenKind::Slash
            | TokenKind::Question
            | TokenKind::Pipe => (OPERATOR, 0),
            TokenKind::Ident => {
                let at = resolutions.partition_point(|r| r.span.start < token.span.start);
                let resolution = resolutions
                    .get(at..)
                    .unwrap_or(&[])
                    .iter()
                    .take_while(|r| r.span.start == token.span.start)
                    .find(|r| r.span == token.span);
                let text = token.span.text(source);
                match resolution {
                    Some(r) => {
                        let mut modifiers = if r.is_definition { DECLARATION } else { 0 };
                        if matches!(
                            r.def.as_ref().map(|d| &d.file),
                            Some(dsl_check::program::FileRef::Std(_))
                        ) || r.kind == SymbolKind::Builtin
                        {
                            modifiers |= DEFAULT_LIBRARY;
                        }
                        (classify(r.kind), modifiers)
                    }
                    None => {
                        let next = tokens
                            .get(i + 1..)
                            .unwrap_or(&[])
                            .iter()
                            .find(|t| !t.kind.is_trivia());
                        if next.is_some_and(|t| t.kind == TokenKind::Colon) {
                            (PROPERTY, 0)
                        } else if KEYWORDS.contains(&text) {
                            (KEYWORD, 0)
                        } else if text.starts_with(|c: char| c.is_ascii_uppercase()) {
                            (TYPE, 0)
                        } else {
                            continue;
                        }
                    }
                }
            }
            _ => continue,
        };
        push(token.span, token_type, modifiers);
    }
    lsp::SemanticTokens {
        result_id: None,
        data,
    }
}

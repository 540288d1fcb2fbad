//! The lexer: source text to a flat list of tokens that covers every byte, trivia included.

use logos::Logos;
use serde::Serialize;

use crate::diagnostic::Diagnostic;
use crate::span::Span;

/// The kinds of token. Trivia (whitespace and comments) are tokens too, so that the token
/// list reproduces the source exactly; [`TokenKind::is_trivia`] tells them apart.
#[derive(Logos, Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum TokenKind {
    /// Spaces, tabs and line breaks.
    #[regex(r"[ \t\r\n\f]+")]
    Whitespace,
    /// `// ...`
    #[regex(r"//[^\n]*", priority = 3, allow_greedy = true)]
    LineComment,
    /// `/// ...`
    #[regex(r"///[^\n]*", priority = 4, allow_greedy = true)]
    DocComment,
    /// A name or contextual keyword.
    #[regex(r"[A-Za-z_][A-Za-z0-9_]*")]
    Ident,
    /// `42`, `1_000`
    #[regex(r"[0-9][0-9_]*")]
    Int,
    /// `0.25`
    #[regex(r"[0-9][0-9_]*\.[0-9][0-9_]*")]
    Float,
    /// `500ms`, `24h`
    #[regex(r"[0-9][0-9_]*(ms|s|m|h|d)")]
    Duration,
    /// `0.50 usd`
    #[regex(r"[0-9][0-9_]*(\.[0-9][0-9_]*)?[ \t]*(usd|eur|gbp|jpy|chf|cad|aud|USD|EUR|GBP|JPY|CHF|CAD|AUD)")]
    Money,
    /// `"..."` on one line.
    #[regex(r#""([^"\\\n]|\\[^\n])*""#)]
    String,
    /// `"""..."""`, possibly over several lines.
    #[regex(r#""""([^"]|"[^"]|""[^"])*""""#)]
    TextBlock,
    /// A string whose closing quote is missing on its line.
    #[regex(r#""([^"\\\n]|\\[^\n])*"#, priority = 1)]
    UnterminatedString,
    /// A text block whose closing `"""` is missing.
    #[regex(r#""""([^"]|"[^"]|""[^"])*"#, priority = 1)]
    UnterminatedTextBlock,
    /// `{`
    #[token("{")]
    LBrace,
    /// `}`
    #[token("}")]
    RBrace,
    /// `(`
    #[token("(")]
    LParen,
    /// `)`
    #[token(")")]
    RParen,
    /// `[`
    #[token("[")]
    LBracket,
    /// `]`
    #[token("]")]
    RBracket,
    /// `,`
    #[token(",")]
    Comma,
    /// `:`
    #[token(":")]
    Colon,
    /// `.`
    #[token(".")]
    Dot,
    /// `=`
    #[token("=")]
    Eq,
    /// `->`
    #[token("->")]
    Arrow,
    /// `?`
    #[token("?")]
    Question,
    /// `|`
    #[token("|")]
    Pipe,
    /// `==`
    #[token("==")]
    EqEq,
    /// `!=`
    #[token("!=")]
    NotEq,
    /// `<`
    #[token("<")]
    Lt,
    /// `<=`
    #[token("<=")]
    LtEq,
    /// `>`
    #[token(">")]
    Gt,
    /// `>=`
    #[token(">=")]
    GtEq,
    /// `+`
    #[token("+")]
    Plus,
    /// `-`
    #[token("-")]
    Minus,
    /// `*`
    #[token("*")]
    Star,
    /// `/`
    #[token("/")]
    Slash,
    /// The opening `"` or `"""` of a string (produced when a string is split into parts).
    StrOpen,
    /// Literal text inside a string, escapes not yet resolved.
    StrText,
    /// The closing `"` or `"""` of a string; zero-width when the string is unterminated.
    StrClose,
    /// `{` opening an interpolation hole inside a string.
    HoleOpen,
    /// `}` closing an interpolation hole.
    HoleClose,
    /// Bytes that start no token.
    Error,
}

impl TokenKind {
    /// Whitespace and comments.
    pub fn is_trivia(self) -> bool {
        matches!(
            self,
            TokenKind::Whitespace | TokenKind::LineComment | TokenKind::DocComment
        )
    }

    /// Line and doc comments.
    pub fn is_comment(self) -> bool {
        matches!(self, TokenKind::LineComment | TokenKind::DocComment)
    }

    /// How the token kind is named in diagnostics.
    pub fn describe(self) -> &'static str {
        match self {
            TokenKind::Whitespace => "whitespace",
            TokenKind::LineComment | TokenKind::DocComment => "a comment",
            TokenKind::Ident => "a name",
            TokenKind::Int => "an integer",
            TokenKind::Float => "a number",
            TokenKind::Duration => "a duration",
            TokenKind::Money => "an amount of money",
            TokenKind::String | TokenKind::UnterminatedString => "a string",
            TokenKind::TextBlock | TokenKind::UnterminatedTextBlock => "a text block",
            TokenKind::LBrace => "`{`",
            TokenKind::RBrace => "`}`",
            TokenKind::LParen => "`(`",
            TokenKind::RParen => "`)`",
            TokenKind::LBracket => "`[`",
            TokenKind::RBracket => "`]`",
            TokenKind::Comma => "`,`",
            TokenKind::Colon => "`:`",
            TokenKind::Dot => "`.`",
            TokenKind::Eq => "`=`",
            TokenKind::Arrow => "`->`",
            TokenKind::Question => "`?`",
            TokenKind::Pipe => "`|`",
            TokenKind::EqEq => "`==`",
            TokenKind::NotEq => "`!=`",
            TokenKind::Lt => "`<`",
            TokenKind::LtEq => "`<=`",
            TokenKind::Gt => "`>`",
            TokenKind::GtEq => "`>=`",
            TokenKind::Plus => "`+`",
            TokenKind::Minus => "`-`",
            TokenKind::Star => "`*`",
            TokenKind::Slash => "`/`",
            TokenKind::StrOpen => "a string",
            TokenKind::StrText => "string text",
            TokenKind::StrClose => "the closing quote",
            TokenKind::HoleOpen => "`{`",
            TokenKind::HoleClose => "`}`",
            TokenKind::Error => "an invalid character",
        }
    }
}

/// One token: its kind and the bytes it covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Token {
    /// What the token is.
    pub kind: TokenKind,
    /// The bytes it covers.
    pub span: Span,
}

/// Splits `source` into tokens. The spans are contiguous and cover the whole input. Strings
/// come out split into [`TokenKind::StrOpen`], text, holes (whose contents are lexed as
/// ordinary tokens) and [`TokenKind::StrClose`]. Bytes that start no token become
/// [`TokenKind::Error`] tokens; they and unterminated strings are reported in the returned
/// diagnostics.
pub fn lex(source: &str) -> (Vec<Token>, Vec<Diagnostic>) {
    let mut out = Lexed {
        tokens: Vec::with_capacity(source.len() / 3),
        errors: Vec::new(),
    };
    lex_into(source, 0, &mut out);
    (out.tokens, out.errors)
}

struct Lexed {
    tokens: Vec<Token>,
    errors: Vec<Diagnostic>,
}

fn lex_into(source: &str, base: usize, out: &mut Lexed) {
    let mut lexer = TokenKind::lexer(source);
    while let Some(result) = lexer.next() {
        let range = lexer.span();
        let span = Span::new(base + range.start, base + range.end);
        let kind = result.unwrap_or(TokenKind::Error);
        match kind {
            TokenKind::String
            | TokenKind::TextBlock
            | TokenKind::UnterminatedString
            | TokenKind::UnterminatedTextBlock => split_string(lexer.slice(), kind, span, out),
            TokenKind::Error => {
                // Merge adjacent error bytes into one token so garbage stays cheap.
                if let Some(Token {
                    kind: TokenKind::Error,
                    span: last,
                }) = out.tokens.last_mut()
                    && last.end == span.start
                {
                    last.end = span.end;
                    if let Some(diagnostic) = out.errors.last_mut() {
                        diagnostic.span.end = span.end;
                    }
                    continue;
                }
                let text = lexer.slice();
                out.errors.push(
                    Diagnostic::error(
                        "GX0003",
                        span,
                        format!("invalid character `{}`", text.escape_debug()),
                    )
                    .with_help("remove it, or put it inside a string"),
                );
                out.tokens.push(Token { kind, span });
            }
            _ => out.tokens.push(Token { kind, span }),
        }
    }
}

/// Splits one string literal into open, text, hole and close tokens.
fn split_string(text: &str, kind: TokenKind, span: Span, out: &mut Lexed) {
    let start = span.start as usize;
    let block = matches!(
        kind,
        TokenKind::TextBlock | TokenKind::UnterminatedTextBlock
    );
    let terminated = matches!(kind, TokenKind::String | TokenKind::TextBlock);
    let quote_len = if block { 3 } else { 1 };
    let body_end = if terminated {
        text.len().saturating_sub(quote_len)
    } else {
        text.len()
    };
    let push = |out: &mut Lexed, kind, from: usize, to: usize| {
        out.tokens.push(Token {
            kind,
            span: Span::new(start + from, start + to),
        });
    };
    push(out, TokenKind::StrOpen, 0, quote_len.min(text.len()));
    let bytes = text.as_bytes();
    let mut i = quote_len;
    let mut text_start = i;
    while i < body_end {
        match bytes.get(i) {
            Some(b'\\') => i += 2,
            Some(b'{') => {
                if text_start < i {
                    push(out, TokenKind::StrText, text_start, i);
                }
                push(out, TokenKind::HoleOpen, i, i + 1);
                let hole_start = i + 1;
                let close = text
                    .get(hole_start..body_end)
                    .and_then(|rest| rest.find('}'))
                    .map(|offset| hole_start + offset);
                let hole_end = close.unwrap_or(body_end);
                if let Some(hole) = text.get(hole_start..hole_end) {
                    lex_into(hole, start + hole_start, out);
                }
                match close {
                    Some(close) => {
                        push(out, TokenKind::HoleClose, close, close + 1);
                        i = close + 1;
                    }
                    None => i = body_end,
                }
                text_start = i;
            }
            _ => i += 1,
        }
    }
    let i = i.min(body_end);
    if text_start < i {
        push(out, TokenKind::StrText, text_start, i);
    }
    if terminated {
        push(out, TokenKind::StrClose, body_end, text.len());
    } else {
        push(out, TokenKind::StrClose, text.len(), text.len());
        let (what, closing) = if block {
            ("text block", "\"\"\"")
        } else {
            ("string", "\"")
        };
        out.errors.push(
            Diagnostic::error(
                "GX0002",
                Span::new(start, start + quote_len),
                format!("unterminated {what}"),
            )
            .with_help(format!(
                "close it with `{closing}`{}",
                if block { "" } else { " on the same line" }
            )),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(source: &str) -> Vec<TokenKind> {
        lex(source).0.into_iter().map(|t| t.kind).collect()
    }

    #[test]
    fn literals_are_told_apart() {
        use TokenKind::*;
        assert_eq!(
            kinds("24h 500ms 0.50 usd 12 1.5 \"a\" x"),
            vec![
                Duration, Whitespace, Duration, Whitespace, Money, Whitespace, Int, Whitespace,
                Float, Whitespace, StrOpen, StrText, StrClose, Whitespace, Ident
            ]
        );
    }

    #[test]
    fn comments_and_text_blocks() {
        use TokenKind::*;
        assert_eq!(
            kinds("/// doc\n// c\n\"\"\"a\n\"b\"\n\"\"\""),
            vec![
                DocComment,
                Whitespace,
                LineComment,
                Whitespace,
                StrOpen,
                StrText,
                StrClose
            ]
        );
    }

    #[test]
    fn tokens_cover_every_byte() {
        let source = "pack é \u{0} \"open\n ### {]";
        let (tokens, errors) = lex(source);
        let mut end = 0;
        for token in &tokens {
            assert_eq!(token.span.start as usize, end);
            end = token.span.end as usize;
        }
        assert_eq!(end, source.len());
        let codes: Vec<_> = errors.iter().map(|e| e.code).collect();
        assert_eq!(codes, vec!["GX0003", "GX0003", "GX0002", "GX0003"]);
    }

    #[test]
    fn holes_are_lexed_as_tokens() {
        use TokenKind::*;
        assert_eq!(
            kinds("\"a {x.y} b\""),
            vec![
                StrOpen, StrText, HoleOpen, Ident, Dot, Ident, HoleClose, StrText, StrClose
            ]
        );
    }
}

//! The lexer: source text to a flat list of tokens that covers every byte, trivia included.

use logos::Logos;
use serde::Serialize;

use crate::span::Span;

/// The kinds of token. Trivia (whitespace and comments) are tokens too, so that the token
/// list reproduces the source exactly; [`TokenKind::is_trivia`] tells them apart.
#[derive(Logos, Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum TokenKind {
    /// Spaces, tabs and line breaks.
    #[regex(r"[ \t\r\n\f]+")]
    Whitespace,
    /// `// ...`
    #[regex(r"//[^\n]*", priority = 3)]
    LineComment,
    /// `/// ...`
    #[regex(r"///[^\n]*", priority = 4)]
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
    /// Bytes that start no token.
    Error,
}

impl TokenKind {
    /// Whitespace and comments.
    pub fn is_trivia(self) -> bool {
        matches!(self, TokenKind::Whitespace | TokenKind::LineComment | TokenKind::DocComment)
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

/// Splits `source` into tokens. The spans are contiguous and cover the whole input; bytes
/// that start no token become [`TokenKind::Error`] tokens (one per character).
pub fn lex(source: &str) -> Vec<Token> {
    let mut tokens = Vec::with_capacity(source.len() / 4);
    let mut lexer = TokenKind::lexer(source);
    while let Some(result) = lexer.next() {
        let range = lexer.span();
        let kind = result.unwrap_or(TokenKind::Error);
        // Merge adjacent error bytes into one token so garbage stays cheap.
        if kind == TokenKind::Error
            && let Some(last) = tokens.last_mut()
            && let Token { kind: TokenKind::Error, span } = last
            && span.end as usize == range.start
        {
            span.end = range.end as u32;
            continue;
        }
        tokens.push(Token { kind, span: Span::new(range.start, range.end) });
    }
    tokens
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(source: &str) -> Vec<TokenKind> {
        lex(source).into_iter().map(|t| t.kind).collect()
    }

    #[test]
    fn literals_are_told_apart() {
        use TokenKind::*;
        assert_eq!(
            kinds("24h 500ms 0.50 usd 12 1.5 \"a\" x"),
            vec![
                Duration, Whitespace, Duration, Whitespace, Money, Whitespace, Int, Whitespace,
                Float, Whitespace, String, Whitespace, Ident
            ]
        );
    }

    #[test]
    fn comments_and_text_blocks() {
        use TokenKind::*;
        assert_eq!(kinds("/// doc\n// c\n\"\"\"a\n\"b\"\n\"\"\""), vec![
            DocComment, Whitespace, LineComment, Whitespace, TextBlock
        ]);
    }

    #[test]
    fn tokens_cover_every_byte() {
        let source = "pack é \u{0} \"open\n ### {]";
        let tokens = lex(source);
        let mut end = 0;
        for token in &tokens {
            assert_eq!(token.span.start as usize, end);
            end = token.span.end as usize;
        }
        assert_eq!(end, source.len());
        assert!(tokens.iter().any(|t| t.kind == TokenKind::UnterminatedString));
        assert!(tokens.iter().any(|t| t.kind == TokenKind::Error));
    }
}

//! What surrounds the cursor, read from the token side table: the enclosing item, the call
//! the cursor is in, the dotted path before a `.`. Purely syntactic; what names mean comes
//! from the checker's `Program`.

use dsl_syntax::ast::{Item, SourceFile};
use dsl_syntax::{Token, TokenKind};

/// The significant (non-trivia) tokens that end at or before `offset`, in order.
pub(crate) fn tokens_before(tokens: &[Token], offset: u32) -> Vec<Token> {
    let end = tokens.partition_point(|t| t.span.end <= offset);
    tokens
        .get(..end)
        .unwrap_or(&[])
        .iter()
        .filter(|t| !t.kind.is_trivia())
        .copied()
        .collect()
}

/// The index of the significant token ending at or before `offset`, scanning at most this
/// many tokens back (a cursor context never needs more).
const SCAN_LIMIT: usize = 4096;

/// The last few significant tokens before `offset` (bounded), in order.
pub(crate) fn recent_tokens(tokens: &[Token], offset: u32) -> Vec<Token> {
    let end = tokens.partition_point(|t| t.span.end <= offset);
    let start = end.saturating_sub(SCAN_LIMIT);
    tokens_before(tokens.get(start..end).unwrap_or(&[]), offset)
}

/// The item whose span contains `offset`.
pub(crate) fn enclosing_item(file: &SourceFile, offset: u32) -> Option<&Item> {
    file.items
        .iter()
        .find(|item| item.span().start < offset && offset < item.span().end.max(1))
}

/// A call the cursor sits in: the callee's dotted name, the argument index and the names
/// of the named arguments already written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CallContext {
    /// `mail.send`, or `count`.
    pub(crate) callee: String,
    /// 0-based index of the argument under the cursor.
    pub(crate) arg_index: usize,
    /// The name of the argument under the cursor, when it is written `name: ...`.
    pub(crate) arg_name: Option<String>,
    /// Named arguments already written (other than the one under the cursor).
    pub(crate) given: Vec<String>,
    /// Whether the cursor is where an argument name may be written (right after `(` or `,`).
    pub(crate) at_arg_start: bool,
}

/// The innermost unclosed call before `offset`, if the cursor is inside one.
pub(crate) fn call_context(source: &str, tokens: &[Token], offset: u32) -> Option<CallContext> {
    let recent = recent_tokens(tokens, offset);
    let mut depth = 0usize;
    let mut open = None;
    for (i, token) in recent.iter().enumerate().rev() {
        match token.kind {
            TokenKind::RParen | TokenKind::RBracket | TokenKind::RBrace => depth += 1,
            TokenKind::LParen | TokenKind::LBracket | TokenKind::LBrace => {
                if depth > 0 {
                    depth -= 1;
                } else if token.kind == TokenKind::LParen {
                    open = Some(i);
                    break;
                } else if token.kind == TokenKind::LBrace {
                    // A block brace (after a name, `)` or a type) ends the search; a record
                    // literal (after `:`, `(`, `,`, `[`, `=`) is nested inside an argument.
                    let before = i.checked_sub(1).and_then(|j| recent.get(j)).map(|t| t.kind);
                    if !matches!(
                        before,
                        Some(
                            TokenKind::Colon
                                | TokenKind::LParen
                                | TokenKind::Comma
                                | TokenKind::LBracket
                        )
                    ) {
                        return None;
                    }
                }
            }
            _ => {}
        }
    }
    let open = open?;
    // The callee: `ident (. ident)*` right before the `(`.
    let mut parts = Vec::new();
    let mut j = open;
    while let Some(prev) = j.checked_sub(1).and_then(|k| recent.get(k)) {
        if prev.kind != TokenKind::Ident {
            break;
        }
        parts.push(prev.span.text(source).to_string());
        j -= 1;
        match j.checked_sub(1).and_then(|k| recent.get(k)) {
            Some(dot) if dot.kind == TokenKind::Dot => j -= 1,
            _ => break,
        }
    }
    if parts.is_empty() {
        return None;
    }
    parts.reverse();
    // Arguments between `(` and the cursor.
    let mut arg_index = 0;
    let mut depth = 0usize;
    let mut given = Vec::new();
    let mut current_name = None;
    let mut arg_start = true;
    let args = recent.get(open + 1..).unwrap_or(&[]);
    for (k, token) in args.iter().enumerate() {
        match token.kind {
            TokenKind::LParen | TokenKind::LBracket | TokenKind::LBrace => depth += 1,
            TokenKind::RParen | TokenKind::RBracket | TokenKind::RBrace => {
                depth = depth.saturating_sub(1)
            }
            TokenKind::Comma if depth == 0 => {
                arg_index += 1;
                if let Some(name) = current_name.take() {
                    given.push(name);
                }
                arg_start = true;
                continue;
            }
            TokenKind::Ident
                if depth == 0
                    && arg_start
                    && args.get(k + 1).is_some_and(|t| t.kind == TokenKind::Colon) =>
            {
                current_name = Some(token.span.text(source).to_string());
            }
            _ => {}
        }
        arg_start = false;
    }
    // A partly typed name under the cursor does not end the argument start.
    let at_arg_start = match args.last() {
        None => true,
        Some(last) => {
            last.kind == TokenKind::Comma
                || (last.kind == TokenKind::Ident
                    && last.span.end == offset
                    && args
                        .len()
                        .checked_sub(2)
                        .and_then(|k| args.get(k))
                        .is_none_or(|t| t.kind == TokenKind::Comma))
        }
    };
    Some(CallContext {
        callee: parts.join("."),
        arg_index,
        arg_name: current_name,
        given,
        at_arg_start,
    })
}

/// When the cursor follows `a.b.` (possibly with a partial name typed after the dot), the
/// path before the last dot: `["a", "b"]`.
pub(crate) fn dotted_path_before(
    source: &str,
    tokens: &[Token],
    offset: u32,
) -> Option<Vec<String>> {
    let recent = recent_tokens(tokens, offset);
    let mut i = recent.len();
    // Skip a partial name directly at the cursor.
    if let Some(last) = recent.last()
        && last.kind == TokenKind::Ident
        && last.span.end == offset
    {
        i -= 1;
    }
    let dot = recent.get(i.checked_sub(1)?)?;
    if dot.kind != TokenKind::Dot {
        return None;
    }
    i -= 1;
    let mut parts = Vec::new();
    while let Some(name) = i.checked_sub(1).and_then(|k| recent.get(k)) {
        if name.kind != TokenKind::Ident {
            break;
        }
        parts.push(name.span.text(source).to_string());
        i -= 1;
        match i.checked_sub(1).and_then(|k| recent.get(k)) {
            Some(dot) if dot.kind == TokenKind::Dot => i -= 1,
            _ => break,
        }
    }
    if parts.is_empty() {
        return None;
    }
    parts.reverse();
    Some(parts)
}

/// The significant token right before `offset`, skipping a partial name at the cursor.
pub(crate) fn previous_token(tokens: &[Token], offset: u32) -> Option<Token> {
    let recent = recent_tokens(tokens, offset);
    let mut iter = recent.iter().rev();
    let first = iter.next()?;
    if first.kind == TokenKind::Ident && first.span.end == offset {
        return iter.next().copied();
    }
    Some(*first)
}

/// The significant token before `token` (by position), if any.
pub(crate) fn token_before(tokens: &[Token], token: Token) -> Option<Token> {
    let end = tokens.partition_point(|t| t.span.start < token.span.start);
    tokens
        .get(..end)?
        .iter()
        .rev()
        .find(|t| !t.kind.is_trivia())
        .copied()
}

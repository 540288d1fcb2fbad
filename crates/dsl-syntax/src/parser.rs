//! The parser: significant tokens to the syntax tree, with error recovery (chumsky).
//!
//! A clean file is parsed by the hand-written fast path in `fast.rs`, which builds the same
//! tree without any error bookkeeping; a file it gives up on is parsed by the chumsky grammar
//! here, the authority on recovery and on every syntax error.
//!
//! Trivia never reach chumsky; they stay in the token list of [`crate::Parse`]. Each list
//! inside a block (items, steps, properties, policy rules, eval statements) recovers on its
//! own: a broken element is skipped up to the start of the next one, so every independent
//! mistake is reported in one pass and a broken step never hides the steps after it.

mod fast;

use std::fmt;

use chumsky::input::ValueInput;
use chumsky::prelude::*;

use crate::Parse;
use crate::ast::*;
use crate::diagnostic::Diagnostic;
use crate::lexer::{self, TokenKind};
use crate::span::Span;
use crate::strings;

/// How deeply brackets, braces and parentheses may nest before the parser refuses the
/// region with a diagnostic (rather than risking the stack).
pub const MAX_NESTING: usize = 64;

/// How deep one expression tree may be (long operator chains count as depth too).
const MAX_EXPR_DEPTH: usize = 256;

/// Separates a diagnostic code from its message inside chumsky's custom errors.
const CODE_SEP: char = '\u{1}';

/// A significant token as chumsky sees it: its kind and its text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Tok<'s> {
    kind: TokenKind,
    text: &'s str,
}

impl fmt::Display for Tok<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            TokenKind::Ident => write!(f, "`{}`", self.text),
            TokenKind::Int | TokenKind::Float | TokenKind::Duration | TokenKind::Money => {
                write!(f, "`{}`", self.text)
            }
            kind => f.write_str(kind.describe()),
        }
    }
}

fn punct(kind: TokenKind) -> Tok<'static> {
    let text = match kind {
        TokenKind::LBrace | TokenKind::HoleOpen => "{",
        TokenKind::RBrace | TokenKind::HoleClose => "}",
        TokenKind::LParen => "(",
        TokenKind::RParen => ")",
        TokenKind::LBracket => "[",
        TokenKind::RBracket => "]",
        TokenKind::Comma => ",",
        TokenKind::Colon => ":",
        TokenKind::Dot => ".",
        TokenKind::Eq => "=",
        TokenKind::Arrow => "->",
        TokenKind::Question => "?",
        TokenKind::Pipe => "|",
        TokenKind::EqEq => "==",
        TokenKind::NotEq => "!=",
        TokenKind::Lt => "<",
        TokenKind::LtEq => "<=",
        TokenKind::Gt => ">",
        TokenKind::GtEq => ">=",
        TokenKind::Plus => "+",
        TokenKind::Minus => "-",
        TokenKind::Star => "*",
        TokenKind::Slash => "/",
        _ => "",
    };
    Tok { kind, text }
}

/// Words that are keywords everywhere and can never name anything.
pub const RESERVED: &[&str] = &["true", "false", "none", "and", "or", "not"];

/// Metadata keys of a pack or module.
pub const META_KEYS: &[&str] = &[
    "title",
    "version",
    "description",
    "owner",
    "language",
    "tags",
];

/// Words that start an item.
pub const ITEM_KEYWORDS: &[&str] = &[
    "title",
    "version",
    "description",
    "owner",
    "language",
    "tags",
    "use",
    "input",
    "type",
    "model",
    "knowledge",
    "agent",
    "tool",
    "flow",
    "policy",
    "outcome",
    "kpi",
    "eval",
    "layout",
];

/// Words that start a policy rule.
pub const POLICY_KEYWORDS: &[&str] = &["approve", "auto", "egress", "redact", "budget", "rate"];
/// Words that start an eval statement.
pub const EVAL_KEYWORDS: &[&str] = &["mock", "input", "approve", "reject", "expect"];

type Extra<E> = extra::Err<E>;

/// The rich error type of the second, reporting pass.
type RichError<'t, 's> = Rich<'t, Tok<'s>, SimpleSpan>;

/// Errors the parser can build its own messages into (with a diagnostic code).
trait CustomError: Sized {
    fn custom(span: SimpleSpan, code: &str, message: String) -> Self;
}

impl<'t, 's> CustomError for RichError<'t, 's> {
    fn custom(span: SimpleSpan, code: &str, message: String) -> Self {
        Rich::custom(span, format!("{code}{CODE_SEP}{message}"))
    }
}

trait PErr<'t, 's: 't, I: TokInput<'t, 's>>:
    chumsky::error::Error<'t, I> + chumsky::label::LabelError<'t, I, &'static str> + CustomError + 't
{
}
impl<'t, 's: 't, I: TokInput<'t, 's>, T> PErr<'t, 's, I> for T where
    T: chumsky::error::Error<'t, I>
        + chumsky::label::LabelError<'t, I, &'static str>
        + CustomError
        + 't
{
}

trait TokInput<'t, 's: 't>: ValueInput<'t, Token = Tok<'s>, Span = SimpleSpan> {}
impl<'t, 's: 't, T: ValueInput<'t, Token = Tok<'s>, Span = SimpleSpan>> TokInput<'t, 's> for T {}

/// Whether `text` is one of `words` (a slice of `&'static str` cannot `contains` a shorter-lived `&str`).
fn one_of_words(text: &str, words: &[&str]) -> bool {
    words.contains(&text)
}

fn sp(span: SimpleSpan) -> Span {
    Span::new(span.start, span.end)
}

fn custom<E: CustomError>(span: SimpleSpan, code: &str, message: impl fmt::Display) -> E {
    E::custom(span, code, message.to_string())
}

/// The significant tokens of `source` (trivia and lexer errors dropped), nesting limited.
fn significant_tokens<'s>(
    source: &'s str,
    tokens: &[lexer::Token],
    errors: &mut Vec<Diagnostic>,
) -> (Vec<(Tok<'s>, SimpleSpan)>, Vec<SimpleSpan>) {
    let mut significant: Vec<(Tok<'_>, SimpleSpan)> = Vec::with_capacity(tokens.len());
    for t in tokens {
        if t.kind.is_trivia() || t.kind == TokenKind::Error {
            continue;
        }
        let range = t.span.range();
        significant.push((
            Tok {
                kind: t.kind,
                text: source.get(range.clone()).unwrap_or(""),
            },
            SimpleSpan::from(range),
        ));
    }
    let refused = limit_nesting(&mut significant, errors);
    (significant, refused)
}

/// The significant tokens (no trivia, no lexer errors), when no region nests deeper than
/// [`MAX_NESTING`] (deeper input goes to the reporting grammar, which refuses it).
fn shallow_significant(tokens: &[lexer::Token]) -> Option<Vec<lexer::Token>> {
    let mut out = Vec::with_capacity(tokens.len());
    let mut depth = 0usize;
    for token in tokens {
        match token.kind {
            kind if kind.is_trivia() || kind == TokenKind::Error => continue,
            TokenKind::LBrace | TokenKind::LParen | TokenKind::LBracket | TokenKind::HoleOpen => {
                depth += 1;
                if depth > MAX_NESTING {
                    return None;
                }
            }
            TokenKind::RBrace | TokenKind::RParen | TokenKind::RBracket | TokenKind::HoleClose => {
                depth = depth.saturating_sub(1);
            }
            _ => {}
        }
        out.push(*token);
    }
    Some(out)
}

/// See [`crate::parse_both`].
pub(crate) fn parse_both(source: &str) -> (Option<SourceFile>, SourceFile, Vec<Diagnostic>) {
    let (tokens, mut errors) = lexer::lex(source);
    let fast =
        shallow_significant(&tokens).and_then(|significant| fast::parse(source, &significant));
    let (significant, _) = significant_tokens(source, &tokens, &mut errors);
    let eoi = SimpleSpan::from(source.len()..source.len());
    let (file, parse_errors) = file_parser::<_, RichError<'_, '_>>(source)
        .parse(significant[..].split_token_span(eoi))
        .into_output_errors();
    let file = file.unwrap_or(SourceFile {
        kind: None,
        name: None,
        items: Vec::new(),
        span: Span::new(0, source.len()),
    });
    (fast, file, parse_errors.iter().map(to_diagnostic).collect())
}

pub(crate) fn parse(source: &str) -> Parse {
    let (tokens, mut errors) = lexer::lex(source);
    // A clean file is parsed once, by the hand-written fast path; a file it gives up on is
    // parsed by the chumsky grammar, which recovers and reports every error.
    if let Some(file) =
        shallow_significant(&tokens).and_then(|significant| fast::parse(source, &significant))
    {
        errors.sort_by_key(|d| (d.span.start, d.span.end));
        return Parse {
            file,
            tokens,
            errors,
        };
    }
    let (significant, refused) = significant_tokens(source, &tokens, &mut errors);
    let eoi = SimpleSpan::from(source.len()..source.len());
    let (file, parse_errors) = file_parser::<_, RichError<'_, '_>>(source)
        .parse(significant[..].split_token_span(eoi))
        .into_output_errors();
    let mut reported_at = std::collections::HashSet::new();
    for error in parse_errors {
        let start = error.span().start;
        if refused
            .iter()
            .any(|r| r.start <= start && start < r.end.max(r.start + 1))
        {
            continue;
        }
        if reported_at.insert(start) {
            errors.push(to_diagnostic(&error));
        }
    }
    errors.sort_by_key(|d| (d.span.start, d.span.end));
    let file = file.unwrap_or(SourceFile {
        kind: None,
        name: None,
        items: Vec::new(),
        span: Span::new(0, source.len()),
    });
    Parse {
        file,
        tokens,
        errors,
    }
}

/// Replaces every region nested deeper than [`MAX_NESTING`] with one error token, and
/// reports it; returns the refused spans so follow-on errors inside them are not reported.
fn limit_nesting(
    significant: &mut Vec<(Tok<'_>, SimpleSpan)>,
    errors: &mut Vec<Diagnostic>,
) -> Vec<SimpleSpan> {
    let is_open = |k: TokenKind| {
        matches!(
            k,
            TokenKind::LBrace | TokenKind::LParen | TokenKind::LBracket | TokenKind::HoleOpen
        )
    };
    let is_close = |k: TokenKind| {
        matches!(
            k,
            TokenKind::RBrace | TokenKind::RParen | TokenKind::RBracket | TokenKind::HoleClose
        )
    };
    let mut depth = 0usize;
    let mut too_deep = false;
    for (tok, _) in significant.iter() {
        if is_open(tok.kind) {
            depth += 1;
            if depth > MAX_NESTING {
                too_deep = true;
                break;
            }
        } else if is_close(tok.kind) {
            depth = depth.saturating_sub(1);
        }
    }
    if !too_deep {
        return Vec::new();
    }
    let mut out = Vec::with_capacity(significant.len());
    let mut refused = Vec::new();
    let mut depth = 0usize;
    let mut region: Option<(SimpleSpan, usize)> = None;
    for &(tok, span) in significant.iter() {
        if is_open(tok.kind) {
            depth += 1;
        } else if is_close(tok.kind) {
            depth = depth.saturating_sub(1);
        }
        match region {
            Some((start, open_depth)) => {
                if depth < open_depth {
                    let whole = SimpleSpan::from(start.start..span.end);
                    refused.push(whole);
                    out.push((
                        Tok {
                            kind: TokenKind::Error,
                            text: "",
                        },
                        whole,
                    ));
                    region = None;
                }
            }
            None if is_open(tok.kind) && depth > MAX_NESTING => region = Some((span, depth)),
            None => out.push((tok, span)),
        }
    }
    if let Some((start, _)) = region {
        let end = significant.last().map(|(_, s)| s.end).unwrap_or(start.end);
        let whole = SimpleSpan::from(start.start..end);
        refused.push(whole);
        out.push((
            Tok {
                kind: TokenKind::Error,
                text: "",
            },
            whole,
        ));
    }
    for span in &refused {
        errors.push(
            Diagnostic::error(
                "GX0004",
                Span::new(span.start, span.start + 1),
                format!("nesting deeper than {MAX_NESTING} levels"),
            )
            .with_help("split the nested part into steps or types of its own"),
        );
    }
    *significant = out;
    refused
}

fn to_diagnostic(error: &Rich<'_, Tok<'_>>) -> Diagnostic {
    let span = sp(*error.span());
    match error.reason() {
        chumsky::error::RichReason::Custom(message) => {
            let (code, message) = message.split_once(CODE_SEP).unwrap_or(("GX0001", message));
            let code = match code {
                "GX0004" => "GX0004",
                "GX0005" => "GX0005",
                _ => "GX0001",
            };
            Diagnostic::error(code, span, message)
        }
        chumsky::error::RichReason::ExpectedFound { expected, found } => {
            let mut names: Vec<String> = Vec::new();
            let mut keywords: Vec<&str> = Vec::new();
            for pattern in expected {
                let name = match pattern {
                    chumsky::error::RichPattern::Token(tok) => {
                        if tok.kind == TokenKind::Ident {
                            keywords.push(tok.text);
                        }
                        tok.to_string()
                    }
                    chumsky::error::RichPattern::Label(label) => label.to_string(),
                    chumsky::error::RichPattern::Identifier(word) => format!("`{word}`"),
                    chumsky::error::RichPattern::EndOfInput => "end of input".to_string(),
                    _ => continue,
                };
                if !names.contains(&name) {
                    names.push(name);
                }
            }
            let found_text = match found {
                Some(tok) => tok.to_string(),
                None => "end of input".to_string(),
            };
            if !keywords.is_empty() {
                names.retain(|n| !matches!(n.as_str(), "`{`" | "`(`" | "`[`"));
            }
            let expected_text = match names.len() {
                0 => "something else".to_string(),
                1..=8 => join_alternatives(&names),
                _ => format!("{}, ...", names.get(..8).unwrap_or(&[]).join(", ")),
            };
            let mut diagnostic = Diagnostic::error(
                "GX0001",
                span,
                format!("expected {expected_text}, found {found_text}"),
            );
            if let Some(tok) = found.as_deref()
                && tok.kind == TokenKind::Ident
                && let Some(best) = closest(tok.text, &keywords)
            {
                diagnostic = diagnostic
                    .with_help(format!("did you mean `{best}`?"))
                    .with_fix(
                        format!("replace with `{best}`"),
                        vec![crate::TextEdit {
                            span,
                            new_text: best.to_string(),
                        }],
                    );
            }
            diagnostic
        }
    }
}

fn join_alternatives(names: &[String]) -> String {
    match names {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// The candidate closest to `word` by edit distance, when close enough to be a typo.
pub fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .iter()
        .map(|c| (edit_distance(word, c), *c))
        .filter(|(d, c)| *d <= limit && *c != word)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Edit distance over chars, counting a swap of two neighbours as one edit (so `stpe` is one
/// edit from `step`).
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let width = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * width];
    let at = |i: usize, j: usize| i * width + j;
    for i in 0..=a.len() {
        if let Some(cell) = d.get_mut(at(i, 0)) {
            *cell = i;
        }
    }
    for j in 0..=b.len() {
        if let Some(cell) = d.get_mut(at(0, j)) {
            *cell = j;
        }
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let (ca, cb) = (a.get(i - 1), b.get(j - 1));
            let cost = usize::from(ca != cb);
            let get = |i, j| d.get(at(i, j)).copied().unwrap_or(usize::MAX / 2);
            let mut value = (get(i - 1, j) + 1)
                .min(get(i, j - 1) + 1)
                .min(get(i - 1, j - 1) + cost);
            if i > 1 && j > 1 && ca == b.get(j - 2) && a.get(i - 2) == cb {
                value = value.min(get(i - 2, j - 2) + 1);
            }
            if let Some(cell) = d.get_mut(at(i, j)) {
                *cell = value;
            }
        }
    }
    d.last().copied().unwrap_or(0)
}

// ---------------------------------------------------------------------------------------
// Small parsers.

fn sym<'t, 's: 't, I: TokInput<'t, 's>, E: PErr<'t, 's, I>>(
    kind: TokenKind,
) -> impl Parser<'t, I, SimpleSpan, Extra<E>> + Clone {
    just(punct(kind)).map_with(|_, e| e.span())
}

fn kw<'t, 's: 't, I: TokInput<'t, 's>, E: PErr<'t, 's, I>>(
    word: &'static str,
) -> impl Parser<'t, I, SimpleSpan, Extra<E>> + Clone {
    just(Tok {
        kind: TokenKind::Ident,
        text: word,
    })
    .map_with(|_, e| e.span())
}

fn ident<'t, 's: 't, I: TokInput<'t, 's>, E: PErr<'t, 's, I>>()
-> impl Parser<'t, I, Ident, Extra<E>> + Clone {
    select! { Tok { kind: TokenKind::Ident, text } if !one_of_words(text, RESERVED) => text }
        .map_with(|text: &str, e| Ident {
            name: text.to_owned(),
            span: sp(e.span()),
        })
        .labelled("a name")
}

fn path<'t, 's: 't, I: TokInput<'t, 's>, E: PErr<'t, 's, I>>()
-> impl Parser<'t, I, Vec<Ident>, Extra<E>> + Clone {
    ident()
        .separated_by(sym(TokenKind::Dot))
        .at_least(1)
        .collect::<Vec<_>>()
}

/// A closing delimiter; at the end of input, reports it missing and carries on.
fn close<'t, 's: 't, I: TokInput<'t, 's>, E: PErr<'t, 's, I>>(
    kind: TokenKind,
    what: &'static str,
) -> impl Parser<'t, I, (), Extra<E>> + Clone {
    sym(kind)
        .ignored()
        .or(end().rewind().validate(move |_, e, emitter| {
            emitter.emit(custom(
                e.span(),
                "GX0001",
                format!(
                    "expected {} to close {what}, found end of input",
                    punct(kind).kind.describe()
                ),
            ));
        }))
}

/// Skips one token tree: a balanced bracketed group, or any single token but `}`.
fn skip_tree<'t, 's: 't, I: TokInput<'t, 's>, E: PErr<'t, 's, I>>()
-> impl Parser<'t, I, (), Extra<E>> + Clone {
    let group = |open, shut| {
        nested_delimiters(
            punct(open),
            punct(shut),
            [
                (punct(TokenKind::LParen), punct(TokenKind::RParen)),
                (punct(TokenKind::LBracket), punct(TokenKind::RBracket)),
                (punct(TokenKind::LBrace), punct(TokenKind::RBrace)),
            ],
            |_| (),
        )
    };
    choice((
        group(TokenKind::LBrace, TokenKind::RBrace),
        group(TokenKind::LParen, TokenKind::RParen),
        group(TokenKind::LBracket, TokenKind::RBracket),
        any().and_is(sym(TokenKind::RBrace).not()).ignored(),
    ))
}

/// Recovery for one element of a block: skip at least one token tree, then up to the next
/// boundary (the start of the next element, or the block's `}`), and yield nothing.
fn skip_to<'t, 's: 't, I, E, O, B>(boundary: B) -> impl Parser<'t, I, Option<O>, Extra<E>> + Clone
where
    I: TokInput<'t, 's>,
    E: PErr<'t, 's, I>,
    B: Parser<'t, I, (), Extra<E>> + Clone,
{
    skip_tree()
        .then(skip_tree().and_is(boundary.not()).repeated())
        .map(|_| None)
}

/// `element*` inside a block, each element recovering up to the next one that starts with
/// one of `starts` (or the block's `}`).
fn recovering_list<'t, 's: 't, I, E, O, P>(
    element: P,
    starts: &'static [&'static str],
) -> impl Parser<'t, I, Vec<O>, Extra<E>> + Clone
where
    I: TokInput<'t, 's>,
    E: PErr<'t, 's, I>,
    P: Parser<'t, I, O, Extra<E>> + Clone,
    O: 't,
{
    // A misspelled keyword (`stpe x = ...`, `polcy {`) also starts a new element, so its
    // own error is reported instead of being swallowed by the previous one's recovery.
    let misspelled =
        select! { Tok { kind: TokenKind::Ident, text } if closest(text, starts).is_some() => () }
            .then(ident().ignored().or(sym(TokenKind::LBrace).ignored()));
    let boundary =
        select! { Tok { kind: TokenKind::Ident, text } if one_of_words(text, starts) => () }
            .or(sym(TokenKind::RBrace).ignored())
            .or(misspelled.ignored())
            .rewind();
    sym(TokenKind::RBrace)
        .not()
        .ignore_then(
            element
                .map(Some)
                .recover_with(via_parser(skip_to(boundary))),
        )
        .repeated()
        .collect::<Vec<_>>()
        .map(|items| items.into_iter().flatten().collect())
}

// ---------------------------------------------------------------------------------------
// Literals and expressions.

enum RawPart {
    Text(SimpleSpan),
    Hole(Expr),
}

fn string_lit<'t, 's: 't, I: TokInput<'t, 's>, E: PErr<'t, 's, I>>(
    source: &'s str,
    expr: impl Parser<'t, I, Expr, Extra<E>> + Clone + 't,
) -> impl Parser<'t, I, StringLit, Extra<E>> + Clone {
    let open = select! { Tok { kind: TokenKind::StrOpen, text } = e => (text, e.span()) };
    let text = select! { Tok { kind: TokenKind::StrText, .. } = e => RawPart::Text(e.span()) };
    let hole = expr
        .delimited_by(sym(TokenKind::HoleOpen), sym(TokenKind::HoleClose))
        .recover_with(via_parser(nested_delimiters(
            punct(TokenKind::HoleOpen),
            punct(TokenKind::HoleClose),
            [],
            |span| Expr {
                kind: ExprKind::Error,
                span: sp(span),
            },
        )))
        .map(RawPart::Hole);
    open.then(choice((text, hole)).repeated().collect::<Vec<_>>())
        .then(select! { Tok { kind: TokenKind::StrClose, .. } = e => e.span() })
        .validate(
            move |(((quote, open_span), parts), close_span), e, emitter| {
                build_string(
                    source,
                    quote,
                    open_span,
                    parts,
                    close_span,
                    e.span(),
                    |span, message| emitter.emit(custom(span, "GX0005", message)),
                )
            },
        )
        .labelled("a string")
}

/// Builds a string literal from its parts: escapes resolved, a text block's common
/// indentation removed, adjacent text merged. Unknown escapes go to `bad_escape`.
fn build_string(
    source: &str,
    quote: &str,
    open_span: SimpleSpan,
    parts: Vec<RawPart>,
    close_span: SimpleSpan,
    span: SimpleSpan,
    mut bad_escape: impl FnMut(SimpleSpan, String),
) -> StringLit {
    let multiline = quote.len() == 3;
    let body_start = open_span.end;
    let removals = if multiline {
        source
            .get(body_start..close_span.start)
            .map(strings::text_block_removals)
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    let mut out = Vec::with_capacity(parts.len());
    for part in parts {
        match part {
            RawPart::Hole(expr) => out.push(StrPart::Hole(expr)),
            RawPart::Text(span) => {
                let mut text = String::with_capacity(span.end - span.start);
                let mut unescape_piece = |from: usize, to: usize| {
                    let raw = source.get(from..to).unwrap_or("");
                    if !raw.contains('\\') {
                        text.push_str(raw);
                        return;
                    }
                    for bad in strings::unescape(raw, &mut text) {
                        let at = from + bad;
                        let escape: String =
                            source.get(at..).unwrap_or("").chars().take(2).collect();
                        bad_escape(
                            SimpleSpan::from(at..at + escape.len()),
                            format!("unknown escape `{escape}`"),
                        );
                    }
                };
                let mut cursor = span.start;
                for &(from, to) in &removals {
                    let (from, to) = (from + body_start, to + body_start);
                    if to <= span.start || from >= span.end {
                        continue;
                    }
                    if from > cursor {
                        unescape_piece(cursor, from);
                    }
                    cursor = cursor.max(to);
                }
                if cursor < span.end {
                    unescape_piece(cursor, span.end);
                }
                match out.last_mut() {
                    Some(StrPart::Text(previous)) => previous.push_str(&text),
                    _ => out.push(StrPart::Text(text)),
                }
            }
        }
    }
    StringLit {
        parts: out,
        multiline,
        span: sp(span),
    }
}

fn number_value(text: &str) -> Option<f64> {
    text.replace('_', "").parse::<f64>().ok()
}

fn literal<'t, 's: 't, I: TokInput<'t, 's>, E: PErr<'t, 's, I>>()
-> impl Parser<'t, I, ExprKind, Extra<E>> + Clone {
    select! {
        Tok { kind: TokenKind::Int, text } => (TokenKind::Int, text),
        Tok { kind: TokenKind::Float, text } => (TokenKind::Float, text),
        Tok { kind: TokenKind::Duration, text } => (TokenKind::Duration, text),
        Tok { kind: TokenKind::Money, text } => (TokenKind::Money, text),
    }
    .validate(|(kind, text): (TokenKind, &str), e, emitter| {
        literal_value(kind, text).unwrap_or_else(|what| {
            emitter.emit(custom(
                e.span(),
                "GX0005",
                format!("{what} `{text}` is out of range"),
            ));
            ExprKind::Error
        })
    })
}

/// The value of a number, duration or money token; `Err` names what is out of range.
fn literal_value(kind: TokenKind, text: &str) -> Result<ExprKind, &'static str> {
    match kind {
        TokenKind::Int => text
            .replace('_', "")
            .parse::<i64>()
            .map(ExprKind::Int)
            .map_err(|_| "integer"),
        TokenKind::Float => match number_value(text) {
            Some(value) if value.is_finite() => Ok(ExprKind::Float(value)),
            _ => Err("number"),
        },
        TokenKind::Duration => {
            let digits_end = text
                .find(|c: char| !c.is_ascii_digit() && c != '_')
                .unwrap_or(text.len());
            let (digits, unit) = text.split_at(digits_end);
            let factor: u64 = match unit {
                "ms" => 1,
                "s" => 1_000,
                "m" => 60_000,
                "h" => 3_600_000,
                _ => 86_400_000,
            };
            digits
                .replace('_', "")
                .parse::<u64>()
                .ok()
                .and_then(|n| n.checked_mul(factor))
                .map(ExprKind::Duration)
                .ok_or("duration")
        }
        _ => {
            let split = text
                .find(|c: char| c.is_ascii_alphabetic())
                .unwrap_or(text.len());
            let (amount, currency) = text.split_at(split);
            match number_value(amount.trim_end()) {
                Some(amount) if amount.is_finite() => Ok(ExprKind::Money {
                    amount,
                    currency: currency.to_ascii_lowercase(),
                }),
                _ => Err("amount"),
            }
        }
    }
}

fn prop_key<'t, 's: 't, I: TokInput<'t, 's>, E: PErr<'t, 's, I>>()
-> impl Parser<'t, I, Ident, Extra<E>> + Clone {
    let quoted = select! { Tok { kind: TokenKind::StrOpen, text: "\"" } => () }
        .ignore_then(select! { Tok { kind: TokenKind::StrText, text } => text })
        .then_ignore(select! { Tok { kind: TokenKind::StrClose, .. } => () })
        .map_with(|text: &str, e| Ident {
            name: text.to_owned(),
            span: sp(e.span()),
        });
    ident().or(quoted)
}

fn expr_parser<'t, 's: 't, I: TokInput<'t, 's>, E: PErr<'t, 's, I>>(
    source: &'s str,
) -> impl Parser<'t, I, Expr, Extra<E>> + Clone {
    recursive(move |expr| {
        let arg = ident()
            .then_ignore(sym(TokenKind::Colon))
            .or_not()
            .then(expr.clone())
            .map_with(|(name, value), e| Arg {
                name,
                value,
                span: sp(e.span()),
            });
        let args = arg
            .separated_by(sym(TokenKind::Comma))
            .allow_trailing()
            .collect::<Vec<_>>()
            .delimited_by(sym(TokenKind::LParen), sym(TokenKind::RParen));
        let prop = prop_key()
            .then_ignore(sym(TokenKind::Colon))
            .then(expr.clone())
            .map_with(|(key, value), e| Prop {
                key,
                value,
                span: sp(e.span()),
            });
        let record = prop
            .then_ignore(sym(TokenKind::Comma).or_not())
            .repeated()
            .collect::<Vec<_>>()
            .delimited_by(sym(TokenKind::LBrace), sym(TokenKind::RBrace))
            .map(ExprKind::Record);
        let list = expr
            .clone()
            .separated_by(sym(TokenKind::Comma))
            .allow_trailing()
            .collect::<Vec<_>>()
            .delimited_by(sym(TokenKind::LBracket), sym(TokenKind::RBracket))
            .map(ExprKind::List);
        let constant = select! {
            Tok { kind: TokenKind::Ident, text: "true" } => ExprKind::Bool(true),
            Tok { kind: TokenKind::Ident, text: "false" } => ExprKind::Bool(false),
            Tok { kind: TokenKind::Ident, text: "none" } => ExprKind::None,
        };
        let atom = choice((
            literal(),
            string_lit(source, expr.clone()).map(ExprKind::Str),
            constant,
            kw("step")
                .then(ident())
                .not()
                .ignore_then(ident())
                .map(ExprKind::Name),
            list,
            record,
        ))
        .map_with(|kind, e| Expr {
            kind,
            span: sp(e.span()),
        })
        // A parenthesised expression keeps its own node, with a span widened to cover the
        // parentheses, so every expression's span covers exactly its text.
        .or(expr
            .clone()
            .delimited_by(sym(TokenKind::LParen), sym(TokenKind::RParen))
            .map_with(|inner: Expr, e| Expr {
                span: sp(e.span()),
                ..inner
            }))
        .recover_with(via_parser(nested_delimiters(
            punct(TokenKind::LParen),
            punct(TokenKind::RParen),
            [
                (punct(TokenKind::LBracket), punct(TokenKind::RBracket)),
                (punct(TokenKind::LBrace), punct(TokenKind::RBrace)),
            ],
            |span| Expr {
                kind: ExprKind::Error,
                span: sp(span),
            },
        )))
        .recover_with(via_parser(nested_delimiters(
            punct(TokenKind::LBracket),
            punct(TokenKind::RBracket),
            [
                (punct(TokenKind::LParen), punct(TokenKind::RParen)),
                (punct(TokenKind::LBrace), punct(TokenKind::RBrace)),
            ],
            |span| Expr {
                kind: ExprKind::Error,
                span: sp(span),
            },
        )))
        .boxed();

        enum Postfix {
            Field(Ident),
            Index(Expr),
            Call(Vec<Arg>),
        }
        let postfix = atom.foldl_with(
            choice((
                sym(TokenKind::Dot).ignore_then(ident()).map(Postfix::Field),
                expr.clone()
                    .delimited_by(sym(TokenKind::LBracket), sym(TokenKind::RBracket))
                    .map(Postfix::Index),
                args.map(Postfix::Call),
            ))
            .labelled("an operator")
            .repeated(),
            |base, op, e| {
                let kind = match op {
                    Postfix::Field(name) => ExprKind::Field(Box::new(base), name),
                    Postfix::Index(index) => ExprKind::Index(Box::new(base), Box::new(index)),
                    Postfix::Call(args) => ExprKind::Call(Box::new(base), args),
                };
                Expr {
                    kind,
                    span: sp(e.span()),
                }
            },
        );
        let unary = choice((
            kw("not").to(UnaryOp::Not),
            sym(TokenKind::Minus).to(UnaryOp::Neg),
        ))
        .map_with(|op, e| (op, e.span()))
        .repeated()
        .foldr_with(postfix, |(op, _), operand, e| Expr {
            kind: ExprKind::Unary(op, Box::new(operand)),
            span: sp(e.span()),
        })
        .labelled("an expression")
        .boxed();
        // All binary operators in one loop: `operand (op operand)*`, then precedence
        // climbing over the flat list (one failed lookahead per operand instead of one per
        // precedence level).
        let op = select! {
            Tok { kind: TokenKind::Star, .. } => BinaryOp::Mul,
            Tok { kind: TokenKind::Slash, .. } => BinaryOp::Div,
            Tok { kind: TokenKind::Plus, .. } => BinaryOp::Add,
            Tok { kind: TokenKind::Minus, .. } => BinaryOp::Sub,
            Tok { kind: TokenKind::EqEq, .. } => BinaryOp::Eq,
            Tok { kind: TokenKind::NotEq, .. } => BinaryOp::Ne,
            Tok { kind: TokenKind::LtEq, .. } => BinaryOp::Le,
            Tok { kind: TokenKind::GtEq, .. } => BinaryOp::Ge,
            Tok { kind: TokenKind::Lt, .. } => BinaryOp::Lt,
            Tok { kind: TokenKind::Gt, .. } => BinaryOp::Gt,
            Tok { kind: TokenKind::Ident, text: "and" } => BinaryOp::And,
            Tok { kind: TokenKind::Ident, text: "or" } => BinaryOp::Or,
        }
        .labelled("an operator");
        // Operands carry their spans with any parentheses, so that a binary expression's span
        // covers exactly its text.
        let operand = unary.map_with(|expr, e| (expr, sp(e.span())));
        operand
            .clone()
            .then(op.then(operand).repeated().collect::<Vec<_>>())
            .map(|(first, rest)| climb(first, rest))
            .labelled("an expression")
    })
}

/// Binding strength of a binary operator (higher binds tighter).
fn precedence(op: BinaryOp) -> u8 {
    match op {
        BinaryOp::Or => 1,
        BinaryOp::And => 2,
        BinaryOp::Eq | BinaryOp::Ne | BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge => {
            3
        }
        BinaryOp::Add | BinaryOp::Sub => 4,
        BinaryOp::Mul | BinaryOp::Div => 5,
    }
}

/// Builds the left-associative tree of `first (op operand)*` by precedence, iteratively.
fn climb(first: (Expr, Span), rest: Vec<(BinaryOp, (Expr, Span))>) -> Expr {
    if rest.is_empty() {
        return first.0;
    }
    fn reduce(operands: &mut Vec<(Expr, Span)>, op: BinaryOp) {
        let (Some((rhs, rhs_span)), Some((lhs, lhs_span))) = (operands.pop(), operands.pop())
        else {
            return;
        };
        let span = lhs_span.cover(rhs_span);
        let kind = ExprKind::Binary(op, Box::new(lhs), Box::new(rhs));
        operands.push((Expr { kind, span }, span));
    }
    let mut operands = Vec::with_capacity(rest.len() + 1);
    let mut operators: Vec<BinaryOp> = Vec::with_capacity(rest.len());
    operands.push(first);
    for (op, operand) in rest {
        while let Some(&top) = operators.last() {
            if precedence(top) < precedence(op) {
                break;
            }
            operators.pop();
            reduce(&mut operands, top);
        }
        operators.push(op);
        operands.push(operand);
    }
    while let Some(op) = operators.pop() {
        reduce(&mut operands, op);
    }
    operands.pop().map(|(expr, _)| expr).unwrap_or(Expr {
        kind: ExprKind::Error,
        span: Span::default(),
    })
}

/// Measures an expression's depth without recursion, so that pathological input cannot
/// exhaust the stack anywhere downstream.
fn expr_depth(expr: &Expr) -> usize {
    let mut max = 0;
    let mut stack = vec![(expr, 1usize)];
    while let Some((expr, depth)) = stack.pop() {
        max = max.max(depth);
        if depth > MAX_EXPR_DEPTH {
            break;
        }
        for_each_child(expr, |child| stack.push((child, depth + 1)));
    }
    max
}

fn for_each_child<'a>(expr: &'a Expr, mut f: impl FnMut(&'a Expr)) {
    match &expr.kind {
        ExprKind::Str(lit) => lit.parts.iter().for_each(|p| {
            if let StrPart::Hole(e) = p {
                f(e)
            }
        }),
        ExprKind::Field(base, _) => f(base),
        ExprKind::Index(base, index) => {
            f(base);
            f(index)
        }
        ExprKind::Call(callee, args) => {
            f(callee);
            args.iter().for_each(|a| f(&a.value))
        }
        ExprKind::List(items) => items.iter().for_each(f),
        ExprKind::Record(props) => props.iter().for_each(|p| f(&p.value)),
        ExprKind::Unary(_, operand) => f(operand),
        ExprKind::Binary(_, lhs, rhs) => {
            f(lhs);
            f(rhs)
        }
        _ => {}
    }
}

/// Takes a too-deep expression apart iteratively, so that dropping it cannot recurse deeply.
fn dismantle(expr: Expr) {
    let mut stack = vec![expr];
    while let Some(expr) = stack.pop() {
        match expr.kind {
            ExprKind::Str(lit) => stack.extend(lit.parts.into_iter().filter_map(|p| match p {
                StrPart::Hole(e) => Some(e),
                StrPart::Text(_) => None,
            })),
            ExprKind::Field(base, _) => stack.push(*base),
            ExprKind::Index(base, index) => stack.extend([*base, *index]),
            ExprKind::Call(callee, args) => {
                stack.push(*callee);
                stack.extend(args.into_iter().map(|a| a.value));
            }
            ExprKind::List(items) => stack.extend(items),
            ExprKind::Record(props) => stack.extend(props.into_iter().map(|p| p.value)),
            ExprKind::Unary(_, operand) => stack.push(*operand),
            ExprKind::Binary(_, lhs, rhs) => stack.extend([*lhs, *rhs]),
            _ => {}
        }
    }
}

/// An expression in a position of its own (not inside another expression), checked for depth.
fn top_expr<'t, 's: 't, I: TokInput<'t, 's>, E: PErr<'t, 's, I>>(
    expr: impl Parser<'t, I, Expr, Extra<E>> + Clone,
) -> impl Parser<'t, I, Expr, Extra<E>> + Clone {
    expr.validate(|expr: Expr, e, emitter| {
        // Every level of depth takes at least one byte, so short expressions are shallow.
        if expr.span.len() as usize <= MAX_EXPR_DEPTH || expr_depth(&expr) <= MAX_EXPR_DEPTH {
            return expr;
        }
        let span = expr.span;
        dismantle(expr);
        emitter.emit(custom(
            e.span(),
            "GX0004",
            format!("expression nested deeper than {MAX_EXPR_DEPTH} levels"),
        ));
        Expr {
            kind: ExprKind::Error,
            span,
        }
    })
}

// ---------------------------------------------------------------------------------------
// Types, blocks, items.

fn type_parser<'t, 's: 't, I: TokInput<'t, 's>, E: PErr<'t, 's, I>>(
    string: impl Parser<'t, I, StringLit, Extra<E>> + Clone + 't,
) -> impl Parser<'t, I, TypeExpr, Extra<E>> + Clone {
    recursive(move |ty| {
        let union = string
            .clone()
            .separated_by(sym(TokenKind::Pipe))
            .at_least(1)
            .collect::<Vec<_>>()
            .map(TypeExprKind::StringUnion);
        let bracket = ty
            .clone()
            .then(sym(TokenKind::Colon).ignore_then(ty.clone()).or_not())
            .delimited_by(sym(TokenKind::LBracket), sym(TokenKind::RBracket))
            .map(
                |(first, second): (TypeExpr, Option<TypeExpr>)| match second {
                    Some(value) => TypeExprKind::Map(Box::new(first), Box::new(value)),
                    None => TypeExprKind::List(Box::new(first)),
                },
            );
        let base = choice((union, bracket, path().map(TypeExprKind::Named))).map_with(|kind, e| {
            TypeExpr {
                kind,
                span: sp(e.span()),
            }
        });
        base.then(sym(TokenKind::Question).or_not())
            .map_with(|(ty, question), e| match question {
                Some(_) => TypeExpr {
                    kind: TypeExprKind::Optional(Box::new(ty)),
                    span: sp(e.span()),
                },
                None => ty,
            })
            .labelled("a type")
    })
}

const PROP_STARTS: &[&str] = &[];

fn props_block<'t, 's: 't, I: TokInput<'t, 's>, E: PErr<'t, 's, I>>(
    expr: impl Parser<'t, I, Expr, Extra<E>> + Clone + 't,
    what: &'static str,
) -> impl Parser<'t, I, Vec<Prop>, Extra<E>> + Clone {
    let prop = prop_key()
        .then_ignore(sym(TokenKind::Colon))
        .then(top_expr(expr))
        .then_ignore(sym(TokenKind::Comma).or_not())
        .map_with(|(key, value), e| Prop {
            key,
            value,
            span: sp(e.span()),
        });
    // A property's boundary is the next `name:`; `recovering_list` looks for keywords, so
    // properties use their own skip rule.
    let boundary = prop_key()
        .then(sym(TokenKind::Colon))
        .ignored()
        .or(sym(TokenKind::RBrace).ignored())
        .rewind();
    let _ = PROP_STARTS;
    sym(TokenKind::LBrace)
        .ignore_then(
            sym(TokenKind::RBrace)
                .not()
                .ignore_then(prop.map(Some).recover_with(via_parser(skip_to(boundary))))
                .repeated()
                .collect::<Vec<_>>(),
        )
        .then_ignore(close(TokenKind::RBrace, what))
        .map(|props| props.into_iter().flatten().collect())
        .boxed()
}

fn fields_block<'t, 's: 't, I: TokInput<'t, 's>, E: PErr<'t, 's, I>>(
    field: impl Parser<'t, I, Field, Extra<E>> + Clone + 't,
    what: &'static str,
) -> impl Parser<'t, I, Vec<Field>, Extra<E>> + Clone {
    let boundary = ident()
        .then(sym(TokenKind::Colon))
        .ignored()
        .or(sym(TokenKind::RBrace).ignored())
        .rewind();
    sym(TokenKind::LBrace)
        .ignore_then(
            sym(TokenKind::RBrace)
                .not()
                .ignore_then(
                    field
                        .then_ignore(sym(TokenKind::Comma).or_not())
                        .map(Some)
                        .recover_with(via_parser(skip_to(boundary))),
                )
                .repeated()
                .collect::<Vec<_>>(),
        )
        .then_ignore(close(TokenKind::RBrace, what))
        .map(|fields| fields.into_iter().flatten().collect())
}

fn file_parser<'t, 's: 't, I: TokInput<'t, 's>, E: PErr<'t, 's, I>>(
    source: &'s str,
) -> impl Parser<'t, I, SourceFile, Extra<E>> {
    let expr = expr_parser(source).boxed();
    let string = string_lit(source, expr.clone()).boxed();
    let ty = type_parser(string.clone()).boxed();
    let top = top_expr(expr.clone()).boxed();
    let field = ident()
        .then_ignore(sym(TokenKind::Colon))
        .then(ty.clone())
        .then(sym(TokenKind::Eq).ignore_then(top.clone()).or_not())
        .map_with(|((name, ty), default), e| Field {
            name,
            ty,
            default,
            span: sp(e.span()),
        })
        .boxed();
    let arrow_type = sym(TokenKind::Arrow).ignore_then(ty.clone()).or_not();

    // Items.
    let meta =
        select! { Tok { kind: TokenKind::Ident, text } if one_of_words(text, META_KEYS) => text }
            .map_with(|text: &str, e| Ident {
                name: text.to_owned(),
                span: sp(e.span()),
            })
            .then(top.clone())
            .map_with(|(key, value), e| {
                Item::Meta(MetaItem {
                    key,
                    value,
                    span: sp(e.span()),
                })
            });
    let use_item = kw("use")
        .ignore_then(choice((
            string.clone().map(UseTarget::File),
            path().map(UseTarget::Module),
        )))
        .then(kw("as").ignore_then(ident()).or_not())
        .map_with(|(target, alias), e| {
            Item::Use(UseItem {
                target,
                alias,
                span: sp(e.span()),
            })
        });
    let input = kw("input")
        .ignore_then(fields_block(field.clone(), "the input block"))
        .map_with(|fields, e| {
            Item::Input(InputBlock {
                fields,
                span: sp(e.span()),
            })
        });
    let type_decl = kw("type")
        .ignore_then(ident())
        .then(choice((
            fields_block(field.clone(), "the type").map(TypeDeclBody::Record),
            sym(TokenKind::Eq)
                .ignore_then(ty.clone())
                .map(TypeDeclBody::Alias),
        )))
        .map_with(|(name, body), e| {
            Item::Type(TypeDecl {
                name,
                body,
                span: sp(e.span()),
            })
        });
    let model = kw("model")
        .ignore_then(ident())
        .then_ignore(sym(TokenKind::Eq))
        .then(top.clone())
        .then(props_block(expr.clone(), "the model").or_not())
        .map_with(|((name, provider), props), e| {
            Item::Model(ModelDecl {
                name,
                provider,
                props: props.unwrap_or_default(),
                span: sp(e.span()),
            })
        });
    let knowledge = kw("knowledge")
        .ignore_then(ident())
        .then_ignore(sym(TokenKind::Eq))
        .then(top.clone())
        .then(props_block(expr.clone(), "the knowledge source").or_not())
        .map_with(|((name, source), props), e| {
            Item::Knowledge(KnowledgeDecl {
                name,
                source,
                props: props.unwrap_or_default(),
                span: sp(e.span()),
            })
        });
    let agent = kw("agent")
        .ignore_then(ident())
        .then(props_block(expr.clone(), "the agent"))
        .map_with(|(name, props), e| {
            Item::Agent(AgentDecl {
                name,
                props,
                span: sp(e.span()),
            })
        });
    let tool = kw("tool")
        .ignore_then(ident())
        .then(
            field
                .clone()
                .separated_by(sym(TokenKind::Comma))
                .allow_trailing()
                .collect::<Vec<_>>()
                .delimited_by(
                    sym(TokenKind::LParen),
                    close(TokenKind::RParen, "the parameters"),
                ),
        )
        .then(arrow_type.clone())
        .then(props_block(expr.clone(), "the tool"))
        .map_with(|(((name, params), result), props), e| {
            Item::Tool(ToolDecl {
                name,
                params,
                result,
                props,
                span: sp(e.span()),
            })
        });

    // Flow.
    let action = recursive(|action| {
        let body = action
            .clone()
            .delimited_by(sym(TokenKind::LBrace), close(TokenKind::RBrace, "the body"))
            .recover_with(via_parser(nested_delimiters(
                punct(TokenKind::LBrace),
                punct(TokenKind::RBrace),
                [
                    (punct(TokenKind::LParen), punct(TokenKind::RParen)),
                    (punct(TokenKind::LBracket), punct(TokenKind::RBracket)),
                ],
                |span| Action::Error(sp(span)),
            )))
            .map(Box::new)
            .boxed();
        let ask = kw("ask")
            .ignore_then(ident())
            .then(arrow_type.clone())
            .then(props_block(expr.clone(), "the ask").or_not())
            .map_with(|((target, output), props), e| {
                Action::Ask(Ask {
                    target,
                    output,
                    props: props.unwrap_or_default(),
                    span: sp(e.span()),
                })
            });
        let map = kw("map")
            .ignore_then(ident())
            .then_ignore(kw("in"))
            .then(top.clone())
            .then(kw("where").ignore_then(top.clone()).or_not())
            .then(kw("concurrency").ignore_then(top.clone()).or_not())
            .then(body.clone())
            .map_with(|((((var, source), filter), concurrency), body), e| {
                Action::Map(MapAction {
                    var,
                    source,
                    filter,
                    concurrency,
                    body,
                    span: sp(e.span()),
                })
            });
        let when = recursive(|when| {
            kw("when")
                .ignore_then(top.clone())
                .then(body.clone())
                .then(
                    kw("else")
                        .ignore_then(when.map(Box::new).or(body.clone()))
                        .or_not(),
                )
                .map_with(|((cond, then), otherwise), e| {
                    Action::When(WhenAction {
                        cond,
                        then,
                        otherwise,
                        span: sp(e.span()),
                    })
                })
        });
        let route = kw("route")
            .ignore_then(ident())
            .then_ignore(kw("to"))
            .then(
                ident()
                    .separated_by(sym(TokenKind::Comma))
                    .allow_trailing()
                    .collect::<Vec<_>>()
                    .delimited_by(sym(TokenKind::LBracket), sym(TokenKind::RBracket)),
            )
            .then(arrow_type.clone())
            .then(props_block(expr.clone(), "the route").or_not())
            .map_with(|(((router, routes), output), props), e| {
                Action::Route(RouteAction {
                    router,
                    routes,
                    output,
                    props: props.unwrap_or_default(),
                    span: sp(e.span()),
                })
            });
        let review = kw("review")
            .ignore_then(kw("by"))
            .ignore_then(ident())
            .then_ignore(kw("until"))
            .then(top.clone())
            .then(kw("max").ignore_then(top.clone()).or_not())
            .then(body.clone())
            .map_with(|(((critic, until), max_rounds), body), e| {
                Action::Review(ReviewAction {
                    critic,
                    until,
                    max_rounds,
                    body,
                    span: sp(e.span()),
                })
            });
        let approve = kw("approve")
            .ignore_then(top.clone())
            .map_with(|message, e| {
                Action::Approve(ApproveAction {
                    message,
                    span: sp(e.span()),
                })
            });
        choice((
            ask,
            map,
            when,
            route,
            review,
            approve,
            top.clone().map(Action::Expr),
        ))
        .boxed()
    });
    let step = kw("step")
        .ignore_then(ident())
        .then_ignore(sym(TokenKind::Eq))
        .then(action)
        .map_with(|(name, action), e| Step {
            name,
            action,
            span: sp(e.span()),
        });
    let flow = kw("flow")
        .ignore_then(sym(TokenKind::LBrace))
        .ignore_then(recovering_list(step, &["step"]))
        .then_ignore(close(TokenKind::RBrace, "the flow"))
        .map_with(|steps, e| {
            Item::Flow(Flow {
                steps,
                span: sp(e.span()),
            })
        });

    // Policy.
    let rule = choice((
        kw("approve")
            .ignore_then(path())
            .map(PolicyRuleKind::Approve),
        kw("auto")
            .ignore_then(kw("approve"))
            .ignore_then(path())
            .then(kw("when").ignore_then(top.clone()).or_not())
            .map(|(target, when)| PolicyRuleKind::AutoApprove { target, when }),
        kw("egress")
            .ignore_then(kw("allow"))
            .ignore_then(top.clone())
            .map(PolicyRuleKind::Egress),
        kw("redact")
            .ignore_then(ident())
            .then_ignore(kw("before"))
            .then(ident())
            .map(|(what, before)| PolicyRuleKind::Redact { what, before }),
        kw("budget")
            .ignore_then(top.clone())
            .then(kw("per").not().ignore_then(ident()).or_not())
            .then_ignore(kw("per"))
            .then(ident())
            .map(|((amount, unit), per)| PolicyRuleKind::Budget { amount, unit, per }),
        kw("rate")
            .ignore_then(path())
            .then(top.clone())
            .then_ignore(kw("per"))
            .then(top.clone())
            .map(|((target, count), window)| PolicyRuleKind::Rate {
                target,
                count,
                window,
            }),
    ))
    .map_with(|kind, e| PolicyRule {
        kind,
        span: sp(e.span()),
    });
    let policy = kw("policy")
        .ignore_then(sym(TokenKind::LBrace))
        .ignore_then(recovering_list(rule, POLICY_KEYWORDS))
        .then_ignore(close(TokenKind::RBrace, "the policy"))
        .map_with(|rules, e| {
            Item::Policy(Policy {
                rules,
                span: sp(e.span()),
            })
        });

    let outcome = kw("outcome")
        .ignore_then(kw("success"))
        .ignore_then(kw("when"))
        .ignore_then(top.clone())
        .map_with(|cond, e| {
            Item::Outcome(Outcome {
                cond,
                span: sp(e.span()),
            })
        });
    let comparison_op = select! {
        Tok { kind: TokenKind::EqEq, .. } => BinaryOp::Eq,
        Tok { kind: TokenKind::NotEq, .. } => BinaryOp::Ne,
        Tok { kind: TokenKind::Lt, .. } => BinaryOp::Lt,
        Tok { kind: TokenKind::LtEq, .. } => BinaryOp::Le,
        Tok { kind: TokenKind::Gt, .. } => BinaryOp::Gt,
        Tok { kind: TokenKind::GtEq, .. } => BinaryOp::Ge,
    }
    .labelled("a comparison");
    let kpi = kw("kpi")
        .ignore_then(ident())
        .then_ignore(sym(TokenKind::Eq))
        .then(top.clone())
        .then(
            kw("target")
                .ignore_then(comparison_op.then(top.clone()))
                .or_not(),
        )
        .map_with(|((name, expr), target), e| {
            Item::Kpi(Kpi {
                name,
                expr,
                target,
                span: sp(e.span()),
            })
        });

    // Evals.
    let eval_stmt = choice((
        kw("mock")
            .ignore_then(path())
            .then_ignore(kw("returns"))
            .then(top.clone())
            .map(|(target, value)| EvalStmtKind::Mock { target, value }),
        kw("input")
            .ignore_then(ident())
            .then_ignore(sym(TokenKind::Eq))
            .then(top.clone())
            .map(|(name, value)| EvalStmtKind::Input { name, value }),
        kw("approve")
            .to(true)
            .or(kw("reject").to(false))
            .then(ident())
            .map(|(approve, target)| EvalStmtKind::Approve { approve, target }),
        kw("expect")
            .ignore_then(top.clone())
            .map(EvalStmtKind::Expect),
    ))
    .map_with(|kind, e| EvalStmt {
        kind,
        span: sp(e.span()),
    });
    let eval = kw("eval")
        .ignore_then(string.clone())
        .then_ignore(sym(TokenKind::LBrace))
        .then(recovering_list(eval_stmt, EVAL_KEYWORDS))
        .then_ignore(close(TokenKind::RBrace, "the eval"))
        .map_with(|(name, stmts), e| {
            Item::Eval(Eval {
                name,
                stmts,
                span: sp(e.span()),
            })
        });

    // Layout.
    let number = sym(TokenKind::Minus)
        .or_not()
        .then(select! {
            Tok { kind: TokenKind::Int, text } => text,
            Tok { kind: TokenKind::Float, text } => text,
        })
        .map(|(minus, text): (Option<SimpleSpan>, &str)| {
            let value = number_value(text).unwrap_or(0.0);
            if minus.is_some() { -value } else { value }
        })
        .labelled("a number");
    let entry = ident()
        .then_ignore(sym(TokenKind::Colon))
        .then(
            number
                .clone()
                .then_ignore(sym(TokenKind::Comma))
                .then(number)
                .delimited_by(sym(TokenKind::LParen), sym(TokenKind::RParen)),
        )
        .then_ignore(sym(TokenKind::Comma).or_not())
        .map_with(|(name, (x, y)), e| LayoutEntry {
            name,
            x,
            y,
            span: sp(e.span()),
        });
    let layout_boundary = ident()
        .then(sym(TokenKind::Colon))
        .ignored()
        .or(sym(TokenKind::RBrace).ignored())
        .rewind();
    let layout = kw("layout")
        .ignore_then(sym(TokenKind::LBrace))
        .ignore_then(
            sym(TokenKind::RBrace)
                .not()
                .ignore_then(
                    entry
                        .map(Some)
                        .recover_with(via_parser(skip_to(layout_boundary))),
                )
                .repeated()
                .collect::<Vec<_>>(),
        )
        .then_ignore(close(TokenKind::RBrace, "the layout"))
        .map_with(|entries, e| {
            Item::Layout(Layout {
                entries: entries.into_iter().flatten().collect(),
                span: sp(e.span()),
            })
        });

    let item = choice((
        meta, use_item, input, type_decl, model, knowledge, agent, tool, flow, policy, outcome,
        kpi, eval, layout,
    ))
    .boxed();
    let items = recovering_list(item, ITEM_KEYWORDS);

    let header = choice((
        kw("pack").to(FileKind::Pack),
        kw("module").to(FileKind::Module),
    ))
    .labelled("`pack` or `module`")
    .then(ident());
    let trailing = any().repeated().count().validate(|count, e, emitter| {
        if count > 0 {
            emitter.emit(custom(
                e.span(),
                "GX0001",
                "unexpected text after the closing `}`",
            ));
        }
    });
    header
        .then_ignore(sym(TokenKind::LBrace))
        .then(items)
        .then_ignore(close(TokenKind::RBrace, "the pack"))
        .then_ignore(trailing)
        .map_with(|((kind, name), items), e| SourceFile {
            kind: Some(kind),
            name: Some(name),
            items,
            span: sp(e.span()),
        })
}

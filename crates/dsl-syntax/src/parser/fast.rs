//! The fast path: a hand-written recursive-descent parser for files without syntax errors.
//!
//! It follows the chumsky grammar in `parser.rs` rule for rule, with the same ordered
//! choices and the same backtracking, and builds the same tree with the same spans. It does
//! no error bookkeeping at all: wherever the chumsky grammar would recover, report or
//! validate with an error, this parser gives up and returns `None`, and the file is parsed
//! again by the chumsky grammar, which recovers and reports. So the grammar with recovery
//! stays the one authority on errors, and a clean file (the common case: every keystroke in
//! an editor that types correctly, every pack in CI) is parsed in one quick pass.
//!
//! `tests/fast_parser.rs` checks that both parsers build identical trees on every data file,
//! pack and stdlib module, and on generated and mutated input.

use chumsky::span::SimpleSpan;

use super::{
    ITEM_KEYWORDS, MAX_EXPR_DEPTH, META_KEYS, RESERVED, RawPart, Tok, build_string, climb,
    expr_depth, literal_value, number_value,
};
use crate::ast::*;
use crate::lexer::{Token, TokenKind};
use crate::span::Span;

/// How deep the parser itself may recurse (a chain of `else when` is the only unbracketed
/// recursion; brackets are already limited to `MAX_NESTING`).
const MAX_RECURSION: usize = 200;

/// Parses a clean file; `None` when the file has any syntax error (or anything the chumsky
/// grammar would report), so the caller falls back to the reporting parser.
/// `tokens` are the significant tokens (no trivia, no lexer errors).
pub(super) fn parse(source: &str, tokens: &[Token]) -> Option<SourceFile> {
    let mut p = P {
        source,
        tokens,
        pos: 0,
        abort: false,
        depth: 0,
    };
    let file = p.file();
    if p.abort { None } else { file }
}

struct P<'a, 's> {
    source: &'s str,
    tokens: &'a [Token],
    pos: usize,
    /// Set when the chumsky grammar would recover or report here: the result is discarded.
    abort: bool,
    depth: usize,
}

impl<'s> P<'_, 's> {
    // --- Tokens -------------------------------------------------------------------------

    fn tok(&self, index: usize) -> Option<Tok<'s>> {
        let token = self.tokens.get(index)?;
        // Only names, literals and string pieces are looked at by their text.
        let text = match token.kind {
            TokenKind::Ident
            | TokenKind::Int
            | TokenKind::Float
            | TokenKind::Duration
            | TokenKind::Money
            | TokenKind::StrOpen
            | TokenKind::StrText => token.span.text(self.source),
            _ => "",
        };
        Some(Tok {
            kind: token.kind,
            text,
        })
    }

    fn peek(&self) -> Option<Tok<'s>> {
        self.tok(self.pos)
    }

    fn peek_kind(&self) -> Option<TokenKind> {
        self.tokens.get(self.pos).map(|t| t.kind)
    }

    fn at(&self, kind: TokenKind) -> bool {
        self.peek_kind() == Some(kind)
    }

    fn at_kw(&self, word: &str) -> bool {
        match self.tokens.get(self.pos) {
            Some(token) if token.kind == TokenKind::Ident => token.span.text(self.source) == word,
            _ => false,
        }
    }

    fn bump(&mut self) -> SimpleSpan {
        let span = self
            .tokens
            .get(self.pos)
            .map_or(SimpleSpan::from(0..0), |t| SimpleSpan::from(t.span.range()));
        self.pos += 1;
        span
    }

    fn eat(&mut self, kind: TokenKind) -> Option<()> {
        if self.at(kind) {
            self.pos += 1;
            Some(())
        } else {
            None
        }
    }

    fn kw(&mut self, word: &str) -> Option<()> {
        if self.at_kw(word) {
            self.pos += 1;
            Some(())
        } else {
            None
        }
    }

    /// The span of the tokens from `start` to the current position (chumsky's `e.span()`).
    fn span_from(&self, start: usize) -> Span {
        let begin = self.tokens.get(start).map_or(0, |t| t.span.start);
        let end = self
            .tokens
            .get(self.pos.wrapping_sub(1))
            .map_or(begin, |t| t.span.end);
        Span {
            start: begin,
            end: end.max(begin),
        }
    }

    /// Runs `f`; on failure, puts the position back (an ordered-choice alternative).
    fn attempt<T>(&mut self, f: impl FnOnce(&mut Self) -> Option<T>) -> Option<T> {
        if self.abort {
            return None;
        }
        let saved = self.pos;
        let out = f(self);
        if out.is_none() {
            self.pos = saved;
        }
        out
    }

    /// Marks the file as one for the reporting parser.
    fn give_up<T>(&mut self) -> Option<T> {
        self.abort = true;
        None
    }

    fn ident(&mut self) -> Option<Ident> {
        match self.peek() {
            Some(Tok {
                kind: TokenKind::Ident,
                text,
            }) if !RESERVED.contains(&text) => {
                let span = self.bump();
                Some(Ident {
                    name: text.to_owned(),
                    span: Span::new(span.start, span.end),
                })
            }
            _ => None,
        }
    }

    /// `ident ("." ident)*`
    fn path(&mut self) -> Option<Vec<Ident>> {
        let mut out = vec![self.ident()?];
        loop {
            let saved = self.pos;
            if self.eat(TokenKind::Dot).is_none() {
                break;
            }
            match self.ident() {
                Some(ident) => out.push(ident),
                None => {
                    self.pos = saved;
                    break;
                }
            }
        }
        Some(out)
    }

    /// `element ("," element)* ","?` (chumsky's `separated_by(",").allow_trailing()`).
    fn comma_list<T>(&mut self, mut element: impl FnMut(&mut Self) -> Option<T>) -> Vec<T> {
        let mut out = Vec::new();
        match self.attempt(&mut element) {
            Some(first) => out.push(first),
            None => return out,
        }
        loop {
            if self.eat(TokenKind::Comma).is_none() {
                break;
            }
            match self.attempt(&mut element) {
                Some(item) => out.push(item),
                None => break,
            }
        }
        out
    }

    /// `{ element* }`: once inside, an element that does not parse is an error the
    /// reporting parser recovers from.
    fn block<T>(&mut self, mut element: impl FnMut(&mut Self) -> Option<T>) -> Option<Vec<T>> {
        self.eat(TokenKind::LBrace)?;
        let mut out = Vec::new();
        while !self.at(TokenKind::RBrace) {
            let Some(item) = element(self) else {
                return self.give_up();
            };
            out.push(item);
        }
        self.close(TokenKind::RBrace)?;
        Some(out)
    }

    /// A block's closing `}`; anything else is an error the reporting parser describes.
    fn close(&mut self, kind: TokenKind) -> Option<()> {
        if self.eat(kind).is_some() {
            Some(())
        } else {
            self.give_up()
        }
    }

    // --- File and items -----------------------------------------------------------------

    fn file(&mut self) -> Option<SourceFile> {
        let kind = if self.kw("pack").is_some() {
            FileKind::Pack
        } else if self.kw("module").is_some() {
            FileKind::Module
        } else {
            return self.give_up();
        };
        let Some(name) = self.ident() else {
            return self.give_up();
        };
        if self.eat(TokenKind::LBrace).is_none() {
            return self.give_up();
        }
        let mut items = Vec::new();
        while !self.at(TokenKind::RBrace) {
            let Some(item) = self.item().filter(|_| !self.abort) else {
                return self.give_up();
            };
            items.push(item);
        }
        self.close(TokenKind::RBrace)?;
        if self.pos != self.tokens.len() {
            return self.give_up();
        }
        Some(SourceFile {
            kind: Some(kind),
            name: Some(name),
            items,
            span: self.span_from(0),
        })
    }

    fn item(&mut self) -> Option<Item> {
        let start = self.pos;
        let Some(Tok {
            kind: TokenKind::Ident,
            text,
        }) = self.peek()
        else {
            return None;
        };
        if !ITEM_KEYWORDS.contains(&text) {
            return None;
        }
        if META_KEYS.contains(&text) {
            let key = self.bump();
            let value = self.top()?;
            return Some(Item::Meta(MetaItem {
                key: Ident {
                    name: text.to_owned(),
                    span: Span::new(key.start, key.end),
                },
                value,
                span: self.span_from(start),
            }));
        }
        self.pos += 1;
        let item = match text {
            "use" => {
                let target = if self.at(TokenKind::StrOpen) {
                    match self.attempt(|p| p.string()) {
                        Some(lit) => UseTarget::File(lit),
                        None => UseTarget::Module(self.path()?),
                    }
                } else {
                    UseTarget::Module(self.path()?)
                };
                let alias = self.attempt(|p| {
                    p.kw("as")?;
                    p.ident()
                });
                Item::Use(UseItem {
                    target,
                    alias,
                    span: self.span_from(start),
                })
            }
            "input" => {
                let fields = self.fields_block()?;
                Item::Input(InputBlock {
                    fields,
                    span: self.span_from(start),
                })
            }
            "type" => {
                let name = self.ident()?;
                let body = if self.at(TokenKind::LBrace) {
                    TypeDeclBody::Record(self.fields_block()?)
                } else {
                    self.eat(TokenKind::Eq)?;
                    TypeDeclBody::Alias(self.ty()?)
                };
                Item::Type(TypeDecl {
                    name,
                    body,
                    span: self.span_from(start),
                })
            }
            "model" | "knowledge" => {
                let name = self.ident()?;
                self.eat(TokenKind::Eq)?;
                let value = self.top()?;
                let props = self.optional_props()?;
                let span = self.span_from(start);
                if text == "model" {
                    Item::Model(ModelDecl {
                        name,
                        provider: value,
                        props,
                        span,
                    })
                } else {
                    Item::Knowledge(KnowledgeDecl {
                        name,
                        source: value,
                        props,
                        span,
                    })
                }
            }
            "agent" => {
                let name = self.ident()?;
                let props = self.props_block()?;
                Item::Agent(AgentDecl {
                    name,
                    props,
                    span: self.span_from(start),
                })
            }
            "tool" => {
                let name = self.ident()?;
                self.eat(TokenKind::LParen)?;
                let params = self.comma_list(|p| p.field());
                self.close(TokenKind::RParen)?;
                let result = self.arrow_type();
                let props = self.props_block()?;
                Item::Tool(ToolDecl {
                    name,
                    params,
                    result,
                    props,
                    span: self.span_from(start),
                })
            }
            "flow" => {
                let steps = self.block(|p| p.step())?;
                Item::Flow(Flow {
                    steps,
                    span: self.span_from(start),
                })
            }
            "policy" => {
                let rules = self.block(|p| p.rule())?;
                Item::Policy(Policy {
                    rules,
                    span: self.span_from(start),
                })
            }
            "outcome" => {
                self.kw("success")?;
                self.kw("when")?;
                let cond = self.top()?;
                Item::Outcome(Outcome {
                    cond,
                    span: self.span_from(start),
                })
            }
            "kpi" => {
                let name = self.ident()?;
                self.eat(TokenKind::Eq)?;
                let expr = self.top()?;
                let target = self.attempt(|p| {
                    p.kw("target")?;
                    let op = p.comparison_op()?;
                    Some((op, p.top()?))
                });
                Item::Kpi(Kpi {
                    name,
                    expr,
                    target,
                    span: self.span_from(start),
                })
            }
            "eval" => {
                let name = self.string()?;
                let stmts = self.block(|p| p.eval_stmt())?;
                Item::Eval(Eval {
                    name,
                    stmts,
                    span: self.span_from(start),
                })
            }
            "layout" => {
                let entries = self.block(|p| p.attempt(|p| p.layout_entry()))?;
                Item::Layout(Layout {
                    entries,
                    span: self.span_from(start),
                })
            }
            _ => return None,
        };
        Some(item)
    }

    fn field(&mut self) -> Option<Field> {
        let start = self.pos;
        let name = self.ident()?;
        self.eat(TokenKind::Colon)?;
        let ty = self.ty()?;
        let default = self.attempt(|p| {
            p.eat(TokenKind::Eq)?;
            p.top()
        });
        Some(Field {
            name,
            ty,
            default,
            span: self.span_from(start),
        })
    }

    /// `{ (field ","?)* }`: once inside, a field that does not parse is reported.
    fn fields_block(&mut self) -> Option<Vec<Field>> {
        self.eat(TokenKind::LBrace)?;
        let mut fields = Vec::new();
        while !self.at(TokenKind::RBrace) {
            let Some(field) = self.attempt(|p| p.field()) else {
                return self.give_up();
            };
            fields.push(field);
            self.eat(TokenKind::Comma);
        }
        self.close(TokenKind::RBrace)?;
        Some(fields)
    }

    /// `{ (key ":" expr ","?)* }`
    fn props_block(&mut self) -> Option<Vec<Prop>> {
        self.eat(TokenKind::LBrace)?;
        let mut props = Vec::new();
        while !self.at(TokenKind::RBrace) {
            let start = self.pos;
            let Some((key, value)) = self.attempt(|p| {
                let key = p.prop_key()?;
                p.eat(TokenKind::Colon)?;
                Some((key, p.top()?))
            }) else {
                return self.give_up();
            };
            self.eat(TokenKind::Comma);
            props.push(Prop {
                key,
                value,
                span: self.span_from(start),
            });
        }
        self.close(TokenKind::RBrace)?;
        Some(props)
    }

    fn prop_key(&mut self) -> Option<Ident> {
        if let Some(ident) = self.ident() {
            return Some(ident);
        }
        self.attempt(|p| {
            let start = p.pos;
            match p.peek() {
                Some(Tok {
                    kind: TokenKind::StrOpen,
                    text: "\"",
                }) => p.pos += 1,
                _ => return None,
            }
            let Some(Tok {
                kind: TokenKind::StrText,
                text,
            }) = p.peek()
            else {
                return None;
            };
            p.pos += 1;
            p.eat(TokenKind::StrClose)?;
            Some(Ident {
                name: text.to_owned(),
                span: p.span_from(start),
            })
        })
    }

    /// `{ props }` when a `{` follows; no properties otherwise.
    fn optional_props(&mut self) -> Option<Vec<Prop>> {
        if self.at(TokenKind::LBrace) {
            self.props_block()
        } else {
            Some(Vec::new())
        }
    }

    /// `word expr`, optional: nothing is consumed when it does not parse.
    fn keyword_then_top(&mut self, word: &str) -> Option<Expr> {
        self.attempt(|p| {
            p.kw(word)?;
            p.top()
        })
    }

    fn arrow_type(&mut self) -> Option<TypeExpr> {
        self.attempt(|p| {
            p.eat(TokenKind::Arrow)?;
            p.ty()
        })
    }

    fn ty(&mut self) -> Option<TypeExpr> {
        self.enter()?;
        let out = self.ty_inner();
        self.depth -= 1;
        out
    }

    fn ty_inner(&mut self) -> Option<TypeExpr> {
        let start = self.pos;
        let kind = if self.at(TokenKind::StrOpen) {
            let first = self.string()?;
            let mut parts = vec![first];
            loop {
                let saved = self.pos;
                if self.eat(TokenKind::Pipe).is_none() {
                    break;
                }
                match self.attempt(|p| p.string()) {
                    Some(lit) => parts.push(lit),
                    None => {
                        self.pos = saved;
                        break;
                    }
                }
            }
            TypeExprKind::StringUnion(parts)
        } else if self.at(TokenKind::LBracket) {
            self.pos += 1;
            let first = self.ty()?;
            let second = self.attempt(|p| {
                p.eat(TokenKind::Colon)?;
                p.ty()
            });
            self.eat(TokenKind::RBracket)?;
            match second {
                Some(value) => TypeExprKind::Map(Box::new(first), Box::new(value)),
                None => TypeExprKind::List(Box::new(first)),
            }
        } else {
            TypeExprKind::Named(self.path()?)
        };
        let ty = TypeExpr {
            kind,
            span: self.span_from(start),
        };
        if self.eat(TokenKind::Question).is_some() {
            return Some(TypeExpr {
                kind: TypeExprKind::Optional(Box::new(ty)),
                span: self.span_from(start),
            });
        }
        Some(ty)
    }

    // --- Flow ---------------------------------------------------------------------------

    fn step(&mut self) -> Option<Step> {
        let start = self.pos;
        self.kw("step")?;
        let name = self.ident()?;
        self.eat(TokenKind::Eq)?;
        let action = self.action()?;
        Some(Step {
            name,
            action,
            span: self.span_from(start),
        })
    }

    fn enter(&mut self) -> Option<()> {
        self.depth += 1;
        if self.depth > MAX_RECURSION {
            self.depth -= 1;
            return self.give_up();
        }
        Some(())
    }

    fn action(&mut self) -> Option<Action> {
        self.enter()?;
        let out = self.action_inner();
        self.depth -= 1;
        out
    }

    fn action_inner(&mut self) -> Option<Action> {
        let keyword = match self.peek() {
            Some(Tok {
                kind: TokenKind::Ident,
                text,
            }) => text,
            _ => "",
        };
        let found = match keyword {
            "ask" => self.attempt(|p| p.ask()),
            "map" => self.attempt(|p| p.map()),
            "when" => self.attempt(|p| p.when()),
            "route" => self.attempt(|p| p.route()),
            "review" => self.attempt(|p| p.review()),
            "approve" => self.attempt(|p| {
                let start = p.pos;
                p.pos += 1;
                let message = p.top()?;
                Some(Action::Approve(ApproveAction {
                    message,
                    span: p.span_from(start),
                }))
            }),
            _ => None,
        };
        if found.is_some() || self.abort {
            return found;
        }
        self.top().map(Action::Expr)
    }

    /// `{ action }`: once the `{` is read, the reporting parser recovers anything else.
    fn body(&mut self) -> Option<Box<Action>> {
        self.eat(TokenKind::LBrace)?;
        let Some(action) = self.action() else {
            return self.give_up();
        };
        if self.eat(TokenKind::RBrace).is_none() {
            return self.give_up();
        }
        Some(Box::new(action))
    }

    fn ask(&mut self) -> Option<Action> {
        let start = self.pos;
        self.kw("ask")?;
        let target = self.ident()?;
        let output = self.arrow_type();
        let props = self.optional_props()?;
        Some(Action::Ask(Ask {
            target,
            output,
            props,
            span: self.span_from(start),
        }))
    }

    fn map(&mut self) -> Option<Action> {
        let start = self.pos;
        self.kw("map")?;
        let var = self.ident()?;
        self.kw("in")?;
        let source = self.top()?;
        let filter = self.keyword_then_top("where");
        let concurrency = self.keyword_then_top("concurrency");
        let body = self.body()?;
        Some(Action::Map(MapAction {
            var,
            source,
            filter,
            concurrency,
            body,
            span: self.span_from(start),
        }))
    }

    fn when(&mut self) -> Option<Action> {
        self.enter()?;
        let out = self.when_inner();
        self.depth -= 1;
        out
    }

    fn when_inner(&mut self) -> Option<Action> {
        let start = self.pos;
        self.kw("when")?;
        let cond = self.top()?;
        let then = self.body()?;
        let otherwise = self.attempt(|p| {
            p.kw("else")?;
            if let Some(nested) = p.attempt(|p| p.when()) {
                return Some(Box::new(nested));
            }
            if p.abort {
                return None;
            }
            p.body()
        });
        Some(Action::When(WhenAction {
            cond,
            then,
            otherwise,
            span: self.span_from(start),
        }))
    }

    fn route(&mut self) -> Option<Action> {
        let start = self.pos;
        self.kw("route")?;
        let router = self.ident()?;
        self.kw("to")?;
        self.eat(TokenKind::LBracket)?;
        let routes = self.comma_list(|p| p.ident());
        self.eat(TokenKind::RBracket)?;
        let output = self.arrow_type();
        let props = self.optional_props()?;
        Some(Action::Route(RouteAction {
            router,
            routes,
            output,
            props,
            span: self.span_from(start),
        }))
    }

    fn review(&mut self) -> Option<Action> {
        let start = self.pos;
        self.kw("review")?;
        self.kw("by")?;
        let critic = self.ident()?;
        self.kw("until")?;
        let until = self.top()?;
        let max_rounds = self.keyword_then_top("max");
        let body = self.body()?;
        Some(Action::Review(ReviewAction {
            critic,
            until,
            max_rounds,
            body,
            span: self.span_from(start),
        }))
    }

    // --- Policy, KPIs, evals, layout ----------------------------------------------------

    fn rule(&mut self) -> Option<PolicyRule> {
        let start = self.pos;
        let kind = self.attempt(|p| p.rule_kind())?;
        Some(PolicyRule {
            kind,
            span: self.span_from(start),
        })
    }

    fn rule_kind(&mut self) -> Option<PolicyRuleKind> {
        let Some(Tok {
            kind: TokenKind::Ident,
            text,
        }) = self.peek()
        else {
            return None;
        };
        self.pos += 1;
        match text {
            "approve" => Some(PolicyRuleKind::Approve(self.path()?)),
            "auto" => {
                self.kw("approve")?;
                let target = self.path()?;
                let when = self.keyword_then_top("when");
                Some(PolicyRuleKind::AutoApprove { target, when })
            }
            "egress" => {
                self.kw("allow")?;
                Some(PolicyRuleKind::Egress(self.top()?))
            }
            "redact" => {
                let what = self.ident()?;
                self.kw("before")?;
                let before = self.ident()?;
                Some(PolicyRuleKind::Redact { what, before })
            }
            "budget" => {
                let amount = self.top()?;
                let unit = if self.at_kw("per") {
                    None
                } else {
                    self.ident()
                };
                self.kw("per")?;
                let per = self.ident()?;
                Some(PolicyRuleKind::Budget { amount, unit, per })
            }
            "rate" => {
                let target = self.path()?;
                let count = self.top()?;
                self.kw("per")?;
                let window = self.top()?;
                Some(PolicyRuleKind::Rate {
                    target,
                    count,
                    window,
                })
            }
            _ => None,
        }
    }

    fn comparison_op(&mut self) -> Option<BinaryOp> {
        let op = match self.peek_kind()? {
            TokenKind::EqEq => BinaryOp::Eq,
            TokenKind::NotEq => BinaryOp::Ne,
            TokenKind::Lt => BinaryOp::Lt,
            TokenKind::LtEq => BinaryOp::Le,
            TokenKind::Gt => BinaryOp::Gt,
            TokenKind::GtEq => BinaryOp::Ge,
            _ => return None,
        };
        self.pos += 1;
        Some(op)
    }

    fn eval_stmt(&mut self) -> Option<EvalStmt> {
        let start = self.pos;
        let kind = self.attempt(|p| {
            let Some(Tok {
                kind: TokenKind::Ident,
                text,
            }) = p.peek()
            else {
                return None;
            };
            p.pos += 1;
            match text {
                "mock" => {
                    let target = p.path()?;
                    p.kw("returns")?;
                    let value = p.top()?;
                    Some(EvalStmtKind::Mock { target, value })
                }
                "input" => {
                    let name = p.ident()?;
                    p.eat(TokenKind::Eq)?;
                    let value = p.top()?;
                    Some(EvalStmtKind::Input { name, value })
                }
                "approve" | "reject" => {
                    let target = p.ident()?;
                    Some(EvalStmtKind::Approve {
                        approve: text == "approve",
                        target,
                    })
                }
                "expect" => Some(EvalStmtKind::Expect(p.top()?)),
                _ => None,
            }
        })?;
        Some(EvalStmt {
            kind,
            span: self.span_from(start),
        })
    }

    fn layout_entry(&mut self) -> Option<LayoutEntry> {
        let start = self.pos;
        let name = self.ident()?;
        self.eat(TokenKind::Colon)?;
        self.eat(TokenKind::LParen)?;
        let x = self.number()?;
        self.eat(TokenKind::Comma)?;
        let y = self.number()?;
        self.eat(TokenKind::RParen)?;
        self.eat(TokenKind::Comma);
        Some(LayoutEntry {
            name,
            x,
            y,
            span: self.span_from(start),
        })
    }

    fn number(&mut self) -> Option<f64> {
        let minus = self.eat(TokenKind::Minus).is_some();
        match self.peek() {
            Some(Tok {
                kind: TokenKind::Int | TokenKind::Float,
                text,
            }) => {
                self.pos += 1;
                let value = number_value(text).unwrap_or(0.0);
                Some(if minus { -value } else { value })
            }
            _ => None,
        }
    }

    // --- Expressions --------------------------------------------------------------------

    /// An expression in a position of its own, checked for depth.
    fn top(&mut self) -> Option<Expr> {
        let expr = self.expr()?;
        if expr.span.len() as usize > MAX_EXPR_DEPTH && expr_depth(&expr) > MAX_EXPR_DEPTH {
            return self.give_up();
        }
        Some(expr)
    }

    /// `operand (op operand)*`, then precedence climbing (as the chumsky grammar does).
    fn expr(&mut self) -> Option<Expr> {
        self.enter()?;
        let out = self.expr_inner();
        self.depth -= 1;
        out
    }

    fn expr_inner(&mut self) -> Option<Expr> {
        let first = self.unary()?;
        let first_span = first.span;
        let mut rest = Vec::new();
        loop {
            let saved = self.pos;
            let Some(op) = self.binary_op() else {
                break;
            };
            match self.unary() {
                Some(operand) => {
                    let span = operand.span;
                    rest.push((op, (operand, span)));
                }
                None => {
                    self.pos = saved;
                    break;
                }
            }
            if self.abort {
                return None;
            }
        }
        if self.abort {
            return None;
        }
        Some(climb((first, first_span), rest))
    }

    fn binary_op(&mut self) -> Option<BinaryOp> {
        let op = match self.peek()? {
            Tok {
                kind: TokenKind::Star,
                ..
            } => BinaryOp::Mul,
            Tok {
                kind: TokenKind::Slash,
                ..
            } => BinaryOp::Div,
            Tok {
                kind: TokenKind::Plus,
                ..
            } => BinaryOp::Add,
            Tok {
                kind: TokenKind::Minus,
                ..
            } => BinaryOp::Sub,
            Tok {
                kind: TokenKind::EqEq,
                ..
            } => BinaryOp::Eq,
            Tok {
                kind: TokenKind::NotEq,
                ..
            } => BinaryOp::Ne,
            Tok {
                kind: TokenKind::LtEq,
                ..
            } => BinaryOp::Le,
            Tok {
                kind: TokenKind::GtEq,
                ..
            } => BinaryOp::Ge,
            Tok {
                kind: TokenKind::Lt,
                ..
            } => BinaryOp::Lt,
            Tok {
                kind: TokenKind::Gt,
                ..
            } => BinaryOp::Gt,
            Tok {
                kind: TokenKind::Ident,
                text: "and",
            } => BinaryOp::And,
            Tok {
                kind: TokenKind::Ident,
                text: "or",
            } => BinaryOp::Or,
            _ => return None,
        };
        self.pos += 1;
        Some(op)
    }

    /// `("not" | "-")* postfix`, folded from the right; each operator's node spans from the
    /// operator to the end of its operand.
    fn unary(&mut self) -> Option<Expr> {
        let mut ops = Vec::new();
        let saved = self.pos;
        loop {
            if self.at_kw("not") {
                ops.push((UnaryOp::Not, self.pos));
                self.pos += 1;
            } else if self.at(TokenKind::Minus) {
                ops.push((UnaryOp::Neg, self.pos));
                self.pos += 1;
            } else {
                break;
            }
        }
        let Some(mut expr) = self.postfix() else {
            self.pos = saved;
            return None;
        };
        for (op, at) in ops.into_iter().rev() {
            expr = Expr {
                kind: ExprKind::Unary(op, Box::new(expr)),
                span: self.span_from(at),
            };
        }
        Some(expr)
    }

    /// `atom ("." name | "[" expr "]" | "(" args ")")*`, folded from the left.
    fn postfix(&mut self) -> Option<Expr> {
        let start = self.pos;
        let mut expr = self.atom()?;
        loop {
            let saved = self.pos;
            let kind = match self.peek_kind() {
                Some(TokenKind::Dot) => {
                    self.pos += 1;
                    match self.ident() {
                        Some(name) => ExprKind::Field(Box::new(expr), name),
                        None => {
                            self.pos = saved;
                            break;
                        }
                    }
                }
                Some(TokenKind::LBracket) => {
                    self.pos += 1;
                    let index = self.expr().and_then(|index| {
                        self.eat(TokenKind::RBracket)?;
                        Some(index)
                    });
                    match index {
                        Some(index) => ExprKind::Index(Box::new(expr), Box::new(index)),
                        None => {
                            if self.abort {
                                return None;
                            }
                            self.pos = saved;
                            break;
                        }
                    }
                }
                Some(TokenKind::LParen) => match self.args() {
                    Some(args) => ExprKind::Call(Box::new(expr), args),
                    None => {
                        if self.abort {
                            return None;
                        }
                        self.pos = saved;
                        break;
                    }
                },
                _ => break,
            };
            expr = Expr {
                kind,
                span: self.span_from(start),
            };
        }
        Some(expr)
    }

    fn args(&mut self) -> Option<Vec<Arg>> {
        self.eat(TokenKind::LParen)?;
        let args = self.comma_list(|p| {
            let start = p.pos;
            let name = p.attempt(|p| {
                let name = p.ident()?;
                p.eat(TokenKind::Colon)?;
                Some(name)
            });
            let value = p.expr()?;
            Some(Arg {
                name,
                value,
                span: p.span_from(start),
            })
        });
        if self.abort {
            return None;
        }
        self.eat(TokenKind::RParen)?;
        Some(args)
    }

    fn atom(&mut self) -> Option<Expr> {
        let start = self.pos;
        let at_group = matches!(
            self.peek_kind(),
            Some(TokenKind::LParen | TokenKind::LBracket)
        );
        let out = self.attempt(|p| p.atom_inner(start));
        if out.is_none() && at_group {
            // The chumsky grammar recovers a broken bracketed group here, with an error.
            return self.give_up();
        }
        out
    }

    fn atom_inner(&mut self, start: usize) -> Option<Expr> {
        let tok = self.peek()?;
        let kind = match tok.kind {
            TokenKind::Int | TokenKind::Float | TokenKind::Duration | TokenKind::Money => {
                self.pos += 1;
                match literal_value(tok.kind, tok.text) {
                    Ok(kind) => kind,
                    Err(_) => return self.give_up(),
                }
            }
            TokenKind::StrOpen => ExprKind::Str(self.string()?),
            TokenKind::Ident => match tok.text {
                "true" => {
                    self.pos += 1;
                    ExprKind::Bool(true)
                }
                "false" => {
                    self.pos += 1;
                    ExprKind::Bool(false)
                }
                "none" => {
                    self.pos += 1;
                    ExprKind::None
                }
                "step" if self.step_header_follows() => return None,
                _ => ExprKind::Name(self.ident()?),
            },
            TokenKind::LBracket => {
                self.pos += 1;
                let items = self.comma_list(|p| p.expr());
                if self.abort {
                    return None;
                }
                self.eat(TokenKind::RBracket)?;
                ExprKind::List(items)
            }
            TokenKind::LBrace => {
                self.pos += 1;
                let mut props = Vec::new();
                loop {
                    let prop_start = self.pos;
                    let Some((key, value)) = self.attempt(|p| {
                        let key = p.prop_key()?;
                        p.eat(TokenKind::Colon)?;
                        Some((key, p.expr()?))
                    }) else {
                        break;
                    };
                    props.push(Prop {
                        key,
                        value,
                        span: self.span_from(prop_start),
                    });
                    self.eat(TokenKind::Comma);
                }
                if self.abort {
                    return None;
                }
                self.eat(TokenKind::RBrace)?;
                ExprKind::Record(props)
            }
            TokenKind::LParen => {
                self.pos += 1;
                let inner = self.expr()?;
                self.eat(TokenKind::RParen)?;
                return Some(Expr {
                    span: self.span_from(start),
                    ..inner
                });
            }
            _ => return None,
        };
        Some(Expr {
            kind,
            span: self.span_from(start),
        })
    }

    /// `step NAME` starts the next step, so `step` is not read as a name there.
    fn step_header_follows(&self) -> bool {
        matches!(
            self.tok(self.pos + 1),
            Some(Tok { kind: TokenKind::Ident, text }) if !RESERVED.contains(&text)
        )
    }

    /// `"text {hole} text"` or a text block.
    fn string(&mut self) -> Option<StringLit> {
        let start = self.pos;
        let (quote, open_span) = match self.peek() {
            Some(Tok {
                kind: TokenKind::StrOpen,
                text,
            }) => (text, self.bump()),
            _ => return None,
        };
        let mut parts = Vec::new();
        loop {
            match self.peek_kind() {
                Some(TokenKind::StrText) => parts.push(RawPart::Text(self.bump())),
                Some(TokenKind::HoleOpen) => {
                    self.pos += 1;
                    let Some(expr) = self.expr() else {
                        return self.give_up();
                    };
                    if self.eat(TokenKind::HoleClose).is_none() {
                        return self.give_up();
                    }
                    parts.push(RawPart::Hole(expr));
                }
                Some(TokenKind::StrClose) => break,
                _ => return self.give_up(),
            }
        }
        let close_span = self.bump();
        let span = self.span_from(start);
        let mut bad = false;
        let lit = build_string(
            self.source,
            quote,
            open_span,
            parts,
            close_span,
            SimpleSpan::from(span.start as usize..span.end as usize),
            |_, _| bad = true,
        );
        if bad {
            return self.give_up();
        }
        Some(lit)
    }
}

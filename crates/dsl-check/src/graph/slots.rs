//! The settable properties of a step's action, by path (`args.query`, `prompt`, `where`,
//! `body.prompt`, ..): where each one's value is written, how to remove it, and where a
//! missing one is inserted. Export lists them; `SetProperty`, `Connect` and `Disconnect`
//! edit them.

use dsl_syntax::ast::{Action, Arg, Expr, ExprKind, Ident, Prop, StrPart, TypeExpr};
use dsl_syntax::{Span, Token, TokenKind};

/// The text and tokens of the file the actions come from.
#[derive(Clone, Copy)]
pub(crate) struct Ctx<'a> {
    /// The file's text.
    pub(crate) source: &'a str,
    /// Its tokens.
    pub(crate) tokens: &'a [Token],
}

impl Ctx<'_> {
    /// The span of `expr` with the parentheses that belong to it: the parser's span of
    /// `(a + b) * c` starts inside the first group, so widen it until its parentheses
    /// balance.
    pub(crate) fn expr(&self, expr: &Expr) -> Span {
        self.balance(expr.span)
    }

    /// The span of an action (see [`Ctx::expr`]).
    pub(crate) fn action(&self, action: &Action) -> Span {
        self.balance(action.span())
    }

    fn balance(&self, span: Span) -> Span {
        let first = self.tokens.partition_point(|t| t.span.start < span.start);
        let last = self.tokens.partition_point(|t| t.span.start < span.end);
        let Some(inside) = self.tokens.get(first..last) else {
            return span;
        };
        let (mut depth, mut lowest) = (0i64, 0i64);
        for token in inside {
            match token.kind {
                TokenKind::LParen => depth += 1,
                TokenKind::RParen => {
                    depth -= 1;
                    lowest = lowest.min(depth);
                }
                _ => {}
            }
        }
        let (mut open_needed, mut close_needed) = (-lowest, depth - lowest);
        if open_needed == 0 && close_needed == 0 {
            return span;
        }
        let mut start = span.start;
        let mut index = first;
        while open_needed > 0 && index > 0 {
            index -= 1;
            match self.tokens.get(index) {
                Some(t) if t.kind == TokenKind::LParen => {
                    open_needed -= 1;
                    start = t.span.start;
                }
                Some(t) if t.kind.is_trivia() => {}
                _ => return span,
            }
        }
        let mut end = span.end;
        let mut index = last;
        while close_needed > 0 {
            match self.tokens.get(index) {
                Some(t) if t.kind == TokenKind::RParen => {
                    close_needed -= 1;
                    end = t.span.end;
                }
                Some(t) if t.kind.is_trivia() => {}
                _ => return span,
            }
            index += 1;
        }
        Span { start, end }
    }
}

/// Where a property stands in the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Slot {
    /// The property is written: its value's span, and the span to delete to remove it
    /// (`None` when the property is required).
    Present {
        /// The value.
        value: Span,
        /// What to delete to remove the property.
        removal: Option<Span>,
    },
    /// The property is optional and missing: insert `before + value + after` at `at`.
    Absent {
        /// Insertion offset.
        at: u32,
        /// Text before the value.
        before: String,
        /// Text after the value.
        after: String,
    },
}

/// Every property present in `action`, with its value span, paths prefixed by `prefix`.
pub(crate) fn list(action: &Action, cx: Ctx<'_>, prefix: &str, out: &mut Vec<(String, Span)>) {
    let mut push = |name: &str, span: Span| out.push((format!("{prefix}{name}"), span));
    match action {
        Action::Expr(expr) => match &expr.kind {
            ExprKind::Call(_, args) => {
                for (i, arg) in args.iter().enumerate() {
                    match &arg.name {
                        Some(name) => push(&format!("args.{}", name.name), cx.expr(&arg.value)),
                        None => push(&format!("args.{i}"), cx.expr(&arg.value)),
                    }
                }
            }
            _ => push("expr", cx.expr(expr)),
        },
        Action::Ask(ask) => {
            push("agent", ask.target.span);
            if let Some(output) = &ask.output {
                push("output", output.span);
            }
            props(&ask.props, cx, &mut push);
        }
        Action::Map(map) => {
            push("var", map.var.span);
            push("in", cx.expr(&map.source));
            if let Some(filter) = &map.filter {
                push("where", cx.expr(filter));
            }
            if let Some(concurrency) = &map.concurrency {
                push("concurrency", cx.expr(concurrency));
            }
            push("body", cx.action(&map.body));
            list(&map.body, cx, &format!("{prefix}body."), out);
        }
        Action::When(when) => {
            push("cond", cx.expr(&when.cond));
            push("then", cx.action(&when.then));
            let otherwise = when.otherwise.as_deref();
            if let Some(otherwise) = otherwise {
                push("else", cx.action(otherwise));
            }
            list(&when.then, cx, &format!("{prefix}then."), out);
            if let Some(otherwise) = otherwise {
                list(otherwise, cx, &format!("{prefix}else."), out);
            }
        }
        Action::Route(route) => {
            push("router", route.router.span);
            if let Some(span) = routes_span(cx.source, route.router.span.end, &route.routes) {
                push("routes", span);
            }
            if let Some(output) = &route.output {
                push("output", output.span);
            }
            props(&route.props, cx, &mut push);
        }
        Action::Review(review) => {
            push("critic", review.critic.span);
            push("until", cx.expr(&review.until));
            if let Some(max) = &review.max_rounds {
                push("max", cx.expr(max));
            }
            push("body", cx.action(&review.body));
            list(&review.body, cx, &format!("{prefix}body."), out);
        }
        Action::Approve(approve) => push("message", cx.expr(&approve.message)),
        Action::Error(_) => {}
    }
}

fn props(props: &[Prop], cx: Ctx<'_>, push: &mut impl FnMut(&str, Span)) {
    for prop in props {
        push(&prop.key.name, cx.expr(&prop.value));
    }
}

/// Finds property `path` of `action` (whose text is in `source`).
pub(crate) fn locate(action: &Action, cx: Ctx<'_>, path: &str) -> Option<Slot> {
    let source = cx.source;
    if path == "action" {
        return Some(present(cx.action(action), None));
    }
    let (head, rest) = match path.split_once('.') {
        Some((head, rest)) => (head, Some(rest)),
        None => (path, None),
    };
    match action {
        Action::Expr(expr) => match (&expr.kind, head, rest) {
            (ExprKind::Call(callee, args), "args", Some(name)) => {
                call_arg(cx, expr, callee, args, name)
            }
            (_, "expr", None) => Some(present(cx.expr(expr), None)),
            _ => None,
        },
        Action::Ask(ask) => match (head, rest) {
            ("agent", None) => Some(ident(&ask.target)),
            ("output", None) => Some(output(&ask.output, ask.target.span.end)),
            (key, None) => {
                let after = ask
                    .output
                    .as_ref()
                    .map(|o| o.span.end)
                    .unwrap_or(ask.target.span.end);
                block_prop(cx, &ask.props, key, after, ask.span)
            }
            _ => None,
        },
        Action::Map(map) => match (head, rest) {
            ("var", None) => Some(ident(&map.var)),
            ("in", None) => Some(present(cx.expr(&map.source), None)),
            ("where", None) => Some(optional(
                cx,
                map.filter.as_ref(),
                cx.expr(&map.source).end,
                " where ",
            )),
            ("concurrency", None) => {
                let after = map
                    .filter
                    .as_ref()
                    .map(|f| cx.expr(f).end)
                    .unwrap_or(cx.expr(&map.source).end);
                Some(optional(
                    cx,
                    map.concurrency.as_ref(),
                    after,
                    " concurrency ",
                ))
            }
            ("body", None) => Some(present(cx.action(&map.body), None)),
            ("body", Some(rest)) => locate(&map.body, cx, rest),
            _ => None,
        },
        Action::When(when) => {
            let then_end = brace_after(source, cx.action(&when.then).end);
            match (head, rest) {
                ("cond", None) => Some(present(cx.expr(&when.cond), None)),
                ("then", None) => Some(present(cx.action(&when.then), None)),
                ("then", Some(rest)) => locate(&when.then, cx, rest),
                ("else", None) => Some(match &when.otherwise {
                    Some(otherwise) => present(
                        cx.action(otherwise),
                        Some(Span {
                            start: then_end,
                            end: when.span.end,
                        }),
                    ),
                    None => Slot::Absent {
                        at: then_end,
                        before: " else { ".into(),
                        after: " }".into(),
                    },
                }),
                ("else", Some(rest)) => locate(when.otherwise.as_deref()?, cx, rest),
                _ => None,
            }
        }
        Action::Route(route) => {
            let routes_span = routes_span(cx.source, route.router.span.end, &route.routes);
            match (head, rest) {
                ("router", None) => Some(ident(&route.router)),
                ("routes", None) => Some(present(routes_span?, None)),
                ("output", None) => Some(output(&route.output, routes_span?.end)),
                (key, None) => {
                    let after = route
                        .output
                        .as_ref()
                        .map(|o| o.span.end)
                        .or(routes_span.map(|s| s.end))?;
                    block_prop(cx, &route.props, key, after, route.span)
                }
                _ => None,
            }
        }
        Action::Review(review) => match (head, rest) {
            ("critic", None) => Some(ident(&review.critic)),
            ("until", None) => Some(present(cx.expr(&review.until), None)),
            ("max", None) => Some(optional(
                cx,
                review.max_rounds.as_ref(),
                cx.expr(&review.until).end,
                " max ",
            )),
            ("body", None) => Some(present(cx.action(&review.body), None)),
            ("body", Some(rest)) => locate(&review.body, cx, rest),
            _ => None,
        },
        Action::Approve(approve) => match (head, rest) {
            ("message", None) => Some(present(cx.expr(&approve.message), None)),
            _ => None,
        },
        Action::Error(_) => None,
    }
}

fn present(value: Span, removal: Option<Span>) -> Slot {
    Slot::Present { value, removal }
}

fn ident(ident: &Ident) -> Slot {
    present(ident.span, None)
}

/// `-> Type` after `after`.
fn output(output: &Option<TypeExpr>, after: u32) -> Slot {
    match output {
        Some(ty) => present(
            ty.span,
            Some(Span {
                start: after,
                end: ty.span.end,
            }),
        ),
        None => Slot::Absent {
            at: after,
            before: " -> ".into(),
            after: String::new(),
        },
    }
}

/// An optional clause ` keyword EXPR` written after `after`.
fn optional(cx: Ctx<'_>, expr: Option<&Expr>, after: u32, keyword: &str) -> Slot {
    match expr {
        Some(expr) => present(
            cx.expr(expr),
            Some(Span {
                start: after,
                end: cx.expr(expr).end,
            }),
        ),
        None => Slot::Absent {
            at: after,
            before: keyword.into(),
            after: String::new(),
        },
    }
}

/// The offset just past the first `}` at or after `from`.
fn brace_after(source: &str, from: u32) -> u32 {
    source
        .get(from as usize..)
        .and_then(|rest| rest.find('}'))
        .map(|i| from + i as u32 + 1)
        .unwrap_or(from)
}

/// `[a, b]` of a route, brackets included.
fn routes_span(source: &str, router_end: u32, routes: &[Ident]) -> Option<Span> {
    let open = router_end + source.get(router_end as usize..)?.find('[')? as u32;
    let search_from = routes.last().map(|r| r.span.end).unwrap_or(open + 1);
    let close = search_from + source.get(search_from as usize..)?.find(']')? as u32;
    Some(Span {
        start: open,
        end: close + 1,
    })
}

/// The span that removes element `index` of a comma-separated list inside `inner`.
fn list_removal(spans: &[Span], index: usize, inner: Span) -> Option<Span> {
    let this = spans.get(index)?;
    if spans.len() == 1 {
        return Some(inner);
    }
    match spans.get(index + 1) {
        Some(next) => Some(Span {
            start: this.start,
            end: next.start,
        }),
        None => Some(Span {
            start: spans.get(index.checked_sub(1)?)?.end,
            end: this.end,
        }),
    }
}

fn call_arg(cx: Ctx<'_>, call: &Expr, callee: &Expr, args: &[Arg], name: &str) -> Option<Slot> {
    let source = cx.source;
    let open = callee.span.end + source.get(callee.span.end as usize..)?.find('(')? as u32;
    let close = call.span.end.checked_sub(1)?;
    if source.get(close as usize..call.span.end as usize) != Some(")") {
        return None;
    }
    let inner = Span {
        start: open + 1,
        end: close,
    };
    let spans: Vec<Span> = args
        .iter()
        .map(|a| a.span.cover(cx.expr(&a.value)))
        .collect();
    if let Ok(position) = name.parse::<usize>() {
        let arg = args.get(position).filter(|a| a.name.is_none())?;
        return Some(present(cx.expr(&arg.value), None));
    }
    if let Some((i, arg)) = args
        .iter()
        .enumerate()
        .find(|(_, a)| a.name.as_ref().is_some_and(|n| n.name == name))
    {
        return Some(present(cx.expr(&arg.value), list_removal(&spans, i, inner)));
    }
    Some(match args.last() {
        Some(last) => Slot::Absent {
            at: last.span.cover(cx.expr(&last.value)).end,
            before: format!(", {name}: "),
            after: String::new(),
        },
        None => Slot::Absent {
            at: close,
            before: format!("{name}: "),
            after: String::new(),
        },
    })
}

/// A property of an `ask`/`route` block; the block (if any) follows `after`.
fn block_prop(cx: Ctx<'_>, props: &[Prop], key: &str, after: u32, whole: Span) -> Option<Slot> {
    let source = cx.source;
    if !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') || key.is_empty() {
        return None;
    }
    let has_block = source
        .get(after as usize..whole.end as usize)
        .is_some_and(|rest| rest.trim_start().starts_with('{'));
    if let Some((i, prop)) = props.iter().enumerate().find(|(_, p)| p.key.name == key) {
        let open = after + source.get(after as usize..)?.find('{')? as u32;
        let inner = Span {
            start: open + 1,
            end: whole.end.checked_sub(1)?,
        };
        let spans: Vec<Span> = props
            .iter()
            .map(|p| p.span.cover(cx.expr(&p.value)))
            .collect();
        return Some(present(
            cx.expr(&prop.value),
            list_removal(&spans, i, inner),
        ));
    }
    Some(match (props.last(), has_block) {
        (Some(last), _) => Slot::Absent {
            at: last.span.cover(cx.expr(&last.value)).end,
            before: format!(", {key}: "),
            after: String::new(),
        },
        (None, true) => Slot::Absent {
            at: whole.end.checked_sub(1)?,
            before: format!(" {key}: "),
            after: " ".into(),
        },
        (None, false) => Slot::Absent {
            at: whole.end,
            before: format!(" {{ {key}: "),
            after: " }".into(),
        },
    })
}

/// The JSON value of a literal expression; `None` for anything computed.
pub(crate) fn literal_json(expr: &Expr) -> Option<serde_json::Value> {
    use serde_json::Value;
    Some(match &expr.kind {
        ExprKind::Int(n) => Value::from(*n),
        ExprKind::Float(x) => serde_json::Number::from_f64(*x).map(Value::Number)?,
        ExprKind::Bool(b) => Value::Bool(*b),
        ExprKind::None => Value::Null,
        ExprKind::Str(lit) => {
            let mut text = String::new();
            for part in &lit.parts {
                match part {
                    StrPart::Text(t) => text.push_str(t),
                    StrPart::Hole(_) => return None,
                }
            }
            Value::String(text)
        }
        ExprKind::Unary(dsl_syntax::ast::UnaryOp::Neg, inner) => match &inner.kind {
            ExprKind::Int(n) => Value::from(n.checked_neg()?),
            ExprKind::Float(x) => serde_json::Number::from_f64(-*x).map(Value::Number)?,
            _ => return None,
        },
        ExprKind::List(items) => {
            Value::Array(items.iter().map(literal_json).collect::<Option<Vec<_>>>()?)
        }
        ExprKind::Record(props) => {
            let mut map = serde_json::Map::new();
            for prop in props {
                map.insert(prop.key.name.clone(), literal_json(&prop.value)?);
            }
            Value::Object(map)
        }
        _ => return None,
    })
}

/// The expression whose (balanced) span is exactly `span` inside `action`, for literal
/// values.
pub(crate) fn expr_at<'e>(action: &'e Action, cx: Ctx<'_>, span: Span) -> Option<&'e Expr> {
    fn find<'e>(expr: &'e Expr, cx: Ctx<'_>, span: Span) -> Option<&'e Expr> {
        // Skip expressions that do not overlap `span` without balancing their spans.
        if expr.span.end < span.start || expr.span.start > span.end {
            return None;
        }
        let inside = span.start <= expr.span.start && expr.span.end <= span.end;
        if inside && cx.expr(expr) == span {
            return Some(expr);
        }
        if let ExprKind::Call(_, args) = &expr.kind {
            return args.iter().find_map(|a| find(&a.value, cx, span));
        }
        None
    }
    let in_props = |props: &'e [Prop]| props.iter().find_map(|p| find(&p.value, cx, span));
    match action {
        Action::Expr(expr) => find(expr, cx, span),
        Action::Ask(ask) => in_props(&ask.props),
        Action::Map(map) => [
            Some(&map.source),
            map.filter.as_ref(),
            map.concurrency.as_ref(),
        ]
        .into_iter()
        .flatten()
        .find_map(|e| find(e, cx, span))
        .or_else(|| expr_at(&map.body, cx, span)),
        Action::When(when) => find(&when.cond, cx, span)
            .or_else(|| expr_at(&when.then, cx, span))
            .or_else(|| when.otherwise.as_deref().and_then(|o| expr_at(o, cx, span))),
        Action::Route(route) => in_props(&route.props),
        Action::Review(review) => find(&review.until, cx, span)
            .or_else(|| review.max_rounds.as_ref().and_then(|m| find(m, cx, span)))
            .or_else(|| expr_at(&review.body, cx, span)),
        Action::Approve(approve) => find(&approve.message, cx, span),
        Action::Error(_) => None,
    }
}

//! The canonical formatter: one layout for every pack, every comment kept.
//!
//! It prints the syntax tree afresh and weaves the comments from the token side table back
//! in: a comment on a line of its own stays above the element after it, a comment at the end
//! of a line stays at the end of that line, and one blank line between elements survives.
//! Strings and numbers are printed exactly as written. An expression with a comment inside
//! it is printed as written, so that no comment is ever lost. A file with syntax errors is
//! not formatted.

use crate::ast::*;
use crate::diagnostic::Diagnostic;
use crate::span::Span;

/// The column past which lists, records and calls break over several lines.
pub const MAX_WIDTH: usize = 100;

const INDENT: &str = "  ";

/// Formats `source`. Fails with the syntax errors when the file does not parse cleanly.
pub fn format(source: &str) -> Result<String, Vec<Diagnostic>> {
    let parse = crate::parse(source);
    if parse.has_errors() {
        return Err(parse.errors);
    }
    let comments: Vec<Span> = parse
        .tokens
        .iter()
        .filter(|t| t.kind.is_comment())
        .map(|t| t.span)
        .collect();
    let mut printer = Printer {
        source,
        out: String::with_capacity(source.len() + 64),
        comments,
        next_comment: 0,
        indent: 0,
        last_end: 0,
        flat: false,
    };
    printer.file(&parse.file);
    Ok(printer.out)
}

struct Printer<'a> {
    source: &'a str,
    out: String,
    comments: Vec<Span>,
    next_comment: usize,
    indent: usize,
    /// End of the last element or comment printed, for blank-line detection.
    last_end: u32,
    /// Inside a flat rendering: nested expressions stay on one line.
    flat: bool,
}

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

impl<'a> Printer<'a> {
    fn text(&self, span: Span) -> &'a str {
        span.text(self.source)
    }

    fn write_indent(&mut self) {
        for _ in 0..self.indent {
            self.out.push_str(INDENT);
        }
    }

    fn column(&self) -> usize {
        self.out.len() - self.out.rfind('\n').map(|i| i + 1).unwrap_or(0)
    }

    /// Whether the source has an empty line between `from` and `to` (outside comments).
    fn blank_between(&self, from: u32, to: u32) -> bool {
        let gap = self.source.get(from as usize..to as usize).unwrap_or("");
        gap.matches('\n').count() >= 2 && gap.trim().is_empty()
    }

    /// Prints the comments that start before `offset`, each on a line of its own.
    fn leading_comments(&mut self, offset: u32) {
        while let Some(&comment) = self.comments.get(self.next_comment) {
            if comment.start >= offset {
                break;
            }
            self.next_comment += 1;
            if self.last_end > 0
                && self.blank_between(self.last_end, comment.start)
                && !self.out.ends_with("{\n")
            {
                self.out.push('\n');
            }
            self.write_indent();
            self.out.push_str(self.text(comment).trim_end());
            self.out.push('\n');
            self.last_end = comment.end;
        }
    }

    /// Appends a comment that sits on the same source line after `offset`, if any.
    fn trailing_comment(&mut self, offset: u32) {
        if let Some(&comment) = self.comments.get(self.next_comment) {
            let gap = self
                .source
                .get(offset as usize..comment.start as usize)
                .unwrap_or("\n");
            if !gap.contains('\n') && gap.trim().is_empty() {
                self.next_comment += 1;
                self.out.push(' ');
                self.out.push_str(self.text(comment).trim_end());
                self.last_end = comment.end;
            }
        }
    }

    /// Prints one element on its own line(s): leading comments, a kept blank line, the
    /// element, a trailing comment.
    fn line(&mut self, span: Span, print: impl FnOnce(&mut Self)) {
        self.leading_comments(span.start);
        if self.last_end > 0
            && self.blank_between(self.last_end, span.start)
            && !self.out.ends_with("{\n")
        {
            self.out.push('\n');
        }
        self.write_indent();
        print(self);
        self.last_end = self.last_end.max(span.end);
        self.trailing_comment(span.end);
        self.out.push('\n');
    }

    /// Opens a block: ` {` and a line break; the caller prints the content then calls `close`.
    fn open(&mut self) {
        self.out.push_str(" {\n");
        self.indent += 1;
    }

    /// Closes a block at `end` (the offset of its `}`), flushing comments inside it first.
    fn close(&mut self, end: u32) {
        self.leading_comments(end);
        self.indent = self.indent.saturating_sub(1);
        self.write_indent();
        self.out.push('}');
        self.last_end = end;
    }

    fn file(&mut self, file: &SourceFile) {
        let (Some(kind), Some(name)) = (file.kind, &file.name) else {
            return;
        };
        self.leading_comments(file.span.start);
        self.out.push_str(match kind {
            FileKind::Pack => "pack ",
            FileKind::Module => "module ",
        });
        self.out.push_str(&name.name);
        self.last_end = name.span.end;
        self.open();
        for item in &file.items {
            self.line(item.span(), |p| p.item(item));
        }
        self.close(file.span.end.saturating_sub(1));
        self.trailing_comment(file.span.end);
        self.out.push('\n');
        // Comments after the closing brace.
        while let Some(&comment) = self.comments.get(self.next_comment) {
            self.next_comment += 1;
            self.out.push_str(self.text(comment).trim_end());
            self.out.push('\n');
        }
    }

    fn item(&mut self, item: &Item) {
        match item {
            Item::Meta(meta) => {
                self.out.push_str(&meta.key.name);
                self.out.push(' ');
                self.expr(&meta.value);
            }
            Item::Use(use_item) => {
                self.out.push_str("use ");
                match &use_item.target {
                    UseTarget::Module(path) => self.path(path),
                    UseTarget::File(lit) => self.out.push_str(self.text(lit.span)),
                }
                if let Some(alias) = &use_item.alias {
                    self.out.push_str(" as ");
                    self.out.push_str(&alias.name);
                }
            }
            Item::Input(input) => {
                self.out.push_str("input");
                self.fields_block(&input.fields, input.span.end);
            }
            Item::Type(decl) => {
                self.out.push_str("type ");
                self.out.push_str(&decl.name.name);
                match &decl.body {
                    TypeDeclBody::Record(fields) => self.fields_block(fields, decl.span.end),
                    TypeDeclBody::Alias(ty) => {
                        self.out.push_str(" = ");
                        self.ty(ty);
                    }
                }
            }
            Item::Model(model) => {
                self.out.push_str("model ");
                self.out.push_str(&model.name.name);
                self.out.push_str(" = ");
                self.expr(&model.provider);
                self.props_block(&model.props, model.span.end, true);
            }
            Item::Knowledge(knowledge) => {
                self.out.push_str("knowledge ");
                self.out.push_str(&knowledge.name.name);
                self.out.push_str(" = ");
                self.expr(&knowledge.source);
                self.props_block(&knowledge.props, knowledge.span.end, true);
            }
            Item::Agent(agent) => {
                self.out.push_str("agent ");
                self.out.push_str(&agent.name.name);
                if agent.props.is_empty() {
                    self.out.push_str(" {}");
                }
                self.props_block(&agent.props, agent.span.end, true);
            }
            Item::Tool(tool) => {
                self.out.push_str("tool ");
                self.out.push_str(&tool.name.name);
                self.params(&tool.params);
                if let Some(result) = &tool.result {
                    self.out.push_str(" -> ");
                    self.ty(result);
                }
                if tool.props.is_empty() {
                    self.out.push_str(" {}");
                }
                self.props_block(&tool.props, tool.span.end, true);
            }
            Item::Flow(flow) => {
                self.out.push_str("flow");
                self.open();
                for step in &flow.steps {
                    self.line(step.span, |p| {
                        p.out.push_str("step ");
                        p.out.push_str(&step.name.name);
                        p.out.push_str(" = ");
                        p.action(&step.action);
                    });
                }
                self.close(flow.span.end.saturating_sub(1));
            }
            Item::Policy(policy) => {
                self.out.push_str("policy");
                self.open();
                for rule in &policy.rules {
                    self.line(rule.span, |p| p.rule(&rule.kind));
                }
                self.close(policy.span.end.saturating_sub(1));
            }
            Item::Outcome(outcome) => {
                self.out.push_str("outcome success when ");
                self.expr(&outcome.cond);
            }
            Item::Kpi(kpi) => {
                self.out.push_str("kpi ");
                self.out.push_str(&kpi.name.name);
                self.out.push_str(" = ");
                self.expr(&kpi.expr);
                if let Some((op, target)) = &kpi.target {
                    self.out.push_str(" target ");
                    self.out.push_str(op.as_str());
                    self.out.push(' ');
                    self.expr(target);
                }
            }
            Item::Eval(eval) => {
                self.out.push_str("eval ");
                self.out.push_str(self.text(eval.name.span));
                self.open();
                for stmt in &eval.stmts {
                    self.line(stmt.span, |p| p.eval_stmt(&stmt.kind));
                }
                self.close(eval.span.end.saturating_sub(1));
            }
            Item::Layout(layout) => {
                self.out.push_str("layout");
                self.open();
                for entry in &layout.entries {
                    self.line(entry.span, |p| {
                        p.out
                            .push_str(&format!("{}: ({}, {})", entry.name.name, entry.x, entry.y));
                    });
                }
                self.close(layout.span.end.saturating_sub(1));
            }
            Item::Error(span) => self.out.push_str(self.text(*span)),
        }
    }

    fn rule(&mut self, rule: &PolicyRuleKind) {
        match rule {
            PolicyRuleKind::Approve(path) => {
                self.out.push_str("approve ");
                self.path(path);
            }
            PolicyRuleKind::AutoApprove { target, when } => {
                self.out.push_str("auto approve ");
                self.path(target);
                if let Some(when) = when {
                    self.out.push_str(" when ");
                    self.expr(when);
                }
            }
            PolicyRuleKind::Egress(hosts) => {
                self.out.push_str("egress allow ");
                self.expr(hosts);
            }
            PolicyRuleKind::Redact { what, before } => {
                self.out
                    .push_str(&format!("redact {} before {}", what.name, before.name));
            }
            PolicyRuleKind::Budget { amount, unit, per } => {
                self.out.push_str("budget ");
                self.expr(amount);
                if let Some(unit) = unit {
                    self.out.push(' ');
                    self.out.push_str(&unit.name);
                }
                self.out.push_str(" per ");
                self.out.push_str(&per.name);
            }
            PolicyRuleKind::Rate {
                target,
                count,
                window,
            } => {
                self.out.push_str("rate ");
                self.path(target);
                self.out.push(' ');
                self.expr(count);
                self.out.push_str(" per ");
                self.expr(window);
            }
            PolicyRuleKind::Error => {}
        }
    }

    fn eval_stmt(&mut self, stmt: &EvalStmtKind) {
        match stmt {
            EvalStmtKind::Mock { target, value } => {
                self.out.push_str("mock ");
                self.path(target);
                self.out.push_str(" returns ");
                self.expr(value);
            }
            EvalStmtKind::Input { name, value } => {
                self.out.push_str("input ");
                self.out.push_str(&name.name);
                self.out.push_str(" = ");
                self.expr(value);
            }
            EvalStmtKind::Approve { approve, target } => {
                self.out
                    .push_str(if *approve { "approve " } else { "reject " });
                self.out.push_str(&target.name);
            }
            EvalStmtKind::Expect(expr) => {
                self.out.push_str("expect ");
                self.expr(expr);
            }
            EvalStmtKind::Error => {}
        }
    }

    fn action(&mut self, action: &Action) {
        match action {
            Action::Expr(expr) => self.expr(expr),
            Action::Ask(ask) => {
                self.out.push_str("ask ");
                self.out.push_str(&ask.target.name);
                if let Some(output) = &ask.output {
                    self.out.push_str(" -> ");
                    self.ty(output);
                }
                self.props_block(&ask.props, ask.span.end, false);
            }
            Action::Map(map) => {
                self.out.push_str("map ");
                self.out.push_str(&map.var.name);
                self.out.push_str(" in ");
                self.expr(&map.source);
                if let Some(filter) = &map.filter {
                    self.out.push_str(" where ");
                    self.expr(filter);
                }
                if let Some(concurrency) = &map.concurrency {
                    self.out.push_str(" concurrency ");
                    self.expr(concurrency);
                }
                self.body(&map.body, map.span.end);
            }
            Action::When(when) => self.when(when),
            Action::Route(route) => {
                self.out.push_str("route ");
                self.out.push_str(&route.router.name);
                self.out.push_str(" to [");
                let names: Vec<&str> = route.routes.iter().map(|r| r.name.as_str()).collect();
                self.out.push_str(&names.join(", "));
                self.out.push(']');
                if let Some(output) = &route.output {
                    self.out.push_str(" -> ");
                    self.ty(output);
                }
                self.props_block(&route.props, route.span.end, false);
            }
            Action::Review(review) => {
                self.out.push_str("review by ");
                self.out.push_str(&review.critic.name);
                self.out.push_str(" until ");
                self.expr(&review.until);
                if let Some(max) = &review.max_rounds {
                    self.out.push_str(" max ");
                    self.expr(max);
                }
                self.body(&review.body, review.span.end);
            }
            Action::Approve(approve) => {
                self.out.push_str("approve ");
                self.expr(&approve.message);
            }
            Action::Error(span) => self.out.push_str(self.text(*span)),
        }
    }

    fn when(&mut self, when: &WhenAction) {
        self.out.push_str("when ");
        self.expr(&when.cond);
        let then_end = when
            .otherwise
            .as_ref()
            .map(|o| self.else_brace_end(when.then.span(), o.span()))
            .unwrap_or(when.span.end);
        self.body(&when.then, then_end);
        if let Some(otherwise) = &when.otherwise {
            self.out.push_str(" else");
            match otherwise.as_ref() {
                Action::When(inner) => {
                    self.out.push(' ');
                    self.when(inner);
                }
                other => self.body(other, when.span.end),
            }
        }
    }

    /// The offset just past the `}` that closes a `when`'s first branch.
    fn else_brace_end(&self, then: Span, otherwise: Span) -> u32 {
        let gap = self
            .source
            .get(then.end as usize..otherwise.start as usize)
            .unwrap_or("");
        gap.find('}')
            .map(|i| then.end + i as u32 + 1)
            .unwrap_or(then.end)
    }

    /// `{`, the action on its own line, `}`; `end` is just past the closing brace.
    fn body(&mut self, action: &Action, end: u32) {
        self.open();
        self.line(action.span(), |p| p.action(action));
        self.close(end.saturating_sub(1));
    }

    fn fields_block(&mut self, fields: &[Field], end: u32) {
        if fields.is_empty() && !self.has_comment_before(end) {
            self.out.push_str(" {}");
            return;
        }
        self.open();
        for field in fields {
            self.line(field.span, |p| p.field(field));
        }
        self.close(end.saturating_sub(1));
    }

    fn has_comment_before(&self, end: u32) -> bool {
        self.comments
            .get(self.next_comment)
            .is_some_and(|c| c.start < end)
    }

    fn field(&mut self, field: &Field) {
        self.out.push_str(&field.name.name);
        self.out.push_str(": ");
        self.ty(&field.ty);
        if let Some(default) = &field.default {
            self.out.push_str(" = ");
            self.expr(default);
        }
    }

    fn params(&mut self, params: &[Field]) {
        let flat: Vec<String> = params.iter().map(|f| self.render(|p| p.field(f))).collect();
        let one_line = format!("({})", flat.join(", "));
        let fits = self.column() + one_line.len() <= MAX_WIDTH && !one_line.contains('\n');
        let commented = params.iter().any(|f| self.comment_inside(f.span));
        if fits && !commented {
            self.out.push_str(&one_line);
            return;
        }
        self.out.push('(');
        self.out.push('\n');
        self.indent += 1;
        for field in params {
            self.line(field.span, |p| {
                p.field(field);
                p.out.push(',');
            });
        }
        self.indent -= 1;
        self.write_indent();
        self.out.push(')');
    }

    /// A block of `key: value` properties; declarations always break, asks break when the
    /// block does not fit on the line.
    fn props_block(&mut self, props: &[Prop], end: u32, always_break: bool) {
        if props.is_empty() {
            return;
        }
        let commented = self.has_comment_before(end);
        if !always_break && !commented {
            let flat: Vec<String> = props
                .iter()
                .map(|prop| self.render(|p| p.prop(prop)))
                .collect();
            let one_line = format!(" {{ {} }}", flat.join(", "));
            if self.column() + one_line.len() <= MAX_WIDTH && !one_line.contains('\n') {
                self.out.push_str(&one_line);
                self.last_end = end;
                return;
            }
        }
        self.open();
        for prop in props {
            self.line(prop.span, |p| p.prop(prop));
        }
        self.close(end.saturating_sub(1));
    }

    fn prop(&mut self, prop: &Prop) {
        self.out.push_str(self.text(prop.key.span));
        self.out.push_str(": ");
        self.expr(&prop.value);
    }

    fn path(&mut self, path: &[Ident]) {
        for (i, part) in path.iter().enumerate() {
            if i > 0 {
                self.out.push('.');
            }
            self.out.push_str(&part.name);
        }
    }

    fn ty(&mut self, ty: &TypeExpr) {
        match &ty.kind {
            TypeExprKind::Named(path) => self.path(path),
            TypeExprKind::List(inner) => {
                self.out.push('[');
                self.ty(inner);
                self.out.push(']');
            }
            TypeExprKind::Map(key, value) => {
                self.out.push('[');
                self.ty(key);
                self.out.push_str(": ");
                self.ty(value);
                self.out.push(']');
            }
            TypeExprKind::Optional(inner) => {
                self.ty(inner);
                self.out.push('?');
            }
            TypeExprKind::StringUnion(members) => {
                for (i, member) in members.iter().enumerate() {
                    if i > 0 {
                        self.out.push_str(" | ");
                    }
                    self.out.push_str(self.text(member.span));
                }
            }
            TypeExprKind::Error => self.out.push_str(self.text(ty.span)),
        }
    }

    /// Prints into a scratch buffer and returns the text (for measuring flat layouts).
    fn render(&mut self, print: impl FnOnce(&mut Self)) -> String {
        let saved = std::mem::take(&mut self.out);
        let saved_comment = self.next_comment;
        let saved_end = self.last_end;
        print(self);
        self.next_comment = saved_comment;
        self.last_end = saved_end;
        std::mem::replace(&mut self.out, saved)
    }

    fn comment_inside(&self, span: Span) -> bool {
        self.comments
            .get(self.next_comment..)
            .unwrap_or(&[])
            .iter()
            .take_while(|c| c.start < span.end)
            .any(|c| c.start > span.start)
    }

    fn expr(&mut self, expr: &Expr) {
        if self.comment_inside(expr.span) {
            // Printed as written so that no comment is lost.
            self.out.push_str(self.text(expr.span));
            while self
                .comments
                .get(self.next_comment)
                .is_some_and(|c| c.start < expr.span.end)
            {
                self.next_comment += 1;
            }
            return;
        }
        if self.flat {
            self.expr_flat(expr);
            return;
        }
        self.flat = true;
        let flat = self.render(|p| p.expr_flat(expr));
        self.flat = false;
        let first_line = flat.split('\n').next().unwrap_or("");
        if self.column() + first_line.len() <= MAX_WIDTH || !self.expr_breaks(expr) {
            self.out.push_str(&flat);
        } else {
            self.expr_broken(expr);
        }
    }

    fn expr_breaks(&self, expr: &Expr) -> bool {
        match &expr.kind {
            ExprKind::List(items) => !items.is_empty(),
            ExprKind::Record(props) => !props.is_empty(),
            ExprKind::Call(_, args) => !args.is_empty(),
            _ => false,
        }
    }

    /// One element per line, each laid out again (so nested long parts break too).
    fn expr_broken(&mut self, expr: &Expr) {
        match &expr.kind {
            ExprKind::List(items) => {
                self.out.push_str("[\n");
                self.indent += 1;
                for item in items {
                    self.write_indent();
                    self.expr(item);
                    self.out.push_str(",\n");
                }
                self.indent -= 1;
                self.write_indent();
                self.out.push(']');
            }
            ExprKind::Record(props) => {
                self.out.push_str("{\n");
                self.indent += 1;
                for prop in props {
                    self.write_indent();
                    self.prop(prop);
                    self.out.push('\n');
                }
                self.indent -= 1;
                self.write_indent();
                self.out.push('}');
            }
            ExprKind::Call(callee, args) => {
                self.postfix_base(callee);
                self.out.push_str("(\n");
                self.indent += 1;
                for arg in args {
                    self.write_indent();
                    self.arg(arg);
                    self.out.push_str(",\n");
                }
                self.indent -= 1;
                self.write_indent();
                self.out.push(')');
            }
            _ => self.expr_flat(expr),
        }
    }

    fn arg(&mut self, arg: &Arg) {
        if let Some(name) = &arg.name {
            self.out.push_str(&name.name);
            self.out.push_str(": ");
        }
        self.expr(&arg.value);
    }

    fn postfix_base(&mut self, base: &Expr) {
        if matches!(base.kind, ExprKind::Binary(..) | ExprKind::Unary(..)) {
            self.out.push('(');
            self.expr_flat(base);
            self.out.push(')');
        } else {
            self.expr_flat(base);
        }
    }

    fn expr_flat(&mut self, expr: &Expr) {
        match &expr.kind {
            ExprKind::Int(_) | ExprKind::Float(_) | ExprKind::Duration(_) | ExprKind::Str(_) => {
                self.out.push_str(self.text(expr.span));
            }
            ExprKind::Money { .. } => {
                let text = self.text(expr.span);
                let split = text
                    .find(|c: char| c.is_ascii_alphabetic())
                    .unwrap_or(text.len());
                let (amount, currency) = text.split_at(split);
                self.out.push_str(amount.trim_end());
                self.out.push(' ');
                self.out.push_str(currency);
            }
            ExprKind::Bool(value) => self.out.push_str(if *value { "true" } else { "false" }),
            ExprKind::None => self.out.push_str("none"),
            ExprKind::Name(name) => self.out.push_str(&name.name),
            ExprKind::Field(base, name) => {
                self.postfix_base(base);
                self.out.push('.');
                self.out.push_str(&name.name);
            }
            ExprKind::Index(base, index) => {
                self.postfix_base(base);
                self.out.push('[');
                self.expr(index);
                self.out.push(']');
            }
            ExprKind::Call(callee, args) => {
                self.postfix_base(callee);
                self.out.push('(');
                for (i, arg) in args.iter().enumerate() {
                    if i > 0 {
                        self.out.push_str(", ");
                    }
                    self.arg(arg);
                }
                self.out.push(')');
            }
            ExprKind::List(items) => {
                self.out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        self.out.push_str(", ");
                    }
                    self.expr(item);
                }
                self.out.push(']');
            }
            ExprKind::Record(props) => {
                if props.is_empty() {
                    self.out.push_str("{}");
                    return;
                }
                self.out.push_str("{ ");
                for (i, prop) in props.iter().enumerate() {
                    if i > 0 {
                        self.out.push_str(", ");
                    }
                    self.prop(prop);
                }
                self.out.push_str(" }");
            }
            ExprKind::Unary(op, operand) => {
                self.out.push_str(match op {
                    UnaryOp::Not => "not ",
                    UnaryOp::Neg => "-",
                });
                if matches!(operand.kind, ExprKind::Binary(..)) {
                    self.out.push('(');
                    self.expr_flat(operand);
                    self.out.push(')');
                } else {
                    self.expr_flat(operand);
                }
            }
            ExprKind::Binary(op, lhs, rhs) => {
                let mine = precedence(*op);
                let wrap = |p: &mut Self, side: &Expr, right: bool| {
                    let needs = match &side.kind {
                        ExprKind::Binary(inner, ..) => {
                            let theirs = precedence(*inner);
                            theirs < mine || (right && theirs == mine)
                        }
                        _ => false,
                    };
                    if needs {
                        p.out.push('(');
                        p.expr_flat(side);
                        p.out.push(')');
                    } else {
                        p.expr_flat(side);
                    }
                };
                wrap(self, lhs, false);
                self.out.push(' ');
                self.out.push_str(op.as_str());
                self.out.push(' ');
                wrap(self, rhs, true);
            }
            ExprKind::Error => self.out.push_str(self.text(expr.span)),
        }
    }
}

//! Expression evaluation over JSON values: names and paths, operators, the built-in
//! functions of `grammar.md`, and string interpolation.
//!
//! Values are `serde_json::Value`s. Durations are strings as written (`"24h"`), money is a
//! string with its currency (`"0.50 usd"`). Tool calls inside an expression are not made
//! here: the engine makes them first and hands their results in by the call's span
//! ([`Scope::tool_results`]), so evaluation stays synchronous and pure.

use std::collections::HashMap;
use std::path::Path;

use dsl_syntax::ast::{BinaryOp, Expr, ExprKind, StrPart, UnaryOp};
use serde_json::{Map, Value};

/// A failure to evaluate an expression.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EvalError {
    /// A name has no value in scope.
    #[error("`{0}` has no value here")]
    Unbound(String),
    /// An operation got a value of the wrong kind.
    #[error("{0}")]
    Type(String),
    /// A tool call's result is needed but was not made.
    #[error("the call of `{0}` has not been made")]
    PendingTool(String),
    /// A secret's environment variable is not set.
    #[error("the secret `{0}` is not set (export it as an environment variable)")]
    MissingSecret(String),
    /// A fixture could not be read.
    #[error("cannot read fixture `{0}`: {1}")]
    Fixture(String, String),
}

/// Finished steps' values by step name. The names are the pack's own step ids, so the map
/// hashes them with a fast hash rather than the standard one, which resists crafted keys at
/// some 100 instructions a look-up (a run inserts every step's value and looks many up).
pub type StepValues = HashMap<String, Value, rustc_hash::FxBuildHasher>;

/// What names mean during one evaluation.
#[derive(Default)]
pub struct Scope<'a> {
    /// The run's inputs (`input.x`).
    pub inputs: Option<&'a Map<String, Value>>,
    /// Finished steps' values, by step name.
    pub steps: Option<&'a StepValues>,
    /// Local bindings, innermost last: loop variables, `critique`, tool parameters.
    pub locals: Vec<(String, Value)>,
    /// Results of tool calls made for this expression, by the call's span.
    pub tool_results: Option<&'a HashMap<(u32, u32), Value>>,
    /// Whether `secret("NAME")` reads the environment (only inside a request template).
    pub read_secrets: bool,
    /// The pack's directory, for `file("...")`.
    pub base_dir: Option<&'a Path>,
}

impl<'a> Scope<'a> {
    /// Binds a local name.
    pub fn bind(&mut self, name: impl Into<String>, value: Value) {
        self.locals.push((name.into(), value));
    }

    fn lookup(&self, name: &str) -> Option<Value> {
        if let Some((_, value)) = self.locals.iter().rev().find(|(n, _)| n == name) {
            return Some(value.clone());
        }
        if let Some(value) = self.steps.and_then(|s| s.get(name)) {
            return Some(value.clone());
        }
        if name == "input" {
            return Some(Value::Object(self.inputs.cloned().unwrap_or_default()));
        }
        None
    }
}

/// The name of the function a call expression calls: `count`, `mail.search`, `send`.
pub fn callee_name(callee: &Expr) -> Option<String> {
    match &callee.kind {
        ExprKind::Name(name) => Some(name.name.to_string()),
        ExprKind::Field(base, field) => {
            callee_name(base).map(|base| format!("{base}.{}", field.name))
        }
        _ => None,
    }
}

/// Whether `name` is a built-in function.
pub fn is_builtin(name: &str) -> bool {
    matches!(
        name,
        "count"
            | "len"
            | "sum"
            | "avg"
            | "min"
            | "max"
            | "first"
            | "last"
            | "flatten"
            | "join"
            | "contains"
            | "lower"
            | "upper"
            | "round"
            | "string"
            | "secret"
            | "file"
    )
}

/// Calls of non-built-in functions (tools) in `expr`, innermost first.
pub fn tool_calls(expr: &Expr) -> Vec<&Expr> {
    let mut out = Vec::new();
    collect_tool_calls(expr, &mut out);
    out
}

fn collect_tool_calls<'e>(expr: &'e Expr, out: &mut Vec<&'e Expr>) {
    match &expr.kind {
        ExprKind::Call(callee, args) => {
            for arg in args {
                collect_tool_calls(&arg.value, out);
            }
            if callee_name(callee).is_some_and(|n| !is_builtin(&n)) {
                out.push(expr);
            }
        }
        ExprKind::Str(lit) => {
            for part in &lit.parts {
                if let StrPart::Hole(hole) = part {
                    collect_tool_calls(hole, out);
                }
            }
        }
        ExprKind::Field(base, _) => collect_tool_calls(base, out),
        ExprKind::Index(base, index) => {
            collect_tool_calls(base, out);
            collect_tool_calls(index, out);
        }
        ExprKind::List(items) => items.iter().for_each(|i| collect_tool_calls(i, out)),
        ExprKind::Record(props) => props.iter().for_each(|p| collect_tool_calls(&p.value, out)),
        ExprKind::Unary(_, inner) => collect_tool_calls(inner, out),
        ExprKind::Binary(_, a, b) => {
            collect_tool_calls(a, out);
            collect_tool_calls(b, out);
        }
        _ => {}
    }
}

/// Formats milliseconds as a duration literal (`24h`, `1500ms`).
pub fn format_duration(ms: u64) -> String {
    const UNITS: [(u64, &str); 4] = [
        (86_400_000, "d"),
        (3_600_000, "h"),
        (60_000, "m"),
        (1000, "s"),
    ];
    if ms > 0 {
        for (size, unit) in UNITS {
            if ms.is_multiple_of(size) {
                return format!("{}{unit}", ms / size);
            }
        }
    }
    format!("{ms}ms")
}

/// Parses a duration literal (`24h`) to milliseconds.
pub fn parse_duration(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits.parse().ok()?;
    let factor = match unit {
        "ms" => 1,
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    n.checked_mul(factor)
}

fn parse_money(text: &str) -> Option<(f64, String)> {
    let (amount, currency) = text.trim().rsplit_once(' ')?;
    Some((amount.trim().parse().ok()?, currency.to_string()))
}

fn format_money(amount: f64, currency: &str) -> String {
    format!("{amount:.2} {currency}")
}

/// A value as printed inside a string hole: scalars as written, lists and JSON as JSON.
pub fn display(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "none".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        other => other.to_string(),
    }
}

/// Whether a value counts as true in a condition (`none` is false).
pub fn truthy(value: &Value) -> bool {
    match value {
        Value::Bool(b) => *b,
        Value::Null => false,
        _ => true,
    }
}

fn number(value: f64) -> Value {
    if value.fract() == 0.0 && value.abs() < 9.0e15 {
        Value::from(value as i64)
    } else {
        serde_json::Number::from_f64(value).map_or(Value::Null, Value::Number)
    }
}

fn as_f64(value: &Value, what: &str) -> Result<f64, EvalError> {
    value
        .as_f64()
        .ok_or_else(|| EvalError::Type(format!("{what} needs a number, got {}", kind(value))))
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "none",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a record",
    }
}

fn as_list<'v>(value: &'v Value, what: &str) -> Result<&'v [Value], EvalError> {
    match value {
        Value::Array(items) => Ok(items),
        Value::Null => Ok(&[]),
        other => Err(EvalError::Type(format!(
            "{what} needs a list, got {}",
            kind(other)
        ))),
    }
}

/// Evaluates `expr` in `scope`.
pub fn eval(expr: &Expr, scope: &Scope<'_>) -> Result<Value, EvalError> {
    match &expr.kind {
        ExprKind::Int(i) => Ok(Value::from(*i)),
        ExprKind::Float(f) => Ok(number_f(*f)),
        ExprKind::Bool(b) => Ok(Value::Bool(*b)),
        ExprKind::None | ExprKind::Error => Ok(Value::Null),
        ExprKind::Str(lit) => {
            let mut out = String::new();
            for part in &lit.parts {
                match part {
                    StrPart::Text(text) => out.push_str(text),
                    StrPart::Hole(hole) => out.push_str(&display(&eval(hole, scope)?)),
                }
            }
            Ok(Value::String(out))
        }
        ExprKind::Duration(ms) => Ok(Value::String(format_duration(*ms))),
        // Money is its amount: currencies are checked statically, budgets carry their own.
        ExprKind::Money { amount, .. } => Ok(number_f(*amount)),
        ExprKind::Name(name) => scope
            .lookup(&name.name)
            .ok_or_else(|| EvalError::Unbound(name.name.to_string())),
        ExprKind::Field(base, field) => {
            // `mail.search` without a call, or an input path: evaluate the base first.
            let base = eval(base, scope)?;
            Ok(match base {
                Value::Object(map) => map.get(&*field.name).cloned().unwrap_or(Value::Null),
                _ => Value::Null,
            })
        }
        ExprKind::Index(base, index) => {
            let base = eval(base, scope)?;
            let index = eval(index, scope)?;
            Ok(match (&base, &index) {
                (Value::Array(items), Value::Number(n)) => {
                    let i = n.as_i64().unwrap_or(0);
                    let i = if i < 0 { items.len() as i64 + i } else { i };
                    usize::try_from(i)
                        .ok()
                        .and_then(|i| items.get(i).cloned())
                        .unwrap_or(Value::Null)
                }
                (Value::Object(map), Value::String(key)) => {
                    map.get(key).cloned().unwrap_or(Value::Null)
                }
                _ => Value::Null,
            })
        }
        ExprKind::Call(callee, args) => {
            let name = callee_name(callee).unwrap_or_default();
            if !is_builtin(&name) {
                return scope
                    .tool_results
                    .and_then(|r| r.get(&(expr.span.start, expr.span.end)))
                    .cloned()
                    .ok_or(EvalError::PendingTool(name));
            }
            let values = args
                .iter()
                .map(|a| eval(&a.value, scope))
                .collect::<Result<Vec<_>, _>>()?;
            builtin(&name, &values, scope)
        }
        ExprKind::List(items) => Ok(Value::Array(
            items
                .iter()
                .map(|i| eval(i, scope))
                .collect::<Result<_, _>>()?,
        )),
        ExprKind::Record(props) => {
            let mut map = Map::new();
            for prop in props {
                map.insert(prop.key.name.to_string(), eval(&prop.value, scope)?);
            }
            Ok(Value::Object(map))
        }
        ExprKind::Unary(op, inner) => {
            let value = eval(inner, scope)?;
            match op {
                UnaryOp::Not => Ok(Value::Bool(!truthy(&value))),
                UnaryOp::Neg => {
                    if let Some(i) = value.as_i64() {
                        Ok(Value::from(-i))
                    } else {
                        Ok(number_f(-as_f64(&value, "`-`")?))
                    }
                }
            }
        }
        ExprKind::Binary(op, a, b) => match op {
            BinaryOp::And => {
                let a = eval(a, scope)?;
                if !truthy(&a) {
                    return Ok(Value::Bool(false));
                }
                Ok(Value::Bool(truthy(&eval(b, scope)?)))
            }
            BinaryOp::Or => {
                let a = eval(a, scope)?;
                if truthy(&a) {
                    return Ok(Value::Bool(true));
                }
                Ok(Value::Bool(truthy(&eval(b, scope)?)))
            }
            _ => {
                let a = eval(a, scope)?;
                let b = eval(b, scope)?;
                binary(*op, &a, &b)
            }
        },
    }
}

fn number_f(f: f64) -> Value {
    serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
}

/// Compares two values the way `==` does (numbers by value).
pub fn equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| equal(a, b))
        }
        _ => a == b,
    }
}

fn ordering(a: &Value, b: &Value) -> Result<std::cmp::Ordering, EvalError> {
    if let (Some(x), Some(y)) = (a.as_f64(), b.as_f64()) {
        return x
            .partial_cmp(&y)
            .ok_or_else(|| EvalError::Type("cannot compare NaN".into()));
    }
    if let (Value::String(x), Value::String(y)) = (a, b) {
        if let (Some(x), Some(y)) = (parse_duration(x), parse_duration(y)) {
            return Ok(x.cmp(&y));
        }
        if let (Some((x, cx)), Some((y, cy))) = (parse_money(x), parse_money(y))
            && cx == cy
        {
            return x
                .partial_cmp(&y)
                .ok_or_else(|| EvalError::Type("cannot compare NaN".into()));
        }
        return Ok(x.cmp(y));
    }
    Err(EvalError::Type(format!(
        "cannot compare {} with {}",
        kind(a),
        kind(b)
    )))
}

fn binary(op: BinaryOp, a: &Value, b: &Value) -> Result<Value, EvalError> {
    use std::cmp::Ordering::*;
    match op {
        BinaryOp::Eq => Ok(Value::Bool(equal(a, b))),
        BinaryOp::Ne => Ok(Value::Bool(!equal(a, b))),
        BinaryOp::Lt => Ok(Value::Bool(ordering(a, b)? == Less)),
        BinaryOp::Le => Ok(Value::Bool(ordering(a, b)? != Greater)),
        BinaryOp::Gt => Ok(Value::Bool(ordering(a, b)? == Greater)),
        BinaryOp::Ge => Ok(Value::Bool(ordering(a, b)? != Less)),
        BinaryOp::Add => match (a, b) {
            (Value::Number(_), Value::Number(_)) => match (a.as_i64(), b.as_i64()) {
                (Some(x), Some(y)) => Ok(Value::from(x.saturating_add(y))),
                _ => Ok(number_f(as_f64(a, "`+`")? + as_f64(b, "`+`")?)),
            },
            (Value::String(x), Value::String(y)) => {
                if let (Some(x), Some(y)) = (parse_duration(x), parse_duration(y)) {
                    return Ok(Value::String(format_duration(x.saturating_add(y))));
                }
                if let (Some((x, cx)), Some((y, cy))) = (parse_money(x), parse_money(y))
                    && cx == cy
                {
                    return Ok(Value::String(format_money(x + y, &cx)));
                }
                Ok(Value::String(format!("{x}{y}")))
            }
            (Value::Array(x), Value::Array(y)) => {
                Ok(Value::Array(x.iter().chain(y).cloned().collect()))
            }
            _ => Err(EvalError::Type(format!(
                "cannot add {} and {}",
                kind(a),
                kind(b)
            ))),
        },
        BinaryOp::Sub => match (a.as_i64(), b.as_i64()) {
            (Some(x), Some(y)) => Ok(Value::from(x.saturating_sub(y))),
            _ => Ok(number_f(as_f64(a, "`-`")? - as_f64(b, "`-`")?)),
        },
        BinaryOp::Mul => match (a.as_i64(), b.as_i64()) {
            (Some(x), Some(y)) => Ok(Value::from(x.saturating_mul(y))),
            _ => Ok(number_f(as_f64(a, "`*`")? * as_f64(b, "`*`")?)),
        },
        BinaryOp::Div => {
            let x = as_f64(a, "`/`")?;
            let y = as_f64(b, "`/`")?;
            if y == 0.0 {
                return Ok(Value::Null);
            }
            Ok(number_f(x / y))
        }
        BinaryOp::And | BinaryOp::Or => Ok(Value::Bool(truthy(a) && truthy(b))),
    }
}

fn arg(values: &[Value], i: usize) -> &Value {
    values.get(i).unwrap_or(&Value::Null)
}

fn builtin(name: &str, values: &[Value], scope: &Scope<'_>) -> Result<Value, EvalError> {
    let first = arg(values, 0);
    match name {
        "count" => Ok(Value::from(as_list(first, "count")?.len())),
        "len" => match first {
            Value::String(s) => Ok(Value::from(s.chars().count())),
            other => Ok(Value::from(as_list(other, "len")?.len())),
        },
        "sum" => {
            let items = as_list(first, "sum")?;
            if items.iter().all(|v| v.as_i64().is_some()) {
                return Ok(Value::from(
                    items.iter().filter_map(Value::as_i64).sum::<i64>(),
                ));
            }
            let mut total = 0.0;
            for item in items {
                total += as_f64(item, "sum")?;
            }
            Ok(number_f(total))
        }
        "avg" => {
            let items = as_list(first, "avg")?;
            if items.is_empty() {
                return Ok(Value::Null);
            }
            let mut total = 0.0;
            for item in items {
                total += as_f64(item, "avg")?;
            }
            Ok(number_f(total / items.len() as f64))
        }
        "min" | "max" => {
            let items = as_list(first, name)?;
            let mut best: Option<&Value> = None;
            for item in items {
                best = match best {
                    None => Some(item),
                    Some(b) => {
                        let ord = ordering(item, b)?;
                        let better = if name == "min" {
                            ord == std::cmp::Ordering::Less
                        } else {
                            ord == std::cmp::Ordering::Greater
                        };
                        Some(if better { item } else { b })
                    }
                };
            }
            Ok(best.cloned().unwrap_or(Value::Null))
        }
        "first" => Ok(as_list(first, "first")?
            .first()
            .cloned()
            .unwrap_or(Value::Null)),
        "last" => Ok(as_list(first, "last")?
            .last()
            .cloned()
            .unwrap_or(Value::Null)),
        "flatten" => {
            let mut out = Vec::new();
            for item in as_list(first, "flatten")? {
                match item {
                    Value::Array(inner) => out.extend(inner.iter().cloned()),
                    Value::Null => {}
                    other => out.push(other.clone()),
                }
            }
            Ok(Value::Array(out))
        }
        "join" => {
            let sep = display(arg(values, 1));
            let parts: Vec<String> = as_list(first, "join")?.iter().map(display).collect();
            Ok(Value::String(parts.join(&sep)))
        }
        "contains" => {
            let needle = arg(values, 1);
            Ok(Value::Bool(match first {
                Value::String(s) => s.contains(&display(needle)),
                Value::Object(map) => map.contains_key(&display(needle)),
                other => as_list(other, "contains")?.iter().any(|v| equal(v, needle)),
            }))
        }
        "lower" => Ok(Value::String(display(first).to_lowercase())),
        "upper" => Ok(Value::String(display(first).to_uppercase())),
        "round" => Ok(Value::from(as_f64(first, "round")?.round() as i64)),
        "string" => Ok(Value::String(display(first))),
        "secret" => {
            let var = display(first);
            if scope.read_secrets {
                std::env::var(&var)
                    .map(Value::String)
                    .map_err(|_| EvalError::MissingSecret(var))
            } else {
                Ok(Value::String(format!("<secret {var}>")))
            }
        }
        "file" => {
            let rel = display(first);
            let path = scope
                .base_dir
                .map_or_else(|| Path::new(&rel).to_path_buf(), |b| b.join(&rel));
            let text = std::fs::read_to_string(&path)
                .map_err(|e| EvalError::Fixture(rel.clone(), e.to_string()))?;
            serde_json::from_str(&text).map_err(|e| EvalError::Fixture(rel, e.to_string()))
        }
        other => Err(EvalError::Unbound(other.to_string())),
    }
}

/// `number` is used by callers that compute averages and ratios.
pub fn to_number(value: f64) -> Value {
    number(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval_text(text: &str, scope: &Scope<'_>) -> Value {
        let source = format!("pack p {{ language \"0.1\" flow {{ step s = {text} }} }}");
        let parse = dsl_syntax::parse(&source);
        let expr = find_expr(&parse.file).expect("an expression");
        eval(&expr, scope).expect("evaluates")
    }

    fn find_expr(file: &dsl_syntax::ast::SourceFile) -> Option<Expr> {
        for item in &file.items {
            if let dsl_syntax::ast::Item::Flow(flow) = item {
                for step in &flow.steps {
                    if let dsl_syntax::ast::Action::Expr(expr) = &step.action {
                        return Some(expr.clone());
                    }
                }
            }
        }
        None
    }

    #[test]
    fn arithmetic_strings_and_builtins() {
        let scope = Scope::default();
        assert_eq!(eval_text("1 + 2 * 3", &scope), Value::from(7));
        assert_eq!(eval_text("count([1, 2, 3]) / 4", &scope), number_f(0.75));
        assert_eq!(eval_text("\"a{1 + 1}b\"", &scope), Value::from("a2b"));
        assert_eq!(
            eval_text("join([\"x\", \"y\"], \"-\")", &scope),
            Value::from("x-y")
        );
        assert_eq!(eval_text("24h + 30m", &scope), Value::from("1470m"));
        assert_eq!(eval_text("1h > 30m", &scope), Value::Bool(true));
        assert_eq!(eval_text("max([3, 9, 2])", &scope), Value::from(9));
        assert_eq!(
            eval_text("contains(\"hello\", \"ell\")", &scope),
            Value::Bool(true)
        );
        assert_eq!(
            eval_text("none == none and not false", &scope),
            Value::Bool(true)
        );
    }

    #[test]
    fn names_and_paths() {
        let mut steps = StepValues::default();
        steps.insert(
            "inbox".to_string(),
            serde_json::json!({"messages": [{"id": "a"}, {"id": "b"}]}),
        );
        let scope = Scope {
            steps: Some(&steps),
            ..Scope::default()
        };
        assert_eq!(eval_text("inbox.messages[1].id", &scope), Value::from("b"));
        assert_eq!(eval_text("count(inbox.messages)", &scope), Value::from(2));
    }
}

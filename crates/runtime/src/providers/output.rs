//! Reading a model's answer as a value of the declared output type: find the JSON in the
//! text (bare, inside ```json fences, or after some prose), then check it against the type
//! and normalise it (integral floats for `Int`, missing optionals as `null`, literal
//! defaults filled in, union members in their declared spelling, unknown fields dropped).

use std::sync::Arc;

use dsl_check::Ty;
use dsl_check::program::{FieldInfo, TypeInfo};
use dsl_check::ty::NamedTy;
use dsl_syntax::ast::{Expr, ExprKind, UnaryOp};
use serde_json::{Map, Number, Value};

use super::{ProviderError, TypeSource};

/// How deep values are checked before the check gives up (a guard against hostile answers).
const MAX_DEPTH: usize = 64;

/// Currencies a `Money` string may name.
const CURRENCIES: &[&str] = &["usd", "eur", "gbp", "jpy", "chf", "cad", "aud"];

/// Parses `text`, a model's answer, as a value of type `ty`.
///
/// `String` answers are the text itself (trimmed). Other types need JSON: the whole text,
/// the inside of a ```` ```json ```` fence, or the first JSON object or array in the text; a
/// union or a number may also be a bare word. The value is then checked against `ty` and
/// normalised; any mismatch is [`ProviderError::InvalidOutput`] naming the path
/// (`.items[2].urgency`).
pub fn parse_output(text: &str, ty: &Ty, types: &dyn TypeSource) -> Result<Value, ProviderError> {
    let target = resolve_alias(ty, types, 0);
    match target.strip_optional() {
        Ty::String | Ty::Secret => return Ok(Value::String(text.trim().to_string())),
        _ => {}
    }
    let value = match extract_json(text) {
        Some(value) => value,
        None => bare_scalar(text.trim(), &target).ok_or_else(|| {
            ProviderError::InvalidOutput(format!(
                "expected a JSON value of type {ty}, found no JSON in the answer: {}",
                preview(text)
            ))
        })?,
    };
    let mut checker = Checker {
        types,
        amounts: false,
    };
    checker
        .check(&value, ty, &mut String::new(), 0)
        .map_err(ProviderError::InvalidOutput)
}

/// Checks a value the pack computed (an eval's mock of a tool) against `ty` and normalises
/// it, as [`parse_output`] does an answer, except that `Money` is an amount, a number, as
/// the pack's own expressions compute it (`52000 usd` evaluates to `52000`); a money string
/// such as `"12.50 usd"` becomes its amount.
pub fn check_value(value: &Value, ty: &Ty, types: &dyn TypeSource) -> Result<Value, String> {
    let mut checker = Checker {
        types,
        amounts: true,
    };
    checker.check(value, ty, &mut String::new(), 0)
}

/// The JSON value in a model's answer: the whole text, a fenced block, or the first object
/// or array that parses; `None` when there is none.
pub fn extract_json(text: &str) -> Option<Value> {
    let trimmed = text.trim();
    if let Ok(value) = serde_json::from_str::<Value>(trimmed) {
        return Some(value);
    }
    let mut rest = trimmed;
    while let Some(open) = rest.find("```") {
        let after = &rest[open + 3..];
        let body_start = after.find('\n').map_or(after.len(), |n| n + 1);
        let body = &after[body_start..];
        let Some(close) = body.find("```") else {
            // An unclosed fence (a truncated answer): try what there is.
            if let Ok(value) = serde_json::from_str::<Value>(body.trim()) {
                return Some(value);
            }
            break;
        };
        if let Ok(value) = serde_json::from_str::<Value>(body[..close].trim()) {
            return Some(value);
        }
        rest = &body[close + 3..];
    }
    for (start, _) in trimmed.match_indices(['{', '[']).take(16) {
        let mut values = serde_json::Deserializer::from_str(&trimmed[start..]).into_iter::<Value>();
        if let Some(Ok(value)) = values.next() {
            return Some(value);
        }
    }
    None
}

/// A bare word read as a scalar: `high` for a union, `42` or `true` when not in JSON.
fn bare_scalar(text: &str, ty: &Ty) -> Option<Value> {
    let word = text.trim_matches(|c: char| c == '"' || c == '\'' || c == '`' || c == '.');
    match ty.strip_optional() {
        Ty::Union(_) | Ty::Duration | Ty::Money => Some(Value::String(word.to_string())),
        _ => None,
    }
}

/// Follows `type X = T` aliases at the top (so `String` aliases are free text too).
fn resolve_alias(ty: &Ty, types: &dyn TypeSource, depth: usize) -> Ty {
    match ty {
        Ty::Named(named) if depth < MAX_DEPTH => {
            match types
                .type_info(&named.module, &named.name)
                .and_then(|t| t.alias.clone())
            {
                Some(alias) => resolve_alias(&alias, types, depth + 1),
                None => ty.clone(),
            }
        }
        Ty::Optional(inner) => Ty::optional(resolve_alias(inner, types, depth)),
        _ => ty.clone(),
    }
}

fn preview(text: &str) -> String {
    let flat: String = text.trim().chars().take(120).collect();
    if text.trim().chars().count() > 120 {
        format!("{flat}…")
    } else {
        flat
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "an integer",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

struct Checker<'a> {
    types: &'a dyn TypeSource,
    /// `Money` is a number (the pack's values), not a string (a model's answer).
    amounts: bool,
}

impl Checker<'_> {
    fn check(
        &mut self,
        value: &Value,
        ty: &Ty,
        path: &mut String,
        depth: usize,
    ) -> Result<Value, String> {
        let here = |path: &str| {
            if path.is_empty() {
                String::from("the answer")
            } else {
                format!("`{path}`")
            }
        };
        if depth > MAX_DEPTH {
            return Err(format!("{} is nested too deeply", here(path)));
        }
        let mismatch = |path: &str, what: &str| {
            Err(format!(
                "{}: expected {what}, found {}",
                here(path),
                kind_of(value)
            ))
        };
        match ty {
            Ty::Json
            | Ty::Error
            | Ty::Agent
            | Ty::Model
            | Ty::Knowledge
            | Ty::Tool
            | Ty::Module => Ok(value.clone()),
            Ty::None | Ty::Nothing => Ok(Value::Null),
            Ty::String | Ty::Secret => match value {
                Value::String(_) => Ok(value.clone()),
                _ => mismatch(path, "a string"),
            },
            Ty::Bool => match value {
                Value::Bool(_) => Ok(value.clone()),
                Value::String(s) if s == "true" || s == "false" => Ok(Value::Bool(s == "true")),
                _ => mismatch(path, "a boolean"),
            },
            Ty::Int => match value {
                Value::Number(n) if n.is_i64() || n.is_u64() => Ok(value.clone()),
                Value::Number(n) => match n.as_f64() {
                    Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => {
                        Ok(Value::Number(Number::from(f as i64)))
                    }
                    _ => mismatch(path, "an integer"),
                },
                Value::String(s) => match s.trim().parse::<i64>() {
                    Ok(i) => Ok(Value::Number(Number::from(i))),
                    Err(_) => mismatch(path, "an integer"),
                },
                _ => mismatch(path, "an integer"),
            },
            Ty::Float => match value {
                Value::Number(_) => Ok(value.clone()),
                Value::String(s) => match s.trim().parse::<f64>().ok().and_then(Number::from_f64) {
                    Some(n) => Ok(Value::Number(n)),
                    None => mismatch(path, "a number"),
                },
                _ => mismatch(path, "a number"),
            },
            Ty::Duration => match value {
                Value::String(s) if is_duration(s.trim()) => {
                    Ok(Value::String(s.trim().to_string()))
                }
                Value::Number(n) if n.is_u64() => Ok(Value::String(format!("{n}ms"))),
                _ => mismatch(path, "a duration such as \"30s\""),
            },
            Ty::Money if self.amounts => match value {
                Value::Number(_) => Ok(value.clone()),
                Value::String(s) => match s.split_whitespace().next().map(str::parse::<f64>) {
                    Some(Ok(amount)) if normalise_money(s).is_some() => {
                        Ok(crate::eval::to_number(amount))
                    }
                    _ => mismatch(path, "an amount such as 12.50 usd"),
                },
                _ => mismatch(path, "an amount such as 12.50 usd"),
            },
            Ty::Money => match value {
                Value::String(s) => match normalise_money(s) {
                    Some(money) => Ok(Value::String(money)),
                    None => mismatch(path, "an amount such as \"12.50 usd\""),
                },
                _ => mismatch(path, "an amount such as \"12.50 usd\""),
            },
            Ty::Union(options) => {
                let found = value.as_str().map(str::trim);
                match found.and_then(|s| {
                    options
                        .iter()
                        .find(|o| &***o == s)
                        .or_else(|| options.iter().find(|o| o.eq_ignore_ascii_case(s)))
                }) {
                    Some(option) => Ok(Value::String(option.to_string())),
                    None => Err(format!(
                        "{}: expected one of {}, found {}",
                        here(path),
                        options
                            .iter()
                            .map(|o| format!("{o:?}"))
                            .collect::<Vec<_>>()
                            .join(", "),
                        match found {
                            Some(s) => format!("{s:?}"),
                            None => kind_of(value).to_string(),
                        }
                    )),
                }
            }
            Ty::Optional(inner) => match value {
                Value::Null => Ok(Value::Null),
                _ => self.check(value, inner, path, depth + 1),
            },
            Ty::List(elem) => match value {
                Value::Array(items) => {
                    let mut out = Vec::with_capacity(items.len());
                    for (index, item) in items.iter().enumerate() {
                        let len = path.len();
                        path.push_str(&format!("[{index}]"));
                        let checked = self.check(item, elem, path, depth + 1);
                        path.truncate(len);
                        out.push(checked?);
                    }
                    Ok(Value::Array(out))
                }
                _ => mismatch(path, "an array"),
            },
            Ty::Map(key, elem) => match value {
                Value::Object(entries) => {
                    let mut out = Map::new();
                    for (name, item) in entries {
                        let len = path.len();
                        path.push_str(&format!("[{name:?}]"));
                        let key_check =
                            self.check(&Value::String(name.clone()), key, path, depth + 1);
                        let checked =
                            key_check.and_then(|_| self.check(item, elem, path, depth + 1));
                        path.truncate(len);
                        out.insert(name.clone(), checked?);
                    }
                    Ok(Value::Object(out))
                }
                _ => mismatch(path, "an object"),
            },
            Ty::Record(fields) => {
                let fields: Vec<(&str, &Ty, Option<&Expr>)> =
                    fields.iter().map(|(n, t)| (&**n, t, None)).collect();
                self.record(value, &fields, false, path, depth)
            }
            Ty::Named(named) => self.named(value, named, path, depth),
        }
    }

    fn named(
        &mut self,
        value: &Value,
        named: &NamedTy,
        path: &mut String,
        depth: usize,
    ) -> Result<Value, String> {
        let Some(info) = self.types.type_info(&named.module, &named.name) else {
            if &*named.name == "Citation" {
                let string = Ty::String;
                let url = Ty::optional(Ty::String);
                let fields = [
                    ("source", &string, None),
                    ("title", &string, None),
                    ("url", &url, None),
                    ("quote", &string, None),
                ];
                return self.record(value, &fields, false, path, depth);
            }
            // A type the caller's list does not know: accept what came.
            return Ok(value.clone());
        };
        let info: &TypeInfo = info;
        if let Some(alias) = info.alias.clone() {
            return self.check(value, &alias, path, depth + 1);
        }
        let fields: Vec<(&str, &Ty, Option<&Expr>)> = info
            .fields
            .iter()
            .map(|f: &FieldInfo| (&*f.name, &f.ty, f.default.as_ref()))
            .collect();
        let cited = named.cited && info.field("citations").is_none();
        self.record(value, &fields, cited, path, depth)
    }

    fn record(
        &mut self,
        value: &Value,
        fields: &[(&str, &Ty, Option<&Expr>)],
        cited: bool,
        path: &mut String,
        depth: usize,
    ) -> Result<Value, String> {
        let Value::Object(entries) = value else {
            return Err(format!(
                "{}: expected an object, found {}",
                if path.is_empty() {
                    String::from("the answer")
                } else {
                    format!("`{path}`")
                },
                kind_of(value)
            ));
        };
        let mut out = Map::new();
        for &(name, ty, default) in fields {
            let len = path.len();
            path.push('.');
            path.push_str(name);
            let found = entries.get(name).filter(|v| !v.is_null());
            let checked = match (found, default) {
                (Some(item), _) => self.check(item, ty, path, depth + 1),
                (None, Some(default)) => literal_value(default)
                    .ok_or_else(|| format!("`{path}` is missing (its default is not a literal)")),
                (None, None) if matches!(ty, Ty::Optional(_) | Ty::Json | Ty::None) => {
                    Ok(Value::Null)
                }
                (None, None) => Err(format!("`{path}` is missing")),
            };
            path.truncate(len);
            out.insert(name.to_string(), checked?);
        }
        if cited {
            let citation = Ty::list(Ty::Named(NamedTy {
                module: Arc::from("core"),
                name: Arc::from("Citation"),
                cited: false,
            }));
            let len = path.len();
            path.push_str(".citations");
            let checked = match entries.get("citations").filter(|v| !v.is_null()) {
                Some(item) => self.check(item, &citation, path, depth + 1),
                None => Ok(Value::Array(Vec::new())),
            };
            path.truncate(len);
            out.insert("citations".into(), checked?);
        }
        Ok(Value::Object(out))
    }
}

/// `30s`, `500ms`, `7d`.
fn is_duration(text: &str) -> bool {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    digits > 0 && matches!(&text[digits..], "ms" | "s" | "m" | "h" | "d")
}

/// `12.50 usd` (also `12.5USD`, `usd 12.50`), normalised to `12.50 usd`.
fn normalise_money(text: &str) -> Option<String> {
    let lower = text.trim().to_ascii_lowercase();
    let (amount, currency) = CURRENCIES.iter().find_map(|c| {
        lower
            .strip_suffix(c)
            .map(|rest| (rest.trim(), *c))
            .or_else(|| lower.strip_prefix(c).map(|rest| (rest.trim(), *c)))
    })?;
    let amount = amount.trim_start_matches('$').trim();
    let parsed: f64 = amount.parse().ok()?;
    (parsed.is_finite() && !amount.is_empty() && !amount.starts_with(['+', '-']))
        .then(|| format!("{amount} {currency}"))
}

/// The JSON of a literal default (`0`, `"x"`, `none`, `[1, 2]`, `30s`); `None` for anything
/// that needs evaluating.
fn literal_value(expr: &Expr) -> Option<Value> {
    Some(match &expr.kind {
        ExprKind::Int(i) => Value::Number(Number::from(*i)),
        ExprKind::Float(f) => Value::Number(Number::from_f64(*f)?),
        ExprKind::Bool(b) => Value::Bool(*b),
        ExprKind::None => Value::Null,
        ExprKind::Str(s) => Value::String(s.as_plain()?),
        ExprKind::Duration(ms) => Value::String(format!("{ms}ms")),
        ExprKind::Money { amount, currency } => Value::String(format!("{amount} {currency}")),
        ExprKind::List(items) => Value::Array(
            items
                .iter()
                .map(literal_value)
                .collect::<Option<Vec<_>>>()?,
        ),
        ExprKind::Unary(UnaryOp::Neg, inner) => match &inner.kind {
            ExprKind::Int(i) => Value::Number(Number::from(i.checked_neg()?)),
            ExprKind::Float(f) => Value::Number(Number::from_f64(-*f)?),
            _ => return None,
        },
        _ => return None,
    })
}

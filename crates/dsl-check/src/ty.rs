//! Resolved types: what the checker infers for every value, and when one type accepts another.

use std::fmt;
use std::sync::Arc;

use serde::Serialize;

/// A named (declared) type: a record or an alias target, qualified by the module that
/// declares it. The main pack's own types have the empty module name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct NamedTy {
    /// The declaring module (`mail`), or `""` for the pack's own types.
    pub module: Arc<str>,
    /// The type's name (`Draft`).
    pub name: Arc<str>,
    /// Whether this value came from an `ask`, which adds `citations: [Citation]` to records.
    pub cited: bool,
}

/// A resolved type.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Ty {
    /// `String`
    String,
    /// `Int`
    Int,
    /// `Float`
    Float,
    /// `Bool`
    Bool,
    /// `Duration`
    Duration,
    /// `Money`
    Money,
    /// `Json`: accepts and is accepted by everything.
    Json,
    /// A `secret("NAME")` reference: a string only the runtime ever sees.
    Secret,
    /// `"a" | "b"`: a union of string literals.
    Union(Arc<[Arc<str>]>),
    /// `[T]`
    List(Arc<Ty>),
    /// `[K: V]`
    Map(Arc<Ty>, Arc<Ty>),
    /// `T?`
    Optional(Arc<Ty>),
    /// A declared record type.
    Named(NamedTy),
    /// An anonymous record, the type of a record literal `{ a: 1 }`.
    Record(Arc<[(Arc<str>, Ty)]>),
    /// The type of the literal `none`.
    None,
    /// What a tool without a result type returns.
    Nothing,
    /// A name that denotes an agent (usable in `ask`, `route`, `review`).
    Agent,
    /// A name that denotes a model.
    Model,
    /// A name that denotes a knowledge source.
    Knowledge,
    /// A name that denotes a tool (`mail.send` without a call).
    Tool,
    /// A name that denotes a module (`mail`).
    Module,
    /// Unknown: the result of an error already reported. Accepts and is accepted by
    /// everything, so one mistake gives one diagnostic.
    Error,
}

impl Ty {
    /// `[T]`
    pub fn list(elem: Ty) -> Ty {
        Ty::List(Arc::new(elem))
    }

    /// `T?` (not doubled: `T??` is `T?`).
    pub fn optional(inner: Ty) -> Ty {
        match inner {
            Ty::Optional(_) | Ty::Error | Ty::Json | Ty::None => inner,
            other => Ty::Optional(Arc::new(other)),
        }
    }

    /// Whether this is the error type.
    pub fn is_error(&self) -> bool {
        matches!(self, Ty::Error)
    }

    /// Whether values of this type are numbers (`Int` or `Float`).
    pub fn is_number(&self) -> bool {
        matches!(self, Ty::Int | Ty::Float)
    }

    /// Whether this is `Json` or the error type, which every operation accepts.
    pub fn is_dynamic(&self) -> bool {
        matches!(self, Ty::Json | Ty::Error)
    }

    /// Whether the type denotes something that is not a data value (agent, model, ...).
    pub fn is_non_value(&self) -> bool {
        matches!(
            self,
            Ty::Agent | Ty::Model | Ty::Knowledge | Ty::Tool | Ty::Module
        )
    }

    /// Whether this is a string-like type (`String`, a union, or a secret).
    pub fn is_stringish(&self) -> bool {
        matches!(self, Ty::String | Ty::Union(_))
    }

    /// The type without an outer `?`.
    pub fn strip_optional(&self) -> &Ty {
        match self {
            Ty::Optional(inner) => inner,
            other => other,
        }
    }

    /// The element type when this is a list (or `Json`/error), seen through an optional.
    pub fn list_elem(&self) -> Option<Ty> {
        match self.strip_optional() {
            Ty::List(elem) => Some((**elem).clone()),
            Ty::Json => Some(Ty::Json),
            Ty::Error => Some(Ty::Error),
            _ => None,
        }
    }

    /// Whether a value of type `found` may be used where `self` is expected.
    ///
    /// `Int` is accepted for `Float`, `Json` and the error type accept and are accepted by
    /// everything, a union accepts a sub-union, `T?` accepts `T` and `none`, and (leniently)
    /// `T` accepts `T?`: a `none` at run time fails the step.
    pub fn accepts(&self, found: &Ty) -> bool {
        match (self, found) {
            (Ty::Error | Ty::Json, _) | (_, Ty::Error | Ty::Json) => true,
            (Ty::Float, Ty::Int) => true,
            (Ty::String, Ty::Union(_)) => true,
            (Ty::Union(expected), Ty::Union(found)) => {
                found.iter().all(|f| expected.iter().any(|e| e == f))
            }
            (Ty::Optional(_), Ty::None) => true,
            (Ty::Optional(inner), Ty::Optional(found)) => inner.accepts(found),
            (Ty::Optional(inner), found) => inner.accepts(found),
            (expected, Ty::Optional(found)) => expected.accepts(found),
            (Ty::List(a), Ty::List(b)) => a.accepts(b),
            (Ty::Map(ka, va), Ty::Map(kb, vb)) => ka.accepts(kb) && va.accepts(vb),
            (Ty::Named(a), Ty::Named(b)) => a.module == b.module && a.name == b.name,
            (Ty::Record(a), Ty::Record(b)) => a.iter().all(|(name, ty)| {
                b.iter()
                    .find(|(n, _)| n == name)
                    .is_some_and(|(_, t)| ty.accepts(t))
            }),
            (Ty::Map(key, value), Ty::Record(fields)) => {
                key.accepts(&Ty::String) && fields.iter().all(|(_, t)| value.accepts(t))
            }
            (a, b) => a == b,
        }
    }

    /// Whether a value of this type can be printed inside a string hole.
    pub fn is_printable(&self) -> bool {
        match self {
            Ty::Named(_) | Ty::Record(_) | Ty::Map(..) => false,
            Ty::Optional(inner) => inner.is_printable(),
            Ty::Agent | Ty::Model | Ty::Knowledge | Ty::Tool | Ty::Module => false,
            _ => true,
        }
    }
}

impl fmt::Display for NamedTy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.module.is_empty() {
            write!(f, "{}", self.name)
        } else {
            write!(f, "{}.{}", self.module, self.name)
        }
    }
}

impl fmt::Display for Ty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ty::String => f.write_str("String"),
            Ty::Int => f.write_str("Int"),
            Ty::Float => f.write_str("Float"),
            Ty::Bool => f.write_str("Bool"),
            Ty::Duration => f.write_str("Duration"),
            Ty::Money => f.write_str("Money"),
            Ty::Json => f.write_str("Json"),
            Ty::Secret => f.write_str("Secret"),
            Ty::Union(options) => {
                for (i, option) in options.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" | ")?;
                    }
                    write!(f, "{option:?}")?;
                }
                Ok(())
            }
            Ty::List(elem) => write!(f, "[{elem}]"),
            Ty::Map(key, value) => write!(f, "[{key}: {value}]"),
            Ty::Optional(inner) => match **inner {
                Ty::Union(_) => write!(f, "({inner})?"),
                _ => write!(f, "{inner}?"),
            },
            Ty::Named(named) => write!(f, "{named}"),
            Ty::Record(fields) => {
                f.write_str("{ ")?;
                for (i, (name, ty)) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{name}: {ty}")?;
                }
                f.write_str(" }")
            }
            Ty::None => f.write_str("none"),
            Ty::Nothing => f.write_str("Nothing"),
            Ty::Agent => f.write_str("agent"),
            Ty::Model => f.write_str("model"),
            Ty::Knowledge => f.write_str("knowledge source"),
            Ty::Tool => f.write_str("tool"),
            Ty::Module => f.write_str("module"),
            Ty::Error => f.write_str("{unknown}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(module: &str, name: &str) -> Ty {
        Ty::Named(NamedTy {
            module: module.into(),
            name: name.into(),
            cited: false,
        })
    }

    #[test]
    fn display() {
        assert_eq!(Ty::list(named("", "Triage")).to_string(), "[Triage]");
        assert_eq!(named("mail", "Draft").to_string(), "mail.Draft");
        let union = Ty::Union(vec![Arc::from("a"), Arc::from("b")].into());
        assert_eq!(union.to_string(), "\"a\" | \"b\"");
        assert_eq!(Ty::optional(Ty::String).to_string(), "String?");
    }

    #[test]
    fn acceptance() {
        assert!(Ty::Float.accepts(&Ty::Int));
        assert!(!Ty::Int.accepts(&Ty::Float));
        assert!(Ty::optional(Ty::Int).accepts(&Ty::None));
        assert!(Ty::Json.accepts(&named("mail", "Draft")));
        assert!(!named("mail", "Draft").accepts(&named("", "Draft")));
        assert!(Ty::list(Ty::Float).accepts(&Ty::list(Ty::Int)));
    }
}

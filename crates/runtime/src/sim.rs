//! Sim Mode's model: deterministic values of a declared type, from a seed and the step key.
//!
//! The same `--seed` and the same step always give the same value, so a simulated run can
//! be replayed, compared and resumed. [`clock`] makes simulated latency precise.

pub mod clock;

use std::sync::Arc;

use dsl_check::program::TypeInfo;
use dsl_check::ty::Ty;
use serde_json::{Map, Value};

/// A small, fast, deterministic generator (SplitMix64).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed` and a key (the step key).
    pub fn new(seed: u64, key: &str) -> Rng {
        Rng(seed ^ fnv(key.as_bytes()))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }

    /// A float in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// FNV-1a, for stable seeds from strings.
pub fn fnv(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// Generates values of declared types.
pub struct Generator<'t> {
    /// The declared types, to look records up.
    pub types: &'t [Arc<TypeInfo>],
    /// Knowledge sources to cite (for `cited` records).
    pub cite: &'t [String],
}

const WORDS: &[&str] = &[
    "invoice", "refund", "account", "outage", "release", "customer", "renewal", "report",
    "latency", "billing", "question", "update", "contract", "meeting", "ticket", "summary",
];

impl Generator<'_> {
    /// A value of type `ty`, named `name` (the field it fills, for plausible strings).
    pub fn value(&self, ty: &Ty, name: &str, rng: &mut Rng, depth: usize) -> Value {
        match ty {
            Ty::String | Ty::Secret => Value::String(self.string(name, rng)),
            Ty::Int => Value::from(1 + rng.below(5) as i64),
            Ty::Float => Value::from(((rng.unit() * 100.0).round() / 100.0).max(0.01)),
            Ty::Bool => Value::Bool(rng.below(2) == 0),
            Ty::Duration => Value::String(format!("{}m", 1 + rng.below(59))),
            Ty::Money => Value::from(10 + rng.below(990)),
            Ty::Json => Value::Object(Map::new()),
            Ty::Union(options) => {
                let i = rng.below(options.len() as u64) as usize;
                options
                    .get(i)
                    .map_or(Value::Null, |o| Value::String(o.to_string()))
            }
            Ty::List(elem) => {
                if depth > 4 {
                    return Value::Array(Vec::new());
                }
                let n = 1 + rng.below(3);
                Value::Array(
                    (0..n)
                        .map(|_| self.value(elem, name, rng, depth + 1))
                        .collect(),
                )
            }
            Ty::Map(_, value) => {
                let mut map = Map::new();
                map.insert(
                    self.string("key", rng),
                    self.value(value, name, rng, depth + 1),
                );
                Value::Object(map)
            }
            Ty::Optional(inner) => {
                if rng.below(4) == 0 {
                    Value::Null
                } else {
                    self.value(inner, name, rng, depth)
                }
            }
            Ty::Named(named) => {
                let Some(info) = self
                    .types
                    .iter()
                    .find(|t| t.module == named.module && t.name == named.name)
                else {
                    return Value::Object(Map::new());
                };
                if let Some(alias) = &info.alias {
                    return self.value(alias, name, rng, depth + 1);
                }
                let mut map = Map::new();
                for field in &info.fields {
                    let value = if depth > 6 {
                        Value::Null
                    } else {
                        self.value(&field.ty, &field.name, rng, depth + 1)
                    };
                    map.insert(field.name.to_string(), value);
                }
                if named.cited {
                    map.insert("citations".into(), Value::Array(self.citations(rng)));
                }
                Value::Object(map)
            }
            Ty::Record(fields) => {
                let mut map = Map::new();
                for (field, ty) in fields.iter() {
                    map.insert(field.to_string(), self.value(ty, field, rng, depth + 1));
                }
                Value::Object(map)
            }
            _ => Value::Null,
        }
    }

    /// Citations of the knowledge sources this call may cite.
    pub fn citations(&self, rng: &mut Rng) -> Vec<Value> {
        self.cite
            .iter()
            .flat_map(|source| [source, source])
            .map(|source| {
                let n = 1 + rng.below(9);
                serde_json::json!({
                    "source": source,
                    "title": format!("{source} article {n}"),
                    "url": format!("kb://{source}/{n}"),
                    "quote": format!("Simulated passage {n} from {source}."),
                })
            })
            .collect()
    }

    fn string(&self, name: &str, rng: &mut Rng) -> String {
        let n = rng.below(10_000);
        let lower = name.to_ascii_lowercase();
        let word = WORDS
            .get(rng.below(WORDS.len() as u64) as usize)
            .copied()
            .unwrap_or("item");
        if lower.contains("email") || lower == "to" || lower == "reply_to" || lower == "from" {
            format!("person{n}@example.com")
        } else if lower == "id" || lower.ends_with("_id") {
            format!("{name}_{n:04}")
        } else if lower.contains("url") || lower.contains("link") {
            format!("https://example.com/{word}/{n}")
        } else if lower.ends_with("_at") || lower.contains("date") || lower.contains("time") {
            format!("2025-11-{:02}T09:00:00Z", 1 + rng.below(28))
        } else {
            format!("Simulated {name} about the {word} ({n})")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_for_a_seed_and_key() {
        let generator = Generator {
            types: &[],
            cite: &[],
        };
        let ty = Ty::list(Ty::Record(
            vec![(Arc::from("a"), Ty::Int), (Arc::from("b"), Ty::String)].into(),
        ));
        let one = generator.value(&ty, "x", &mut Rng::new(1, "step"), 0);
        let two = generator.value(&ty, "x", &mut Rng::new(1, "step"), 0);
        let other = generator.value(&ty, "x", &mut Rng::new(2, "step"), 0);
        assert_eq!(one, two);
        assert_ne!(one, other);
    }
}

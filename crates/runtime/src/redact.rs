//! PII redaction: emails, phone numbers, card numbers, national ids and API keys are
//! replaced by a marker before a model sees them and in every trace and log line.

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::Regex;
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::{Map, Value};

/// What to redact.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Kinds {
    /// Email addresses.
    pub emails: bool,
    /// Phone numbers.
    pub phones: bool,
    /// Card numbers (Luhn-valid digit runs).
    pub cards: bool,
    /// National ids (US SSN, IBAN-like ids).
    pub ids: bool,
    /// API keys and bearer tokens.
    pub keys: bool,
}

impl Kinds {
    /// Every kind.
    pub const ALL: Kinds = Kinds {
        emails: true,
        phones: true,
        cards: true,
        ids: true,
        keys: true,
    };

    /// Adds the kind named as in a policy (`pii`, `emails`, `phones`, `cards`, `ids`, `keys`).
    pub fn add(&mut self, what: &str) {
        match what {
            "pii" => *self = Kinds::ALL,
            "emails" => self.emails = true,
            "phones" => self.phones = true,
            "cards" => self.cards = true,
            "ids" => self.ids = true,
            "keys" => self.keys = true,
            _ => {}
        }
    }

    /// Whether anything is redacted.
    pub fn any(&self) -> bool {
        self.emails || self.phones || self.cards || self.ids || self.keys
    }
}

static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}").expect("valid regex")
});
static KEY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(?:sk|pk|rk|ghp|gho|xox[abp]|AKIA)[-_A-Za-z0-9]{12,}\b|\bBearer\s+[A-Za-z0-9._~+/-]{12,}=*")
        .expect("valid regex")
});
static CARD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b(?:\d[ -]?){12,18}\d\b").expect("valid regex"));
static SSN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b\d{3}-\d{2}-\d{4}\b|\b[A-Z]{2}\d{2}[A-Z0-9]{11,30}\b").expect("valid regex")
});
static PHONE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:\+\d{1,3}[ .-]?)?(?:\(\d{2,4}\)[ .-]?)?\d{2,4}[ .-]\d{3,4}[ .-]?\d{3,4}\b")
        .expect("valid regex")
});

fn luhn(digits: &str) -> bool {
    let digits: Vec<u32> = digits.chars().filter_map(|c| c.to_digit(10)).collect();
    if digits.len() < 13 {
        return false;
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| {
            if i % 2 == 1 {
                let doubled = d * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                *d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// `text` with the chosen kinds replaced by `[REDACTED:kind]`.
pub fn redact_text(text: &str, kinds: Kinds) -> String {
    redact_cow(text, kinds).into_owned()
}

/// Whether no pattern can match `text`: each needs an `@`, eight digits or fourteen
/// characters (an email its `@`; a phone number eight digits, a card number thirteen, a US
/// SSN nine; an API key or bearer token fourteen characters or more, an IBAN-like id
/// fifteen). Most strings a run redacts (names, short values, identifiers) are so, and are
/// spared five regex searches. Digits are counted as Unicode counts them, as `\d` does.
fn cannot_match(text: &str) -> bool {
    text.len() < 14 && !text.contains('@') && text.chars().filter(|c| c.is_numeric()).count() < 8
}

/// [`redact_text`], borrowing `text` when nothing in it is redacted (the common case: no
/// allocation).
pub(crate) fn redact_cow(text: &str, kinds: Kinds) -> Cow<'_, str> {
    if cannot_match(text) {
        return Cow::Borrowed(text);
    }
    redact_searched(text, kinds)
}

/// [`redact_cow`] without the shortcut: every chosen pattern searched.
fn redact_searched(text: &str, kinds: Kinds) -> Cow<'_, str> {
    let mut out = Cow::Borrowed(text);
    if !kinds.any() {
        return out;
    }
    if kinds.keys {
        out = replaced(out, |t| KEY.replace_all(t, "[REDACTED:key]"));
    }
    if kinds.emails {
        out = replaced(out, |t| EMAIL.replace_all(t, "[REDACTED:email]"));
    }
    if kinds.cards {
        out = replaced(out, |t| {
            CARD.replace_all(t, |caps: &regex::Captures<'_>| {
                let m = caps.get(0).map_or("", |m| m.as_str());
                if luhn(m) {
                    "[REDACTED:card]".to_string()
                } else {
                    m.to_string()
                }
            })
        });
    }
    if kinds.ids {
        out = replaced(out, |t| SSN.replace_all(t, "[REDACTED:id]"));
    }
    if kinds.phones {
        out = replaced(out, |t| PHONE.replace_all(t, "[REDACTED:phone]"));
    }
    out
}

/// `text` after `replace`, keeping the borrow when `replace` changed nothing.
fn replaced<'t>(text: Cow<'t, str>, replace: impl Fn(&str) -> Cow<'_, str>) -> Cow<'t, str> {
    let changed = match replace(&text) {
        Cow::Owned(new) => Some(new),
        Cow::Borrowed(_) => None,
    };
    match changed {
        Some(new) => Cow::Owned(new),
        None => text,
    }
}

/// `value` with every string redacted.
pub fn redact_value(value: &Value, kinds: Kinds) -> Value {
    let mut value = value.clone();
    redact_value_in_place(&mut value, kinds);
    value
}

/// `value` (a [`Value`] or an object's [`Map`]) serialized with every string redacted, as
/// [`redact_value`] would leave it, without a redacted copy of it: for a record's JSON text.
pub(crate) struct Redacted<'a, T: ?Sized>(pub &'a T, pub Kinds);

impl Serialize for Redacted<'_, Value> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let Redacted(value, kinds) = *self;
        match value {
            Value::String(text) => serializer.serialize_str(&redact_cow(text, kinds)),
            Value::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(&Redacted(item, kinds))?;
                }
                seq.end()
            }
            Value::Object(map) => Redacted(map, kinds).serialize(serializer),
            other => other.serialize(serializer),
        }
    }
}

impl Serialize for Redacted<'_, Map<String, Value>> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let Redacted(map, kinds) = *self;
        let mut out = serializer.serialize_map(Some(map.len()))?;
        for (key, value) in map {
            out.serialize_entry(key, &Redacted(value, kinds))?;
        }
        out.end()
    }
}

/// Redacts every string of `value` where it is (strings without a match stay untouched).
pub fn redact_value_in_place(value: &mut Value, kinds: Kinds) {
    if !kinds.any() {
        return;
    }
    match value {
        Value::String(s) => {
            if let Cow::Owned(new) = redact_cow(s, kinds) {
                *s = new;
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|v| redact_value_in_place(v, kinds)),
        Value::Object(map) => map
            .values_mut()
            .for_each(|v| redact_value_in_place(v, kinds)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_each_kind() {
        let text = "Mail dana@northwind.example or call +1 415-555-0134; card 4111 1111 1111 1111, SSN 123-45-6789, key sk-abcdefghijklmnop1234";
        let out = redact_text(text, Kinds::ALL);
        assert!(!out.contains("dana@"), "{out}");
        assert!(!out.contains("4111"), "{out}");
        assert!(!out.contains("123-45-6789"), "{out}");
        assert!(!out.contains("sk-abc"), "{out}");
        assert!(!out.contains("555-0134"), "{out}");
        assert_eq!(
            redact_text("order 1234 shipped", Kinds::ALL),
            "order 1234 shipped"
        );
    }

    #[test]
    fn values_are_redacted_in_place_and_clean_strings_untouched() {
        let mut value = serde_json::json!({
            "to": "dana@northwind.example",
            "n": 12.3456789,
            "list": ["key sk-abcdefghijklmnop1234", "plain"],
        });
        let copy = redact_value(&value, Kinds::ALL);
        redact_value_in_place(&mut value, Kinds::ALL);
        assert_eq!(value, copy);
        assert_eq!(value["to"], "[REDACTED:email]");
        assert_eq!(value["n"], 12.3456789);
        assert_eq!(value["list"][0], "key [REDACTED:key]");
        assert_eq!(value["list"][1], "plain");
        assert!(matches!(
            redact_cow("nothing here", Kinds::ALL),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn a_value_serialized_redacted_is_the_redacted_copy_serialized() {
        let value = serde_json::json!({
            "to": "dana@northwind.example",
            "n": 12.3456789,
            "list": ["key sk-abcdefghijklmnop1234", "plain", {"deep": "call 415-555-0134"}],
            "none": null,
            "ok": true,
        });
        for kinds in [Kinds::ALL, Kinds::default()] {
            assert_eq!(
                serde_json::to_string(&Redacted(&value, kinds)).expect("serializes"),
                serde_json::to_string(&redact_value(&value, kinds)).expect("serializes")
            );
        }
        let text = serde_json::to_string(&Redacted(&value, Kinds::ALL)).expect("serializes");
        assert!(!text.contains("dana@") && !text.contains("sk-abc") && !text.contains("555-0134"));
    }

    #[test]
    fn the_shortest_matches_are_not_skipped() {
        for text in [
            "a@b.cd",
            "12 345 678",
            "123-45-6789",
            "sk-abcdefghijk",
            "GB29NWBK6016131",
        ] {
            let searched = redact_searched(text, Kinds::ALL);
            assert!(matches!(searched, Cow::Owned(_)), "{text} should match");
            assert_eq!(redact_cow(text, Kinds::ALL), searched, "{text}");
        }
        assert!(cannot_match("work"));
        assert!(cannot_match("order 1234"));
    }

    proptest::proptest! {
        #[test]
        fn never_panics(text in ".{0,200}") {
            let _ = redact_text(&text, Kinds::ALL);
        }

        /// The shortcut skips only strings no pattern matches.
        #[test]
        fn the_shortcut_skips_nothing_a_search_would_redact(
            text in "[0-9٠-٩０-９a-zA-Z@. ()+-]{0,16}"
        ) {
            if cannot_match(&text) {
                proptest::prop_assert!(matches!(redact_searched(&text, Kinds::ALL), Cow::Borrowed(_)));
            }
        }
    }
}

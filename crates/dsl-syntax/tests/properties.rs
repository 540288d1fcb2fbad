//! Property tests: any input round-trips through the tokens byte for byte; the parser and
//! the formatter never panic on arbitrary or mutated input; formatting is idempotent and
//! keeps the parsed meaning.

use dsl_syntax::format::format;
use dsl_syntax::mutate::{Mutation, mutate};
use dsl_syntax::parse;
use proptest::prelude::*;

const SEEDS: &[&str] = &[
    include_str!("../../../tests/data/parser/ok/0001_inbox_triage.gx"),
    include_str!("../../../tests/data/parser/ok/0002_module_tools.gx"),
    include_str!("../../../tests/data/parser/ok/0003_flow_constructs.gx"),
];

/// The tree as JSON with every span removed: what the file means, not where it says it.
fn meaning(source: &str) -> serde_json::Value {
    fn strip(value: &mut serde_json::Value) {
        match value {
            serde_json::Value::Object(map) => {
                map.remove("span");
                map.values_mut().for_each(strip);
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let mut value = serde_json::to_value(parse(source).file).expect("tree serialises");
    strip(&mut value);
    value
}

fn mutation() -> impl Strategy<Value = Mutation> {
    any::<(u8, usize, usize)>().prop_map(|(kind, a, b)| Mutation::from_parts(kind, a, b))
}

fn exercise(source: &str) {
    let parsed = parse(source);
    assert_eq!(parsed.print(source), source);
    let mut end = 0;
    for token in &parsed.tokens {
        assert_eq!(token.span.start as usize, end, "tokens must be contiguous");
        end = token.span.end as usize;
    }
    assert_eq!(end, source.len());
    for error in &parsed.errors {
        assert!(error.span.end as usize <= source.len());
    }
    if let Ok(formatted) = format(source) {
        let again = format(&formatted).expect("formatted output parses");
        assert_eq!(formatted, again, "idempotent");
        assert_eq!(
            meaning(source),
            meaning(&formatted),
            "formatting kept the meaning"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(source in "\\PC{0,200}") {
        exercise(&source);
    }

    #[test]
    fn pack_shaped_text_never_panics(source in "[a-z{}()\\[\\]:=,.\"\\n 0-9/-]{0,300}") {
        exercise(&source);
    }

    #[test]
    fn mutated_packs_never_panic(seed in 0..SEEDS.len(), mutations in prop::collection::vec(mutation(), 1..6)) {
        exercise(&mutate(SEEDS[seed], &mutations));
    }
}

#[test]
fn seeds_survive_the_laws() {
    for seed in SEEDS {
        exercise(seed);
    }
}

#[test]
fn ten_thousand_levels_of_nesting_give_a_diagnostic() {
    for (open, close) in [("[", "]"), ("(", ")"), ("{", "}")] {
        let source = format!(
            "pack p {{ flow {{ step a = {}1{} }} }}",
            open.repeat(10_000),
            close.repeat(10_000)
        );
        let parsed = parse(&source);
        assert!(
            parsed.errors.iter().any(|e| e.code == "GX0004"),
            "{open}: {:?}",
            parsed.errors.first()
        );
    }
    let source = format!(
        "pack p {{ flow {{ step a = {}x }} }}",
        "not ".repeat(10_000)
    );
    assert!(parse(&source).errors.iter().any(|e| e.code == "GX0004"));
    let source = format!("pack p {{ flow {{ step a = x{} }} }}", ".y".repeat(10_000));
    assert!(parse(&source).errors.iter().any(|e| e.code == "GX0004"));
}

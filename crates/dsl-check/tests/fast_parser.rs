//! The parser's fast path on the benchmark's generated packs: it takes the clean pack and
//! builds exactly the tree the reporting grammar builds; it gives up on the broken pack.

#[path = "../benches/generate.rs"]
#[allow(dead_code)]
mod generate;

#[test]
fn the_fast_path_takes_a_generated_pack_and_agrees_with_the_grammar() {
    let pack = generate::workload(3_000).pack;
    let (fast, grammar, errors) = dsl_syntax::parse_both(&pack);
    assert!(errors.is_empty(), "{errors:#?}");
    let fast = fast.expect("the fast path parses a clean pack");
    assert_eq!(format!("{fast:#?}"), format!("{grammar:#?}"));
}

#[test]
fn the_fast_path_gives_up_on_a_broken_pack() {
    let pack = generate::broken_pack(30);
    let (fast, _, errors) = dsl_syntax::parse_both(&pack);
    assert!(fast.is_none());
    assert!(!errors.is_empty());
}

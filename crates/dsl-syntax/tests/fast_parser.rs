//! The fast path agrees with the reporting grammar: on every file the grammar parses without
//! an error, the fast path builds the very same tree (spans included); on every file the
//! grammar reports, the fast path gives up. Checked on every data file, pack and stdlib
//! module, and on arbitrary, mutated and deeply nested input.

use dsl_syntax::mutate::{Mutation, mutate};
use dsl_syntax::parse_both;
use proptest::prelude::*;
use std::path::{Path, PathBuf};

/// Asserts the agreement on one input; returns whether the input was clean.
fn agree(source: &str) -> bool {
    let (fast, grammar, errors) = parse_both(source);
    match fast {
        Some(fast) => {
            assert!(
                errors.is_empty(),
                "the fast path accepted a file the grammar reports: {errors:#?}\n---\n{source}"
            );
            assert_eq!(
                format!("{fast:#?}"),
                format!("{grammar:#?}"),
                "the two parsers built different trees for:\n{source}"
            );
            true
        }
        None => {
            assert!(
                !errors.is_empty(),
                "the fast path gave up on a clean file:\n{source}"
            );
            false
        }
    }
}

fn gx_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            gx_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "gx") {
            out.push(path);
        }
    }
}

fn corpus() -> Vec<(PathBuf, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut files = Vec::new();
    for dir in ["tests/data", "packs", "stdlib"] {
        gx_files(&root.join(dir), &mut files);
    }
    files.sort();
    files
        .into_iter()
        .filter_map(|path| Some((path.clone(), std::fs::read_to_string(&path).ok()?)))
        .collect()
}

#[test]
fn every_file_in_the_repository() {
    let files = corpus();
    assert!(
        files.len() > 100,
        "the corpus was found ({} files)",
        files.len()
    );
    let clean = files.iter().filter(|(_, source)| agree(source)).count();
    // Most of the corpus is clean packs and modules; the error cases exercise the give-ups.
    assert!(clean > 50, "{clean} clean files");
    assert!(clean < files.len(), "the corpus has files with errors");
}

#[test]
fn every_prefix_of_a_pack() {
    // Truncation at every token boundary: each prefix is broken in its own way.
    let source = include_str!("../../../tests/data/parser/ok/0003_flow_constructs.gx");
    for (end, _) in source.char_indices().step_by(7) {
        agree(&source[..end]);
    }
    assert!(agree(source));
}

#[test]
fn deep_input_is_left_to_the_grammar() {
    for (open, close) in [("(", ")"), ("[", "]"), ("not ", ""), ("- ", "")] {
        let depth = 300;
        let expr = format!("{}1{}", open.repeat(depth), close.repeat(depth));
        agree(&format!("pack p {{ flow {{ step a = {expr} }} }}"));
    }
    let chain = "1 + ".repeat(400) + "1";
    agree(&format!("pack p {{ flow {{ step a = {chain} }} }}"));
    let mut whens = String::from("step a = when true { 1 }");
    for _ in 0..300 {
        whens.push_str(" else when true { 1 }");
    }
    // Deeper than the fast path recurses: the grammar parses it (and must agree when clean).
    let (fast, _, _) = parse_both(&format!("pack p {{ flow {{ {whens} }} }}"));
    assert!(fast.is_none());
}

const SEEDS: &[&str] = &[
    include_str!("../../../tests/data/parser/ok/0001_inbox_triage.gx"),
    include_str!("../../../tests/data/parser/ok/0002_module_tools.gx"),
    include_str!("../../../tests/data/parser/ok/0003_flow_constructs.gx"),
];

fn mutation() -> impl Strategy<Value = Mutation> {
    any::<(u8, usize, usize)>().prop_map(|(kind, a, b)| Mutation::from_parts(kind, a, b))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn mutated_packs(seed in 0..SEEDS.len(), mutations in prop::collection::vec(mutation(), 1..4)) {
        agree(&mutate(SEEDS[seed], &mutations));
    }

    #[test]
    fn pack_shaped_text(body in "[a-z{}()\\[\\]:=,.\"\\n 0-9+*<>?|-]{0,120}") {
        agree(&format!("pack p {{ flow {{ step a = {body} }} }}"));
        agree(&format!("pack p {{ {body} }}"));
    }
}

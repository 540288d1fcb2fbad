//! Formatter cases: a snapshot per case under `tests/data/format`, idempotence, and no
//! comment lost; every parser `ok` case formats idempotently and keeps its meaning.

use dsl_syntax::format::format;
use dsl_syntax::{TokenKind, parse};

fn comments(source: &str) -> Vec<String> {
    parse(source)
        .tokens
        .iter()
        .filter(|t| t.kind.is_comment())
        .map(|t| t.span.text(source).trim_end().to_string())
        .collect()
}

fn check_laws(source: &str) -> String {
    let once = format(source).expect("formats");
    let twice = format(&once).expect("formatted output parses");
    assert_eq!(once, twice, "formatting is not idempotent");
    assert_eq!(comments(source), comments(&once), "comments changed");
    let _ = TokenKind::Whitespace;
    once
}

#[test]
fn format_cases() {
    insta::glob!("../../../tests/data/format", "*.gx", |path| {
        let source = std::fs::read_to_string(path).expect("case file");
        insta::assert_snapshot!(check_laws(&source));
    });
}

#[test]
fn formatted_input_is_left_unchanged() {
    let source = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/data/format/0002_already_formatted.gx"
    ))
    .expect("case file");
    assert_eq!(format(&source).expect("formats"), source);
}

#[test]
fn parser_ok_cases_format_idempotently() {
    insta::glob!("../../../tests/data/parser/ok", "*.gx", |path| {
        let source = std::fs::read_to_string(path).expect("case file");
        check_laws(&source);
    });
}

#[test]
fn files_with_syntax_errors_are_refused() {
    let errors = format("pack p { flow { step a = } }").expect_err("refused");
    assert_eq!(errors.first().map(|e| e.code), Some("GX0001"));
}

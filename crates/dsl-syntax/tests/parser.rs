//! Parser cases as data files: `tests/data/parser/ok/*.gx` must parse without errors,
//! `tests/data/parser/err/*.gx` must report the snapshotted errors; both snapshot the tree.

use dsl_syntax::parse;

#[test]
fn ok_cases() {
    insta::glob!("../../../tests/data/parser/ok", "*.gx", |path| {
        let source = std::fs::read_to_string(path).expect("case file");
        let parse = parse(&source);
        assert_eq!(
            dsl_syntax::render::plain(&source, &parse.errors),
            "",
            "{}",
            path.display()
        );
        assert_eq!(parse.print(&source), source);
        insta::assert_snapshot!(format!("{:#?}", parse.file));
    });
}

#[test]
fn err_cases() {
    insta::glob!("../../../tests/data/parser/err", "*.gx", |path| {
        let source = std::fs::read_to_string(path).expect("case file");
        let parse = parse(&source);
        assert!(
            !parse.errors.is_empty(),
            "{} parsed without errors",
            path.display()
        );
        assert_eq!(parse.print(&source), source);
        let items: Vec<String> = parse
            .file
            .items
            .iter()
            .map(|item| format!("{:?}", std::mem::discriminant(item)))
            .collect();
        insta::assert_snapshot!(format!(
            "{}\n--- items: {}\n{:#?}",
            dsl_syntax::render::plain(&source, &parse.errors),
            items.len(),
            parse.file
        ));
    });
}

#[test]
fn every_syntax_code_has_an_error_case() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/parser/err");
    let mut seen = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(dir).expect("err cases").flatten() {
        let source = std::fs::read_to_string(entry.path()).expect("case file");
        seen.extend(parse(&source).errors.iter().map(|e| e.code));
    }
    for (code, summary) in dsl_syntax::SYNTAX_CODES {
        assert!(
            seen.contains(code),
            "no parser error case reports {code} ({summary})"
        );
    }
}

#[test]
fn expression_spans_cover_their_parentheses() {
    let source = "pack p { flow { step a = (1 + 2) * (3) } }";
    let parse = parse(source);
    let Some(dsl_syntax::ast::Item::Flow(flow)) = parse.file.items.first() else {
        panic!("a flow");
    };
    let Some(dsl_syntax::ast::Action::Expr(expr)) = flow.steps.first().map(|s| &s.action) else {
        panic!("an expression step");
    };
    assert_eq!(expr.span.text(source), "(1 + 2) * (3)");
    let dsl_syntax::ast::ExprKind::Binary(_, lhs, rhs) = &expr.kind else {
        panic!("a binary expression");
    };
    assert_eq!(lhs.span.text(source), "(1 + 2)");
    assert_eq!(rhs.span.text(source), "(3)");
}

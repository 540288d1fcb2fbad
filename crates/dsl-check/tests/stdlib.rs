//! The embedded stdlib: every module checks clean, and `core` has the types the checker
//! relies on.

#[test]
fn every_stdlib_module_checks_clean() {
    for name in dsl_check::stdlib::names() {
        let Some(source) = dsl_check::stdlib::source(name) else {
            panic!("no source for {name}")
        };
        let analysis = dsl_check::check(source, &dsl_check::NoFiles);
        assert!(
            analysis.diagnostics.iter().all(|d| !d.is_error()),
            "std.{name}:\n{}",
            dsl_check::render::plain(source, &analysis.diagnostics)
        );
        let module = dsl_check::stdlib::module(name);
        assert!(
            module.is_some_and(|m| m.errors.is_empty()),
            "std.{name} has errors in the cache"
        );
    }
}

#[test]
fn core_defines_citation_and_critique() {
    let Some(core) = dsl_check::stdlib::module("core") else {
        panic!("no core")
    };
    let citation = core.types.get("Citation").map(|t| {
        t.fields
            .iter()
            .map(|f| format!("{}: {}", f.name, f.ty))
            .collect::<Vec<_>>()
    });
    assert_eq!(
        citation,
        Some(vec![
            "source: String".into(),
            "title: String".into(),
            "url: String?".into(),
            "quote: String".into()
        ])
    );
    let critique = core.types.get("Critique").map(|t| {
        t.fields
            .iter()
            .map(|f| format!("{}: {}", f.name, f.ty))
            .collect::<Vec<_>>()
    });
    assert_eq!(
        critique,
        Some(vec![
            "approved: Bool".into(),
            "score: Float".into(),
            "feedback: String".into()
        ])
    );
}

#[test]
fn stdlib_tools_have_scopes_and_simulations() {
    for name in dsl_check::stdlib::names() {
        let Some(module) = dsl_check::stdlib::module(name) else {
            continue;
        };
        for tool in module.tools.values() {
            assert!(tool.scope.is_some(), "{} has no scope", tool.key());
            assert!(tool.sim.is_some(), "{} has no sim", tool.key());
        }
    }
}

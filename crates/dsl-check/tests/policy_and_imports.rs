//! Approval paths (GX0401 and where the plan puts gates) and project imports through a
//! `MemoryWorld`.

use dsl_check::plan::{Graph, NodeKind};
use dsl_check::program::{FileRef, SymbolKind};
use dsl_check::{MemoryWorld, NoFiles};

fn pack(policy: &str, extra_steps: &str) -> String {
    format!(
        "pack p {{\n  language \"0.1\"\n  use std.mail\n  flow {{\n    step inbox = mail.search(query: \"x\")\n{extra_steps}    step gone = map m in inbox.messages {{ mail.delete(id: m.id) }}\n  }}\n  policy {{\n{policy}  }}\n}}\n"
    )
}

fn codes(source: &str) -> Vec<&'static str> {
    dsl_check::check(source, &NoFiles)
        .diagnostics
        .iter()
        .map(|d| d.code)
        .collect()
}

fn body_gate(source: &str) -> Option<bool> {
    let analysis = dsl_check::check(source, &NoFiles);
    let plan = dsl_check::lower(&analysis)?;
    let NodeKind::Map { body, .. } = &plan.graph.node("gone")?.kind else {
        return None;
    };
    let body: &Graph = body;
    Some(body.node("gone.body.approval").is_some())
}

#[test]
fn default_policy_gates_destructive_calls() {
    let source = pack("", "");
    assert_eq!(codes(&source), Vec::<&str>::new());
    assert_eq!(body_gate(&source), Some(true));
}

#[test]
fn explicit_rules_that_miss_a_destructive_call_are_an_error() {
    assert_eq!(codes(&pack("    approve mail.send\n", "")), vec!["GX0401"]);
    assert_eq!(
        codes(&pack("    approve mail.send\n    approve write\n", "")),
        Vec::<&str>::new()
    );
}

#[test]
fn an_unconditional_auto_approval_is_a_path_without_a_gate() {
    let source = pack("    approve mail.send\n    auto approve mail.delete\n", "");
    assert_eq!(codes(&source), Vec::<&str>::new());
    assert_eq!(body_gate(&source), Some(false));
}

#[test]
fn a_conditional_auto_approval_alone_is_no_path() {
    assert_eq!(
        codes(&pack(
            "    approve mail.send\n    auto approve mail.delete when id == \"x\"\n",
            ""
        )),
        vec!["GX0401"]
    );
    let source = pack("    auto approve mail.delete when id == \"x\"\n", "");
    assert_eq!(codes(&source), Vec::<&str>::new());
    assert_eq!(body_gate(&source), Some(true));
}

#[test]
fn an_explicit_approve_step_upstream_is_a_path() {
    let source = pack(
        "    approve mail.send\n",
        "    step ok = approve \"Delete everything?\"\n    step checked = when ok { inbox }\n",
    )
    .replace("map m in inbox.messages", "map m in checked.messages");
    assert_eq!(codes(&source), Vec::<&str>::new());
}

#[test]
fn project_imports_resolve_relative_to_the_importing_file() {
    let world = MemoryWorld::new()
        .with_file("./lib/common.gx", "module common {\n  use \"./types.gx\" as types\n  tool find(q: String) -> types.Hit {\n    scope: read\n    sim: { title: \"{q}\" }\n  }\n}\n")
        .with_file("./lib/types.gx", "module types {\n  type Hit {\n    title: String\n  }\n}\n");
    let source = "pack p {\n  language \"0.1\"\n  use \"./lib/common.gx\" as common\n  flow {\n    step hit = common.find(q: \"x\")\n    step title = hit.title\n  }\n}\n";
    let analysis = dsl_check::check(source, &world);
    assert!(
        analysis.diagnostics.is_empty(),
        "{:?}",
        analysis.diagnostics
    );
    assert_eq!(
        analysis
            .program
            .step("hit")
            .map(|s| s.ty.to_string())
            .as_deref(),
        Some("types.Hit")
    );
    let offset = source
        .find("title = hit.title")
        .map(|i| i + 12)
        .unwrap_or(0) as u32;
    let field = analysis.program.resolution_at(offset);
    assert!(
        field.is_some_and(|r| r.kind == SymbolKind::Field
            && r.def
                .as_ref()
                .is_some_and(|d| d.file == FileRef::Project("./lib/types.gx".into()))),
        "{field:?}"
    );
    assert!(dsl_check::lower(&analysis).is_some_and(|plan| plan.tool("common.find").is_some()));
}

#[test]
fn a_broken_import_is_reported_once() {
    let world = MemoryWorld::new().with_file("./lib.gx", "module lib {\n  type T { x: Nope }\n}\n");
    let source = "pack p {\n  language \"0.1\"\n  use \"./lib.gx\" as lib\n  flow {\n    step a = 1\n  }\n}\n";
    let analysis = dsl_check::check(source, &world);
    let codes: Vec<&str> = analysis.diagnostics.iter().map(|d| d.code).collect();
    assert_eq!(codes, vec!["GX0210"]);
}

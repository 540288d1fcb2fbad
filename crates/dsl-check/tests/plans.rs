//! Plan snapshots: every example pack lowers to a plan, snapshotted as JSON (expressions
//! shown as their source text, so the snapshot reads like the pack), plus DOT and Mermaid for
//! one pack, and the plan's structural promises (stable ids, gates, edges, order).

use std::path::{Path, PathBuf};

use dsl_check::World;
use serde_json::Value;

struct DirWorld(PathBuf);

impl World for DirWorld {
    fn read_file(&self, path: &str) -> Option<String> {
        std::fs::read_to_string(self.0.join(path)).ok()
    }
}

fn plan_of(path: &Path) -> (String, dsl_check::plan::Plan) {
    let source = std::fs::read_to_string(path).unwrap_or_default();
    let world = DirWorld(path.parent().map(Path::to_path_buf).unwrap_or_default());
    let analysis = dsl_check::check(&source, &world);
    let rendered = dsl_check::render::plain(&source, &analysis.diagnostics);
    let Some(plan) = dsl_check::lower(&analysis) else {
        panic!("{}: no plan:\n{rendered}", path.display())
    };
    // Lowering that consumes the analysis (what `galaxy run` and `galaxy plan` use) moves
    // the expressions instead of copying them, and must build the very same plan.
    let owned = analysis
        .into_plan()
        .expect("the owned lowering plans it too");
    assert_eq!(plan.to_json(), owned.to_json(), "{}", path.display());
    (source, plan)
}

/// Replaces every serialised expression (`{"kind": .., "span": ..}` objects of the AST) by
/// its source text, and drops spans, so snapshots stay readable.
fn readable(value: Value, source: &str) -> Value {
    match value {
        Value::Object(map) => {
            let is_expr = map.len() == 2
                && map.contains_key("kind")
                && map
                    .get("kind")
                    .is_some_and(|k| k.is_object() || k.is_string())
                && map.contains_key("span");
            if is_expr
                && let Some(span) = map.get("span")
                && let (Some(start), Some(end)) = (
                    span.get("start").and_then(Value::as_u64),
                    span.get("end").and_then(Value::as_u64),
                )
            {
                return Value::String(
                    source
                        .get(start as usize..end as usize)
                        .unwrap_or("")
                        .to_string(),
                );
            }
            Value::Object(
                map.into_iter()
                    .filter(|(k, _)| k != "span" && k != "def")
                    .map(|(k, v)| (k, readable(v, source)))
                    .collect(),
            )
        }
        Value::Array(items) => {
            Value::Array(items.into_iter().map(|v| readable(v, source)).collect())
        }
        other => other,
    }
}

#[test]
fn example_pack_plans() {
    insta::glob!("../../../packs", "**/*.gx", |path| {
        let (source, plan) = plan_of(path);
        let json: Value = serde_json::from_str(&plan.to_json()).unwrap_or(Value::Null);
        assert_eq!(json.get("version").and_then(Value::as_u64), Some(1));
        insta::assert_json_snapshot!(readable(json, &source));
    });
}

#[test]
fn clean_case_plans() {
    insta::glob!("../../../tests/data/check/ok", "*.gx", |path| {
        let (source, plan) = plan_of(path);
        let json: Value = serde_json::from_str(&plan.to_json()).unwrap_or(Value::Null);
        insta::assert_json_snapshot!(readable(json, &source));
    });
}

fn inbox_triage() -> dsl_check::plan::Plan {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../packs/inbox_triage/inbox_triage.gx");
    plan_of(&path).1
}

#[test]
fn dot_export() {
    insta::assert_snapshot!(inbox_triage().to_dot());
}

#[test]
fn mermaid_export() {
    insta::assert_snapshot!(inbox_triage().to_mermaid());
}

#[test]
fn json_is_deterministic() {
    assert_eq!(inbox_triage().to_json(), inbox_triage().to_json());
}

#[test]
fn gates_sit_before_destructive_calls_with_stable_ids() {
    let plan = inbox_triage();
    let Some(send) = plan.graph.node("send") else {
        panic!("no send node")
    };
    let dsl_check::plan::NodeKind::Map { body, .. } = &send.kind else {
        panic!("send is not a map")
    };
    let gate = body.node("send.body.approval");
    assert!(gate.is_some_and(|g| matches!(g.kind, dsl_check::plan::NodeKind::Gate { .. })));
    let edges = body.edges();
    assert!(
        edges
            .iter()
            .any(|(from, to, _)| *from == "send.body.approval" && *to == "send.body")
    );
}

#[test]
fn topological_order_puts_sources_first() {
    let plan = inbox_triage();
    let Some(order) = plan.topological_order() else {
        panic!("cycle")
    };
    let position = |id: &str| order.iter().position(|n| *n == id);
    assert!(position("inbox") < position("triage"));
    assert!(position("drafts") < position("send"));
    assert!(position("escalation_text") < position("alert"));
}

#[test]
fn top_level_gate_and_edges() {
    let source = "pack p {\n  language \"0.1\"\n  use std.mail\n  flow {\n    step inbox = mail.search(query: \"x\")\n    step gone = mail.delete(id: inbox.messages[0].id)\n  }\n}\n";
    let analysis = dsl_check::check(source, &dsl_check::NoFiles);
    assert!(
        analysis.diagnostics.is_empty(),
        "{:?}",
        analysis.diagnostics
    );
    let Some(plan) = dsl_check::lower(&analysis) else {
        panic!("no plan")
    };
    let edges: Vec<String> = plan
        .graph
        .edges()
        .iter()
        .map(|(f, t, e)| format!("{f} -> {t} ({:?} {})", e.kind, e.path))
        .collect();
    assert_eq!(
        edges,
        vec![
            "inbox -> gone.approval (Data messages)".to_string(),
            "inbox -> gone (Data messages)".to_string(),
            "gone.approval -> gone (Approval )".to_string(),
        ]
    );
}

#[test]
fn no_plan_with_errors() {
    let analysis = dsl_check::check(
        "pack p {\n  flow {\n    step a = nope\n  }\n}\n",
        &dsl_check::NoFiles,
    );
    assert!(dsl_check::lower(&analysis).is_none());
}

#[test]
fn a_tool_is_found_by_its_whole_key_only() {
    let plan = inbox_triage();
    let search = plan
        .tool("mail.search")
        .expect("an imported tool by its key");
    assert_eq!(search.key(), "mail.search");
    for near in [
        "search",
        "mail",
        "mail.",
        "mailsearch",
        "mail.searc",
        "mail.search.",
        "chat.search",
    ] {
        assert!(plan.tool(near).is_none(), "`{near}` is not a tool's key");
    }
    for tool in &plan.tools {
        let key = tool.key();
        assert!(
            plan.tool(&key).is_some_and(|found| found.key() == key),
            "{key}"
        );
    }
}

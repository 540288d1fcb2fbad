//! Graph round-trip cases: every `tests/data/graph/*.gx` pack carries its ops in a first
//! `// ops: [...]` line; the snapshot shows the edits (or the refusal), the ids changed,
//! and whether the inverse ops restore the text. Plus graph snapshots of the example packs
//! and export → import → export on each.

use std::path::{Path, PathBuf};

use dsl_check::World;
use dsl_check::graph::{self, Graph, GraphOp};

struct DirWorld(PathBuf);

impl World for DirWorld {
    fn read_file(&self, path: &str) -> Option<String> {
        std::fs::read_to_string(self.0.join(path)).ok()
    }
}

fn world_for(path: &Path) -> DirWorld {
    DirWorld(path.parent().map(Path::to_path_buf).unwrap_or_default())
}

/// The graph without source ranges (which change with any edit above a step).
fn without_ranges(mut graph: Graph) -> Graph {
    for node in &mut graph.nodes {
        node.range = None;
    }
    graph
}

/// Shows each edit as `line:column` with the old and the new text.
fn render_edits(source: &str, edits: &[dsl_syntax::TextEdit]) -> String {
    let index = dsl_syntax::LineIndex::new(source);
    let mut out = String::new();
    for edit in edits {
        let at = index.line_col(source, edit.span.start);
        out.push_str(&format!(
            "@{}:{} {:?} -> {:?}\n",
            at.line + 1,
            at.character + 1,
            edit.span.text(source),
            edit.new_text
        ));
    }
    out
}

#[test]
fn op_cases() {
    insta::glob!("../../../tests/data/graph", "*.gx", |path| {
        let source = std::fs::read_to_string(path).unwrap_or_default();
        let ops_line = source.lines().next().unwrap_or("");
        let ops: Vec<GraphOp> =
            serde_json::from_str(ops_line.strip_prefix("// ops:").unwrap_or("[]").trim())
                .unwrap_or_else(|e| panic!("{}: bad ops line: {e}", path.display()));
        let world = world_for(path);
        let mut report = String::new();
        match graph::apply(&source, &ops, &world) {
            Ok(edit) => {
                let after = graph::apply_text_edits(&source, &edit.edits);
                report.push_str(&render_edits(&source, &edit.edits));
                report.push_str(&format!(
                    "changed: {}\n",
                    serde_json::to_string(&edit.changed).unwrap_or_default()
                ));
                // The inverse, op by op in reverse order, restores the text.
                let mut states = vec![source.clone()];
                for op in &ops {
                    let current = states.last().cloned().unwrap_or_default();
                    let step = graph::apply(&current, std::slice::from_ref(op), &world)
                        .expect("each op alone applies");
                    states.push(graph::apply_text_edits(&current, &step.edits));
                }
                assert_eq!(
                    states.last(),
                    Some(&after),
                    "ops one by one give the same text"
                );
                let mut text = after.clone();
                for (op, before) in ops.iter().zip(&states).rev() {
                    let inverse = graph::inverse(before, op, &world).expect("inverse");
                    let undo = graph::apply(&text, &inverse, &world).expect("inverse applies");
                    text = graph::apply_text_edits(&text, &undo.edits);
                }
                report.push_str(&format!("inverse restores the text: {}\n", text == source));
                let before_clean = !dsl_check::check(&source, &world).has_errors();
                let after_clean = !dsl_check::check(&after, &world).has_errors();
                assert!(!before_clean || after_clean, "clean stays clean");
            }
            Err(error) => report.push_str(&format!("refused: {error}\n")),
        }
        insta::with_settings!({
            snapshot_path => "../../../tests/data/graph/snapshots",
            prepend_module_to_snapshot => false,
        }, {
            insta::assert_snapshot!(report);
        });
    });
}

#[test]
fn example_pack_graphs() {
    insta::glob!("../../../packs", "**/*.gx", |path| {
        let source = std::fs::read_to_string(path).unwrap_or_default();
        let analysis = dsl_check::check(&source, &world_for(path));
        let graph = graph::export(&analysis);
        insta::with_settings!({
            snapshot_path => "../../../tests/data/graph/snapshots",
            prepend_module_to_snapshot => false,
        }, {
            insta::assert_json_snapshot!(graph);
        });
    });
}

#[test]
fn export_import_export_is_the_identity_on_example_packs() {
    let packs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../packs");
    let mut seen = 0;
    for entry in std::fs::read_dir(&packs).expect("packs dir").flatten() {
        for file in std::fs::read_dir(entry.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let path = file.path();
            if path.extension().is_none_or(|e| e != "gx") {
                continue;
            }
            seen += 1;
            let world = world_for(&path);
            let source = std::fs::read_to_string(&path).unwrap_or_default();
            let graph = without_ranges(graph::export(&dsl_check::check(&source, &world)));
            let written = graph::import(&graph).expect("import");
            assert_eq!(
                written,
                dsl_syntax::format::format(&written).expect("formatted"),
                "import writes a formatted pack"
            );
            let again = without_ranges(graph::export(&dsl_check::check(&written, &world)));
            assert_eq!(graph, again, "{}", path.display());
        }
    }
    assert!(seen >= 6);
}

#[test]
fn the_token_list_prints_back_the_exact_bytes() {
    let packs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/graph");
    for file in std::fs::read_dir(packs).expect("cases").flatten() {
        let source = std::fs::read_to_string(file.path()).unwrap_or_default();
        let parse = dsl_syntax::parse(&source);
        assert_eq!(parse.print(&source), source);
    }
}

#[test]
fn auto_layout_is_deterministic_and_layered() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data/graph/0002_move_creates_layout_block.gx");
    let source = std::fs::read_to_string(&path).unwrap_or_default();
    let graph = graph::export(&dsl_check::check(&source, &world_for(&path)));
    assert_eq!(graph.layout_source, graph::LayoutSource::Auto);
    let again = graph::auto_layout(&graph.nodes, &graph.edges);
    assert_eq!(graph.layout, again);
    for edge in &graph.edges {
        assert!(
            graph.layout[&edge.from].x < graph.layout[&edge.to].x,
            "{edge:?}"
        );
    }
}

#[test]
fn graph_json_has_the_documented_shape() {
    let source = "pack p {\n  language \"0.1\"\n\n  flow {\n    step a = 1\n    step b = a + 1\n  }\n\n  outcome success when b > 0\n}\n";
    let graph = graph::export(&dsl_check::check(source, &dsl_check::NoFiles));
    let json = serde_json::to_value(&graph).expect("json");
    assert_eq!(json["version"], 1);
    assert_eq!(json["nodes"][1]["id"], "b");
    assert_eq!(json["nodes"][1]["kind"], "compute");
    assert_eq!(json["edges"][0]["from"], "a");
    assert_eq!(json["edges"][0]["target"], "expr");
    assert_eq!(json["layout_source"], "auto");
    let back: Graph = serde_json::from_value(json).expect("graph JSON reads back");
    assert_eq!(back, graph);
    let op: GraphOp =
        serde_json::from_str(r#"{"op":"move","id":"a","x":1,"y":2.5}"#).expect("op JSON");
    assert_eq!(
        op,
        GraphOp::Move {
            id: "a".into(),
            x: 1.0,
            y: 2.5
        }
    );
}

#[test]
fn a_file_that_does_not_parse_is_refused() {
    let error = graph::apply(
        "pack p { flow { step a = } }",
        &[GraphOp::AutoLayout],
        &dsl_check::NoFiles,
    )
    .expect_err("refused");
    assert!(
        matches!(error, graph::GraphError::DoesNotParse { .. }),
        "{error}"
    );
}

//! The graph round-trip's laws, as property tests over generated packs (the example packs
//! and the parser's `ok` cases, formatted, then changed by random op sequences):
//!
//! - the tokens print back to the exact bytes;
//! - an accepted op followed by its inverse restores the text byte for byte;
//! - export → import → export is the identity on the graph (source ranges aside);
//! - a pack that checks clean still checks clean after any accepted op;
//! - a refused op changes nothing, and a list with a refused op is refused as a whole.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use dsl_check::World;
use dsl_check::graph::{self, Graph, GraphOp};
use proptest::prelude::*;

struct DirWorld(PathBuf);

impl World for DirWorld {
    fn read_file(&self, path: &str) -> Option<String> {
        std::fs::read_to_string(self.0.join(path)).ok()
    }
}

/// The seed packs: (formatted text, directory for imports).
fn seeds() -> &'static Vec<(String, PathBuf)> {
    static SEEDS: OnceLock<Vec<(String, PathBuf)>> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut paths = Vec::new();
        for entry in std::fs::read_dir(root.join("packs"))
            .into_iter()
            .flatten()
            .flatten()
        {
            for file in std::fs::read_dir(entry.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                paths.push(file.path());
            }
        }
        for file in std::fs::read_dir(root.join("tests/data/parser/ok"))
            .into_iter()
            .flatten()
            .flatten()
        {
            paths.push(file.path());
        }
        paths.retain(|p| p.extension().is_some_and(|e| e == "gx"));
        paths.sort();
        paths
            .into_iter()
            .filter_map(|path| {
                let source = std::fs::read_to_string(&path).ok()?;
                let formatted = dsl_syntax::format::format(&source).ok()?;
                Some((formatted, path.parent()?.to_path_buf()))
            })
            .collect()
    })
}

fn json(graph: &Graph) -> String {
    serde_json::to_string_pretty(graph).unwrap_or_default()
}

/// The first differing line of two texts, with its neighbours.
fn first_difference(a: &str, b: &str) -> String {
    let (a, b): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
    let at = a
        .iter()
        .zip(&b)
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()));
    let from = at.saturating_sub(3);
    format!(
        "line {at}:\n--- {}\n+++ {}",
        a.get(from..(at + 3).min(a.len()))
            .unwrap_or(&[])
            .join("\n--- "),
        b.get(from..(at + 3).min(b.len()))
            .unwrap_or(&[])
            .join("\n+++ ")
    )
}

fn without_ranges(mut graph: Graph) -> Graph {
    for node in &mut graph.nodes {
        node.range = None;
    }
    graph
}

/// An op derived from `seed` against the current graph.
fn op_for(graph: &Graph, seed: u64, round: usize) -> GraphOp {
    let ids: Vec<&str> = graph.nodes.iter().map(|n| n.id.as_str()).collect();
    let pick = |salt: u64| -> String {
        if ids.is_empty() {
            "missing".to_string()
        } else {
            ids[((seed / 16).wrapping_add(salt) as usize) % ids.len()].to_string()
        }
    };
    let small = |salt: u64| ((seed >> (8 + salt)) % 40) as f64 * 12.5 - 100.0;
    match seed % 9 {
        0 => GraphOp::Move {
            id: pick(0),
            x: small(1),
            y: small(2),
        },
        1 => GraphOp::Unplace { id: pick(0) },
        2 => GraphOp::Rename {
            id: pick(0),
            new_id: format!("{}_r{round}", pick(0)),
        },
        3 => {
            // A literal property gets another literal of the same kind.
            let node = graph
                .nodes
                .get((seed / 16) as usize % graph.nodes.len().max(1));
            let literal = node.and_then(|n| {
                n.properties.iter().find_map(|(path, p)| match &p.value {
                    Some(serde_json::Value::Number(n)) => {
                        Some((path.clone(), format!("{}", n.as_i64().unwrap_or(1) + 1)))
                    }
                    Some(serde_json::Value::String(_)) if !p.source.starts_with("\"\"\"") => {
                        Some((path.clone(), "\"changed by a law\"".to_string()))
                    }
                    _ => None,
                })
            });
            match (node, literal) {
                (Some(node), Some((property, value))) => GraphOp::SetProperty {
                    id: node.id.clone(),
                    property,
                    value,
                },
                _ => GraphOp::AutoLayout,
            }
        }
        4 => GraphOp::CreateStep {
            id: format!("added_{round}"),
            action: if seed.is_multiple_of(2) {
                "count([1, 2, 3])".into()
            } else {
                format!("{} != none", pick(3))
            },
            after: (!seed.is_multiple_of(3)).then(|| pick(1)),
            before: None,
            position: seed
                .is_multiple_of(5)
                .then_some(graph::Position { x: 10.0, y: 20.0 }),
            comment: seed
                .is_multiple_of(7)
                .then(|| "// Added by a law.".to_string()),
            separated: None,
        },
        5 => GraphOp::Delete { id: pick(0) },
        6 => GraphOp::AutoLayout,
        7 => {
            let to = pick(1);
            let node = graph.nodes.iter().find(|n| n.id == to);
            let target = node
                .and_then(|n| {
                    n.properties
                        .keys()
                        .nth((seed as usize / 7) % n.properties.len().max(1))
                })
                .cloned()
                .unwrap_or_else(|| "expr".into());
            GraphOp::Connect {
                from: pick(0),
                to,
                field: String::new(),
                target,
            }
        }
        _ => GraphOp::Rename {
            id: "no_such_step".into(),
            new_id: "x".into(),
        },
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn laws_hold_along_random_op_sequences(
        pack in 0usize..64,
        ops in proptest::collection::vec(any::<u64>(), 1..6),
    ) {
        let seeds = seeds();
        prop_assume!(!seeds.is_empty());
        let (start, dir) = &seeds[pack % seeds.len()];
        let world = DirWorld(dir.clone());
        let mut text = start.clone();
        let mut previous_op: Option<GraphOp> = None;
        for (round, seed) in ops.into_iter().enumerate() {
            let analysis = dsl_check::check(&text, &world);
            let clean = !analysis.has_errors();
            prop_assert_eq!(analysis.parse.print(&text), text.clone());
            let graph = graph::export(&analysis);
            // export → import → export
            if analysis.parse.errors.is_empty() && !graph.pack.is_empty() {
                let written = graph::import(&graph);
                prop_assert!(written.is_ok(), "import failed: {:?}", written);
                let written = written.unwrap_or_default();
                let again = graph::export(&dsl_check::check(&written, &world));
                let (a, b) = (json(&without_ranges(graph.clone())), json(&without_ranges(again)));
                prop_assert!(a == b, "export, import, export differs after {:?}: {}", previous_op, first_difference(&a, &b));
            }
            let op = op_for(&graph, seed, round);
            let inverse = graph::inverse(&text, &op, &world);
            let applied = graph::apply(&text, std::slice::from_ref(&op), &world);
            // Reusing the analysis of the text (as the language server does) changes nothing.
            let reused = graph::apply_to(&analysis, std::slice::from_ref(&op), &world);
            prop_assert_eq!(format!("{reused:?}"), format!("{applied:?}"));
            match applied {
                Ok(edit) => {
                    let after = graph::apply_text_edits(&text, &edit.edits);
                    let mut last_end = 0;
                    for e in &edit.edits {
                        prop_assert!(e.span.start >= last_end, "edits overlap or are unsorted");
                        last_end = e.span.end;
                    }
                    if clean {
                        let diagnostics = dsl_check::check(&after, &world).diagnostics;
                        prop_assert!(
                            !diagnostics.iter().any(|d| d.is_error()),
                            "{:?} broke a clean pack: {:?}", op, diagnostics
                        );
                    }
                    let inverse = inverse.map_err(|e| TestCaseError::fail(format!("{op:?}: {e}")))?;
                    let undo = graph::apply(&after, &inverse, &world)
                        .map_err(|e| TestCaseError::fail(format!("inverse of {op:?}: {e}")))?;
                    let restored = graph::apply_text_edits(&after, &undo.edits);
                    prop_assert_eq!(&restored, &text, "{:?} then {:?}", op, inverse);
                    text = after;
                    previous_op = Some(op);
                }
                Err(error) => {
                    prop_assert!(!error.to_string().is_empty());
                    // All or nothing: a harmless op before the refused one does not land.
                    let both = [GraphOp::AutoLayout, op.clone()];
                    prop_assert!(graph::apply(&text, &both, &world).is_err());
                }
            }
        }
    }
}

//! End-to-end tests of `galaxy graph export | apply | import`.

mod common;

use std::path::{Path, PathBuf};

use common::{code, galaxy, repo_root, text};

/// A fresh scratch directory holding a copy of the inbox triage pack and its fixtures.
fn scratch_pack() -> (common::Scratch, PathBuf) {
    let dir = common::scratch("graph");
    let pack = dir.join("inbox_triage.gx");
    std::fs::copy(
        repo_root().join("packs/inbox_triage/inbox_triage.gx"),
        &pack,
    )
    .expect("copy pack");
    (dir, pack)
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

#[test]
fn export_prints_the_graph_json() {
    let out = galaxy(&["graph", "export", "packs/inbox_triage/inbox_triage.gx"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let graph: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(graph["version"], 1);
    assert_eq!(graph["pack"], "inbox_triage");
    assert_eq!(graph["layout_source"], "explicit");
    assert_eq!(graph["nodes"][0]["id"], "inbox");
    assert_eq!(graph["nodes"][0]["kind"], "tool_call");
    assert_eq!(graph["nodes"][0]["tool"], "mail.search");
    assert_eq!(graph["layout"]["send"]["x"], 720.0);
    let edges = graph["edges"].as_array().expect("edges");
    assert!(edges.iter().any(|e| e["from"] == "inbox"
        && e["to"] == "triage"
        && e["field"] == "messages"
        && e["target"] == "in"));
}

#[test]
fn apply_moves_one_line_in_place() {
    let (dir, pack) = scratch_pack();
    let before = std::fs::read_to_string(&pack).expect("pack");
    let ops = dir.join("ops.json");
    std::fs::write(
        &ops,
        r#"[{"op": "move", "id": "send", "x": 700, "y": 260}]"#,
    )
    .expect("ops");
    let out = galaxy(&["graph", "apply", path_str(&pack), path_str(&ops)]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let after = std::fs::read_to_string(&pack).expect("pack");
    let changed: Vec<(&str, &str)> = before
        .lines()
        .zip(after.lines())
        .filter(|(a, b)| a != b)
        .collect();
    assert_eq!(
        changed,
        vec![("    send: (720, 240)", "    send: (700, 260)")]
    );
    assert_eq!(before.lines().count(), after.lines().count());
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(answer["edits"].as_array().map(Vec::len), Some(1));
    assert_eq!(code(&galaxy(&["check", path_str(&pack)])), 0);
}

#[test]
fn apply_renames_every_reference_and_reports_the_id_change() {
    let (dir, pack) = scratch_pack();
    let ops = dir.join("ops.json");
    std::fs::write(
        &ops,
        r#"{"ops": [{"op": "rename", "id": "drafts", "new_id": "replies"}]}"#,
    )
    .expect("ops");
    let out = galaxy(&["graph", "apply", path_str(&pack), path_str(&ops)]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let after = std::fs::read_to_string(&pack).expect("pack");
    assert!(!after.contains("drafts"), "every reference renamed");
    assert!(after.contains("    replies: (480, 240)"));
    assert!(after.contains("expect count(replies) == 1"));
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(answer["changed"][0]["renamed"][0][0], "drafts");
    assert_eq!(answer["changed"][0]["renamed"][0][1], "replies");
    assert_eq!(code(&galaxy(&["check", path_str(&pack)])), 0);
}

#[test]
fn a_refused_apply_exits_1_and_changes_nothing() {
    let (dir, pack) = scratch_pack();
    let before = std::fs::read_to_string(&pack).expect("pack");
    let ops = dir.join("ops.json");
    // The move alone would be fine; the cycle refuses the whole list.
    std::fs::write(
        &ops,
        r#"[{"op": "move", "id": "send", "x": 1, "y": 1},
            {"op": "connect", "from": "send", "to": "inbox", "target": "args.query"}]"#,
    )
    .expect("ops");
    let out = galaxy(&["graph", "apply", path_str(&pack), path_str(&ops)]);
    assert_eq!(code(&out), 1);
    assert!(
        text(&out.stderr).contains("would make a cycle"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(std::fs::read_to_string(&pack).expect("pack"), before);

    std::fs::write(&ops, r#"[{"op": "delete", "id": "nope"}]"#).expect("ops");
    let out = galaxy(&["graph", "apply", path_str(&pack), path_str(&ops)]);
    assert_eq!(code(&out), 1);
    assert!(text(&out.stderr).contains("there is no step `nope`"));
    assert_eq!(std::fs::read_to_string(&pack).expect("pack"), before);

    std::fs::write(&ops, "not json").expect("ops");
    assert_eq!(
        code(&galaxy(&[
            "graph",
            "apply",
            path_str(&pack),
            path_str(&ops)
        ])),
        2
    );
}

#[test]
fn import_writes_a_pack_whose_graph_is_the_same() {
    let (dir, pack) = scratch_pack();
    let exported = galaxy(&["graph", "export", path_str(&pack)]);
    assert_eq!(code(&exported), 0);
    let graph_file = dir.join("graph.json");
    std::fs::write(&graph_file, &exported.stdout).expect("graph");
    let written = dir.join("written.gx");
    let out = galaxy(&[
        "graph",
        "import",
        path_str(&graph_file),
        "-o",
        path_str(&written),
    ]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(code(&galaxy(&["check", path_str(&written)])), 0);
    assert_eq!(code(&galaxy(&["fmt", "--check", path_str(&written)])), 0);
    let again = galaxy(&["graph", "export", path_str(&written)]);
    let strip = |bytes: &[u8]| {
        let mut value: serde_json::Value = serde_json::from_slice(bytes).expect("json");
        for node in value["nodes"].as_array_mut().expect("nodes") {
            node.as_object_mut().map(|n| n.remove("range"));
        }
        value
    };
    assert_eq!(strip(&exported.stdout), strip(&again.stdout));
}

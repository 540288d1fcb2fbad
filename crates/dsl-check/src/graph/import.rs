//! Import: writes a formatted pack from a [`Graph`].
//!
//! The text of each node's `action`, each item's `source` and the comments is authoritative;
//! kinds, properties, outputs and edges are derived data that export recomputes, so import
//! reads none of them. Positions are written as a layout block when the graph's layout is
//! explicit.

use std::collections::HashSet;
use std::fmt::Write as _;

use super::text::{indent_comment, is_identifier, validate_comment, validate_step};
use super::{GRAPH_VERSION, Graph, GraphError, LayoutSource};

/// Writes the pack the graph describes, formatted like `galaxy fmt` would.
pub fn import(graph: &Graph) -> Result<String, GraphError> {
    if graph.version > GRAPH_VERSION {
        return Err(GraphError::InvalidOp(format!(
            "graph version {} is newer than this toolchain's ({GRAPH_VERSION})",
            graph.version
        )));
    }
    if !is_identifier(&graph.pack) {
        return Err(GraphError::InvalidOp(format!(
            "pack name {:?} is not a name",
            graph.pack
        )));
    }
    let mut seen = HashSet::new();
    for node in &graph.nodes {
        if !is_identifier(&node.id) {
            return Err(GraphError::InvalidOp(format!(
                "step id {:?} is not a name",
                node.id
            )));
        }
        if !seen.insert(node.id.as_str()) {
            return Err(GraphError::InvalidOp(format!(
                "two steps are named `{}`",
                node.id
            )));
        }
        validate_comment(&node.comment)?;
        validate_step(&format!("step {} = {}", node.id, node.action), &node.id)?;
    }
    let mut out = String::new();
    for line in graph.header.lines() {
        let line = line.trim();
        if !line.is_empty() && !line.starts_with("//") {
            return Err(GraphError::InvalidOp(format!(
                "header line {line:?} is not a comment"
            )));
        }
        out.push_str(line);
        out.push('\n');
    }
    let _ = writeln!(out, "pack {} {{", graph.pack);
    let mut wrote_flow = false;
    let mut previous_kind: Option<&str> = None;
    for item in &graph.items {
        validate_comment(&item.comment)?;
        let multi_line = item.source.contains('\n') || item.kind == "flow";
        if let Some(previous) = previous_kind
            && (previous != item.kind || multi_line || previous == "flow")
        {
            out.push('\n');
        }
        previous_kind = Some(&item.kind);
        out.push_str(&indent_comment(&item.comment, "  "));
        if item.kind == "flow" {
            if !wrote_flow {
                write_flow(graph, &mut out);
                wrote_flow = true;
            }
            continue;
        }
        if item.source.trim().is_empty() {
            return Err(GraphError::InvalidOp(format!(
                "item of kind `{}` has no source",
                item.kind
            )));
        }
        out.push_str("  ");
        out.push_str(item.source.trim());
        out.push('\n');
    }
    if !wrote_flow && !graph.nodes.is_empty() {
        out.push('\n');
        write_flow(graph, &mut out);
    }
    if graph.layout_source == LayoutSource::Explicit {
        out.push_str("\n  layout {\n");
        for node in &graph.nodes {
            if let Some(position) = graph.layout.get(&node.id) {
                if !position.x.is_finite() || !position.y.is_finite() {
                    return Err(GraphError::InvalidOp(format!(
                        "position of `{}` is not a finite number",
                        node.id
                    )));
                }
                let _ = writeln!(out, "    {}: ({}, {})", node.id, position.x, position.y);
            }
        }
        out.push_str("  }\n");
    }
    out.push_str("}\n");
    dsl_syntax::format::format(&out).map_err(|errors| GraphError::DoesNotParse {
        message: errors
            .first()
            .map(|e| format!("the written pack: {}", e.message))
            .unwrap_or_default(),
    })
}

fn write_flow(graph: &Graph, out: &mut String) {
    out.push_str("  flow {\n");
    for node in &graph.nodes {
        out.push_str(&indent_comment(&node.comment, "    "));
        let _ = writeln!(out, "    step {} = {}", node.id, node.action.trim());
    }
    out.push_str("  }\n");
}

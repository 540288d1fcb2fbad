//! DOT and Mermaid exports of a plan; sub-plans (map, branch and review bodies) become
//! clusters / subgraphs.

use std::fmt::Write as _;

use super::{EdgeKind, Graph, Node, NodeKind, Plan};

fn label(node: &Node) -> String {
    let detail = match &node.kind {
        NodeKind::Tool { tool, .. } => tool.clone(),
        NodeKind::Ask { target, .. } => format!("ask {target}"),
        NodeKind::Map { var, .. } => format!("map {var}"),
        NodeKind::Branch { .. } => "when".to_string(),
        NodeKind::Route { router, .. } => format!("route {router}"),
        NodeKind::Review { critic, .. } => format!("review by {critic}"),
        NodeKind::Approval { .. } => "approve".to_string(),
        NodeKind::Gate { calls, .. } => {
            format!(
                "approval: {}",
                calls
                    .iter()
                    .map(|c| c.tool.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
        NodeKind::Compute { .. } => "compute".to_string(),
    };
    format!("{}\\n{}", node.id, detail)
}

fn escape(text: &str) -> String {
    text.replace('"', "\\\"")
}

fn sub_graphs(node: &Node) -> Vec<&Graph> {
    match &node.kind {
        NodeKind::Map { body, .. } | NodeKind::Review { body, .. } => vec![body],
        NodeKind::Branch {
            then, otherwise, ..
        } => {
            let mut out = vec![then];
            out.extend(otherwise.iter());
            out
        }
        _ => Vec::new(),
    }
}

fn dot_graph(out: &mut String, graph: &Graph, indent: usize) {
    let pad = " ".repeat(indent);
    for node in graph.nodes() {
        let shape = match node.kind {
            NodeKind::Gate { .. } | NodeKind::Approval { .. } => "diamond",
            NodeKind::Map { .. } | NodeKind::Review { .. } | NodeKind::Branch { .. } => "box3d",
            _ => "box",
        };
        let _ = writeln!(
            out,
            "{pad}\"{}\" [label=\"{}\", shape={shape}];",
            escape(&node.id),
            escape(&label(node))
        );
        for (i, sub) in sub_graphs(node).into_iter().enumerate() {
            let _ = writeln!(out, "{pad}subgraph \"cluster_{}_{i}\" {{", escape(&node.id));
            let _ = writeln!(out, "{pad}  label=\"{}\";", escape(&node.id));
            dot_graph(out, sub, indent + 2);
            let _ = writeln!(out, "{pad}}}");
        }
    }
    for (from, to, edge) in graph.edges() {
        let style = match edge.kind {
            EdgeKind::Data if edge.path.is_empty() => String::new(),
            EdgeKind::Data => format!(" [label=\"{}\"]", escape(&edge.path)),
            EdgeKind::Approval => " [style=dashed, label=\"approved\"]".to_string(),
        };
        let _ = writeln!(
            out,
            "{pad}\"{}\" -> \"{}\"{style};",
            escape(from),
            escape(to)
        );
    }
}

/// Graphviz DOT.
pub(crate) fn dot(plan: &Plan) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "digraph \"{}\" {{", escape(&plan.pack.name));
    let _ = writeln!(out, "  rankdir=LR;");
    dot_graph(&mut out, &plan.graph, 2);
    out.push_str("}\n");
    out
}

fn mermaid_id(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn mermaid_graph(out: &mut String, graph: &Graph, indent: usize) {
    let pad = " ".repeat(indent);
    for node in graph.nodes() {
        let text = label(node).replace("\\n", "<br/>").replace('"', "#quot;");
        let (open, close) = match node.kind {
            NodeKind::Gate { .. } | NodeKind::Approval { .. } => ("{", "}"),
            _ => ("[", "]"),
        };
        let _ = writeln!(out, "{pad}{}{open}\"{text}\"{close}", mermaid_id(&node.id));
        for (i, sub) in sub_graphs(node).into_iter().enumerate() {
            let _ = writeln!(
                out,
                "{pad}subgraph {}_sub{i} [\"{}\"]",
                mermaid_id(&node.id),
                node.id
            );
            mermaid_graph(out, sub, indent + 2);
            let _ = writeln!(out, "{pad}end");
        }
    }
    for (from, to, edge) in graph.edges() {
        let arrow = match edge.kind {
            EdgeKind::Data if edge.path.is_empty() => "-->".to_string(),
            EdgeKind::Data => format!("-->|{}|", edge.path),
            EdgeKind::Approval => "-.->|approved|".to_string(),
        };
        let _ = writeln!(out, "{pad}{} {arrow} {}", mermaid_id(from), mermaid_id(to));
    }
}

/// A Mermaid flowchart.
pub(crate) fn mermaid(plan: &Plan) -> String {
    let mut out = String::from("flowchart LR\n");
    mermaid_graph(&mut out, &plan.graph, 2);
    out
}

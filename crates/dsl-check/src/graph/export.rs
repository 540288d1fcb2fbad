//! Export: a checked pack seen as a [`Graph`] of steps, data edges and positions.

use std::collections::{BTreeMap, HashMap, HashSet};

use dsl_syntax::ast::{Action, ExprKind, Item, UseTarget};
use dsl_syntax::{LineIndex, Span};

use super::text::{dedent_lines, extent, line_end, line_start};
use super::{
    Graph, GraphEdge, GraphItem, GraphNode, LayoutSource, NodeKind, Position, Property,
    SourceRange, slots,
};
use crate::Analysis;
use crate::program::StepInfo;

/// The graph of a checked pack (or of a module or broken file: whatever steps parse).
/// Pure and cheap: one walk over the syntax tree and the checker's step table.
pub fn export(analysis: &Analysis) -> Graph {
    let source: &str = &analysis.source;
    let file = &analysis.parse.file;
    let index = LineIndex::new(source);
    let cx = slots::Ctx {
        source,
        tokens: &analysis.parse.tokens,
    };
    let infos: HashMap<(u32, u32), &StepInfo> = analysis
        .program
        .steps
        .iter()
        .map(|s| ((s.span.start, s.span.end), s))
        .collect();
    let body_start = file
        .name
        .as_ref()
        .map(|n| n.span.end as usize)
        .and_then(|after| source.get(after..)?.find('{').map(|i| after + i))
        .unwrap_or(0);
    let mut nodes = Vec::new();
    let mut slot_lists: HashMap<(u32, u32), Vec<(String, Span)>> = HashMap::new();
    let mut items = Vec::new();
    let mut explicit: BTreeMap<String, Position> = BTreeMap::new();
    let mut has_layout = false;
    let mut previous_end = body_start;
    for item in &file.items {
        let span = item.span();
        let comment = leading_comment(source, span, previous_end);
        previous_end = span.end as usize;
        match item {
            Item::Flow(flow) => {
                items.push(GraphItem {
                    kind: "flow".into(),
                    name: None,
                    comment,
                    source: String::new(),
                });
                let mut step_previous = flow.span.start as usize;
                for step in &flow.steps {
                    let info = infos.get(&(step.span.start, step.span.end)).copied();
                    let comment = leading_comment(source, step.span, step_previous);
                    step_previous = step.span.end as usize;
                    let (node, slots) = node(cx, &index, step, info, comment);
                    slot_lists.insert((step.span.start, step.span.end), slots);
                    nodes.push(node);
                }
            }
            Item::Layout(layout) => {
                has_layout = true;
                for entry in &layout.entries {
                    explicit.insert(
                        entry.name.name.clone(),
                        Position {
                            x: entry.x,
                            y: entry.y,
                        },
                    );
                }
            }
            other => items.push(GraphItem {
                kind: item_kind(other).into(),
                name: item_name(other),
                comment,
                source: with_trailing_comment(source, span),
            }),
        }
    }
    let edges = edges(analysis, &nodes, &slot_lists);
    let auto = super::auto_layout(&nodes, &edges);
    let layout_source = if has_layout {
        LayoutSource::Explicit
    } else {
        LayoutSource::Auto
    };
    let mut layout = BTreeMap::new();
    for node in &nodes {
        let position = explicit
            .get(&node.id)
            .or_else(|| auto.get(&node.id))
            .copied()
            .unwrap_or(Position { x: 0.0, y: 0.0 });
        layout.insert(node.id.clone(), position);
    }
    let header_end = line_start(source, file.span.start as usize);
    Graph {
        version: super::GRAPH_VERSION,
        pack: file
            .name
            .as_ref()
            .map(|n| n.name.clone())
            .unwrap_or_default(),
        nodes,
        edges,
        layout,
        layout_source,
        items,
        header: dedent_lines(source.get(..header_end).unwrap_or("").trim_end()),
    }
}

/// The comment lines directly above `span` (after the predecessor ending at `previous`).
fn leading_comment(source: &str, span: Span, previous: usize) -> String {
    match extent(source, span, previous) {
        Some(extent) if extent.start < extent.statement_line => dedent_lines(
            source
                .get(extent.start..extent.statement_line)
                .unwrap_or("")
                .trim_end(),
        ),
        _ => String::new(),
    }
}

/// The text of `span`, plus a comment at the end of its last line.
fn with_trailing_comment(source: &str, span: Span) -> String {
    let end = span.end as usize;
    let line_end = line_end(source, end);
    let rest = source.get(end..line_end).unwrap_or("").trim();
    let text = span.text(source);
    if rest.starts_with("//") {
        format!("{text} {rest}")
    } else {
        text.to_string()
    }
}

fn item_kind(item: &Item) -> &'static str {
    match item {
        Item::Meta(_) => "meta",
        Item::Use(_) => "use",
        Item::Input(_) => "input",
        Item::Type(_) => "type",
        Item::Model(_) => "model",
        Item::Knowledge(_) => "knowledge",
        Item::Agent(_) => "agent",
        Item::Tool(_) => "tool",
        Item::Flow(_) => "flow",
        Item::Policy(_) => "policy",
        Item::Outcome(_) => "outcome",
        Item::Kpi(_) => "kpi",
        Item::Eval(_) => "eval",
        Item::Layout(_) => "layout",
        Item::Error(_) => "error",
    }
}

fn item_name(item: &Item) -> Option<String> {
    match item {
        Item::Meta(meta) => Some(meta.key.name.clone()),
        Item::Use(use_item) => Some(match (&use_item.alias, &use_item.target) {
            (Some(alias), _) => alias.name.clone(),
            (None, UseTarget::Module(path)) => path.last()?.name.clone(),
            (None, UseTarget::File(lit)) => lit.as_plain()?,
        }),
        Item::Type(decl) => Some(decl.name.name.clone()),
        Item::Model(model) => Some(model.name.name.clone()),
        Item::Knowledge(knowledge) => Some(knowledge.name.name.clone()),
        Item::Agent(agent) => Some(agent.name.name.clone()),
        Item::Tool(tool) => Some(tool.name.name.clone()),
        Item::Kpi(kpi) => Some(kpi.name.name.clone()),
        Item::Eval(eval) => eval.name.as_plain(),
        _ => None,
    }
}

fn range(source: &str, index: &LineIndex, span: Span) -> SourceRange {
    let start = index.line_col(source, span.start);
    let end = index.line_col(source, span.end);
    SourceRange {
        start: span.start,
        end: span.end,
        start_line: start.line,
        start_character: start.character,
        end_line: end.line,
        end_character: end.character,
    }
}

fn node(
    cx: slots::Ctx<'_>,
    index: &LineIndex,
    step: &dsl_syntax::ast::Step,
    info: Option<&StepInfo>,
    comment: String,
) -> (GraphNode, Vec<(String, Span)>) {
    let source = cx.source;
    let action = &step.action;
    let kind = match action {
        Action::Expr(expr) => {
            let is_tool_call = matches!(expr.kind, ExprKind::Call(..))
                && info.is_some_and(|i| i.calls.iter().any(|c| !c.nested && c.span == expr.span));
            if is_tool_call {
                NodeKind::ToolCall
            } else {
                NodeKind::Compute
            }
        }
        Action::Ask(_) => NodeKind::Ask,
        Action::Map(_) => NodeKind::Map,
        Action::When(_) => NodeKind::When,
        Action::Route(_) => NodeKind::Route,
        Action::Review(_) => NodeKind::Review,
        Action::Approve(_) => NodeKind::Approve,
        Action::Error(_) => NodeKind::Invalid,
    };
    let mut slots = Vec::new();
    slots::list(action, cx, "", &mut slots);
    let properties = slots
        .iter()
        .map(|(path, span)| {
            let (path, span) = (path.clone(), *span);
            let value = slots::expr_at(action, cx, span).and_then(slots::literal_json);
            (
                path,
                Property {
                    source: span.text(source).to_string(),
                    value,
                },
            )
        })
        .collect();
    let node = GraphNode {
        id: step.name.name.clone(),
        kind,
        tool: info.and_then(|i| i.calls.first()).map(|c| c.tool.clone()),
        agent: agent_of(action),
        action: with_trailing_comment(source, cx.action(action)),
        properties,
        output: info.map(|i| i.ty.to_string()).unwrap_or_default(),
        comment,
        doc: info.and_then(|i| i.doc.clone()),
        range: Some(range(source, index, step.span)),
    };
    (node, slots)
}

/// The agent (or model) the action asks first: `ask`'s target, the router, the critic.
fn agent_of(action: &Action) -> Option<String> {
    match action {
        Action::Ask(ask) => Some(ask.target.name.clone()),
        Action::Route(route) => Some(route.router.name.clone()),
        Action::Review(review) => Some(review.critic.name.clone()),
        Action::Map(map) => agent_of(&map.body),
        Action::When(when) => {
            agent_of(&when.then).or_else(|| when.otherwise.as_deref().and_then(agent_of))
        }
        _ => None,
    }
}

/// One edge per (from, to, field), with the innermost property that reads it.
fn edges(
    analysis: &Analysis,
    nodes: &[GraphNode],
    slot_lists: &HashMap<(u32, u32), Vec<(String, Span)>>,
) -> Vec<GraphEdge> {
    let program = &analysis.program;
    let known: HashSet<&str> = nodes.iter().map(|n| n.id.as_str()).collect();
    let mut edges = Vec::new();
    let mut seen = HashSet::new();
    let empty = Vec::new();
    for step in &program.steps {
        if !known.contains(&*step.name) {
            continue;
        }
        let slot_spans = slot_lists
            .get(&(step.span.start, step.span.end))
            .unwrap_or(&empty);
        for dep in &step.deps {
            let Some(from) = program.steps.get(dep.step) else {
                continue;
            };
            if !seen.insert((dep.step, &*step.name, dep.path.as_str())) {
                continue;
            }
            let target = slot_spans
                .iter()
                .filter(|(_, span)| span.start <= dep.span.start && dep.span.end <= span.end)
                .min_by_key(|(path, span)| (span.len(), std::cmp::Reverse(path.len())))
                .map(|(path, _)| path.clone())
                .unwrap_or_default();
            edges.push(GraphEdge {
                from: from.name.to_string(),
                to: step.name.to_string(),
                field: dep.path.clone(),
                target,
            });
        }
    }
    edges
}

//! Applying graph operations to the text: each op rewrites only the statements it touches
//! (a step and the comments above it, one layout line, every reference of a renamed step),
//! the result is re-checked, and the change is returned as minimal edits against the source.

use std::collections::{BTreeMap, HashMap};

use dsl_syntax::ast::{Flow, Item, Layout, Step};
use dsl_syntax::{Parse, Span, TextEdit};

use super::slots::{self, Slot};
use super::text::{
    STEP_INDENT, dedent_lines, diff, ends_line, extent, format_item, format_step, indent_comment,
    indent_of, is_blank_gap, is_identifier, line_end, line_start, reindent, splice, starts_line,
    validate_comment, validate_step,
};
use super::{GraphEdit, GraphError, GraphOp, IdChange, Position};
use crate::{Analysis, World};

/// Diagnostic codes that mean "a value of the wrong type".
const TYPE_CODES: &[&str] = &["GX0301", "GX0302", "GX0306", "GX0308"];

/// Applies `ops` in order to `source`: all of them or none. The result is re-checked: an op
/// list that adds an error (a pack that checked clean must still check clean) is refused.
/// On success, the edits (minimal and non-overlapping, against `source`) and the ids each
/// op created, renamed or deleted.
pub fn apply(source: &str, ops: &[GraphOp], world: &dyn World) -> Result<GraphEdit, GraphError> {
    apply_ops(State::new(source, world), source, ops)
}

/// [`apply`] to the text `analysis` was made from, reusing that analysis instead of parsing
/// and checking the text again (the language server keeps one per document version).
pub fn apply_to(
    analysis: &Analysis,
    ops: &[GraphOp],
    world: &dyn World,
) -> Result<GraphEdit, GraphError> {
    let mut state = State::new(&analysis.source, world);
    state.base = Some(analysis);
    apply_ops(state, &analysis.source, ops)
}

fn apply_ops(mut state: State<'_>, source: &str, ops: &[GraphOp]) -> Result<GraphEdit, GraphError> {
    if let Some(error) = state.parse().errors.first() {
        return Err(GraphError::DoesNotParse {
            message: format!("the pack: {}", error.message),
        });
    }
    let needs_check = ops.iter().any(|op| !op.is_layout_only());
    let baseline = needs_check.then(|| error_counts(state.analysis()));
    let mut changed = Vec::new();
    for (op_index, op) in ops.iter().enumerate() {
        let mut change = IdChange {
            op_index,
            ..IdChange::default()
        };
        apply_op(&mut state, op_index, op, &mut change)?;
        if !change.created.is_empty() || !change.renamed.is_empty() || !change.deleted.is_empty() {
            changed.push(change);
        }
    }
    let connects = ops.iter().any(|op| matches!(op, GraphOp::Connect { .. }));
    match baseline {
        // A clean pack must stay clean. On a pack that already has errors (a builder
        // session in progress), ops apply as long as the result parses, except that a
        // connection must not add a type error.
        Some(baseline) if baseline.is_empty() => refuse_new_errors(state.analysis(), &baseline)?,
        Some(baseline) => {
            if connects {
                let grown = grown_codes(state.analysis(), &baseline);
                if grown.iter().any(|c| TYPE_CODES.contains(c)) {
                    refuse_new_errors(state.analysis(), &baseline)?;
                }
            }
            if let Some(error) = state.parse().errors.first() {
                return Err(GraphError::DoesNotParse {
                    message: format!("the edited pack: {}", error.message),
                });
            }
        }
        None => {
            if let Some(error) = state.parse().errors.first() {
                return Err(GraphError::DoesNotParse {
                    message: format!("the edited pack: {}", error.message),
                });
            }
        }
    }
    Ok(GraphEdit {
        edits: diff(source, &state.text),
        changed,
    })
}

/// Applies text edits (non-overlapping, against `source`) and returns the new text.
pub fn apply_text_edits(source: &str, edits: &[TextEdit]) -> String {
    let mut edits = edits.to_vec();
    splice(source, &mut edits)
}

/// The ops that undo `op` when applied to the text `op` produces from `source` (for undo in
/// editors, and for the inverse law). Layout ops and renames restore the text byte for
/// byte; created and deleted steps do when the pack is formatted and its layout lines
/// follow the flow's order.
pub fn inverse(source: &str, op: &GraphOp, world: &dyn World) -> Result<Vec<GraphOp>, GraphError> {
    let mut state = State::new(source, world);
    let unknown = |id: &str| GraphError::UnknownNode {
        op_index: 0,
        id: id.to_string(),
    };
    Ok(match op {
        GraphOp::CreateStep { id, .. } => vec![GraphOp::Delete { id: id.clone() }],
        GraphOp::Rename { id, new_id } => vec![GraphOp::Rename {
            id: new_id.clone(),
            new_id: id.clone(),
        }],
        GraphOp::SetProperty { id, property, .. } => {
            vec![restore_property(&mut state, id, property)?]
        }
        GraphOp::Connect { to, target, .. } => vec![restore_property(&mut state, to, target)?],
        GraphOp::Disconnect { from, to } => {
            let paths = disconnect_paths(&mut state, 0, from, to)?;
            let mut ops = Vec::new();
            for path in paths {
                ops.push(restore_property(&mut state, to, &path)?);
            }
            ops
        }
        GraphOp::Move { id, .. } | GraphOp::Unplace { id } => {
            vec![restore_position(&mut state, id)]
        }
        GraphOp::AutoLayout => {
            let parse = state.parse();
            let names: Vec<String> = flow_of(parse)
                .map(|f| f.steps.iter().map(|s| s.name.name.clone()).collect())
                .unwrap_or_default();
            names
                .iter()
                .map(|name| restore_position(&mut state, name))
                .collect()
        }
        GraphOp::Delete { id } => {
            let text = state.text.clone();
            let parse = state.parse();
            let flow = flow_of(parse).ok_or_else(|| unknown(id))?;
            let (index, step) = find_step(flow, id).ok_or_else(|| unknown(id))?;
            let layout = &step_extents(&text, flow)?;
            let own = layout.get(index).ok_or_else(|| unknown(id))?;
            let cx = slots::Ctx {
                source: &text,
                tokens: &parse.tokens,
            };
            let action_start = cx.action(&step.action).start as usize;
            let action_text = text
                .get(action_start..own.end)
                .unwrap_or("")
                .trim()
                .to_string();
            let comment = dedent_lines(
                text.get(own.start..own.statement_line)
                    .unwrap_or("")
                    .trim_end(),
            );
            let position = layout_of(parse).and_then(|l| {
                l.entries
                    .iter()
                    .find(|e| e.name.name == *id)
                    .map(|e| Position { x: e.x, y: e.y })
            });
            let previous = index
                .checked_sub(1)
                .and_then(|i| flow.steps.get(i).zip(layout.get(i)));
            let next = flow.steps.get(index + 1).zip(layout.get(index + 1));
            let (after, before, separated) = match (previous, next) {
                (Some((prev, prev_extent)), _) => (
                    Some(prev.name.name.clone()),
                    None,
                    is_blank_gap(&text, prev_extent.end, own.start),
                ),
                (None, Some((next, next_extent))) => (
                    None,
                    Some(next.name.name.clone()),
                    is_blank_gap(&text, own.end, next_extent.start),
                ),
                (None, None) => (None, None, false),
            };
            vec![GraphOp::CreateStep {
                id: id.clone(),
                action: action_text,
                after,
                before,
                position,
                comment: (!comment.is_empty()).then_some(comment),
                separated: Some(separated),
            }]
        }
    })
}

/// The op that puts property `path` of step `id` back as it is now.
fn restore_property(state: &mut State<'_>, id: &str, path: &str) -> Result<GraphOp, GraphError> {
    let text = state.text.clone();
    let parse = state.parse();
    let step = flow_of(parse)
        .and_then(|f| find_step(f, id))
        .map(|(_, s)| s)
        .ok_or_else(|| GraphError::UnknownNode {
            op_index: 0,
            id: id.to_string(),
        })?;
    let cx = slots::Ctx {
        source: &text,
        tokens: &parse.tokens,
    };
    let value = match slots::locate(&step.action, cx, path) {
        Some(Slot::Present { value, .. }) => value.text(&text).to_string(),
        _ => String::new(),
    };
    Ok(GraphOp::SetProperty {
        id: id.to_string(),
        property: path.to_string(),
        value,
    })
}

/// The op that puts the layout line of `id` back as it is now.
fn restore_position(state: &mut State<'_>, id: &str) -> GraphOp {
    let parse = state.parse();
    match layout_of(parse).and_then(|l| l.entries.iter().find(|e| e.name.name == id)) {
        Some(entry) => GraphOp::Move {
            id: id.to_string(),
            x: entry.x,
            y: entry.y,
        },
        None => GraphOp::Unplace { id: id.to_string() },
    }
}

/// The text being edited, with its parse and analysis computed on demand.
struct State<'w> {
    text: String,
    world: &'w dyn World,
    /// An analysis of `text` given by the caller, until the text changes.
    base: Option<&'w Analysis>,
    parse: Option<Parse>,
    analysis: Option<Analysis>,
}

impl<'w> State<'w> {
    fn new(source: &str, world: &'w dyn World) -> State<'w> {
        State {
            text: source.to_string(),
            world,
            base: None,
            parse: None,
            analysis: None,
        }
    }

    fn parse(&mut self) -> &Parse {
        if let Some(base) = self.base {
            return &base.parse;
        }
        if let Some(analysis) = &self.analysis {
            return &analysis.parse;
        }
        self.parse
            .get_or_insert_with(|| dsl_syntax::parse(&self.text))
    }

    fn analysis(&mut self) -> &Analysis {
        if let Some(base) = self.base {
            return base;
        }
        let parse = self.parse.take();
        let text = &self.text;
        let world = self.world;
        self.analysis.get_or_insert_with(|| match parse {
            Some(parse) => crate::check_parsed(text, parse, world),
            None => crate::check(text, world),
        })
    }

    fn replace(&mut self, text: String) {
        if text != self.text {
            self.text = text;
            self.base = None;
            self.parse = None;
            self.analysis = None;
        }
    }
}

fn flow_of(parse: &Parse) -> Option<&Flow> {
    parse.file.items.iter().find_map(|item| match item {
        Item::Flow(flow) => Some(flow),
        _ => None,
    })
}

fn layout_of(parse: &Parse) -> Option<&Layout> {
    parse.file.items.iter().find_map(|item| match item {
        Item::Layout(layout) => Some(layout),
        _ => None,
    })
}

fn find_step<'p>(flow: &'p Flow, id: &str) -> Option<(usize, &'p Step)> {
    flow.steps
        .iter()
        .enumerate()
        .find(|(_, s)| s.name.name == id)
}

/// The offset just past the `{` that opens `span`'s block.
fn open_brace_end(text: &str, span: Span) -> usize {
    let start = span.start as usize;
    text.get(start..span.end as usize)
        .and_then(|s| s.find('{'))
        .map(|i| start + i + 1)
        .unwrap_or(start)
}

/// The extents of every step of the flow; refused when a step shares a line.
fn step_extents(text: &str, flow: &Flow) -> Result<Vec<super::text::Extent>, GraphError> {
    let mut previous = open_brace_end(text, flow.span).saturating_sub(1);
    let mut out = Vec::with_capacity(flow.steps.len());
    for step in &flow.steps {
        let found = extent(text, step.span, previous).ok_or_else(|| {
            GraphError::InvalidOp(format!(
                "step `{}` shares a line with other code; format the pack (`galaxy fmt`) first",
                step.name.name
            ))
        })?;
        out.push(found);
        previous = step.span.end as usize;
    }
    Ok(out)
}

fn unknown(op_index: usize, id: &str) -> GraphError {
    GraphError::UnknownNode {
        op_index,
        id: id.to_string(),
    }
}

fn apply_op(
    state: &mut State<'_>,
    op_index: usize,
    op: &GraphOp,
    change: &mut IdChange,
) -> Result<(), GraphError> {
    let new_text = match op {
        GraphOp::CreateStep {
            id,
            action,
            after,
            before,
            position,
            comment,
            separated,
        } => {
            let text = create_step(
                state,
                op_index,
                CreateArgs {
                    id,
                    action,
                    after: after.as_deref(),
                    before: before.as_deref(),
                    comment: comment.as_deref(),
                    separated: *separated,
                },
            )?;
            state.replace(text);
            if let Some(position) = position {
                let text = set_positions(state, &[(id.clone(), *position)])?;
                state.replace(text);
            }
            change.created.push(id.clone());
            return Ok(());
        }
        GraphOp::SetProperty {
            id,
            property,
            value,
        } => set_property(state, op_index, id, property, value)?,
        GraphOp::Delete { id } => {
            let text = delete_step(state, op_index, id)?;
            change.deleted.push(id.clone());
            text
        }
        GraphOp::Rename { id, new_id } => {
            let text = rename(state, op_index, id, new_id)?;
            if id != new_id {
                change.renamed.push((id.clone(), new_id.clone()));
            }
            text
        }
        GraphOp::Connect {
            from,
            to,
            field,
            target,
        } => connect(state, op_index, from, to, field, target)?,
        GraphOp::Disconnect { from, to } => {
            let paths = disconnect_paths(state, op_index, from, to)?;
            let text = state.text.clone();
            let parse = state.parse();
            let step = flow_of(parse)
                .and_then(|f| find_step(f, to))
                .map(|(_, s)| s)
                .ok_or_else(|| unknown(op_index, to))?;
            let mut removals = Vec::new();
            for path in &paths {
                let cx = slots::Ctx {
                    source: &text,
                    tokens: &parse.tokens,
                };
                match slots::locate(&step.action, cx, path) {
                    Some(Slot::Present {
                        removal: Some(removal),
                        ..
                    }) => removals.push((removal, String::new())),
                    _ => {
                        return Err(GraphError::InvalidOp(format!(
                            "op {op_index}: `{to}.{path}` is required; connect another step to it instead"
                        )));
                    }
                }
            }
            rewrite_step(&text, step, removals)?
        }
        GraphOp::Move { id, x, y } => {
            let exists = state
                .parse()
                .file
                .items
                .iter()
                .any(|i| matches!(i, Item::Flow(f) if find_step(f, id).is_some()));
            if !exists {
                return Err(unknown(op_index, id));
            }
            if !x.is_finite() || !y.is_finite() {
                return Err(GraphError::InvalidOp(format!(
                    "op {op_index}: the position of `{id}` must be finite numbers"
                )));
            }
            set_positions(state, &[(id.clone(), Position { x: *x, y: *y })])?
        }
        GraphOp::Unplace { id } => {
            let text = state.text.clone();
            let parse = state.parse();
            let known = flow_of(parse).is_some_and(|f| find_step(f, id).is_some())
                || layout_of(parse).is_some_and(|l| l.entries.iter().any(|e| e.name.name == *id));
            if !known {
                return Err(unknown(op_index, id));
            }
            match unplace_edit(&text, parse, id)? {
                Some(edit) => splice(&text, &mut [edit]),
                None => text,
            }
        }
        GraphOp::AutoLayout => {
            let graph = super::export(state.analysis());
            let positions: Vec<(String, Position)> = graph
                .nodes
                .iter()
                .filter_map(|n| {
                    super::auto_layout(&graph.nodes, &graph.edges)
                        .get(&n.id)
                        .map(|p| (n.id.clone(), *p))
                })
                .collect();
            set_positions(state, &positions)?
        }
    };
    state.replace(new_text);
    Ok(())
}

struct CreateArgs<'a> {
    id: &'a str,
    action: &'a str,
    after: Option<&'a str>,
    before: Option<&'a str>,
    comment: Option<&'a str>,
    separated: Option<bool>,
}

fn create_step(
    state: &mut State<'_>,
    op_index: usize,
    args: CreateArgs<'_>,
) -> Result<String, GraphError> {
    let id = args.id;
    if !is_identifier(id) {
        return Err(GraphError::InvalidOp(format!(
            "op {op_index}: {id:?} is not a valid step name"
        )));
    }
    let comment = args.comment.unwrap_or("");
    validate_comment(comment)?;
    let text = state.text.clone();
    let parse = state.parse();
    let flow = flow_of(parse)
        .ok_or_else(|| GraphError::InvalidOp(format!("op {op_index}: the pack has no flow")))?;
    if find_step(flow, id).is_some() {
        return Err(GraphError::InvalidOp(format!(
            "op {op_index}: a step named `{id}` already exists"
        )));
    }
    let extents = step_extents(&text, flow)?;
    let printed = format_step(&format!("step {id} = {}", args.action.trim()), id)?;
    let indent = flow
        .steps
        .first()
        .map(|s| indent_of(&text, s.span.start as usize).to_string())
        .unwrap_or_else(|| STEP_INDENT.to_string());
    let printed = reindent(&printed, &indent);
    let mut lines = indent_comment(comment, &indent);
    lines.push_str(&indent);
    lines.push_str(&printed);
    lines.push('\n');
    let habit = extents
        .windows(2)
        .any(|pair| matches!(pair, [a, b] if is_blank_gap(&text, a.end, b.start)));
    let separated = args.separated.unwrap_or(habit);
    let anchor = |name: &str| -> Result<super::text::Extent, GraphError> {
        let (index, _) = find_step(flow, name).ok_or_else(|| unknown(op_index, name))?;
        extents
            .get(index)
            .copied()
            .ok_or_else(|| unknown(op_index, name))
    };
    let (at, inserted) = match (args.after, args.before) {
        (Some(after), _) => {
            let extent = anchor(after)?;
            let blank = if separated { "\n" } else { "" };
            (extent.end, format!("{blank}{lines}"))
        }
        (None, Some(before)) => {
            let extent = anchor(before)?;
            let blank = if separated { "\n" } else { "" };
            (extent.start, format!("{lines}{blank}"))
        }
        (None, None) => {
            let close = flow.span.end.saturating_sub(1) as usize;
            if starts_line(&text, close) {
                let blank = if separated && !flow.steps.is_empty() {
                    "\n"
                } else {
                    ""
                };
                (line_start(&text, close), format!("{blank}{lines}"))
            } else if flow.steps.is_empty() {
                // `flow {}`: open it up.
                let open = open_brace_end(&text, flow.span);
                let outer = indent_of(&text, flow.span.start as usize);
                let mut edit = [TextEdit {
                    span: Span::new(open, close),
                    new_text: format!("\n{lines}{outer}"),
                }];
                return Ok(splice(&text, &mut edit));
            } else {
                return Err(GraphError::InvalidOp(format!(
                    "op {op_index}: the flow's closing brace shares a line; format the pack first"
                )));
            }
        }
    };
    let mut edit = [TextEdit {
        span: Span::empty(at),
        new_text: inserted,
    }];
    Ok(splice(&text, &mut edit))
}

fn delete_step(state: &mut State<'_>, op_index: usize, id: &str) -> Result<String, GraphError> {
    let text = state.text.clone();
    let analysis = state.analysis();
    let parse = &analysis.parse;
    let flow = flow_of(parse).ok_or_else(|| unknown(op_index, id))?;
    let (index, step) = find_step(flow, id).ok_or_else(|| unknown(op_index, id))?;
    // Refuse while anything but the step itself and its layout line reads it.
    let layout_spans: Vec<Span> = layout_of(parse)
        .map(|l| l.entries.iter().map(|e| e.name.span).collect())
        .unwrap_or_default();
    if let Some(info) = analysis.program.step(id) {
        let readers: Vec<Span> = analysis
            .program
            .references(&info.def)
            .filter(|r| !r.is_definition && !layout_spans.contains(&r.span))
            .filter(|r| !(step.span.start <= r.span.start && r.span.end <= step.span.end))
            .map(|r| r.span)
            .collect();
        if !readers.is_empty() {
            let mut names: Vec<String> = analysis
                .program
                .steps
                .iter()
                .filter(|s| s.deps.iter().any(|d| d.step == index) && &*s.name != id)
                .map(|s| format!("`{}`", s.name))
                .collect();
            names.dedup();
            let who = if names.is_empty() {
                "the outcome, a KPI or an eval".to_string()
            } else {
                format!("step(s) {}", names.join(", "))
            };
            return Err(GraphError::InvalidOp(format!(
                "op {op_index}: cannot delete `{id}`: {who} still read(s) it; disconnect first"
            )));
        }
    }
    let extents = step_extents(&text, flow)?;
    let own = extents
        .get(index)
        .copied()
        .ok_or_else(|| unknown(op_index, id))?;
    let removal = match (
        index.checked_sub(1).and_then(|i| extents.get(i)),
        extents.get(index + 1),
    ) {
        (Some(previous), _) => Span::new(previous.end, own.end),
        (None, Some(next)) => Span::new(own.start, next.start),
        (None, None) => Span::new(own.start, own.end),
    };
    let mut edits = vec![TextEdit {
        span: removal,
        new_text: String::new(),
    }];
    if let Some(edit) = unplace_edit(&text, parse, id)? {
        edits.push(edit);
    }
    Ok(splice(&text, &mut edits))
}

fn rename(
    state: &mut State<'_>,
    op_index: usize,
    id: &str,
    new_id: &str,
) -> Result<String, GraphError> {
    if !is_identifier(new_id) {
        return Err(GraphError::InvalidOp(format!(
            "op {op_index}: {new_id:?} is not a valid step name"
        )));
    }
    let text = state.text.clone();
    let analysis = state.analysis();
    let info = analysis
        .program
        .step(id)
        .ok_or_else(|| unknown(op_index, id))?;
    if id == new_id {
        return Ok(text);
    }
    if analysis.program.step(new_id).is_some() {
        return Err(GraphError::InvalidOp(format!(
            "op {op_index}: a step named `{new_id}` already exists"
        )));
    }
    let mut spans: Vec<Span> = analysis
        .program
        .references(&info.def)
        .map(|r| r.span)
        .collect();
    spans.push(info.def.span);
    spans.sort_by_key(|s| (s.start, s.end));
    spans.dedup();
    // Statements that were formatted stay formatted: each step or item holding a
    // reference is printed again when it was printed canonically before.
    let parse = &analysis.parse;
    let steps: Vec<&Step> = flow_of(parse)
        .map(|f| f.steps.iter().collect())
        .unwrap_or_default();
    let mut groups: BTreeMap<(u32, u32), Vec<(Span, String)>> = BTreeMap::new();
    let mut plain: Vec<TextEdit> = Vec::new();
    for span in spans {
        let inside = |outer: Span| outer.start <= span.start && span.end <= outer.end;
        let region = steps
            .iter()
            .map(|s| s.span)
            .find(|s| inside(*s))
            .or_else(|| {
                parse
                    .file
                    .items
                    .iter()
                    .filter(|i| !matches!(i, Item::Flow(_) | Item::Layout(_)))
                    .map(Item::span)
                    .find(|s| inside(*s))
            });
        match region {
            Some(region) => groups
                .entry((region.start, region.end))
                .or_default()
                .push((span, new_id.to_string())),
            None => plain.push(TextEdit {
                span,
                new_text: new_id.to_string(),
            }),
        }
    }
    for ((start, end), edits) in groups {
        let region = Span { start, end };
        let new_text = match steps.iter().find(|s| s.span == region) {
            Some(step) => reprint_step(&text, step, edits)?,
            None => reprint(&text, region, edits, &format_item, &|t| {
                format_item(t).map(|_| ())
            })?,
        };
        plain.push(TextEdit {
            span: region,
            new_text,
        });
    }
    Ok(splice(&text, &mut plain))
}

fn set_property(
    state: &mut State<'_>,
    op_index: usize,
    id: &str,
    property: &str,
    value: &str,
) -> Result<String, GraphError> {
    let text = state.text.clone();
    let parse = state.parse();
    let step = flow_of(parse)
        .and_then(|f| find_step(f, id))
        .map(|(_, s)| s)
        .ok_or_else(|| unknown(op_index, id))?;
    let value = value.trim();
    let cx = slots::Ctx {
        source: &text,
        tokens: &parse.tokens,
    };
    let slot = slots::locate(&step.action, cx, property).ok_or_else(|| {
        GraphError::InvalidOp(format!(
            "op {op_index}: step `{id}` has no property `{property}`"
        ))
    })?;
    let edit = match slot {
        Slot::Present { value: span, .. } if !value.is_empty() => (span, value.to_string()),
        Slot::Present { removal, .. } => {
            let removal = removal.ok_or_else(|| {
                GraphError::InvalidOp(format!(
                    "op {op_index}: `{id}.{property}` is required and cannot be removed"
                ))
            })?;
            (removal, String::new())
        }
        Slot::Absent { .. } if value.is_empty() => return Ok(text),
        Slot::Absent { at, before, after } => {
            (Span::empty(at as usize), format!("{before}{value}{after}"))
        }
    };
    rewrite_step(&text, step, vec![edit])
}

/// Replaces `step` with its text changed by `edits` (spans into the whole text): printed
/// by the formatter when the step was formatted before, spliced as written otherwise.
fn rewrite_step(text: &str, step: &Step, edits: Vec<(Span, String)>) -> Result<String, GraphError> {
    let new_step = reprint_step(text, step, edits)?;
    let mut edit = [TextEdit {
        span: step.span,
        new_text: new_step,
    }];
    Ok(splice(text, &mut edit))
}

/// The new text of `step` changed by `edits` (see [`rewrite_step`]).
fn reprint_step(text: &str, step: &Step, edits: Vec<(Span, String)>) -> Result<String, GraphError> {
    reprint(
        text,
        step.span,
        edits,
        &|t| format_step(t, &step_name_of(t)),
        &|t| validate_step(t, &step_name_of(t)),
    )
}

/// The name in `step NAME = ...`.
fn step_name_of(step_text: &str) -> String {
    step_text
        .trim_start()
        .strip_prefix("step")
        .unwrap_or("")
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}

/// The new text of the region `span` changed by `edits` (spans into the whole text):
/// printed by `print` when the region was printed that way before, else spliced as written
/// and checked by `validate`.
fn reprint(
    text: &str,
    span: Span,
    edits: Vec<(Span, String)>,
    print: &dyn Fn(&str) -> Result<String, GraphError>,
    validate: &dyn Fn(&str) -> Result<(), GraphError>,
) -> Result<String, GraphError> {
    let base = span.start;
    let old = span.text(text);
    let mut local: Vec<TextEdit> = Vec::new();
    for (edit_span, new_text) in edits {
        if edit_span.start < span.start || edit_span.end > span.end {
            return Err(GraphError::InvalidOp(
                "an edit reaches outside its statement".into(),
            ));
        }
        local.push(TextEdit {
            span: Span {
                start: edit_span.start - base,
                end: edit_span.end - base,
            },
            new_text,
        });
    }
    let changed = splice(old, &mut local);
    let indent = indent_of(text, span.start as usize).to_string();
    let canonical = print(old).is_ok_and(|f| reindent(&f, &indent) == old);
    if canonical {
        Ok(reindent(&print(&changed)?, &indent))
    } else {
        validate(&changed)?;
        Ok(changed)
    }
}

fn connect(
    state: &mut State<'_>,
    op_index: usize,
    from: &str,
    to: &str,
    field: &str,
    target: &str,
) -> Result<String, GraphError> {
    let analysis = state.analysis();
    let program = &analysis.program;
    let from_index = program
        .step_index(from)
        .ok_or_else(|| unknown(op_index, from))?;
    let to_index = program
        .step_index(to)
        .ok_or_else(|| unknown(op_index, to))?;
    if !field.is_empty() && !field.split('.').all(is_identifier) {
        return Err(GraphError::InvalidOp(format!(
            "op {op_index}: {field:?} is not a field path"
        )));
    }
    // `to` reading `from` makes a cycle when `from` already reads `to`, directly or not.
    let mut stack = vec![from_index];
    let mut seen = vec![false; program.steps.len()];
    while let Some(current) = stack.pop() {
        if current == to_index {
            return Err(GraphError::WouldCycle {
                op_index,
                from: from.to_string(),
                to: to.to_string(),
            });
        }
        if let Some(slot) = seen.get_mut(current) {
            if *slot {
                continue;
            }
            *slot = true;
        }
        if let Some(step) = program.steps.get(current) {
            stack.extend(step.deps.iter().map(|d| d.step));
        }
    }
    let value = if field.is_empty() {
        from.to_string()
    } else {
        format!("{from}.{field}")
    };
    set_property(state, op_index, to, target, &value)
}

/// The properties of `to` whose whole value reads `from`; refused when `to` reads `from`
/// inside a larger expression.
fn disconnect_paths(
    state: &mut State<'_>,
    op_index: usize,
    from: &str,
    to: &str,
) -> Result<Vec<String>, GraphError> {
    let text = state.text.clone();
    let analysis = state.analysis();
    let program = &analysis.program;
    let from_info = program.step(from).ok_or_else(|| unknown(op_index, from))?;
    let flow = flow_of(&analysis.parse).ok_or_else(|| unknown(op_index, to))?;
    let (_, step) = find_step(flow, to).ok_or_else(|| unknown(op_index, to))?;
    let mut slot_spans = Vec::new();
    let cx = slots::Ctx {
        source: &text,
        tokens: &analysis.parse.tokens,
    };
    slots::list(&step.action, cx, "", &mut slot_spans);
    let mut paths: Vec<String> = Vec::new();
    for reference in program.references(&from_info.def) {
        if reference.is_definition
            || reference.span.start < step.span.start
            || reference.span.end > step.span.end
        {
            continue;
        }
        let innermost = slot_spans
            .iter()
            .filter(|(_, s)| s.start <= reference.span.start && reference.span.end <= s.end)
            .min_by_key(|(_, s)| s.len());
        let whole = innermost.filter(|(_, s)| {
            s.start == reference.span.start
                && s.text(&text)
                    .get(reference.span.len() as usize..)
                    .is_some_and(|rest| {
                        rest.is_empty()
                            || rest
                                .strip_prefix('.')
                                .is_some_and(|p| p.split('.').all(is_identifier))
                    })
        });
        match whole {
            Some((path, _)) => {
                if !paths.contains(path) {
                    paths.push(path.clone());
                }
            }
            None => {
                let place = innermost
                    .map(|(p, _)| format!(" (in `{p}`)"))
                    .unwrap_or_default();
                return Err(GraphError::InvalidOp(format!(
                    "op {op_index}: `{to}` reads `{from}` inside a larger expression{place}; edit that property instead"
                )));
            }
        }
    }
    if paths.is_empty() {
        return Err(GraphError::InvalidOp(format!(
            "op {op_index}: `{to}` does not read `{from}`"
        )));
    }
    Ok(paths)
}

fn entry_line(name: &str, position: Position) -> String {
    format!("{name}: ({}, {})", position.x, position.y)
}

/// Sets the layout line of each step: edits existing lines, inserts missing ones next to
/// the line of the nearest step before them in the flow, creates the block when missing.
fn set_positions(
    state: &mut State<'_>,
    positions: &[(String, Position)],
) -> Result<String, GraphError> {
    let text = state.text.clone();
    if positions.is_empty() {
        return Ok(text);
    }
    let parse = state.parse();
    for (name, position) in positions {
        if !position.x.is_finite() || !position.y.is_finite() {
            return Err(GraphError::InvalidOp(format!(
                "the position of `{name}` must be finite numbers"
            )));
        }
    }
    let flow_order: HashMap<&str, usize> = flow_of(parse)
        .map(|f| {
            f.steps
                .iter()
                .enumerate()
                .map(|(i, s)| (s.name.name.as_str(), i))
                .collect()
        })
        .unwrap_or_default();
    let mut wanted: Vec<(usize, &str, Position)> = positions
        .iter()
        .map(|(n, p)| {
            (
                flow_order.get(n.as_str()).copied().unwrap_or(usize::MAX),
                n.as_str(),
                *p,
            )
        })
        .collect();
    wanted.sort_by_key(|w| w.0);
    let Some(layout) = layout_of(parse) else {
        // No block: create one at the end of the pack body.
        let close = parse.file.span.end.saturating_sub(1) as usize;
        if text.get(close..close + 1) != Some("}") || !starts_line(&text, close) {
            return Err(GraphError::InvalidOp(
                "the pack's closing brace shares a line; format the pack first".into(),
            ));
        }
        let item_indent = parse
            .file
            .items
            .first()
            .map(|i| indent_of(&text, i.span().start as usize).to_string())
            .unwrap_or_else(|| "  ".to_string());
        let mut block = format!("\n{item_indent}layout {{\n");
        for (_, name, position) in &wanted {
            block.push_str(&format!("{item_indent}  {}\n", entry_line(name, *position)));
        }
        block.push_str(&format!("{item_indent}}}\n"));
        let mut edit = [TextEdit {
            span: Span::empty(line_start(&text, close)),
            new_text: block,
        }];
        return Ok(splice(&text, &mut edit));
    };
    let entries: BTreeMap<&str, &dsl_syntax::ast::LayoutEntry> = layout
        .entries
        .iter()
        .map(|e| (e.name.name.as_str(), e))
        .collect();
    let block_close = layout.span.end.saturating_sub(1) as usize;
    let lines_owned = starts_line(&text, block_close)
        && layout.entries.iter().all(|e| {
            starts_line(&text, e.span.start as usize) && ends_line(&text, e.span.end as usize)
        });
    if !lines_owned {
        // A one-line block: print it afresh.
        let mut all: Vec<(String, Position)> = layout
            .entries
            .iter()
            .map(|e| (e.name.name.clone(), Position { x: e.x, y: e.y }))
            .collect();
        for (_, name, position) in &wanted {
            match all.iter_mut().find(|(n, _)| n == name) {
                Some(slot) => slot.1 = *position,
                None => all.push((name.to_string(), *position)),
            }
        }
        let indent = indent_of(&text, layout.span.start as usize).to_string();
        let mut block = "layout {\n".to_string();
        for (name, position) in &all {
            block.push_str(&format!("{indent}  {}\n", entry_line(name, *position)));
        }
        block.push_str(&format!("{indent}}}"));
        let mut edit = [TextEdit {
            span: layout.span,
            new_text: block,
        }];
        return Ok(splice(&text, &mut edit));
    }
    let entry_indent = layout
        .entries
        .first()
        .map(|e| indent_of(&text, e.span.start as usize).to_string())
        .unwrap_or_else(|| format!("{}  ", indent_of(&text, layout.span.start as usize)));
    let mut edits: Vec<TextEdit> = Vec::new();
    let mut inserts: BTreeMap<usize, String> = BTreeMap::new();
    for (order, name, position) in &wanted {
        if let Some(entry) = entries.get(name) {
            edits.push(TextEdit {
                span: entry.span,
                new_text: entry_line(name, *position),
            });
            continue;
        }
        // After the nearest earlier step (in flow order) that has a line; else before the
        // nearest later one; else at the end of the block.
        let placed =
            |e: &&dsl_syntax::ast::LayoutEntry| flow_order.get(e.name.name.as_str()).copied();
        let earlier = layout
            .entries
            .iter()
            .filter(|e| placed(e).is_some_and(|o| o < *order))
            .max_by_key(|e| placed(e));
        let later = layout
            .entries
            .iter()
            .filter(|e| placed(e).is_some_and(|o| o > *order))
            .min_by_key(|e| placed(e));
        let at = match (earlier, later) {
            (Some(e), _) => line_end(&text, e.span.end as usize),
            (None, Some(l)) => line_start(&text, l.span.start as usize),
            (None, None) => line_start(&text, block_close),
        };
        inserts
            .entry(at)
            .or_default()
            .push_str(&format!("{entry_indent}{}\n", entry_line(name, *position)));
    }
    for (at, new_text) in inserts {
        edits.push(TextEdit {
            span: Span::empty(at),
            new_text,
        });
    }
    Ok(splice(&text, &mut edits))
}

/// The edit that removes the layout line of `id` (the whole block when it is the only
/// line); `None` when it has none.
fn unplace_edit(text: &str, parse: &Parse, id: &str) -> Result<Option<TextEdit>, GraphError> {
    let Some(layout) = layout_of(parse) else {
        return Ok(None);
    };
    let Some(index) = layout.entries.iter().position(|e| e.name.name == id) else {
        return Ok(None);
    };
    let Some(entry) = layout.entries.get(index) else {
        return Ok(None);
    };
    if layout.entries.len() == 1 {
        let item_index = parse
            .file
            .items
            .iter()
            .position(|i| i.span() == layout.span)
            .unwrap_or(0);
        let previous_end = item_index
            .checked_sub(1)
            .and_then(|i| parse.file.items.get(i))
            .map(|i| i.span().end as usize)
            .unwrap_or_else(|| open_brace_end(text, parse.file.span).saturating_sub(1));
        if let Some(own) = extent(text, layout.span, previous_end) {
            let start = line_end(text, previous_end).min(own.start);
            return Ok(Some(TextEdit {
                span: Span::new(start, own.end),
                new_text: String::new(),
            }));
        }
        return Ok(Some(TextEdit {
            span: layout.span,
            new_text: "layout {}".into(),
        }));
    }
    let previous_end = index
        .checked_sub(1)
        .and_then(|i| layout.entries.get(i))
        .map(|e| e.span.end as usize)
        .unwrap_or_else(|| open_brace_end(text, layout.span).saturating_sub(1));
    match extent(text, entry.span, previous_end) {
        Some(own) => Ok(Some(TextEdit {
            span: Span::new(own.start, own.end),
            new_text: String::new(),
        })),
        None => {
            // Not one entry per line: remove the entry and the separator after it.
            let end = layout
                .entries
                .get(index + 1)
                .map(|next| next.span.start)
                .unwrap_or(entry.span.end);
            Ok(Some(TextEdit {
                span: Span {
                    start: entry.span.start,
                    end,
                },
                new_text: String::new(),
            }))
        }
    }
}

/// Error diagnostics counted by code.
fn error_counts(analysis: &Analysis) -> HashMap<&'static str, usize> {
    let mut counts = HashMap::new();
    for diagnostic in analysis.diagnostics.iter().filter(|d| d.is_error()) {
        *counts.entry(diagnostic.code).or_insert(0) += 1;
    }
    counts
}

/// The codes with more errors in `analysis` than in `baseline`.
fn grown_codes(analysis: &Analysis, baseline: &HashMap<&'static str, usize>) -> Vec<&'static str> {
    let mut grown: Vec<&'static str> = error_counts(analysis)
        .into_iter()
        .filter(|(code, count)| *count > baseline.get(code).copied().unwrap_or(0))
        .map(|(code, _)| code)
        .collect();
    grown.sort_unstable();
    grown
}

/// Refuses the result when it has more errors of some code than the source had.
fn refuse_new_errors(
    analysis: &Analysis,
    baseline: &HashMap<&'static str, usize>,
) -> Result<(), GraphError> {
    let grown = grown_codes(analysis, baseline);
    if grown.is_empty() {
        return Ok(());
    }
    let messages = |codes: &[&str]| -> String {
        let mut list: Vec<String> = analysis
            .diagnostics
            .iter()
            .filter(|d| d.is_error() && codes.contains(&d.code))
            .map(|d| format!("{} ({})", d.message, d.code))
            .collect();
        list.dedup();
        list.truncate(5);
        list.join("; ")
    };
    if let Some(error) = analysis.parse.errors.first() {
        return Err(GraphError::DoesNotParse {
            message: format!("the edited pack: {}", error.message),
        });
    }
    let typed: Vec<&str> = grown
        .iter()
        .copied()
        .filter(|c| TYPE_CODES.contains(c))
        .collect();
    if !typed.is_empty() {
        return Err(GraphError::TypeMismatch {
            message: messages(&typed),
        });
    }
    Err(GraphError::InvalidOp(format!(
        "the edited pack would not check: {}",
        messages(&grown)
    )))
}

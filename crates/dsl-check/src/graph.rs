//! The graph view of a pack, and the round-trip between that graph and the `.gx` text.
//!
//! The text is the only source of truth. [`export`] reads a checked pack as a [`Graph`]
//! (nodes are steps, edges are data dependencies, positions come from the optional trailing
//! `layout { .. }` block or from [`auto_layout`]); [`apply`] turns graph operations
//! ([`GraphOp`]) into minimal text edits against the source; [`import`] writes a formatted
//! pack from a graph. Everything here is pure: no I/O. The JSON shapes are documented in
//! `docs/graph.md` and versioned by [`GRAPH_VERSION`].

mod edit;
mod export;
mod import;
mod layout;
mod slots;
mod text;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use edit::{apply, apply_text_edits, apply_to, inverse};
pub use export::export;
pub use import::import;
pub use layout::auto_layout;

/// The version of the graph JSON and of the op JSON; bumped on incompatible changes.
pub const GRAPH_VERSION: u32 = 1;

/// A position on the builder's canvas.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Position {
    /// Horizontal coordinate.
    pub x: f64,
    /// Vertical coordinate.
    pub y: f64,
}

/// Where the positions of a graph come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LayoutSource {
    /// The pack has a `layout { .. }` block (steps missing from it are placed automatically).
    Explicit,
    /// The pack has no layout block: every position comes from [`auto_layout`].
    Auto,
}

/// What a node (a step) does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeKind {
    /// A call of a tool: `mail.search(..)`.
    ToolCall,
    /// `ask agent -> Type { .. }`
    Ask,
    /// `map x in list { .. }`
    Map,
    /// `when cond { .. } else { .. }`
    When,
    /// `route router to [..]`
    Route,
    /// `review by critic until .. { .. }`
    Review,
    /// `approve "message"`
    Approve,
    /// A pure expression: `count(x)`, `join(lines, "\n")`.
    Compute,
    /// An action that does not parse (only in packs with syntax errors).
    Invalid,
}

/// A byte range plus its 0-based line/character (UTF-16) positions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceRange {
    /// First byte.
    pub start: u32,
    /// One past the last byte.
    pub end: u32,
    /// Line of `start`.
    pub start_line: u32,
    /// UTF-16 character of `start` within its line.
    pub start_character: u32,
    /// Line of `end`.
    pub end_line: u32,
    /// UTF-16 character of `end` within its line.
    pub end_character: u32,
}

/// One settable property of a node: its DSL text and, when it is a literal, its JSON value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Property {
    /// The DSL text, as written.
    pub source: String,
    /// The value as JSON when the text is a literal (string without holes, number, bool,
    /// list or record of literals); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<serde_json::Value>,
}

/// A node: one flow step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GraphNode {
    /// The step's name: its stable id.
    pub id: String,
    /// What the step does.
    pub kind: NodeKind,
    /// The first tool the step calls (`mail.search`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    /// The agent or model asked (`ask`), the router (`route`) or the critic (`review`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// The DSL text of the whole action, as written (what `import` writes back).
    pub action: String,
    /// The settable properties by path (`args.query`, `prompt`, `where`, `body.prompt`, ..):
    /// the same paths [`GraphOp::SetProperty`] accepts.
    pub properties: BTreeMap<String, Property>,
    /// The type of the step's value, as the checker prints it.
    pub output: String,
    /// The comment lines directly above the step (`//` and `///`, indentation removed,
    /// joined with `\n`); empty when none. They travel with the step.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub comment: String,
    /// The doc comment (`///` lines without the slashes), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doc: Option<String>,
    /// Where the step is written; absent in graphs that were not exported from text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<SourceRange>,
}

/// An edge: `to` reads the value of `from` (or one field path of it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GraphEdge {
    /// The step read.
    pub from: String,
    /// The step that reads it.
    pub to: String,
    /// The field path read (`messages` for `inbox.messages`); `""` for the whole value.
    pub field: String,
    /// The property of `to` that reads it (`args.query`, `in`, `prompt`, ..); `""` when the
    /// reference is not inside a settable property.
    #[serde(default)]
    pub target: String,
}

/// A declaration of the pack other than the flow's steps and the layout: metadata, `use`,
/// inputs, types, models, agents, tools, policy, outcome, KPIs, evals. Kept as text so an
/// import writes it back unchanged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GraphItem {
    /// `meta`, `use`, `input`, `type`, `model`, `knowledge`, `agent`, `tool`, `flow`,
    /// `policy`, `outcome`, `kpi`, `eval` or `error`. The `flow` item marks where the steps go
    /// and has no source.
    pub kind: String,
    /// The declared name, when the item has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The comment lines directly above the item (indentation removed).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub comment: String,
    /// The item's DSL text as written (with a comment at the end of its last line).
    #[serde(default)]
    pub source: String,
}

/// A pack seen as a graph. Serialised as the `galaxy/graph` answer and by
/// `galaxy graph export`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Graph {
    /// [`GRAPH_VERSION`].
    pub version: u32,
    /// The pack's name.
    pub pack: String,
    /// One node per step, in source order.
    pub nodes: Vec<GraphNode>,
    /// One edge per (from, to, field), in the order of the reading steps.
    pub edges: Vec<GraphEdge>,
    /// A position for every node.
    pub layout: BTreeMap<String, Position>,
    /// Whether `layout` comes from the pack's layout block or from [`auto_layout`].
    pub layout_source: LayoutSource,
    /// The pack's other declarations, in source order (the `flow` item marks the steps).
    #[serde(default)]
    pub items: Vec<GraphItem>,
    /// Comment lines before `pack NAME {`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub header: String,
}

/// An operation on the graph, applied to the text by [`apply`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum GraphOp {
    /// Adds `step ID = ACTION`: after step `after`, else before step `before`, else at the
    /// end of the flow; with a layout line when `position` is given.
    CreateStep {
        /// The new step's name.
        id: String,
        /// The DSL text of the action, e.g. `mail.search(query: "x")`.
        action: String,
        /// The step after which the new one goes.
        #[serde(default)]
        after: Option<String>,
        /// The step before which the new one goes (when `after` is absent).
        #[serde(default)]
        before: Option<String>,
        /// Where to put it on the canvas.
        #[serde(default)]
        position: Option<Position>,
        /// Comment lines to write above the step (without indentation).
        #[serde(default)]
        comment: Option<String>,
        /// Whether a blank line separates the new step from its neighbour; when absent, the
        /// flow's own habit decides.
        #[serde(default)]
        separated: Option<bool>,
    },
    /// Sets one property (a path such as `prompt`, `args.query`, `output`, `where`,
    /// `concurrency`, `body.prompt`, `action`) to DSL text; an empty value removes an
    /// optional property.
    SetProperty {
        /// The step.
        id: String,
        /// The property path.
        property: String,
        /// Its new DSL text (`""` removes it).
        value: String,
    },
    /// Removes a step, its comments and its layout line. Refused while other steps read it.
    Delete {
        /// The step.
        id: String,
    },
    /// Renames a step and every reference to it (steps, outcome, KPIs, evals, layout).
    Rename {
        /// The step.
        id: String,
        /// Its new name.
        new_id: String,
    },
    /// Makes property `target` of step `to` read `from.field` (`from` when `field` is
    /// empty); replaces what the property read before (a reconnect).
    Connect {
        /// The step read.
        from: String,
        /// The step that reads it.
        to: String,
        /// The field path read; `""` for the whole value.
        #[serde(default)]
        field: String,
        /// The property of `to` that receives it (`args.query`, `in`, `prompt`, ..).
        target: String,
    },
    /// Removes the properties of `to` whose whole value is a reference to `from`.
    Disconnect {
        /// The step read.
        from: String,
        /// The step that reads it.
        to: String,
    },
    /// Sets the step's position: edits its layout line, or adds one (creating the layout
    /// block at the end of the pack when there is none).
    Move {
        /// The step.
        id: String,
        /// Horizontal coordinate.
        x: f64,
        /// Vertical coordinate.
        y: f64,
    },
    /// Removes the step's layout line (and the layout block when it becomes empty).
    Unplace {
        /// The step.
        id: String,
    },
    /// Writes the automatic layout of every step into the layout block.
    AutoLayout,
}

impl GraphOp {
    /// Whether the op only touches the layout block (which the plan ignores).
    pub fn is_layout_only(&self) -> bool {
        matches!(
            self,
            GraphOp::Move { .. } | GraphOp::Unplace { .. } | GraphOp::AutoLayout
        )
    }
}

/// The ids one op created, renamed or deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdChange {
    /// The index of the op in the request.
    pub op_index: usize,
    /// Steps created.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub created: Vec<String>,
    /// Steps renamed, as (old, new).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub renamed: Vec<(String, String)>,
    /// Steps deleted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deleted: Vec<String>,
}

/// The answer to [`apply`]: text edits against the given source, and the id changes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GraphEdit {
    /// Minimal, non-overlapping edits against the source, in source order.
    pub edits: Vec<dsl_syntax::TextEdit>,
    /// One entry per op that created, renamed or deleted ids.
    pub changed: Vec<IdChange>,
}

/// Why a graph operation or import was refused. Nothing is changed when one is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    /// An op names a step that does not exist.
    #[error("op {op_index}: there is no step `{id}`")]
    UnknownNode {
        /// The index of the op.
        op_index: usize,
        /// The missing step.
        id: String,
    },
    /// A connection would make a step depend on itself.
    #[error("op {op_index}: connecting `{from}` to `{to}` would make a cycle")]
    WouldCycle {
        /// The index of the op.
        op_index: usize,
        /// The step read.
        from: String,
        /// The step that would read it.
        to: String,
    },
    /// The ops would make the pack ill-typed.
    #[error("{message}")]
    TypeMismatch {
        /// The checker's message(s).
        message: String,
    },
    /// The source, or a piece of DSL text in an op, does not parse.
    #[error("does not parse: {message}")]
    DoesNotParse {
        /// What does not parse, and the parser's message.
        message: String,
    },
    /// Any other refused op or graph.
    #[error("{0}")]
    InvalidOp(String),
}

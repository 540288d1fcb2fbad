//! The Plan: what a runtime executes. A graph with one node per step (and an approval gate
//! before each gated effect), an edge per data dependency, and everything the runtime needs
//! without re-reading source: expressions, resolved tools, models, agents, knowledge,
//! inputs, policy, outcome, KPIs and evals.
//!
//! Node ids are stable strings derived from step names: `send`, its gate `send.approval`,
//! a map body `triage.body`, a branch `alert.then` / `alert.else`, nested gates
//! `send.body.approval`. Never indices.

mod export;
mod lower;

use crate::fast_hash::FastMap;
use std::sync::Arc;

use dsl_syntax::Span;
use dsl_syntax::ast::{BinaryOp, Expr};
use petgraph::stable_graph::{NodeIndex, StableDiGraph};
use petgraph::visit::{EdgeRef, IntoEdgeReferences};
use serde::Serialize;
use serde::ser::{SerializeStruct, Serializer};

use crate::policy::PolicyInfo;
use crate::program::{ToolInfo, TypeInfo};
use crate::ty::Ty;

pub(crate) use lower::{lower, lower_owned};

/// The plan format version written in the JSON.
pub const PLAN_VERSION: u32 = 1;

/// A lowered pack.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// The plan format version ([`PLAN_VERSION`]).
    pub version: u32,
    /// The language version the pack is written in.
    pub language: String,
    /// The pack's name and metadata.
    pub pack: PackMeta,
    /// The inputs, with types and defaults.
    pub inputs: Vec<PlanInput>,
    /// Every declared type the plan refers to (records and their fields), by qualified name.
    pub types: Vec<Arc<TypeInfo>>,
    /// The models.
    pub models: Vec<PlanModel>,
    /// The knowledge sources.
    pub knowledge: Vec<PlanKnowledge>,
    /// The agents.
    pub agents: Vec<PlanAgent>,
    /// The tools the pack uses (called, given to agents, mocked or named by policy).
    pub tools: Vec<Arc<ToolInfo>>,
    /// The flow's graph.
    #[serde(flatten)]
    pub graph: Graph,
    /// The policy (approvals default on).
    pub policy: PolicyInfo,
    /// `outcome success when EXPR`.
    pub outcome: Option<Expr>,
    /// The KPIs.
    pub kpis: Vec<PlanKpi>,
    /// The eval cases.
    pub evals: Vec<PlanEval>,
}

/// The pack's name and metadata.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PackMeta {
    /// The pack's name.
    pub name: String,
    /// `title`
    pub title: Option<String>,
    /// `version`
    pub version: Option<String>,
    /// `description`
    pub description: Option<String>,
    /// `owner`
    pub owner: Option<String>,
    /// `tags`
    pub tags: Vec<String>,
}

/// An input.
#[derive(Debug, Clone, Serialize)]
pub struct PlanInput {
    /// Its name.
    pub name: String,
    /// Its type.
    #[serde(rename = "type")]
    pub ty: Ty,
    /// Its type as written (`Duration`).
    pub type_text: String,
    /// Its default value.
    pub default: Option<Expr>,
}

/// A model. Keys appear only as secret names.
#[derive(Debug, Clone, Serialize)]
pub struct PlanModel {
    /// Its name.
    pub name: String,
    /// The provider and model.
    #[serde(flatten)]
    pub provider: ProviderRef,
    /// Fallbacks, tried in order.
    pub fallback: Vec<ProviderRef>,
    /// The other properties (temperature, retry, timeout, price, ...).
    pub props: Vec<(String, Expr)>,
}

/// A provider call: `openai("gpt-4.1-mini")`.
#[derive(Debug, Clone, Serialize)]
pub struct ProviderRef {
    /// `openai`, `anthropic`, `openai_compatible`.
    pub provider: String,
    /// The provider's model name.
    pub model: String,
    /// `base_url` for `openai_compatible`.
    pub base_url: Option<String>,
    /// The name of the secret holding the API key.
    pub api_key_secret: Option<String>,
}

/// A knowledge source.
#[derive(Debug, Clone, Serialize)]
pub struct PlanKnowledge {
    /// Its name.
    pub name: String,
    /// `files("...")` or `urls([...])`.
    pub source: Expr,
    /// Its properties.
    pub props: Vec<(String, Expr)>,
}

/// An agent.
#[derive(Debug, Clone, Serialize)]
pub struct PlanAgent {
    /// Its name.
    pub name: String,
    /// Its model's name.
    pub model: Option<String>,
    /// Its instructions.
    pub instructions: Option<Expr>,
    /// The tools it may call, by key.
    pub tools: Vec<String>,
    /// The knowledge sources it may cite.
    pub knowledge: Vec<String>,
}

/// A KPI.
#[derive(Debug, Clone, Serialize)]
pub struct PlanKpi {
    /// Its name.
    pub name: String,
    /// How it is computed.
    pub expr: Expr,
    /// The comparison that counts as good, and its right-hand side.
    pub target: Option<(BinaryOp, Expr)>,
}

/// An eval case.
#[derive(Debug, Clone, Serialize)]
pub struct PlanEval {
    /// Its name.
    pub name: String,
    /// `mock TARGET returns EXPR`, by target (`mail.search`, `triager`).
    pub mocks: Vec<(String, Expr)>,
    /// `input NAME = EXPR`.
    pub inputs: Vec<(String, Expr)>,
    /// `approve STEP` (true) / `reject STEP` (false); `all` for every gate.
    pub decisions: Vec<(String, bool)>,
    /// `expect EXPR`.
    pub expects: Vec<Expr>,
    /// Where the case is written.
    pub span: Span,
}

/// A node of the plan.
#[derive(Debug, Clone, Serialize)]
pub struct Node {
    /// The stable id (`send`, `send.approval`, `triage.body`).
    pub id: String,
    /// The step this node belongs to.
    pub step: String,
    /// What the node does.
    #[serde(flatten)]
    pub kind: NodeKind,
    /// The type of the node's value.
    pub output: Ty,
    /// The source span of the step or body action.
    pub span: Span,
}

/// A tool call argument, by parameter name.
#[derive(Debug, Clone, Serialize)]
pub struct PlanArg {
    /// The parameter.
    pub name: String,
    /// The value.
    pub value: Expr,
}

/// One gated call at an approval gate.
#[derive(Debug, Clone, Serialize)]
pub struct GateCall {
    /// The tool's key.
    pub tool: String,
    /// Why it is gated: its scope (`destructive`, `write`) or its key (`approve mail.send`).
    pub reason: String,
    /// A conditional `auto approve`: when this holds (over the call's arguments), the gate
    /// lets the call through without a person.
    pub auto_approve_when: Option<Expr>,
}

/// What a node does.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum NodeKind {
    /// A tool call.
    Tool {
        /// The tool's key (`mail.send`); its declaration is in [`Plan::tools`].
        tool: String,
        /// The arguments, by parameter name, in call order.
        args: Vec<PlanArg>,
    },
    /// A model call: `ask`.
    Ask {
        /// The agent or model asked.
        target: String,
        /// `agent` or `model`.
        target_kind: String,
        /// `prompt:`
        prompt: Option<Expr>,
        /// `instructions:`
        instructions: Option<Expr>,
        /// `cite:` knowledge sources.
        cite: Vec<String>,
    },
    /// `map`: runs `body` once per element.
    Map {
        /// The loop variable.
        var: String,
        /// The list mapped over.
        source: Expr,
        /// `where`
        filter: Option<Expr>,
        /// `concurrency`
        concurrency: Option<Expr>,
        /// The per-element sub-plan.
        body: Graph,
    },
    /// `when`: runs one branch.
    Branch {
        /// The condition.
        cond: Expr,
        /// The sub-plan when it holds.
        then: Graph,
        /// The sub-plan otherwise.
        otherwise: Option<Graph>,
    },
    /// `route`: the router picks a specialist, which is then asked.
    Route {
        /// The router agent.
        router: String,
        /// The specialists.
        routes: Vec<String>,
        /// `prompt:`
        prompt: Option<Expr>,
        /// `instructions:`
        instructions: Option<Expr>,
        /// `cite:`
        cite: Vec<String>,
    },
    /// `review`: runs `body`, asks the critic, repeats until `until` or `max_rounds`.
    Review {
        /// The critic agent or model.
        critic: String,
        /// The stop condition (over `critique`).
        until: Expr,
        /// At most this many rounds.
        max_rounds: Option<Expr>,
        /// The sub-plan that drafts and revises.
        body: Graph,
    },
    /// An explicit `approve "message"` step.
    Approval {
        /// What the approver is asked.
        message: Expr,
    },
    /// An approval gate inserted before gated effects.
    Gate {
        /// The gated calls of the node after the gate.
        calls: Vec<GateCall>,
        /// The id of the node the gate guards.
        guards: String,
    },
    /// A pure expression (which may call read-only tools).
    Compute {
        /// The expression.
        expr: Expr,
        /// Tools called inside it.
        tools: Vec<String>,
    },
}

impl NodeKind {
    /// The kind's name as in the JSON.
    pub fn name(&self) -> &'static str {
        match self {
            NodeKind::Tool { .. } => "tool",
            NodeKind::Ask { .. } => "ask",
            NodeKind::Map { .. } => "map",
            NodeKind::Branch { .. } => "branch",
            NodeKind::Route { .. } => "route",
            NodeKind::Review { .. } => "review",
            NodeKind::Approval { .. } => "approval",
            NodeKind::Gate { .. } => "gate",
            NodeKind::Compute { .. } => "compute",
        }
    }
}

/// What an edge carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EdgeKind {
    /// The target reads the source's value.
    Data,
    /// The target waits for the source approval gate.
    Approval,
}

/// An edge of the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Edge {
    /// Data or approval.
    pub kind: EdgeKind,
    /// The field path read (`messages`); empty for the whole value or an approval.
    pub path: String,
}

/// A graph of nodes with stable ids: the flow, or the body of a map, branch or review.
#[derive(Debug, Clone, Default)]
pub struct Graph {
    /// The graph; node weights are in insertion (source) order.
    pub graph: StableDiGraph<Node, Edge>,
    index: FastMap<String, NodeIndex>,
}

impl Graph {
    /// Small graphs (sub-plans) are searched linearly; larger ones get an index.
    const INDEX_FROM: usize = 8;

    /// Room for `nodes` more nodes and `edges` more edges.
    pub(crate) fn reserve(&mut self, nodes: usize, edges: usize) {
        self.graph.reserve_nodes(nodes);
        self.graph.reserve_edges(edges);
        if nodes >= Self::INDEX_FROM {
            self.index.reserve(nodes);
        }
    }

    /// Adds a node (ids are unique by construction).
    pub(crate) fn add_node(&mut self, node: Node) -> NodeIndex {
        let index = self.graph.add_node(node);
        let count = self.graph.node_count();
        if count == Self::INDEX_FROM {
            for i in self.graph.node_indices() {
                if let Some(node) = self.graph.node_weight(i) {
                    self.index.insert(node.id.clone(), i);
                }
            }
        } else if count > Self::INDEX_FROM
            && let Some(node) = self.graph.node_weight(index)
        {
            self.index.insert(node.id.clone(), index);
        }
        index
    }

    /// Adds an edge. Callers add each (from, to, edge) once: the checker already keeps one
    /// dependency per (step, path), so no search for duplicates is needed (a search would be
    /// quadratic for a step that thousands of steps read).
    pub(crate) fn add_edge(&mut self, from: NodeIndex, to: NodeIndex, edge: Edge) {
        self.graph.add_edge(from, to, edge);
    }

    /// The node with id `id`.
    pub fn node(&self, id: &str) -> Option<&Node> {
        if self.graph.node_count() < Self::INDEX_FROM {
            return self.nodes().find(|n| n.id == id);
        }
        self.index.get(id).and_then(|&i| self.graph.node_weight(i))
    }

    /// The nodes in insertion (source) order.
    pub fn nodes(&self) -> impl Iterator<Item = &Node> {
        self.graph
            .node_indices()
            .filter_map(|i| self.graph.node_weight(i))
    }

    /// The edges as (from id, to id, edge), sorted by node order then path.
    pub fn edges(&self) -> Vec<(&str, &str, &Edge)> {
        let mut edges: Vec<(usize, usize, &str, &str, &Edge)> = (&self.graph)
            .edge_references()
            .filter_map(|e| {
                let from = self.graph.node_weight(e.source())?;
                let to = self.graph.node_weight(e.target())?;
                Some((
                    e.source().index(),
                    e.target().index(),
                    from.id.as_str(),
                    to.id.as_str(),
                    e.weight(),
                ))
            })
            .collect();
        edges.sort_by(|a, b| (a.0, a.1, a.4.kind, &a.4.path).cmp(&(b.0, b.1, b.4.kind, &b.4.path)));
        edges
            .into_iter()
            .map(|(_, _, from, to, edge)| (from, to, edge))
            .collect()
    }

    /// Node ids in a topological order (ties in source order); `None` if the graph has a
    /// cycle (never, for a plan of a checked pack).
    pub fn topological_order(&self) -> Option<Vec<&str>> {
        let order = petgraph::algo::toposort(&self.graph, None).ok()?;
        Some(
            order
                .into_iter()
                .filter_map(|i| self.graph.node_weight(i).map(|n| n.id.as_str()))
                .collect(),
        )
    }
}

impl Serialize for Graph {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct EdgeOut<'e> {
            from: &'e str,
            to: &'e str,
            kind: EdgeKind,
            path: &'e str,
        }
        let nodes: Vec<&Node> = self.nodes().collect();
        let edges: Vec<EdgeOut<'_>> = self
            .edges()
            .into_iter()
            .map(|(from, to, edge)| EdgeOut {
                from,
                to,
                kind: edge.kind,
                path: &edge.path,
            })
            .collect();
        let mut out = serializer.serialize_struct("Graph", 2)?;
        out.serialize_field("nodes", &nodes)?;
        out.serialize_field("edges", &edges)?;
        out.end()
    }
}

impl Plan {
    /// The plan as pretty-printed, versioned JSON (deterministic).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// The plan as a JSON value.
    pub fn to_json_value(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    /// The top-level node ids in a topological order.
    pub fn topological_order(&self) -> Option<Vec<&str>> {
        self.graph.topological_order()
    }

    /// The plan as a Graphviz DOT graph (sub-plans as clusters).
    pub fn to_dot(&self) -> String {
        export::dot(self)
    }

    /// The plan as a Mermaid flowchart (sub-plans as subgraphs).
    pub fn to_mermaid(&self) -> String {
        export::mermaid(self)
    }

    /// The tool with key `key`.
    pub fn tool(&self, key: &str) -> Option<&Arc<ToolInfo>> {
        self.tools.iter().find(|t| t.has_key(key))
    }
}

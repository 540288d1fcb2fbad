//! The resolved, typed program: symbols with their definitions and types, step types and
//! dependencies, and the resolution table of every name use (for hover, go-to-definition,
//! references and rename).

use crate::fast_hash::FastMap;
use std::sync::Arc;

use dsl_syntax::Span;
use dsl_syntax::ast::{Expr, FileKind};
use serde::Serialize;

use crate::policy::PolicyInfo;
use crate::ty::Ty;

/// Which file a definition lives in.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub enum FileRef {
    /// The file being checked.
    Main,
    /// A stdlib module, by module name (`mail`).
    Std(&'static str),
    /// A project module file, by its path relative to the pack (`./lib/common.gx`).
    Project(Arc<str>),
}

/// Where something is defined: a file and the span of its defining name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct DefSite {
    /// The file.
    pub file: FileRef,
    /// The span of the defining name in that file.
    pub span: Span,
}

/// What kind of thing a name denotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SymbolKind {
    /// A pack input (`input.since`).
    Input,
    /// A declared type.
    Type,
    /// A field of a record type.
    Field,
    /// A model.
    Model,
    /// An agent.
    Agent,
    /// A tool.
    Tool,
    /// A tool parameter (or a named argument naming one).
    Param,
    /// A knowledge source.
    Knowledge,
    /// A flow step.
    Step,
    /// An imported module (`mail`).
    Module,
    /// A `map` loop variable.
    LoopVar,
    /// The `critique` bound inside a review loop.
    Critique,
    /// A built-in function (`count`).
    Builtin,
    /// A KPI.
    Kpi,
}

/// One name occurrence in the main file and what it resolves to.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Resolution {
    /// Where the name is written in the main file.
    pub span: Span,
    /// What kind of thing it names.
    pub kind: SymbolKind,
    /// The definition; `None` for built-ins and the `input` keyword.
    pub def: Option<DefSite>,
    /// The type of the value the name denotes (`Ty::Agent` etc. for non-values).
    pub ty: Ty,
    /// Whether this occurrence is the definition itself.
    pub is_definition: bool,
}

/// Scope of a tool: how much it may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Reads only.
    Read,
    /// Changes something that can be changed back.
    Write,
    /// Changes something for good (sends, deletes, pays).
    Destructive,
}

impl Scope {
    /// The scope as written.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Destructive => "destructive",
        }
    }

    /// Parses a scope name.
    pub fn parse(text: &str) -> Option<Scope> {
        match text {
            "read" => Some(Scope::Read),
            "write" => Some(Scope::Write),
            "destructive" => Some(Scope::Destructive),
            _ => None,
        }
    }
}

/// A field of a record type, a tool parameter or an input.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldInfo {
    /// The field's name.
    pub name: Arc<str>,
    /// Its type.
    pub ty: Ty,
    /// Its default value, if any.
    pub default: Option<Expr>,
    /// Where it is defined.
    pub def: DefSite,
    /// Its doc comment.
    pub doc: Option<String>,
}

impl FieldInfo {
    /// Whether a value must be given: no default and not optional.
    pub fn is_required(&self) -> bool {
        self.default.is_none() && !matches!(self.ty, Ty::Optional(_) | Ty::Json | Ty::Error)
    }
}

/// A declared type.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TypeInfo {
    /// The declaring module (`""` for the pack).
    pub module: Arc<str>,
    /// The type's name.
    pub name: Arc<str>,
    /// Record fields; empty for an alias.
    pub fields: Vec<FieldInfo>,
    /// For `type X = T`, the aliased type.
    pub alias: Option<Ty>,
    /// Where the name is defined.
    pub def: DefSite,
    /// Its doc comment.
    pub doc: Option<String>,
}

impl TypeInfo {
    /// The field named `name`.
    pub fn field(&self, name: &str) -> Option<&FieldInfo> {
        self.fields.iter().find(|f| &*f.name == name)
    }
}

/// A resolved tool declaration: everything a runtime needs to call or simulate it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolInfo {
    /// The declaring module (`""` for a pack's own tool).
    pub module: Arc<str>,
    /// The tool's name.
    pub name: Arc<str>,
    /// Parameters in order.
    pub params: Vec<FieldInfo>,
    /// The result type (`Nothing` when none is declared).
    pub result: Ty,
    /// Its scope; `None` when missing or invalid (already reported).
    pub scope: Option<Scope>,
    /// The hosts it reaches.
    pub hosts: Vec<String>,
    /// The HTTP request template (`request: { ... }`).
    pub request: Option<Expr>,
    /// The built-in implementation's name.
    pub builtin: Option<String>,
    /// The simulated result expression (may use the parameters).
    pub sim: Option<Expr>,
    /// Simulated latency in milliseconds.
    pub sim_latency_ms: Option<u64>,
    /// The longest one attempt of a call may take, in milliseconds (`timeout`); the runtime's
    /// default (30 s) when `None`. Left out of the plan's JSON when not declared.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// How many times a call that failed transiently is tried again (`retry`); the
    /// runtime's default (2) when `None`. Left out of the plan's JSON when not declared.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry: Option<u32>,
    /// The base of the exponential backoff between attempts, in milliseconds (`backoff`);
    /// the runtime's default (500 ms) when `None`. Left out of the plan's JSON when not
    /// declared.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backoff_ms: Option<u64>,
    /// Where the name is defined.
    pub def: DefSite,
    /// Its doc comment.
    pub doc: Option<String>,
}

impl ToolInfo {
    /// `mail.send`, or `send` for a pack's own tool.
    pub fn key(&self) -> String {
        if self.module.is_empty() {
            self.name.to_string()
        } else {
            format!("{}.{}", self.module, self.name)
        }
    }

    /// Whether the tool's key ([`ToolInfo::key`]) is `key`, without building the key.
    pub fn has_key(&self, key: &str) -> bool {
        if self.module.is_empty() {
            *self.name == *key
        } else {
            key.strip_prefix(&*self.module)
                .and_then(|rest| rest.strip_prefix('.'))
                .is_some_and(|name| name == &*self.name)
        }
    }

    /// The parameter named `name` and its position.
    pub fn param(&self, name: &str) -> Option<(usize, &FieldInfo)> {
        self.params
            .iter()
            .enumerate()
            .find(|(_, p)| &*p.name == name)
    }
}

/// A model declaration.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelInfo {
    /// The declaring module (`""` for the pack).
    pub module: Arc<str>,
    /// The model's name.
    pub name: Arc<str>,
    /// The provider (`openai`, `anthropic`, `openai_compatible`), when valid.
    pub provider: Option<String>,
    /// The provider's model name (`gpt-4.1-mini`).
    pub model: Option<String>,
    /// Where the name is defined.
    pub def: DefSite,
    /// Its doc comment.
    pub doc: Option<String>,
}

/// An agent declaration.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgentInfo {
    /// The declaring module (`""` for the pack).
    pub module: Arc<str>,
    /// The agent's name.
    pub name: Arc<str>,
    /// The model it uses, when resolved.
    pub model: Option<String>,
    /// The tools it may call, as keys (`mail.search`).
    pub tools: Vec<String>,
    /// The knowledge sources it may cite.
    pub knowledge: Vec<String>,
    /// Where the name is defined.
    pub def: DefSite,
    /// Its doc comment.
    pub doc: Option<String>,
}

/// A knowledge source.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KnowledgeInfo {
    /// Its name.
    pub name: Arc<str>,
    /// Where the name is defined.
    pub def: DefSite,
    /// Its doc comment.
    pub doc: Option<String>,
}

/// A pack input.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InputInfo {
    /// The input as a field (name, type, default).
    pub field: FieldInfo,
    /// Whether anything reads it.
    pub used: bool,
}

/// A dependency of one step on another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepDep {
    /// The index (in [`Program::steps`]) of the step depended on.
    pub step: usize,
    /// The field path read from it (`messages` for `inbox.messages`; empty for the whole value).
    pub path: String,
    /// Where the reference is written.
    pub span: Span,
}

/// A tool called by a step.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolCallSite {
    /// The tool's key (`mail.send`).
    pub tool: String,
    /// The tool's scope.
    pub scope: Option<Scope>,
    /// The span of the call.
    pub span: Span,
    /// Whether the call sits inside a `map`, `when` or `review` body.
    pub nested: bool,
}

/// What a step's action is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    /// A tool call or a pure expression.
    Expr,
    /// `ask`
    Ask,
    /// `map`
    Map,
    /// `when`
    When,
    /// `route`
    Route,
    /// `review`
    Review,
    /// `approve "..."`
    Approve,
    /// Could not be parsed.
    Error,
}

impl StepKind {
    /// The kind of an action.
    pub fn of(action: &dsl_syntax::ast::Action) -> StepKind {
        use dsl_syntax::ast::Action;
        match action {
            Action::Expr(_) => StepKind::Expr,
            Action::Ask(_) => StepKind::Ask,
            Action::Map(_) => StepKind::Map,
            Action::When(_) => StepKind::When,
            Action::Route(_) => StepKind::Route,
            Action::Review(_) => StepKind::Review,
            Action::Approve(_) => StepKind::Approve,
            Action::Error(_) => StepKind::Error,
        }
    }
}

/// A flow step.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepInfo {
    /// The step's name (its stable id).
    pub name: Arc<str>,
    /// Where the name is defined.
    pub def: DefSite,
    /// The whole step.
    pub span: Span,
    /// What its action is.
    pub kind: StepKind,
    /// Its doc comment.
    pub doc: Option<String>,
    /// The type of its value.
    pub ty: Ty,
    /// The steps it reads, one entry per (step, path), in source order.
    pub deps: Vec<StepDep>,
    /// The tools it calls.
    pub calls: Vec<ToolCallSite>,
    /// Whether anything reads it (another step, the outcome, a KPI or an eval).
    pub referenced: bool,
}

/// A KPI.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KpiInfo {
    /// Its name.
    pub name: Arc<str>,
    /// Where the name is defined.
    pub def: DefSite,
    /// Its doc comment.
    pub doc: Option<String>,
}

/// An imported module as seen from the importing file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImportInfo {
    /// The name under which it is visible (`mail`).
    pub alias: String,
    /// The module's own name.
    pub module: String,
    /// Where it comes from.
    pub file: FileRef,
    /// The `use` item.
    pub span: Span,
}

/// The resolved, typed view of one file.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Program {
    /// `pack` or `module`.
    pub kind: Option<FileKind>,
    /// The pack's or module's name.
    pub name: Option<String>,
    /// The declared language version.
    pub language: Option<String>,
    /// The modules imported (`core` implicitly first).
    pub imports: Vec<ImportInfo>,
    /// The pack's inputs, in source order.
    pub inputs: Vec<InputInfo>,
    /// The file's own types.
    pub types: Vec<Arc<TypeInfo>>,
    /// Every tool visible: the file's own, then those of imported modules.
    pub tools: Vec<Arc<ToolInfo>>,
    /// The file's models.
    pub models: Vec<Arc<ModelInfo>>,
    /// The file's agents.
    pub agents: Vec<Arc<AgentInfo>>,
    /// The file's knowledge sources.
    pub knowledge: Vec<KnowledgeInfo>,
    /// The flow's steps, in source order.
    pub steps: Vec<StepInfo>,
    /// The KPIs.
    pub kpis: Vec<KpiInfo>,
    /// The policy, summarised (approvals default on).
    pub policy: PolicyInfo,
    /// Every name occurrence in the file, sorted by span.
    pub resolutions: Vec<Resolution>,
    /// Tools called in the flow, with each call's span.
    #[serde(skip)]
    pub(crate) flow_tool_uses: Vec<(String, Span)>,
    /// Tools listed in agents' `tools:`, with each entry's span.
    #[serde(skip)]
    pub(crate) agent_tool_uses: Vec<(String, Span)>,
    /// Types of imported modules, by (module, name), for field lookups.
    #[serde(skip)]
    pub(crate) foreign_types: FastMap<(Arc<str>, Arc<str>), Arc<TypeInfo>>,
    /// Step indices in a topological order (a step after the steps it reads; the steps of a
    /// cycle in source order).
    pub step_order: Vec<usize>,
    /// The value type of every action (steps and bodies), by the action's span.
    #[serde(skip)]
    pub(crate) action_types: FastMap<(u32, u32), Ty>,
    #[serde(skip)]
    pub(crate) type_index: FastMap<Arc<str>, usize>,
    #[serde(skip)]
    pub(crate) step_index: FastMap<Arc<str>, usize>,
}

impl Program {
    /// The step named `name`.
    pub fn step(&self, name: &str) -> Option<&StepInfo> {
        self.step_index.get(name).and_then(|&i| self.steps.get(i))
    }

    /// The value type of the action (step or body) written at `span`.
    pub fn action_type(&self, span: Span) -> Option<&Ty> {
        self.action_types.get(&(span.start, span.end))
    }

    /// The index of the step named `name`.
    pub fn step_index(&self, name: &str) -> Option<usize> {
        self.step_index.get(name).copied()
    }

    /// The innermost name occurrence at byte `offset` (cursor positions at a name's end count).
    pub fn resolution_at(&self, offset: u32) -> Option<&Resolution> {
        let end = self.resolutions.partition_point(|r| r.span.start <= offset);
        self.resolutions
            .get(..end)?
            .iter()
            .rev()
            .take(8)
            .filter(|r| r.span.contains(offset))
            .min_by_key(|r| r.span.len())
    }

    /// Every occurrence (definition included) of the thing defined at `def`.
    pub fn references<'a>(&'a self, def: &'a DefSite) -> impl Iterator<Item = &'a Resolution> {
        self.resolutions
            .iter()
            .filter(move |r| r.def.as_ref() == Some(def))
    }

    /// A declared type, the file's own (`module` empty or the file's module) or imported.
    pub fn type_info(&self, module: &str, name: &str) -> Option<&Arc<TypeInfo>> {
        if let Some(found) = self
            .types
            .iter()
            .find(|t| &*t.module == module && &*t.name == name)
        {
            return Some(found);
        }
        self.foreign_types
            .get(&(Arc::from(module), Arc::from(name)))
    }

    /// The tool with key `key` (`mail.send`, or `send` for the pack's own).
    pub fn tool(&self, key: &str) -> Option<&Arc<ToolInfo>> {
        let (module, name) = key.rsplit_once('.').unwrap_or(("", key));
        self.tools
            .iter()
            .find(|t| &*t.module == module && &*t.name == name)
    }
}

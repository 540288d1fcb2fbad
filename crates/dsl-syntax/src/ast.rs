//! The typed syntax tree of a `.gx` file: what the parser builds and every later stage reads.
//!
//! Every node carries the byte [`Span`] it was parsed from. The tree keeps no trivia itself;
//! whitespace and comments live in the token side table of [`crate::Parse`], so that the
//! tree plus the tokens reproduce the input byte for byte (see `ARCHITECTURE.md`).

use serde::Serialize;

use crate::span::Span;

/// A name as written, with where it was written.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Ident {
    /// The name's text.
    pub name: String,
    /// Where the name stands in the source.
    pub span: Span,
}

/// What kind of file this is: a runnable pack or a library module of tools and types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum FileKind {
    /// `pack NAME { ... }`
    Pack,
    /// `module NAME { ... }`
    Module,
}

/// One parsed `.gx` file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SourceFile {
    /// `pack` or `module`; `None` when the header could not be parsed at all.
    pub kind: Option<FileKind>,
    /// The pack's or module's name.
    pub name: Option<Ident>,
    /// The items of the body, in source order.
    pub items: Vec<Item>,
    /// The whole `pack NAME { ... }` (or `module`) construct.
    pub span: Span,
}

/// A top-level declaration inside a pack or module body.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Item {
    /// `title "..."`, `version "..."`, `language "0.1"`, `description`, `owner`, `tags [..]`.
    Meta(MetaItem),
    /// `use std.mail` or `use "./lib.gx" as lib`.
    Use(UseItem),
    /// `input { name: Type = default ... }`
    Input(InputBlock),
    /// `type Name { fields }` or `type Name = TypeExpr`.
    Type(TypeDecl),
    /// `model name = provider("model-name") { props }`
    Model(ModelDecl),
    /// `knowledge name = files("glob") { props }`
    Knowledge(KnowledgeDecl),
    /// `agent name { props }`
    Agent(AgentDecl),
    /// `tool name(params) -> Type { props }`
    Tool(ToolDecl),
    /// `flow { steps }`
    Flow(Flow),
    /// `policy { rules }`
    Policy(Policy),
    /// `outcome success when EXPR`
    Outcome(Outcome),
    /// `kpi name = EXPR target >= EXPR`
    Kpi(Kpi),
    /// `eval "name" { statements }`
    Eval(Eval),
    /// `layout { step: (x, y) ... }`
    Layout(Layout),
    /// Tokens that could not be parsed as an item; the error is in `Parse::errors`.
    Error(Span),
}

impl Item {
    /// The item's whole span.
    pub fn span(&self) -> Span {
        match self {
            Item::Meta(x) => x.span,
            Item::Use(x) => x.span,
            Item::Input(x) => x.span,
            Item::Type(x) => x.span,
            Item::Model(x) => x.span,
            Item::Knowledge(x) => x.span,
            Item::Agent(x) => x.span,
            Item::Tool(x) => x.span,
            Item::Flow(x) => x.span,
            Item::Policy(x) => x.span,
            Item::Outcome(x) => x.span,
            Item::Kpi(x) => x.span,
            Item::Eval(x) => x.span,
            Item::Layout(x) => x.span,
            Item::Error(span) => *span,
        }
    }
}

/// `KEY VALUE` metadata such as `title "Inbox triage"`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetaItem {
    /// `title`, `version`, `language`, `description`, `owner` or `tags`.
    pub key: Ident,
    /// The value: a string, or a list of strings for `tags`.
    pub value: Expr,
    /// The whole item.
    pub span: Span,
}

/// What a `use` imports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum UseTarget {
    /// A dotted module path such as `std.mail`.
    Module(Vec<Ident>),
    /// A project file such as `"./lib/common.gx"`; the string literal as written.
    File(StringLit),
}

/// `use std.mail` / `use "./lib.gx" as lib`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UseItem {
    /// The module or file imported.
    pub target: UseTarget,
    /// `as NAME`, the name under which the module is visible.
    pub alias: Option<Ident>,
    /// The whole item.
    pub span: Span,
}

/// `input { fields }`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InputBlock {
    /// The declared inputs.
    pub fields: Vec<Field>,
    /// The whole block.
    pub span: Span,
}

/// `name: Type = default`, used for inputs, record fields and tool parameters.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Field {
    /// The field's name.
    pub name: Ident,
    /// Its declared type.
    pub ty: TypeExpr,
    /// Its default value, if any.
    pub default: Option<Expr>,
    /// The whole field.
    pub span: Span,
}

/// `type Name { fields }` or `type Name = TypeExpr`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TypeDecl {
    /// The type's name.
    pub name: Ident,
    /// Its definition.
    pub body: TypeDeclBody,
    /// The whole declaration.
    pub span: Span,
}

/// The two forms of a type declaration.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum TypeDeclBody {
    /// `type Name { a: T  b: U }`
    Record(Vec<Field>),
    /// `type Name = TypeExpr`
    Alias(TypeExpr),
}

/// A type as written.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TypeExpr {
    /// Which type.
    pub kind: TypeExprKind,
    /// Where it is written.
    pub span: Span,
}

/// The forms of a type expression.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum TypeExprKind {
    /// A primitive or declared type, possibly qualified: `String`, `Triage`, `mail.Draft`.
    Named(Vec<Ident>),
    /// `[T]`
    List(Box<TypeExpr>),
    /// `[K: V]`
    Map(Box<TypeExpr>, Box<TypeExpr>),
    /// `T?`
    Optional(Box<TypeExpr>),
    /// `"a" | "b" | "c"`: a union of string literals.
    StringUnion(Vec<StringLit>),
    /// The type could not be parsed.
    Error,
}

/// `key: value` inside a declaration block or a record literal.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Prop {
    /// The property's name.
    pub key: Ident,
    /// Its value.
    pub value: Expr,
    /// The whole property.
    pub span: Span,
}

/// `model name = provider("model") { props }`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelDecl {
    /// The model's name in this pack.
    pub name: Ident,
    /// The provider call, e.g. `anthropic("claude-haiku-4-5")`.
    pub provider: Expr,
    /// Parameters: temperature, fallback, retry, backoff, timeout, api_key, ...
    pub props: Vec<Prop>,
    /// The whole declaration.
    pub span: Span,
}

/// `knowledge name = files("glob") { props }`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KnowledgeDecl {
    /// The knowledge source's name.
    pub name: Ident,
    /// The source: `files("...")`, `urls([...])`.
    pub source: Expr,
    /// Optional properties.
    pub props: Vec<Prop>,
    /// The whole declaration.
    pub span: Span,
}

/// `agent name { props }`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgentDecl {
    /// The agent's name.
    pub name: Ident,
    /// model, instructions, tools, ...
    pub props: Vec<Prop>,
    /// The whole declaration.
    pub span: Span,
}

/// `tool name(params) -> Type { props }`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolDecl {
    /// The tool's name.
    pub name: Ident,
    /// Typed parameters, with optional defaults.
    pub params: Vec<Field>,
    /// The result type; `None` means the tool returns nothing of interest.
    pub result: Option<TypeExpr>,
    /// scope, hosts, request, builtin, sim, sim_latency, ...
    pub props: Vec<Prop>,
    /// The whole declaration.
    pub span: Span,
}

/// `flow { steps }`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Flow {
    /// The steps, in source order.
    pub steps: Vec<Step>,
    /// The whole block.
    pub span: Span,
}

/// `step name = action`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    /// The step's name, which is also its stable id.
    pub name: Ident,
    /// What the step does.
    pub action: Action,
    /// The whole step.
    pub span: Span,
}

/// What a step (or the body of a `map`, `when`, `review`) does.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Action {
    /// A tool call (`mail.search(...)`) or a pure expression (`count(x)`).
    Expr(Expr),
    /// `ask target -> Type { props }`
    Ask(Ask),
    /// `map x in list where cond concurrency N { action }`
    Map(MapAction),
    /// `when cond { action } else { action }`
    When(WhenAction),
    /// `route router to [a, b] -> Type { props }`
    Route(RouteAction),
    /// `review by critic until cond max N { action }`
    Review(ReviewAction),
    /// `approve "message"`: an explicit approval gate.
    Approve(ApproveAction),
    /// The action could not be parsed.
    Error(Span),
}

impl Action {
    /// The action's whole span.
    pub fn span(&self) -> Span {
        match self {
            Action::Expr(x) => x.span,
            Action::Ask(x) => x.span,
            Action::Map(x) => x.span,
            Action::When(x) => x.span,
            Action::Route(x) => x.span,
            Action::Review(x) => x.span,
            Action::Approve(x) => x.span,
            Action::Error(span) => *span,
        }
    }
}

/// `ask target -> Type { prompt: "...", cite: source }`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ask {
    /// The agent or model asked.
    pub target: Ident,
    /// The typed output; `None` means `String`.
    pub output: Option<TypeExpr>,
    /// prompt, cite, instructions, ...
    pub props: Vec<Prop>,
    /// The whole action.
    pub span: Span,
}

/// `map x in list where cond concurrency N { action }`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MapAction {
    /// The loop variable, bound to each element.
    pub var: Ident,
    /// The list mapped over.
    pub source: Expr,
    /// `where` filter over the loop variable.
    pub filter: Option<Expr>,
    /// `concurrency N`: how many elements run at once.
    pub concurrency: Option<Expr>,
    /// What runs per element.
    pub body: Box<Action>,
    /// The whole action.
    pub span: Span,
}

/// `when cond { action } else { action }`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WhenAction {
    /// The condition.
    pub cond: Expr,
    /// What runs when it holds.
    pub then: Box<Action>,
    /// What runs otherwise (`else { }` or `else when ...`).
    pub otherwise: Option<Box<Action>>,
    /// The whole action.
    pub span: Span,
}

/// `route router to [a, b, c] -> Type { props }`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RouteAction {
    /// The agent that picks a specialist.
    pub router: Ident,
    /// The specialists it may pick from.
    pub routes: Vec<Ident>,
    /// The typed output of the chosen specialist.
    pub output: Option<TypeExpr>,
    /// prompt, ...
    pub props: Vec<Prop>,
    /// The whole action.
    pub span: Span,
}

/// `review by critic until cond max N { action }`: a bounded revise loop.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReviewAction {
    /// The critic agent; its verdict is bound as `critique`.
    pub critic: Ident,
    /// The loop stops when this holds.
    pub until: Expr,
    /// At most this many rounds.
    pub max_rounds: Option<Expr>,
    /// The action that drafts and revises.
    pub body: Box<Action>,
    /// The whole action.
    pub span: Span,
}

/// `approve "message"`: an explicit approval gate in the flow.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApproveAction {
    /// What the approver is asked.
    pub message: Expr,
    /// The whole action.
    pub span: Span,
}

/// `policy { rules }`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Policy {
    /// The rules, in source order.
    pub rules: Vec<PolicyRule>,
    /// The whole block.
    pub span: Span,
}

/// One rule of a policy block.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PolicyRule {
    /// Which rule.
    pub kind: PolicyRuleKind,
    /// The whole rule.
    pub span: Span,
}

/// The policy rules.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum PolicyRuleKind {
    /// `approve destructive` / `approve write` / `approve mail.send`.
    Approve(Vec<Ident>),
    /// `auto approve mail.label` / `auto approve mail.send when EXPR`.
    AutoApprove {
        /// The tool path (or scope name) granted.
        target: Vec<Ident>,
        /// An optional condition on the call.
        when: Option<Expr>,
    },
    /// `egress allow ["host", "*.example.com"]`.
    Egress(Expr),
    /// `redact pii before model` (the kinds and the point are identifiers).
    Redact {
        /// What is redacted: `pii`, `emails`, `phones`, `cards`, `ids`, `keys`.
        what: Ident,
        /// When: `model`, `trace`, `all`.
        before: Ident,
    },
    /// `budget 0.50 usd per run`, `budget 20000 tokens per run`, `budget 5m time per run`.
    Budget {
        /// The amount (a money, duration or number literal).
        amount: Expr,
        /// The unit after a plain number (`tokens`, `calls`); `None` for money and durations.
        unit: Option<Ident>,
        /// `run`, `step`, `item`.
        per: Ident,
    },
    /// `rate mail.send 10 per 1m`.
    Rate {
        /// The tool path limited.
        target: Vec<Ident>,
        /// How many calls.
        count: Expr,
        /// Per what window.
        window: Expr,
    },
    /// The rule could not be parsed.
    Error,
}

/// `outcome success when EXPR`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    /// The condition for success.
    pub cond: Expr,
    /// The whole item.
    pub span: Span,
}

/// `kpi name = EXPR target >= EXPR`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Kpi {
    /// The KPI's name.
    pub name: Ident,
    /// How it is computed.
    pub expr: Expr,
    /// `target OP EXPR`: what value counts as good.
    pub target: Option<(BinaryOp, Expr)>,
    /// The whole item.
    pub span: Span,
}

/// `eval "name" { statements }`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Eval {
    /// The case's name.
    pub name: StringLit,
    /// mocks, inputs, approvals, expectations.
    pub stmts: Vec<EvalStmt>,
    /// The whole item.
    pub span: Span,
}

/// One statement of an eval case.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvalStmt {
    /// Which statement.
    pub kind: EvalStmtKind,
    /// The whole statement.
    pub span: Span,
}

/// The statements of an eval case.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum EvalStmtKind {
    /// `mock mail.search returns EXPR` (a tool, an agent or a model).
    Mock {
        /// What is mocked.
        target: Vec<Ident>,
        /// What it returns.
        value: Expr,
    },
    /// `input name = EXPR`
    Input {
        /// The input set.
        name: Ident,
        /// Its value.
        value: Expr,
    },
    /// `approve all` / `approve send` / `reject send`.
    Approve {
        /// `true` for approve, `false` for reject.
        approve: bool,
        /// `all` or a step name.
        target: Ident,
    },
    /// `expect EXPR`
    Expect(Expr),
    /// The statement could not be parsed.
    Error,
}

/// `layout { step: (x, y) ... }`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Layout {
    /// One entry per positioned step.
    pub entries: Vec<LayoutEntry>,
    /// The whole block.
    pub span: Span,
}

/// `step: (x, y)`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LayoutEntry {
    /// The step positioned.
    pub name: Ident,
    /// Horizontal position.
    pub x: f64,
    /// Vertical position.
    pub y: f64,
    /// The whole entry.
    pub span: Span,
}

/// An expression.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Expr {
    /// Which expression.
    pub kind: ExprKind,
    /// Where it is written.
    pub span: Span,
}

/// The forms of an expression.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum ExprKind {
    /// `42`
    Int(i64),
    /// `0.2`
    Float(f64),
    /// `true` / `false`
    Bool(bool),
    /// `none`
    None,
    /// `"text {hole}"` or `"""multi-line"""`
    Str(StringLit),
    /// `24h`, `500ms`: milliseconds.
    Duration(u64),
    /// `0.50 usd`
    Money {
        /// The amount in the currency's unit.
        amount: f64,
        /// The currency code, lowercase.
        currency: String,
    },
    /// A bare name: a step, input, loop variable, module, agent, ...
    Name(Ident),
    /// `base.field`
    Field(Box<Expr>, Ident),
    /// `base[index]`
    Index(Box<Expr>, Box<Expr>),
    /// `callee(args)`
    Call(Box<Expr>, Vec<Arg>),
    /// `[a, b]`
    List(Vec<Expr>),
    /// `{ key: value ... }`
    Record(Vec<Prop>),
    /// `not x`, `-x`
    Unary(UnaryOp, Box<Expr>),
    /// `a + b`, `a == b`, `a and b`, ...
    Binary(BinaryOp, Box<Expr>, Box<Expr>),
    /// The expression could not be parsed.
    Error,
}

/// A call argument, positional or named.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Arg {
    /// `name:` for a named argument.
    pub name: Option<Ident>,
    /// The value.
    pub value: Expr,
    /// The whole argument.
    pub span: Span,
}

/// Prefix operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum UnaryOp {
    /// `not`
    Not,
    /// `-`
    Neg,
}

/// Infix operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum BinaryOp {
    /// `or`
    Or,
    /// `and`
    And,
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
}

impl BinaryOp {
    /// The operator as written.
    pub fn as_str(self) -> &'static str {
        match self {
            BinaryOp::Or => "or",
            BinaryOp::And => "and",
            BinaryOp::Eq => "==",
            BinaryOp::Ne => "!=",
            BinaryOp::Lt => "<",
            BinaryOp::Le => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::Ge => ">=",
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
        }
    }

    /// Whether the operator compares its operands (and yields `Bool`).
    pub fn is_comparison(self) -> bool {
        matches!(
            self,
            BinaryOp::Eq | BinaryOp::Ne | BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge
        )
    }
}

/// A string literal, split into literal text and interpolation holes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StringLit {
    /// The pieces in order.
    pub parts: Vec<StrPart>,
    /// `true` for `"""..."""`.
    pub multiline: bool,
    /// The whole literal, quotes included.
    pub span: Span,
}

impl StringLit {
    /// The literal's text when it has no holes (the common case for names, hosts, versions).
    pub fn as_plain(&self) -> Option<String> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                StrPart::Text(text) => out.push_str(text),
                StrPart::Hole(_) => return None,
            }
        }
        Some(out)
    }
}

/// A piece of a string literal.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum StrPart {
    /// Literal text, escapes resolved (and, for `"""`, the common indentation removed).
    Text(String),
    /// `{expr}`
    Hole(Expr),
}

//! Lowering a checked pack to a [`Plan`].

use crate::fast_hash::{FastMap, FastSet};
use std::sync::Arc;

use dsl_syntax::ast::{
    Action, Arg, EvalStmtKind, Expr, ExprKind, FileKind, Item, PolicyRuleKind, Prop, StrPart,
};
use petgraph::stable_graph::NodeIndex;

use super::{
    Edge, EdgeKind, GateCall, Graph, Node, NodeKind, PLAN_VERSION, PackMeta, Plan, PlanAgent,
    PlanArg, PlanEval, PlanInput, PlanKnowledge, PlanKpi, PlanModel, ProviderRef,
};
use crate::Analysis;
use crate::checker::plain_string;
use crate::policy::GateDecision;
use crate::program::{Program, ToolInfo, TypeInfo};
use crate::ty::Ty;

struct Lowering<'a> {
    program: &'a Program,
    tools: FastMap<String, Arc<ToolInfo>>,
    /// Tool call sites: call span -> tool key.
    calls: FastMap<(u32, u32), &'a str>,
    used_tools: Vec<String>,
    used_seen: FastSet<String>,
    agent_names: FastSet<&'a str>,
}

/// Lowers `analysis` (which must be free of errors) to a plan.
pub(crate) fn lower(analysis: &Analysis) -> Option<Plan> {
    if analysis.parse.file.kind != Some(FileKind::Pack) {
        return None;
    }
    lower_items(&analysis.program, analysis.parse.file.items.clone())
}

/// Lowers `analysis` (which must be free of errors) to a plan, moving the expressions out of
/// its syntax tree instead of copying them.
pub(crate) fn lower_owned(analysis: Analysis) -> Option<Plan> {
    let Analysis { parse, program, .. } = analysis;
    if parse.file.kind != Some(FileKind::Pack) {
        return None;
    }
    lower_items(&program, parse.file.items)
}

fn lower_items(program: &Program, items: Vec<Item>) -> Option<Plan> {
    let mut lowering = Lowering {
        program,
        tools: program.tools.iter().map(|t| (t.key(), t.clone())).collect(),
        calls: FastMap::default(),
        used_tools: Vec::new(),
        used_seen: FastSet::default(),
        agent_names: program.agents.iter().map(|a| &*a.name).collect(),
    };
    for step in &program.steps {
        for call in &step.calls {
            lowering
                .calls
                .insert((call.span.start, call.span.end), call.tool.as_str());
        }
    }

    let agent_infos: FastMap<&str, &crate::program::AgentInfo> =
        program.agents.iter().map(|a| (&*a.name, &**a)).collect();
    let mut pack = PackMeta {
        name: program.name.clone().unwrap_or_default(),
        ..PackMeta::default()
    };
    let mut models = Vec::new();
    let mut knowledge = Vec::new();
    let mut agents = Vec::new();
    let mut outcome = None;
    let mut kpis = Vec::new();
    let mut evals = Vec::new();
    let mut steps = Vec::new();
    for item in items {
        match item {
            Item::Meta(meta) => {
                let value = plain_string(&meta.value);
                match meta.key.name.as_str() {
                    "title" => pack.title = value,
                    "version" => pack.version = value,
                    "description" => pack.description = value,
                    "owner" => pack.owner = value,
                    "tags" => {
                        if let ExprKind::List(items) = &meta.value.kind {
                            pack.tags = items.iter().filter_map(plain_string).collect();
                        }
                    }
                    _ => {}
                }
            }
            Item::Model(model) => {
                let Some(provider) = provider_ref(&model.provider) else {
                    continue;
                };
                let mut fallback = Vec::new();
                let mut props = Vec::new();
                let mut provider = provider;
                for prop in model.props {
                    match prop.key.name.as_str() {
                        "fallback" => match &prop.value.kind {
                            ExprKind::List(calls) => {
                                fallback.extend(calls.iter().filter_map(provider_ref))
                            }
                            _ => fallback.extend(provider_ref(&prop.value)),
                        },
                        "api_key" => provider.api_key_secret = secret_name(&prop.value),
                        _ => props.push((prop.key.name, prop.value)),
                    }
                }
                models.push(PlanModel {
                    name: model.name.name,
                    provider,
                    fallback,
                    props,
                });
            }
            Item::Knowledge(source) => knowledge.push(PlanKnowledge {
                name: source.name.name,
                source: source.source,
                props: source
                    .props
                    .into_iter()
                    .map(|p| (p.key.name, p.value))
                    .collect(),
            }),
            Item::Agent(mut agent) => {
                let info = agent_infos.get(agent.name.name.as_str()).copied();
                let instructions = take_prop(&mut agent.props, "instructions");
                let tools = info.map(|a| a.tools.clone()).unwrap_or_default();
                for tool in &tools {
                    lowering.use_tool(tool);
                }
                agents.push(PlanAgent {
                    name: agent.name.name,
                    model: info.and_then(|a| a.model.clone()),
                    instructions,
                    tools,
                    knowledge: info.map(|a| a.knowledge.clone()).unwrap_or_default(),
                });
            }
            Item::Flow(flow) => steps.extend(flow.steps),
            Item::Outcome(o) => outcome = Some(o.cond),
            Item::Kpi(kpi) => kpis.push(PlanKpi {
                name: kpi.name.name,
                expr: kpi.expr,
                target: kpi.target,
            }),
            Item::Eval(eval) => {
                let mut case = PlanEval {
                    name: eval.name.as_plain().unwrap_or_default(),
                    mocks: Vec::new(),
                    inputs: Vec::new(),
                    decisions: Vec::new(),
                    expects: Vec::new(),
                    span: eval.span,
                };
                for stmt in eval.stmts {
                    match stmt.kind {
                        EvalStmtKind::Mock { target, value } => {
                            let key = target
                                .iter()
                                .map(|i| i.name.as_str())
                                .collect::<Vec<_>>()
                                .join(".");
                            if lowering.tools.contains_key(&key) {
                                lowering.use_tool(&key);
                            }
                            case.mocks.push((key, value));
                        }
                        EvalStmtKind::Input { name, value } => case.inputs.push((name.name, value)),
                        EvalStmtKind::Approve { approve, target } => {
                            case.decisions.push((target.name, approve))
                        }
                        EvalStmtKind::Expect(expr) => case.expects.push(expr),
                        EvalStmtKind::Error => {}
                    }
                }
                evals.push(case);
            }
            Item::Policy(policy) => {
                for rule in &policy.rules {
                    if let PolicyRuleKind::Approve(path)
                    | PolicyRuleKind::AutoApprove { target: path, .. }
                    | PolicyRuleKind::Rate { target: path, .. } = &rule.kind
                    {
                        let key = path
                            .iter()
                            .map(|i| i.name.as_str())
                            .collect::<Vec<_>>()
                            .join(".");
                        if lowering.tools.contains_key(&key) {
                            lowering.use_tool(&key);
                        }
                    }
                }
            }
            _ => {}
        }
    }

    // The flow: one node per step (plus gates), then the data edges.
    let mut graph = Graph::default();
    graph.reserve(
        steps.len(),
        program.steps.iter().map(|s| s.deps.len()).sum(),
    );
    let mut step_nodes: Vec<Option<NodeIndex>> = vec![None; program.steps.len()];
    let mut gate_nodes: Vec<Option<NodeIndex>> = vec![None; program.steps.len()];
    for step in steps {
        let Some(index) = program.step_index(&step.name.name) else {
            continue;
        };
        let (node, gate) =
            lowering.action_node(&mut graph, &step.name.name, &step.name.name, step.action);
        if let Some(slot) = step_nodes.get_mut(index) {
            *slot = Some(node);
        }
        if let Some(slot) = gate_nodes.get_mut(index) {
            *slot = gate;
        }
    }
    for (index, step) in program.steps.iter().enumerate() {
        let Some(Some(to)) = step_nodes.get(index).copied() else {
            continue;
        };
        let gate = gate_nodes.get(index).copied().flatten();
        for dep in &step.deps {
            let Some(Some(from)) = step_nodes.get(dep.step).copied() else {
                continue;
            };
            let edge = Edge {
                kind: EdgeKind::Data,
                path: dep.path.clone(),
            };
            if let Some(gate) = gate {
                graph.add_edge(from, gate, edge.clone());
            }
            graph.add_edge(from, to, edge);
        }
    }

    let inputs = program
        .inputs
        .iter()
        .map(|input| PlanInput {
            name: input.field.name.to_string(),
            ty: input.field.ty.clone(),
            type_text: input.field.ty.to_string(),
            default: input.field.default.clone(),
        })
        .collect();

    let mut tools: Vec<Arc<ToolInfo>> = Vec::new();
    for key in &lowering.used_tools {
        if let Some(tool) = lowering.tools.get(key) {
            tools.push(tool.clone());
        }
    }
    let types = collect_types(program, &graph, &tools);

    Some(Plan {
        version: PLAN_VERSION,
        language: program
            .language
            .clone()
            .unwrap_or_else(|| "0.1".to_string()),
        pack,
        inputs,
        types,
        models,
        knowledge,
        agents,
        tools,
        graph,
        policy: program.policy.clone(),
        outcome,
        kpis,
        evals,
    })
}

impl<'a> Lowering<'a> {
    fn use_tool(&mut self, key: &str) {
        if !self.used_seen.contains(key) {
            self.used_seen.insert(key.to_string());
            self.used_tools.push(key.to_string());
        }
    }

    /// Lowers one action into `graph` as node `id`, with a gate before it when one of its own
    /// calls (not those of sub-plans) needs approval. Returns the node and the gate.
    fn action_node(
        &mut self,
        graph: &mut Graph,
        step: &str,
        id: &str,
        action: Action,
    ) -> (NodeIndex, Option<NodeIndex>) {
        let span = action.span();
        let output = self.program.action_type(span).cloned().unwrap_or(Ty::Error);
        let mut own_calls: Vec<&'a str> = Vec::new();
        let kind = match action {
            Action::Expr(expr) => {
                self.collect_calls(&expr, &mut own_calls);
                let call = match &expr.kind {
                    ExprKind::Call(..) => self.calls.get(&(expr.span.start, expr.span.end)),
                    _ => None,
                };
                match (call.copied(), expr.kind) {
                    // A tool call, unless it has calls nested in it (the call itself is the
                    // first one collected).
                    (Some(tool), ExprKind::Call(_, args)) if own_calls.len() <= 1 => {
                        NodeKind::Tool {
                            tool: tool.to_string(),
                            args: self.named_args(tool, args),
                        }
                    }
                    (_, kind) => NodeKind::Compute {
                        expr: Expr {
                            kind,
                            span: expr.span,
                        },
                        tools: own_calls.iter().map(|t| t.to_string()).collect(),
                    },
                }
            }
            Action::Ask(mut ask) => {
                for prop in &ask.props {
                    self.collect_calls(&prop.value, &mut own_calls);
                }
                let target_kind = if self.agent_names.contains(ask.target.name.as_str()) {
                    "agent"
                } else {
                    "model"
                };
                let cite = cite_names(&ask.props);
                NodeKind::Ask {
                    target: ask.target.name,
                    target_kind: target_kind.to_string(),
                    prompt: take_prop(&mut ask.props, "prompt"),
                    instructions: take_prop(&mut ask.props, "instructions"),
                    cite,
                }
            }
            Action::Map(map) => {
                self.collect_calls(&map.source, &mut own_calls);
                let mut body = Graph::default();
                self.action_node(&mut body, step, &format!("{id}.body"), *map.body);
                NodeKind::Map {
                    var: map.var.name,
                    source: map.source,
                    filter: map.filter,
                    concurrency: map.concurrency,
                    body,
                }
            }
            Action::When(when) => {
                self.collect_calls(&when.cond, &mut own_calls);
                let mut then = Graph::default();
                self.action_node(&mut then, step, &format!("{id}.then"), *when.then);
                let otherwise = when.otherwise.map(|otherwise| {
                    let mut graph = Graph::default();
                    self.action_node(&mut graph, step, &format!("{id}.else"), *otherwise);
                    graph
                });
                NodeKind::Branch {
                    cond: when.cond,
                    then,
                    otherwise,
                }
            }
            Action::Route(mut route) => {
                let cite = cite_names(&route.props);
                NodeKind::Route {
                    router: route.router.name,
                    routes: route.routes.into_iter().map(|r| r.name).collect(),
                    prompt: take_prop(&mut route.props, "prompt"),
                    instructions: take_prop(&mut route.props, "instructions"),
                    cite,
                }
            }
            Action::Review(review) => {
                let mut body = Graph::default();
                self.action_node(&mut body, step, &format!("{id}.body"), *review.body);
                NodeKind::Review {
                    critic: review.critic.name,
                    until: review.until,
                    max_rounds: review.max_rounds,
                    body,
                }
            }
            Action::Approve(approve) => NodeKind::Approval {
                message: approve.message,
            },
            Action::Error(_) => NodeKind::Compute {
                expr: Expr {
                    kind: ExprKind::Error,
                    span,
                },
                tools: Vec::new(),
            },
        };
        for tool in &own_calls {
            self.use_tool(tool);
        }
        let mut gate_calls = Vec::new();
        for tool in &own_calls {
            let scope = self.tools.get(*tool).and_then(|t| t.scope);
            if let GateDecision::Gate { reason, auto_when } = self.program.policy.gate(tool, scope)
                && !gate_calls.iter().any(|c: &GateCall| c.tool == *tool)
            {
                gate_calls.push(GateCall {
                    tool: tool.to_string(),
                    reason,
                    auto_approve_when: auto_when.cloned(),
                });
            }
        }
        let gate = if gate_calls.is_empty() {
            None
        } else {
            Some(graph.add_node(Node {
                id: format!("{id}.approval"),
                step: step.to_string(),
                kind: NodeKind::Gate {
                    calls: gate_calls,
                    guards: id.to_string(),
                },
                output: Ty::Bool,
                span,
            }))
        };
        let node = graph.add_node(Node {
            id: id.to_string(),
            step: step.to_string(),
            kind,
            output,
            span,
        });
        if let Some(gate) = gate {
            graph.add_edge(
                gate,
                node,
                Edge {
                    kind: EdgeKind::Approval,
                    path: String::new(),
                },
            );
        }
        (node, gate)
    }

    /// Tool calls inside an expression (not inside sub-actions).
    fn collect_calls(&self, expr: &Expr, out: &mut Vec<&'a str>) {
        match &expr.kind {
            ExprKind::Call(callee, args) => {
                if let Some(tool) = self.calls.get(&(expr.span.start, expr.span.end)) {
                    out.push(tool);
                } else {
                    self.collect_calls(callee, out);
                }
                for arg in args {
                    self.collect_calls(&arg.value, out);
                }
            }
            ExprKind::Field(base, _) => self.collect_calls(base, out),
            ExprKind::Index(base, index) => {
                self.collect_calls(base, out);
                self.collect_calls(index, out);
            }
            ExprKind::List(items) => {
                for item in items {
                    self.collect_calls(item, out);
                }
            }
            ExprKind::Record(props) => {
                for prop in props {
                    self.collect_calls(&prop.value, out);
                }
            }
            ExprKind::Unary(_, operand) => self.collect_calls(operand, out),
            ExprKind::Binary(_, left, right) => {
                self.collect_calls(left, out);
                self.collect_calls(right, out);
            }
            ExprKind::Str(lit) => {
                for part in &lit.parts {
                    if let StrPart::Hole(hole) = part {
                        self.collect_calls(hole, out);
                    }
                }
            }
            _ => {}
        }
    }

    /// Arguments by parameter name (positional ones take the parameters' order).
    fn named_args(&self, tool: &str, args: Vec<Arg>) -> Vec<PlanArg> {
        let info = self.tools.get(tool);
        args.into_iter()
            .enumerate()
            .map(|(index, arg)| PlanArg {
                name: match arg.name {
                    Some(name) => name.name,
                    None => info
                        .and_then(|t| t.params.get(index))
                        .map(|p| p.name.to_string())
                        .unwrap_or_default(),
                },
                value: arg.value,
            })
            .collect()
    }
}

/// Moves the first property named `key` out of `props`.
fn take_prop(props: &mut Vec<Prop>, key: &str) -> Option<Expr> {
    let index = props.iter().position(|p| p.key.name == key)?;
    Some(props.remove(index).value)
}

fn cite_names(props: &[Prop]) -> Vec<String> {
    let Some(cite) = props.iter().find(|p| p.key.name == "cite") else {
        return Vec::new();
    };
    match &cite.value.kind {
        ExprKind::Name(name) => vec![name.name.clone()],
        ExprKind::List(items) => items
            .iter()
            .filter_map(|i| match &i.kind {
                ExprKind::Name(name) => Some(name.name.clone()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// `secret("NAME")` -> `NAME`.
fn secret_name(expr: &Expr) -> Option<String> {
    let ExprKind::Call(callee, args) = &expr.kind else {
        return None;
    };
    let ExprKind::Name(name) = &callee.kind else {
        return None;
    };
    if name.name != "secret" {
        return None;
    }
    args.first().and_then(|a| plain_string(&a.value))
}

fn provider_ref(call: &Expr) -> Option<ProviderRef> {
    let ExprKind::Call(callee, args) = &call.kind else {
        return None;
    };
    let ExprKind::Name(provider) = &callee.kind else {
        return None;
    };
    let mut out = ProviderRef {
        provider: provider.name.clone(),
        model: String::new(),
        base_url: None,
        api_key_secret: None,
    };
    for arg in args {
        match arg.name.as_ref().map(|n| n.name.as_str()) {
            None => out.model = plain_string(&arg.value).unwrap_or_default(),
            Some("base_url") => out.base_url = plain_string(&arg.value),
            Some("api_key") => out.api_key_secret = secret_name(&arg.value),
            Some(_) => {}
        }
    }
    Some(out)
}

/// Every declared type reachable from inputs, node outputs and tools, in a stable order.
fn collect_types(program: &Program, graph: &Graph, tools: &[Arc<ToolInfo>]) -> Vec<Arc<TypeInfo>> {
    let mut pending: Vec<Ty> = Vec::new();
    pending.extend(program.inputs.iter().map(|i| i.field.ty.clone()));
    fn visit_graph(graph: &Graph, pending: &mut Vec<Ty>) {
        for node in graph.nodes() {
            pending.push(node.output.clone());
            match &node.kind {
                NodeKind::Map { body, .. } | NodeKind::Review { body, .. } => {
                    visit_graph(body, pending)
                }
                NodeKind::Branch {
                    then, otherwise, ..
                } => {
                    visit_graph(then, pending);
                    if let Some(otherwise) = otherwise {
                        visit_graph(otherwise, pending);
                    }
                }
                _ => {}
            }
        }
    }
    visit_graph(graph, &mut pending);
    for tool in tools {
        pending.push(tool.result.clone());
        pending.extend(tool.params.iter().map(|p| p.ty.clone()));
    }
    pending.push(Ty::Named(crate::ty::NamedTy {
        module: Arc::from("core"),
        name: Arc::from("Citation"),
        cited: false,
    }));
    pending.push(Ty::Named(crate::ty::NamedTy {
        module: Arc::from("core"),
        name: Arc::from("Critique"),
        cited: false,
    }));
    // The pack's own types by name (a scan per type would be quadratic in large packs).
    let mut own: FastMap<(&str, &str), &Arc<TypeInfo>> = FastMap::default();
    for t in &program.types {
        own.entry((&*t.module, &*t.name)).or_insert(t);
    }
    let mut seen: FastSet<(Arc<str>, Arc<str>)> = FastSet::default();
    let mut out: Vec<Arc<TypeInfo>> = Vec::new();
    while let Some(ty) = pending.pop() {
        match ty {
            Ty::List(inner) | Ty::Optional(inner) => pending.push((*inner).clone()),
            Ty::Map(key, value) => {
                pending.push((*key).clone());
                pending.push((*value).clone());
            }
            Ty::Record(fields) => pending.extend(fields.iter().map(|(_, t)| t.clone())),
            Ty::Named(named) => {
                if !seen.insert((named.module.clone(), named.name.clone())) {
                    continue;
                }
                let info = match own.get(&(&*named.module, &*named.name)) {
                    Some(info) => Some(*info),
                    None => program.type_info(&named.module, &named.name),
                };
                if let Some(info) = info {
                    pending.extend(info.fields.iter().map(|f| f.ty.clone()));
                    out.push(info.clone());
                }
            }
            _ => {}
        }
    }
    out.sort_by(|a, b| (&a.module, &a.name).cmp(&(&b.module, &b.name)));
    out
}

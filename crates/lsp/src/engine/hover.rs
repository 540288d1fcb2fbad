//! Hover: what the checker knows about the name (or action) under the cursor, as Markdown.

use std::fmt::Write;

use dsl_check::Program;
use dsl_check::program::{DefSite, FieldInfo, Resolution, SymbolKind, ToolInfo, TypeInfo};
use dsl_check::ty::Ty;
use dsl_syntax::ast::{Action, Item};
use tower_lsp_server::ls_types as lsp;

use super::Snapshot;

/// The hover at byte `offset`.
pub(crate) fn hover(snapshot: &Snapshot<'_>, offset: u32) -> Option<lsp::Hover> {
    let program = &snapshot.analysis.program;
    let (value, span) = match program.resolution_at(offset) {
        Some(resolution) => (
            describe(program, snapshot.text(), resolution),
            resolution.span,
        ),
        None => action_at(snapshot, offset)?,
    };
    Some(lsp::Hover {
        contents: lsp::HoverContents::Markup(lsp::MarkupContent {
            kind: lsp::MarkupKind::Markdown,
            value,
        }),
        range: Some(snapshot.doc.range(span)),
    })
}

/// A fenced code block followed by optional prose.
fn code(signature: &str, notes: &[String], doc: Option<&str>) -> String {
    let mut out = format!("```gx\n{signature}\n```");
    for note in notes {
        let _ = write!(out, "\n\n{note}");
    }
    if let Some(doc) = doc {
        let _ = write!(out, "\n\n---\n\n{doc}");
    }
    out
}

fn tool_signature(tool: &ToolInfo) -> String {
    let params: Vec<String> = tool.params.iter().map(param_signature).collect();
    let mut out = format!("tool {}({})", tool.key(), params.join(", "));
    if tool.result != Ty::Nothing {
        let _ = write!(out, " -> {}", tool.result);
    }
    out
}

fn param_signature(param: &FieldInfo) -> String {
    if param.default.is_some() {
        format!("{}: {} = …", param.name, param.ty)
    } else {
        format!("{}: {}", param.name, param.ty)
    }
}

fn tool_notes(tool: &ToolInfo) -> Vec<String> {
    let mut notes = Vec::new();
    if let Some(scope) = tool.scope {
        notes.push(format!("scope: `{}`", scope.as_str()));
    }
    if !tool.hosts.is_empty() {
        let hosts: Vec<String> = tool.hosts.iter().map(|h| format!("`{h}`")).collect();
        notes.push(format!("hosts: {}", hosts.join(", ")));
    }
    notes
}

/// The Markdown hover of a tool.
pub(crate) fn tool_markdown(tool: &ToolInfo) -> String {
    code(
        &tool_signature(tool),
        &tool_notes(tool),
        tool.doc.as_deref(),
    )
}

fn type_markdown(info: &TypeInfo) -> String {
    let name = if info.module.is_empty() {
        info.name.to_string()
    } else {
        format!("{}.{}", info.module, info.name)
    };
    let signature = match &info.alias {
        Some(alias) => format!("type {name} = {alias}"),
        None => {
            let mut out = format!("type {name} {{");
            for field in &info.fields {
                let _ = write!(out, "\n  {}: {}", field.name, field.ty);
            }
            out.push_str("\n}");
            out
        }
    };
    code(&signature, &[], info.doc.as_deref())
}

fn find_field<'a>(program: &'a Program, def: &DefSite) -> Option<&'a FieldInfo> {
    program
        .types
        .iter()
        .flat_map(|t| t.fields.iter())
        .chain(program.tools.iter().flat_map(|t| t.params.iter()))
        .chain(program.inputs.iter().map(|i| &i.field))
        .find(|f| &f.def == def)
}

/// Describes a resolved name.
fn describe(program: &Program, source: &str, resolution: &Resolution) -> String {
    let name = resolution.span.text(source);
    let def = resolution.def.as_ref();
    let by_def = |d: &DefSite| def == Some(d);
    match resolution.kind {
        SymbolKind::Step => match program.steps.iter().find(|s| by_def(&s.def)) {
            Some(step) => code(
                &format!("step {}: {}", step.name, step.ty),
                &[format!("{} step", kind_name(step.kind))],
                step.doc.as_deref(),
            ),
            None => code(&format!("step {name}: {}", resolution.ty), &[], None),
        },
        SymbolKind::Tool => match program.tools.iter().find(|t| by_def(&t.def)) {
            Some(tool) => tool_markdown(tool),
            None => code(&format!("tool {name}"), &[], None),
        },
        SymbolKind::Type => {
            let info = match &resolution.ty {
                Ty::Named(named) => program.type_info(&named.module, &named.name),
                _ => None,
            }
            .or_else(|| program.types.iter().find(|t| by_def(&t.def)));
            match info {
                Some(info) => type_markdown(info),
                None => code(&format!("type {}", resolution.ty), &[], None),
            }
        }
        SymbolKind::Agent => match program.agents.iter().find(|a| by_def(&a.def)) {
            Some(agent) => {
                let mut notes = Vec::new();
                if let Some(model) = &agent.model {
                    notes.push(format!("model: `{model}`"));
                }
                if !agent.tools.is_empty() {
                    notes.push(format!("tools: `{}`", agent.tools.join("`, `")));
                }
                code(
                    &format!("agent {}", agent.name),
                    &notes,
                    agent.doc.as_deref(),
                )
            }
            None => code(&format!("agent {name}"), &[], None),
        },
        SymbolKind::Model => match program.models.iter().find(|m| by_def(&m.def)) {
            Some(model) => {
                let provider = match (&model.provider, &model.model) {
                    (Some(p), Some(m)) => format!(" = {p}(\"{m}\")"),
                    _ => String::new(),
                };
                code(
                    &format!("model {}{provider}", model.name),
                    &[],
                    model.doc.as_deref(),
                )
            }
            None => code(&format!("model {name}"), &[], None),
        },
        SymbolKind::Knowledge => {
            let doc = program
                .knowledge
                .iter()
                .find(|k| by_def(&k.def))
                .and_then(|k| k.doc.as_deref());
            code(&format!("knowledge {name}"), &[], doc)
        }
        SymbolKind::Kpi => {
            let doc = program
                .kpis
                .iter()
                .find(|k| by_def(&k.def))
                .and_then(|k| k.doc.as_deref());
            code(&format!("kpi {name}"), &[], doc)
        }
        SymbolKind::Module => {
            let from = program
                .imports
                .iter()
                .find(|i| i.alias == name)
                .map(|i| match &i.file {
                    dsl_check::program::FileRef::Std(m) => format!("std.{m}"),
                    dsl_check::program::FileRef::Project(p) => format!("\"{p}\""),
                    dsl_check::program::FileRef::Main => String::new(),
                })
                .unwrap_or_default();
            code(&format!("use {from}"), &[format!("module `{name}`")], None)
        }
        SymbolKind::Input | SymbolKind::Param | SymbolKind::Field => {
            let label = match resolution.kind {
                SymbolKind::Input => "input",
                SymbolKind::Param => "parameter",
                _ => "field",
            };
            let doc = def
                .and_then(|d| find_field(program, d))
                .and_then(|f| f.doc.as_deref());
            if def.is_none() && resolution.kind == SymbolKind::Input {
                return code("input", &["the pack's inputs".to_string()], None);
            }
            code(&format!("({label}) {name}: {}", resolution.ty), &[], doc)
        }
        SymbolKind::LoopVar => code(
            &format!("(loop variable) {name}: {}", resolution.ty),
            &[],
            None,
        ),
        SymbolKind::Critique => code(
            &format!("(critique) {name}: {}", resolution.ty),
            &["the critic's latest verdict".to_string()],
            None,
        ),
        SymbolKind::Builtin => code(&format!("(built-in) {name}: {}", resolution.ty), &[], None),
    }
}

fn kind_name(kind: dsl_check::program::StepKind) -> &'static str {
    use dsl_check::program::StepKind;
    match kind {
        StepKind::Expr => "expression",
        StepKind::Ask => "`ask`",
        StepKind::Map => "`map`",
        StepKind::When => "`when`",
        StepKind::Route => "`route`",
        StepKind::Review => "`review`",
        StepKind::Approve => "`approve`",
        StepKind::Error => "broken",
    }
}

/// The type of the innermost action (step body) at `offset`, for hovers on keywords such
/// as `map` or `ask` that are not names.
fn action_at(snapshot: &Snapshot<'_>, offset: u32) -> Option<(String, dsl_syntax::Span)> {
    let program = &snapshot.analysis.program;
    let flow = snapshot
        .analysis
        .parse
        .file
        .items
        .iter()
        .find_map(|item| match item {
            Item::Flow(flow) if flow.span.contains(offset) => Some(flow),
            _ => None,
        })?;
    let step = flow.steps.iter().find(|s| s.span.contains(offset))?;
    let mut action = &step.action;
    loop {
        let inner = match action {
            Action::Map(map) => Some(&*map.body),
            Action::When(when) => {
                if when.then.span().contains(offset) {
                    Some(&*when.then)
                } else {
                    when.otherwise.as_deref()
                }
            }
            Action::Review(review) => Some(&*review.body),
            _ => None,
        };
        match inner {
            Some(next) if next.span().contains(offset) => action = next,
            _ => break,
        }
    }
    // Only the action's leading keyword, so that hovers over literals stay quiet.
    let keyword_end = action.span().start + 8;
    if offset > keyword_end && !matches!(action, Action::Expr(_)) {
        return None;
    }
    let ty = program.action_type(action.span())?;
    let text = code(
        &format!("{ty}"),
        &["the value of this action".to_string()],
        None,
    );
    Some((text, action.span()))
}

//! Completion in context and signature help for tool calls. The candidates are the
//! checker's symbols (`Program`); the context is read from the tokens around the cursor.

use std::collections::HashSet;

use dsl_check::Program;
use dsl_check::checks::properties::{AGENT_PROPS, MODEL_PROPS, TOOL_PROPS};
use dsl_check::program::{FileRef, SymbolKind};
use dsl_check::ty::Ty;
use dsl_check::{BUILTINS, PRIMITIVES};
use dsl_syntax::ast::Item;
use dsl_syntax::{EVAL_KEYWORDS, ITEM_KEYWORDS, POLICY_KEYWORDS, TokenKind};
use tower_lsp_server::ls_types as lsp;

use super::Snapshot;
use super::context::{self, CallContext};
use super::hover::tool_markdown;

/// Keywords that start an action (after `step name =`).
const ACTION_KEYWORDS: &[&str] = &["ask", "map", "when", "route", "review", "approve"];

fn item(label: &str, kind: lsp::CompletionItemKind, detail: Option<String>) -> lsp::CompletionItem {
    lsp::CompletionItem {
        label: label.to_string(),
        kind: Some(kind),
        detail,
        ..Default::default()
    }
}

fn keywords(words: &[&str]) -> Vec<lsp::CompletionItem> {
    words
        .iter()
        .map(|w| item(w, lsp::CompletionItemKind::KEYWORD, None))
        .collect()
}

/// The completions at byte `offset`.
pub(crate) fn completion(snapshot: &Snapshot<'_>, offset: u32) -> Vec<lsp::CompletionItem> {
    let analysis = &snapshot.analysis;
    let program = &analysis.program;
    let source = snapshot.text();
    let tokens = &analysis.parse.tokens;
    // Inside a comment or a string's text: nothing.
    let at = tokens.partition_point(|t| t.span.end < offset);
    if let Some(token) = tokens.get(at)
        && token.span.start < offset
        && matches!(
            token.kind,
            TokenKind::LineComment | TokenKind::DocComment | TokenKind::StrText
        )
    {
        return Vec::new();
    }
    if let Some(path) = context::dotted_path_before(source, tokens, offset) {
        return members(program, source, &path, offset);
    }
    let previous = context::previous_token(tokens, offset);
    let previous_text = previous.map(|t| t.span.text(source)).unwrap_or("");
    let enclosing = context::enclosing_item(&analysis.parse.file, offset);
    if previous_text == "->" || is_type_position(snapshot, offset, enclosing) {
        return types(program);
    }
    if matches!(previous_text, "ask" | "by" | "route")
        && previous.is_some_and(|t| t.kind == TokenKind::Ident)
    {
        return agents(program, previous_text == "ask");
    }
    let mut items = Vec::new();
    if let Some(call) = context::call_context(source, tokens, offset) {
        if call.at_arg_start {
            items.extend(named_args(program, &call));
        }
        items.extend(expressions(program));
        return items;
    }
    let line_start = source
        .get(..offset as usize)
        .and_then(|s| s.rfind('\n'))
        .map_or(0, |i| i + 1);
    let prefix = source
        .get(line_start..offset as usize)
        .unwrap_or("")
        .trim_start();
    let at_statement_start = prefix.chars().all(|c| c.is_alphanumeric() || c == '_');
    match enclosing {
        None => keywords(ITEM_KEYWORDS),
        Some(Item::Flow(flow)) => {
            let inside_step = flow
                .steps
                .iter()
                .any(|s| s.span.start < offset && offset <= s.span.end && !at_statement_start);
            if at_statement_start && !inside_step && previous_text != "=" {
                return keywords(&["step"]);
            }
            if previous_text == "=" {
                items.extend(keywords(ACTION_KEYWORDS));
            }
            items.extend(expressions(program));
            items
        }
        Some(Item::Policy(_)) if at_statement_start => keywords(POLICY_KEYWORDS),
        Some(Item::Eval(_)) if at_statement_start => keywords(EVAL_KEYWORDS),
        Some(Item::Agent(_)) if at_statement_start => properties(AGENT_PROPS),
        Some(Item::Model(_)) if at_statement_start => properties(MODEL_PROPS),
        Some(Item::Tool(_)) if at_statement_start => properties(TOOL_PROPS),
        Some(Item::Policy(_) | Item::Eval(_) | Item::Outcome(_) | Item::Kpi(_)) => {
            expressions(program)
        }
        Some(Item::Agent(_) | Item::Model(_) | Item::Knowledge(_) | Item::Tool(_)) => {
            expressions(program)
        }
        Some(Item::Layout(_)) => program
            .steps
            .iter()
            .map(|s| {
                item(
                    &s.name,
                    lsp::CompletionItemKind::VARIABLE,
                    Some(s.ty.to_string()),
                )
            })
            .collect(),
        Some(_) => Vec::new(),
    }
}

fn properties(names: &[&str]) -> Vec<lsp::CompletionItem> {
    names
        .iter()
        .map(|n| item(n, lsp::CompletionItemKind::PROPERTY, None))
        .collect()
}

/// Whether the cursor stands where a type is written: after `:` in an input block, a type
/// declaration or a tool's parameter list.
fn is_type_position(snapshot: &Snapshot<'_>, offset: u32, enclosing: Option<&Item>) -> bool {
    let tokens = &snapshot.analysis.parse.tokens;
    let Some(previous) = context::previous_token(tokens, offset) else {
        return false;
    };
    let after_colon = previous.kind == TokenKind::Colon
        || (previous.kind == TokenKind::LBracket
            && context::token_before(tokens, previous).is_some_and(|t| t.kind == TokenKind::Colon));
    if !after_colon {
        return false;
    }
    match enclosing {
        Some(Item::Input(_) | Item::Type(_)) => true,
        Some(Item::Tool(tool)) => {
            // Only inside the parameter list, before the block.
            let recent = context::recent_tokens(tokens, offset);
            let mut depth = 0i32;
            for token in recent.iter().rev() {
                if token.span.start < tool.span.start {
                    break;
                }
                match token.kind {
                    TokenKind::RParen => depth += 1,
                    TokenKind::LParen if depth == 0 => return true,
                    TokenKind::LParen => depth -= 1,
                    TokenKind::LBrace | TokenKind::RBrace if depth == 0 => return false,
                    _ => {}
                }
            }
            false
        }
        _ => false,
    }
}

fn types(program: &Program) -> Vec<lsp::CompletionItem> {
    let mut items: Vec<lsp::CompletionItem> = PRIMITIVES
        .iter()
        .map(|p| {
            item(
                p,
                lsp::CompletionItemKind::TYPE_PARAMETER,
                Some("primitive".into()),
            )
        })
        .collect();
    for info in &program.types {
        items.push(item(
            &info.name,
            lsp::CompletionItemKind::STRUCT,
            info.doc.clone(),
        ));
    }
    for import in &program.imports {
        if import.alias == "core" {
            continue;
        }
        for name in module_type_names(import) {
            items.push(item(
                &format!("{}.{name}", import.alias),
                lsp::CompletionItemKind::STRUCT,
                None,
            ));
        }
    }
    items
}

fn module_type_names(import: &dsl_check::program::ImportInfo) -> Vec<String> {
    match &import.file {
        FileRef::Std(name) => dsl_check::stdlib::module(name)
            .map(|m| m.type_names().into_iter().map(String::from).collect())
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

fn agents(program: &Program, with_models: bool) -> Vec<lsp::CompletionItem> {
    let mut items: Vec<lsp::CompletionItem> = program
        .agents
        .iter()
        .map(|a| {
            item(
                &a.name,
                lsp::CompletionItemKind::CLASS,
                Some("agent".into()),
            )
        })
        .collect();
    if with_models {
        items.extend(program.models.iter().map(|m| {
            item(
                &m.name,
                lsp::CompletionItemKind::CONSTANT,
                Some("model".into()),
            )
        }));
    }
    items
}

/// Names usable in an expression.
fn expressions(program: &Program) -> Vec<lsp::CompletionItem> {
    let mut items = Vec::new();
    for step in &program.steps {
        let mut completion = item(
            &step.name,
            lsp::CompletionItemKind::VARIABLE,
            Some(step.ty.to_string()),
        );
        completion.documentation = step.doc.clone().map(lsp::Documentation::String);
        items.push(completion);
    }
    if !program.inputs.is_empty() {
        items.push(item(
            "input",
            lsp::CompletionItemKind::MODULE,
            Some("the pack's inputs".into()),
        ));
    }
    for import in &program.imports {
        if import.alias != "core" {
            items.push(item(
                &import.alias,
                lsp::CompletionItemKind::MODULE,
                Some(format!("module {}", import.module)),
            ));
        }
    }
    for knowledge in &program.knowledge {
        items.push(item(
            &knowledge.name,
            lsp::CompletionItemKind::FILE,
            Some("knowledge".into()),
        ));
    }
    for tool in program.tools.iter().filter(|t| t.module.is_empty()) {
        items.push(item(
            &tool.name,
            lsp::CompletionItemKind::FUNCTION,
            Some("tool".into()),
        ));
    }
    for builtin in BUILTINS {
        items.push(item(
            builtin,
            lsp::CompletionItemKind::FUNCTION,
            Some("built-in".into()),
        ));
    }
    items.extend(keywords(&["true", "false", "none", "not"]));
    items
}

/// The named arguments of the called tool not written yet.
fn named_args(program: &Program, call: &CallContext) -> Vec<lsp::CompletionItem> {
    let Some(tool) = program.tool(&call.callee) else {
        return Vec::new();
    };
    let given: HashSet<&str> = call.given.iter().map(String::as_str).collect();
    tool.params
        .iter()
        .filter(|p| !given.contains(&*p.name))
        .map(|p| lsp::CompletionItem {
            label: format!("{}:", p.name),
            kind: Some(lsp::CompletionItemKind::FIELD),
            detail: Some(p.ty.to_string()),
            documentation: p.doc.clone().map(lsp::Documentation::String),
            insert_text: Some(format!("{}: ", p.name)),
            sort_text: Some(format!("0{}", if p.is_required() { 0 } else { 1 })),
            ..Default::default()
        })
        .collect()
}

/// Completions after `a.b.`: inputs, a module's tools and types, or a value's fields.
fn members(
    program: &Program,
    source: &str,
    path: &[String],
    offset: u32,
) -> Vec<lsp::CompletionItem> {
    let Some((first, rest)) = path.split_first() else {
        return Vec::new();
    };
    if rest.is_empty() {
        if first == "input" {
            return program
                .inputs
                .iter()
                .map(|i| {
                    item(
                        &i.field.name,
                        lsp::CompletionItemKind::FIELD,
                        Some(i.field.ty.to_string()),
                    )
                })
                .collect();
        }
        if let Some(import) = program.imports.iter().find(|i| &i.alias == first) {
            let mut items: Vec<lsp::CompletionItem> = program
                .tools
                .iter()
                .filter(|t| *t.module == *import.module)
                .map(|t| {
                    let mut completion = item(
                        &t.name,
                        lsp::CompletionItemKind::FUNCTION,
                        t.scope.map(|s| format!("{} tool", s.as_str())),
                    );
                    completion.documentation =
                        Some(lsp::Documentation::MarkupContent(lsp::MarkupContent {
                            kind: lsp::MarkupKind::Markdown,
                            value: tool_markdown(t),
                        }));
                    completion
                })
                .collect();
            items.sort_by(|a, b| a.label.cmp(&b.label));
            for name in module_type_names(import) {
                items.push(item(&name, lsp::CompletionItemKind::STRUCT, None));
            }
            return items;
        }
    }
    // The type of the first name: a step, or whatever the checker resolved it to before.
    let mut ty = match program.step(first) {
        Some(step) => step.ty.clone(),
        None => {
            let Some(resolution) = program.resolutions.iter().rev().find(|r| {
                r.span.end <= offset
                    && r.span.text(source) == first
                    && !matches!(r.kind, SymbolKind::Field | SymbolKind::Param)
            }) else {
                return Vec::new();
            };
            if first == "input" && resolution.def.is_none() {
                let Some(input) = rest
                    .first()
                    .and_then(|n| program.inputs.iter().find(|i| *i.field.name == **n))
                else {
                    return Vec::new();
                };
                let ty = input.field.ty.clone();
                return fields_of(program, &follow(program, ty, rest.get(1..).unwrap_or(&[])));
            }
            resolution.ty.clone()
        }
    };
    ty = follow(program, ty, rest);
    fields_of(program, &ty)
}

/// The type reached by reading `fields` from a value of type `ty`.
fn follow(program: &Program, mut ty: Ty, fields: &[String]) -> Ty {
    for field in fields {
        ty = field_type(program, &ty, field).unwrap_or(Ty::Error);
    }
    ty
}

fn field_type(program: &Program, ty: &Ty, name: &str) -> Option<Ty> {
    match ty.strip_optional() {
        Ty::Named(named) => {
            if named.cited && name == "citations" {
                return Some(Ty::Json);
            }
            let info = program.type_info(&named.module, &named.name)?;
            match &info.alias {
                Some(alias) => field_type(program, alias, name),
                None => info.field(name).map(|f| f.ty.clone()),
            }
        }
        Ty::Record(fields) => fields
            .iter()
            .find(|(n, _)| &**n == name)
            .map(|(_, t)| t.clone()),
        _ => None,
    }
}

fn fields_of(program: &Program, ty: &Ty) -> Vec<lsp::CompletionItem> {
    match ty.strip_optional() {
        Ty::Named(named) => {
            let Some(info) = program.type_info(&named.module, &named.name) else {
                return Vec::new();
            };
            if let Some(alias) = &info.alias {
                return fields_of(program, alias);
            }
            let mut items: Vec<lsp::CompletionItem> = info
                .fields
                .iter()
                .map(|f| {
                    let mut completion = item(
                        &f.name,
                        lsp::CompletionItemKind::FIELD,
                        Some(f.ty.to_string()),
                    );
                    completion.documentation = f.doc.clone().map(lsp::Documentation::String);
                    completion
                })
                .collect();
            if named.cited {
                items.push(item(
                    "citations",
                    lsp::CompletionItemKind::FIELD,
                    Some("[Citation]".into()),
                ));
            }
            items
        }
        Ty::Record(fields) => fields
            .iter()
            .map(|(name, ty)| item(name, lsp::CompletionItemKind::FIELD, Some(ty.to_string())))
            .collect(),
        _ => Vec::new(),
    }
}

/// Signature help for the tool call around byte `offset`.
pub(crate) fn signature_help(snapshot: &Snapshot<'_>, offset: u32) -> Option<lsp::SignatureHelp> {
    let analysis = &snapshot.analysis;
    let call = context::call_context(snapshot.text(), &analysis.parse.tokens, offset)?;
    let tool = analysis.program.tool(&call.callee)?;
    let mut label = format!("{}(", tool.key());
    let mut parameters = Vec::new();
    for (i, param) in tool.params.iter().enumerate() {
        if i > 0 {
            label.push_str(", ");
        }
        let start = label.encode_utf16().count() as u32;
        label.push_str(&format!("{}: {}", param.name, param.ty));
        let end = label.encode_utf16().count() as u32;
        parameters.push(lsp::ParameterInformation {
            label: lsp::ParameterLabel::LabelOffsets([start, end]),
            documentation: param.doc.clone().map(lsp::Documentation::String),
        });
    }
    label.push(')');
    if tool.result != Ty::Nothing {
        label.push_str(&format!(" -> {}", tool.result));
    }
    let active = match &call.arg_name {
        Some(name) => tool.param(name).map(|(i, _)| i),
        None => Some(call.arg_index),
    }
    .and_then(|i| u32::try_from(i).ok());
    let mut documentation = String::new();
    if let Some(scope) = tool.scope {
        documentation.push_str(&format!("scope: `{}`", scope.as_str()));
    }
    if let Some(doc) = &tool.doc {
        documentation.push_str(&format!("\n\n{doc}"));
    }
    Some(lsp::SignatureHelp {
        signatures: vec![lsp::SignatureInformation {
            label,
            documentation: Some(lsp::Documentation::MarkupContent(lsp::MarkupContent {
                kind: lsp::MarkupKind::Markdown,
                value: documentation,
            })),
            parameters: Some(parameters),
            active_parameter: active,
        }],
        active_signature: Some(0),
        active_parameter: active,
    })
}

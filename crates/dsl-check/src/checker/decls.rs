//! Declarations: types, inputs, tools, models, knowledge sources and agents.

use crate::fast_hash::FastMap;
use std::sync::Arc;

use dsl_syntax::Span;
use dsl_syntax::ast::{
    AgentDecl, Expr, ExprKind, Field, Ident, Item, KnowledgeDecl, ModelDecl, Prop, ToolDecl,
    TypeDecl, TypeDeclBody, TypeExpr, TypeExprKind,
};

use super::{Checker, Local};
use crate::checks;
use crate::checks::properties;
use crate::checks::value_range::{self, Minimum};
use crate::program::{
    AgentInfo, FieldInfo, InputInfo, KnowledgeInfo, ModelInfo, SymbolKind, ToolInfo, TypeInfo,
};
use crate::ty::{NamedTy, Ty};

/// The primitive type names.
pub const PRIMITIVES: &[&str] = &[
    "String", "Int", "Float", "Bool", "Duration", "Money", "Json",
];

fn primitive(name: &str) -> Option<Ty> {
    Some(match name {
        "String" => Ty::String,
        "Int" => Ty::Int,
        "Float" => Ty::Float,
        "Bool" => Ty::Bool,
        "Duration" => Ty::Duration,
        "Money" => Ty::Money,
        "Json" => Ty::Json,
        _ => return None,
    })
}

/// How deep alias expansion may nest before it is treated as a cycle.
const MAX_ALIAS_DEPTH: u32 = 64;

impl<'a> Checker<'a> {
    /// Registers every declared name (so declarations may refer to each other in any order)
    /// and reports duplicates.
    pub(super) fn collect_declarations(&mut self, items: &'a [Item]) {
        let mut seen_types: FastMap<&str, Span> = FastMap::default();
        for item in items {
            if let Item::Type(decl) = item
                && checks::duplicates::check(self, &mut seen_types, &decl.name, "type")
            {
                self.type_decls
                    .insert(Arc::from(decl.name.name.as_str()), decl);
            }
        }
    }

    /// Checks every declaration, in dependency order: types, inputs, tools, models,
    /// knowledge, agents.
    pub(super) fn check_declarations(&mut self, items: &'a [Item]) {
        for item in items {
            if let Item::Type(decl) = item {
                self.item_start = decl.span.start;
                self.check_type_decl(decl);
            }
        }
        let mut seen_inputs: FastMap<&str, Span> = FastMap::default();
        let mut input_blocks = 0;
        for item in items {
            if let Item::Input(block) = item {
                if self.is_module {
                    continue;
                }
                input_blocks += 1;
                if input_blocks > 1 {
                    checks::duplicates::duplicate_block(self, block.span, "input");
                }
                self.item_start = block.span.start;
                for field in &block.fields {
                    if !checks::duplicates::check(self, &mut seen_inputs, &field.name, "input") {
                        continue;
                    }
                    let info = self.field_info(field);
                    self.define(&field.name, SymbolKind::Input, info.ty.clone());
                    self.inputs
                        .insert(info.name.clone(), self.program.inputs.len());
                    self.program.inputs.push(InputInfo {
                        field: info,
                        used: false,
                    });
                }
            }
        }
        let mut seen: FastMap<&str, Span> = FastMap::default();
        for item in items {
            if let Item::Tool(decl) = item {
                self.item_start = decl.span.start;
                if checks::duplicates::check(self, &mut seen, &decl.name, "tool") {
                    self.check_tool_decl(decl);
                }
            }
        }
        let mut seen_models: FastMap<&str, Span> = FastMap::default();
        for item in items {
            if let Item::Model(decl) = item {
                self.item_start = decl.span.start;
                if checks::duplicates::check(self, &mut seen_models, &decl.name, "model") {
                    self.check_model_decl(decl);
                }
            }
        }
        let mut seen_knowledge: FastMap<&str, Span> = FastMap::default();
        for item in items {
            if let Item::Knowledge(decl) = item {
                if self.is_module {
                    continue;
                }
                self.item_start = decl.span.start;
                if checks::duplicates::check(
                    self,
                    &mut seen_knowledge,
                    &decl.name,
                    "knowledge source",
                ) {
                    self.check_knowledge_decl(decl);
                }
            }
        }
        // Agents refer to each other never, but to models, tools and knowledge: register all
        // names first so an agent declared before its model still resolves.
        let mut seen_agents: FastMap<&str, Span> = FastMap::default();
        let mut agent_decls = Vec::new();
        for item in items {
            if let Item::Agent(decl) = item
                && checks::duplicates::check(self, &mut seen_agents, &decl.name, "agent")
            {
                agent_decls.push(decl);
            }
        }
        for decl in agent_decls {
            self.item_start = decl.span.start;
            self.check_agent_decl(decl);
        }
    }

    fn check_type_decl(&mut self, decl: &'a TypeDecl) {
        let name: Arc<str> = Arc::from(decl.name.name.as_str());
        if self.types.contains_key(&name)
            || self
                .type_decls
                .get(&name)
                .is_none_or(|d| !std::ptr::eq(*d, decl))
        {
            return;
        }
        let doc = self.doc(decl.span);
        let (fields, alias) = match &decl.body {
            TypeDeclBody::Record(fields) => {
                let mut seen: FastMap<&str, Span> = FastMap::default();
                let mut infos = Vec::with_capacity(fields.len());
                for field in fields {
                    if checks::duplicates::check(self, &mut seen, &field.name, "field") {
                        let info = self.field_info(field);
                        self.define(&field.name, SymbolKind::Field, info.ty.clone());
                        infos.push(info);
                    }
                }
                (infos, None)
            }
            TypeDeclBody::Alias(target) => {
                let ty = self.alias_type(&name);
                if self.record {
                    // Record the names in the alias body once (the expansion may have run
                    // earlier, silently, from a use of the alias); its errors are already in.
                    let reported = self.diags.len();
                    self.resolve_type(target);
                    self.diags.truncate(reported);
                }
                (Vec::new(), Some(ty))
            }
        };
        let ty = match &alias {
            Some(alias) => alias.clone(),
            None => Ty::Named(NamedTy {
                module: self.module.clone(),
                name: name.clone(),
                cited: false,
            }),
        };
        self.define(&decl.name, SymbolKind::Type, ty);
        let info = TypeInfo {
            module: self.module.clone(),
            name: name.clone(),
            fields,
            alias,
            def: self.def(decl.name.span),
            doc,
        };
        let info = Arc::new(info);
        self.program
            .type_index
            .insert(name.clone(), self.program.types.len());
        self.program.types.push(info.clone());
        self.types.insert(name, info);
    }

    /// The expansion of the alias `name` declared in this file.
    fn alias_type(&mut self, name: &Arc<str>) -> Ty {
        match self.alias_cache.get(name) {
            Some(Some(ty)) => return ty.clone(),
            Some(None) => return Ty::Error,
            None => {}
        }
        let Some(decl) = self.type_decls.get(name).copied() else {
            return Ty::Error;
        };
        let TypeDeclBody::Alias(target) = &decl.body else {
            return Ty::Error;
        };
        if self.alias_depth >= MAX_ALIAS_DEPTH {
            return Ty::Error;
        }
        self.alias_cache.insert(name.clone(), None);
        self.alias_depth += 1;
        let record = std::mem::replace(&mut self.record, false);
        let ty = self.resolve_type(target);
        self.record = record;
        self.alias_depth -= 1;
        self.alias_cache.insert(name.clone(), Some(ty.clone()));
        ty
    }

    /// A field, parameter or input, with its type resolved and default checked.
    pub(crate) fn field_info(&mut self, field: &'a Field) -> FieldInfo {
        let ty = self.resolve_type(&field.ty);
        if let Some(default) = &field.default {
            self.check_expr(default, &ty);
        }
        FieldInfo {
            name: Arc::from(field.name.name.as_str()),
            ty,
            default: field.default.clone(),
            def: self.def(field.name.span),
            doc: self.doc(field.span),
        }
    }

    /// Resolves a type as written.
    pub(crate) fn resolve_type(&mut self, ty: &'a TypeExpr) -> Ty {
        match &ty.kind {
            TypeExprKind::Named(path) => match path.as_slice() {
                [name] => self.resolve_type_name(name),
                [module, name] => self.resolve_qualified_type(module, name),
                _ => {
                    checks::unknown_type::report_path(self, ty.span);
                    Ty::Error
                }
            },
            TypeExprKind::List(elem) => Ty::list(self.resolve_type(elem)),
            TypeExprKind::Map(key, value) => {
                let key = self.resolve_type(key);
                let value = self.resolve_type(value);
                Ty::Map(Arc::new(key), Arc::new(value))
            }
            TypeExprKind::Optional(inner) => Ty::optional(self.resolve_type(inner)),
            TypeExprKind::StringUnion(options) => {
                let mut seen: FastMap<String, Span> = FastMap::default();
                let mut out: Vec<Arc<str>> = Vec::with_capacity(options.len());
                for option in options {
                    let Some(text) = option.as_plain() else {
                        continue;
                    };
                    if let Some(first) = seen.get(&text) {
                        checks::duplicates::report(
                            self,
                            option.span,
                            *first,
                            &format!("union member {text:?}"),
                        );
                        continue;
                    }
                    seen.insert(text.clone(), option.span);
                    out.push(Arc::from(text.as_str()));
                }
                Ty::Union(out.into())
            }
            TypeExprKind::Error => Ty::Error,
        }
    }

    fn resolve_type_name(&mut self, name: &'a Ident) -> Ty {
        if let Some(ty) = primitive(&name.name) {
            return ty;
        }
        if let Some(decl) = self.type_decls.get(name.name.as_str()).copied() {
            let key: Arc<str> = Arc::from(name.name.as_str());
            let ty = match decl.body {
                TypeDeclBody::Record(_) => Ty::Named(NamedTy {
                    module: self.module.clone(),
                    name: key.clone(),
                    cited: false,
                }),
                TypeDeclBody::Alias(_) => self.alias_type(&key),
            };
            let def = self.def(decl.name.span);
            self.resolve(name.span, SymbolKind::Type, Some(def), ty.clone());
            return ty;
        }
        if let Some(core) = self.core.clone()
            && let Some(info) = core.types.get(name.name.as_str())
        {
            let ty = imported_type_ty(info);
            self.resolve(
                name.span,
                SymbolKind::Type,
                Some(info.def.clone()),
                ty.clone(),
            );
            return ty;
        }
        checks::unknown_type::report(self, name, None);
        Ty::Error
    }

    fn resolve_qualified_type(&mut self, module: &'a Ident, name: &'a Ident) -> Ty {
        let Some(info) = self.imports.get(module.name.as_str()).cloned() else {
            if &*self.module == module.name.as_str() {
                return self.resolve_type_name(name);
            }
            checks::unknown_name::report_module(self, module);
            return Ty::Error;
        };
        self.resolve(
            module.span,
            SymbolKind::Module,
            info.file.clone().map(|file| crate::program::DefSite {
                file,
                span: Span::default(),
            }),
            Ty::Module,
        );
        match info.types.get(name.name.as_str()) {
            Some(t) => {
                let ty = imported_type_ty(t);
                self.resolve(name.span, SymbolKind::Type, Some(t.def.clone()), ty.clone());
                ty
            }
            None => {
                checks::unknown_type::report(self, name, Some(&info));
                Ty::Error
            }
        }
    }

    /// Every type name visible unqualified, sorted, for suggestions.
    pub(crate) fn visible_type_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = PRIMITIVES.to_vec();
        names.extend(self.type_decls.keys().map(|k| &**k));
        if let Some(core) = &self.core {
            names.extend(core.types.keys().map(|k| &**k));
        }
        names.sort_unstable();
        names.dedup();
        names
    }

    fn check_tool_decl(&mut self, decl: &'a ToolDecl) {
        let doc = self.doc(decl.span);
        let mut seen: FastMap<&str, Span> = FastMap::default();
        let mut params = Vec::with_capacity(decl.params.len());
        for param in &decl.params {
            if checks::duplicates::check(self, &mut seen, &param.name, "parameter") {
                let info = self.field_info(param);
                self.define(&param.name, SymbolKind::Param, info.ty.clone());
                params.push(info);
            }
        }
        let result = match &decl.result {
            Some(ty) => self.resolve_type(ty),
            None => Ty::Nothing,
        };
        self.define(&decl.name, SymbolKind::Tool, Ty::Tool);
        let table = properties::check_props(self, &decl.props, properties::TOOL_PROPS, "tool");
        let scope = match table.get("scope") {
            Some(prop) => checks::tool_scope::check(self, prop),
            None => {
                checks::properties::missing(
                    self,
                    decl.name.span,
                    "tool",
                    &decl.name.name,
                    "scope",
                    "scope: read",
                );
                None
            }
        };
        // The timeout bounds every call alike: the parameters are not in scope.
        let mut timeout_ms = None;
        if let Some(prop) = table.get("timeout") {
            self.check_expr(&prop.value, &Ty::Duration);
            value_range::check_duration(
                self,
                "timeout",
                &prop.value,
                Minimum::Positive,
                Some("30s"),
            );
            timeout_ms = duration_ms(&prop.value);
        }
        // Its retries and their backoff, too, are the same for every call.
        let mut retry = None;
        if let Some(prop) = table.get("retry") {
            self.check_expr(&prop.value, &Ty::Int);
            value_range::check_count(self, "retry", &prop.value, Minimum::NonNegative, Some("2"));
            retry = match prop.value.kind {
                ExprKind::Int(n) if n >= 0 => Some(u32::try_from(n).unwrap_or(u32::MAX)),
                _ => None,
            };
        }
        let mut backoff_ms = None;
        if let Some(prop) = table.get("backoff") {
            self.check_expr(&prop.value, &Ty::Duration);
            value_range::check_duration(
                self,
                "backoff",
                &prop.value,
                Minimum::NonNegative,
                Some("500ms"),
            );
            backoff_ms = duration_ms(&prop.value);
        }
        // Parameters are in scope inside the request template and the simulation.
        let base = self.locals.len();
        for param in &params {
            self.locals.push(Local {
                name: param.name.clone(),
                ty: param.ty.clone(),
                kind: SymbolKind::Param,
                def: Some(param.def.clone()),
            });
        }
        let mut hosts = Vec::new();
        let mut hosts_prop: Option<&Prop> = None;
        if let Some(prop) = table.get("hosts") {
            hosts_prop = Some(prop);
            hosts = self.plain_string_list(&prop.value, "a list of host names");
        }
        let mut request = None;
        if let Some(prop) = table.get("request") {
            self.check_request(&prop.value, &hosts, hosts_prop, decl);
            request = Some(prop.value.clone());
        }
        let mut builtin = None;
        if let Some(prop) = table.get("builtin") {
            self.check_expr(&prop.value, &Ty::String);
            builtin = plain_string(&prop.value);
        }
        let mut sim = None;
        if let Some(prop) = table.get("sim") {
            self.check_expr(&prop.value, &result);
            sim = Some(prop.value.clone());
        }
        let mut sim_latency_ms = None;
        if let Some(prop) = table.get("sim_latency") {
            self.check_expr(&prop.value, &Ty::Duration);
            value_range::check_duration(
                self,
                "sim_latency",
                &prop.value,
                Minimum::NonNegative,
                None,
            );
            sim_latency_ms = duration_ms(&prop.value);
        }
        self.locals.truncate(base);
        let info = Arc::new(ToolInfo {
            module: self.module.clone(),
            name: Arc::from(decl.name.name.as_str()),
            params,
            result,
            scope,
            hosts,
            request,
            builtin,
            sim,
            sim_latency_ms,
            timeout_ms,
            retry,
            backoff_ms,
            def: self.def(decl.name.span),
            doc,
        });
        self.own_tools.push(info.clone());
        self.tools.insert(info.name.clone(), info);
    }

    fn check_request(
        &mut self,
        value: &'a Expr,
        hosts: &[String],
        hosts_prop: Option<&'a Prop>,
        decl: &'a ToolDecl,
    ) {
        let ExprKind::Record(props) = &value.kind else {
            self.check_expr(value, &Ty::Json);
            checks::type_mismatch::report_text(
                self,
                value.span,
                "a request record `{ method: ..., url: ... }`",
                "something else",
            );
            return;
        };
        let table = properties::check_props(self, props, properties::REQUEST_PROPS, "request");
        if let Some(method) = table.get("method") {
            self.check_expr(&method.value, &Ty::String);
            checks::request_host::check_method(self, &method.value);
        }
        match table.get("url") {
            Some(url) => {
                self.check_expr(&url.value, &Ty::String);
                checks::request_host::check(self, &url.value, hosts, hosts_prop, decl);
            }
            None => checks::properties::missing(
                self,
                value.span,
                "request",
                "",
                "url",
                "url: \"https://...\"",
            ),
        }
        if let Some(headers) = table.get("headers") {
            self.infer(&headers.value);
            checks::secrets::check_headers(self, &headers.value);
        }
        if let Some(query) = table.get("query") {
            self.infer(&query.value);
        }
        if let Some(body) = table.get("body") {
            self.infer(&body.value);
        }
    }

    /// A list of plain string literals (hosts, egress entries); reports anything else.
    pub(crate) fn plain_string_list(&mut self, value: &'a Expr, what: &str) -> Vec<String> {
        let ExprKind::List(items) = &value.kind else {
            let found = self.infer(value);
            if !found.is_error() {
                checks::type_mismatch::report_text(self, value.span, what, &found.to_string());
            }
            return Vec::new();
        };
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            match plain_string(item) {
                Some(text) => out.push(text),
                None => {
                    let found = self.infer(item);
                    checks::type_mismatch::report_text(
                        self,
                        item.span,
                        "a plain string literal",
                        &found.to_string(),
                    );
                }
            }
        }
        out
    }

    fn check_model_decl(&mut self, decl: &'a ModelDecl) {
        let doc = self.doc(decl.span);
        self.define(&decl.name, SymbolKind::Model, Ty::Model);
        let (provider, model) = checks::providers::check_provider_call(self, &decl.provider);
        let table = properties::check_props(self, &decl.props, properties::MODEL_PROPS, "model");
        for (key, prop) in table.iter() {
            match *key {
                "temperature" => self.check_expr(&prop.value, &Ty::Float),
                "max_tokens" => {
                    self.check_expr(&prop.value, &Ty::Int);
                    value_range::check_count(self, key, &prop.value, Minimum::Positive, None);
                }
                "retry" => {
                    self.check_expr(&prop.value, &Ty::Int);
                    value_range::check_count(
                        self,
                        key,
                        &prop.value,
                        Minimum::NonNegative,
                        Some("2"),
                    );
                }
                "backoff" | "timeout" | "sim_latency" => {
                    self.check_expr(&prop.value, &Ty::Duration);
                    let (minimum, default) = match *key {
                        "timeout" => (Minimum::Positive, Some("60s")),
                        "backoff" => (Minimum::NonNegative, Some("500ms")),
                        _ => (Minimum::NonNegative, None),
                    };
                    value_range::check_duration(self, key, &prop.value, minimum, default);
                }
                "api_key" => checks::secrets::check_secret_value(self, prop),
                "fallback" => match &prop.value.kind {
                    ExprKind::List(calls) => {
                        for call in calls {
                            checks::providers::check_provider_call(self, call);
                        }
                    }
                    _ => {
                        checks::providers::check_provider_call(self, &prop.value);
                    }
                },
                "price" => {
                    let price = Ty::Record(
                        vec![
                            (Arc::from("input"), Ty::Money),
                            (Arc::from("output"), Ty::Money),
                        ]
                        .into(),
                    );
                    self.check_expr(&prop.value, &price);
                }
                _ => {
                    self.infer(&prop.value);
                }
            }
        }
        let fallbacks: Vec<&Expr> = match table.get("fallback").map(|p| &p.value) {
            Some(Expr {
                kind: ExprKind::List(calls),
                ..
            }) => calls.iter().collect(),
            Some(call) => vec![call],
            None => Vec::new(),
        };
        let calls = std::iter::once((&decl.provider, false))
            .chain(fallbacks.into_iter().map(|c| (c, true)));
        for (call, fallback) in calls {
            if let Some((host, span, provider)) = checks::model_egress::provider_call_host(call) {
                self.model_calls.push(checks::model_egress::ModelCall {
                    model: Arc::from(decl.name.name.as_str()),
                    def: decl.name.span,
                    host,
                    span,
                    provider,
                    fallback,
                });
            }
        }
        let info = Arc::new(ModelInfo {
            module: self.module.clone(),
            name: Arc::from(decl.name.name.as_str()),
            provider,
            model,
            def: self.def(decl.name.span),
            doc,
        });
        self.program.models.push(info.clone());
        self.models.insert(info.name.clone(), info);
    }

    fn check_knowledge_decl(&mut self, decl: &'a KnowledgeDecl) {
        let doc = self.doc(decl.span);
        self.define(&decl.name, SymbolKind::Knowledge, Ty::Knowledge);
        checks::providers::check_knowledge_source(self, &decl.source);
        let table =
            properties::check_props(self, &decl.props, properties::KNOWLEDGE_PROPS, "knowledge");
        for (key, prop) in table.iter() {
            match *key {
                "chunk_size" | "top_k" => {
                    self.check_expr(&prop.value, &Ty::Int);
                    let default = (*key == "chunk_size").then_some("400");
                    value_range::check_count(self, key, &prop.value, Minimum::Positive, default);
                }
                "refresh" => self.check_expr(&prop.value, &Ty::Duration),
                _ => self.check_expr(&prop.value, &Ty::String),
            }
        }
        let name: Arc<str> = Arc::from(decl.name.name.as_str());
        self.knowledge
            .insert(name.clone(), self.program.knowledge.len());
        self.program.knowledge.push(KnowledgeInfo {
            name,
            def: self.def(decl.name.span),
            doc,
        });
    }

    fn check_agent_decl(&mut self, decl: &'a AgentDecl) {
        let doc = self.doc(decl.span);
        self.define(&decl.name, SymbolKind::Agent, Ty::Agent);
        let table = properties::check_props(self, &decl.props, properties::AGENT_PROPS, "agent");
        let mut model = None;
        match table.get("model") {
            Some(prop) => model = self.resolve_model_ref(&prop.value),
            None => checks::properties::missing(
                self,
                decl.name.span,
                "agent",
                &decl.name.name,
                "model",
                "model: fast",
            ),
        }
        if let Some(prop) = table.get("instructions") {
            self.check_expr(&prop.value, &Ty::String);
        }
        let mut tools = Vec::new();
        if let Some(prop) = table.get("tools") {
            let entries: Vec<&'a Expr> = match &prop.value.kind {
                ExprKind::List(items) => items.iter().collect(),
                _ => vec![&prop.value],
            };
            for entry in entries {
                if let Some(tool) = self.resolve_tool_ref(entry) {
                    self.program.agent_tool_uses.push((tool.key(), entry.span));
                    tools.push(tool.key());
                }
            }
        }
        let mut knowledge = Vec::new();
        if let Some(prop) = table.get("knowledge") {
            knowledge = self.resolve_knowledge_refs(&prop.value);
        }
        let info = Arc::new(AgentInfo {
            module: self.module.clone(),
            name: Arc::from(decl.name.name.as_str()),
            model,
            tools,
            knowledge,
            def: self.def(decl.name.span),
            doc,
        });
        self.program.agents.push(info.clone());
        self.agents.insert(info.name.clone(), info);
    }

    /// `model: fast` in an agent.
    fn resolve_model_ref(&mut self, value: &'a Expr) -> Option<String> {
        let ExprKind::Name(name) = &value.kind else {
            let found = self.infer(value);
            checks::type_mismatch::report_text(
                self,
                value.span,
                "a model name",
                &found.to_string(),
            );
            return None;
        };
        if let Some(model) = self.models.get(name.name.as_str()).cloned() {
            self.resolve(
                name.span,
                SymbolKind::Model,
                Some(model.def.clone()),
                Ty::Model,
            );
            return Some(name.name.clone());
        }
        let found = self.infer(value);
        if !found.is_error() {
            checks::wrong_kind::report(self, name.span, &name.name, &found, "a model");
        }
        None
    }

    /// `mail.search` or a pack tool `lookup`, written without a call.
    pub(crate) fn resolve_tool_ref(&mut self, value: &'a Expr) -> Option<Arc<ToolInfo>> {
        match &value.kind {
            ExprKind::Name(name) => {
                if let Some(tool) = self.tools.get(name.name.as_str()).cloned() {
                    self.resolve(
                        name.span,
                        SymbolKind::Tool,
                        Some(tool.def.clone()),
                        Ty::Tool,
                    );
                    return Some(tool);
                }
                let found = self.infer(value);
                if !found.is_error() {
                    checks::wrong_kind::report(self, name.span, &name.name, &found, "a tool");
                }
                None
            }
            ExprKind::Field(base, name) => {
                if let ExprKind::Name(module) = &base.kind {
                    return self.module_tool(module, name);
                }
                let found = self.infer(value);
                checks::type_mismatch::report_text(
                    self,
                    value.span,
                    "a tool such as `mail.search`",
                    &found.to_string(),
                );
                None
            }
            _ => {
                let found = self.infer(value);
                checks::type_mismatch::report_text(
                    self,
                    value.span,
                    "a tool such as `mail.search`",
                    &found.to_string(),
                );
                None
            }
        }
    }

    /// `module.tool`: resolves both parts, reporting an unknown module or tool.
    pub(crate) fn module_tool(
        &mut self,
        module: &'a Ident,
        name: &'a Ident,
    ) -> Option<Arc<ToolInfo>> {
        let Some(info) = self.imports.get(module.name.as_str()).cloned() else {
            if &*self.module == module.name.as_str()
                && let Some(tool) = self.tools.get(name.name.as_str()).cloned()
            {
                {
                    self.resolve(
                        name.span,
                        SymbolKind::Tool,
                        Some(tool.def.clone()),
                        Ty::Tool,
                    );
                    return Some(tool);
                }
            }
            checks::unknown_name::report_module(self, module);
            return None;
        };
        self.resolve(
            module.span,
            SymbolKind::Module,
            info.file.clone().map(|file| crate::program::DefSite {
                file,
                span: Span::default(),
            }),
            Ty::Module,
        );
        match info.tools.get(name.name.as_str()) {
            Some(tool) => {
                self.resolve(
                    name.span,
                    SymbolKind::Tool,
                    Some(tool.def.clone()),
                    Ty::Tool,
                );
                Some(tool.clone())
            }
            None => {
                checks::unknown_tool::report(self, &module.name, name, &info);
                None
            }
        }
    }

    /// `cite: faq` / `knowledge: [faq, docs]`.
    pub(crate) fn resolve_knowledge_refs(&mut self, value: &'a Expr) -> Vec<String> {
        let entries: Vec<&'a Expr> = match &value.kind {
            ExprKind::List(items) => items.iter().collect(),
            _ => vec![value],
        };
        let mut out = Vec::new();
        for entry in entries {
            if let ExprKind::Name(name) = &entry.kind
                && let Some(&index) = self.knowledge.get(name.name.as_str())
            {
                let def = self.program.knowledge.get(index).map(|k| k.def.clone());
                self.resolve(name.span, SymbolKind::Knowledge, def, Ty::Knowledge);
                out.push(name.name.clone());
                continue;
            }
            let found = self.infer(entry);
            if found.is_error() {
                continue;
            }
            match &entry.kind {
                ExprKind::Name(name) => checks::wrong_kind::report(
                    self,
                    name.span,
                    &name.name,
                    &found,
                    "a knowledge source",
                ),
                _ => checks::type_mismatch::report_text(
                    self,
                    entry.span,
                    "a knowledge source name",
                    &found.to_string(),
                ),
            }
        }
        out
    }
}

/// The type a reference to an imported declared type denotes.
fn imported_type_ty(info: &TypeInfo) -> Ty {
    match &info.alias {
        Some(alias) => alias.clone(),
        None => Ty::Named(NamedTy {
            module: info.module.clone(),
            name: info.name.clone(),
            cited: false,
        }),
    }
}

/// The text of a plain (hole-free) string literal.
pub(crate) fn plain_string(expr: &Expr) -> Option<String> {
    match &expr.kind {
        ExprKind::Str(lit) => lit.as_plain(),
        _ => None,
    }
}

/// The milliseconds of a duration literal.
pub(crate) fn duration_ms(expr: &Expr) -> Option<u64> {
    match expr.kind {
        ExprKind::Duration(ms) => Some(ms),
        _ => None,
    }
}

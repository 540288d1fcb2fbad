//! Expressions: name resolution and type inference, checked against an expected type where
//! one is known (so literals such as `"billing"` and `{ ... }` are checked in context).

use crate::fast_hash::FastMap;
use std::sync::Arc;

use dsl_syntax::Span;
use dsl_syntax::ast::{Arg, BinaryOp, Expr, ExprKind, Ident, Prop, StrPart, UnaryOp};

use super::Checker;
use crate::checks;
use crate::program::{DefSite, SymbolKind, ToolCallSite, ToolInfo, TypeInfo};
use crate::ty::{NamedTy, Ty};

/// Built-in functions, for suggestions and name lookup.
pub const BUILTINS: &[&str] = &[
    "avg", "contains", "count", "file", "first", "flatten", "join", "last", "len", "lower", "max",
    "min", "round", "secret", "string", "sum", "upper",
];

impl<'a> Checker<'a> {
    /// Checks `expr` against `expected`, reporting a mismatch.
    pub(crate) fn check_expr(&mut self, expr: &'a Expr, expected: &Ty) {
        let target = expected.strip_optional();
        match (&expr.kind, target) {
            (ExprKind::Str(lit), Ty::Union(options)) if lit.as_plain().is_some() => {
                if let Some(text) = lit.as_plain()
                    && !options.iter().any(|o| **o == *text)
                {
                    checks::type_mismatch::not_in_union(self, expr.span, &text, target);
                }
            }
            (ExprKind::List(items), Ty::List(elem)) => {
                let elem = (**elem).clone();
                for item in items {
                    self.check_expr(item, &elem);
                }
            }
            (ExprKind::Record(props), Ty::Named(named)) => match self.lookup_type(named) {
                Some(info) if info.alias.is_none() => {
                    self.check_record_literal(expr, props, &info, named)
                }
                _ => {
                    self.infer(expr);
                }
            },
            (ExprKind::Record(props), Ty::Record(fields)) => {
                let fields = fields.clone();
                self.check_record_against(expr, props, &fields, &target.to_string());
            }
            (ExprKind::Record(props), Ty::Map(_, value)) => {
                let value = (**value).clone();
                let mut seen: FastMap<&str, Span> = FastMap::default();
                for prop in props {
                    checks::duplicates::check(self, &mut seen, &prop.key, "key");
                    self.check_expr(&prop.value, &value);
                }
            }
            (ExprKind::None, _) if matches!(expected, Ty::Optional(_)) => {}
            _ => {
                let found = self.infer(expr);
                if !expected.accepts(&found) {
                    checks::type_mismatch::report(self, expr.span, expected, &found);
                }
            }
        }
    }

    fn check_record_literal(
        &mut self,
        expr: &'a Expr,
        props: &'a [Prop],
        info: &Arc<TypeInfo>,
        named: &NamedTy,
    ) {
        let mut seen: FastMap<&str, Span> = FastMap::default();
        for prop in props {
            if !checks::duplicates::check(self, &mut seen, &prop.key, "field") {
                continue;
            }
            match info.field(&prop.key.name) {
                Some(field) => {
                    self.resolve(
                        prop.key.span,
                        SymbolKind::Field,
                        Some(field.def.clone()),
                        field.ty.clone(),
                    );
                    self.check_expr(&prop.value, &field.ty);
                }
                None => {
                    if named.cited && prop.key.name == "citations" {
                        self.infer(&prop.value);
                        continue;
                    }
                    checks::unknown_field::report(self, &prop.key, &Ty::Named(named.clone()), info);
                    self.infer(&prop.value);
                }
            }
        }
        for field in &info.fields {
            if field.is_required() && !seen.contains_key(&*field.name) {
                checks::arguments::missing_field(
                    self,
                    expr.span,
                    &field.name,
                    &Ty::Named(named.clone()),
                );
            }
        }
    }

    fn check_record_against(
        &mut self,
        expr: &'a Expr,
        props: &'a [Prop],
        fields: &[(Arc<str>, Ty)],
        display: &str,
    ) {
        let mut seen: FastMap<&str, Span> = FastMap::default();
        for prop in props {
            if !checks::duplicates::check(self, &mut seen, &prop.key, "field") {
                continue;
            }
            match fields.iter().find(|(name, _)| **name == *prop.key.name) {
                Some((_, ty)) => self.check_expr(&prop.value, ty),
                None => {
                    let names: Vec<&str> = fields.iter().map(|(n, _)| &**n).collect();
                    checks::unknown_field::report_names(self, &prop.key, display, &names);
                    self.infer(&prop.value);
                }
            }
        }
        for (name, ty) in fields {
            if !seen.contains_key(&**name) && !matches!(ty, Ty::Optional(_)) {
                checks::arguments::missing_field_text(self, expr.span, name, display);
            }
        }
    }

    /// Infers the type of `expr`, resolving every name in it.
    pub(crate) fn infer(&mut self, expr: &'a Expr) -> Ty {
        match &expr.kind {
            ExprKind::Int(_) => Ty::Int,
            ExprKind::Float(_) => Ty::Float,
            ExprKind::Bool(_) => Ty::Bool,
            ExprKind::None => Ty::None,
            ExprKind::Str(lit) => {
                for part in &lit.parts {
                    if let StrPart::Hole(hole) = part {
                        let ty = self.infer(hole);
                        if !ty.is_printable() {
                            checks::interpolation::report(self, hole, &ty);
                        }
                    }
                }
                Ty::String
            }
            ExprKind::Duration(_) => Ty::Duration,
            ExprKind::Money { .. } => Ty::Money,
            ExprKind::Name(name) => self.infer_name(name),
            ExprKind::Field(base, name) => self.infer_field(base, name),
            ExprKind::Index(base, index) => {
                let base_ty = self.infer(base);
                let index_ty = self.infer(index);
                match base_ty.strip_optional() {
                    Ty::List(elem) => {
                        if !Ty::Int.accepts(&index_ty) {
                            checks::type_mismatch::report(self, index.span, &Ty::Int, &index_ty);
                        }
                        (**elem).clone()
                    }
                    Ty::Map(key, value) => {
                        if !key.accepts(&index_ty) {
                            checks::type_mismatch::report(self, index.span, key, &index_ty);
                        }
                        (**value).clone()
                    }
                    Ty::Json | Ty::Error => Ty::Json,
                    other => {
                        let other = other.clone();
                        checks::operators::cannot_index(self, expr.span, &other);
                        Ty::Error
                    }
                }
            }
            ExprKind::Call(callee, args) => self.infer_call(expr, callee, args),
            ExprKind::List(items) => {
                let mut elem: Option<Ty> = None;
                for item in items {
                    match &elem {
                        None => {
                            let ty = self.infer(item);
                            if !ty.is_error() && !matches!(ty, Ty::None) {
                                elem = Some(ty);
                            }
                        }
                        Some(expected) => {
                            let expected = expected.clone();
                            let found = self.infer(item);
                            if !expected.accepts(&found) {
                                if found.accepts(&expected) {
                                    elem = Some(found);
                                } else {
                                    checks::type_mismatch::report(
                                        self, item.span, &expected, &found,
                                    );
                                }
                            }
                        }
                    }
                }
                Ty::list(elem.unwrap_or(Ty::Error))
            }
            ExprKind::Record(props) => {
                let mut seen: FastMap<&str, Span> = FastMap::default();
                let mut fields = Vec::with_capacity(props.len());
                for prop in props {
                    let ty = self.infer(&prop.value);
                    if checks::duplicates::check(self, &mut seen, &prop.key, "field") {
                        fields.push((Arc::from(prop.key.name.as_str()), ty));
                    }
                }
                Ty::Record(fields.into())
            }
            ExprKind::Unary(op, operand) => {
                let ty = self.infer(operand);
                match (op, ty.strip_optional()) {
                    (_, Ty::Error) => Ty::Error,
                    (_, Ty::Json) => Ty::Json,
                    (UnaryOp::Not, Ty::Bool) => Ty::Bool,
                    (UnaryOp::Neg, t @ (Ty::Int | Ty::Float | Ty::Duration | Ty::Money)) => {
                        t.clone()
                    }
                    (op, _) => {
                        checks::operators::unary(self, expr.span, *op, &ty);
                        Ty::Error
                    }
                }
            }
            ExprKind::Binary(op, left, right) => self.infer_binary(expr, *op, left, right),
            ExprKind::Error => Ty::Error,
        }
    }

    fn infer_binary(
        &mut self,
        expr: &'a Expr,
        op: BinaryOp,
        left: &'a Expr,
        right: &'a Expr,
    ) -> Ty {
        let left_ty = self.infer(left);
        let right_ty = self.infer(right);
        if matches!(op, BinaryOp::Eq | BinaryOp::Ne) {
            // `t.category == "spam"`: check the literal against the union.
            for (side, other) in [(left, &right_ty), (right, &left_ty)] {
                if let (ExprKind::Str(lit), Ty::Union(_)) = (&side.kind, other.strip_optional())
                    && let Some(text) = lit.as_plain()
                    && let Ty::Union(options) = other.strip_optional()
                    && !options.iter().any(|o| **o == *text)
                {
                    checks::type_mismatch::not_in_union(
                        self,
                        side.span,
                        &text,
                        other.strip_optional(),
                    );
                    return Ty::Bool;
                }
            }
        }
        match checks::operators::binary_result(op, &left_ty, &right_ty) {
            Some(ty) => ty,
            None => {
                checks::operators::binary(self, expr.span, op, &left_ty, &right_ty);
                if op.is_comparison() || matches!(op, BinaryOp::And | BinaryOp::Or) {
                    Ty::Bool
                } else {
                    Ty::Error
                }
            }
        }
    }

    /// A bare name in value position.
    pub(crate) fn infer_name(&mut self, name: &'a Ident) -> Ty {
        let text = name.name.as_str();
        if let Some(local) = self.locals.iter().rev().find(|l| &*l.name == text) {
            let (ty, kind, def) = (local.ty.clone(), local.kind, local.def.clone());
            self.resolve(name.span, kind, def, ty.clone());
            return ty;
        }
        if let Some(&index) = self.steps.get(text) {
            return self.step_ref(name, index);
        }
        if text == "input" && !self.is_module {
            let fields: Vec<(Arc<str>, Ty)> = self
                .program
                .inputs
                .iter()
                .map(|i| (i.field.name.clone(), i.field.ty.clone()))
                .collect();
            for input in &mut self.program.inputs {
                input.used = true;
            }
            return Ty::Record(fields.into());
        }
        if let Some(agent) = self.agents.get(text) {
            let def = agent.def.clone();
            self.resolve(name.span, SymbolKind::Agent, Some(def), Ty::Agent);
            return Ty::Agent;
        }
        if let Some(model) = self.models.get(text) {
            let def = model.def.clone();
            self.resolve(name.span, SymbolKind::Model, Some(def), Ty::Model);
            return Ty::Model;
        }
        if let Some(&index) = self.knowledge.get(text) {
            let def = self.program.knowledge.get(index).map(|k| k.def.clone());
            self.resolve(name.span, SymbolKind::Knowledge, def, Ty::Knowledge);
            return Ty::Knowledge;
        }
        if let Some(module) = self.imports.get(text) {
            let def = module.file.clone().map(|file| DefSite {
                file,
                span: Span::default(),
            });
            self.resolve(name.span, SymbolKind::Module, def, Ty::Module);
            return Ty::Module;
        }
        if let Some(tool) = self.tools.get(text) {
            let def = tool.def.clone();
            self.resolve(name.span, SymbolKind::Tool, Some(def), Ty::Tool);
            return Ty::Tool;
        }
        checks::unknown_name::report(self, name);
        Ty::Error
    }

    fn step_ref(&mut self, name: &'a Ident, index: usize) -> Ty {
        let ty = self
            .step_types
            .get(index)
            .cloned()
            .flatten()
            .unwrap_or(Ty::Error);
        if self.current_step != Some(index)
            && let Some(step) = self.program.steps.get_mut(index)
        {
            step.referenced = true;
        }
        let def = self.program.steps.get(index).map(|s| s.def.clone());
        self.resolve(name.span, SymbolKind::Step, def, ty.clone());
        ty
    }

    /// Every value name visible here, sorted, for suggestions.
    /// Every name a value may be written with here, in no particular order (duplicates
    /// possible): the candidates for "did you mean".
    pub(crate) fn visible_value_names(&self) -> impl Iterator<Item = &str> {
        self.locals
            .iter()
            .map(|l| &*l.name)
            .chain(self.steps.keys().map(|k| &**k))
            .chain(self.agents.keys().map(|k| &**k))
            .chain(self.models.keys().map(|k| &**k))
            .chain(self.knowledge.keys().map(|k| &**k))
            .chain(self.imports.keys().map(|k| &**k))
            .chain(self.tools.keys().map(|k| &**k))
            .chain((!self.is_module).then_some("input"))
    }

    fn is_local(&self, name: &str) -> bool {
        self.locals.iter().any(|l| &*l.name == name)
    }

    fn infer_field(&mut self, base: &'a Expr, name: &'a Ident) -> Ty {
        if let ExprKind::Name(root) = &base.kind {
            let text = root.name.as_str();
            if text == "input"
                && !self.is_module
                && !self.is_local(text)
                && !self.steps.contains_key(text)
            {
                return self.input_ref(root, name);
            }
            if !self.is_local(text)
                && !self.steps.contains_key(text)
                && let Some(module) = self.imports.get(text).cloned()
            {
                if let Some(tool) = module.tools.get(name.name.as_str()) {
                    let def = module.file.clone().map(|file| DefSite {
                        file,
                        span: Span::default(),
                    });
                    self.resolve(root.span, SymbolKind::Module, def, Ty::Module);
                    let tool_def = tool.def.clone();
                    self.resolve(name.span, SymbolKind::Tool, Some(tool_def), Ty::Tool);
                    return Ty::Tool;
                }
                self.module_tool(root, name);
                return Ty::Error;
            }
        }
        let base_ty = self.infer(base);
        self.field_of(&base_ty, name)
    }

    fn input_ref(&mut self, root: &'a Ident, name: &'a Ident) -> Ty {
        self.resolve(root.span, SymbolKind::Input, None, Ty::Json);
        match self.inputs.get(name.name.as_str()).copied() {
            Some(index) => match self.program.inputs.get_mut(index) {
                Some(input) => {
                    input.used = true;
                    let (ty, def) = (input.field.ty.clone(), input.field.def.clone());
                    self.resolve(name.span, SymbolKind::Input, Some(def), ty.clone());
                    ty
                }
                None => Ty::Error,
            },
            None => {
                checks::unknown_name::report_input(self, name);
                Ty::Error
            }
        }
    }

    /// The type of `base.name` for a base of type `base_ty`.
    pub(crate) fn field_of(&mut self, base_ty: &Ty, name: &'a Ident) -> Ty {
        match base_ty {
            Ty::Error => Ty::Error,
            Ty::Json => Ty::Json,
            Ty::Optional(inner) => {
                let inner = (**inner).clone();
                Ty::optional(self.field_of(&inner, name))
            }
            Ty::Named(named) => {
                let Some(info) = self.lookup_type(named) else {
                    return Ty::Error;
                };
                if let Some(field) = info.field(&name.name) {
                    self.resolve(
                        name.span,
                        SymbolKind::Field,
                        Some(field.def.clone()),
                        field.ty.clone(),
                    );
                    return field.ty.clone();
                }
                if named.cited && name.name == "citations" {
                    return Ty::list(self.citation_ty());
                }
                checks::unknown_field::report(self, name, base_ty, &info);
                Ty::Error
            }
            Ty::Record(fields) => match fields.iter().find(|(n, _)| **n == *name.name) {
                Some((_, ty)) => ty.clone(),
                None => {
                    let names: Vec<&str> = fields.iter().map(|(n, _)| &**n).collect();
                    checks::unknown_field::report_names(self, name, &base_ty.to_string(), &names);
                    Ty::Error
                }
            },
            Ty::Map(_, value) => (**value).clone(),
            other => {
                checks::unknown_field::report_names(self, name, &other.to_string(), &[]);
                Ty::Error
            }
        }
    }

    /// The declaration of a named type, this file's or an imported module's.
    pub(crate) fn lookup_type(&self, named: &NamedTy) -> Option<Arc<TypeInfo>> {
        if named.module == self.module {
            return self.types.get(&named.name).cloned();
        }
        self.program
            .foreign_types
            .get(&(named.module.clone(), named.name.clone()))
            .cloned()
    }

    /// `core.Citation`.
    pub(crate) fn citation_ty(&self) -> Ty {
        Ty::Named(NamedTy {
            module: Arc::from("core"),
            name: Arc::from("Citation"),
            cited: false,
        })
    }

    /// `core.Critique`.
    pub(crate) fn critique_ty(&self) -> Ty {
        Ty::Named(NamedTy {
            module: Arc::from("core"),
            name: Arc::from("Critique"),
            cited: false,
        })
    }

    fn infer_call(&mut self, expr: &'a Expr, callee: &'a Expr, args: &'a [Arg]) -> Ty {
        match &callee.kind {
            ExprKind::Name(name) => {
                let text = name.name.as_str();
                let shadowed = self.is_local(text) || self.steps.contains_key(text);
                if !shadowed && let Some(tool) = self.tools.get(text).cloned() {
                    self.resolve(
                        name.span,
                        SymbolKind::Tool,
                        Some(tool.def.clone()),
                        Ty::Tool,
                    );
                    return self.call_tool(&tool, args, expr.span);
                }
                if !shadowed && BUILTINS.contains(&text) {
                    self.resolve(name.span, SymbolKind::Builtin, None, Ty::Tool);
                    return self.call_builtin(expr, name, args);
                }
                if self.is_local(text)
                    || self.steps.contains_key(text)
                    || self.agents.contains_key(text)
                    || self.models.contains_key(text)
                    || self.knowledge.contains_key(text)
                    || self.imports.contains_key(text)
                {
                    let ty = self.infer_name(name);
                    checks::wrong_kind::not_callable(self, name, &ty);
                } else {
                    checks::unknown_name::report_callee(self, name);
                }
                self.infer_args_loose(args);
                Ty::Error
            }
            ExprKind::Field(base, name) => {
                if let ExprKind::Name(root) = &base.kind
                    && !self.is_local(&root.name)
                    && !self.steps.contains_key(root.name.as_str())
                    && (self.imports.contains_key(root.name.as_str()) || *self.module == *root.name)
                {
                    return match self.module_tool(root, name) {
                        Some(tool) => self.call_tool(&tool, args, expr.span),
                        None => {
                            self.infer_args_loose(args);
                            Ty::Error
                        }
                    };
                }
                let ty = self.infer(callee);
                if !ty.is_error() {
                    checks::wrong_kind::not_callable_expr(self, callee.span, &ty);
                }
                self.infer_args_loose(args);
                Ty::Error
            }
            _ => {
                let ty = self.infer(callee);
                if !ty.is_error() {
                    checks::wrong_kind::not_callable_expr(self, callee.span, &ty);
                }
                self.infer_args_loose(args);
                Ty::Error
            }
        }
    }

    /// Infers arguments of a call that could not be resolved, so names in them still resolve.
    pub(crate) fn infer_args_loose(&mut self, args: &'a [Arg]) {
        for arg in args {
            self.infer(&arg.value);
        }
    }

    /// A call of a tool: arguments against parameters; records the call site.
    pub(crate) fn call_tool(&mut self, tool: &Arc<ToolInfo>, args: &'a [Arg], span: Span) -> Ty {
        checks::arguments::check_tool_args(self, tool, args, span);
        if let Some(index) = self.current_step
            && let Some(step) = self.program.steps.get_mut(index)
        {
            step.calls.push(ToolCallSite {
                tool: tool.key(),
                scope: tool.scope,
                span,
                nested: self.body_depth > 0,
            });
        }
        if self.current_step.is_some() {
            self.program.flow_tool_uses.push((tool.key(), span));
        }
        tool.result.clone()
    }

    fn call_builtin(&mut self, expr: &'a Expr, name: &'a Ident, args: &'a [Arg]) -> Ty {
        checks::builtins::check(self, expr, name, args)
    }
}

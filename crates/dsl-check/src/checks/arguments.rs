//! Call arguments and record fields: GX0303 (unknown argument name), GX0304 (missing
//! required argument or field), GX0305 (positional after named, or too many).

use std::sync::Arc;

use dsl_syntax::ast::Arg;
use dsl_syntax::{Diagnostic, Span};

use super::{name_list, with_suggestion};
use crate::checker::Checker;
use crate::program::{SymbolKind, ToolInfo};
use crate::ty::Ty;

/// Checks a tool call's arguments against its parameters.
pub(crate) fn check_tool_args<'a>(
    checker: &mut Checker<'a>,
    tool: &Arc<ToolInfo>,
    args: &'a [Arg],
    span: Span,
) {
    let mut given = vec![false; tool.params.len()];
    let mut seen_named = false;
    let mut positional = 0usize;
    for arg in args {
        match &arg.name {
            Some(name) => {
                seen_named = true;
                match tool.param(&name.name) {
                    Some((index, param)) => {
                        if given.get(index).copied().unwrap_or(false) {
                            checker.report(
                                Diagnostic::error(
                                    "GX0207",
                                    name.span,
                                    format!("duplicate argument `{}`", name.name),
                                )
                                .with_help("give each argument once"),
                            );
                        }
                        if let Some(slot) = given.get_mut(index) {
                            *slot = true;
                        }
                        checker.resolve(
                            name.span,
                            SymbolKind::Param,
                            Some(param.def.clone()),
                            param.ty.clone(),
                        );
                        checker.check_expr(&arg.value, &param.ty);
                    }
                    None => {
                        let names: Vec<&str> = tool.params.iter().map(|p| &*p.name).collect();
                        let diagnostic = Diagnostic::error(
                            "GX0303",
                            name.span,
                            format!("unknown argument `{}` of tool `{}`", name.name, tool.key()),
                        );
                        let (mut diagnostic, suggested) = with_suggestion(
                            diagnostic,
                            &name.name,
                            name.span,
                            names.iter().copied(),
                        );
                        if !suggested {
                            diagnostic = if names.is_empty() {
                                diagnostic.with_help(format!("`{}` takes no arguments", tool.key()))
                            } else {
                                diagnostic.with_help(format!(
                                    "`{}` takes {}",
                                    tool.key(),
                                    name_list(names.iter().copied())
                                ))
                            };
                        }
                        checker.report(diagnostic);
                        checker.infer(&arg.value);
                    }
                }
            }
            None => {
                let index = positional;
                positional += 1;
                if seen_named {
                    checker.report(
                        Diagnostic::error(
                            "GX0305",
                            arg.span,
                            "positional argument after a named one",
                        )
                        .with_help("name this argument too, or move it before the named ones"),
                    );
                    checker.infer(&arg.value);
                    continue;
                }
                match tool.params.get(index) {
                    Some(param) => {
                        if let Some(slot) = given.get_mut(index) {
                            *slot = true;
                        }
                        checker.check_expr(&arg.value, &param.ty);
                    }
                    None => {
                        checker.report(
                            Diagnostic::error(
                                "GX0305",
                                arg.span,
                                format!("too many arguments for tool `{}`", tool.key()),
                            )
                            .with_help(format!(
                                "`{}` takes {} argument(s)",
                                tool.key(),
                                tool.params.len()
                            )),
                        );
                        checker.infer(&arg.value);
                    }
                }
            }
        }
    }
    let missing: Vec<String> = tool
        .params
        .iter()
        .zip(given.iter())
        .filter(|(param, given)| !**given && param.is_required())
        .map(|(param, _)| format!("{}: {}", param.name, param.ty))
        .collect();
    if !missing.is_empty() {
        let names = missing
            .iter()
            .map(|m| format!("`{m}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let plural = if missing.len() == 1 { "" } else { "s" };
        checker.report(
            Diagnostic::error(
                "GX0304",
                span,
                format!(
                    "missing required argument{plural} {names} of tool `{}`",
                    tool.key()
                ),
            )
            .with_help(format!("add {names}")),
        );
    }
}

/// A record literal missing a required field of its declared type.
pub(crate) fn missing_field(checker: &mut Checker<'_>, span: Span, field: &str, ty: &Ty) {
    missing_field_text(checker, span, field, &ty.to_string());
}

/// The same, for a type given by its display text.
pub(crate) fn missing_field_text(checker: &mut Checker<'_>, span: Span, field: &str, ty: &str) {
    checker.report(
        Diagnostic::error(
            "GX0304",
            span,
            format!("missing required field `{field}` of `{ty}`"),
        )
        .with_help(format!("add `{field}: ...` to the record")),
    );
}

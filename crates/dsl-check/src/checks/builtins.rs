//! The built-in functions (`count`, `join`, `secret`, ...): their arity and types. Wrong
//! argument types are GX0301, wrong counts GX0304/GX0305, named arguments GX0303.

use dsl_syntax::Diagnostic;
use dsl_syntax::ast::{Arg, Expr, ExprKind, Ident};

use crate::checker::Checker;
use crate::ty::Ty;

/// (name, number of arguments, signature for help lines)
const SIGNATURES: &[(&str, usize, &str)] = &[
    ("avg", 1, "avg(list of numbers) -> Float"),
    ("contains", 2, "contains(list or string, value) -> Bool"),
    ("count", 1, "count(list) -> Int"),
    ("file", 1, "file(\"path\") -> Json"),
    ("first", 1, "first(list) -> element?"),
    ("flatten", 1, "flatten(list of lists) -> list"),
    ("join", 2, "join(list, separator) -> String"),
    ("last", 1, "last(list) -> element?"),
    ("len", 1, "len(list or string) -> Int"),
    ("lower", 1, "lower(String) -> String"),
    ("max", 1, "max(list) -> element"),
    ("min", 1, "min(list) -> element"),
    ("round", 1, "round(number) -> Int"),
    ("secret", 1, "secret(\"NAME\") -> Secret"),
    ("string", 1, "string(value) -> String"),
    ("sum", 1, "sum(list of numbers) -> number"),
    ("upper", 1, "upper(String) -> String"),
];

fn expect_list(checker: &mut Checker<'_>, arg: &Expr, ty: &Ty) -> Ty {
    match ty.list_elem() {
        Some(elem) => elem,
        None => {
            super::type_mismatch::report_text(checker, arg.span, "a list", &ty.to_string());
            Ty::Error
        }
    }
}

fn summable(checker: &mut Checker<'_>, arg: &Expr, elem: &Ty) {
    if !matches!(
        elem.strip_optional(),
        Ty::Int | Ty::Float | Ty::Money | Ty::Duration | Ty::Json | Ty::Error
    ) {
        super::type_mismatch::report_text(
            checker,
            arg.span,
            "a list of numbers, durations or money",
            &Ty::list(elem.clone()).to_string(),
        );
    }
}

/// Checks a call of the built-in `name`; returns its result type.
pub(crate) fn check<'a>(
    checker: &mut Checker<'a>,
    call: &'a Expr,
    name: &'a Ident,
    args: &'a [Arg],
) -> Ty {
    let Some(&(_, arity, signature)) = SIGNATURES.iter().find(|(n, _, _)| *n == name.name) else {
        checker.infer_args_loose(args);
        return Ty::Error;
    };
    let mut tys = Vec::with_capacity(args.len());
    for (index, arg) in args.iter().enumerate() {
        if let Some(arg_name) = &arg.name {
            checker.report(
                Diagnostic::error(
                    "GX0303",
                    arg_name.span,
                    format!("built-in `{}` takes no named arguments", name.name),
                )
                .with_help(signature.to_string()),
            );
        }
        if index >= arity {
            checker.report(
                Diagnostic::error(
                    "GX0305",
                    arg.span,
                    format!("too many arguments for `{}`", name.name),
                )
                .with_help(signature.to_string()),
            );
        }
        // `secret("NAME")` and `file("path")` take a literal; check it without inferring holes.
        tys.push(checker.infer(&arg.value));
    }
    if args.len() < arity {
        checker.report(
            Diagnostic::error(
                "GX0304",
                call.span,
                format!("missing argument for `{}`", name.name),
            )
            .with_help(signature.to_string()),
        );
        return match name.name.as_str() {
            "count" | "len" | "round" => Ty::Int,
            "contains" => Ty::Bool,
            "join" | "lower" | "upper" | "string" => Ty::String,
            "secret" => Ty::Secret,
            _ => Ty::Error,
        };
    }
    let (Some(first_arg), Some(first)) = (args.first(), tys.first().cloned()) else {
        return Ty::Error;
    };
    match name.name.as_str() {
        "count" => {
            expect_list(checker, &first_arg.value, &first);
            Ty::Int
        }
        "len" => {
            if !first.strip_optional().is_stringish() && first.list_elem().is_none() {
                super::type_mismatch::report_text(
                    checker,
                    first_arg.value.span,
                    "a list or a string",
                    &first.to_string(),
                );
            }
            Ty::Int
        }
        "sum" => {
            let elem = expect_list(checker, &first_arg.value, &first);
            summable(checker, &first_arg.value, &elem);
            elem.strip_optional().clone()
        }
        "avg" => {
            let elem = expect_list(checker, &first_arg.value, &first);
            summable(checker, &first_arg.value, &elem);
            match elem.strip_optional() {
                Ty::Money => Ty::Money,
                Ty::Duration => Ty::Duration,
                _ => Ty::Float,
            }
        }
        "min" | "max" => expect_list(checker, &first_arg.value, &first),
        "first" | "last" => Ty::optional(expect_list(checker, &first_arg.value, &first)),
        "flatten" => {
            let elem = expect_list(checker, &first_arg.value, &first);
            match elem.list_elem() {
                Some(inner) => Ty::list(inner),
                None => {
                    super::type_mismatch::report_text(
                        checker,
                        first_arg.value.span,
                        "a list of lists",
                        &first.to_string(),
                    );
                    Ty::Error
                }
            }
        }
        "join" => {
            let elem = expect_list(checker, &first_arg.value, &first);
            if !elem.is_printable() && !elem.is_error() {
                super::type_mismatch::report_text(
                    checker,
                    first_arg.value.span,
                    "a list of printable values",
                    &first.to_string(),
                );
            }
            if let (Some(sep), Some(sep_ty)) = (args.get(1), tys.get(1))
                && !Ty::String.accepts(sep_ty)
            {
                super::type_mismatch::report(checker, sep.value.span, &Ty::String, sep_ty);
            }
            Ty::String
        }
        "contains" => {
            if let (Some(needle), Some(needle_ty)) = (args.get(1), tys.get(1)) {
                match first.strip_optional() {
                    t if t.is_stringish() => {
                        if !Ty::String.accepts(needle_ty) {
                            super::type_mismatch::report(
                                checker,
                                needle.value.span,
                                &Ty::String,
                                needle_ty,
                            );
                        }
                    }
                    Ty::List(elem) => {
                        if !elem.accepts(needle_ty) && !needle_ty.accepts(elem) {
                            super::type_mismatch::report(
                                checker,
                                needle.value.span,
                                elem,
                                needle_ty,
                            );
                        }
                    }
                    Ty::Json | Ty::Error => {}
                    other => {
                        let other = other.to_string();
                        super::type_mismatch::report_text(
                            checker,
                            first_arg.value.span,
                            "a list or a string",
                            &other,
                        );
                    }
                }
            }
            Ty::Bool
        }
        "lower" | "upper" => {
            if !Ty::String.accepts(&first) {
                super::type_mismatch::report(checker, first_arg.value.span, &Ty::String, &first);
            }
            Ty::String
        }
        "round" => {
            if !Ty::Float.accepts(&first) {
                super::type_mismatch::report(checker, first_arg.value.span, &Ty::Float, &first);
            }
            Ty::Int
        }
        "string" => Ty::String,
        "secret" | "file" => {
            let is_plain =
                matches!(&first_arg.value.kind, ExprKind::Str(lit) if lit.as_plain().is_some());
            if !is_plain {
                super::type_mismatch::report_text(
                    checker,
                    first_arg.value.span,
                    &format!(
                        "a plain string literal naming the {}",
                        if name.name == "secret" {
                            "secret"
                        } else {
                            "file"
                        }
                    ),
                    &first.to_string(),
                );
            }
            if name.name == "secret" {
                Ty::Secret
            } else {
                Ty::Json
            }
        }
        _ => Ty::Error,
    }
}

//! Model providers (`openai("gpt-4.1-mini")`) and knowledge sources (`files("...")`):
//! an unknown provider is GX0201, a provider call without a model name GX0307, a
//! literal key GX0404.

use dsl_syntax::Diagnostic;
use dsl_syntax::ast::{Arg, Expr, ExprKind};

use super::{name_list, with_suggestion};
use crate::checker::Checker;
use crate::ty::Ty;

/// The model providers.
pub(crate) const PROVIDERS: &[&str] = &["anthropic", "openai", "openai_compatible"];
/// The knowledge source kinds.
pub(crate) const KNOWLEDGE_SOURCES: &[&str] = &["files", "urls"];

/// Checks `provider("model", named: ...)`; returns the provider and model names.
pub(crate) fn check_provider_call<'a>(
    checker: &mut Checker<'a>,
    call: &'a Expr,
) -> (Option<String>, Option<String>) {
    let ExprKind::Call(callee, args) = &call.kind else {
        let found = checker.infer(call);
        super::type_mismatch::report_text(
            checker,
            call.span,
            "a provider call such as `openai(\"gpt-4.1-mini\")`",
            &found.to_string(),
        );
        return (None, None);
    };
    let ExprKind::Name(provider) = &callee.kind else {
        checker.infer_args_loose(args);
        super::type_mismatch::report_text(checker, callee.span, "a provider name", "an expression");
        return (None, None);
    };
    if !PROVIDERS.contains(&provider.name.as_str()) {
        let diagnostic = Diagnostic::error(
            "GX0201",
            provider.span,
            format!("unknown model provider `{}`", provider.name),
        );
        let (diagnostic, suggested) = with_suggestion(
            diagnostic,
            &provider.name,
            provider.span,
            PROVIDERS.iter().copied(),
        );
        let diagnostic = if suggested {
            diagnostic
        } else {
            diagnostic.with_help(format!(
                "the providers are {}",
                name_list(PROVIDERS.iter().copied())
            ))
        };
        checker.report(diagnostic);
        checker.infer_args_loose(args);
        return (None, None);
    }
    let mut model = None;
    let mut positional = 0;
    let mut base_url = false;
    for arg in args {
        match &arg.name {
            None => {
                positional += 1;
                if positional == 1 {
                    checker.check_expr(&arg.value, &Ty::String);
                    model = crate::checker::plain_string(&arg.value);
                } else {
                    checker.infer(&arg.value);
                    too_many(checker, arg);
                }
            }
            Some(name) => match name.name.as_str() {
                "base_url" if provider.name == "openai_compatible" => {
                    base_url = true;
                    checker.check_expr(&arg.value, &Ty::String);
                }
                "api_key" => {
                    super::secrets::check_secret_expr(checker, &name.name, &arg.value);
                }
                _ => {
                    let allowed: &[&str] = if provider.name == "openai_compatible" {
                        &["base_url", "api_key"]
                    } else {
                        &["api_key"]
                    };
                    let diagnostic = Diagnostic::error(
                        "GX0303",
                        name.span,
                        format!(
                            "unknown argument `{}` of provider `{}`",
                            name.name, provider.name
                        ),
                    );
                    let (diagnostic, _) =
                        with_suggestion(diagnostic, &name.name, name.span, allowed.iter().copied());
                    checker.report(diagnostic);
                    checker.infer(&arg.value);
                }
            },
        }
    }
    if positional == 0 {
        checker.report(
            Diagnostic::error(
                "GX0307",
                call.span,
                format!("provider `{}` is missing the model name", provider.name),
            )
            .with_help(format!(
                "name the provider's model: `{}(\"MODEL\")`",
                provider.name
            )),
        );
    }
    if provider.name == "openai_compatible" && !base_url {
        checker.report(
            Diagnostic::error(
                "GX0307",
                call.span,
                "provider `openai_compatible` is missing the required argument `base_url`",
            )
            .with_help("add `base_url: \"http://127.0.0.1:8080/v1\"`"),
        );
    }
    (Some(provider.name.clone()), model)
}

fn too_many(checker: &mut Checker<'_>, arg: &Arg) {
    checker.report(
        Diagnostic::error("GX0305", arg.span, "too many arguments")
            .with_help("a provider takes one model name"),
    );
}

/// Checks `files("glob")` / `urls(["..."])`.
pub(crate) fn check_knowledge_source<'a>(checker: &mut Checker<'a>, source: &'a Expr) {
    let ExprKind::Call(callee, args) = &source.kind else {
        let found = checker.infer(source);
        super::type_mismatch::report_text(
            checker,
            source.span,
            "a knowledge source such as `files(\"docs/*.md\")`",
            &found.to_string(),
        );
        return;
    };
    let ExprKind::Name(kind) = &callee.kind else {
        checker.infer_args_loose(args);
        return;
    };
    let expected = match kind.name.as_str() {
        "files" => Ty::String,
        "urls" => Ty::list(Ty::String),
        _ => {
            let diagnostic = Diagnostic::error(
                "GX0201",
                kind.span,
                format!("unknown knowledge source `{}`", kind.name),
            );
            let (diagnostic, suggested) = with_suggestion(
                diagnostic,
                &kind.name,
                kind.span,
                KNOWLEDGE_SOURCES.iter().copied(),
            );
            let diagnostic = if suggested {
                diagnostic
            } else {
                diagnostic.with_help("use `files(\"glob\")` or `urls([\"https://...\"])`")
            };
            checker.report(diagnostic);
            checker.infer_args_loose(args);
            return;
        }
    };
    let mut iter = args.iter();
    match iter.next() {
        Some(first) if first.name.is_none() => checker.check_expr(&first.value, &expected),
        Some(first) => {
            checker.infer(&first.value);
            checker.report(Diagnostic::error(
                "GX0303",
                first.span,
                format!("`{}` takes one positional argument", kind.name),
            ));
        }
        None => checker.report(
            Diagnostic::error(
                "GX0304",
                source.span,
                format!("`{}` is missing its argument", kind.name),
            )
            .with_help(format!(
                "write `{}(...)` with the location of the documents",
                kind.name
            )),
        ),
    }
    for extra in iter {
        checker.infer(&extra.value);
        checker.report(Diagnostic::error(
            "GX0305",
            extra.span,
            "too many arguments",
        ));
    }
}

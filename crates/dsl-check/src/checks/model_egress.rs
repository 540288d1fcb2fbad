//! GX0408: a model the pack uses calls a host that the egress allowlist does not include.
//! A model call reaches its provider's API host (`api.openai.com`, `api.anthropic.com`) or
//! the host of its `base_url`; the runtime refuses every call to a host outside the list,
//! fallbacks included, so such a provider can never answer. Only packs with an
//! `egress allow [...]` rule are checked, and only models something asks (directly or
//! through an agent).

use dsl_syntax::ast::{Expr, ExprKind};
use dsl_syntax::{Diagnostic, Span};
use std::sync::Arc;

use crate::checker::Checker;
use crate::fast_hash::FastSet;
use crate::policy::model_host;

/// One provider call of a model declaration (the model itself or a fallback) and the host
/// it reaches.
#[derive(Debug, Clone)]
pub(crate) struct ModelCall {
    /// The model's name.
    pub(crate) model: Arc<str>,
    /// The span of the model's defining name.
    pub(crate) def: Span,
    /// The host the call reaches.
    pub(crate) host: String,
    /// What to point at: the `base_url` value, or the provider call.
    pub(crate) span: Span,
    /// The provider call as written in short (`openai("gpt-4.1")`), for the message.
    pub(crate) provider: String,
    /// Whether the call is one of the model's fallbacks.
    pub(crate) fallback: bool,
}

/// The host `call` (a provider call such as `openai("gpt-4.1")`) reaches, with the span to
/// report it at; `None` when it is not a provider call or its host is not known statically.
pub(crate) fn provider_call_host(call: &Expr) -> Option<(String, Span, String)> {
    let ExprKind::Call(callee, args) = &call.kind else {
        return None;
    };
    let ExprKind::Name(provider) = &callee.kind else {
        return None;
    };
    let model = args
        .iter()
        .find(|a| a.name.is_none())
        .and_then(|a| crate::checker::plain_string(&a.value))
        .unwrap_or_default();
    let shown = format!("{}(\"{model}\")", provider.name);
    let base_url = args
        .iter()
        .find(|a| a.name.as_ref().is_some_and(|n| n.name == "base_url"));
    match base_url {
        Some(arg) => {
            let host = super::request_host::url_host(&arg.value)?;
            Some((host, arg.value.span, shown))
        }
        None => {
            let host = model_host(&provider.name, None)?;
            Some((host, call.span, shown))
        }
    }
}

/// Runs the rule over the provider calls of the models something asks.
pub(crate) fn check(checker: &mut Checker<'_>) {
    if checker.policy.egress.is_none() || checker.model_calls.is_empty() {
        return;
    }
    let used = std::mem::take(&mut checker.used_models);
    let calls = std::mem::take(&mut checker.model_calls);
    let mut reported: FastSet<(Arc<str>, String)> = FastSet::default();
    for call in &calls {
        if !used.contains(&(call.def.start, call.def.end))
            || checker.policy.allows_host(&call.host)
            || !reported.insert((call.model.clone(), call.host.clone()))
        {
            continue;
        }
        let host = &call.host;
        let what = if call.fallback {
            format!("fallback `{}` of model `{}`", call.provider, call.model)
        } else {
            format!("model `{}`", call.model)
        };
        let diagnostic = Diagnostic::error(
            "GX0408",
            call.span,
            format!("{what} reaches host `{host}`, which the egress allowlist does not include"),
        )
        .with_help(format!(
            "every call to `{host}` would be refused at run time; add \"{host}\" to `egress allow`"
        ));
        let diagnostic = super::egress::with_allow_fix(checker, diagnostic, host);
        checker.report(diagnostic);
    }
    checker.model_calls = calls;
    checker.used_models = used;
}

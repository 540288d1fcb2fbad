//! A pack's policy, summarised: which tool calls need a person's approval, what is
//! auto-approved, the egress allowlist, redaction, budgets and rate limits.
//!
//! Approvals default ON: a pack with no `approve` rule behaves as if it wrote
//! `approve destructive`. Writing any `approve` rule replaces that default with exactly the
//! rules written (so `approve mail.send` alone gates only `mail.send`).

use dsl_syntax::Span;
use dsl_syntax::ast::Expr;
use serde::Serialize;

use crate::program::Scope;

/// What an `approve` or `auto approve` rule names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalTarget {
    /// `approve destructive` (covers that scope and, for `approve`, every higher one).
    Scope(Scope),
    /// `approve mail.send`.
    Tool(String),
}

/// `auto approve TARGET [when EXPR]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AutoApprove {
    /// What is auto-approved.
    pub target: ApprovalTarget,
    /// The condition; `None` means always.
    pub when: Option<Expr>,
    /// The rule's span.
    pub span: Span,
}

/// A budget limit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Budget {
    /// `usd`, `eur`, ... for money; `ms` for time; `tokens` or `calls`.
    pub unit: String,
    /// The amount in that unit (milliseconds for time).
    pub amount: f64,
    /// `run`, `step` or `item`.
    pub per: String,
}

/// A rate limit on one tool.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rate {
    /// The tool's key.
    pub tool: String,
    /// How many calls.
    pub count: i64,
    /// Per how many milliseconds.
    pub window_ms: u64,
}

/// A redaction rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Redaction {
    /// `pii`, `emails`, `phones`, `cards`, `ids`, `keys`.
    pub what: String,
    /// `model`, `trace`, `all`.
    pub before: String,
}

/// The policy of a pack.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PolicyInfo {
    /// Whether the pack wrote any `approve` rule (otherwise `approve destructive` applies).
    pub explicit_approvals: bool,
    /// The `approve` rules written.
    pub approve: Vec<ApprovalTarget>,
    /// The `auto approve` rules.
    pub auto_approve: Vec<AutoApprove>,
    /// The egress allowlist; `None` when the pack has no `egress allow` rule.
    pub egress: Option<Vec<String>>,
    /// The span of the first `egress allow [...]` list (for fixes).
    #[serde(skip)]
    pub egress_list: Option<(Span, Option<Span>)>,
    /// Redaction rules.
    pub redact: Vec<Redaction>,
    /// Budgets.
    pub budgets: Vec<Budget>,
    /// Rate limits.
    pub rates: Vec<Rate>,
}

/// Whether and how a call needs a person's approval.
#[derive(Debug, Clone, PartialEq)]
pub enum GateDecision<'p> {
    /// No approval needed (not covered, or auto-approved unconditionally).
    None,
    /// An approval gate, skipped at run time when `auto_when` holds.
    Gate {
        /// Why: `destructive`, `write`, or the tool's key.
        reason: String,
        /// The condition of a conditional `auto approve` covering the call.
        auto_when: Option<&'p Expr>,
    },
}

impl PolicyInfo {
    /// The `approve` rules in force (the default when none is written).
    pub fn effective_approvals(&self) -> Vec<ApprovalTarget> {
        if self.explicit_approvals {
            self.approve.clone()
        } else {
            vec![ApprovalTarget::Scope(Scope::Destructive)]
        }
    }

    fn approval_reason(&self, tool: &str, scope: Option<Scope>) -> Option<String> {
        let default = [ApprovalTarget::Scope(Scope::Destructive)];
        let rules: &[ApprovalTarget] = if self.explicit_approvals {
            &self.approve
        } else {
            &default
        };
        for rule in rules {
            match rule {
                ApprovalTarget::Tool(key) if key == tool => return Some(key.clone()),
                ApprovalTarget::Scope(min) if scope.is_some_and(|s| s >= *min) => {
                    return Some(
                        scope
                            .map(Scope::as_str)
                            .unwrap_or("destructive")
                            .to_string(),
                    );
                }
                _ => {}
            }
        }
        None
    }

    fn auto_rule(&self, tool: &str, scope: Option<Scope>) -> Option<&AutoApprove> {
        let covers = |rule: &&AutoApprove| match &rule.target {
            ApprovalTarget::Tool(key) => key == tool,
            ApprovalTarget::Scope(s) => scope == Some(*s),
        };
        // An unconditional rule wins over a conditional one.
        self.auto_approve
            .iter()
            .filter(covers)
            .find(|r| r.when.is_none())
            .or_else(|| self.auto_approve.iter().find(covers))
    }

    /// Whether a call of `tool` (of `scope`) stops at an approval gate.
    pub fn gate(&self, tool: &str, scope: Option<Scope>) -> GateDecision<'_> {
        let Some(reason) = self.approval_reason(tool, scope) else {
            return GateDecision::None;
        };
        match self.auto_rule(tool, scope) {
            Some(rule) if rule.when.is_none() => GateDecision::None,
            Some(rule) => GateDecision::Gate {
                reason,
                auto_when: rule.when.as_ref(),
            },
            None => GateDecision::Gate {
                reason,
                auto_when: None,
            },
        }
    }

    /// Whether a destructive call of `tool` has a way through: an approval rule covers it,
    /// or an unconditional `auto approve` lets it pass.
    pub fn has_approval_path(&self, tool: &str, scope: Option<Scope>) -> bool {
        self.approval_reason(tool, scope).is_some()
            || self
                .auto_rule(tool, scope)
                .is_some_and(|r| r.when.is_none())
    }

    /// Whether `host` is allowed by the egress allowlist (always, when there is none).
    pub fn allows_host(&self, host: &str) -> bool {
        match &self.egress {
            None => true,
            Some(list) => list.iter().any(|pattern| host_matches(pattern, host)),
        }
    }
}

/// The host the OpenAI client calls when a model gives no `base_url`.
pub const OPENAI_API_HOST: &str = "api.openai.com";
/// The host the Anthropic client calls when a model gives no `base_url`.
pub const ANTHROPIC_API_HOST: &str = "api.anthropic.com";

/// The host a model call reaches: the host of `base_url` when given, otherwise the
/// provider's own API host. `None` when neither is known (an `openai_compatible` model
/// without a literal `base_url`, an unknown provider, or a `base_url` that is not a URL).
pub fn model_host(provider: &str, base_url: Option<&str>) -> Option<String> {
    match base_url {
        Some(url) => url_host(url),
        None => match provider {
            "openai" => Some(OPENAI_API_HOST.to_string()),
            "anthropic" => Some(ANTHROPIC_API_HOST.to_string()),
            _ => None,
        },
    }
}

/// The host of an absolute URL, lowercase (`https://user@API.example.com:8443/v1` ->
/// `api.example.com`; an IPv6 address keeps its brackets: `[::1]`). `None` when the text
/// has no `scheme://` or no host.
pub fn url_host(url: &str) -> Option<String> {
    let rest = url.trim().split_once("://").map(|(_, rest)| rest)?;
    // As URL parsers do for http(s), a backslash ends the authority like a slash: the
    // host of `http://evil.example\@good.example/` is `evil.example`.
    let authority = rest.split(['/', '?', '#', '\\']).next().unwrap_or(rest);
    let host_port = authority.rsplit('@').next().unwrap_or(authority);
    let host = if host_port.starts_with('[') {
        match host_port.find(']') {
            Some(end) => host_port.get(..=end)?,
            None => return None,
        }
    } else {
        host_port.split(':').next().unwrap_or(host_port)
    };
    if host.is_empty() {
        None
    } else {
        Some(host.to_ascii_lowercase())
    }
}

/// `*.example.com` matches subdomains of `example.com`; anything else matches exactly
/// (ignoring case).
pub fn host_matches(pattern: &str, host: &str) -> bool {
    let pattern = pattern.to_ascii_lowercase();
    let host = host.to_ascii_lowercase();
    match pattern.strip_prefix("*.") {
        Some(suffix) => host.len() > suffix.len() + 1 && host.ends_with(&format!(".{suffix}")),
        None => pattern == host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_gates_destructive_only() {
        let policy = PolicyInfo::default();
        assert!(matches!(
            policy.gate("mail.send", Some(Scope::Destructive)),
            GateDecision::Gate { .. }
        ));
        assert_eq!(
            policy.gate("mail.label", Some(Scope::Write)),
            GateDecision::None
        );
    }

    #[test]
    fn explicit_rules_replace_the_default() {
        let policy = PolicyInfo {
            explicit_approvals: true,
            approve: vec![ApprovalTarget::Tool("mail.send".into())],
            ..PolicyInfo::default()
        };
        assert!(policy.has_approval_path("mail.send", Some(Scope::Destructive)));
        assert!(!policy.has_approval_path("mail.delete", Some(Scope::Destructive)));
    }

    #[test]
    fn model_hosts() {
        assert_eq!(
            model_host("openai", None).as_deref(),
            Some("api.openai.com")
        );
        assert_eq!(
            model_host("anthropic", None).as_deref(),
            Some("api.anthropic.com")
        );
        assert_eq!(model_host("openai_compatible", None), None);
        assert_eq!(
            model_host("openai_compatible", Some("http://127.0.0.1:8080/v1")).as_deref(),
            Some("127.0.0.1")
        );
        assert_eq!(
            model_host("openai", Some("https://user:pw@Proxy.Example.com")).as_deref(),
            Some("proxy.example.com")
        );
        assert_eq!(url_host("http://[::1]:8080/v1").as_deref(), Some("[::1]"));
        assert_eq!(
            url_host("http://evil.example\\@good.example/v1").as_deref(),
            Some("evil.example")
        );
        assert_eq!(
            url_host("https://api.example.com?x=1").as_deref(),
            Some("api.example.com")
        );
        assert_eq!(url_host("api.example.com/v1"), None);
        assert_eq!(url_host("http:///v1"), None);
        assert_eq!(url_host("http://[::1"), None);
    }

    #[test]
    fn hosts() {
        assert!(host_matches("*.example.com", "api.example.com"));
        assert!(!host_matches("*.example.com", "example.com"));
        assert!(host_matches("API.example.com", "api.example.com"));
    }
}

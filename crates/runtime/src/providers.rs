//! Model providers: one [`ModelProvider`] trait and clients speaking the real wire formats of
//! OpenAI Chat Completions, Anthropic Messages and any OpenAI-compatible server, plus what
//! the executor needs around a model call: the JSON schema of a declared output type
//! ([`json_schema_for`]), parsing and validating an answer against it ([`parse_output`]),
//! typed failure classes ([`ProviderError`]) and prices ([`PriceTable`]).
//!
//! Value conventions shared with the executor: a `Duration` in a model's answer is a string
//! such as `"30s"` (`"500ms"`, `"5m"`, `"24h"`, `"7d"`), a `Money` a string such as
//! `"12.50 usd"`; records are JSON objects with every declared field present (`null` for an
//! absent optional), unions are their string.

mod anthropic;
mod http;
mod openai;
mod output;
mod pricing;
mod schema;
mod sse;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use anthropic::{ANTHROPIC_DEFAULT_BASE_URL, ANTHROPIC_VERSION, AnthropicProvider};
pub use openai::{OPENAI_DEFAULT_BASE_URL, OpenAiFlavor, OpenAiProvider};
pub use output::{check_value, extract_json, parse_output};
pub use pricing::{ModelPrice, PriceTable};
pub use schema::{TypeSource, is_strict_compatible, json_schema_for};
pub use sse::{SseDecoder, SseEvent};

/// A boxed future returned by [`ModelProvider`] methods (object safe, `Send`).
pub type ProviderFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Completion, ProviderError>> + Send + 'a>>;

/// A model behind an API: one request in, one completion out.
pub trait ModelProvider: Send + Sync {
    /// Sends one completion request and waits for the whole answer.
    fn complete<'a>(&'a self, request: &'a CompletionRequest) -> ProviderFuture<'a>;

    /// Like [`ModelProvider::complete`], but streams: `on_delta` sees each piece of the
    /// answer as it arrives, and the completion (text, usage, finish reason) is the
    /// accumulation of the stream. Providers without streaming call `on_delta` once.
    fn complete_stream<'a>(
        &'a self,
        request: &'a CompletionRequest,
        on_delta: &'a (dyn Fn(&str) + Send + Sync),
    ) -> ProviderFuture<'a> {
        Box::pin(async move {
            let completion = self.complete(request).await?;
            on_delta(&completion.text);
            Ok(completion)
        })
    }
}

/// Who wrote a chat message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The person (or the runtime on its behalf).
    User,
    /// The model.
    Assistant,
}

impl Role {
    /// The role as both wire formats write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Who wrote it.
    pub role: Role,
    /// Its text.
    pub content: String,
}

impl ChatMessage {
    /// A message from the user.
    pub fn user(content: impl Into<String>) -> ChatMessage {
        ChatMessage {
            role: Role::User,
            content: content.into(),
        }
    }

    /// A message from the model (for few-shot examples and review rounds).
    pub fn assistant(content: impl Into<String>) -> ChatMessage {
        ChatMessage {
            role: Role::Assistant,
            content: content.into(),
        }
    }
}

/// What to ask a model.
#[derive(Debug, Clone, PartialEq)]
pub struct CompletionRequest {
    /// The provider's model name (`gpt-4.1-mini`, `claude-haiku-4-5`).
    pub model: String,
    /// The system prompt (an agent's instructions).
    pub system: Option<String>,
    /// The conversation, oldest first.
    pub messages: Vec<ChatMessage>,
    /// Sampling temperature.
    pub temperature: Option<f64>,
    /// The most tokens the answer may have (Anthropic requires one: 1024 when `None`).
    pub max_tokens: Option<u32>,
    /// The JSON schema of the declared output type ([`json_schema_for`]); `None` for `String`.
    pub output_schema: Option<serde_json::Value>,
    /// How long the whole call (connect, send, answer) may take.
    pub timeout: Duration,
}

impl CompletionRequest {
    /// A request with one user message, no system prompt, free text and a 60 s timeout.
    pub fn new(model: impl Into<String>, prompt: impl Into<String>) -> CompletionRequest {
        CompletionRequest {
            model: model.into(),
            system: None,
            messages: vec![ChatMessage::user(prompt)],
            temperature: None,
            max_tokens: None,
            output_schema: None,
            timeout: Duration::from_secs(60),
        }
    }
}

/// Tokens a call consumed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Usage {
    /// Prompt tokens (for Anthropic including cache reads and writes).
    pub input_tokens: u64,
    /// Answer tokens.
    pub output_tokens: u64,
}

impl Usage {
    /// Input plus output tokens.
    pub fn total(&self) -> u64 {
        self.input_tokens.saturating_add(self.output_tokens)
    }
}

/// A model's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Completion {
    /// The answer's text; with an output schema, the JSON of the answer (unwrapped when the
    /// client had to wrap a non-object schema).
    pub text: String,
    /// Tokens consumed.
    pub usage: Usage,
    /// The model that answered, as the provider names it (often a dated snapshot).
    pub model: String,
    /// Why the answer ended (`stop`, `length`, `end_turn`, `max_tokens`, `tool_use`, ...).
    pub finish_reason: Option<String>,
}

/// Why a model call failed; the class decides whether the executor retries.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProviderError {
    /// A failure that may pass: 5xx, overloaded (529), connection reset, malformed answer.
    #[error("transient provider error: {0}")]
    Transient(String),
    /// Too many requests (429); wait `retry_after` when the provider says how long.
    #[error("rate limited by the provider{}", retry_after_text(.retry_after))]
    RateLimited {
        /// How long the provider asked to wait (`retry-after-ms` or `retry-after`).
        retry_after: Option<Duration>,
    },
    /// The call took longer than the request's timeout.
    #[error("the model call timed out")]
    Timeout,
    /// The answer does not match the declared output type.
    #[error("invalid model output: {0}")]
    InvalidOutput(String),
    /// A missing, wrong or unauthorised API key (401, 403).
    #[error("authentication failed: {0}")]
    Auth(String),
    /// A failure that will not pass by retrying: bad request, unknown model or provider.
    #[error("provider error: {0}")]
    Permanent(String),
}

fn retry_after_text(retry_after: &Option<Duration>) -> String {
    match retry_after {
        Some(wait) => format!(" (retry after {} ms)", wait.as_millis()),
        None => String::new(),
    }
}

impl ProviderError {
    /// Whether trying again (after a backoff) may succeed: transient failures, rate limits,
    /// timeouts and invalid output (models answer differently the next time).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ProviderError::Transient(_)
                | ProviderError::RateLimited { .. }
                | ProviderError::Timeout
                | ProviderError::InvalidOutput(_)
        )
    }

    /// How long the provider asked to wait before the next attempt, when it said so.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ProviderError::RateLimited { retry_after } => *retry_after,
            _ => None,
        }
    }

    /// The failure class as a stable snake_case name, for run records and traces.
    pub fn class(&self) -> &'static str {
        match self {
            ProviderError::Transient(_) => "transient",
            ProviderError::RateLimited { .. } => "rate_limited",
            ProviderError::Timeout => "timeout",
            ProviderError::InvalidOutput(_) => "invalid_output",
            ProviderError::Auth(_) => "auth",
            ProviderError::Permanent(_) => "permanent",
        }
    }
}

/// Builds the client for `provider` (`openai`, `anthropic` or `openai_compatible`).
///
/// `base_url` overrides the default endpoint (required for `openai_compatible`, e.g.
/// `http://127.0.0.1:8080/v1`). OpenAI and Anthropic need an `api_key` ([`ProviderError::Auth`]
/// otherwise); for OpenAI-compatible servers it is optional. `http` is shared by all clients
/// so connections are pooled.
pub fn build_provider(
    provider: &str,
    base_url: Option<&str>,
    api_key: Option<String>,
    http: reqwest::Client,
) -> Result<Arc<dyn ModelProvider>, ProviderError> {
    match provider {
        "openai" => {
            let key = require_key(provider, api_key)?;
            Ok(Arc::new(OpenAiProvider::new(
                http,
                OpenAiFlavor::OpenAi,
                base_url.unwrap_or(OPENAI_DEFAULT_BASE_URL),
                Some(key),
            )))
        }
        "anthropic" => {
            let key = require_key(provider, api_key)?;
            Ok(Arc::new(AnthropicProvider::new(
                http,
                base_url.unwrap_or(ANTHROPIC_DEFAULT_BASE_URL),
                key,
            )))
        }
        "openai_compatible" => {
            let base = base_url.filter(|b| !b.trim().is_empty()).ok_or_else(|| {
                ProviderError::Permanent(
                    "openai_compatible needs a base_url (e.g. http://127.0.0.1:8080/v1)".into(),
                )
            })?;
            Ok(Arc::new(OpenAiProvider::new(
                http,
                OpenAiFlavor::Compatible,
                base,
                api_key.filter(|k| !k.is_empty()),
            )))
        }
        other => Err(ProviderError::Permanent(format!(
            "unknown provider `{other}` (expected openai, anthropic or openai_compatible)"
        ))),
    }
}

/// The host a call of `provider` reaches: the host of `base_url` when given, otherwise of
/// the provider's default endpoint (the same endpoints [`build_provider`] uses). `None` when
/// there is no endpoint (an unknown provider, `openai_compatible` without `base_url`) or
/// `base_url` is not a URL: such a client cannot be built or send anything.
pub fn endpoint_host(provider: &str, base_url: Option<&str>) -> Option<String> {
    let url = match (provider, base_url.filter(|b| !b.trim().is_empty())) {
        (_, Some(url)) => url,
        ("openai", None) => OPENAI_DEFAULT_BASE_URL,
        ("anthropic", None) => ANTHROPIC_DEFAULT_BASE_URL,
        _ => return None,
    };
    let parsed = reqwest::Url::parse(url.trim()).ok()?;
    parsed
        .host_str()
        .filter(|h| !h.is_empty())
        .map(str::to_ascii_lowercase)
}

fn require_key(provider: &str, api_key: Option<String>) -> Result<String, ProviderError> {
    api_key
        .filter(|k| !k.trim().is_empty())
        .ok_or_else(|| ProviderError::Auth(format!("no API key given for provider `{provider}`")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_hosts_agree_with_the_static_check() {
        for provider in ["openai", "anthropic"] {
            assert_eq!(
                endpoint_host(provider, None),
                dsl_check::policy::model_host(provider, None),
                "{provider}"
            );
        }
        assert_eq!(endpoint_host("openai_compatible", None), None);
        assert_eq!(endpoint_host("nope", None), None);
        assert_eq!(
            endpoint_host("openai_compatible", Some("http://127.0.0.1:8080/v1")).as_deref(),
            Some("127.0.0.1")
        );
        assert_eq!(
            endpoint_host("anthropic", Some("https://Proxy.Example.com/anthropic")).as_deref(),
            Some("proxy.example.com")
        );
        assert_eq!(endpoint_host("openai_compatible", Some("not a url")), None);
        for url in [
            "http://127.0.0.1:8080/v1",
            "https://u:p@LLM.example.com:8443/v1?x=1",
            "http://evil.example\\@good.example/v1",
            "http://[::1]:8080/v1",
        ] {
            assert_eq!(
                endpoint_host("openai_compatible", Some(url)),
                dsl_check::policy::model_host("openai_compatible", Some(url)),
                "{url}"
            );
        }
    }
}

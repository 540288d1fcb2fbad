//! The Anthropic Messages client (`POST {base}/v1/messages`).
//!
//! With an output schema the request offers one tool, `answer`, whose `input_schema` is the
//! schema (wrapped as `{"value": ...}` when not an object), and forces the model to call it
//! (`tool_choice`); the answer is that tool call's input. This is Anthropic's documented way
//! to get JSON of a given shape.

use serde_json::{Map, Value, json};

use super::http::{join_url, post_json, read_json, read_sse, stream_error, text_field};
use super::openai::{unwrap_answer, wrap_schema};
use super::{Completion, CompletionRequest, ModelProvider, ProviderError, ProviderFuture, Usage};

/// Anthropic's API root (the client appends `/v1/messages`).
pub const ANTHROPIC_DEFAULT_BASE_URL: &str = "https://api.anthropic.com";

/// The `anthropic-version` header sent with every request.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

/// `max_tokens` when the request sets none (Anthropic requires the field).
const DEFAULT_MAX_TOKENS: u32 = 1024;

/// The name of the tool that carries a structured answer.
const ANSWER_TOOL: &str = "answer";

/// A Messages API client.
#[derive(Debug, Clone)]
pub struct AnthropicProvider {
    http: reqwest::Client,
    base_url: String,
    api_key: String,
}

impl AnthropicProvider {
    /// A client for `base_url` (`https://api.anthropic.com`; a trailing `/v1` is accepted).
    pub fn new(http: reqwest::Client, base_url: &str, api_key: String) -> AnthropicProvider {
        let base = base_url.trim_end_matches('/');
        let base = base.strip_suffix("/v1").unwrap_or(base);
        AnthropicProvider {
            http,
            base_url: base.to_string(),
            api_key,
        }
    }

    /// The URL requests go to.
    pub fn endpoint(&self) -> String {
        join_url(&self.base_url, "/v1/messages")
    }

    /// The JSON body for `request`; `wrapped` tells whether the schema was wrapped in
    /// `{"value": ...}`.
    pub fn request_body(&self, request: &CompletionRequest, stream: bool) -> (Value, bool) {
        let mut object = Map::new();
        object.insert("model".into(), json!(request.model));
        object.insert(
            "max_tokens".into(),
            json!(request.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS)),
        );
        if let Some(system) = &request.system {
            object.insert("system".into(), json!(system));
        }
        let messages: Vec<Value> = request
            .messages
            .iter()
            .map(|m| json!({ "role": m.role.as_str(), "content": m.content }))
            .collect();
        object.insert("messages".into(), Value::Array(messages));
        if let Some(temperature) = request.temperature {
            // Anthropic accepts 0.0 to 1.0.
            object.insert("temperature".into(), json!(temperature.clamp(0.0, 1.0)));
        }
        let mut wrapped = false;
        if let Some(schema) = &request.output_schema {
            let (schema, was_wrapped) = wrap_schema(schema);
            wrapped = was_wrapped;
            object.insert(
                "tools".into(),
                json!([{
                    "name": ANSWER_TOOL,
                    "description": "Give the answer in exactly this structure.",
                    "input_schema": schema,
                }]),
            );
            object.insert(
                "tool_choice".into(),
                json!({ "type": "tool", "name": ANSWER_TOOL }),
            );
        }
        if stream {
            object.insert("stream".into(), json!(true));
        }
        (Value::Object(object), wrapped)
    }

    fn headers(&self) -> [(&str, &str); 2] {
        [
            ("x-api-key", self.api_key.as_str()),
            ("anthropic-version", ANTHROPIC_VERSION),
        ]
    }

    async fn call(&self, request: &CompletionRequest) -> Result<Completion, ProviderError> {
        let (body, wrapped) = self.request_body(request, false);
        let response = post_json(
            &self.http,
            &self.endpoint(),
            &self.headers(),
            &body,
            request.timeout,
        )
        .await?;
        let answer = read_json(response).await?;
        if answer.get("type").and_then(Value::as_str) == Some("error") {
            return Err(stream_error(&answer.to_string()));
        }
        let blocks = answer
            .get("content")
            .and_then(Value::as_array)
            .ok_or_else(|| ProviderError::Transient("the answer has no content".into()))?;
        let mut text = String::new();
        let mut tool_input = None;
        for block in blocks {
            match block.get("type").and_then(Value::as_str) {
                Some("text") => {
                    text.push_str(block.get("text").and_then(Value::as_str).unwrap_or(""))
                }
                Some("tool_use")
                    if block.get("name").and_then(Value::as_str) == Some(ANSWER_TOOL) =>
                {
                    tool_input = block.get("input").cloned();
                }
                _ => {}
            }
        }
        let text = match tool_input {
            Some(input) if request.output_schema.is_some() => {
                unwrap_answer(&input.to_string(), wrapped)
            }
            _ => text,
        };
        Ok(Completion {
            text,
            usage: usage_of(answer.get("usage"), Usage::default()),
            model: text_field(&answer, "model").unwrap_or_else(|| request.model.clone()),
            finish_reason: text_field(&answer, "stop_reason"),
        })
    }

    async fn call_stream(
        &self,
        request: &CompletionRequest,
        on_delta: &(dyn Fn(&str) + Send + Sync),
    ) -> Result<Completion, ProviderError> {
        let (body, wrapped) = self.request_body(request, true);
        let response = post_json(
            &self.http,
            &self.endpoint(),
            &self.headers(),
            &body,
            request.timeout,
        )
        .await?;
        let mut text = String::new();
        let mut tool_json = String::new();
        let mut usage = Usage::default();
        let mut model = None;
        let mut stop_reason = None;
        let mut stopped = false;
        read_sse(response, |event| {
            let data: Value = serde_json::from_str(&event.data).map_err(|error| {
                ProviderError::Transient(format!(
                    "malformed stream event ({error}): {}",
                    event.data
                ))
            })?;
            let kind = data
                .get("type")
                .and_then(Value::as_str)
                .or(event.event.as_deref())
                .unwrap_or("");
            match kind {
                "message_start" => {
                    let message = data.get("message").unwrap_or(&Value::Null);
                    model = text_field(message, "model");
                    usage = usage_of(message.get("usage"), usage);
                }
                "content_block_delta" => {
                    let delta = data.get("delta").unwrap_or(&Value::Null);
                    match delta.get("type").and_then(Value::as_str) {
                        Some("text_delta") => {
                            let piece = delta.get("text").and_then(Value::as_str).unwrap_or("");
                            on_delta(piece);
                            text.push_str(piece);
                        }
                        Some("input_json_delta") => {
                            let piece = delta
                                .get("partial_json")
                                .and_then(Value::as_str)
                                .unwrap_or("");
                            on_delta(piece);
                            tool_json.push_str(piece);
                        }
                        _ => {}
                    }
                }
                "message_delta" => {
                    if let Some(reason) = data
                        .get("delta")
                        .and_then(|d| d.get("stop_reason"))
                        .and_then(Value::as_str)
                    {
                        stop_reason = Some(reason.to_string());
                    }
                    usage = usage_of(data.get("usage"), usage);
                }
                "message_stop" => {
                    stopped = true;
                    return Ok(false);
                }
                "error" => return Err(stream_error(&event.data)),
                _ => {}
            }
            Ok(true)
        })
        .await?;
        if !stopped {
            return Err(ProviderError::Transient(
                "the stream ended before the answer did".into(),
            ));
        }
        let text = if request.output_schema.is_some() && !tool_json.is_empty() {
            unwrap_answer(&tool_json, wrapped)
        } else {
            text
        };
        Ok(Completion {
            text,
            usage,
            model: model.unwrap_or_else(|| request.model.clone()),
            finish_reason: stop_reason,
        })
    }
}

impl ModelProvider for AnthropicProvider {
    fn complete<'a>(&'a self, request: &'a CompletionRequest) -> ProviderFuture<'a> {
        Box::pin(self.call(request))
    }

    fn complete_stream<'a>(
        &'a self,
        request: &'a CompletionRequest,
        on_delta: &'a (dyn Fn(&str) + Send + Sync),
    ) -> ProviderFuture<'a> {
        Box::pin(self.call_stream(request, on_delta))
    }
}

/// `usage.input_tokens` (plus cache reads and writes) and `usage.output_tokens`; fields a
/// stream event leaves out keep their value from `before`.
fn usage_of(usage: Option<&Value>, before: Usage) -> Usage {
    let Some(usage) = usage.filter(|u| u.is_object()) else {
        return before;
    };
    let count = |name: &str| usage.get(name).and_then(Value::as_u64);
    let input = [
        "input_tokens",
        "cache_creation_input_tokens",
        "cache_read_input_tokens",
    ]
    .iter()
    .filter_map(|name| count(name))
    .reduce(u64::saturating_add);
    Usage {
        input_tokens: input.unwrap_or(before.input_tokens),
        output_tokens: count("output_tokens").unwrap_or(before.output_tokens),
    }
}

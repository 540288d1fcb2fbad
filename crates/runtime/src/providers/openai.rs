//! The OpenAI Chat Completions client (`POST {base}/chat/completions`), for OpenAI itself
//! and for OpenAI-compatible servers (llama.cpp, vLLM, Ollama, LM Studio, ...).
//!
//! With an output schema the request carries `response_format: json_schema` (strict when
//! the schema allows). OpenAI wants an object at the root, so other schemas are wrapped as
//! `{"value": ...}` and the answer unwrapped again. Compatible servers also get the schema
//! in the system prompt, since some ignore `response_format`; a compatible server that
//! rejects `json_schema` (llama-cpp-python accepts only `json_object`) is asked again with
//! `{"type": "json_object", "schema": ...}`, and the client remembers to ask that way.

use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{Map, Value, json};

use super::http::{join_url, post_json, read_json, read_sse, stream_error, text_field};
use super::{
    ChatMessage, Completion, CompletionRequest, ModelProvider, ProviderError, ProviderFuture,
    Usage, extract_json, is_strict_compatible,
};

/// OpenAI's API root.
pub const OPENAI_DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";

/// Which server the client speaks to; they differ in a few request fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenAiFlavor {
    /// OpenAI: `max_completion_tokens`, no temperature for reasoning models.
    OpenAi,
    /// Another server speaking the format: `max_tokens`, key optional, schema also in the
    /// system prompt.
    Compatible,
}

/// A Chat Completions client.
#[derive(Debug)]
pub struct OpenAiProvider {
    http: reqwest::Client,
    flavor: OpenAiFlavor,
    base_url: String,
    api_key: Option<String>,
    /// Whether this (compatible) server wants `json_object` with a `schema` instead of
    /// `json_schema`; learnt from its first refusal.
    schema_as_json_object: AtomicBool,
}

impl OpenAiProvider {
    /// A client for `base_url` (such as `https://api.openai.com/v1`).
    pub fn new(
        http: reqwest::Client,
        flavor: OpenAiFlavor,
        base_url: &str,
        api_key: Option<String>,
    ) -> OpenAiProvider {
        OpenAiProvider {
            http,
            flavor,
            base_url: base_url.trim_end_matches('/').to_string(),
            api_key,
            schema_as_json_object: AtomicBool::new(false),
        }
    }

    /// The URL requests go to.
    pub fn endpoint(&self) -> String {
        join_url(&self.base_url, "/chat/completions")
    }

    /// The JSON body for `request`; `wrapped` tells whether the schema was wrapped in
    /// `{"value": ...}`.
    pub fn request_body(&self, request: &CompletionRequest, stream: bool) -> (Value, bool) {
        let schema = request.output_schema.as_ref().map(wrap_schema);
        let wrapped = schema.as_ref().is_some_and(|(_, wrapped)| *wrapped);
        let mut system = request.system.clone();
        if self.flavor == OpenAiFlavor::Compatible
            && let Some((schema, _)) = &schema
        {
            let line = format!(
                "Answer with one JSON value that matches this JSON schema, and nothing else:\n{schema}"
            );
            system = Some(match system {
                Some(text) => format!("{text}\n\n{line}"),
                None => line,
            });
        }
        let mut messages = Vec::with_capacity(request.messages.len() + 1);
        if let Some(system) = system {
            messages.push(json!({ "role": "system", "content": system }));
        }
        messages.extend(request.messages.iter().map(
            |ChatMessage { role, content }| json!({ "role": role.as_str(), "content": content }),
        ));
        let mut object = Map::new();
        object.insert("model".into(), json!(request.model));
        object.insert("messages".into(), Value::Array(messages));
        if let Some(temperature) = request.temperature
            && !(self.flavor == OpenAiFlavor::OpenAi && is_reasoning_model(&request.model))
        {
            object.insert("temperature".into(), json!(temperature));
        }
        if let Some(max_tokens) = request.max_tokens {
            let key = match self.flavor {
                OpenAiFlavor::OpenAi => "max_completion_tokens",
                OpenAiFlavor::Compatible => "max_tokens",
            };
            object.insert(key.into(), json!(max_tokens));
        }
        if let Some((schema, _)) = schema {
            let format = if self.schema_as_json_object.load(Ordering::Relaxed) {
                json!({ "type": "json_object", "schema": schema })
            } else {
                json!({
                    "type": "json_schema",
                    "json_schema": {
                        "name": "output",
                        "strict": is_strict_compatible(&schema),
                        "schema": schema,
                    },
                })
            };
            object.insert("response_format".into(), format);
        }
        if stream {
            object.insert("stream".into(), json!(true));
            object.insert("stream_options".into(), json!({ "include_usage": true }));
        }
        (Value::Object(object), wrapped)
    }

    /// Posts the request; a compatible server that refuses `json_schema` is asked again with
    /// `json_object` (once, and from then on).
    async fn post(
        &self,
        request: &CompletionRequest,
        stream: bool,
    ) -> Result<(reqwest::Response, bool), ProviderError> {
        let headers = self.headers();
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (body, wrapped) = self.request_body(request, stream);
        let first = post_json(
            &self.http,
            &self.endpoint(),
            &headers,
            &body,
            request.timeout,
        )
        .await;
        match first {
            Err(ProviderError::Transient(message) | ProviderError::Permanent(message))
                if self.flavor == OpenAiFlavor::Compatible
                    && request.output_schema.is_some()
                    && !self.schema_as_json_object.load(Ordering::Relaxed)
                    && message.contains("response_format") =>
            {
                self.schema_as_json_object.store(true, Ordering::Relaxed);
                let (body, wrapped) = self.request_body(request, stream);
                let response = post_json(
                    &self.http,
                    &self.endpoint(),
                    &headers,
                    &body,
                    request.timeout,
                )
                .await?;
                Ok((response, wrapped))
            }
            other => other.map(|response| (response, wrapped)),
        }
    }

    fn headers(&self) -> Vec<(&str, String)> {
        match &self.api_key {
            Some(key) => vec![("authorization", format!("Bearer {key}"))],
            None => Vec::new(),
        }
    }

    async fn call(&self, request: &CompletionRequest) -> Result<Completion, ProviderError> {
        let (response, wrapped) = self.post(request, false).await?;
        let answer = read_json(response).await?;
        if let Some(error) = answer.get("error").filter(|e| !e.is_null()) {
            return Err(stream_error(&json!({ "error": error }).to_string()));
        }
        let choice = answer
            .get("choices")
            .and_then(|c| c.get(0))
            .ok_or_else(|| ProviderError::Transient("the answer has no choices".into()))?;
        let message = choice.get("message").unwrap_or(&Value::Null);
        if let Some(refusal) = message.get("refusal").and_then(Value::as_str) {
            return Err(ProviderError::InvalidOutput(format!(
                "the model refused: {refusal}"
            )));
        }
        let text = message
            .get("content")
            .and_then(Value::as_str)
            .ok_or_else(|| ProviderError::InvalidOutput("the answer has no content".into()))?;
        Ok(Completion {
            text: unwrap_answer(text, wrapped),
            usage: usage_of(answer.get("usage")),
            model: text_field(&answer, "model").unwrap_or_else(|| request.model.clone()),
            finish_reason: text_field(choice, "finish_reason"),
        })
    }

    async fn call_stream(
        &self,
        request: &CompletionRequest,
        on_delta: &(dyn Fn(&str) + Send + Sync),
    ) -> Result<Completion, ProviderError> {
        let (response, wrapped) = self.post(request, true).await?;
        let mut text = String::new();
        let mut usage = Usage::default();
        let mut model = None;
        let mut finish_reason = None;
        let mut refusal = String::new();
        let mut done = false;
        read_sse(response, |event| {
            let data = event.data.trim();
            if data == "[DONE]" {
                done = true;
                return Ok(false);
            }
            let chunk: Value = serde_json::from_str(data).map_err(|error| {
                ProviderError::Transient(format!("malformed stream chunk ({error}): {data}"))
            })?;
            if chunk.get("error").is_some_and(|e| !e.is_null()) {
                return Err(stream_error(data));
            }
            if let Some(name) = chunk.get("model").and_then(Value::as_str) {
                model.get_or_insert_with(|| name.to_string());
            }
            if let Some(u) = chunk.get("usage").filter(|u| !u.is_null()) {
                usage = usage_of(Some(u));
            }
            if let Some(choice) = chunk.get("choices").and_then(|c| c.get(0)) {
                let delta = choice.get("delta").unwrap_or(&Value::Null);
                if let Some(piece) = delta.get("content").and_then(Value::as_str)
                    && !piece.is_empty()
                {
                    on_delta(piece);
                    text.push_str(piece);
                }
                if let Some(piece) = delta.get("refusal").and_then(Value::as_str) {
                    refusal.push_str(piece);
                }
                if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
                    finish_reason = Some(reason.to_string());
                }
            }
            Ok(true)
        })
        .await?;
        if !refusal.is_empty() {
            return Err(ProviderError::InvalidOutput(format!(
                "the model refused: {refusal}"
            )));
        }
        if !done && finish_reason.is_none() {
            return Err(ProviderError::Transient(
                "the stream ended before the answer did".into(),
            ));
        }
        Ok(Completion {
            text: unwrap_answer(&text, wrapped),
            usage,
            model: model.unwrap_or_else(|| request.model.clone()),
            finish_reason,
        })
    }
}

impl ModelProvider for OpenAiProvider {
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

/// o-series and GPT-5 models reject `temperature`.
fn is_reasoning_model(model: &str) -> bool {
    ["o1", "o3", "o4", "gpt-5"]
        .iter()
        .any(|prefix| model == *prefix || model.starts_with(&format!("{prefix}-")))
}

/// The schema to send: objects as they are, anything else inside `{"value": ...}`.
pub(crate) fn wrap_schema(schema: &Value) -> (Value, bool) {
    let is_object = schema.get("type").and_then(Value::as_str) == Some("object");
    if is_object {
        return (schema.clone(), false);
    }
    (
        json!({
            "type": "object",
            "properties": { "value": schema },
            "required": ["value"],
            "additionalProperties": false,
        }),
        true,
    )
}

/// The answer without the `{"value": ...}` wrapper (left as it is when it has none).
pub(crate) fn unwrap_answer(text: &str, wrapped: bool) -> String {
    if !wrapped {
        return text.to_string();
    }
    match extract_json(text) {
        Some(Value::Object(mut object)) if object.len() == 1 && object.contains_key("value") => {
            object
                .remove("value")
                .map_or_else(String::new, |v| v.to_string())
        }
        _ => text.to_string(),
    }
}

/// `usage.prompt_tokens` / `usage.completion_tokens`.
fn usage_of(usage: Option<&Value>) -> Usage {
    let count = |name: &str| {
        usage
            .and_then(|u| u.get(name))
            .and_then(Value::as_u64)
            .unwrap_or(0)
    };
    Usage {
        input_tokens: count("prompt_tokens"),
        output_tokens: count("completion_tokens"),
    }
}

//! HTTP plumbing shared by the clients: sending a JSON request with a timeout, reading the
//! answer, and turning transport failures and HTTP error statuses into [`ProviderError`]s.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::Value;

use super::{ProviderError, SseDecoder, SseEvent};

/// The longest error text kept from a provider's answer.
const MAX_ERROR_TEXT: usize = 500;

/// Posts `body` as JSON with `headers` and returns the response when its status is a
/// success; otherwise the error the status and body mean.
pub(crate) async fn post_json(
    http: &reqwest::Client,
    url: &str,
    headers: &[(&str, &str)],
    body: &Value,
    timeout: Duration,
) -> Result<reqwest::Response, ProviderError> {
    let mut builder = http.post(url).timeout(timeout).json(body);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let response = builder.send().await.map_err(transport_error)?;
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let retry_after = retry_after(response.headers());
    let text = response.text().await.map_err(transport_error)?;
    Err(status_error(status, retry_after, &text))
}

/// Reads a whole successful response body and parses it as JSON.
pub(crate) async fn read_json(response: reqwest::Response) -> Result<Value, ProviderError> {
    let bytes = response.bytes().await.map_err(transport_error)?;
    serde_json::from_slice(&bytes).map_err(|error| {
        ProviderError::Transient(format!(
            "malformed response body ({error}): {}",
            truncate(&String::from_utf8_lossy(&bytes))
        ))
    })
}

/// Reads a server-sent-events body chunk by chunk, handing each event to `on_event`, which
/// returns `false` to stop early (after `[DONE]`).
pub(crate) async fn read_sse(
    mut response: reqwest::Response,
    mut on_event: impl FnMut(SseEvent) -> Result<bool, ProviderError>,
) -> Result<(), ProviderError> {
    let mut decoder = SseDecoder::new();
    while let Some(chunk) = response.chunk().await.map_err(transport_error)? {
        for event in decoder.push(&chunk) {
            if !on_event(event)? {
                return Ok(());
            }
        }
    }
    for event in decoder.finish() {
        if !on_event(event)? {
            return Ok(());
        }
    }
    Ok(())
}

/// The class of a reqwest failure: a timeout, or a transient network problem.
pub(crate) fn transport_error(error: reqwest::Error) -> ProviderError {
    if error.is_timeout() {
        return ProviderError::Timeout;
    }
    let mut message = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    if error.is_builder() {
        return ProviderError::Permanent(message);
    }
    ProviderError::Transient(message)
}

/// How long a 429 asks to wait: `retry-after-ms` (OpenAI) or `retry-after` in seconds.
/// An HTTP date in `retry-after` is not interpreted.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let number = |name: &str| -> Option<f64> {
        let value = headers
            .get(name)?
            .to_str()
            .ok()?
            .trim()
            .parse::<f64>()
            .ok()?;
        (value.is_finite() && value >= 0.0).then_some(value)
    };
    if let Some(ms) = number("retry-after-ms") {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    number("retry-after").map(Duration::from_secs_f64)
}

/// The error object's message and type, in either provider's shape:
/// `{"error": {"message", "type", "code"}}` (OpenAI) or
/// `{"type": "error", "error": {"type", "message"}}` (Anthropic).
pub(crate) fn error_details(body: &str) -> (String, Option<String>, Option<String>) {
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    let error = parsed.as_ref().and_then(|v| v.get("error"));
    let field = |name: &str| {
        error
            .and_then(|e| e.get(name))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let message = field("message")
        .or_else(|| error.and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| body.trim().to_string());
    (truncate(&message), field("type"), field("code"))
}

/// The error an HTTP error status and its body mean.
pub(crate) fn status_error(
    status: StatusCode,
    retry_after: Option<Duration>,
    body: &str,
) -> ProviderError {
    let (message, kind, code) = error_details(body);
    let text = if message.is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status}: {message}")
    };
    let is = |name: &str| kind.as_deref() == Some(name) || code.as_deref() == Some(name);
    match status.as_u16() {
        // Out of credit is reported as a 429 but never passes by waiting.
        429 if is("insufficient_quota") => ProviderError::Permanent(text),
        429 => ProviderError::RateLimited { retry_after },
        401 | 403 => ProviderError::Auth(text),
        408 | 409 => ProviderError::Transient(text),
        500..=599 => ProviderError::Transient(text),
        _ if is("overloaded_error") || is("api_error") => ProviderError::Transient(text),
        _ if is("rate_limit_error") => ProviderError::RateLimited { retry_after },
        _ => ProviderError::Permanent(text),
    }
}

/// The error an error object inside a stream means (no HTTP status: classified by type).
pub(crate) fn stream_error(data: &str) -> ProviderError {
    let (message, kind, code) = error_details(data);
    let kind = kind.or(code).unwrap_or_default();
    let text = format!("{kind}: {message}");
    match kind.as_str() {
        "overloaded_error" | "api_error" | "server_error" | "" => ProviderError::Transient(text),
        "rate_limit_error" | "rate_limit_exceeded" => {
            ProviderError::RateLimited { retry_after: None }
        }
        "authentication_error" | "permission_error" => ProviderError::Auth(text),
        _ => ProviderError::Permanent(text),
    }
}

/// `text` cut to [`MAX_ERROR_TEXT`] bytes (at a character boundary).
pub(crate) fn truncate(text: &str) -> String {
    if text.len() <= MAX_ERROR_TEXT {
        return text.to_string();
    }
    let mut end = MAX_ERROR_TEXT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// `base` without a trailing slash, joined with `path` (which starts with `/`).
pub(crate) fn join_url(base: &str, path: &str) -> String {
    format!("{}{path}", base.trim_end_matches('/'))
}

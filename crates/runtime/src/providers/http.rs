//! HTTP plumbing shared by the clients: sending a JSON request with a timeout, reading the
//! answer, and turning transport failures and HTTP error statuses into [`ProviderError`]s.

use std::time::{Duration, SystemTime};

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

/// How long a 429 asks to wait: `retry-after-ms` (OpenAI), or `retry-after` in seconds or
/// as an HTTP date.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    retry_after_at(headers, SystemTime::now())
}

fn retry_after_at(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let text = |name: &str| headers.get(name)?.to_str().ok().map(str::trim);
    let number = |name: &str| -> Option<f64> {
        let value = text(name)?.parse::<f64>().ok()?;
        (value.is_finite() && (0.0..1.0e9).contains(&value)).then_some(value)
    };
    if let Some(ms) = number("retry-after-ms") {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    if let Some(seconds) = number("retry-after") {
        return Some(Duration::from_secs_f64(seconds));
    }
    let date = parse_http_date(text("retry-after")?)?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

/// An IMF-fixdate (`Wed, 21 Oct 2015 07:28:00 GMT`), the form HTTP dates are sent in.
fn parse_http_date(text: &str) -> Option<SystemTime> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let parts: Vec<&str> = text.split_whitespace().collect();
    let [_weekday, day, month, year, time, "GMT"] = parts.as_slice() else {
        return None;
    };
    let month = MONTHS.iter().position(|m| m == month)? as i64 + 1;
    let day: i64 = day.parse().ok().filter(|d| (1..=31).contains(d))?;
    let year: i64 = year.parse().ok().filter(|y| (1970..=9999).contains(y))?;
    let mut clock = time.split(':').map(|p| p.parse::<i64>().ok());
    let (hour, minute, second) = (clock.next()??, clock.next()??, clock.next()??);
    if clock.next().is_some()
        || !(0..24).contains(&hour)
        || !(0..60).contains(&minute)
        || !(0..=60).contains(&second)
    {
        return None;
    }
    // Days from 1970-01-01 to the date (Howard Hinnant's days_from_civil).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(seconds).ok()?))
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
/// The string field `key` of a JSON answer (a model name, a finish reason), if present.
pub(crate) fn text_field(value: &Value, key: &str) -> Option<String> {
    value.get(key).and_then(Value::as_str).map(str::to_string)
}

pub(crate) fn join_url(base: &str, path: &str) -> String {
    format!("{}{path}", base.trim_end_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates() {
        let since_epoch = |text: &str| {
            parse_http_date(text)
                .and_then(|d| d.duration_since(SystemTime::UNIX_EPOCH).ok())
                .map(|d| d.as_secs())
        };
        assert_eq!(
            since_epoch("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(1_445_412_480)
        );
        assert_eq!(since_epoch("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(
            since_epoch("Sun, 29 Feb 2032 23:59:59 GMT"),
            Some(1_961_711_999)
        );
        for bad in [
            "",
            "tomorrow",
            "Wed, 21 Oct 2015 07:28 GMT",
            "Wed, 21 Foo 2015 07:28:00 GMT",
            "Wed, 21 Oct 2015 25:28:00 GMT",
            "Wed, 21 Oct 2015 07:28:00 CET",
        ] {
            assert_eq!(parse_http_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn retry_after_forms() {
        let now = parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT").expect("a date");
        let wait = |pairs: &[(&'static str, &str)]| {
            let mut headers = HeaderMap::new();
            for (name, value) in pairs {
                headers.insert(*name, value.parse().expect("a header value"));
            }
            retry_after_at(&headers, now)
        };
        assert_eq!(
            wait(&[("retry-after", "20")]),
            Some(Duration::from_secs(20))
        );
        assert_eq!(
            wait(&[("retry-after", "0.5")]),
            Some(Duration::from_millis(500))
        );
        assert_eq!(
            wait(&[("retry-after", "Wed, 21 Oct 2015 07:28:30 GMT")]),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            wait(&[("retry-after", "Wed, 21 Oct 2015 07:00:00 GMT")]),
            Some(Duration::ZERO)
        );
        assert_eq!(
            wait(&[("retry-after-ms", "250"), ("retry-after", "9")]),
            Some(Duration::from_millis(250))
        );
        assert_eq!(wait(&[("retry-after", "-3")]), None);
        assert_eq!(wait(&[("retry-after", "soon")]), None);
        assert_eq!(wait(&[]), None);
    }
}

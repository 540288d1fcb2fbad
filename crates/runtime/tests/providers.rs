//! Model provider clients against local HTTP servers (127.0.0.1) that answer in the OpenAI
//! and Anthropic wire formats: the exact requests each client sends, the parsing of answers,
//! usage and streams, the class of every failure; plus output schemas, output parsing and
//! prices on real packs.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use dsl_check::{Analysis, NoFiles, Ty};
use proptest::prelude::*;
use runtime::providers::{
    AnthropicProvider, ChatMessage, Completion, CompletionRequest, ModelPrice, ModelProvider,
    OpenAiFlavor, OpenAiProvider, PriceTable, ProviderError, Role, Usage, build_provider,
    is_strict_compatible, json_schema_for, parse_output,
};
use serde_json::{Value, json};

mod common;

// ---------------------------------------------------------------------------------------
// A scripted HTTP server.

/// One request the server received.
#[derive(Debug, Clone)]
struct Recorded {
    method: String,
    path: String,
    headers: HeaderMap,
    body: Value,
}

impl Recorded {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// What the snapshots show: method, path, the headers that matter and the JSON body.
    fn shape(&self) -> Value {
        let mut headers = serde_json::Map::new();
        for name in [
            "authorization",
            "x-api-key",
            "anthropic-version",
            "content-type",
        ] {
            if let Some(value) = self.header(name) {
                headers.insert(name.into(), json!(value));
            }
        }
        json!({
            "method": self.method,
            "path": self.path,
            "headers": headers,
            "body": self.body,
        })
    }
}

/// One scripted answer.
#[derive(Debug, Clone)]
struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
    delay: Duration,
}

impl Reply {
    fn json(status: u16, body: &str) -> Reply {
        Reply {
            status,
            headers: vec![("content-type", "application/json".into())],
            body: body.to_string(),
            delay: Duration::ZERO,
        }
    }

    fn sse(body: &str) -> Reply {
        Reply {
            status: 200,
            headers: vec![("content-type", "text/event-stream".into())],
            body: body.to_string(),
            delay: Duration::ZERO,
        }
    }

    fn header(mut self, name: &'static str, value: &str) -> Reply {
        self.headers.push((name, value.to_string()));
        self
    }

    fn delayed(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }
}

#[derive(Default)]
struct Script {
    requests: Mutex<Vec<Recorded>>,
    replies: Mutex<VecDeque<Reply>>,
}

/// A server on 127.0.0.1 that records requests and answers with its script, in order.
struct TestServer {
    addr: SocketAddr,
    script: Arc<Script>,
}

impl TestServer {
    async fn start(replies: Vec<Reply>) -> TestServer {
        let script = Arc::new(Script {
            requests: Mutex::new(Vec::new()),
            replies: Mutex::new(replies.into()),
        });
        let app = Router::new().fallback(handle).with_state(script.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1");
        let addr = listener.local_addr().expect("local address");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        TestServer { addr, script }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn requests(&self) -> Vec<Recorded> {
        self.script.requests.lock().expect("lock").clone()
    }

    fn only_request(&self) -> Recorded {
        let requests = self.requests();
        assert_eq!(requests.len(), 1, "expected exactly one request");
        requests.into_iter().next().expect("one request")
    }
}

async fn handle(
    State(script): State<Arc<Script>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    script.requests.lock().expect("lock").push(Recorded {
        method: method.to_string(),
        path: uri.path().to_string(),
        headers,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    });
    let reply = script.replies.lock().expect("lock").pop_front();
    let reply = reply.unwrap_or_else(|| Reply::json(500, r#"{"error":"no reply scripted"}"#));
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut response = Response::builder().status(reply.status);
    for (name, value) in &reply.headers {
        response = response.header(*name, value);
    }
    response
        .body(Body::from(reply.body))
        .expect("a valid response")
}

// ---------------------------------------------------------------------------------------
// Helpers.

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/providers")
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(data_dir().join(name)).expect("fixture")
}

fn http() -> reqwest::Client {
    reqwest::Client::new()
}

fn openai(server: &TestServer) -> OpenAiProvider {
    OpenAiProvider::new(
        http(),
        OpenAiFlavor::OpenAi,
        &server.url("/v1"),
        Some("sk-test".into()),
    )
}

fn anthropic(server: &TestServer) -> AnthropicProvider {
    AnthropicProvider::new(http(), &server.url(""), "sk-ant-test".into())
}

fn triage_schema() -> Value {
    let analysis = output_types();
    let ty = step_type(&analysis, "triage");
    json_schema_for(&ty, &analysis.program)
}

/// A request with a system prompt, a short conversation, sampling settings and a schema.
fn full_request(schema: Option<Value>) -> CompletionRequest {
    CompletionRequest {
        model: "gpt-4.1-mini".into(),
        system: Some("You triage support mail.".into()),
        messages: vec![
            ChatMessage::user("Message id: msg_1001\nCharged twice"),
            ChatMessage::assistant("{\"message_id\":\"msg_1001\"}"),
            ChatMessage::user("Again, with the category."),
        ],
        temperature: Some(0.2),
        max_tokens: Some(600),
        output_schema: schema,
        timeout: Duration::from_secs(10),
    }
}

fn short_request(model: &str) -> CompletionRequest {
    let mut request = CompletionRequest::new(model, "Say hello");
    request.timeout = Duration::from_secs(10);
    request
}

fn check_pack(path: &Path) -> Analysis {
    let source = std::fs::read_to_string(path).expect("pack source");
    let analysis = dsl_check::check(&source, &NoFiles);
    let errors: Vec<_> = analysis
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .collect();
    assert!(errors.is_empty(), "{}: {errors:#?}", path.display());
    analysis
}

fn output_types() -> Analysis {
    check_pack(&data_dir().join("output_types.gx"))
}

fn step_type(analysis: &Analysis, step: &str) -> Ty {
    analysis
        .program
        .step(step)
        .unwrap_or_else(|| panic!("no step `{step}`"))
        .ty
        .clone()
}

// ---------------------------------------------------------------------------------------
// OpenAI.

#[tokio::test]
async fn openai_sends_chat_completions_and_reads_the_answer() {
    let server = TestServer::start(vec![Reply::json(
        200,
        &fixture("openai_chat_completion.json"),
    )])
    .await;
    let completion = openai(&server)
        .complete(&full_request(Some(triage_schema())))
        .await
        .expect("completion");
    assert_eq!(
        completion,
        Completion {
            text: r#"{"message_id":"msg_1001","category":"billing","urgency":2,"customer":null}"#
                .into(),
            usage: Usage {
                input_tokens: 1117,
                output_tokens: 46
            },
            model: "gpt-4.1-mini-2025-04-14".into(),
            finish_reason: Some("stop".into()),
        }
    );
    let request = server.only_request();
    insta::assert_json_snapshot!("openai_request", request.shape());
    let format = &request.body["response_format"];
    assert_eq!(format["type"], "json_schema");
    assert_eq!(format["json_schema"]["strict"], true);
    assert_eq!(format["json_schema"]["schema"], triage_schema());
}

#[tokio::test]
async fn openai_wraps_a_non_object_schema_and_unwraps_the_answer() {
    let answer = json!({
        "model": "gpt-4.1-mini",
        "choices": [{ "index": 0, "message": { "role": "assistant", "content": "{\"value\":[\"billing\",\"bug\"]}" }, "finish_reason": "stop" }],
        "usage": { "prompt_tokens": 10, "completion_tokens": 5 },
    });
    let server = TestServer::start(vec![Reply::json(200, &answer.to_string())]).await;
    let schema = json!({ "type": "array", "items": { "type": "string" } });
    let mut request = short_request("gpt-4.1-mini");
    request.output_schema = Some(schema.clone());
    let completion = openai(&server)
        .complete(&request)
        .await
        .expect("completion");
    assert_eq!(completion.text, r#"["billing","bug"]"#);
    let body = server.only_request().body;
    assert_eq!(
        body["response_format"]["json_schema"]["schema"],
        json!({
            "type": "object",
            "properties": { "value": schema },
            "required": ["value"],
            "additionalProperties": false,
        })
    );
}

#[tokio::test]
async fn openai_free_text_request_is_minimal() {
    let server = TestServer::start(vec![Reply::json(
        200,
        &fixture("openai_chat_completion.json"),
    )])
    .await;
    openai(&server)
        .complete(&short_request("gpt-4.1-mini"))
        .await
        .expect("completion");
    assert_eq!(
        server.only_request().body,
        json!({
            "model": "gpt-4.1-mini",
            "messages": [{ "role": "user", "content": "Say hello" }],
        })
    );
}

#[test]
fn openai_reasoning_models_get_no_temperature_and_maps_are_not_strict() {
    let provider = OpenAiProvider::new(http(), OpenAiFlavor::OpenAi, "http://127.0.0.1:9/v1", None);
    let mut request = full_request(None);
    request.model = "o4-mini".into();
    let (body, _) = provider.request_body(&request, false);
    assert!(body.get("temperature").is_none());
    assert_eq!(body["max_completion_tokens"], 600);
    request.model = "gpt-4.1".into();
    let (body, _) = provider.request_body(&request, false);
    assert_eq!(body["temperature"], 0.2);

    let analysis = output_types();
    let stats = json_schema_for(&step_type(&analysis, "stats"), &analysis.program);
    request.output_schema = Some(stats);
    let (body, _) = provider.request_body(&request, false);
    assert_eq!(body["response_format"]["json_schema"]["strict"], false);
}

#[tokio::test]
async fn openai_compatible_server_without_key() {
    let server = TestServer::start(vec![Reply::json(
        200,
        &fixture("openai_chat_completion.json"),
    )])
    .await;
    let base = server.url("/v1/");
    let provider = build_provider("openai_compatible", Some(&base), None, http()).expect("built");
    provider
        .complete(&full_request(Some(triage_schema())))
        .await
        .expect("completion");
    let request = server.only_request();
    assert!(request.header("authorization").is_none());
    insta::assert_json_snapshot!("openai_compatible_request", request.shape());
}

#[tokio::test]
async fn openai_compatible_server_with_key() {
    let server = TestServer::start(vec![Reply::json(
        200,
        &fixture("openai_chat_completion.json"),
    )])
    .await;
    let base = server.url("/api/v1");
    let provider = build_provider(
        "openai_compatible",
        Some(&base),
        Some("local-key".into()),
        http(),
    )
    .expect("built");
    provider
        .complete(&short_request("smollm2"))
        .await
        .expect("completion");
    let request = server.only_request();
    assert_eq!(request.path, "/api/v1/chat/completions");
    assert_eq!(request.header("authorization"), Some("Bearer local-key"));
}

#[tokio::test]
async fn openai_compatible_falls_back_to_json_object_schemas() {
    // What llama-cpp-python answers to `response_format: json_schema`.
    let refusal = r#"{"error":{"message":"1 validation error:\n  {'type': 'literal_error', 'loc': ('body', 'response_format', 'type'), 'msg': \"Input should be 'text' or 'json_object'\", 'input': 'json_schema'}","type":"internal_server_error","param":null,"code":null}}"#;
    let server = TestServer::start(vec![
        Reply::json(500, refusal),
        Reply::json(200, &fixture("openai_chat_completion.json")),
        Reply::json(200, &fixture("openai_chat_completion.json")),
        Reply::json(500, refusal),
    ])
    .await;
    let provider =
        build_provider("openai_compatible", Some(&server.url("/v1")), None, http()).expect("built");
    let mut request = short_request("smollm2");
    request.output_schema = Some(triage_schema());
    provider.complete(&request).await.expect("second try");
    provider.complete(&request).await.expect("remembered");
    let formats: Vec<Value> = server
        .requests()
        .iter()
        .map(|r| r.body["response_format"].clone())
        .collect();
    assert_eq!(formats.len(), 3);
    assert_eq!(formats[0]["type"], "json_schema");
    assert_eq!(
        formats[1],
        json!({ "type": "json_object", "schema": triage_schema() })
    );
    assert_eq!(formats[2], formats[1]);
    // Other errors are not retried this way.
    let error = provider.complete(&request).await.expect_err("a 500");
    assert!(matches!(error, ProviderError::Transient(_)));
    assert_eq!(server.requests().len(), 4);
}

#[tokio::test]
async fn openai_streams_deltas_and_usage() {
    let server = TestServer::start(vec![Reply::sse(&fixture("openai_stream.sse"))]).await;
    let deltas = Mutex::new(Vec::new());
    let on_delta = |piece: &str| deltas.lock().expect("lock").push(piece.to_string());
    let completion = openai(&server)
        .complete_stream(&short_request("gpt-4.1-mini"), &on_delta)
        .await
        .expect("completion");
    assert_eq!(
        completion,
        Completion {
            text: "Hello, wörld".into(),
            usage: Usage {
                input_tokens: 19,
                output_tokens: 4
            },
            model: "gpt-4.1-mini-2025-04-14".into(),
            finish_reason: Some("stop".into()),
        }
    );
    assert_eq!(*deltas.lock().expect("lock"), vec!["Hello", ", wörld"]);
    let body = server.only_request().body;
    assert_eq!(body["stream"], true);
    assert_eq!(body["stream_options"], json!({ "include_usage": true }));
}

#[tokio::test]
async fn streams_are_read_as_they_arrive() {
    // The server sends the first event and holds the rest until the client has handed that
    // event's text to `on_delta`: a client that waited for the whole body would time out.
    let (chunks, receiver) = tokio::sync::mpsc::channel::<String>(4);
    let receiver = Arc::new(Mutex::new(Some(receiver)));
    let app = Router::new().fallback(move || {
        let receiver = receiver.lock().expect("lock").take();
        async move {
            let Some(receiver) = receiver else {
                return Response::builder()
                    .status(500)
                    .body(Body::empty())
                    .expect("response");
            };
            let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
                let chunk = receiver.recv().await?;
                Some((Ok::<_, std::convert::Infallible>(chunk), receiver))
            });
            Response::builder()
                .header("content-type", "text/event-stream")
                .body(Body::from_stream(stream))
                .expect("response")
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let event = |content: &str, finish: Option<&str>| {
        let chunk = json!({
            "model": "gpt-4.1-mini",
            "choices": [{ "index": 0, "delta": { "content": content }, "finish_reason": finish }],
        });
        format!("data: {chunk}\n\n")
    };
    chunks
        .send(event("Hello", None))
        .await
        .expect("first chunk");
    let rest = format!(
        "{}data: {}\n\ndata: [DONE]\n\n",
        event(" there", Some("stop")),
        json!({ "choices": [], "usage": { "prompt_tokens": 3, "completion_tokens": 2 } })
    );
    let on_delta = |piece: &str| {
        if piece == "Hello" {
            chunks.try_send(rest.clone()).expect("the rest");
        }
    };
    let provider = OpenAiProvider::new(
        http(),
        OpenAiFlavor::OpenAi,
        &format!("http://{addr}/v1"),
        Some("sk".into()),
    );
    let completion = provider
        .complete_stream(&short_request("gpt-4.1-mini"), &on_delta)
        .await
        .expect("completion");
    assert_eq!(completion.text, "Hello there");
    assert_eq!(
        completion.usage,
        Usage {
            input_tokens: 3,
            output_tokens: 2
        }
    );
}

#[tokio::test]
async fn openai_stream_cut_short_is_transient() {
    let cut: String = fixture("openai_stream.sse")
        .split("\n\n")
        .take(2)
        .collect::<Vec<_>>()
        .join("\n\n");
    let server = TestServer::start(vec![Reply::sse(&format!("{cut}\n\n"))]).await;
    let error = openai(&server)
        .complete_stream(&short_request("gpt-4.1-mini"), &|_| {})
        .await
        .expect_err("a cut stream fails");
    assert!(matches!(error, ProviderError::Transient(_)), "{error:?}");
}

#[tokio::test]
async fn openai_error_classes() {
    let openai_error = |message: &str, kind: &str, code: Option<&str>| {
        json!({ "error": { "message": message, "type": kind, "param": null, "code": code } })
            .to_string()
    };
    let cases: Vec<(Reply, ProviderError)> = vec![
        (
            Reply::json(429, &openai_error("Rate limit reached for gpt-4.1-mini", "requests", Some("rate_limit_exceeded")))
                .header("retry-after", "7"),
            ProviderError::RateLimited { retry_after: Some(Duration::from_secs(7)) },
        ),
        (
            Reply::json(429, &openai_error("Rate limit reached", "tokens", Some("rate_limit_exceeded")))
                .header("retry-after-ms", "1500")
                .header("retry-after", "2"),
            ProviderError::RateLimited { retry_after: Some(Duration::from_millis(1500)) },
        ),
        (
            Reply::json(429, &openai_error("Rate limit reached", "requests", None)),
            ProviderError::RateLimited { retry_after: None },
        ),
        (
            Reply::json(429, &openai_error("You exceeded your current quota", "insufficient_quota", Some("insufficient_quota"))),
            ProviderError::Permanent("HTTP 429 Too Many Requests: You exceeded your current quota".into()),
        ),
        (
            Reply::json(500, &openai_error("The server had an error while processing your request.", "server_error", None)),
            ProviderError::Transient("HTTP 500 Internal Server Error: The server had an error while processing your request.".into()),
        ),
        (
            Reply::json(503, "upstream connect error"),
            ProviderError::Transient("HTTP 503 Service Unavailable: upstream connect error".into()),
        ),
        (
            Reply::json(401, &openai_error("Incorrect API key provided: sk-test.", "invalid_request_error", Some("invalid_api_key"))),
            ProviderError::Auth("HTTP 401 Unauthorized: Incorrect API key provided: sk-test.".into()),
        ),
        (
            Reply::json(403, &openai_error("Country, region, or territory not supported", "request_forbidden", Some("unsupported_country_region_territory"))),
            ProviderError::Auth("HTTP 403 Forbidden: Country, region, or territory not supported".into()),
        ),
        (
            Reply::json(400, &openai_error("Invalid schema for response_format 'output'", "invalid_request_error", None)),
            ProviderError::Permanent("HTTP 400 Bad Request: Invalid schema for response_format 'output'".into()),
        ),
        (
            Reply::json(404, &openai_error("The model `gpt-9` does not exist", "invalid_request_error", Some("model_not_found"))),
            ProviderError::Permanent("HTTP 404 Not Found: The model `gpt-9` does not exist".into()),
        ),
    ];
    for (reply, expected) in cases {
        let server = TestServer::start(vec![reply.clone()]).await;
        let error = openai(&server)
            .complete(&short_request("gpt-4.1-mini"))
            .await
            .expect_err("an error");
        assert_eq!(error, expected, "for {reply:?}");
    }
}

#[tokio::test]
async fn openai_malformed_answers() {
    let server = TestServer::start(vec![
        Reply::json(200, "{\"choices\": [{\"message\": "),
        Reply::json(200, "{\"choices\": []}"),
        Reply::json(
            200,
            &json!({"choices": [{"message": {"role": "assistant", "content": null, "refusal": "I can't help with that."}, "finish_reason": "stop"}]}).to_string(),
        ),
    ])
    .await;
    let provider = openai(&server);
    let request = short_request("gpt-4.1-mini");
    let truncated = provider.complete(&request).await.expect_err("truncated");
    assert!(
        matches!(&truncated, ProviderError::Transient(m) if m.starts_with("malformed response body")),
        "{truncated:?}"
    );
    let empty = provider.complete(&request).await.expect_err("no choices");
    assert_eq!(
        empty,
        ProviderError::Transient("the answer has no choices".into())
    );
    let refused = provider.complete(&request).await.expect_err("refusal");
    assert_eq!(
        refused,
        ProviderError::InvalidOutput("the model refused: I can't help with that.".into())
    );
}

#[tokio::test]
async fn timeouts_and_refused_connections() {
    let server = TestServer::start(vec![
        Reply::json(200, &fixture("openai_chat_completion.json")).delayed(Duration::from_secs(30)),
        Reply::json(200, &fixture("anthropic_message.json")).delayed(Duration::from_secs(30)),
    ])
    .await;
    let mut request = short_request("gpt-4.1-mini");
    request.timeout = Duration::from_millis(200);
    let error = openai(&server)
        .complete(&request)
        .await
        .expect_err("timeout");
    assert_eq!(error, ProviderError::Timeout);
    let error = anthropic(&server)
        .complete(&request)
        .await
        .expect_err("timeout");
    assert_eq!(error, ProviderError::Timeout);

    // A port nobody listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address");
    drop(listener);
    let provider = OpenAiProvider::new(
        http(),
        OpenAiFlavor::OpenAi,
        &format!("http://{addr}/v1"),
        Some("sk".into()),
    );
    let error = provider
        .complete(&short_request("gpt-4.1-mini"))
        .await
        .expect_err("refused");
    assert!(matches!(error, ProviderError::Transient(_)), "{error:?}");
    assert!(error.is_retryable());
}

// ---------------------------------------------------------------------------------------
// Anthropic.

#[tokio::test]
async fn anthropic_sends_messages_and_reads_text_blocks() {
    let server =
        TestServer::start(vec![Reply::json(200, &fixture("anthropic_message.json"))]).await;
    let mut request = full_request(None);
    request.model = "claude-haiku-4-5".into();
    let completion = anthropic(&server)
        .complete(&request)
        .await
        .expect("completion");
    assert_eq!(
        completion,
        Completion {
            text: "Hi! My name is Claude. How can I help?".into(),
            usage: Usage {
                input_tokens: 2095,
                output_tokens: 503
            },
            model: "claude-haiku-4-5-20251001".into(),
            finish_reason: Some("end_turn".into()),
        }
    );
    insta::assert_json_snapshot!("anthropic_request", server.only_request().shape());
}

#[tokio::test]
async fn anthropic_forces_the_answer_tool_for_a_schema() {
    let server = TestServer::start(vec![
        Reply::json(200, &fixture("anthropic_tool_use.json")),
        Reply::json(200, &fixture("anthropic_message.json")),
    ])
    .await;
    let provider = anthropic(&server);
    let schema =
        json!({ "type": "array", "items": { "type": "string", "enum": ["billing", "bug"] } });
    let mut request = short_request("claude-sonnet-4-5");
    request.output_schema = Some(schema.clone());
    let completion = provider.complete(&request).await.expect("completion");
    assert_eq!(completion.text, r#"["billing","bug"]"#);
    assert_eq!(completion.finish_reason.as_deref(), Some("tool_use"));
    // Cache reads and writes count as input.
    assert_eq!(
        completion.usage,
        Usage {
            input_tokens: 1572,
            output_tokens: 51
        }
    );

    request.output_schema = Some(triage_schema());
    provider.complete(&request).await.expect("completion");
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    let body = &requests[0].body;
    assert_eq!(body["max_tokens"], 1024, "the default max_tokens");
    assert_eq!(
        body["tools"][0]["input_schema"]["properties"]["value"],
        schema
    );
    assert_eq!(
        body["tool_choice"],
        json!({ "type": "tool", "name": "answer" })
    );
    insta::assert_json_snapshot!("anthropic_schema_request", requests[1].shape());
}

#[tokio::test]
async fn anthropic_base_url_with_v1_and_temperature_clamp() {
    let server =
        TestServer::start(vec![Reply::json(200, &fixture("anthropic_message.json"))]).await;
    let provider = build_provider(
        "anthropic",
        Some(&server.url("/v1/")),
        Some("sk-ant".into()),
        http(),
    )
    .expect("built");
    let mut request = short_request("claude-haiku-4-5");
    request.temperature = Some(1.7);
    provider.complete(&request).await.expect("completion");
    let recorded = server.only_request();
    assert_eq!(recorded.path, "/v1/messages");
    assert_eq!(recorded.body["temperature"], 1.0);
}

#[tokio::test]
async fn anthropic_streams_text() {
    let server = TestServer::start(vec![Reply::sse(&fixture("anthropic_stream.sse"))]).await;
    let deltas = Mutex::new(String::new());
    let on_delta = |piece: &str| deltas.lock().expect("lock").push_str(piece);
    let completion = anthropic(&server)
        .complete_stream(&short_request("claude-haiku-4-5"), &on_delta)
        .await
        .expect("completion");
    assert_eq!(
        completion,
        Completion {
            text: "Hello!".into(),
            usage: Usage {
                input_tokens: 25,
                output_tokens: 15
            },
            model: "claude-haiku-4-5-20251001".into(),
            finish_reason: Some("end_turn".into()),
        }
    );
    assert_eq!(*deltas.lock().expect("lock"), "Hello!");
    assert_eq!(server.only_request().body["stream"], true);
}

#[tokio::test]
async fn anthropic_streams_a_tool_answer() {
    let server = TestServer::start(vec![Reply::sse(&fixture("anthropic_stream_tool.sse"))]).await;
    let mut request = short_request("claude-sonnet-4-5");
    request.output_schema = Some(triage_schema());
    let completion = anthropic(&server)
        .complete_stream(&request, &|_| {})
        .await
        .expect("completion");
    assert_eq!(
        serde_json::from_str::<Value>(&completion.text).expect("JSON"),
        json!({ "message_id": "msg_1001", "urgency": 2 })
    );
    assert_eq!(completion.finish_reason.as_deref(), Some("tool_use"));
    assert_eq!(
        completion.usage,
        Usage {
            input_tokens: 472,
            output_tokens: 89
        }
    );
}

#[tokio::test]
async fn anthropic_stream_errors() {
    let cut: String = fixture("anthropic_stream.sse")
        .split("\n\n")
        .take(4)
        .collect::<Vec<_>>()
        .join("\n\n");
    let server = TestServer::start(vec![
        Reply::sse(&fixture("anthropic_stream_overloaded.sse")),
        Reply::sse(&format!("{cut}\n\n")),
        Reply::sse("event: message_start\ndata: {not json\n\n"),
    ])
    .await;
    let provider = anthropic(&server);
    let request = short_request("claude-haiku-4-5");
    let overloaded = provider
        .complete_stream(&request, &|_| {})
        .await
        .expect_err("overloaded");
    assert_eq!(
        overloaded,
        ProviderError::Transient("overloaded_error: Overloaded".into())
    );
    let cut = provider
        .complete_stream(&request, &|_| {})
        .await
        .expect_err("cut");
    assert_eq!(
        cut,
        ProviderError::Transient("the stream ended before the answer did".into())
    );
    let malformed = provider
        .complete_stream(&request, &|_| {})
        .await
        .expect_err("malformed");
    assert!(
        matches!(malformed, ProviderError::Transient(m) if m.starts_with("malformed stream event"))
    );
}

#[tokio::test]
async fn anthropic_error_classes() {
    let anthropic_error = |kind: &str, message: &str| {
        json!({ "type": "error", "error": { "type": kind, "message": message }, "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy" })
            .to_string()
    };
    let cases: Vec<(Reply, ProviderError)> = vec![
        (
            Reply::json(529, &anthropic_error("overloaded_error", "Overloaded")),
            ProviderError::Transient("HTTP 529 <unknown status code>: Overloaded".into()),
        ),
        (
            Reply::json(429, &anthropic_error("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit"))
                .header("retry-after", "12"),
            ProviderError::RateLimited { retry_after: Some(Duration::from_secs(12)) },
        ),
        (
            Reply::json(500, &anthropic_error("api_error", "Internal server error")),
            ProviderError::Transient("HTTP 500 Internal Server Error: Internal server error".into()),
        ),
        (
            Reply::json(401, &anthropic_error("authentication_error", "invalid x-api-key")),
            ProviderError::Auth("HTTP 401 Unauthorized: invalid x-api-key".into()),
        ),
        (
            Reply::json(403, &anthropic_error("permission_error", "Your API key does not have permission to use the specified resource.")),
            ProviderError::Auth("HTTP 403 Forbidden: Your API key does not have permission to use the specified resource.".into()),
        ),
        (
            Reply::json(400, &anthropic_error("invalid_request_error", "max_tokens: Field required")),
            ProviderError::Permanent("HTTP 400 Bad Request: max_tokens: Field required".into()),
        ),
        (
            Reply::json(413, &anthropic_error("request_too_large", "Request exceeds the maximum allowed number of bytes.")),
            ProviderError::Permanent("HTTP 413 Payload Too Large: Request exceeds the maximum allowed number of bytes.".into()),
        ),
        (
            Reply::json(200, "<html>gateway</html>"),
            ProviderError::Transient("malformed response body (expected value at line 1 column 1): <html>gateway</html>".into()),
        ),
    ];
    for (reply, expected) in cases {
        let server = TestServer::start(vec![reply.clone()]).await;
        let error = anthropic(&server)
            .complete(&short_request("claude-haiku-4-5"))
            .await
            .expect_err("an error");
        assert_eq!(error, expected, "for {reply:?}");
    }
}

// ---------------------------------------------------------------------------------------
// Building providers, failure classes.

#[test]
fn build_provider_checks_its_arguments() {
    let error = |result: Result<Arc<dyn ModelProvider>, ProviderError>| match result {
        Ok(_) => panic!("expected an error"),
        Err(error) => error,
    };
    assert!(matches!(
        error(build_provider("openai", None, None, http())),
        ProviderError::Auth(_)
    ));
    assert!(matches!(
        error(build_provider("anthropic", None, Some("  ".into()), http())),
        ProviderError::Auth(_)
    ));
    assert!(matches!(
        error(build_provider("openai_compatible", None, None, http())),
        ProviderError::Permanent(_)
    ));
    assert_eq!(
        error(build_provider("gemini", None, Some("k".into()), http())).to_string(),
        "provider error: unknown provider `gemini` (expected openai, anthropic or openai_compatible)"
    );
    assert!(build_provider("openai", None, Some("sk".into()), http()).is_ok());
    assert!(build_provider("anthropic", None, Some("sk".into()), http()).is_ok());
}

#[test]
fn which_failures_are_retried() {
    let cases = [
        (ProviderError::Transient("x".into()), true, "transient"),
        (
            ProviderError::RateLimited { retry_after: None },
            true,
            "rate_limited",
        ),
        (ProviderError::Timeout, true, "timeout"),
        (
            ProviderError::InvalidOutput("x".into()),
            true,
            "invalid_output",
        ),
        (ProviderError::Auth("x".into()), false, "auth"),
        (ProviderError::Permanent("x".into()), false, "permanent"),
    ];
    for (error, retryable, class) in cases {
        assert_eq!(error.is_retryable(), retryable, "{error}");
        assert_eq!(error.class(), class);
        assert_eq!(error.retry_after(), None);
    }
    let wait = Some(Duration::from_secs(3));
    assert_eq!(
        ProviderError::RateLimited { retry_after: wait }.retry_after(),
        wait
    );
    assert_eq!(
        ProviderError::RateLimited {
            retry_after: Some(Duration::from_millis(1500))
        }
        .to_string(),
        "rate limited by the provider (retry after 1500 ms)"
    );
    assert_eq!(Role::Assistant.as_str(), "assistant");
}

// ---------------------------------------------------------------------------------------
// Schemas, output parsing and prices on packs.

#[test]
fn schemas_of_the_output_types() {
    let analysis = output_types();
    let mut schemas = serde_json::Map::new();
    for step in &analysis.program.steps {
        let schema = json_schema_for(&step.ty, &analysis.program);
        schemas.insert(
            step.name.to_string(),
            json!({ "type": step.ty.to_string(), "strict": is_strict_compatible(&schema), "schema": schema }),
        );
    }
    insta::assert_json_snapshot!("output_type_schemas", schemas);
}

#[test]
fn schemas_of_every_ask_in_the_example_packs() {
    let packs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../packs");
    let mut entries: Vec<_> = std::fs::read_dir(&packs)
        .expect("packs/")
        .filter_map(Result::ok)
        .filter(|e| e.path().is_dir())
        .map(|e| e.path())
        .collect();
    entries.sort();
    let mut all = serde_json::Map::new();
    for dir in entries {
        let name = dir.file_name().expect("name").to_string_lossy().to_string();
        let analysis = check_pack(&dir.join(format!("{name}.gx")));
        let plan = dsl_check::lower(&analysis).expect("a plan");
        let mut asks = Vec::new();
        model_calls(&plan.graph, &mut asks);
        for (id, ty) in asks {
            // The plan's type list and the program give the same schema.
            let from_plan = json_schema_for(&ty, &plan);
            let from_program = json_schema_for(&ty, &analysis.program);
            assert_eq!(from_plan, from_program, "{name}.{id}");
            all.insert(format!("{name}.{id} -> {ty}"), from_plan);
        }
    }
    insta::assert_json_snapshot!("example_pack_schemas", all);
}

/// The model calls (`ask`, `route`) of a plan graph and nested bodies: node id and output type.
fn model_calls(graph: &dsl_check::plan::Graph, out: &mut Vec<(String, Ty)>) {
    use dsl_check::plan::NodeKind;
    for node in graph.graph.node_weights() {
        match &node.kind {
            NodeKind::Ask { .. } | NodeKind::Route { .. } => {
                out.push((node.id.clone(), node.output.clone()));
            }
            NodeKind::Map { body, .. } | NodeKind::Review { body, .. } => model_calls(body, out),
            NodeKind::Branch {
                then, otherwise, ..
            } => {
                model_calls(then, out);
                if let Some(otherwise) = otherwise {
                    model_calls(otherwise, out);
                }
            }
            _ => {}
        }
    }
}

#[test]
fn output_cases() {
    let analysis = output_types();
    insta::glob!("data/providers/outputs/*.txt", |path| {
        let text = std::fs::read_to_string(path).expect("case");
        let (header, answer) = text.split_once('\n').expect("a header line");
        let step = header.strip_prefix("step: ").expect("step: NAME");
        let ty = step_type(&analysis, step);
        let rendered = match parse_output(answer, &ty, &analysis.program) {
            Ok(value) => format!(
                "type: {ty}\nok:\n{}",
                serde_json::to_string_pretty(&value).expect("JSON")
            ),
            Err(error) => format!("type: {ty}\nerror ({}): {error}", error.class()),
        };
        insta::assert_snapshot!(rendered);
    });
}

#[test]
fn prices_built_in_and_from_the_pack() {
    let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
    let table = PriceTable::new();
    let usage = Usage {
        input_tokens: 1_000_000,
        output_tokens: 500_000,
    };
    assert!(close(table.cost("gpt-4.1-mini", &usage), 1.20));
    assert!(close(table.cost("gpt-4.1-mini-2025-04-14", &usage), 1.20));
    assert!(close(table.cost("gpt-4o-2024-08-06", &usage), 7.50));
    assert!(close(
        table.cost("claude-sonnet-4-5-20250929", &usage),
        10.50
    ));
    assert!(close(table.cost("claude-3-7-sonnet-latest", &usage), 10.50));
    assert!(close(table.cost("claude-haiku-4-5", &usage), 3.50));
    // No loose prefixes: an unknown variant is not priced as its base model.
    assert_eq!(table.price("gpt-4.1-turbo"), None);
    assert_eq!(table.price("claude-sonnet-4-7"), None);
    assert_eq!(table.cost("smollm2-135m", &usage), 0.0);

    let analysis = output_types();
    let plan = dsl_check::lower(&analysis).expect("a plan");
    let table = PriceTable::for_plan(&plan);
    assert_eq!(
        table.price("gpt-4.1-mini"),
        Some(ModelPrice::new(9.0, 90.0))
    );
    let small = Usage {
        input_tokens: 1200,
        output_tokens: 300,
    };
    assert!(close(table.cost("gpt-4.1-mini", &small), 0.0378));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Whatever a model says, reading it never panics, and a String answer is the text.
    #[test]
    fn parsing_any_answer_never_panics(text in ".{0,200}", wrap in 0usize..4) {
        let analysis = output_types();
        let text = match wrap {
            0 => text,
            1 => format!("```json\n{text}\n```"),
            2 => format!("Sure! {{\"message_id\": {text:?}, \"category\": \"bug\", \"urgency\": 1}}"),
            _ => format!("[{text}]"),
        };
        for step in ["triage", "triages", "label", "stats", "total", "maybe", "draft"] {
            let _ = parse_output(&text, &step_type(&analysis, step), &analysis.program);
        }
        let parsed = parse_output(&text, &step_type(&analysis, "text"), &analysis.program);
        prop_assert_eq!(parsed, Ok(Value::String(text.trim().to_string())));
    }

    /// A valid Triage, however it is wrapped, reads back as itself (plus its citations).
    #[test]
    fn valid_answers_round_trip(
        id in "[a-z0-9_]{1,12}",
        category in prop::sample::select(vec!["billing", "bug", "outage", "how_to", "feature_request", "spam"]),
        urgency in 1i64..=5,
        customer in prop::option::of("[A-Za-z ]{1,20}"),
        tags in prop::collection::vec("[a-z]{1,8}", 0..4),
        // Two decimals: serde_json (without `float_roundtrip`) may read long mantissas 1 ulp off.
        score in (0u32..=100).prop_map(|n| f64::from(n) / 100.0),
        wrap in 0usize..3,
    ) {
        let analysis = output_types();
        let value = json!({
            "message_id": id, "category": category, "urgency": urgency,
            "customer": customer, "tags": tags, "score": score,
        });
        let text = match wrap {
            0 => value.to_string(),
            1 => format!("```json\n{}\n```", serde_json::to_string_pretty(&value).expect("JSON")),
            _ => format!("Here you go: {value}. Anything else?"),
        };
        let parsed = parse_output(&text, &step_type(&analysis, "triage"), &analysis.program);
        // An `ask` answer's record always carries its citations.
        let mut expected = value;
        expected["citations"] = json!([]);
        prop_assert_eq!(parsed, Ok(expected));
    }
}

// ---------------------------------------------------------------------------------------
// Whole runs (no `--sim`) whose models are the local server: knowledge in the prompt,
// citations checked against it.

/// A folder holding a pack and its files, with a SQLite store; removed when dropped.
struct PackDir {
    dir: PathBuf,
}

impl PackDir {
    fn new(name: &str, files: &[(&str, &str)]) -> PackDir {
        let dir = std::env::temp_dir().join(format!("galaxy-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("mkdir");
        for (path, text) in files {
            let path = dir.join(path);
            std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
            std::fs::write(path, text).expect("write");
        }
        PackDir { dir }
    }

    /// Starts a run of `source` (written as `pack.gx`) and runs it to its end.
    async fn run(
        &self,
        source: &str,
        sim: bool,
    ) -> Result<(runtime::RunStatus, runtime::report::RunReport), String> {
        use runtime::engine::{Engine, NewRun, RunOptions};
        let pack_path = self.dir.join("pack.gx");
        std::fs::write(&pack_path, source).expect("write the pack");
        let store = runtime::Store::open_sqlite_file(&self.dir.join("galaxy.db"))
            .await
            .expect("store");
        let (_cancel, receiver) = tokio::sync::watch::channel(false);
        let new_run = NewRun {
            source,
            pack_path: &pack_path,
            inputs: Vec::new(),
            input_json: None,
            options: RunOptions {
                sim,
                ..RunOptions::default()
            },
        };
        let engine = Engine::start(Some(store.clone()), new_run, receiver)
            .await
            .map_err(|e| e.to_string())?;
        let status = engine.execute().await.expect("runs");
        let report = runtime::report::RunReport::load(&store, engine.run_id())
            .await
            .expect("report");
        store.close().await;
        Ok((status, report))
    }
}

impl Drop for PackDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A pack whose agent answers from `knowledge` through an OpenAI-compatible server.
fn grounded_pack(base_url: &str, knowledge: &str) -> String {
    format!(
        r#"pack grounded {{
  language "0.1"
  type Answer {{
    reply: String
  }}
  model local = openai_compatible("tiny", base_url: "{base_url}") {{
    retry: 2
    backoff: 1ms
  }}
  knowledge kb = {knowledge}
  agent helper {{
    model: local
    knowledge: [kb]
  }}
  flow {{
    step answer = ask helper -> Answer {{
      prompt: "How long do refunds take?"
    }}
  }}
  policy {{
    egress allow ["127.0.0.1"]
  }}
}}
"#
    )
}

/// An OpenAI chat completion whose content is `answer` as JSON.
fn completion_of(answer: &Value) -> Reply {
    let body = common::chat_completion(answer, 300, 20);
    Reply::json(200, &body.to_string())
}

const REFUNDS: &str =
    "# Refunds and double charges\n\nRefunds reach the card in 5 to 10 business days.\n";
const SSO: &str = "# Admins and SSO\n\nOnly owners can turn on SSO.\n";

fn user_prompt(request: &Recorded) -> String {
    request.body["messages"]
        .as_array()
        .and_then(|m| m.last())
        .and_then(|m| m["content"].as_str())
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn knowledge_files_reach_the_prompt_and_citations_name_them() {
    let server = TestServer::start(vec![
        // An invented source is an invalid answer: retried.
        completion_of(&json!({
            "reply": "5 to 10 days",
            "citations": [{ "source": "[7]", "title": "x", "url": null, "quote": "5 to 10" }],
        })),
        completion_of(&json!({
            "reply": "5 to 10 business days",
            "citations": [{
                "source": "[2]", "title": "whatever", "url": null,
                "quote": "Refunds reach the card in 5 to 10 business days.",
            }],
        })),
    ])
    .await;
    let dir = PackDir::new(
        "knowledge-files",
        &[
            ("knowledge/admins-and-sso.md", SSO),
            ("knowledge/refunds.md", REFUNDS),
            ("knowledge/notes.txt", "not matched by the glob"),
        ],
    );
    let source = grounded_pack(&server.url("/v1"), r#"files("knowledge/*.md")"#);
    let (status, report) = dir.run(&source, false).await.expect("starts");
    assert_eq!(status, runtime::RunStatus::Succeeded, "{:?}", report.error);

    let requests = server.requests();
    assert_eq!(requests.len(), 2, "the answer citing [7] was retried");
    let prompt = user_prompt(&requests[0]);
    assert!(prompt.starts_with("How long do refunds take?"), "{prompt}");
    assert!(
        prompt.contains("[1] Admins and SSO (kb: knowledge/admins-and-sso.md)\n# Admins and SSO")
    );
    assert!(prompt.contains("[2] Refunds and double charges (kb: knowledge/refunds.md)"));
    assert!(prompt.contains("Refunds reach the card in 5 to 10 business days."));
    assert!(!prompt.contains("not matched by the glob"));

    let answer = report
        .steps
        .iter()
        .find(|s| s.id == "answer")
        .expect("answer");
    assert_eq!(answer.attempts, 2);
    assert_eq!(
        answer.output["citations"],
        json!([{
            "source": "kb",
            "title": "Refunds and double charges",
            "url": "knowledge/refunds.md",
            "quote": "Refunds reach the card in 5 to 10 business days.",
        }])
    );
    assert_eq!(report.citations, answer.output["citations"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sim_mode_cites_the_loaded_files_and_fetches_nothing() {
    let server = TestServer::start(Vec::new()).await;
    let dir = PackDir::new(
        "knowledge-sim",
        &[
            ("knowledge/admins-and-sso.md", SSO),
            ("knowledge/refunds.md", REFUNDS),
        ],
    );
    let source = grounded_pack(&server.url("/v1"), r#"files("knowledge/*.md")"#);
    let (status, one) = dir.run(&source, true).await.expect("starts");
    assert_eq!(status, runtime::RunStatus::Succeeded);
    let (_, two) = dir.run(&source, true).await.expect("starts");
    let citations = |report: &runtime::report::RunReport| {
        report
            .steps
            .iter()
            .find(|s| s.id == "answer")
            .expect("answer")
            .output["citations"]
            .clone()
    };
    assert_eq!(citations(&one), citations(&two), "deterministic for a seed");
    let list = citations(&one);
    let list = list.as_array().expect("citations");
    assert!(!list.is_empty());
    for citation in list {
        let text = match citation["url"].as_str() {
            Some("knowledge/refunds.md") => REFUNDS,
            Some("knowledge/admins-and-sso.md") => SSO,
            other => panic!("cites no loaded file: {other:?}"),
        };
        assert_eq!(citation["source"], "kb");
        assert!(text.contains(citation["quote"].as_str().expect("a quote")));
    }

    // A URL source in Sim Mode is cited but never fetched.
    let source = grounded_pack(
        &server.url("/v1"),
        &format!(r#"urls(["{}"])"#, server.url("/docs/refunds")),
    );
    let (status, report) = dir.run(&source, true).await.expect("starts");
    assert_eq!(status, runtime::RunStatus::Succeeded);
    assert!(server.requests().is_empty(), "Sim Mode fetched a URL");
    assert_eq!(report.citations[0]["url"], server.url("/docs/refunds"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn knowledge_urls_are_fetched_through_the_egress_allowlist() {
    let page = "<html><head><title>Refund policy</title></head><body><p>Refunds take 7 days &amp; no fee.</p></body></html>";
    let server = TestServer::start(vec![
        Reply {
            status: 200,
            headers: vec![("content-type", "text/html; charset=utf-8".into())],
            body: page.to_string(),
            delay: Duration::ZERO,
        },
        completion_of(&json!({
            "reply": "7 days",
            "citations": [{ "source": "1", "title": "", "url": null, "quote": "Refunds take 7 days" }],
        })),
    ])
    .await;
    let dir = PackDir::new("knowledge-urls", &[]);
    let url = server.url("/docs/refunds");
    let source = grounded_pack(&server.url("/v1"), &format!(r#"urls(["{url}"])"#));
    let (status, report) = dir.run(&source, false).await.expect("starts");
    assert_eq!(status, runtime::RunStatus::Succeeded, "{:?}", report.error);
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(
        (requests[0].method.as_str(), requests[0].path.as_str()),
        ("GET", "/docs/refunds")
    );
    let prompt = user_prompt(&requests[1]);
    assert!(
        prompt.contains(&format!(
            "[1] Refund policy (kb: {url})\nRefund policy Refunds take 7 days & no fee."
        )),
        "{prompt}"
    );
    assert_eq!(report.citations[0]["url"], url);
    assert_eq!(report.citations[0]["title"], "Refund policy");

    // A host outside the allowlist is never contacted (the model's host is allowed).
    let blocked = source.replace(&url, &url.replace("127.0.0.1", "localhost"));
    let server_requests = server.requests().len();
    let (status, report) = dir.run(&blocked, false).await.expect("starts");
    assert_eq!(status, runtime::RunStatus::Failed);
    let error = report.error.unwrap_or_default();
    assert!(
        error.contains("egress to `localhost` is not allowed") && error.contains("knowledge `kb`"),
        "{error}"
    );
    assert_eq!(server.requests().len(), server_requests);
}

#[tokio::test]
async fn missing_knowledge_files_stop_the_run_before_it_starts() {
    let dir = PackDir::new("knowledge-missing", &[("knowledge/a.md", "# A\n")]);
    let source = grounded_pack("http://127.0.0.1:9/v1", r#"files("docs/*.md")"#);
    let error = dir.run(&source, true).await.expect_err("no file matches");
    assert!(
        error.contains("knowledge `kb`: files(\"docs/*.md\") matches no file under"),
        "{error}"
    );
    let source = grounded_pack("http://127.0.0.1:9/v1", r#"files("knowledge/missing.md")"#);
    let error = dir.run(&source, false).await.expect_err("a missing file");
    assert!(error.contains("matches no file"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_with_different_keys_send_their_own_key() {
    // Names only this test uses: no other test reads or writes them.
    // SAFETY: set before the run starts, never changed while any thread reads them.
    unsafe {
        std::env::set_var("GALAXY_TEST_KEY_ALPHA", "key-alpha");
        std::env::set_var("GALAXY_TEST_KEY_BETA", "key-beta");
    }
    let answer = |reply: &str| completion_of(&json!({ "reply": reply, "citations": [] }));
    let server = TestServer::start(vec![answer("one"), answer("two")]).await;
    let base = server.url("/v1");
    let source = format!(
        r#"pack two_keys {{
  language "0.1"
  type Answer {{
    reply: String
  }}
  model alpha = openai_compatible("model-alpha", base_url: "{base}") {{
    api_key: secret("GALAXY_TEST_KEY_ALPHA")
  }}
  model beta = openai_compatible("model-beta", base_url: "{base}") {{
    api_key: secret("GALAXY_TEST_KEY_BETA")
  }}
  flow {{
    step first = ask alpha -> Answer {{
      prompt: "one"
    }}
    step second = ask beta -> Answer {{
      prompt: "two {{first.reply}}"
    }}
  }}
}}
"#
    );
    let dir = PackDir::new("two-keys", &[]);
    let (status, report) = dir.run(&source, false).await.expect("starts");
    assert_eq!(status, runtime::RunStatus::Succeeded, "{:?}", report.error);
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    for request in &requests {
        let expected = match request.body["model"].as_str() {
            Some("model-alpha") => "Bearer key-alpha",
            Some("model-beta") => "Bearer key-beta",
            other => panic!("unexpected model {other:?}"),
        };
        assert_eq!(request.header("authorization"), Some(expected));
    }
    // The keys are in no stored record.
    let shown = serde_json::to_string(&report).expect("JSON");
    assert!(!shown.contains("key-alpha") && !shown.contains("key-beta"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn top_k_sends_only_the_passages_that_match_the_prompt() {
    let server = TestServer::start(vec![completion_of(&json!({
        "reply": "5 to 10 business days",
        "citations": [{ "source": "[1]", "title": "", "url": null, "quote": "5 to 10 business days" }],
    }))])
    .await;
    let filler = "Office plants are watered on Mondays and lunch is served at noon.\n\n".repeat(30);
    let handbook = format!(
        "# Handbook\n\n{filler}Refunds reach the card in 5 to 10 business days.\n\n{filler}"
    );
    let dir = PackDir::new(
        "knowledge-top-k",
        &[
            ("knowledge/handbook.md", handbook.as_str()),
            ("knowledge/admins-and-sso.md", SSO),
        ],
    );
    let source = grounded_pack(
        &server.url("/v1"),
        r#"files("knowledge/*.md") {
    top_k: 1
    chunk_size: 40
  }"#,
    );
    let (status, report) = dir.run(&source, false).await.expect("starts");
    assert_eq!(status, runtime::RunStatus::Succeeded, "{:?}", report.error);
    let prompt = user_prompt(&server.only_request());
    assert!(
        prompt.contains("[1] Handbook (passage ")
            && prompt.contains("Refunds reach the card in 5 to 10 business days."),
        "{prompt}"
    );
    assert!(!prompt.contains("[2]"), "one passage only: {prompt}");
    assert!(!prompt.contains("Only owners can turn on SSO"), "{prompt}");
    assert!(
        prompt.len() < 1_000,
        "not the whole handbook: {} bytes",
        prompt.len()
    );
    assert_eq!(report.citations[0]["url"], "knowledge/handbook.md");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_host_outside_the_allowlist_stops_the_run_before_any_call() {
    let server = TestServer::start(vec![completion_of(&json!({ "reply": "hi" }))]).await;
    let dir = PackDir::new("egress-models", &[]);
    let allowed = grounded_pack(&server.url("/v1"), r#"files("knowledge/*.md")"#);
    let refused = allowed.replace(
        r#"egress allow ["127.0.0.1"]"#,
        r#"egress allow ["localhost", "*.example.com"]"#,
    );
    std::fs::create_dir_all(dir.dir.join("knowledge")).expect("mkdir");
    std::fs::write(dir.dir.join("knowledge/refunds.md"), REFUNDS).expect("write");
    for sim in [false, true] {
        let error = dir.run(&refused, sim).await.expect_err("GX0408 stops it");
        assert!(error.contains("the pack has errors"), "{error}");
    }
    assert!(
        server.requests().is_empty(),
        "a refused model was contacted"
    );
    let analysis = dsl_check::check(&refused, &NoFiles);
    let codes: Vec<&str> = analysis.diagnostics.iter().map(|d| d.code).collect();
    assert_eq!(codes, ["GX0408"]);

    let (status, report) = dir.run(&allowed, false).await.expect("starts");
    assert_eq!(status, runtime::RunStatus::Succeeded, "{:?}", report.error);
    assert_eq!(server.requests().len(), 1);
}

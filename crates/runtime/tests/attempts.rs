//! A step's `attempts` counts the tries it made, and the `attempts` table holds one row per
//! failed try (a successful try is the step's own row): a tool that fails transiently on
//! every try, a model whose answers fail validation, and a call the egress policy refuses,
//! against a local HTTP server on 127.0.0.1.

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use runtime::engine::{RunOptions, RunStatus};
use runtime::report::RunReport;
use runtime::store::AttemptRecord;
use serde_json::{Value, json};

mod common;
use common::{Sandbox, chat_completion};

/// A server on 127.0.0.1 that answers every request with `reply` and counts the requests.
struct Server {
    url: String,
    hits: Arc<Mutex<usize>>,
}

type Reply = (StatusCode, String);

async fn answer(State((reply, hits)): State<(Reply, Arc<Mutex<usize>>)>) -> impl IntoResponse {
    *hits.lock().expect("lock") += 1;
    let (status, body) = reply;
    (status, [("content-type", "application/json")], body)
}

impl Server {
    async fn start(status: StatusCode, body: Value) -> Server {
        let hits = Arc::new(Mutex::new(0));
        let app = axum::Router::new()
            .fallback(answer)
            .with_state(((status, body.to_string()), Arc::clone(&hits)));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1");
        let addr = listener.local_addr().expect("local address");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Server {
            url: format!("http://{addr}"),
            hits,
        }
    }

    fn hits(&self) -> usize {
        *self.hits.lock().expect("lock")
    }
}

/// What a run left in its store.
struct Finished {
    status: RunStatus,
    report: RunReport,
    attempts: Vec<AttemptRecord>,
    spans: Vec<runtime::trace::Span>,
}

impl Finished {
    /// The `answer` step's status and attempt count.
    fn answer(&self) -> (&str, i64) {
        let step = self
            .report
            .steps
            .iter()
            .find(|s| s.id == "answer")
            .expect("the answer step");
        (step.status.as_str(), step.attempts)
    }

    /// The `class` each attempt row records, in order.
    fn classes(&self) -> Vec<String> {
        self.attempts
            .iter()
            .map(|a| {
                let detail: Value = a
                    .detail_json
                    .as_deref()
                    .and_then(|d| serde_json::from_str(d).ok())
                    .unwrap_or(Value::Null);
                detail["class"].as_str().unwrap_or_default().to_string()
            })
            .collect()
    }
}

/// Runs `source` (not simulated) with `inputs` on a fresh SQLite store.
async fn run(name: &str, source: &str, inputs: &[(&str, &str)]) -> Finished {
    let sandbox = Sandbox::new(&format!("attempts-{name}")).await;
    let pack_path = sandbox.write_pack(source);
    let (run_id, status) = sandbox
        .run(source, &pack_path, RunOptions::default(), inputs)
        .await;
    let store = &sandbox.store;
    let report = RunReport::load(store, &run_id).await.expect("report");
    let mut attempts = store.attempts(&run_id).await.expect("attempts");
    attempts.sort_by_key(|a| a.attempt);
    let spans = runtime::trace::spans(store, &run_id).await.expect("spans");
    sandbox.finish().await;
    Finished {
        status,
        report,
        attempts,
        spans,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tool_failing_on_every_try_counts_each_try_once() {
    let server = Server::start(StatusCode::SERVICE_UNAVAILABLE, json!({ "error": "busy" })).await;
    let source = format!(
        r#"pack busy {{
  language "0.1"
  tool fetch() -> String {{
    scope: read
    hosts: ["127.0.0.1"]
    request: {{ method: "GET", url: "{}/busy" }}
    retry: 2
    backoff: 1ms
  }}
  flow {{
    step answer = fetch()
  }}
  policy {{
    egress allow ["127.0.0.1"]
  }}
}}
"#,
        server.url
    );
    let run = run("tool", &source, &[]).await;
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(server.hits(), 3, "the first try and two retries");
    assert_eq!(run.answer(), ("failed", 3));
    assert_eq!(
        run.attempts.iter().map(|a| a.attempt).collect::<Vec<_>>(),
        [1, 2, 3],
        "one row per try: {:#?}",
        run.attempts
    );
    assert_eq!(run.classes(), ["transient"; 3]);
    assert!(
        run.attempts
            .iter()
            .all(|a| a.model.as_deref() == Some("fetch") && a.status == "failed"),
        "{:#?}",
        run.attempts
    );
    // The trace shows the same three tries; the last carries the step's source span.
    let spans: Vec<(i64, &str)> = run
        .spans
        .iter()
        .filter(|s| s.step == "answer")
        .map(|s| (s.attempt, s.status.as_str()))
        .collect();
    assert_eq!(spans, [(1, "failed"), (2, "failed"), (3, "failed")]);
    let last = run
        .spans
        .iter()
        .rfind(|s| s.step == "answer")
        .expect("a span");
    assert!(last.detail["span"].is_array(), "{:?}", last.detail);
}

/// A pack asking `local` (retry 1) for an `Answer` through an OpenAI-compatible server.
fn model_pack(url: &str) -> String {
    format!(
        r#"pack validated {{
  language "0.1"
  type Answer {{
    reply: String
  }}
  model local = openai_compatible("tiny", base_url: "{url}/v1") {{
    retry: 1
    backoff: 1ms
  }}
  flow {{
    step answer = ask local -> Answer {{
      prompt: "hello"
    }}
  }}
  policy {{
    egress allow ["127.0.0.1"]
  }}
}}
"#
    )
}

/// A chat completion whose content is `content`.
fn completion(content: &Value) -> Value {
    chat_completion(content, 10, 5)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_whose_answers_fail_validation_counts_each_answer_once() {
    // Every answer lacks `reply`: each is an invalid output, retried once.
    let server = Server::start(StatusCode::OK, completion(&json!({ "other": 1 }))).await;
    let run = run("model", &model_pack(&server.url), &[]).await;
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(server.hits(), 2, "the first answer and one retry");
    assert_eq!(run.answer(), ("failed", 2));
    assert_eq!(
        run.attempts.iter().map(|a| a.attempt).collect::<Vec<_>>(),
        [1, 2],
        "one row per answer: {:#?}",
        run.attempts
    );
    assert_eq!(run.classes(), ["invalid_output"; 2]);
    assert!(
        run.attempts
            .iter()
            .all(|a| a.model.as_deref() == Some("tiny")),
        "{:#?}",
        run.attempts
    );
    let error = run.report.error.clone().unwrap_or_default();
    assert!(error.contains("(invalid_output)"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_the_policy_refuses_at_run_time_is_one_try() {
    // The URL comes from an input, so only the run-time check can refuse its host.
    let server = Server::start(StatusCode::OK, json!("fine")).await;
    let source = r#"pack refused {
  language "0.1"
  input {
    url: String
  }
  tool fetch(url: String) -> String {
    scope: read
    request: { method: "GET", url: url }
    retry: 2
    backoff: 1ms
  }
  flow {
    step answer = fetch(url: input.url)
  }
  policy {
    egress allow ["127.0.0.1"]
  }
}
"#;
    let elsewhere = server.url.replace("127.0.0.1", "localhost");
    let run = run("policy", source, &[("url", &format!("{elsewhere}/x"))]).await;
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(server.hits(), 0, "a refused request was sent");
    assert_eq!(run.answer(), ("failed", 1), "refused once, not retried");
    assert_eq!(run.classes(), ["policy"], "{:#?}", run.attempts);
    let error = run.report.error.clone().unwrap_or_default();
    assert!(
        error.contains("egress to `localhost` is not allowed by the policy"),
        "{error}"
    );
}

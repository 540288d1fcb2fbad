//! Real tool calls (no `--sim`) through a pack's `request` template against a local HTTP
//! server on 127.0.0.1: arguments in the query and body, the idempotency key on effects,
//! retries of a 503 with backoff, and the recorded attempts.

use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use runtime::engine::{RunOptions, RunStatus};
use runtime::report::RunReport;
use serde_json::{Value, json};

mod common;
use common::Sandbox;

/// Serves `app` on a free port of 127.0.0.1 and returns the port.
async fn serve(app: axum::Router) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    port
}

#[derive(Default)]
struct Seen {
    keys: Vec<String>,
    bodies: Vec<Value>,
    failures_left: u32,
}

type Shared = Arc<Mutex<Seen>>;

async fn items(RawQuery(query): RawQuery) -> Json<Value> {
    let n: i64 = query
        .unwrap_or_default()
        .split('&')
        .find_map(|pair| pair.strip_prefix("count="))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Json(json!({ "items": (0..n).collect::<Vec<_>>() }))
}

async fn record(
    State(seen): State<Shared>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    let mut seen = seen.lock().expect("lock");
    if seen.failures_left > 0 {
        seen.failures_left -= 1;
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "error": "busy" })),
        );
    }
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    seen.keys.push(key);
    seen.bodies.push(body.clone());
    (
        StatusCode::OK,
        Json(json!({ "id": format!("rec_{}", body["n"]), "n": body["n"] })),
    )
}

fn pack(port: u16) -> String {
    format!(
        r#"pack http_tools {{
  language "0.1"
  type Receipt {{
    id: String
    n: Int
  }}
  type Items {{
    items: [Int]
  }}
  tool list_items(count: Int) -> Items {{
    scope: read
    hosts: ["127.0.0.1"]
    request: {{
      method: "GET"
      url: "http://127.0.0.1:{port}/items"
      query: {{ count: count }}
    }}
  }}
  tool record(n: Int) -> Receipt {{
    scope: write
    hosts: ["127.0.0.1"]
    request: {{
      method: "POST"
      url: "http://127.0.0.1:{port}/record"
      body: {{ n: n }}
    }}
  }}
  flow {{
    step listed = list_items(count: 3)
    step written = map n in listed.items {{
      record(n: n)
    }}
  }}
  policy {{
    egress allow ["127.0.0.1"]
  }}
  outcome success when count(written) == 3
}}
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_templates_call_the_server_with_idempotency_keys_and_retry_503() {
    let seen: Shared = Arc::new(Mutex::new(Seen {
        failures_left: 1,
        ..Seen::default()
    }));
    let app = axum::Router::new()
        .route("/items", get(items))
        .route("/record", post(record))
        .with_state(Arc::clone(&seen));
    let port = serve(app).await;

    let sandbox = Sandbox::new("http-tools").await;
    let store = &sandbox.store;
    let source = pack(port);
    // It starts without keys: no model needs one.
    let (run_id, status) = sandbox
        .run(
            &source,
            Path::new("http_tools.gx"),
            RunOptions::default(),
            &[],
        )
        .await;
    assert_eq!(status, RunStatus::Succeeded);

    let report = RunReport::load(store, &run_id).await.expect("report");
    let written = report
        .steps
        .iter()
        .find(|s| s.id == "written")
        .expect("the map step");
    assert_eq!(written.output.as_array().map(Vec::len), Some(3));
    let mut keys = seen.lock().expect("lock").keys.clone();
    keys.sort();
    let expected: Vec<String> = (0..3)
        .map(|i| format!("{run_id}/written[{i}].body"))
        .collect();
    assert_eq!(
        keys, expected,
        "one request per effect, each with its idempotency key"
    );
    assert_eq!(report.effects.len(), 3);
    let retried = report.steps.iter().filter(|s| s.attempts == 2).count();
    assert_eq!(retried, 1, "the 503 was retried once");
    sandbox.finish().await;
}

/// A server that answers `/slow` only after 10 s, counting the requests it received.
async fn slow(State(hits): State<Arc<Mutex<u32>>>) -> Json<Value> {
    *hits.lock().expect("lock") += 1;
    tokio::time::sleep(std::time::Duration::from_secs(10)).await;
    Json(json!("late"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tool_timeout_cuts_each_slow_request_short_and_retries_it() {
    let hits = Arc::new(Mutex::new(0u32));
    let app = axum::Router::new()
        .route("/slow", get(slow))
        .with_state(Arc::clone(&hits));
    let port = serve(app).await;
    let source = format!(
        r#"pack slow_http {{
  language "0.1"
  tool fetch_slow() -> String {{
    scope: read
    hosts: ["127.0.0.1"]
    request: {{ method: "GET", url: "http://127.0.0.1:{port}/slow" }}
    timeout: 100ms
  }}
  flow {{
    step answer = fetch_slow()
  }}
  policy {{
    egress allow ["127.0.0.1"]
  }}
}}
"#
    );
    let sandbox = Sandbox::new("http-timeout").await;
    let store = &sandbox.store;
    let (run_id, status) = sandbox
        .run(
            &source,
            Path::new("slow_http.gx"),
            RunOptions::default(),
            &[],
        )
        .await;
    assert_eq!(status, RunStatus::Failed);

    let steps = store.steps(&run_id).await.expect("steps");
    let answer = steps.iter().find(|s| s.key == "answer").expect("answer");
    assert_eq!(answer.status, "failed");
    let error = answer.error.as_deref().unwrap_or("");
    assert!(error.starts_with("timeout:"), "{error}");
    assert!(error.contains("timeout 100 ms"), "{error}");
    // Three attempts (two retries), each recorded with the `timeout` class, each cut short;
    // the step counts exactly those tries.
    assert_eq!(answer.attempts, 3);
    let attempts = store.attempts(&run_id).await.expect("attempts");
    assert_eq!(attempts.len(), 3, "one row per try: {attempts:#?}");
    let timed_out: Vec<i64> = attempts
        .iter()
        .filter(|a| a.model.as_deref() == Some("fetch_slow"))
        .filter(|a| {
            a.detail_json
                .as_deref()
                .unwrap_or("")
                .contains(r#""class":"timeout""#)
        })
        .map(|a| a.ended_at - a.started_at)
        .collect();
    assert_eq!(timed_out.len(), 3, "{attempts:#?}");
    assert!(timed_out.iter().all(|ms| *ms < 10_000), "{timed_out:?}");
    assert_eq!(
        *hits.lock().expect("lock"),
        3,
        "each attempt reached the server"
    );
    sandbox.finish().await;
}

/// A server whose `/flaky` answers 503 a set number of times before it answers, and notes
/// when each request came.
#[derive(Default)]
struct Flaky {
    failures_left: u32,
    hits: Vec<std::time::Instant>,
}

async fn flaky(State(state): State<Arc<Mutex<Flaky>>>) -> (StatusCode, Json<Value>) {
    let mut state = state.lock().expect("lock");
    state.hits.push(std::time::Instant::now());
    if state.failures_left > 0 {
        state.failures_left -= 1;
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "error": "busy" })),
        );
    }
    (StatusCode::OK, Json(json!("fine")))
}

/// What one run of a flaky tool left behind.
struct FlakyRun {
    status: RunStatus,
    /// The step's status and recorded attempt count.
    step: (String, i64),
    /// The attempt rows recorded for the step, each checked to be a failed try of the tool.
    failed_attempts: usize,
    /// When each request reached the server.
    hits: Vec<std::time::Instant>,
}

/// Runs a pack whose one step calls `/flaky` through a tool with `props` (its retry rules),
/// the server failing the first `failures` requests.
async fn run_flaky(name: &str, props: &str, failures: u32) -> FlakyRun {
    let state = Arc::new(Mutex::new(Flaky {
        failures_left: failures,
        ..Flaky::default()
    }));
    let app = axum::Router::new()
        .route("/flaky", get(flaky))
        .with_state(Arc::clone(&state));
    let port = serve(app).await;
    let source = format!(
        r#"pack flaky_http {{
  language "0.1"
  tool fetch() -> String {{
    scope: read
    hosts: ["127.0.0.1"]
    request: {{ method: "GET", url: "http://127.0.0.1:{port}/flaky" }}
    {props}
  }}
  flow {{
    step answer = fetch()
  }}
  policy {{
    egress allow ["127.0.0.1"]
  }}
}}
"#
    );
    let sandbox = Sandbox::new(&format!("http-{name}")).await;
    let store = &sandbox.store;
    let (run_id, status) = sandbox
        .run(
            &source,
            Path::new("flaky_http.gx"),
            RunOptions::default(),
            &[],
        )
        .await;
    let steps = store.steps(&run_id).await.expect("steps");
    let answer = steps.iter().find(|s| s.key == "answer").expect("answer");
    let attempts = store.attempts(&run_id).await.expect("attempts");
    assert!(
        attempts
            .iter()
            .all(|a| a.model.as_deref() == Some("fetch") && a.status == "failed"),
        "every row is a failed try of the tool: {attempts:#?}"
    );
    let failed_attempts = attempts.len();
    let run = FlakyRun {
        status,
        step: (answer.status.clone(), answer.attempts),
        failed_attempts,
        hits: state.lock().expect("lock").hits.clone(),
    };
    sandbox.finish().await;
    run
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tool_retries_as_often_as_its_retry_says() {
    // Without retries, the first 503 fails the step: one request, one failed attempt.
    let once = run_flaky("retry-0", "retry: 0", 2).await;
    assert_eq!(once.status, RunStatus::Failed);
    assert_eq!(once.step.0, "failed");
    assert_eq!(once.hits.len(), 1, "no retry");
    assert_eq!(once.step.1, 1, "one try");
    assert_eq!(once.failed_attempts, 1);

    // Three retries outlast two 503s: the third request succeeds.
    let sturdy = run_flaky("retry-3", "retry: 3\n    backoff: 1ms", 2).await;
    assert_eq!(sturdy.status, RunStatus::Succeeded);
    assert_eq!(
        sturdy.step,
        ("succeeded".to_string(), 3),
        "two retries, then success"
    );
    assert_eq!(sturdy.hits.len(), 3);
    assert_eq!(sturdy.failed_attempts, 2);

    // The default stays two retries: three 503s fail the step after three requests.
    let default = run_flaky("retry-default", "backoff: 1ms", 3).await;
    assert_eq!(default.status, RunStatus::Failed);
    assert_eq!(default.hits.len(), 3, "two retries by default");
    assert_eq!(
        default.step,
        ("failed".to_string(), 3),
        "three tries, counted once each"
    );
    assert_eq!(default.failed_attempts, 3, "one row per try");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tool_waits_its_own_backoff_between_attempts() {
    // A backoff of 1.2 s waits between 0.6 and 1.2 s before the first retry: longer than
    // the default (500 ms) ever would.
    let run = run_flaky("backoff", "retry: 1\n    backoff: 1200ms", 1).await;
    assert_eq!(run.status, RunStatus::Succeeded);
    let [first, second] = run.hits.as_slice() else {
        panic!("two requests: {:?}", run.hits);
    };
    let waited = second.duration_since(*first);
    assert!(
        waited >= std::time::Duration::from_millis(600),
        "waited {waited:?}"
    );
}

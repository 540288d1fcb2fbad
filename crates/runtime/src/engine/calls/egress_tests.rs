//! The egress allowlist at run time, for model calls, against a local OpenAI-compatible
//! server on 127.0.0.1. The checker already refuses a pack whose model host is outside the
//! list (GX0408), so these tests lower a pack that checks and then narrow the plan's
//! allowlist: the runtime must hold the line on its own, whatever reaches it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::IntoResponse;
use serde_json::{Map, Value, json};

use crate::engine::{Engine, RunOptions, RunStatus, lower_source, new_run_id, now_ms};
use crate::report::{RunReport, StepReport};
use crate::store::{AttemptRecord, AuditRecord, RunRecord, StepRecord, Store};

/// A server that counts requests and answers each with a chat completion naming the model
/// it was asked for.
struct Server {
    url: String,
    requests: Arc<AtomicUsize>,
    models: Arc<std::sync::Mutex<Vec<String>>>,
}

#[derive(Clone)]
struct Seen {
    requests: Arc<AtomicUsize>,
    models: Arc<std::sync::Mutex<Vec<String>>>,
}

async fn answer(State(seen): State<Seen>, body: Bytes) -> impl IntoResponse {
    seen.requests.fetch_add(1, Ordering::SeqCst);
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let model = request["model"].as_str().unwrap_or_default().to_string();
    seen.models
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(model.clone());
    let content = json!({ "reply": format!("from {model}") }).to_string();
    axum::Json(json!({
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": model,
        "choices": [{
            "index": 0,
            "message": { "role": "assistant", "content": content },
            "finish_reason": "stop",
        }],
        "usage": { "prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15 },
    }))
}

impl Server {
    async fn start() -> Server {
        let seen = Seen {
            requests: Arc::new(AtomicUsize::new(0)),
            models: Arc::new(std::sync::Mutex::new(Vec::new())),
        };
        let app = Router::new().fallback(answer).with_state(seen.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1");
        let addr = listener.local_addr().expect("local address");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Server {
            url: format!("http://{addr}/v1"),
            requests: seen.requests,
            models: seen.models,
        }
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    fn models(&self) -> Vec<String> {
        self.models
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// A pack asking model `local` (`primary` at `primary_url`, with the fallback `backup` at
/// `fallback_url` when given); its allowlist admits both hosts, so it checks.
fn pack(primary_url: &str, fallback_url: Option<&str>) -> String {
    let fallback = fallback_url
        .map(|url| format!("\n    fallback: openai_compatible(\"backup\", base_url: \"{url}\")"))
        .unwrap_or_default();
    format!(
        r#"pack egress {{
  language "0.1"
  type Answer {{
    reply: String
  }}
  model local = openai_compatible("primary", base_url: "{primary_url}") {{
    retry: 2
    backoff: 1ms{fallback}
  }}
  flow {{
    step answer = ask local -> Answer {{
      prompt: "hello"
    }}
  }}
  policy {{
    egress allow ["127.0.0.1", "localhost"]
  }}
}}
"#
    )
}

/// What a finished run left in its store.
struct Finished {
    status: RunStatus,
    report: RunReport,
    attempts: Vec<AttemptRecord>,
    audit: Vec<AuditRecord>,
    steps: Vec<StepRecord>,
}

impl Finished {
    fn answer(&self) -> &StepReport {
        self.report
            .steps
            .iter()
            .find(|s| s.id == "answer")
            .expect("the answer step")
    }

    fn error(&self) -> String {
        self.report.error.clone().unwrap_or_default()
    }
}

/// Runs `source` with the plan's allowlist replaced by `allow`, on a fresh SQLite store.
async fn run(name: &str, source: &str, allow: &[&str], sim: bool) -> Finished {
    let dir: PathBuf =
        std::env::temp_dir().join(format!("galaxy-egress-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("mkdir");
    let pack_path = dir.join("pack.gx");
    std::fs::write(&pack_path, source).expect("write the pack");
    let lowered = lower_source(source, &pack_path).expect("the pack checks");
    let mut plan = lowered.plan;
    plan.policy.egress = Some(allow.iter().map(|h| h.to_string()).collect());
    let store = Store::open_sqlite_file(&dir.join("galaxy.db"))
        .await
        .expect("store");
    let run_id = new_run_id();
    let options = RunOptions {
        sim,
        ..RunOptions::default()
    };
    store
        .create_run(&RunRecord {
            id: run_id.clone(),
            pack_name: plan.pack.name.clone(),
            pack_path: pack_path.display().to_string(),
            source: source.to_string(),
            plan_json: lowered.plan_json,
            plan_hash: lowered.plan_hash,
            inputs_json: "{}".into(),
            options_json: serde_json::to_string(&options).unwrap_or_default(),
            status: RunStatus::Running.as_str().to_string(),
            outcome: None,
            error: None,
            result_json: None,
            created_at: now_ms(),
            updated_at: now_ms(),
        })
        .await
        .expect("create the run");
    let (_cancel, receiver) = tokio::sync::watch::channel(false);
    let engine = Engine::build(
        run_id.clone(),
        plan,
        options,
        Map::new(),
        dir.clone(),
        Some(store.clone()),
        HashMap::new(),
        HashMap::new(),
        0,
        receiver,
    );
    let status = engine.execute().await.expect("runs");
    drop(engine);
    let report = RunReport::load(&store, &run_id).await.expect("report");
    let attempts = store.attempts(&run_id).await.expect("attempts");
    let audit = store.audit(&run_id).await.expect("audit");
    let steps = store.steps(&run_id).await.expect("steps");
    store.close().await;
    remove(&dir);
    Finished {
        status,
        report,
        attempts,
        audit,
        steps,
    }
}

fn remove(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
}

fn is_policy(attempt: &AttemptRecord) -> bool {
    attempt
        .detail_json
        .as_deref()
        .is_some_and(|d| d.contains(r#""class":"policy""#))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_on_a_refused_host_is_never_contacted() {
    let server = Server::start().await;
    let source = pack(&server.url, None);

    let refused = run("refused", &source, &["localhost", "*.example.com"], false).await;
    assert_eq!(refused.status, RunStatus::Failed);
    assert_eq!(server.requests(), 0, "a refused model was contacted");
    let error = refused.error();
    assert!(
        error.contains("(policy)")
            && error.contains("egress to `127.0.0.1` is not allowed by the policy (model `local`")
            && error.contains(r#"add "127.0.0.1" to the policy's `egress allow` list"#),
        "{error}"
    );
    assert_eq!(refused.answer().attempts, 1, "a refusal is not retried");
    assert_eq!(refused.attempts.len(), 1, "one row for the one try");
    assert!(
        refused.attempts.iter().all(is_policy),
        "{:?}",
        refused.attempts
    );
    assert!(
        refused
            .audit
            .iter()
            .any(|e| e.kind == "step_failed"
                && e.detail.starts_with("policy: egress to `127.0.0.1`")),
        "{:?}",
        refused.audit
    );

    let allowed = run("allowed", &source, &["127.0.0.1"], false).await;
    assert_eq!(allowed.status, RunStatus::Succeeded, "{}", allowed.error());
    assert_eq!(server.requests(), 1);
    assert_eq!(allowed.answer().output["reply"], "from primary");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_model_falls_back_only_to_an_allowed_host() {
    let server = Server::start().await;
    // The same server under two names: `localhost` is refused, `127.0.0.1` allowed.
    let refused_url = server.url.replace("127.0.0.1", "localhost");
    let source = pack(&refused_url, Some(&server.url));

    let fallback = run("fallback", &source, &["127.0.0.1"], false).await;
    assert_eq!(
        fallback.status,
        RunStatus::Succeeded,
        "{}",
        fallback.error()
    );
    assert_eq!(
        server.models(),
        ["backup"],
        "only the allowed fallback is called"
    );
    assert_eq!(fallback.answer().output["reply"], "from backup");
    assert_eq!(
        fallback.answer().attempts,
        2,
        "the refusal, then the answer"
    );
    let refusal = fallback
        .attempts
        .iter()
        .find(|a| a.model.as_deref() == Some("primary"))
        .expect("the refused primary is recorded");
    assert!(is_policy(refusal), "{refusal:?}");
    assert!(
        refusal
            .error
            .as_deref()
            .is_some_and(|e| e.contains("egress to `localhost` is not allowed")),
        "{refusal:?}"
    );

    // Every host of the chain refused: no request at all, one failure naming them all.
    let none = run("none", &source, &["api.example.com"], false).await;
    assert_eq!(none.status, RunStatus::Failed);
    assert_eq!(server.requests(), 1, "nothing more was sent");
    let error = none.error();
    assert!(
        error.contains("(policy)")
            && error.contains("egress to `localhost`, `127.0.0.1` is not allowed")
            && error.contains("model `local` and its fallbacks"),
        "{error}"
    );
    // Each refused provider of the chain is one try, as when a fallback answers.
    assert_eq!(none.answer().attempts, 2);
    let refused: Vec<Option<&str>> = none
        .attempts
        .iter()
        .filter(|a| is_policy(a))
        .map(|a| a.model.as_deref())
        .collect();
    assert_eq!(
        refused,
        [Some("primary"), Some("backup")],
        "{:?}",
        none.attempts
    );
    assert_eq!(none.attempts.len(), 2, "{:?}", none.attempts);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tool_on_a_refused_host_is_one_try_that_sends_nothing() {
    let server = Server::start().await;
    let source = format!(
        r#"pack egress_tool {{
  language "0.1"
  tool fetch() -> String {{
    scope: read
    hosts: ["127.0.0.1"]
    request: {{ method: "GET", url: "{}/anything" }}
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
    for sim in [false, true] {
        let refused = run(&format!("tool-{sim}"), &source, &["localhost"], sim).await;
        assert_eq!(refused.status, RunStatus::Failed, "sim: {sim}");
        assert!(
            refused
                .error()
                .contains("egress to `127.0.0.1` is not allowed by the policy (tool fetch)"),
            "{}",
            refused.error()
        );
        // Refused before anything is sent: one try, not retried, one row of the `policy`
        // class carrying the step's source span.
        assert_eq!(refused.answer().attempts, 1, "sim: {sim}");
        let [row] = refused.attempts.as_slice() else {
            panic!("one row: {:?}", refused.attempts);
        };
        assert!(is_policy(row), "{row:?}");
        assert_eq!(row.attempt, 1);
        assert!(
            row.detail_json
                .as_deref()
                .is_some_and(|d| d.contains(r#""span":["#)),
            "{row:?}"
        );
    }
    assert_eq!(server.requests(), 0, "a refused tool was contacted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sim_mode_refuses_model_hosts_outside_the_allowlist() {
    let server = Server::start().await;
    let source = pack(&server.url, None);

    let refused = run("sim-refused", &source, &["localhost"], true).await;
    assert_eq!(refused.status, RunStatus::Failed, "refused in Sim Mode too");
    let error = refused.error();
    assert!(
        error.contains("(policy)") && error.contains("egress to `127.0.0.1` is not allowed"),
        "{error}"
    );

    // A refused model whose fallback is allowed answers as the fallback.
    let refused_url = server.url.replace("127.0.0.1", "localhost");
    let source = pack(&refused_url, Some(&server.url));
    let fallback = run("sim-fallback", &source, &["127.0.0.1"], true).await;
    assert_eq!(
        fallback.status,
        RunStatus::Succeeded,
        "{}",
        fallback.error()
    );
    assert_eq!(
        fallback.answer().attempts,
        2,
        "the refusal, then the answer"
    );
    assert!(
        fallback
            .attempts
            .iter()
            .any(|a| a.model.as_deref() == Some("primary") && is_policy(a)),
        "{:?}",
        fallback.attempts
    );
    assert!(
        fallback
            .steps
            .iter()
            .any(|s| s.key == "answer" && s.model.as_deref() == Some("sim:backup")),
        "{:?}",
        fallback.steps
    );
    assert_eq!(server.requests(), 0, "Sim Mode sent a request");
}

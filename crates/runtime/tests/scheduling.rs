//! Scheduling rules a pack declares, enforced at run time in Sim Mode: a model's `timeout`
//! cancels a slow call (retries and fallbacks apply, each attempt recorded as `timeout`),
//! and the policy's `rate` rules space the calls of a tool.

use std::path::Path;

use runtime::engine::{RunOptions, RunStatus};
use runtime::store::AttemptRecord;

mod common;
use common::Sandbox;

/// A finished Sim Mode run and the sandbox holding its store.
struct Run {
    sandbox: Sandbox,
    run_id: String,
    status: RunStatus,
}

impl std::ops::Deref for Run {
    type Target = Sandbox;

    fn deref(&self) -> &Sandbox {
        &self.sandbox
    }
}

/// Runs `source` in Sim Mode on a fresh SQLite store.
async fn run_sim(name: &str, source: &str) -> Run {
    let sandbox = Sandbox::new(&format!("scheduling-{name}")).await;
    let options = RunOptions {
        sim: true,
        seed: 3,
        ..RunOptions::default()
    };
    let (run_id, status) = sandbox
        .run(source, Path::new("scheduling.gx"), options, &[])
        .await;
    Run {
        sandbox,
        run_id,
        status,
    }
}

impl Run {
    async fn finish(self) {
        self.sandbox.finish().await;
    }
}

/// Each attempt's model (or tool) and how long it took, asserting each is of the `timeout`
/// class.
fn timed_out(attempts: &[AttemptRecord]) -> Vec<(&str, i64)> {
    assert!(
        attempts.iter().all(|a| a
            .detail_json
            .as_deref()
            .unwrap_or("")
            .contains(r#""class":"timeout""#)),
        "{attempts:#?}"
    );
    attempts
        .iter()
        .map(|a| (a.model.as_deref().unwrap_or(""), a.ended_at - a.started_at))
        .collect()
}

fn model_pack(latency: &str, timeout: &str) -> String {
    format!(
        r#"pack slow {{
  language "0.1"
  model m = openai("gpt-4.1-mini") {{
    sim_latency: {latency}
    timeout: {timeout}
    retry: 1
    backoff: 1ms
    fallback: anthropic("claude-haiku-4-5")
  }}
  flow {{
    step answer = ask m {{ prompt: "hello" }}
  }}
}}
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_slower_than_its_timeout_is_cancelled_retried_and_falls_back() {
    // A 20 s call under a 30 ms timeout: every attempt is cut short.
    let run = run_sim("timeout", &model_pack("20s", "30ms")).await;
    assert_eq!(run.status, RunStatus::Failed);
    let steps = run.store.steps(&run.run_id).await.expect("steps");
    let answer = steps.iter().find(|s| s.key == "answer").expect("answer");
    assert_eq!(answer.status, "failed");
    assert!(
        answer
            .error
            .as_deref()
            .unwrap_or("")
            .starts_with("timeout:"),
        "{:?}",
        answer.error
    );
    // Two attempts (one retry) on the model, then two on its fallback: four tries, four
    // rows, each a provider's attempt of the `timeout` class.
    assert_eq!(answer.attempts, 4);
    let mut attempts = run.store.attempts(&run.run_id).await.expect("attempts");
    attempts.sort_by_key(|a| a.attempt);
    assert_eq!(
        attempts.iter().map(|a| a.attempt).collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );
    let timed_out = timed_out(&attempts);
    let models: Vec<&str> = timed_out.iter().map(|(m, _)| *m).collect();
    assert_eq!(
        models,
        [
            "gpt-4.1-mini",
            "gpt-4.1-mini",
            "claude-haiku-4-5",
            "claude-haiku-4-5"
        ]
    );
    // Each attempt was cancelled, not waited out (its simulated call takes 20 s).
    assert!(
        timed_out.iter().all(|(_, ms)| *ms < 20_000),
        "{timed_out:?}"
    );
    run.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_within_its_timeout_succeeds_at_the_first_attempt() {
    let run = run_sim("in-time", &model_pack("5ms", "10s")).await;
    assert_eq!(run.status, RunStatus::Succeeded);
    let steps = run.store.steps(&run.run_id).await.expect("steps");
    let answer = steps.iter().find(|s| s.key == "answer").expect("answer");
    assert_eq!((answer.status.as_str(), answer.attempts), ("succeeded", 1));
    assert!(
        run.store
            .attempts(&run.run_id)
            .await
            .expect("attempts")
            .is_empty()
    );
    run.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_rules_space_the_calls_of_a_tool() {
    // Twelve calls of `work` at once, at most three per 150 ms; `other` is not limited.
    let source = r#"pack rated {
  language "0.1"
  tool items() -> [Int] {
    scope: read
    sim: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]
  }
  tool work(x: Int) -> Int {
    scope: read
    sim: x + 1
  }
  tool other(x: Int) -> Int {
    scope: read
    sim: x
  }
  policy {
    rate work 3 per 150ms
  }
  flow {
    step xs = items()
    step worked = map x in xs { work(x: x) }
    step free = map x in xs { other(x: x) }
  }
}
"#;
    let start = tokio::time::Instant::now();
    let run = run_sim("rate", source).await;
    let elapsed = start.elapsed();
    assert_eq!(run.status, RunStatus::Succeeded);
    let steps = run.store.steps(&run.run_id).await.expect("steps");
    let mut worked: Vec<i64> = steps
        .iter()
        .filter(|s| s.key.starts_with("worked[") && s.model.as_deref() == Some("work"))
        .map(|s| s.ended_at)
        .collect();
    worked.sort();
    assert_eq!(worked.len(), 12, "{steps:#?}");
    // Any four consecutive calls span at least the window (ms timestamps truncate, so one
    // millisecond of slack): no 150 ms window ever holds four.
    for four in worked.windows(4) {
        assert!(four[3] - four[0] >= 149, "{worked:?}");
    }
    // Twelve calls at three per window need three more windows after the first burst.
    assert!(
        elapsed >= std::time::Duration::from_millis(450),
        "{elapsed:?}"
    );
    run.finish().await;
}

fn tool_pack(latency: &str, timeout: &str) -> String {
    format!(
        r#"pack slow_tool {{
  language "0.1"
  tool lookup(id: String) -> String {{
    scope: read
    sim: "found " + id
    sim_latency: {latency}
    timeout: {timeout}
  }}
  flow {{
    step found = lookup(id: "42")
  }}
}}
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_simulated_tool_call_slower_than_its_timeout_is_cancelled_and_retried() {
    // A 20 s call under a 30 ms timeout: each of the three attempts (two retries) is cut short.
    let run = run_sim("tool-timeout", &tool_pack("20s", "30ms")).await;
    assert_eq!(run.status, RunStatus::Failed);
    let steps = run.store.steps(&run.run_id).await.expect("steps");
    let found = steps.iter().find(|s| s.key == "found").expect("found");
    assert_eq!(found.status, "failed");
    let error = found.error.as_deref().unwrap_or("");
    assert!(error.starts_with("timeout:"), "{error}");
    assert!(error.contains("timeout 30 ms"), "{error}");
    // Three tries, three rows: each the tool's attempt of the `timeout` class.
    assert_eq!(found.attempts, 3);
    let mut attempts = run.store.attempts(&run.run_id).await.expect("attempts");
    attempts.sort_by_key(|a| a.attempt);
    let timed_out = timed_out(&attempts);
    let tools: Vec<&str> = timed_out.iter().map(|(t, _)| *t).collect();
    assert_eq!(tools, ["lookup", "lookup", "lookup"], "{attempts:#?}");
    // Each attempt was cancelled, not waited out (its simulated call takes 20 s).
    assert!(
        timed_out.iter().all(|(_, ms)| *ms < 20_000),
        "{timed_out:?}"
    );
    run.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_simulated_tool_call_is_tried_as_often_as_its_retry_says() {
    for (retry, tries) in [(0, 1), (4, 5)] {
        // The timeout's line also carries the tool's retry rules.
        let rules = format!("30ms\n    retry: {retry}\n    backoff: 1ms");
        let run = run_sim(&format!("tool-retry-{retry}"), &tool_pack("20s", &rules)).await;
        assert_eq!(run.status, RunStatus::Failed);
        let steps = run.store.steps(&run.run_id).await.expect("steps");
        let found = steps.iter().find(|s| s.key == "found").expect("found");
        assert_eq!(found.attempts, tries as i64, "retry: {retry}");
        // One row per try, each the tool's, each timed out.
        let attempts = run.store.attempts(&run.run_id).await.expect("attempts");
        let timed_out = attempts
            .iter()
            .filter(|a| a.model.as_deref() == Some("lookup"))
            .filter(|a| {
                a.detail_json
                    .as_deref()
                    .unwrap_or("")
                    .contains(r#""class":"timeout""#)
            })
            .count();
        assert_eq!(timed_out, tries, "retry: {retry}: {attempts:#?}");
        assert_eq!(attempts.len(), tries, "retry: {retry}: {attempts:#?}");
        run.finish().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_simulated_tool_call_within_its_timeout_succeeds_at_the_first_attempt() {
    let run = run_sim("tool-in-time", &tool_pack("5ms", "10s")).await;
    assert_eq!(run.status, RunStatus::Succeeded);
    let steps = run.store.steps(&run.run_id).await.expect("steps");
    let found = steps.iter().find(|s| s.key == "found").expect("found");
    assert_eq!((found.status.as_str(), found.attempts), ("succeeded", 1));
    assert!(
        run.store
            .attempts(&run.run_id)
            .await
            .expect("attempts")
            .is_empty()
    );
    run.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_critic_that_times_out_counts_each_try_once() {
    // The draft comes at once; the critic's model never answers within its timeout.
    let source = r#"pack slow_critic {
  language "0.1"
  model fast = openai("gpt-4.1-mini")
  model slow = openai("gpt-4.1") {
    sim_latency: 20s
    timeout: 30ms
    retry: 1
    backoff: 1ms
  }
  agent editor {
    model: slow
    instructions: "Approve good drafts."
  }
  flow {
    step brief = review by editor until critique.approved max 2 {
      ask fast { prompt: "Write a draft." }
    }
  }
}
"#;
    let run = run_sim("slow-critic", source).await;
    assert_eq!(run.status, RunStatus::Failed);
    let steps = run.store.steps(&run.run_id).await.expect("steps");
    let critique = steps
        .iter()
        .find(|s| s.key == "brief#1.critique")
        .unwrap_or_else(|| panic!("the critique step: {steps:#?}"));
    assert_eq!(critique.status, "failed");
    let error = critique.error.as_deref().unwrap_or("");
    assert!(error.starts_with("timeout:"), "{error}");
    // The first try and one retry: two tries, two rows, both of the critic's model.
    assert_eq!(critique.attempts, 2);
    let attempts = run.store.attempts(&run.run_id).await.expect("attempts");
    let rows: Vec<(i64, Option<&str>)> = attempts
        .iter()
        .filter(|a| a.key == "brief#1.critique")
        .map(|a| (a.attempt, a.model.as_deref()))
        .collect();
    assert_eq!(
        rows,
        [(1, Some("gpt-4.1")), (2, Some("gpt-4.1"))],
        "{attempts:#?}"
    );
    run.finish().await;
}

/// Runs a fan-out of `width` 2 ms steps with room for `room` at once, in memory or on a
/// fresh SQLite store; returns the most steps counted as running at once and the steps stored.
async fn wave(width: usize, room: usize, durable: bool) -> (u64, usize) {
    let mut source = String::from(
        "pack wave {\n  language \"0.1\"\n  tool src() -> Int {\n    scope: read\n    sim: 1\n  }\n  tool work(x: Int) -> Int {\n    scope: read\n    sim: x + 1\n    sim_latency: 2ms\n  }\n  flow {\n    step s0 = src()\n",
    );
    for i in 1..=width {
        source.push_str(&format!("    step s{i} = work(x: s0)\n"));
    }
    source.push_str("  }\n}\n");
    let sandbox = Sandbox::new(&format!("wave-{durable}")).await;
    let store = durable.then(|| sandbox.store.clone());
    let options = RunOptions {
        sim: true,
        seed: 3,
        max_concurrency: Some(room),
        ..RunOptions::default()
    };
    let most = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let seen = std::sync::Arc::clone(&most);
    let engine = sandbox
        .start_on(store.clone(), &source, Path::new("wave.gx"), options, &[])
        .await
        .with_progress(std::sync::Arc::new(move |_, counters| {
            seen.fetch_max(counters.running as u64, std::sync::atomic::Ordering::SeqCst);
        }));
    let run_id = engine.run_id().to_string();
    assert_eq!(engine.execute().await.expect("runs"), RunStatus::Succeeded);
    let mut stored = 0;
    if let Some(store) = store {
        let steps = store.steps(&run_id).await.expect("steps");
        assert!(steps.iter().all(|s| s.status == "succeeded"));
        stored = steps.len();
    }
    sandbox.finish().await;
    (most.load(std::sync::atomic::Ordering::SeqCst), stored)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wide_wave_is_dispatched_as_the_concurrency_allows() {
    // 300 ready steps and room for 8: in memory, never more than 8 steps started (so never
    // more than 8 node futures held) at once; all 300 used to start at once, each then
    // waiting for a permit.
    let (most, _) = wave(300, 8, false).await;
    assert!((1..=8).contains(&most), "{most} steps started at once");
    // On the store, a step also counts as running until its commit is durable, so the count
    // may pass the room for a moment; every step still runs and is stored.
    let (most, stored) = wave(300, 8, true).await;
    assert!(most < 150, "{most} steps started at once");
    assert_eq!(stored, 301);
}

/// Cancelling a run reaches every step in flight at once, at any depth: a wave of slow
/// top-level steps and the items of a map in flight all stop long before their latency, each
/// recorded as interrupted, and the run is `interrupted`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_run_stops_every_step_in_flight_at_once() {
    let sandbox = Sandbox::new("scheduling-cancel").await;
    let source = r#"pack cancel_test {
  language "0.1"
  tool slow(n: Int) -> Int {
    scope: read
    sim: n
    sim_latency: 60s
  }
  flow {
    step a = slow(n: 1)
    step b = slow(n: 2)
    step c = slow(n: 3)
    step d = slow(n: 4)
    step e = slow(n: 5)
    step items = map n in [1, 2, 3, 4, 5, 6] concurrency 3 {
      slow(n: n)
    }
  }
}
"#;
    let options = RunOptions {
        sim: true,
        seed: 3,
        ..RunOptions::default()
    };
    let engine = sandbox
        .start(source, Path::new("cancel.gx"), options, &[])
        .await;
    let started = std::time::Instant::now();
    let (status, ()) = tokio::join!(engine.execute(), async {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        sandbox.cancel();
    });
    assert_eq!(status.expect("runs"), RunStatus::Interrupted);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "cancellation reached the steps in flight ({:?})",
        started.elapsed()
    );
    let attempts = sandbox
        .store
        .attempts(engine.run_id())
        .await
        .expect("attempts");
    let interrupted = attempts
        .iter()
        .filter(|a| a.status == "interrupted")
        .count();
    assert_eq!(
        interrupted, 8,
        "five top-level steps and three map items in flight: {attempts:?}"
    );
    sandbox.finish().await;
}

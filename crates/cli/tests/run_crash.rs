//! End-to-end crash safety: a run of many steps and effects is killed with SIGKILL (and, in
//! a second test, stopped with SIGTERM) half-way, resumed, and the store proves that every
//! step completed exactly once and no effect was issued under a second key. Also: a budget
//! stops a run (exit 4) and raising it lets the run finish.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use runtime::store::{EffectRecord, Store};
use serde_json::Value;

mod common;

use common::Sandbox;

/// What the crash tests need beyond the shared sandbox.
impl Sandbox {
    fn spawn(&self, args: &[&str]) -> Child {
        self.command(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("galaxy starts")
    }

    fn store<T>(&self, f: impl AsyncFnOnce(&Store) -> T) -> T {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let store = Store::open(&self.url()).await.expect("store opens");
            let out = f(&store).await;
            store.close().await;
            out
        })
    }

    /// Waits (polling, no deadline assertion) until the store holds at least `n` finished steps
    /// of the only run; returns its id.
    fn wait_for_steps(&self, n: usize, child: &mut Child) -> String {
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("the run ended before it could be stopped: {status}");
            }
            let found = self.store(async |store| {
                let runs = store.runs(1).await.ok()?;
                let run = runs.first()?;
                let steps = store.steps(&run.id).await.ok()?;
                (steps.len() >= n).then(|| run.id.clone())
            });
            if let Some(id) = found {
                return id;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The finished steps of a run with their start and end times.
    fn finished(&self, run_id: &str) -> HashMap<String, (i64, i64, i64)> {
        self.store(async |store| {
            store
                .steps(run_id)
                .await
                .expect("steps")
                .into_iter()
                .map(|s| (s.key, (s.started_at, s.ended_at, s.attempts)))
                .collect()
        })
    }

    /// Proves from the store that every step of the run completed exactly once: each step has
    /// one row (its key is the primary key), the steps finished before the stop kept their
    /// recorded start and end (nothing ran them again), every step took one attempt, and each
    /// effect has one key. Returns the effects.
    fn assert_exactly_once(
        &self,
        run_id: &str,
        before: &HashMap<String, (i64, i64, i64)>,
    ) -> Vec<EffectRecord> {
        let (steps, effects) = self.store(async |store| {
            (
                store.steps(run_id).await.expect("steps"),
                store.effects(run_id).await.expect("effects"),
            )
        });
        let after = self.finished(run_id);
        for (key, times) in before {
            assert_eq!(
                after.get(key),
                Some(times),
                "step {key} finished before the stop and ran again"
            );
        }
        // 1 list + 60 items + the map + count + confirmation.
        let items = steps
            .iter()
            .filter(|s| s.key.starts_with("written["))
            .count();
        assert_eq!(items, 60, "every item is recorded once");
        assert!(
            steps
                .iter()
                .all(|s| s.status == "succeeded" && s.attempts == 1),
            "{steps:?}"
        );
        assert_eq!(steps.len(), 64);
        assert_eq!(effects.len(), 61, "one effect, one key, per write call");
        for effect in &effects {
            assert_eq!(effect.status, "done", "{effect:?}");
            assert_eq!(effect.key, format!("{run_id}/{}", effect.step_key));
            assert!(after.contains_key(&effect.step_key), "{effect:?}");
        }
        effects
    }
}

#[test]
fn sigkill_mid_run_then_resume_completes_every_step_exactly_once() {
    let sandbox = Sandbox::new("kill");
    let mut child = sandbox.spawn(&["run", "tests/data/runtime/crash.gx", "--sim", "--json"]);
    let run_id = sandbox.wait_for_steps(12, &mut child);
    child.kill().expect("SIGKILL");
    let _ = child.wait();

    let (status, done_before, in_flight) = sandbox.store(async |store| {
        let run = store.run(&run_id).await.expect("run");
        let steps = store.steps(&run_id).await.expect("steps");
        let effects = store.effects(&run_id).await.expect("effects");
        let in_flight: Vec<String> = effects
            .iter()
            .filter(|e| e.status == "issued")
            .map(|e| e.key.clone())
            .collect();
        (run.status, steps.len(), in_flight)
    });
    assert_eq!(status, "running", "a crashed run is left as it was");
    assert!(
        done_before < 64,
        "killed half-way ({done_before} steps done)"
    );

    let before = sandbox.finished(&run_id);
    let (code, report) = sandbox.json(&["resume", &run_id, "--json"]);
    assert_eq!(code, 0, "{}", report["error"]);
    assert_eq!(report["outcome"], "success");
    let effects = sandbox.assert_exactly_once(&run_id, &before);
    for effect in &effects {
        if effect.times_issued > 1 {
            // Only an effect whose outcome was unknown at the crash is sent again, and with
            // the same idempotency key.
            assert!(
                in_flight.contains(&effect.key),
                "{effect:?} was re-sent though it was done"
            );
            assert_eq!(effect.times_issued, 2);
        }
    }
}

#[cfg(unix)]
#[test]
fn sigterm_interrupts_in_flight_calls_and_the_run_resumes() {
    let sandbox = Sandbox::new("term");
    let mut child = sandbox.spawn(&["run", "tests/data/runtime/crash.gx", "--sim", "--json"]);
    let run_id = sandbox.wait_for_steps(12, &mut child);
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill -TERM");
    assert!(killed.success());
    let status = child.wait().expect("exits");
    assert_eq!(status.code(), Some(130), "interrupted exit code");

    let (run_status, interrupted) = sandbox.store(async |store| {
        let run = store.run(&run_id).await.expect("run");
        let attempts = store.attempts(&run_id).await.expect("attempts");
        (
            run.status,
            attempts
                .iter()
                .filter(|a| a.status == "interrupted")
                .count(),
        )
    });
    assert_eq!(run_status, "interrupted");
    assert!(
        interrupted > 0,
        "cancellation reached the in-flight calls and was recorded"
    );

    let before = sandbox.finished(&run_id);
    let (code, report) = sandbox.json(&["resume", &run_id, "--json"]);
    assert_eq!(code, 0, "{}", report["error"]);
    sandbox.assert_exactly_once(&run_id, &before);
}

/// Ctrl-C (SIGINT) is an interrupt too: exit 130, and `--json` still prints the run, as
/// `interrupted` (the CLI contract in README.md and docs/run-json.md).
#[cfg(unix)]
#[test]
fn sigint_exits_130_and_prints_the_interrupted_run() {
    let sandbox = Sandbox::new("int");
    let mut child = sandbox
        .command(&["run", "tests/data/runtime/crash.gx", "--sim", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("galaxy starts");
    let run_id = sandbox.wait_for_steps(12, &mut child);
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill -INT");
    assert!(sent.success());
    let output = child.wait_with_output().expect("exits");
    assert_eq!(output.status.code(), Some(130), "interrupted exit code");
    let report: Value = serde_json::from_slice(&output.stdout).expect("the --json result");
    assert_eq!(report["run_id"], run_id.as_str());
    assert_eq!(report["status"], "interrupted");
    assert_eq!(report["outcome"], Value::Null);
}

#[test]
fn a_budget_stops_the_run_and_raising_it_lets_the_run_finish() {
    let sandbox = Sandbox::new("budget");
    let pack = "packs/inbox_triage/inbox_triage.gx";
    let (code, report) = sandbox.json(&[
        "run",
        pack,
        "--sim",
        "--input",
        "auto_send=true",
        "--budget",
        "tokens=4000",
        "--json",
    ]);
    assert_eq!(code, 4, "{report}");
    assert_eq!(report["status"], "budget_exceeded");
    assert!(
        report["error"]
            .as_str()
            .is_some_and(|e| e.contains("token budget")),
        "{}",
        report["error"]
    );
    let run_id = report["run_id"].as_str().unwrap_or_default().to_string();
    let done_before = report["steps"].as_array().map_or(0, Vec::len);

    let (code, again) = sandbox.json(&["resume", &run_id, "--json"]);
    assert_eq!(code, 4, "same budget, same stop");
    assert_eq!(
        again["steps"].as_array().map_or(0, Vec::len),
        done_before,
        "nothing more ran"
    );

    let (code, resumed) =
        sandbox.json(&["resume", &run_id, "--budget", "tokens=1000000", "--json"]);
    assert_eq!(code, 0, "{}", resumed["error"]);
    assert_eq!(resumed["status"], "succeeded");
    let tokens = resumed["usage"]["tokens"].as_i64().unwrap_or(0);
    assert!(tokens > 0 && tokens <= 1_000_000);
}

#[test]
fn a_money_budget_counts_the_price_table() {
    let sandbox = Sandbox::new("money");
    let (code, report) = sandbox.json(&[
        "run",
        "packs/inbox_triage/inbox_triage.gx",
        "--sim",
        "--input",
        "auto_send=true",
        "--budget",
        "money=0.001",
        "--json",
    ]);
    assert_eq!(code, 4, "{report}");
    assert!(
        report["error"]
            .as_str()
            .is_some_and(|e| e.contains("money budget"))
    );
    assert!(report["usage"]["cost"].as_f64().unwrap_or(1.0) <= 0.001);
}

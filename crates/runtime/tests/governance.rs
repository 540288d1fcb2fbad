//! Governance across invocations of one run, through the engine on a SQLite store: the wall
//! time budget counts every invocation, and an approval holds only for the exact arguments
//! approved.

use runtime::engine::{BudgetOverrides, Engine, RunOptions, RunStatus};
use runtime::report::RunReport;
use runtime::store::{Store, Write};
use serde_json::Value;

mod common;

/// A folder with a pack file and a SQLite store, removed when dropped.
struct Sandbox(common::Sandbox);

impl std::ops::Deref for Sandbox {
    type Target = common::Sandbox;

    fn deref(&self) -> &common::Sandbox {
        &self.0
    }
}

impl Sandbox {
    async fn new(name: &str) -> Sandbox {
        Sandbox(common::Sandbox::new(name).await)
    }

    /// Starts a Sim Mode run of `source` with `inputs` and runs it until it stops.
    async fn run(&self, source: &str, inputs: &[(&str, &str)]) -> (String, RunStatus) {
        let pack_path = self.write_pack(source);
        let options = RunOptions {
            sim: true,
            ..RunOptions::default()
        };
        self.0.run(source, &pack_path, options, inputs).await
    }

    async fn resume(&self, run_id: &str, budget: BudgetOverrides) -> RunStatus {
        let (_cancel, receiver) = tokio::sync::watch::channel(false);
        let engine = Engine::resume(self.store.clone(), run_id, budget, receiver)
            .await
            .expect("resumes");
        engine.execute().await.expect("runs")
    }

    /// Approves every pending approval, as `galaxy approve RUN STEP` does.
    async fn approve_all(&self, run_id: &str) -> Vec<String> {
        let mut writes = Vec::new();
        let mut keys = Vec::new();
        for mut approval in self.store.approvals(run_id).await.expect("approvals") {
            if approval.status == "pending" {
                keys.push(approval.key.clone());
                approval.status = "approved".into();
                approval.decided_by = Some("tester".into());
                writes.push(Write::Approval(approval));
            }
        }
        self.store.apply(run_id, &writes).await.expect("approve");
        keys
    }

    async fn report(&self, run_id: &str) -> RunReport {
        RunReport::load(&self.store, run_id).await.expect("report")
    }

    /// Changes a stored run's inputs (what a run resumed with other inputs would see).
    async fn set_inputs(&self, run_id: &str, inputs: &Value) {
        let Store::Sqlite(pool) = &self.store else {
            panic!("a SQLite store");
        };
        sqlx::query("UPDATE runs SET inputs_json = $1 WHERE id = $2")
            .bind(inputs.to_string())
            .bind(run_id)
            .execute(pool)
            .await
            .expect("update");
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Two slow steps with an approval between them, and a third step after them.
const TIMED: &str = r#"pack timed {
  language "0.1"
  tool slow(n: Int) -> Int {
    scope: read
    sim: n
    sim_latency: 500ms
  }
  tool quick(n: Int) -> Int {
    scope: read
    sim: n
  }
  flow {
    step first = slow(n: 1)
    step ok = approve "carry on after {first}?"
    step second = when ok {
      slow(n: 2)
    }
    step third = quick(n: second)
  }
  policy {
    budget 800ms time per run
  }
}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_time_budget_counts_every_invocation_of_a_run() {
    let sandbox = Sandbox::new("time-budget").await;
    // First invocation: `first` (500 ms), then the gate.
    let (run_id, status) = sandbox.run(TIMED, &[]).await;
    assert_eq!(status, RunStatus::WaitingApproval);
    sandbox.approve_all(&run_id).await;
    // Second invocation: `second` starts with about 500 ms used (under 800 ms) and takes
    // 500 ms more, so `third` finds the budget spent. Counted per invocation, `third` would
    // start at about 500 ms and the run would succeed.
    let status = sandbox.resume(&run_id, BudgetOverrides::default()).await;
    assert_eq!(status, RunStatus::BudgetExceeded);
    let report = sandbox.report(&run_id).await;
    let error = report.error.unwrap_or_default();
    assert!(error.contains("time budget of 800ms exhausted"), "{error}");
    let done: Vec<&str> = report.steps.iter().map(|s| s.id.as_str()).collect();
    assert!(done.contains(&"second.then"), "{done:?}");
    assert!(!done.contains(&"third"), "{done:?}");

    // Raising the budget lets the run finish.
    let raised = BudgetOverrides {
        time_ms: Some(60_000),
        ..BudgetOverrides::default()
    };
    assert_eq!(sandbox.resume(&run_id, raised).await, RunStatus::Succeeded);
    sandbox.store.close().await;
}

/// A destructive call of an input, behind its approval gate.
const GATED: &str = r#"pack gated {
  language "0.1"
  input {
    target: String
  }
  tool wipe(name: String) -> String {
    scope: destructive
    sim: "wiped {name}"
  }
  flow {
    step wiped = wipe(name: input.target)
  }
  policy {
    approve destructive
  }
}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_arguments_need_a_new_approval() {
    let sandbox = Sandbox::new("changed-arguments").await;
    let (run_id, status) = sandbox.run(GATED, &[("target", "staging")]).await;
    assert_eq!(status, RunStatus::WaitingApproval);
    let approved = sandbox.approve_all(&run_id).await;
    assert_eq!(approved.len(), 1);

    // What the call would receive changes after the approval.
    sandbox
        .set_inputs(&run_id, &serde_json::json!({ "target": "production" }))
        .await;
    let status = sandbox.resume(&run_id, BudgetOverrides::default()).await;
    assert_eq!(
        status,
        RunStatus::WaitingApproval,
        "the approval of `staging` does not cover `production`"
    );
    let report = sandbox.report(&run_id).await;
    assert!(report.effects.is_empty(), "nothing was wiped");
    let [pending] = report.pending_approvals.as_slice() else {
        panic!("one pending approval: {:?}", report.pending_approvals);
    };
    assert_eq!(pending.step, approved[0]);
    assert_eq!(pending.args["name"], "production");
    assert!(
        pending
            .reason
            .contains("arguments changed since the last approval"),
        "{}",
        pending.reason
    );

    // Approving the new arguments lets exactly that call through, once.
    sandbox.approve_all(&run_id).await;
    let status = sandbox.resume(&run_id, BudgetOverrides::default()).await;
    assert_eq!(status, RunStatus::Succeeded);
    let report = sandbox.report(&run_id).await;
    let wiped = report
        .steps
        .iter()
        .find(|s| s.id == "wiped")
        .expect("wiped");
    assert_eq!(wiped.output, "wiped production");
    assert_eq!(report.effects.len(), 1);
    assert_eq!(report.effects[0].times_issued, 1);
    sandbox.store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unchanged_arguments_keep_their_approval() {
    let sandbox = Sandbox::new("unchanged-arguments").await;
    let (run_id, status) = sandbox.run(GATED, &[("target", "staging")]).await;
    assert_eq!(status, RunStatus::WaitingApproval);
    sandbox.approve_all(&run_id).await;
    let status = sandbox.resume(&run_id, BudgetOverrides::default()).await;
    assert_eq!(status, RunStatus::Succeeded);
    let report = sandbox.report(&run_id).await;
    assert!(report.pending_approvals.is_empty());
    assert_eq!(report.effects.len(), 1);
    sandbox.store.close().await;
}

/// A destructive call of an input, behind its approval gate, that never answers in time.
const GATED_SLOW: &str = r#"pack gated_slow {
  language "0.1"
  input {
    target: String
  }
  tool wipe(name: String) -> String {
    scope: destructive
    sim: "wiped {name}"
    sim_latency: 10s
    timeout: 10ms
  }
  flow {
    step wiped = wipe(name: input.target)
  }
  policy {
    approve destructive
  }
}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passed_gate_rechecks_its_arguments_when_the_call_runs_again() {
    let sandbox = Sandbox::new("gate-recheck").await;
    let (run_id, status) = sandbox.run(GATED_SLOW, &[("target", "staging")]).await;
    assert_eq!(status, RunStatus::WaitingApproval);
    let approved = sandbox.approve_all(&run_id).await;
    assert_eq!(approved.len(), 1);

    // The gate passes with the approval, then the call itself fails (it times out): the gate
    // is recorded as passed, the guarded call is not done.
    let status = sandbox.resume(&run_id, BudgetOverrides::default()).await;
    assert_eq!(status, RunStatus::Failed);
    let attempts_before = sandbox
        .store
        .attempts(&run_id)
        .await
        .expect("attempts")
        .len();
    assert!(attempts_before >= 3, "the call was tried");

    // What the call would receive changes before the run is resumed again: the passed gate
    // must not let `production` through on the approval given for `staging`.
    sandbox
        .set_inputs(&run_id, &serde_json::json!({ "target": "production" }))
        .await;
    let status = sandbox.resume(&run_id, BudgetOverrides::default()).await;
    assert_eq!(
        status,
        RunStatus::WaitingApproval,
        "the approval of `staging` does not cover `production`"
    );
    assert_eq!(
        sandbox
            .store
            .attempts(&run_id)
            .await
            .expect("attempts")
            .len(),
        attempts_before,
        "the call was not tried with the changed arguments"
    );
    let report = sandbox.report(&run_id).await;
    let [pending] = report.pending_approvals.as_slice() else {
        panic!("one pending approval: {:?}", report.pending_approvals);
    };
    assert_eq!(pending.step, approved[0]);
    assert_eq!(pending.args["name"], "production");
    assert!(
        pending
            .reason
            .contains("arguments changed since the last approval"),
        "{}",
        pending.reason
    );
    sandbox.store.close().await;
}

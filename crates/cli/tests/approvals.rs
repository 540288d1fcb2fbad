//! End-to-end tests of a gate that asks again: `galaxy show` (text and `--json`) lists one
//! entry per gate with its current state, while the audit log keeps every request and
//! decision; the call re-sent with the approved arguments keeps its idempotency key, the
//! call with changed arguments is a new effect under a new key.

use serde_json::Value;

mod common;

use common::Sandbox;

/// A destructive call of an input, behind its approval gate, that never answers in time:
/// the gate passes, the call fails, so a resume checks the gate again.
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

const GATE: &str = "wiped.approval";

/// Runs `f` on a fresh tokio runtime (the store's API is async).
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(f)
}

/// Changes a stored run's inputs, as an operator editing the store would: what the gated
/// call receives changes after its approval.
fn set_inputs(sandbox: &Sandbox, run_id: &str, inputs: &Value) {
    let url = sandbox.url();
    block_on(async {
        let pool = sqlx::SqlitePool::connect(&url).await.expect("the store");
        sqlx::query("UPDATE runs SET inputs_json = $1 WHERE id = $2")
            .bind(inputs.to_string())
            .bind(run_id)
            .execute(&pool)
            .await
            .expect("update");
        pool.close().await;
    });
}

/// The run's audit log as `(kind, step)` pairs.
fn audit(sandbox: &Sandbox, run_id: &str) -> Vec<(String, String)> {
    let url = sandbox.url();
    block_on(async {
        let store = runtime::Store::open(&url).await.expect("the store");
        let events = store.audit(run_id).await.expect("audit");
        store.close().await;
        events
            .into_iter()
            .map(|e| (e.kind, e.step_key.unwrap_or_default()))
            .collect()
    })
}

/// The run's effects as `(key, times_issued, status)`, in the order first issued.
fn effects(report: &Value) -> Vec<(String, i64, String)> {
    report["effects"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            (
                e["key"].as_str().unwrap_or_default().to_string(),
                e["times_issued"].as_i64().unwrap_or(0),
                e["status"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// The entries of `report[field]` whose `key` is the gate.
fn gate_entries<'v>(report: &'v Value, field: &str, key: &str) -> Vec<&'v Value> {
    report[field]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|entry| entry[key] == GATE)
        .collect()
}

#[test]
fn show_lists_a_rechecked_gate_once_with_its_current_state() {
    let sandbox = Sandbox::new("gate-recheck-show");
    let pack = sandbox.dir.join("gated_slow.gx");
    std::fs::write(&pack, GATED_SLOW).expect("write the pack");
    let pack = pack.display().to_string();

    let (code, report) =
        sandbox.json(&["run", &pack, "--sim", "--input", "target=staging", "--json"]);
    assert_eq!(code, 3, "waits for approval: {report:#}");
    let run_id = report["run_id"].as_str().expect("a run id").to_string();
    let approve = sandbox.run(&["approve", &run_id, GATE, "--by", "dana"]);
    assert!(approve.status.success(), "{approve:?}");

    // The gate passes on the approval, then the call times out: the run fails.
    let (code, failed) = sandbox.json(&["resume", &run_id, "--json"]);
    assert_eq!(code, 1, "{failed:#}");
    let passed = gate_entries(&failed, "steps", "id");
    assert_eq!(passed.len(), 1, "{failed:#}");
    assert_eq!(passed[0]["status"], "succeeded");
    let first_key = format!("{run_id}/wiped");
    assert_eq!(
        effects(&failed),
        [(first_key.clone(), 1, "issued".to_string())],
        "the call was sent once, its outcome unknown: {failed:#}"
    );

    // Resumed with the same arguments, the gate passes on the same approval and the call is
    // sent again under the same key: the receiver can tell it is the same effect.
    let (code, same) = sandbox.json(&["resume", &run_id, "--json"]);
    assert_eq!(code, 1, "{same:#}");
    assert_eq!(
        effects(&same),
        [(first_key.clone(), 2, "issued".to_string())],
        "{same:#}"
    );

    // The arguments change: the next resume checks the gate again and asks anew.
    set_inputs(
        &sandbox,
        &run_id,
        &serde_json::json!({ "target": "production" }),
    );
    let (code, waiting) = sandbox.json(&["resume", &run_id, "--json"]);
    assert_eq!(code, 3, "{waiting:#}");
    let (code, shown) = sandbox.json(&["show", &run_id, "--json"]);
    assert_eq!(code, 0);
    assert_eq!(shown, waiting, "show prints what resume printed");
    assert_eq!(shown["status"], "waiting_approval");
    let pending = gate_entries(&shown, "pending_approvals", "step");
    assert_eq!(pending.len(), 1, "{shown:#}");
    assert_eq!(pending[0]["args"]["name"], "production");
    assert!(
        gate_entries(&shown, "steps", "id").is_empty(),
        "a gate waiting for a decision is not listed as passed: {shown:#}"
    );
    assert!(
        gate_entries(&shown, "approvals", "step").is_empty(),
        "the decision for `staging` no longer holds: {shown:#}"
    );

    let text = sandbox.run(&["show", &run_id]);
    assert!(text.status.success());
    let text = String::from_utf8_lossy(&text.stdout).into_owned();
    let gate_lines: Vec<&str> = text.lines().filter(|l| l.contains(GATE)).collect();
    assert_eq!(gate_lines.len(), 1, "one line for the gate:\n{text}");
    assert!(
        gate_lines[0].starts_with("waiting for approval: wiped.approval"),
        "{text}"
    );
    assert!(gate_lines[0].contains("production"), "{text}");

    // Approved again, the gate passes again; the call still times out. One entry each.
    let approve = sandbox.run(&["approve", &run_id, GATE, "--by", "erin"]);
    assert!(approve.status.success(), "{approve:?}");
    let (code, again) = sandbox.json(&["resume", &run_id, "--json"]);
    assert_eq!(code, 1, "{again:#}");
    assert!(gate_entries(&again, "pending_approvals", "step").is_empty());
    let passed = gate_entries(&again, "steps", "id");
    assert_eq!(passed.len(), 1, "{again:#}");
    assert_eq!(passed[0]["status"], "succeeded");
    let decided = gate_entries(&again, "approvals", "step");
    assert_eq!(decided.len(), 1, "{again:#}");
    assert_eq!(decided[0]["status"], "approved");
    assert_eq!(decided[0]["by"], "erin");

    // The call with the changed arguments is a new effect under a new key, so a receiver
    // that de-duplicates by key cannot answer it with the `staging` call's result; the
    // earlier effect keeps its row, its count and its unknown outcome.
    let sent = effects(&again);
    assert_eq!(sent.len(), 2, "{again:#}");
    assert_eq!(sent[0], (first_key.clone(), 2, "issued".to_string()));
    let (second_key, times, status) = &sent[1];
    assert_ne!(second_key, &first_key);
    assert!(
        second_key.starts_with(&format!("{first_key}/")),
        "{second_key}"
    );
    assert_eq!((*times, status.as_str()), (1, "issued"));

    // Resumed again with the `production` arguments: sent again under its own key.
    let (code, resent) = sandbox.json(&["resume", &run_id, "--json"]);
    assert_eq!(code, 1, "{resent:#}");
    assert_eq!(
        effects(&resent),
        [
            (first_key, 2, "issued".to_string()),
            (second_key.clone(), 2, "issued".to_string())
        ],
        "{resent:#}"
    );

    // The audit log keeps the whole history: both requests and both decisions.
    let history: Vec<&str> = audit(&sandbox, &run_id)
        .iter()
        .filter(|(kind, step)| step == GATE && kind.starts_with("approval_"))
        .map(|(kind, _)| match kind.as_str() {
            "approval_requested" => "requested",
            "approval_approved" => "approved",
            _ => "other",
        })
        .collect();
    assert_eq!(
        history,
        ["requested", "approved", "requested", "approved"],
        "every request and decision is in the audit log"
    );
}

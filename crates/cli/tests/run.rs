//! End-to-end tests of `galaxy run`, `approve`, `resume`, `runs`, `show` and `trace`: the
//! real binary on the example packs, with a fresh SQLite store per test.

use std::path::PathBuf;

use serde_json::Value;

mod common;

use common::{Sandbox, repo_root as repo};

fn pending(report: &Value) -> Vec<String> {
    report["pending_approvals"]
        .as_array()
        .map(|list| {
            list.iter()
                .filter_map(|p| p["step"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn steps_with_status<'v>(report: &'v Value, status: &str) -> Vec<&'v str> {
    report["steps"]
        .as_array()
        .map(|steps| {
            steps
                .iter()
                .filter(|s| s["status"] == status)
                .filter_map(|s| s["id"].as_str())
                .collect()
        })
        .unwrap_or_default()
}

fn expected_exit(status: &str) -> i32 {
    match status {
        "succeeded" => 0,
        "failed" => 1,
        "waiting_approval" => 3,
        "budget_exceeded" => 4,
        _ => -1,
    }
}

#[test]
fn every_pack_runs_in_sim_mode_and_finishes_after_approvals() {
    let sandbox = Sandbox::new("packs");
    let mut packs: Vec<PathBuf> = std::fs::read_dir(repo().join("packs"))
        .expect("packs/")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .map(|dir| {
            let name = dir
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            dir.join(format!("{name}.gx"))
        })
        .filter(|p| p.exists())
        .collect();
    packs.sort();
    assert!(packs.len() >= 6, "the example packs are there");
    for pack in packs {
        let pack_arg = pack.display().to_string();
        let (code, mut report) =
            sandbox.json(&["run", &pack_arg, "--sim", "--seed", "1", "--json"]);
        let status = report["status"].as_str().unwrap_or_default().to_string();
        assert_eq!(
            code,
            expected_exit(&status),
            "{pack_arg}: exit code matches status {status}"
        );
        assert!(
            status == "succeeded" || status == "waiting_approval",
            "{pack_arg}: {status}: {}",
            report["error"]
        );
        assert!(
            steps_with_status(&report, "failed").is_empty(),
            "{pack_arg}: no step failed"
        );
        let run_id = report["run_id"].as_str().unwrap_or_default().to_string();
        for _ in 0..6 {
            if report["status"] != "waiting_approval" {
                break;
            }
            let steps = pending(&report);
            assert!(
                !steps.is_empty(),
                "{pack_arg}: waiting means something is pending"
            );
            for step in steps {
                let output = sandbox.run(&["approve", &run_id, &step, "--by", "tester"]);
                assert!(output.status.success(), "{pack_arg}: approve {step}");
            }
            let (code, next) = sandbox.json(&["resume", &run_id, "--json"]);
            assert_eq!(
                code,
                expected_exit(next["status"].as_str().unwrap_or_default())
            );
            report = next;
        }
        assert_eq!(
            report["status"], "succeeded",
            "{pack_arg}: {}",
            report["error"]
        );
        assert_eq!(report["outcome"], "success", "{pack_arg}");
        assert!(
            report["usage"]["tokens"].as_i64().unwrap_or(0) > 0,
            "{pack_arg}: usage counted"
        );
        for step in report["steps"].as_array().into_iter().flatten() {
            assert!(
                step["attempts"].as_i64().unwrap_or(0) <= 1,
                "{pack_arg}: sim steps succeed at once"
            );
        }
    }
}

#[test]
fn approval_path_stops_then_resumes_from_exactly_the_gated_call() {
    let sandbox = Sandbox::new("approve");
    let pack = "packs/inbox_triage/inbox_triage.gx";
    let (code, report) = sandbox.json(&["run", pack, "--sim", "--seed", "1", "--json"]);
    assert_eq!(code, 3, "waits for approval");
    assert_eq!(report["status"], "waiting_approval");
    let steps = pending(&report);
    assert!(steps.iter().all(|s| s.starts_with("send[")), "{steps:?}");
    let sends = |r: &Value| {
        r["effects"]
            .as_array()
            .map(|e| e.iter().filter(|e| e["tool"] == "mail.send").count())
            .unwrap_or(0)
    };
    assert_eq!(sends(&report), 0, "nothing is sent before approval");
    let run_id = report["run_id"].as_str().unwrap_or_default().to_string();

    let unknown = sandbox.run(&["approve", &run_id, "nope"]);
    assert_eq!(unknown.status.code(), Some(2));

    for step in &steps {
        let output = sandbox.run(&[
            "approve",
            &run_id,
            step,
            "--by",
            "dana",
            "--note",
            "looks right",
        ]);
        assert!(output.status.success());
    }
    let (code, resumed) = sandbox.json(&["resume", &run_id, "--json"]);
    assert_eq!(code, 0, "{}", resumed["error"]);
    assert_eq!(resumed["status"], "succeeded");
    assert_eq!(sends(&resumed), steps.len(), "each approved reply is sent");
    for effect in resumed["effects"].as_array().into_iter().flatten() {
        assert_eq!(effect["times_issued"], 1, "{effect}");
    }

    // Nothing before the gate ran again: one attempt span per step in the trace.
    let (code, spans) = sandbox.json(&["trace", &run_id, "--format", "json"]);
    assert_eq!(code, 0);
    let mut seen = std::collections::HashMap::new();
    for span in spans.as_array().into_iter().flatten() {
        *seen
            .entry(span["step"].as_str().unwrap_or_default().to_string())
            .or_insert(0) += 1;
    }
    assert_eq!(seen.get("inbox"), Some(&1), "the search ran once: {seen:?}");
    assert!(
        seen.values().all(|n| *n == 1),
        "every step ran once: {seen:?}"
    );

    let text = spans.to_string();
    assert!(text.contains("\"inbox\""), "the trace has the steps");
    assert!(
        !text.contains("dana@northwind.example"),
        "traces are redacted"
    );
    assert!(text.contains("[REDACTED:email]"));

    let chrome = sandbox.run(&["trace", &run_id, "--format", "chrome"]);
    let chrome: Value = serde_json::from_slice(&chrome.stdout).expect("chrome JSON");
    assert!(
        chrome["traceEvents"]
            .as_array()
            .is_some_and(|e| !e.is_empty())
    );

    let (_, audit_report) = sandbox.json(&["show", &run_id, "--json"]);
    assert_eq!(
        audit_report["approvals"].as_array().map(Vec::len),
        Some(steps.len())
    );
    let (_, runs) = sandbox.json(&["runs", "--json"]);
    assert_eq!(runs[0]["run_id"], run_id.as_str());
}

#[test]
fn a_rejected_reply_is_never_sent() {
    let sandbox = Sandbox::new("reject");
    let pack = "packs/inbox_triage/inbox_triage.gx";
    let (code, report) = sandbox.json(&["run", pack, "--sim", "--seed", "1", "--json"]);
    assert_eq!(code, 3);
    let run_id = report["run_id"].as_str().unwrap_or_default().to_string();
    let output = sandbox.run(&["approve", &run_id, "send", "--reject", "--by", "dana"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let (code, resumed) = sandbox.json(&["resume", &run_id, "--json"]);
    assert_eq!(code, 0, "{}", resumed["error"]);
    let sent = resumed["effects"]
        .as_array()
        .map(|e| e.iter().filter(|e| e["tool"] == "mail.send").count());
    assert_eq!(sent, Some(0));
    assert!(!steps_with_status(&resumed, "rejected").is_empty());
    let send = resumed["steps"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["id"] == "send").cloned())
        .expect("the send step");
    assert_eq!(send["output"], serde_json::json!([]));
}

#[test]
fn auto_approval_lets_the_run_finish_in_one_go() {
    let sandbox = Sandbox::new("auto");
    let (code, report) = sandbox.json(&[
        "run",
        "packs/inbox_triage/inbox_triage.gx",
        "--sim",
        "--input",
        "auto_send=true",
        "--json",
    ]);
    assert_eq!(code, 0, "{}", report["error"]);
    assert!(pending(&report).is_empty());
}

#[test]
fn without_sim_and_keys_the_run_fails_before_starting() {
    let sandbox = Sandbox::new("keys");
    let output = sandbox.run(&["run", "packs/inbox_triage/inbox_triage.gx"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("ANTHROPIC_API_KEY"), "{stderr}");
    assert!(stderr.contains("--sim"), "{stderr}");
    let (_, runs) = sandbox.json(&["runs", "--json"]);
    assert_eq!(runs, serde_json::json!([]), "no run was recorded");
}

#[test]
fn usage_errors_exit_2() {
    let sandbox = Sandbox::new("usage");
    let output = sandbox.run(&[
        "run",
        "packs/inbox_triage/inbox_triage.gx",
        "--sim",
        "--input",
        "nope=1",
    ]);
    assert_eq!(output.status.code(), Some(2));
    let output = sandbox.run(&["resume", "no-such-run"]);
    assert_eq!(output.status.code(), Some(2));
    let output = sandbox.run(&[
        "run",
        "packs/inbox_triage/inbox_triage.gx",
        "--sim",
        "--sim-latency",
        "soon",
    ]);
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn galaxy_test_runs_every_eval_case_of_the_example_packs() {
    let sandbox = Sandbox::new("evals");
    for pack in [
        "packs/support_ticket_routing/support_ticket_routing.gx",
        "packs/weekly_kpi_report/weekly_kpi_report.gx",
    ] {
        let (code, result) = sandbox.json(&["test", pack, "--json"]);
        assert_eq!(code, 0, "{pack}: {result:#}");
        let cases = result["cases"].as_array().expect("cases");
        assert!(cases.len() >= 2, "{pack}");
        assert!(cases.iter().all(|c| c["passed"] == true), "{result:#}");
        assert_eq!(result["failed"], 0);
    }
    // The eval runs stay out of the project's runs.
    let (_, runs) = sandbox.json(&["runs", "--json"]);
    assert_eq!(runs.as_array().map(Vec::len), Some(0), "{runs:#}");
}

#[test]
fn galaxy_test_exits_1_when_a_case_fails() {
    let sandbox = Sandbox::new("evals-fail");
    let pack = sandbox.dir.join("failing.gx");
    let source = std::fs::read_to_string(
        repo().join("packs/support_ticket_routing/support_ticket_routing.gx"),
    )
    .expect("pack")
    .replace(
        "mock tickets.search returns file(\"fixtures/billing_ticket.json\")",
        "mock tickets.search returns { query: \"x\", total: 0, tickets: [] }",
    );
    std::fs::write(&pack, source).expect("write");
    // Fixtures are relative to the pack: give the copy the originals.
    let fixtures = repo().join("packs/support_ticket_routing/fixtures");
    let copy = sandbox.dir.join("fixtures");
    std::fs::create_dir_all(&copy).expect("mkdir");
    for entry in std::fs::read_dir(&fixtures).expect("fixtures").flatten() {
        std::fs::copy(entry.path(), copy.join(entry.file_name())).expect("copy");
    }
    let knowledge = repo().join("packs/support_ticket_routing/knowledge");
    let copy = sandbox.dir.join("knowledge");
    std::fs::create_dir_all(&copy).expect("mkdir");
    for entry in std::fs::read_dir(&knowledge).expect("knowledge").flatten() {
        std::fs::copy(entry.path(), copy.join(entry.file_name())).expect("copy");
    }
    let pack_arg = pack.display().to_string();
    let output = sandbox.run(&["test", &pack_arg]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("FAIL  a duplicate charge goes to billing with an approved reply"),
        "{stdout}"
    );
    assert!(stdout.contains("failed"), "{stdout}");
}

#[test]
fn a_run_resumes_from_another_directory() {
    let sandbox = Sandbox::new("elsewhere");
    // Started from the repository with a relative path; the pack reads knowledge files.
    let (code, report) = sandbox.json(&[
        "run",
        "packs/inbox_triage/inbox_triage.gx",
        "--sim",
        "--json",
    ]);
    assert_eq!(code, 3, "{report:#}");
    let run_id = report["run_id"].as_str().expect("run id").to_string();
    let output = sandbox.run(&["approve", &run_id, "send"]);
    assert!(output.status.success());
    let output = sandbox
        .command(&["resume", &run_id, "--json"])
        .current_dir(&sandbox.dir)
        .output()
        .expect("galaxy runs");
    let report: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("no JSON ({e}): {}", String::from_utf8_lossy(&output.stderr)));
    assert_eq!(output.status.code(), Some(0), "{report:#}");
    assert_eq!(report["status"], "succeeded");
}

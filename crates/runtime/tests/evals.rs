//! Eval cases (`galaxy test`) through the engine: a mocked tool returns its mock (checked
//! against the tool's result type), not its `sim`; the case's inputs, model mocks and
//! approval decisions apply; failed expectations and unfit mocks are reported.

use runtime::engine::{RunOptions, RunStatus};
use runtime::evals::{CaseResult, run_cases};
use runtime::report::RunReport;

mod common;

/// A folder with the pack, its fixtures and a SQLite store; removed when dropped.
struct Sandbox(common::Sandbox);

impl std::ops::Deref for Sandbox {
    type Target = common::Sandbox;

    fn deref(&self) -> &common::Sandbox {
        &self.0
    }
}

impl Sandbox {
    async fn new(name: &str) -> Sandbox {
        let sandbox = common::Sandbox::new(&format!("evals-{name}")).await;
        let dir = &sandbox.dir;
        std::fs::create_dir_all(dir.join("fixtures")).expect("mkdir");
        std::fs::write(
            dir.join("fixtures/counts.json"),
            r#"{ "total": 7, "amount": "99.50 usd", "note": null }"#,
        )
        .expect("fixture");
        std::fs::write(dir.join("fixtures/bad.json"), r#"{ "total": "many" }"#).expect("fixture");
        Sandbox(sandbox)
    }

    async fn cases(&self) -> Vec<CaseResult> {
        let pack = self.dir.join("pack.gx");
        std::fs::write(&pack, PACK).expect("pack");
        run_cases(&self.store, PACK, &pack, 0, None)
            .await
            .expect("the pack checks")
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

const PACK: &str = r#"pack counting {
  language "0.1"
  input {
    label: String = "default"
  }
  type Counts {
    total: Int
    amount: Money
    note: String?
  }
  type Summary {
    text: String
  }
  model local = openai("gpt-4.1-mini")
  agent writer {
    model: local
  }
  tool count_things() -> Counts {
    scope: read
    sim: { total: 1, amount: 1 usd, note: none }
  }
  tool wipe(label: String) -> String {
    scope: destructive
    sim: "wiped {label}"
  }
  flow {
    step counted = count_things()
    step summary = ask writer -> Summary {
      prompt: "Summarise {counted.total}"
    }
    step wiped = wipe(label: input.label)
  }
  policy {
    approve destructive
  }

  eval "the mocked count is used" {
    input label = "archive"
    mock count_things returns { total: 42, amount: 12.50 usd, note: "mocked" }
    mock writer returns { text: "forty-two" }
    approve wiped
    expect counted.total == 42
    expect counted.amount == 12.50 usd
    expect summary.text == "forty-two"
    expect wiped == "wiped archive"
  }

  eval "a fixture is converted to the result type" {
    mock count_things returns file("fixtures/counts.json")
    approve all
    expect counted.total == 7
    expect counted.amount == 99.50 usd
    expect counted.note == none
  }

  eval "a wrong expectation fails" {
    mock count_things returns { total: 3, amount: 1 usd, note: none }
    reject wiped
    expect counted.total == 4
  }

  eval "a mock that does not fit its type fails" {
    mock count_things returns file("fixtures/bad.json")
    approve all
  }

  eval "an undecided gate fails" {
    expect counted.total == 1
  }
}
"#;

fn case<'r>(results: &'r [CaseResult], name: &str) -> &'r CaseResult {
    results
        .iter()
        .find(|r| r.name == name)
        .unwrap_or_else(|| panic!("no case `{name}`"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eval_cases_use_their_tool_mocks_inputs_and_decisions() {
    let sandbox = Sandbox::new("cases").await;
    let results = sandbox.cases().await;
    assert_eq!(results.len(), 5);

    let mocked = case(&results, "the mocked count is used");
    assert!(mocked.passed, "{:?}", mocked.failures);
    assert_eq!(mocked.decisions, vec![("wiped.approval".to_string(), true)]);
    let report = RunReport::load(&sandbox.store, &mocked.run_id)
        .await
        .expect("report");
    let counted = report
        .steps
        .iter()
        .find(|s| s.id == "counted")
        .expect("counted");
    assert_eq!(counted.output["total"], 42, "the mock, not the sim");
    assert_eq!(counted.output["note"], "mocked");

    let fixture = case(&results, "a fixture is converted to the result type");
    assert!(fixture.passed, "{:?}", fixture.failures);

    let wrong = case(&results, "a wrong expectation fails");
    assert!(!wrong.passed);
    assert_eq!(
        wrong.failures,
        vec!["expect counted.total == 4: does not hold".to_string()]
    );
    assert_eq!(wrong.decisions, vec![("wiped.approval".to_string(), false)]);

    let unfit = case(&results, "a mock that does not fit its type fails");
    assert!(!unfit.passed);
    assert_eq!(unfit.status, "failed");
    let failure = unfit.failures.join("\n");
    assert!(
        failure.contains("mock of `count_things` does not fit its result type Counts")
            && failure.contains("`.total`: expected an integer"),
        "{failure}"
    );

    let undecided = case(&results, "an undecided gate fails");
    assert!(!undecided.passed);
    assert_eq!(undecided.status, "waiting_approval");
    assert!(
        undecided.failures[0].contains("waits for approval of wiped.approval"),
        "{:?}",
        undecided.failures
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_sim_run_keeps_the_tools_sim() {
    let sandbox = Sandbox::new("plain").await;
    let pack = sandbox.write_pack(PACK);
    let options = RunOptions {
        sim: true,
        ..RunOptions::default()
    };
    let (run_id, status) = sandbox.run(PACK, &pack, options, &[]).await;
    assert_eq!(status, RunStatus::WaitingApproval);
    let report = RunReport::load(&sandbox.store, &run_id)
        .await
        .expect("report");
    let counted = report
        .steps
        .iter()
        .find(|s| s.id == "counted")
        .expect("counted");
    assert_eq!(
        counted.output["total"], 1,
        "`galaxy run --sim` uses the tool's sim"
    );
}

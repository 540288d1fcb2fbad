//! The store suite: the same checks against embedded SQLite and the real PostgreSQL server
//! (`GALAXY_TEST_POSTGRES_URL`, a fresh schema per test run). Without the variable the
//! Postgres half says it is skipped, and why.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use runtime::engine::{BudgetOverrides, Engine, NewRun, RunOptions, RunStatus};
use runtime::report::RunReport;
use runtime::store::{
    ApprovalRecord, AttemptRecord, AuditRecord, RunRecord, StepRecord, Store, StoreError, Write,
};
use sqlx::postgres::PgConnectOptions;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn run_record(id: &str, created_at: i64) -> RunRecord {
    RunRecord {
        id: id.into(),
        pack_name: "p".into(),
        pack_path: "p.gx".into(),
        source: "pack p {}".into(),
        plan_json: "{}".into(),
        plan_hash: "h".into(),
        inputs_json: "{}".into(),
        options_json: "{}".into(),
        status: "running".into(),
        outcome: None,
        error: None,
        result_json: None,
        created_at,
        updated_at: created_at,
    }
}

fn step(key: &str, output: &str) -> StepRecord {
    StepRecord {
        key: key.into(),
        node: key.into(),
        status: "succeeded".into(),
        attempts: 1,
        started_at: 10,
        ended_at: 20,
        output_json: Some(output.into()),
        input_tokens: 3,
        output_tokens: 4,
        cost: 0.5,
        error: None,
        model: Some("m".into()),
        detail_json: None,
    }
}

fn attempt(key: &str, n: i64, status: &str) -> AttemptRecord {
    AttemptRecord {
        key: key.into(),
        attempt: n,
        status: status.into(),
        started_at: 10,
        ended_at: 20,
        input_tokens: 3,
        output_tokens: 4,
        cost: 0.5,
        model: Some("m".into()),
        error: None,
        detail_json: None,
    }
}

/// The records round-trip, effects count re-issues under one key, approvals are replaced,
/// the audit log keeps its order.
async fn records_round_trip(store: &Store) {
    store
        .create_run(&run_record("run-a", 1))
        .await
        .expect("create");
    store
        .create_run(&run_record("run-b", 2))
        .await
        .expect("create");
    let runs = store.runs(10).await.expect("runs");
    assert_eq!(
        runs.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["run-b", "run-a"],
        "newest first"
    );
    assert_eq!(store.run("run-a").await.expect("by id").pack_name, "p");
    assert!(matches!(
        store.run("nope").await,
        Err(StoreError::NoSuchRun(_))
    ));

    let approval = ApprovalRecord {
        key: "send.approval".into(),
        tool: "mail.send".into(),
        args_json: "{\"to\":\"a\"}".into(),
        args_hash: "x".into(),
        reason: "destructive".into(),
        status: "pending".into(),
        decided_by: None,
        note: None,
        requested_at: 5,
        decided_at: None,
    };
    let writes = vec![
        Write::Step(
            step("inbox", "{\"n\":1}"),
            vec![
                attempt("inbox", 1, "failed"),
                attempt("inbox", 2, "succeeded"),
            ],
        ),
        Write::EffectIssued {
            key: "run-a/send".into(),
            step_key: "send".into(),
            tool: "mail.send".into(),
            at: 7,
            args_hash: Some("h1".into()),
        },
        Write::Approval(approval.clone()),
        Write::Audit(AuditRecord {
            seq: 0,
            at: 1,
            kind: "run_started".into(),
            step_key: None,
            detail: String::new(),
        }),
        Write::Audit(AuditRecord {
            seq: 1,
            at: 2,
            kind: "approval_requested".into(),
            step_key: Some("send.approval".into()),
            detail: "d".into(),
        }),
    ];
    store.apply("run-a", &writes).await.expect("one batch");
    // A re-issue after a crash keeps the key; the step row is replaced, not duplicated.
    let writes = vec![
        Write::EffectIssued {
            key: "run-a/send".into(),
            step_key: "send".into(),
            tool: "mail.send".into(),
            at: 8,
            args_hash: Some("h1".into()),
        },
        Write::EffectDone {
            key: "run-a/send".into(),
        },
        Write::Step(step("inbox", "{\"n\":2}"), Vec::new()),
        Write::Approval(ApprovalRecord {
            status: "approved".into(),
            decided_by: Some("dana".into()),
            decided_at: Some(9),
            ..approval
        }),
        Write::RunStatus {
            status: "succeeded".into(),
            outcome: Some("success".into()),
            error: None,
            result_json: Some("{}".into()),
            at: 30,
        },
    ];
    store.apply("run-a", &writes).await.expect("second batch");

    let steps = store.steps("run-a").await.expect("steps");
    assert_eq!(steps.len(), 1);
    assert_eq!(steps[0].output_json.as_deref(), Some("{\"n\":2}"));
    assert_eq!(steps[0].cost, 0.5);
    let attempts = store.attempts("run-a").await.expect("attempts");
    assert_eq!(
        attempts.iter().map(|a| a.attempt).collect::<Vec<_>>(),
        [1, 2]
    );
    let effects = store.effects("run-a").await.expect("effects");
    assert_eq!(effects.len(), 1);
    assert_eq!(effects[0].times_issued, 2);
    assert_eq!(effects[0].status, "done");
    assert_eq!(effects[0].args_hash.as_deref(), Some("h1"));
    let approvals = store.approvals("run-a").await.expect("approvals");
    assert_eq!(approvals.len(), 1);
    assert_eq!(approvals[0].status, "approved");
    assert_eq!(approvals[0].decided_by.as_deref(), Some("dana"));
    let audit = store.audit("run-a").await.expect("audit");
    assert_eq!(
        audit.iter().map(|a| a.kind.as_str()).collect::<Vec<_>>(),
        ["run_started", "approval_requested"]
    );
    assert_eq!(store.next_audit_seq("run-a").await.expect("seq"), 2);
    let run = store.run("run-a").await.expect("run");
    assert_eq!(
        (run.status.as_str(), run.outcome.as_deref(), run.updated_at),
        ("succeeded", Some("success"), 30)
    );
    assert!(
        store.steps("run-b").await.expect("other run").is_empty(),
        "runs are separate"
    );
}

/// A real pack through the engine: waits at its gates, is approved, resumes to success, and
/// nothing runs twice.
async fn engine_on_store(store: &Store) {
    let pack = repo().join("packs/inbox_triage/inbox_triage.gx");
    let source = std::fs::read_to_string(&pack).expect("pack");
    let (_cancel, receiver) = tokio::sync::watch::channel(false);
    let new_run = NewRun {
        source: &source,
        pack_path: &pack,
        inputs: Vec::new(),
        input_json: None,
        options: RunOptions {
            sim: true,
            seed: 7,
            ..RunOptions::default()
        },
    };
    let engine = Engine::start(Some(store.clone()), new_run, receiver.clone())
        .await
        .expect("starts");
    let run_id = engine.run_id().to_string();
    assert_eq!(
        engine.execute().await.expect("runs"),
        RunStatus::WaitingApproval
    );
    let report = RunReport::load(store, &run_id).await.expect("report");
    assert!(!report.pending_approvals.is_empty());
    let steps_before = store.steps(&run_id).await.expect("steps").len();
    let mut writes = Vec::new();
    for mut approval in store.approvals(&run_id).await.expect("approvals") {
        approval.status = "approved".into();
        writes.push(Write::Approval(approval));
    }
    store.apply(&run_id, &writes).await.expect("approve");
    let engine = Engine::resume(store.clone(), &run_id, BudgetOverrides::default(), receiver)
        .await
        .expect("resumes");
    assert_eq!(engine.execute().await.expect("runs"), RunStatus::Succeeded);
    let report = RunReport::load(store, &run_id).await.expect("report");
    assert_eq!(report.outcome.as_deref(), Some("success"));
    assert!(report.steps.len() > steps_before);
    let attempts = store.attempts(&run_id).await.expect("attempts");
    let mut keys: Vec<&str> = attempts.iter().map(|a| a.key.as_str()).collect();
    let total = keys.len();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), total, "every step ran once");
    assert!(
        report
            .effects
            .iter()
            .all(|e| e.times_issued == 1 && e.status == "done")
    );
}

/// A wave of finished steps goes in multi-row statements: every row lands, where one batch
/// writes a key twice the later row wins (as row by row), and a held connection commits
/// batch after batch.
async fn big_batches(store: &Store) {
    let run = "run-batch";
    store
        .create_run(&run_record(run, 3))
        .await
        .expect("create run");
    let mut writes = Vec::new();
    // 603 step rows for 601 keys (`s3` and `s7` written twice in the batch): statements of
    // 256, 256, 32, 32, 4 x 6 and 1 x 3 on PostgreSQL; on SQLite, of 32 rows and then one at
    // a time. Each key's later row is the one read back.
    for i in 0..601 {
        let key = format!("s{i}");
        writes.push(Write::Step(
            step(&key, &i.to_string()),
            vec![attempt(&key, 1, "succeeded")],
        ));
        if i == 5 {
            writes.push(Write::Step(step("s3", "\"later\""), Vec::new()));
        }
    }
    writes.push(Write::Step(
        step("s7", "\"again\""),
        vec![attempt("s7", 1, "failed"), attempt("s7", 2, "succeeded")],
    ));
    for seq in 0..40 {
        writes.push(Write::Audit(AuditRecord {
            seq,
            at: 100 + seq,
            kind: "step_done".into(),
            step_key: Some(format!("s{seq}")),
            detail: format!("event {seq}"),
        }));
    }
    store.apply(run, &writes).await.expect("one big batch");
    let steps = store.steps(run).await.expect("steps");
    assert_eq!(steps.len(), 601);
    let s7 = steps.iter().find(|s| s.key == "s7").expect("s7");
    assert_eq!(s7.output_json.as_deref(), Some("\"again\""));
    let s3 = steps.iter().find(|s| s.key == "s3").expect("s3");
    assert_eq!(s3.output_json.as_deref(), Some("\"later\""));
    let s600 = steps.iter().find(|s| s.key == "s600").expect("s600");
    assert_eq!(s600.output_json.as_deref(), Some("600"));
    let attempts = store.attempts(run).await.expect("attempts");
    assert_eq!(attempts.len(), 602);
    let s7_attempts: Vec<&str> = attempts
        .iter()
        .filter(|a| a.key == "s7")
        .map(|a| a.status.as_str())
        .collect();
    assert_eq!(s7_attempts, ["failed", "succeeded"]);
    let audit = store.audit(run).await.expect("audit");
    let seqs: Vec<i64> = audit.iter().map(|a| a.seq).collect();
    assert_eq!(seqs, (0..40).collect::<Vec<i64>>());

    let mut connection = store.connection().await.expect("a connection");
    for round in 0..3 {
        connection
            .apply(
                run,
                &[Write::Step(step("s0", &format!("{round}")), Vec::new())],
            )
            .await
            .expect("a lone row");
    }
    let s0 = store.steps(run).await.expect("steps");
    let s0 = s0.iter().find(|s| s.key == "s0").expect("s0");
    assert_eq!(s0.output_json.as_deref(), Some("2"));
}

/// A wave's step rows alone (no attempts, no audit), as the writer commits them: every
/// column reads back as written, the later of two rows for one key wins, and a batch with
/// one bad row leaves nothing behind and the connection usable.
async fn step_waves(store: &Store) {
    let run = "run-wave";
    store
        .create_run(&run_record(run, 4))
        .await
        .expect("create run");
    let mut connection = store.connection().await.expect("a connection");
    let mut wave: Vec<StepRecord> = (0..40)
        .map(|i| {
            let mut record = step(&format!("w{i}"), &format!("{{\"n\":{i}}}"));
            record.started_at = 1_796_571_959_781 + i;
            record.ended_at = i64::MAX - i;
            record.cost = 0.125 * i as f64;
            record.input_tokens = i;
            if i % 3 == 0 {
                record.output_json = None;
                record.model = None;
                record.error = Some(format!("échec n° {i} — \"quoted\"\n"));
                record.detail_json = Some(String::new());
            }
            record
        })
        .collect();
    let mut again = step("w5", "\"later\"");
    again.status = "failed".into();
    let writes: Vec<Write> = wave
        .iter()
        .chain(std::iter::once(&again))
        .map(|record| Write::Step(record.clone(), Vec::new()))
        .collect();
    connection.apply(run, &writes).await.expect("a wave");
    wave[5] = again;
    let mut stored = store.steps(run).await.expect("steps");
    stored.sort_by_key(|s| s.key[1..].parse::<i64>().unwrap_or(-1));
    assert_eq!(stored, wave);

    let mut bad: Vec<Write> = (0..20)
        .map(|i| Write::Step(step(&format!("b{i}"), "1"), Vec::new()))
        .collect();
    // A row each backend refuses: SQLite stores a NaN as NULL, which the NOT NULL column
    // refuses; PostgreSQL keeps a NaN but refuses a NUL character in text.
    if let Write::Step(record, _) = &mut bad[14] {
        match store.backend() {
            "sqlite" => record.cost = f64::NAN,
            _ => record.error = Some("nul \0 byte".into()),
        }
    }
    assert!(
        connection.apply(run, &bad).await.is_err(),
        "the bad row fails the wave"
    );
    assert_eq!(
        store.steps(run).await.expect("steps").len(),
        40,
        "nothing of the bad wave"
    );
    let good: Vec<Write> = (0..20)
        .map(|i| Write::Step(step(&format!("g{i}"), "1"), Vec::new()))
        .collect();
    connection
        .apply(run, &good)
        .await
        .expect("the connection still writes");
    assert_eq!(store.steps(run).await.expect("steps").len(), 60);
}

/// Step rows are appended under their run's keys: a step written again (alone, or in a
/// group) reads back as its latest row, two runs' rows of one key stay apart, a pending
/// approval withdraws its gate's rows, and a row for a run not in the store is an error.
async fn step_rows_follow_their_run(store: &Store) {
    let (x, y) = ("run-x", "run-y");
    for (run, at) in [(x, 5), (y, 6)] {
        store
            .create_run(&run_record(run, at))
            .await
            .expect("create run");
    }
    let lone = |output: &str| vec![Write::Step(step("a", output), Vec::new())];
    store.apply(x, &lone("\"x1\"")).await.expect("x: a");
    store.apply(y, &lone("\"y1\"")).await.expect("y: a");
    let mut group: Vec<Write> = (0..40)
        .map(|i| Write::Step(step(&format!("g{i}"), "0"), Vec::new()))
        .collect();
    group.push(Write::Step(step("a", "\"x2\""), Vec::new()));
    group.push(Write::Step(step("g0", "\"g0 again\""), Vec::new()));
    store.apply(x, &group).await.expect("x: a group");
    store.apply(x, &lone("\"x3\"")).await.expect("x: a again");
    let steps = store.steps(x).await.expect("steps of x");
    assert_eq!(steps.len(), 41, "one step per key");
    let output = |steps: &[StepRecord], key: &str| {
        steps
            .iter()
            .find(|s| s.key == key)
            .and_then(|s| s.output_json.clone())
    };
    assert_eq!(output(&steps, "a").as_deref(), Some("\"x3\""));
    assert_eq!(output(&steps, "g0").as_deref(), Some("\"g0 again\""));
    assert_eq!(output(&steps, "g39").as_deref(), Some("0"));
    let steps = store.steps(y).await.expect("steps of y");
    assert_eq!(steps.len(), 1);
    assert_eq!(output(&steps, "a").as_deref(), Some("\"y1\""));
    // A gate that asks (again) has not passed: its rows go, the run's others stay.
    let pending = ApprovalRecord {
        key: "a".into(),
        tool: "send".into(),
        args_json: "{}".into(),
        args_hash: "h".into(),
        reason: "destructive".into(),
        status: "pending".into(),
        decided_by: None,
        note: None,
        requested_at: 30,
        decided_at: None,
    };
    store
        .apply(x, &[Write::Approval(pending)])
        .await
        .expect("x: the gate asks");
    let steps = store.steps(x).await.expect("steps of x");
    assert_eq!(steps.len(), 40);
    assert_eq!(output(&steps, "a"), None);
    assert_eq!(store.steps(y).await.expect("steps of y").len(), 1);
    // A run not in the store takes no step row, alone or in a group.
    let missing = store.apply("run-missing", &lone("1")).await;
    assert!(
        matches!(missing, Err(StoreError::StepRows(ref run)) if run == "run-missing"),
        "{missing:?}"
    );
    let missing = store.apply("run-missing", &group).await;
    assert!(
        matches!(missing, Err(StoreError::NoSuchRun(ref run)) if run == "run-missing"),
        "{missing:?}"
    );
    assert!(store.steps("run-missing").await.expect("none").is_empty());
}

/// Runs recorded at once (as by processes sharing a store) each take a number of their
/// own: every one is recorded, and their step rows stay apart.
async fn runs_recorded_at_once(store: &Store) {
    let ids: Vec<String> = (0..12).map(|i| format!("run-at-once-{i}")).collect();
    let created = ids.iter().map(|id| {
        let store = store.clone();
        let record = run_record(id, 50);
        tokio::spawn(async move { store.create_run(&record).await })
    });
    for result in futures_util::future::join_all(created).await {
        result.expect("joined").expect("recorded");
    }
    let writes = ids.iter().map(|id| {
        let store = store.clone();
        let id = id.clone();
        tokio::spawn(async move {
            let write = vec![Write::Step(step("only", &format!("\"{id}\"")), Vec::new())];
            store.apply(&id, &write).await
        })
    });
    for result in futures_util::future::join_all(writes).await {
        result.expect("joined").expect("written");
    }
    for id in &ids {
        let steps = store.steps(id).await.expect("steps");
        assert_eq!(steps.len(), 1, "{id}");
        assert_eq!(
            steps[0].output_json.as_deref(),
            Some(format!("\"{id}\"").as_str())
        );
    }
}

async fn suite(store: Store) {
    records_round_trip(&store).await;
    step_rows_follow_their_run(&store).await;
    runs_recorded_at_once(&store).await;
    big_batches(&store).await;
    step_waves(&store).await;
    engine_on_store(&store).await;
    store.close().await;
}

/// `sqlite::memory:`: one database shared by the pool's connections, which the writes (on a
/// connection of their own, through SQLite's C API) must reach too, leaving no file behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_in_memory_sqlite_store_passes_the_store_suite() {
    let store = Store::open("sqlite::memory:").await.expect("opens");
    suite(store).await;
    assert!(
        std::fs::read_dir(".")
            .expect("the test's directory")
            .flatten()
            .all(|entry| !entry.file_name().to_string_lossy().starts_with("file:")),
        "no file for an in-memory store"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_passes_the_store_suite() {
    let dir = std::env::temp_dir().join(format!("galaxy-store-suite-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store = Store::open_sqlite_file(&dir.join("nested/galaxy.db"))
        .await
        .expect("creates the file");
    suite(store).await;
    // Opening again runs no migration twice.
    let again = Store::open_sqlite_file(&dir.join("nested/galaxy.db"))
        .await
        .expect("reopens");
    assert_eq!(again.runs(100).await.expect("runs").len(), 19);
    again.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_passes_the_store_suite() {
    let Ok(url) = std::env::var("GALAXY_TEST_POSTGRES_URL") else {
        eprintln!(
            "postgres half SKIPPED: GALAXY_TEST_POSTGRES_URL is not set (.ci/run sets it when PostgreSQL is up)"
        );
        return;
    };
    let schema = format!(
        "galaxy_test_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    );
    let admin = sqlx::PgPool::connect(&url)
        .await
        .expect("the Postgres server answers");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&admin)
        .await
        .expect("a fresh schema");
    let options = PgConnectOptions::from_str(&url)
        .expect("url")
        .options([("search_path", schema.as_str())]);
    let store = Store::open_postgres(options)
        .await
        .expect("migrates a fresh schema");
    assert_eq!(store.backend(), "postgres");
    suite(store).await;
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .execute(&admin)
        .await
        .expect("cleanup");
    admin.close().await;
}

/// What one run left in a store: every record the store keeps of it.
#[derive(Debug, PartialEq)]
struct Snapshot {
    run: RunRecord,
    steps: Vec<StepRecord>,
    attempts: Vec<AttemptRecord>,
    approvals: Vec<ApprovalRecord>,
    effects: Vec<runtime::store::EffectRecord>,
    audit: Vec<AuditRecord>,
}

impl Snapshot {
    async fn of(store: &Store, run_id: &str) -> Snapshot {
        let mut steps = store.steps(run_id).await.expect("steps");
        steps.sort_by(|a, b| a.key.cmp(&b.key));
        let mut attempts = store.attempts(run_id).await.expect("attempts");
        attempts.sort_by(|a, b| (&a.key, a.attempt).cmp(&(&b.key, b.attempt)));
        let mut approvals = store.approvals(run_id).await.expect("approvals");
        approvals.sort_by(|a, b| a.key.cmp(&b.key));
        let mut effects = store.effects(run_id).await.expect("effects");
        effects.sort_by(|a, b| a.key.cmp(&b.key));
        Snapshot {
            run: store.run(run_id).await.expect("the run"),
            steps,
            attempts,
            approvals,
            effects,
            audit: store.audit(run_id).await.expect("audit"),
        }
    }

    /// The writes that store this run's records apart from its `runs` row (those tables are
    /// the same before and after migration 0003).
    fn writes(&self) -> Vec<Write> {
        let mut writes: Vec<Write> = self
            .steps
            .iter()
            .map(|s| {
                let attempts = self
                    .attempts
                    .iter()
                    .filter(|a| a.key == s.key)
                    .cloned()
                    .collect();
                Write::Step(s.clone(), attempts)
            })
            .collect();
        writes.extend(
            self.attempts
                .iter()
                .filter(|a| !self.steps.iter().any(|s| s.key == a.key))
                .cloned()
                .map(Write::Attempt),
        );
        writes.extend(self.approvals.iter().cloned().map(Write::Approval));
        for effect in &self.effects {
            for _ in 0..effect.times_issued {
                writes.push(Write::EffectIssued {
                    key: effect.key.clone(),
                    step_key: effect.step_key.clone(),
                    tool: effect.tool.clone(),
                    at: 1,
                    args_hash: effect.args_hash.clone(),
                });
            }
            if effect.status == "done" {
                writes.push(Write::EffectDone {
                    key: effect.key.clone(),
                });
            }
        }
        writes.extend(self.audit.iter().cloned().map(Write::Audit));
        writes
    }
}

/// The migrations before `run_plans` (0003): the schema a store had when a run's source and
/// plan were columns of `runs`.
fn migrator_before_run_plans() -> sqlx::migrate::Migrator {
    use sqlx::SqlSafeStr;
    use sqlx::migrate::{Migration, MigrationType, Migrator};
    let old: [(i64, &str, &'static str); 2] = [
        (1, "runs", include_str!("../../../migrations/0001_runs.sql")),
        (
            2,
            "step detail",
            include_str!("../../../migrations/0002_step_detail.sql"),
        ),
    ];
    let migrations = old
        .into_iter()
        .map(|(version, description, sql)| {
            Migration::new(
                version,
                std::borrow::Cow::Borrowed(description),
                MigrationType::Simple,
                sql.into_sql_str(),
                false,
            )
        })
        .collect::<Vec<_>>();
    Migrator {
        migrations: std::borrow::Cow::Owned(migrations),
        ..Migrator::DEFAULT
    }
}

/// A real run of the inbox triage pack, stopped at its approval gates, on a scratch SQLite
/// store: what an older version of Galaxy would have left behind.
async fn waiting_run(dir: &Path) -> Snapshot {
    let scratch = Store::open_sqlite_file(&dir.join("scratch.db"))
        .await
        .expect("scratch store");
    let pack = repo().join("packs/inbox_triage/inbox_triage.gx");
    let source = std::fs::read_to_string(&pack).expect("pack");
    let (_cancel, receiver) = tokio::sync::watch::channel(false);
    let new_run = NewRun {
        source: &source,
        pack_path: &pack,
        inputs: Vec::new(),
        input_json: None,
        options: RunOptions {
            sim: true,
            seed: 11,
            ..RunOptions::default()
        },
    };
    let engine = Engine::start(Some(scratch.clone()), new_run, receiver)
        .await
        .expect("starts");
    let run_id = engine.run_id().to_string();
    assert_eq!(
        engine.execute().await.expect("runs"),
        RunStatus::WaitingApproval
    );
    let mut snapshot = Snapshot::of(&scratch, &run_id).await;
    scratch.close().await;
    assert!(!snapshot.steps.is_empty() && !snapshot.approvals.is_empty());
    assert!(!snapshot.effects.is_empty(), "the run sent effects");
    // Effects were not stored with a hash of their arguments before migration 0004.
    for effect in &mut snapshot.effects {
        effect.args_hash = None;
    }
    snapshot
}

/// Runs `$body` with `$pool` the pool of `$store`, whichever backend it is on.
macro_rules! on_both {
    ($store:expr, $pool:ident => $body:expr) => {
        match $store {
            Store::Sqlite($pool) => $body,
            Store::Postgres($pool) => $body,
        }
    };
}

/// Stores `runs` the way migrations 0001-0002 laid them out (source and plan in `runs`,
/// effects without `args_hash`, a step row per key), with the other records of `waiting`
/// through the store's own writes.
async fn store_the_old_way(old: &Store, waiting: &Snapshot, runs: &[RunRecord]) {
    let insert = "INSERT INTO runs (id, pack_name, pack_path, source, plan_json, plan_hash, inputs_json, options_json, status, outcome, error, result_json, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)";
    for run in runs {
        on_both!(old, pool => {
            sqlx::query(insert)
                .bind(&run.id)
                .bind(&run.pack_name)
                .bind(&run.pack_path)
                .bind(&run.source)
                .bind(&run.plan_json)
                .bind(&run.plan_hash)
                .bind(&run.inputs_json)
                .bind(&run.options_json)
                .bind(&run.status)
                .bind(&run.outcome)
                .bind(&run.error)
                .bind(&run.result_json)
                .bind(run.created_at)
                .bind(run.updated_at)
                .execute(pool)
                .await
                .map(|_| ())
                .expect("an old-style run row")
        });
    }
    let insert = "INSERT INTO effects (idempotency_key, run_id, step_key, tool, times_issued, status, first_issued_at, last_issued_at) VALUES ($1, $2, $3, $4, $5, $6, 1, 1)";
    for effect in &waiting.effects {
        on_both!(old, pool => {
            sqlx::query(insert)
                .bind(&effect.key)
                .bind(&waiting.run.id)
                .bind(&effect.step_key)
                .bind(&effect.tool)
                .bind(effect.times_issued)
                .bind(&effect.status)
                .execute(pool)
                .await
                .map(|_| ())
                .expect("an old-style effect row")
        });
    }
    let insert = "INSERT INTO steps (run_id, step_key, node, status, attempts, started_at, ended_at, output_json, input_tokens, output_tokens, cost, error, model, detail_json) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)";
    for step in &waiting.steps {
        on_both!(old, pool => {
            sqlx::query(insert)
                .bind(&waiting.run.id)
                .bind(&step.key)
                .bind(&step.node)
                .bind(&step.status)
                .bind(step.attempts)
                .bind(step.started_at)
                .bind(step.ended_at)
                .bind(&step.output_json)
                .bind(step.input_tokens)
                .bind(step.output_tokens)
                .bind(step.cost)
                .bind(&step.error)
                .bind(&step.model)
                .bind(&step.detail_json)
                .execute(pool)
                .await
                .map(|_| ())
                .expect("an old-style step row")
        });
    }
    let insert = "INSERT INTO approvals (run_id, step_key, tool, args_json, args_hash, reason, status, decided_by, note, requested_at, decided_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";
    for approval in &waiting.approvals {
        on_both!(old, pool => {
            sqlx::query(insert)
                .bind(&waiting.run.id)
                .bind(&approval.key)
                .bind(&approval.tool)
                .bind(&approval.args_json)
                .bind(&approval.args_hash)
                .bind(&approval.reason)
                .bind(&approval.status)
                .bind(&approval.decided_by)
                .bind(&approval.note)
                .bind(approval.requested_at)
                .bind(approval.decided_at)
                .execute(pool)
                .await
                .map(|_| ())
                .expect("an approval row")
        });
    }
    // The step rows' attempts and the audit log, as the store writes them still.
    let writes: Vec<Write> = waiting
        .writes()
        .into_iter()
        .flat_map(|w| match w {
            Write::Step(_, attempts) => attempts.into_iter().map(Write::Attempt).collect(),
            Write::Attempt(_) | Write::Audit(_) => vec![w],
            _ => Vec::new(),
        })
        .collect();
    old.apply(&waiting.run.id, &writes)
        .await
        .expect("the run's records");
}

/// After migration 0003 the old runs read back whole, and the waiting one resumes: approved,
/// it finishes without running any step twice or issuing any effect twice.
async fn upgraded_runs_read_back_and_resume(store: &Store, waiting: &Snapshot, other: &RunRecord) {
    assert_eq!(Snapshot::of(store, &waiting.run.id).await, *waiting);
    assert_eq!(store.run(&other.id).await.expect("the other run"), *other);
    let listed: Vec<String> = store
        .runs(10)
        .await
        .expect("runs")
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(listed.len(), 2, "{listed:?}");

    let mut writes = Vec::new();
    for mut approval in store.approvals(&waiting.run.id).await.expect("approvals") {
        approval.status = "approved".into();
        writes.push(Write::Approval(approval));
    }
    store
        .apply(&waiting.run.id, &writes)
        .await
        .expect("approve");
    let (_cancel, receiver) = tokio::sync::watch::channel(false);
    let engine = Engine::resume(
        store.clone(),
        &waiting.run.id,
        BudgetOverrides::default(),
        receiver,
    )
    .await
    .expect("an upgraded run resumes");
    assert_eq!(engine.execute().await.expect("runs"), RunStatus::Succeeded);
    let report = RunReport::load(store, &waiting.run.id)
        .await
        .expect("report");
    assert_eq!(report.outcome.as_deref(), Some("success"));
    let after = Snapshot::of(store, &waiting.run.id).await;
    assert!(after.steps.len() > waiting.steps.len());
    for before in &waiting.steps {
        let now = after
            .steps
            .iter()
            .find(|s| s.key == before.key)
            .expect("kept");
        assert_eq!(
            now, before,
            "a step done before the upgrade did not run again"
        );
    }
    assert!(
        after
            .effects
            .iter()
            .all(|e| e.times_issued == 1 && e.status == "done"),
        "{:?}",
        after.effects
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_runs_stored_before_run_plans_survive_the_upgrade() {
    let dir = std::env::temp_dir().join(format!("galaxy-store-upgrade-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("mkdir");
    let waiting = waiting_run(&dir).await;
    let other = RunRecord {
        status: "succeeded".into(),
        outcome: Some("success".into()),
        result_json: Some("{\"outcome\":\"success\"}".into()),
        ..run_record("old-finished", 1)
    };

    let path = dir.join("old.db");
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true);
    let pool = sqlx::SqlitePool::connect_with(options)
        .await
        .expect("old file");
    migrator_before_run_plans()
        .run(&pool)
        .await
        .expect("0001-0002");
    let old = Store::Sqlite(pool);
    store_the_old_way(&old, &waiting, &[waiting.run.clone(), other.clone()]).await;
    old.close().await;

    let store = Store::open_sqlite_file(&path)
        .await
        .expect("migrates to 0003");
    upgraded_runs_read_back_and_resume(&store, &waiting, &other).await;
    store.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_runs_stored_before_run_plans_survive_the_upgrade() {
    let Ok(url) = std::env::var("GALAXY_TEST_POSTGRES_URL") else {
        eprintln!(
            "postgres upgrade test SKIPPED: GALAXY_TEST_POSTGRES_URL is not set (.ci/run sets it when PostgreSQL is up)"
        );
        return;
    };
    let dir = std::env::temp_dir().join(format!("galaxy-store-upgrade-pg-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("mkdir");
    let waiting = waiting_run(&dir).await;
    let other = RunRecord {
        status: "failed".into(),
        error: Some("gone".into()),
        ..run_record("old-failed", 1)
    };

    let schema = format!(
        "galaxy_upgrade_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    );
    let admin = sqlx::PgPool::connect(&url)
        .await
        .expect("the Postgres server answers");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&admin)
        .await
        .expect("a fresh schema");
    let options = PgConnectOptions::from_str(&url)
        .expect("url")
        .options([("search_path", schema.as_str())]);
    let pool = sqlx::PgPool::connect_with(options.clone())
        .await
        .expect("old schema");
    migrator_before_run_plans()
        .run(&pool)
        .await
        .expect("0001-0002");
    let old = Store::Postgres(pool);
    store_the_old_way(&old, &waiting, &[waiting.run.clone(), other.clone()]).await;
    old.close().await;

    let store = Store::open_postgres(options)
        .await
        .expect("migrates to 0003");
    upgraded_runs_read_back_and_resume(&store, &waiting, &other).await;
    store.close().await;
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .execute(&admin)
        .await
        .expect("cleanup");
    admin.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}

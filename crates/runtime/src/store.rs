//! The durable store (the blackboard): runs, steps, attempts, approvals, effects and an
//! append-only audit log, on SQLite (embedded default) or PostgreSQL, through sqlx.
//!
//! Each step's output is stored once, in its `steps` row, so storage grows linearly with the
//! work. Step rows are appended: each is keyed by its run's number and its place among the
//! run's rows (see [`RUN_KEYS`]), and a step written again is read back from its latest
//! row. Writes arrive in batches ([`Store::apply`]): one transaction, one commit per wave.
//! On SQLite, batches are written through SQLite's C API on a connection of the writer's
//! own ([`RawConnection`]); migrations, new runs and reads go through sqlx's pool.

use std::borrow::Cow;
use std::path::Path;
use std::str::FromStr;

use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Row, SqlSafeStr};

mod sqlite_raw;
pub(crate) use sqlite_raw::{BUSY_TIMEOUT_MS, RawConnection, WAVE};

/// The migrations, embedded from the repository's `migrations/` folder.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "runs", include_str!("../../../migrations/0001_runs.sql")),
    (
        2,
        "step detail",
        include_str!("../../../migrations/0002_step_detail.sql"),
    ),
    (
        3,
        "run plans",
        include_str!("../../../migrations/0003_run_plans.sql"),
    ),
    (
        4,
        "effect arguments",
        include_str!("../../../migrations/0004_effect_args.sql"),
    ),
    (
        5,
        "step rows",
        include_str!("../../../migrations/0005_step_rows.sql"),
    ),
];

/// Step row keys per run: a run's step rows have the keys `number * RUN_KEYS + 1` on, in the
/// order they were written (`number` is the run's, see migration 0005).
pub(crate) const RUN_KEYS: i64 = 1 << 32;

/// The PostgreSQL advisory lock a new run is numbered under (`galaxy` in ASCII, then 1).
const RUN_NUMBER_LOCK: i64 = 0x6761_6c61_7879_0001;

/// A failure of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be reached or answered with an error.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A migration failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The database URL is not one Galaxy understands.
    #[error("unsupported database URL `{0}` (use sqlite://PATH or postgres://...)")]
    BadUrl(String),
    /// The run does not exist.
    #[error("no run `{0}` in the store")]
    NoSuchRun(String),
    /// A step row could not be written: its run is not in the store, or its range of step
    /// row keys is full.
    #[error(
        "no step row written for run `{0}`: the run is not in the store, or holds 4,294,967,295 step rows, the most a run can"
    )]
    StepRows(String),
    /// Stored data could not be read back.
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
    /// SQLite refused a write made through its C API (a writer's own connection).
    #[error("database error: {0}")]
    Sqlite(String),
    /// Another connection held the SQLite store's write lock for longer than the write
    /// could wait.
    #[error("database error: the store is locked: {0}")]
    Locked(String),
    /// A run writer's commit failed: the message is the store's own error, as the
    /// writer's tickets and acknowledgements carry it.
    #[error("{0}")]
    Commit(String),
}

/// A connection pool to one of the supported backends.
#[derive(Debug, Clone)]
pub enum Store {
    /// Embedded SQLite (WAL).
    Sqlite(SqlitePool),
    /// PostgreSQL.
    Postgres(PgPool),
}

/// Runs the same code against whichever backend the store holds.
macro_rules! with_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match $store {
            Store::Sqlite($pool) => $body,
            Store::Postgres($pool) => $body,
        }
    };
}

/// A run as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRecord {
    /// The run id.
    pub id: String,
    /// The pack's name.
    pub pack_name: String,
    /// The pack file's path as given.
    pub pack_path: String,
    /// The pack's source text.
    pub source: String,
    /// The plan as JSON.
    pub plan_json: String,
    /// The hash of the plan JSON.
    pub plan_hash: String,
    /// The inputs as a JSON object.
    pub inputs_json: String,
    /// The run options (sim, seed, latency, budgets) as JSON.
    pub options_json: String,
    /// `running`, `succeeded`, `failed`, `waiting_approval`, `budget_exceeded`, `interrupted`.
    pub status: String,
    /// `success` / `failure` once known.
    pub outcome: Option<String>,
    /// Why the run failed.
    pub error: Option<String>,
    /// The final result document (outcome, KPIs, citations) as JSON.
    pub result_json: Option<String>,
    /// When it was created (ms since the epoch).
    pub created_at: i64,
    /// When it last changed.
    pub updated_at: i64,
}

/// One step (or map item, branch, review round) of a run, with its output stored once.
#[derive(Debug, Clone, PartialEq)]
pub struct StepRecord {
    /// The step key: `inbox`, `triage[3]`, `send[0]/send.body`.
    pub key: String,
    /// The plan node id.
    pub node: String,
    /// `succeeded`, `failed`, `skipped`, `rejected`.
    pub status: String,
    /// How many attempts it took.
    pub attempts: i64,
    /// When the first attempt started (ms since the epoch).
    pub started_at: i64,
    /// When the last attempt ended.
    pub ended_at: i64,
    /// The output as JSON.
    pub output_json: Option<String>,
    /// Model input tokens.
    pub input_tokens: i64,
    /// Model output tokens.
    pub output_tokens: i64,
    /// Cost in the budget currency.
    pub cost: f64,
    /// The last error.
    pub error: Option<String>,
    /// The model (or tool) of the successful attempt.
    pub model: Option<String>,
    /// Redacted inputs, citations and source span of the successful attempt, as JSON.
    pub detail_json: Option<String>,
}

/// One attempt of a step.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptRecord {
    /// The step key.
    pub key: String,
    /// 1-based attempt number.
    pub attempt: i64,
    /// `succeeded`, `failed`, `interrupted`, `waiting_approval`, `budget_exceeded`.
    pub status: String,
    /// Start (ms since the epoch).
    pub started_at: i64,
    /// End.
    pub ended_at: i64,
    /// Model input tokens.
    pub input_tokens: i64,
    /// Model output tokens.
    pub output_tokens: i64,
    /// Cost.
    pub cost: f64,
    /// The model (or tool) used.
    pub model: Option<String>,
    /// The error, redacted.
    pub error: Option<String>,
    /// Redacted inputs, citations and source span, as JSON.
    pub detail_json: Option<String>,
}

/// An approval request and its decision.
#[derive(Debug, Clone, PartialEq)]
pub struct ApprovalRecord {
    /// The gate's step key (what `galaxy approve RUN STEP` takes).
    pub key: String,
    /// The gated tool (or `approve` for an explicit approval step).
    pub tool: String,
    /// The call's arguments (redacted) as JSON.
    pub args_json: String,
    /// The hash of the exact arguments approved.
    pub args_hash: String,
    /// Why it is gated.
    pub reason: String,
    /// `pending`, `approved`, `rejected`.
    pub status: String,
    /// Who decided.
    pub decided_by: Option<String>,
    /// A note with the decision.
    pub note: Option<String>,
    /// When it was requested.
    pub requested_at: i64,
    /// When it was decided.
    pub decided_at: Option<i64>,
}

/// An effect (a write or destructive call) and how often it was issued.
#[derive(Debug, Clone, PartialEq)]
pub struct EffectRecord {
    /// The idempotency key.
    pub key: String,
    /// The step key that issued it.
    pub step_key: String,
    /// The tool.
    pub tool: String,
    /// How many times it was sent (a re-issue after a crash carries the same key).
    pub times_issued: i64,
    /// `issued` (outcome unknown) or `done`.
    pub status: String,
    /// The SHA-256 of the arguments it was sent with (none for effects stored before
    /// migration 0004).
    pub args_hash: Option<String>,
}

/// An audit event.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    /// Its position in the run's log.
    pub seq: i64,
    /// When (ms since the epoch).
    pub at: i64,
    /// What happened (`run_started`, `step_succeeded`, `approval_decided`, ...).
    pub kind: String,
    /// The step concerned.
    pub step_key: Option<String>,
    /// Details (redacted).
    pub detail: String,
}

/// One write in a batch.
#[derive(Debug, Clone)]
pub enum Write {
    /// A finished step with its attempts.
    Step(StepRecord, Vec<AttemptRecord>),
    /// An attempt that did not finish the step (interrupted, waiting, over budget).
    Attempt(AttemptRecord),
    /// An audit event.
    Audit(AuditRecord),
    /// A new or updated approval, replacing the gate's earlier one. A pending approval also
    /// withdraws the gate's step row: a gate that asks (again, when its arguments changed
    /// after a decision) has not passed, whatever an earlier invocation recorded.
    Approval(ApprovalRecord),
    /// An effect about to be sent.
    EffectIssued {
        /// The idempotency key.
        key: String,
        /// The step key.
        step_key: String,
        /// The tool.
        tool: String,
        /// When.
        at: i64,
        /// The SHA-256 of the arguments it is sent with (kept from its first issue: a key
        /// is only ever issued again with the same arguments).
        args_hash: Option<String>,
    },
    /// An effect whose outcome is known.
    EffectDone {
        /// The idempotency key.
        key: String,
    },
    /// The run's status changed.
    RunStatus {
        /// The new status.
        status: String,
        /// The outcome, once known.
        outcome: Option<String>,
        /// The error.
        error: Option<String>,
        /// The result document.
        result_json: Option<String>,
        /// When.
        at: i64,
    },
}

/// One connection of a [`Store`], for many batches in a row.
#[derive(Debug)]
pub enum StoreConnection {
    /// Embedded SQLite: a connection of its own through SQLite's C API, as a run's writer
    /// has, used on a blocking thread.
    Sqlite(SqliteConnection),
    /// PostgreSQL.
    Postgres(sqlx::pool::PoolConnection<sqlx::Postgres>),
}

/// A write connection to a SQLite store file, opened at its first write.
#[derive(Debug)]
pub struct SqliteConnection {
    path: std::path::PathBuf,
    raw: Option<RawConnection>,
}

/// The largest multi-row statement, in rows: 14 columns a row stays far below SQLite's
/// 32,766 and PostgreSQL's 65,535 bound parameters.
const ROWS_PER_STATEMENT: [usize; 4] = [256, 32, 4, 1];

/// Splits `n` rows into statements of the sizes in [`ROWS_PER_STATEMENT`], largest first:
/// few statement shapes, so each is prepared once per connection and reused.
fn statement_sizes(mut n: usize) -> Vec<usize> {
    let mut sizes = Vec::new();
    for size in ROWS_PER_STATEMENT {
        while n >= size {
            sizes.push(size);
            n -= size;
        }
    }
    sizes
}

/// The rows of one batch, gathered per table so each table gets multi-row statements: a
/// wave of 1,000 finished steps is a handful of statements, not 1,000 round trips. Where a
/// batch writes one key twice, the later row wins, as it would row by row.
#[derive(Default)]
struct Rows<'w> {
    steps: Vec<&'w StepRecord>,
    attempts: Vec<&'w AttemptRecord>,
    audit: Vec<&'w AuditRecord>,
    others: Vec<&'w Write>,
}

impl<'w> Rows<'w> {
    /// The rows per table, in order, without merging: a key's later row is written after
    /// its earlier one, and is the one read back (a step's rows are appended) or left (an
    /// attempt's row is upserted).
    fn partition(writes: impl IntoIterator<Item = &'w Write>) -> Rows<'w> {
        let mut rows = Rows::default();
        for write in writes {
            match write {
                Write::Step(step, attempts) => {
                    rows.steps.push(step);
                    rows.attempts.extend(attempts);
                }
                Write::Attempt(attempt) => rows.attempts.push(attempt),
                Write::Audit(event) => rows.audit.push(event),
                other => rows.others.push(other),
            }
        }
        rows
    }

    /// [`Rows::partition`], with an attempt written twice merged into its later row: the
    /// attempts' multi-row upsert may not touch one row twice. (Step rows are appended, each
    /// under a key of its own.)
    fn gather(writes: impl IntoIterator<Item = &'w Write>) -> Rows<'w> {
        let mut rows = Rows::partition(writes);
        let mut at: std::collections::HashMap<(&str, i64), usize> = Default::default();
        let mut merged: Vec<&AttemptRecord> = Vec::with_capacity(rows.attempts.len());
        for attempt in rows.attempts.drain(..) {
            match at.entry((attempt.key.as_str(), attempt.attempt)) {
                std::collections::hash_map::Entry::Occupied(place) => {
                    merged[*place.get()] = attempt
                }
                std::collections::hash_map::Entry::Vacant(place) => {
                    place.insert(merged.len());
                    merged.push(attempt);
                }
            }
        }
        rows.attempts = merged;
        rows
    }
}

/// The start of a step row insert, its columns named.
macro_rules! step_columns {
    () => {
        "INSERT INTO steps (id, run_id, step_key, node, status, attempts, started_at, ended_at, output_json, input_tokens, output_tokens, cost, error, model, detail_json) "
    };
}
/// That the `steps` row `steps.id` is one of run `runs`'s: in its range of keys, from
/// `runs.number` × [`RUN_KEYS`] (2^32).
macro_rules! in_run {
    () => {
        "steps.id BETWEEN runs.number * 4294967296 AND runs.number * 4294967296 + 4294967295"
    };
}
/// The key of run `runs`'s next step row: one past its last, or its first. One step back
/// through the steps' own B-tree from the end of the run's range of keys.
macro_rules! next_step_id {
    () => {
        concat!(
            "COALESCE((SELECT steps.id FROM steps WHERE ",
            in_run!(),
            " ORDER BY steps.id DESC LIMIT 1), runs.number * 4294967296) + 1"
        )
    };
}

const STEP_COLUMNS: &str = step_columns!();
/// The key of run `$1`'s next step row.
const NEXT_STEP_ID: &str = concat!("SELECT ", next_step_id!(), " FROM runs WHERE runs.id = $1");
/// One step row of run `$1`, under its next key: a statement by itself, so a lone step
/// commits in one round trip. It writes no row when the run does not exist or its range of
/// keys is full.
const APPEND_STEP: &str = concat!(
    step_columns!(),
    "SELECT next.id, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14 FROM (SELECT ",
    next_step_id!(),
    " AS id, runs.number AS number FROM runs WHERE runs.id = $1) AS next WHERE next.id < (next.number + 1) * 4294967296"
);
/// Run `$1`'s step rows, in the order they were written.
const RUN_STEPS: &str = concat!(
    "SELECT steps.* FROM runs JOIN steps ON ",
    in_run!(),
    " WHERE runs.id = $1 ORDER BY steps.id"
);

/// The keys of `n` step rows of run `run_id` from `next` (what [`NEXT_STEP_ID`] gave), if
/// they fit in the run's range.
fn step_ids(run_id: &str, next: Option<i64>, n: usize) -> Result<i64, StoreError> {
    let next = next.ok_or_else(|| StoreError::NoSuchRun(run_id.to_string()))?;
    let end = ((next - 1) / RUN_KEYS + 1) * RUN_KEYS;
    if next.saturating_add(n as i64) > end {
        return Err(StoreError::StepRows(run_id.to_string()));
    }
    Ok(next)
}

/// The latest of each key's rows (`rows` in the order they were written), in the order the
/// steps finished (and by key when two finished at once).
fn latest_per_key(rows: Vec<StepRecord>) -> Vec<StepRecord> {
    let mut latest: std::collections::HashMap<String, StepRecord> =
        std::collections::HashMap::with_capacity(rows.len());
    for row in rows {
        latest.insert(row.key.clone(), row);
    }
    let mut steps: Vec<StepRecord> = latest.into_values().collect();
    steps.sort_by(|a, b| (a.ended_at, &a.key).cmp(&(b.ended_at, &b.key)));
    steps
}

/// What a lone step row's [`APPEND_STEP`] changed, checked: no row means no run, or no room.
fn appended(run_id: &str, changed: u64) -> Result<(), StoreError> {
    if changed == 1 {
        Ok(())
    } else {
        Err(StoreError::StepRows(run_id.to_string()))
    }
}

const ATTEMPT_COLUMNS: &str = "INSERT INTO attempts (run_id, step_key, attempt, status, started_at, ended_at, input_tokens, output_tokens, cost, model, error, detail_json) ";
const ATTEMPT_CONFLICT: &str = " ON CONFLICT (run_id, step_key, attempt) DO UPDATE SET status = excluded.status, started_at = excluded.started_at, ended_at = excluded.ended_at, input_tokens = excluded.input_tokens, output_tokens = excluded.output_tokens, cost = excluded.cost, model = excluded.model, error = excluded.error, detail_json = excluded.detail_json";
const AUDIT_COLUMNS: &str = "INSERT INTO audit (run_id, seq, at, kind, step_key, detail) ";

/// The statements both backends run one row at a time. SQLite numbers `$N` parameters in
/// the order they first appear, which here is their number, so the SQLite path binds the
/// same values in the same places.
const DELETE_APPROVAL: &str = "DELETE FROM approvals WHERE run_id = $1 AND step_key = $2";
/// A gate's step rows, withdrawn as it asks (again) for approval: found among its run's
/// rows (one range of the steps' keys, read through), as no index leads from a step key.
const DELETE_STEP: &str = "DELETE FROM steps WHERE id BETWEEN (SELECT number * 4294967296 FROM runs WHERE id = $1) AND (SELECT number * 4294967296 + 4294967295 FROM runs WHERE id = $1) AND step_key = $2";
const INSERT_APPROVAL: &str = "INSERT INTO approvals (run_id, step_key, tool, args_json, args_hash, reason, status, decided_by, note, requested_at, decided_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";
const REISSUE_EFFECT: &str = "UPDATE effects SET times_issued = times_issued + 1, last_issued_at = $1, status = 'issued' WHERE idempotency_key = $2";
const INSERT_EFFECT: &str = "INSERT INTO effects (idempotency_key, run_id, step_key, tool, times_issued, status, first_issued_at, last_issued_at, args_hash) VALUES ($1, $2, $3, $4, 1, 'issued', $5, $5, $6)";
const EFFECT_DONE: &str = "UPDATE effects SET status = 'done' WHERE idempotency_key = $1";
const RUN_STATUS: &str = "UPDATE runs SET status = $1, outcome = $2, error = $3, result_json = COALESCE($4, result_json), updated_at = $5 WHERE id = $6";

/// Writes `rows` of one table with multi-row statements on connection `conn`.
macro_rules! insert_rows {
    ($conn:expr, $rows:expr, $columns:expr, $conflict:expr, |$b:ident, $row:ident| $bind:expr) => {{
        let mut rest = &$rows[..];
        for size in statement_sizes(rest.len()) {
            let (chunk, tail) = rest.split_at(size);
            rest = tail;
            let mut builder = sqlx::QueryBuilder::new($columns);
            builder.push_values(chunk, |mut $b, $row| {
                $bind;
            });
            builder.push($conflict);
            builder
                .build()
                .persistent(true)
                .execute(&mut *$conn)
                .await?;
        }
    }};
}

/// Writes step rows of run `run_id` with multi-row statements on connection `conn`, under
/// the run's next keys (in a transaction: the keys are read before the rows are written).
macro_rules! insert_step_rows {
    ($conn:expr, $run_id:expr, $steps:expr) => {
        if !$steps.is_empty() {
            let next: Option<i64> = sqlx::query_scalar(NEXT_STEP_ID)
                .bind($run_id)
                .fetch_optional(&mut *$conn)
                .await?;
            let first = step_ids($run_id, next, $steps.len())?;
            let numbered: Vec<(i64, &StepRecord)> = (first..).zip($steps.iter().copied()).collect();
            insert_rows!($conn, numbered, STEP_COLUMNS, "", |b, row| {
                let (id, step) = row;
                b.push_bind(*id)
                    .push_bind($run_id)
                    .push_bind(&step.key)
                    .push_bind(&step.node)
                    .push_bind(&step.status)
                    .push_bind(step.attempts)
                    .push_bind(step.started_at)
                    .push_bind(step.ended_at)
                    .push_bind(&step.output_json)
                    .push_bind(step.input_tokens)
                    .push_bind(step.output_tokens)
                    .push_bind(step.cost)
                    .push_bind(&step.error)
                    .push_bind(&step.model)
                    .push_bind(&step.detail_json)
            })
        }
    };
}

/// PostgreSQL: applies batches as one on `conn`: a lone step row autocommits, anything else
/// is one transaction.
async fn apply_postgres(
    conn: &mut sqlx::PgConnection,
    run_id: &str,
    batches: &[&[Write]],
) -> Result<(), StoreError> {
    // One step row alone (the common case on a chain) is one statement: autocommit,
    // without a transaction around it.
    if let [[Write::Step(step, attempts)]] = batches
        && attempts.is_empty()
    {
        let changed = sqlx::query(APPEND_STEP)
            .bind(run_id)
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
            .execute(&mut *conn)
            .await?
            .rows_affected();
        return appended(run_id, changed);
    }
    let rows = Rows::gather(batches.iter().flat_map(|batch| batch.iter()));
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    insert_step_rows!(tx, run_id, rows.steps);
    insert_rows!(
        tx,
        rows.attempts,
        ATTEMPT_COLUMNS,
        ATTEMPT_CONFLICT,
        |b, attempt| {
            b.push_bind(run_id)
                .push_bind(&attempt.key)
                .push_bind(attempt.attempt)
                .push_bind(&attempt.status)
                .push_bind(attempt.started_at)
                .push_bind(attempt.ended_at)
                .push_bind(attempt.input_tokens)
                .push_bind(attempt.output_tokens)
                .push_bind(attempt.cost)
                .push_bind(&attempt.model)
                .push_bind(&attempt.error)
                .push_bind(&attempt.detail_json)
        }
    );
    insert_rows!(tx, rows.audit, AUDIT_COLUMNS, "", |b, event| {
        b.push_bind(run_id)
            .push_bind(event.seq)
            .push_bind(event.at)
            .push_bind(&event.kind)
            .push_bind(&event.step_key)
            .push_bind(&event.detail)
    });
    for write in rows.others {
        match write {
            Write::Step(..) | Write::Attempt(_) | Write::Audit(_) => {}
            Write::Approval(approval) => {
                sqlx::query(DELETE_APPROVAL)
                    .bind(run_id)
                    .bind(&approval.key)
                    .execute(&mut *tx)
                    .await?;
                if approval.status == "pending" {
                    sqlx::query(DELETE_STEP)
                        .bind(run_id)
                        .bind(&approval.key)
                        .execute(&mut *tx)
                        .await?;
                }
                sqlx::query(INSERT_APPROVAL)
                    .bind(run_id)
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
                    .execute(&mut *tx)
                    .await?;
            }
            Write::EffectIssued {
                key,
                step_key,
                tool,
                at,
                args_hash,
            } => {
                let updated = sqlx::query(REISSUE_EFFECT)
                    .bind(*at)
                    .bind(key)
                    .execute(&mut *tx)
                    .await?;
                if updated.rows_affected() == 0 {
                    sqlx::query(INSERT_EFFECT)
                        .bind(key)
                        .bind(run_id)
                        .bind(step_key)
                        .bind(tool)
                        .bind(*at)
                        .bind(args_hash)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            Write::EffectDone { key } => {
                sqlx::query(EFFECT_DONE).bind(key).execute(&mut *tx).await?;
            }
            Write::RunStatus {
                status,
                outcome,
                error,
                result_json,
                at,
            } => {
                sqlx::query(RUN_STATUS)
                    .bind(status)
                    .bind(outcome)
                    .bind(error)
                    .bind(result_json)
                    .bind(*at)
                    .bind(run_id)
                    .execute(&mut *tx)
                    .await?;
            }
        }
    }
    tx.commit().await?;
    Ok(())
}

impl StoreConnection {
    /// Applies a batch of writes in one transaction (one commit), with multi-row statements.
    pub async fn apply(&mut self, run_id: &str, writes: &[Write]) -> Result<(), StoreError> {
        self.apply_batches(run_id, &[writes]).await
    }

    /// Applies several batches as one: one transaction, their rows gathered per table. On
    /// PostgreSQL this is a run writer's group commit, without copying every batch's records
    /// into one list first (a SQLite run writer commits on a [`RawConnection`] of its own).
    pub async fn apply_batches(
        &mut self,
        run_id: &str,
        batches: &[&[Write]],
    ) -> Result<(), StoreError> {
        if batches.iter().all(|batch| batch.is_empty()) {
            return Ok(());
        }
        match self {
            StoreConnection::Sqlite(conn) => {
                // SQLite works on a blocking thread with copies of the batches: nothing it
                // points into can go while it does, even if this future is dropped.
                let batches: Vec<Vec<Write>> = batches.iter().map(|batch| batch.to_vec()).collect();
                let run_id = run_id.to_string();
                let path = conn.path.clone();
                let raw = conn.raw.take();
                let (raw, result) = tokio::task::spawn_blocking(move || {
                    let mut raw = match raw {
                        Some(raw) => raw,
                        None => match RawConnection::open(&path) {
                            Ok(raw) => raw,
                            Err(error) => return (None, Err(error)),
                        },
                    };
                    let slices: Vec<&[Write]> = batches.iter().map(Vec::as_slice).collect();
                    let result = raw.apply_batches(&run_id, &slices);
                    // A connection whose commit failed is let go; the next takes a fresh one.
                    (result.is_ok().then_some(raw), result)
                })
                .await
                .map_err(|e| StoreError::Sqlite(format!("the write thread failed: {e}")))?;
                conn.raw = raw;
                result
            }
            StoreConnection::Postgres(conn) => apply_postgres(conn, run_id, batches).await,
        }
    }
}

/// Reads a run row.
macro_rules! run_from_row {
    ($row:expr) => {{
        let row = $row;
        Ok::<RunRecord, sqlx::Error>(RunRecord {
            id: row.try_get("id")?,
            pack_name: row.try_get("pack_name")?,
            pack_path: row.try_get("pack_path")?,
            source: row.try_get("source")?,
            plan_json: row.try_get("plan_json")?,
            plan_hash: row.try_get("plan_hash")?,
            inputs_json: row.try_get("inputs_json")?,
            options_json: row.try_get("options_json")?,
            status: row.try_get("status")?,
            outcome: row.try_get("outcome")?,
            error: row.try_get("error")?,
            result_json: row.try_get("result_json")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        })
    }};
}

/// The file a SQLite pool opens.
fn sqlite_path(pool: &SqlitePool) -> std::path::PathBuf {
    pool.connect_options().get_filename().to_path_buf()
}

/// The migrations for `backend` (`sqlite`, `postgres`). They are one SQL text for both but
/// for a table's own integer key: SQLite's `INTEGER PRIMARY KEY` (64 bits, the row's own
/// key) is `BIGINT PRIMARY KEY` on PostgreSQL, where `INTEGER` holds 32 bits.
fn migrator(backend: &str) -> Migrator {
    let migrations: Vec<Migration> = MIGRATIONS
        .iter()
        .map(|(version, description, sql)| {
            // The migrations are the repository's own files: no outside text reaches them.
            let sql = if backend == "postgres" {
                sqlx::AssertSqlSafe(sql.replace("INTEGER PRIMARY KEY", "BIGINT PRIMARY KEY"))
                    .into_sql_str()
            } else {
                sql.into_sql_str()
            };
            Migration::new(
                *version,
                Cow::Borrowed(*description),
                MigrationType::Simple,
                sql,
                false,
            )
        })
        .collect();
    Migrator {
        migrations: Cow::Owned(migrations),
        ..Migrator::DEFAULT
    }
}

impl Store {
    /// Opens (creating when missing) the store at `url` and runs the migrations.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(std::time::Duration::from_secs(30));
            // An embedded file needs no health check on every acquire (a round trip to the
            // connection's thread before a run's first write).
            let pool = SqlitePoolOptions::new()
                .max_connections(4)
                .test_before_acquire(false)
                .connect_with(options)
                .await?;
            let store = Store::Sqlite(pool);
            store.migrate().await?;
            Ok(store)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Store::open_postgres(PgConnectOptions::from_str(url)?).await
        } else {
            Err(StoreError::BadUrl(url.to_string()))
        }
    }

    /// Opens a SQLite store in the file at `path` (created with its parent folders).
    pub async fn open_sqlite_file(path: &Path) -> Result<Store, StoreError> {
        if let Some(parent) = path.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        Store::open(&format!("sqlite://{}", path.display())).await
    }

    /// Opens PostgreSQL with these options and runs the migrations.
    pub async fn open_postgres(options: PgConnectOptions) -> Result<Store, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await?;
        let store = Store::Postgres(pool);
        store.migrate().await?;
        Ok(store)
    }

    /// The file of a SQLite store (none for PostgreSQL).
    pub(crate) fn sqlite_file(&self) -> Option<std::path::PathBuf> {
        match self {
            Store::Sqlite(pool) => Some(sqlite_path(pool)),
            Store::Postgres(_) => None,
        }
    }

    /// One of a SQLite store's pool connections, if one is to be had without waiting (none
    /// on PostgreSQL). While it is held, closing the store waits.
    pub(crate) fn try_sqlite_connection(&self) -> Option<sqlx::pool::PoolConnection<sqlx::Sqlite>> {
        match self {
            Store::Sqlite(pool) => pool.try_acquire(),
            Store::Postgres(_) => None,
        }
    }

    /// The backend's name (`sqlite`, `postgres`).
    pub fn backend(&self) -> &'static str {
        match self {
            Store::Sqlite(_) => "sqlite",
            Store::Postgres(_) => "postgres",
        }
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let migrator = migrator(self.backend());
        // Two processes opening a new SQLite file at once race to migrate it: the loser
        // fails on the tables the winner created, and succeeds when it looks again.
        let mut tries = 0;
        loop {
            let result: Result<(), sqlx::migrate::MigrateError> =
                with_pool!(self, pool => migrator.run(pool).await);
            match result {
                Ok(()) => return Ok(()),
                Err(_) if tries < 5 => {
                    tries += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(50 * tries)).await;
                }
                Err(error) => return Err(error.into()),
            }
        }
    }

    /// Closes the pool.
    pub async fn close(&self) {
        with_pool!(self, pool => pool.close().await);
    }

    /// Records a new run (its status row and, apart, its source and plan). The run takes the
    /// next run number, which places its step rows (see [`RUN_KEYS`]): SQLite numbers it
    /// under its write lock; PostgreSQL under a transaction-level advisory lock
    /// ([`RUN_NUMBER_LOCK`]), so that two processes recording runs at once take two numbers.
    pub async fn create_run(&self, run: &RunRecord) -> Result<(), StoreError> {
        let postgres = matches!(self, Store::Postgres(_));
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            if postgres {
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(RUN_NUMBER_LOCK)
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query(
                "INSERT INTO runs (id, pack_name, pack_path, plan_hash, inputs_json, options_json, status, outcome, error, result_json, created_at, updated_at, number) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, (SELECT COALESCE(MAX(number), 0) + 1 FROM runs))",
            )
            .bind(&run.id)
            .bind(&run.pack_name)
            .bind(&run.pack_path)
            .bind(&run.plan_hash)
            .bind(&run.inputs_json)
            .bind(&run.options_json)
            .bind(&run.status)
            .bind(&run.outcome)
            .bind(&run.error)
            .bind(&run.result_json)
            .bind(run.created_at)
            .bind(run.updated_at)
            .execute(&mut *tx)
            .await?;
            sqlx::query("INSERT INTO run_plans (run_id, source, plan_json) VALUES ($1, $2, $3)")
                .bind(&run.id)
                .bind(&run.source)
                .bind(&run.plan_json)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// Replaces a run's options (budget raised on resume).
    pub async fn set_options(&self, run_id: &str, options_json: &str) -> Result<(), StoreError> {
        with_pool!(self, pool => {
            sqlx::query("UPDATE runs SET options_json = $1 WHERE id = $2")
                .bind(options_json)
                .bind(run_id)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Applies a batch of writes in one transaction (one commit).
    pub async fn apply(&self, run_id: &str, writes: &[Write]) -> Result<(), StoreError> {
        if writes.is_empty() {
            return Ok(());
        }
        self.connection().await?.apply(run_id, writes).await
    }

    /// A connection of its own, for a writer that commits many batches in a row (no pool
    /// round trip per batch).
    pub async fn connection(&self) -> Result<StoreConnection, StoreError> {
        Ok(match self {
            Store::Sqlite(pool) => StoreConnection::Sqlite(SqliteConnection {
                path: sqlite_path(pool),
                raw: None,
            }),
            Store::Postgres(pool) => StoreConnection::Postgres(pool.acquire().await?),
        })
    }

    /// The run with id `id` (a unique prefix of an id is accepted).
    pub async fn run(&self, id: &str) -> Result<RunRecord, StoreError> {
        let pattern = format!("{id}%");
        let rows = with_pool!(self, pool => {
            let rows = sqlx::query("SELECT runs.*, run_plans.source, run_plans.plan_json FROM runs JOIN run_plans ON run_plans.run_id = runs.id WHERE runs.id = $1 OR runs.id LIKE $2 ORDER BY runs.created_at DESC LIMIT 2")
                .bind(id)
                .bind(&pattern)
                .fetch_all(pool)
                .await?;
            rows.iter().map(|row| run_from_row!(row)).collect::<Result<Vec<_>, sqlx::Error>>()?
        });
        match rows.as_slice() {
            [one] => Ok(one.clone()),
            many => many
                .iter()
                .find(|r| r.id == id)
                .cloned()
                .ok_or_else(|| StoreError::NoSuchRun(id.to_string())),
        }
    }

    /// The most recent runs, newest first.
    pub async fn runs(&self, limit: i64) -> Result<Vec<RunRecord>, StoreError> {
        Ok(with_pool!(self, pool => {
            let rows = sqlx::query("SELECT runs.*, run_plans.source, run_plans.plan_json FROM runs JOIN run_plans ON run_plans.run_id = runs.id ORDER BY runs.created_at DESC, runs.id DESC LIMIT $1")
                .bind(limit)
                .fetch_all(pool)
                .await?;
            rows.iter().map(|row| run_from_row!(row)).collect::<Result<Vec<_>, sqlx::Error>>()?
        }))
    }

    /// The steps of a run, in the order they finished: each step's latest row (a step
    /// written again, as a gate that asked anew or a resumed step is, has a row per write).
    pub async fn steps(&self, run_id: &str) -> Result<Vec<StepRecord>, StoreError> {
        let rows = with_pool!(self, pool => {
            let rows = sqlx::query(RUN_STEPS)
                .bind(run_id)
                .fetch_all(pool)
                .await?;
            rows.iter()
                .map(|row| -> Result<StepRecord, sqlx::Error> {
                    Ok(StepRecord {
                        key: row.try_get("step_key")?,
                        node: row.try_get("node")?,
                        status: row.try_get("status")?,
                        attempts: row.try_get("attempts")?,
                        started_at: row.try_get("started_at")?,
                        ended_at: row.try_get("ended_at")?,
                        output_json: row.try_get("output_json")?,
                        input_tokens: row.try_get("input_tokens")?,
                        output_tokens: row.try_get("output_tokens")?,
                        cost: row.try_get("cost")?,
                        error: row.try_get("error")?,
                        model: row.try_get("model")?,
                        detail_json: row.try_get("detail_json")?,
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()?
        });
        Ok(latest_per_key(rows))
    }

    /// Every attempt of a run, by start time.
    pub async fn attempts(&self, run_id: &str) -> Result<Vec<AttemptRecord>, StoreError> {
        Ok(with_pool!(self, pool => {
            let rows = sqlx::query("SELECT * FROM attempts WHERE run_id = $1 ORDER BY started_at, step_key, attempt")
                .bind(run_id)
                .fetch_all(pool)
                .await?;
            rows.iter()
                .map(|row| -> Result<AttemptRecord, sqlx::Error> {
                    Ok(AttemptRecord {
                        key: row.try_get("step_key")?,
                        attempt: row.try_get("attempt")?,
                        status: row.try_get("status")?,
                        started_at: row.try_get("started_at")?,
                        ended_at: row.try_get("ended_at")?,
                        input_tokens: row.try_get("input_tokens")?,
                        output_tokens: row.try_get("output_tokens")?,
                        cost: row.try_get("cost")?,
                        model: row.try_get("model")?,
                        error: row.try_get("error")?,
                        detail_json: row.try_get("detail_json")?,
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()?
        }))
    }

    /// The approvals of a run.
    pub async fn approvals(&self, run_id: &str) -> Result<Vec<ApprovalRecord>, StoreError> {
        Ok(with_pool!(self, pool => {
            let rows = sqlx::query("SELECT * FROM approvals WHERE run_id = $1 ORDER BY requested_at, step_key")
                .bind(run_id)
                .fetch_all(pool)
                .await?;
            rows.iter()
                .map(|row| -> Result<ApprovalRecord, sqlx::Error> {
                    Ok(ApprovalRecord {
                        key: row.try_get("step_key")?,
                        tool: row.try_get("tool")?,
                        args_json: row.try_get("args_json")?,
                        args_hash: row.try_get("args_hash")?,
                        reason: row.try_get("reason")?,
                        status: row.try_get("status")?,
                        decided_by: row.try_get("decided_by")?,
                        note: row.try_get("note")?,
                        requested_at: row.try_get("requested_at")?,
                        decided_at: row.try_get("decided_at")?,
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()?
        }))
    }

    /// The effects of a run.
    pub async fn effects(&self, run_id: &str) -> Result<Vec<EffectRecord>, StoreError> {
        Ok(with_pool!(self, pool => {
            let rows = sqlx::query("SELECT * FROM effects WHERE run_id = $1 ORDER BY first_issued_at, idempotency_key")
                .bind(run_id)
                .fetch_all(pool)
                .await?;
            rows.iter()
                .map(|row| -> Result<EffectRecord, sqlx::Error> {
                    Ok(EffectRecord {
                        key: row.try_get("idempotency_key")?,
                        step_key: row.try_get("step_key")?,
                        tool: row.try_get("tool")?,
                        times_issued: row.try_get("times_issued")?,
                        status: row.try_get("status")?,
                        args_hash: row.try_get("args_hash")?,
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()?
        }))
    }

    /// The audit log of a run, in order.
    pub async fn audit(&self, run_id: &str) -> Result<Vec<AuditRecord>, StoreError> {
        Ok(with_pool!(self, pool => {
            let rows = sqlx::query("SELECT * FROM audit WHERE run_id = $1 ORDER BY seq")
                .bind(run_id)
                .fetch_all(pool)
                .await?;
            rows.iter()
                .map(|row| -> Result<AuditRecord, sqlx::Error> {
                    Ok(AuditRecord {
                        seq: row.try_get("seq")?,
                        at: row.try_get("at")?,
                        kind: row.try_get("kind")?,
                        step_key: row.try_get("step_key")?,
                        detail: row.try_get("detail")?,
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()?
        }))
    }

    /// The next free audit sequence number of a run.
    pub async fn next_audit_seq(&self, run_id: &str) -> Result<i64, StoreError> {
        let max: Option<i64> = with_pool!(self, pool => {
            sqlx::query("SELECT MAX(seq) AS m FROM audit WHERE run_id = $1")
                .bind(run_id)
                .fetch_one(pool)
                .await?
                .try_get("m")?
        });
        Ok(max.map_or(0, |m| m + 1))
    }
}

/// Copies what SQLite's log holds into the database file, as far as no reader needs it
/// (`PASSIVE`: it waits for no one).
pub(crate) async fn checkpoint_on(
    connection: &mut sqlx::SqliteConnection,
) -> Result<(), StoreError> {
    sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
        .execute(connection)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The SQL's ranges of step row keys are [`RUN_KEYS`] wide.
    #[test]
    fn a_run_s_range_of_keys_in_sql_is_run_keys_wide() {
        let (width, last) = (RUN_KEYS.to_string(), (RUN_KEYS - 1).to_string());
        assert!(in_run!().contains(&format!("runs.number * {width} + {last}")));
        assert!(APPEND_STEP.contains(&format!("(next.number + 1) * {width}")));
        assert!(DELETE_STEP.contains(&format!("number * {width} + {last}")));
    }
}

//! SQLite: a run writer's own connection, opened and driven through SQLite's C API.
//!
//! Through sqlx, every statement is a round trip to the connection's worker thread, and a
//! row's values are copied into sqlx's arguments and again into the statement: about 3 µs
//! a step row, and a transaction is three round trips or more. A wave of 1,000 finished
//! steps shares two cores with the scheduler that is releasing them, so those microseconds
//! show in the wave's makespan. This connection belongs to one writer (see
//! `engine::writer`): it is opened on the store's file, each statement is prepared once and
//! kept, values are bound without copies, and a group commit is `BEGIN`, the rows and
//! `COMMIT` in one call on whichever thread holds the connection.
//!
//! Every batch written to a SQLite store goes through here: a run writer's commits, and
//! [`super::Store::apply`] and [`super::StoreConnection`] on a blocking thread. It writes
//! what PostgreSQL's path writes, with the same SQL and in the same order (rows taken per
//! table by [`super::Rows`] and not merged: step rows go 32 to a statement under the run's
//! next keys, so a key written twice has its later row last, the one read back, as
//! PostgreSQL's merged rows do; the rest go one at a time); the store test-suite runs on
//! both backends.

use std::ffi::{CStr, CString, c_int};
use std::path::Path;
use std::ptr::NonNull;

use libsqlite3_sys as ffi;

use super::{
    APPEND_STEP, ATTEMPT_COLUMNS, ATTEMPT_CONFLICT, AUDIT_COLUMNS, DELETE_APPROVAL, DELETE_STEP,
    EFFECT_DONE, INSERT_APPROVAL, INSERT_EFFECT, NEXT_STEP_ID, REISSUE_EFFECT, RUN_STATUS, Rows,
    STEP_COLUMNS, StoreError, Write, appended, step_ids,
};

/// The statements a writer runs, each prepared at its first use.
#[derive(Clone, Copy)]
pub(crate) enum Sql {
    /// A lone step row, under its run's next key.
    AppendStep,
    /// A step row under a key given.
    InsertStep,
    /// The key of a run's next step row.
    NextStepId,
    UpsertAttempt,
    InsertAudit,
    DeleteApproval,
    DeleteStep,
    InsertApproval,
    ReissueEffect,
    InsertEffect,
    EffectDone,
    RunStatus,
    Begin,
    Commit,
    /// [`STEPS_AT_ONCE`] step rows in one statement, under keys given.
    InsertSteps,
}

const STATEMENTS: usize = 15;

/// Step rows per multi-row insert. A statement's run has a cost of its own (its cursors
/// opened and closed, its bindings reset), which a wave's commit pays once per 32 rows
/// instead of once per row.
const STEPS_AT_ONCE: usize = 32;

/// What a wave's commits write: its transactions, its step rows (a lone one under the run's
/// next key; in a group, the next key read, then rows [`STEPS_AT_ONCE`] at once and one at
/// a time), and at the run's end its status and audit event (see
/// [`RawConnection::prepare`]). The multi-row insert takes the longest to prepare: left to
/// its first use, it held up the first large group commit of every wide wave.
pub(crate) const WAVE: [Sql; 8] = [
    Sql::AppendStep,
    Sql::Begin,
    Sql::Commit,
    Sql::RunStatus,
    Sql::InsertAudit,
    Sql::NextStepId,
    Sql::InsertSteps,
    Sql::InsertStep,
];

impl Sql {
    fn text(self) -> String {
        match self {
            Sql::AppendStep => APPEND_STEP.into(),
            Sql::InsertStep => format!(
                "{STEP_COLUMNS}VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
            ),
            Sql::NextStepId => NEXT_STEP_ID.into(),
            Sql::UpsertAttempt => format!(
                "{ATTEMPT_COLUMNS}VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12){ATTEMPT_CONFLICT}"
            ),
            Sql::InsertAudit => format!("{AUDIT_COLUMNS}VALUES ($1, $2, $3, $4, $5, $6)"),
            Sql::DeleteApproval => DELETE_APPROVAL.into(),
            Sql::DeleteStep => DELETE_STEP.into(),
            Sql::InsertApproval => INSERT_APPROVAL.into(),
            Sql::ReissueEffect => REISSUE_EFFECT.into(),
            Sql::InsertEffect => INSERT_EFFECT.into(),
            Sql::EffectDone => EFFECT_DONE.into(),
            Sql::RunStatus => RUN_STATUS.into(),
            // The run id, the same in every row, is one parameter (`?1`), bound once; a row's
            // key and values follow it.
            Sql::InsertSteps => {
                let rows: Vec<String> = (0..STEPS_AT_ONCE)
                    .map(|row| {
                        let first = 2 + row * (1 + STEP_VALUES);
                        let params: Vec<String> = (first + 1..first + 1 + STEP_VALUES)
                            .map(|at| format!("?{at}"))
                            .collect();
                        format!("(?{first}, ?1, {})", params.join(", "))
                    })
                    .collect();
                format!("{STEP_COLUMNS}VALUES {}", rows.join(", "))
            }
            Sql::Begin => "BEGIN IMMEDIATE".into(),
            Sql::Commit => "COMMIT".into(),
        }
    }
}

/// A value bound to a statement parameter. Text is bound without a copy: it must outlive
/// the statement's run, which resets the statement before returning.
#[derive(Clone, Copy)]
enum Value<'a> {
    Text(Option<&'a str>),
    Int(i64),
    Real(f64),
}

impl<'a> From<&'a str> for Value<'a> {
    fn from(value: &'a str) -> Self {
        Value::Text(Some(value))
    }
}
impl<'a> From<&'a String> for Value<'a> {
    fn from(value: &'a String) -> Self {
        Value::Text(Some(value))
    }
}
impl<'a> From<&'a Option<String>> for Value<'a> {
    fn from(value: &'a Option<String>) -> Self {
        Value::Text(value.as_deref())
    }
}
impl From<i64> for Value<'_> {
    fn from(value: i64) -> Self {
        Value::Int(value)
    }
}
impl From<Option<i64>> for Value<'_> {
    fn from(value: Option<i64>) -> Self {
        match value {
            Some(value) => Value::Int(value),
            None => Value::Text(None),
        }
    }
}
impl From<f64> for Value<'_> {
    fn from(value: f64) -> Self {
        Value::Real(value)
    }
}

/// The values of a step row after its run id, in `STEP_COLUMNS` order.
const STEP_VALUES: usize = 13;

fn step_values(step: &super::StepRecord) -> [Value<'_>; STEP_VALUES] {
    [
        (&step.key).into(),
        (&step.node).into(),
        (&step.status).into(),
        step.attempts.into(),
        step.started_at.into(),
        step.ended_at.into(),
        (&step.output_json).into(),
        step.input_tokens.into(),
        step.output_tokens.into(),
        step.cost.into(),
        (&step.error).into(),
        (&step.model).into(),
        (&step.detail_json).into(),
    ]
}

/// How sqlx names the shared in-memory database behind `sqlite::memory:`.
const IN_MEMORY: &[u8] = b"file:sqlx-in-memory-";

/// A writer's connection to a SQLite store file, with its prepared statements.
pub(crate) struct RawConnection {
    db: NonNull<ffi::sqlite3>,
    /// Boxed: a connection is passed by value (in results too), and its fifteen statements
    /// inline would make it 128 bytes.
    statements: Box<[Option<NonNull<ffi::sqlite3_stmt>>; STATEMENTS]>,
}

impl std::fmt::Debug for RawConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RawConnection")
    }
}

// SAFETY: the connection is opened in SQLite's multi-thread mode: it may move between
// threads as long as one thread uses it at a time, which `&mut self` on every method
// guarantees (writers keep it behind a mutex).
unsafe impl Send for RawConnection {}

impl Drop for RawConnection {
    fn drop(&mut self) {
        // SAFETY: every statement was prepared on `db` and is finalized once, before the
        // handle is closed, once.
        unsafe {
            for stmt in self.statements.iter().flatten() {
                ffi::sqlite3_finalize(stmt.as_ptr());
            }
            ffi::sqlite3_close(self.db.as_ptr());
        }
    }
}

/// SQLite's message for the last error on `db`.
fn error(db: NonNull<ffi::sqlite3>, what: &str, code: c_int) -> StoreError {
    // SAFETY: `db` is a live handle used by this thread alone; `sqlite3_errmsg` returns a
    // NUL-terminated string owned by SQLite, valid until the next call on the handle, and
    // copied at once.
    let message = unsafe {
        let text = ffi::sqlite3_errmsg(db.as_ptr());
        if text.is_null() {
            String::new()
        } else {
            CStr::from_ptr(text).to_string_lossy().into_owned()
        }
    };
    let message = format!("{what} failed (SQLite code {code}): {message}");
    if code & 0xff == ffi::SQLITE_BUSY {
        StoreError::Locked(message)
    } else {
        StoreError::Sqlite(message)
    }
}

/// Resets `stmt` after a run and clears its bindings, dropping SQLite's pointers into the
/// values bound (bound without copies: see [`Value`]) before they can go.
fn reset(stmt: NonNull<ffi::sqlite3_stmt>) {
    // SAFETY: the statement is live (prepared on a live connection, finalized only with it).
    unsafe {
        ffi::sqlite3_reset(stmt.as_ptr());
        ffi::sqlite3_clear_bindings(stmt.as_ptr());
    }
}

/// How long a write on a writer's connection waits for another connection's write lock.
pub(crate) const BUSY_TIMEOUT_MS: c_int = 30_000;

impl RawConnection {
    /// Opens the store file at `path` (which its pool has created and migrated) with the
    /// pool's settings: WAL, `synchronous = NORMAL`, a 30-second busy timeout. Commits on it
    /// do not checkpoint the log; its writer has that done off the steps' path.
    pub(crate) fn open(path: &Path) -> Result<RawConnection, StoreError> {
        let bytes = path.as_os_str().as_encoded_bytes();
        let name = CString::new(bytes).map_err(|_| {
            StoreError::Sqlite(format!("store path {} holds a NUL byte", path.display()))
        })?;
        let mut flags = ffi::SQLITE_OPEN_READWRITE | ffi::SQLITE_OPEN_NOMUTEX;
        // `sqlite::memory:` is a database shared by the pool's connections under this name
        // (sqlx's); opened the same way, it is the same database.
        if bytes.starts_with(IN_MEMORY) {
            flags |= ffi::SQLITE_OPEN_URI | ffi::SQLITE_OPEN_MEMORY | ffi::SQLITE_OPEN_SHAREDCACHE;
        }
        let mut db = std::ptr::null_mut();
        // SAFETY: `name` is NUL-terminated; `db` receives the handle, which SQLite allocates
        // even when the open fails (it must then be closed).
        let code = unsafe { ffi::sqlite3_open_v2(name.as_ptr(), &mut db, flags, std::ptr::null()) };
        let Some(db) = NonNull::new(db) else {
            return Err(StoreError::Sqlite(format!(
                "could not open {} (SQLite code {code})",
                path.display()
            )));
        };
        let connection = RawConnection {
            db,
            statements: Box::new([None; STATEMENTS]),
        };
        if code != ffi::SQLITE_OK {
            return Err(error(db, &format!("opening {}", path.display()), code));
        }
        // SAFETY: the handle is live.
        unsafe {
            ffi::sqlite3_busy_timeout(db.as_ptr(), BUSY_TIMEOUT_MS);
        }
        connection.execute(c"PRAGMA synchronous = NORMAL")?;
        connection.execute(c"PRAGMA foreign_keys = ON")?;
        connection.execute(c"PRAGMA wal_autocheckpoint = 0")?;
        Ok(connection)
    }

    /// Sets how long a write waits for another connection's write lock before it fails
    /// with [`StoreError::Locked`] (0: not at all).
    pub(crate) fn set_busy_timeout(&mut self, ms: c_int) {
        // SAFETY: the handle is live and used by this thread alone.
        unsafe {
            ffi::sqlite3_busy_timeout(self.db.as_ptr(), ms);
        }
    }

    /// Runs one SQL statement without results.
    fn execute(&self, sql: &CStr) -> Result<(), StoreError> {
        // SAFETY: the handle is live; `sql` is NUL-terminated; no callback.
        let code = unsafe {
            ffi::sqlite3_exec(
                self.db.as_ptr(),
                sql.as_ptr(),
                None,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
        if code == ffi::SQLITE_OK {
            Ok(())
        } else {
            Err(error(self.db, &sql.to_string_lossy(), code))
        }
    }

    /// The prepared statement for `sql`, prepared at its first use.
    fn statement(&mut self, sql: Sql) -> Result<NonNull<ffi::sqlite3_stmt>, StoreError> {
        if let Some(stmt) = self.statements[sql as usize] {
            return Ok(stmt);
        }
        let text = sql.text();
        let length = c_int::try_from(text.len())
            .map_err(|_| StoreError::Sqlite("statement too long".into()))?;
        let mut stmt = std::ptr::null_mut();
        // SAFETY: the handle is live; `text` is valid for `length` bytes; `stmt` receives
        // the statement (or null); `PERSISTENT`: it is kept for the connection's life.
        let code = unsafe {
            ffi::sqlite3_prepare_v3(
                self.db.as_ptr(),
                text.as_ptr().cast(),
                length,
                ffi::SQLITE_PREPARE_PERSISTENT,
                &mut stmt,
                std::ptr::null_mut(),
            )
        };
        match NonNull::new(stmt) {
            Some(stmt) if code == ffi::SQLITE_OK => {
                self.statements[sql as usize] = Some(stmt);
                Ok(stmt)
            }
            Some(stmt) => {
                let failure = error(self.db, "preparing a statement", code);
                // SAFETY: the statement was just prepared and is finalized once.
                unsafe {
                    ffi::sqlite3_finalize(stmt.as_ptr());
                }
                Err(failure)
            }
            None => Err(error(self.db, "preparing a statement", code)),
        }
    }

    /// Prepares `statements` now rather than at their first use: a writer's committer thread
    /// does so while a wave's steps are still working, so neither the first group commit
    /// nor the run's last write spends some 50 µs a statement preparing (see
    /// `engine::writer`).
    pub(crate) fn prepare(&mut self, statements: &[Sql]) -> Result<(), StoreError> {
        statements
            .iter()
            .try_for_each(|&sql| self.statement(sql).map(drop))
    }

    /// Whether every statement of `statements` is prepared.
    #[cfg(test)]
    pub(crate) fn prepared_all(&self, statements: &[Sql]) -> bool {
        statements
            .iter()
            .all(|&sql| self.statements[sql as usize].is_some())
    }

    /// Binds `values` to the parameters of `stmt`, in order. Text is bound without a copy
    /// (`SQLITE_STATIC`): the caller clears the bindings before `values` can go.
    fn bind(
        &self,
        stmt: NonNull<ffi::sqlite3_stmt>,
        values: &[Value<'_>],
    ) -> Result<(), StoreError> {
        values.iter().enumerate().try_for_each(|(at, value)| {
            let index = at as c_int + 1;
            // SAFETY: the statement is live; text bytes are valid for their length and
            // outlive the binding, which the caller clears before `values` can go.
            let code = unsafe {
                match value {
                    Value::Text(Some(text)) => {
                        let length = c_int::try_from(text.len())
                            .map_err(|_| StoreError::Sqlite("value too long".into()))?;
                        ffi::sqlite3_bind_text(
                            stmt.as_ptr(),
                            index,
                            text.as_ptr().cast(),
                            length,
                            ffi::SQLITE_STATIC(),
                        )
                    }
                    Value::Text(None) => ffi::sqlite3_bind_null(stmt.as_ptr(), index),
                    Value::Int(int) => ffi::sqlite3_bind_int64(stmt.as_ptr(), index, *int),
                    Value::Real(real) => ffi::sqlite3_bind_double(stmt.as_ptr(), index, *real),
                }
            };
            if code == ffi::SQLITE_OK {
                Ok(())
            } else {
                Err(error(self.db, "binding a value", code))
            }
        })
    }

    /// Runs `sql` with `values` bound to its parameters, in order, and returns how many
    /// rows it changed. The statement is reset and its bindings cleared before this returns,
    /// so SQLite keeps no pointer into `values`.
    fn run(&mut self, sql: Sql, values: &[Value<'_>]) -> Result<u64, StoreError> {
        let stmt = self.statement(sql)?;
        let result = self.bind(stmt, values).and_then(|()| {
            // SAFETY: the statement is live and every parameter is bound.
            let code = unsafe { ffi::sqlite3_step(stmt.as_ptr()) };
            if code == ffi::SQLITE_DONE || code == ffi::SQLITE_ROW {
                // SAFETY: the handle is live.
                Ok(unsafe { ffi::sqlite3_changes64(self.db.as_ptr()) } as u64)
            } else {
                Err(error(self.db, "a write", code))
            }
        });
        reset(stmt);
        result
    }

    /// Runs the query `sql` with `values` bound and returns its first row's first column as
    /// an integer (none without a row, or where it is NULL). Reset and cleared as [`Self::run`]
    /// is.
    fn query_int(&mut self, sql: Sql, values: &[Value<'_>]) -> Result<Option<i64>, StoreError> {
        let stmt = self.statement(sql)?;
        let result = self.bind(stmt, values).and_then(|()| {
            // SAFETY: the statement is live and every parameter is bound; the column is read
            // while the statement stands on its row.
            unsafe {
                match ffi::sqlite3_step(stmt.as_ptr()) {
                    ffi::SQLITE_ROW
                        if ffi::sqlite3_column_type(stmt.as_ptr(), 0) != ffi::SQLITE_NULL =>
                    {
                        Ok(Some(ffi::sqlite3_column_int64(stmt.as_ptr(), 0)))
                    }
                    ffi::SQLITE_ROW | ffi::SQLITE_DONE => Ok(None),
                    code => Err(error(self.db, "a query", code)),
                }
            }
        });
        reset(stmt);
        result
    }

    /// Applies batches of run `run_id` as one: a lone step row autocommits, anything else
    /// is one transaction, rolled back if any write fails.
    pub(crate) fn apply_batches(
        &mut self,
        run_id: &str,
        batches: &[&[Write]],
    ) -> Result<(), StoreError> {
        if let [[Write::Step(step, attempts)]] = batches
            && attempts.is_empty()
        {
            let row = step_values(step);
            let values: [Value<'_>; STEP_VALUES + 1] =
                std::array::from_fn(|at| if at == 0 { run_id.into() } else { row[at - 1] });
            let changed = self.run(Sql::AppendStep, &values)?;
            return appended(run_id, changed);
        }
        if batches.iter().all(|batch| batch.is_empty()) {
            return Ok(());
        }
        self.run(Sql::Begin, &[])?;
        let result = self
            .write_rows(
                run_id,
                Rows::partition(batches.iter().flat_map(|b| b.iter())),
            )
            .and_then(|()| self.run(Sql::Commit, &[]).map(drop));
        // SAFETY: the handle is live.
        if result.is_err() && unsafe { ffi::sqlite3_get_autocommit(self.db.as_ptr()) } == 0 {
            let _ = self.execute(c"ROLLBACK");
        }
        result
    }

    fn write_rows(&mut self, run_id: &str, rows: Rows<'_>) -> Result<(), StoreError> {
        if !rows.steps.is_empty() {
            let next = self.query_int(Sql::NextStepId, &[run_id.into()])?;
            let mut id = step_ids(run_id, next, rows.steps.len())?;
            let mut chunks = rows.steps.chunks_exact(STEPS_AT_ONCE);
            let mut values = Vec::new();
            for chunk in &mut chunks {
                values.clear();
                values.push(run_id.into());
                for step in chunk {
                    values.push(id.into());
                    values.extend(step_values(step));
                    id += 1;
                }
                self.run(Sql::InsertSteps, &values)?;
            }
            for step in chunks.remainder() {
                values.clear();
                values.push(id.into());
                values.push(run_id.into());
                values.extend(step_values(step));
                self.run(Sql::InsertStep, &values)?;
                id += 1;
            }
        }
        for attempt in rows.attempts {
            self.run(
                Sql::UpsertAttempt,
                &[
                    run_id.into(),
                    (&attempt.key).into(),
                    attempt.attempt.into(),
                    (&attempt.status).into(),
                    attempt.started_at.into(),
                    attempt.ended_at.into(),
                    attempt.input_tokens.into(),
                    attempt.output_tokens.into(),
                    attempt.cost.into(),
                    (&attempt.model).into(),
                    (&attempt.error).into(),
                    (&attempt.detail_json).into(),
                ],
            )?;
        }
        for event in rows.audit {
            self.run(
                Sql::InsertAudit,
                &[
                    run_id.into(),
                    event.seq.into(),
                    event.at.into(),
                    (&event.kind).into(),
                    (&event.step_key).into(),
                    (&event.detail).into(),
                ],
            )?;
        }
        for write in rows.others {
            match write {
                Write::Step(..) | Write::Attempt(_) | Write::Audit(_) => {}
                Write::Approval(approval) => {
                    let key = [run_id.into(), (&approval.key).into()];
                    self.run(Sql::DeleteApproval, &key)?;
                    if approval.status == "pending" {
                        self.run(Sql::DeleteStep, &key)?;
                    }
                    self.run(
                        Sql::InsertApproval,
                        &[
                            run_id.into(),
                            (&approval.key).into(),
                            (&approval.tool).into(),
                            (&approval.args_json).into(),
                            (&approval.args_hash).into(),
                            (&approval.reason).into(),
                            (&approval.status).into(),
                            (&approval.decided_by).into(),
                            (&approval.note).into(),
                            approval.requested_at.into(),
                            approval.decided_at.into(),
                        ],
                    )?;
                }
                Write::EffectIssued {
                    key,
                    step_key,
                    tool,
                    at,
                    args_hash,
                } => {
                    if self.run(Sql::ReissueEffect, &[(*at).into(), key.into()])? == 0 {
                        self.run(
                            Sql::InsertEffect,
                            &[
                                key.into(),
                                run_id.into(),
                                step_key.into(),
                                tool.into(),
                                (*at).into(),
                                args_hash.into(),
                            ],
                        )?;
                    }
                }
                Write::EffectDone { key } => {
                    self.run(Sql::EffectDone, &[key.into()])?;
                }
                Write::RunStatus {
                    status,
                    outcome,
                    error,
                    result_json,
                    at,
                } => {
                    self.run(
                        Sql::RunStatus,
                        &[
                            status.into(),
                            outcome.into(),
                            error.into(),
                            result_json.into(),
                            (*at).into(),
                            run_id.into(),
                        ],
                    )?;
                }
            }
        }
        Ok(())
    }

    /// Copies what the WAL holds into the database, without waiting for readers (a passive
    /// checkpoint).
    pub(crate) fn checkpoint(&mut self) -> Result<(), StoreError> {
        self.execute(c"PRAGMA wal_checkpoint(PASSIVE)")
    }
}

//! SQLite: many step rows through one prepared statement, straight through SQLite's C API.
//!
//! Through sqlx, a wave of finished steps is multi-row statements whose 14 values a row are
//! copied into sqlx's arguments, sent to the connection's worker thread and copied again
//! into the statement: about 3.2 µs a row, with the statement's SQL rebuilt for each chunk.
//! Here the connection's handle is locked out of its worker (`lock_handle`, made for direct
//! API calls) and each row is bound without copies (`SQLITE_STATIC`: the values outlive the
//! statement's use of them), stepped and reset.
//!
//! This runs on the calling task's thread and blocks it while SQLite works: a commit of a
//! wave's rows, writing to the WAL, without syncing it (`synchronous = NORMAL`).

use std::ffi::{CStr, c_int};
use std::ptr::NonNull;

use libsqlite3_sys as ffi;

use super::{STEP_COLUMNS, STEP_CONFLICT, StepRecord, StoreError};

/// The upsert of one step row, every column bound.
fn statement_sql() -> String {
    format!(
        "{STEP_COLUMNS}VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14){STEP_CONFLICT}"
    )
}

/// A prepared statement, finalized when dropped.
struct Statement {
    db: NonNull<ffi::sqlite3>,
    stmt: NonNull<ffi::sqlite3_stmt>,
}

impl Drop for Statement {
    fn drop(&mut self) {
        // SAFETY: `stmt` was prepared on `db`, which is locked for us while `self` lives,
        // and is finalized exactly once, here.
        unsafe {
            ffi::sqlite3_finalize(self.stmt.as_ptr());
        }
    }
}

/// SQLite's message for the last error on `db`.
fn error(db: NonNull<ffi::sqlite3>, what: &str, code: c_int) -> StoreError {
    // SAFETY: `db` is a live handle locked for us; `sqlite3_errmsg` returns a NUL-terminated
    // string owned by SQLite, valid until the next call on the handle, and copied at once.
    let message = unsafe {
        let text = ffi::sqlite3_errmsg(db.as_ptr());
        if text.is_null() {
            String::new()
        } else {
            CStr::from_ptr(text).to_string_lossy().into_owned()
        }
    };
    StoreError::Corrupt(format!("SQLite {what} failed (code {code}): {message}"))
}

impl Statement {
    fn prepare(db: NonNull<ffi::sqlite3>, sql: &str) -> Result<Statement, StoreError> {
        let length = c_int::try_from(sql.len())
            .map_err(|_| StoreError::Corrupt("statement too long".into()))?;
        let mut stmt = std::ptr::null_mut();
        // SAFETY: `db` is a live handle locked for us; `sql` is valid for `length` bytes;
        // `stmt` receives the statement (or null).
        let code = unsafe {
            ffi::sqlite3_prepare_v2(
                db.as_ptr(),
                sql.as_ptr().cast(),
                length,
                &mut stmt,
                std::ptr::null_mut(),
            )
        };
        match NonNull::new(stmt) {
            Some(stmt) if code == ffi::SQLITE_OK => Ok(Statement { db, stmt }),
            Some(stmt) => {
                drop(Statement { db, stmt });
                Err(error(db, "prepare", code))
            }
            None => Err(error(db, "prepare", code)),
        }
    }

    /// Binds text at 1-based `index`, without a copy: `value` must stay alive and unchanged
    /// until the statement is reset or finalized.
    fn text(&self, index: c_int, value: Option<&str>) -> Result<(), StoreError> {
        let code = match value {
            // SAFETY: the statement is live; the bytes are valid for their length and, as
            // this method requires, outlive the binding (`SQLITE_STATIC`).
            Some(value) => unsafe {
                let length = c_int::try_from(value.len())
                    .map_err(|_| StoreError::Corrupt("value too long".into()))?;
                ffi::sqlite3_bind_text(
                    self.stmt.as_ptr(),
                    index,
                    value.as_ptr().cast(),
                    length,
                    ffi::SQLITE_STATIC(),
                )
            },
            // SAFETY: the statement is live.
            None => unsafe { ffi::sqlite3_bind_null(self.stmt.as_ptr(), index) },
        };
        self.check(code, "bind")
    }

    fn int(&self, index: c_int, value: i64) -> Result<(), StoreError> {
        // SAFETY: the statement is live.
        let code = unsafe { ffi::sqlite3_bind_int64(self.stmt.as_ptr(), index, value) };
        self.check(code, "bind")
    }

    fn real(&self, index: c_int, value: f64) -> Result<(), StoreError> {
        // SAFETY: the statement is live.
        let code = unsafe { ffi::sqlite3_bind_double(self.stmt.as_ptr(), index, value) };
        self.check(code, "bind")
    }

    /// Runs the bound statement to its end and resets it for the next row (keeping no
    /// pointer to the values bound).
    fn run(&self) -> Result<(), StoreError> {
        // SAFETY: the statement is live; every parameter is bound.
        let code = unsafe { ffi::sqlite3_step(self.stmt.as_ptr()) };
        // SAFETY: as above; reset and clearing the bindings drop SQLite's pointers into the
        // row's values before they go.
        unsafe {
            ffi::sqlite3_reset(self.stmt.as_ptr());
            ffi::sqlite3_clear_bindings(self.stmt.as_ptr());
        }
        if code == ffi::SQLITE_DONE {
            Ok(())
        } else {
            Err(error(self.db, "insert of a step row", code))
        }
    }

    fn check(&self, code: c_int, what: &str) -> Result<(), StoreError> {
        if code == ffi::SQLITE_OK {
            Ok(())
        } else {
            Err(error(self.db, what, code))
        }
    }
}

/// Runs one SQL statement without results (`BEGIN`, `COMMIT`, `ROLLBACK`).
fn execute(db: NonNull<ffi::sqlite3>, sql: &CStr) -> Result<(), StoreError> {
    // SAFETY: `db` is a live handle locked for us; `sql` is NUL-terminated; no callback.
    let code = unsafe {
        ffi::sqlite3_exec(
            db.as_ptr(),
            sql.as_ptr(),
            None,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
    };
    if code == ffi::SQLITE_OK {
        Ok(())
    } else {
        Err(error(db, &sql.to_string_lossy(), code))
    }
}

/// Upserts `steps` of run `run_id` on `conn`, inside whatever transaction is open on it.
pub(super) async fn upsert_steps(
    conn: &mut sqlx::SqliteConnection,
    run_id: &str,
    steps: &[&StepRecord],
) -> Result<(), StoreError> {
    let mut handle = conn.lock_handle().await?;
    upsert_on(handle.as_raw_handle(), run_id, steps)
}

/// Upserts `steps` in a transaction of their own: `BEGIN`, the rows and `COMMIT` all on the
/// locked handle, one hand-over from the connection's worker thread rather than one for
/// each of the three (a wave's commits are several, and each hand-over is two thread
/// wake-ups). A failure rolls the transaction back before the handle goes back.
pub(super) async fn commit_steps(
    conn: &mut sqlx::SqliteConnection,
    run_id: &str,
    steps: &[&StepRecord],
) -> Result<(), StoreError> {
    let mut handle = conn.lock_handle().await?;
    let db = handle.as_raw_handle();
    execute(db, c"BEGIN IMMEDIATE")?;
    let result = upsert_on(db, run_id, steps).and_then(|()| execute(db, c"COMMIT"));
    if result.is_err() {
        // SAFETY: `db` is live and locked for us.
        if unsafe { ffi::sqlite3_get_autocommit(db.as_ptr()) } == 0 {
            let _ = execute(db, c"ROLLBACK");
        }
    }
    result
}

fn upsert_on(
    db: NonNull<ffi::sqlite3>,
    run_id: &str,
    steps: &[&StepRecord],
) -> Result<(), StoreError> {
    let statement = Statement::prepare(db, &statement_sql())?;
    for step in steps {
        statement.text(1, Some(run_id))?;
        statement.text(2, Some(&step.key))?;
        statement.text(3, Some(&step.node))?;
        statement.text(4, Some(&step.status))?;
        statement.int(5, step.attempts)?;
        statement.int(6, step.started_at)?;
        statement.int(7, step.ended_at)?;
        statement.text(8, step.output_json.as_deref())?;
        statement.int(9, step.input_tokens)?;
        statement.int(10, step.output_tokens)?;
        statement.real(11, step.cost)?;
        statement.text(12, step.error.as_deref())?;
        statement.text(13, step.model.as_deref())?;
        statement.text(14, step.detail_json.as_deref())?;
        statement.run()?;
    }
    Ok(())
}

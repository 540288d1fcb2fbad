//! The store writer: group commit without a writer task. A step's writes join a queue; the
//! first writer to get the connection commits everything queued in one transaction and
//! acknowledges each batch once it is durable; writers that queued meanwhile find theirs
//! done, or commit the next group. So a lone write (a chain) goes straight from the step to
//! the database, and a wave of steps that finish together is one commit.
//!
//! The connection is kept for the run (no pool round trip per commit). On SQLite, commits
//! do not checkpoint the log: that is done off the steps' path, by a task that takes the
//! connection every 2,000 rows, and when the run closes the writer.

use std::sync::Mutex;

use tokio::sync::oneshot;

use crate::store::{Store, StoreConnection, StoreError, Write};

type Ack = oneshot::Sender<Result<(), String>>;

/// Rows written between two checkpoints of SQLite's log (about 1,000 pages).
const CHECKPOINT_ROWS: usize = 2000;

/// The writer of one run (or nothing, for in-memory runs).
pub(crate) struct Writer {
    shared: Option<Shared>,
}

struct Shared {
    run_id: String,
    /// Batches waiting for the next commit.
    queue: Mutex<Vec<(Vec<Write>, Ack)>>,
    /// The connection; whoever holds the lock commits the queue.
    held: tokio::sync::Mutex<HeldConnection>,
}

/// The run's connection, taken at the first write and kept until a checkpoint or the close.
struct HeldConnection {
    store: Store,
    connection: Option<StoreConnection>,
    /// Rows written since the last checkpoint.
    unchecked_rows: usize,
}

impl HeldConnection {
    /// Commits `writes` in one transaction (a failed connection is let go, the next group
    /// takes a fresh one).
    async fn apply(&mut self, run_id: &str, writes: &[Write]) -> Result<(), String> {
        if writes.is_empty() {
            return Ok(());
        }
        if self.connection.is_none() {
            let mut fresh = self.store.connection().await.map_err(|e| e.to_string())?;
            fresh
                .defer_checkpoints(true)
                .await
                .map_err(|e| e.to_string())?;
            self.connection = Some(fresh);
        }
        let Some(connection) = &mut self.connection else {
            return Err("the store writer has no connection".into());
        };
        let result = connection.apply(run_id, writes).await;
        if result.is_err() {
            self.connection = None;
        }
        self.unchecked_rows += writes.len();
        result.map_err(|e| e.to_string())
    }

    /// Lets the connection go to a task that checkpoints SQLite's log and gives it back to
    /// the pool as it was; the next commit takes a fresh connection.
    fn checkpoint_in_background(&mut self) {
        self.unchecked_rows = 0;
        if let Some(mut connection) = self.connection.take() {
            tokio::spawn(async move {
                let _ = connection.checkpoint().await;
                let _ = connection.defer_checkpoints(false).await;
            });
        }
    }
}

impl Writer {
    /// The writer for `run_id`; without a store, writes are dropped.
    pub(crate) fn new(store: Option<Store>, run_id: String) -> Writer {
        Writer {
            shared: store.map(|store| Shared {
                run_id,
                queue: Mutex::new(Vec::new()),
                held: tokio::sync::Mutex::new(HeldConnection {
                    store,
                    connection: None,
                    unchecked_rows: 0,
                }),
            }),
        }
    }

    /// Writes a batch and waits until it is committed.
    pub(crate) async fn write(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        let Some(shared) = &self.shared else {
            return Ok(());
        };
        let (ack, mut done) = oneshot::channel();
        shared
            .queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((writes, ack));
        {
            let mut held = shared.held.lock().await;
            // The writer before us may have committed our batch with its group.
            if let Ok(result) = done.try_recv() {
                return result.map_err(StoreError::Corrupt);
            }
            let group =
                std::mem::take(&mut *shared.queue.lock().unwrap_or_else(|e| e.into_inner()));
            let mut writes = Vec::new();
            let mut acks = Vec::with_capacity(group.len());
            for (batch, ack) in group {
                writes.extend(batch);
                acks.push(ack);
            }
            let result = held.apply(&shared.run_id, &writes).await;
            for ack in acks {
                let _ = ack.send(result.clone());
            }
            if held.unchecked_rows >= CHECKPOINT_ROWS {
                held.checkpoint_in_background();
            }
        }
        match done.await {
            Ok(result) => result.map_err(StoreError::Corrupt),
            Err(_) => Err(StoreError::Corrupt(
                "the store writer stopped before committing".into(),
            )),
        }
    }

    /// Commits what is queued and lets the connection go (checkpointed in the background);
    /// a later write takes a new one.
    pub(crate) async fn close(&self) {
        let Some(shared) = &self.shared else {
            return;
        };
        let _ = self.write(Vec::new()).await;
        let mut held = shared.held.lock().await;
        held.checkpoint_in_background();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StepRecord;

    fn step(key: &str) -> Write {
        Write::Step(
            StepRecord {
                key: key.into(),
                node: key.into(),
                status: "succeeded".into(),
                attempts: 1,
                started_at: 1,
                ended_at: 2,
                output_json: Some("1".into()),
                input_tokens: 0,
                output_tokens: 0,
                cost: 0.0,
                error: None,
                model: None,
                detail_json: None,
            },
            Vec::new(),
        )
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_write_is_readable_once_acknowledged_alone_or_in_a_group() {
        let dir = std::env::temp_dir().join(format!("galaxy-writer-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = Store::open_sqlite_file(&dir.join("w.db"))
            .await
            .expect("store");
        let writer = Writer::new(Some(store.clone()), "run".into());
        // A lone write, then 300 at once (one leader commits what the others queued), then
        // enough rows to hand the connection to a checkpoint and take a fresh one.
        writer.write(vec![step("alone")]).await.expect("alone");
        assert_eq!(store.steps("run").await.expect("steps").len(), 1);
        let writes = (0..300).map(|i| writer.write(vec![step(&format!("w{i}"))]));
        for result in futures_util::future::join_all(writes).await {
            result.expect("acknowledged");
        }
        assert_eq!(store.steps("run").await.expect("steps").len(), 301);
        let big: Vec<Write> = (0..CHECKPOINT_ROWS)
            .map(|i| step(&format!("b{i}")))
            .collect();
        writer.write(big).await.expect("big");
        writer
            .write(vec![step("after")])
            .await
            .expect("after a checkpoint");
        writer.close().await;
        assert_eq!(
            store.steps("run").await.expect("steps").len(),
            302 + CHECKPOINT_ROWS
        );
        store.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }
}

//! The store writer: one task that commits every queued batch of writes in one transaction
//! (group commit) and acknowledges each batch only once it is durable.
//!
//! The task keeps one connection for the run (no pool round trip per commit) and lets it go
//! when [`Writer::close`] flushes, or after an error (the next batch takes a fresh one). On
//! SQLite it checkpoints the log itself, after acknowledging, instead of inside a commit.

use tokio::sync::{mpsc, oneshot};

use crate::store::{Store, StoreConnection, StoreError, Write};

type Batch = (Vec<Write>, oneshot::Sender<Result<(), String>>);

/// Rows written between two checkpoints of SQLite's log (about 1,000 pages).
const CHECKPOINT_ROWS: usize = 2000;

/// The writer task's connection, taken when a batch comes and kept until a flush.
struct HeldConnection {
    store: Store,
    connection: Option<StoreConnection>,
    /// Rows written since the last checkpoint.
    unchecked_rows: usize,
}

impl HeldConnection {
    /// Commits `writes` in one transaction (a failed connection is let go, the next batch
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

    /// Checkpoints SQLite's log (a failure leaves it to the next one).
    async fn checkpoint(&mut self) {
        if let Some(connection) = &mut self.connection {
            let _ = connection.checkpoint().await;
        }
        self.unchecked_rows = 0;
    }

    /// Checkpoints what is left and gives the connection back to the pool as it was.
    async fn release(&mut self) {
        if self.unchecked_rows > 0 {
            self.checkpoint().await;
        }
        if let Some(mut connection) = self.connection.take() {
            let _ = connection.defer_checkpoints(false).await;
        }
    }
}

/// A handle to the writer task (or nothing, for in-memory runs).
pub(crate) struct Writer {
    sender: Option<mpsc::UnboundedSender<Batch>>,
    task: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Writer {
    /// Starts the writer for `run_id`; without a store, writes are dropped.
    pub(crate) fn spawn(store: Option<Store>, run_id: String) -> Writer {
        let Some(store) = store else {
            return Writer {
                sender: None,
                task: std::sync::Mutex::new(None),
            };
        };
        let (sender, mut receiver) = mpsc::unbounded_channel::<Batch>();
        let task = tokio::spawn(async move {
            let mut held = HeldConnection {
                store,
                connection: None,
                unchecked_rows: 0,
            };
            while let Some(first) = receiver.recv().await {
                // An empty batch is a flush (`close`): the run is done with the store for now.
                let mut release = first.0.is_empty();
                let mut writes = first.0;
                let mut acks = vec![first.1];
                while let Ok((more, ack)) = receiver.try_recv() {
                    release |= more.is_empty();
                    writes.extend(more);
                    acks.push(ack);
                }
                let result = held.apply(&run_id, &writes).await;
                for ack in acks {
                    let _ = ack.send(result.clone());
                }
                // After the acknowledgements, so no step waits for it: copy the log into the
                // database once enough rows gathered and nothing is queued.
                if held.unchecked_rows >= CHECKPOINT_ROWS && receiver.is_empty() {
                    held.checkpoint().await;
                }
                if release {
                    held.release().await;
                }
            }
            held.release().await;
        });
        Writer {
            sender: Some(sender),
            task: std::sync::Mutex::new(Some(task)),
        }
    }

    /// Writes a batch and waits until it is committed.
    pub(crate) async fn write(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        let Some(sender) = &self.sender else {
            return Ok(());
        };
        let (ack, done) = oneshot::channel();
        sender
            .send((writes, ack))
            .map_err(|_| StoreError::Corrupt("the store writer stopped".into()))?;
        match done.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(StoreError::Corrupt(message)),
            Err(_) => Err(StoreError::Corrupt("the store writer stopped".into())),
        }
    }

    /// Waits for queued writes to be committed and lets the connection go (the writer stays
    /// usable: a later write takes a new one).
    pub(crate) async fn close(&self) {
        let _ = self.write(Vec::new()).await;
        let _ = &self.task;
    }
}

//! The store writer: one task that commits every queued batch of writes in one transaction
//! (group commit) and acknowledges each batch only once it is durable.
//!
//! The task keeps one connection for the run (no pool round trip per commit) and lets it go
//! when [`Writer::close`] flushes, or after an error (the next batch takes a fresh one).

use tokio::sync::{mpsc, oneshot};

use crate::store::{Store, StoreConnection, StoreError, Write};

type Batch = (Vec<Write>, oneshot::Sender<Result<(), String>>);

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
            let mut connection: Option<StoreConnection> = None;
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
                let result = if writes.is_empty() {
                    Ok(())
                } else {
                    let result = match &mut connection {
                        Some(connection) => connection.apply(&run_id, &writes).await,
                        None => match store.connection().await {
                            Ok(mut fresh) => {
                                let result = fresh.apply(&run_id, &writes).await;
                                connection = Some(fresh);
                                result
                            }
                            Err(error) => Err(error),
                        },
                    };
                    if result.is_err() {
                        connection = None;
                    }
                    result.map_err(|e| e.to_string())
                };
                if release {
                    connection = None;
                }
                for ack in acks {
                    let _ = ack.send(result.clone());
                }
            }
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

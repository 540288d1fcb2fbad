//! The store writer: one task that commits every queued batch of writes in one transaction
//! (group commit) and acknowledges each batch only once it is durable.

use tokio::sync::{mpsc, oneshot};

use crate::store::{Store, StoreError, Write};

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
            while let Some(first) = receiver.recv().await {
                let mut writes = first.0;
                let mut acks = vec![first.1];
                while let Ok((more, ack)) = receiver.try_recv() {
                    writes.extend(more);
                    acks.push(ack);
                }
                let result = store
                    .apply(&run_id, &writes)
                    .await
                    .map_err(|e| e.to_string());
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

    /// Waits for queued writes to be committed (the sender stays usable).
    pub(crate) async fn close(&self) {
        let _ = self.write(Vec::new()).await;
        let _ = &self.task;
    }
}

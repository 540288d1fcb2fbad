//! What the runtime's integration tests share: a fresh SQLite store in a temporary folder, and
//! the engine started and run on it.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use runtime::engine::{Engine, NewRun, RunOptions, RunStatus};
use runtime::store::Store;
use serde_json::{Value, json};
use tokio::sync::watch;

/// A fresh temporary folder with a SQLite store (`galaxy.db`) in it.
pub struct Sandbox {
    pub store: Store,
    pub dir: PathBuf,
    /// Held for the sandbox's life: a run whose sender is gone reads as cancelled.
    cancel: watch::Sender<bool>,
}

impl Sandbox {
    /// A new, empty folder named after `name` (unique to this process and moment) and a
    /// SQLite store in it.
    pub async fn new(name: &str) -> Sandbox {
        let dir = std::env::temp_dir().join(format!(
            "galaxy-{name}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("mkdir");
        let store = Store::open_sqlite_file(&dir.join("galaxy.db"))
            .await
            .expect("store");
        let (cancel, _) = watch::channel(false);
        Sandbox { store, dir, cancel }
    }

    /// Writes `source` as `pack.gx` in the folder and returns its path.
    pub fn write_pack(&self, source: &str) -> PathBuf {
        let pack_path = self.dir.join("pack.gx");
        std::fs::write(&pack_path, source).expect("write the pack");
        pack_path
    }

    /// Starts a run of `source` on the sandbox's store; it panics if the pack does not start.
    pub async fn start(
        &self,
        source: &str,
        pack_path: &Path,
        options: RunOptions,
        inputs: &[(&str, &str)],
    ) -> Engine {
        self.start_on(Some(self.store.clone()), source, pack_path, options, inputs)
            .await
    }

    /// Starts a run of `source` on `store` (`None`: in memory), cancelled by this sandbox.
    pub async fn start_on(
        &self,
        store: Option<Store>,
        source: &str,
        pack_path: &Path,
        options: RunOptions,
        inputs: &[(&str, &str)],
    ) -> Engine {
        let new_run = NewRun {
            source,
            pack_path,
            inputs: inputs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            input_json: None,
            options,
        };
        Engine::start(store, new_run, self.cancel.subscribe())
            .await
            .expect("starts")
    }

    /// Starts a run of `source` and runs it until it stops: its id and status.
    pub async fn run(
        &self,
        source: &str,
        pack_path: &Path,
        options: RunOptions,
        inputs: &[(&str, &str)],
    ) -> (String, RunStatus) {
        let engine = self.start(source, pack_path, options, inputs).await;
        let status = engine.execute().await.expect("runs");
        (engine.run_id().to_string(), status)
    }

    /// Cancels the runs started from this sandbox (as Ctrl-C does).
    pub fn cancel(&self) {
        self.cancel.send_replace(true);
    }

    /// Closes the store and removes the folder.
    pub async fn finish(self) {
        self.store.close().await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// An OpenAI chat completion from model `tiny` whose content is `content` as JSON, with
/// `prompt_tokens` and `completion_tokens` of usage.
pub fn chat_completion(content: &Value, prompt_tokens: u64, completion_tokens: u64) -> Value {
    json!({
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "tiny",
        "choices": [{
            "index": 0,
            "message": { "role": "assistant", "content": content.to_string() },
            "finish_reason": "stop",
        }],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    })
}

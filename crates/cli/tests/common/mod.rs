//! Helpers shared by the end-to-end tests of the `galaxy` binary.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Runs `galaxy` with `args` from the repository root, without colour.
pub fn galaxy(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_galaxy"))
        .args(args)
        .current_dir(repo_root())
        .env("NO_COLOR", "1")
        .output()
        .expect("galaxy runs")
}

/// The exit code of a process that exited normally.
pub fn code(output: &Output) -> i32 {
    output.status.code().expect("exited normally")
}

/// Output bytes as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The repository's root directory.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A fresh, empty directory under the system temp dir, unique per call.
fn fresh_dir(kind: &str) -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "galaxy-{kind}-test-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// A fresh, empty scratch directory under the system temp dir, unique per call, removed
/// when dropped.
pub fn scratch(kind: &str) -> Scratch {
    Scratch(fresh_dir(kind))
}

/// A scratch directory (see [`scratch`]): a path that removes its directory when dropped.
pub struct Scratch(PathBuf);

impl std::ops::Deref for Scratch {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for Scratch {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A scratch directory with its own SQLite store, for tests that run packs; removed on drop.
pub struct Sandbox {
    pub dir: PathBuf,
}

impl Sandbox {
    pub fn new(name: &str) -> Sandbox {
        Sandbox {
            dir: fresh_dir(&format!("run-{name}")),
        }
    }

    /// The store's URL.
    pub fn url(&self) -> String {
        format!("sqlite://{}", self.dir.join("galaxy.db").display())
    }

    /// `galaxy ARGS` from the repository root on this sandbox's store, with no provider keys
    /// and no colour.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_galaxy"));
        command
            .args(args)
            .current_dir(repo_root())
            .env("GALAXY_DATABASE_URL", self.url())
            .env_remove("ANTHROPIC_API_KEY")
            .env_remove("OPENAI_API_KEY")
            .env("NO_COLOR", "1");
        command
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("galaxy runs")
    }

    /// The exit code and the JSON printed (a test fails when nothing parses).
    pub fn json(&self, args: &[&str]) -> (i32, Value) {
        let output = self.run(args);
        let code = output.status.code().unwrap_or(-1);
        let value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
            panic!(
                "{args:?} printed no JSON ({e}); exit {code}\nstdout: {}\nstderr: {}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            )
        });
        (code, value)
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

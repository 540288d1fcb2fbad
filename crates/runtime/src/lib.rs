//! Galaxy's runtime: executes a [`dsl_check::plan::Plan`] on tokio, in Sim Mode or against
//! real models and tools, with a durable store, approvals, resume, budgets, redaction and
//! traces.
//!
//! The pieces: [`eval`] evaluates expressions over JSON values, [`evals`] runs a pack's
//! eval cases (`galaxy test`), [`sim`] makes simulated model answers, [`knowledge`] reads
//! the documents an `ask` is grounded in and checks its citations, [`store`] is the durable
//! blackboard (SQLite or PostgreSQL), [`engine`] schedules nodes and records every attempt,
//! [`report`] and [`trace`] read runs back.

pub mod engine;
pub mod eval;
pub mod evals;
pub mod knowledge;
pub mod providers;
pub mod redact;
pub mod report;
pub mod sim;
pub mod store;
pub mod trace;

pub use engine::{Engine, RunOptions, RunStatus};
pub use store::{Store, StoreError};

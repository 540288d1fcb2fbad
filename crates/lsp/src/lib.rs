//! The Pack language's language server: a synchronous [`engine::Engine`] that answers every
//! request from one cached `dsl_check::Analysis` per document version, and a thin
//! `tower-lsp-server` shell ([`server`]) that speaks LSP over stdio.
//!
//! The engine holds no resolution or typing logic: names, types and references come from
//! `dsl_check::Program`; diagnostics are exactly `galaxy check`'s. The engine never runs a
//! user's flow.

pub mod engine;
pub mod server;
mod to_proto;

pub use engine::{Engine, EngineError, GraphEditResponse};
pub use server::run_stdio;

/// The LSP types this crate speaks (re-exported from `tower-lsp-server`).
pub use tower_lsp_server::ls_types;

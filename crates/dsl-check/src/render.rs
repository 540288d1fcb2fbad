//! Plain-text rendering of diagnostics, shared with the syntax crate (kept here so checker
//! users find it next to `check`).

pub use dsl_syntax::render::plain;

//! The Pack language's checker: name resolution, type checking, static policy checks and
//! lowering to a [`plan::Plan`].
//!
//! Pure: no file, environment, clock or network access. Project files imported with
//! `use "./x.gx"` come through a [`World`]; the stdlib is embedded ([`stdlib`]).
//! [`check`] never fails and never panics: every problem is a [`Diagnostic`].

#![deny(clippy::unwrap_used, clippy::indexing_slicing, clippy::unimplemented)]

mod checker;
pub mod checks;
pub mod codes;
pub mod fast_hash;
pub mod graph;
pub mod module;
pub mod plan;
pub mod policy;
pub mod program;
pub mod render;
pub mod stdlib;
pub mod suggest;
pub mod ty;

use std::collections::HashMap;

pub use checker::{BUILTINS, PRIMITIVES};
pub use codes::CODES;
pub use dsl_syntax::{Diagnostic, Parse, Severity};
pub use program::Program;
pub use ty::Ty;

/// Where project files come from. Paths are as written in `use`, relative to the pack's
/// directory (imports inside an imported file are joined to that file's directory, e.g.
/// `./lib/b.gx`).
pub trait World {
    /// The text of the file at `path`, or `None` when there is none.
    fn read_file(&self, path: &str) -> Option<String>;
}

/// A world without project files (packs that only use the stdlib).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoFiles;

impl World for NoFiles {
    fn read_file(&self, _path: &str) -> Option<String> {
        None
    }
}

/// An in-memory world, for tests and editors' unsaved buffers.
#[derive(Debug, Clone, Default)]
pub struct MemoryWorld {
    /// File texts by path.
    pub files: HashMap<String, String>,
}

impl MemoryWorld {
    /// An empty world.
    pub fn new() -> MemoryWorld {
        MemoryWorld::default()
    }

    /// Adds a file.
    pub fn with_file(mut self, path: impl Into<String>, text: impl Into<String>) -> MemoryWorld {
        self.files.insert(path.into(), text.into());
        self
    }
}

impl World for MemoryWorld {
    fn read_file(&self, path: &str) -> Option<String> {
        self.files
            .get(path)
            .or_else(|| self.files.get(path.strip_prefix("./").unwrap_or(path)))
            .cloned()
    }
}

/// The result of checking one file.
#[derive(Debug, Clone)]
pub struct Analysis {
    /// The checked text (the spans of `parse` and `program` point into it).
    pub source: std::sync::Arc<str>,
    /// The syntax tree and tokens.
    pub parse: Parse,
    /// Syntax errors first, then semantic diagnostics sorted by span.
    pub diagnostics: Vec<Diagnostic>,
    /// The resolved, typed program.
    pub program: Program,
}

impl Analysis {
    /// Whether any diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Parses and checks `source` (a pack or a module). Never fails, never panics.
pub fn check(source: &str, world: &dyn World) -> Analysis {
    check_parsed(source, dsl_syntax::parse(source), world)
}

/// Checks an already parsed `source` (for callers that keep the parse, such as the language
/// server when only imported files changed).
pub fn check_parsed(source: &str, parse: Parse, world: &dyn World) -> Analysis {
    let mut loader = module::WorldLoader {
        world,
        files: Default::default(),
        in_progress: Default::default(),
    };
    let (program, semantic) = checker::check_main(source, &parse, &mut loader);
    let mut diagnostics = parse.errors.clone();
    diagnostics.extend(semantic);
    Analysis {
        source: std::sync::Arc::from(source),
        parse,
        diagnostics,
        program,
    }
}

/// Lowers a checked pack to a plan; `None` when the analysis has errors or is not a pack.
pub fn lower(analysis: &Analysis) -> Option<plan::Plan> {
    if analysis.has_errors() {
        return None;
    }
    plan::lower(analysis)
}

impl Analysis {
    /// Lowers a checked pack to a plan, consuming the analysis: the plan takes the syntax
    /// tree's expressions instead of copying them (what `galaxy run` and `galaxy plan` use).
    /// `None` when the analysis has errors or is not a pack.
    pub fn into_plan(self) -> Option<plan::Plan> {
        if self.has_errors() {
            return None;
        }
        plan::lower_owned(self)
    }
}

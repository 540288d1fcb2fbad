//! The synchronous engine behind the language server: open documents, one cached analysis
//! per document version, and one method per LSP feature taking and returning plain LSP values.
//!
//! Tests drive the engine directly; the `tower-lsp-server` shell in [`crate::server`] only
//! decodes requests, calls these methods under `catch_unwind`, and encodes the answers.
//!
//! Stdlib modules are addressed as `galaxy-std:///mail.gx` by default. An engine built with
//! [`Engine::with_stdlib_dir`] writes the embedded stdlib sources into that directory once
//! and uses plain `file://` URIs instead, so that every editor can open them on "go to
//! definition" without a custom URI scheme (the `galaxy lsp` binary does this, under the
//! user's cache directory).

mod actions;
mod completion;
mod context;
mod graph;
mod hover;
mod navigation;
mod symbols;
mod tokens;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use dsl_check::Analysis;
use dsl_check::program::{DefSite, FileRef};
use dsl_syntax::{LineCol, LineIndex, Span};
use tower_lsp_server::ls_types as lsp;

pub use graph::GraphEditResponse;
pub use tokens::{SEMANTIC_TOKEN_MODIFIERS, SEMANTIC_TOKEN_TYPES};

/// The URI scheme of stdlib modules when no stdlib directory is configured.
pub const STD_SCHEME: &str = "galaxy-std";

/// Why the engine refused a request (as opposed to answering "nothing here").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineError {
    /// The document is not open.
    UnknownDocument(String),
    /// The request names an older (or newer) version of the document than the engine holds.
    StaleVersion {
        /// The version the request was made against.
        requested: i32,
        /// The version the engine holds.
        current: i32,
    },
    /// A rename to something that is not a valid name, or of something that cannot be renamed.
    InvalidRename(String),
    /// The graph request could not be carried out.
    Graph(String),
}

impl std::fmt::Display for EngineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EngineError::UnknownDocument(uri) => write!(f, "document {uri} is not open"),
            EngineError::StaleVersion { requested, current } => write!(
                f,
                "stale document version: the request is against version {requested}, the document is at version {current}"
            ),
            EngineError::InvalidRename(why) => write!(f, "cannot rename: {why}"),
            EngineError::Graph(why) => write!(f, "graph edit refused: {why}"),
        }
    }
}

impl std::error::Error for EngineError {}

/// One open document: its text, version, line index and (lazily) its analysis.
#[derive(Debug)]
pub(crate) struct Document {
    pub(crate) text: String,
    pub(crate) version: i32,
    pub(crate) line_index: LineIndex,
    pub(crate) path: Option<PathBuf>,
    analysis: Option<Arc<Analysis>>,
}

impl Document {
    /// The LSP position of byte `offset`.
    pub(crate) fn position(&self, offset: u32) -> lsp::Position {
        let LineCol { line, character } = self.line_index.line_col(&self.text, offset);
        lsp::Position { line, character }
    }

    /// The LSP range of `span`.
    pub(crate) fn range(&self, span: Span) -> lsp::Range {
        lsp::Range {
            start: self.position(span.start),
            end: self.position(span.end),
        }
    }

    /// The byte offset of an LSP position (clamped to the text).
    pub(crate) fn offset(&self, position: lsp::Position) -> u32 {
        self.line_index.offset(
            &self.text,
            LineCol {
                line: position.line,
                character: position.character,
            },
        )
    }
}

/// What a request needs about one document: its text and its analysis.
pub(crate) struct Snapshot<'a> {
    pub(crate) uri: &'a lsp::Uri,
    pub(crate) doc: &'a Document,
    pub(crate) analysis: Arc<Analysis>,
    pub(crate) engine: &'a Engine,
}

impl Snapshot<'_> {
    pub(crate) fn text(&self) -> &str {
        &self.doc.text
    }

    /// The location of a definition, in whichever file it lives.
    pub(crate) fn location(&self, def: &DefSite) -> Option<lsp::Location> {
        match &def.file {
            FileRef::Main => Some(lsp::Location {
                uri: self.uri.clone(),
                range: self.doc.range(def.span),
            }),
            FileRef::Std(name) => {
                let source = dsl_check::stdlib::source(name)?;
                Some(lsp::Location {
                    uri: self.engine.std_uri(name)?,
                    range: range_in(source, def.span),
                })
            }
            FileRef::Project(path) => {
                let (uri, text) = self.engine.project_file(self.doc, path)?;
                Some(lsp::Location {
                    uri,
                    range: range_in(&text, def.span),
                })
            }
        }
    }
}

/// The range of `span` in a text that has no open document.
pub(crate) fn range_in(text: &str, span: Span) -> lsp::Range {
    let index = LineIndex::new(text);
    let start = index.line_col(text, span.start);
    let end = index.line_col(text, span.end);
    lsp::Range {
        start: lsp::Position {
            line: start.line,
            character: start.character,
        },
        end: lsp::Position {
            line: end.line,
            character: end.character,
        },
    }
}

/// The language server's state: open documents and their analyses.
#[derive(Debug, Default)]
pub struct Engine {
    docs: HashMap<lsp::Uri, Document>,
    std_dir: Option<PathBuf>,
    analyses: u64,
}

/// Project files seen by the checker: open buffers first, then the disk.
struct EditorWorld<'a> {
    dir: Option<&'a Path>,
    open: &'a HashMap<lsp::Uri, Document>,
}

impl dsl_check::World for EditorWorld<'_> {
    fn read_file(&self, path: &str) -> Option<String> {
        let full = normalize(&self.dir?.join(path));
        if let Some(doc) = self
            .open
            .values()
            .find(|d| d.path.as_deref() == Some(full.as_path()))
        {
            return Some(doc.text.clone());
        }
        std::fs::read_to_string(full).ok()
    }
}

/// Removes `.` and resolves `..` components without touching the disk.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

impl Engine {
    /// An engine with no documents, addressing the stdlib as `galaxy-std:///NAME.gx`.
    pub fn new() -> Engine {
        Engine::default()
    }

    /// An engine that writes the embedded stdlib into `dir` (once) and addresses it with
    /// `file://` URIs there. Falls back to `galaxy-std:` URIs when the directory cannot be
    /// written.
    pub fn with_stdlib_dir(dir: &Path) -> Engine {
        let mut engine = Engine::new();
        let written = std::fs::create_dir_all(dir).is_ok()
            && dsl_check::stdlib::names().all(|name| {
                let path = dir.join(format!("{name}.gx"));
                let source = dsl_check::stdlib::source(name).unwrap_or("");
                std::fs::read_to_string(&path).is_ok_and(|old| old == source)
                    || std::fs::write(&path, source).is_ok()
            });
        if written {
            engine.std_dir = Some(dir.to_path_buf());
        }
        engine
    }

    /// How many analyses the engine has run (for tests: one per document version).
    pub fn analysis_count(&self) -> u64 {
        self.analyses
    }

    /// The URI of stdlib module `name`.
    pub fn std_uri(&self, name: &str) -> Option<lsp::Uri> {
        match &self.std_dir {
            Some(dir) => lsp::Uri::from_file_path(dir.join(format!("{name}.gx"))),
            None => lsp::Uri::from_str(&format!("{STD_SCHEME}:///{name}.gx")).ok(),
        }
    }

    /// The URI and text of a project file imported by `doc` as `path`.
    fn project_file(&self, doc: &Document, path: &str) -> Option<(lsp::Uri, String)> {
        let dir = doc.path.as_deref()?.parent()?;
        let full = normalize(&dir.join(path));
        let uri = lsp::Uri::from_file_path(&full)?;
        if let Some(open) = self.docs.get(&uri) {
            return Some((uri, open.text.clone()));
        }
        let text = std::fs::read_to_string(&full).ok()?;
        Some((uri, text))
    }

    /// Opens (or reopens) a document.
    pub fn open(&mut self, uri: lsp::Uri, version: i32, text: String) {
        let path = uri.to_file_path().map(|p| normalize(&p));
        let line_index = LineIndex::new(&text);
        self.docs.insert(
            uri,
            Document {
                text,
                version,
                line_index,
                path,
                analysis: None,
            },
        );
        self.invalidate_importers();
    }

    /// Applies content changes (full or incremental, positions in UTF-16) and moves the
    /// document to `version`.
    pub fn change(
        &mut self,
        uri: &lsp::Uri,
        version: i32,
        changes: Vec<lsp::TextDocumentContentChangeEvent>,
    ) -> Result<(), EngineError> {
        let doc = self
            .docs
            .get_mut(uri)
            .ok_or_else(|| EngineError::UnknownDocument(uri.as_str().to_string()))?;
        for change in changes {
            match change.range {
                None => doc.text = change.text,
                Some(range) => {
                    let start = doc.offset(range.start) as usize;
                    let end = (doc.offset(range.end) as usize).max(start);
                    doc.text.replace_range(start..end, &change.text);
                }
            }
            doc.line_index = LineIndex::new(&doc.text);
        }
        doc.version = version;
        doc.analysis = None;
        self.invalidate_importers();
        Ok(())
    }

    /// Closes a document.
    pub fn close(&mut self, uri: &lsp::Uri) {
        self.docs.remove(uri);
        self.invalidate_importers();
    }

    /// Drops the analyses of documents that import project files: an edit to an open
    /// buffer may change what they see.
    fn invalidate_importers(&mut self) {
        for doc in self.docs.values_mut() {
            let imports_files = doc.analysis.as_ref().is_some_and(|a| {
                a.program
                    .imports
                    .iter()
                    .any(|i| matches!(i.file, FileRef::Project(_)))
            });
            if imports_files {
                doc.analysis = None;
            }
        }
    }

    /// The version the engine holds of `uri`.
    pub fn version(&self, uri: &lsp::Uri) -> Option<i32> {
        self.docs.get(uri).map(|d| d.version)
    }

    /// The current text of `uri`.
    pub fn text(&self, uri: &lsp::Uri) -> Option<&str> {
        self.docs.get(uri).map(|d| d.text.as_str())
    }

    /// The analysis of the current version of `uri`, computed on first use and then reused
    /// by every request against that version.
    pub fn analysis(&mut self, uri: &lsp::Uri) -> Option<Arc<Analysis>> {
        let doc = self.docs.get(uri)?;
        if let Some(analysis) = &doc.analysis {
            return Some(analysis.clone());
        }
        let world = EditorWorld {
            dir: doc.path.as_deref().and_then(Path::parent),
            open: &self.docs,
        };
        let analysis = Arc::new(dsl_check::check(&doc.text, &world));
        self.analyses += 1;
        if let Some(doc) = self.docs.get_mut(uri) {
            doc.analysis = Some(analysis.clone());
        }
        Some(analysis)
    }

    /// The document and its analysis, for a request.
    pub(crate) fn snapshot<'a>(&'a mut self, uri: &'a lsp::Uri) -> Option<Snapshot<'a>> {
        let analysis = self.analysis(uri)?;
        let doc = self.docs.get(uri)?;
        Some(Snapshot {
            uri,
            doc,
            analysis,
            engine: self,
        })
    }

    /// The diagnostics of `uri`, exactly those of `galaxy check`, as LSP diagnostics.
    pub fn diagnostics(&mut self, uri: &lsp::Uri) -> Vec<lsp::Diagnostic> {
        let Some(snapshot) = self.snapshot(uri) else {
            return Vec::new();
        };
        snapshot
            .analysis
            .diagnostics
            .iter()
            .map(|d| crate::to_proto::diagnostic(snapshot.uri, snapshot.doc, d))
            .collect()
    }

    /// Hover: the type, signature and documentation of what is under the cursor.
    pub fn hover(&mut self, uri: &lsp::Uri, position: lsp::Position) -> Option<lsp::Hover> {
        let snapshot = self.snapshot(uri)?;
        hover::hover(&snapshot, snapshot.doc.offset(position))
    }

    /// Completion in context.
    pub fn completion(
        &mut self,
        uri: &lsp::Uri,
        position: lsp::Position,
    ) -> Option<Vec<lsp::CompletionItem>> {
        let snapshot = self.snapshot(uri)?;
        Some(completion::completion(
            &snapshot,
            snapshot.doc.offset(position),
        ))
    }

    /// Signature help inside a tool call.
    pub fn signature_help(
        &mut self,
        uri: &lsp::Uri,
        position: lsp::Position,
    ) -> Option<lsp::SignatureHelp> {
        let snapshot = self.snapshot(uri)?;
        completion::signature_help(&snapshot, snapshot.doc.offset(position))
    }

    /// Go to definition.
    pub fn definition(&mut self, uri: &lsp::Uri, position: lsp::Position) -> Option<lsp::Location> {
        let snapshot = self.snapshot(uri)?;
        navigation::definition(&snapshot, snapshot.doc.offset(position))
    }

    /// Find references.
    pub fn references(
        &mut self,
        uri: &lsp::Uri,
        position: lsp::Position,
        include_declaration: bool,
    ) -> Option<Vec<lsp::Location>> {
        let snapshot = self.snapshot(uri)?;
        navigation::references(
            &snapshot,
            snapshot.doc.offset(position),
            include_declaration,
        )
    }

    /// The range a rename at `position` would change, or `None` when nothing renamable is there.
    pub fn prepare_rename(
        &mut self,
        uri: &lsp::Uri,
        position: lsp::Position,
    ) -> Option<lsp::PrepareRenameResponse> {
        let snapshot = self.snapshot(uri)?;
        navigation::prepare_rename(&snapshot, snapshot.doc.offset(position))
    }

    /// Renames the thing at `position` everywhere it is written.
    pub fn rename(
        &mut self,
        uri: &lsp::Uri,
        position: lsp::Position,
        new_name: &str,
    ) -> Result<Option<lsp::WorkspaceEdit>, EngineError> {
        let Some(snapshot) = self.snapshot(uri) else {
            return Err(EngineError::UnknownDocument(uri.as_str().to_string()));
        };
        navigation::rename(&snapshot, snapshot.doc.offset(position), new_name)
    }

    /// The outline.
    pub fn document_symbols(&mut self, uri: &lsp::Uri) -> Option<Vec<lsp::DocumentSymbol>> {
        let snapshot = self.snapshot(uri)?;
        Some(symbols::document_symbols(&snapshot))
    }

    /// Folding ranges: multi-line items, steps and comment runs.
    pub fn folding_ranges(&mut self, uri: &lsp::Uri) -> Option<Vec<lsp::FoldingRange>> {
        let snapshot = self.snapshot(uri)?;
        Some(symbols::folding_ranges(&snapshot))
    }

    /// Semantic tokens for the whole document.
    pub fn semantic_tokens(&mut self, uri: &lsp::Uri) -> Option<lsp::SemanticTokens> {
        let snapshot = self.snapshot(uri)?;
        Some(tokens::semantic_tokens(&snapshot))
    }

    /// Inlay hints: each step's output type after its name, within `range`.
    pub fn inlay_hints(
        &mut self,
        uri: &lsp::Uri,
        range: lsp::Range,
    ) -> Option<Vec<lsp::InlayHint>> {
        let snapshot = self.snapshot(uri)?;
        Some(symbols::inlay_hints(&snapshot, range))
    }

    /// Formatting with `galaxy fmt`'s formatter: one whole-document edit, none when the
    /// document is already formatted, `None` when it has syntax errors.
    pub fn formatting(&mut self, uri: &lsp::Uri) -> Option<Vec<lsp::TextEdit>> {
        let doc = self.docs.get(uri)?;
        let formatted = dsl_syntax::format::format(&doc.text).ok()?;
        if formatted == doc.text {
            return Some(Vec::new());
        }
        let end = u32::try_from(doc.text.len()).unwrap_or(u32::MAX);
        Some(vec![lsp::TextEdit {
            range: doc.range(Span { start: 0, end }),
            new_text: formatted,
        }])
    }

    /// Code actions: the fixes of the diagnostics that touch `range`.
    pub fn code_actions(
        &mut self,
        uri: &lsp::Uri,
        range: lsp::Range,
    ) -> Option<Vec<lsp::CodeAction>> {
        let snapshot = self.snapshot(uri)?;
        Some(actions::code_actions(&snapshot, range))
    }

    /// `galaxy/graph`: the graph of the current version of `uri`, exported from the cached
    /// analysis (no second analysis).
    pub fn graph(&mut self, uri: &lsp::Uri) -> Result<dsl_check::graph::Graph, EngineError> {
        let analysis = self
            .analysis(uri)
            .ok_or_else(|| EngineError::UnknownDocument(uri.as_str().to_string()))?;
        Ok(dsl_check::graph::export(&analysis))
    }

    /// `galaxy/graphEdit`: applies `ops` to version `version` of `uri` and answers the
    /// change as one versioned `TextDocumentEdit` of minimal edits, for the client to apply
    /// (the engine's text changes only when the client sends the edit back as `didChange`).
    /// Refused, with nothing changed, when `version` is not the current version or when the
    /// ops are invalid.
    pub fn graph_edit(
        &mut self,
        uri: &lsp::Uri,
        version: i32,
        ops: &[dsl_check::graph::GraphOp],
    ) -> Result<GraphEditResponse, EngineError> {
        let unknown = || EngineError::UnknownDocument(uri.as_str().to_string());
        let current = self.docs.get(uri).ok_or_else(unknown)?.version;
        if current != version {
            return Err(EngineError::StaleVersion {
                requested: version,
                current,
            });
        }
        // The cached analysis of this version: the edit neither parses nor checks it again.
        let analysis = self.analysis(uri).ok_or_else(unknown)?;
        let doc = self.docs.get(uri).ok_or_else(unknown)?;
        let world = EditorWorld {
            dir: doc.path.as_deref().and_then(Path::parent),
            open: &self.docs,
        };
        let edit = dsl_check::graph::apply_to(&analysis, ops, &world)
            .map_err(|e| EngineError::Graph(e.to_string()))?;
        Ok(graph::response(uri, doc, edit))
    }

    /// A deliberate panic, reachable through the hidden `galaxy/debugPanic` request, so
    /// tests can check that a panicking handler answers with an error and the server goes on.
    pub fn debug_panic(&mut self) {
        panic!("galaxy/debugPanic: deliberate panic to test request isolation");
    }
}

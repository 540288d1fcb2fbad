//! Go to definition, find references and rename, all from the checker's resolution table
//! (`Program::resolutions`): every name occurrence in the file and the definition it names.

use std::collections::{BTreeSet, HashMap};

use dsl_check::program::{FileRef, Resolution};
use dsl_syntax::Span;
use tower_lsp_server::ls_types as lsp;

use super::{EngineError, Snapshot, range_in};

/// The words that are reserved everywhere and so cannot be names.
const RESERVED: &[&str] = &["true", "false", "none", "and", "or", "not"];

/// The definition of the name at `offset`.
pub(crate) fn definition(snapshot: &Snapshot<'_>, offset: u32) -> Option<lsp::Location> {
    let resolution = snapshot.analysis.program.resolution_at(offset)?;
    snapshot.location(resolution.def.as_ref()?)
}

/// Every occurrence of the thing named at `offset`.
pub(crate) fn references(
    snapshot: &Snapshot<'_>,
    offset: u32,
    include_declaration: bool,
) -> Option<Vec<lsp::Location>> {
    let program = &snapshot.analysis.program;
    let resolution = program.resolution_at(offset)?;
    let def = resolution.def.as_ref()?;
    let mut locations = Vec::new();
    if include_declaration && def.file != FileRef::Main {
        locations.extend(snapshot.location(def));
    }
    let mut seen = BTreeSet::new();
    for occurrence in program.references(def) {
        if (!include_declaration && occurrence.is_definition) || !seen.insert(occurrence.span) {
            continue;
        }
        locations.push(lsp::Location {
            uri: snapshot.uri.clone(),
            range: snapshot.doc.range(occurrence.span),
        });
    }
    Some(locations)
}

/// The renamable name at `offset`: defined in the file or in a project file (not the stdlib,
/// not a built-in).
fn renamable<'a>(snapshot: &'a Snapshot<'_>, offset: u32) -> Result<&'a Resolution, EngineError> {
    let resolution = snapshot
        .analysis
        .program
        .resolution_at(offset)
        .ok_or_else(|| EngineError::InvalidRename("no name here".into()))?;
    match resolution.def.as_ref().map(|d| &d.file) {
        None => Err(EngineError::InvalidRename(format!(
            "`{}` is built in",
            resolution.span.text(snapshot.text())
        ))),
        Some(FileRef::Std(module)) => Err(EngineError::InvalidRename(format!(
            "`{}` is defined in the standard library (std.{module})",
            resolution.span.text(snapshot.text())
        ))),
        Some(_) => Ok(resolution),
    }
}

/// The range a rename at `offset` changes.
pub(crate) fn prepare_rename(
    snapshot: &Snapshot<'_>,
    offset: u32,
) -> Option<lsp::PrepareRenameResponse> {
    let resolution = renamable(snapshot, offset).ok()?;
    Some(lsp::PrepareRenameResponse::RangeWithPlaceholder {
        range: snapshot.doc.range(resolution.span),
        placeholder: resolution.span.text(snapshot.text()).to_string(),
    })
}

/// Whether `name` is a valid, unreserved identifier.
fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !RESERVED.contains(&name)
}

/// The edits renaming the thing at `offset` to `new_name`.
pub(crate) fn rename(
    snapshot: &Snapshot<'_>,
    offset: u32,
    new_name: &str,
) -> Result<Option<lsp::WorkspaceEdit>, EngineError> {
    if !is_identifier(new_name) {
        return Err(EngineError::InvalidRename(format!(
            "`{new_name}` is not a valid name"
        )));
    }
    let resolution = renamable(snapshot, offset)?;
    let Some(def) = resolution.def.as_ref() else {
        return Ok(None);
    };
    let program = &snapshot.analysis.program;
    let spans: BTreeSet<Span> = program.references(def).map(|r| r.span).collect();
    let mut changes: HashMap<lsp::Uri, Vec<lsp::TextEdit>> = HashMap::new();
    let main: Vec<lsp::TextEdit> = spans
        .iter()
        .map(|span| lsp::TextEdit {
            range: snapshot.doc.range(*span),
            new_text: new_name.to_string(),
        })
        .collect();
    changes.insert(snapshot.uri.clone(), main);
    if let FileRef::Project(path) = &def.file {
        let (uri, text) = snapshot
            .engine
            .project_file(snapshot.doc, path)
            .ok_or_else(|| EngineError::InvalidRename(format!("cannot read {path}")))?;
        changes.entry(uri).or_default().push(lsp::TextEdit {
            range: range_in(&text, def.span),
            new_text: new_name.to_string(),
        });
    }
    Ok(Some(lsp::WorkspaceEdit {
        changes: Some(changes),
        document_changes: None,
        change_annotations: None,
    }))
}

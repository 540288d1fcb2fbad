//! Imported modules: what a checked module exports, and how `use` finds modules (the stdlib
//! cache and project files read through the [`World`]).

use crate::fast_hash::{FastMap, FastSet};
use std::sync::Arc;

use dsl_syntax::Diagnostic;

use crate::World;
use crate::program::{AgentInfo, FileRef, ModelInfo, ToolInfo, TypeInfo};
use crate::stdlib;

/// What a checked module exports to the files that `use` it.
#[derive(Debug, Clone, Default)]
pub struct ModuleInfo {
    /// The module's declared name (`mail`).
    pub name: Arc<str>,
    /// Where it comes from.
    pub file: Option<FileRef>,
    /// Its types by name.
    pub types: FastMap<Arc<str>, Arc<TypeInfo>>,
    /// Its tools by name.
    pub tools: FastMap<Arc<str>, Arc<ToolInfo>>,
    /// Its models by name.
    pub models: FastMap<Arc<str>, Arc<ModelInfo>>,
    /// Its agents by name.
    pub agents: FastMap<Arc<str>, Arc<AgentInfo>>,
    /// Types of the modules it imports in turn, so that field lookups on its tools' results
    /// work in the importing file.
    pub foreign_types: FastMap<(Arc<str>, Arc<str>), Arc<TypeInfo>>,
    /// Its errors (checked in its own file).
    pub errors: Vec<Diagnostic>,
    /// Whether it is a pack rather than a module.
    pub is_pack: bool,
}

impl ModuleInfo {
    /// Tool names sorted, for deterministic suggestions.
    pub fn tool_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.tools.keys().map(|k| &**k).collect();
        names.sort_unstable();
        names
    }

    /// Type names sorted, for deterministic suggestions.
    pub fn type_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.types.keys().map(|k| &**k).collect();
        names.sort_unstable();
        names
    }
}

/// Why a project file could not be imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FileLoadError {
    /// The world has no such file.
    NotFound,
    /// The file imports (directly or not) the file importing it.
    Cycle,
}

/// Finds modules for `use` items.
pub(crate) trait Loader {
    /// The stdlib module `name`, checked.
    fn std_module(&mut self, name: &str) -> Option<Arc<ModuleInfo>>;
    /// The project module at `path` (normalised, relative to the pack), checked.
    fn file_module(&mut self, path: &str) -> Result<Arc<ModuleInfo>, FileLoadError>;
}

/// The loader used by [`crate::check`]: the stdlib from the process-wide cache, project
/// files from the world (each checked once per `check` call).
pub(crate) struct WorldLoader<'w> {
    pub world: &'w dyn World,
    pub files: FastMap<String, Arc<ModuleInfo>>,
    pub in_progress: FastSet<String>,
}

impl Loader for WorldLoader<'_> {
    fn std_module(&mut self, name: &str) -> Option<Arc<ModuleInfo>> {
        stdlib::module(name)
    }

    fn file_module(&mut self, path: &str) -> Result<Arc<ModuleInfo>, FileLoadError> {
        if let Some(found) = self.files.get(path) {
            return Ok(found.clone());
        }
        if self.in_progress.contains(path) {
            return Err(FileLoadError::Cycle);
        }
        let source = self.world.read_file(path).ok_or(FileLoadError::NotFound)?;
        self.in_progress.insert(path.to_string());
        let file = FileRef::Project(Arc::from(path));
        let info = Arc::new(crate::checker::check_module_source(&source, file, self));
        self.in_progress.remove(path);
        self.files.insert(path.to_string(), info.clone());
        Ok(info)
    }
}

/// The loader used while building the stdlib cache: stdlib modules may use each other.
pub(crate) struct StdInitLoader {
    pub done: FastMap<&'static str, Arc<ModuleInfo>>,
    pub in_progress: FastSet<&'static str>,
}

impl Loader for StdInitLoader {
    fn std_module(&mut self, name: &str) -> Option<Arc<ModuleInfo>> {
        let (name, source) = stdlib::entry(name)?;
        if let Some(found) = self.done.get(name) {
            return Some(found.clone());
        }
        if !self.in_progress.insert(name) {
            return None;
        }
        let info = Arc::new(crate::checker::check_module_source(
            source,
            FileRef::Std(name),
            self,
        ));
        self.in_progress.remove(name);
        self.done.insert(name, info.clone());
        Some(info)
    }

    fn file_module(&mut self, _path: &str) -> Result<Arc<ModuleInfo>, FileLoadError> {
        Err(FileLoadError::NotFound)
    }
}

/// Joins an import path written in a file at `importer` (itself relative to the pack) into a
/// path relative to the pack: `lib/a.gx` importing `./b.gx` gives `./lib/b.gx`.
pub(crate) fn join_import_path(importer: Option<&str>, path: &str) -> String {
    let Some(importer) = importer else {
        return path.to_string();
    };
    if path.starts_with('/') {
        return path.to_string();
    }
    let dir = importer.rsplit_once('/').map(|(dir, _)| dir).unwrap_or(".");
    let mut parts: Vec<&str> = Vec::new();
    for part in dir.split('/').chain(path.split('/')) {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|p| *p != "..") {
                    parts.pop();
                } else {
                    parts.push("..");
                }
            }
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    if joined.starts_with("..") {
        joined
    } else {
        format!("./{joined}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_paths() {
        assert_eq!(join_import_path(None, "./x.gx"), "./x.gx");
        assert_eq!(join_import_path(Some("./lib/a.gx"), "./b.gx"), "./lib/b.gx");
        assert_eq!(join_import_path(Some("lib/a.gx"), "../c.gx"), "./c.gx");
    }
}

//! The checker: one pass over a parsed file that resolves names, infers types and runs the
//! static checks, collecting every diagnostic into one sink.
//!
//! The walk is split by feature: declarations (`decls`), expressions (`expr`), the flow
//! (`flow`) and the pack-level blocks (`pack_items`: policy, outcome, KPIs, evals, layout).
//! The diagnostics themselves (message, help, fix) live in `crate::checks`, one file per rule.

mod decls;
mod expr;
mod flow;
mod pack_items;

use crate::fast_hash::{FastMap, FastSet};
use std::sync::Arc;

use dsl_syntax::ast::{self, FileKind, Ident, Item, TypeDecl};
use dsl_syntax::{Diagnostic, Parse, Span};

use crate::checks;
use crate::module::{FileLoadError, Loader, ModuleInfo, join_import_path};
use crate::program::{
    AgentInfo, DefSite, FileRef, ImportInfo, ModelInfo, Program, Resolution, SymbolKind, ToolInfo,
    TypeInfo,
};
use crate::ty::Ty;

pub use decls::PRIMITIVES;
pub(crate) use decls::plain_string;
pub use expr::BUILTINS;

/// The language versions this toolchain understands.
pub const KNOWN_LANGUAGES: &[&str] = &["0.1"];

/// A name bound inside an expression scope: a loop variable, `critique`, a tool parameter.
#[derive(Debug, Clone)]
pub(crate) struct Local {
    pub name: Arc<str>,
    pub ty: Ty,
    pub kind: SymbolKind,
    pub def: Option<DefSite>,
}

/// The state of checking one file.
pub(crate) struct Checker<'a> {
    pub src: &'a str,
    pub parse: &'a Parse,
    pub file: FileRef,
    /// The module name of this file (`""` for a pack).
    pub module: Arc<str>,
    pub is_module: bool,
    /// Whether to record name resolutions (only for the main file).
    pub record: bool,
    pub loader: &'a mut dyn Loader,
    pub diags: Vec<Diagnostic>,
    pub program: Program,
    /// Imported modules by the alias they are visible under.
    pub imports: FastMap<Arc<str>, Arc<ModuleInfo>>,
    /// The implicit `core` module (its types are visible unqualified).
    pub core: Option<Arc<ModuleInfo>>,
    pub type_decls: FastMap<Arc<str>, &'a TypeDecl>,
    pub types: FastMap<Arc<str>, Arc<TypeInfo>>,
    /// Expanded aliases; `None` while one is being expanded (cycle guard).
    pub alias_cache: FastMap<Arc<str>, Option<Ty>>,
    pub alias_depth: u32,
    pub tools: FastMap<Arc<str>, Arc<ToolInfo>>,
    pub models: FastMap<Arc<str>, Arc<ModelInfo>>,
    pub agents: FastMap<Arc<str>, Arc<AgentInfo>>,
    pub knowledge: FastMap<Arc<str>, usize>,
    pub inputs: FastMap<Arc<str>, usize>,
    pub steps: FastMap<Arc<str>, usize>,
    pub step_types: Vec<Option<Ty>>,
    pub locals: Vec<Local>,
    /// The step being inferred, to attribute tool calls to.
    pub current_step: Option<usize>,
    /// How deep inside `map`/`when`/`review` bodies the walk is.
    pub body_depth: u32,
    /// Where the item being checked starts (for "create missing type" fixes).
    pub item_start: u32,
    /// The pack's policy, summarised.
    pub policy: crate::policy::PolicyInfo,
    /// The file's own tools, in source order (imported ones are in `program.tools`).
    pub own_tools: Vec<Arc<ToolInfo>>,
    /// Doc comments by the offset of the construct they document.
    pub docs: FastMap<u32, String>,
    /// Aliases of imports that failed (already reported): their uses resolve silently to
    /// the error type.
    pub failed_imports: crate::fast_hash::FastSet<String>,
    /// Work spent on "did you mean" suggestions so far (candidates considered).
    pub suggestion_work: usize,
    /// The provider calls of the file's models (each model and its fallbacks), with the
    /// hosts they reach, for the egress check.
    pub model_calls: Vec<checks::model_egress::ModelCall>,
    /// The definitions (spans in this file) of the models something uses, recorded whether
    /// or not the resolution table is, for the egress check.
    pub used_models: FastSet<(u32, u32)>,
}

/// How many candidates "did you mean" may consider per file in total: a file with thousands
/// of unknown names among thousands of steps still checks in linear time (the later
/// diagnostics just carry no suggestion).
const SUGGESTION_BUDGET: usize = 2_000_000;

/// Every doc comment of the file, by the offset of the token after it: one pass over the
/// tokens instead of a search per declaration. Same rules as `Parse::doc_comment`: `///`
/// lines directly above, a blank line or another comment in between breaks the link.
fn doc_table(source: &str, parse: &Parse) -> FastMap<u32, String> {
    use dsl_syntax::TokenKind;
    let mut table = FastMap::default();
    let mut pending: Vec<&str> = Vec::new();
    for token in &parse.tokens {
        match token.kind {
            TokenKind::DocComment => {
                let text = token.span.text(source);
                let text = text.strip_prefix("///").unwrap_or(text);
                pending.push(text.strip_prefix(' ').unwrap_or(text).trim_end());
            }
            TokenKind::Whitespace => {
                if !pending.is_empty() && token.span.text(source).matches('\n').count() > 1 {
                    pending.clear();
                }
            }
            kind if kind.is_trivia() => pending.clear(),
            _ => {
                if !pending.is_empty() {
                    table.insert(token.span.start, pending.join("\n"));
                    pending.clear();
                }
            }
        }
    }
    table
}

/// Checks a file that is the main file of a `check` call.
pub(crate) fn check_main(
    source: &str,
    parse: &Parse,
    loader: &mut dyn Loader,
) -> (Program, Vec<Diagnostic>) {
    let mut checker = Checker::new(source, parse, FileRef::Main, true, loader);
    checker.run();
    checker.finish()
}

/// Checks an imported module file and returns what it exports.
pub(crate) fn check_module_source(
    source: &str,
    file: FileRef,
    loader: &mut dyn Loader,
) -> ModuleInfo {
    let parse = dsl_syntax::parse(source);
    let mut checker = Checker::new(source, &parse, file.clone(), false, loader);
    checker.run();
    let is_pack = checker.parse.file.kind == Some(FileKind::Pack);
    let module = checker.module.clone();
    let types = std::mem::take(&mut checker.types);
    let tools = std::mem::take(&mut checker.tools);
    let models = std::mem::take(&mut checker.models);
    let agents = std::mem::take(&mut checker.agents);
    let (program, diags) = checker.finish();
    let mut errors: Vec<Diagnostic> = parse.errors.clone();
    errors.extend(diags.into_iter().filter(Diagnostic::is_error));
    ModuleInfo {
        name: module,
        file: Some(file),
        types,
        tools,
        models,
        agents,
        foreign_types: program.foreign_types,
        errors,
        is_pack,
    }
}

impl<'a> Checker<'a> {
    fn new(
        src: &'a str,
        parse: &'a Parse,
        file: FileRef,
        record: bool,
        loader: &'a mut dyn Loader,
    ) -> Checker<'a> {
        let is_module = parse.file.kind == Some(FileKind::Module);
        let module: Arc<str> = if is_module {
            Arc::from(
                parse
                    .file
                    .name
                    .as_ref()
                    .map(|n| n.name.as_str())
                    .unwrap_or(""),
            )
        } else {
            Arc::from("")
        };
        let mut program = Program::default();
        if record {
            program.resolutions.reserve(parse.tokens.len() / 6);
        }
        Checker {
            src,
            parse,
            file,
            module,
            is_module,
            record,
            loader,
            diags: Vec::new(),
            program,
            imports: FastMap::default(),
            core: None,
            type_decls: FastMap::default(),
            types: FastMap::default(),
            alias_cache: FastMap::default(),
            alias_depth: 0,
            tools: FastMap::default(),
            models: FastMap::default(),
            agents: FastMap::default(),
            knowledge: FastMap::default(),
            inputs: FastMap::default(),
            steps: FastMap::default(),
            step_types: Vec::new(),
            locals: Vec::new(),
            current_step: None,
            body_depth: 0,
            item_start: 0,
            policy: crate::policy::PolicyInfo::default(),
            suggestion_work: 0,
            failed_imports: crate::fast_hash::FastSet::default(),
            docs: doc_table(src, parse),
            own_tools: Vec::new(),
            model_calls: Vec::new(),
            used_models: FastSet::default(),
        }
    }

    fn finish(mut self) -> (Program, Vec<Diagnostic>) {
        // Names are recorded in source order except across declaration kinds, so the table
        // is a few sorted runs that the stable (run-adaptive) sort merges cheaply.
        let key = |r: &Resolution| (r.span.start, r.span.end);
        if !self.program.resolutions.is_sorted_by_key(key) {
            self.program.resolutions.sort_by_key(key);
        }
        self.program.policy = std::mem::take(&mut self.policy);
        let mut tools = std::mem::take(&mut self.own_tools);
        tools.append(&mut self.program.tools);
        self.program.tools = tools;
        let mut diags = self.diags;
        diags.sort_by_key(|d| (d.span.start, d.span.end));
        (self.program, diags)
    }

    /// Whether a suggestion over `candidates` names is still affordable (and charges it).
    pub fn can_suggest(&mut self, candidates: usize) -> bool {
        self.suggestion_work = self.suggestion_work.saturating_add(candidates);
        self.suggestion_work <= SUGGESTION_BUDGET
    }

    /// The flow's step names, sorted, as "did you mean" candidates (none once the
    /// suggestion budget is spent).
    pub fn step_candidates(&mut self) -> Vec<String> {
        if !self.can_suggest(self.program.steps.len()) {
            return Vec::new();
        }
        let mut steps: Vec<String> = self
            .program
            .steps
            .iter()
            .map(|s| s.name.to_string())
            .collect();
        steps.sort_unstable();
        steps
    }

    /// A tool by key (`mail.send`, or `lookup` for the file's own), own or imported.
    pub fn tool_by_key(&self, key: &str) -> Option<Arc<ToolInfo>> {
        self.own_tools
            .iter()
            .chain(self.program.tools.iter())
            .find(|t| t.has_key(key))
            .cloned()
    }

    /// Reports a diagnostic.
    pub fn report(&mut self, diagnostic: Diagnostic) {
        self.diags.push(diagnostic);
    }

    /// A definition site in this file.
    pub fn def(&self, span: Span) -> DefSite {
        DefSite {
            file: self.file.clone(),
            span,
        }
    }

    /// Records a name occurrence for the language server.
    pub fn resolve(&mut self, span: Span, kind: SymbolKind, def: Option<DefSite>, ty: Ty) {
        if kind == SymbolKind::Model
            && let Some(def) = def.as_ref().filter(|d| d.file == FileRef::Main)
        {
            self.used_models.insert((def.span.start, def.span.end));
        }
        if self.record {
            self.program.resolutions.push(Resolution {
                span,
                kind,
                def,
                ty,
                is_definition: false,
            });
        }
    }

    /// Records a definition for the language server.
    pub fn define(&mut self, ident: &Ident, kind: SymbolKind, ty: Ty) {
        if self.record {
            let def = Some(self.def(ident.span));
            self.program.resolutions.push(Resolution {
                span: ident.span,
                kind,
                def,
                ty,
                is_definition: true,
            });
        }
    }

    /// The doc comment above the construct starting at `span` (as `Parse::doc_comment`);
    /// each is handed out once.
    pub fn doc(&mut self, span: Span) -> Option<String> {
        self.docs.remove(&span.start)
    }

    fn run(&mut self) {
        let file = &self.parse.file;
        self.program.kind = file.kind;
        self.program.name = file.name.as_ref().map(|n| n.name.clone());
        let items = &file.items;
        self.check_metadata(items);
        self.load_imports(items);
        if self.is_module {
            for item in items {
                checks::item_placement::check_module_item(self, item);
            }
        }
        self.collect_declarations(items);
        self.check_declarations(items);
        if !self.is_module {
            self.check_flow_items(items);
            self.check_pack_items(items);
            if file.kind == Some(FileKind::Pack)
                && !items.iter().any(|i| matches!(i, Item::Flow(_)))
            {
                checks::missing_flow::check(self);
            }
        }
    }

    /// Metadata: known keys, value kinds, duplicates, the language version.
    fn check_metadata(&mut self, items: &'a [Item]) {
        let mut seen: FastMap<&str, Span> = FastMap::default();
        for item in items {
            let Item::Meta(meta) = item else { continue };
            checks::duplicates::check(self, &mut seen, &meta.key, "metadata");
            checks::item_placement::check_meta_value(self, meta);
            if meta.key.name == "language"
                && let ast::ExprKind::Str(lit) = &meta.value.kind
                && let Some(version) = lit.as_plain()
            {
                self.program.language = Some(version.clone());
                checks::language_version::check_known(self, &version, meta.value.span);
            }
        }
        if self.parse.file.kind == Some(FileKind::Pack) && !seen.contains_key("language") {
            checks::language_version::check_missing(self);
        }
    }

    /// `use` items, plus the implicit `core`.
    fn load_imports(&mut self, items: &'a [Item]) {
        if &*self.module != "core" {
            self.core = self.loader.std_module("core");
            if let Some(core) = self.core.clone() {
                self.add_import(
                    Arc::from("core"),
                    core,
                    Span::default(),
                    FileRef::Std("core"),
                    false,
                );
            }
        }
        let mut seen: FastMap<String, Span> = FastMap::default();
        for item in items {
            let Item::Use(use_item) = item else { continue };
            self.item_start = use_item.span.start;
            let loaded = match &use_item.target {
                ast::UseTarget::Module(path) => self.load_std_use(path, use_item),
                ast::UseTarget::File(lit) => self.load_file_use(lit, use_item),
            };
            let Some((module, file, name_ident_span)) = loaded else {
                continue;
            };
            let alias_ident = use_item.alias.as_ref();
            let alias: Arc<str> = match alias_ident {
                Some(alias) => Arc::from(alias.name.as_str()),
                None => module.name.clone(),
            };
            let alias_span = alias_ident.map(|a| a.span).unwrap_or(name_ident_span);
            if let Some(first) = seen.get(&*alias) {
                checks::duplicates::report(
                    self,
                    alias_span,
                    *first,
                    &format!("module name `{alias}`"),
                );
                continue;
            }
            seen.insert(alias.to_string(), alias_span);
            if !module.errors.is_empty() {
                checks::unknown_module::module_has_errors(self, use_item.span, &module);
            }
            if self.record {
                let def = DefSite {
                    file: file.clone(),
                    span: Span::default(),
                };
                self.program.resolutions.push(Resolution {
                    span: name_ident_span,
                    kind: SymbolKind::Module,
                    def: Some(def.clone()),
                    ty: Ty::Module,
                    is_definition: false,
                });
                if let Some(alias_ident) = alias_ident {
                    self.program.resolutions.push(Resolution {
                        span: alias_ident.span,
                        kind: SymbolKind::Module,
                        def: Some(def),
                        ty: Ty::Module,
                        is_definition: false,
                    });
                }
            }
            self.add_import(alias, module, use_item.span, file, true);
        }
    }

    fn add_import(
        &mut self,
        alias: Arc<str>,
        module: Arc<ModuleInfo>,
        span: Span,
        file: FileRef,
        explicit: bool,
    ) {
        for (key, ty) in &module.foreign_types {
            self.program.foreign_types.insert(key.clone(), ty.clone());
        }
        for (name, ty) in &module.types {
            self.program
                .foreign_types
                .insert((module.name.clone(), name.clone()), ty.clone());
        }
        for tool in module.tools.values() {
            if !self.program.tools.iter().any(|t| Arc::ptr_eq(t, tool)) {
                self.program.tools.push(tool.clone());
            }
        }
        self.program.imports.retain(|i| *i.alias != *alias);
        if explicit || !self.imports.contains_key(&alias) {
            self.program.imports.push(ImportInfo {
                alias: alias.to_string(),
                module: module.name.to_string(),
                file,
                span,
            });
        }
        self.imports.insert(alias, module);
    }

    fn load_std_use(
        &mut self,
        path: &'a [Ident],
        item: &'a ast::UseItem,
    ) -> Option<(Arc<ModuleInfo>, FileRef, Span)> {
        let (first, rest) = path.split_first()?;
        let name_ident = match rest {
            [name] if first.name == "std" => name,
            _ => {
                checks::unknown_module::unknown_std_path(self, path, item);
                return None;
            }
        };
        match crate::stdlib::entry(&name_ident.name) {
            Some((static_name, _)) => match self.loader.std_module(static_name) {
                Some(module) => Some((module, FileRef::Std(static_name), name_ident.span)),
                None => {
                    // A stdlib import cycle: only possible while building the stdlib.
                    checks::unknown_module::unknown_std_module(self, name_ident);
                    None
                }
            },
            None => {
                checks::unknown_module::unknown_std_module(self, name_ident);
                None
            }
        }
    }

    fn load_file_use(
        &mut self,
        lit: &'a ast::StringLit,
        item: &'a ast::UseItem,
    ) -> Option<(Arc<ModuleInfo>, FileRef, Span)> {
        let written = lit.as_plain()?;
        let importer = match &self.file {
            FileRef::Project(path) => Some(path.to_string()),
            _ => None,
        };
        let path = join_import_path(importer.as_deref(), &written);
        match self.loader.file_module(&path) {
            Ok(module) => {
                if module.is_pack {
                    checks::unknown_module::imported_pack(self, lit.span, &written);
                    return None;
                }
                Some((
                    module,
                    FileRef::Project(Arc::from(path.as_str())),
                    item.alias.as_ref().map(|a| a.span).unwrap_or(lit.span),
                ))
            }
            Err(FileLoadError::NotFound) => {
                checks::unknown_module::file_not_found(self, lit.span, &written);
                None
            }
            Err(FileLoadError::Cycle) => {
                checks::unknown_module::import_cycle(self, lit.span, &written);
                None
            }
        }
    }
}

//! Knowledge sources: the documents an `ask` is grounded in, numbered in its prompt, and the
//! citations of its answer checked against them.
//!
//! `files("knowledge/*.md")` is read when a run starts or resumes (paths relative to the pack
//! file), so a missing or oversized source fails the run before any call. `urls([...])` are
//! fetched by the engine at the first call that needs them, through the egress allowlist; Sim
//! Mode never fetches. Every document is bounded ([`MAX_DOCUMENT_BYTES`]), and so is what one
//! source may hold ([`MAX_SOURCE_BYTES`], [`MAX_FILES_PER_SOURCE`]).
//!
//! A source with `top_k` sends only the `top_k` passages (of about `chunk_size` tokens, 400
//! by default; paragraphs kept whole where they fit) that share the most words with the
//! prompt, ranked BM25-style, instead of whole documents; such a source may hold more
//! ([`MAX_RETRIEVAL_DOCUMENT_BYTES`], [`MAX_RETRIEVAL_SOURCE_BYTES`]).
//!
//! In a prompt, sources are numbered `[1]`, `[2]`, ...; the model cites one by its number in
//! a citation's `source`. [`Sources::resolve_citations`] accepts only numbers (or paths and
//! URLs) of the sources given, and rewrites each citation to name the knowledge source, the
//! document's title and its path or URL, so citations reference real documents.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use dsl_check::plan::Plan;
use dsl_syntax::ast::ExprKind;
use serde_json::{Map, Value, json};

use crate::sim::Rng;

/// The most bytes of one document that reach a prompt; longer ones are cut (and marked).
pub const MAX_DOCUMENT_BYTES: usize = 64 * 1024;
/// The most bytes one knowledge source may hold after cutting its documents.
pub const MAX_SOURCE_BYTES: usize = 256 * 1024;
/// The most bytes of one document of a source with `top_k` (only passages are sent).
pub const MAX_RETRIEVAL_DOCUMENT_BYTES: usize = 1024 * 1024;
/// The most bytes a source with `top_k` may hold.
pub const MAX_RETRIEVAL_SOURCE_BYTES: usize = 16 * 1024 * 1024;
/// Tokens per passage when a source has `top_k` but no `chunk_size`.
pub const DEFAULT_CHUNK_TOKENS: usize = 400;
/// The most bytes of documents one call may send (all its sources together).
pub const MAX_CALL_BYTES: usize = 512 * 1024;
/// The most bytes read from a URL (HTML is reduced to its text afterwards).
pub const MAX_FETCH_BYTES: usize = 1024 * 1024;
/// The most files one `files(...)` source may match.
pub const MAX_FILES_PER_SOURCE: usize = 200;
/// What a cut document ends with.
const CUT_MARK: &str = "\n[... cut: the document is longer than Galaxy sends to a model]";

/// A failure to load a knowledge source.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum KnowledgeError {
    /// The source is not `files("...")` or `urls([...])` with constant arguments.
    #[error("knowledge `{name}`: {message}")]
    BadSource {
        /// The knowledge source.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// A `files` pattern matches nothing.
    #[error("knowledge `{name}`: files(\"{pattern}\") matches no file under {dir}")]
    NoMatch {
        /// The knowledge source.
        name: String,
        /// The pattern as written.
        pattern: String,
        /// The pack's directory.
        dir: String,
    },
    /// A file could not be read.
    #[error("knowledge `{name}`: cannot read {path}: {message}")]
    Read {
        /// The knowledge source.
        name: String,
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
    /// A source is over one of the limits.
    #[error("knowledge `{name}`: {message}")]
    TooLarge {
        /// The knowledge source.
        name: String,
        /// Which limit, and how to stay under it.
        message: String,
    },
}

/// One document of a knowledge source.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// The knowledge source's name (`kb`).
    pub source: String,
    /// Its path relative to the pack (`knowledge/refunds.md`) or its URL.
    pub location: String,
    /// Its title: the first Markdown heading, else the file name (or the URL).
    pub title: String,
    /// Its text (cut at [`MAX_DOCUMENT_BYTES`]); empty for a URL not fetched (Sim Mode).
    pub text: String,
    /// Whether the text was cut.
    pub cut: bool,
}

/// A knowledge source as loaded.
#[derive(Debug, Clone)]
enum Loaded {
    /// Files read at the start.
    Files(Vec<Arc<Document>>),
    /// URLs, fetched when first needed.
    Urls(Vec<String>),
}

/// How a source with `top_k` picks passages.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Retrieval {
    /// Passages sent per call.
    top_k: usize,
    /// About this many tokens (four bytes each) per passage.
    chunk_tokens: usize,
}

/// Every knowledge source of a plan, files read.
#[derive(Debug, Clone, Default)]
pub struct Library {
    sources: HashMap<String, Loaded>,
    retrieval: HashMap<String, Retrieval>,
    /// Documents fetched from URLs during this run, by URL.
    fetched: Arc<Mutex<HashMap<String, Arc<Document>>>>,
}

/// Where the documents of one call come from: read files, and URLs to fetch (or, in Sim
/// Mode, to cite unread).
#[derive(Debug, Clone, Default)]
pub struct Needed {
    /// Documents already read.
    pub documents: Vec<Arc<Document>>,
    /// `(knowledge source, URL)` pairs still to fetch.
    pub urls: Vec<(String, String)>,
}

impl Library {
    /// Reads every `files(...)` source of `plan` (relative to `base_dir`, the pack's folder)
    /// and notes its `urls(...)`.
    pub fn load(plan: &Plan, base_dir: &Path) -> Result<Library, KnowledgeError> {
        let mut sources = HashMap::new();
        let mut retrieval = HashMap::new();
        for knowledge in &plan.knowledge {
            let name = knowledge.name.clone();
            let bad = |message: &str| KnowledgeError::BadSource {
                name: name.clone(),
                message: message.to_string(),
            };
            let count = |key: &str| -> Result<Option<usize>, KnowledgeError> {
                let Some((_, expr)) = knowledge.props.iter().find(|(k, _)| k == key) else {
                    return Ok(None);
                };
                crate::eval::eval(expr, &crate::eval::Scope::default())
                    .ok()
                    .and_then(|v| v.as_u64())
                    .filter(|n| *n >= 1)
                    .map(|n| Some(n as usize))
                    .ok_or_else(|| bad(&format!("`{key}` must be a whole number of at least 1")))
            };
            let top_k = count("top_k")?;
            let chunk_tokens = count("chunk_size")?;
            if let Some(top_k) = top_k {
                retrieval.insert(
                    name.clone(),
                    Retrieval {
                        top_k,
                        chunk_tokens: chunk_tokens.unwrap_or(DEFAULT_CHUNK_TOKENS).max(16),
                    },
                );
            }
            let limits = if top_k.is_some() {
                (MAX_RETRIEVAL_DOCUMENT_BYTES, MAX_RETRIEVAL_SOURCE_BYTES)
            } else {
                (MAX_DOCUMENT_BYTES, MAX_SOURCE_BYTES)
            };
            let ExprKind::Call(callee, args) = &knowledge.source.kind else {
                return Err(bad("expected files(\"glob\") or urls([...])"));
            };
            let kind = crate::eval::callee_name(callee).unwrap_or_default();
            let argument = args
                .first()
                .map(|a| crate::eval::eval(&a.value, &crate::eval::Scope::default()))
                .transpose()
                .map_err(|e| bad(&e.to_string()))?
                .ok_or_else(|| bad("missing its argument"))?;
            let loaded = match kind.as_str() {
                "files" => {
                    let pattern = argument
                        .as_str()
                        .ok_or_else(|| bad("files(...) takes a string pattern"))?;
                    Loaded::Files(read_files(&name, pattern, base_dir, limits)?)
                }
                "urls" => {
                    let urls = argument
                        .as_array()
                        .ok_or_else(|| bad("urls(...) takes a list of URLs"))?
                        .iter()
                        .map(crate::eval::display)
                        .collect();
                    Loaded::Urls(urls)
                }
                other => return Err(bad(&format!("unknown source kind `{other}`"))),
            };
            sources.insert(name, loaded);
        }
        Ok(Library {
            sources,
            retrieval,
            fetched: Arc::default(),
        })
    }

    /// The document fetched from `url` earlier in this run.
    pub fn fetched(&self, url: &str) -> Option<Arc<Document>> {
        let fetched = self.fetched.lock().unwrap_or_else(|e| e.into_inner());
        fetched.get(url).cloned()
    }

    /// Keeps a fetched document for the rest of the run.
    pub fn remember(&self, document: Document) -> Arc<Document> {
        let document = Arc::new(document);
        let mut fetched = self.fetched.lock().unwrap_or_else(|e| e.into_inner());
        fetched.insert(document.location.clone(), Arc::clone(&document));
        document
    }

    /// The documents and URLs of the named sources (unknown names are skipped: the checker
    /// reports them).
    pub fn needed(&self, names: &[String]) -> Needed {
        let mut needed = Needed::default();
        for name in names {
            match self.sources.get(name) {
                Some(Loaded::Files(documents)) => {
                    needed.documents.extend(documents.iter().cloned())
                }
                Some(Loaded::Urls(urls)) => needed
                    .urls
                    .extend(urls.iter().map(|u| (name.clone(), u.clone()))),
                None => {}
            }
        }
        needed
    }

    /// How many bytes of text a call citing the named sources sends at most (for budget
    /// estimates).
    pub fn bytes(&self, names: &[String]) -> usize {
        names
            .iter()
            .map(
                |name| match (self.retrieval.get(name), self.sources.get(name)) {
                    (Some(r), _) => r.top_k * r.chunk_tokens * 4,
                    (None, Some(Loaded::Files(documents))) => {
                        documents.iter().map(|d| d.text.len()).sum()
                    }
                    _ => 0,
                },
            )
            .sum()
    }

    /// The documents one call sends: whole documents, except that a source with `top_k`
    /// sends its `top_k` passages most relevant to `prompt`.
    pub fn select(&self, documents: Vec<Arc<Document>>, prompt: &str) -> Vec<Arc<Document>> {
        if self.retrieval.is_empty() {
            return documents;
        }
        let mut out = Vec::new();
        let mut by_source: Vec<(String, Vec<Arc<Document>>)> = Vec::new();
        for document in documents {
            if !self.retrieval.contains_key(&document.source) {
                out.push(document);
                continue;
            }
            match by_source.iter_mut().find(|(s, _)| *s == document.source) {
                Some((_, list)) => list.push(document),
                None => by_source.push((document.source.clone(), vec![document])),
            }
        }
        for (source, documents) in by_source {
            if let Some(retrieval) = self.retrieval.get(&source) {
                out.extend(retrieve(&documents, prompt, *retrieval));
            }
        }
        out
    }
}

/// Reads the files `pattern` matches under `base_dir`, sorted by path.
fn read_files(
    name: &str,
    pattern: &str,
    base_dir: &Path,
    (document_limit, source_limit): (usize, usize),
) -> Result<Vec<Arc<Document>>, KnowledgeError> {
    let bad = |message: String| KnowledgeError::BadSource {
        name: name.to_string(),
        message,
    };
    let pattern = pattern.trim().trim_start_matches("./");
    let glob = globset::GlobBuilder::new(pattern)
        .literal_separator(true)
        .build()
        .map_err(|e| bad(format!("invalid pattern `{pattern}`: {e}")))?
        .compile_matcher();
    // Walk only below the pattern's literal prefix (`knowledge/` of `knowledge/*.md`).
    let literal: Vec<&str> = pattern
        .split('/')
        .take_while(|part| !part.contains(['*', '?', '[', '{']))
        .collect();
    let whole_literal = literal.len() == pattern.split('/').count();
    let mut files = Vec::new();
    if whole_literal {
        let path = base_dir.join(pattern);
        if path.is_file() {
            files.push((pattern.to_string(), path));
        }
    } else {
        let root_rel = literal.join("/");
        let root = base_dir.join(&root_rel);
        let root = if root.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            root
        };
        let mut stack = vec![(root_rel, root)];
        let mut visited = 0usize;
        while let Some((rel, dir)) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                visited += 1;
                if visited > 100_000 {
                    return Err(KnowledgeError::TooLarge {
                        name: name.to_string(),
                        message: format!(
                            "files(\"{pattern}\") walks more than 100000 entries; narrow the pattern"
                        ),
                    });
                }
                let file_name = entry.file_name().to_string_lossy().to_string();
                let child_rel = if rel.is_empty() {
                    file_name
                } else {
                    format!("{rel}/{file_name}")
                };
                let path = entry.path();
                let Ok(kind) = entry.file_type() else {
                    continue;
                };
                if kind.is_dir() {
                    stack.push((child_rel, path));
                } else if glob.is_match(&child_rel) {
                    files.push((child_rel, path));
                }
            }
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(KnowledgeError::NoMatch {
            name: name.to_string(),
            pattern: pattern.to_string(),
            dir: display_dir(base_dir),
        });
    }
    if files.len() > MAX_FILES_PER_SOURCE {
        return Err(KnowledgeError::TooLarge {
            name: name.to_string(),
            message: format!(
                "files(\"{pattern}\") matches {} files, more than the {MAX_FILES_PER_SOURCE} a source may hold; narrow the pattern",
                files.len()
            ),
        });
    }
    let mut documents = Vec::new();
    let mut total = 0usize;
    for (rel, path) in files {
        let bytes = std::fs::read(&path).map_err(|e| KnowledgeError::Read {
            name: name.to_string(),
            path: rel.clone(),
            message: e.to_string(),
        })?;
        let text = String::from_utf8(bytes).map_err(|_| KnowledgeError::Read {
            name: name.to_string(),
            path: rel.clone(),
            message: "not UTF-8 text".into(),
        })?;
        let (text, cut) = cut_to(text, document_limit);
        total += text.len();
        if total > source_limit {
            return Err(KnowledgeError::TooLarge {
                name: name.to_string(),
                message: format!(
                    "files(\"{pattern}\") holds more than {} KiB of text (the limit of one source); narrow the pattern, split the source or give it `top_k`",
                    source_limit / 1024
                ),
            });
        }
        let title = title_of(&text).unwrap_or_else(|| {
            Path::new(&rel)
                .file_name()
                .map_or_else(|| rel.clone(), |f| f.to_string_lossy().to_string())
        });
        documents.push(Arc::new(Document {
            source: name.to_string(),
            location: rel,
            title,
            text,
            cut,
        }));
    }
    Ok(documents)
}

fn display_dir(dir: &Path) -> String {
    if dir.as_os_str().is_empty() {
        "the current directory".to_string()
    } else {
        PathBuf::from(dir).display().to_string()
    }
}

/// Cuts `text` to [`MAX_DOCUMENT_BYTES`] at a character boundary.
pub fn cut(text: String) -> (String, bool) {
    cut_to(text, MAX_DOCUMENT_BYTES)
}

fn cut_to(mut text: String, limit: usize) -> (String, bool) {
    if text.len() <= limit {
        return (text, false);
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push_str(CUT_MARK);
    (text, true)
}

/// Splits a document into passages of about `chunk_bytes`: paragraphs (blank-line separated)
/// are kept whole and packed together; a paragraph longer than a passage is split at word
/// boundaries.
fn passages(text: &str, chunk_bytes: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for paragraph in text.split("\n\n").map(str::trim).filter(|p| !p.is_empty()) {
        if !current.is_empty() && current.len() + paragraph.len() + 2 > chunk_bytes {
            out.push(std::mem::take(&mut current));
        }
        if paragraph.len() <= chunk_bytes {
            if !current.is_empty() {
                current.push_str("\n\n");
            }
            current.push_str(paragraph);
            continue;
        }
        for word in paragraph.split_whitespace() {
            if !current.is_empty() && current.len() + word.len() + 1 > chunk_bytes {
                out.push(std::mem::take(&mut current));
            }
            if !current.is_empty() {
                current.push(' ');
            }
            current.push_str(word);
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// Lower-case words of three letters or more, the terms passages are ranked by.
fn terms(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() >= 3)
        .map(str::to_lowercase)
        .collect()
}

/// The `top_k` passages of `documents` that best match `prompt` (BM25), best first; ties keep
/// document order. Each passage is a document titled `Title (passage N)` at the document's
/// path, so its citations name the real file.
fn retrieve(documents: &[Arc<Document>], prompt: &str, retrieval: Retrieval) -> Vec<Arc<Document>> {
    let mut candidates: Vec<(Arc<Document>, usize, String)> = Vec::new();
    for document in documents {
        if document.text.is_empty() {
            candidates.push((Arc::clone(document), 0, String::new()));
            continue;
        }
        for (i, passage) in passages(&document.text, retrieval.chunk_tokens * 4)
            .into_iter()
            .enumerate()
        {
            candidates.push((Arc::clone(document), i + 1, passage));
        }
    }
    let bags: Vec<Vec<String>> = candidates.iter().map(|(_, _, p)| terms(p)).collect();
    let n = bags.len().max(1) as f64;
    let average = bags.iter().map(Vec::len).sum::<usize>() as f64 / n;
    let mut query = terms(prompt);
    query.sort();
    query.dedup();
    let scores: Vec<f64> = bags
        .iter()
        .map(|bag| {
            query
                .iter()
                .map(|term| {
                    let tf = bag.iter().filter(|w| *w == term).count() as f64;
                    if tf == 0.0 {
                        return 0.0;
                    }
                    let df = bags.iter().filter(|b| b.contains(term)).count() as f64;
                    let idf = ((n - df + 0.5) / (df + 0.5) + 1.0).ln();
                    let norm = 1.2 * (0.25 + 0.75 * bag.len() as f64 / average.max(1.0));
                    idf * tf * 2.2 / (tf + norm)
                })
                .sum()
        })
        .collect();
    let mut order: Vec<usize> = (0..candidates.len()).collect();
    order.sort_by(|a, b| scores[*b].total_cmp(&scores[*a]).then(a.cmp(b)));
    order
        .into_iter()
        .take(retrieval.top_k)
        .filter_map(|i| candidates.get(i))
        .map(|(document, number, passage)| {
            if *number == 0 {
                return Arc::clone(document);
            }
            Arc::new(Document {
                source: document.source.clone(),
                location: document.location.clone(),
                title: format!("{} (passage {number})", document.title),
                text: passage.clone(),
                cut: false,
            })
        })
        .collect()
}

/// The first Markdown heading of `text`.
fn title_of(text: &str) -> Option<String> {
    text.lines()
        .map(str::trim)
        .find(|line| line.starts_with('#'))
        .map(|line| line.trim_start_matches('#').trim().to_string())
        .filter(|title| !title.is_empty())
}

/// A document fetched from a URL: its body as text (HTML reduced to its text), cut.
pub fn fetched_document(source: &str, url: &str, body: &str, html: bool) -> Document {
    let text = if html {
        html_text(body)
    } else {
        body.to_string()
    };
    let title = if html { html_title(body) } else { None }
        .or_else(|| title_of(&text))
        .unwrap_or_else(|| url.to_string());
    let (text, cut) = cut(text);
    Document {
        source: source.to_string(),
        location: url.to_string(),
        title,
        text,
        cut,
    }
}

/// A document for a URL that Sim Mode does not fetch.
pub fn unfetched_document(source: &str, url: &str) -> Document {
    Document {
        source: source.to_string(),
        location: url.to_string(),
        title: url.to_string(),
        text: String::new(),
        cut: false,
    }
}

fn html_title(html: &str) -> Option<String> {
    let re = regex::Regex::new(r"(?is)<title[^>]*>(.*?)</title>").ok()?;
    re.captures(html)
        .and_then(|c| c.get(1))
        .map(|m| m.as_str().trim().to_string())
        .filter(|t| !t.is_empty())
}

fn html_text(html: &str) -> String {
    let Ok(blocks) = regex::Regex::new(r"(?is)<(script|style)[^>]*>.*?</(script|style)>") else {
        return html.to_string();
    };
    let Ok(tags) = regex::Regex::new(r"(?s)<[^>]*>") else {
        return html.to_string();
    };
    let text = blocks.replace_all(html, " ");
    let text = tags.replace_all(&text, " ");
    let text = text
        .replace("&amp;", "&")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&nbsp;", " ");
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The numbered sources of one call, in prompt order (`[1]` is the first).
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// The documents; the number of `documents[i]` is `i + 1`.
    pub documents: Vec<Arc<Document>>,
}

/// A citation that does not name one of the sources given.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("citation {index} names source `{cited}`, which is not one of the sources given ({given})")]
pub struct UnknownSource {
    /// The 1-based position of the citation in the answer.
    pub index: usize,
    /// What it named.
    pub cited: String,
    /// The ids that were given.
    pub given: String,
}

impl Sources {
    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.documents.is_empty()
    }

    /// The text appended to a prompt: each source with its number, location and text, and
    /// (for answers that carry citations) how to cite them.
    pub fn prompt_section(&self, cited_answer: bool) -> String {
        let mut out = String::from("\n\nSources:\n");
        for (i, document) in self.documents.iter().enumerate() {
            out.push_str(&format!(
                "\n[{}] {} ({}: {})\n",
                i + 1,
                document.title,
                document.source,
                document.location
            ));
            if document.text.is_empty() {
                out.push_str("(not fetched)\n");
            } else {
                out.push_str(document.text.trim_end());
                out.push('\n');
            }
        }
        if cited_answer {
            out.push_str(
                "\nGround the answer in these sources. In `citations`, give one entry per source you rely on: `source` is the source's number in brackets (for example \"[1]\"), `title` its title, `url` its path or URL, and `quote` the exact words you rely on.\n",
            );
        }
        out
    }

    /// What a trace keeps of the sources: number, knowledge source, location, size.
    pub fn summary(&self) -> Value {
        Value::Array(
            self.documents
                .iter()
                .enumerate()
                .map(|(i, d)| {
                    json!({
                        "id": format!("[{}]", i + 1),
                        "source": d.source,
                        "url": d.location,
                        "bytes": d.text.len(),
                        "cut": d.cut,
                    })
                })
                .collect(),
        )
    }

    /// Which source a citation's `source` (or `url`) names: `[2]`, `2`, `#2`, `S2`, or the
    /// document's path or URL.
    fn find(&self, citation: &Map<String, Value>) -> Option<&Arc<Document>> {
        let named = citation
            .get("source")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .trim();
        let number = named
            .trim_start_matches('[')
            .trim_end_matches(']')
            .trim_start_matches(['#', 'S', 's'])
            .trim();
        if let Ok(n) = number.parse::<usize>()
            && n >= 1
        {
            return self.documents.get(n - 1);
        }
        let url = citation
            .get("url")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .trim();
        self.documents.iter().find(|d| {
            (!named.is_empty() && d.location == named) || (!url.is_empty() && d.location == url)
        })
    }

    /// Checks every `citations` list in a model's answer against these sources and rewrites
    /// each citation to the document it names: `source` the knowledge source, `title` the
    /// document's title, `url` its path or URL, `quote` as the model gave it. With no sources
    /// given, citations are dropped (nothing could have been cited).
    pub fn resolve_citations(&self, value: &mut Value) -> Result<(), UnknownSource> {
        let mut index = 0;
        self.resolve_in(value, &mut index)
    }

    fn resolve_in(&self, value: &mut Value, index: &mut usize) -> Result<(), UnknownSource> {
        match value {
            Value::Object(map) => {
                if let Some(Value::Array(citations)) = map.get_mut("citations") {
                    let mut resolved = Vec::with_capacity(citations.len());
                    for citation in citations.iter() {
                        *index += 1;
                        if self.is_empty() {
                            continue;
                        }
                        let empty = Map::new();
                        let entry = citation.as_object().unwrap_or(&empty);
                        let document = self.find(entry).ok_or_else(|| UnknownSource {
                            index: *index,
                            cited: entry
                                .get("source")
                                .map(crate::eval::display)
                                .unwrap_or_default(),
                            given: self.ids(),
                        })?;
                        let quote = entry
                            .get("quote")
                            .map(crate::eval::display)
                            .unwrap_or_default();
                        resolved.push(citation_of(document, quote));
                    }
                    *citations = resolved;
                }
                for (key, inner) in map.iter_mut() {
                    if key != "citations" {
                        self.resolve_in(inner, index)?;
                    }
                }
                Ok(())
            }
            Value::Array(items) => {
                for item in items {
                    self.resolve_in(item, index)?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn ids(&self) -> String {
        match self.documents.len() {
            0 => "none".to_string(),
            1 => "[1]".to_string(),
            n => format!("[1] to [{n}]"),
        }
    }

    /// Sim Mode: fills every `citations` list in a simulated answer with citations of these
    /// sources, chosen by `rng` (so the same seed and step give the same citations), each
    /// quoting a real line of its document.
    pub fn simulate_citations(&self, value: &mut Value, rng: &mut Rng) {
        match value {
            Value::Object(map) => {
                if let Some(Value::Array(citations)) = map.get_mut("citations") {
                    *citations = self.sim_citations(rng);
                }
                for (key, inner) in map.iter_mut() {
                    if key != "citations" {
                        self.simulate_citations(inner, rng);
                    }
                }
            }
            Value::Array(items) => items
                .iter_mut()
                .for_each(|item| self.simulate_citations(item, rng)),
            _ => {}
        }
    }

    /// Simulated citations of these sources (a mock's answer without citations gets these).
    pub fn sim_citations(&self, rng: &mut Rng) -> Vec<Value> {
        let n = self.documents.len();
        if n == 0 {
            return Vec::new();
        }
        // Up to three distinct documents, from a point the seed picks.
        let count = n.min(3);
        let first = rng.below(n as u64) as usize;
        (0..count)
            .filter_map(|k| self.documents.get((first + k) % n))
            .map(|document| {
                let lines: Vec<&str> = document
                    .text
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .collect();
                let quote = if lines.is_empty() {
                    "(not fetched in Sim Mode)".to_string()
                } else {
                    let line = lines[rng.below(lines.len() as u64) as usize];
                    line.chars().take(200).collect()
                };
                citation_of(document, quote)
            })
            .collect()
    }
}

fn citation_of(document: &Document, quote: String) -> Value {
    json!({
        "source": document.source,
        "title": document.title,
        "url": document.location,
        "quote": quote,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(location: &str, text: &str) -> Arc<Document> {
        Arc::new(Document {
            source: "kb".into(),
            location: location.into(),
            title: title_of(text).unwrap_or_default(),
            text: text.into(),
            cut: false,
        })
    }

    fn sources() -> Sources {
        Sources {
            documents: vec![
                doc("knowledge/a.md", "# Refunds\nRefunds take 5 days."),
                doc("knowledge/b.md", "# SSO\nAdmins turn SSO on."),
            ],
        }
    }

    #[test]
    fn citations_resolve_by_number_or_path_and_unknown_ones_fail() {
        let sources = sources();
        let mut answer = json!({
            "reply": "x",
            "citations": [
                { "source": "[2]", "title": "?", "url": null, "quote": "Admins turn SSO on." },
                { "source": "1", "title": "?", "url": null, "quote": "5 days" },
                { "source": "knowledge/a.md", "title": "", "url": null, "quote": "" },
            ],
        });
        sources.resolve_citations(&mut answer).expect("all known");
        assert_eq!(answer["citations"][0]["url"], "knowledge/b.md");
        assert_eq!(answer["citations"][0]["title"], "SSO");
        assert_eq!(answer["citations"][0]["source"], "kb");
        assert_eq!(answer["citations"][1]["url"], "knowledge/a.md");
        assert_eq!(answer["citations"][2]["url"], "knowledge/a.md");

        let mut wrong = json!({ "citations": [{ "source": "[3]", "quote": "" }] });
        let error = sources
            .resolve_citations(&mut wrong)
            .expect_err("[3] was not given");
        assert_eq!(error.cited, "[3]");
        assert!(error.to_string().contains("[1] to [2]"), "{error}");

        let mut none = json!({ "citations": [{ "source": "[1]", "quote": "" }] });
        Sources::default()
            .resolve_citations(&mut none)
            .expect("dropped");
        assert_eq!(none["citations"], json!([]));
    }

    #[test]
    fn prompt_numbers_the_sources_with_their_text() {
        let section = sources().prompt_section(true);
        assert!(
            section.contains("[1] Refunds (kb: knowledge/a.md)\n# Refunds\nRefunds take 5 days.")
        );
        assert!(section.contains("[2] SSO (kb: knowledge/b.md)"));
        assert!(section.contains("\"[1]\""));
        assert!(!sources().prompt_section(false).contains("citations"));
    }

    #[test]
    fn simulated_citations_are_deterministic_and_quote_the_documents() {
        let sources = sources();
        let mut one = json!({ "a": { "citations": [] }, "citations": [] });
        let mut two = one.clone();
        sources.simulate_citations(&mut one, &mut Rng::new(7, "step"));
        sources.simulate_citations(&mut two, &mut Rng::new(7, "step"));
        assert_eq!(one, two);
        for list in [&one["citations"], &one["a"]["citations"]] {
            let list = list.as_array().expect("a list");
            assert!(!list.is_empty());
            for citation in list {
                let url = citation["url"].as_str().expect("url");
                let document = sources
                    .documents
                    .iter()
                    .find(|d| d.location == url)
                    .expect("a real document");
                assert!(
                    document
                        .text
                        .contains(citation["quote"].as_str().expect("quote"))
                );
            }
        }
    }

    #[test]
    fn top_k_sends_the_passages_that_match_the_prompt() {
        let filler = "Unrelated text about office plants and lunch menus. ".repeat(20);
        let documents = vec![
            doc(
                "knowledge/a.md",
                &format!(
                    "# Handbook\n\n{filler}\n\nRefunds reach the card within ten business days of approval.\n\n{filler}"
                ),
            ),
            doc(
                "knowledge/b.md",
                &format!("# Other\n\n{filler}\n\nSSO needs an owner."),
            ),
        ];
        let retrieval = Retrieval {
            top_k: 2,
            chunk_tokens: 100,
        };
        let picked = retrieve(
            &documents,
            "How many days do refunds take to reach the card?",
            retrieval,
        );
        assert_eq!(picked.len(), 2);
        assert!(
            picked[0].text.contains("Refunds reach the card"),
            "{:?}",
            picked[0].text
        );
        assert_eq!(picked[0].location, "knowledge/a.md");
        assert!(picked[0].title.starts_with("Handbook (passage "));
        assert!(picked.iter().all(|p| p.text.len() <= 400 + 60));
        let again = retrieve(
            &documents,
            "How many days do refunds take to reach the card?",
            retrieval,
        );
        assert_eq!(picked, again, "deterministic");
    }

    #[test]
    fn passages_keep_paragraphs_and_split_long_ones() {
        let text = format!("one two\n\nthree four\n\n{}", "word ".repeat(50));
        let parts = passages(&text, 40);
        assert_eq!(parts[0], "one two\n\nthree four");
        assert!(parts[1..].iter().all(|p| p.len() <= 40 && !p.is_empty()));
        assert_eq!(parts[1..].join(" ").split_whitespace().count(), 50);
    }

    #[test]
    fn long_documents_are_cut_at_a_character_boundary() {
        let text = "é".repeat(MAX_DOCUMENT_BYTES);
        let (cut_text, was_cut) = cut(text);
        assert!(was_cut);
        assert!(cut_text.len() <= MAX_DOCUMENT_BYTES + CUT_MARK.len());
        assert!(cut_text.ends_with(CUT_MARK));
    }

    #[test]
    fn html_is_reduced_to_text() {
        let document = fetched_document(
            "reports",
            "https://x.test/r",
            "<html><head><title>State of Support</title><style>p{}</style></head><body><p>Tickets &amp; chats</p></body></html>",
            true,
        );
        assert_eq!(document.title, "State of Support");
        assert!(document.text.contains("Tickets & chats"));
        assert!(!document.text.contains("p{}"));
    }
}

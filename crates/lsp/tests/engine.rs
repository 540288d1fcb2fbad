//! Engine-level data-driven tests: each file under `tests/data/lsp/<feature>/` is a pack with
//! an optional `$0` cursor marker; the engine's answer is rendered readably and snapshotted
//! beside the cases (`tests/data/lsp/snapshots`). Adding a case is adding a file.

use std::fmt::Write;
use std::path::Path;
use std::str::FromStr;

use galaxy_lsp::Engine;
use galaxy_lsp::ls_types as lsp;

const MARKER: &str = "$0";

/// A test document: the text without the marker and the marker's position.
struct Case {
    text: String,
    cursor: lsp::Position,
    uri: lsp::Uri,
}

fn uri() -> lsp::Uri {
    lsp::Uri::from_str("file:///project/packs/demo.gx").expect("uri")
}

fn load(path: &Path) -> Case {
    let raw = std::fs::read_to_string(path).expect("read case");
    let offset = raw.find(MARKER).unwrap_or(0);
    let text = raw.replacen(MARKER, "", 1);
    let before = &text[..offset];
    let line = before.matches('\n').count() as u32;
    let column = before
        .rsplit('\n')
        .next()
        .unwrap_or("")
        .encode_utf16()
        .count() as u32;
    Case {
        text,
        cursor: lsp::Position {
            line,
            character: column,
        },
        uri: uri(),
    }
}

fn engine_for(case: &Case) -> Engine {
    let mut engine = Engine::new();
    engine.open(case.uri.clone(), 1, case.text.clone());
    engine
}

/// `3:4-3:9 `text`` for a range of the case's text.
fn show_range(text: &str, range: lsp::Range) -> String {
    let lines: Vec<&str> = text.split('\n').collect();
    let slice = if range.start.line == range.end.line {
        let line = lines.get(range.start.line as usize).copied().unwrap_or("");
        let units: Vec<u16> = line.encode_utf16().collect();
        let s = (range.start.character as usize).min(units.len());
        let e = (range.end.character as usize).min(units.len()).max(s);
        String::from_utf16_lossy(&units[s..e])
    } else {
        "…".to_string()
    };
    format!(
        "{}:{}-{}:{} `{}`",
        range.start.line + 1,
        range.start.character,
        range.end.line + 1,
        range.end.character,
        slice
    )
}

fn show_location(case: &Case, location: &lsp::Location) -> String {
    if location.uri == case.uri {
        show_range(&case.text, location.range)
    } else {
        let text = location
            .uri
            .as_str()
            .strip_prefix("galaxy-std:///")
            .and_then(|f| f.strip_suffix(".gx"))
            .and_then(dsl_check::stdlib::source)
            .unwrap_or("");
        format!(
            "{} {}",
            location.uri.as_str(),
            show_range(text, location.range)
        )
    }
}

fn apply(text: &str, edits: &[lsp::TextEdit]) -> String {
    let index = dsl_syntax::LineIndex::new(text);
    let mut edits: Vec<(usize, usize, &str)> = edits
        .iter()
        .map(|e| {
            let at = |p: lsp::Position| {
                index.offset(
                    text,
                    dsl_syntax::LineCol {
                        line: p.line,
                        character: p.character,
                    },
                ) as usize
            };
            (at(e.range.start), at(e.range.end), e.new_text.as_str())
        })
        .collect();
    edits.sort_by_key(|e| std::cmp::Reverse(e.0));
    let mut out = text.to_string();
    for (start, end, new_text) in edits {
        out.replace_range(start..end, new_text);
    }
    out
}

fn run(feature: &str, answer: impl Fn(&Case, &mut Engine) -> String) {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("../../../tests/data/lsp/snapshots");
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(|| {
        insta::glob!(
            "../../../tests/data/lsp",
            &format!("{feature}/*.gx"),
            |path| {
                let case = load(path);
                let mut engine = engine_for(&case);
                insta::assert_snapshot!(feature, answer(&case, &mut engine));
            }
        );
    });
}

#[test]
fn hover() {
    run("hover", |case, engine| {
        match engine.hover(&case.uri, case.cursor) {
            Some(hover) => {
                let lsp::HoverContents::Markup(markup) = hover.contents else {
                    return "unexpected hover contents".into();
                };
                let range = hover
                    .range
                    .map(|r| show_range(&case.text, r))
                    .unwrap_or_default();
                format!("{range}\n\n{}", markup.value)
            }
            None => "no hover".into(),
        }
    });
}

#[test]
fn completion() {
    run("completion", |case, engine| {
        let items = engine
            .completion(&case.uri, case.cursor)
            .unwrap_or_default();
        let mut out = String::new();
        for item in items {
            let kind = item.kind.map(|k| format!("{k:?}")).unwrap_or_default();
            let _ = writeln!(
                out,
                "{} [{}] {}",
                item.label,
                kind,
                item.detail.unwrap_or_default()
            );
        }
        if out.is_empty() {
            out.push_str("no completions");
        }
        out
    });
}

#[test]
fn definition() {
    run("definition", |case, engine| {
        match engine.definition(&case.uri, case.cursor) {
            Some(location) => show_location(case, &location),
            None => "no definition".into(),
        }
    });
}

#[test]
fn references() {
    run("references", |case, engine| {
        let mut out = String::new();
        for include in [true, false] {
            let _ = writeln!(out, "include declaration: {include}");
            for location in engine
                .references(&case.uri, case.cursor, include)
                .unwrap_or_default()
            {
                let _ = writeln!(out, "  {}", show_location(case, &location));
            }
        }
        out
    });
}

#[test]
fn rename() {
    run("rename", |case, engine| {
        let prepared = match engine.prepare_rename(&case.uri, case.cursor) {
            Some(lsp::PrepareRenameResponse::RangeWithPlaceholder { range, placeholder }) => {
                format!(
                    "prepare: {} placeholder `{placeholder}`",
                    show_range(&case.text, range)
                )
            }
            Some(other) => format!("prepare: {other:?}"),
            None => "prepare: nothing to rename".into(),
        };
        let result = match engine.rename(&case.uri, case.cursor, "renamed") {
            Ok(Some(edit)) => {
                let edits = edit
                    .changes
                    .and_then(|mut c| c.remove(&case.uri))
                    .unwrap_or_default();
                apply(&case.text, &edits)
            }
            Ok(None) => "no edit".into(),
            Err(error) => format!("error: {error}"),
        };
        let invalid = match engine.rename(&case.uri, case.cursor, "not a name") {
            Err(error) => format!("error: {error}"),
            Ok(_) => "accepted an invalid name".into(),
        };
        format!("{prepared}\ninvalid name: {invalid}\n\n{result}")
    });
}

#[test]
fn signature_help() {
    run("signature", |case, engine| {
        match engine.signature_help(&case.uri, case.cursor) {
            Some(help) => {
                let mut out = String::new();
                for signature in &help.signatures {
                    let _ = writeln!(out, "{}", signature.label);
                    for (i, parameter) in signature.parameters.iter().flatten().enumerate() {
                        let label = match &parameter.label {
                            lsp::ParameterLabel::LabelOffsets([s, e]) => signature
                                .label
                                .encode_utf16()
                                .skip(*s as usize)
                                .take((*e - *s) as usize)
                                .collect::<Vec<u16>>(),
                            lsp::ParameterLabel::Simple(s) => s.encode_utf16().collect(),
                        };
                        let active = if help.active_parameter == Some(i as u32) {
                            " <- active"
                        } else {
                            ""
                        };
                        let _ = writeln!(out, "  {}{active}", String::from_utf16_lossy(&label));
                    }
                }
                out
            }
            None => "no signature help".into(),
        }
    });
}

#[test]
fn code_actions() {
    run("actions", |case, engine| {
        let range = lsp::Range {
            start: case.cursor,
            end: case.cursor,
        };
        let actions = engine.code_actions(&case.uri, range).unwrap_or_default();
        let mut out = String::new();
        for action in actions {
            let codes: Vec<String> = action
                .diagnostics
                .iter()
                .flatten()
                .map(|d| format!("{:?}", d.code))
                .collect();
            let edits = action
                .edit
                .and_then(|e| e.changes)
                .and_then(|mut c| c.remove(&case.uri))
                .unwrap_or_default();
            let _ = writeln!(out, "## {} ({})\n", action.title, codes.join(", "));
            let fixed = apply(&case.text, &edits);
            let _ = writeln!(out, "{fixed}");
            let mut check = Engine::new();
            check.open(case.uri.clone(), 1, fixed);
            let remaining: Vec<String> = check
                .diagnostics(&case.uri)
                .into_iter()
                .map(|d| format!("{:?} {}", d.code, d.message))
                .collect();
            let _ = writeln!(out, "diagnostics after the fix: {remaining:?}\n");
        }
        if out.is_empty() {
            out.push_str("no code actions");
        }
        out
    });
}

#[test]
fn document_symbols() {
    fn render(out: &mut String, case: &Case, symbols: &[lsp::DocumentSymbol], depth: usize) {
        for symbol in symbols {
            let _ = writeln!(
                out,
                "{}{} {:?} {} {}",
                "  ".repeat(depth),
                symbol.name,
                symbol.kind,
                symbol.detail.clone().unwrap_or_default(),
                show_range(&case.text, symbol.selection_range)
            );
            render(
                out,
                case,
                symbol.children.as_deref().unwrap_or(&[]),
                depth + 1,
            );
        }
    }
    run("symbols", |case, engine| {
        let mut out = String::new();
        render(
            &mut out,
            case,
            &engine.document_symbols(&case.uri).unwrap_or_default(),
            0,
        );
        out
    });
}

#[test]
fn folding_ranges() {
    run("folding", |case, engine| {
        let lines: Vec<&str> = case.text.split('\n').collect();
        let mut out = String::new();
        for range in engine.folding_ranges(&case.uri).unwrap_or_default() {
            let _ = writeln!(
                out,
                "{}-{} {:?}: {}",
                range.start_line + 1,
                range.end_line + 1,
                range.kind,
                lines
                    .get(range.start_line as usize)
                    .copied()
                    .unwrap_or("")
                    .trim()
            );
        }
        out
    });
}

#[test]
fn semantic_tokens() {
    run("tokens", |case, engine| {
        let tokens = engine.semantic_tokens(&case.uri).expect("tokens");
        let (mut line, mut start) = (0u32, 0u32);
        let mut out = String::new();
        for token in tokens.data {
            if token.delta_line > 0 {
                line += token.delta_line;
                start = token.delta_start;
            } else {
                start += token.delta_start;
            }
            let range = lsp::Range {
                start: lsp::Position {
                    line,
                    character: start,
                },
                end: lsp::Position {
                    line,
                    character: start + token.length,
                },
            };
            let kind = galaxy_lsp::engine::SEMANTIC_TOKEN_TYPES
                .get(token.token_type as usize)
                .map(|t| t.as_str())
                .unwrap_or("?");
            let _ = writeln!(
                out,
                "{} {kind} {}",
                show_range(&case.text, range),
                token.token_modifiers_bitset
            );
        }
        out
    });
}

#[test]
fn inlay_hints() {
    run("inlay", |case, engine| {
        let whole = lsp::Range {
            start: lsp::Position {
                line: 0,
                character: 0,
            },
            end: lsp::Position {
                line: u32::MAX,
                character: 0,
            },
        };
        let mut out = String::new();
        for hint in engine.inlay_hints(&case.uri, whole).unwrap_or_default() {
            let lsp::InlayHintLabel::String(label) = hint.label else {
                continue;
            };
            let _ = writeln!(
                out,
                "{}:{} {label}",
                hint.position.line + 1,
                hint.position.character
            );
        }
        out
    });
}

#[test]
fn formatting() {
    run("formatting", |case, engine| {
        match engine.formatting(&case.uri) {
            Some(edits) if edits.is_empty() => "already formatted".into(),
            Some(edits) => {
                let formatted = apply(&case.text, &edits);
                assert_eq!(
                    Ok(formatted.clone()),
                    dsl_syntax::format::format(&case.text),
                    "the LSP formats exactly like `galaxy fmt`"
                );
                formatted
            }
            None => "cannot format (syntax errors)".into(),
        }
    });
}

/// Diagnostics are exactly `galaxy check`'s: same codes, messages, ranges and severities.
#[test]
fn diagnostics_match_the_checker() {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/data/lsp/actions/misspelled_step.gx"),
    )
    .expect("read")
    .replace(MARKER, "");
    let mut engine = Engine::new();
    engine.open(uri(), 1, text.clone());
    let ours = engine.diagnostics(&uri());
    let theirs = dsl_check::check(&text, &dsl_check::NoFiles).diagnostics;
    assert_eq!(ours.len(), theirs.len());
    assert!(!ours.is_empty());
    let index = dsl_syntax::LineIndex::new(&text);
    for (ours, theirs) in ours.iter().zip(&theirs) {
        assert_eq!(
            ours.code,
            Some(lsp::NumberOrString::String(theirs.code.to_string()))
        );
        assert_eq!(ours.message, theirs.message);
        let start = index.line_col(&text, theirs.span.start);
        assert_eq!(
            (ours.range.start.line, ours.range.start.character),
            (start.line, start.character)
        );
    }
}

/// Incremental edits in UTF-16 units land on the right bytes, and each version is analysed
/// once however many requests it serves.
#[test]
fn incremental_sync_and_one_analysis_per_version() {
    let mut engine = Engine::new();
    let text = "pack p {\n  language \"0.1\"\n  /// é😀\n  flow {\n    step a = 1\n  }\n  outcome success when a > 0\n}\n";
    engine.open(uri(), 1, text.to_string());
    let position = lsp::Position {
        line: 4,
        character: 9,
    };
    assert!(engine.hover(&uri(), position).is_some());
    assert!(engine.completion(&uri(), position).is_some());
    engine.document_symbols(&uri());
    assert_eq!(engine.analysis_count(), 1);
    // Replace `é😀` (3 UTF-16 units) with `x`, then rename the step by an edit.
    let change = |line, from, to, new: &str| lsp::TextDocumentContentChangeEvent {
        range: Some(lsp::Range {
            start: lsp::Position {
                line,
                character: from,
            },
            end: lsp::Position {
                line,
                character: to,
            },
        }),
        range_length: None,
        text: new.to_string(),
    };
    engine
        .change(&uri(), 2, vec![change(2, 6, 9, "x"), change(4, 9, 10, "b")])
        .expect("change");
    assert_eq!(
        engine.text(&uri()),
        Some(
            "pack p {\n  language \"0.1\"\n  /// x\n  flow {\n    step b = 1\n  }\n  outcome success when a > 0\n}\n"
        )
    );
    let diagnostics = engine.diagnostics(&uri());
    assert!(
        diagnostics.iter().any(|d| d.message.contains("`a`")),
        "{diagnostics:?}"
    );
    engine.hover(&uri(), position);
    assert_eq!(engine.analysis_count(), 2);
}

/// A panic inside the engine is the server's business (it catches it); the engine itself
/// stays usable afterwards.
#[test]
fn engine_survives_a_panicking_request() {
    let mut engine = Engine::new();
    engine.open(uri(), 1, "pack p {\n}\n".into());
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| engine.debug_panic()));
    assert!(result.is_err());
    assert!(engine.document_symbols(&uri()).is_some());
}

/// `galaxy/graph`: the graph JSON of the document, from the cached analysis.
#[test]
fn graph() {
    run("graph", |case, engine| {
        let graph = engine.graph(&case.uri).expect("graph of an open document");
        assert_eq!(engine.analysis_count(), 1, "the graph reuses the analysis");
        assert_eq!(
            graph,
            dsl_check::graph::export(&dsl_check::check(&case.text, &dsl_check::NoFiles)),
            "the same graph as `galaxy graph export`"
        );
        // A summary (the full JSON is `dsl-check`'s to snapshot): nodes, edges, layout.
        let mut out = format!("pack {} (graph version {})\n", graph.pack, graph.version);
        for node in &graph.nodes {
            let range = node
                .range
                .map(|r| {
                    format!(
                        "{}:{}-{}:{}",
                        r.start_line + 1,
                        r.start_character,
                        r.end_line + 1,
                        r.end_character
                    )
                })
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "node {} {:?} -> {} {} {}",
                node.id,
                node.kind,
                node.output,
                node.tool
                    .as_deref()
                    .or(node.agent.as_deref())
                    .unwrap_or("-"),
                range
            );
        }
        for edge in &graph.edges {
            let _ = writeln!(
                out,
                "edge {} -> {} field `{}` into `{}`",
                edge.from, edge.to, edge.field, edge.target
            );
        }
        let _ = writeln!(out, "layout ({:?}):", graph.layout_source);
        for (id, p) in &graph.layout {
            let _ = writeln!(out, "  {id}: ({}, {})", p.x, p.y);
        }
        out
    });
}

/// `galaxy/graphEdit`: each case carries its ops in a first `// ops: [...]` line; the answer
/// is one versioned `TextDocumentEdit` whose UTF-16 edits give the same text as the
/// checker's byte edits, or a refusal.
#[test]
fn graph_edit() {
    run("graph_edit", |case, engine| {
        let ops_line = case.text.lines().next().unwrap_or("");
        let ops: Vec<dsl_check::graph::GraphOp> =
            serde_json::from_str(ops_line.strip_prefix("// ops:").unwrap_or("[]").trim())
                .expect("ops line");
        match engine.graph_edit(&case.uri, 1, &ops) {
            Err(error) => format!("refused: {error}"),
            Ok(answer) => {
                assert!(answer.edit.changes.is_none());
                let Some(lsp::DocumentChanges::Edits(documents)) = answer.edit.document_changes
                else {
                    return "unexpected document changes".into();
                };
                assert_eq!(documents.len(), 1, "exactly one TextDocumentEdit");
                let document = &documents[0];
                assert_eq!(document.text_document.uri, case.uri);
                assert_eq!(document.text_document.version, Some(1));
                let edits: Vec<lsp::TextEdit> = document
                    .edits
                    .iter()
                    .map(|e| match e {
                        lsp::OneOf::Left(edit) => edit.clone(),
                        lsp::OneOf::Right(annotated) => annotated.text_edit.clone(),
                    })
                    .collect();
                let applied = apply(&case.text, &edits);
                let expected = dsl_check::graph::apply(&case.text, &ops, &dsl_check::NoFiles)
                    .expect("the checker accepts what the engine accepted");
                assert_eq!(
                    applied,
                    dsl_check::graph::apply_text_edits(&case.text, &expected.edits),
                    "UTF-16 ranges land on the checker's bytes"
                );
                let mut out = String::new();
                for edit in &edits {
                    let _ = writeln!(
                        out,
                        "edit {} -> {:?}",
                        show_range(&case.text, edit.range),
                        edit.new_text
                    );
                }
                let _ = writeln!(
                    out,
                    "changed: {}",
                    serde_json::to_string(&answer.changed).expect("json")
                );
                let _ = writeln!(out, "\n{applied}");
                out
            }
        }
    });
}

/// A graph edit against any version but the current one is refused and changes nothing;
/// applying an accepted edit is the client's business (the engine's text is unchanged
/// until `didChange`).
#[test]
fn graph_edit_against_a_stale_version_is_refused() {
    let mut engine = Engine::new();
    let text = "pack p {\n  language \"0.1\"\n  flow {\n    step a = 1\n  }\n}\n";
    engine.open(uri(), 3, text.to_string());
    let ops = vec![dsl_check::graph::GraphOp::Move {
        id: "a".into(),
        x: 1.0,
        y: 2.0,
    }];
    for stale in [2, 4] {
        assert_eq!(
            engine.graph_edit(&uri(), stale, &ops),
            Err(galaxy_lsp::EngineError::StaleVersion {
                requested: stale,
                current: 3
            })
        );
    }
    assert_eq!(engine.text(&uri()), Some(text));
    let answer = engine.graph_edit(&uri(), 3, &ops).expect("current version");
    assert!(answer.edit.document_changes.is_some());
    assert_eq!(
        engine.text(&uri()),
        Some(text),
        "the client applies the edit"
    );
    let unknown = lsp::Uri::from_str("file:///project/packs/other.gx").expect("uri");
    assert!(matches!(
        engine.graph(&unknown),
        Err(galaxy_lsp::EngineError::UnknownDocument(_))
    ));
}

#[allow(dead_code)]
#[path = "../../dsl-check/benches/generate.rs"]
mod generate;

/// On the benchmark's 10k-line pack, after random incremental edits (typing, deleting,
/// breaking and repairing lines), the engine's diagnostics are exactly `galaxy check`'s.
#[test]
fn diagnostics_equal_the_checker_on_a_10k_line_pack_after_random_edits() {
    let text = generate::workload(10_000).pack;
    let mut engine = Engine::new();
    engine.open(uri(), 0, text.clone());
    let mut shadow = text;
    let mut seed: u64 = 7;
    let mut next = |below: usize| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((seed >> 33) as usize) % below.max(1)
    };
    let inserts = ["x", " ", "(", "}", "step", "\n", "\"", "."];
    for version in 1..=6 {
        // A random edit at a random char boundary: insert a snippet or delete a few bytes.
        let mut at = next(shadow.len());
        while !shadow.is_char_boundary(at) {
            at -= 1;
        }
        let mut end = at;
        let new_text = if next(2) == 0 {
            inserts[next(inserts.len())].to_string()
        } else {
            end = (at + 1 + next(4)).min(shadow.len());
            while !shadow.is_char_boundary(end) {
                end += 1;
            }
            String::new()
        };
        let index = dsl_syntax::LineIndex::new(&shadow);
        let position = |offset: usize| {
            let lc = index.line_col(&shadow, offset as u32);
            lsp::Position {
                line: lc.line,
                character: lc.character,
            }
        };
        let range = lsp::Range {
            start: position(at),
            end: position(end),
        };
        engine
            .change(
                &uri(),
                version,
                vec![lsp::TextDocumentContentChangeEvent {
                    range: Some(range),
                    range_length: None,
                    text: new_text.clone(),
                }],
            )
            .expect("change");
        shadow.replace_range(at..end, &new_text);
        assert_eq!(engine.text(&uri()), Some(shadow.as_str()));
        let ours = engine.diagnostics(&uri());
        let theirs = dsl_check::check(&shadow, &dsl_check::NoFiles).diagnostics;
        let index = dsl_syntax::LineIndex::new(&shadow);
        let expected: Vec<(String, String, u32, u32, u32, u32)> = theirs
            .iter()
            .map(|d| {
                let s = index.line_col(&shadow, d.span.start);
                let e = index.line_col(&shadow, d.span.end);
                (
                    d.code.to_string(),
                    d.message.clone(),
                    s.line,
                    s.character,
                    e.line,
                    e.character,
                )
            })
            .collect();
        let actual: Vec<(String, String, u32, u32, u32, u32)> = ours
            .iter()
            .map(|d| {
                let code = match &d.code {
                    Some(lsp::NumberOrString::String(code)) => code.clone(),
                    _ => String::new(),
                };
                (
                    code,
                    d.message.clone(),
                    d.range.start.line,
                    d.range.start.character,
                    d.range.end.line,
                    d.range.end.character,
                )
            })
            .collect();
        assert_eq!(actual, expected, "version {version}");
    }
}

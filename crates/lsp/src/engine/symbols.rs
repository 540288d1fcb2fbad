//! The outline (document symbols), folding ranges and inlay hints: views of the syntax tree
//! annotated with the checker's step types.

use dsl_check::program::FileRef;
use dsl_check::ty::Ty;
use dsl_syntax::ast::{Field, Item, TypeDeclBody, UseTarget};
use dsl_syntax::{Span, TokenKind};
use tower_lsp_server::ls_types as lsp;

use super::Snapshot;

#[allow(deprecated)] // `DocumentSymbol::deprecated` must be written, as `None`.
fn symbol(
    snapshot: &Snapshot<'_>,
    name: &str,
    detail: Option<String>,
    kind: lsp::SymbolKind,
    span: Span,
    name_span: Span,
    children: Vec<lsp::DocumentSymbol>,
) -> lsp::DocumentSymbol {
    lsp::DocumentSymbol {
        name: if name.is_empty() {
            "?".to_string()
        } else {
            name.to_string()
        },
        detail,
        kind,
        tags: None,
        deprecated: None,
        range: snapshot.doc.range(span),
        selection_range: snapshot.doc.range(name_span),
        children: (!children.is_empty()).then_some(children),
    }
}

fn fields(
    snapshot: &Snapshot<'_>,
    fields: &[Field],
    kind: lsp::SymbolKind,
) -> Vec<lsp::DocumentSymbol> {
    fields
        .iter()
        .map(|f| {
            let ty = f.ty.span.text(snapshot.text()).to_string();
            symbol(
                snapshot,
                &f.name.name,
                Some(ty),
                kind,
                f.span,
                f.name.span,
                Vec::new(),
            )
        })
        .collect()
}

/// The outline: one symbol per item, with steps, fields and parameters as children.
pub(crate) fn document_symbols(snapshot: &Snapshot<'_>) -> Vec<lsp::DocumentSymbol> {
    let program = &snapshot.analysis.program;
    let text = snapshot.text();
    let keyword =
        |span: Span, word: &str| Span::new(span.start as usize, span.start as usize + word.len());
    let mut out = Vec::new();
    for item in &snapshot.analysis.parse.file.items {
        let symbol = match item {
            Item::Meta(_) | Item::Error(_) => continue,
            Item::Use(u) => {
                let (name, span) = match (&u.alias, &u.target) {
                    (Some(alias), _) => (alias.name.clone(), alias.span),
                    (None, UseTarget::Module(path)) => match path.last() {
                        Some(last) => (last.name.clone(), last.span),
                        None => continue,
                    },
                    (None, UseTarget::File(file)) => (file.span.text(text).to_string(), file.span),
                };
                symbol(
                    snapshot,
                    &name,
                    Some(u.span.text(text).to_string()),
                    lsp::SymbolKind::MODULE,
                    u.span,
                    span,
                    Vec::new(),
                )
            }
            Item::Input(input) => symbol(
                snapshot,
                "input",
                None,
                lsp::SymbolKind::NAMESPACE,
                input.span,
                keyword(input.span, "input"),
                fields(snapshot, &input.fields, lsp::SymbolKind::FIELD),
            ),
            Item::Type(t) => {
                let children = match &t.body {
                    TypeDeclBody::Record(fs) => fields(snapshot, fs, lsp::SymbolKind::FIELD),
                    TypeDeclBody::Alias(_) => Vec::new(),
                };
                symbol(
                    snapshot,
                    &t.name.name,
                    None,
                    lsp::SymbolKind::STRUCT,
                    t.span,
                    t.name.span,
                    children,
                )
            }
            Item::Model(m) => symbol(
                snapshot,
                &m.name.name,
                Some(m.provider.span.text(text).to_string()),
                lsp::SymbolKind::CONSTANT,
                m.span,
                m.name.span,
                Vec::new(),
            ),
            Item::Knowledge(k) => symbol(
                snapshot,
                &k.name.name,
                Some(k.source.span.text(text).to_string()),
                lsp::SymbolKind::FILE,
                k.span,
                k.name.span,
                Vec::new(),
            ),
            Item::Agent(a) => symbol(
                snapshot,
                &a.name.name,
                Some("agent".into()),
                lsp::SymbolKind::CLASS,
                a.span,
                a.name.span,
                Vec::new(),
            ),
            Item::Tool(t) => symbol(
                snapshot,
                &t.name.name,
                t.result
                    .as_ref()
                    .map(|r| format!("-> {}", r.span.text(text))),
                lsp::SymbolKind::FUNCTION,
                t.span,
                t.name.span,
                fields(snapshot, &t.params, lsp::SymbolKind::VARIABLE),
            ),
            Item::Flow(flow) => {
                let steps = flow
                    .steps
                    .iter()
                    .map(|s| {
                        let ty = program
                            .step(&s.name.name)
                            .filter(|info| info.def.span == s.name.span)
                            .map(|info| info.ty.to_string());
                        symbol(
                            snapshot,
                            &s.name.name,
                            ty,
                            lsp::SymbolKind::EVENT,
                            s.span,
                            s.name.span,
                            Vec::new(),
                        )
                    })
                    .collect();
                symbol(
                    snapshot,
                    "flow",
                    None,
                    lsp::SymbolKind::NAMESPACE,
                    flow.span,
                    keyword(flow.span, "flow"),
                    steps,
                )
            }
            Item::Policy(p) => symbol(
                snapshot,
                "policy",
                None,
                lsp::SymbolKind::NAMESPACE,
                p.span,
                keyword(p.span, "policy"),
                Vec::new(),
            ),
            Item::Outcome(o) => symbol(
                snapshot,
                "outcome",
                None,
                lsp::SymbolKind::BOOLEAN,
                o.span,
                keyword(o.span, "outcome"),
                Vec::new(),
            ),
            Item::Kpi(k) => symbol(
                snapshot,
                &k.name.name,
                Some("kpi".into()),
                lsp::SymbolKind::NUMBER,
                k.span,
                k.name.span,
                Vec::new(),
            ),
            Item::Eval(e) => symbol(
                snapshot,
                &e.name.span.text(text).replace('"', ""),
                Some("eval".into()),
                lsp::SymbolKind::METHOD,
                e.span,
                e.name.span,
                Vec::new(),
            ),
            Item::Layout(l) => symbol(
                snapshot,
                "layout",
                None,
                lsp::SymbolKind::NAMESPACE,
                l.span,
                keyword(l.span, "layout"),
                Vec::new(),
            ),
        };
        out.push(symbol);
    }
    out
}

fn fold(
    snapshot: &Snapshot<'_>,
    span: Span,
    kind: Option<lsp::FoldingRangeKind>,
) -> Option<lsp::FoldingRange> {
    let start = snapshot.doc.position(span.start);
    let end = snapshot.doc.position(span.end);
    (end.line > start.line).then_some(lsp::FoldingRange {
        start_line: start.line,
        start_character: None,
        end_line: end.line,
        end_character: None,
        kind,
        collapsed_text: None,
    })
}

/// Folding ranges: multi-line items and steps, and runs of two or more comment lines.
pub(crate) fn folding_ranges(snapshot: &Snapshot<'_>) -> Vec<lsp::FoldingRange> {
    let mut out = Vec::new();
    for item in &snapshot.analysis.parse.file.items {
        out.extend(fold(snapshot, item.span(), None));
        if let Item::Flow(flow) = item {
            for step in &flow.steps {
                out.extend(fold(snapshot, step.span, None));
            }
        }
    }
    // Comment runs.
    let mut run: Option<Span> = None;
    let mut last_line = u32::MAX;
    for token in &snapshot.analysis.parse.tokens {
        match token.kind {
            TokenKind::LineComment | TokenKind::DocComment => {
                let line = snapshot.doc.position(token.span.start).line;
                run = match run {
                    Some(span) if line == last_line.wrapping_add(1) => Some(span.cover(token.span)),
                    other => {
                        if let Some(span) = other {
                            out.extend(fold(snapshot, span, Some(lsp::FoldingRangeKind::Comment)));
                        }
                        Some(token.span)
                    }
                };
                last_line = line;
            }
            TokenKind::Whitespace => {}
            _ => {
                if let Some(span) = run.take() {
                    out.extend(fold(snapshot, span, Some(lsp::FoldingRangeKind::Comment)));
                }
            }
        }
    }
    if let Some(span) = run {
        out.extend(fold(snapshot, span, Some(lsp::FoldingRangeKind::Comment)));
    }
    out.sort_by_key(|f| (f.start_line, f.end_line));
    out
}

/// Inlay hints: `: Type` after each step's name, for the steps whose name lies in `range`.
pub(crate) fn inlay_hints(snapshot: &Snapshot<'_>, range: lsp::Range) -> Vec<lsp::InlayHint> {
    let start = snapshot.doc.offset(range.start);
    let end = snapshot.doc.offset(range.end);
    snapshot
        .analysis
        .program
        .steps
        .iter()
        .filter(|s| {
            s.def.file == FileRef::Main && s.def.span.start >= start && s.def.span.end <= end
        })
        .filter(|s| !matches!(s.ty, Ty::Error))
        .map(|s| lsp::InlayHint {
            position: snapshot.doc.position(s.def.span.end),
            label: lsp::InlayHintLabel::String(format!(": {}", s.ty)),
            kind: Some(lsp::InlayHintKind::TYPE),
            text_edits: None,
            tooltip: None,
            padding_left: None,
            padding_right: None,
            data: None,
        })
        .collect()
}

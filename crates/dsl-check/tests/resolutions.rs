//! The resolution table the language server relies on: hover (kind, type), go-to-definition
//! (definition site and file), references, and completeness (every name in the example packs
//! resolves).

use std::path::Path;

use dsl_check::program::{FileRef, SymbolKind};
use dsl_syntax::ast::{Action, Expr, ExprKind, Item, StrPart};

const PACK: &str = r#"pack demo {
  language "0.1"
  use std.mail

  input {
    since: Duration = 24h
  }

  /// What the triager decides.
  type Triage {
    category: "billing" | "bug"
    summary: String
  }

  model fast = openai("gpt-4.1-mini")

  agent triager {
    model: fast
  }

  flow {
    /// Unread mail.
    step inbox = mail.search(query: "is:unread", since: input.since)
    step triage = map msg in inbox.messages {
      ask triager -> Triage { prompt: "{msg.subject}" }
    }
    step billing = map t in triage where t.category == "billing" { t.summary }
  }

  kpi share = count(billing) / count(triage)

  layout {
    triage: (0, 0)
  }
}
"#;

fn offset_of(needle: &str, nth: usize) -> u32 {
    let mut from = 0;
    for _ in 0..nth {
        from = PACK[from..].find(needle).map(|i| from + i + 1).unwrap_or(0);
    }
    let index = PACK[from..]
        .find(needle)
        .map(|i| from + i)
        .unwrap_or(usize::MAX);
    assert!(index != usize::MAX, "{needle} not found");
    index as u32
}

fn analysis() -> dsl_check::Analysis {
    let analysis = dsl_check::check(PACK, &dsl_check::NoFiles);
    assert!(
        analysis.diagnostics.is_empty(),
        "{:?}",
        analysis.diagnostics
    );
    analysis
}

#[test]
fn hover_and_definition_of_a_step() {
    let analysis = analysis();
    let program = &analysis.program;
    let use_site = offset_of("inbox.messages", 0);
    let Some(resolution) = program.resolution_at(use_site + 2) else {
        panic!("no resolution")
    };
    assert_eq!(resolution.kind, SymbolKind::Step);
    assert_eq!(resolution.ty.to_string(), "mail.SearchResult");
    let Some(def) = &resolution.def else {
        panic!("no definition")
    };
    assert_eq!(def.file, FileRef::Main);
    assert_eq!(def.span.text(PACK), "inbox");
    assert_eq!(def.span.start, offset_of("inbox =", 0));
    assert_eq!(
        program.step("inbox").and_then(|s| s.doc.clone()).as_deref(),
        Some("Unread mail.")
    );
}

#[test]
fn fields_tools_and_modules_point_into_the_stdlib() {
    let analysis = analysis();
    let program = &analysis.program;
    let field = program.resolution_at(offset_of("messages {", 0) + 1);
    assert!(field.is_some_and(|r| {
        r.kind == SymbolKind::Field
            && r.def
                .as_ref()
                .is_some_and(|d| d.file == FileRef::Std("mail"))
    }));
    let tool = program.resolution_at(offset_of("search(", 0) + 1);
    assert!(tool.is_some_and(|r| {
        r.kind == SymbolKind::Tool
            && r.def
                .as_ref()
                .is_some_and(|d| d.file == FileRef::Std("mail"))
    }));
    let module = program.resolution_at(offset_of("mail.search", 0) + 1);
    assert!(module.is_some_and(|r| r.kind == SymbolKind::Module));
    let param = program.resolution_at(offset_of("query:", 0) + 1);
    assert!(param.is_some_and(|r| r.kind == SymbolKind::Param));
}

#[test]
fn locals_inputs_types_agents_models() {
    let analysis = analysis();
    let program = &analysis.program;
    let var = program.resolution_at(offset_of("msg.subject", 0) + 1);
    assert!(
        var.is_some_and(|r| r.kind == SymbolKind::LoopVar && r.ty.to_string() == "mail.Message")
    );
    let input = program.resolution_at(offset_of("input.since", 0) + 7);
    assert!(input.is_some_and(|r| r.kind == SymbolKind::Input && r.ty.to_string() == "Duration"));
    let ty = program.resolution_at(offset_of("-> Triage", 0) + 4);
    assert!(ty.is_some_and(|r| {
        r.kind == SymbolKind::Type
            && r.def
                .as_ref()
                .is_some_and(|d| d.span.text(PACK) == "Triage")
    }));
    let agent = program.resolution_at(offset_of("ask triager", 0) + 5);
    assert!(agent.is_some_and(|r| r.kind == SymbolKind::Agent));
    let model = program.resolution_at(offset_of("model: fast", 0) + 8);
    assert!(model.is_some_and(|r| r.kind == SymbolKind::Model));
    let ask_field = program.resolution_at(offset_of("t.category", 0) + 3);
    assert!(ask_field.is_some_and(
        |r| r.kind == SymbolKind::Field && r.ty.to_string() == "\"billing\" | \"bug\""
    ));
    assert_eq!(
        program.types.first().and_then(|t| t.doc.clone()).as_deref(),
        Some("What the triager decides.")
    );
}

#[test]
fn references_of_a_step_include_every_use() {
    let analysis = analysis();
    let program = &analysis.program;
    let Some(def) = program.step("triage").map(|s| s.def.clone()) else {
        panic!("no triage")
    };
    let spans: Vec<&str> = program
        .references(&def)
        .map(|r| r.span.text(PACK))
        .collect();
    // The definition, `map t in triage`, `count(triage)` and the layout entry.
    assert_eq!(spans, vec!["triage", "triage", "triage", "triage"]);
    assert_eq!(
        program.references(&def).filter(|r| r.is_definition).count(),
        1
    );
}

fn names_in_expr<'a>(expr: &'a Expr, out: &mut Vec<&'a Expr>) {
    match &expr.kind {
        ExprKind::Name(_) => out.push(expr),
        ExprKind::Field(base, _) => names_in_expr(base, out),
        ExprKind::Index(base, index) => {
            names_in_expr(base, out);
            names_in_expr(index, out);
        }
        ExprKind::Call(callee, args) => {
            names_in_expr(callee, out);
            for arg in args {
                names_in_expr(&arg.value, out);
            }
        }
        ExprKind::List(items) => items.iter().for_each(|i| names_in_expr(i, out)),
        ExprKind::Record(props) => props.iter().for_each(|p| names_in_expr(&p.value, out)),
        ExprKind::Unary(_, operand) => names_in_expr(operand, out),
        ExprKind::Binary(_, left, right) => {
            names_in_expr(left, out);
            names_in_expr(right, out);
        }
        ExprKind::Str(lit) => {
            for part in &lit.parts {
                if let StrPart::Hole(hole) = part {
                    names_in_expr(hole, out);
                }
            }
        }
        _ => {}
    }
}

fn names_in_action<'a>(action: &'a Action, out: &mut Vec<&'a Expr>) {
    match action {
        Action::Expr(expr) => names_in_expr(expr, out),
        Action::Ask(ask) => ask.props.iter().for_each(|p| names_in_expr(&p.value, out)),
        Action::Map(map) => {
            names_in_expr(&map.source, out);
            map.filter.iter().for_each(|f| names_in_expr(f, out));
            names_in_action(&map.body, out);
        }
        Action::When(when) => {
            names_in_expr(&when.cond, out);
            names_in_action(&when.then, out);
            when.otherwise.iter().for_each(|o| names_in_action(o, out));
        }
        Action::Route(route) => route
            .props
            .iter()
            .for_each(|p| names_in_expr(&p.value, out)),
        Action::Review(review) => {
            names_in_expr(&review.until, out);
            names_in_action(&review.body, out);
        }
        Action::Approve(approve) => names_in_expr(&approve.message, out),
        Action::Error(_) => {}
    }
}

#[test]
fn every_name_in_the_example_flows_resolves() {
    let packs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../packs");
    let mut checked = 0;
    for entry in std::fs::read_dir(&packs).into_iter().flatten().flatten() {
        for file in std::fs::read_dir(entry.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let path = file.path();
            if path.extension().is_none_or(|e| e != "gx") {
                continue;
            }
            let source = std::fs::read_to_string(&path).unwrap_or_default();
            let analysis = dsl_check::check(&source, &dsl_check::NoFiles);
            let mut names = Vec::new();
            for item in &analysis.parse.file.items {
                match item {
                    Item::Flow(flow) => flow
                        .steps
                        .iter()
                        .for_each(|s| names_in_action(&s.action, &mut names)),
                    Item::Outcome(outcome) => names_in_expr(&outcome.cond, &mut names),
                    Item::Kpi(kpi) => names_in_expr(&kpi.expr, &mut names),
                    _ => {}
                }
            }
            for name in names {
                let found = analysis
                    .program
                    .resolutions
                    .iter()
                    .any(|r| r.span == name.span);
                assert!(
                    found,
                    "{}: `{}` at {:?} has no resolution",
                    path.display(),
                    name.span.text(&source),
                    name.span
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 100, "only {checked} names checked");
}

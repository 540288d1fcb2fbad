//! Data-driven checker tests: every `tests/data/check/*.gx` case is checked and its
//! diagnostics are snapshotted as a plain-text report; every `tests/data/check/ok/*.gx`
//! must check clean; every code in [`dsl_check::CODES`] has a case whose report shows it.

use std::path::{Path, PathBuf};

use dsl_check::World;

/// Project files next to the case (imports are relative to the pack's directory).
struct DirWorld(PathBuf);

impl World for DirWorld {
    fn read_file(&self, path: &str) -> Option<String> {
        std::fs::read_to_string(self.0.join(path)).ok()
    }
}

fn check_path(path: &Path) -> (String, dsl_check::Analysis) {
    let source = std::fs::read_to_string(path).unwrap_or_default();
    let world = DirWorld(path.parent().map(Path::to_path_buf).unwrap_or_default());
    let analysis = dsl_check::check(&source, &world);
    (source, analysis)
}

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/check")
}

#[test]
fn diagnostics() {
    insta::glob!("../../../tests/data/check", "*.gx", |path| {
        let (source, analysis) = check_path(path);
        insta::assert_snapshot!(dsl_check::render::plain(&source, &analysis.diagnostics));
    });
}

#[test]
fn clean_packs_have_no_diagnostics() {
    let mut count = 0;
    for entry in std::fs::read_dir(data_dir().join("ok"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "gx") {
            continue;
        }
        count += 1;
        let (source, analysis) = check_path(&path);
        assert!(
            analysis.diagnostics.is_empty(),
            "{}:\n{}",
            path.display(),
            dsl_check::render::plain(&source, &analysis.diagnostics)
        );
        assert!(
            dsl_check::lower(&analysis).is_some(),
            "{} has no plan",
            path.display()
        );
    }
    assert!(count > 0, "no clean cases found");
}

#[test]
fn every_code_has_a_case_that_reports_it() {
    let dir = data_dir();
    for (code, _) in dsl_check::CODES {
        let case = std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(code) && n.ends_with(".gx"))
            });
        let Some(case) = case else {
            panic!("no case file for {code} in {}", dir.display())
        };
        let (_, analysis) = check_path(&case);
        assert!(
            analysis.diagnostics.iter().any(|d| d.code == *code),
            "{} does not report {code}: {:?}",
            case.display(),
            analysis
                .diagnostics
                .iter()
                .map(|d| d.code)
                .collect::<Vec<_>>()
        );
    }
}

#[test]
fn every_reported_code_is_registered() {
    insta::glob!("../../../tests/data/check", "*.gx", |path| {
        let (_, analysis) = check_path(path);
        for diagnostic in &analysis.diagnostics {
            let syntax = diagnostic.code < "GX0100";
            assert!(
                syntax || dsl_check::codes::summary(diagnostic.code).is_some(),
                "{} is not in CODES",
                diagnostic.code
            );
        }
    });
}

#[test]
fn fixes_apply_cleanly() {
    // Applying a misspelling fix removes that diagnostic.
    let source = "pack demo {\n  language \"0.1\"\n  use std.mail\n  flow {\n    step inbox = mail.serch(query: \"x\")\n  }\n}\n";
    let analysis = dsl_check::check(source, &dsl_check::NoFiles);
    let fix = analysis.diagnostics.iter().find_map(|d| d.fix.clone());
    let Some(fix) = fix else { panic!("no fix") };
    let mut fixed = source.to_string();
    for edit in fix.edits.iter().rev() {
        fixed.replace_range(edit.span.range(), &edit.new_text);
    }
    let again = dsl_check::check(&fixed, &dsl_check::NoFiles);
    assert!(again.diagnostics.is_empty(), "{:?}", again.diagnostics);
}

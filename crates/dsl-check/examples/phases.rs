//! Times the front-end phases on one file (a development aid):
//! `cargo run --release -p dsl-check --example phases PATH`.
fn main() {
    let Some(path) = std::env::args().nth(1) else {
        return;
    };
    let Ok(source) = std::fs::read_to_string(&path) else {
        return;
    };
    // Warm the stdlib cache.
    let _ = dsl_check::check("pack p { flow { step a = 1 } }", &dsl_check::NoFiles);
    for _ in 0..3 {
        let start = std::time::Instant::now();
        let parse = dsl_syntax::parse(&source);
        let parsed = start.elapsed();
        drop(parse);
        let start = std::time::Instant::now();
        let analysis = dsl_check::check(&source, &dsl_check::NoFiles);
        let checked = start.elapsed();
        let start = std::time::Instant::now();
        let plan = dsl_check::lower(&analysis);
        let lowered = start.elapsed();
        let start = std::time::Instant::now();
        let json = plan.as_ref().map(|p| p.to_json().len()).unwrap_or(0);
        let serialised = start.elapsed();
        println!(
            "parse {parsed:?}  parse+check {checked:?}  lower {lowered:?}  json {serialised:?} ({json} bytes), {} diagnostics, {} resolutions",
            analysis.diagnostics.len(),
            analysis.program.resolutions.len()
        );
    }
}

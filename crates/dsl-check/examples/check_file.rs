//! Checks one file and prints its diagnostics (a development aid).
fn main() {
    let Some(path) = std::env::args().nth(1) else {
        return;
    };
    let Ok(source) = std::fs::read_to_string(&path) else {
        return;
    };
    let start = std::time::Instant::now();
    let analysis = dsl_check::check(&source, &dsl_check::NoFiles);
    let checked = start.elapsed();
    let plan = dsl_check::lower(&analysis);
    println!(
        "{}",
        dsl_check::render::plain(&source, &analysis.diagnostics)
    );
    println!(
        "checked in {checked:?}, total {:?}, plan: {}",
        start.elapsed(),
        plan.is_some()
    );
}

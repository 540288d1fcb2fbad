//! Checks one file and prints its diagnostics, and with `json`, `dot` or `mermaid` its plan
//! (a development aid): `cargo run -p dsl-check --example check_file PATH [json|dot|mermaid]`.
/// Project files from the pack's directory.
struct DirWorld(std::path::PathBuf);

impl dsl_check::World for DirWorld {
    fn read_file(&self, path: &str) -> Option<String> {
        std::fs::read_to_string(self.0.join(path)).ok()
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else { return };
    let format = args.next();
    let Ok(source) = std::fs::read_to_string(&path) else {
        return;
    };
    let start = std::time::Instant::now();
    let dir = std::path::Path::new(&path)
        .parent()
        .map(|p| p.to_path_buf())
        .unwrap_or_default();
    let analysis = dsl_check::check(&source, &DirWorld(dir));
    let checked = start.elapsed();
    let plan = dsl_check::lower(&analysis);
    let total = start.elapsed();
    match (format.as_deref(), &plan) {
        (Some("json"), Some(plan)) => println!("{}", plan.to_json()),
        (Some("dot"), Some(plan)) => println!("{}", plan.to_dot()),
        (Some("mermaid"), Some(plan)) => println!("{}", plan.to_mermaid()),
        _ => {
            println!(
                "{}",
                dsl_check::render::plain(&source, &analysis.diagnostics)
            );
            println!(
                "checked in {checked:?}, total {total:?}, plan: {}",
                plan.is_some()
            );
        }
    }
}

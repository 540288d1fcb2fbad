//! Runs only `check` + lowering repeatedly on one file, for profiling (a development aid).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;
fn main() {
    let Some(path) = std::env::args().nth(1) else {
        return;
    };
    let Ok(source) = std::fs::read_to_string(&path) else {
        return;
    };
    let parse = dsl_syntax::parse(&source);
    let _ = dsl_check::check("pack p { flow { step a = 1 } }", &dsl_check::NoFiles);
    let runs: u32 = std::env::args()
        .nth(2)
        .and_then(|n| n.parse().ok())
        .unwrap_or(10)
        .max(1);
    let mut check = std::time::Duration::ZERO;
    let mut lower = std::time::Duration::ZERO;
    let mut total = 0;
    let mut keep = Vec::new();
    for _ in 0..runs {
        let copy = parse.clone();
        let start = std::time::Instant::now();
        let analysis = dsl_check::check_parsed(&source, copy, &dsl_check::NoFiles);
        check += start.elapsed();
        let start = std::time::Instant::now();
        let plan = analysis.into_plan();
        lower += start.elapsed();
        total += plan.as_ref().map(|p| p.graph.nodes().count()).unwrap_or(0);
        keep.push(plan);
        if keep.len() > 1 {
            keep.remove(0);
        }
    }
    println!(
        "{total} nodes, check {:?}, lower {:?}",
        check / runs,
        lower / runs
    );
}

//! Writes a generated pack of about N lines (default 100 000) to stdout, using the
//! benchmark's generator (a development aid for profiling).
#[path = "../benches/generate.rs"]
#[allow(dead_code)]
mod generate;

fn main() {
    let lines = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(100_000);
    print!("{}", generate::workload(lines).pack);
}

//! Writes a generated pack of about N lines (default 100 000) to stdout, using the
//! benchmark's generator (a development aid for profiling); `broken N` writes the pack
//! with N broken steps of the benchmark's error probe.
#[path = "../benches/generate.rs"]
#[allow(dead_code)]
mod generate;

fn main() {
    // `gen_pack broken N`: the benchmark's pack with N broken steps.
    if std::env::args().nth(1).as_deref() == Some("broken") {
        let errors = std::env::args()
            .nth(2)
            .and_then(|n| n.parse().ok())
            .unwrap_or(1_000);
        print!("{}", generate::broken_pack(errors));
        return;
    }
    let lines = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(100_000);
    print!("{}", generate::workload(lines).pack);
}

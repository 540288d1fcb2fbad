//! Parses a file once (for instruction-count profiling with callgrind).
fn main() {
    let path = std::env::args().nth(1).expect("usage: parse_once FILE");
    let source = std::fs::read_to_string(path).expect("readable file");
    let parse = dsl_syntax::parse(&source);
    println!(
        "{} items, {} errors",
        parse.file.items.len(),
        parse.errors.len()
    );
}

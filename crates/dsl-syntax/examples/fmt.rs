//! Formats a file to stdout (a debugging aid).
fn main() {
    let path = std::env::args().nth(1).expect("usage: fmt FILE");
    let source = std::fs::read_to_string(path).expect("readable file");
    match dsl_syntax::format::format(&source) {
        Ok(out) => print!("{out}"),
        Err(errors) => eprintln!("{errors:?}"),
    }
}

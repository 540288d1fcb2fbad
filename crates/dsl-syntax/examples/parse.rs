//! Parses a file and prints its syntax tree and errors (a debugging aid).
fn main() {
    let path = std::env::args().nth(1).expect("usage: parse FILE");
    let source = std::fs::read_to_string(path).expect("readable file");
    let parse = dsl_syntax::parse(&source);
    if std::env::args().nth(2).is_some() {
        println!("{:#?}", parse.file);
    }
    for error in &parse.errors {
        println!("{} {:?} {}", error.code, error.span, error.message);
    }
    println!(
        "{} items, {} errors",
        parse.file.items.len(),
        parse.errors.len()
    );
}

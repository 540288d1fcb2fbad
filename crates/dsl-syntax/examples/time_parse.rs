//! Times lexing, parsing and formatting of a file (a development aid; the real benchmark
//! is `scripts/bench-frontend.sh`). Uses the allocator the `galaxy` binary ships with.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
fn main() {
    let path = std::env::args().nth(1).expect("usage: time_parse FILE");
    let source = std::fs::read_to_string(path).expect("readable file");
    let mb = source.len() as f64 / 1e6;
    for _ in 0..2 {
        let t = std::time::Instant::now();
        let (tokens, _) = dsl_syntax::lexer::lex(&source);
        let lex = t.elapsed();
        let t = std::time::Instant::now();
        let parse = dsl_syntax::parse(&source);
        let p = t.elapsed();
        let t = std::time::Instant::now();
        let _ = dsl_syntax::format::format(&source);
        let f = t.elapsed();
        println!(
            "{} tokens, {} errors: lex {:?} ({:.0} MB/s), parse {:?} ({:.1} MB/s), format {:?}",
            tokens.len(),
            parse.errors.len(),
            lex,
            mb / lex.as_secs_f64(),
            p,
            mb / p.as_secs_f64(),
            f
        );
    }
}

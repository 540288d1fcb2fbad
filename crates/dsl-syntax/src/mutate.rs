//! Token-level mutations of source text, for robustness tests and fuzzing: delete,
//! duplicate or swap tokens, or cut the text short. Used by the property tests of every
//! front-end crate to show that no input panics or hangs.

/// One edit of a file's token list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutation {
    /// Remove the token at this index (taken modulo the token count).
    Delete(usize),
    /// Insert a copy of the token at this index next to it.
    Duplicate(usize),
    /// Exchange two tokens.
    Swap(usize, usize),
    /// Keep only the tokens before this index.
    Truncate(usize),
}

impl Mutation {
    /// Builds a mutation from three random numbers (for property-test strategies and fuzzers).
    pub fn from_parts(kind: u8, a: usize, b: usize) -> Mutation {
        match kind % 4 {
            0 => Mutation::Delete(a),
            1 => Mutation::Duplicate(a),
            2 => Mutation::Swap(a, b),
            _ => Mutation::Truncate(a),
        }
    }
}

/// Applies `mutations` in order to the tokens of `source` and returns the new text.
pub fn mutate(source: &str, mutations: &[Mutation]) -> String {
    let mut tokens: Vec<&str> = crate::lexer::lex(source)
        .0
        .iter()
        .map(|t| t.span.text(source))
        .collect();
    for mutation in mutations {
        let n = tokens.len();
        if n == 0 {
            break;
        }
        match *mutation {
            Mutation::Delete(i) => {
                tokens.remove(i % n);
            }
            Mutation::Duplicate(i) => {
                if let Some(token) = tokens.get(i % n).copied() {
                    tokens.insert(i % n, token);
                }
            }
            Mutation::Swap(a, b) => tokens.swap(a % n, b % n),
            Mutation::Truncate(i) => tokens.truncate(i % n),
        }
    }
    tokens.concat()
}

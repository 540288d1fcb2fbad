//! String literal contents: escapes, and the indentation rule of `"""` text blocks.

/// Resolves escapes in `raw`, appending to `out`. Returns the byte offsets (within `raw`) of
/// escapes that are not known, which the caller reports.
pub(crate) fn unescape(raw: &str, out: &mut String) -> Vec<usize> {
    let mut bad = Vec::new();
    let mut chars = raw.char_indices();
    while let Some((offset, ch)) = chars.next() {
        if ch != '\\' {
            out.push(ch);
            continue;
        }
        match chars.next() {
            Some((_, 'n')) => out.push('\n'),
            Some((_, 't')) => out.push('\t'),
            Some((_, 'r')) => out.push('\r'),
            Some((_, '0')) => out.push('\0'),
            Some((_, c @ ('"' | '\\' | '{' | '}'))) => out.push(c),
            Some((_, other)) => {
                bad.push(offset);
                out.push(other);
            }
            None => bad.push(offset),
        }
    }
    bad
}

/// The byte ranges (relative to `body`, the text between the quotes of a text block) that
/// the indentation rule removes: the line break right after the opening quotes, the
/// indentation common to all non-blank lines, and a whitespace-only last line.
pub(crate) fn text_block_removals(body: &str) -> Vec<(usize, usize)> {
    let mut removals = Vec::new();
    let mut first_line_start = 0;
    if body.starts_with("\r\n") {
        removals.push((0, 2));
        first_line_start = 2;
    } else if body.starts_with('\n') {
        removals.push((0, 1));
        first_line_start = 1;
    }
    // Lines that start after a line break are subject to the common indentation.
    let mut line_starts = Vec::new();
    if first_line_start > 0 {
        line_starts.push(first_line_start);
    }
    for (i, b) in body.bytes().enumerate() {
        if b == b'\n' && i + 1 > first_line_start {
            line_starts.push(i + 1);
        }
    }
    let leading_ws = |start: usize| {
        body.get(start..)
            .map(|rest| {
                rest.bytes()
                    .take_while(|b| *b == b' ' || *b == b'\t')
                    .count()
            })
            .unwrap_or(0)
    };
    let is_blank_from = |start: usize, ws: usize| {
        matches!(
            body.as_bytes().get(start + ws),
            None | Some(b'\n') | Some(b'\r')
        )
    };
    let indent = line_starts
        .iter()
        .filter(|&&start| !is_blank_from(start, leading_ws(start)))
        .map(|&start| leading_ws(start))
        .min()
        .unwrap_or(0);
    let last = line_starts.last().copied();
    for &start in &line_starts {
        let ws = leading_ws(start);
        if Some(start) == last && start + ws == body.len() {
            removals.push((start, start + ws));
        } else {
            removals.push((start, start + ws.min(indent)));
        }
    }
    removals.retain(|(from, to)| from < to);
    removals
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(body: &str) -> String {
        let mut out = String::new();
        let removals = text_block_removals(body);
        let mut i = 0;
        for (from, to) in removals {
            out.push_str(&body[i..from]);
            i = to;
        }
        out.push_str(&body[i..]);
        out
    }

    #[test]
    fn text_blocks_drop_common_indentation() {
        assert_eq!(
            apply("\n    You triage.\n      Be terse.\n  "),
            "You triage.\n  Be terse.\n"
        );
        assert_eq!(apply("one line"), "one line");
        assert_eq!(apply("\n  a\n\n  b\n"), "a\n\nb\n");
    }

    #[test]
    fn escapes() {
        let mut out = String::new();
        assert_eq!(unescape(r#"a\n\{b\}\"\q"#, &mut out), vec![10]);
        assert_eq!(out, "a\n{b}\"q");
    }
}

//! Text helpers for graph edits: line boundaries, statement extents (a statement plus the
//! comments above it), printing one step with the formatter's conventions, and the minimal
//! diff that turns the edited text into edits against the original.

use dsl_syntax::ast::{Action, Item};
use dsl_syntax::{Span, TextEdit};

use super::GraphError;

/// The indentation of a step in a canonically formatted pack.
pub(crate) const STEP_INDENT: &str = "    ";

/// The start of the line holding `offset`.
pub(crate) fn line_start(text: &str, offset: usize) -> usize {
    text.get(..offset)
        .and_then(|before| before.rfind('\n'))
        .map(|i| i + 1)
        .unwrap_or(0)
}

/// Just past the line break that ends the line holding `offset` (or the end of the text).
pub(crate) fn line_end(text: &str, offset: usize) -> usize {
    text.get(offset..)
        .and_then(|after| after.find('\n'))
        .map(|i| offset + i + 1)
        .unwrap_or(text.len())
}

/// Whether only spaces and tabs stand between the start of `offset`'s line and `offset`.
pub(crate) fn starts_line(text: &str, offset: usize) -> bool {
    text.get(line_start(text, offset)..offset)
        .is_some_and(|s| s.chars().all(|c| c == ' ' || c == '\t'))
}

/// Whether the rest of `offset`'s line is blank or a comment.
pub(crate) fn ends_line(text: &str, offset: usize) -> bool {
    let end = line_end(text, offset);
    let rest = text.get(offset..end).unwrap_or("").trim();
    rest.is_empty() || rest.starts_with("//")
}

/// The leading spaces and tabs of `offset`'s line.
pub(crate) fn indent_of(text: &str, offset: usize) -> &str {
    let start = line_start(text, offset);
    let line = text.get(start..).unwrap_or("");
    let width = line.len() - line.trim_start_matches([' ', '\t']).len();
    line.get(..width).unwrap_or("")
}

/// A statement that owns its lines: the comments above it and the statement itself.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Extent {
    /// Start of the first comment line above the statement (or of its own first line).
    pub(crate) start: usize,
    /// Start of the statement's first line.
    pub(crate) statement_line: usize,
    /// Just past the line break of the statement's last line.
    pub(crate) end: usize,
}

/// The extent of the statement at `span`, whose predecessor (the previous statement, or the
/// opening brace of the block) ends at `previous_end`. `None` when the statement shares a
/// line with something else.
pub(crate) fn extent(text: &str, span: Span, previous_end: usize) -> Option<Extent> {
    let (start, end) = (span.start as usize, span.end as usize);
    if !starts_line(text, start) || !ends_line(text, end) {
        return None;
    }
    let statement_line = line_start(text, start);
    let region_start = line_end(text, previous_end).min(statement_line);
    if line_start(text, previous_end) == statement_line {
        return None;
    }
    // The lines between the predecessor and the statement hold only trivia: blank lines
    // (separators) and comments (which belong to the statement).
    let mut comment_start = statement_line;
    let mut cursor = region_start;
    while cursor < statement_line {
        let next = line_end(text, cursor);
        if !text.get(cursor..next).unwrap_or("").trim().is_empty() {
            comment_start = cursor;
            break;
        }
        cursor = next;
    }
    Some(Extent {
        start: comment_start,
        statement_line,
        end: line_end(text, end),
    })
}

/// Whether `text` between `from` and `to` is nothing but whitespace with a line break.
pub(crate) fn is_blank_gap(text: &str, from: usize, to: usize) -> bool {
    from < to && text.get(from..to).is_some_and(|s| s.trim().is_empty())
}

/// Removes common indentation-like prefixes: every line trimmed at the start.
pub(crate) fn dedent_lines(text: &str) -> String {
    text.lines().map(str::trim).collect::<Vec<_>>().join("\n")
}

/// Indents every non-empty line of `comment` by `indent`, each ending in a line break.
pub(crate) fn indent_comment(comment: &str, indent: &str) -> String {
    let mut out = String::new();
    for line in comment.lines() {
        let line = line.trim();
        if !line.is_empty() {
            out.push_str(indent);
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

/// Checks that `comment` holds only comment lines (and blank lines).
pub(crate) fn validate_comment(comment: &str) -> Result<(), GraphError> {
    for line in comment.lines() {
        let line = line.trim();
        if !line.is_empty() && !line.starts_with("//") {
            return Err(GraphError::InvalidOp(format!(
                "comment line {line:?} does not start with `//`"
            )));
        }
    }
    Ok(())
}

const WRAP_HEAD: &str = "pack __graph {\n  flow {\n";
const WRAP_TAIL: &str = "\n  }\n}\n";

/// Parses `step_text` (`step NAME = ACTION`, possibly several lines) as the only step of a
/// pack; returns the parsed action's kind check result.
fn wrap(step_text: &str) -> String {
    let mut wrapped = String::with_capacity(step_text.len() + 40);
    wrapped.push_str(WRAP_HEAD);
    wrapped.push_str(STEP_INDENT);
    wrapped.push_str(step_text.trim());
    wrapped.push_str(WRAP_TAIL);
    wrapped
}

/// Checks that `step_text` is exactly one well-formed step named `name`.
pub(crate) fn validate_step(step_text: &str, name: &str) -> Result<(), GraphError> {
    let wrapped = wrap(step_text);
    let parse = dsl_syntax::parse(&wrapped);
    if let Some(error) = parse.errors.first() {
        return Err(GraphError::DoesNotParse {
            message: format!("step `{name}`: {}", error.message),
        });
    }
    let flows: Vec<_> = parse
        .file
        .items
        .iter()
        .filter_map(|item| match item {
            Item::Flow(flow) => Some(flow),
            _ => None,
        })
        .collect();
    let [flow] = flows.as_slice() else {
        return Err(GraphError::DoesNotParse {
            message: format!("step `{name}` is not a single step"),
        });
    };
    match (parse.file.items.len(), flow.steps.as_slice()) {
        (1, [step]) if step.name.name == name && !matches!(step.action, Action::Error(_)) => Ok(()),
        _ => Err(GraphError::DoesNotParse {
            message: format!("step `{name}` is not a single step"),
        }),
    }
}

/// Prints `step_text` as the formatter would inside a pack's flow (first line without
/// indentation, continuation lines indented for a step at [`STEP_INDENT`]).
pub(crate) fn format_step(step_text: &str, name: &str) -> Result<String, GraphError> {
    validate_step(step_text, name)?;
    let formatted = dsl_syntax::format::format(&wrap(step_text)).map_err(|errors| {
        GraphError::DoesNotParse {
            message: errors
                .first()
                .map(|e| e.message.clone())
                .unwrap_or_default(),
        }
    })?;
    formatted
        .strip_prefix(WRAP_HEAD)
        .and_then(|rest| rest.strip_suffix(WRAP_TAIL))
        .and_then(|body| body.strip_prefix(STEP_INDENT))
        .map(str::to_string)
        .ok_or_else(|| GraphError::InvalidOp(format!("step `{name}` cannot be printed")))
}

const ITEM_HEAD: &str = "pack __graph {\n  ";
const ITEM_TAIL: &str = "\n}\n";

/// Prints one pack item (`outcome ..`, `kpi ..`, `eval ..`) as the formatter would at the
/// top of a pack body (first line without indentation); refuses text that is not exactly
/// one item.
pub(crate) fn format_item(item_text: &str) -> Result<String, GraphError> {
    let wrapped = format!("{ITEM_HEAD}{}{ITEM_TAIL}", item_text.trim());
    let parse = dsl_syntax::parse(&wrapped);
    if let Some(error) = parse.errors.first() {
        return Err(GraphError::DoesNotParse {
            message: error.message.clone(),
        });
    }
    if parse.file.items.len() != 1 {
        return Err(GraphError::DoesNotParse {
            message: "not a single item".into(),
        });
    }
    let formatted =
        dsl_syntax::format::format(&wrapped).map_err(|errors| GraphError::DoesNotParse {
            message: errors
                .first()
                .map(|e| e.message.clone())
                .unwrap_or_default(),
        })?;
    formatted
        .strip_prefix(ITEM_HEAD)
        .and_then(|rest| rest.strip_suffix(ITEM_TAIL))
        .map(|body| reindent_from(body, "  ", STEP_INDENT))
        .ok_or_else(|| GraphError::InvalidOp("an item cannot be printed".into()))
}

/// Re-indents continuation lines printed for `from` to `to`.
fn reindent_from(text: &str, from: &str, to: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
            match line.strip_prefix(from) {
                Some(rest) => {
                    out.push_str(to);
                    out.push_str(rest);
                }
                None => out.push_str(line),
            }
        } else {
            out.push_str(line);
        }
    }
    out
}

/// Re-indents continuation lines printed for [`STEP_INDENT`] to `indent`.
pub(crate) fn reindent(step_text: &str, indent: &str) -> String {
    if indent == STEP_INDENT {
        return step_text.to_string();
    }
    reindent_from(step_text, STEP_INDENT, indent)
}

/// Whether `name` can be a step name: an identifier that is not a reserved word.
pub(crate) fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    first_ok
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !matches!(name, "true" | "false" | "none" | "and" | "or" | "not")
}

/// Applies non-overlapping edits (in any order) to `source`.
pub(crate) fn splice(source: &str, edits: &mut [TextEdit]) -> String {
    edits.sort_by_key(|e| (e.span.start, e.span.end));
    let mut out = String::with_capacity(source.len() + 64);
    let mut cursor = 0usize;
    for edit in edits.iter() {
        let (start, end) = (edit.span.start as usize, edit.span.end as usize);
        if start < cursor {
            continue;
        }
        out.push_str(source.get(cursor..start).unwrap_or(""));
        out.push_str(&edit.new_text);
        cursor = end;
    }
    out.push_str(source.get(cursor..).unwrap_or(""));
    out
}

/// The most D-steps the line diff explores before falling back to one edit.
const MAX_DIFF_COST: usize = 2_000;

/// Minimal edits turning `old` into `new`: a line diff (Myers), each changed hunk then
/// trimmed to the bytes that differ.
pub(crate) fn diff(old: &str, new: &str) -> Vec<TextEdit> {
    if old == new {
        return Vec::new();
    }
    let old_lines = split_lines(old);
    let new_lines = split_lines(new);
    // Common prefix and suffix lines first: most edits touch a few lines of a large file.
    let prefix = old_lines
        .iter()
        .zip(&new_lines)
        .take_while(|(a, b)| a.1 == b.1)
        .count();
    let suffix = old_lines
        .get(prefix..)
        .unwrap_or(&[])
        .iter()
        .rev()
        .zip(new_lines.get(prefix..).unwrap_or(&[]).iter().rev())
        .take_while(|(a, b)| a.1 == b.1)
        .count();
    let old_mid = old_lines
        .get(prefix..old_lines.len() - suffix)
        .unwrap_or(&[]);
    let new_mid = new_lines
        .get(prefix..new_lines.len() - suffix)
        .unwrap_or(&[]);
    let old_base = old_lines.get(prefix).map(|l| l.0).unwrap_or(old.len());
    let new_base = new_lines.get(prefix).map(|l| l.0).unwrap_or(new.len());
    let old_end = old_lines
        .get(old_lines.len() - suffix)
        .map(|l| l.0)
        .unwrap_or(old.len());
    let new_end = new_lines
        .get(new_lines.len() - suffix)
        .map(|l| l.0)
        .unwrap_or(new.len());
    let hunks = myers(old_mid, new_mid).unwrap_or_else(|| {
        vec![Hunk {
            old: (0, old_mid.len()),
            new: (0, new_mid.len()),
        }]
    });
    let mut edits = Vec::new();
    for hunk in hunks {
        let byte = |lines: &[(usize, &str)], index: usize, base: usize, end: usize| {
            if index == 0 {
                base
            } else {
                lines.get(index).map(|l| l.0).unwrap_or(end)
            }
        };
        let old_start = byte(old_mid, hunk.old.0, old_base, old_end);
        let old_stop = byte(old_mid, hunk.old.1, old_base, old_end);
        let new_start = byte(new_mid, hunk.new.0, new_base, new_end);
        let new_stop = byte(new_mid, hunk.new.1, new_base, new_end);
        let old_hunk = old_mid.get(hunk.old.0..hunk.old.1).unwrap_or(&[]);
        let new_hunk = new_mid.get(hunk.new.0..hunk.new.1).unwrap_or(&[]);
        if old_hunk.len() == new_hunk.len() && old_hunk.len() > 1 {
            // Line for line (a rename, a re-layout): one trimmed edit per changed line.
            for (a, b) in old_hunk.iter().zip(new_hunk) {
                if a.1 != b.1 {
                    push_trimmed(&mut edits, a.0, a.1, b.1);
                }
            }
            continue;
        }
        let a = old.get(old_start..old_stop).unwrap_or("");
        let b = new.get(new_start..new_stop).unwrap_or("");
        push_trimmed(&mut edits, old_start, a, b);
    }
    edits
}

/// Pushes the edit replacing `a` (at `offset`) by `b`, trimmed to the bytes that differ.
fn push_trimmed(edits: &mut Vec<TextEdit>, offset: usize, a: &str, b: &str) {
    let (head, tail) = common_affixes(a, b);
    edits.push(TextEdit {
        span: Span::new(offset + head, offset + a.len() - tail),
        new_text: b.get(head..b.len() - tail).unwrap_or("").to_string(),
    });
}

/// The lengths of the common prefix and (non-overlapping) suffix of `a` and `b`, on char
/// boundaries.
fn common_affixes(a: &str, b: &str) -> (usize, usize) {
    let head = a
        .char_indices()
        .zip(b.chars())
        .find(|((_, x), y)| x != y)
        .map(|((i, _), _)| i)
        .unwrap_or(a.len().min(b.len()));
    let head = if a.is_char_boundary(head) && b.is_char_boundary(head) {
        head
    } else {
        0
    };
    let max_tail = a.len().min(b.len()) - head;
    let tail = a
        .chars()
        .rev()
        .zip(b.chars().rev())
        .take_while(|(x, y)| x == y)
        .map(|(x, _)| x.len_utf8())
        .scan(0usize, |sum, len| {
            *sum += len;
            Some(*sum)
        })
        .take_while(|&sum| sum <= max_tail)
        .last()
        .unwrap_or(0);
    (head, tail)
}

/// Lines with their byte offsets, each with its line break.
fn split_lines(text: &str) -> Vec<(usize, &str)> {
    let mut lines = Vec::new();
    let mut start = 0;
    for (i, b) in text.bytes().enumerate() {
        if b == b'\n' {
            lines.push((start, text.get(start..=i).unwrap_or("")));
            start = i + 1;
        }
    }
    if start < text.len() {
        lines.push((start, text.get(start..).unwrap_or("")));
    }
    lines
}

/// A changed region: old lines `old.0..old.1` become new lines `new.0..new.1`.
#[derive(Debug, Clone, Copy)]
struct Hunk {
    old: (usize, usize),
    new: (usize, usize),
}

/// Myers' O((N+M)·D) diff over lines; `None` when the edit script is too long.
fn myers(a: &[(usize, &str)], b: &[(usize, &str)]) -> Option<Vec<Hunk>> {
    let (n, m) = (a.len() as isize, b.len() as isize);
    if n == 0 || m == 0 {
        return Some(vec![Hunk {
            old: (0, a.len()),
            new: (0, b.len()),
        }]);
    }
    let max = (n + m) as usize;
    let offset = max as isize;
    let mut v = vec![0isize; 2 * max + 2];
    let mut trace: Vec<Vec<isize>> = Vec::new();
    let at = |v: &[isize], k: isize| v.get((k + offset) as usize).copied().unwrap_or(0);
    let mut found = None;
    for d in 0..=max as isize {
        if d as usize > MAX_DIFF_COST {
            return None;
        }
        // Keep only the diagonals reachable at this cost, to bound memory by D².
        let low = (offset - d).max(0) as usize;
        let high = ((offset + d + 1) as usize).min(v.len());
        trace.push(v.get(low..high).unwrap_or(&[]).to_vec());
        let mut k = -d;
        while k <= d {
            let mut x = if k == -d || (k != d && at(&v, k - 1) < at(&v, k + 1)) {
                at(&v, k + 1)
            } else {
                at(&v, k - 1) + 1
            };
            let mut y = x - k;
            while x < n && y < m && a.get(x as usize).map(|l| l.1) == b.get(y as usize).map(|l| l.1)
            {
                x += 1;
                y += 1;
            }
            if let Some(slot) = v.get_mut((k + offset) as usize) {
                *slot = x;
            }
            if x >= n && y >= m {
                found = Some(d);
                break;
            }
            k += 2;
        }
        if found.is_some() {
            break;
        }
    }
    let d_final = found?;
    // Backtrack: collect the path's moves, then merge runs of changes into hunks.
    let mut x = n;
    let mut y = m;
    let mut changes: Vec<(isize, isize, bool)> = Vec::new(); // (x, y, is_delete) per change
    for d in (1..=d_final).rev() {
        let saved = trace.get(d as usize)?;
        let low = (offset - d).max(0);
        let get = |k: isize| saved.get((k + offset - low) as usize).copied().unwrap_or(0);
        let k = x - y;
        let prev_k = if k == -d || (k != d && get(k - 1) < get(k + 1)) {
            k + 1
        } else {
            k - 1
        };
        let prev_x = get(prev_k);
        let prev_y = prev_x - prev_k;
        while x > prev_x && y > prev_y {
            x -= 1;
            y -= 1;
        }
        if x == prev_x {
            changes.push((prev_x, prev_y, false)); // insert b[prev_y]
        } else {
            changes.push((prev_x, prev_y, true)); // delete a[prev_x]
        }
        x = prev_x;
        y = prev_y;
    }
    changes.reverse();
    let mut hunks: Vec<Hunk> = Vec::new();
    for (x, y, delete) in changes {
        let (x, y) = (x as usize, y as usize);
        let (old_end, new_end) = if delete { (x + 1, y) } else { (x, y + 1) };
        match hunks.last_mut() {
            Some(last) if last.old.1 == x && last.new.1 == y => {
                last.old.1 = old_end;
                last.new.1 = new_end;
            }
            _ => hunks.push(Hunk {
                old: (x, old_end),
                new: (y, new_end),
            }),
        }
    }
    Some(hunks)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(old: &str, new: &str) -> Vec<TextEdit> {
        let mut edits = diff(old, new);
        let out = splice(old, &mut edits.clone());
        assert_eq!(out, new, "edits {edits:?}");
        edits.sort_by_key(|e| e.span.start);
        edits
    }

    #[test]
    fn diff_is_minimal_and_exact() {
        assert!(roundtrip("a\nb\nc\n", "a\nb\nc\n").is_empty());
        let edits = roundtrip("a\nbb\nc\n", "a\nbx\nc\n");
        assert_eq!(edits.len(), 1);
        assert_eq!(edits.first().map(|e| e.new_text.as_str()), Some("x"));
        let edits = roundtrip("x inbox\ny\nz inbox\n", "x mailbox\ny\nz mailbox\n");
        assert_eq!(edits.len(), 2);
        roundtrip("", "a\n");
        roundtrip("a\n", "");
        roundtrip("a\nb\nc\nd\n", "b\nc\nx\nd\ny\n");
        roundtrip("é\nü\n", "é\nö\n");
        roundtrip("no newline", "no newline at all");
    }

    #[test]
    fn extents_take_comments_above() {
        let text = "flow {\n  step a = 1\n\n  // about b\n  step b = 2 // note\n}\n";
        let b = text.find("step b").unwrap_or(0);
        let end = b + "step b = 2".len();
        let a_end = text.find("= 1").unwrap_or(0) + 3;
        let extent = extent(text, Span::new(b, end), a_end).expect("owns its lines");
        assert_eq!(
            text.get(extent.start..extent.end).unwrap_or(""),
            "  // about b\n  step b = 2 // note\n"
        );
    }
}

//! "Did you mean" suggestions: the closest candidate name by edit distance.

/// The optimal-string-alignment distance between `a` and `b` (Levenshtein plus swaps of
/// two adjacent characters, the commonest typo), giving up (returning `limit + 1`) once it
/// exceeds `limit`.
pub fn edit_distance(a: &str, b: &str, limit: usize) -> usize {
    edit_distance_in(a, b, limit, &mut [[0; SHORT]; 3])
}

/// [`edit_distance`] with the caller's rows, reused across candidates.
fn edit_distance_in(a: &str, b: &str, limit: usize, rows: &mut Rows) -> usize {
    // Names are short and almost always ASCII: compare bytes in rows on the stack.
    if a.is_ascii() && b.is_ascii() && b.len() < SHORT {
        return distance_in(a.as_bytes(), b.as_bytes(), limit, rows);
    }
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut rows = vec![vec![0; b.len() + 1]; 3];
    let [before, previous, current] = &mut rows[..] else {
        return limit + 1;
    };
    distance_rows(&a, &b, limit, before, previous, current)
}

/// Row length up to which the distance is computed without allocating.
const SHORT: usize = 64;

/// Three rows of the distance table for names shorter than [`SHORT`].
type Rows = [[usize; SHORT]; 3];

fn distance_in(a: &[u8], b: &[u8], limit: usize, rows: &mut Rows) -> usize {
    let [before, previous, current] = rows;
    distance_rows(a, b, limit, before, previous, current)
}

/// The distance with three rows of at least `b.len() + 1` cells.
fn distance_rows<'r, T: PartialEq>(
    a: &[T],
    b: &[T],
    limit: usize,
    mut before: &'r mut [usize],
    mut previous: &'r mut [usize],
    mut current: &'r mut [usize],
) -> usize {
    if a.len().abs_diff(b.len()) > limit {
        return limit + 1;
    }
    let width = b.len() + 1;
    for (j, cell) in previous.iter_mut().take(width).enumerate() {
        *cell = j;
    }
    let at = |row: &[usize], k: usize| row.get(k).copied().unwrap_or(usize::MAX / 2);
    for i in 1..=a.len() {
        if let Some(first) = current.first_mut() {
            *first = i;
        }
        let mut row_min = i;
        for j in 1..=b.len() {
            let ca = a.get(i - 1);
            let cb = b.get(j - 1);
            let cost = usize::from(ca != cb);
            let mut value = (at(previous, j - 1) + cost)
                .min(at(previous, j) + 1)
                .min(at(current, j - 1) + 1);
            if i > 1 && j > 1 && ca == b.get(j - 2) && a.get(i - 2) == cb {
                value = value.min(at(before, j - 2) + 1);
            }
            if let Some(slot) = current.get_mut(j) {
                *slot = value;
            }
            row_min = row_min.min(value);
        }
        if row_min > limit {
            return limit + 1;
        }
        std::mem::swap(&mut before, &mut previous);
        std::mem::swap(&mut previous, &mut current);
    }
    previous
        .get(b.len())
        .copied()
        .unwrap_or(limit + 1)
        .min(limit + 1)
}

/// How far `candidate` is from `name` (whose lowercase form is `lower` and length in
/// characters `length`), when within `limit`: 0 for a difference of case only.
fn distance_to(
    name: &str,
    lower: &str,
    length: usize,
    candidate: &str,
    limit: usize,
    rows: &mut Rows,
) -> Option<usize> {
    if candidate == name {
        return None;
    }
    // A length difference beyond the limit rules a candidate out before any other work
    // (for ASCII, bytes are characters; a difference of case keeps the length).
    if name.is_ascii() && candidate.is_ascii() {
        if candidate.len().abs_diff(length) > limit {
            return None;
        }
        if candidate.eq_ignore_ascii_case(name) {
            return Some(0);
        }
    } else if candidate
        .chars()
        .flat_map(char::to_lowercase)
        .eq(lower.chars())
    {
        return Some(0);
    }
    let distance = edit_distance_in(name, candidate, limit, rows);
    (distance <= limit).then_some(distance)
}

/// The candidate closest to `name`, if one is close enough to be a likely misspelling
/// (at most a third of the name's length, and at least one edit, away). Ties go to the
/// first candidate, so results are deterministic for a deterministic candidate order.
pub fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    closest(name, candidates, |_, _| false)
}

/// [`did_you_mean`] over candidates in any order (duplicates allowed): ties go to the
/// alphabetically first, as they would with sorted candidates, without sorting them.
pub fn did_you_mean_unordered<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    closest(name, candidates, |candidate, best| candidate < best)
}

/// The closest candidate within the limit; on a tie, `candidate` replaces `best` when
/// `wins_tie(candidate, best)`.
fn closest<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
    wins_tie: impl Fn(&str, &str) -> bool,
) -> Option<&'a str> {
    let length = name.chars().count();
    let limit = (length / 3).max(1);
    let lower = name.to_lowercase();
    let mut best: Option<(usize, &'a str)> = None;
    let mut rows = [[0; SHORT]; 3];
    for candidate in candidates {
        let Some(distance) = distance_to(name, &lower, length, candidate, limit, &mut rows) else {
            continue;
        };
        if best.is_none_or(|(d, c)| distance < d || (distance == d && wins_tie(candidate, c))) {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(edit_distance("serch", "search", 3), 1);
        assert_eq!(edit_distance("abc", "abc", 3), 0);
        assert_eq!(edit_distance("a", "abcdef", 2), 3);
        assert_eq!(edit_distance("sned", "send", 2), 1);
    }

    #[test]
    fn distances_agree_on_ascii_and_unicode_paths() {
        for (a, b) in [
            ("serch", "search"),
            ("sned", "send"),
            ("abcd", "badc"),
            ("x", ""),
        ] {
            let wide = |s: &str| s.replace('a', "ä");
            assert_eq!(
                edit_distance(a, b, 3),
                edit_distance(&wide(a), &wide(b), 3),
                "{a} {b}"
            );
        }
        let long = "a".repeat(100);
        assert_eq!(edit_distance(&long, &format!("{long}b"), 3), 1);
    }

    #[test]
    fn unordered_suggestions_match_sorted_ones() {
        let names = ["triage", "inbox", "inboy", "Inbox", "send", "sned"];
        let mut sorted = names;
        sorted.sort_unstable();
        for name in ["inbx", "INBOX", "snd", "trage", "zzz", "inbox"] {
            assert_eq!(
                did_you_mean_unordered(name, names),
                did_you_mean(name, sorted),
                "{name}"
            );
        }
    }

    #[test]
    fn suggestions() {
        assert_eq!(did_you_mean("inbx", ["inbox", "triage"]), Some("inbox"));
        assert_eq!(did_you_mean("zzz", ["inbox", "triage"]), None);
    }
}

//! "Did you mean" suggestions: the closest candidate name by edit distance.

/// The optimal-string-alignment distance between `a` and `b` (Levenshtein plus swaps of
/// two adjacent characters, the commonest typo), giving up (returning `limit + 1`) once it
/// exceeds `limit`.
pub fn edit_distance(a: &str, b: &str, limit: usize) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a.len().abs_diff(b.len()) > limit {
        return limit + 1;
    }
    let width = b.len() + 1;
    let mut before: Vec<usize> = vec![0; width];
    let mut previous: Vec<usize> = (0..width).collect();
    let mut current: Vec<usize> = vec![0; width];
    for i in 1..=a.len() {
        if let Some(first) = current.first_mut() {
            *first = i;
        }
        let mut row_min = i;
        for j in 1..=b.len() {
            let ca = a.get(i - 1);
            let cb = b.get(j - 1);
            let cost = usize::from(ca != cb);
            let at = |row: &Vec<usize>, k: usize| row.get(k).copied().unwrap_or(usize::MAX / 2);
            let mut value = (at(&previous, j - 1) + cost)
                .min(at(&previous, j) + 1)
                .min(at(&current, j - 1) + 1);
            if i > 1 && j > 1 && ca == b.get(j - 2) && a.get(i - 2) == cb {
                value = value.min(at(&before, j - 2) + 1);
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
    previous.last().copied().unwrap_or(limit + 1).min(limit + 1)
}

/// The candidate closest to `name`, if one is close enough to be a likely misspelling
/// (at most a third of the name's length, and at least one edit, away). Ties go to the
/// first candidate, so results are deterministic for a deterministic candidate order.
pub fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let limit = (name.chars().count() / 3).max(1);
    let lower = name.to_lowercase();
    let mut best: Option<(usize, &'a str)> = None;
    for candidate in candidates {
        if candidate == name {
            continue;
        }
        let distance = if candidate.to_lowercase() == lower {
            0
        } else {
            edit_distance(name, candidate, limit)
        };
        if distance <= limit && best.is_none_or(|(d, _)| distance < d) {
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
    fn suggestions() {
        assert_eq!(did_you_mean("inbx", ["inbox", "triage"]), Some("inbox"));
        assert_eq!(did_you_mean("zzz", ["inbox", "triage"]), None);
    }
}

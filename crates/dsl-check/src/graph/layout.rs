//! The deterministic layered auto-layout: same nodes and edges, same coordinates.

use std::collections::{BTreeMap, HashMap};

use super::{GraphEdge, GraphNode, Position};

/// Horizontal distance between layers.
pub const LAYER_GAP: f64 = 240.0;
/// Vertical distance between the nodes of one layer.
pub const ROW_GAP: f64 = 120.0;

/// Places every node: its layer (x) is the length of the longest chain of steps it reads
/// (steps that read nothing are in layer 0), its row (y) follows the mean row of the steps
/// it reads, ties broken by source order. Steps in a cycle (a pack with errors) are placed
/// after the steps they read outside it. Depends only on the ids, their order and the edges.
pub fn auto_layout(nodes: &[GraphNode], edges: &[GraphEdge]) -> BTreeMap<String, Position> {
    let index: HashMap<&str, usize> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.id.as_str(), i))
        .collect();
    let mut preds: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
    let mut succs: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
    for edge in edges {
        if let (Some(&from), Some(&to)) =
            (index.get(edge.from.as_str()), index.get(edge.to.as_str()))
            && from != to
            && let Some(p) = preds.get_mut(to)
            && !p.contains(&from)
        {
            p.push(from);
            if let Some(s) = succs.get_mut(from) {
                s.push(to);
            }
        }
    }
    // Kahn's algorithm in source order; when only cycles remain, release the first node.
    let mut remaining: Vec<usize> = preds.iter().map(Vec::len).collect();
    let mut done = vec![false; nodes.len()];
    let mut layer = vec![0usize; nodes.len()];
    let mut order = Vec::with_capacity(nodes.len());
    let mut ready: std::collections::BTreeSet<usize> = remaining
        .iter()
        .enumerate()
        .filter(|(_, r)| **r == 0)
        .map(|(i, _)| i)
        .collect();
    while order.len() < nodes.len() {
        let next = match ready.pop_first() {
            Some(next) => next,
            None => match done.iter().position(|d| !d) {
                Some(stuck) => stuck,
                None => break,
            },
        };
        if done.get(next).copied().unwrap_or(true) {
            continue;
        }
        if let Some(d) = done.get_mut(next) {
            *d = true;
        }
        let own = preds
            .get(next)
            .map(|p| {
                p.iter()
                    .filter(|&&q| done.get(q).copied().unwrap_or(false))
                    .map(|&q| layer.get(q).copied().unwrap_or(0) + 1)
                    .max()
                    .unwrap_or(0)
            })
            .unwrap_or(0);
        if let Some(l) = layer.get_mut(next) {
            *l = own;
        }
        order.push(next);
        for &succ in succs.get(next).map(Vec::as_slice).unwrap_or(&[]) {
            if let Some(r) = remaining.get_mut(succ) {
                *r = r.saturating_sub(1);
                if *r == 0 && !done.get(succ).copied().unwrap_or(true) {
                    ready.insert(succ);
                }
            }
        }
    }
    // Rows: layer by layer, nodes sorted by the mean row of their predecessors.
    let layers = layer.iter().copied().max().map(|m| m + 1).unwrap_or(0);
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); layers];
    for (i, &l) in layer.iter().enumerate() {
        if let Some(m) = members.get_mut(l) {
            m.push(i);
        }
    }
    let mut row = vec![0usize; nodes.len()];
    for group in &mut members {
        let mut keyed: Vec<(f64, usize)> = group
            .iter()
            .map(|&i| {
                let placed: Vec<f64> = preds
                    .get(i)
                    .map(Vec::as_slice)
                    .unwrap_or(&[])
                    .iter()
                    .filter(|&&p| layer.get(p) < layer.get(i))
                    .map(|&p| row.get(p).copied().unwrap_or(0) as f64)
                    .collect();
                let key = if placed.is_empty() {
                    i as f64
                } else {
                    placed.iter().sum::<f64>() / placed.len() as f64
                };
                (key, i)
            })
            .collect();
        keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        for (r, &(_, i)) in keyed.iter().enumerate() {
            if let Some(slot) = row.get_mut(i) {
                *slot = r;
            }
        }
        *group = keyed.into_iter().map(|(_, i)| i).collect();
    }
    nodes
        .iter()
        .enumerate()
        .map(|(i, node)| {
            let x = layer.get(i).copied().unwrap_or(0) as f64 * LAYER_GAP;
            let y = row.get(i).copied().unwrap_or(0) as f64 * ROW_GAP;
            (node.id.clone(), Position { x, y })
        })
        .collect()
}

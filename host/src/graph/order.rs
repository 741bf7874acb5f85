//! In what order do the stages run, and can they? Every stage after the
//! stages it reads from (a cycle is reported instead), and no chain of
//! data-plane stages deeper than the data plane can take.

use super::limits::{self, MAX_DEPTH, StageShape};
use super::raw::RawStage;
use super::report::{Issue, name_of};
use super::stage::Checked;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// The stages in run order, upstream first. With cycles, each is reported
/// and the order holds only the stages above every cycle.
pub(super) fn run_order(
    stages: &[RawStage],
    checked: &mut [Checked<'_>],
    issues: &mut Vec<Issue>,
) -> Vec<usize> {
    match topological_order(checked) {
        Ok(order) => order,
        Err(cycles) => {
            for cycle in cycles {
                report_cycle(&cycle, stages, checked, issues);
            }
            // Stages on or below a cycle stay out of the order, and so out
            // of negotiation; the graph is not built anyway.
            partial_order(checked)
        }
    }
}

/// Kahn's algorithm over the resolved edges, choosing the earliest stage in
/// the file whenever several are ready. `Err` holds every cycle, each as
/// stage indices in data-flow order.
fn topological_order(checked: &[Checked<'_>]) -> Result<Vec<usize>, Vec<Vec<usize>>> {
    let order = partial_order(checked);
    if order.len() == checked.len() {
        return Ok(order);
    }
    let mut placed = vec![false; checked.len()];
    for &i in &order {
        placed[i] = true;
    }
    let mut on_reported_cycle = vec![false; checked.len()];
    // Stages an earlier walk went through: the walk from one is always the
    // same, so it leads to a cycle already found.
    let mut walked = vec![false; checked.len()];
    // Where each stage sits on the current walk's path.
    let mut on_path: Vec<Option<usize>> = vec![None; checked.len()];
    let mut cycles = Vec::new();
    for start in 0..checked.len() {
        if placed[start] || on_reported_cycle[start] || walked[start] {
            continue;
        }
        // Walk upstream: an unplaced stage always has an unplaced input, so
        // the walk must come back to a stage it has seen.
        let mut path = vec![start];
        on_path[start] = Some(0);
        walked[start] = true;
        let mut current = start;
        let cycle_start = loop {
            let Some(next) = checked[current]
                .inputs
                .iter()
                .map(|up| up.from)
                .find(|from| !placed[*from])
            else {
                break None;
            };
            if let Some(pos) = on_path[next] {
                break Some(pos);
            }
            if walked[next] {
                break None;
            }
            walked[next] = true;
            on_path[next] = Some(path.len());
            path.push(next);
            current = next;
        };
        for &i in &path {
            on_path[i] = None;
        }
        let Some(pos) = cycle_start else { continue };
        let mut cycle: Vec<usize> = path[pos..].to_vec();
        if cycle.iter().any(|&i| on_reported_cycle[i]) {
            continue;
        }
        for &i in &cycle {
            on_reported_cycle[i] = true;
        }
        // The walk went upstream; report it in data-flow order, starting
        // from the stage earliest in the file.
        cycle.reverse();
        let first = cycle
            .iter()
            .enumerate()
            .min_by_key(|(_, i)| **i)
            .map_or(0, |(p, _)| p);
        cycle.rotate_left(first);
        cycles.push(cycle);
    }
    Err(cycles)
}

/// The stages that can be ordered (all of them, without cycles): Kahn's
/// algorithm, taking the ready stage earliest in the file each time, in
/// time linear in the edges.
fn partial_order(checked: &[Checked<'_>]) -> Vec<usize> {
    let n = checked.len();
    let mut waiting: Vec<usize> = checked.iter().map(|c| c.inputs.len()).collect();
    let mut consumers: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, stage) in checked.iter().enumerate() {
        for up in &stage.inputs {
            consumers[up.from].push(i);
        }
    }
    let mut ready: BinaryHeap<Reverse<usize>> =
        (0..n).filter(|&i| waiting[i] == 0).map(Reverse).collect();
    let mut order = Vec::with_capacity(n);
    while let Some(Reverse(i)) = ready.pop() {
        order.push(i);
        for &c in &consumers[i] {
            waiting[c] -= 1;
            if waiting[c] == 0 {
                ready.push(Reverse(c));
            }
        }
    }
    order
}

/// Reports `cycle` at the `inputs` entry that closes it, and marks its
/// stages failed so that nothing on or below it is negotiated.
fn report_cycle(
    cycle: &[usize],
    stages: &[RawStage],
    checked: &mut [Checked<'_>],
    issues: &mut Vec<Issue>,
) {
    let ids: Vec<String> = cycle.iter().map(|&i| name_of(&stages[i])).collect();
    let first = cycle[0];
    // Point at where the first stage names its input on the cycle.
    let upstream = cycle[cycle.len() - 1];
    let span = checked[first]
        .inputs
        .iter()
        .find(|up| up.from == upstream)
        .map_or(stages[first].span.clone(), |up| up.span.clone());
    let message = if cycle.len() == 1 {
        format!("stage {} reads from itself", ids[0])
    } else {
        format!(
            "the stages form a cycle: {} -> {}",
            ids.join(" -> "),
            ids[0]
        )
    };
    issues.push(
        Issue::new(span, message).hint("data must flow one way: remove one of these `inputs`"),
    );
    for &i in cycle {
        checked[i].ok = false;
    }
}

/// Reports each stage that ends a chain of more than [`MAX_DEPTH`]
/// data-plane stages (the first such stage on each chain), at its `inputs`
/// entry that continues the chain.
pub(super) fn check_depth(
    stages: &[RawStage],
    shapes: &[StageShape],
    checked: &[Checked<'_>],
    order: &[usize],
    issues: &mut Vec<Issue>,
) {
    let depth = limits::depths(shapes, order);
    for &index in order {
        if depth[index] != MAX_DEPTH + 1 {
            continue;
        }
        let stage = &stages[index];
        let span = checked[index]
            .inputs
            .iter()
            .max_by_key(|up| depth[up.from])
            .map_or(stage.span.clone(), |up| up.span.clone());
        issues.push(
            Issue::new(
                span,
                format!(
                    "stage {} is the {}th data-plane stage of a chain: a chain may have at most {MAX_DEPTH}",
                    name_of(stage),
                    MAX_DEPTH + 1
                ),
            )
            .hint("the data plane hands each packet down a chain in nested calls; make the chain shorter (one stage can do the work of several)"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::validate::tests::{chain, errors};

    #[test]
    fn the_order_puts_every_stage_after_its_inputs_and_keeps_file_order_otherwise() {
        let checked = |inputs: &[&[usize]]| -> Vec<Checked<'static>> {
            inputs
                .iter()
                .map(|from| Checked {
                    stage: None,
                    config_json: None,
                    inputs: from
                        .iter()
                        .map(|&f| super::super::stage::Upstream {
                            from: f,
                            port: 0,
                            span: 0..0,
                        })
                        .collect(),
                    ok: true,
                })
                .collect()
        };
        // 0 <- 2, 1 <- 0, 2 source, 3 <- 1
        assert_eq!(
            topological_order(&checked(&[&[2], &[0], &[], &[1]])),
            Ok(vec![2, 0, 1, 3])
        );
        // 0 <-> 1 a cycle, 2 below it, 3 on its own loop.
        assert_eq!(
            topological_order(&checked(&[&[1], &[0], &[1], &[3]])),
            Err(vec![vec![0, 1], vec![3]])
        );
    }

    #[test]
    fn a_data_plane_chain_deeper_than_the_limit_is_refused_at_the_first_stage_past_it() {
        let text = chain(MAX_DEPTH + 2);
        let refused = errors(&text);
        let deep: Vec<&String> = refused.iter().filter(|e| e.contains("chain")).collect();
        // Stage s256 is the 257th; its `inputs` entry is on line 3 + 4 * 256.
        assert_eq!(
            deep,
            [&format!(
                "p.toml:{}:11: error: stage `s256` is the 257th data-plane stage of a chain: a chain may have at most 256\n  hint: the data plane hands each packet down a chain in nested calls; make the chain shorter (one stage can do the work of several)",
                4 + 4 * (MAX_DEPTH - 1) + 3
            )]
        );
        let within = errors(&chain(MAX_DEPTH));
        assert!(!within.iter().any(|e| e.contains("chain")), "{within:#?}");
    }
}

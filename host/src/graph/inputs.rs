//! Are a stage's inputs wired as its plane allows? Each entry resolved to
//! a stage, one input into a data-plane stage, a `queue` only on an edge
//! that exists, `decimate` only into a control stage, and no data-plane
//! stage reading a control one; then the packet types along each edge
//! (`packet_types.rs`).

use super::ids::{Ids, Named};
use super::model::StageType;
use super::raw::RawStage;
use super::report::{Issue, listing, name_of};
use super::stage::{Checked, Upstream, role_of};
use crate::registry::PluginRegistry;
use hsp_sdk::abi::StageRole;
use toml::Spanned;

/// One stage's `inputs`, resolved, beside what the checks know of the
/// whole file.
pub(super) struct StageInputs<'a, 'r> {
    /// The stage as messages name it.
    pub(super) name: String,
    pub(super) stage: &'a RawStage,
    /// Its `inputs` entries as the file lists them.
    pub(super) listed: &'a [Spanned<String>],
    /// The stages and output ports the entries name, once each, with each
    /// entry's span.
    pub(super) resolved: &'a [Upstream],
    /// Every stage of the file, and what is known of each.
    pub(super) stages: &'a [RawStage],
    pub(super) checked: &'a [Checked<'r>],
}

/// Resolves `stage`'s `inputs` and checks them against its kind.
pub(super) fn check_inputs(
    index: usize,
    stage: &RawStage,
    ids: &mut Ids<'_>,
    stages: &[RawStage],
    registry: &PluginRegistry,
    checked: &mut [Checked<'_>],
    issues: &mut Vec<Issue>,
) {
    let name = name_of(stage);
    let listed: &[Spanned<String>] = stage.inputs.as_ref().map_or(&[], |i| i.get_ref());
    let (named, mut ok) = ids.resolve(&name, listed, issues);
    let resolved: Vec<Upstream> = named
        .into_iter()
        .filter_map(|entry| match output_port(&entry, stages, checked, issues) {
            Some(port) => Some(Upstream {
                from: entry.from,
                port,
                span: entry.span,
            }),
            None => {
                ok = false;
                None
            }
        })
        .collect();
    let inputs = StageInputs {
        name,
        stage,
        listed,
        resolved: &resolved,
        stages,
        checked,
    };
    let stage_type = role_of(stage, &checked[index]);
    ok &= inputs.check_queue(stage_type, issues);
    ok &= inputs.check_planes(stage_type, issues);
    match checked[index].stage {
        Some((_, descriptor)) if descriptor.role == StageRole::Control => {
            ok &= inputs.check_control_types(descriptor, issues);
        }
        Some((_, descriptor)) => ok &= inputs.check_data_types(descriptor, registry, issues),
        None => {}
    }
    let this = &mut checked[index];
    this.inputs = resolved;
    this.ok &= ok;
}

impl StageInputs<'_, '_> {
    /// `queue` as a stage of `stage_type` may have it: only where there are
    /// inputs, and `decimate` only into a control stage. Never false: a
    /// stray `queue` or `decimate` is only reported.
    fn check_queue(&self, stage_type: StageType, issues: &mut Vec<Issue>) -> bool {
        let (name, stage, listed) = (&self.name, self.stage, self.listed);
        let ok = true;
        if stage.inputs.is_some() {
            if let Some(queue) = &stage.queue {
                if listed.is_empty() {
                    issues.push(Issue::new(
                        queue.span.clone(),
                        format!("stage {name} has a `queue` but no inputs"),
                    ));
                }
            }
        } else if let Some(queue) = &stage.queue {
            issues.push(
                Issue::new(
                    queue.span.clone(),
                    format!("stage {name} has a `queue` but no inputs"),
                )
                .hint("`queue` sizes the edge into a stage; a source has none"),
            );
        }

        if let (StageType::Control, Some(policy)) = (
            stage_type,
            stage.queue.as_ref().and_then(|q| q.policy.as_ref()),
        ) {
            // The control plane never slows its producers: a control stage
            // that falls behind loses the newest messages (counted), so a
            // `policy` here would promise what does not happen.
            issues.push(
                Issue::new(
                    policy.span(),
                    format!(
                        "stage {name} is a control stage; its inputs always drop the newest message when it falls behind (counted), so `policy` does not apply"
                    ),
                )
                .hint("remove `policy`; `capacity` sets how far behind it may fall, `decimate` thins its input"),
            );
        }
        if let (StageType::DataPlane, Some(decimate)) = (
            stage_type,
            stage.queue.as_ref().and_then(|q| q.decimate.as_ref()),
        ) {
            issues.push(
                Issue::new(
                    decimate.span(),
                    format!(
                        "stage {name} is a data-plane stage; `decimate` thins a control stage's inputs"
                    ),
                )
                .hint("remove `decimate`, or decimate in a data-plane stage of your own"),
            );
        }
        ok
    }

    /// A data-plane stage reading a control stage. False when it does.
    fn check_planes(&self, stage_type: StageType, issues: &mut Vec<Issue>) -> bool {
        // Control stages read data-plane stages through bridges, never the
        // other way round: the data plane must not wait on the control plane.
        if stage_type != StageType::DataPlane {
            return true;
        }
        let name = &self.name;
        let mut ok = true;
        for Upstream { from, span, .. } in self.resolved {
            if role_of(&self.stages[*from], &self.checked[*from]) == StageType::Control {
                issues.push(
                    Issue::new(
                        span.clone(),
                        format!(
                            "data-plane stage {name} reads from control stage {}",
                            name_of(&self.stages[*from])
                        ),
                    )
                    .hint("control stages feed only other control stages; they change data-plane stages through parameters (`set_param`)"),
                );
                ok = false;
            }
        }
        ok
    }
}

/// The output port of its upstream stage that `entry` names: the first one
/// when it names none. `None`, reported, when the upstream has no port of
/// that name.
fn output_port(
    entry: &Named,
    stages: &[RawStage],
    checked: &[Checked<'_>],
    issues: &mut Vec<Issue>,
) -> Option<usize> {
    let Some(port) = &entry.port else {
        return Some(0);
    };
    let Some((_, upstream)) = checked[entry.from].stage else {
        return Some(0); // an unknown kind, reported at that stage
    };
    if let Some(index) = upstream.output_port(port) {
        return Some(index);
    }
    if port == "out" && !upstream.outputs.is_empty() {
        // `id.out`, as every stage's one output was called before stages
        // had several: its first output.
        return Some(0);
    }
    let ports: Vec<String> = upstream
        .outputs
        .iter()
        .map(|p| format!("`{}`", p.name))
        .collect();
    let hint = if ports.is_empty() {
        format!("`{}` has no outputs", upstream.kind)
    } else {
        format!(
            "the outputs of `{}`: {}",
            upstream.kind,
            listing(ports.into_iter())
        )
    };
    issues.push(
        Issue::new(
            entry.span.clone(),
            format!(
                "stage {} has no output `{port}`",
                name_of(&stages[entry.from])
            ),
        )
        .hint(hint),
    );
    None
}

//! Do the packet types match along each edge? A stage has inputs exactly
//! when its kind takes some, and each upstream stage emits what it takes:
//! the one type a data-plane stage takes, or one of those a control stage
//! accepts.

use super::inputs::StageInputs;
use super::report::{Issue, Span, listing, name_of, shown_id};
use crate::registry::PluginRegistry;
use hsp_sdk::PacketKind;
use hsp_sdk::abi::StageDescriptor;

impl<'r> StageInputs<'_, 'r> {
    /// A control stage's inputs against the packet types it accepts.
    /// False when they do not fit.
    pub(super) fn check_control_types(
        &self,
        descriptor: &StageDescriptor,
        issues: &mut Vec<Issue>,
    ) -> bool {
        let accepts: Vec<PacketKind> = descriptor.accepts.iter().copied().collect();
        let mut ok = self.check_control_count(descriptor, &accepts, issues);
        ok &= self.check_control_edges(descriptor, &accepts, issues);
        ok
    }

    /// A data-plane stage's inputs against the packet type it takes.
    /// False when they do not fit.
    pub(super) fn check_data_types(
        &self,
        descriptor: &StageDescriptor,
        registry: &PluginRegistry,
        issues: &mut Vec<Issue>,
    ) -> bool {
        let mut ok = self.check_data_count(descriptor, issues);
        ok &= self.check_data_edges(descriptor, registry, issues);
        ok
    }

    /// The resolved inputs whose kind is known (an unknown one is reported
    /// already), each with its entry's span, its name and its descriptor.
    fn known_upstreams(&self) -> impl Iterator<Item = (&Span, String, &'r StageDescriptor)> {
        self.resolved.iter().filter_map(|(from, span)| {
            let (_, upstream) = self.checked[*from].stage?;
            Some((span, name_of(&self.stages[*from]), upstream))
        })
    }

    /// Inputs listed to a control stage that accepts none, or none listed
    /// to one that accepts some.
    fn check_control_count(
        &self,
        descriptor: &StageDescriptor,
        accepts: &[PacketKind],
        issues: &mut Vec<Issue>,
    ) -> bool {
        let (name, stage, listed) = (&self.name, self.stage, self.listed);
        let kind = descriptor.kind.as_str();
        if accepts.is_empty() && !listed.is_empty() {
            if let Some(inputs) = &stage.inputs {
                issues.push(
                    Issue::new(
                        inputs.span(),
                        format!(
                            "control stage {name} (`{kind}`) takes no input, but it lists inputs"
                        ),
                    )
                    .hint("remove `inputs` from this stage"),
                );
                return false;
            }
        } else if !accepts.is_empty() && listed.is_empty() {
            issues.push(
                Issue::new(
                    stage.plugin_span(),
                    format!(
                        "control stage {name} (`{kind}`) takes {} but has no `inputs`",
                        accepted(accepts)
                    ),
                )
                .hint("add `inputs = [\"ID\", ...]` naming the stages it reads"),
            );
            return false;
        }
        true
    }

    /// Each input of a control stage emits a packet type it accepts.
    fn check_control_edges(
        &self,
        descriptor: &StageDescriptor,
        accepts: &[PacketKind],
        issues: &mut Vec<Issue>,
    ) -> bool {
        let name = &self.name;
        let kind = descriptor.kind.as_str();
        let mut ok = true;
        for (span, from_name, upstream) in self.known_upstreams() {
            match upstream.output.into_option() {
                Some(emitted) if accepts.contains(&emitted) => {}
                Some(emitted) => {
                    issues.push(
                        Issue::new(
                            span.clone(),
                            format!(
                                "packet types do not match: control stage {name} (`{kind}`) takes {}, but its input {from_name} (`{}`) emits {emitted}",
                                accepted(accepts),
                                upstream.kind
                            ),
                        )
                        .hint(format!("read from a stage that emits {}", accepted(accepts))),
                    );
                    ok = false;
                }
                None => {
                    issues.push(
                        Issue::new(
                            span.clone(),
                            format!(
                                "stage {name} reads from {from_name}, but `{}` emits nothing",
                                upstream.kind
                            ),
                        )
                        .hint("read from the stage that feeds it instead"),
                    );
                    ok = false;
                }
            }
        }
        ok
    }

    /// Inputs listed to a source, or none listed to a stage that takes a
    /// packet type (with the stages here that emit it, for the hint).
    fn check_data_count(&self, descriptor: &StageDescriptor, issues: &mut Vec<Issue>) -> bool {
        let (name, stage, listed) = (&self.name, self.stage, self.listed);
        let kind = descriptor.kind.as_str();
        match (descriptor.input.into_option(), &stage.inputs) {
            (None, Some(inputs)) if !listed.is_empty() => {
                issues.push(
                    Issue::new(
                        inputs.span(),
                        format!("stage {name} is a `{kind}`, a source that takes no input, but it lists inputs"),
                    )
                    .hint("remove `inputs` from this stage"),
                );
                false
            }
            (Some(wanted), _) if listed.is_empty() => {
                issues.push(
                    Issue::new(
                        stage.plugin_span(),
                        format!("stage {name} (`{kind}`) takes {wanted} but has no `inputs`"),
                    )
                    .hint(self.producers_hint(wanted)),
                );
                false
            }
            _ => true,
        }
    }

    /// How to give a stage that takes `wanted` its input: the stages of the
    /// file that emit it, when there are any.
    fn producers_hint(&self, wanted: PacketKind) -> String {
        let producers: Vec<String> = self
            .stages
            .iter()
            .zip(self.checked.iter())
            .filter(|(_, c)| {
                c.stage
                    .is_some_and(|(_, d)| d.output.into_option() == Some(wanted))
            })
            .filter_map(|(s, _)| {
                s.id.as_ref()
                    .map(|id| format!("`{}`", shown_id(id.get_ref())))
            })
            .collect();
        if producers.is_empty() {
            format!("add `inputs = [\"ID\"]` naming a stage that emits {wanted}")
        } else {
            format!(
                "add `inputs = [\"ID\"]`; stages here that emit {wanted}: {}",
                listing(producers.into_iter())
            )
        }
    }

    /// Packet types along each edge into a data-plane stage.
    fn check_data_edges(
        &self,
        descriptor: &StageDescriptor,
        registry: &PluginRegistry,
        issues: &mut Vec<Issue>,
    ) -> bool {
        let Some(wanted) = descriptor.input.into_option() else {
            return true;
        };
        let name = &self.name;
        let kind = descriptor.kind.as_str();
        let mut ok = true;
        for (span, from_name, upstream) in self.known_upstreams() {
            match upstream.output.into_option() {
                Some(emitted) if emitted == wanted => {}
                Some(emitted) => {
                    issues.push(
                        Issue::new(
                            span.clone(),
                            format!(
                                "packet types do not match: stage {name} (`{kind}`) takes {wanted}, but its input {from_name} (`{}`) emits {emitted}",
                                upstream.kind
                            ),
                        )
                        .hint(converters(registry, emitted, wanted)),
                    );
                    ok = false;
                }
                None => {
                    issues.push(
                        Issue::new(
                            span.clone(),
                            format!("stage {name} reads from {from_name}, but `{}` is a sink and emits nothing", upstream.kind),
                        )
                        .hint("read from the stage that feeds the sink instead"),
                    );
                    ok = false;
                }
            }
        }
        ok
    }
}

/// "a or b": the packet types a control stage accepts, for messages.
fn accepted(accepts: &[PacketKind]) -> String {
    accepts
        .iter()
        .map(|k| k.name())
        .collect::<Vec<_>>()
        .join(" or ")
}

/// A hint on which stage kinds could sit between `emitted` and `wanted`.
fn converters(registry: &PluginRegistry, emitted: PacketKind, wanted: PacketKind) -> String {
    let mut direct = Vec::new();
    let mut takers = Vec::new();
    for kind in registry.stage_kinds() {
        let Some((_, d)) = registry.stage(kind) else {
            continue;
        };
        if d.input.into_option() == Some(emitted) {
            takers.push(format!("`{kind}`"));
            if d.output.into_option() == Some(wanted) {
                direct.push(format!("`{kind}`"));
            }
        }
    }
    if !direct.is_empty() {
        format!(
            "put a stage that turns {emitted} into {wanted} between them: {}",
            direct.join(", ")
        )
    } else if !takers.is_empty() {
        format!("stage kinds that take {emitted}: {}", takers.join(", "))
    } else {
        format!("no loaded stage kind takes {emitted}")
    }
}

//! Do the packet types match along each edge? A data-plane stage has one
//! input per input port of its kind, a control stage inputs exactly when
//! it takes some, and each upstream port can emit a kind the port it feeds
//! takes. (Which kind it does emit is settled when formats are negotiated.)

use super::inputs::StageInputs;
use super::report::{Issue, Span, listing, name_of, shown_id};
use super::stage::Upstream;
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
        let accepts: Vec<PacketKind> = descriptor
            .inputs
            .first()
            .map(|port| port.kinds.iter().copied().collect())
            .unwrap_or_default();
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
    /// already), each with its place in `inputs`, its entry's span, its
    /// name, the kinds its output port can emit (none for a sink) and its
    /// descriptor.
    fn known_upstreams(
        &self,
    ) -> impl Iterator<Item = (usize, &Span, String, Vec<PacketKind>, &'r StageDescriptor)> {
        self.resolved
            .iter()
            .enumerate()
            .filter_map(|(place, Upstream { from, port, span })| {
                let (_, upstream) = self.checked[*from].stage?;
                let kinds = upstream
                    .outputs
                    .get(*port)
                    .map(|p| p.kinds.iter().copied().collect())
                    .unwrap_or_default();
                Some((place, span, name_of(&self.stages[*from]), kinds, upstream))
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
        for (_, span, from_name, emitted, upstream) in self.known_upstreams() {
            match emitted.first() {
                Some(_) if emitted.iter().any(|k| accepts.contains(k)) => {}
                Some(_) => {
                    issues.push(
                        Issue::new(
                            span.clone(),
                            format!(
                                "packet types do not match: control stage {name} (`{kind}`) takes {}, but its input {from_name} (`{}`) emits {}",
                                accepted(accepts),
                                upstream.kind,
                                accepted(&emitted)
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

    /// Inputs listed to a source, or not one per input port to a stage
    /// that has some (with the stages here that emit what is missing, for
    /// the hint).
    fn check_data_count(&self, descriptor: &StageDescriptor, issues: &mut Vec<Issue>) -> bool {
        let (name, stage, listed) = (&self.name, self.stage, self.listed);
        let kind = descriptor.kind.as_str();
        let ports = &descriptor.inputs;
        if ports.is_empty() {
            if let (Some(inputs), false) = (&stage.inputs, listed.is_empty()) {
                issues.push(
                    Issue::new(
                        inputs.span(),
                        format!("stage {name} is a `{kind}`, a source that takes no input, but it lists inputs"),
                    )
                    .hint("remove `inputs` from this stage"),
                );
                return false;
            }
            return true;
        }
        let required = ports.iter().filter(|p| !p.optional).count();
        if (required..=ports.len()).contains(&listed.len()) && !listed.is_empty() {
            return true;
        }
        let names = listing(ports.iter().map(|p| match p.optional {
            true => format!("`{}` (optional)", p.name),
            false => format!("`{}`", p.name),
        }));
        if listed.is_empty() {
            let wanted: Vec<PacketKind> = ports[0].kinds.iter().copied().collect();
            let takes = if ports.len() == 1 {
                accepted(&wanted)
            } else {
                format!("{} inputs ({names})", count_range(required, ports.len()))
            };
            issues.push(
                Issue::new(
                    stage.plugin_span(),
                    format!("stage {name} (`{kind}`) takes {takes} but has no `inputs`"),
                )
                .hint(self.producers_hint(&wanted)),
            );
            return false;
        }
        let span = stage
            .inputs
            .as_ref()
            .map_or(stage.plugin_span(), |i| i.span());
        let (takes, hint) = if ports.len() == 1 {
            (
                "one input".to_string(),
                "one stage may feed several (fan-out), but this stage reads one stream".to_string(),
            )
        } else {
            (
                format!("{} inputs ({names})", count_range(required, ports.len())),
                format!(
                    "list one input per port, in this order: {names}; `id.port` names another stage's output port"
                ),
            )
        };
        issues.push(
            Issue::new(
                span,
                format!(
                    "stage {name} (`{kind}`) takes {takes}, but `inputs` lists {}: {}",
                    listed.len(),
                    listing(
                        listed
                            .iter()
                            .map(|i| format!("`{}`", shown_id(i.get_ref())))
                    )
                ),
            )
            .hint(hint),
        );
        false
    }

    /// How to give a stage that takes `wanted` its input: the stages of the
    /// file that emit it, when there are any.
    fn producers_hint(&self, wanted: &[PacketKind]) -> String {
        let producers: Vec<String> = self
            .stages
            .iter()
            .zip(self.checked.iter())
            .filter(|(_, c)| {
                c.stage.is_some_and(|(_, d)| {
                    d.outputs
                        .iter()
                        .any(|p| p.kinds.iter().any(|k| wanted.contains(k)))
                })
            })
            .filter_map(|(s, _)| {
                s.id.as_ref()
                    .map(|id| format!("`{}`", shown_id(id.get_ref())))
            })
            .collect();
        let wanted = if PacketKind::ALL.iter().all(|k| wanted.contains(k)) {
            "packets".to_string()
        } else {
            accepted(wanted)
        };
        if producers.is_empty() {
            format!("add `inputs = [\"ID\"]` naming a stage that emits {wanted}")
        } else {
            format!(
                "add `inputs = [\"ID\"]`; stages here that emit {wanted}: {}",
                listing(producers.into_iter())
            )
        }
    }

    /// Packet types along each edge into a data-plane stage: each upstream
    /// port can emit a kind of the input port it feeds.
    fn check_data_edges(
        &self,
        descriptor: &StageDescriptor,
        registry: &PluginRegistry,
        issues: &mut Vec<Issue>,
    ) -> bool {
        let name = &self.name;
        let kind = descriptor.kind.as_str();
        let mut ok = true;
        for (place, span, from_name, emitted, upstream) in self.known_upstreams() {
            let Some(port) = descriptor.inputs.get(place) else {
                continue; // too many inputs, reported by the count
            };
            let wanted: Vec<PacketKind> = port.kinds.iter().copied().collect();
            let on_port = if descriptor.inputs.len() > 1 {
                format!(" on input `{}`", port.name)
            } else {
                String::new()
            };
            if emitted.is_empty() {
                issues.push(
                    Issue::new(
                        span.clone(),
                        format!("stage {name} reads from {from_name}, but `{}` is a sink and emits nothing", upstream.kind),
                    )
                    .hint("read from the stage that feeds the sink instead"),
                );
                ok = false;
            } else if !emitted.iter().any(|k| wanted.contains(k)) {
                issues.push(
                    Issue::new(
                        span.clone(),
                        format!(
                            "packet types do not match: stage {name} (`{kind}`) takes {}{on_port}, but its input {from_name} (`{}`) emits {}",
                            accepted(&wanted),
                            upstream.kind,
                            accepted(&emitted)
                        ),
                    )
                    .hint(converters(registry, &emitted, &wanted)),
                );
                ok = false;
            }
        }
        ok
    }
}

/// "a or b": the packet types a control stage accepts, for messages.
pub(super) fn accepted(accepts: &[PacketKind]) -> String {
    if PacketKind::ALL.iter().all(|k| accepts.contains(k)) {
        return "packets of any kind".to_string();
    }
    accepts
        .iter()
        .map(|k| k.name())
        .collect::<Vec<_>>()
        .join(" or ")
}

/// A hint on which stage kinds could sit between `emitted` and `wanted`: a
/// stage that takes what is emitted and makes what is wanted, and cannot
/// make what is emitted (a stage that can keeps its input's kind).
pub(super) fn converters(
    registry: &PluginRegistry,
    emitted: &[PacketKind],
    wanted: &[PacketKind],
) -> String {
    let mut direct = Vec::new();
    let mut takers = Vec::new();
    let overlaps = |kinds: &hsp_sdk::abi::PortDescriptor, set: &[PacketKind]| {
        kinds.kinds.iter().any(|k| set.contains(k))
    };
    for kind in registry.stage_kinds() {
        let Some((_, d)) = registry.stage(kind) else {
            continue;
        };
        if let ([input], [output, ..]) = (&d.inputs[..], &d.outputs[..]) {
            if overlaps(input, emitted) {
                takers.push(format!("`{kind}`"));
                if overlaps(output, wanted) && !overlaps(output, emitted) {
                    direct.push(format!("`{kind}`"));
                }
            }
        }
    }
    let (emitted, wanted) = (accepted(emitted), accepted(wanted));
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

/// `2`, or `1 to 2` when some ports are optional.
fn count_range(required: usize, all: usize) -> String {
    if required == all {
        all.to_string()
    } else {
        format!("{required} to {all}")
    }
}

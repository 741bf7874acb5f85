//! Limits a pipeline must keep to be runnable, checked when it is validated
//! so that a file that validates also runs: how many stages it has, how deep
//! its data-plane chains go, and how much memory the runtime will
//! preallocate for its packets. (How long an id may be is a shape check, in
//! `parse.rs`.)
//!
//! Without these, a file could pass `host validate` and then abort `host
//! run`: a pool of 2^20 packets of 1024 channels asks for ~128 GiB, and a
//! chain of thousands of stages overflows the data-plane thread's stack.

use super::memory_limit::{MEMORY_LIMIT_ENV, MemoryLimit};
use super::report::{Issue, Span};
use hsp_sdk::runtime::PipelineData;
use hsp_sdk::{Event, PacketKind, StreamFormat};
use std::mem::size_of;

/// The most stages one pipeline may have.
///
/// The data-plane thread visits every stage on each pass, every stage with
/// an output preallocates a pool, and a few of validation's walks are
/// quadratic in the stage count. EEG pipelines have tens of stages; 1024
/// leaves them ample room while keeping a generated or corrupted file of
/// many thousands of stages from costing seconds before it is refused.
pub(crate) const MAX_STAGES: usize = 1024;

/// The longest chain of data-plane stages, from a source to a sink,
/// counting both.
///
/// The data plane hands a packet straight to a consumer that can take it
/// (one that works in place, or a sink) with a nested call. Before the
/// runtime bounded that nesting (at 32 hand-offs, `runtime/data_plane/step.rs`),
/// an unoptimised build overflowed the thread's 2 MiB stack between 800 and
/// 900 stages of `passthrough` or `gain` (about 2.4 KiB a stage). The limit
/// stays as a second line of defence, with a margin of three, and is far
/// beyond real pipelines.
pub(crate) const MAX_DEPTH: usize = 256;

/// Packets a bridge to the control plane preallocates per data-plane stage
/// that control stages read (its queue of 32, plus the packet being
/// delivered and one spare; `runtime/bridge.rs`).
const BRIDGE_PACKETS: u64 = 34;

/// Events the control plane preallocates for its stages' output.
const CONTROL_EVENT_POOL: u64 = 1024;

/// Bookkeeping per pooled packet beyond its header and values: the pool's
/// free-list slot and the allocator's own header, rounded up.
const SLOT_OVERHEAD: u64 = 64;

/// Bytes per queued message on a control stage's channel, rounded up.
const CONTROL_MESSAGE_BYTES: u64 = 64;

/// What the memory estimate needs to know of one stage (indices are the
/// stages' positions in the file).
#[derive(Debug, Clone, Default)]
pub(crate) struct StageShape {
    /// Control stages run on the control plane.
    pub control: bool,
    /// The stage's plugin can work in place and the stage is not under
    /// `on_error = "bypass"`.
    pub can_work_in_place: bool,
    /// Negotiated formats, per input port and per output port; empty for a
    /// stage that failed validation (it then counts for nothing).
    pub input: Vec<StreamFormat>,
    pub output: Vec<StreamFormat>,
    /// The stages and output ports it reads.
    pub inputs: Vec<(usize, usize)>,
    /// Its `queue.capacity`.
    pub capacity: usize,
}

/// How much one stage's packets take, and why.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct StageMemory {
    /// Everything this stage accounts for: its output pool, its bridge to
    /// the control plane, the copies it reads into (control stages) and
    /// its input queues.
    pub bytes: u64,
    /// Packets in its output pool (0 when it has none).
    pub pool_packets: u64,
    /// Bytes per packet of that pool.
    pub packet_bytes: u64,
    /// The pool's size is `[pipeline] pool_size`, not what its consumers'
    /// queues need.
    pub sized_by_pool_size: bool,
}

/// The bytes the runtime preallocates for a pipeline's packets, per stage
/// (file order).
///
/// It follows what `runtime/` builds: per data-plane stage with an output,
/// a pool of `max(pool_size, queued + 4)` packets, `queued` being the
/// capacity + 1 of every edge its packets can sit in (following stages
/// that work in place, which forward the packets they get); a bridge of
/// [`BRIDGE_PACKETS`] packets on every data-plane stage control stages
/// read; per control stage and input, capacity + 1 copies; the queues
/// themselves. Each packet counts its header, its values and
/// [`SLOT_OVERHEAD`] bytes, so the estimate is a little above what is
/// allocated (by well under a percent for any large pool), never below: a
/// pipeline refused here would not have fitted.
pub(crate) fn estimate(
    stages: &[StageShape],
    order: &[usize],
    pool_size: usize,
) -> Vec<StageMemory> {
    let n = stages.len();
    let in_place: Vec<bool> = stages
        .iter()
        .map(|s| !s.control && s.can_work_in_place && s.input.len() == 1 && s.input == s.output)
        .collect();
    // Per stage and output port: the data-plane stages it feeds, and
    // whether a control stage reads it.
    let mut data_consumers: Vec<Vec<Vec<usize>>> = stages
        .iter()
        .map(|s| vec![Vec::new(); s.output.len()])
        .collect();
    let mut feeds_control: Vec<Vec<bool>> =
        stages.iter().map(|s| vec![false; s.output.len()]).collect();
    for (index, stage) in stages.iter().enumerate() {
        for &(from, port) in &stage.inputs {
            if from >= n || port >= stages[from].output.len() {
                continue;
            }
            if stage.control {
                feeds_control[from][port] = true;
            } else {
                data_consumers[from][port].push(index);
            }
        }
    }
    // Packets of each output pool that can be away at once, downstream
    // first (without recursion: chains may be long). An in-place stage
    // forwards what it gets on its one output.
    let mut queued: Vec<Vec<u64>> = stages.iter().map(|s| vec![0; s.output.len()]).collect();
    for &index in order.iter().rev() {
        for port in 0..stages[index].output.len() {
            queued[index][port] = data_consumers[index][port]
                .iter()
                .map(|&c| {
                    let edge = stages[c].capacity as u64 + 1;
                    if in_place[c] {
                        edge.saturating_add(queued[c].first().copied().unwrap_or(0))
                    } else {
                        edge
                    }
                })
                .fold(0u64, u64::saturating_add);
        }
    }

    let mut memory = vec![StageMemory::default(); n];
    let mut any_control = false;
    for (index, stage) in stages.iter().enumerate() {
        let this = &mut memory[index];
        if stage.control {
            any_control = true;
            // One pool of copies per input, sized for that input's packets,
            // and the channel's messages.
            let copies = stage.capacity as u64 + 1;
            for &(from, port) in &stage.inputs {
                if let Some(format) = stages.get(from).and_then(|s| s.output.get(port)) {
                    add(&mut this.bytes, copies.saturating_mul(packet_bytes(format)));
                }
            }
            add(
                &mut this.bytes,
                (stage.capacity as u64).saturating_mul(CONTROL_MESSAGE_BYTES),
            );
            continue;
        }
        // Its input queues.
        let slot = size_of::<PipelineData>().max(16) as u64;
        add(
            &mut this.bytes,
            (stage.inputs.len() as u64)
                .saturating_mul((stage.capacity as u64 + 1).saturating_mul(slot)),
        );
        for (port, format) in stage.output.iter().enumerate() {
            let per_packet = packet_bytes(format);
            let consumers = data_consumers[index][port].len();
            let needs_pool = !in_place[index] || consumers > 1;
            if needs_pool {
                // A port nothing reads needs one packet to be filled.
                let wanted = queued[index][port].saturating_add(4);
                let (packets, by_pool_size) = if consumers == 0 {
                    (1, false)
                } else {
                    ((pool_size as u64).max(wanted), pool_size as u64 > wanted)
                };
                let bytes = packets.saturating_mul(per_packet);
                // The message names the largest pool of the stage.
                if bytes >= this.pool_packets.saturating_mul(this.packet_bytes) {
                    this.pool_packets = packets;
                    this.packet_bytes = per_packet;
                    this.sized_by_pool_size = by_pool_size;
                }
                add(&mut this.bytes, bytes);
            }
            if feeds_control[index][port] {
                add(&mut this.bytes, BRIDGE_PACKETS.saturating_mul(per_packet));
            }
        }
    }
    if any_control {
        // The control plane's shared event pool, counted on the first
        // control stage.
        if let Some(first) = stages.iter().position(|s| s.control) {
            let events = CONTROL_EVENT_POOL.saturating_mul(event_bytes());
            add(&mut memory[first].bytes, events);
        }
    }
    memory
}

fn add(total: &mut u64, bytes: u64) {
    *total = total.saturating_add(bytes);
}

fn event_bytes() -> u64 {
    size_of::<Event>() as u64 + SLOT_OVERHEAD
}

/// Bytes one pooled packet of `format` takes: header, `f32` values and
/// [`SLOT_OVERHEAD`].
pub(crate) fn packet_bytes(format: &StreamFormat) -> u64 {
    if format.kind == PacketKind::Event {
        // An event is all header: it has no buffer of values.
        return event_bytes();
    }
    let header = format.kind.packet_size() as u64;
    let values = u64::from(format.channels).saturating_mul(u64::from(format.values_per_channel));
    header
        .saturating_add(values.saturating_mul(size_of::<f32>() as u64))
        .saturating_add(SLOT_OVERHEAD)
}

/// What the memory check needs to say where the problem is.
pub(crate) struct MemoryPlaces<'a> {
    /// Each stage's `[[stage]]` header.
    pub headers: &'a [Span],
    /// Each stage's name and kind for messages: "`eeg` (`synth`)".
    pub names: &'a [String],
    /// `[pipeline] pool_size`'s value, when the file sets it.
    pub pool_size: Option<Span>,
}

/// An issue when the estimated `memory` is over `limit`: at `pool_size`
/// when that is what sizes the largest part, else at the stage whose
/// packets take the most.
pub(crate) fn check_memory(
    memory: &[StageMemory],
    limit: MemoryLimit,
    places: &MemoryPlaces<'_>,
) -> Option<Issue> {
    let total = memory
        .iter()
        .map(|m| m.bytes)
        .fold(0u64, u64::saturating_add);
    if total <= limit.bytes {
        return None;
    }
    let (largest, part) = memory.iter().enumerate().max_by_key(|(_, m)| m.bytes)?;
    let name = places.names.get(largest).map_or("?", String::as_str);
    let mut why = format!("stage {name} takes the most, {}", bytes_text(part.bytes));
    if part.pool_packets > 0
        && part.pool_packets.saturating_mul(part.packet_bytes) * 2 >= part.bytes
    {
        why.push_str(&format!(
            ": an output pool of {} packets of {} each",
            part.pool_packets,
            bytes_text(part.packet_bytes)
        ));
    }
    let (span, fix) = match (&places.pool_size, part.sized_by_pool_size) {
        (Some(span), true) => (span.clone(), "lower `pool_size`"),
        _ => (
            places.headers.get(largest).cloned().unwrap_or(0..0),
            "lower `pool_size`, the queues' `capacity` or the packet shape",
        ),
    };
    Some(
        Issue::new(
            span,
            format!(
                "the pipeline would preallocate about {} for its packets, more than {}",
                bytes_text(total),
                limit.describe()
            ),
        )
        .hint(format!(
            "{why}; {fix}, or raise the limit with `memory_limit_mb` in `[pipeline]` or {MEMORY_LIMIT_ENV} (in MiB)"
        )),
    )
}

/// Longest chain of data-plane stages ending at each stage (a source
/// counts 1; control stages 0), in `order` (upstream first).
pub(crate) fn depths(stages: &[StageShape], order: &[usize]) -> Vec<usize> {
    let mut depth = vec![0usize; stages.len()];
    for &index in order {
        let stage = &stages[index];
        if stage.control {
            continue;
        }
        let deepest = stage
            .inputs
            .iter()
            .filter_map(|&(from, _)| depth.get(from).copied())
            .max()
            .unwrap_or(0);
        depth[index] = deepest + 1;
    }
    depth
}

/// "1.5 GiB", "64.0 KiB", "512 bytes".
pub(crate) fn bytes_text(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} bytes");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// `text` cut to `max` characters, with "…" when cut (for echoing values
/// of any length in messages).
pub(crate) fn shorten(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_string(),
        Some((cut, _)) => format!("{}…", &text[..cut]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::memory_limit::LimitSource;

    fn eeg(channels: u32, samples: u32) -> StreamFormat {
        StreamFormat::eeg(
            PacketKind::RawEeg,
            channels as usize,
            250.0,
            samples as usize,
        )
    }

    fn source(format: &StreamFormat) -> StageShape {
        StageShape {
            output: vec![format.clone()],
            capacity: 16,
            ..StageShape::default()
        }
    }

    fn filter(from: usize, format: &StreamFormat, in_place: bool, capacity: usize) -> StageShape {
        StageShape {
            can_work_in_place: in_place,
            input: vec![format.clone()],
            output: vec![format.clone()],
            inputs: vec![(from, 0)],
            capacity,
            ..StageShape::default()
        }
    }

    fn sink(from: usize, format: &StreamFormat) -> StageShape {
        StageShape {
            input: vec![format.clone()],
            inputs: vec![(from, 0)],
            capacity: 16,
            ..StageShape::default()
        }
    }

    #[test]
    fn pools_are_sized_like_the_runtime_sizes_them() {
        let f = eeg(8, 32);
        let per = packet_bytes(&f);
        assert!(per >= 8 * 32 * 4, "{per}");
        // source -> in-place filter (capacity 100) -> sink (capacity 16):
        // the source's packets can sit in both queues; the filter has no pool.
        let stages = [source(&f), filter(0, &f, true, 100), sink(1, &f)];
        let memory = estimate(&stages, &[0, 1, 2], 64);
        assert_eq!(memory[0].pool_packets, 101 + 17 + 4);
        assert!(!memory[0].sized_by_pool_size);
        assert_eq!(memory[1].pool_packets, 0);
        assert_eq!(memory[2].pool_packets, 0);
        // Not in place: each has its own pool of pool_size.
        let stages = [source(&f), filter(0, &f, false, 4), sink(1, &f)];
        let memory = estimate(&stages, &[0, 1, 2], 64);
        assert_eq!((memory[0].pool_packets, memory[1].pool_packets), (64, 64));
        assert!(memory[0].sized_by_pool_size);
        assert!(memory[0].bytes >= 64 * per);
    }

    #[test]
    fn a_pool_of_a_million_packets_of_1024_channels_is_over_any_sane_limit() {
        // The pipeline of the issue: 2^20 packets of 1024 ch x 32 samples.
        let f = eeg(1024, 32);
        let stages = [source(&f), sink(0, &f)];
        let memory = estimate(&stages, &[0, 1], 1 << 20);
        let total: u64 = memory.iter().map(|m| m.bytes).sum();
        assert!(total >= 128 << 30, "{}", bytes_text(total));
        let headers = [0..9, 20..29];
        let names = [
            "`eeg` (`synth`)".to_string(),
            "`out` (`null_sink`)".to_string(),
        ];
        let places = MemoryPlaces {
            headers: &headers,
            names: &names,
            pool_size: Some(40..47),
        };
        let limit = MemoryLimit {
            bytes: 8 << 30,
            source: LimitSource::Environment,
        };
        let issue = check_memory(&memory, limit, &places).expect("over the limit");
        assert_eq!(issue.span, 40..47, "at `pool_size`");
        assert!(
            issue
                .message
                .starts_with("the pipeline would preallocate about 128.")
                && issue.message.ends_with(
                    "GiB for its packets, more than the limit of 8.0 GiB set by HSP_MEMORY_LIMIT_MB"
                ),
            "{}",
            issue.message
        );
        let hint = issue.hint.unwrap();
        assert!(
            hint.starts_with("stage `eeg` (`synth`) takes the most, 128.")
                && hint.contains(": an output pool of 1048576 packets of 128.")
                && hint.contains("lower `pool_size`, or raise the limit"),
            "{hint}"
        );
        // Without `pool_size` in the file, at the stage.
        let places = MemoryPlaces {
            pool_size: None,
            ..places
        };
        let issue = check_memory(&memory, limit, &places).expect("over the limit");
        assert_eq!(issue.span, 0..9);
        // Under a large enough limit, nothing.
        let limit = MemoryLimit {
            bytes: 1 << 40,
            source: LimitSource::File,
        };
        assert!(check_memory(&memory, limit, &places).is_none());
    }

    #[test]
    fn control_readers_count_their_copies_and_the_bridge() {
        let f = eeg(64, 1000);
        let per = packet_bytes(&f);
        let reader = StageShape {
            control: true,
            inputs: vec![(0, 0)],
            capacity: 1000,
            ..StageShape::default()
        };
        let stages = [source(&f), reader];
        let memory = estimate(&stages, &[0, 1], 64);
        // No data-plane stage reads the source: one packet to fill, copied
        // into the bridge at once.
        assert_eq!(memory[0].bytes, (1 + BRIDGE_PACKETS) * per);
        assert!(memory[1].bytes >= 1001 * per);
    }

    #[test]
    fn depth_counts_data_plane_stages_along_the_longest_chain() {
        let f = eeg(1, 1);
        let mut stages = vec![source(&f)];
        for i in 0..10 {
            stages.push(filter(i, &f, true, 1));
        }
        stages.push(StageShape {
            control: true,
            inputs: vec![(10, 0)],
            ..StageShape::default()
        });
        stages.push(filter(0, &f, true, 1));
        let order: Vec<usize> = (0..stages.len()).collect();
        let depth = depths(&stages, &order);
        assert_eq!(depth[0], 1);
        assert_eq!(depth[10], 11);
        assert_eq!(depth[11], 0, "control stages do not count");
        assert_eq!(depth[12], 2);
    }
}

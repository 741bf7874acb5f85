//! `hsp_host::graph::load_pipeline` in-process, with the built plugins: the
//! `PipelineGraph` the runtimes receive (order, edges, configs, formats).

use hsp_host::graph::{EdgePolicy, IdleStrategy, OnError, PipelineGraph, StageType, load_pipeline};
use hsp_host::registry::{LoadPolicy, PluginRegistry, Probe};
use hsp_sdk::PacketKind;
use hsp_tests::{built_plugins_dir, scratch_dir, workspace_root};
use std::sync::OnceLock;

fn registry() -> &'static PluginRegistry {
    static REGISTRY: OnceLock<PluginRegistry> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let registry =
            PluginRegistry::discover(&[built_plugins_dir()], &LoadPolicy::new(Probe::None));
        assert!(registry.failures().is_empty(), "{:?}", registry.failures());
        registry
    })
}

fn load(text: &str, name: &str) -> PipelineGraph {
    let file = scratch_dir(&format!("graph-{name}")).join(format!("{name}.toml"));
    std::fs::write(&file, text).expect("write pipeline");
    load_pipeline(&file, registry()).unwrap_or_else(|errors| {
        panic!(
            "{}",
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        )
    })
}

#[test]
fn stages_come_in_topological_order_with_edges_as_indices_into_it() {
    // Listed sink first, source last.
    let graph = load(
        r#"
[[stage]]
id = "sink"
plugin = "null_sink"
inputs = ["boost"]
queue = { capacity = 4, policy = "drop_oldest" }

[[stage]]
id = "boost"
plugin = "gain"
inputs = ["src.out"]
on_error = "bypass"
[stage.config]
gain = 2

[[stage]]
id = "src"
plugin = "synth"
[stage.config]
channels = 3
sample_rate_hz = 500
block_size = 50
realtime = false
"#,
        "order",
    );
    assert_eq!(graph.name, "order", "defaults to the file stem");
    let ids: Vec<&str> = graph.stages.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["src", "boost", "sink"]);
    let [src, boost, sink] = &graph.stages[..] else {
        unreachable!()
    };

    assert!(src.inputs.is_empty());
    assert!(src.recipe.input_formats.is_empty());
    assert_eq!(
        src.recipe.config_json,
        r#"{"channels":3,"sample_rate_hz":500,"block_size":50,"realtime":false}"#
    );
    let raw = src.recipe.output_format().cloned().expect("synth emits");
    // The source names its channels; the stream carries them downstream.
    assert_eq!(raw.channel(2).label.as_str(), "Pz");
    assert_eq!(
        (raw.kind, raw.channels, raw.values_per_channel),
        (PacketKind::RawEeg, 3, 50)
    );
    assert_eq!((raw.sample_rate_hz, raw.packet_rate_hz), (500.0, 10.0));
    assert_eq!((src.location.line, src.location.column), (16, 1));

    assert_eq!(boost.inputs.len(), 1);
    assert_eq!(boost.inputs[0].from, 0);
    assert_eq!(
        (boost.inputs[0].capacity, boost.inputs[0].policy),
        (16, EdgePolicy::Block)
    );
    assert_eq!(boost.recipe.on_error, OnError::Bypass);
    assert_eq!(boost.recipe.input_formats, std::slice::from_ref(&raw));
    assert_eq!(boost.recipe.output_formats, [raw]);

    assert_eq!(sink.inputs[0].from, 1);
    assert_eq!(
        (sink.inputs[0].capacity, sink.inputs[0].policy),
        (4, EdgePolicy::DropOldest)
    );
    assert_eq!(sink.recipe.config_json, "{}");
    assert!(sink.recipe.output_formats.is_empty());
    assert_eq!(sink.stage_type, StageType::DataPlane);
    assert_eq!(graph.consumers(0), [1]);
}

#[test]
fn the_shipped_fan_out_example_has_two_consumers_of_one_stage() {
    let file = workspace_root().join("pipelines/fan_out.toml");
    let graph = load_pipeline(&file, registry()).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(graph.name, "fan_out");
    assert_eq!(graph.settings.pool_size, 64);
    assert_eq!(graph.settings.idle, IdleStrategy::Park);
    assert_eq!(graph.settings.data_plane_threads, 1);
    let tap = graph
        .stages
        .iter()
        .position(|s| s.id == "tap")
        .expect("tap");
    let consumers: Vec<&str> = graph
        .consumers(tap)
        .iter()
        .map(|&i| graph.stages[i].id.as_str())
        .collect();
    assert_eq!(consumers, ["record", "count"]);
}

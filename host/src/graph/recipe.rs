//! `StageRecipe`: everything needed to build one stage, resolved once when
//! the pipeline is validated and carried on its graph node. Every start,
//! restart, parameter change and hot reload builds its stage through one.
//!
//! The recipe holds the plugin's entry points behind [`StageFactory`], so the
//! runtime builds stages without knowing where plugins come from (the
//! registry implements it for a loaded library; tests may use stages
//! compiled into the test itself).

use super::model::OnError;
use crate::registry::EntryPoints;
use hsp_sdk::StreamFormat;
use hsp_sdk::abi::{ConfigType, FfiControlStageBox, FfiStageBox, StageDescriptor};
use std::fmt;
use std::sync::Arc;

/// A plugin library's count of the allocations its code made on the
/// calling thread.
pub type AllocationCounter = extern "C" fn() -> u64;

/// The entry points of the plugin that provides a stage kind.
///
/// Each call may run plugin code, caught at the library boundary: an error
/// (or a panic) comes back as the plugin's message.
pub trait StageFactory: Send + Sync {
    /// What stage `kind` emits with `config_json` on each output port,
    /// given `inputs`, one per input port.
    fn output_formats(
        &self,
        kind: &str,
        config_json: &str,
        inputs: &[StreamFormat],
    ) -> Result<Vec<StreamFormat>, String>;

    /// A data-plane stage of `kind`, built, not started.
    fn create_stage(
        &self,
        kind: &str,
        config_json: &str,
        inputs: &[StreamFormat],
    ) -> Result<FfiStageBox, String>;

    /// A control stage of `kind`, built, not started.
    fn create_control_stage(
        &self,
        kind: &str,
        config_json: &str,
    ) -> Result<FfiControlStageBox, String>;

    /// The library's allocation counter, when it publishes one.
    fn allocation_counter(&self) -> Option<AllocationCounter> {
        None
    }
}

/// What the plugin said about the stage kind, beside its entry points.
#[derive(Clone)]
pub struct KindFacts {
    /// The plugin's code can work on its input packet in place.
    pub can_work_in_place: bool,
    /// It may block: it runs on a thread of its own.
    pub may_block: bool,
    /// Its input ports' names.
    pub input_ports: Arc<[String]>,
    /// Its output ports' names.
    pub output_ports: Arc<[String]>,
    /// Each config key with its type, for values sent by a program.
    pub key_types: Arc<[(String, ConfigType)]>,
}

impl KindFacts {
    /// The facts `descriptor` declares.
    pub fn of(descriptor: &StageDescriptor) -> Self {
        Self {
            can_work_in_place: descriptor.in_place,
            may_block: descriptor.may_block,
            input_ports: descriptor
                .inputs
                .iter()
                .map(|p| p.name.to_string())
                .collect(),
            output_ports: descriptor
                .outputs
                .iter()
                .map(|p| p.name.to_string())
                .collect(),
            key_types: descriptor
                .config
                .iter()
                .map(|field| (field.key.to_string(), field.ty))
                .collect(),
        }
    }
}

/// Why a stage could not be built, or a change of one was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BuildError {
    /// The plugin refused the config (or panicked building it).
    #[error("{0}")]
    Refused(String),
    /// The stage was built but failed to start (or to resume).
    #[error("{0}")]
    StartFailed(String),
    /// A live change would change what the stage emits.
    #[error("it would change the stage's output ({new} instead of {old}); that needs a restart")]
    OutputWouldChange {
        /// What it emits now.
        old: String,
        /// What it would emit.
        new: String,
    },
    /// A live change would switch the stage between working in place and not.
    #[error(
        "it would switch between working in place and not (only `on_error = \"stop\"` works in place, and the plugin's code decides the rest); that needs a restart"
    )]
    InPlaceWouldChange,
}

/// How to build one stage: its plugin, config, error policy and the formats
/// negotiated along its edges.
#[derive(Clone)]
pub struct StageRecipe {
    /// `plugin`: the stage kind.
    pub kind: String,
    /// `[stage.config]` as a JSON object, as plugins receive it.
    pub config_json: String,
    /// `on_error`.
    pub on_error: OnError,
    /// Format of each input port's edge, in port order (none for a source).
    pub input_formats: Vec<StreamFormat>,
    /// Format of what it emits on each output port (none for a sink).
    pub output_formats: Vec<StreamFormat>,
    factory: Arc<dyn StageFactory>,
    facts: KindFacts,
}

impl fmt::Debug for StageRecipe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StageRecipe")
            .field("kind", &self.kind)
            .field("config_json", &self.config_json)
            .field("on_error", &self.on_error)
            .field("input_formats", &self.input_formats)
            .field("output_formats", &self.output_formats)
            .finish_non_exhaustive()
    }
}

impl StageRecipe {
    /// A recipe for a stage of `kind` made by `factory`. The formats are the
    /// ones validation negotiated.
    pub fn new(
        kind: String,
        config_json: String,
        on_error: OnError,
        formats: (Vec<StreamFormat>, Vec<StreamFormat>),
        factory: Arc<dyn StageFactory>,
        facts: KindFacts,
    ) -> Self {
        Self {
            kind,
            config_json,
            on_error,
            input_formats: formats.0,
            output_formats: formats.1,
            factory,
            facts,
        }
    }

    /// Builds the data-plane stage (on the calling thread; not started).
    pub fn build(&self) -> Result<FfiStageBox, BuildError> {
        self.factory
            .create_stage(&self.kind, &self.config_json, &self.input_formats)
            .map_err(BuildError::Refused)
    }

    /// Its library's allocation counter, when it publishes one.
    pub fn allocation_counter(&self) -> Option<AllocationCounter> {
        self.factory.allocation_counter()
    }

    /// Builds the control stage (on the calling thread; not started).
    pub fn build_control(&self) -> Result<FfiControlStageBox, BuildError> {
        self.factory
            .create_control_stage(&self.kind, &self.config_json)
            .map_err(BuildError::Refused)
    }

    /// Whether the stage works on its input packets in place: when its
    /// plugin can, its input has exactly the shape of its output, and only
    /// under `on_error = "stop"` (`bypass` must forward the input as it
    /// came, and `restart` must give it, intact, to the fresh stage).
    pub fn runs_in_place(&self) -> bool {
        self.facts.can_work_in_place
            && !self.facts.may_block
            && self.on_error == OnError::Stop
            && self.input_formats.len() == 1
            && self.input_formats == self.output_formats
    }

    /// Whether it may block, and so runs on a thread of its own.
    pub fn may_block(&self) -> bool {
        self.facts.may_block
    }

    /// The name of output port `port`.
    pub fn output_port_name(&self, port: usize) -> &str {
        self.facts
            .output_ports
            .get(port)
            .map_or("out", String::as_str)
    }

    /// The name of input port `port`.
    pub fn input_port_name(&self, port: usize) -> &str {
        self.facts
            .input_ports
            .get(port)
            .map_or("in", String::as_str)
    }

    /// Its first output's format: what a one-output stage emits.
    pub fn output_format(&self) -> Option<&StreamFormat> {
        self.output_formats.first()
    }

    /// The same stage with `config_json` and `on_error`, for a live change:
    /// the plugin must accept the config, and the stage must keep emitting
    /// what it does and keep working in place or not.
    pub fn changed(&self, config_json: String, on_error: OnError) -> Result<Self, BuildError> {
        let output = self
            .factory
            .output_formats(&self.kind, &config_json, &self.input_formats)
            .map_err(BuildError::Refused)?;
        if !same_shapes(&output, &self.output_formats) {
            let describe = |formats: &[StreamFormat]| {
                if formats.is_empty() {
                    return "nothing".to_string();
                }
                formats
                    .iter()
                    .map(super::describe_format)
                    .collect::<Vec<_>>()
                    .join("; ")
            };
            return Err(BuildError::OutputWouldChange {
                old: describe(&self.output_formats),
                new: describe(&output),
            });
        }
        // The channels' descriptions may change (a filter's band is part of
        // what it says it did); downstream stages keep the ones they were
        // built with until the pipeline restarts.
        let changed = Self {
            config_json,
            on_error,
            output_formats: output,
            ..self.clone()
        };
        if changed.runs_in_place() != self.runs_in_place() {
            return Err(BuildError::InPlaceWouldChange);
        }
        Ok(changed)
    }

    /// `value` for config key `key` as its type takes a value sent by a
    /// program ([`ConfigType::normalize`]: `4.0` for an integer is `4`);
    /// whether it fits is then the plugin's check, by the same rule.
    pub fn typed_value(&self, key: &str, value: serde_json::Value) -> serde_json::Value {
        match self.facts.key_types.iter().find(|(k, _)| k == key) {
            Some((_, ty)) => ty.normalize(value),
            None => value,
        }
    }
}

/// Whether two stages' formats carry the same packets, port by port (see
/// [`StreamFormat::same_shape`]).
pub fn same_shapes(a: &[StreamFormat], b: &[StreamFormat]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(a, b)| a.same_shape(b))
}

impl StageFactory for EntryPoints {
    fn output_formats(
        &self,
        kind: &str,
        config_json: &str,
        inputs: &[StreamFormat],
    ) -> Result<Vec<StreamFormat>, String> {
        EntryPoints::output_formats(self, kind, config_json, inputs)
    }

    fn create_stage(
        &self,
        kind: &str,
        config_json: &str,
        inputs: &[StreamFormat],
    ) -> Result<FfiStageBox, String> {
        EntryPoints::create_stage(self, kind, config_json, inputs)
    }

    fn create_control_stage(
        &self,
        kind: &str,
        config_json: &str,
    ) -> Result<FfiControlStageBox, String> {
        EntryPoints::create_control_stage(self, kind, config_json)
    }

    fn allocation_counter(&self) -> Option<AllocationCounter> {
        EntryPoints::allocation_counter(self)
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! Recipes without a plugin behind them, for tests of the graph's
    //! bookkeeping (diffs, limits) that never build a stage.

    use super::*;

    struct NoPlugin;

    impl StageFactory for NoPlugin {
        fn output_formats(
            &self,
            _: &str,
            _: &str,
            inputs: &[StreamFormat],
        ) -> Result<Vec<StreamFormat>, String> {
            Ok(inputs.to_vec())
        }

        fn create_stage(
            &self,
            kind: &str,
            _: &str,
            _: &[StreamFormat],
        ) -> Result<FfiStageBox, String> {
            Err(format!("no plugin behind `{kind}` in this test"))
        }

        fn create_control_stage(&self, kind: &str, _: &str) -> Result<FfiControlStageBox, String> {
            Err(format!("no plugin behind `{kind}` in this test"))
        }
    }

    /// A recipe of `kind` with `config_json` that cannot build a stage.
    pub(crate) fn recipe(kind: &str, config_json: &str) -> StageRecipe {
        StageRecipe::new(
            kind.into(),
            config_json.into(),
            OnError::Stop,
            (Vec::new(), Vec::new()),
            Arc::new(NoPlugin),
            KindFacts {
                can_work_in_place: false,
                may_block: false,
                input_ports: Arc::from([]),
                output_ports: Arc::from([]),
                key_types: Arc::from([]),
            },
        )
    }
}

//! # hsp-sdk
//!
//! The crate an hsp plugin author builds against: the packet types that flow
//! through a pipeline, the pool that owns them, the queues between stages,
//! the [`Stage`] trait, the plugin ABI and a test harness.
//!
//! ## Write your first stage
//!
//! **1. The project.** `host new-plugin my_stage --kind filter` writes a
//! ready one. By hand: a `cdylib` + `rlib` crate depending on exactly the
//! host's `hsp-sdk`, on `abi_stable = "=0.11.3"` and on `serde`, built with
//! `panic = "unwind"` (the SDK catches panics at the library boundary; an
//! abort would take the host down).
//!
//! **2. The stage.** A config struct, a stage struct, and [`Stage`]: its
//! kind name, its config (a struct with [`StageConfig`] derived: each field
//! a key, with its type, default, unit and doc declared once), its ports
//! (one packet type each way, or several named ports: [`InputPorts`],
//! [`OutputPorts`]), what it outputs given its inputs' streams
//! ([`StreamFormat`]: shape, rate, and each channel's label, unit and type),
//! and its lifecycle: `new` from config, `start`, `process` once per packet
//! (on the data-plane thread: no allocation, no lock, no blocking, unless
//! the stage sets [`Stage::MAY_BLOCK`] and gets a thread of its own),
//! `stop`.
//!
//! ```
//! use hsp_sdk::{EegPacket, Outcome, PlanarBlock, Stage, StageConfig, StageError, StreamFormat};
//!
//! /// Clips every sample to ±`limit_uv`.
//! pub struct Clip { limit: f32 }
//!
//! #[derive(serde::Deserialize, StageConfig)]
//! #[serde(deny_unknown_fields)]
//! pub struct ClipConfig {
//!     /// Largest magnitude kept.
//!     #[config(default = 100.0, unit = "uV")]
//!     limit_uv: f32,
//! }
//!
//! impl Stage for Clip {
//!     const KIND: &'static str = "clip";
//!     const DOC: &'static str = "Clips every sample to a limit.";
//!     type Config = ClipConfig;
//!     type Input = EegPacket;
//!     type Output = EegPacket;
//!
//!     fn new(config: ClipConfig, _input: &[StreamFormat]) -> Result<Self, StageError> {
//!         if config.limit_uv <= 0.0 {
//!             return Err(StageError::new("`limit_uv` must be positive"));
//!         }
//!         Ok(Clip { limit: config.limit_uv })
//!     }
//!
//!     fn process(&mut self, input: Option<&EegPacket>, output: &mut EegPacket) -> Result<Outcome, StageError> {
//!         let Some(input) = input else { return Ok(Outcome::NoOutput) };
//!         output.copy_from(input).map_err(|e| StageError::new(e.to_string()))?;
//!         for sample in output.values_mut() {
//!             *sample = sample.clamp(-self.limit, self.limit);
//!         }
//!         Ok(Outcome::Emitted)
//!     }
//! }
//!
//! // 3. Test it without a host: the harness drives it exactly as the host
//! //    does (through the ABI adapter, panics caught, outputs sized from the
//! //    declared format).
//! use hsp_sdk::{PacketKind, testing::StageHarness};
//!
//! let format = StreamFormat::eeg(PacketKind::RawEeg, 1, 250.0, 3);
//! let mut block = EegPacket::with_capacity(1, 3);
//! block.values_mut().copy_from_slice(&[-500.0, 5.0, 500.0]);
//! let mut harness = StageHarness::<Clip>::new(r#"{"limit_uv": 50.0}"#, &[format.clone()]).unwrap();
//! let out = harness.run([&block]).unwrap();
//! assert_eq!(out[0].values(), &[-50.0, 5.0, 50.0]);
//!
//! // A config mistake names the key.
//! let error = StageHarness::<Clip>::new(r#"{"limit": 50.0}"#, &[format]).err().unwrap();
//! assert!(error.to_string().contains("unknown key `limit`"));
//! ```
//!
//! **4. Publish it** with one line at the crate root, listing every stage
//! kind of the crate: `hsp_sdk::export_plugin!(Clip);` (see
//! [`export_plugin!`](crate::export_plugin) for a complete, compiled example).
//!
//! **5. Install and run.** `cargo build --release`, then
//! `host plugins install target/release/libmy_stage.so --plugins plugins`,
//! `host plugins inspect clip --plugins plugins`, and use `plugin = "clip"`
//! in a pipeline file. Which SDK changes break plugins, and what the host
//! prints for one built against another SDK, is in [`abi`].
//!
//! ## The data plane's rules, which every type here is built to keep
//!
//! - **No allocation per packet.** [`MemoryPool`](runtime::MemoryPool)
//!   allocates every packet once; [`Packet`](runtime::Packet) returns to its
//!   pool on drop; [`StageQueue`](runtime::StageQueue) is bounded.
//! - **One owner per packet.** A [`Packet`](runtime::Packet) is `Send` but
//!   never `Sync`.
//! - **Backpressure, not growth.** A full queue refuses or waits.
//! - **Waiting never spins.** [`MemoryPool::acquire`](runtime::MemoryPool::acquire),
//!   [`Input::recv`](runtime::Input::recv) and [`Output::send`](runtime::Output::send)
//!   sleep until woken, under any executor.
//!
//! ```
//! use hsp_sdk::{EegPacket, PlanarBlock};
//! use hsp_sdk::runtime::{MemoryPool, StageQueue};
//!
//! let pool = MemoryPool::with_init(4, |_| EegPacket::with_capacity(8, 32));
//! let (mut tx, mut rx) = StageQueue::new(4).split();
//!
//! let mut block = pool.try_acquire().unwrap();
//! block.values_mut().fill(1.0);
//! tx.push(block).unwrap();
//!
//! let block = rx.pop().unwrap();
//! assert_eq!(block.values().iter().sum::<f32>(), 8.0 * 32.0);
//! drop(block);
//! assert_eq!(pool.available(), pool.capacity());
//! ```
#![warn(missing_docs)]

// `#[derive(StageConfig)]` names `::hsp_sdk`, in this crate too.
extern crate self as hsp_sdk;

pub mod abi;
mod alloc_count;
mod config;
mod control;
pub mod data;
#[doc(hidden)]
pub mod export;
mod export_plugin;
pub mod line_file;
mod packet;
mod pipeline_data;
mod polled_queue;
mod pool;
mod ports;
mod queue;
mod shared_queue;
mod stage;
mod sync;
pub mod testing;

pub use data::{
    EVENT_LABEL_CAPACITY, EegPacket, Event, FeaturePacket, FftPacket, FilteredEegPacket,
    PacketKind, PlanarBlock, ShapeError, SpectrumScale,
};

pub use abi::{
    ChannelInfo, ChannelType, ConfigType, Outcome, PacketRef, PhysicalRange, StreamFormat,
};
pub use config::{ConfigSpec, ConfigValue, NoConfig, StageConfig, parse_config};
pub use control::{ControlContext, ControlStage};
pub use ports::{AnyPacket, InputPorts, Out, OutputPorts, Port};
pub use stage::{NoPacket, PacketTag, PortPacket, Stage, StageError};

/// Everything a stage's code names, in one import:
/// `use hsp_sdk::prelude::*;`.
///
/// ```
/// use hsp_sdk::prelude::*;
///
/// #[derive(serde::Deserialize, StageConfig)]
/// #[serde(deny_unknown_fields)]
/// pub struct HalfConfig {}
///
/// /// Halves every sample.
/// pub struct Half;
///
/// impl Stage for Half {
///     const KIND: &'static str = "half";
///     const DOC: &'static str = "Halves every sample.";
///     type Config = HalfConfig;
///     type Input = EegPacket;
///     type Output = EegPacket;
///
///     fn new(_: HalfConfig, _: &[StreamFormat]) -> Result<Self, StageError> {
///         Ok(Half)
///     }
///
///     fn process(&mut self, input: Option<&EegPacket>, output: &mut EegPacket) -> Result<Outcome, StageError> {
///         let Some(input) = input else { return Ok(Outcome::NoOutput) };
///         output.copy_from(input).map_err(|e| StageError::new(e.to_string()))?;
///         output.values_mut().iter_mut().for_each(|s| *s *= 0.5);
///         Ok(Outcome::Emitted)
///     }
/// }
/// ```
pub mod prelude {
    pub use crate::{
        AnyPacket, ChannelInfo, ChannelType, ConfigType, ConfigValue, ControlContext, ControlStage,
        EegPacket, Event, FeaturePacket, FftPacket, FilteredEegPacket, InputPorts, NoConfig,
        NoPacket, Out, Outcome, OutputPorts, PacketKind, PacketRef, PacketTag, PlanarBlock,
        PortPacket, SpectrumScale, Stage, StageConfig, StageError, StreamFormat,
    };
}

/// The machinery the host runs stages with: packets' pools and handles, the
/// queues between stages, the tagged item an edge carries, and the
/// object-safe stage the host drives. A plugin never needs these; tests and
/// tools that drive stages by hand do.
pub mod runtime {
    pub use crate::abi::PacketMut;
    pub use crate::alloc_count::{CountingAllocator, thread_allocations};
    pub use crate::packet::Packet;
    pub use crate::pipeline_data::PipelineData;
    pub use crate::polled_queue::{PolledConsumer, PolledProducer, PolledQueue};
    pub use crate::pool::{MemoryPool, PoolStats};
    pub use crate::queue::{
        Input, Output, PushError, QueueConsumer, QueueProducer, SendError, StageQueue,
    };
    pub use crate::shared_queue::{SharedConsumer, SharedProducer, SharedQueue};
    pub use crate::stage::DataPlaneStage;
}

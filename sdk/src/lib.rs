//! # hsp-sdk
//!
//! The crate an hsp plugin author builds against: the packet types that flow
//! through a pipeline, the pool that owns them, the queues between stages,
//! and (in later modules) the stage traits and the plugin ABI.
//!
//! The data plane's rules, which every type here is built to keep:
//!
//! - **No allocation per packet.** [`MemoryPool`] allocates every packet once;
//!   [`Packet`] returns to its pool on drop; [`StageQueue`] is bounded.
//! - **One owner per packet.** A [`Packet`] is `Send` but never `Sync`.
//! - **Backpressure, not growth.** A full queue refuses or waits.
//! - **Waiting never spins.** [`MemoryPool::acquire`], [`Input::recv`] and
//!   [`Output::send`] sleep until woken, under any executor.
//!
//! ```
//! use hsp_sdk::{EegPacket, MemoryPool, StageQueue};
//!
//! let pool = MemoryPool::with_init(4, |_| EegPacket::with_capacity(8, 32));
//! let (mut tx, mut rx) = StageQueue::new(4).split();
//!
//! let mut block = pool.try_acquire().unwrap();
//! block.samples_mut().fill(1.0);
//! tx.push(block).unwrap();
//!
//! let block = rx.pop().unwrap();
//! assert_eq!(block.samples().iter().sum::<f32>(), 8.0 * 32.0);
//! drop(block);
//! assert_eq!(pool.available(), pool.capacity());
//! ```
#![warn(missing_docs)]

pub mod abi;
mod config;
pub mod data;
#[doc(hidden)]
pub mod export;
mod packet;
mod pipeline_data;
mod pool;
mod queue;
mod stage;
mod sync;
pub mod testing;

pub use data::{
    EVENT_LABEL_CAPACITY, EegPacket, Event, FeaturePacket, FftPacket, FilteredEegPacket,
    PacketKind, ShapeError, SpectrumScale,
};
pub use packet::Packet;
pub use pipeline_data::PipelineData;
pub use pool::{MemoryPool, PoolStats};
pub use queue::{Input, Output, PushError, QueueConsumer, QueueProducer, SendError, StageQueue};

pub use abi::{ConfigType, Outcome, PacketMut, PacketRef, StreamFormat};
pub use config::{ConfigSpec, parse_config};
pub use stage::{DataPlaneStage, NoPacket, PortPacket, Stage, StageError};

//! `PipelineData`: any packet, tagged with its kind, as it travels an edge.

use crate::data::{EegPacket, Event, FeaturePacket, FftPacket, FilteredEegPacket, PacketKind};
use crate::packet::Packet;

macro_rules! pipeline_data {
    ($($(#[doc = $doc:literal])* $variant:ident($type:ident) = $name:literal;)*) => {
        /// One item on a pipeline edge: a pooled packet of one of the packet
        /// types, one variant per row of
        /// [`for_each_packet_kind!`](crate::for_each_packet_kind).
        ///
        /// **Guarantees.** Moving a `PipelineData` moves a packet handle (32
        /// bytes), never its contents, whatever the kind: events are pooled
        /// too, so that a queue slot stays small. Dropping it returns the
        /// packet to its pool.
        ///
        /// ```
        /// use hsp_sdk::{EegPacket, PacketKind, PlanarBlock};
        /// use hsp_sdk::runtime::{MemoryPool, PipelineData};
        ///
        /// let pool = MemoryPool::with_init(1, |_| EegPacket::with_capacity(4, 16));
        /// let item = PipelineData::RawEeg(pool.try_acquire().unwrap());
        /// assert_eq!(item.kind(), PacketKind::RawEeg);
        /// assert_eq!(pool.available(), 0);
        /// drop(item);
        /// assert_eq!(pool.available(), 1);
        /// assert_eq!(std::mem::size_of::<PipelineData>(), 32);
        /// ```
        #[derive(Debug)]
        pub enum PipelineData {
            $(
                $(#[doc = $doc])*
                $variant(Packet<$type>),
            )*
        }

        impl PipelineData {
            /// Which kind of packet this is.
            #[inline]
            pub fn kind(&self) -> PacketKind {
                match self {
                    $(Self::$variant(_) => PacketKind::$variant,)*
                }
            }

            /// The source timestamp (ns since the UNIX epoch) the data descends from.
            #[inline]
            pub fn timestamp_ns(&self) -> u64 {
                match self {
                    $(Self::$variant(packet) => packet.timestamp_ns,)*
                }
            }
        }
    };
}

crate::for_each_packet_kind!(pipeline_data);

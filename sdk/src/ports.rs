//! A stage's ports: [`InputPorts`] and [`OutputPorts`] say which ports a
//! stage has, what each takes or makes, and what `process` is handed for
//! them.
//!
//! | `type Input =` / `type Output =` | ports | `process` gets |
//! |---|---|---|
//! | [`NoPacket`] | none (a source's input, a sink's output) | `Option<&NoPacket>` / `&mut NoPacket` |
//! | a packet type, e.g. [`EegPacket`](crate::EegPacket) | one, `in` / `out` | `Option<&EegPacket>` / `&mut EegPacket` |
//! | [`AnyPacket`] | one input, any kind | `Option<PacketRef>` |
//! | an enum with `#[derive(InputPorts)]` | one per variant | `Option<YourEnum>`: the packet and the port it came on |
//! | a struct with `#[derive(OutputPorts)]` | one per field | `YourStruct`: an [`Out`] per port, sent with [`Out::send`] |

use crate::abi::{PacketMut, PacketRef};
use crate::data::{EegPacket, Event, FeaturePacket, FftPacket, FilteredEegPacket, PacketKind};
use crate::stage::{NoPacket, PacketTag};
use std::cell::Cell;
use std::ops::{Deref, DerefMut};

/// One port of a stage kind, as its [`InputPorts`] or [`OutputPorts`]
/// declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Port {
    /// Its name, as a pipeline writes it after the dot: `inputs = ["stage.port"]`.
    pub name: &'static str,
    /// The packet kinds it takes (input) or can make (output).
    pub kinds: &'static [PacketKind],
    /// An input port a pipeline may leave unconnected (`#[port(optional)]`
    /// on its variant); optional ports come after the required ones, since
    /// `inputs` binds by position. Always `false` for outputs.
    pub optional: bool,
}

/// A stage's input ports, and what `process` is handed from them.
///
/// **Guarantees.** Every call brings at most one packet, from one port.
/// Packets of one port come in the order they were sent. When packets wait
/// on several ports, the one with the oldest timestamp comes first; a stage
/// that must align ports in time keeps what it needs until the other port
/// catches up. Implemented for [`NoPacket`], every packet type,
/// [`AnyPacket`], and enums that derive it:
///
/// ```
/// use hsp_sdk::{EegPacket, Event, InputPorts, PacketKind};
///
/// /// A signal and the markers to cut it at.
/// #[derive(InputPorts)]
/// enum EpochInput<'a> {
///     Signal(&'a EegPacket),
///     Markers(&'a Event),
/// }
///
/// let ports = <EpochInput<'static> as InputPorts>::PORTS;
/// assert_eq!(ports[1].name, "markers");
/// assert_eq!(ports[1].kinds, [PacketKind::Event]);
/// ```
///
/// Each variant is a port, named in snake case, holding a reference to
/// the packet type it takes. The stage names the enum at `'static`:
/// `type Input = EpochInput<'static>;`.
///
/// A port marked `#[port(optional)]` may be left out of a pipeline's
/// `inputs` (a recording sink's annotations); optional ports come last.
/// The stage learns which ports are connected from the number of formats
/// `new` is given, one per connected port, in port order:
///
/// ```
/// use hsp_sdk::{EegPacket, Event, InputPorts};
///
/// #[derive(InputPorts)]
/// enum RecordInput<'a> {
///     Signal(&'a EegPacket),
///     #[port(optional)]
///     Events(&'a Event),
/// }
///
/// let ports = <RecordInput<'static> as InputPorts>::PORTS;
/// assert!(!ports[0].optional && ports[1].optional);
/// ```
pub trait InputPorts: 'static {
    /// What one packet is handed to `process` as.
    type Ref<'a>;
    /// The ports, in order.
    const PORTS: &'static [Port];
    /// `packet`, arrived on port `port`, as `process` takes it; `None` when
    /// the port does not exist or does not take the packet's kind.
    fn from_ref(port: usize, packet: PacketRef<'_>) -> Option<Self::Ref<'_>>;
}

/// A stage's output ports, and what `process` is handed to fill.
///
/// **Guarantees.** Every call gets one packet per output port, with room for
/// the format negotiated for that port; a packet not sent stays with the
/// stage for the next call, with what was written in it. A single port
/// (a packet type) is sent when `process` returns [`Outcome::Emitted`] or
/// [`Outcome::MoreOutput`]; the ports of a derived struct are sent one by
/// one, by [`Out::send`], whatever the outcome (it then says only whether
/// to call again).
///
/// ```
/// use hsp_sdk::{Event, FilteredEegPacket, Out, OutputPorts};
///
/// /// The signal, passed on, and the events found in it.
/// #[derive(OutputPorts)]
/// struct DetectorOutput<'a> {
///     signal: Out<'a, FilteredEegPacket>,
///     events: Out<'a, Event>,
/// }
///
/// let ports = <DetectorOutput<'static> as OutputPorts>::PORTS;
/// assert_eq!([ports[0].name, ports[1].name], ["signal", "events"]);
/// ```
///
/// [`Outcome::Emitted`]: crate::Outcome::Emitted
/// [`Outcome::MoreOutput`]: crate::Outcome::MoreOutput
pub trait OutputPorts: 'static {
    /// What `process` is handed to fill.
    type Mut<'a>;
    /// The ports, in order.
    const PORTS: &'static [Port];
    /// Whether the ports are sent one by one with [`Out::send`] (a derived
    /// struct) rather than by the outcome (a single port).
    const SENDS_EACH: bool;
    /// The host's packets, one per port, as `process` takes them, with
    /// `sent` collecting [`Out::send`]s; `None` when a packet's kind does
    /// not fit its port.
    fn from_muts<'a>(
        packets: &'a mut [PacketMut<'_>],
        sent: &'a Cell<u32>,
    ) -> Option<Self::Mut<'a>>;
}

/// The input of a stage that takes every packet kind on one port (a sink
/// that counts or discards), handed over as the ABI's tagged reference.
///
/// ```
/// use hsp_sdk::{AnyPacket, InputPorts, PacketKind};
///
/// assert_eq!(<AnyPacket as InputPorts>::PORTS[0].kinds, PacketKind::ALL);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct AnyPacket;

impl InputPorts for AnyPacket {
    type Ref<'a> = PacketRef<'a>;
    const PORTS: &'static [Port] = &[Port {
        name: "in",
        kinds: PacketKind::ALL,
        optional: false,
    }];
    #[inline]
    fn from_ref(port: usize, packet: PacketRef<'_>) -> Option<PacketRef<'_>> {
        (port == 0 && packet.kind().is_some()).then_some(packet)
    }
}

/// One output port's packet in a derived [`OutputPorts`] struct: write it
/// through `Deref`, then [`send`](Out::send) it.
pub struct Out<'a, T> {
    packet: &'a mut T,
    bit: u32,
    sent: &'a Cell<u32>,
}

impl<'a, T> Out<'a, T> {
    /// Port `port`'s packet (used by the derive).
    #[doc(hidden)]
    pub fn new(packet: &'a mut T, port: usize, sent: &'a Cell<u32>) -> Self {
        Self {
            packet,
            bit: 1 << port,
            sent,
        }
    }

    /// Sends the packet when `process` returns (unless it returns an error).
    #[inline]
    pub fn send(&mut self) {
        self.sent.set(self.sent.get() | self.bit);
    }

    /// Whether [`send`](Out::send) was called in this call.
    #[inline]
    pub fn is_sent(&self) -> bool {
        self.sent.get() & self.bit != 0
    }
}

impl<T> Deref for Out<'_, T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        self.packet
    }
}

impl<T> DerefMut for Out<'_, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        self.packet
    }
}

impl InputPorts for NoPacket {
    type Ref<'a> = &'a NoPacket;
    const PORTS: &'static [Port] = &[];
    fn from_ref(_: usize, _: PacketRef<'_>) -> Option<&NoPacket> {
        None
    }
}

impl OutputPorts for NoPacket {
    type Mut<'a> = &'a mut NoPacket;
    const PORTS: &'static [Port] = &[];
    const SENDS_EACH: bool = false;
    fn from_muts<'a>(
        packets: &'a mut [PacketMut<'_>],
        _: &'a Cell<u32>,
    ) -> Option<&'a mut NoPacket> {
        match packets {
            [] => Some(Box::leak(Box::new(NoPacket))),
            [packet] => NoPacket::from_mut(packet),
            _ => None,
        }
    }
}

macro_rules! single_ports {
    ($($(#[doc = $doc:literal])* $variant:ident($type:ident) = $name:literal;)*) => {$(
        impl InputPorts for $type {
            type Ref<'a> = &'a $type;
            const PORTS: &'static [Port] = &[Port { name: "in", kinds: <$type as PacketTag>::KINDS, optional: false }];
            #[inline]
            fn from_ref(port: usize, packet: PacketRef<'_>) -> Option<&$type> {
                if port == 0 { <$type as PacketTag>::from_ref(packet) } else { None }
            }
        }

        impl OutputPorts for $type {
            type Mut<'a> = &'a mut $type;
            const PORTS: &'static [Port] = &[Port { name: "out", kinds: <$type as PacketTag>::KINDS, optional: false }];
            const SENDS_EACH: bool = false;
            #[inline]
            fn from_muts<'a>(packets: &'a mut [PacketMut<'_>], _: &'a Cell<u32>) -> Option<&'a mut $type> {
                match packets {
                    [packet] => <$type as PacketTag>::from_mut(packet),
                    _ => None,
                }
            }
        }
    )*};
}

crate::for_each_packet_kind!(single_ports);

pub use hsp_sdk_macros::{InputPorts, OutputPorts};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PlanarBlock;

    #[derive(InputPorts)]
    enum TwoIn<'a> {
        Signal(&'a EegPacket),
        Markers(&'a Event),
    }

    #[derive(OutputPorts)]
    struct TwoOut<'a> {
        signal: Out<'a, FilteredEegPacket>,
        events: Out<'a, Event>,
    }

    #[test]
    fn a_derived_input_takes_each_port_s_kinds_and_refuses_others() {
        let eeg = FilteredEegPacket::with_capacity(1, 1);
        let event = Event::new(7, "x");
        let port0 = <TwoIn<'static> as InputPorts>::from_ref(0, eeg.as_packet_ref());
        assert!(matches!(port0, Some(TwoIn::Signal(block)) if block.channels() == 1));
        let port1 = <TwoIn<'static> as InputPorts>::from_ref(1, event.as_packet_ref());
        assert!(matches!(port1, Some(TwoIn::Markers(e)) if e.code == 7));
        assert!(<TwoIn<'static> as InputPorts>::from_ref(1, eeg.as_packet_ref()).is_none());
        assert!(<TwoIn<'static> as InputPorts>::from_ref(2, event.as_packet_ref()).is_none());
    }

    #[test]
    fn a_derived_output_sends_only_what_was_sent() {
        let mut eeg = FilteredEegPacket::with_capacity(1, 1);
        let mut event = Event::new(0, "");
        let mut packets = [eeg.as_packet_mut(), event.as_packet_mut()];
        let sent = Cell::new(0);
        let mut out = <TwoOut<'static> as OutputPorts>::from_muts(&mut packets, &sent).unwrap();
        out.events.code = 3;
        out.events.send();
        assert!(!out.signal.is_sent());
        assert_eq!(sent.get(), 0b10);
        let mut wrong = [event.as_packet_mut()];
        assert!(<TwoOut<'static> as OutputPorts>::from_muts(&mut wrong, &sent).is_none());
    }

    #[test]
    fn an_eeg_port_takes_filtered_eeg_and_a_filtered_port_does_not_take_raw() {
        let raw = EegPacket::with_capacity(1, 1);
        let filtered = FilteredEegPacket::with_capacity(1, 1);
        assert!(<EegPacket as InputPorts>::from_ref(0, filtered.as_packet_ref()).is_some());
        assert!(<FilteredEegPacket as InputPorts>::from_ref(0, raw.as_packet_ref()).is_none());
        assert!(<EegPacket as InputPorts>::from_ref(1, raw.as_packet_ref()).is_none());
    }
}

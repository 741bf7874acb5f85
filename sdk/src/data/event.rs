use super::ShapeError;
use crate::abi::StreamFormat;
use crate::stage::PortPacket;
use abi_stable::StableAbi;

/// Bytes an [`Event`] label holds (UTF-8); longer labels are cut at a
/// character boundary.
pub const EVENT_LABEL_CAPACITY: usize = 48;

/// A small, fixed-size event or marker (a threshold crossing, a stimulus
/// onset). `Copy` and allocation-free, so it travels by value.
///
/// ```
/// use hsp_sdk::Event;
///
/// let onset = Event::new(7, "stimulus/left").with_value(1.0);
/// assert_eq!(onset.label(), "stimulus/left");
/// assert_eq!(onset.code, 7);
/// ```
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq)]
pub struct Event {
    /// When it happened, ns since the UNIX epoch.
    pub timestamp_ns: u64,
    /// The stream it refers to.
    pub stream_id: u32,
    /// A numeric code, meaning defined by the emitting stage.
    pub code: u32,
    /// A value carried with the event (the level crossed, say).
    pub value: f64,
    /// How long it lasts, in ns; 0 for an instant (a marker). A recording's
    /// annotations carry theirs (a sleep stage: 30 s).
    pub duration_ns: u64,
    label_len: u32,
    label: [u8; EVENT_LABEL_CAPACITY],
}

impl Event {
    /// An event with `code` and `label` (cut to [`EVENT_LABEL_CAPACITY`] bytes).
    pub fn new(code: u32, label: &str) -> Self {
        let mut cut = label.len().min(EVENT_LABEL_CAPACITY);
        while !label.is_char_boundary(cut) {
            cut -= 1;
        }
        let mut bytes = [0; EVENT_LABEL_CAPACITY];
        bytes[..cut].copy_from_slice(&label.as_bytes()[..cut]);
        Self {
            timestamp_ns: 0,
            stream_id: 0,
            code,
            value: 0.0,
            duration_ns: 0,
            label_len: cut as u32,
            label: bytes,
        }
    }

    /// The same event carrying `value`.
    pub fn with_value(mut self, value: f64) -> Self {
        self.value = value;
        self
    }

    /// The same event lasting `duration_ns`.
    pub fn lasting(mut self, duration_ns: u64) -> Self {
        self.duration_ns = duration_ns;
        self
    }

    /// The same event stamped at `timestamp_ns`.
    pub fn at(mut self, timestamp_ns: u64) -> Self {
        self.timestamp_ns = timestamp_ns;
        self
    }

    /// The label.
    pub fn label(&self) -> &str {
        let len = (self.label_len as usize).min(EVENT_LABEL_CAPACITY);
        // `new` only ever stores whole UTF-8 characters; a label mangled
        // across the ABI shows as empty rather than as garbage.
        std::str::from_utf8(&self.label[..len]).unwrap_or("")
    }
}

/// An event has no shape, and is copied whole.
impl PortPacket for Event {
    fn for_format(_: &StreamFormat) -> Self {
        Event::new(0, "")
    }
    #[inline]
    fn shape(&self) -> Option<(usize, usize)> {
        None
    }
    #[inline]
    fn copy_packet_from(&mut self, other: &Self) -> Result<(), ShapeError> {
        *self = *other;
        Ok(())
    }
}

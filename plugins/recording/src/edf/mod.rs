//! EDF, EDF+, BDF and BDF+: the European Data Format and BioSemi's 24-bit
//! variant, read and written here (about 1,000 lines, no dependency). A
//! file is a text header, then data records of equal length, each holding
//! a fixed number of little-endian integer samples per signal; EDF+ adds
//! an annotation signal of time-stamped text lists (TALs).
//!
//! Reference: <https://www.edfplus.info/specs/edf.html>,
//! <https://www.edfplus.info/specs/edfplus.html>, and BioSemi's BDF notes.

pub mod civil;
pub mod header;
pub mod reader;
pub mod tal;
pub mod writer;

/// EDF (16-bit samples) or BDF (24-bit samples).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    /// 16-bit two's complement samples.
    Edf,
    /// 24-bit two's complement samples (BioSemi).
    Bdf,
}

impl FileFormat {
    /// Bytes per sample.
    pub fn bytes_per_sample(self) -> usize {
        match self {
            Self::Edf => 2,
            Self::Bdf => 3,
        }
    }

    /// The smallest and largest digital value a sample can hold.
    pub fn digital_limits(self) -> (i32, i32) {
        match self {
            Self::Edf => (-32_768, 32_767),
            Self::Bdf => (-8_388_608, 8_388_607),
        }
    }

    /// `EDF` or `BDF`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Edf => "EDF",
            Self::Bdf => "BDF",
        }
    }

    /// Decodes the little-endian sample at the start of `bytes`.
    #[inline]
    pub fn decode(self, bytes: &[u8]) -> i32 {
        match self {
            Self::Edf => i32::from(i16::from_le_bytes([bytes[0], bytes[1]])),
            // Shift the 24 bits to the top and back to sign-extend them.
            Self::Bdf => i32::from_le_bytes([0, bytes[0], bytes[1], bytes[2]]) >> 8,
        }
    }

    /// Encodes `value` (within [`digital_limits`](Self::digital_limits)) at
    /// the start of `out`.
    #[inline]
    pub fn encode(self, value: i32, out: &mut [u8]) {
        let bytes = value.to_le_bytes();
        match self {
            Self::Edf => out[..2].copy_from_slice(&bytes[..2]),
            Self::Bdf => out[..3].copy_from_slice(&bytes[..3]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::FileFormat;

    #[test]
    fn samples_round_trip_at_the_limits() {
        for format in [FileFormat::Edf, FileFormat::Bdf] {
            let (min, max) = format.digital_limits();
            for value in [min, min + 1, -1, 0, 1, max - 1, max] {
                let mut bytes = [0u8; 3];
                format.encode(value, &mut bytes);
                assert_eq!(format.decode(&bytes), value, "{format:?} {value}");
            }
        }
    }
}

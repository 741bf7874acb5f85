//! Sliding-window real FFT per channel.
//!
//! Definition (pinned to numpy by the tests, `tests/data/make_reference.py`):
//! per channel, frame `k` covers input samples `[k*hop, k*hop + size)`, and
//! only full frames are produced (the first after `size` samples, then one
//! every `hop` samples; `hop > size` skips the samples in between). The frame
//! is multiplied by a periodic window (`scipy.signal.get_window(name, size)`,
//! i.e. `fftbins=True`) and transformed with a real FFT; output bin `j`
//! (`0..size/2+1`, frequency `j * sample_rate / size`) is
//! `|X_j|` ([`Scale::Magnitude`]) or `|X_j|^2` ([`Scale::Power`]) with no
//! further normalisation: `np.abs(np.fft.rfft(x * w))` resp. its square.
//! Window and FFT run in f64; bins are rounded to f32 on output.

use std::f64::consts::PI;
use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::{RealFftPlanner, RealToComplex};
use thiserror::Error;

/// Analysis window, periodic (DFT-even) like scipy's `get_window(.., fftbins=True)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Window {
    /// `0.5 - 0.5 cos(2 pi n / N)`; scipy `'hann'`.
    Hann,
    /// `0.54 - 0.46 cos(2 pi n / N)`; scipy `'hamming'`.
    Hamming,
    /// All ones; scipy `'boxcar'`.
    Rectangular,
}

impl Window {
    /// Fills `out` with this window for `N = out.len()`, equal to
    /// `scipy.signal.get_window(name, N)` within 1e-15 (N = 1 gives `[1]`,
    /// as scipy).
    pub fn fill(self, out: &mut [f64]) {
        let n = out.len();
        if n == 1 {
            out[0] = 1.0;
            return;
        }
        let (a0, a1) = match self {
            Window::Hann => (0.5, 0.5),
            Window::Hamming => (0.54, 0.46),
            Window::Rectangular => (1.0, 0.0),
        };
        for (i, w) in out.iter_mut().enumerate() {
            *w = a0 - a1 * (2.0 * PI * i as f64 / n as f64).cos();
        }
    }
}

/// What each output bin holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scale {
    /// `|X_j|`.
    Magnitude,
    /// `|X_j|^2`.
    Power,
}

/// Why a [`SlidingSpectrum`] call was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SpectrumError {
    /// FFT size was zero.
    #[error("FFT size must be at least 1")]
    ZeroSize,
    /// Hop was zero.
    #[error("hop must be at least 1 sample")]
    ZeroHop,
    /// Channel index past the configured channel count.
    #[cfg(test)]
    #[error("channel {channel} out of range for {channels} channels")]
    Channel {
        /// Requested channel.
        channel: usize,
        /// Configured channel count.
        channels: usize,
    },
    /// Planar buffer length is not `channels * samples_per_channel`.
    #[error("buffer holds {len} samples, expected {channels} x {samples_per_channel}")]
    BufferLength {
        /// Buffer length supplied.
        len: usize,
        /// Configured channel count.
        channels: usize,
        /// Samples per channel claimed by the caller.
        samples_per_channel: usize,
    },
    /// Planar push after per-channel pushes left channels at different
    /// positions, so their frames no longer line up.
    #[error("channels are not aligned; call reset() before pushing planar blocks")]
    Unaligned,
    /// The FFT backend refused its buffers (cannot happen: they are sized
    /// by its own planner; kept so nothing panics).
    #[error("FFT failed: {0}")]
    Fft(String),
}

/// Streaming short-time spectrum over several channels.
///
/// Guarantees: every frame equals the numpy definition in the module docs
/// regardless of how the input is split into blocks; all buffers are
/// allocated in [`SlidingSpectrum::new`] and pushes never allocate.
pub struct SlidingSpectrum {
    channels: usize,
    size: usize,
    hop: usize,
    scale: Scale,
    window: Vec<f64>,
    fft: Arc<dyn RealToComplex<f64>>,
    /// Last `size` samples per channel, channel-major ring buffers.
    ring: Vec<f32>,
    /// Per channel: ring index of the oldest sample (= next write).
    write_pos: Vec<usize>,
    /// Per channel: samples still needed before the next frame is due.
    until_frame: Vec<usize>,
    fft_in: Vec<f64>,
    fft_out: Vec<Complex<f64>>,
    scratch: Vec<Complex<f64>>,
    /// Most recent frame of every channel, channel-major.
    frames: Vec<f32>,
}

impl std::fmt::Debug for SlidingSpectrum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlidingSpectrum")
            .field("channels", &self.channels)
            .field("size", &self.size)
            .field("hop", &self.hop)
            .field("scale", &self.scale)
            .finish_non_exhaustive()
    }
}

impl SlidingSpectrum {
    /// Plans the FFT and allocates every buffer for `channels` channels.
    pub fn new(
        channels: usize,
        size: usize,
        hop: usize,
        window: Window,
        scale: Scale,
    ) -> Result<Self, SpectrumError> {
        if size == 0 {
            return Err(SpectrumError::ZeroSize);
        }
        if hop == 0 {
            return Err(SpectrumError::ZeroHop);
        }
        let fft = RealFftPlanner::<f64>::new().plan_fft_forward(size);
        let mut coeffs = vec![0.0; size];
        window.fill(&mut coeffs);
        let bins = size / 2 + 1;
        Ok(SlidingSpectrum {
            channels,
            size,
            hop,
            scale,
            window: coeffs,
            ring: vec![0.0; channels * size],
            write_pos: vec![0; channels],
            until_frame: vec![size; channels],
            fft_in: fft.make_input_vec(),
            fft_out: fft.make_output_vec(),
            scratch: fft.make_scratch_vec(),
            frames: vec![0.0; channels * bins],
            fft,
        })
    }

    /// Number of bins per channel in a frame: `size / 2 + 1`.
    #[cfg(test)]
    pub fn bins(&self) -> usize {
        self.size / 2 + 1
    }

    /// Samples between frame starts.
    pub fn hop(&self) -> usize {
        self.hop
    }

    /// Frequency spacing of the bins: `sample_rate_hz / size`.
    pub fn bin_hz(&self, sample_rate_hz: f64) -> f64 {
        sample_rate_hz / self.size as f64
    }

    /// Most recent frame of every channel, channel-major
    /// (`[ch * bins() + j]`); zeros for a channel that has none yet.
    #[cfg(test)]
    pub fn latest_frames(&self) -> &[f32] {
        &self.frames
    }

    /// Forgets all history; the next frame needs `size` fresh samples.
    #[cfg(test)]
    pub fn reset(&mut self) {
        self.ring.fill(0.0);
        self.write_pos.fill(0);
        self.until_frame.fill(self.size);
        self.frames.fill(0.0);
    }

    /// Appends `samples` to one channel and calls `on_frame(bins)` for every
    /// frame of that channel completed by them, oldest first. Returns the
    /// number of frames emitted.
    #[cfg(test)]
    pub fn push_channel(
        &mut self,
        channel: usize,
        samples: &[f32],
        mut on_frame: impl FnMut(&[f32]),
    ) -> Result<usize, SpectrumError> {
        if channel >= self.channels {
            return Err(SpectrumError::Channel {
                channel,
                channels: self.channels,
            });
        }
        let bins = self.bins();
        let mut emitted = 0;
        let mut rest = samples;
        while !rest.is_empty() {
            let take = self.until_frame[channel].min(rest.len());
            let (now, later) = rest.split_at(take);
            self.append(channel, now);
            rest = later;
            if self.until_frame[channel] == 0 {
                self.compute(channel)?;
                self.until_frame[channel] = self.hop;
                on_frame(&self.frames[channel * bins..(channel + 1) * bins]);
                emitted += 1;
            }
        }
        Ok(emitted)
    }

    /// Appends a planar block (`samples[ch * samples_per_channel + i]`) to
    /// all channels and calls `on_frame(frame)` for every completed frame,
    /// oldest first, where `frame[ch * bins() + j]` holds all channels.
    /// Returns the number of frames emitted. Channels must be aligned
    /// (never pushed unevenly with [`Self::push_channel`] since the last
    /// reset).
    pub fn push_planar(
        &mut self,
        samples: &[f32],
        samples_per_channel: usize,
        mut on_frame: impl FnMut(&[f32]),
    ) -> Result<usize, SpectrumError> {
        if Some(samples.len()) != self.channels.checked_mul(samples_per_channel) {
            return Err(SpectrumError::BufferLength {
                len: samples.len(),
                channels: self.channels,
                samples_per_channel,
            });
        }
        let aligned = self.until_frame.windows(2).all(|w| w[0] == w[1])
            && self.write_pos.windows(2).all(|w| w[0] == w[1]);
        if !aligned {
            return Err(SpectrumError::Unaligned);
        }
        let Some(&until) = self.until_frame.first() else {
            return Ok(0);
        };
        let mut until = until;
        let mut emitted = 0;
        let mut start = 0;
        while start < samples_per_channel {
            let take = until.min(samples_per_channel - start);
            for ch in 0..self.channels {
                let base = ch * samples_per_channel + start;
                self.append(ch, &samples[base..base + take]);
            }
            start += take;
            until -= take;
            if until == 0 {
                for ch in 0..self.channels {
                    self.compute(ch)?;
                    self.until_frame[ch] = self.hop;
                }
                until = self.hop;
                on_frame(&self.frames);
                emitted += 1;
            }
        }
        Ok(emitted)
    }

    /// Writes `data` (at most `until_frame` samples) into a channel's ring.
    fn append(&mut self, channel: usize, data: &[f32]) {
        let size = self.size;
        let ring = &mut self.ring[channel * size..(channel + 1) * size];
        let pos = &mut self.write_pos[channel];
        self.until_frame[channel] -= data.len();
        // Only the newest `size` samples can ever be part of a frame.
        let skip = data.len().saturating_sub(size);
        let data = &data[skip..];
        *pos = (*pos + skip) % size;
        let first = data.len().min(size - *pos);
        ring[*pos..*pos + first].copy_from_slice(&data[..first]);
        ring[..data.len() - first].copy_from_slice(&data[first..]);
        *pos = (*pos + data.len()) % size;
    }

    /// Windows the channel's ring (oldest sample first) and stores its
    /// spectrum in the channel's slot of `frames`.
    fn compute(&mut self, channel: usize) -> Result<(), SpectrumError> {
        let size = self.size;
        let bins = size / 2 + 1;
        let ring = &self.ring[channel * size..(channel + 1) * size];
        let pos = self.write_pos[channel];
        // Oldest sample first: the ring from `pos`, then its start. Two
        // plain loops rather than one over a chained iterator, so that
        // each compiles to SIMD.
        let (older, newer) = (&ring[pos..], &ring[..pos]);
        let (to_older, to_newer) = self.fft_in.split_at_mut(older.len());
        let (w_older, w_newer) = self.window.split_at(older.len());
        for ((dst, &x), &w) in to_older.iter_mut().zip(older).zip(w_older) {
            *dst = f64::from(x) * w;
        }
        for ((dst, &x), &w) in to_newer.iter_mut().zip(newer).zip(w_newer) {
            *dst = f64::from(x) * w;
        }
        self.fft
            .process_with_scratch(&mut self.fft_in, &mut self.fft_out, &mut self.scratch)
            .map_err(|e| SpectrumError::Fft(e.to_string()))?;
        let out = &mut self.frames[channel * bins..(channel + 1) * bins];
        let bins = out.iter_mut().zip(&self.fft_out);
        match self.scale {
            Scale::Power => bins.for_each(|(dst, c)| *dst = c.norm_sqr() as f32),
            Scale::Magnitude => bins.for_each(|(dst, c)| *dst = c.norm_sqr().sqrt() as f32),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INPUT: &str = include_str!("../tests/data/input.csv");
    const CASES: &str = include_str!("../tests/data/cases.csv");
    const FRAMES: &str = include_str!("../tests/data/frames.csv");

    struct Case {
        name: String,
        size: usize,
        hop: usize,
        window: Window,
        scale: Scale,
    }

    fn rows(text: &str) -> impl Iterator<Item = Vec<&str>> {
        text.lines()
            .skip(1)
            .filter(|l| !l.trim().is_empty())
            .map(|l| l.split(',').collect())
    }

    fn num(s: &str) -> f64 {
        s.trim().parse().expect("reference file holds a number")
    }

    fn input() -> Vec<f32> {
        rows(INPUT).map(|r| num(r[0]) as f32).collect()
    }

    fn cases() -> Vec<Case> {
        rows(CASES)
            .map(|r| Case {
                name: r[0].to_string(),
                size: r[1].parse().expect("size"),
                hop: r[2].parse().expect("hop"),
                window: match r[3] {
                    "hann" => Window::Hann,
                    "hamming" => Window::Hamming,
                    "boxcar" => Window::Rectangular,
                    other => panic!("unknown window {other}"),
                },
                scale: match r[4] {
                    "magnitude" => Scale::Magnitude,
                    "power" => Scale::Power,
                    other => panic!("unknown scale {other}"),
                },
            })
            .collect()
    }

    fn reference(name: &str) -> Vec<Vec<f64>> {
        rows(FRAMES)
            .filter(|r| r[0] == name)
            .map(|r| r[2..].iter().map(|v| num(v)).collect())
            .collect()
    }

    /// max |ours - ref| / max |ref| over all frames.
    fn rel_err(ours: &[Vec<f32>], theirs: &[Vec<f64>]) -> f64 {
        assert_eq!(ours.len(), theirs.len(), "frame count");
        let peak = theirs.iter().flatten().fold(0.0f64, |m, v| m.max(v.abs()));
        let mut max = 0.0f64;
        for (a, b) in ours.iter().zip(theirs) {
            assert_eq!(a.len(), b.len(), "bin count");
            for (&x, &y) in a.iter().zip(b) {
                max = max.max((f64::from(x) - y).abs());
            }
        }
        max / peak
    }

    /// Pushes `x` to channel 1 of a 3-channel spectrum in the given chunk
    /// sizes (channel 0 and 2 get silence / a scaled copy via planar push).
    fn planar_frames(case: &Case, x: &[f32], chunk: usize) -> Vec<Vec<f32>> {
        let mut s =
            SlidingSpectrum::new(3, case.size, case.hop, case.window, case.scale).expect("valid");
        let bins = s.bins();
        let mut frames = Vec::new();
        for block in x.chunks(chunk) {
            let n = block.len();
            let doubled: Vec<f32> = block.iter().map(|v| 2.0 * v).collect();
            let planar = [vec![0.0; n], block.to_vec(), doubled].concat();
            s.push_planar(&planar, n, |f| {
                assert_eq!(f.len(), 3 * bins);
                assert!(
                    f[..bins].iter().all(|&v| v == 0.0),
                    "silent channel stays zero"
                );
                let gain = match case.scale {
                    Scale::Magnitude => 2.0,
                    Scale::Power => 4.0,
                };
                for (a, b) in f[bins..2 * bins].iter().zip(&f[2 * bins..]) {
                    assert!(
                        (a * gain - b).abs() <= 1e-5 * b.abs().max(1e-3),
                        "channels independent"
                    );
                }
                frames.push(f[bins..2 * bins].to_vec());
            })
            .expect("aligned planar push");
        }
        frames
    }

    #[test]
    fn matches_numpy_for_any_block_split() {
        let x = input();
        for case in cases() {
            let theirs = reference(&case.name);
            assert!(!theirs.is_empty(), "{}: reference frames", case.name);

            let mut s = SlidingSpectrum::new(1, case.size, case.hop, case.window, case.scale)
                .expect("valid");
            let mut whole = Vec::new();
            let n = s
                .push_channel(0, &x, |f| whole.push(f.to_vec()))
                .expect("ch 0");
            assert_eq!(n, theirs.len());
            let e_whole = rel_err(&whole, &theirs);

            let mut worst_split = 0.0f64;
            for chunk in [1, 7, 48, 100, 1000] {
                let split = planar_frames(&case, &x, chunk);
                worst_split = worst_split.max(rel_err(&split, &theirs));
                assert_eq!(
                    split, whole,
                    "{}: chunk {chunk} changed the result",
                    case.name
                );
            }
            println!(
                "{:>16}: max |err| / peak: whole {e_whole:.2e}, planar split {worst_split:.2e} ({} frames)",
                case.name,
                theirs.len()
            );
            assert!(e_whole < 1e-4, "{}: {e_whole}", case.name);
        }
    }

    #[test]
    fn windows_are_periodic() {
        let mut w = [0.0; 8];
        Window::Hann.fill(&mut w);
        assert_eq!(w[0], 0.0);
        assert!((w[4] - 1.0).abs() < 1e-15, "peak at N/2 for periodic Hann");
        Window::Hamming.fill(&mut w);
        assert!((w[0] - 0.08).abs() < 1e-15);
        Window::Rectangular.fill(&mut w);
        assert!(w.iter().all(|&v| v == 1.0));
        let mut one = [0.0];
        Window::Hann.fill(&mut one);
        assert_eq!(one, [1.0]);
    }

    #[test]
    fn latest_frames_and_reset() {
        let x = input();
        let mut s = SlidingSpectrum::new(2, 64, 32, Window::Hann, Scale::Power).expect("valid");
        let mut last = Vec::new();
        let planar = [x.as_slice(), x.as_slice()].concat();
        let n = s
            .push_planar(&planar, x.len(), |f| last = f.to_vec())
            .expect("aligned");
        assert_eq!(n, (x.len() - 64) / 32 + 1);
        assert_eq!(s.latest_frames(), last.as_slice());

        s.reset();
        assert!(s.latest_frames().iter().all(|&v| v == 0.0));
        let n = s.push_channel(0, &x[..63], |_| {}).expect("ch 0");
        assert_eq!(n, 0, "no partial frames");
        assert_eq!(
            s.push_planar(&[0.0; 2], 1, |_| {}),
            Err(SpectrumError::Unaligned)
        );
    }

    #[test]
    fn rejects_bad_input() {
        assert!(matches!(
            SlidingSpectrum::new(1, 0, 1, Window::Hann, Scale::Power),
            Err(SpectrumError::ZeroSize)
        ));
        assert!(matches!(
            SlidingSpectrum::new(1, 8, 0, Window::Hann, Scale::Power),
            Err(SpectrumError::ZeroHop)
        ));
        let mut s = SlidingSpectrum::new(2, 8, 4, Window::Hann, Scale::Power).expect("valid");
        assert!(matches!(
            s.push_channel(2, &[0.0], |_| {}),
            Err(SpectrumError::Channel { .. })
        ));
        assert!(matches!(
            s.push_planar(&[0.0; 3], 2, |_| {}),
            Err(SpectrumError::BufferLength { .. })
        ));
        assert_eq!(s.bins(), 5);
        assert_eq!(s.bin_hz(256.0), 32.0);
    }
}

//! What every file source shares: the part of the file to play (`start_s`,
//! `duration_s`), looping, pacing to the wall clock, and a progress bar
//! when played as fast as possible on a terminal.

use hsp_sdk::StageError;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// The longest a paced source sleeps in one call, so that a stop request
/// is seen quickly even at one block a minute.
const MAX_SLEEP: Duration = Duration::from_millis(20);

/// Most samples per channel in one block.
pub const MAX_BLOCK: i64 = 1 << 16;

/// `block_size`, checked.
pub fn block_size(value: i64) -> Result<usize, StageError> {
    usize::try_from(value)
        .ok()
        .filter(|b| (1..=MAX_BLOCK as usize).contains(b))
        .ok_or_else(|| {
            StageError::new(format!(
                "`block_size` must be 1 to {MAX_BLOCK} samples, got {value}"
            ))
        })
}

/// `stream_id`, checked.
pub fn stream_id(value: i64) -> Result<u32, StageError> {
    u32::try_from(value).map_err(|_| {
        StageError::new(format!(
            "`stream_id` must be between 0 and {}, got {value}",
            u32::MAX
        ))
    })
}

/// The replay keys of a source's config, checked.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReplayConfig {
    pub realtime: bool,
    pub start_s: f64,
    /// 0: to the end.
    pub duration_s: f64,
    pub looped: bool,
}

/// The samples to play: `len` from `first`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub first: u64,
    pub len: u64,
}

impl ReplayConfig {
    /// The window of a file of `total` samples at `rate` Hz.
    pub fn window(&self, total: u64, rate: f64) -> Result<Window, StageError> {
        let (start, duration) = (self.start_s, self.duration_s);
        if !(start.is_finite() && start >= 0.0) {
            return Err(StageError::new(format!(
                "`start_s` must be 0 or more seconds, got {start}"
            )));
        }
        if !(duration.is_finite() && duration >= 0.0) {
            return Err(StageError::new(format!(
                "`duration_s` must be 0 (to the end) or more seconds, got {duration}"
            )));
        }
        let length_s = total as f64 / rate;
        let first = (start * rate).round() as u64;
        if first >= total {
            return Err(StageError::new(format!(
                "`start_s` = {start} s is at or past the end of the recording ({length_s} s)"
            )));
        }
        let len = if duration == 0.0 {
            total - first
        } else {
            let len = (duration * rate).round() as u64;
            if len == 0 {
                return Err(StageError::new(format!(
                    "`duration_s` = {duration} s is less than one sample at {rate} Hz"
                )));
            }
            if first + len > total {
                return Err(StageError::new(format!(
                    "`start_s` + `duration_s` = {} s runs past the end of the recording ({length_s} s)",
                    start + duration
                )));
            }
            len
        };
        Ok(Window { first, len })
    }
}

/// Paces blocks to the wall clock: a block is due once its last sample
/// would have been measured, as an amplifier delivers it.
pub struct Pacer {
    rate: f64,
    started: Option<Instant>,
}

impl Pacer {
    /// A pacer for `rate` samples per second; the clock starts at the
    /// first block asked for.
    pub fn new(rate: f64) -> Self {
        Self {
            rate,
            started: None,
        }
    }

    /// Whether a block ending after sample `end` (counted from the start)
    /// is due; sleeps a little towards it first. The source runs on a
    /// thread of its own (it may block), so sleeping here holds up no other
    /// stage.
    pub fn due(&mut self, end: u64) -> bool {
        let started = *self.started.get_or_insert_with(Instant::now);
        let due_at = Duration::from_secs_f64(end as f64 / self.rate);
        let elapsed = started.elapsed();
        if elapsed >= due_at {
            return true;
        }
        std::thread::sleep((due_at - elapsed).min(MAX_SLEEP));
        started.elapsed() >= due_at
    }
}

/// A progress bar on stderr when it is a terminal and the replay runs as
/// fast as possible; nothing otherwise.
pub struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    /// A bar over `total` samples (`None`: looping, endless), labelled
    /// `label`.
    pub fn new(config: &ReplayConfig, total: Option<u64>, label: &str) -> Self {
        let shown = !config.realtime && std::io::stderr().is_terminal();
        let bar = shown.then(|| {
            let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr_with_hz(10));
            let template = match total {
                Some(_) => "{prefix} [{bar:30}] {percent:>3}% {msg} (eta {eta})",
                None => "{prefix} {spinner} {msg}",
            };
            if let Ok(style) = ProgressStyle::with_template(template) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_prefix(label.to_string());
            bar
        });
        Self { bar }
    }

    /// `played` samples so far, at `rate` Hz.
    pub fn set(&self, played: u64, rate: f64) {
        if let Some(bar) = &self.bar {
            bar.set_position(played);
            // Only the drawn frames format the message: cheap per call.
            if played % 4096 < 64 {
                bar.set_message(format!("{:.0} s", played as f64 / rate));
            }
        }
    }

    /// Takes the bar off the terminal.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(start_s: f64, duration_s: f64) -> ReplayConfig {
        ReplayConfig {
            realtime: false,
            start_s,
            duration_s,
            looped: false,
        }
    }

    #[test]
    fn windows_are_checked_against_the_recording() {
        assert_eq!(
            config(0.0, 0.0).window(1000, 100.0).unwrap(),
            Window {
                first: 0,
                len: 1000
            }
        );
        assert_eq!(
            config(2.0, 3.0).window(1000, 100.0).unwrap(),
            Window {
                first: 200,
                len: 300
            }
        );
        assert!(
            config(10.0, 0.0)
                .window(1000, 100.0)
                .unwrap_err()
                .to_string()
                .contains("past the end")
        );
        assert!(
            config(5.0, 6.0)
                .window(1000, 100.0)
                .unwrap_err()
                .to_string()
                .contains("runs past")
        );
        assert!(config(-1.0, 0.0).window(1000, 100.0).is_err());
    }

    #[test]
    fn a_pacer_holds_a_block_until_it_is_due() {
        let mut pacer = Pacer::new(1000.0);
        assert!(pacer.due(0));
        let begun = Instant::now();
        while !pacer.due(30) {}
        assert!(begun.elapsed() >= Duration::from_millis(29));
    }
}

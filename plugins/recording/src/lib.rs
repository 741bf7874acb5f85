//! Recordings in and out: `edf_source` and `csv_source` replay files as
//! streams, `edf_sink` records a stream to EDF+/BDF+.
//!
//! Sources and the sink read and write files, so they may block: the host
//! runs each on a thread of its own. Every source shares the replay keys
//! (`realtime`, `start_s`, `duration_s`, `loop`; see `replay.rs`) and
//! stamps its blocks on the recording's own clock (its start time plus
//! each sample's offset), so one file through one pipeline gives the same
//! output every time, paced or not.

pub mod csv_source;
pub mod edf;
pub mod edf_sink;
pub mod edf_source;
pub mod replay;

pub use csv_source::CsvSource;
pub use edf_sink::EdfSink;
pub use edf_source::EdfSource;

hsp_sdk::export_plugin!(EdfSource, EdfSink, CsvSource);

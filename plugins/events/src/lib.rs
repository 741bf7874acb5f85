//! Stages where signals meet events:
//!
//! - `detect` (one input, two outputs): passes its signal on and emits an
//!   event at every threshold crossing in it;
//! - `gate` (two inputs, one output): passes its signal on only while the
//!   events on its second input hold it open.

mod detect;
mod gate;

pub use detect::{Detect, DetectConfig, DetectOutput};
pub use gate::{Gate, GateConfig, GateInput};

hsp_sdk::export_plugin!(Detect, Gate);

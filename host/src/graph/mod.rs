//! Pipeline files: parsing (`parse.rs`: TOML into a span-carrying raw form),
//! validation against the loaded plugins (`validate.rs`), and the result,
//! [`PipelineGraph`] (`model.rs`), which the runtimes take.
//!
//! A file with problems yields every problem at once, each as a
//! [`ValidationError`] naming the file, the line and column, what was wrong
//! and, where there is something useful to say, a hint:
//!
//! ```text
//! pipelines/alpha.toml:12:10: error: unknown stage kind `iirr`
//!   hint: did you mean `iir`?
//! ```

pub mod model;
mod parse;
mod validate;

pub use model::{
    EdgePolicy, IdleStrategy, InputEdge, Location, OnError, PipelineGraph, PipelineSettings,
    StageNode, StageType, describe_format,
};
pub use validate::ValidationError;

use crate::registry::PluginRegistry;
use std::path::Path;

/// Reads the pipeline file at `path` and checks it against `registry`:
/// stage kinds, ids, edges and their packet types, configs against each
/// kind's schema, then stream formats negotiated with the plugins along the
/// graph. On failure, every problem found, in file order.
pub fn load_pipeline(
    path: &Path,
    registry: &PluginRegistry,
) -> Result<PipelineGraph, Vec<ValidationError>> {
    let text = std::fs::read_to_string(path).map_err(|error| {
        vec![ValidationError::whole_file(
            path,
            format!("cannot read the pipeline file: {error}"),
        )]
    })?;
    parse_pipeline(path, &text, registry)
}

/// Like [`load_pipeline`], for pipeline text already in memory; `path` is
/// the name errors give it (and the default pipeline name's source).
pub fn parse_pipeline(
    path: &Path,
    text: &str,
    registry: &PluginRegistry,
) -> Result<PipelineGraph, Vec<ValidationError>> {
    let raw = parse::parse(text).map_err(|issue| validate::to_errors(path, text, vec![issue]))?;
    validate::validate(path, text, raw, registry)
}

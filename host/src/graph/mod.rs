//! Pipeline files: parsing (TOML into a span-carrying raw form), validation
//! against the loaded plugins, and the result, [`PipelineGraph`]
//! (`model.rs`), which the runtimes take. Each file answers one question:
//!
//! - reading: `parse.rs` (the tables), `parse_values.rs` (the values in
//!   them), `raw.rs` (what was read);
//! - checking, in the order `validate.rs` runs them: `stage.rs` (each stage
//!   on its own), `config_check.rs` (its config), `ids.rs` (what `inputs`
//!   names), `inputs.rs` (edges and planes), `packet_types.rs` (types along
//!   edges), `order.rs` (run order, cycles, chain depth), `formats.rs`
//!   (negotiation), `limits.rs` (what the runtime can hold, against
//!   `memory_limit.rs`'s limit);
//! - the result: `build.rs` makes the graph; `report.rs` tells the problems.
//!
//! A file with problems yields every problem at once, each as a
//! [`ValidationError`] naming the file, the line and column, what was wrong
//! and, where there is something useful to say, a hint:
//!
//! ```text
//! pipelines/alpha.toml:12:10: error: unknown stage kind `iirr`
//!   hint: did you mean `iir`?
//! ```

mod build;
mod config_check;
mod formats;
mod ids;
mod inputs;
mod limits;
mod memory_limit;
pub mod model;
mod order;
mod packet_types;
mod parse;
mod parse_values;
mod raw;
mod recipe;
mod report;
mod stage;
mod validate;

pub use memory_limit::MEMORY_LIMIT_ENV;
pub use model::{
    EdgePolicy, IdleStrategy, InputEdge, Location, OnError, PipelineGraph, PipelineSettings,
    StageNode, StageType, describe_format,
};
#[cfg(test)]
pub(crate) use recipe::testing::recipe as recipe_for_tests;
pub use recipe::{
    AllocationCounter, BuildError, KindFacts, StageFactory, StageRecipe, same_shapes,
};
pub use report::ValidationError;
pub(crate) use report::closest;

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
    let bytes = std::fs::read(path).map_err(|error| {
        vec![ValidationError::whole_file(
            path,
            format!("cannot read the pipeline file: {error}"),
        )]
    })?;
    let text = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(error) => return Err(vec![not_utf8(path, error.as_bytes(), error.utf8_error())]),
    };
    parse_pipeline(path, &text, registry)
}

/// Like [`load_pipeline`], for pipeline text already in memory; `path` is
/// the name errors give it (and the default pipeline name's source).
pub fn parse_pipeline(
    path: &Path,
    text: &str,
    registry: &PluginRegistry,
) -> Result<PipelineGraph, Vec<ValidationError>> {
    let raw = parse::parse(text).map_err(|issue| report::to_errors(path, text, vec![issue]))?;
    validate::validate(path, text, raw, registry)
}

/// A file that is not UTF-8, reported at its first bad byte (the line and
/// column of the valid text before it).
fn not_utf8(path: &Path, bytes: &[u8], error: std::str::Utf8Error) -> ValidationError {
    let valid = error.valid_up_to();
    let before = std::str::from_utf8(&bytes[..valid]).unwrap_or_default();
    let location = report::LineIndex::new(before).location(valid);
    ValidationError {
        location,
        hint: Some("pipeline files are TOML, which is UTF-8 text".to_string()),
        ..ValidationError::whole_file(
            path,
            format!(
                "the file is not UTF-8 text: byte 0x{:02x} cannot start or continue a character here",
                bytes.get(valid).copied().unwrap_or_default()
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_that_is_not_utf8_is_reported_at_its_first_bad_byte() {
        let text = [b"[[stage]]\nid = \"a".as_slice(), &[0xff], b"b\"\n"].concat();
        let error = String::from_utf8(text).unwrap_err();
        let error = not_utf8(Path::new("p.toml"), error.as_bytes(), error.utf8_error());
        assert_eq!(
            error.to_string(),
            "p.toml:2:8: error: the file is not UTF-8 text: byte 0xff cannot start or continue a character here\n  hint: pipeline files are TOML, which is UTF-8 text"
        );
    }
}

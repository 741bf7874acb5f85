//! How is a problem told? An [`Issue`] found at a byte span becomes a
//! [`ValidationError`] at a line and column; messages share one way of
//! naming stages, of listing names, and of guessing at a typo.

use super::model::Location;
use super::parse::MAX_ID_CHARS;
use super::raw::RawStage;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// A byte range in the pipeline file.
pub(crate) type Span = Range<usize>;

/// One problem at a place in the file, before it is given a file name and a
/// line and column.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Issue {
    /// What it is about.
    pub span: Span,
    /// What is wrong (and what was expected).
    pub message: String,
    /// How to fix it, when there is something useful to say.
    pub hint: Option<String>,
}

impl Issue {
    pub(crate) fn new(span: Span, message: impl Into<String>) -> Self {
        Self {
            span,
            message: message.into(),
            hint: None,
        }
    }

    pub(crate) fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub(crate) fn maybe_hint(mut self, hint: Option<String>) -> Self {
        self.hint = hint;
        self
    }
}

/// One problem in a pipeline file, at a place in it.
///
/// Displays as `FILE:LINE:COL: error: MESSAGE`, then `  hint: HINT` on a
/// second line when there is a hint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    /// The pipeline file.
    pub file: PathBuf,
    /// Where in it.
    pub location: Location,
    /// What is wrong, and what was expected.
    pub message: String,
    /// How to fix it, when there is something useful to say.
    pub hint: Option<String>,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: error: {}",
            self.file.display(),
            self.location.line,
            self.location.column,
            self.message
        )?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ValidationError {}

impl ValidationError {
    /// An error about the file as a whole (unreadable, say), placed at 1:1.
    pub fn whole_file(file: &Path, message: impl Into<String>) -> Self {
        Self {
            file: file.to_path_buf(),
            location: Location { line: 1, column: 1 },
            message: message.into(),
            hint: None,
        }
    }
}

/// Turns `issues` into errors naming `file`, in file order.
pub(crate) fn to_errors(file: &Path, text: &str, mut issues: Vec<Issue>) -> Vec<ValidationError> {
    issues.sort_by_key(|issue| issue.span.start);
    let index = LineIndex::new(text);
    issues
        .into_iter()
        .map(|issue| ValidationError {
            file: file.to_path_buf(),
            location: index.location(issue.span.start),
            message: issue.message,
            hint: issue.hint,
        })
        .collect()
}

/// Turns byte offsets into 1-based lines and columns (columns count
/// characters, as editors do).
pub(crate) struct LineIndex<'a> {
    text: &'a str,
    line_starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Self { text, line_starts }
    }

    /// The line and column of byte `offset` (clamped to the text).
    pub(crate) fn location(&self, offset: usize) -> Location {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = self.line_starts.partition_point(|&start| start <= offset);
        let start = self.line_starts[line - 1];
        Location {
            line,
            column: self.text[start..offset].chars().count() + 1,
        }
    }
}

/// An id as messages show it: cut after [`MAX_ID_CHARS`] characters (the
/// file may have a longer one, which is an error of its own).
pub(crate) fn shown_id(id: &str) -> String {
    match id.char_indices().nth(MAX_ID_CHARS) {
        None => id.to_string(),
        Some((cut, _)) => format!("{}…", &id[..cut]),
    }
}

/// "`id`", or "(no id)", for messages.
pub(super) fn name_of(stage: &RawStage) -> String {
    match &stage.id {
        Some(id) => format!("`{}`", shown_id(id.get_ref())),
        None => "(no id)".to_string(),
    }
}

/// "`a`, `b`, `c`": every one of `keys`, for a hint. Unlike [`listing`]
/// it never cuts: the keys a table may have are few.
pub(super) fn backticked(keys: &[&str]) -> String {
    keys.iter()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The most names a hint lists.
const LISTED: usize = 12;

/// "a, b, c" for a hint; after [`LISTED`] names, "and N more".
pub(super) fn listing(names: impl ExactSizeIterator<Item = String>) -> String {
    let total = names.len();
    let mut text = names.take(LISTED).collect::<Vec<_>>().join(", ");
    if total > LISTED {
        text.push_str(&format!(" and {} more", total - LISTED));
    }
    text
}

/// The longest word [`closest`] looks for typos of, in characters.
pub(crate) const MAX_TYPO_CHARS: usize = 2 * MAX_ID_CHARS;

/// "did you mean `x`?" for the candidate closest to `word`, if one is close.
pub(crate) fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    closest(word, candidates).map(|best| format!("did you mean `{best}`?"))
}

/// The candidate closest to `word`, if one is close enough to be a typo:
/// one or two edits away (a transposition counts as one), or similar enough
/// by Jaro-Winkler (a prefix of it, say). The fewest edits win.
///
/// Both measures cost the product of the two lengths, so words and
/// candidates longer than [`MAX_TYPO_CHARS`] (no name is that long) are not
/// compared at all.
pub(crate) fn closest<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    if word.len() > MAX_TYPO_CHARS * 4 || word.chars().count() > MAX_TYPO_CHARS {
        return None;
    }
    candidates
        .into_iter()
        .filter(|candidate| *candidate != word && candidate.chars().count() <= MAX_TYPO_CHARS)
        .map(|candidate| {
            let edits = strsim::osa_distance(word, candidate);
            let similarity = strsim::jaro_winkler(word, candidate);
            (edits, similarity, candidate)
        })
        .filter(|(edits, similarity, _)| {
            *similarity >= 0.8 || (*edits <= 2 && 3 * edits <= word.chars().count() + 1)
        })
        .min_by(|a, b| a.0.cmp(&b.0).then(b.1.total_cmp(&a.1)))
        .map(|(_, _, candidate)| candidate)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str, offset: usize) -> (usize, usize) {
        let location = LineIndex::new(text).location(offset);
        (location.line, location.column)
    }

    #[test]
    fn offsets_become_one_based_lines_and_character_columns() {
        let text = "ab\nµx = 1\n";
        assert_eq!(at(text, 0), (1, 1));
        assert_eq!(at(text, 2), (1, 3));
        assert_eq!(at(text, 3), (2, 1));
        assert_eq!(at(text, 5), (2, 2), "µ is two bytes, one column");
        assert_eq!(at(text, 100), (3, 1));
    }

    #[test]
    fn close_names_are_suggested_and_far_ones_are_not() {
        let kinds = [
            "synth",
            "iir",
            "iir_filtered",
            "fft",
            "csv_sink",
            "csv_features",
            "gain",
        ];
        assert_eq!(closest("iirr", kinds), Some("iir"));
        assert_eq!(closest("synht", kinds), Some("synth"));
        assert_eq!(closest("csv", kinds), Some("csv_sink"));
        assert_eq!(closest("quux", kinds), None);
        assert_eq!(closest("scr", ["src", "filter"]), Some("src"));
        assert_eq!(closest("ab", ["xy"]), None);
    }

    #[test]
    fn errors_display_as_file_line_column_then_the_hint() {
        let error = ValidationError {
            file: PathBuf::from("a/b.toml"),
            location: Location { line: 3, column: 7 },
            message: "unknown stage kind `iirr`".into(),
            hint: Some("did you mean `iir`?".into()),
        };
        assert_eq!(
            error.to_string(),
            "a/b.toml:3:7: error: unknown stage kind `iirr`\n  hint: did you mean `iir`?"
        );
        let bare = ValidationError {
            hint: None,
            ..error
        };
        assert_eq!(
            bare.to_string(),
            "a/b.toml:3:7: error: unknown stage kind `iirr`"
        );
    }
}

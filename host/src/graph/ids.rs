//! Which stage does each `inputs` entry name? The ids are indexed once per
//! file (a repeat is reported at the repeat), then every entry is looked
//! up; one that names no stage gets a did-you-mean while the budget for
//! looking lasts.

use super::raw::RawStage;
use super::report::{Issue, LineIndex, Span, did_you_mean, listing, shown_id};
use std::collections::{HashMap, HashSet};
use toml::Spanned;

/// How much looking for typos among the stage ids one file may cost, in
/// pairs of characters compared (about 0.1 s in a debug build). Enough for
/// hundreds of misspelt inputs in a file of ordinary size; past it, a hint
/// lists ids instead. Without it, 1024 stages with long ids, each reading
/// an id that is not there, took minutes.
const SUGGESTION_BUDGET: usize = 1 << 22;

/// One `inputs` entry, resolved to a stage: `id` or `id.port`.
pub(super) struct Named {
    /// The upstream stage (file order).
    pub(super) from: usize,
    /// The output port named after the dot, if any.
    pub(super) port: Option<String>,
    /// The entry's span.
    pub(super) span: Span,
}

/// The stage ids of a file, for resolving `inputs`.
pub(super) struct Ids<'a> {
    /// Each id's first stage (file order).
    index: &'a HashMap<String, usize>,
    /// The ids, in file order.
    in_order: Vec<&'a str>,
    /// What is left of [`SUGGESTION_BUDGET`].
    suggestions: usize,
}

impl<'a> Ids<'a> {
    /// The ids of [`index_ids`]'s `index`, with the whole budget to spend.
    pub(super) fn new(index: &'a HashMap<String, usize>) -> Self {
        let mut in_order: Vec<(&str, usize)> =
            index.iter().map(|(id, &i)| (id.as_str(), i)).collect();
        in_order.sort_by_key(|(_, i)| *i);
        Self {
            index,
            in_order: in_order.into_iter().map(|(id, _)| id).collect(),
            suggestions: SUGGESTION_BUDGET,
        }
    }

    /// The stages `listed` (the `inputs` of stage `name`) names, in file
    /// order, each with the output port it names after a dot (`"src.events"`;
    /// an id that has a dot itself is taken whole first) and the span of its
    /// entry, and whether every entry named a stage once (each one that did
    /// not is reported).
    pub(super) fn resolve(
        &mut self,
        name: &str,
        listed: &[Spanned<String>],
        issues: &mut Vec<Issue>,
    ) -> (Vec<Named>, bool) {
        let mut ok = true;
        let mut resolved = Vec::new();
        let mut seen = HashSet::new();
        for input in listed {
            let entry = input.get_ref();
            let found = match self.index.get(entry) {
                Some(&from) => Some((from, None)),
                None => entry.rsplit_once('.').and_then(|(id, port)| {
                    self.index
                        .get(id)
                        .map(|&from| (from, Some(port.to_string())))
                }),
            };
            match found {
                Some((from, port)) => {
                    if !seen.insert((from, port.clone())) {
                        issues.push(Issue::new(
                            input.span(),
                            format!("stage {name} lists input `{}` twice", shown_id(entry)),
                        ));
                        ok = false;
                    } else {
                        resolved.push(Named {
                            from,
                            port,
                            span: input.span(),
                        });
                    }
                }
                None => {
                    issues.push(self.unknown(name, input));
                    ok = false;
                }
            }
        }
        (resolved, ok)
    }

    /// An `inputs` entry of stage `name` that names no stage, with a
    /// did-you-mean or, past the budget, the ids of the file.
    fn unknown(&mut self, name: &str, input: &Spanned<String>) -> Issue {
        let known = &self.in_order;
        // Looking for a typo costs the product of the lengths, for
        // every id: within the budget only.
        let cost = input.get_ref().len() * known.iter().map(|k| k.len()).sum::<usize>();
        let suggestion = (cost <= self.suggestions).then(|| {
            self.suggestions -= cost;
            did_you_mean(input.get_ref(), known.iter().copied())
        });
        let hint = suggestion.flatten().unwrap_or_else(|| {
            format!(
                "stage ids in this file: {}",
                listing(known.iter().map(|k| format!("`{}`", shown_id(k))))
            )
        });
        Issue::new(
            input.span(),
            format!(
                "stage {name} reads from `{}`, which is not a stage in this file",
                shown_id(input.get_ref())
            ),
        )
        .hint(hint)
    }
}

/// The first stage with each id; a repeated id is reported at the repeat.
pub(super) fn index_ids(
    stages: &[RawStage],
    text: &str,
    issues: &mut Vec<Issue>,
) -> HashMap<String, usize> {
    let lines = LineIndex::new(text);
    let mut ids: HashMap<String, usize> = HashMap::new();
    for (index, stage) in stages.iter().enumerate() {
        let Some(id) = &stage.id else {
            // A missing `id` (a wrong one was reported by the parser).
            if !stage.keys.iter().any(|k| k == "id") {
                issues.push(Issue::new(stage.span.clone(), "stage has no `id`").hint(
                    "give each stage a unique `id = \"...\"`; other stages name it in `inputs`",
                ));
            }
            continue;
        };
        match ids.get(id.get_ref()) {
            Some(&first) => {
                let first_line = stages[first]
                    .id
                    .as_ref()
                    .map_or(0, |f| lines.location(f.span().start).line);
                issues.push(
                    Issue::new(
                        id.span(),
                        format!("duplicate stage id `{}`", shown_id(id.get_ref())),
                    )
                    .hint(format!(
                        "the first stage with this id is at line {first_line}; ids must be unique"
                    )),
                );
            }
            None => {
                ids.insert(id.get_ref().clone(), index);
            }
        }
    }
    ids
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::validate::tests::errors;

    #[test]
    fn typos_are_looked_for_within_a_budget_then_ids_are_listed() {
        // 300 stages with 64-character ids, each reading a misspelling of
        // its own id: each look costs 64 x 300 x 64 character pairs, so
        // the budget covers the first few, and the rest list ids.
        let id = |i: usize| format!("{i:03}{}", "x".repeat(61));
        let mut text = String::new();
        for i in 0..300 {
            text.push_str(&format!(
                "[[stage]]\nid = \"{}\"\nplugin = \"x\"\ninputs = [\"{}y\"]\n",
                id(i),
                &id(i)[..63]
            ));
        }
        let hints: Vec<String> = errors(&text)
            .into_iter()
            .filter(|e| e.contains("which is not a stage"))
            .map(|e| e.lines().nth(1).unwrap_or_default().to_string())
            .collect();
        assert_eq!(hints.len(), 300);
        let per_look = 64 * 300 * 64;
        let suggested = SUGGESTION_BUDGET / per_look;
        assert!(suggested >= 1);
        for (i, hint) in hints.iter().enumerate() {
            if i < suggested {
                assert_eq!(hint, &format!("  hint: did you mean `{}`?", id(i)));
            } else {
                assert!(
                    hint.starts_with("  hint: stage ids in this file: `000x"),
                    "{hint}"
                );
                assert!(hint.ends_with(" and 288 more"), "{hint}");
            }
        }
    }
}

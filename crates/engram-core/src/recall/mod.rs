//! Recall: the parts of `POST /v1/recall` that need no storage — intent
//! routing (`intent.rs`), dropping near-identical results, and packing the
//! best results into a prompt-ready context within a token budget. The
//! service (`service/recall.rs`) gathers the candidates from the tiers.

pub mod intent;

use std::collections::HashSet;

use serde::Serialize;

pub use intent::{classify, Intent, IntentCache, TierWeights};

use crate::text::content_words;

/// Which memory a result came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum RecallTier {
    /// A turn of the current session.
    Working,
    Episodic,
    Semantic,
}

impl RecallTier {
    fn label(self) -> &'static str {
        match self {
            RecallTier::Working => "working",
            RecallTier::Episodic => "episodic",
            RecallTier::Semantic => "semantic",
        }
    }
}

/// One recalled item.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RecallItem {
    pub tier: RecallTier,
    /// The memory's id (working-memory turns have none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The session turn's number (working memory only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub turn: Option<i64>,
    pub text: String,
    pub score: f64,
    /// A date shown beside episodic items in the context (`YYYY-MM-DD`).
    #[serde(skip)]
    pub date: Option<String>,
}

/// Two results at least this similar (Jaccard of their content words) are
/// near-identical: the lower-scored one is dropped.
pub const NEAR_IDENTICAL: f64 = 0.8;

/// Keeps, of results that say nearly the same thing, the best-scored one;
/// `items` must be sorted best first. "Nearly the same": Jaccard similarity of
/// content words ≥ [`NEAR_IDENTICAL`], or the lesser one's words all within
/// the better one's (it adds nothing; a lesser one that adds words is kept).
pub fn drop_near_identical(items: Vec<RecallItem>) -> Vec<RecallItem> {
    let mut kept: Vec<(RecallItem, HashSet<String>)> = Vec::with_capacity(items.len());
    'next: for item in items {
        let w = content_words(&item.text);
        for (_, other) in &kept {
            let shared = w.intersection(other).count();
            let union = w.len() + other.len() - shared;
            let jaccard = if union == 0 { 1.0 } else { shared as f64 / union as f64 };
            let contained = shared == w.len();
            if jaccard >= NEAR_IDENTICAL || contained {
                continue 'next;
            }
        }
        kept.push((item, w));
    }
    kept.into_iter().map(|(i, _)| i).collect()
}

/// The context's first line (counted in the budget, dropped when it would
/// leave no room for the best result).
const HEADER: &str = "Relevant memory, most relevant first:";
/// Ends a line cut to fit the budget.
pub const CUT_MARK: &str = " …";

/// A packed context.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Packed {
    pub context: String,
    /// Results it holds (a cut one included).
    pub items: usize,
    /// Whether a result was cut short to fit (its line ends with [`CUT_MARK`]).
    pub cut: bool,
}

fn line_of(item: &RecallItem) -> String {
    match &item.date {
        Some(d) => format!("- [{}, {d}] {}", item.tier.label(), item.text),
        None => format!("- [{}] {}", item.tier.label(), item.text),
    }
}

/// The longest prefix of `s` of whole words, at least `min_words` of them,
/// that with [`CUT_MARK`] fits `budget`.
fn cut_words(s: &str, budget: usize, count: &dyn Fn(&str) -> usize, min_words: usize) -> Option<String> {
    let mut ends: Vec<usize> = s.char_indices().filter(|(_, c)| c.is_whitespace()).map(|(i, _)| i).collect();
    ends.push(s.len());
    let fits = |n: usize| count(&format!("{}{CUT_MARK}", s[..ends[n - 1]].trim_end())) <= budget;
    // Binary search on the number of words kept (more words never cost fewer tokens).
    let (mut lo, mut hi) = (0usize, ends.len());
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if fits(mid) {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    (lo >= min_words.max(1)).then(|| format!("{}{CUT_MARK}", s[..ends[lo - 1]].trim_end()))
}

/// The best item cut to fit `budget`: its line (`- [tier] …`) cut at a word
/// boundary with at least one word of its text; else its text alone so cut;
/// else as many characters of its text as fit (at least one).
fn cut_to_fit(item: &RecallItem, budget: usize, count: &dyn Fn(&str) -> usize) -> String {
    let line = line_of(item);
    let prefix_words = line.split_whitespace().count() - item.text.split_whitespace().count();
    if let Some(cut) = cut_words(&line, budget, count, prefix_words + 1) {
        return cut;
    }
    if let Some(cut) = cut_words(&item.text, budget, count, 1) {
        return cut;
    }
    let text = item.text.trim();
    let mut end = text.chars().next().map_or(0, char::len_utf8);
    for (i, c) in text.char_indices().skip(1) {
        if count(&text[..i + c.len_utf8()]) > budget {
            break;
        }
        end = i + c.len_utf8();
    }
    text[..end].trim_end().to_owned()
}

/// Packs `items` (best first) into a context of at most `budget` tokens as
/// `count` measures them: a header, then one line per item, `- [tier] text`.
/// An item that does not fit is skipped and smaller ones after it may still
/// be; but the best item is always carried — without the header when that
/// makes it fit, else cut at a word boundary and marked with [`CUT_MARK`].
/// The context is empty only when `items` is.
pub fn pack(items: &[RecallItem], budget: usize, count: &dyn Fn(&str) -> usize) -> Packed {
    if items.is_empty() {
        return Packed::default();
    }
    let lines: Vec<String> = items.iter().map(line_of).collect();
    let header = count(HEADER);
    // A line costs its own tokens and a newline.
    let cost = |l: &str| count(l) + 1;
    let (mut out, mut used, cut) = if header + cost(&lines[0]) <= budget {
        (vec![HEADER.to_owned()], header, false)
    } else if count(&lines[0]) <= budget {
        (Vec::new(), 0, false)
    } else {
        (vec![cut_to_fit(&items[0], budget, count)], budget, true)
    };
    // A cut first line is in already; an uncut one always fits.
    for line in lines.iter().skip(usize::from(cut)) {
        // The first line of a context without a header needs no newline.
        let c = if out.is_empty() { count(line) } else { cost(line) };
        if used + c <= budget {
            used += c;
            out.push(line.clone());
        }
    }
    let n = out.len() - usize::from(out.first().is_some_and(|l| l == HEADER));
    Packed { context: out.join("\n"), items: n, cut }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(tier: RecallTier, text: &str, score: f64) -> RecallItem {
        RecallItem { tier, id: None, turn: None, text: text.into(), score, date: None }
    }

    #[test]
    fn near_identical_results_keep_the_best() {
        let items = vec![
            item(RecallTier::Semantic, "Alice likes green tea", 0.9),
            item(RecallTier::Episodic, "alice likes green tea!", 0.8),
            item(RecallTier::Working, "user: Alice likes green tea a lot", 0.7),
            item(RecallTier::Episodic, "Bob plays chess", 0.6),
            item(RecallTier::Episodic, "Bob plays chess in the park with Carol", 0.5),
        ];
        let kept: Vec<String> = drop_near_identical(items).into_iter().map(|i| i.text).collect();
        assert_eq!(
            kept,
            [
                "Alice likes green tea",
                "user: Alice likes green tea a lot",
                "Bob plays chess",
                "Bob plays chess in the park with Carol"
            ]
        );
        let lesser = vec![
            item(RecallTier::Semantic, "Bob plays chess in the park", 0.9),
            item(RecallTier::Episodic, "Bob plays chess", 0.5),
        ];
        assert_eq!(drop_near_identical(lesser).len(), 1, "the lesser one adds nothing");
    }

    #[test]
    fn packing_respects_the_budget_and_skips_what_does_not_fit() {
        let words = |s: &str| s.split_whitespace().count();
        let items = vec![
            item(RecallTier::Semantic, "one two three", 0.9),
            item(RecallTier::Episodic, &"long ".repeat(50), 0.8),
            item(RecallTier::Working, "user: short", 0.7),
        ];
        let p = pack(&items, 20, &words);
        assert_eq!((p.items, p.cut), (2, false));
        assert_eq!(
            p.context,
            "Relevant memory, most relevant first:\n- [semantic] one two three\n- [working] user: short"
        );
        assert!(words(&p.context) + p.context.lines().count() <= 20);
        assert_eq!(pack(&[], 100, &words), Packed::default());
    }

    #[test]
    fn the_best_item_is_carried_even_when_the_budget_is_tight() {
        let words = |s: &str| s.split_whitespace().count();
        let long = item(RecallTier::Semantic, "Alice moved to Lisbon in March to work at the aquarium there", 0.9);
        let items = vec![long.clone(), item(RecallTier::Episodic, "short one", 0.5)];
        // Without the header it fits whole.
        let p = pack(&items, 14, &words);
        assert_eq!(
            (p.context.as_str(), p.items, p.cut),
            ("- [semantic] Alice moved to Lisbon in March to work at the aquarium there", 1, false)
        );
        // Tighter: cut at a word boundary and marked.
        let p = pack(&items, 6, &words);
        assert_eq!((p.context.as_str(), p.items, p.cut), ("- [semantic] Alice moved to …", 1, true));
        assert!(words(&p.context) <= 6);
        // A budget of one still carries something of the best item.
        let p = pack(&items, 1, &words);
        assert!(!p.context.is_empty() && words(&p.context) <= 1 && p.cut, "{p:?}");
        assert_eq!(p.context, "Alice");
        // Characters when a single word is longer than the budget.
        let chars = |s: &str| s.chars().count();
        let p = pack(std::slice::from_ref(&long), 10, &chars);
        assert_eq!(p.context, "Alice …");
        let p = pack(&[long], 3, &chars);
        assert_eq!(p.context, "Ali");
    }
}

//! Recall: the parts of `POST /v1/recall` that need no storage — intent
//! routing (`intent.rs`), dropping near-identical results, and packing the
//! best results into a prompt-ready context within a token budget. The
//! service (`service/recall.rs`) gathers the candidates from the tiers.

pub mod intent;

use std::collections::HashSet;

use serde::Serialize;

pub use intent::{classify, Intent, IntentCache, TierWeights};

use crate::text::{is_stopword, words};

/// Which memory a result came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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

fn content_words(text: &str) -> HashSet<String> {
    words(text).map(|(_, w)| w.to_lowercase()).filter(|w| !is_stopword(w)).collect()
}

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

/// The context's first line (counted in the budget).
const HEADER: &str = "Relevant memory, most relevant first:";

/// Packs `items` (best first) into a context of at most `budget` tokens as
/// `count` measures them: one line per item, `- [tier] text`. An item that does
/// not fit is skipped and smaller ones after it may still be. Returns the
/// context and how many items it holds.
pub fn pack(items: &[RecallItem], budget: usize, count: &dyn Fn(&str) -> usize) -> (String, usize) {
    let mut used = count(HEADER);
    if items.is_empty() || used >= budget {
        return (String::new(), 0);
    }
    let mut lines = vec![HEADER.to_owned()];
    for item in items {
        let line = match &item.date {
            Some(d) => format!("- [{}, {d}] {}", item.tier.label(), item.text),
            None => format!("- [{}] {}", item.tier.label(), item.text),
        };
        // A line costs its own tokens and a newline.
        let cost = count(&line) + 1;
        if used + cost <= budget {
            used += cost;
            lines.push(line);
        }
    }
    let n = lines.len() - 1;
    if n == 0 {
        return (String::new(), 0);
    }
    (lines.join("\n"), n)
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
        let (context, n) = pack(&items, 20, &words);
        assert_eq!(n, 2);
        assert_eq!(
            context,
            "Relevant memory, most relevant first:\n- [semantic] one two three\n- [working] user: short"
        );
        assert!(words(&context) + context.lines().count() <= 20);
        assert_eq!(pack(&items, 3, &words), (String::new(), 0), "not even the header fits");
        assert_eq!(pack(&[], 100, &words), (String::new(), 0));
    }
}

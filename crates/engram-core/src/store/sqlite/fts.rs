//! Turns arbitrary user text into a safe FTS5 query.
//!
//! The text is split into words (runs of letters and digits, as FTS5's
//! `unicode61` tokenizer sees them); each word becomes a double-quoted string, so
//! operators (`AND`, `NEAR`, `-`, `*`, `:`, `^`, parentheses) are searched
//! literally and never parsed. Words are OR-ed: BM25 ranks documents that hold
//! more of them, and rarer ones, first. The index stems with FTS5's `porter`
//! tokenizer, which stems the quoted query words the same way.
//!
//! English stopwords ("what", "did", "the", …) are dropped from the query unless
//! it has nothing else: they match most memories, cost time, and blur the
//! ranking (on LoCoMo, dropping them with stemming raised hybrid recall@10 from
//! 0.673 to 0.709; see docs/decisions.md).

/// Most distinct words taken from one query.
pub const MAX_TERMS: usize = 64;

use crate::text::is_stopword;

/// The words of `text` to search for, lower-cased, de-duplicated, without
/// stopwords (unless nothing else is left), at most [`MAX_TERMS`].
pub fn query_terms(text: &str) -> Vec<String> {
    let mut terms: Vec<String> = Vec::new();
    let mut stopwords: Vec<String> = Vec::new();
    for word in text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()) {
        let w = word.to_lowercase();
        let list = if is_stopword(&w) { &mut stopwords } else { &mut terms };
        if !list.contains(&w) && list.len() < MAX_TERMS {
            list.push(w);
        }
    }
    if terms.is_empty() {
        stopwords
    } else {
        terms
    }
}

/// The FTS5 MATCH expression OR-ing `terms`, each quoted; `None` when empty.
pub fn expression(terms: &[String]) -> Option<String> {
    if terms.is_empty() {
        return None;
    }
    Some(terms.iter().map(|t| format!("\"{}\"", t.replace('"', "\"\""))).collect::<Vec<_>>().join(" OR "))
}

#[cfg(test)]
fn match_expression(text: &str) -> Option<String> {
    expression(&query_terms(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_every_word() {
        assert_eq!(match_expression("Alice likes tea").as_deref(), Some("\"alice\" OR \"likes\" OR \"tea\""));
        // Stopwords go, unless nothing else is left.
        assert_eq!(match_expression("What did Alice paint?").as_deref(), Some("\"alice\" OR \"paint\""));
        assert_eq!(match_expression("Who is it?").as_deref(), Some("\"who\" OR \"is\" OR \"it\""));
        assert_eq!(match_expression("NEAR(a b) -c* d:e").as_deref(), Some("\"near\" OR \"b\" OR \"c\" OR \"e\""));
        assert_eq!(match_expression("\"\"\" ()*:-^").as_deref(), None);
        assert_eq!(match_expression("café 東京").as_deref(), Some("\"café\" OR \"東京\""));
    }

    #[test]
    fn caps_the_number_of_terms() {
        let many: String = (0..500).map(|i| format!("w{i} ")).collect();
        assert_eq!(match_expression(&many).unwrap().matches(" OR ").count(), MAX_TERMS - 1);
    }
}

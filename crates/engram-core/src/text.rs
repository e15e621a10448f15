//! Plain-text helpers shared by keyword search, recall and distillation: the
//! one word splitter, the English stopword list, and query terms.

/// NLTK's English stopword list (lower case, as compared).
const STOPWORDS: &[&str] = &[
    "i",
    "me",
    "my",
    "myself",
    "we",
    "our",
    "ours",
    "ourselves",
    "you",
    "your",
    "yours",
    "yourself",
    "yourselves",
    "he",
    "him",
    "his",
    "himself",
    "she",
    "her",
    "hers",
    "herself",
    "it",
    "its",
    "itself",
    "they",
    "them",
    "their",
    "theirs",
    "themselves",
    "what",
    "which",
    "who",
    "whom",
    "this",
    "that",
    "these",
    "those",
    "am",
    "is",
    "are",
    "was",
    "were",
    "be",
    "been",
    "being",
    "have",
    "has",
    "had",
    "having",
    "do",
    "does",
    "did",
    "doing",
    "a",
    "an",
    "the",
    "and",
    "but",
    "if",
    "or",
    "because",
    "as",
    "until",
    "while",
    "of",
    "at",
    "by",
    "for",
    "with",
    "about",
    "against",
    "between",
    "into",
    "through",
    "during",
    "before",
    "after",
    "above",
    "below",
    "to",
    "from",
    "up",
    "down",
    "in",
    "out",
    "on",
    "off",
    "over",
    "under",
    "again",
    "further",
    "then",
    "once",
    "here",
    "there",
    "when",
    "where",
    "why",
    "how",
    "all",
    "any",
    "both",
    "each",
    "few",
    "more",
    "most",
    "other",
    "some",
    "such",
    "no",
    "nor",
    "not",
    "only",
    "own",
    "same",
    "so",
    "than",
    "too",
    "very",
    "s",
    "t",
    "can",
    "will",
    "just",
    "don",
    "should",
    "now",
    "d",
    "ll",
    "m",
    "o",
    "re",
    "ve",
    "y",
];

/// Whether `word` (lower case) is an English stopword.
pub fn is_stopword(word: &str) -> bool {
    STOPWORDS.contains(&word)
}

/// The words of `text`: runs of letters and digits (apostrophes inside a word
/// split it, as FTS5's tokenizer does), with their byte offsets.
pub fn words(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut start = None;
    let mut out = Vec::new();
    for (i, c) in text.char_indices() {
        match (c.is_alphanumeric(), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                out.push((s, &text[s..i]));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push((s, &text[s..]));
    }
    out.into_iter()
}

/// Most distinct words taken from one query.
pub const MAX_TERMS: usize = 64;

/// The words of `text` to search for: lower-cased, de-duplicated, without
/// English stopwords ("what", "did", "the", …), at most [`MAX_TERMS`].
/// Stopwords match most memories, cost time, and blur the ranking (on
/// LoCoMo, dropping them with stemming raised hybrid recall@10 from 0.673 to
/// 0.709; see docs/decisions.md).
pub fn query_terms(text: &str) -> Vec<String> {
    let mut terms: Vec<String> = Vec::new();
    for (_, word) in words(text) {
        let w = word.to_lowercase();
        if !is_stopword(&w) && !terms.contains(&w) && terms.len() < MAX_TERMS {
            terms.push(w);
        }
    }
    terms
}

/// Whether a query has anything to search: a word that is not a stopword.
/// Empty text, white space, punctuation, emoji and stopwords alone have
/// nothing, and find nothing (searching them would only return noise).
pub fn has_searchable_words(text: &str) -> bool {
    words(text).any(|(_, w)| !is_stopword(&w.to_lowercase()))
}

/// Cuts `s` to at most `max` bytes, on a character boundary.
pub fn truncate_bytes(s: &mut String, max: usize) {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_words_with_offsets() {
        let w: Vec<_> = words("Hi, I'm at Mt. Rainier—2023!").collect();
        assert_eq!(w, vec![(0, "Hi"), (4, "I"), (6, "m"), (8, "at"), (11, "Mt"), (15, "Rainier"), (25, "2023")]);
        assert_eq!(words("").count(), 0);
    }
}

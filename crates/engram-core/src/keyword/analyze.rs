//! How text becomes the keyword index's terms: a memory's `search_text`
//! ([`crate::text::index_text`]) on one side, a query's words
//! ([`crate::text::query_terms`]) on the other. Both go through [`term`], so
//! they always agree.
//!
//! Words are [`crate::text::words`], split where the script changes. Runs of
//! scripts written with spaces are lower-cased and stemmed with the Snowball
//! English stemmer ("Porter2", crate `rust-stemmers`: "painting" and "paints"
//! find "paint"). Runs of scripts written without spaces are kept as written:
//! the index text already holds their characters and bigrams, which is what
//! queries search. Stopwords count towards a memory's length (BM25's document
//! length counts every token) but are not indexed: queries never search them.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::LazyLock;

use rust_stemmers::{Algorithm, Stemmer};

use crate::text::{fold_diacritics, is_stopword, pieces, unspaced, words};

static ENGLISH: LazyLock<Stemmer> = LazyLock::new(|| Stemmer::create(Algorithm::English));

/// A query word (lower case, as `query_terms` makes it) as the index holds it.
pub fn term(word: &str) -> Cow<'_, str> {
    if word.chars().any(unspaced) {
        Cow::Borrowed(word)
    } else {
        ENGLISH.stem(word)
    }
}

/// What the index keeps of one text: its terms with how often each occurs,
/// and its length in tokens.
#[derive(Debug, Default, PartialEq)]
pub struct Analyzed {
    pub terms: Vec<(String, u32)>,
    pub len: u32,
}

/// The terms of `search_text` and its length.
pub fn document(search_text: &str) -> Analyzed {
    let mut counts: HashMap<String, u32> = HashMap::new();
    let mut len = 0u32;
    for (_, word) in words(search_text) {
        for (is_unspaced, run) in pieces(word) {
            len = len.saturating_add(1);
            if is_unspaced {
                *counts.entry(run.to_owned()).or_default() += 1;
                continue;
            }
            let lower = fold_diacritics(&run.to_lowercase()).into_owned();
            if !is_stopword(&lower) {
                *counts.entry(term(&lower).into_owned()).or_default() += 1;
            }
        }
    }
    let mut terms: Vec<(String, u32)> = counts.into_iter().collect();
    terms.sort_unstable();
    Analyzed { terms, len }
}

/// The distinct index terms of a query's words, in their order.
pub fn query(words: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(words.len());
    for w in words {
        let t = term(w).into_owned();
        if !out.contains(&t) {
            out.push(t);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::{index_text, query_terms};

    fn doc(text: &str) -> Analyzed {
        document(&index_text(text))
    }

    #[test]
    fn stems_english_and_skips_stopwords_but_counts_them() {
        let a = doc("The painter is painting; she paints.");
        assert_eq!(a.len, 6);
        assert_eq!(a.terms, vec![("paint".to_owned(), 2), ("painter".to_owned(), 1)]);
        assert_eq!(query(&query_terms("Who paints?")), ["paint"]);
        assert_eq!(query(&query_terms("painting paints")), ["paint"], "one term per stem");
    }

    #[test]
    fn folds_case_and_diacritics_like_the_query() {
        assert_eq!(doc("CAFÉ").terms, vec![("cafe".to_owned(), 1)]);
        assert_eq!(query(&query_terms("Café")), ["cafe"]);
    }

    #[test]
    fn unspaced_scripts_are_found_by_their_bigrams() {
        let a = doc("我喜欢喝绿茶");
        for t in query(&query_terms("绿茶")) {
            assert!(a.terms.iter().any(|(x, _)| *x == t), "{t} is indexed");
        }
        let mixed = doc("the iPhone手机");
        assert!(mixed.terms.iter().any(|(t, _)| t == "iphon"), "a Latin run inside a mixed word: {mixed:?}");
        assert!(mixed.terms.iter().any(|(t, _)| t == "手机"));
    }

    #[test]
    fn empty_and_punctuation_have_nothing() {
        assert_eq!(document(""), Analyzed::default());
        assert_eq!(document("?! -- ..."), Analyzed::default());
    }
}

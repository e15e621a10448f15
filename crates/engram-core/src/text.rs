//! Plain-text helpers shared by keyword search, recall and distillation: the
//! one word splitter, the English stopword list, query terms, and the text a
//! keyword index holds.
//!
//! **Scripts written without spaces** (Chinese, Japanese, Thai, Lao, Khmer,
//! Myanmar; and Korean, whose words carry their particles) have no word
//! boundaries a tokenizer can see: a run of them is one "word" to a
//! full-text index, so `绿茶` would never find `我喜欢喝绿茶`. Such runs are indexed
//! as their overlapping character bigrams and single characters besides the
//! text itself ([`index_text`]), and searched as bigrams ([`query_terms`]) —
//! the n-gram approach of CJK analyzers elsewhere (e.g. Elasticsearch's
//! `cjk_bigram`). Text in other scripts is indexed exactly as written.

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
/// split it, as full-text tokenizers do), with their byte offsets.
pub fn words(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut start = None;
    let mut out = Vec::new();
    for (i, c) in text.char_indices() {
        match (c.is_alphanumeric() || unspaced(c), start) {
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

/// Whether `c` belongs to a script written without spaces between words
/// (a whole block, combining marks included).
pub fn unspaced(c: char) -> bool {
    matches!(c as u32,
        0x0E00..=0x0EFF        // Thai, Lao
        | 0x1000..=0x109F      // Myanmar
        | 0x1100..=0x11FF      // Hangul Jamo
        | 0x1780..=0x17FF      // Khmer
        | 0x3040..=0x30FF      // Hiragana, Katakana
        | 0x3130..=0x318F      // Hangul compatibility Jamo
        | 0x31F0..=0x31FF      // Katakana phonetic extensions
        | 0x3400..=0x4DBF      // CJK extension A
        | 0x4E00..=0x9FFF      // CJK unified ideographs
        | 0xAC00..=0xD7AF      // Hangul syllables
        | 0xF900..=0xFAFF      // CJK compatibility ideographs
        | 0xFF66..=0xFF9F      // half-width Katakana
        | 0x20000..=0x323AF    // CJK extensions B-H
    )
}

/// A word's pieces: runs of unspaced-script characters and runs of others.
pub(crate) fn pieces(word: &str) -> impl Iterator<Item = (bool, &str)> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut kind = None;
    for (i, c) in word.char_indices() {
        let k = unspaced(c);
        if kind.is_some_and(|prev| prev != k) {
            out.push((kind.unwrap_or(false), &word[start..i]));
            start = i;
        }
        kind = Some(k);
    }
    if let Some(k) = kind {
        out.push((k, &word[start..]));
    }
    out.into_iter()
}

/// The letters of an unspaced run that n-grams are made of (tone and vowel
/// marks that are not letters are left out, as the index's tokenizer drops
/// diacritics anyway).
fn grams(run: &str) -> Vec<char> {
    run.chars().filter(|c| c.is_alphanumeric()).collect()
}

/// A Latin letter with diacritics as its base letter (`é` → `e`, `Ñ` → `N`),
/// so "cafe" finds "Café" on every backend (PostgreSQL's `english`
/// configuration does not fold them itself). Letters of other
/// scripts keep their marks: they are part of the letter there.
pub fn fold_diacritics(text: &str) -> std::borrow::Cow<'_, str> {
    use unicode_normalization::char::{decompose_canonical, is_combining_mark};
    if text.is_ascii() {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let mut parts = Vec::with_capacity(4);
        decompose_canonical(c, |p| parts.push(p));
        match parts.split_first() {
            Some((base, marks))
                if base.is_ascii_alphabetic() && !marks.is_empty() && marks.iter().all(|m| is_combining_mark(*m)) =>
            {
                out.push(*base)
            }
            _ => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// The text a keyword index holds for `text`: the text itself and, when it
/// has runs of unspaced scripts, their single characters and overlapping
/// bigrams, separated by spaces.
pub fn index_text(text: &str) -> String {
    let text = &*fold_diacritics(text);
    if !text.chars().any(unspaced) {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len() * 4);
    out.push_str(text);
    for (_, word) in words(text) {
        for (is_unspaced, run) in pieces(word) {
            if !is_unspaced {
                continue;
            }
            let g = grams(run);
            for (i, c) in g.iter().enumerate() {
                out.push(' ');
                out.push(*c);
                if let Some(next) = g.get(i + 1) {
                    out.push(' ');
                    out.push(*c);
                    out.push(*next);
                }
            }
        }
    }
    out
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
    let mut add = |t: String| {
        if !terms.contains(&t) && terms.len() < MAX_TERMS {
            terms.push(t);
        }
    };
    for (_, word) in words(text) {
        for (is_unspaced, run) in pieces(word) {
            if is_unspaced {
                // An unspaced run is searched by its bigrams (a single character alone).
                let g = grams(run);
                match g.len() {
                    0 => {}
                    1 => add(g[0].to_string()),
                    _ => g.windows(2).for_each(|w| add(w.iter().collect())),
                }
            } else {
                let w = fold_diacritics(&run.to_lowercase()).into_owned();
                if !is_stopword(&w) {
                    add(w);
                }
            }
        }
    }
    terms
}

/// The distinct content words of `text`: lower case, stopwords left out
/// (what recall compares texts by).
pub fn content_words(text: &str) -> std::collections::HashSet<String> {
    words(text).map(|(_, w)| w.to_lowercase()).filter(|w| !is_stopword(w)).collect()
}

/// Whether a query has anything to search: a word that is not a stopword.
/// Empty text, white space, punctuation, emoji and stopwords alone have
/// nothing, and find nothing (searching them would only return noise).
pub fn has_searchable_words(text: &str) -> bool {
    !query_terms(text).is_empty()
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
    fn latin_diacritics_fold_and_other_scripts_keep_their_marks() {
        assert_eq!(fold_diacritics("Café crème, Ñandú, Łódź"), "Cafe creme, Nandu, Łodz");
        assert_eq!(fold_diacritics("東京 हिन्दी"), "東京 हिन्दी");
        assert!(matches!(fold_diacritics("plain"), std::borrow::Cow::Borrowed(_)));
        assert_eq!(query_terms("Café"), ["cafe"]);
        assert_eq!(index_text("Café"), "Cafe");
    }

    #[test]
    fn splits_words_with_offsets() {
        let w: Vec<_> = words("Hi, I'm at Mt. Rainier—2023!").collect();
        assert_eq!(w, vec![(0, "Hi"), (4, "I"), (6, "m"), (8, "at"), (11, "Mt"), (15, "Rainier"), (25, "2023")]);
        assert_eq!(words("").count(), 0);
    }

    #[test]
    fn scripts_without_spaces_are_indexed_and_searched_by_bigrams() {
        assert_eq!(index_text("I like tea"), "I like tea", "other scripts are indexed as written");
        assert_eq!(index_text("喝绿茶"), "喝绿茶 喝 喝绿 绿 绿茶 茶");
        assert_eq!(query_terms("绿茶"), ["绿茶"]);
        assert_eq!(query_terms("我喜欢绿茶?"), ["我喜", "喜欢", "欢绿", "绿茶"]);
        assert_eq!(query_terms("茶"), ["茶"]);
        assert_eq!(query_terms("the iPhone手机 is"), ["iphone", "手机"]);
        // Thai tone marks do not split a run, and are left out of its n-grams.
        assert_eq!(words("ไปเที่ยว").count(), 1);
        assert_eq!(query_terms("เที่ยว"), ["เท", "ที", "ีย", "ยว"]);
        assert!(has_searchable_words("東京") && !has_searchable_words("?!") && !has_searchable_words("🙂 the"));
    }
}

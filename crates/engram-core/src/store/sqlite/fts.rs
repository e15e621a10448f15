//! Turns arbitrary user text into a safe FTS5 query.
//!
//! The text is split into words (runs of letters and digits, as FTS5's
//! `unicode61` tokenizer sees them); each word becomes a double-quoted string, so
//! operators (`AND`, `NEAR`, `-`, `*`, `:`, `^`, parentheses) are searched
//! literally and never parsed. Words are OR-ed: BM25 ranks documents that hold
//! more of them, and rarer ones, first.

/// Most distinct words taken from one query.
pub const MAX_TERMS: usize = 64;

/// The FTS5 MATCH expression for `text`, or `None` when it has no words.
pub fn match_expression(text: &str) -> Option<String> {
    let mut terms: Vec<String> = Vec::new();
    for word in text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()) {
        let w = word.to_lowercase();
        if !terms.contains(&w) {
            terms.push(w);
            if terms.len() == MAX_TERMS {
                break;
            }
        }
    }
    if terms.is_empty() {
        return None;
    }
    Some(terms.iter().map(|t| format!("\"{}\"", t.replace('"', "\"\""))).collect::<Vec<_>>().join(" OR "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_every_word() {
        assert_eq!(match_expression("Alice likes tea").as_deref(), Some("\"alice\" OR \"likes\" OR \"tea\""));
        assert_eq!(match_expression("NEAR(a b) -c* d:e").as_deref(), Some("\"near\" OR \"a\" OR \"b\" OR \"c\" OR \"d\" OR \"e\""));
        assert_eq!(match_expression("\"\"\" ()*:-^").as_deref(), None);
        assert_eq!(match_expression("café 東京").as_deref(), Some("\"café\" OR \"東京\""));
    }

    #[test]
    fn caps_the_number_of_terms() {
        let many: String = (0..500).map(|i| format!("w{i} ")).collect();
        assert_eq!(match_expression(&many).unwrap().matches(" OR ").count(), MAX_TERMS - 1);
    }
}

//! Turns query terms (from `crate::text::query_terms`) into a safe FTS5 query.
//!
//! Each term becomes a double-quoted string, so operators (`AND`, `NEAR`, `-`,
//! `*`, `:`, `^`, parentheses) are searched literally and never parsed. Terms
//! are OR-ed: BM25 ranks documents that hold more of them, and rarer ones,
//! first. The index stems with FTS5's `porter` tokenizer, which stems the
//! quoted query words the same way.

/// The FTS5 MATCH expression OR-ing `terms`, each quoted; `None` when empty.
pub fn expression(terms: &[String]) -> Option<String> {
    if terms.is_empty() {
        return None;
    }
    Some(terms.iter().map(|t| format!("\"{}\"", t.replace('"', "\"\""))).collect::<Vec<_>>().join(" OR "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::{query_terms, MAX_TERMS};

    fn match_expression(text: &str) -> Option<String> {
        expression(&query_terms(text))
    }

    #[test]
    fn quotes_every_word() {
        assert_eq!(match_expression("Alice likes tea").as_deref(), Some("\"alice\" OR \"likes\" OR \"tea\""));
        // Stopwords go: a query of stopwords alone has nothing to search.
        assert_eq!(match_expression("What did Alice paint?").as_deref(), Some("\"alice\" OR \"paint\""));
        assert_eq!(match_expression("Who is it?"), None);
        assert_eq!(match_expression("NEAR(a b) -c* d:e").as_deref(), Some("\"near\" OR \"b\" OR \"c\" OR \"e\""));
        assert_eq!(match_expression("\"\"\" ()*:-^").as_deref(), None);
        assert_eq!(expression(&["a\"b".to_owned()]).as_deref(), Some("\"a\"\"b\""));
    }

    #[test]
    fn caps_the_number_of_terms() {
        let many: String = (0..500).map(|i| format!("w{i} ")).collect();
        assert_eq!(match_expression(&many).unwrap().matches(" OR ").count(), MAX_TERMS - 1);
    }
}

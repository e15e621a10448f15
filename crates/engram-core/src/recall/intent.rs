//! Rule-based intent routing: what kind of question is this, and so which
//! tiers should answer it first. Rules are word patterns, not a model: they
//! cost microseconds, are explainable, and a miss only changes the weighting
//! (every tier is still searched). A bounded cache keeps the verdicts of recent
//! queries (agents ask the same things again and again).

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

/// What a query is after.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Intent {
    /// The current conversation: "what did I just say?".
    Working,
    /// Stable facts and preferences: "what does Alice like?".
    Semantic,
    /// Events and when they happened: "when did we go to Lisbon?".
    Episodic,
    /// Anything else: every tier alike.
    General,
}

/// How much each tier's results count for an intent (multiplies their score).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TierWeights {
    pub working: f64,
    pub episodic: f64,
    pub semantic: f64,
}

impl Intent {
    pub fn weights(self) -> TierWeights {
        match self {
            Intent::Working => TierWeights { working: 1.0, episodic: 0.5, semantic: 0.4 },
            Intent::Semantic => TierWeights { working: 0.4, episodic: 0.8, semantic: 1.0 },
            Intent::Episodic => TierWeights { working: 0.4, episodic: 1.0, semantic: 0.7 },
            Intent::General => TierWeights { working: 0.6, episodic: 1.0, semantic: 1.0 },
        }
    }
}

/// Phrases that point at the conversation in progress.
const WORKING: &[&str] = &[
    "just said",
    "just say",
    "just told",
    "just now",
    "a moment ago",
    "a minute ago",
    "earlier in this",
    "this conversation",
    "this chat",
    "you said",
    "you just",
    "i said",
    "i just",
    "last message",
    "my last",
    "your last",
    "we were talking",
    "we were discussing",
    "what was i saying",
    "remind me what we",
    "so far",
];
/// Words of events and time.
const EPISODIC: &[&str] = &[
    "when",
    "happened",
    "yesterday",
    "ago",
    "last time",
    "last week",
    "last month",
    "last year",
    "did we",
    "did i",
    "did you",
    "remember when",
    "what time",
    "what date",
    "how long",
    "before",
    "after",
    "since",
    "during",
    "trip",
    "visit",
    "visited",
    "went",
    "met",
    "meeting",
    "event",
    "first time",
];
/// Words of facts, preferences and identity.
const SEMANTIC: &[&str] = &[
    "like",
    "likes",
    "love",
    "loves",
    "prefer",
    "prefers",
    "favorite",
    "favourite",
    "hate",
    "hates",
    "enjoy",
    "enjoys",
    "who is",
    "what is",
    "what s",
    "allergic",
    "usually",
    "always",
    "never",
    "opinion",
    "hobby",
    "hobbies",
    "job",
    "work as",
    "works as",
    "lives",
    "live in",
    "name",
    "birthday",
    "age",
    "believe",
    "think of",
    "feel about",
    "interested",
    "goal",
    "goals",
    "plan to",
    "want to",
];

/// Routes `query` to an intent by its word patterns.
pub fn classify(query: &str) -> Intent {
    let q = format!(" {} ", normalise(query));
    let hits = |list: &[&str]| list.iter().filter(|p| q.contains(&format!(" {p} "))).count();
    if hits(WORKING) > 0 {
        return Intent::Working;
    }
    let (e, s) = (hits(EPISODIC), hits(SEMANTIC));
    match (e, s) {
        (0, 0) => Intent::General,
        (e, s) if e > s => Intent::Episodic,
        (e, s) if s > e => Intent::Semantic,
        // A tie: a question about time is about an event.
        _ if q.starts_with(" when ") => Intent::Episodic,
        _ => Intent::Semantic,
    }
}

/// The query's words (by the one word splitter, `text::words`), lower case,
/// separated by single spaces: "What's up?" → "what s up".
fn normalise(query: &str) -> String {
    crate::text::words(query).map(|(_, w)| w.to_lowercase()).collect::<Vec<_>>().join(" ")
}

/// A bounded cache of intents by normalised query (`quick_cache`, which
/// keeps the entries used again and again).
pub struct IntentCache {
    cache: quick_cache::sync::Cache<String, Intent>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl IntentCache {
    pub fn new(capacity: usize) -> Self {
        IntentCache {
            cache: quick_cache::sync::Cache::new(capacity.max(1)),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// The intent of `query`, from the cache or classified now.
    pub fn route(&self, query: &str) -> Intent {
        let key = normalise(query);
        if let Some(intent) = self.cache.get(&key) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return intent;
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let intent = classify(query);
        self.cache.insert(key, intent);
        intent
    }

    /// `(hits, misses, entries)` so far.
    pub fn stats(&self) -> (u64, u64, usize) {
        (self.hits.load(Ordering::Relaxed), self.misses.load(Ordering::Relaxed), self.cache.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_by_pattern() {
        assert_eq!(classify("What did I just say?"), Intent::Working);
        assert_eq!(classify("remind me what we were talking about"), Intent::Working);
        assert_eq!(classify("What does Alice like?"), Intent::Semantic);
        assert_eq!(classify("what's my favourite colour"), Intent::Semantic);
        assert_eq!(classify("When did Caroline go to the support group?"), Intent::Episodic);
        assert_eq!(classify("What happened at the meeting yesterday?"), Intent::Episodic);
        assert_eq!(classify("pottery"), Intent::General);
        assert_eq!(classify(""), Intent::General);
    }

    #[test]
    fn the_cache_counts_hits_and_stays_bounded() {
        let cache = IntentCache::new(8);
        assert_eq!(cache.route("What does Alice like?"), Intent::Semantic);
        assert_eq!(cache.route("what does alice LIKE"), Intent::Semantic, "normalised: the same entry");
        assert_eq!(cache.stats(), (1, 1, 1));
        for i in 0..100 {
            cache.route(&format!("question number {i}"));
        }
        let (hits, misses, entries) = cache.stats();
        assert_eq!((hits, misses), (1, 101));
        assert!(entries <= 8, "{entries} entries");
    }
}

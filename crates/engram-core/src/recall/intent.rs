//! Rule-based intent routing: what kind of question is this, and so which
//! tiers should answer it first. Rules are word patterns, not a model: they
//! cost microseconds, are explainable, and a miss only changes the weighting
//! (every tier is still searched). An LRU cache keeps the verdicts of recent
//! queries (agents ask the same things again and again).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use serde::Serialize;

/// What a query is after.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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
    "just said", "just say", "just told", "just now", "a moment ago", "a minute ago", "earlier in this",
    "this conversation", "this chat", "you said", "you just", "i said", "i just", "last message", "my last",
    "your last", "we were talking", "we were discussing", "what was i saying", "remind me what we", "so far",
];
/// Words of events and time.
const EPISODIC: &[&str] = &[
    "when", "happened", "yesterday", "ago", "last time", "last week", "last month", "last year", "did we", "did i",
    "did you", "remember when", "what time", "what date", "how long", "before", "after", "since", "during", "trip",
    "visit", "visited", "went", "met", "meeting", "event", "first time",
];
/// Words of facts, preferences and identity.
const SEMANTIC: &[&str] = &[
    "like", "likes", "love", "loves", "prefer", "prefers", "favorite", "favourite", "hate", "hates", "enjoy",
    "enjoys", "who is", "what is", "what's", "allergic", "usually", "always", "never", "opinion", "hobby",
    "hobbies", "job", "work as", "works as", "lives", "live in", "name", "birthday", "age", "believe", "think of",
    "feel about", "interested", "goal", "goals", "plan to", "want to",
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

/// Lower case, words separated by single spaces, apostrophes kept.
fn normalise(query: &str) -> String {
    let mut out = String::with_capacity(query.len());
    for c in query.chars().flat_map(char::to_lowercase) {
        if c.is_alphanumeric() || c == '\'' {
            out.push(c);
        } else if !out.ends_with(' ') {
            out.push(' ');
        }
    }
    out.trim().to_owned()
}

/// A least-recently-used cache of intents by normalised query.
pub struct IntentCache {
    inner: Mutex<Lru>,
}

#[derive(Default)]
struct Lru {
    capacity: usize,
    tick: u64,
    entries: HashMap<String, (Intent, u64)>,
    by_age: BTreeMap<u64, String>,
    hits: u64,
    misses: u64,
}

impl IntentCache {
    pub fn new(capacity: usize) -> Self {
        IntentCache { inner: Mutex::new(Lru { capacity: capacity.max(1), ..Lru::default() }) }
    }

    /// The intent of `query`, from the cache or classified now.
    pub fn route(&self, query: &str) -> Intent {
        let key = normalise(query);
        let Ok(mut lru) = self.inner.lock() else { return classify(query) };
        lru.tick += 1;
        let tick = lru.tick;
        if let Some((intent, old)) = lru.entries.get(&key).copied() {
            lru.by_age.remove(&old);
            lru.by_age.insert(tick, key.clone());
            lru.entries.insert(key, (intent, tick));
            lru.hits += 1;
            return intent;
        }
        lru.misses += 1;
        let intent = classify(query);
        if lru.entries.len() >= lru.capacity {
            if let Some((_, oldest)) = lru.by_age.pop_first() {
                lru.entries.remove(&oldest);
            }
        }
        lru.by_age.insert(tick, key.clone());
        lru.entries.insert(key, (intent, tick));
        intent
    }

    /// `(hits, misses, entries)` so far.
    pub fn stats(&self) -> (u64, u64, usize) {
        self.inner.lock().map(|l| (l.hits, l.misses, l.entries.len())).unwrap_or_default()
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
    fn the_cache_keeps_the_most_recent_queries() {
        let cache = IntentCache::new(2);
        assert_eq!(cache.route("What does Alice like?"), Intent::Semantic);
        assert_eq!(cache.route("what does alice LIKE"), Intent::Semantic, "normalised: the same entry");
        assert_eq!(cache.stats(), (1, 1, 1));
        cache.route("when did we meet");
        cache.route("what does alice like"); // refreshes the first entry
        cache.route("pottery"); // evicts "when did we meet", the least recent
        assert_eq!(cache.stats().2, 2);
        let (hits, misses, _) = cache.stats();
        cache.route("what does alice like");
        assert_eq!(cache.stats().0, hits + 1, "still cached");
        cache.route("when did we meet");
        assert_eq!(cache.stats().1, misses + 1, "evicted, classified again");
    }
}

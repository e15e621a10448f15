//! The default distiller: extractive, no LLM.
//!
//! Each turn is split into sentences and each sentence is scored for what it
//! tells: content words (not stopwords, not small talk), named entities
//! (capitalised words that are not merely sentence-initial), numbers, dates,
//! and first-person statements ("I work at…", "my sister…"). A sentence with
//! nothing of that — "haha thanks!", "How are you?" — is chit-chat and is not
//! stored. The sentences kept from one turn become one episodic memory,
//! "<speaker>: <sentences>", with relative dates resolved against the turn's
//! time ("yesterday (7 May 2023)"), and metadata: who said it, when, the
//! entities and key phrases. The running summary keeps the best sentences of
//! each distillation, newest last, within a character budget.

use super::{dates, DistillRequest, DistillTurn, Distillation, DistilledMemory};
use crate::text::{is_stopword, words};

/// A sentence needs at least this score to be kept.
const KEEP: f64 = 0.35;
/// Sentences from each distillation added to the running summary.
const SUMMARY_PER_RUN: usize = 3;
/// Longest running summary, in characters.
pub const SUMMARY_MAX_CHARS: usize = 2000;
/// Most entities and key phrases recorded per memory.
const MAX_ENTITIES: usize = 16;
const MAX_PHRASES: usize = 6;

/// Words of small talk: a sentence made only of these (and stopwords) tells
/// nothing worth remembering.
const SMALL_TALK: &[&str] = &[
    "hi",
    "hello",
    "hey",
    "hiya",
    "yo",
    "bye",
    "goodbye",
    "thanks",
    "thank",
    "thx",
    "ok",
    "okay",
    "k",
    "yeah",
    "yes",
    "yep",
    "yup",
    "nope",
    "nah",
    "lol",
    "haha",
    "hahaha",
    "hehe",
    "lmao",
    "omg",
    "wow",
    "cool",
    "great",
    "nice",
    "awesome",
    "amazing",
    "good",
    "fine",
    "sure",
    "right",
    "glad",
    "hear",
    "sounds",
    "sound",
    "totally",
    "absolutely",
    "definitely",
    "really",
    "pretty",
    "much",
    "well",
    "oh",
    "ah",
    "hmm",
    "um",
    "uh",
    "please",
    "welcome",
    "sorry",
    "morning",
    "night",
    "evening",
    "afternoon",
    "day",
    "care",
    "see",
    "soon",
    "later",
    "talk",
    "chat",
    "catch",
    "going",
    "doing",
    "thing",
    "things",
    "stuff",
    "lot",
    "lots",
    "also",
    "get",
    "got",
    "know",
    "think",
    "mean",
    "agree",
    "true",
    "exactly",
    "indeed",
    "wonderful",
    "fantastic",
    "incredible",
    "love",
    "like",
    "hope",
    "feel",
    "feeling",
    "happy",
    "keep",
    "let",
    "us",
    "let's",
    "man",
    "dude",
    "buddy",
    "friend",
    "guys",
    "anyway",
    "bit",
    "way",
    "congrats",
    "congratulations",
    "cheers",
    "super",
    "tell",
    "said",
    "say",
    "go",
    "new",
];

/// Openers of first-person statements: a sentence with one usually states a fact
/// about the speaker.
const FIRST_PERSON: &[&str] = &["i", "my", "we", "our", "me", "mine"];

fn is_small_talk(w: &str) -> bool {
    SMALL_TALK.contains(&w)
}

/// A scored sentence of one turn.
struct Sentence {
    text: String,
    score: f64,
    entities: Vec<String>,
    phrases: Vec<String>,
}

/// Distills `req` without a model.
pub fn distill(req: &DistillRequest) -> Distillation {
    let mut memories = Vec::new();
    let mut best: Vec<(f64, String)> = Vec::new();
    for turn in &req.turns {
        let speaker = speaker_of(turn);
        let kept: Vec<Sentence> = sentences(&turn.content)
            .into_iter()
            .map(|s| score(&dates::resolve(s, turn.at, turn.utc_offset)))
            .filter(|s| s.score >= KEEP)
            .collect();
        if kept.is_empty() {
            continue;
        }
        let body = kept.iter().map(|s| s.text.as_str()).collect::<Vec<_>>().join(" ");
        let mut entities: Vec<String> = Vec::new();
        let mut phrases: Vec<String> = Vec::new();
        for s in &kept {
            best.push((s.score, format!("{speaker}: {}", s.text)));
            for e in &s.entities {
                if !entities.contains(e) && entities.len() < MAX_ENTITIES {
                    entities.push(e.clone());
                }
            }
            for p in &s.phrases {
                if !phrases.contains(p) && phrases.len() < MAX_PHRASES {
                    phrases.push(p.clone());
                }
            }
        }
        let top = kept.iter().map(|s| s.score).fold(0.0, f64::max);
        memories.push(DistilledMemory {
            text: format!("{speaker}: {body}"),
            turn_from: turn.index,
            turn_to: turn.index,
            speakers: vec![speaker],
            at: turn.local_time(),
            entities,
            key_phrases: phrases,
            // 0.4 for a bare fact, up to 0.6 for a dense one; citing raises it.
            salience: 0.4 + 0.2 * (top / 2.0).min(1.0),
            metadata: turn.metadata.clone(),
        });
    }
    best.sort_by(|a, b| b.0.total_cmp(&a.0));
    let summary = extend_summary(&req.summary, best.into_iter().take(SUMMARY_PER_RUN).map(|(_, s)| s));
    Distillation { memories, summary }
}

/// Who said a turn: its metadata's `speaker` or `name`, else its role.
fn speaker_of(turn: &DistillTurn) -> String {
    for field in ["speaker", "name"] {
        if let Some(s) = turn.metadata.get(field).and_then(|v| v.as_str()).map(str::trim).filter(|s| !s.is_empty()) {
            return s.chars().take(64).collect();
        }
    }
    turn.role.clone()
}

/// Splits text into sentences at `.`, `!`, `?` followed by white space (or the
/// end), and at line breaks. Abbreviations such as "Mt." split too, which
/// only costs a sentence its neighbour.
fn sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let end = match c {
            '\n' => Some(i),
            '.' | '!' | '?' | '…' => match chars.peek() {
                Some((_, n)) if n.is_whitespace() => Some(i + c.len_utf8()),
                None => Some(i + c.len_utf8()),
                _ => None,
            },
            _ => None,
        };
        if let Some(end) = end {
            let s = text[start..end].trim();
            if !s.is_empty() {
                out.push(s);
            }
            start = end;
        }
    }
    let rest = text[start..].trim();
    if !rest.is_empty() {
        out.push(rest);
    }
    out
}

/// Scores one sentence (relative dates already resolved).
fn score(text: &str) -> Sentence {
    let ws: Vec<(usize, &str)> = words(text).collect();
    let lower: Vec<String> = ws.iter().map(|(_, w)| w.to_lowercase()).collect();
    let content = |i: usize| {
        let w = &lower[i];
        !is_stopword(w) && !is_small_talk(w) && (w.chars().count() > 1 || w.chars().all(|c| c.is_ascii_digit()))
    };
    let capitalised = |i: usize| ws[i].1.chars().next().is_some_and(char::is_uppercase) && lower[i] != "i";

    // Entities: runs of capitalised words; a run at the start of the sentence
    // counts only if it is two words or more ("Mount Rainier"), since a lone
    // capital there is just grammar.
    let mut entities = Vec::new();
    let mut i = 0;
    while i < ws.len() {
        if capitalised(i) && !is_small_talk(&lower[i]) {
            let start = i;
            while i + 1 < ws.len() && capitalised(i + 1) && adjacent(text, ws[i], ws[i + 1]) {
                i += 1;
            }
            let run = &text[ws[start].0..ws[i].0 + ws[i].1.len()];
            let is_month_or_day = start == i && dates_word(&lower[start]);
            if (start > 0 || i > start) && !is_month_or_day && !is_stopword(&lower[start]) {
                entities.push(run.to_string());
            }
        }
        i += 1;
    }

    // Key phrases: runs of one to three content words.
    let mut phrases: Vec<String> = Vec::new();
    let mut run: Vec<usize> = Vec::new();
    for k in 0..=ws.len() {
        if k < ws.len() && content(k) && (run.is_empty() || adjacent(text, ws[k - 1], ws[k])) {
            run.push(k);
            continue;
        }
        if !run.is_empty() {
            let p = run.iter().take(3).map(|&j| lower[j].as_str()).collect::<Vec<_>>().join(" ");
            phrases.push(p);
            run.clear();
        }
        if k < ws.len() && content(k) {
            run.push(k);
        }
    }
    phrases.sort_by_key(|p| std::cmp::Reverse(p.split(' ').count()));

    let n_content = (0..ws.len()).filter(|&k| content(k)).count();
    let has_number = ws.iter().any(|(_, w)| w.chars().any(|c| c.is_ascii_digit()));
    let has_date = text.contains(" (") && text.contains(')') || lower.iter().any(|w| dates_word(w));
    let first_person = lower.iter().any(|w| FIRST_PERSON.contains(&w.as_str()));
    let mut s = 0.12 * n_content.min(8) as f64
        + 0.35 * entities.len().min(3) as f64
        + if has_number { 0.2 } else { 0.0 }
        + if has_date { 0.3 } else { 0.0 }
        + if first_person && n_content > 0 { 0.15 } else { 0.0 };
    if text.ends_with('?') && entities.is_empty() {
        // Questions rarely state facts; answers do.
        s *= 0.5;
    }
    if n_content == 0 {
        s = 0.0;
    }
    Sentence { text: text.to_string(), score: s, entities, phrases }
}

/// Whether two words are separated by spaces only (no punctuation between).
fn adjacent(text: &str, a: (usize, &str), b: (usize, &str)) -> bool {
    text[a.0 + a.1.len()..b.0].chars().all(|c| c == ' ')
}

fn dates_word(w: &str) -> bool {
    const NAMES: &[&str] = &[
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
        "yesterday",
        "today",
        "tomorrow",
        "tonight",
        "weekend",
    ];
    NAMES.contains(&w)
}

/// The previous summary with `new` lines appended, oldest lines dropped to
/// stay within [`SUMMARY_MAX_CHARS`].
fn extend_summary(previous: &str, new: impl Iterator<Item = String>) -> String {
    let mut lines: Vec<String> = previous.lines().filter(|l| !l.trim().is_empty()).map(str::to_string).collect();
    for line in new {
        let line = format!("- {}", line.chars().take(SUMMARY_MAX_CHARS / 4).collect::<String>());
        if !lines.contains(&line) {
            lines.push(line);
        }
    }
    let mut total: usize = lines.iter().map(|l| l.chars().count() + 1).sum();
    while total > SUMMARY_MAX_CHARS && !lines.is_empty() {
        total -= lines[0].chars().count() + 1;
        lines.remove(0);
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::parse_rfc3339;
    use serde_json::{json, Map};

    fn turn(index: i64, role: &str, content: &str) -> DistillTurn {
        DistillTurn {
            index,
            role: role.into(),
            content: content.into(),
            at: parse_rfc3339("2023-05-08T13:56:00Z").unwrap(),
            utc_offset: 0,
            metadata: Map::new(),
        }
    }

    fn run(turns: Vec<DistillTurn>) -> Distillation {
        distill(&DistillRequest { session_id: "s".into(), turns, summary: String::new() })
    }

    #[test]
    fn drops_small_talk_and_keeps_facts() {
        let out = run(vec![
            turn(1, "user", "Hey! How are you?"),
            turn(2, "assistant", "Haha, thanks so much, that sounds great!"),
            turn(3, "user", "I went to the LGBTQ support group yesterday and it was so powerful."),
            turn(4, "assistant", "Wow, cool! My sister Melanie is painting a sunrise over Lake Tahoe."),
            turn(5, "user", "ok"),
        ]);
        let texts: Vec<&str> = out.memories.iter().map(|m| m.text.as_str()).collect();
        assert_eq!(
            texts,
            vec![
                "user: I went to the LGBTQ support group yesterday (7 May 2023) and it was so powerful.",
                "assistant: My sister Melanie is painting a sunrise over Lake Tahoe.",
            ]
        );
        assert_eq!((out.memories[0].turn_from, out.memories[0].turn_to), (3, 3));
        assert_eq!(out.memories[1].entities, vec!["Melanie", "Lake Tahoe"]);
        assert!(
            out.memories[1].key_phrases.contains(&"sister melanie".to_string()),
            "{:?}",
            out.memories[1].key_phrases
        );
        assert!(out.summary.contains("LGBTQ support group") && out.summary.contains("Lake Tahoe"), "{}", out.summary);
    }

    #[test]
    fn names_the_speaker_from_metadata() {
        let mut t = turn(7, "user", "I adopted a dog named Oscar in March.");
        t.metadata = json!({"speaker": "Caroline", "dia_id": "D1:3"}).as_object().unwrap().clone();
        let out = run(vec![t]);
        assert_eq!(out.memories[0].text, "Caroline: I adopted a dog named Oscar in March.");
        assert_eq!(out.memories[0].speakers, vec!["Caroline"]);
        assert_eq!(out.memories[0].metadata["dia_id"], "D1:3");
    }

    #[test]
    fn splits_sentences() {
        assert_eq!(sentences("A b. C d!  E?\nF g"), vec!["A b.", "C d!", "E?", "F g"]);
        assert_eq!(sentences("Version 2.5 is out."), vec!["Version 2.5 is out."]);
        assert!(sentences("  \n ").is_empty());
    }

    #[test]
    fn summary_stays_within_budget_and_keeps_the_newest() {
        let mut summary = String::new();
        for i in 0..200 {
            summary = extend_summary(&summary, std::iter::once(format!("user: fact number {i} about the Alps")));
        }
        assert!(summary.chars().count() <= SUMMARY_MAX_CHARS);
        assert!(summary.ends_with("fact number 199 about the Alps"));
        assert!(!summary.contains("fact number 0 "));
    }
}

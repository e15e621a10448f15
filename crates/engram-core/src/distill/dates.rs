//! Relative dates resolved against the time a turn was said: "yesterday"
//! becomes "yesterday (7 May 2023)". A memory read months later no longer
//! depends on when the conversation happened, and a question such as "when did
//! Alice go hiking?" finds the date in the memory's own words.
//!
//! Covered: yesterday / today / tonight / tomorrow / last night, the day
//! before yesterday, the day after tomorrow, N days / weeks / months / years
//! ago (N in digits or words, "a", "a couple of", "a few"), last / this / next
//! week / weekend / month / year, and last / next <weekday>. Anything else is
//! left as it was said.

use crate::text::{day_in_words, month_in_words};
use crate::time::{civil_from_days, Millis};

const WEEKDAYS: [&str; 7] = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"];

/// `text` with each relative date it mentions followed by its absolute date in
/// parentheses, resolved against `at`. Phrases already followed by "(" are
/// left alone, so resolving twice changes nothing.
pub fn resolve(text: &str, at: Millis) -> String {
    let today = at.div_euclid(86_400_000);
    let words: Vec<(usize, String, usize)> =
        crate::text::words(text).map(|(i, w)| (i, w.to_lowercase(), i + w.len())).collect();
    let mut inserts: Vec<(usize, String)> = Vec::new();
    let mut i = 0;
    while i < words.len() {
        match phrase_at(&words, i, today) {
            Some((len, label)) => {
                let end = words[i + len - 1].2;
                if !text[end..].trim_start().starts_with('(') {
                    inserts.push((end, format!(" ({label})")));
                }
                i += len;
            }
            None => i += 1,
        }
    }
    let mut out = String::with_capacity(text.len() + inserts.len() * 20);
    let mut last = 0;
    for (at, label) in inserts {
        out.push_str(&text[last..at]);
        out.push_str(&label);
        last = at;
    }
    out.push_str(&text[last..]);
    out
}

/// The relative date starting at word `i`: how many words it spans and its
/// absolute form.
fn phrase_at(words: &[(usize, String, usize)], i: usize, today: i64) -> Option<(usize, String)> {
    let w = |k: usize| words.get(i + k).map(|x| x.1.as_str()).unwrap_or("");
    let day = |offset: i64| day_in_words(today + offset);
    match (w(0), w(1), w(2), w(3)) {
        ("the", "day", "before", "yesterday") => return Some((4, day(-2))),
        ("the", "day", "after", "tomorrow") => return Some((4, day(2))),
        ("yesterday", ..) => return Some((1, day(-1))),
        ("today" | "tonight", ..) => return Some((1, day(0))),
        ("tomorrow", ..) => return Some((1, day(1))),
        ("last", "night", ..) => return Some((2, day(-1))),
        ("this", "morning" | "afternoon" | "evening", ..) => return Some((2, day(0))),
        _ => {}
    }
    if let Some((n, used)) = count_at(words, i) {
        let unit = w(used);
        if w(used + 1) == "ago" {
            let label = match unit {
                "day" | "days" => day(-n),
                "week" | "weeks" => format!("the week of {}", day(-7 * n)),
                "month" | "months" => month_in_words(month_index(today) - n),
                "year" | "years" => civil_from_days(today).0.saturating_sub(n).to_string(),
                _ => return None,
            };
            return Some((used + 2, label));
        }
        return None;
    }
    let shift = match w(0) {
        "last" => -1,
        "this" => 0,
        "next" => 1,
        _ => return None,
    };
    let label = match w(1) {
        "week" => match shift {
            -1 => format!("the week before {}", day(0)),
            0 => format!("the week of {}", day(0)),
            _ => format!("the week after {}", day(0)),
        },
        "weekend" => {
            // Saturday of the weekend meant: the one before, around or after today.
            let weekday = (today + 3).rem_euclid(7); // 0 = Monday
            let saturday = today - weekday + 5;
            let saturday = match shift {
                -1 if saturday >= today => saturday - 7,
                1 if saturday <= today => saturday + 7,
                _ => saturday,
            };
            format!("the weekend of {}", day_in_words(saturday))
        }
        "month" => month_in_words(month_index(today) + shift),
        "year" => (civil_from_days(today).0 + shift).to_string(),
        name => {
            let target = WEEKDAYS.iter().position(|d| *d == name)? as i64;
            let weekday = (today + 3).rem_euclid(7);
            // The nearest such day strictly before (last) or after (next) today.
            let gap = |d: i64| if d == 0 { 7 } else { d };
            let offset = match shift {
                -1 => -gap((weekday - target).rem_euclid(7)),
                1 => gap((target - weekday).rem_euclid(7)),
                _ => return None,
            };
            day(offset)
        }
    };
    Some((2, label))
}

/// Months since year 0 of a day number.
fn month_index(day: i64) -> i64 {
    let (y, m, _) = civil_from_days(day);
    y * 12 + m - 1
}

/// A count at word `i`: its value and how many words it took.
fn count_at(words: &[(usize, String, usize)], i: usize) -> Option<(i64, usize)> {
    let w = |k: usize| words.get(i + k).map(|x| x.1.as_str()).unwrap_or("");
    if let Ok(n) = w(0).parse::<i64>() {
        return (1..=1000).contains(&n).then_some((n, 1));
    }
    let n = match w(0) {
        "a" | "an" | "one" => match (w(1), w(2)) {
            ("couple", "of") => return Some((2, 3)),
            ("few", _) => return Some((3, 2)),
            _ => 1,
        },
        "two" => 2,
        "three" => 3,
        "four" => 4,
        "five" => 5,
        "six" => 6,
        "seven" => 7,
        "eight" => 8,
        "nine" => 9,
        "ten" => 10,
        "few" => 3,
        _ => return None,
    };
    Some((n, 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::parse_rfc3339;

    fn at(s: &str) -> Millis {
        parse_rfc3339(s).unwrap()
    }

    #[test]
    fn resolves_days_around_the_turn() {
        // 8 May 2023 was a Monday.
        let t = at("2023-05-08T13:56:00Z");
        assert_eq!(resolve("I went to the group yesterday.", t), "I went to the group yesterday (7 May 2023).");
        assert_eq!(resolve("Today was great", t), "Today (8 May 2023) was great");
        assert_eq!(resolve("see you tomorrow!", t), "see you tomorrow (9 May 2023)!");
        assert_eq!(resolve("last night we ate", t), "last night (7 May 2023) we ate");
        assert_eq!(resolve("the day before yesterday", t), "the day before yesterday (6 May 2023)");
        assert_eq!(resolve("3 days ago", t), "3 days ago (5 May 2023)");
        assert_eq!(resolve("a couple of days ago", t), "a couple of days ago (6 May 2023)");
    }

    #[test]
    fn resolves_weeks_months_years_and_weekdays() {
        let t = at("2023-05-08T13:56:00Z"); // Monday
        assert_eq!(resolve("last week", t), "last week (the week before 8 May 2023)");
        assert_eq!(resolve("two weeks ago", t), "two weeks ago (the week of 24 April 2023)");
        assert_eq!(resolve("last month", t), "last month (April 2023)");
        assert_eq!(resolve("next month", t), "next month (June 2023)");
        assert_eq!(resolve("a few months ago", t), "a few months ago (February 2023)");
        assert_eq!(resolve("last year", t), "last year (2022)");
        assert_eq!(resolve("5 years ago", t), "5 years ago (2018)");
        assert_eq!(resolve("last Friday", t), "last Friday (5 May 2023)");
        assert_eq!(resolve("last Monday", t), "last Monday (1 May 2023)");
        assert_eq!(resolve("next Monday", t), "next Monday (15 May 2023)");
        assert_eq!(resolve("next Wednesday", t), "next Wednesday (10 May 2023)");
        assert_eq!(resolve("last weekend", t), "last weekend (the weekend of 6 May 2023)");
        assert_eq!(resolve("next weekend", t), "next weekend (the weekend of 13 May 2023)");
        // January back into the previous year.
        assert_eq!(resolve("last month", at("2024-01-15T00:00:00Z")), "last month (December 2023)");
    }

    #[test]
    fn leaves_other_text_and_resolved_dates_alone() {
        let t = at("2023-05-08T13:56:00Z");
        assert_eq!(resolve("I ate a lot", t), "I ate a lot");
        assert_eq!(resolve("the last one", t), "the last one");
        assert_eq!(resolve("a day to remember", t), "a day to remember");
        let once = resolve("yesterday and last week", t);
        assert_eq!(resolve(&once, t), once);
        assert_eq!(resolve("", t), "");
    }
}

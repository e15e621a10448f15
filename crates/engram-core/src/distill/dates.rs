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

use jiff::civil::{Date, Weekday};
use jiff::ToSpan;

use crate::time::{date_in_words, local_date, month_in_words, Millis, OffsetSeconds};

const WEEKDAYS: [(&str, Weekday); 7] = [
    ("monday", Weekday::Monday),
    ("tuesday", Weekday::Tuesday),
    ("wednesday", Weekday::Wednesday),
    ("thursday", Weekday::Thursday),
    ("friday", Weekday::Friday),
    ("saturday", Weekday::Saturday),
    ("sunday", Weekday::Sunday),
];

/// `text` with each relative date it mentions followed by its absolute date in
/// parentheses, resolved against `at` in the speaker's local time (`utc_offset`).
/// Phrases already followed by "(" are left alone, so resolving twice changes
/// nothing.
pub fn resolve(text: &str, at: Millis, utc_offset: OffsetSeconds) -> String {
    let today = local_date(at, utc_offset);
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
fn phrase_at(words: &[(usize, String, usize)], i: usize, today: Date) -> Option<(usize, String)> {
    let w = |k: usize| words.get(i + k).map(|x| x.1.as_str()).unwrap_or("");
    let day = |n: i64| today.checked_add(n.days()).ok().map(date_in_words);
    match (w(0), w(1), w(2), w(3)) {
        ("the", "day", "before", "yesterday") => return Some((4, day(-2)?)),
        ("the", "day", "after", "tomorrow") => return Some((4, day(2)?)),
        ("yesterday", ..) => return Some((1, day(-1)?)),
        ("today" | "tonight", ..) => return Some((1, day(0)?)),
        ("tomorrow", ..) => return Some((1, day(1)?)),
        ("last", "night", ..) => return Some((2, day(-1)?)),
        ("this", "morning" | "afternoon" | "evening", ..) => return Some((2, day(0)?)),
        _ => {}
    }
    if let Some((n, used)) = count_at(words, i) {
        if w(used + 1) != "ago" {
            return None;
        }
        let label = match w(used) {
            "day" | "days" => day(-n)?,
            "week" | "weeks" => format!("the week of {}", day(-7 * n)?),
            "month" | "months" => month_in_words(today.checked_sub(n.months()).ok()?),
            "year" | "years" => (i64::from(today.year()) - n).to_string(),
            _ => return None,
        };
        return Some((used + 2, label));
    }
    let shift: i64 = match w(0) {
        "last" => -1,
        "this" => 0,
        "next" => 1,
        _ => return None,
    };
    let label = match w(1) {
        "week" => match shift {
            -1 => format!("the week before {}", day(0)?),
            0 => format!("the week of {}", day(0)?),
            _ => format!("the week after {}", day(0)?),
        },
        "weekend" => {
            // Saturday of the weekend meant: the one before, around or after today.
            let weekday = i64::from(today.weekday().to_monday_zero_offset());
            let saturday = 5 - weekday;
            let saturday = match shift {
                -1 if saturday >= 0 => saturday - 7,
                1 if saturday <= 0 => saturday + 7,
                _ => saturday,
            };
            format!("the weekend of {}", day(saturday)?)
        }
        "month" => month_in_words(today.checked_add(shift.months()).ok()?),
        "year" => (i64::from(today.year()) + shift).to_string(),
        name => {
            let target = WEEKDAYS.iter().find(|(n, _)| *n == name)?.1;
            // The nearest such day strictly before (last) or after (next) today.
            match shift {
                -1 | 1 => date_in_words(today.nth_weekday(shift as i32, target).ok()?),
                _ => return None,
            }
        }
    };
    Some((2, label))
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
        assert_eq!(resolve("I went to the group yesterday.", t, 0), "I went to the group yesterday (7 May 2023).");
        assert_eq!(resolve("Today was great", t, 0), "Today (8 May 2023) was great");
        assert_eq!(resolve("see you tomorrow!", t, 0), "see you tomorrow (9 May 2023)!");
        assert_eq!(resolve("last night we ate", t, 0), "last night (7 May 2023) we ate");
        assert_eq!(resolve("the day before yesterday", t, 0), "the day before yesterday (6 May 2023)");
        assert_eq!(resolve("3 days ago", t, 0), "3 days ago (5 May 2023)");
        assert_eq!(resolve("a couple of days ago", t, 0), "a couple of days ago (6 May 2023)");
    }

    #[test]
    fn resolves_weeks_months_years_and_weekdays() {
        let t = at("2023-05-08T13:56:00Z"); // Monday
        assert_eq!(resolve("last week", t, 0), "last week (the week before 8 May 2023)");
        assert_eq!(resolve("two weeks ago", t, 0), "two weeks ago (the week of 24 April 2023)");
        assert_eq!(resolve("last month", t, 0), "last month (April 2023)");
        assert_eq!(resolve("next month", t, 0), "next month (June 2023)");
        assert_eq!(resolve("a few months ago", t, 0), "a few months ago (February 2023)");
        assert_eq!(resolve("last year", t, 0), "last year (2022)");
        assert_eq!(resolve("5 years ago", t, 0), "5 years ago (2018)");
        assert_eq!(resolve("last Friday", t, 0), "last Friday (5 May 2023)");
        assert_eq!(resolve("last Monday", t, 0), "last Monday (1 May 2023)");
        assert_eq!(resolve("next Monday", t, 0), "next Monday (15 May 2023)");
        assert_eq!(resolve("next Wednesday", t, 0), "next Wednesday (10 May 2023)");
        assert_eq!(resolve("last weekend", t, 0), "last weekend (the weekend of 6 May 2023)");
        assert_eq!(resolve("next weekend", t, 0), "next weekend (the weekend of 13 May 2023)");
        // January back into the previous year.
        assert_eq!(resolve("last month", at("2024-01-15T00:00:00Z"), 0), "last month (December 2023)");
    }

    #[test]
    fn leaves_other_text_and_resolved_dates_alone() {
        let t = at("2023-05-08T13:56:00Z");
        assert_eq!(resolve("I ate a lot", t, 0), "I ate a lot");
        assert_eq!(resolve("the last one", t, 0), "the last one");
        assert_eq!(resolve("a day to remember", t, 0), "a day to remember");
        let once = resolve("yesterday and last week", t, 0);
        assert_eq!(resolve(&once, t, 0), once);
        assert_eq!(resolve("", t, 0), "");
    }

    #[test]
    fn resolves_in_the_speakers_local_time() {
        // 21:30 on 8 May in California is 04:30 on 9 May in UTC: the speaker meant 7 May.
        let (ms, off) = crate::time::parse_rfc3339_with_offset("2023-05-08T21:30:00-07:00").unwrap();
        assert_eq!(resolve("I went hiking yesterday.", ms, off), "I went hiking yesterday (7 May 2023).");
        assert_eq!(resolve("I went hiking yesterday.", ms, 0), "I went hiking yesterday (8 May 2023).");
        // And east of UTC the local day is ahead.
        let (ms, off) = crate::time::parse_rfc3339_with_offset("2023-05-09T01:00:00+09:00").unwrap();
        assert_eq!(resolve("see you tomorrow", ms, off), "see you tomorrow (10 May 2023)");
    }
}

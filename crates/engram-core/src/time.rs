//! Instants and their text forms, by the `jiff` crate: storage keeps
//! milliseconds since the Unix epoch (cheap to index and compare), the API
//! speaks RFC 3339, and where a caller said when something happened in their
//! own time (a turn's `at`), its UTC offset is kept beside the instant so
//! what is computed in the speaker's local time — "yesterday", the date of a
//! memory — is their day, not UTC's.

use jiff::civil::Date;
use jiff::fmt::temporal::Pieces;
use jiff::tz::{Offset, TimeZone};
use jiff::Timestamp;

use crate::error::{Error, Result};

/// Milliseconds since 1970-01-01T00:00:00Z.
pub type Millis = i64;

/// A UTC offset in seconds east of UTC (`-25200` for `-07:00`).
pub type OffsetSeconds = i32;

fn timestamp(ms: Millis) -> Timestamp {
    Timestamp::from_millisecond(ms).unwrap_or(if ms < 0 { Timestamp::MIN } else { Timestamp::MAX })
}

fn offset(secs: OffsetSeconds) -> Offset {
    Offset::from_seconds(secs).unwrap_or(Offset::UTC)
}

/// An instant and the UTC offset someone gave it in (a turn's `at`);
/// serialised as RFC 3339 in that offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalTime {
    pub at: Millis,
    pub utc_offset: OffsetSeconds,
}

impl LocalTime {
    /// Parses an RFC 3339 timestamp or a bare date, keeping its offset.
    pub fn parse(s: &str) -> Result<Self> {
        parse_rfc3339_with_offset(s).map(|(at, utc_offset)| LocalTime { at, utc_offset })
    }

    /// The calendar date there and then.
    pub fn date(&self) -> Date {
        local_date(self.at, self.utc_offset)
    }
}

impl serde::Serialize for LocalTime {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&format_rfc3339_at(self.at, self.utc_offset))
    }
}

impl<'de> serde::Deserialize<'de> for LocalTime {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        LocalTime::parse(&s).map_err(|e| serde::de::Error::custom(e.public_message()))
    }
}

/// Formats as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn format_rfc3339(ms: Millis) -> String {
    timestamp(ms).strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Formats in the given offset, e.g. `2023-05-08T21:30:00.000-07:00`
/// (`Z` for UTC).
pub fn format_rfc3339_at(ms: Millis, utc_offset: OffsetSeconds) -> String {
    if utc_offset == 0 {
        return format_rfc3339(ms);
    }
    timestamp(ms)
        .to_zoned_datetime(TimeZone::fixed(offset(utc_offset)))
        .strftime("%Y-%m-%dT%H:%M:%S%.3f%:z")
        .to_string()
}

fn bad(s: &str) -> Error {
    let shown: String = s.chars().take(64).collect();
    Error::invalid(format!(
        "'{shown}' is not an RFC 3339 timestamp such as 2026-01-02T03:04:05Z (or a date such as 2026-01-02)"
    ))
}

/// Parses an RFC 3339 timestamp (`2026-01-02T03:04:05Z`, an optional
/// fraction, `Z` or a `±HH:MM` offset) or a bare date (`2026-01-02`, midnight
/// UTC) into the instant and the offset it was written in. Impossible dates
/// (`2023-02-31`) and times are refused.
pub fn parse_rfc3339_with_offset(s: &str) -> Result<(Millis, OffsetSeconds)> {
    let pieces = Pieces::parse(s).map_err(|_| bad(s))?;
    if pieces.time_zone_annotation().is_some() {
        return Err(bad(s));
    }
    let date = pieces.date();
    let (time, off) = match (pieces.time(), pieces.to_numeric_offset()) {
        (None, None) => (jiff::civil::Time::midnight(), Offset::UTC),
        (Some(t), Some(o)) => (t, o),
        _ => return Err(bad(s)),
    };
    let ts = off.to_timestamp(date.to_datetime(time)).map_err(|_| bad(s))?;
    Ok((ts.as_millisecond(), off.seconds()))
}

/// Parses an RFC 3339 timestamp or a bare date into an instant (see
/// [`parse_rfc3339_with_offset`]).
pub fn parse_rfc3339(s: &str) -> Result<Millis> {
    parse_rfc3339_with_offset(s).map(|(ms, _)| ms)
}

/// The calendar date at `ms` for someone at `utc_offset`.
pub fn local_date(ms: Millis, utc_offset: OffsetSeconds) -> Date {
    offset(utc_offset).to_datetime(timestamp(ms)).date()
}

/// A date as `YYYY-MM-DD`.
pub fn iso_date(d: Date) -> String {
    d.strftime("%Y-%m-%d").to_string()
}

/// A date in words: "7 May 2023".
pub fn date_in_words(d: Date) -> String {
    d.strftime("%-d %B %Y").to_string()
}

/// A month in words: "May 2023".
pub fn month_in_words(d: Date) -> String {
    d.strftime("%B %Y").to_string()
}

/// Serde helpers that write milliseconds as RFC 3339 strings.
pub mod serde_rfc3339 {
    use super::{format_rfc3339, Millis};
    use serde::Serializer;

    pub fn serialize<S: Serializer>(ms: &Millis, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_rfc3339(*ms))
    }

    pub fn serialize_opt<S: Serializer>(ms: &Option<Millis>, s: S) -> Result<S::Ok, S::Error> {
        match ms {
            Some(ms) => s.serialize_str(&format_rfc3339(*ms)),
            None => s.serialize_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_known_instants() {
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_rfc3339(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(format_rfc3339(-1), "1969-12-31T23:59:59.999Z");
        for ms in [0, 951_782_400_000, 1_700_000_000_123, 4_102_444_800_000, -86_400_000] {
            assert_eq!(parse_rfc3339(&format_rfc3339(ms)).unwrap(), ms);
        }
    }

    #[test]
    fn parses_offsets_dates_and_fractions() {
        assert_eq!(parse_rfc3339("2023-11-14T23:13:20+01:00").unwrap(), 1_700_000_000_000);
        assert_eq!(parse_rfc3339("2023-11-14T22:13:20.5Z").unwrap(), 1_700_000_000_500);
        assert_eq!(parse_rfc3339("2023-11-14T22:13:20.123456Z").unwrap(), 1_700_000_000_123);
        assert_eq!(parse_rfc3339("1970-01-02").unwrap(), 86_400_000);
        assert_eq!(parse_rfc3339("2023-11-14t22:13:20z").unwrap(), 1_700_000_000_000);
        let (ms, off) = parse_rfc3339_with_offset("2023-05-08T21:30:00-07:00").unwrap();
        assert_eq!((format_rfc3339(ms), off), ("2023-05-09T04:30:00.000Z".to_string(), -25_200));
        assert_eq!(format_rfc3339_at(ms, off), "2023-05-08T21:30:00.000-07:00");
        assert_eq!(local_date(ms, off).to_string(), "2023-05-08");
        assert_eq!(local_date(ms, 0).to_string(), "2023-05-09");
    }

    #[test]
    fn rejects_garbage_and_impossible_dates() {
        for s in [
            "",
            "2023",
            "2023-13-01",
            "2023-02-31",
            "2023-02-29T00:00:00Z",
            "2023-11-14T25:00:00Z",
            "2023-11-14T22:13:20",
            "2023-11-14T22:13:20.Z",
            "２０２３-11-14",
            "2023-11-14T22:13:20Zjunk",
            "2023-11-14T22:13:20+01:00[Europe/Paris]",
        ] {
            assert!(parse_rfc3339(s).is_err(), "{s} should be rejected");
        }
        assert!(parse_rfc3339("2024-02-29").is_ok(), "a leap day");
    }

    #[test]
    fn dates_in_words() {
        let d = |s: &str| s.parse::<Date>().unwrap();
        assert_eq!(date_in_words(d("1970-01-01")), "1 January 1970");
        assert_eq!(date_in_words(d("2023-05-07")), "7 May 2023");
        assert_eq!(month_in_words(d("2023-05-07")), "May 2023");
        assert_eq!(iso_date(d("2023-05-07")), "2023-05-07");
    }
}

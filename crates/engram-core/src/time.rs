//! Wall-clock time as milliseconds since the Unix epoch, and its RFC 3339 form.
//!
//! Storage keeps integers (cheap to index and compare); the API speaks RFC 3339
//! UTC strings. The conversion is written out here (Howard Hinnant's civil-date
//! algorithms) so the domain needs no date library.

use crate::error::{Error, Result};

/// Milliseconds since 1970-01-01T00:00:00Z.
pub type Millis = i64;

/// Days since 1970-01-01 of a proleptic Gregorian date.
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `(year, month, day)` of a day number (days since 1970-01-01).
pub fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Formats as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn format_rfc3339(ms: Millis) -> String {
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    let (y, mo, d) = civil_from_days(days);
    let (h, mi, s, milli) = (rem / 3_600_000, rem / 60_000 % 60, rem / 1000 % 60, rem % 1000);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{milli:03}Z")
}

/// Parses an RFC 3339 timestamp (`2026-01-02T03:04:05Z`, optional fraction,
/// `Z` or `±HH:MM` offset) or a bare date (`2026-01-02`, midnight UTC).
pub fn parse_rfc3339(s: &str) -> Result<Millis> {
    let bad = || Error::invalid(format!("'{s}' is not an RFC 3339 timestamp such as 2026-01-02T03:04:05Z"));
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Result<i64> {
        let part = b.get(from..from + len).ok_or_else(bad)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return Err(bad());
        }
        Ok(part.iter().fold(0i64, |acc, c| acc * 10 + i64::from(c - b'0')))
    };
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return Err(bad());
    }
    let (y, mo, d) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return Err(bad());
    }
    let mut ms = days_from_civil(y, mo, d) * 86_400_000;
    if b.len() == 10 {
        return Ok(ms);
    }
    if !matches!(b[10], b'T' | b't' | b' ') || b.len() < 19 || b[13] != b':' || b[16] != b':' {
        return Err(bad());
    }
    let (h, mi, sec) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    if h > 23 || mi > 59 || sec > 60 {
        return Err(bad());
    }
    ms += h * 3_600_000 + mi * 60_000 + sec * 1000;
    let mut i = 19;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        let mut frac = 0i64;
        while i < b.len() && b[i].is_ascii_digit() {
            if i - start < 3 {
                frac = frac * 10 + i64::from(b[i] - b'0');
            }
            i += 1;
        }
        if i == start {
            return Err(bad());
        }
        for _ in (i - start)..3 {
            frac *= 10;
        }
        ms += frac;
    }
    match b.get(i) {
        Some(b'Z' | b'z') if i + 1 == b.len() => Ok(ms),
        Some(sign @ (b'+' | b'-')) if b.len() == i + 6 && b[i + 3] == b':' => {
            let off = (num(i + 1, 2)? * 60 + num(i + 4, 2)?) * 60_000;
            Ok(if *sign == b'+' { ms - off } else { ms + off })
        }
        _ => Err(bad()),
    }
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
    }

    #[test]
    fn rejects_garbage() {
        for s in [
            "",
            "2023",
            "2023-13-01",
            "2023-11-14T25:00:00Z",
            "2023-11-14T22:13:20",
            "2023-11-14T22:13:20.Z",
            "２０２３-11-14",
            "2023-11-14T22:13:20Zjunk",
        ] {
            assert!(parse_rfc3339(s).is_err(), "{s} should be rejected");
        }
    }
}

//! Namespaces: 1–8 segments of `[A-Za-z0-9_.:@-]`, each 1–64 characters.
//!
//! Stored as the segments joined by `/` (which no segment may contain), so a
//! whole-segment prefix match is the range `[p + "/", p + "0")` plus `p` itself —
//! index-friendly and free of LIKE-escaping pitfalls.

use crate::error::{Error, Result};

/// Most segments a namespace may have.
pub const MAX_SEGMENTS: usize = 8;
/// Longest segment, in characters.
pub const MAX_SEGMENT_LEN: usize = 64;

/// A validated namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Namespace(Vec<String>);

fn segment_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_SEGMENT_LEN
        && s != "."
        && s != ".."
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'@' | b'-'))
}

impl Namespace {
    /// Validates segments; `field` names the input in the error message.
    pub fn new(segments: Vec<String>, field: &str) -> Result<Self> {
        Self::validate(&segments, field, 1)?;
        Ok(Namespace(segments))
    }

    /// A prefix for search: like a namespace but may be empty (everything).
    pub fn prefix(segments: Vec<String>, field: &str) -> Result<Self> {
        Self::validate(&segments, field, 0)?;
        Ok(Namespace(segments))
    }

    fn validate(segments: &[String], field: &str, min: usize) -> Result<()> {
        if segments.len() < min || segments.len() > MAX_SEGMENTS {
            return Err(Error::invalid(format!(
                "{field} must have {min} to {MAX_SEGMENTS} segments, got {}",
                segments.len()
            )));
        }
        if let Some((i, bad)) = segments.iter().enumerate().find(|(_, s)| !segment_ok(s)) {
            let shown: String = bad.chars().take(80).collect();
            return Err(Error::invalid(format!(
                "{field}[{i}] = {shown:?} is not a valid namespace segment: use 1-{MAX_SEGMENT_LEN} characters of A-Z a-z 0-9 _ . : @ - (not '.' or '..')"
            )));
        }
        Ok(())
    }

    /// Parses the `/`-joined form used in query strings.
    pub fn parse_joined(joined: &str, field: &str) -> Result<Self> {
        if joined.is_empty() {
            return Ok(Namespace(Vec::new()));
        }
        Self::prefix(joined.split('/').map(str::to_owned).collect(), field)
    }

    /// Rebuilds from the stored form (trusted: written by this crate).
    pub fn from_stored(stored: &str) -> Self {
        Namespace(if stored.is_empty() { Vec::new() } else { stored.split('/').map(str::to_owned).collect() })
    }

    /// The stored, `/`-joined form.
    pub fn joined(&self) -> String {
        self.0.join("/")
    }

    pub fn segments(&self) -> &[String] {
        &self.0
    }

    pub fn depth(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether this namespace is `prefix` or lies below it (whole segments;
    /// everything is under the empty prefix).
    pub fn is_under(&self, prefix: &Namespace) -> bool {
        self.0.starts_with(&prefix.0)
    }

    /// The stored-form bounds of everything under this prefix:
    /// `(exact, lower_inclusive, upper_exclusive)`; `None` for the empty prefix.
    pub fn prefix_bounds(&self) -> Option<(String, String, String)> {
        if self.0.is_empty() {
            return None;
        }
        let exact = self.joined();
        Some((exact.clone(), format!("{exact}/"), format!("{exact}0")))
    }
}

impl serde::Serialize for Namespace {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(v: &[&str]) -> Result<Namespace> {
        Namespace::new(v.iter().map(|s| s.to_string()).collect(), "namespace")
    }

    #[test]
    fn accepts_valid_segments() {
        assert!(ns(&["users", "alice@example.com", "prefs:v1", "a-b_c.d"]).is_ok());
        assert!(ns(&["x"; 8]).is_ok());
    }

    #[test]
    fn rejects_bad_segments() {
        let long = "a".repeat(65);
        for bad in [
            vec![],
            vec![""],
            vec!["a/b"],
            vec!["."],
            vec![".."],
            vec!["sp ace"],
            vec![long.as_str()],
            vec!["é"],
            vec!["x"; 9],
            vec!["a\0"],
        ] {
            let err = ns(&bad).unwrap_err();
            assert!(err.public_message().contains("namespace"), "{err}");
        }
    }

    #[test]
    fn prefix_bounds_cover_whole_segments_only() {
        let p = ns(&["a", "b"]).unwrap();
        let (exact, lo, hi) = p.prefix_bounds().unwrap();
        let inside = |s: &str| s == exact || (s >= lo.as_str() && s < hi.as_str());
        assert!(inside("a/b"));
        assert!(inside("a/b/c"));
        assert!(inside("a/b/c/d"));
        assert!(!inside("a/bc"));
        assert!(!inside("a/b-"));
        assert!(!inside("a/b."));
        assert!(!inside("a"));
    }
}

//! Sessions (working memory): ids, turns, and the session as returned.

use serde::Serialize;
use serde_json::{Map, Value};

use super::memory::{validate_metadata, validate_text};
use super::namespace::Namespace;
use crate::error::{Error, Result};
use crate::time::{serde_rfc3339, LocalTime, Millis};

/// Longest session id, in characters.
pub const MAX_SESSION_ID: usize = 128;
/// Longest role, in characters.
pub const MAX_ROLE: usize = 64;
/// Most turns appended in one call.
pub const MAX_TURNS_PER_CALL: usize = 1000;

/// Checks a session id: 1–128 characters of `[A-Za-z0-9_.:@-]` (it appears in
/// URLs and in memory provenance), not `.` or `..`.
pub fn validate_session_id(id: &str) -> Result<()> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '@' | '-');
    if id.is_empty() || id.chars().count() > MAX_SESSION_ID || !id.chars().all(ok_char) || id == "." || id == ".." {
        return Err(Error::invalid(format!(
            "session id {:?} is not valid: use 1-{MAX_SESSION_ID} characters of A-Z a-z 0-9 _ . : @ -",
            id.chars().take(MAX_SESSION_ID + 8).collect::<String>()
        )));
    }
    Ok(())
}

/// The namespace of a session's distilled memories when the caller names none.
pub fn default_namespace(session_id: &str) -> Result<Namespace> {
    Namespace::new(vec!["sessions".into(), session_id.into()], "namespace")
}

/// A validated turn to append.
#[derive(Debug, Clone)]
pub struct NewTurn {
    pub role: String,
    pub content: String,
    /// When it was said, in the speaker's offset; `None` means now (UTC).
    pub at: Option<LocalTime>,
    pub metadata: Map<String, Value>,
}

impl NewTurn {
    /// Checks a turn's fields; `field` names it in messages (`turns[3]`).
    pub fn validate(
        role: String,
        content: String,
        at: Option<LocalTime>,
        metadata: Map<String, Value>,
        field: &str,
    ) -> Result<Self> {
        let role_ok =
            !role.trim().is_empty() && role.chars().count() <= MAX_ROLE && !role.chars().any(char::is_control);
        if !role_ok {
            return Err(Error::invalid(format!(
                "{field}.role must be 1-{MAX_ROLE} characters without control characters (e.g. \"user\", \"assistant\", a speaker's name)"
            )));
        }
        validate_text(&content, &format!("{field}.content"))?;
        validate_metadata(&metadata, &format!("{field}.metadata"))?;
        Ok(NewTurn { role, content, at, metadata })
    }
}

/// A stored turn.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Turn {
    /// Position in the session, from 1; gap-free and in append order.
    pub index: i64,
    pub role: String,
    pub content: String,
    /// When it was said, shown in the speaker's offset.
    pub at: LocalTime,
    pub metadata: Map<String, Value>,
}

/// A session as `GET /v1/sessions/{id}` returns it.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Session {
    pub session_id: String,
    pub namespace: Namespace,
    /// The last `wm_max_turns` turns, oldest first.
    pub turns: Vec<Turn>,
    /// The running summary of what was distilled so far.
    pub summary: String,
    pub turn_count: i64,
    /// Turns handed to distillation so far (the rest wait for `distill_every`).
    pub distilled_turns: i64,
    #[serde(serialize_with = "serde_rfc3339::serialize")]
    #[cfg_attr(feature = "schema", schemars(with = "crate::schema::Rfc3339"))]
    pub created_at: Millis,
    #[serde(serialize_with = "serde_rfc3339::serialize")]
    #[cfg_attr(feature = "schema", schemars(with = "crate::schema::Rfc3339"))]
    pub updated_at: Millis,
    /// When the session expires if no turn is added before.
    #[serde(serialize_with = "serde_rfc3339::serialize")]
    #[cfg_attr(feature = "schema", schemars(with = "crate::schema::Rfc3339"))]
    pub expires_at: Millis,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids() {
        for ok in ["a", "chat-1", "user@example.com:42", &"x".repeat(128)] {
            validate_session_id(ok).unwrap();
        }
        for bad in ["", ".", "..", "a/b", "a b", "é", &"x".repeat(129), "a\nb"] {
            assert!(validate_session_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn turns() {
        let ok =
            |role: &str, content: &str| NewTurn::validate(role.into(), content.into(), None, Map::new(), "turns[0]");
        ok("user", "hi").unwrap();
        ok("Caroline", "hi").unwrap();
        assert!(ok("", "hi").unwrap_err().to_string().contains("turns[0].role"));
        assert!(ok("user", "  ").unwrap_err().to_string().contains("turns[0].content"));
        assert!(ok("user", &"x".repeat(crate::model::memory::MAX_TEXT_BYTES + 1))
            .unwrap_err()
            .to_string()
            .contains("32 KiB"));
        assert!(ok("a\u{7}", "hi").is_err());
    }
}

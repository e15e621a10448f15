//! Who is calling: tenants, scopes, and API keys.
//!
//! An API key is `egk_` + 32 random bytes in hex. Only its SHA-256 is stored
//! (keys are high-entropy, so a fast hash is the right tool; a slow password
//! hash would only add latency to every request). A key belongs to one tenant
//! and carries scopes; every service method checks the scope it needs.

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// The tenant used when no keys are configured (dev mode, loopback only).
pub const DEFAULT_TENANT: &str = "default";
/// Prefix that marks an Engram API key.
pub const KEY_PREFIX: &str = "egk_";

/// A permission a caller may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Read,
    Write,
    Admin,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        match s.trim() {
            "read" => Ok(Scope::Read),
            "write" => Ok(Scope::Write),
            "admin" => Ok(Scope::Admin),
            other => Err(Error::invalid(format!("unknown scope {other:?}; scopes are read, write, admin"))),
        }
    }
}

/// A set of scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Scopes {
    pub read: bool,
    pub write: bool,
    pub admin: bool,
}

impl Scopes {
    pub const ALL: Scopes = Scopes { read: true, write: true, admin: true };

    pub fn has(&self, s: Scope) -> bool {
        match s {
            Scope::Read => self.read,
            Scope::Write => self.write,
            Scope::Admin => self.admin,
        }
    }

    /// Parses `read,write[,admin]`.
    pub fn parse_list(s: &str) -> Result<Self> {
        let mut out = Scopes::default();
        for part in s.split(',').filter(|p| !p.trim().is_empty()) {
            match Scope::parse(part)? {
                Scope::Read => out.read = true,
                Scope::Write => out.write = true,
                Scope::Admin => out.admin = true,
            }
        }
        if out == Scopes::default() {
            return Err(Error::invalid("at least one scope is needed (read, write, admin)"));
        }
        Ok(out)
    }

    pub fn to_list(self) -> String {
        [Scope::Read, Scope::Write, Scope::Admin]
            .into_iter()
            .filter(|s| self.has(*s))
            .map(Scope::as_str)
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Validates a tenant id: 1–64 characters of `[A-Za-z0-9_.:@-]`.
pub fn validate_tenant(t: &str) -> Result<()> {
    let ok = !t.is_empty()
        && t.len() <= 64
        && t.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'@' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!("tenant {t:?} must be 1-64 characters of A-Z a-z 0-9 _ . : @ -")))
    }
}

/// The authenticated caller of one request. Every service method takes one.
#[derive(Debug, Clone)]
pub struct TenantCtx {
    pub tenant: String,
    pub scopes: Scopes,
    /// The API key id, when a key was used (`jwt:<subject>` for a token).
    pub key_id: Option<String>,
    /// The agent the caller says it acts as (HTTP: `x-agent-id`), recorded
    /// with its writes.
    pub agent_id: Option<String>,
}

impl TenantCtx {
    /// Dev mode: tenant `default` with every scope.
    pub fn dev() -> Self {
        TenantCtx { tenant: DEFAULT_TENANT.to_string(), scopes: Scopes::ALL, key_id: None, agent_id: None }
    }

    /// Who this caller's writes are recorded as made by.
    pub fn writer(&self) -> crate::model::Writer {
        let by = self.key_id.as_ref().map(|k| if k.starts_with("jwt:") { k.clone() } else { format!("key:{k}") });
        crate::model::Writer { by, agent_id: self.agent_id.clone() }
    }

    /// Sets the agent the caller acts as: 1–128 characters of
    /// `[A-Za-z0-9_.:@/-]`.
    pub fn with_agent(mut self, agent_id: &str) -> Result<Self> {
        let ok = !agent_id.is_empty()
            && agent_id.len() <= 128
            && agent_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'@' | b'/' | b'-'));
        if !ok {
            return Err(Error::invalid("x-agent-id must be 1-128 characters of A-Z a-z 0-9 _ . : @ / -"));
        }
        self.agent_id = Some(agent_id.to_owned());
        Ok(self)
    }

    /// Fails with `forbidden` unless the caller holds `scope`.
    pub fn require(&self, scope: Scope) -> Result<()> {
        if self.scopes.has(scope) {
            Ok(())
        } else {
            Err(Error::forbidden(format!("this API key lacks the {:?} scope", scope.as_str())))
        }
    }
}

/// An API key as listed (never the secret).
#[derive(Debug, Clone, serde::Serialize)]
pub struct KeyInfo {
    pub id: String,
    pub tenant: String,
    pub name: String,
    pub scopes: String,
    #[serde(serialize_with = "crate::time::serde_rfc3339::serialize")]
    pub created_at: crate::time::Millis,
    #[serde(serialize_with = "crate::time::serde_rfc3339::serialize_opt")]
    pub revoked_at: Option<crate::time::Millis>,
}

impl From<crate::store::KeyRow> for KeyInfo {
    fn from(k: crate::store::KeyRow) -> Self {
        KeyInfo {
            id: k.id,
            tenant: k.tenant,
            name: k.name,
            scopes: k.scopes.to_list(),
            created_at: k.created_at,
            revoked_at: k.revoked_at,
        }
    }
}

/// A freshly created key: the secret is shown once and never stored.
#[derive(Debug, Clone)]
pub struct NewKey {
    pub id: String,
    pub secret: String,
    pub hash: [u8; 32],
}

/// Whether `secret` has the shape of a key this server makes (`egk_` and 64
/// lowercase hex digits): anything else is refused without a lookup.
pub fn well_formed(secret: &str) -> bool {
    secret
        .strip_prefix(KEY_PREFIX)
        .is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
}

/// Hashes a presented key for lookup.
pub fn hash_key(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Makes a new random key.
pub fn generate_key() -> Result<NewKey> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| Error::internal(format!("no randomness: {e}")))?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let secret = format!("{KEY_PREFIX}{hex}");
    let hash = hash_key(&secret);
    Ok(NewKey { id: hex[..12].to_string(), secret, hash })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_are_recorded_as_the_key_or_the_token_subject() {
        let mut ctx = TenantCtx::dev();
        assert_eq!(ctx.writer(), crate::model::Writer::default(), "dev mode names no one");
        ctx.key_id = Some("0123456789ab".into());
        let ctx = ctx.with_agent("planner/v2").unwrap();
        assert_eq!(ctx.writer().by.as_deref(), Some("key:0123456789ab"));
        assert_eq!(ctx.writer().agent_id.as_deref(), Some("planner/v2"));
        let token = TenantCtx { key_id: Some("jwt:agent-7".into()), ..TenantCtx::dev() };
        assert_eq!(token.writer().by.as_deref(), Some("jwt:agent-7"));
        for bad in ["", "has space", "ü", &"a".repeat(129)] {
            assert!(TenantCtx::dev().with_agent(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn keys_are_random_and_hash_consistently() {
        let a = generate_key().unwrap();
        let b = generate_key().unwrap();
        assert_ne!(a.secret, b.secret);
        assert!(a.secret.starts_with(KEY_PREFIX) && a.secret.len() == 4 + 64);
        assert!(well_formed(&a.secret));
        for bad in ["", "egk_", "egk_00", &a.secret.to_uppercase(), &format!("{}0", a.secret), &a.secret[1..]] {
            assert!(!well_formed(bad), "{bad:?}");
        }
        assert_eq!(hash_key(&a.secret), a.hash);
        assert_ne!(a.hash, b.hash);
    }

    #[test]
    fn scopes_parse_and_print() {
        let s = Scopes::parse_list("read, write").unwrap();
        assert!(s.read && s.write && !s.admin);
        assert_eq!(s.to_list(), "read,write");
        assert!(Scopes::parse_list("read,root").is_err());
        assert!(Scopes::parse_list("").is_err());
        let ctx =
            TenantCtx { tenant: "t".into(), scopes: Scopes::parse_list("read").unwrap(), key_id: None, agent_id: None };
        assert!(ctx.require(Scope::Read).is_ok());
        assert_eq!(ctx.require(Scope::Write).unwrap_err().code(), crate::error::ErrorCode::Forbidden);
    }
}

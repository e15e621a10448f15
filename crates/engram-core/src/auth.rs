//! Who is calling: tenants, scopes, and API keys.
//!
//! An API key is `egk_` + 32 random bytes in hex. Only its SHA-256 is stored
//! (keys are high-entropy, so a fast hash is the right tool; a slow password
//! hash would only add latency to every request). A key belongs to one tenant
//! and carries scopes; every service method checks the scope it needs. A key
//! or token may also be limited to namespace prefixes ([`NamespaceGrant`]):
//! the service confines every read, search, write and event of such a caller
//! to them.

use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::model::Namespace;

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

/// Most namespace prefixes one key may be limited to.
pub const MAX_GRANT_PREFIXES: usize = 32;

/// The namespaces a key or token is limited to: whole-segment prefixes
/// (`users/alice` covers `users/alice` and `users/alice/prefs`, never
/// `users/alicia`). A caller without one may touch every namespace of its
/// tenant. Holds 1–[`MAX_GRANT_PREFIXES`] non-empty prefixes, none under
/// another, sorted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespaceGrant(Arc<[Namespace]>);

impl NamespaceGrant {
    /// A grant of `prefixes` (a prefix under another listed one is dropped).
    pub fn new(mut prefixes: Vec<Namespace>) -> Result<Self> {
        if prefixes.is_empty() || prefixes.len() > MAX_GRANT_PREFIXES {
            return Err(Error::invalid(format!(
                "namespaces must list 1 to {MAX_GRANT_PREFIXES} namespace prefixes, got {}",
                prefixes.len()
            )));
        }
        if prefixes.iter().any(Namespace::is_empty) {
            return Err(Error::invalid("namespaces must not list the empty prefix (omit namespaces for all)"));
        }
        prefixes.sort();
        prefixes.dedup();
        let all = prefixes.clone();
        prefixes.retain(|p| !all.iter().any(|q| q != p && p.is_under(q)));
        Ok(NamespaceGrant(prefixes.into()))
    }

    /// Parses prefixes written `/`-joined, e.g. `users/alice,shared`.
    pub fn parse_list(s: &str) -> Result<Self> {
        let prefixes = s
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| Namespace::parse_joined(p, "namespaces"))
            .collect::<Result<Vec<_>>>()?;
        Self::new(prefixes)
    }

    /// Parses prefixes given one per string, `/`-joined.
    pub fn from_joined<S: AsRef<str>>(list: &[S]) -> Result<Self> {
        if list.len() > MAX_GRANT_PREFIXES {
            return Err(Error::invalid(format!("namespaces must list at most {MAX_GRANT_PREFIXES} prefixes")));
        }
        let prefixes = list
            .iter()
            .enumerate()
            .map(|(i, p)| Namespace::parse_joined(p.as_ref(), &format!("namespaces[{i}]")))
            .collect::<Result<Vec<_>>>()?;
        Self::new(prefixes)
    }

    /// The prefixes `/`-joined, comma-separated (as stored).
    pub fn to_list(&self) -> String {
        self.0.iter().map(Namespace::joined).collect::<Vec<_>>().join(",")
    }

    pub fn prefixes(&self) -> &[Namespace] {
        &self.0
    }

    /// Whether `ns` lies under one of the prefixes.
    pub fn covers(&self, ns: &Namespace) -> bool {
        self.0.iter().any(|p| ns.is_under(p))
    }

    /// Whether everything `other` grants, this grants too (`None`: all).
    pub fn includes(&self, other: Option<&NamespaceGrant>) -> bool {
        other.is_some_and(|o| o.0.iter().all(|p| self.covers(p)))
    }

    /// What of everything under `prefix` this grant lets a caller see: the
    /// prefixes to search within (one, `prefix` itself, when it lies inside
    /// the grant); empty when nothing under `prefix` is granted.
    pub fn within(&self, prefix: &Namespace) -> Vec<Namespace> {
        if self.covers(prefix) {
            return vec![prefix.clone()];
        }
        self.0.iter().filter(|p| p.is_under(prefix)).cloned().collect()
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
    /// The namespaces the caller is limited to; `None`: all of its tenant's.
    pub namespaces: Option<NamespaceGrant>,
    /// The request being served (HTTP: `x-request-id`), recorded with its
    /// changes in the journal.
    pub request_id: Option<String>,
}

impl TenantCtx {
    /// Dev mode: tenant `default` with every scope.
    pub fn dev() -> Self {
        TenantCtx {
            tenant: DEFAULT_TENANT.to_string(),
            scopes: Scopes::ALL,
            key_id: None,
            agent_id: None,
            namespaces: None,
            request_id: None,
        }
    }

    /// Who this caller's writes are recorded as made by.
    pub fn writer(&self) -> crate::model::Writer {
        let by = self.key_id.as_ref().map(|k| if k.starts_with("jwt:") { k.clone() } else { format!("key:{k}") });
        crate::model::Writer { by, agent_id: self.agent_id.clone() }
    }

    /// Who this caller's changes are journaled as made by (see `crate::audit`).
    pub fn actor(&self) -> crate::audit::Actor {
        let w = self.writer();
        crate::audit::Actor { by: w.by, agent_id: w.agent_id, request_id: self.request_id.clone() }
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

    /// Whether the caller may touch namespace `ns`.
    pub fn may_touch(&self, ns: &Namespace) -> bool {
        self.namespaces.as_ref().is_none_or(|g| g.covers(ns))
    }

    /// Fails with `forbidden` unless the caller may touch namespace `ns`
    /// (`field` names the input in the message).
    pub fn require_namespace(&self, ns: &Namespace, field: &str) -> Result<()> {
        match &self.namespaces {
            Some(g) if !g.covers(ns) => Err(Error::forbidden(format!(
                "{field} {:?} is outside the namespaces this key is limited to ({})",
                ns.joined(),
                g.to_list()
            ))),
            _ => Ok(()),
        }
    }

    /// Confines a search or listing to the caller's namespaces: its prefix
    /// narrows to the one granted prefix under it, or it gains the granted
    /// prefixes under it as `within`. `forbidden` when nothing under the
    /// prefix is granted.
    pub fn confine(&self, scope: &mut crate::store::Scope) -> Result<()> {
        let Some(g) = &self.namespaces else {
            return Ok(());
        };
        let mut within = g.within(&scope.namespace_prefix);
        match within.len() {
            0 => return self.require_namespace(&scope.namespace_prefix, "namespace prefix"),
            1 => scope.namespace_prefix = within.remove(0),
            _ => scope.within = within,
        }
        Ok(())
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
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct KeyInfo {
    pub id: String,
    pub tenant: String,
    pub name: String,
    pub scopes: String,
    #[serde(serialize_with = "crate::time::serde_rfc3339::serialize")]
    #[cfg_attr(feature = "schema", schemars(with = "crate::schema::Rfc3339"))]
    pub created_at: crate::time::Millis,
    #[serde(serialize_with = "crate::time::serde_rfc3339::serialize_opt")]
    #[cfg_attr(feature = "schema", schemars(with = "Option<crate::schema::Rfc3339>"))]
    pub revoked_at: Option<crate::time::Millis>,
    /// The namespace prefixes the key is limited to, `/`-joined; absent: all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespaces: Option<Vec<String>>,
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
            namespaces: k.namespaces.map(|g| g.prefixes().iter().map(Namespace::joined).collect()),
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

fn random_hex<const N: usize>() -> Result<String> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|e| Error::internal(format!("no randomness: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Makes a new random key. Its id (12 hex digits, shown in listings and
/// provenance) is drawn apart from the secret, so it gives none of it away.
pub fn generate_key() -> Result<NewKey> {
    let secret = format!("{KEY_PREFIX}{}", random_hex::<32>()?);
    let hash = hash_key(&secret);
    Ok(NewKey { id: random_hex::<6>()?, secret, hash })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

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
        assert!(a.id.len() == 12 && !a.secret.contains(&a.id), "the id is not a piece of the secret");
        assert_ne!(a.hash, b.hash);
    }

    fn ns(joined: &str) -> Namespace {
        Namespace::parse_joined(joined, "namespace").unwrap()
    }

    #[test]
    fn a_grant_covers_whole_segments_below_its_prefixes() {
        let g = NamespaceGrant::parse_list("users/alice, shared,users/alice/prefs,shared").unwrap();
        assert_eq!(g.to_list(), "shared,users/alice", "sorted, duplicates and covered prefixes dropped");
        assert!(g.covers(&ns("users/alice")) && g.covers(&ns("users/alice/prefs")) && g.covers(&ns("shared/x")));
        assert!(!g.covers(&ns("users/alicia")) && !g.covers(&ns("users")) && !g.covers(&ns("sharedx")));
        assert_eq!(g.within(&ns("users")), vec![ns("users/alice")]);
        assert_eq!(g.within(&ns("")), vec![ns("shared"), ns("users/alice")]);
        assert_eq!(g.within(&ns("users/alice/x")), vec![ns("users/alice/x")]);
        assert!(g.within(&ns("users/bob")).is_empty());
        assert!(g.includes(Some(&NamespaceGrant::parse_list("users/alice/a,shared").unwrap())));
        assert!(!g.includes(Some(&NamespaceGrant::parse_list("users").unwrap())));
        assert!(!g.includes(None), "an unlimited key is more than any grant");
        for bad in ["", " , ", "a//b", "../x", "a b", &vec!["x"; 33].join(",")] {
            assert!(NamespaceGrant::parse_list(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_limited_caller_is_confined_to_its_grant() {
        let ctx = TenantCtx {
            namespaces: Some(NamespaceGrant::parse_list("users/alice,shared").unwrap()),
            ..TenantCtx::dev()
        };
        assert!(ctx.may_touch(&ns("shared/a")) && !ctx.may_touch(&ns("users/bob")));
        assert_eq!(ctx.require_namespace(&ns("users/bob"), "namespace").unwrap_err().code(), ErrorCode::Forbidden);
        let mut everything = crate::store::Scope::tenant("default", 0);
        ctx.confine(&mut everything).unwrap();
        assert!(everything.namespace_prefix.is_empty());
        assert_eq!(everything.within, vec![ns("shared"), ns("users/alice")]);
        let mut users = crate::store::Scope::tenant("default", 0);
        users.namespace_prefix = ns("users");
        ctx.confine(&mut users).unwrap();
        assert_eq!((users.namespace_prefix, users.within), (ns("users/alice"), vec![]));
        let mut bob = crate::store::Scope::tenant("default", 0);
        bob.namespace_prefix = ns("users/bob");
        assert_eq!(ctx.confine(&mut bob).unwrap_err().code(), ErrorCode::Forbidden);
        let mut unlimited = crate::store::Scope::tenant("default", 0);
        TenantCtx::dev().confine(&mut unlimited).unwrap();
        assert!(unlimited.within.is_empty());
    }

    #[test]
    fn scopes_parse_and_print() {
        let s = Scopes::parse_list("read, write").unwrap();
        assert!(s.read && s.write && !s.admin);
        assert_eq!(s.to_list(), "read,write");
        assert!(Scopes::parse_list("read,root").is_err());
        assert!(Scopes::parse_list("").is_err());
        let ctx = TenantCtx { tenant: "t".into(), scopes: Scopes::parse_list("read").unwrap(), ..TenantCtx::dev() };
        assert!(ctx.require(Scope::Read).is_ok());
        assert_eq!(ctx.require(Scope::Write).unwrap_err().code(), ErrorCode::Forbidden);
    }
}

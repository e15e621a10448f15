//! Bearer tokens (JWT, RFC 7519) beside API keys: a token signed by an
//! identity provider names the tenant and the scopes of its caller.
//!
//! - **Algorithms:** HS256 with a configured shared secret; RS256 and ES256
//!   with public keys from a JWKS file (RFC 7517), picked by the token's
//!   `kid` when it has one. `alg: none` and every other algorithm are
//!   refused. Signatures are checked by the `jsonwebtoken` crate (RustCrypto
//!   backend), never by code of ours.
//! - **Claims:** `exp` is required; `exp` and `nbf` are checked against the
//!   service's clock with [`CLOCK_SKEW_S`] of leeway; `iss` and `aud` must
//!   be present and match when configured. The tenant is the `tenant_claim` (default
//!   `tenant`), the scopes the `scopes_claim` (default `scope`: OAuth's
//!   space-separated string, or an array) — `read`, `write`, `admin`; other
//!   scope names are ignored.
//! - **Namespaces:** an optional `namespaces` claim (an array of `/`-joined
//!   prefixes, e.g. `["users/alice", "shared"]`) limits the caller to them,
//!   as a key created with `--namespaces` is limited; a malformed one refuses
//!   the token.
//! - **Who:** the caller is `jwt:<sub>` (rate limits and provenance count
//!   per subject).
//! - **Rotation:** the JWKS file is checked for changes at most once a
//!   second (by its modification time and size) and read again when it
//!   changed; a file that no longer parses keeps the keys read before.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

use crate::auth::{validate_tenant, NamespaceGrant, Scopes, TenantCtx};
use crate::clock::SharedClock;
use crate::error::{Error, Result};
use crate::time::Millis;

/// Seconds a token's `exp` and `nbf` may be off (clocks of issuers drift).
pub const CLOCK_SKEW_S: i64 = 30;
/// How often the JWKS file is checked for changes, in milliseconds.
const JWKS_CHECK_MS: Millis = 1_000;
/// The claim limiting a caller to namespace prefixes.
pub const NAMESPACES_CLAIM: &str = "namespaces";

/// What tokens are accepted.
#[derive(Debug, Clone, Default)]
pub struct JwtOptions {
    /// HS256's shared secret; `None`: HS256 tokens are refused.
    pub hs256_secret: Option<Vec<u8>>,
    /// A JWKS file of RS256 / ES256 public keys; `None`: those are refused.
    pub jwks_file: Option<PathBuf>,
    /// The required `iss`, if any.
    pub issuer: Option<String>,
    /// The required `aud` (one of the token's audiences), if any.
    pub audience: Option<String>,
    /// The claim naming the tenant.
    pub tenant_claim: String,
    /// The claim listing the scopes.
    pub scopes_claim: String,
}

/// The JWKS file's keys as last read.
struct Jwks {
    keys: Arc<Vec<(Option<String>, Algorithm, DecodingKey)>>,
    /// `(modified, length)` of the file read.
    stamp: Option<(SystemTime, u64)>,
    checked_at: Millis,
}

/// Verifies bearer tokens.
pub struct JwtVerifier {
    opts: JwtOptions,
    hs256: Option<DecodingKey>,
    jwks: Mutex<Jwks>,
    clock: SharedClock,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtVerifier").field("jwks_file", &self.opts.jwks_file).finish_non_exhaustive()
    }
}

/// Whether `credential` has the shape of a JWT (three base64url parts).
pub fn looks_like_jwt(credential: &str) -> bool {
    credential.split('.').count() == 3
        && credential.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

/// The signing keys of a JWKS file (those for RS256 and ES256).
fn read_jwks(path: &Path) -> Result<Vec<(Option<String>, Algorithm, DecodingKey)>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::invalid(format!("cannot read the JWKS file {}: {e}", path.display())))?;
    let set: JwkSet = serde_json::from_str(&text)
        .map_err(|e| Error::invalid(format!("the JWKS file {} is not a JWK set: {e}", path.display())))?;
    let mut keys = Vec::new();
    for jwk in &set.keys {
        let alg = match &jwk.algorithm {
            jsonwebtoken::jwk::AlgorithmParameters::RSA(_) => Algorithm::RS256,
            jsonwebtoken::jwk::AlgorithmParameters::EllipticCurve(_) => Algorithm::ES256,
            _ => continue,
        };
        match DecodingKey::from_jwk(jwk) {
            Ok(key) => keys.push((jwk.common.key_id.clone(), alg, key)),
            Err(e) => {
                tracing::warn!(file = %path.display(), kid = ?jwk.common.key_id, error = %e, "a JWKS key is not usable; skipped")
            }
        }
    }
    if keys.is_empty() {
        return Err(Error::invalid(format!("the JWKS file {} holds no usable RS256 or ES256 key", path.display())));
    }
    Ok(keys)
}

fn refused(why: impl std::fmt::Display) -> Error {
    Error::unauthenticated(format!("the bearer token is not valid: {why}"))
}

impl JwtVerifier {
    /// A verifier; fails when the JWKS file cannot be read or the secret is empty.
    pub fn new(opts: JwtOptions, clock: SharedClock) -> Result<Self> {
        let hs256 = match &opts.hs256_secret {
            Some(s) if s.is_empty() => return Err(Error::invalid("the HS256 secret is empty")),
            Some(s) => Some(DecodingKey::from_secret(s).map_err(|e| Error::invalid(format!("HS256 secret: {e}")))?),
            None => None,
        };
        let (keys, stamp) = match &opts.jwks_file {
            Some(p) => (read_jwks(p)?, stamp(p)),
            None => (Vec::new(), None),
        };
        let keys = Arc::new(keys);
        let checked_at = clock.now_ms();
        Ok(JwtVerifier { opts, hs256, jwks: Mutex::new(Jwks { keys, stamp, checked_at }), clock })
    }

    /// Reads the JWKS file again if it changed (checked at most once a second).
    fn refresh(&self, jwks: &mut Jwks) {
        let Some(path) = &self.opts.jwks_file else {
            return;
        };
        let now = self.clock.now_ms();
        if now - jwks.checked_at < JWKS_CHECK_MS {
            return;
        }
        jwks.checked_at = now;
        let current = stamp(path);
        if current == jwks.stamp {
            return;
        }
        match read_jwks(path) {
            Ok(keys) => {
                jwks.keys = Arc::new(keys);
                jwks.stamp = current;
                tracing::info!(file = %path.display(), keys = jwks.keys.len(), "JWKS file read again");
            }
            Err(e) => tracing::warn!(error = %e, "the changed JWKS file is not usable; the keys read before stay"),
        }
    }

    /// The caller a token names, or `unauthenticated` saying what is wrong.
    pub fn verify(&self, token: &str) -> Result<TenantCtx> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| refused(format!("its header: {e}")))?;
        let mut validation = Validation::new(header.alg);
        // Time is checked below on the service's clock.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        // A configured issuer or audience must be present, not only match
        // when present (a token for another service often names none).
        let mut required = vec!["exp"];
        if let Some(iss) = &self.opts.issuer {
            validation.set_issuer(&[iss]);
            required.push("iss");
        }
        match &self.opts.audience {
            Some(aud) => {
                validation.set_audience(&[aud]);
                required.push("aud");
            }
            None => validation.validate_aud = false,
        }
        validation.set_required_spec_claims(&required);
        let claims: Value = match header.alg {
            Algorithm::HS256 => {
                let key = self.hs256.as_ref().ok_or_else(|| refused("HS256 tokens are not accepted here"))?;
                decode(token, key, &validation)?
            }
            Algorithm::RS256 | Algorithm::ES256 => {
                // Verified outside the lock: tokens are checked in parallel.
                let keys = {
                    let mut jwks = self.jwks.lock().map_err(|_| Error::internal("JWKS lock poisoned"))?;
                    self.refresh(&mut jwks);
                    Arc::clone(&jwks.keys)
                };
                let candidates: Vec<&DecodingKey> = keys
                    .iter()
                    .filter(|(kid, alg, _)| *alg == header.alg && (header.kid.is_none() || *kid == header.kid))
                    .map(|(_, _, k)| k)
                    .collect();
                if candidates.is_empty() {
                    return Err(refused(format!(
                        "no {:?} key{} is configured",
                        header.alg,
                        match &header.kid {
                            Some(k) => format!(" with kid {k:?}"),
                            None => String::new(),
                        }
                    )));
                }
                // The first key that verifies it; else why the last one did not.
                let mut outcome = Err(refused("no key verifies it"));
                for key in candidates {
                    outcome = decode(token, key, &validation);
                    if outcome.is_ok() {
                        break;
                    }
                }
                outcome?
            }
            other => return Err(refused(format!("algorithm {other:?} is not accepted (HS256, RS256, ES256 are)"))),
        };
        self.check_time(&claims)?;
        self.caller(&claims)
    }

    fn check_time(&self, claims: &Value) -> Result<()> {
        let now_s = self.clock.now_ms().div_euclid(1000);
        let exp = claims.get("exp").and_then(Value::as_i64).ok_or_else(|| refused("its exp is not a number"))?;
        if now_s > exp + CLOCK_SKEW_S {
            return Err(refused("it has expired"));
        }
        if let Some(nbf) = claims.get("nbf") {
            let nbf = nbf.as_i64().ok_or_else(|| refused("its nbf is not a number"))?;
            if now_s + CLOCK_SKEW_S < nbf {
                return Err(refused("it is not valid yet (nbf)"));
            }
        }
        Ok(())
    }

    fn caller(&self, claims: &Value) -> Result<TenantCtx> {
        let claim = &self.opts.tenant_claim;
        let tenant = claims
            .get(claim)
            .and_then(Value::as_str)
            .ok_or_else(|| refused(format!("it names no tenant (claim {claim:?})")))?;
        validate_tenant(tenant).map_err(|_| refused(format!("its {claim:?} is not a valid tenant id")))?;
        let names: Vec<&str> = match claims.get(&self.opts.scopes_claim) {
            Some(Value::String(s)) => s.split_whitespace().collect(),
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        let mut scopes = Scopes::default();
        for n in names {
            match n {
                "read" => scopes.read = true,
                "write" => scopes.write = true,
                "admin" => scopes.admin = true,
                _ => {}
            }
        }
        let namespaces = match claims.get(NAMESPACES_CLAIM) {
            None | Some(Value::Null) => None,
            Some(Value::Array(a)) => {
                let list: Option<Vec<&str>> = a.iter().map(Value::as_str).collect();
                let list =
                    list.ok_or_else(|| refused(format!("its {NAMESPACES_CLAIM:?} claim is not a list of strings")))?;
                Some(
                    NamespaceGrant::from_joined(&list)
                        .map_err(|e| refused(format!("its {NAMESPACES_CLAIM:?}: {e}")))?,
                )
            }
            Some(_) => return Err(refused(format!("its {NAMESPACES_CLAIM:?} claim is not a list of strings"))),
        };
        let who = claims.get("sub").and_then(Value::as_str).unwrap_or(tenant);
        Ok(TenantCtx {
            tenant: tenant.to_owned(),
            scopes,
            key_id: Some(format!("jwt:{who}")),
            agent_id: None,
            namespaces,
            request_id: None,
        })
    }
}

fn decode(token: &str, key: &DecodingKey, validation: &Validation) -> Result<Value> {
    use jsonwebtoken::errors::ErrorKind;
    jsonwebtoken::decode::<Value>(token, key, validation).map(|d| d.claims).map_err(|e| {
        refused(match e.kind() {
            ErrorKind::InvalidSignature => "its signature does not verify".to_owned(),
            ErrorKind::InvalidIssuer => "it is from another issuer".to_owned(),
            ErrorKind::InvalidAudience => "it is for another audience".to_owned(),
            ErrorKind::MissingRequiredClaim(c) => format!("it has no {c} claim"),
            ErrorKind::InvalidAlgorithm => "its algorithm does not match the key".to_owned(),
            _ => format!("{e}"),
        })
    })
}

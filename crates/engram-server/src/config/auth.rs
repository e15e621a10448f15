//! `[auth]`: bearer tokens (JWT) accepted beside API keys. Validated here
//! into `engram_core::jwt::JwtOptions`; the secret is never shown.

use std::path::PathBuf;

use engram_core::jwt::JwtOptions;
use serde::{Deserialize, Serialize};

/// `[auth]` as written in the config file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSection {
    /// HS256's shared secret (at least 32 bytes); empty: HS256 refused.
    pub jwt_hs256_secret: String,
    /// A JWKS file of RS256 / ES256 public keys, read again when it changes.
    pub jwks_file: Option<PathBuf>,
    /// The `iss` tokens must carry; empty: any.
    pub jwt_issuer: String,
    /// The `aud` tokens must carry; empty: any.
    pub jwt_audience: String,
    /// The claim naming the tenant.
    pub jwt_tenant_claim: String,
    /// The claim listing the scopes (a space-separated string or an array).
    pub jwt_scopes_claim: String,
}

impl Default for AuthSection {
    fn default() -> Self {
        AuthSection {
            jwt_hs256_secret: String::new(),
            jwks_file: None,
            jwt_issuer: String::new(),
            jwt_audience: String::new(),
            jwt_tenant_claim: "tenant".into(),
            jwt_scopes_claim: "scope".into(),
        }
    }
}

impl AuthSection {
    /// The token settings (`None` when no token is accepted), with a message
    /// in `errors` for every bad value.
    pub fn validate(&self, errors: &mut Vec<String>) -> Option<JwtOptions> {
        let secret = &self.jwt_hs256_secret;
        if !secret.is_empty() && secret.len() < 32 {
            errors.push(format!(
                "auth.jwt_hs256_secret is {} bytes; HS256 needs at least 32 (RFC 7518 §3.2)",
                secret.len()
            ));
        }
        if let Some(f) = &self.jwks_file {
            if !f.is_file() {
                errors.push(format!("auth.jwks_file = {:?} is not a readable file", f.display().to_string()));
            }
        }
        for (key, v) in [("jwt_tenant_claim", &self.jwt_tenant_claim), ("jwt_scopes_claim", &self.jwt_scopes_claim)] {
            if v.is_empty() {
                errors.push(format!("auth.{key} must name a claim"));
            }
        }
        if secret.is_empty() && self.jwks_file.is_none() {
            return None;
        }
        let some = |s: &String| (!s.is_empty()).then(|| s.clone());
        Some(JwtOptions {
            hs256_secret: some(secret).map(String::into_bytes),
            jwks_file: self.jwks_file.clone(),
            issuer: some(&self.jwt_issuer),
            audience: some(&self.jwt_audience),
            tenant_claim: self.jwt_tenant_claim.clone(),
            scopes_claim: self.jwt_scopes_claim.clone(),
        })
    }
}

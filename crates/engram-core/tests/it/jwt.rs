//! Bearer tokens: what `JwtVerifier` accepts and each way a token is
//! refused, on the injected clock, with keys from `tests/fixtures/jwt`.

use std::path::PathBuf;

use engram_core::clock::ManualClock;
use engram_core::jwt::{JwtOptions, JwtVerifier, CLOCK_SKEW_S};
use engram_core::ErrorCode;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use crate::harness::T0;

const SECRET: &[u8] = b"a shared secret of the identity provider";
const NOW_S: i64 = T0 / 1000;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/jwt").join(name)
}

fn opts(jwks: Option<PathBuf>) -> JwtOptions {
    JwtOptions {
        hs256_secret: Some(SECRET.to_vec()),
        jwks_file: jwks,
        issuer: Some("https://idp.example".into()),
        audience: Some("engram".into()),
        tenant_claim: "tenant".into(),
        scopes_claim: "scope".into(),
    }
}

fn claims() -> Value {
    json!({"sub": "agent-7", "tenant": "acme", "scope": "read write other", "iss": "https://idp.example",
           "aud": "engram", "exp": NOW_S + 600, "iat": NOW_S})
}

fn with(mut c: Value, key: &str, v: Value) -> Value {
    if v.is_null() {
        c.as_object_mut().unwrap().remove(key);
    } else {
        c[key] = v;
    }
    c
}

fn hs256(c: &Value, secret: &[u8]) -> String {
    encode(&Header::new(Algorithm::HS256), c, &EncodingKey::from_secret(secret).unwrap()).unwrap()
}

fn signed(c: &Value, alg: Algorithm, pem: &str, kid: &str) -> String {
    let pem = std::fs::read(fixture(pem)).unwrap();
    let key = match alg {
        Algorithm::RS256 => EncodingKey::from_rsa_pem(&pem).unwrap(),
        _ => EncodingKey::from_ec_pem(&pem).unwrap(),
    };
    let mut header = Header::new(alg);
    header.kid = Some(kid.into());
    encode(&header, c, &key).unwrap()
}

fn refused(v: &JwtVerifier, token: &str, why: &str) {
    let e = v.verify(token).expect_err(why);
    assert_eq!(e.code(), ErrorCode::Unauthenticated, "{why}: {e}");
    assert!(e.to_string().contains(why), "expected {why:?} in {e}");
}

#[test]
fn a_good_token_names_its_tenant_scopes_and_subject() {
    let clock = ManualClock::new(T0);
    let v = JwtVerifier::new(opts(None), clock).unwrap();
    let ctx = v.verify(&hs256(&claims(), SECRET)).unwrap();
    assert_eq!((ctx.tenant.as_str(), ctx.key_id.as_deref()), ("acme", Some("jwt:agent-7")));
    assert!(ctx.scopes.read && ctx.scopes.write && !ctx.scopes.admin, "unknown scope names are ignored");
    let arr = with(claims(), "scope", json!(["admin"]));
    assert!(v.verify(&hs256(&arr, SECRET)).unwrap().scopes.admin, "scopes may be an array");
    assert!(ctx.namespaces.is_none(), "no namespaces claim: every namespace");
}

#[test]
fn a_namespaces_claim_limits_the_caller() {
    let v = JwtVerifier::new(opts(None), ManualClock::new(T0)).unwrap();
    let limited = with(claims(), "namespaces", json!(["users/alice", "shared"]));
    let ctx = v.verify(&hs256(&limited, SECRET)).unwrap();
    assert_eq!(ctx.namespaces.map(|g| g.to_list()).as_deref(), Some("shared,users/alice"));
    for bad in [json!("users/alice"), json!([]), json!(["../etc"]), json!([7]), json!(["a b"])] {
        let token = hs256(&with(claims(), "namespaces", bad.clone()), SECRET);
        let err = v.verify(&token).unwrap_err();
        assert_eq!(err.code(), engram_core::ErrorCode::Unauthenticated, "{bad}");
        assert!(err.public_message().contains("namespaces"), "{bad}: {err}");
    }
}

#[test]
fn each_bad_token_is_refused_saying_why() {
    let clock = ManualClock::new(T0);
    let v = JwtVerifier::new(opts(None), clock.clone()).unwrap();
    // alg none: an unsigned token.
    let b64 = |s: &str| {
        use std::fmt::Write;
        // base64url without padding, by hand: the tests' one use.
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let (mut out, bytes) = (String::new(), s.as_bytes());
        for chunk in bytes.chunks(3) {
            let n = chunk.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b)) << (8 * (3 - chunk.len()));
            for i in 0..=chunk.len() {
                let _ = out.write_char(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            }
        }
        out
    };
    let none = format!("{}.{}.", b64(r#"{"alg":"none","typ":"JWT"}"#), b64(&claims().to_string()));
    refused(&v, &none, "header");
    refused(&v, &hs256(&claims(), b"another secret"), "signature does not verify");
    refused(&v, &hs256(&with(claims(), "exp", json!(NOW_S - CLOCK_SKEW_S - 1)), SECRET), "expired");
    assert!(v.verify(&hs256(&with(claims(), "exp", json!(NOW_S - 5)), SECRET)).is_ok(), "within the clock skew");
    refused(&v, &hs256(&with(claims(), "nbf", json!(NOW_S + CLOCK_SKEW_S + 60)), SECRET), "not valid yet");
    refused(&v, &hs256(&with(claims(), "aud", json!("another-service")), SECRET), "another audience");
    refused(&v, &hs256(&with(claims(), "iss", json!("https://evil.example")), SECRET), "another issuer");
    refused(&v, &hs256(&with(claims(), "exp", Value::Null), SECRET), "no exp claim");
    refused(&v, &hs256(&with(claims(), "aud", Value::Null), SECRET), "no aud claim");
    refused(&v, &hs256(&with(claims(), "iss", Value::Null), SECRET), "no iss claim");
    refused(&v, &hs256(&with(claims(), "tenant", Value::Null), SECRET), "names no tenant");
    refused(&v, &hs256(&with(claims(), "tenant", json!("no spaces please")), SECRET), "not a valid tenant");
    refused(&v, "not.a.token", "header");
    // Time moves on: the good token expires on the service's clock.
    let good = hs256(&claims(), SECRET);
    assert!(v.verify(&good).is_ok());
    clock.advance((600 + CLOCK_SKEW_S + 1) * 1000);
    refused(&v, &good, "expired");
}

#[test]
fn rs256_and_es256_come_from_the_jwks_file_which_may_rotate() {
    let dir = tempfile::tempdir().unwrap();
    let jwks = dir.path().join("jwks.json");
    std::fs::copy(fixture("jwks.json"), &jwks).unwrap();
    let clock = ManualClock::new(T0);
    let v = JwtVerifier::new(JwtOptions { hs256_secret: None, ..opts(Some(jwks.clone())) }, clock.clone()).unwrap();
    let rsa1 = signed(&claims(), Algorithm::RS256, "rsa-1.pem", "rsa-1");
    assert_eq!(v.verify(&rsa1).unwrap().tenant, "acme");
    assert_eq!(v.verify(&signed(&claims(), Algorithm::ES256, "ec-1.pem", "ec-1")).unwrap().tenant, "acme");
    let rsa2 = signed(&claims(), Algorithm::RS256, "rsa-2.pem", "rsa-2");
    refused(&v, &rsa2, "no RS256 key with kid \"rsa-2\"");
    refused(&v, &signed(&claims(), Algorithm::RS256, "rsa-2.pem", "rsa-1"), "signature does not verify");
    // Without a shared secret, HS256 is refused — even "signed" with a public key.
    let public = std::fs::read(fixture("jwks.json")).unwrap();
    refused(&v, &hs256(&claims(), &public), "HS256 tokens are not accepted");

    // The identity provider rotates its keys: the file is read again.
    std::fs::copy(fixture("jwks-rotated.json"), &jwks).unwrap();
    clock.advance(1_000);
    assert_eq!(v.verify(&rsa2).unwrap().tenant, "acme");
    refused(&v, &rsa1, "no RS256 key with kid \"rsa-1\"");
    // A broken file keeps the keys read before.
    std::fs::write(&jwks, "{ not json").unwrap();
    clock.advance(1_000);
    assert!(v.verify(&rsa2).is_ok());
}

//! Bearer tokens over HTTP: a token's tenant and scopes are the caller's,
//! tenants stay apart, and a bad or expired token is a 401 in the envelope.
//! (Every way a token is refused is tested in engram-core's `jwt` tests.)

use std::path::PathBuf;
use std::sync::Arc;

use engram_core::clock::ManualClock;
use engram_server::config::AuthSection;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::json;

use crate::support::{Client, Opts, TestServer};

const T0: i64 = 1_767_225_600_000;
const SECRET: &str = "the identity provider's shared secret, 32+ bytes";

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../engram-core/tests/fixtures/jwt").join(name)
}

fn token(tenant: &str, scope: &str, exp_in_s: i64) -> String {
    let claims = json!({"sub": format!("{tenant}-agent"), "tenant": tenant, "scope": scope,
                        "iss": "https://idp.example", "aud": "engram", "exp": T0 / 1000 + exp_in_s});
    encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(SECRET.as_bytes()).unwrap()).unwrap()
}

fn bearer(srv: &TestServer, token: String) -> Client {
    Client { addr: srv.addr, key: Some(token) }
}

#[test]
fn a_tokens_tenant_and_scopes_are_the_callers() {
    let clock = ManualClock::new(T0);
    let srv = TestServer::start_with(Opts {
        auth_required: true,
        clock: Some(Arc::clone(&clock)),
        auth: Some(AuthSection {
            jwt_hs256_secret: SECRET.into(),
            jwks_file: Some(fixture("jwks.json")),
            jwt_issuer: "https://idp.example".into(),
            jwt_audience: "engram".into(),
            ..AuthSection::default()
        }),
        ..Default::default()
    });
    let acme = bearer(&srv, token("acme", "read write", 600));
    let r = acme.post("/v1/memories", &json!({"memories": [{"namespace": ["n"], "text": "acme's secret plan"}]}));
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.json()["results"][0]["memory"]["id"].as_str().unwrap().to_owned();
    assert_eq!(acme.get(&format!("/v1/memories/{id}")).status, 200);

    // Another tenant's token does not see it; a read-only token cannot write.
    let beta = bearer(&srv, token("beta", "read write", 600));
    assert_eq!(beta.get(&format!("/v1/memories/{id}")).status, 404);
    let reader = bearer(&srv, token("acme", "read", 600));
    assert_eq!(reader.get(&format!("/v1/memories/{id}")).status, 200);
    let w = reader.post("/v1/memories", &json!({"memories": [{"namespace": ["n"], "text": "x"}]}));
    assert_eq!((w.status, w.code()), (403, "forbidden".to_string()));

    // RS256 from the JWKS file.
    let pem = std::fs::read(fixture("rsa-1.pem")).unwrap();
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("rsa-1".into());
    let claims = json!({"sub": "svc", "tenant": "acme", "scope": ["read"], "iss": "https://idp.example",
                        "aud": "engram", "exp": T0 / 1000 + 600});
    let rs = encode(&header, &claims, &EncodingKey::from_rsa_pem(&pem).unwrap()).unwrap();
    assert_eq!(bearer(&srv, rs).get(&format!("/v1/memories/{id}")).status, 200);

    // Refused: a forged signature, and the good token once it has expired.
    let forged = encode(
        &Header::new(Algorithm::HS256),
        &json!({"tenant": "acme", "scope": "read", "exp": T0 / 1000 + 600, "iss": "https://idp.example", "aud": "engram"}),
        &EncodingKey::from_secret(b"guessed secret").unwrap(),
    )
    .unwrap();
    let r = bearer(&srv, forged).get(&format!("/v1/memories/{id}"));
    assert_eq!((r.status, r.code()), (401, "unauthenticated".to_string()));
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("signature"), "{}", r.text);
    clock.advance(700_000);
    let r = acme.get(&format!("/v1/memories/{id}"));
    assert_eq!((r.status, r.code()), (401, "unauthenticated".to_string()));
    assert!(r.text.contains("expired"), "{}", r.text);
    // Without any credential: tokens configured means no dev mode.
    assert_eq!(srv.client().get("/v1/memories?namespace=n").status, 401);
}

//! Admission control: each API key's rate (429 + `Retry-After`, on the
//! injected clock) and load shedding at the in-flight limit (503 +
//! `Retry-After`, health still answering).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use engram_core::clock::ManualClock;
use engram_server::config::LimitsSection;

use crate::support::{request, Opts, Resp, TestServer};

fn get(srv: &TestServer, key: &str) -> Resp {
    request(srv.addr, "GET", "/v1/memories?namespace=a", &[("authorization", &format!("Bearer {key}"))], None)
}

#[test]
fn a_key_over_its_rate_is_told_when_to_come_back() {
    let clock = ManualClock::new(1_767_225_600_000);
    let limits = LimitsSection { key_requests_per_second: 2, key_burst: 3, ..LimitsSection::default() };
    let srv = TestServer::start_with(Opts {
        auth_required: true,
        keys: vec![("t1", "read,write"), ("t1", "read")],
        clock: Some(Arc::clone(&clock)),
        limits: Some(limits),
        ..Default::default()
    });
    let (k1, k2) = (srv.keys[0].clone(), srv.keys[1].clone());
    for i in 0..3 {
        assert_eq!(get(&srv, &k1).status, 200, "request {i} is within the burst");
    }
    let r = get(&srv, &k1);
    assert_eq!((r.status, r.code()), (429, "rate_limited".to_string()), "{}", r.text);
    assert_eq!(r.header("retry-after"), Some("1"), "the next token comes within a second");
    assert_eq!(r.json()["error"]["request_id"], r.header("x-request-id").unwrap());
    // MCP over HTTP is admitted by the same bucket, before its body is read.
    let mcp = request(srv.addr, "POST", "/mcp", &[("authorization", &format!("Bearer {k1}"))], Some("{}"));
    assert_eq!((mcp.status, mcp.code()), (429, "rate_limited".to_string()), "{}", mcp.text);
    // Another key of the same tenant has its own bucket.
    assert_eq!(get(&srv, &k2).status, 200);
    // Refused requests took no tokens: half a second later one is back, a
    // second later two.
    clock.advance(500);
    assert_eq!(get(&srv, &k1).status, 200);
    assert_eq!(get(&srv, &k1).status, 429);
    clock.advance(1_000);
    assert_eq!(get(&srv, &k1).status, 200);
    assert_eq!(get(&srv, &k1).status, 200);
    assert_eq!(get(&srv, &k1).status, 429);
    // An unknown key is refused as such, not counted against anyone.
    assert_eq!(get(&srv, "egk_0000").status, 401);
}

/// A request whose headers are sent and whose body is not yet: it holds its
/// place among the requests in flight until [`Held::finish`].
struct Held(TcpStream, &'static str);

impl Held {
    fn start(srv: &TestServer) -> Held {
        let body = r#"{"memories":[{"namespace":["held"],"text":"sent slowly"}]}"#;
        let mut s = TcpStream::connect(srv.addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let head = format!(
            "POST /v1/memories HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{}",
            body.len(),
            &body[..10]
        );
        s.write_all(head.as_bytes()).expect("write");
        Held(s, &body[10..])
    }

    /// Whether the server has answered it already (it was shed: a probe
    /// came in first).
    fn answered(&self) -> bool {
        self.0.set_nonblocking(true).expect("nonblocking");
        let answered = matches!(self.0.peek(&mut [0u8; 1]), Ok(n) if n > 0);
        self.0.set_nonblocking(false).expect("blocking");
        answered
    }

    fn finish(mut self) -> u16 {
        self.0.write_all(self.1.as_bytes()).expect("write the rest");
        let mut out = String::new();
        let _ = self.0.read_to_string(&mut out);
        out.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
    }
}

#[test]
fn requests_over_the_in_flight_limit_are_shed_and_health_still_answers() {
    let limits = LimitsSection { max_in_flight: 1, ..LimitsSection::default() };
    let srv = TestServer::start_with(Opts { limits: Some(limits), ..Default::default() });
    // Ready first (every job has run once), so readiness below is about the limit.
    let deadline = Instant::now() + Duration::from_secs(30);
    while request(srv.addr, "GET", "/readyz", &[], None).status != 200 {
        assert!(Instant::now() < deadline, "never ready");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut held = Held::start(&srv);
    // Once the held request is in, the next is refused at once.
    let deadline = Instant::now() + Duration::from_secs(30);
    let shed = loop {
        let r = request(srv.addr, "GET", "/v1/memories?namespace=a", &[], None);
        if r.status == 503 {
            break r;
        }
        assert_eq!(r.status, 200, "{}", r.text);
        if held.answered() {
            held = Held::start(&srv);
        }
        assert!(Instant::now() < deadline, "the held request never took its place");
    };
    assert_eq!(shed.code(), "unavailable");
    assert_eq!(shed.header("retry-after"), Some("1"));
    assert_eq!(shed.json()["error"]["request_id"], shed.header("x-request-id").unwrap());
    for path in ["/healthz", "/readyz", "/metrics"] {
        assert_eq!(request(srv.addr, "GET", path, &[], None).status, 200, "{path} is outside the limit");
    }
    assert_eq!(held.finish(), 201, "the held request completes");
    assert_eq!(request(srv.addr, "GET", "/v1/memories?namespace=held", &[], None).status, 200);
}

#[test]
fn a_flood_of_unknown_keys_is_cut_off_while_known_keys_go_on() {
    use engram_core::service::UNKNOWN_KEYS_PER_SECOND;
    let clock = ManualClock::new(1_767_225_600_000);
    let srv = TestServer::start_with(Opts {
        auth_required: true,
        keys: vec![("t1", "read"), ("t1", "read")],
        clock: Some(Arc::clone(&clock)),
        ..Default::default()
    });
    let (known, fresh) = (srv.keys[0].clone(), srv.keys[1].clone());
    assert_eq!(get(&srv, &known).status, 200);
    // Not shaped like a key: refused without a lookup, and not counted.
    for bad in ["secret", "egk_", "EGK_00", &known.to_uppercase()] {
        assert_eq!((get(&srv, bad).status, get(&srv, bad).code()), (401, "unauthenticated".to_string()), "{bad}");
    }
    // Well-formed unknown keys: each looked up once, up to the budget (twice
    // the rate at once); the one that finds it spent closes the door.
    let budget = 2 * UNKNOWN_KEYS_PER_SECOND as usize;
    for i in 0..=budget {
        assert_eq!(get(&srv, &format!("egk_{i:064x}")).status, 401, "unknown key {i}");
    }
    let r = get(&srv, &format!("egk_{:064x}", budget + 1));
    assert_eq!((r.status, r.code()), (503, "unavailable".to_string()), "{}", r.text);
    assert_eq!(r.header("retry-after"), Some("1"));
    assert_eq!(get(&srv, "egk_0").status, 401, "a malformed key is still refused as such");
    assert_eq!(get(&srv, &known).status, 200, "a cached key goes on working");
    assert_eq!(get(&srv, &fresh).status, 503, "an uncached key waits for the door to reopen");
    // A second later the door is open again, with a second's budget.
    clock.advance(1_000);
    assert_eq!(get(&srv, &fresh).status, 200);
    assert_eq!(get(&srv, &format!("egk_{:064x}", budget + 2)).status, 401);
    // A long flood: grants older than the cache's 5 s still serve the keys
    // that worked while the door is shut (else a flood locks everyone out).
    clock.advance(10_000);
    let mut i = budget + 3;
    while get(&srv, &format!("egk_{i:064x}")).status != 503 {
        i += 1;
        assert!(i < 10 * budget, "the door never closed");
    }
    assert_eq!(get(&srv, &known).status, 200, "a key that worked goes on working");
    assert_eq!(get(&srv, &fresh).status, 200);
}

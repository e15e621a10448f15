//! Change events over real sockets: a subscriber gets its own tenant's
//! changes in order, filtered by namespace prefix and by its key's
//! namespaces, resumes after the last event it saw, and a caller that may
//! not subscribe is refused before any upgrade. Both backends.

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use serde_json::{json, Value};
use tungstenite::client::IntoClientRequest;
use tungstenite::{Message, WebSocket};

use crate::support::{request, Client, Opts, TestServer};

pub type Socket = WebSocket<TcpStream>;

/// Subscribes over a WebSocket with `key` (`query` as in `?…`).
pub fn subscribe(addr: SocketAddr, key: &str, query: &str) -> Socket {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut req = format!("ws://{addr}/v1/events{query}").into_client_request().unwrap();
    req.headers_mut().insert("authorization", format!("Bearer {key}").parse().unwrap());
    let (ws, resp) = tungstenite::client::client(req, stream).expect("upgraded");
    assert_eq!(resp.status(), 101);
    ws
}

/// The next event (fails after the read timeout).
pub fn next_event(ws: &mut Socket) -> Value {
    loop {
        match ws.read().expect("an event") {
            Message::Text(t) => return serde_json::from_str(t.as_str()).unwrap(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected message {other:?}"),
        }
    }
}

/// `(type, memory_id)` of the next `n` events.
fn kinds(ws: &mut Socket, n: usize) -> Vec<(String, String)> {
    (0..n)
        .map(|_| {
            let e = next_event(ws);
            (e["type"].as_str().unwrap().to_owned(), e["memory_id"].as_str().unwrap_or("").to_owned())
        })
        .collect()
}

fn write(c: &Client, ns: &[&str], text: &str) -> String {
    c.remember(json!([{"namespace": ns, "text": text}]))[0].clone()
}

#[test]
fn a_subscriber_gets_its_tenants_changes_in_order_and_resumes_after_a_reconnect() {
    let srv = TestServer::start_with(Opts {
        auth_required: true,
        keys: vec![("t1", "read,write,admin"), ("t2", "read,write")],
        ..Default::default()
    });
    let (t1, t2) = (srv.client_with_key(0), srv.client_with_key(1));
    let mut sub1 = subscribe(srv.addr, &srv.keys[0], "");
    let mut sub2 = subscribe(srv.addr, &srv.keys[1], "");
    let mut only_a = subscribe(srv.addr, &srv.keys[0], "?namespace_prefix=a");

    let fig = write(&t1, &["a"], "Ana likes figs");
    assert_eq!(t1.patch(&format!("/v1/memories/{fig}"), &json!({"tags": ["food"]})).status, 200);
    write(&t1, &["a"], "ana likes figs.");
    let tea = write(&t1, &["b"], "Bo likes tea");
    assert_eq!(t1.delete(&format!("/v1/memories/{tea}"), None).status, 204);
    let other = write(&t2, &["a"], "t2's own memory");

    let seen = kinds(&mut sub1, 6);
    assert_eq!(seen[0], ("created".into(), fig.clone()));
    assert_eq!(seen[1], ("updated".into(), fig.clone()));
    assert_eq!(seen[2].0, "merged", "{seen:?}");
    assert_eq!(seen[3], ("updated".into(), fig.clone()), "the survivor of the merge");
    assert_eq!(seen[4], ("created".into(), tea.clone()));
    assert_eq!(seen[5], ("deleted".into(), tea.clone()));
    // The other tenant's subscriber saw none of that: its first event is its own.
    assert_eq!(kinds(&mut sub2, 1), [("created".to_string(), other)]);
    // The prefix filter: namespace b's changes are not sent to it.
    let a_only = kinds(&mut only_a, 4);
    assert_eq!(a_only.iter().map(|k| k.0.as_str()).collect::<Vec<_>>(), ["created", "updated", "merged", "updated"]);
    let marker = write(&t1, &["a"], "a marker after b's changes");
    assert_eq!(kinds(&mut only_a, 1), [("created".to_string(), marker.clone())]);
    assert_eq!(kinds(&mut sub1, 1), [("created".to_string(), marker.clone())]);

    // Resume: disconnect, miss two changes, come back after the last one seen.
    let last = {
        let e = next_event(&mut subscribe(srv.addr, &srv.keys[0], "?after=0.0.0"));
        assert_eq!(e["memory_id"].as_str(), Some(fig.as_str()), "from the beginning: the first change");
        let mut again = subscribe(srv.addr, &srv.keys[0], "");
        let m2 = write(&t1, &["a"], "seen live");
        let e = next_event(&mut again);
        assert_eq!(e["memory_id"].as_str(), Some(m2.as_str()));
        e["id"].as_str().unwrap().to_owned()
    };
    let missed = [write(&t1, &["a"], "missed one"), write(&t1, &["c"], "missed two")];
    let mut resumed = subscribe(srv.addr, &srv.keys[0], &format!("?after={last}"));
    let got = kinds(&mut resumed, 2);
    assert_eq!(got, [("created".to_string(), missed[0].clone()), ("created".to_string(), missed[1].clone())]);
    let e = next_event(&mut sub1);
    assert_eq!(e["namespace"], json!(["a"]));
    assert_eq!(e["by"].as_str().map(|b| b.starts_with("key:")), Some(true), "{e}");
}

#[test]
fn subscribing_is_refused_before_the_upgrade_and_a_limited_key_sees_only_its_namespaces() {
    let srv = TestServer::start_with(Opts {
        auth_required: true,
        keys: vec![("t1", "read,write,admin")],
        ..Default::default()
    });
    let admin = srv.client_with_key(0);
    let upgrade = [
        ("connection", "Upgrade"),
        ("upgrade", "websocket"),
        ("sec-websocket-version", "13"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];
    let r = request(srv.addr, "GET", "/v1/events", &upgrade, None);
    assert_eq!((r.status, r.code()), (401, "unauthenticated".to_string()), "{}", r.text);
    let bad_key = [&upgrade[..], &[("authorization", "Bearer egk_nope")]].concat();
    assert_eq!(request(srv.addr, "GET", "/v1/events", &bad_key, None).status, 401);
    let auth = format!("Bearer {}", srv.keys[0]);
    let with_key = [&upgrade[..], &[("authorization", auth.as_str())]].concat();
    for bad in ["/v1/events?after=garbage", "/v1/events?nonsense=1"] {
        let r = request(srv.addr, "GET", bad, &with_key, None);
        assert_eq!((r.status, r.code()), (400, "invalid_input".to_string()), "{bad}: {}", r.text);
    }

    let made =
        admin.post("/v1/admin/keys", &json!({"name": "alice", "scopes": ["read"], "namespaces": ["users/alice"]}));
    let alice = made.json()["secret"].as_str().unwrap().to_owned();
    let alice_auth = format!("Bearer {alice}");
    let limited = [&upgrade[..], &[("authorization", alice_auth.as_str())]].concat();
    let r = request(srv.addr, "GET", "/v1/events?namespace_prefix=users/bob", &limited, None);
    assert_eq!((r.status, r.code()), (403, "forbidden".to_string()), "{}", r.text);

    // A key holds a bounded number of streams open; a closed one frees its place.
    let mut held: Vec<Socket> = (0..engram_core::service::MAX_STREAMS_PER_CALLER)
        .map(|_| subscribe(srv.addr, &alice, "?namespace_prefix=users/alice"))
        .collect();
    let r = request(srv.addr, "GET", "/v1/events", &limited, None);
    assert_eq!((r.status, r.code()), (429, "rate_limited".to_string()), "{}", r.text);
    assert!(r.header("retry-after").is_some());
    // Closed: the server drops the feed (its place) before the connection.
    let mut first = held.remove(0);
    first.close(None).unwrap();
    while first.read().is_ok() {}
    drop(first);
    let mut sub = subscribe(srv.addr, &alice, "");
    drop(held);
    write(&admin, &["users", "bob"], "bob's secret");
    let mine = write(&admin, &["users", "alice", "notes"], "alice's note");
    assert_eq!(kinds(&mut sub, 1), [("created".to_string(), mine)], "bob's change is not sent to alice's key");

    // Server-sent events for a plain GET that asks for them.
    let sse = [("authorization", auth.as_str()), ("accept", "text/event-stream")];
    let stream = std::thread::spawn({
        let addr = srv.addr;
        let headers: Vec<(String, String)> = sse.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move || {
            use std::io::{BufRead, BufReader, Write};
            let mut s = TcpStream::connect(addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            let mut req = format!("GET /v1/events?after=0.0.0 HTTP/1.1\r\nHost: {addr}\r\n");
            for (k, v) in &headers {
                req.push_str(&format!("{k}: {v}\r\n"));
            }
            s.write_all(format!("{req}\r\n").as_bytes()).unwrap();
            let reader = BufReader::new(s);
            reader.lines().map(|l| l.unwrap()).find(|l| l.starts_with("data:")).unwrap()
        }
    });
    let data = stream.join().unwrap();
    let first: Value = serde_json::from_str(data.trim_start_matches("data:").trim()).unwrap();
    assert_eq!(first["type"], "created", "{first}");
    assert_eq!(admin.get("/v1/events").status, 400, "neither an upgrade nor an event stream");
}

#[test]
fn a_stream_ends_once_its_key_is_revoked() {
    use engram_core::clock::ManualClock;
    let clock = ManualClock::new(1_800_000_000_000);
    let srv = TestServer::start_with(Opts {
        auth_required: true,
        keys: vec![("t1", "read,write,admin")],
        clock: Some(std::sync::Arc::clone(&clock)),
        ..Default::default()
    });
    let admin = srv.client_with_key(0);
    let made = admin.post("/v1/admin/keys", &json!({"name": "watcher", "scopes": ["read"]}));
    let (id, secret) =
        (made.json()["key"]["id"].as_str().unwrap().to_owned(), made.json()["secret"].as_str().unwrap().to_owned());
    let mut sub = subscribe(srv.addr, &secret, "");
    let first = write(&admin, &["n"], "heard while the key holds");
    assert_eq!(kinds(&mut sub, 1), [("created".to_string(), first)]);
    assert_eq!(admin.delete(&format!("/v1/admin/keys/{id}"), None).status, 204);
    // The stream checks its key every few seconds of the service's clock.
    clock.advance(engram_core::service::EVENTS_RECHECK.as_millis() as i64 + 1);
    write(&admin, &["n"], "said after the revocation");
    match sub.read().expect("a close frame") {
        Message::Close(Some(frame)) => assert_eq!(u16::from(frame.code), 1008, "{frame:?}"),
        other => panic!("the change after the revocation was sent: {other:?}"),
    }
}

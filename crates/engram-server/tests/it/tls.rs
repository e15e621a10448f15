//! HTTPS with certificates made here: the real binary serves the one its
//! files hold, refuses plain HTTP on that port, and serves a new one after
//! the files change and it gets SIGHUP.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rcgen::{generate_simple_self_signed, CertifiedKey, KeyPair};

use crate::support::{engram_bin, free_port, request, Proc};

fn certificate() -> CertifiedKey<KeyPair> {
    generate_simple_self_signed(vec!["localhost".to_string()]).expect("a certificate")
}

/// `GET path` over TLS, trusting `roots`: the status and the certificate
/// the server presented, or `None` if no TLS answer came.
fn https_get(addr: SocketAddr, path: &str, roots: &[&CertifiedKey<KeyPair>]) -> Option<(u16, Vec<u8>)> {
    let mut store = rustls::RootCertStore::empty();
    for r in roots {
        store.add(r.cert.der().clone()).ok()?;
    }
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .ok()?
        .with_root_certificates(store)
        .with_no_client_auth();
    let conn = rustls::ClientConnection::new(Arc::new(cfg), "localhost".try_into().ok()?).ok()?;
    let sock = TcpStream::connect(addr).ok()?;
    sock.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut tls = rustls::StreamOwned::new(conn, sock);
    tls.write_all(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes()).ok()?;
    let mut out = Vec::new();
    let _ = tls.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out);
    let status = text.split(' ').nth(1)?.parse().ok()?;
    Some((status, tls.conn.peer_certificates()?.first()?.to_vec()))
}

fn write_pair(dir: &std::path::Path, c: &CertifiedKey<KeyPair>) {
    std::fs::write(dir.join("cert.pem"), c.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), c.signing_key.serialize_pem()).unwrap();
}

#[test]
fn https_serves_its_certificate_and_sighup_swaps_it() {
    let (a, b) = (certificate(), certificate());
    let files = tempfile::tempdir().unwrap();
    write_pair(files.path(), &a);
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let child = Command::new(engram_bin())
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
        .arg(data.path())
        .env("ENGRAM_EMBEDDER_PROVIDER", "none")
        .env("ENGRAM_SERVER_TLS_CERT", files.path().join("cert.pem"))
        .env("ENGRAM_SERVER_TLS_KEY", files.path().join("key.pem"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let p = Proc { child, addr: format!("127.0.0.1:{port}").parse().unwrap() };
    let deadline = Instant::now() + Duration::from_secs(30);
    let served = loop {
        if let Some(answer) = https_get(p.addr, "/healthz", &[&a, &b]) {
            break answer;
        }
        assert!(Instant::now() < deadline, "no HTTPS answer");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(served, (200, a.cert.der().to_vec()), "the configured certificate");
    assert_ne!(request(p.addr, "GET", "/healthz", &[], None).status, 200, "no plain HTTP on the TLS port");

    // New files, then SIGHUP: new connections get the new certificate.
    write_pair(files.path(), &b);
    let hup = Command::new("kill").args(["-HUP", &p.child.id().to_string()]).status().unwrap();
    assert!(hup.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match https_get(p.addr, "/healthz", &[&a, &b]) {
            Some((200, der)) if der == b.cert.der().to_vec() => break,
            Some((200, der)) => assert_eq!(der, a.cert.der().to_vec(), "the old certificate until the reload"),
            other => panic!("the server stopped answering during the reload: {other:?}"),
        }
        assert!(Instant::now() < deadline, "the certificate was never swapped");
        std::thread::sleep(Duration::from_millis(20));
    }
}

//! TLS (`wss://`) end to end with certificates made at test time: our client against our
//! server over real rustls, how trust is configured (`tls_config`, `SSL_CERT_FILE`,
//! `SSL_CERT_DIR`), the errors that say why a certificate was refused, and the server's
//! timeouts and graceful shutdown over TLS.
#![cfg(feature = "tls")]
#![allow(clippy::unwrap_used)]

mod tls_common;

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use tls_common::TestPki;
use tokio::net::TcpStream;
use ws_tokio::{ClientBuilder, CloseCode, Error, Message, Server, ServerBuilder, WebSocket, rustls};

/// An echo server over TLS, its certificate and key loaded from the PEM files.
async fn tls_echo_server(pki: &TestPki, builder: ServerBuilder) -> (Server, SocketAddr) {
    let server = builder
        .tls_pem(pki.cert_file(), pki.key_file())
        .unwrap()
        .serve(
            |mut ws: WebSocket| async move {
                while let Ok(message) = ws.recv().await {
                    let _ = ws.send(message).await;
                }
            },
            "127.0.0.1:0",
        )
        .await
        .unwrap();
    let addr = server.local_addr().unwrap();
    (server, addr)
}

fn tls_message(error: &Error) -> &str {
    match error {
        Error::Tls { message, .. } => message,
        other => panic!("expected Error::Tls, got {other:?}"),
    }
}

#[tokio::test]
async fn wss_echo_round_trip_with_tls_config() {
    let pki = TestPki::new(&["localhost"]);
    let (server, addr) = tls_echo_server(&pki, ServerBuilder::new()).await;
    let mut ws = ClientBuilder::new()
        .tls_config(pki.client_config())
        .connect(&format!("wss://localhost:{}/chat", addr.port()))
        .await
        .unwrap();
    assert_eq!(ws.info().remote_addr(), Some(addr), "addresses come through the TLS stream");
    assert!(ws.info().local_addr().is_some());
    assert_eq!(ws.info().extensions(), ["permessage-deflate"], "deflate over TLS too");
    ws.send("hello over TLS").await.unwrap();
    assert_eq!(ws.recv().await.unwrap(), Message::text("hello over TLS"));
    let big = vec![7u8; 300_000]; // many TLS records, compressed
    ws.send(big.clone()).await.unwrap();
    assert_eq!(ws.recv().await.unwrap(), Message::binary(big));
    assert_eq!(server.connections(), 1);
    ws.close(CloseCode::NORMAL, "").await.unwrap();
    assert_eq!(ws.close_code(), Some(CloseCode::NORMAL));
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn wrong_host_name_is_refused() {
    let pki = TestPki::new(&["localhost"]);
    let (server, addr) = tls_echo_server(&pki, ServerBuilder::new()).await;
    // The certificate names localhost, not 127.0.0.1.
    let error = ClientBuilder::new()
        .tls_config(pki.client_config())
        .connect(&format!("wss://127.0.0.1:{}/", addr.port()))
        .await
        .unwrap_err();
    let message = tls_message(&error);
    assert!(message.contains("wrong host name") && message.contains("127.0.0.1"), "{message}");
    let source = std::error::Error::source(&error).unwrap();
    assert!(
        matches!(
            source.downcast_ref::<rustls::Error>(),
            Some(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName
                    | rustls::CertificateError::NotValidForNameContext { .. }
            ))
        ),
        "{source:?}"
    );
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn unknown_ca_is_refused() {
    let pki = TestPki::new(&["localhost"]);
    let other = TestPki::new(&["localhost"]);
    let (server, addr) = tls_echo_server(&pki, ServerBuilder::new()).await;
    let error = ClientBuilder::new()
        .tls_config(other.client_config())
        .connect(&format!("wss://localhost:{}/", addr.port()))
        .await
        .unwrap_err();
    let message = tls_message(&error);
    assert!(message.contains("unknown issuer") && message.contains("SSL_CERT_FILE"), "{message}");
    assert!(error.to_string().starts_with("TLS: certificate not trusted"), "{error}");
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn graceful_shutdown_closes_a_wss_connection_with_1001() {
    let pki = TestPki::new(&["localhost"]);
    let (server, addr) = tls_echo_server(&pki, ServerBuilder::new()).await;
    let mut ws = ClientBuilder::new()
        .tls_config(pki.client_config())
        .connect(&format!("wss://localhost:{}/", addr.port()))
        .await
        .unwrap();
    ws.send("hi").await.unwrap();
    assert_eq!(ws.recv().await.unwrap(), Message::text("hi"));
    assert_eq!(server.connections(), 1);
    let shutdown = tokio::spawn(server.shutdown(Duration::from_secs(5)));
    let error = ws.recv().await.unwrap_err();
    assert!(matches!(&error, Error::Closed(c) if c.code == CloseCode::GOING_AWAY && c.ok), "{error:?}");
    shutdown.await.unwrap();
}

/// A server that accepts TCP but never answers the ClientHello: the TLS handshake is part of
/// the opening handshake, so `open_timeout` ends it.
#[tokio::test]
async fn client_tls_handshake_counts_in_open_timeout() {
    let pki = TestPki::new(&["localhost"]);
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    let error = ClientBuilder::new()
        .tls_config(pki.client_config())
        .open_timeout(Some(Duration::from_millis(300)))
        .connect(&format!("wss://localhost:{port}/"))
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Timeout(ws_tokio::Timeout::Open)), "{error:?}");
}

/// A client that opens TCP and says nothing holds only its own task, not the accept loop:
/// others get served meanwhile, and `open_timeout` ends the silent one.
#[tokio::test]
async fn server_tls_handshake_runs_per_connection_within_open_timeout() {
    let pki = TestPki::new(&["localhost"]);
    let builder = ServerBuilder::new().open_timeout(Some(Duration::from_millis(500)));
    let (server, addr) = tls_echo_server(&pki, builder).await;
    let mut silent = TcpStream::connect(addr).await.unwrap();
    let mut ws = ClientBuilder::new()
        .tls_config(pki.client_config())
        .connect(&format!("wss://localhost:{}/", addr.port()))
        .await
        .unwrap();
    ws.send("served").await.unwrap();
    assert_eq!(ws.recv().await.unwrap(), Message::text("served"));
    assert_eq!(server.connections(), 2, "the silent client is counted while it is in its handshake");
    // The server gives up on the silent client: EOF, nothing sent.
    let mut buf = [0u8; 64];
    let read =
        tokio::time::timeout(Duration::from_secs(5), tokio::io::AsyncReadExt::read(&mut silent, &mut buf))
            .await
            .expect("closed within open_timeout");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    assert_eq!(server.connections(), 1);
    ws.close(CloseCode::NORMAL, "").await.unwrap();
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn tls_pem_names_the_file_that_fails() {
    let pki = TestPki::new(&["localhost"]);
    let missing = pki.dir.join("missing.pem");
    let error = ServerBuilder::new().tls_pem(&missing, pki.key_file()).unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::NotFound);
    assert!(error.to_string().contains("missing.pem"), "{error}");
    // A key file given as the certificate chain: no certificate in it.
    let error = ServerBuilder::new().tls_pem(pki.key_file(), pki.key_file()).unwrap_err();
    assert!(error.to_string().contains("key.pem: no PEM certificate"), "{error}");
    // A key that is not the certificate's.
    let other = TestPki::new(&["localhost"]);
    let error = ServerBuilder::new().tls_pem(pki.cert_file(), other.key_file()).unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidData, "{error}");
}

/// `Acceptor::accept_tcp` gives a TCP stream accepted elsewhere the builder's TLS.
#[tokio::test]
async fn acceptor_accept_tcp_runs_tls() {
    let pki = TestPki::new(&["localhost"]);
    let acceptor = ServerBuilder::new().tls_pem(pki.cert_file(), pki.key_file()).unwrap().build().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut ws = acceptor.accept_tcp(tcp).await.unwrap();
        assert!(ws.info().remote_addr().is_some(), "addresses come through the TLS stream");
        let message = ws.recv().await.unwrap();
        ws.send(message).await.unwrap();
        let _ = ws.recv().await;
    });
    let mut ws = ClientBuilder::new()
        .tls_config(pki.client_config())
        .connect(&format!("wss://localhost:{port}/"))
        .await
        .unwrap();
    ws.send("accepted elsewhere").await.unwrap();
    assert_eq!(ws.recv().await.unwrap(), Message::text("accepted elsewhere"));
    ws.close(CloseCode::NORMAL, "").await.unwrap();
    server.await.unwrap();
}

/// The default client configuration takes its roots from `SSL_CERT_FILE` or `SSL_CERT_DIR`
/// when set. Environment variables are process-wide and the default configuration is built
/// once per process, so each case runs `trusted_from_env_child` in a child process of this
/// test binary with the variable set there, against a server run here.
#[tokio::test]
async fn ssl_cert_file_and_dir_are_trusted_by_default() {
    let pki = TestPki::new(&["localhost"]);
    let (server, addr) = tls_echo_server(&pki, ServerBuilder::new()).await;
    let uri = format!("wss://localhost:{}/", addr.port());
    let ca_dir = pki.dir.join("ca-dir");
    std::fs::create_dir_all(&ca_dir).unwrap();
    std::fs::copy(pki.ca_file(), ca_dir.join("test-ca.pem")).unwrap();
    for (var, value) in [("SSL_CERT_FILE", pki.ca_file()), ("SSL_CERT_DIR", ca_dir)] {
        let mut child = Command::new(std::env::current_exe().unwrap());
        child
            .args(["--exact", "trusted_from_env_child", "--ignored", "--nocapture", "--test-threads=1"])
            .env_remove("SSL_CERT_FILE")
            .env_remove("SSL_CERT_DIR")
            .env(var, &value)
            .env("WS_TLS_TEST_URI", &uri);
        let output = tokio::task::spawn_blocking(move || child.output()).await.unwrap().unwrap();
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success() && text.contains("1 passed"), "{var}: {text}");
    }
    server.shutdown(Duration::from_secs(1)).await;
}

/// Run by `ssl_cert_file_and_dir_are_trusted_by_default` in a child process.
#[tokio::test]
#[ignore = "run in a child process by ssl_cert_file_and_dir_are_trusted_by_default"]
async fn trusted_from_env_child() {
    let uri = std::env::var("WS_TLS_TEST_URI").unwrap();
    let mut ws = ws_tokio::connect(&uri).await.unwrap();
    ws.send("trusted from the environment").await.unwrap();
    assert_eq!(ws.recv().await.unwrap(), Message::text("trusted from the environment"));
    ws.close(CloseCode::NORMAL, "").await.unwrap();
}

/// The PROXY protocol header precedes the ClientHello in plain text; reading it before TLS is
/// not done yet, so the combination is refused when the server is built rather than failing
/// every connection.
/// Behind a proxy that speaks the PROXY protocol and leaves TLS to us (AWS NLB, HAProxy in
/// TCP mode): the header comes first, in the clear, then the TLS handshake.
#[tokio::test]
async fn proxy_protocol_header_before_tls() {
    use tokio::io::AsyncWriteExt;
    let pki = TestPki::new(&["localhost"]);
    let server = ServerBuilder::new()
        .tls_pem(pki.cert_file(), pki.key_file())
        .unwrap()
        .proxy_protocol(true)
        .serve(
            |mut ws: WebSocket| async move {
                let client = ws.info().client_addr().map(|ip| ip.to_string()).unwrap_or_default();
                let _ = ws.send(client).await;
            },
            "127.0.0.1:0",
        )
        .await
        .unwrap();
    let addr = server.local_addr().unwrap();
    for header in [
        b"PROXY TCP4 203.0.113.7 198.51.100.2 5678 443\r\n".to_vec(),
        [
            &b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c"[..],
            &[203, 0, 113, 7, 198, 51, 100, 2, 0x16, 0x2e, 0x01, 0xbb],
        ]
        .concat(),
    ] {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        tcp.write_all(&header).await.unwrap();
        let connector = ws_tokio::tokio_rustls::TlsConnector::from(pki.client_config());
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let tls = connector.connect(name, tcp).await.unwrap();
        let mut ws = ClientBuilder::new().connect_with("wss://localhost/", tls).await.unwrap();
        assert_eq!(ws.recv().await.unwrap(), Message::text("203.0.113.7"));
    }
    server.shutdown(Duration::from_secs(1)).await;
}

/// Beyond `max_connections`, a TLS connection is closed without a plain-text 503 (its client
/// expects a TLS handshake); once a connection leaves, a new one gets in.
#[tokio::test]
async fn max_connections_over_tls_closes_the_extra_connection() {
    let pki = TestPki::new(&["localhost"]);
    let (server, addr) = tls_echo_server(&pki, ServerBuilder::new().max_connections(Some(1))).await;
    let uri = format!("wss://localhost:{}/", addr.port());
    let mut first = ClientBuilder::new().tls_config(pki.client_config()).connect(&uri).await.unwrap();
    let error = ClientBuilder::new().tls_config(pki.client_config()).connect(&uri).await.unwrap_err();
    assert!(matches!(error, Error::Tls { .. } | Error::Io(_)), "{error:?}");
    assert_eq!(server.connections(), 1);
    first.close(CloseCode::NORMAL, "").await.unwrap();
    drop(first);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while server.connections() != 0 {
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut again = ClientBuilder::new().tls_config(pki.client_config()).connect(&uri).await.unwrap();
    again.send("in").await.unwrap();
    assert_eq!(again.recv().await.unwrap(), Message::text("in"));
    server.shutdown(Duration::from_secs(1)).await;
}

//! Reconnecting clients (`ClientBuilder::reconnecting`) against real servers that go away,
//! come back, refuse or are unavailable.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::time::Instant;
use ws_tokio::{
    Backoff, ClientBuilder, ClientError, CloseCode, Error, Message, Server, ServerBuilder, WebSocket,
    is_transient,
};

/// An echo server on `listener`, with no timer of its own (see `quiet`).
fn echo_server(builder: ServerBuilder, listener: TcpListener) -> Server {
    let echo = |mut ws: WebSocket| async move {
        while let Ok(message) = ws.recv().await {
            if ws.send(message).await.is_err() {
                break;
            }
        }
    };
    builder.serve_listener(echo, listener).unwrap()
}

/// Settings without timers. Under paused time the clock jumps to the next timer whenever the
/// runtime waits, even for loopback I/O that is about to arrive: with no timer but the
/// backoff's, virtual time moves only by the backoff delays.
fn quiet_client() -> ClientBuilder {
    ClientBuilder::new().open_timeout(None).ping_interval(None).close_timeout(None).idle_release(None)
}

fn quiet_server() -> ServerBuilder {
    ServerBuilder::new().open_timeout(None).ping_interval(None).close_timeout(None).idle_release(None)
}

async fn assert_echo(ws: &mut WebSocket) {
    ws.send("ping?").await.unwrap();
    assert_eq!(ws.recv().await.unwrap(), Message::text("ping?"));
}

/// A server that restarts: the client sees the 1001 of the shutdown, the next connection
/// waits with backoff while nothing listens (connection refused, retried), then comes from the
/// restarted server on the same port. The backoff is Python's and runs in paused time: the
/// delays are checked to the millisecond, in no real time.
#[tokio::test]
async fn reconnects_after_the_server_restarts() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = echo_server(ServerBuilder::new(), listener);
    let (failed, mut failures) = mpsc::unbounded_channel();
    let mut connections = quiet_client().reconnecting(&format!("ws://{addr}/")).retry_if(move |e| {
        let _ = failed.send((Instant::now(), e.to_string()));
        is_transient(e)
    });

    let mut ws = connections.next().await.unwrap().unwrap();
    assert_echo(&mut ws).await;
    server.shutdown(Duration::from_secs(1)).await;
    let Err(Error::Closed(closed)) = ws.recv().await else { panic!("still open") };
    assert_eq!(closed.code, CloseCode::GOING_AWAY);
    drop(ws);

    // From here on, virtual time: only the backoff's sleeps move it.
    tokio::time::pause();
    let start = Instant::now();
    let (mut ws, server) = {
        let next = connections.next();
        tokio::pin!(next);
        let mut seen = Vec::new();
        while seen.len() < 3 {
            tokio::select! {
                item = &mut next => panic!("a connection while the server is down: {item:?}"),
                failure = failures.recv() => seen.push(failure.unwrap()),
            }
        }
        for (_, error) in &seen {
            assert!(error.starts_with("connection refused"), "{error}");
        }
        // The first attempt at once, the second after 0-5 s of jitter, the third 3.1 s later.
        assert_eq!(seen[0].0, start);
        let jitter = seen[1].0 - start;
        assert!(jitter < Duration::from_secs(5), "{jitter:?}");
        assert_close(seen[2].0 - seen[1].0, Duration::from_millis(3100));

        let server = echo_server(quiet_server(), TcpListener::bind(addr).await.unwrap());
        let ws = next.await.unwrap().unwrap();
        // The fourth attempt, 3.1 × 1.618 s after the third, found the server back.
        assert_close(Instant::now() - seen[2].0, Duration::from_secs_f64(3.1 * 1.618));
        (ws, server)
    };
    assert_echo(&mut ws).await;
    assert!(failures.try_recv().is_err(), "a failure after the last one seen");

    // The backoff starts over after a success: when the server goes again, the first retry
    // comes within the jitter, not 8.1 s later.
    drop(ws);
    server.shutdown(Duration::from_secs(1)).await;
    let start = Instant::now();
    let next = connections.next();
    tokio::pin!(next);
    let mut seen = Vec::new();
    while seen.len() < 2 {
        tokio::select! {
            item = &mut next => panic!("a connection while the server is down: {item:?}"),
            failure = failures.recv() => seen.push(failure.unwrap().0),
        }
    }
    assert!(seen[1] - start < Duration::from_secs(5), "{:?}", seen[1] - start);
}

/// `actual` is `expected`, to the timer wheel's millisecond.
fn assert_close(actual: Duration, expected: Duration) {
    let gap = actual.abs_diff(expected);
    assert!(gap <= Duration::from_millis(2), "{actual:?} is not {expected:?}");
}

/// A server that answers `statuses` in turn (then upgrades), counting the requests.
fn answering(statuses: &'static [u16], listener: TcpListener) -> (Server, Arc<AtomicUsize>) {
    let requests = Arc::new(AtomicUsize::new(0));
    let counter = requests.clone();
    let builder = ServerBuilder::new().process_request_async(move |_| {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        async move {
            let status = *statuses.get(n)?;
            let mut response = http::Response::new(Bytes::from_static(b"not now\n"));
            *response.status_mut() = http::StatusCode::from_u16(status).unwrap();
            Some(response)
        }
    });
    (echo_server(builder, listener), requests)
}

/// Short delays in real time, for the tests that only count attempts.
fn fast() -> Backoff {
    Backoff {
        initial_delay: Duration::from_millis(10),
        min_delay: Duration::from_millis(10),
        factor: 2.0,
        max_delay: Duration::from_millis(40),
    }
}

async fn bound() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

/// 503 and 429 are transient: the stream retries them and yields the connection that follows.
#[tokio::test]
async fn unavailable_is_retried() {
    let (listener, addr) = bound().await;
    let (server, requests) = answering(&[503, 503, 429], listener);
    let mut connections = ClientBuilder::new().reconnecting(&format!("ws://{addr}/")).backoff(fast());
    let mut ws = connections.next().await.unwrap().unwrap();
    assert_echo(&mut ws).await;
    assert_eq!(requests.load(Ordering::SeqCst), 4);
    server.shutdown(Duration::from_secs(1)).await;
}

/// 403 is fatal: the stream yields it, once, and ends.
#[tokio::test]
async fn forbidden_ends_the_stream() {
    let (listener, addr) = bound().await;
    let (server, requests) = answering(&[403], listener);
    let mut connections = ClientBuilder::new().reconnecting(&format!("ws://{addr}/")).backoff(fast());
    let err = connections.next().await.unwrap().unwrap_err();
    let Error::Handshake(ClientError::Rejected(response)) = &err else { panic!("{err:?}") };
    assert_eq!(response.status(), http::StatusCode::FORBIDDEN);
    assert!(connections.next().await.is_none());
    assert_eq!(requests.load(Ordering::SeqCst), 1);
    server.shutdown(Duration::from_secs(1)).await;
}

/// An invalid URI is fatal at once; a custom `retry_if` can make anything fatal.
#[tokio::test]
async fn invalid_uri_and_custom_policy() {
    let mut connections = ClientBuilder::new().reconnecting("http://127.0.0.1/");
    let err = connections.next().await.unwrap().unwrap_err();
    assert!(!is_transient(&err), "{err:?}");
    assert!(connections.next().await.is_none());

    let (listener, addr) = bound().await;
    drop(listener); // nothing listens: refused
    let mut connections = ClientBuilder::new().reconnecting(&format!("ws://{addr}/")).retry_if(|_| false);
    let err = connections.next().await.unwrap().unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
}

/// `Reconnect` is a `Stream`: `StreamExt` combinators work on it.
#[tokio::test]
async fn is_a_stream() {
    use futures_util::StreamExt;
    let (listener, addr) = bound().await;
    let server = echo_server(ServerBuilder::new(), listener);
    let connections = ClientBuilder::new().reconnecting(&format!("ws://{addr}/"));
    let opened: Vec<_> = connections.take(2).collect().await;
    assert_eq!(opened.len(), 2);
    for ws in opened {
        assert_echo(&mut ws.unwrap()).await;
    }
    server.shutdown(Duration::from_secs(1)).await;
}

/// A connection lost without a closing handshake (1006: the server vanished) is followed by
/// a new one when the next is asked for, at once: the connection had opened, so the backoff
/// starts over.
#[tokio::test]
async fn abnormal_close_then_a_new_connection() {
    let (listener, addr) = bound().await;
    let acceptor = ServerBuilder::new().build().unwrap();
    let server = tokio::spawn(async move {
        for _ in 0..2 {
            let (stream, _) = listener.accept().await.unwrap();
            // A second handle on the socket, to cut it under the connection.
            let stream = stream.into_std().unwrap();
            let cut = stream.try_clone().unwrap();
            let stream = tokio::net::TcpStream::from_std(stream).unwrap();
            let opened = acceptor.accept_with_driver(stream).await.unwrap();
            // Gone without a close frame, as when the server's host fails.
            cut.shutdown(std::net::Shutdown::Both).unwrap();
            drop(opened);
        }
    });
    let mut connections = ClientBuilder::new().reconnecting(&format!("ws://{addr}/"));
    for _ in 0..2 {
        let mut ws = connections.next().await.unwrap().unwrap();
        let Err(Error::Closed(closed)) = ws.recv().await else { panic!("still open") };
        assert_eq!(closed.code, CloseCode::ABNORMAL);
        assert!(!closed.ok);
    }
    server.await.unwrap();
}

/// The stream can move to another task and be polled there.
#[test]
fn reconnect_is_send_and_unpin() {
    fn check<T: Send + Unpin + 'static>() {}
    check::<ws_tokio::Reconnect>();
}

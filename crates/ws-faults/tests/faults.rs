//! A real ws-tokio client and server through the fault-injecting relay, on loopback.
//!
//! Each case checks that messages arrive whole and in order (what each side received is a
//! prefix of what was sent to it), that the connection ends as it should on both sides (a
//! normal closure, 1006, or a keepalive / closing timeout), that no side ends later than
//! `ping_interval + ping_timeout + close_timeout` after the fault, and that no task and no file
//! descriptor is left behind. The quick cases run in `cargo test`; the `#[ignore]`d ones (the
//! 30 s stalls and the whole matrix, about two minutes) in `cargo xtask faults`.
//!
//! Cases run one at a time (file descriptors are counted for the whole process).
#![allow(clippy::unwrap_used)]

#[path = "../../ws-tokio/tests/tls_common/mod.rs"]
mod tls_common;

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::mpsc;
use ws_faults::{Fault, Faults, Relay};
use ws_tokio::{
    ClientBuilder, CloseCode, Compression, Config, Error, Message, ServerBuilder, Timeout, WebSocket,
};

/// `ping_interval`, `ping_timeout` and `close_timeout` of both sides.
const TIMEOUT: Duration = Duration::from_secs(1);
/// How late after its deadline an end may come: the scheduling of a loaded machine.
const SLACK: Duration = Duration::from_millis(500);
/// The longest a side may take to notice a fault and finish.
const DEADLINE: Duration = Duration::from_secs(3);

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// How the connection must end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// Every message echoed, then a normal closure (1000) started by the client.
    Normal,
    /// Closed abnormally on both sides: 1006, no close frame (a reset, a FIN without a close
    /// frame).
    Abnormal,
    /// Both sides' keepalive times out (1011, not delivered).
    Keepalive,
    /// The client closes after the fault and its closing handshake times out; the server's
    /// keepalive times out.
    ClientCloses,
    /// The server shuts down after the fault (1001, not delivered): its closing handshake
    /// times out and `Server::shutdown` returns; the client's keepalive times out.
    ServerShutsDown,
    /// The fault may land anywhere, the closing handshake included, or nowhere: each side ends
    /// with a normal closure or 1006, whichever it saw.
    Anywhere,
}

/// How one side ended: the error its `recv` returned at the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Normal,
    Abnormal,
    Keepalive,
    CloseTimeout,
    NormalOrAbnormal,
}

impl Ending {
    /// The client's end and the server's.
    fn sides(self) -> (Outcome, Outcome) {
        match self {
            Self::Normal => (Outcome::Normal, Outcome::Normal),
            Self::Abnormal => (Outcome::Abnormal, Outcome::Abnormal),
            Self::Keepalive => (Outcome::Keepalive, Outcome::Keepalive),
            Self::ClientCloses => (Outcome::CloseTimeout, Outcome::Keepalive),
            Self::ServerShutsDown => (Outcome::Keepalive, Outcome::CloseTimeout),
            Self::Anywhere => (Outcome::NormalOrAbnormal, Outcome::NormalOrAbnormal),
        }
    }
}

#[derive(Debug, Clone)]
struct Case {
    name: String,
    faults: Faults,
    compression: bool,
    /// Keepalive pings (`ping_interval`) of the client and of the server.
    client_keepalive: bool,
    server_keepalive: bool,
    messages: Vec<Message>,
    /// After the messages, the client sends 64 KiB messages until a send fails.
    flood: bool,
    /// `wss://`, with certificates made for the test.
    tls: bool,
    ending: Ending,
    /// How long the case may run at most (a hang fails it).
    budget: Duration,
}

impl Case {
    fn new(name: impl Into<String>, faults: Faults, compression: bool, ending: Ending) -> Self {
        Self {
            name: name.into(),
            faults,
            compression,
            client_keepalive: true,
            server_keepalive: true,
            messages: messages(150_000),
            flood: false,
            tls: false,
            ending,
            budget: Duration::from_secs(20),
        }
    }
}

/// Mixed sizes around the frame length encodings; text that compresses, random binary that
/// does not; the largest `max` bytes.
fn messages(max: usize) -> Vec<Message> {
    let mut rng = fastrand::Rng::with_seed(23);
    [0, 1, 125, 126, 1000, 4096, 65535, 65536, 150_000]
        .into_iter()
        .filter(|&n| n <= max)
        .enumerate()
        .map(|(i, n)| {
            if i % 2 == 0 {
                let text: String = (0..n).map(|j| char::from(b'a' + (j % 7 + j / 97 % 5) as u8)).collect();
                Message::text(text)
            } else {
                Message::binary((0..n).map(|_| rng.u8(..)).collect::<Vec<u8>>())
            }
        })
        .collect()
}

/// A large incompressible message first: a byte count of 1000 falls inside its frame.
fn big_first() -> Vec<Message> {
    let mut rng = fastrand::Rng::with_seed(6455);
    let mut all = vec![Message::binary((0..100_000).map(|_| rng.u8(..)).collect::<Vec<u8>>())];
    all.extend(messages(4096));
    all
}

fn config(keepalive: bool) -> Config {
    let mut config = Config::default();
    config.open_timeout = Some(Duration::from_secs(5));
    config.ping_interval = keepalive.then_some(TIMEOUT);
    config.ping_timeout = Some(TIMEOUT);
    config.close_timeout = Some(TIMEOUT);
    config
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, Iterator::count)
}

/// How one side's connection ended.
#[derive(Debug)]
struct End {
    received: Vec<Message>,
    error: Option<Error>,
    at: Instant,
}

fn ended_as(end: Outcome, error: &Error) -> bool {
    match end {
        Outcome::Normal => error.is_normal_closure(),
        Outcome::Abnormal => matches!(error, Error::Closed(c) if c.code == CloseCode::ABNORMAL && !c.ok),
        Outcome::Keepalive => matches!(error, Error::Timeout(Timeout::Keepalive)),
        Outcome::CloseTimeout => matches!(error, Error::Timeout(Timeout::Close)),
        Outcome::NormalOrAbnormal => ended_as(Outcome::Normal, error) || ended_as(Outcome::Abnormal, error),
    }
}

fn assert_prefix(what: &str, received: &[Message], sent: &[Message]) {
    assert!(
        received.len() <= sent.len(),
        "{what}: {} messages received, {} sent",
        received.len(),
        sent.len()
    );
    for (i, (got, want)) in received.iter().zip(sent).enumerate() {
        assert!(got == want, "{what}: message {i} differs from the one sent");
    }
}

fn run(case: &Case) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let fds_before = open_fds();
        let metrics = tokio::runtime::Handle::current().metrics();
        let tasks_before = metrics.num_alive_tasks();
        let started = Instant::now();
        match tokio::time::timeout(case.budget, exchange(case)).await {
            Ok(line) => println!("{:<44} {line} ({:.1} s)", case.name, started.elapsed().as_secs_f64()),
            Err(_) => panic!("{}: still running after {:?}: something hangs", case.name, case.budget),
        }
        // Tasks end and sockets close a moment after the last handle goes.
        let settle = Instant::now() + Duration::from_secs(2);
        while (metrics.num_alive_tasks() != tasks_before || open_fds() != fds_before)
            && Instant::now() < settle
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(metrics.num_alive_tasks(), tasks_before, "{}: tasks left behind", case.name);
        assert_eq!(open_fds(), fds_before, "{}: file descriptors left behind", case.name);
    });
}

/// One connection through the relay: sends, receives, ends; checks the ending and its timing.
/// Returns a line for the report.
async fn exchange(case: &Case) -> String {
    let compression = case.compression.then(Compression::default);
    let (reports, mut server_end) = mpsc::unbounded_channel();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = listener.local_addr().unwrap();
    let pki = case.tls.then(|| tls_common::TestPki::new(&["localhost"]));
    let mut server = ServerBuilder::new();
    let mut client = ClientBuilder::new();
    let mut uri = "ws://127.0.0.1";
    if let Some(pki) = &pki {
        server = server.tls_pem(pki.cert_file(), pki.key_file()).unwrap();
        client = client.tls_config(pki.client_config());
        uri = "wss://localhost";
    }
    let server = server
        .config(config(case.server_keepalive))
        .compression(compression)
        .serve_listener(
            move |ws: WebSocket| {
                let reports = reports.clone();
                async move {
                    let _ = reports.send(echo(ws).await);
                }
            },
            listener,
        )
        .unwrap();
    let relay = Relay::start(upstream, case.faults).await.unwrap();
    let ws = client
        .config(config(case.client_keepalive))
        .compression(compression)
        .proxy(None)
        .connect(&format!("{uri}:{}/", relay.addr().port()))
        .await
        .unwrap();
    let (mut read, mut write) = ws.split();

    let expected = case.messages.len();
    let writer = async {
        let mut sent = Vec::new();
        // One random message (incompressible), sent again and again: the flood fills the
        // buffers fast even in a debug build.
        let mut rng = fastrand::Rng::with_seed(1);
        let flood_message = Message::binary((0..65536).map(|_| rng.u8(..)).collect::<Vec<u8>>());
        let mut flood = std::iter::from_fn(|| case.flood.then(|| flood_message.clone()));
        for message in case.messages.iter().cloned().chain(&mut flood) {
            sent.push(message.clone());
            if let Err(e) = write.send(message).await {
                return (sent, Some((e, Instant::now())), None);
            }
        }
        if case.ending != Ending::ClientCloses {
            return (sent, None, None);
        }
        relay.fired().await;
        let result = write.close(CloseCode::NORMAL, "").await;
        (sent, None, Some((result, Instant::now())))
    };
    let reader = async {
        let mut received = Vec::new();
        loop {
            if matches!(case.ending, Ending::Normal | Ending::Anywhere) && received.len() == expected {
                return End { received, error: None, at: Instant::now() };
            }
            match read.recv().await {
                Ok(message) => received.push(message),
                Err(error) => return End { received, error: Some(error), at: Instant::now() },
            }
        }
    };
    let stopper = async {
        if case.ending != Ending::ServerShutsDown {
            return (Some(server), None);
        }
        relay.fired().await;
        server.shutdown(Duration::from_secs(10)).await;
        (None, Some(Instant::now()))
    };
    let ((sent, send_error, closed), mut client, (server, stopped)) = tokio::join!(writer, reader, stopper);

    if client.error.is_none() {
        // Everything echoed: the client closes.
        let t = Instant::now();
        let closing = write.close(CloseCode::NORMAL, "").await;
        if case.ending == Ending::Normal {
            closing.unwrap();
        }
        assert!(t.elapsed() < TIMEOUT, "{}: the closing handshake took {:?}", case.name, t.elapsed());
        client.error = Some(read.recv().await.unwrap_err());
        client.at = Instant::now();
    }
    let server = {
        let end = tokio::time::timeout(DEADLINE + SLACK, server_end.recv()).await;
        if let Some(server) = server {
            server.shutdown(Duration::from_secs(1)).await;
        }
        end.unwrap_or_else(|_| panic!("{}: the server's handler did not end", case.name)).unwrap()
    };
    let fired = relay.fired_at();
    relay.shutdown().await;
    drop((read, write));

    // Whole and in order: the server got a prefix of what the client sent, the client a
    // prefix of what the server echoed.
    assert_prefix(&format!("{}: server", case.name), &server.received, &sent);
    assert_prefix(&format!("{}: client", case.name), &client.received, &server.received);
    let client_error = client.error.as_ref().unwrap();
    let server_error = server.error.as_ref().unwrap();
    let (client_ending, server_ending) = case.ending.sides();
    assert!(ended_as(client_ending, client_error), "{}: the client ended with {client_error:?}", case.name);
    assert!(ended_as(server_ending, server_error), "{}: the server ended with {server_error:?}", case.name);
    if case.ending == Ending::Normal {
        assert_eq!(server.received.len(), expected, "{}", case.name);
        assert_eq!(client.received.len(), expected, "{}", case.name);
        return format!("ok: {expected} messages echoed, closed 1000");
    }

    if case.ending == Ending::Anywhere && fired.is_none() {
        return format!("ok: fault not reached, {expected} messages echoed, closed 1000");
    }
    // The fault fired; each side's end came within the deadline after it.
    let fired = fired.unwrap_or_else(|| panic!("{}: the fault never fired", case.name));
    // In the closing handshake, a side may be done before the fault reaches its last bytes.
    let before = fired > client.at.min(server.at);
    assert!(!before || case.ending == Ending::Anywhere, "{}: a side ended before the fault", case.name);
    let mut ends = vec![("client recv", client.at), ("server", server.at)];
    if let Some((error, at)) = &send_error {
        assert!(
            ended_as(server_ending, error) || ended_as(client_ending, error),
            "{}: send failed with {error:?}",
            case.name
        );
        ends.push(("client send", *at));
    } else {
        assert!(!case.flood, "{}: the flood never failed", case.name);
    }
    if let Some((result, at)) = closed {
        let error = result.expect_err("close() through a vanished link cannot succeed");
        assert!(ended_as(Outcome::CloseTimeout, &error), "{}: close() ended with {error:?}", case.name);
        ends.push(("client close", at));
    }
    if let Some(at) = stopped {
        ends.push(("server shutdown", at));
    }
    let mut line = format!(
        "ok: {}/{} messages through, client {client_error}, server {server_error}; after the fault:",
        client.received.len(),
        sent.len()
    );
    for (what, at) in ends {
        let after = at.saturating_duration_since(fired);
        assert!(after <= DEADLINE + SLACK, "{}: {what} ended {after:?} after the fault", case.name);
        line += &format!(" {what} {:.2} s", after.as_secs_f64());
    }
    line
}

/// The server's handler: echoes until the connection ends, then says how it ended.
async fn echo(mut ws: WebSocket) -> End {
    let mut received = Vec::new();
    let error = loop {
        match ws.recv().await {
            Ok(message) => {
                received.push(message.clone());
                if let Err(e) = ws.send(message).await {
                    break e;
                }
            }
            Err(e) => break e,
        }
    };
    End { received, error: Some(error), at: Instant::now() }
}

fn both(fault: Fault) -> Faults {
    Faults { client_to_server: fault, server_to_client: fault, ..Faults::default() }
}

/// The fault on one direction: client to server (`true`) or server to client.
fn one_way(up: bool, fault: Fault) -> (Faults, &'static str) {
    if up {
        (Faults { client_to_server: fault, ..Faults::default() }, "client->server")
    } else {
        (Faults { server_to_client: fault, ..Faults::default() }, "server->client")
    }
}

fn deflate(on: bool) -> &'static str {
    if on { "deflate" } else { "plain" }
}

const JITTER: Fault = Fault::Delay { base: Duration::from_millis(5), jitter: Duration::from_millis(10) };

// ---- quick: in `cargo test` ----

#[test]
fn delay_and_jitter() {
    run(&Case::new("delay 5 ms + up to 10 ms, both ways, deflate", both(JITTER), true, Ending::Normal));
}

#[test]
fn one_byte_segments() {
    let mut case =
        Case::new("1-byte segments, both ways, plain", both(Fault::ByteSegments), false, Ending::Normal);
    case.messages = messages(4096);
    run(&case);
}

#[test]
fn reset_in_a_frame() {
    let (faults, _) = one_way(true, Fault::Reset { after: 1000 });
    let mut case = Case::new("reset in a frame, client->server, plain", faults, false, Ending::Abnormal);
    case.messages = big_first();
    run(&case);
}

#[test]
fn half_close_in_a_frame() {
    let (faults, _) = one_way(false, Fault::HalfClose { after: 1000 });
    let mut case =
        Case::new("half-close in a frame, server->client, deflate", faults, true, Ending::Abnormal);
    case.messages = big_first();
    run(&case);
}

#[test]
fn peer_vanishes() {
    let (faults, _) = one_way(true, Fault::Vanish { after: 70_000 });
    run(&Case::new("vanish, client->server, deflate", faults, true, Ending::Keepalive));
}

// ---- the matrix: `cargo xtask faults` ----

#[test]
#[ignore = "the whole matrix: cargo xtask faults"]
fn matrix_delay_and_segments() {
    for compression in [true, false] {
        let slow = Fault::Delay { base: Duration::from_millis(20), jitter: Duration::from_millis(40) };
        for (name, fault) in [("delay 5 ms + up to 10 ms", JITTER), ("delay 20 ms + up to 40 ms", slow)] {
            run(&Case::new(
                format!("{name}, both ways, {}", deflate(compression)),
                both(fault),
                compression,
                Ending::Normal,
            ));
        }
        for up in [true, false] {
            // At one byte per write the relay moves some tens of KB/s: a pong behind 130 KB
            // would take longer than the 1 s ping_timeout, so keepalive is off here.
            let (faults, dir) = one_way(up, Fault::ByteSegments);
            let name = format!("1-byte segments, {dir}, no keepalive, {}", deflate(compression));
            let mut case = Case::new(name, faults, compression, Ending::Normal);
            // Up to 65536: the 8-byte length encoding, split over eight writes.
            case.messages = messages(65536);
            case.client_keepalive = false;
            case.server_keepalive = false;
            run(&case);
        }
    }
}

#[test]
#[ignore = "the whole matrix: cargo xtask faults"]
fn matrix_reset_and_half_close() {
    for compression in [true, false] {
        for up in [true, false] {
            for (name, fault) in
                [("reset", Fault::Reset { after: 1000 }), ("half-close", Fault::HalfClose { after: 1000 })]
            {
                let (faults, dir) = one_way(up, fault);
                let mut case = Case::new(
                    format!("{name} in a frame, {dir}, {}", deflate(compression)),
                    faults,
                    compression,
                    Ending::Abnormal,
                );
                case.messages = big_first();
                run(&case);
            }
        }
    }
}

#[test]
#[ignore = "the whole matrix: cargo xtask faults"]
fn matrix_vanish() {
    for compression in [true, false] {
        for up in [true, false] {
            let (faults, dir) = one_way(up, Fault::Vanish { after: 70_000 });
            run(&Case::new(
                format!("vanish, {dir}, {}", deflate(compression)),
                faults,
                compression,
                Ending::Keepalive,
            ));
        }
        // The client keeps writing into the vanished link: its sends block, then fail.
        let (faults, _) = one_way(true, Fault::Vanish { after: 500_000 });
        let mut case = Case::new(
            format!("vanish under a flood of sends, {}", deflate(compression)),
            faults,
            compression,
            Ending::Keepalive,
        );
        case.flood = true;
        run(&case);
        // The client closes after the peer vanished: close() gives up after close_timeout.
        let (faults, _) = one_way(false, Fault::Vanish { after: 70_000 });
        let mut case = Case::new(
            format!("vanish, then the client closes, {}", deflate(compression)),
            faults,
            compression,
            Ending::ClientCloses,
        );
        case.client_keepalive = false;
        run(&case);
        // The server shuts down after the client vanished: shutdown() returns once the
        // closing handshake times out.
        let (faults, _) = one_way(true, Fault::Vanish { after: 70_000 });
        let name = format!("vanish, then the server shuts down, {}", deflate(compression));
        let mut case = Case::new(name, faults, compression, Ending::ServerShutsDown);
        case.server_keepalive = false;
        run(&case);
    }
}

/// A reset and a half-close at every byte of the first frames (header, mask, payload), then
/// every few bytes through the last message and the closing handshake and past it, each way.
#[test]
#[ignore = "the whole matrix: cargo xtask faults"]
fn matrix_reset_and_half_close_sweep() {
    let mut rng = fastrand::Rng::with_seed(7692);
    let sweep_messages = vec![
        Message::text("hello"),
        Message::binary(Vec::new()),
        Message::text("compressible ".repeat(10)),
        Message::binary((0..300).map(|_| rng.u8(..)).collect::<Vec<u8>>()),
    ];
    // Every other byte where the last message and the close frames are, with deflate or without.
    let offsets: Vec<u64> = (0..40)
        .chain((40..330).step_by(9))
        .chain((330..480).step_by(2))
        .chain((480..600).step_by(9))
        .collect();
    let started = Instant::now();
    let mut cases = 0;
    for compression in [true, false] {
        for up in [true, false] {
            for fault in [|after| Fault::Reset { after }, |after| Fault::HalfClose { after }] {
                for &after in &offsets {
                    let (faults, dir) = one_way(up, fault(after));
                    let name = format!("{:?}, {dir}, {}", fault(after), deflate(compression));
                    let mut case = Case::new(name, faults, compression, Ending::Anywhere);
                    case.messages = sweep_messages.clone();
                    run(&case);
                    cases += 1;
                }
            }
        }
    }
    println!("{cases} sweep cases in {:.1} s", started.elapsed().as_secs_f64());
}

/// A TLS client floods a link that vanishes: closing its transport means writing
/// `close_notify` behind what it still buffers, which never goes. Hung forever before the
/// driver bounded the transport's shutdown by `close_timeout`.
fn tls_vanish_under_a_flood(compression: bool) {
    let (mut faults, _) = one_way(true, Fault::Vanish { after: 500_000 });
    faults.count_from_start = true;
    let name = format!("TLS: vanish under a flood of sends, {}", deflate(compression));
    let mut case = Case::new(name, faults, compression, Ending::Keepalive);
    case.flood = true;
    case.tls = true;
    run(&case);
}

#[test]
fn tls_peer_vanishes_under_a_flood() {
    tls_vanish_under_a_flood(false);
}

/// TLS, a FIN in a record from the server: the client's read fails (no `close_notify`); its
/// side must still be shut down, or the server only learns from keepalive.
#[test]
fn tls_half_close_in_a_record() {
    let (mut faults, _) = one_way(false, Fault::HalfClose { after: 3000 });
    faults.count_from_start = true;
    let mut case = Case::new("TLS: half-close, server->client, plain", faults, false, Ending::Abnormal);
    case.tls = true;
    run(&case);
}

/// Over TLS, where closing the transport means writing `close_notify` first.
#[test]
#[ignore = "the whole matrix: cargo xtask faults"]
fn matrix_tls() {
    tls_vanish_under_a_flood(true);
    for compression in [true, false] {
        // Reset and half-close in the TLS stream, wherever they land.
        for fault in [Fault::Reset { after: 3000 }, Fault::HalfClose { after: 3000 }] {
            for up in [true, false] {
                let (mut faults, dir) = one_way(up, fault);
                faults.count_from_start = true;
                let name = format!("TLS: {fault:?}, {dir}, {}", deflate(compression));
                let mut case = Case::new(name, faults, compression, Ending::Anywhere);
                case.tls = true;
                run(&case);
            }
        }
        // A vanished peer, dropped by keepalive.
        let (mut faults, _) = one_way(false, Fault::Vanish { after: 3000 });
        faults.count_from_start = true;
        let mut case = Case::new(
            format!("TLS: vanish, {}", deflate(compression)),
            faults,
            compression,
            Ending::Keepalive,
        );
        case.tls = true;
        run(&case);
    }
}

#[test]
#[ignore = "30 s stalls: cargo xtask faults"]
fn matrix_stall_30s() {
    let stall = Fault::Stall { after: 70_000, duration: Duration::from_secs(30) };
    for compression in [true, false] {
        // Without keepalive the connection outlives the stall, nothing lost.
        let (faults, _) = one_way(true, stall);
        let mut case = Case::new(
            format!("stall 30 s, no keepalive, {}", deflate(compression)),
            faults,
            compression,
            Ending::Normal,
        );
        case.client_keepalive = false;
        case.server_keepalive = false;
        case.budget = Duration::from_secs(45);
        run(&case);
        // With it, both sides give up within ping_interval + ping_timeout + close_timeout.
        let (faults, _) = one_way(false, stall);
        run(&Case::new(
            format!("stall 30 s, keepalive, {}", deflate(compression)),
            faults,
            compression,
            Ending::Keepalive,
        ));
    }
}

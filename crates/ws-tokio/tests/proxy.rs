//! `connect` through real proxies on loopback: Debian's `tinyproxy` (HTTP CONNECT) and
//! `microsocks` (SOCKS5). A missing binary fails the test under `CI=true` and skips it (with a
//! WARNING) elsewhere; `.ci/run` installs both.
#![allow(clippy::unwrap_used)]

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ws_tokio::{ClientBuilder, Error, Message, ProxyError, Server};

#[cfg(feature = "tls")]
mod tls_common;

/// A proxy process, killed when dropped.
struct Proxy {
    child: Child,
    port: u16,
    _dir: Option<TempDir>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A directory removed when dropped (no tempfile dependency for one config file).
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `Some(path)` if `name` is installed; `None` (after a loud warning) to skip, or a panic
/// under `CI=true`, where the proxies must be there.
fn binary(name: &str) -> Option<String> {
    let path = format!("/usr/bin/{name}");
    if Path::new(&path).exists() {
        return Some(path);
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{path} is missing: CI must install it (.ci/run apt-gets tinyproxy and microsocks)");
    }
    eprintln!(
        "WARNING: {path} is missing, SKIPPING this proxy test (apt-get install -y tinyproxy microsocks)"
    );
    None
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Waits until the proxy accepts connections.
async fn wait_listening(proxy: &mut Proxy) {
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", proxy.port)).await.is_ok() {
            return;
        }
        if let Some(status) = proxy.child.try_wait().unwrap() {
            panic!("proxy exited early: {status}");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("proxy did not listen on {}", proxy.port);
}

/// tinyproxy allowing CONNECT to `connect_port` only, with Basic auth if `auth` is given.
async fn tinyproxy(connect_port: u16, auth: Option<(&str, &str)>) -> Option<Proxy> {
    let bin = binary("tinyproxy")?;
    let port = free_port();
    let dir = std::env::temp_dir().join(format!("ws-tinyproxy-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut conf = format!(
        "Port {port}\nListen 127.0.0.1\nTimeout 30\nAllow 127.0.0.1\nConnectPort {connect_port}\n\
         MaxClients 20\nLogLevel Warning\n"
    );
    if let Some((user, pass)) = auth {
        conf.push_str(&format!("BasicAuth {user} {pass}\n"));
    }
    let path = dir.join("tinyproxy.conf");
    std::fs::write(&path, conf).unwrap();
    // -d: stay in the foreground, so that the child is the proxy and dies with the test.
    let child = Command::new(bin)
        .arg("-d")
        .arg("-c")
        .arg(&path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut proxy = Proxy { child, port, _dir: Some(TempDir(dir)) };
    wait_listening(&mut proxy).await;
    Some(proxy)
}

/// microsocks, with username/password auth if `auth` is given.
async fn microsocks(auth: Option<(&str, &str)>) -> Option<Proxy> {
    let bin = binary("microsocks")?;
    let port = free_port();
    let mut command = Command::new(bin);
    command.args(["-i", "127.0.0.1", "-p", &port.to_string()]);
    if let Some((user, pass)) = auth {
        command.args(["-u", user, "-P", pass]);
    }
    let child = command.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let mut proxy = Proxy { child, port, _dir: None };
    wait_listening(&mut proxy).await;
    Some(proxy)
}

async fn echo_server() -> (Server, SocketAddr) {
    echo_server_on("127.0.0.1:0").await
}

async fn echo_server_on(bind: &str) -> (Server, SocketAddr) {
    let server = ws_tokio::serve(
        |mut ws| async move {
            while let Ok(message) = ws.recv().await {
                let _ = ws.send(message).await;
            }
        },
        bind,
    )
    .await
    .unwrap();
    let addr = server.local_addr().unwrap();
    (server, addr)
}

async fn echo_through(proxy_url: &str, uri: &str) -> Result<(), Error> {
    let mut ws = ClientBuilder::new().proxy(Some(proxy_url)).connect(uri).await?;
    ws.send("through the proxy").await?;
    assert_eq!(ws.recv().await?, Message::text("through the proxy"));
    ws.close(ws_tokio::CloseCode::NORMAL, "").await?;
    Ok(())
}

#[tokio::test]
async fn http_connect_proxy() {
    let (_server, addr) = echo_server().await;
    let Some(proxy) = tinyproxy(addr.port(), None).await else { return };
    echo_through(&format!("http://127.0.0.1:{}", proxy.port), &format!("ws://{addr}/")).await.unwrap();
    // A host name goes to the proxy as is.
    echo_through(&format!("http://localhost:{}/", proxy.port), &format!("ws://127.0.0.1:{}/", addr.port()))
        .await
        .unwrap();
}

#[tokio::test]
async fn http_connect_proxy_with_basic_auth() {
    let (_server, addr) = echo_server().await;
    let Some(proxy) = tinyproxy(addr.port(), Some(("user", "p.ss"))).await else { return };
    let uri = format!("ws://{addr}/");
    echo_through(&format!("http://user:p%2Ess@127.0.0.1:{}", proxy.port), &uri).await.unwrap();

    let e = echo_through(&format!("http://127.0.0.1:{}", proxy.port), &uri).await.unwrap_err();
    assert!(matches!(e, Error::Proxy(ProxyError::AuthRequired { sent_credentials: false, .. })), "{e:?}");
    assert!(
        e.to_string().contains("proxy requires authentication: put user:password in the proxy URL"),
        "{e}"
    );

    let e = echo_through(&format!("http://user:wrong@127.0.0.1:{}", proxy.port), &uri).await.unwrap_err();
    assert!(matches!(e, Error::Proxy(ProxyError::AuthRequired { sent_credentials: true, .. })), "{e:?}");
    assert!(!e.to_string().contains("wrong"), "{e}");
}

#[tokio::test]
async fn http_connect_proxy_forbids_a_port() {
    let (_server, addr) = echo_server().await;
    // CONNECT allowed to another port only: tinyproxy answers 403.
    let Some(proxy) = tinyproxy(addr.port().wrapping_add(1).max(1), None).await else { return };
    let e = echo_through(&format!("http://127.0.0.1:{}", proxy.port), &format!("ws://{addr}/"))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Proxy(ProxyError::Forbidden { .. })), "{e:?}");
    assert!(e.to_string().contains("403"), "{e}");
}

#[tokio::test]
async fn unreachable_proxy_and_unsupported_scheme() {
    let port = free_port(); // nothing listens there
    let e = echo_through(&format!("http://127.0.0.1:{port}"), "ws://127.0.0.1:9/").await.unwrap_err();
    assert!(matches!(e, Error::Proxy(ProxyError::Unreachable { .. })), "{e:?}");
    assert!(e.to_string().contains(&format!("cannot reach proxy 127.0.0.1:{port}")), "{e}");
    let e = echo_through("socks4://127.0.0.1:1080", "ws://127.0.0.1:9/").await.unwrap_err();
    assert!(matches!(e, Error::Proxy(ProxyError::UnsupportedScheme { .. })), "{e:?}");
    assert!(e.to_string().contains("use http://, socks5:// or socks5h://"), "{e}");
}

#[tokio::test]
async fn socks5_proxy() {
    // Bound where "localhost" resolves first, which is where both resolvers connect.
    let (_server, addr) = echo_server_on("localhost:0").await;
    let Some(proxy) = microsocks(None).await else { return };
    let uri = format!("ws://localhost:{}/", addr.port());
    // socks5h: microsocks resolves "localhost"; socks5: resolved here, an address goes.
    echo_through(&format!("socks5h://127.0.0.1:{}", proxy.port), &uri).await.unwrap();
    echo_through(&format!("socks5://127.0.0.1:{}", proxy.port), &uri).await.unwrap();
    echo_through(&format!("socks5h://127.0.0.1:{}", proxy.port), &format!("ws://{addr}/")).await.unwrap();

    // The proxy cannot reach the destination: nothing listens there.
    let closed = free_port();
    let e =
        echo_through(&format!("socks5h://127.0.0.1:{}", proxy.port), &format!("ws://127.0.0.1:{closed}/"))
            .await
            .unwrap_err();
    assert!(matches!(e, Error::Proxy(ProxyError::SocksConnect { .. })), "{e:?}");
    assert!(e.to_string().contains(&format!("cannot connect to 127.0.0.1:{closed}")), "{e}");
}

#[tokio::test]
async fn socks5_proxy_with_auth() {
    let (_server, addr) = echo_server().await;
    let Some(proxy) = microsocks(Some(("user", "secret"))).await else { return };
    let uri = format!("ws://{addr}/");
    echo_through(&format!("socks5h://user:secret@127.0.0.1:{}", proxy.port), &uri).await.unwrap();

    let e = echo_through(&format!("socks5h://user:wrong@127.0.0.1:{}", proxy.port), &uri).await.unwrap_err();
    assert!(matches!(e, Error::Proxy(ProxyError::SocksAuth { sent_credentials: true, .. })), "{e:?}");
    assert!(e.to_string().contains("refused the credentials"), "{e}");

    let e = echo_through(&format!("socks5h://127.0.0.1:{}", proxy.port), &uri).await.unwrap_err();
    assert!(matches!(e, Error::Proxy(ProxyError::SocksAuth { sent_credentials: false, .. })), "{e:?}");
    assert!(e.to_string().contains("requires authentication: put user:password in the proxy URL"), "{e}");
}

/// The environment's proxy, used by `connect()` by default: checked in a child process (this
/// test binary again, running `env_child` alone) so that no test mutates this process's
/// environment. The proxy wants credentials the child lacks: an auth error proves the proxy
/// was used, success with `no_proxy` proves the bypass.
#[tokio::test]
async fn environment_proxy_and_no_proxy() {
    let (_server, addr) = echo_server().await;
    let Some(proxy) = tinyproxy(addr.port(), Some(("user", "pw"))).await else { return };
    // Async: the echo server runs on this test's runtime while the child connects.
    let run = async |vars: &[(&str, String)], expect: &str| {
        let mut command = tokio::process::Command::new(std::env::current_exe().unwrap());
        command.args(["--exact", "env_child", "--include-ignored", "--nocapture", "--test-threads=1"]);
        for name in
            ["http_proxy", "https_proxy", "ws_proxy", "wss_proxy", "all_proxy", "socks_proxy", "no_proxy"]
        {
            command.env_remove(name).env_remove(name.to_uppercase());
        }
        command.env("WS_TEST_URI", format!("ws://{addr}/")).env("WS_TEST_EXPECT", expect);
        for (name, value) in vars {
            command.env(name, value);
        }
        let output = command.output().await.unwrap();
        let text =
            format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        assert!(output.status.success() && text.contains("1 passed"), "{vars:?} expecting {expect}:\n{text}");
    };
    let without = format!("http://127.0.0.1:{}", proxy.port);
    let with = format!("http://user:pw@127.0.0.1:{}", proxy.port);
    run(&[("http_proxy", without.clone())], "auth").await;
    run(&[("HTTP_PROXY", without.clone())], "auth").await;
    run(&[("https_proxy", without.clone())], "auth").await;
    run(&[("http_proxy", with.clone())], "ok").await;
    run(&[("all_proxy", with.clone())], "ok").await;
    run(&[("http_proxy", without.clone()), ("no_proxy", "localhost,127.0.0.1".into())], "ok").await;
    run(&[("http_proxy", without.clone()), ("NO_PROXY", "*".into())], "ok").await;
    run(&[("http_proxy", without), ("no_proxy", format!("127.0.0.1:{}", addr.port()))], "ok").await;
}

#[tokio::test]
#[ignore = "run by environment_proxy_and_no_proxy in a child process with its own environment"]
async fn env_child() {
    // Run directly (`--include-ignored`), it has nothing to check.
    let Ok(uri) = std::env::var("WS_TEST_URI") else { return };
    let result = ws_tokio::connect(&uri).await;
    match std::env::var("WS_TEST_EXPECT").unwrap().as_str() {
        "ok" => {
            let mut ws = result.unwrap();
            ws.send("env").await.unwrap();
            assert_eq!(ws.recv().await.unwrap(), Message::text("env"));
        }
        _ => {
            let e = result.err().unwrap();
            assert!(matches!(e, Error::Proxy(ProxyError::AuthRequired { .. })), "{e:?}");
        }
    }
}

#[tokio::test]
async fn an_http_client_at_a_socks_proxy() {
    let (_server, addr) = echo_server().await;
    let uri = format!("ws://{addr}/");
    if let Some(socks) = microsocks(None).await {
        let e = echo_through(&format!("http://127.0.0.1:{}", socks.port), &uri).await.unwrap_err();
        assert!(matches!(e, Error::Proxy(ProxyError::Malformed { .. })), "{e:?}");
        assert!(e.to_string().contains("for a SOCKS proxy write socks5h://"), "{e}");
    }
    // (socks5h:// to tinyproxy cannot be tested the same way: tinyproxy waits for a request
    // line that the SOCKS greeting never ends, so the client sees its open_timeout.)
}

/// `wss://` through both kinds of proxy: TLS runs end to end inside the tunnel (the proxy
/// relays ciphertext) and the certificate is checked against the URI's host, not the proxy's.
#[cfg(feature = "tls")]
#[tokio::test]
async fn wss_through_http_connect_and_socks5_proxies() {
    let pki = tls_common::TestPki::new(&["localhost"]);
    // Bound where "localhost" resolves first, which is where the proxies connect.
    let server = ws_tokio::ServerBuilder::new()
        .tls_pem(pki.cert_file(), pki.key_file())
        .unwrap()
        .serve(
            |mut ws| async move {
                while let Ok(message) = ws.recv().await {
                    let _ = ws.send(message).await;
                }
            },
            "localhost:0",
        )
        .await
        .unwrap();
    let port = server.local_addr().unwrap().port();
    let Some(http) = tinyproxy(port, None).await else { return };
    let Some(socks) = microsocks(None).await else { return };
    let uri = format!("wss://localhost:{port}/");
    for proxy_url in
        [format!("http://127.0.0.1:{}", http.port), format!("socks5h://127.0.0.1:{}", socks.port)]
    {
        let mut ws = ClientBuilder::new()
            .proxy(Some(&proxy_url))
            .tls_config(pki.client_config())
            .connect(&uri)
            .await
            .unwrap_or_else(|e| panic!("{proxy_url}: {e}"));
        ws.send("TLS in the tunnel").await.unwrap();
        assert_eq!(ws.recv().await.unwrap(), Message::text("TLS in the tunnel"));
        ws.close(ws_tokio::CloseCode::NORMAL, "").await.unwrap();
    }
    // The certificate is still checked through the tunnel: a client trusting another CA refuses it.
    let other = tls_common::TestPki::new(&["localhost"]);
    let e = ClientBuilder::new()
        .proxy(Some(&format!("socks5h://127.0.0.1:{}", socks.port)))
        .tls_config(other.client_config())
        .connect(&uri)
        .await
        .unwrap_err();
    assert!(matches!(&e, Error::Tls { message, .. } if message.contains("unknown issuer")), "{e:?}");
    server.shutdown(Duration::from_secs(1)).await;
}

//! TLS with rustls (the `tls` feature): the client's default configuration (the platform's
//! trust store, or `SSL_CERT_FILE` / `SSL_CERT_DIR`), the one step that wraps a TCP stream on
//! either side, server configurations from PEM files, and the one place rustls errors become
//! an [`Error`].

use std::io;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{CertificateError, ClientConfig, ServerConfig};
use tokio::net::TcpStream;
use tokio_rustls::{TlsAcceptor, TlsConnector, TlsStream};

use crate::error::{Error, Result};

/// ALPN: WebSocket's opening handshake is HTTP/1.1 (a server that also speaks h2 must not
/// pick it for this connection).
const ALPN_HTTP11: &[u8] = b"http/1.1";

/// The crypto provider every configuration built here uses: `ring` (named, not the process
/// default, so that another crate enabling a second provider cannot make building fail).
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The client configuration `connect` uses when none was given: the platform's trust roots
/// (or those of `SSL_CERT_FILE` / `SSL_CERT_DIR` when set, as curl and Python do), ALPN
/// `http/1.1`. Built once per process: loading the roots parses a few hundred kilobytes.
pub(crate) fn default_client_config() -> Result<Arc<ClientConfig>> {
    static CONFIG: OnceLock<std::result::Result<Arc<ClientConfig>, String>> = OnceLock::new();
    CONFIG
        .get_or_init(build_default_client_config)
        .clone()
        .map_err(|message| Error::Tls { message, source: "no trust roots".into() })
}

fn build_default_client_config() -> std::result::Result<Arc<ClientConfig>, String> {
    let loaded = rustls_native_certs::load_native_certs();
    let mut roots = rustls::RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(loaded.certs);
    if added == 0 {
        let why = loaded.errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
        let from = match (std::env::var_os("SSL_CERT_FILE"), std::env::var_os("SSL_CERT_DIR")) {
            (None, None) => "the platform's trust store".to_owned(),
            (file, dir) => format!("SSL_CERT_FILE={file:?} / SSL_CERT_DIR={dir:?}"),
        };
        return Err(format!(
            "no trusted root certificate could be loaded from {from}{}: install the CA \
             certificates (e.g. Debian's ca-certificates), set SSL_CERT_FILE, or use \
             ClientBuilder::tls_config",
            if why.is_empty() { String::new() } else { format!(" ({why})") }
        ));
    }
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![ALPN_HTTP11.to_vec()];
    Ok(Arc::new(config))
}

/// Runs the client side of the TLS handshake on `tcp` (a direct connection or a proxy's
/// tunnel) for `host`, which is sent as SNI (unless it is an IP address) and checked against
/// the certificate. `config` is the one given to `ClientBuilder::tls_config`, if any.
pub(crate) async fn client_handshake(
    tcp: TcpStream,
    host: &str,
    config: Option<&Arc<ClientConfig>>,
) -> Result<TlsStream<TcpStream>> {
    let config = match config {
        Some(config) => config.clone(),
        None => default_client_config()?,
    };
    let name = ServerName::try_from(host.to_owned()).map_err(|e| Error::Tls {
        message: format!("{host} is not a valid TLS server name"),
        source: Box::new(e),
    })?;
    let stream =
        TlsConnector::from(config).connect(name, tcp).await.map_err(|e| handshake_error(e, host, true))?;
    Ok(TlsStream::Client(stream))
}

/// Runs the server side of the TLS handshake on an accepted connection.
pub(crate) async fn server_handshake(
    tcp: TcpStream,
    config: &Arc<ServerConfig>,
) -> Result<TlsStream<TcpStream>> {
    let peer = tcp.peer_addr().map_or_else(|_| "the client".to_owned(), |a| a.to_string());
    let stream =
        TlsAcceptor::from(config.clone()).accept(tcp).await.map_err(|e| handshake_error(e, &peer, false))?;
    Ok(TlsStream::Server(stream))
}

/// A failed TLS handshake with `peer` as an [`Error::Tls`] that says what happened and what to
/// try; the rustls error (or the I/O error, when the peer hung up) is its source. The advice
/// about certificates is for clients (`client`); a server's log gets rustls' own words.
fn handshake_error(e: io::Error, peer: &str, client: bool) -> Error {
    let Some(tls) = e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) else {
        let message = match e.kind() {
            io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset if client => format!(
                "{peer} closed the connection during the TLS handshake (does it speak TLS on this \
                 port? for a plain server use ws://)"
            ),
            _ => format!("TLS handshake with {peer} failed: {e}"),
        };
        return Error::Tls { message, source: Box::new(e) };
    };
    let message = match tls {
        _ if !client => format!("TLS handshake with {peer} failed: {tls}"),
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => format!(
            "certificate not trusted (unknown issuer) for {peer}: set SSL_CERT_FILE to its CA, or use \
             ClientBuilder::tls_config"
        ),
        rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => format!(
            "certificate not valid for {peer} (wrong host name): connect with a name the certificate \
             covers, or fix the server's certificate"
        ),
        rustls::Error::InvalidCertificate(
            CertificateError::Expired
            | CertificateError::ExpiredContext { .. }
            | CertificateError::NotValidYet
            | CertificateError::NotValidYetContext { .. },
        ) => format!(
            "certificate of {peer} is expired or not yet valid ({tls}): renew it, or check this \
             machine's clock"
        ),
        rustls::Error::InvalidCertificate(_) => format!("certificate of {peer} refused: {tls}"),
        rustls::Error::AlertReceived(alert) => format!(
            "{peer} refused the TLS handshake ({alert:?} alert): it may not trust our client \
             certificate, or want one"
        ),
        _ => format!("TLS handshake with {peer} failed: {tls}"),
    };
    let source = e.into_inner().unwrap_or_else(|| "TLS handshake failed".into());
    Error::Tls { message, source }
}

/// A server configuration from PEM files: the certificate chain (leaf first) and its private
/// key (PKCS#8, PKCS#1 or SEC1), with ALPN `http/1.1` and no client authentication.
pub(crate) fn server_config_from_pem(cert_chain: &Path, key: &Path) -> io::Result<Arc<ServerConfig>> {
    let invalid = |path: &Path, what: String| {
        io::Error::new(io::ErrorKind::InvalidData, format!("{}: {what}", path.display()))
    };
    let pem_error = |path: &Path, e: rustls::pki_types::pem::Error| match e {
        rustls::pki_types::pem::Error::Io(e) => io::Error::new(e.kind(), format!("{}: {e}", path.display())),
        e => invalid(path, e.to_string()),
    };
    let certs = CertificateDer::pem_file_iter(cert_chain)
        .map_err(|e| pem_error(cert_chain, e))?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| pem_error(cert_chain, e))?;
    if certs.is_empty() {
        return Err(invalid(cert_chain, "no PEM certificate in this file".into()));
    }
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| pem_error(key, e))?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?
        .with_no_client_auth()
        .with_single_cert(certs, key_der)
        .map_err(|e| invalid(key, format!("cannot serve {} with this key: {e}", cert_chain.display())))?;
    config.alpn_protocols = vec![ALPN_HTTP11.to_vec()];
    Ok(Arc::new(config))
}

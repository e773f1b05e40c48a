//! TLS options, in one place: `--insecure` for `ws connect`, `--tls-cert/--tls-key` for `ws serve`.
//! wss:// itself (trust roots, SNI, errors) is ws-tokio's; this only adjusts its settings.

use std::path::PathBuf;
use std::sync::Arc;

use ws_tokio::rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use ws_tokio::rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use ws_tokio::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use ws_tokio::rustls::{self, DigitallySignedStruct, SignatureScheme};
use ws_tokio::{ClientBuilder, ServerBuilder};

/// Applies `--insecure` (accept any server certificate) to a client.
pub(crate) fn client(builder: ClientBuilder, insecure: bool) -> Result<ClientBuilder, String> {
    if !insecure {
        return Ok(builder);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("cannot set up TLS: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(builder.tls_config(Arc::new(config)))
}

/// Applies `--tls-cert/--tls-key` (PEM files) to a server.
pub(crate) fn server(
    builder: ServerBuilder,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
) -> Result<ServerBuilder, String> {
    match (cert, key) {
        (None, None) => Ok(builder),
        (Some(cert), Some(key)) => builder.tls_pem(&cert, &key).map_err(|e| {
            format!(
                "cannot use --tls-cert {} --tls-key {}: {e}; give a PEM certificate chain and its PEM private key",
                cert.display(),
                key.display()
            )
        }),
        _ => Err("--tls-cert and --tls-key go together: give both PEM files".into()),
    }
}

/// The scheme clients use to reach a server.
pub(crate) fn scheme(tls: bool) -> &'static str {
    if tls { "wss" } else { "ws" }
}

/// `--insecure`: any certificate, any name, is accepted; the handshake signatures are still
/// checked (the connection is encrypted, just not authenticated).
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

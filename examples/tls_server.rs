//! Echoes every message back over TLS (`wss://`).
//!
//! `cargo run --release --example tls_server -- [ADDR] [--cert CHAIN.pem --key KEY.pem]
//! [--ca-out CA.pem] [--no-compression]` (default 127.0.0.1:8765).
//!
//! With `--cert` and `--key` it serves that certificate chain (e.g. Let's Encrypt's
//! `fullchain.pem` and `privkey.pem`). Without them it makes a throwaway CA and a certificate
//! for `localhost` and `127.0.0.1` signed by it, and writes the CA to `--ca-out` (default
//! `ws-tls-example-ca.pem` in the temporary directory) for clients to trust:
//!
//! ```text
//! cargo run --example tls_server
//! SSL_CERT_FILE=/tmp/ws-tls-example-ca.pem cargo run --example client -- wss://localhost:8765
//! python -m websockets wss://localhost:8765   # with SSL_CERT_FILE set the same way
//! ```

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ws_tokio::{ServerBuilder, rustls};

#[tokio::main]
async fn main() -> Result<(), common::Report> {
    let mut addr = "127.0.0.1:8765".to_owned();
    let (mut cert, mut key, mut ca_out) = (None, None, None);
    let mut builder = ServerBuilder::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--cert" => cert = Some(args.next().ok_or("--cert needs a file")?),
            "--key" => key = Some(args.next().ok_or("--key needs a file")?),
            "--ca-out" => ca_out = Some(PathBuf::from(args.next().ok_or("--ca-out needs a file")?)),
            "--no-compression" => builder = builder.compression(None),
            _ => addr = arg,
        }
    }
    let builder = match (cert, key) {
        (Some(cert), Some(key)) => builder.tls_pem(cert, key)?,
        (None, None) => {
            let ca_out = ca_out.unwrap_or_else(|| std::env::temp_dir().join("ws-tls-example-ca.pem"));
            let (config, ca_pem) = throwaway_certificates()?;
            std::fs::write(&ca_out, ca_pem)?;
            eprintln!(
                "tls_server: a throwaway CA signed this certificate; trust it with SSL_CERT_FILE={}",
                ca_out.display()
            );
            builder.tls(config)
        }
        _ => return Err("give both --cert and --key, or neither".into()),
    };
    let server = builder
        .serve(
            |mut ws| async move {
                while let Ok(message) = ws.recv().await {
                    if ws.send(message).await.is_err() {
                        break;
                    }
                }
            },
            addr.as_str(),
        )
        .await?;
    eprintln!("tls_server listening on wss://{}", server.local_addr().map_or(addr, |a| a.to_string()));
    tokio::signal::ctrl_c().await?;
    server.shutdown(Duration::from_secs(5)).await;
    Ok(())
}

/// A CA made for this run and a certificate for localhost signed by it: the server's TLS
/// configuration, and the CA in PEM for clients.
fn throwaway_certificates() -> Result<(Arc<rustls::ServerConfig>, String), common::Report> {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
    };
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.distinguished_name.push(DnType::CommonName, "ws tls_server example CA");
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate()?)?;

    let mut leaf = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])?;
    leaf.distinguished_name.push(DnType::CommonName, "localhost");
    // Python 3.13's default context (VERIFY_X509_STRICT) wants it on certificates a CA signed.
    leaf.use_authority_key_identifier_extension = true;
    let key = KeyPair::generate()?;
    let cert = leaf.signed_by(&key, &ca)?;

    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone(), ca.der().clone()], key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((Arc::new(config), ca.pem()))
}

//! Certificates made at test time: a CA of our own and a server certificate it signed, as PEM
//! files in a fresh directory, and the client and server TLS settings that use them.
#![allow(dead_code, clippy::unwrap_used)] // each test binary uses some of them

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose};
use ws_tokio::rustls;

/// A test CA and a server certificate for `names`, written to `dir` as `ca.pem`, `cert.pem`
/// (the server's chain) and `key.pem`.
pub(crate) struct TestPki {
    pub(crate) dir: PathBuf,
    pub(crate) ca_pem: String,
}

impl TestPki {
    pub(crate) fn new(names: &[&str]) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("ws-tls-test-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();

        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        // Its own name: a CA is looked up by name, so two test CAs must not share one.
        ca.distinguished_name.push(DnType::CommonName, format!("ws test CA {n}"));
        let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();

        let mut leaf =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
        leaf.distinguished_name.push(DnType::CommonName, names[0]);
        leaf.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate().unwrap();
        let cert = leaf.signed_by(&key, &ca).unwrap();

        std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
        std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
        std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
        Self { dir, ca_pem: ca.pem() }
    }

    pub(crate) fn ca_file(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    pub(crate) fn cert_file(&self) -> PathBuf {
        self.dir.join("cert.pem")
    }

    pub(crate) fn key_file(&self) -> PathBuf {
        self.dir.join("key.pem")
    }

    /// A client configuration that trusts this CA only.
    pub(crate) fn client_config(&self) -> Arc<rustls::ClientConfig> {
        client_config_trusting(&self.ca_file())
    }
}

impl Drop for TestPki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A client configuration (ring provider) whose only root is the CA in `ca_file`.
pub(crate) fn client_config_trusting(ca_file: &Path) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_file(ca_file).unwrap()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

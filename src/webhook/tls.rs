//! The serving certificate, swappable at run time: rotation and reloads replace it for new
//! handshakes without a restart, and `/readyz` reports ready only once one is loaded.

use std::sync::{Arc, RwLock};

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("no certificate in the PEM data")]
    NoCertificate,
    #[error("no private key in the PEM data")]
    NoKey,
    #[error("invalid PEM: {0}")]
    Pem(#[from] std::io::Error),
    #[error("unusable private key: {0}")]
    Key(#[from] rustls::Error),
}

#[derive(Debug, Default)]
pub struct ServingCert {
    current: RwLock<Option<Arc<CertifiedKey>>>,
}

impl ServingCert {
    /// Replaces the certificate; returns its expiry (seconds since the epoch) when readable.
    pub fn set_pem(&self, cert_pem: &str, key_pem: &str) -> Result<(), TlsError> {
        let certs =
            rustls_pemfile::certs(&mut cert_pem.as_bytes()).collect::<Result<Vec<_>, _>>()?;
        if certs.is_empty() {
            return Err(TlsError::NoCertificate);
        }
        let key = rustls_pemfile::private_key(&mut key_pem.as_bytes())?.ok_or(TlsError::NoKey)?;
        let provider = rustls::crypto::ring::default_provider();
        let certified = CertifiedKey::from_der(certs, key, &provider)?;
        let mut slot = self.current.write().unwrap_or_else(|p| p.into_inner());
        *slot = Some(Arc::new(certified));
        Ok(())
    }

    pub fn is_loaded(&self) -> bool {
        self.current.read().map(|c| c.is_some()).unwrap_or(false)
    }
}

impl ResolvesServerCert for ServingCert {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current.read().ok().and_then(|c| c.clone())
    }
}

/// TLS 1.2 and 1.3 with the ring provider, ALPN h2 and http/1.1, certificate from `cert`.
pub fn server_config(cert: Arc<ServingCert>) -> Result<rustls::ServerConfig, TlsError> {
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
    .with_no_client_auth()
    .with_cert_resolver(cert);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

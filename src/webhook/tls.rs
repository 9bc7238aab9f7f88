//! The serving certificate, swappable at run time: rotation and reloads replace it for new
//! handshakes without a restart (connections already open keep theirs), and `/readyz` reports
//! ready only once one is loaded.

use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("no certificate in the PEM data")]
    NoCertificate,
    #[error("no private key in the PEM data")]
    NoKey,
    #[error("invalid PEM: {0}")]
    Pem(#[from] pem::Error),
    /// Also a key that does not belong to the certificate (e.g. a pair caught half-written).
    #[error("unusable certificate or private key: {0}")]
    Key(#[from] rustls::Error),
    #[error("unreadable certificate: {0}")]
    Certificate(String),
    #[error("client CA: {0}")]
    ClientCa(String),
}

struct Loaded {
    key: Arc<CertifiedKey>,
    not_after: SystemTime,
}

#[derive(Default)]
pub struct ServingCert {
    current: RwLock<Option<Loaded>>,
}

impl std::fmt::Debug for ServingCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServingCert")
            .field("not_after", &self.not_after())
            .finish()
    }
}

impl ServingCert {
    /// Replaces the certificate (chain first, leaf first) and its key; both PEM. The key must
    /// belong to the leaf: a mismatched pair is refused and the previous certificate stays.
    pub fn set_pem(&self, cert_pem: &str, key_pem: &str) -> Result<(), TlsError> {
        let certs =
            CertificateDer::pem_slice_iter(cert_pem.as_bytes()).collect::<Result<Vec<_>, _>>()?;
        let Some(leaf) = certs.first() else {
            return Err(TlsError::NoCertificate);
        };
        let not_after = not_after_of(leaf.as_ref())?;
        let key = match PrivateKeyDer::from_pem_slice(key_pem.as_bytes()) {
            Ok(key) => key,
            Err(pem::Error::NoItemsFound) => return Err(TlsError::NoKey),
            Err(e) => return Err(e.into()),
        };
        let provider = rustls::crypto::ring::default_provider();
        let certified = CertifiedKey::from_der(certs, key, &provider)?;
        let mut slot = self.current.write().unwrap_or_else(|p| p.into_inner());
        *slot = Some(Loaded {
            key: Arc::new(certified),
            not_after,
        });
        Ok(())
    }

    pub fn is_loaded(&self) -> bool {
        self.current.read().map(|c| c.is_some()).unwrap_or(false)
    }

    /// When the served certificate expires (None before one is loaded).
    pub fn not_after(&self) -> Option<SystemTime> {
        self.current
            .read()
            .ok()
            .and_then(|c| c.as_ref().map(|l| l.not_after))
    }
}

/// The notAfter of a DER certificate.
pub fn not_after_of(der: &[u8]) -> Result<SystemTime, TlsError> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| TlsError::Certificate(e.to_string()))?;
    let seconds = cert.validity().not_after.timestamp();
    Ok(UNIX_EPOCH + Duration::from_secs(u64::try_from(seconds).unwrap_or(0)))
}

impl ResolvesServerCert for ServingCert {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current
            .read()
            .ok()
            .and_then(|c| c.as_ref().map(|l| l.key.clone()))
    }
}

/// TLS 1.2 and 1.3 with the ring provider, ALPN h2 and http/1.1, certificate from `cert`.
pub fn server_config(
    cert: Arc<ServingCert>,
    client_ca_pem: Option<&[u8]>,
) -> Result<rustls::ServerConfig, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?;
    let builder = match client_ca_pem {
        None => builder.with_no_client_auth(),
        Some(pem) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(pem) {
                roots
                    .add(cert.map_err(|e| TlsError::ClientCa(e.to_string()))?)
                    .map_err(|e| TlsError::ClientCa(e.to_string()))?;
            }
            if roots.is_empty() {
                return Err(TlsError::ClientCa("no certificate in the file".into()));
            }
            // Asked for, verified when sent, but not required by the handshake: the kubelet's
            // probes of /healthz and /readyz present none. The review endpoints refuse callers
            // without one (server.rs).
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .allow_unauthenticated()
            .build()
            .map_err(|e| TlsError::ClientCa(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_cert_resolver(cert);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::certs::{Ca, SERVING_VALIDITY};

    #[test]
    fn a_loaded_certificate_reports_its_expiry() {
        let cert = ServingCert::default();
        assert!(!cert.is_loaded());
        assert_eq!(cert.not_after(), None);
        let pair = Ca::generate("t")
            .unwrap()
            .sign_serving(&["localhost".into()])
            .unwrap();
        cert.set_pem(&pair.cert_pem, &pair.key_pem).unwrap();
        assert!(cert.is_loaded());
        let expiry = cert.not_after().unwrap();
        // X.509 keeps whole seconds.
        let diff = pair
            .not_after
            .duration_since(expiry)
            .unwrap_or_else(|e| e.duration());
        assert!(diff < Duration::from_secs(2), "{diff:?}");
        assert!(expiry > SystemTime::now() + SERVING_VALIDITY - Duration::from_secs(60));
    }

    #[test]
    fn a_key_of_another_certificate_is_refused_and_the_old_pair_stays() {
        let ca = Ca::generate("t").unwrap();
        let first = ca.sign_serving(&["a".into()]).unwrap();
        let second = ca.sign_serving(&["b".into()]).unwrap();
        let cert = ServingCert::default();
        cert.set_pem(&first.cert_pem, &first.key_pem).unwrap();
        let before = cert.not_after();
        let err = cert.set_pem(&second.cert_pem, &first.key_pem).unwrap_err();
        assert!(matches!(err, TlsError::Key(_)), "{err}");
        assert!(matches!(
            cert.set_pem("", &first.key_pem),
            Err(TlsError::NoCertificate)
        ));
        assert!(matches!(
            cert.set_pem(&first.cert_pem, ""),
            Err(TlsError::NoKey)
        ));
        assert_eq!(cert.not_after(), before);
    }
}

//! TLS clients that trust given CAs: the reconciler's health checks of tenants' S3 servers and the
//! conformance suite's connections to a webhook. ring is the one crypto provider of the binary.

use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::{ClientConfig, RootCertStore, SupportedProtocolVersion};

/// Adds every certificate of `pem` to `roots`; says which part could not be read or added.
pub fn add_pem(roots: &mut RootCertStore, pem: &[u8]) -> Result<(), String> {
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|e| format!("bad PEM: {e}"))?;
        roots.add(cert).map_err(|e| format!("bad CA: {e}"))?;
    }
    Ok(())
}

/// A client configuration trusting `roots` only, speaking `versions` (every safe one when `None`)
/// and offering `alpn`.
pub fn client_config(
    roots: RootCertStore,
    versions: Option<&[&'static SupportedProtocolVersion]>,
    alpn: &[&[u8]],
) -> Result<ClientConfig, rustls::Error> {
    let builder =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()));
    let builder = match versions {
        Some(v) => builder.with_protocol_versions(v)?,
        None => builder.with_safe_default_protocol_versions()?,
    };
    let mut config = builder.with_root_certificates(roots).with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

/// A client configuration that accepts exactly the certificate `pinned` from the server (DER),
/// whoever signed it, and checks the handshake's signature with its key. For a server whose
/// certificate Secret holds no CA (`kubectl create secret tls`, an ACME issuer's): the servers
/// trust each other by that very certificate, and so does this client, with nothing else.
pub fn pinned_config(pinned: CertificateDer<'static>) -> Result<ClientConfig, rustls::Error> {
    pinned_or_rooted_config(vec![pinned], RootCertStore::empty())
}

/// A client configuration that accepts any of the certificates `pinned`, or one that `roots`
/// sign for the name asked: servers that present one of several certificates (by SNI, some
/// pinned, some CA-signed).
pub fn pinned_or_rooted_config(
    pinned: Vec<CertificateDer<'static>>,
    roots: RootCertStore,
) -> Result<ClientConfig, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let rooted = if roots.is_empty() {
        None
    } else {
        Some(
            rustls::client::WebPkiServerVerifier::builder_with_provider(
                Arc::new(roots),
                provider.clone(),
            )
            .build()
            .map_err(|e| rustls::Error::General(e.to_string()))?,
        )
    };
    let verifier = Arc::new(Pinned {
        certs: pinned,
        rooted,
        algorithms: provider.signature_verification_algorithms,
    });
    Ok(ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth())
}

/// The first certificate of `pem`, for [`pinned_config`].
pub fn first_certificate(pem: &[u8]) -> Result<CertificateDer<'static>, String> {
    CertificateDer::pem_slice_iter(pem)
        .next()
        .ok_or_else(|| "no certificate in the PEM".to_owned())?
        .map_err(|e| format!("bad PEM: {e}"))
}

#[derive(Debug)]
struct Pinned {
    certs: Vec<CertificateDer<'static>>,
    /// Certificates signed by these CAs are accepted too.
    rooted: Option<Arc<rustls::client::WebPkiServerVerifier>>,
    algorithms: rustls::crypto::WebPkiSupportedAlgorithms,
}

impl rustls::client::danger::ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &rustls::pki_types::ServerName<'_>,
        ocsp_response: &[u8],
        now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        if self.certs.iter().any(|c| c.as_ref() == end_entity.as_ref()) {
            return Ok(rustls::client::danger::ServerCertVerified::assertion());
        }
        match &self.rooted {
            Some(rooted) => rooted.verify_server_cert(
                end_entity,
                intermediates,
                server_name,
                ocsp_response,
                now,
            ),
            None => Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            )),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::PrivateKeyDer;

    /// A TLS server on 127.0.0.1 presenting `cert_pem`; the result of one handshake with
    /// `client`, asking for `name`.
    async fn handshake(
        cert_pem: &str,
        key_pem: &str,
        client: ClientConfig,
        name: &'static str,
    ) -> Result<(), String> {
        let cert = first_certificate(cert_pem.as_bytes()).unwrap();
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap();
        let server = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
        let served = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let _ = acceptor.accept(tcp).await;
        });
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from(name).unwrap();
        let result = tokio_rustls::TlsConnector::from(Arc::new(client))
            .connect(name, tcp)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string());
        served.abort();
        result
    }

    #[tokio::test]
    async fn a_pinned_client_accepts_that_certificate_and_no_other() {
        let ca = crate::certs::Ca::generate("a private CA").unwrap();
        let served = ca.sign_serving(&["s3.example".to_owned()]).unwrap();
        let other = ca.sign_serving(&["s3.example".to_owned()]).unwrap();
        let pin = |pem: &str| pinned_config(first_certificate(pem.as_bytes()).unwrap()).unwrap();
        handshake(
            &served.cert_pem,
            &served.key_pem,
            pin(&served.cert_pem),
            "elsewhere.example",
        )
        .await
        .expect("the pinned certificate, whatever name and CA");
        let refused = handshake(
            &served.cert_pem,
            &served.key_pem,
            pin(&other.cert_pem),
            "s3.example",
        )
        .await;
        assert!(
            refused.is_err(),
            "another certificate of the same CA: {refused:?}"
        );
        // Trusting the certificate as a CA is no way to accept it: its issuer is not itself.
        let mut roots = RootCertStore::empty();
        add_pem(&mut roots, served.cert_pem.as_bytes()).unwrap();
        let as_root = handshake(
            &served.cert_pem,
            &served.key_pem,
            client_config(roots, None, &[]).unwrap(),
            "s3.example",
        )
        .await;
        assert!(as_root.is_err(), "{as_root:?}");
    }

    #[tokio::test]
    async fn a_pinned_or_rooted_client_accepts_the_pinned_certificates_and_what_the_roots_sign() {
        let users = crate::certs::Ca::generate("a user's CA").unwrap();
        let pinned = users.sign_serving(&["s3.example".to_owned()]).unwrap();
        let ours = crate::certs::Ca::generate("the operator CA").unwrap();
        let signed = ours.sign_serving(&["minio.ns.svc".to_owned()]).unwrap();
        let stranger = users.sign_serving(&["minio.ns.svc".to_owned()]).unwrap();
        let client = || {
            let mut roots = RootCertStore::empty();
            add_pem(&mut roots, ours.cert_pem().as_bytes()).unwrap();
            pinned_or_rooted_config(
                vec![first_certificate(pinned.cert_pem.as_bytes()).unwrap()],
                roots,
            )
            .unwrap()
        };
        handshake(&pinned.cert_pem, &pinned.key_pem, client(), "minio.ns.svc")
            .await
            .expect("the pinned certificate, whatever the name");
        handshake(&signed.cert_pem, &signed.key_pem, client(), "minio.ns.svc")
            .await
            .expect("one the roots sign, for its name");
        let wrong_name = handshake(
            &signed.cert_pem,
            &signed.key_pem,
            client(),
            "elsewhere.example",
        )
        .await;
        assert!(wrong_name.is_err(), "{wrong_name:?}");
        let refused = handshake(
            &stranger.cert_pem,
            &stranger.key_pem,
            client(),
            "minio.ns.svc",
        )
        .await;
        assert!(
            refused.is_err(),
            "neither pinned nor signed by a root: {refused:?}"
        );
    }
}

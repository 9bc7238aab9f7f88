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

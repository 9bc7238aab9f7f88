//! Certificates: the operator CA (ECDSA P-256, made with rcgen) and the serving certificates it
//! signs. In a cluster the CA lives in a Secret (`store`, which also rotates it in steps); each
//! replica signs its own serving certificate in memory and never writes a private key to disk
//! (`serving`, which also publishes the CA bundle to the webhook configurations).

pub mod client;
pub mod serving;
pub mod store;

use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// How long a CA is valid. Rotation starts when a third of it is left.
pub const CA_VALIDITY: Duration = Duration::from_secs(5 * 365 * 24 * 3600);
/// How long a serving certificate is valid. Renewed when a third of it is left.
pub const SERVING_VALIDITY: Duration = Duration::from_secs(90 * 24 * 3600);

#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("certificate generation: {0}")]
    Rcgen(#[from] rcgen::Error),
    #[error("the stored CA is unusable: {0}")]
    BadCa(String),
}

pub struct Ca {
    cert_pem: String,
    key_pem: String,
    not_after: SystemTime,
    issuer: Issuer<'static, KeyPair>,
}

/// A serving certificate and its key, both PEM, with its expiry.
pub struct ServingPair {
    pub cert_pem: String,
    pub key_pem: String,
    pub not_after: SystemTime,
}

fn validity(params: &mut CertificateParams, valid_for: Duration) -> SystemTime {
    let now = SystemTime::now();
    // A little slack backwards for clocks that disagree by a few minutes.
    params.not_before = (now - Duration::from_secs(300)).into();
    let not_after = now + valid_for;
    params.not_after = not_after.into();
    not_after
}

impl Ca {
    pub fn generate(common_name: &str) -> Result<Ca, CertError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let not_after = validity(&mut params, CA_VALIDITY);
        let cert = params.self_signed(&key)?;
        let key_pem = key.serialize_pem();
        Ok(Ca {
            cert_pem: cert.pem(),
            key_pem,
            not_after,
            issuer: Issuer::new(params, key),
        })
    }

    /// A CA read back from its PEMs (as stored in the Secret).
    pub fn from_pem(cert_pem: &str, key_pem: &str, not_after: SystemTime) -> Result<Ca, CertError> {
        let key = KeyPair::from_pem(key_pem).map_err(|e| CertError::BadCa(e.to_string()))?;
        let issuer =
            Issuer::from_ca_cert_pem(cert_pem, key).map_err(|e| CertError::BadCa(e.to_string()))?;
        Ok(Ca {
            cert_pem: cert_pem.to_owned(),
            key_pem: key_pem.to_owned(),
            not_after,
            issuer,
        })
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The secret keys derived for other purposes start from ([`derived_key`]): a digest of the
    /// CA's private key. The CA Secret keeps the first CA's once a CA is rotated, so what was
    /// derived from it stays the same.
    pub fn derivation_seed(&self) -> Vec<u8> {
        ring::digest::digest(&ring::digest::SHA256, self.key_pem.as_bytes())
            .as_ref()
            .to_vec()
    }

    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    pub fn not_after(&self) -> SystemTime {
        self.not_after
    }

    /// A serving certificate for `names` (DNS names or IP addresses), signed by this CA.
    pub fn sign_serving(&self, names: &[String]) -> Result<ServingPair, CertError> {
        self.sign_serving_for(names, SERVING_VALIDITY)
    }

    /// [`Ca::sign_serving`], valid for `lifetime`.
    pub fn sign_serving_for(
        &self,
        names: &[String],
        lifetime: Duration,
    ) -> Result<ServingPair, CertError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(names.to_vec())?;
        if let Some(first) = names.first() {
            params
                .distinguished_name
                .push(DnType::CommonName, first.as_str());
        }
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let not_after = validity(&mut params, lifetime);
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(ServingPair {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            not_after,
        })
    }
}

/// Whether a certificate valid until `not_after`, issued for `lifetime`, should be replaced now:
/// when less than a third of its life is left.
pub fn due_for_renewal(not_after: SystemTime, lifetime: Duration) -> bool {
    due_for_renewal_at(not_after, lifetime, SystemTime::now())
}

/// [`due_for_renewal`] as seen at `now`.
pub fn due_for_renewal_at(not_after: SystemTime, lifetime: Duration, now: SystemTime) -> bool {
    not_after
        .duration_since(now)
        .map_or(true, |left| left < lifetime / 3)
}

/// The notAfter of the first certificate of a PEM bundle.
pub fn not_after_of_pem(pem: &[u8]) -> Option<SystemTime> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let der = CertificateDer::pem_slice_iter(pem).next()?.ok()?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der).ok()?;
    let seconds = u64::try_from(cert.validity().not_after.timestamp()).ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(seconds))
}

/// A key for `purpose`, derived from a CA's [`Ca::derivation_seed`]: secret to whoever cannot read
/// the CA Secret, and the same in every replica and after a restart.
pub fn derived_key(seed: &[u8], purpose: &str) -> ring::hmac::Key {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, seed);
    let derived = ring::hmac::sign(&key, purpose.as_bytes());
    ring::hmac::Key::new(ring::hmac::HMAC_SHA256, derived.as_ref())
}

/// A short name for the first certificate of a PEM bundle: the first 8 bytes of the SHA-256 of its
/// DER, in hex (`None` when no certificate parses).
pub fn fingerprint_of_pem(pem: &[u8]) -> Option<String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let der = CertificateDer::pem_slice_iter(pem).next()?.ok()?;
    let digest = ring::digest::digest(&ring::digest::SHA256, der.as_ref());
    Some(hex(&digest.as_ref()[..8]))
}

/// `bytes` in lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The names a webhook Service is reached by: `svc`, `svc.ns`, `svc.ns.svc`.
pub fn service_names(service: &str, namespace: &str) -> Vec<String> {
    vec![
        service.to_owned(),
        format!("{service}.{namespace}"),
        format!("{service}.{namespace}.svc"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_signs_serving_certificates_and_survives_a_pem_round_trip() {
        let ca = Ca::generate("test-ca").unwrap();
        let pair = ca.sign_serving(&service_names("hook", "ops")).unwrap();
        assert!(pair.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        let again = Ca::from_pem(ca.cert_pem(), ca.key_pem(), ca.not_after()).unwrap();
        assert!(again.sign_serving(&["127.0.0.1".into()]).is_ok());
        assert!(!due_for_renewal(pair.not_after, SERVING_VALIDITY));
        assert!(due_for_renewal(
            SystemTime::now() + SERVING_VALIDITY / 4,
            SERVING_VALIDITY
        ));
        let short = ca
            .sign_serving_for(&["a".into()], Duration::from_secs(300))
            .unwrap();
        let read = not_after_of_pem(short.cert_pem.as_bytes()).unwrap();
        let secs = |t: SystemTime| t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
        assert_eq!(secs(read), secs(short.not_after), "read back from the PEM");
    }
}

//! What the servers' certificate directory (`/tmp/certs`) holds, laid out as the Go operators lay
//! it out, so that a tenant moved from them serves and trusts what it did:
//!
//! - `public.crt`, `private.key`: the first certificate served, the one a client that names no
//!   host (SNI) gets: the first `externalCertSecret`, else the operator's (requestAutoCert);
//! - `hostname-<i>/public.crt`, `private.key`: every other one (the other `externalCertSecret`
//!   entries, then the operator's). The S3 server loads them all and answers each client with
//!   one that names the host it asked for;
//! - `CAs/`: what the servers trust, their peers included: the first certificate's CA as
//!   `ca.crt`, the others' as `hostname-<i>.crt`, each `externalCaCertSecret` as `ca-<i>.crt`;
//! - `client-<i>/client.crt`, `client.key`: each `externalClientCertSecrets` entry, the
//!   certificates the servers present to other services (mTLS).
//!
//! One Secret is mounted as before (a `secret` volume), so a running tenant's template does not
//! change; more are projected into one volume. The whole directory is mounted (never `subPath`),
//! so renewed certificates reach the servers without a restart.

use k8s_openapi::api::core::v1::Secret;

use crate::api::names::tls_secret_name;
use crate::api::tenant::{LocalCertificateReference, Tenant};

/// Which keys of a certificate Secret the servers mount: the certificate, its key, and what they
/// trust their peers by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CertKeys {
    pub cert: &'static str,
    pub key: &'static str,
    pub ca: &'static str,
}

impl CertKeys {
    /// `tls.crt`, `tls.key` and `ca.crt`: the operator's own Secret, cert-manager's.
    pub const TLS: CertKeys = CertKeys {
        cert: "tls.crt",
        key: "tls.key",
        ca: "ca.crt",
    };

    /// The keys a Secret holding `has` offers, as the Go operators read them: a
    /// `kubernetes.io/tls` pair (`tls.crt`, `tls.key`) or their `Opaque` names (`public.crt`,
    /// `private.key`); the CA is `ca.crt` when there is one, else the certificate itself (a
    /// Secret of `kubectl create secret tls`, or of an ACME issuer: the servers then trust that
    /// certificate, which they all present). `None` without a certificate and its key.
    pub fn of(has: impl Fn(&str) -> bool) -> Option<CertKeys> {
        let (cert, key) = [("tls.crt", "tls.key"), ("public.crt", "private.key")]
            .into_iter()
            .find(|(cert, key)| has(cert) && has(key))?;
        let ca = if has("ca.crt") { "ca.crt" } else { cert };
        Some(CertKeys { cert, key, ca })
    }

    /// [`CertKeys::of`] the keys `secret` holds with a value (an empty one is none): what the
    /// servers mount of it, which the health check must trust the same way.
    pub fn of_secret(secret: &Secret) -> Option<CertKeys> {
        let data = secret.data.as_ref();
        CertKeys::of(|key| {
            data.and_then(|d| d.get(key))
                .is_some_and(|v| !v.0.is_empty())
        })
    }
}

/// One Secret and the files the servers get from it: (key, path in the directory).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    pub secret: String,
    pub items: Vec<(&'static str, String)>,
}

/// The certificate Secrets the servers serve, in the order of the layout above, each with its
/// keys: `external_keys[i]` are those read from `externalCertSecret[i]` ([`CertKeys::TLS`] until
/// read).
fn served(tenant: &Tenant, external_keys: &[CertKeys]) -> Vec<(String, CertKeys)> {
    let mut served: Vec<(String, CertKeys)> = tenant
        .spec
        .external_cert_secret
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let keys = external_keys.get(i).copied().unwrap_or(CertKeys::TLS);
            (r.name.clone(), keys)
        })
        .collect();
    if tenant.spec.request_auto_cert.unwrap_or(true) {
        served.push((tls_secret_name(tenant), CertKeys::TLS));
    }
    served
}

/// Every Secret the certificate directory takes files from, and which files.
pub fn sources(tenant: &Tenant, external_keys: &[CertKeys]) -> Vec<Source> {
    let mut sources: Vec<Source> = served(tenant, external_keys)
        .into_iter()
        .enumerate()
        .map(|(i, (secret, keys))| {
            let (dir, ca) = if i == 0 {
                (String::new(), "CAs/ca.crt".to_owned())
            } else {
                (format!("hostname-{i}/"), format!("CAs/hostname-{i}.crt"))
            };
            Source {
                secret,
                items: vec![
                    (keys.cert, format!("{dir}public.crt")),
                    (keys.key, format!("{dir}private.key")),
                    (keys.ca, ca),
                ],
            }
        })
        .collect();
    for (i, r) in tenant.spec.external_ca_cert_secret.iter().enumerate() {
        sources.push(Source {
            secret: r.name.clone(),
            items: vec![(declared(r).ca, format!("CAs/ca-{i}.crt"))],
        });
    }
    for (i, r) in tenant.spec.external_client_cert_secrets.iter().enumerate() {
        let keys = declared(r);
        let mut items = vec![
            (keys.cert, format!("client-{i}/client.crt")),
            (keys.key, format!("client-{i}/client.key")),
        ];
        if is_cert_manager(r) {
            items.push((keys.ca, format!("CAs/client-ca-{i}.crt")));
        }
        sources.push(Source {
            secret: r.name.clone(),
            items,
        });
    }
    sources
}

/// Every Secret the directory needs, with the field that names it: a pod that mounts a missing
/// one never starts. The `externalCertSecret` entries come first, in their order.
pub fn referenced(tenant: &Tenant) -> Vec<(String, &str)> {
    let spec = &tenant.spec;
    [
        ("spec.externalCertSecret", &spec.external_cert_secret),
        ("spec.externalCaCertSecret", &spec.external_ca_cert_secret),
        (
            "spec.externalClientCertSecrets",
            &spec.external_client_cert_secrets,
        ),
    ]
    .into_iter()
    .flat_map(|(field, refs)| {
        refs.iter()
            .enumerate()
            .map(move |(i, r)| (format!("{field}[{i}]"), r.name.as_str()))
    })
    .collect()
}

fn is_cert_manager(r: &LocalCertificateReference) -> bool {
    matches!(
        r.type_.as_deref(),
        Some("cert-manager.io/v1alpha2" | "cert-manager.io/v1")
    )
}

/// The keys of a CA or client certificate Secret, by the type its reference declares, as the Go
/// operators mount them (the operator does not read these Secrets): `kubernetes.io/tls` holds
/// `tls.crt`/`tls.key` (the certificate is the CA), cert-manager's add `ca.crt`, any other
/// `public.crt`/`private.key`.
fn declared(r: &LocalCertificateReference) -> CertKeys {
    if is_cert_manager(r) {
        CertKeys::TLS
    } else if r.type_.as_deref() == Some("kubernetes.io/tls") {
        CertKeys {
            ca: "tls.crt",
            ..CertKeys::TLS
        }
    } else {
        CertKeys {
            cert: "public.crt",
            key: "private.key",
            ca: "public.crt",
        }
    }
}

//! The operator CA in a Secret of the operator's namespace, read and written through the API (not
//! a mounted volume, which lags by a kubelet sync). Replicas race to create it; the loser reads the
//! winner's, so every replica serves certificates of one CA.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ObjectMeta, PostParams};

use super::{CA_VALIDITY, Ca, CertError, due_for_renewal};

pub const CA_SECRET: &str = "hanzo-s3-operator-ca";
const CERT_KEY: &str = "ca.crt";
const KEY_KEY: &str = "ca.key";
const NOT_AFTER_KEY: &str = "not-after";
/// The CA being replaced, kept in the caBundle until serving certificates of the new one are out.
const PREVIOUS_CERT_KEY: &str = "previous-ca.crt";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error(transparent)]
    Cert(#[from] CertError),
    #[error("Secret {0} is missing {1}")]
    Incomplete(String, &'static str),
}

/// The CA to sign with, and the bundle the webhook configurations must trust.
pub struct StoredCa {
    pub ca: Ca,
    /// PEM of the current CA, preceded by the previous one during a rotation.
    pub bundle_pem: String,
}

fn field<'a>(secret: &'a Secret, key: &'static str) -> Option<&'a [u8]> {
    secret.data.as_ref()?.get(key).map(|b| b.0.as_slice())
}

fn read(secret: &Secret) -> Result<StoredCa, StoreError> {
    let text = |key| {
        field(secret, key)
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .ok_or(StoreError::Incomplete(CA_SECRET.into(), key))
    };
    let cert = text(CERT_KEY)?;
    let key = text(KEY_KEY)?;
    let not_after = text(NOT_AFTER_KEY)?
        .trim()
        .parse::<u64>()
        .map(|s| UNIX_EPOCH + Duration::from_secs(s))
        .map_err(|_| StoreError::Incomplete(CA_SECRET.into(), NOT_AFTER_KEY))?;
    let previous =
        field(secret, PREVIOUS_CERT_KEY).map(|b| String::from_utf8_lossy(b).into_owned());
    let ca = Ca::from_pem(&cert, &key, not_after)?;
    let bundle_pem = match previous {
        Some(p) if !p.is_empty() => format!("{p}{cert}"),
        _ => cert,
    };
    Ok(StoredCa { ca, bundle_pem })
}

fn secret_for(
    namespace: &str,
    ca: &Ca,
    previous: Option<&str>,
    resource_version: Option<String>,
) -> Secret {
    let seconds = ca
        .not_after()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut data = std::collections::BTreeMap::from([
        (
            CERT_KEY.to_owned(),
            ByteString(ca.cert_pem().as_bytes().to_vec()),
        ),
        (
            KEY_KEY.to_owned(),
            ByteString(ca.key_pem().as_bytes().to_vec()),
        ),
        (
            NOT_AFTER_KEY.to_owned(),
            ByteString(seconds.to_string().into_bytes()),
        ),
    ]);
    if let Some(p) = previous {
        data.insert(
            PREVIOUS_CERT_KEY.to_owned(),
            ByteString(p.as_bytes().to_vec()),
        );
    }
    Secret {
        metadata: ObjectMeta {
            name: Some(CA_SECRET.to_owned()),
            namespace: Some(namespace.to_owned()),
            resource_version,
            labels: Some(
                [(
                    "app.kubernetes.io/name".to_owned(),
                    "hanzo-s3-operator".to_owned(),
                )]
                .into(),
            ),
            ..ObjectMeta::default()
        },
        type_: Some("Opaque".to_owned()),
        data: Some(data),
        ..Secret::default()
    }
}

/// The CA from the Secret, creating it when absent and rotating it when a third of its life is
/// left (the old CA stays in the bundle). Safe to call from every replica at once.
pub async fn ensure_ca(client: kube::Client, namespace: &str) -> Result<StoredCa, StoreError> {
    let secrets: Api<Secret> = Api::namespaced(client, namespace);
    for _ in 0..5 {
        match secrets.get_opt(CA_SECRET).await? {
            None => {
                let ca = Ca::generate("hanzo-s3-operator-ca")?;
                match secrets
                    .create(
                        &PostParams::default(),
                        &secret_for(namespace, &ca, None, None),
                    )
                    .await
                {
                    Ok(_) => {
                        tracing::info!(namespace, secret = CA_SECRET, "created the operator CA");
                        let bundle_pem = ca.cert_pem().to_owned();
                        return Ok(StoredCa { ca, bundle_pem });
                    }
                    // Another replica won the race: use its CA.
                    Err(kube::Error::Api(e)) if e.code == 409 => continue,
                    Err(e) => return Err(e.into()),
                }
            }
            Some(secret) => {
                let stored = read(&secret)?;
                if !due_for_renewal(stored.ca.not_after(), CA_VALIDITY) {
                    return Ok(stored);
                }
                let next = Ca::generate("hanzo-s3-operator-ca")?;
                let previous = stored.ca.cert_pem().to_owned();
                let update = secret_for(
                    namespace,
                    &next,
                    Some(&previous),
                    secret.metadata.resource_version.clone(),
                );
                match secrets
                    .replace(CA_SECRET, &PostParams::default(), &update)
                    .await
                {
                    Ok(_) => {
                        tracing::info!(
                            namespace,
                            "rotated the operator CA; the previous one stays trusted"
                        );
                        let bundle_pem = format!("{previous}{}", next.cert_pem());
                        return Ok(StoredCa {
                            ca: next,
                            bundle_pem,
                        });
                    }
                    Err(kube::Error::Api(e)) if e.code == 409 => continue,
                    Err(e) => return Err(e.into()),
                }
            }
        }
    }
    // Five conflicts in a row: someone else keeps writing it; read what is there.
    let secret = secrets.get(CA_SECRET).await?;
    read(&secret)
}

/// Seconds since the epoch, for metrics.
pub fn unix_seconds(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

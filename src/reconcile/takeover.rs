//! Taking over a running tenant that another operator made (the Go operators, hanzos3/operator and
//! minio/operator, whose Tenant API this operator serves unchanged).
//!
//! Two of its objects cannot become ours by server-side apply:
//! - **Its StatefulSets.** Fields another field manager owns and we do not send stay (its sidecar
//!   container, its init container, its `RollingUpdate` strategy beside our `OnDelete`, a
//!   projected volume beside our Secret volume), and the fields Kubernetes keeps immutable may
//!   differ. Such a StatefulSet is deleted with `propagationPolicy: Orphan` and ours is created:
//!   the pods and claims stay, ours adopts the pods by its selector, and the rollout then moves them
//!   to this operator's template the way it moves any other change.
//! - **Its TLS Secret** (`<tenant>-tls`, `Opaque`, `public.crt`/`private.key`, signed through the
//!   CSR API). A Secret's type cannot change: it is replaced by a `kubernetes.io/tls` one holding
//!   the same key and certificate (under both names, so the servers still on the other template
//!   keep reading theirs), and a `ca.crt` that trusts the other operator's certificate and the
//!   operator CA, so servers of both templates verify each other. The adopted certificate is
//!   served until it is due for renewal, then this operator's CA signs the next one.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, DeleteParams, Preconditions, PropagationPolicy};

use super::context::Context;
use super::events::EventType;
use super::outcome::{AtStep, Blocked, Step, Stop, StopKind};
use super::report;
use super::status::STATE_UPDATING;
use crate::api::tenant::Tenant;

/// The `signed-by` annotation of an adopted certificate: not signed by any operator CA.
pub const ADOPTED_SIGNER: &str = "adopted";
/// The ConfigMap every namespace holds with the cluster's CA, which signs the CSR API's
/// `kubernetes.io/kubelet-serving` certificates on most clusters (kubeadm's among them).
const CLUSTER_CA_CONFIGMAP: &str = "kube-root-ca.crt";
/// How long one pass waits for the garbage collector to orphan a replaced StatefulSet's pods.
const ORPHANING_WAIT: Duration = Duration::from_secs(10);

/// Deletes another operator's StatefulSet `name` (its pods and claims orphaned, not deleted) and
/// waits for it to be gone, so that ours is created in its place by the caller.
pub async fn replace_statefulset(
    ctx: &Context,
    tenant: &Tenant,
    api: &Api<StatefulSet>,
    name: &str,
    uid: Option<String>,
    writer: &str,
) -> Result<(), Stop> {
    report::publish(
        &ctx.events,
        tenant,
        EventType::Normal,
        "TakingOver",
        format!(
            "StatefulSet {name:?} was written by {writer:?}, with fields this operator cannot change in place: it is replaced by ours, its pods and claims kept (deleted with propagationPolicy Orphan; ours adopts the pods, and the rollout moves them to this operator's template). A Go operator's Role {role:?} and RoleBinding {binding:?}, if there are any, are left: nothing here uses them, and they let ServiceAccount {account:?} read every Secret of the namespace (docs/migration.md)",
            role = format!("{}-role", tenant.name()),
            binding = format!("{}-binding", tenant.name()),
            account = tenant
                .spec
                .service_account_name
                .clone()
                .unwrap_or_else(|| crate::api::names::default_service_account_name(tenant.name())),
        ),
    )
    .await;
    tracing::info!(
        namespace = tenant.namespace(),
        tenant = tenant.name(),
        statefulset = name,
        writer,
        "taking over a StatefulSet another manager wrote: deleting it, its pods orphaned"
    );
    let params = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Orphan),
        preconditions: Some(Preconditions {
            uid: uid.clone(),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    // Gone already, or replaced since (the precondition): either way not the one to delete.
    super::apply::delete(api, name, &params)
        .await
        .at(Step::StatefulSets)?;
    let deadline = tokio::time::Instant::now() + ORPHANING_WAIT;
    loop {
        let live = api.get_metadata_opt(name).await.at(Step::StatefulSets)?;
        if live.is_none_or(|m| m.metadata.uid != uid) {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(Blocked {
                state: STATE_UPDATING,
                reason: "TakingOver",
                message: format!(
                    "waiting for the garbage collector to orphan the pods of StatefulSet {name:?} (another operator's), which is deleted so that ours replaces it"
                ),
                kind: StopKind::Retrying,
                event: false,
                requeue: Some(Duration::from_secs(2)),
            }
            .into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Another operator's TLS Secret, read whole: its certificate and key, if it is one this Tenant
/// owns and holds them under the Go operator's names.
pub struct ForeignCertificate {
    uid: Option<String>,
    cert_pem: Vec<u8>,
    key_pem: Vec<u8>,
}

/// `secret` as another operator's TLS Secret of `tenant`, if it is one: owned by the Tenant, not of
/// type `kubernetes.io/tls`, with `public.crt` and `private.key`.
pub fn foreign_certificate(tenant: &Tenant, secret: Secret) -> Option<ForeignCertificate> {
    let owned = secret
        .metadata
        .owner_references
        .as_ref()
        .is_some_and(|owners| {
            owners
                .iter()
                .any(|o| Some(&o.uid) == tenant.metadata.uid.as_ref())
        });
    if !owned || secret.type_.as_deref() == Some("kubernetes.io/tls") {
        return None;
    }
    let mut data = secret.data?;
    let cert_pem = data.remove("public.crt")?.0;
    let key_pem = data.remove("private.key")?.0;
    Some(ForeignCertificate {
        uid: secret.metadata.uid,
        cert_pem,
        key_pem,
    })
}

/// The trust an adopted certificate needs beside the operator CA bundle: the certificate itself
/// (Go's verifier, the S3 server's, takes a trusted leaf as an anchor) and the cluster CA (rustls,
/// the health check's, wants the issuer).
pub fn adopted_bundle(operator_bundle: &str, cert_pem: &[u8], cluster_ca: Option<&str>) -> Vec<u8> {
    let mut bundle = operator_bundle.trim_end().as_bytes().to_vec();
    bundle.push(b'\n');
    let lf = pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF);
    for extra in [Some(cert_pem), cluster_ca.map(str::as_bytes)]
        .into_iter()
        .flatten()
    {
        // Only the first certificate of the chain: a leaf's intermediates are not anchors.
        let first = pem::parse_many(extra)
            .ok()
            .and_then(|all| all.into_iter().find(|p| p.tag() == "CERTIFICATE"));
        if let Some(first) = first {
            bundle.extend_from_slice(pem::encode_config(&first, lf).as_bytes());
        }
    }
    bundle
}

/// Replaces another operator's TLS Secret `name` with ours, keeping its certificate and key (see
/// the module's documentation). Returns the writes.
pub async fn adopt_certificate(
    ctx: &Context,
    tenant: &Tenant,
    secrets: &Api<Secret>,
    name: &str,
    foreign: ForeignCertificate,
    mut metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
) -> Result<usize, Stop> {
    let ns = tenant.namespace();
    let cluster_ca = Api::<ConfigMap>::namespaced(ctx.client.clone(), ns)
        .get_opt(CLUSTER_CA_CONFIGMAP)
        .await
        .at(Step::Certificate)?
        .and_then(|c| c.data?.remove("ca.crt"));
    let bundle = adopted_bundle(
        &ctx.settings.ca.current().bundle_pem,
        &foreign.cert_pem,
        cluster_ca.as_deref(),
    );
    metadata.annotations = Some(BTreeMap::from([(
        super::desired::SIGNED_BY_ANNOTATION.to_owned(),
        ADOPTED_SIGNER.to_owned(),
    )]));
    let data = BTreeMap::from([
        ("tls.crt".to_owned(), ByteString(foreign.cert_pem.clone())),
        ("tls.key".to_owned(), ByteString(foreign.key_pem.clone())),
        ("ca.crt".to_owned(), ByteString(bundle)),
        // What the other operator's pods mount, until the rollout replaces them; our next
        // apply of this Secret (a renewal) no longer sends them and so removes them.
        ("public.crt".to_owned(), ByteString(foreign.cert_pem)),
        ("private.key".to_owned(), ByteString(foreign.key_pem)),
    ]);
    let secret = Secret {
        metadata,
        type_: Some("kubernetes.io/tls".to_owned()),
        data: Some(data),
        ..Secret::default()
    };
    let params = DeleteParams {
        preconditions: Some(Preconditions {
            uid: foreign.uid,
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    super::apply::delete(secrets, name, &params)
        .await
        .at(Step::Certificate)?;
    // Applied, not created: the next apply (a renewal) is the same manager's and operation's,
    // so the fields it no longer sends (the Go names) go.
    super::apply::apply(
        &ctx.applied,
        secrets,
        secret,
        None,
        super::apply::Version::Resource,
    )
    .await
    .at(Step::Certificate)?;
    report::publish(
        &ctx.events,
        tenant,
        EventType::Normal,
        "CertificateAdopted",
        format!(
            "Secret {name:?} (another operator's, type Opaque) was replaced by a kubernetes.io/tls Secret with the same certificate and key, which the servers keep serving until it is due for renewal; its ca.crt also trusts that certificate and the cluster CA"
        ),
    )
    .await;
    Ok(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_adopted_bundle_trusts_the_leaf_and_the_cluster_ca_beside_ours() {
        let cert = |name: &str| {
            rcgen::generate_simple_self_signed(vec![name.to_owned()])
                .unwrap()
                .cert
                .pem()
        };
        let (ours, leaf, intermediate, cluster) = (
            cert("ours"),
            cert("leaf"),
            cert("intermediate"),
            cert("cluster"),
        );
        let chain = format!("{leaf}{intermediate}");
        let bundle =
            String::from_utf8(adopted_bundle(&ours, chain.as_bytes(), Some(&cluster))).unwrap();
        assert_eq!(bundle, format!("{ours}{leaf}{cluster}"));
        assert!(!bundle.contains(intermediate.lines().nth(1).unwrap()));
        assert!(!bundle.contains('\r'), "{bundle:?}");
    }
}

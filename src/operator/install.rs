//! Installing the Tenant CRD through the API and waiting until the apiserver serves it, and until
//! the webhooks judge Tenants; used by `dev` and the tests (in a cluster, the deploy manifests carry
//! the CRD instead).

use std::time::{Duration, Instant};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams};

use crate::api::crd::{CRD_NAME, CrdError, crd};

#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error(transparent)]
    Crd(#[from] CrdError),
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("the CRD was not Established within {0:?}")]
    NotEstablished(Duration),
    #[error("the webhooks did not judge Tenants within {0:?}; last answer: {1}")]
    NoAdmission(Duration, String),
    #[error("admission probe: {0}")]
    Probe(String),
}

/// Server-side applies the CRD (field manager `field_manager`) and waits for `Established`.
pub async fn install_crd(
    client: &kube::Client,
    field_manager: &str,
    timeout: Duration,
) -> Result<(), InstallError> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.patch(
        CRD_NAME,
        &PatchParams::apply(field_manager).force(),
        &Patch::Apply(&crd()?),
    )
    .await?;
    let deadline = Instant::now() + timeout;
    loop {
        let established = crds
            .get(CRD_NAME)
            .await?
            .status
            .and_then(|s| s.conditions)
            .unwrap_or_default()
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True");
        if established {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(InstallError::NotEstablished(timeout));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Server-side applies the backstop ValidatingAdmissionPolicy and its binding
/// ([`crate::admission::backstop`]), as the chart does by default: the rules the apiserver enforces
/// itself when the webhooks cannot answer. Applied as generated, not through typed structs (which
/// would drop a field an older API lacks).
pub async fn install_backstop(
    client: &kube::Client,
    field_manager: &str,
) -> Result<(), InstallError> {
    use crate::admission::backstop;
    use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
    let ssa = PatchParams::apply(field_manager).force();
    for (object, plural) in backstop::objects().iter().zip([
        "validatingadmissionpolicies",
        "validatingadmissionpolicybindings",
    ]) {
        let kind = object["kind"].as_str().unwrap_or_default();
        let gvk = GroupVersionKind::gvk("admissionregistration.k8s.io", "v1", kind);
        Api::<DynamicObject>::all_with(
            client.clone(),
            &ApiResource::from_gvk_with_plural(&gvk, plural),
        )
        .patch(backstop::POLICY_NAME, &ssa, &Patch::Apply(object))
        .await?;
    }
    Ok(())
}

/// Waits until both webhooks judge Tenants in `namespace`: a dry-run create of a valid Tenant comes
/// back defaulted (the mutating webhook answered) and one of an invalid Tenant is denied by the
/// validating webhook. Dry runs store nothing; the webhooks are registered `sideEffects: None`.
/// Until then, a Tenant applied could be stored without defaults or validation.
pub async fn wait_for_admission(
    client: &kube::Client,
    namespace: &str,
    timeout: Duration,
) -> Result<(), InstallError> {
    use crate::api::tenant::Tenant;
    use crate::webhook::config::VALIDATING_WEBHOOK;
    use kube::api::PostParams;

    let probe = |servers: i32, volumes: i32| -> Result<Tenant, InstallError> {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "minio.min.io/v2", "kind": "Tenant",
            "metadata": {"name": "admission-probe"},
            "spec": {"configuration": {"name": "admission-probe"}, "pools": [{
                "servers": servers, "volumesPerServer": volumes,
                "volumeClaimTemplate": {"spec": {"accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": "1Gi"}}}}}]}
        }))
        .map_err(|e| InstallError::Probe(e.to_string()))
    };
    let (valid, invalid) = (probe(4, 1)?, probe(2, 1)?);
    let tenants: Api<Tenant> = Api::namespaced(client.clone(), namespace);
    let dry_run = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    let deadline = Instant::now() + timeout;
    loop {
        let mutation = match tenants.create(&dry_run, &valid).await {
            Ok(t) if t.spec.image.is_some() => Ok(()),
            Ok(_) => Err("a Tenant came back without defaults".to_owned()),
            Err(e) => Err(e.to_string()),
        };
        let validation = match tenants.create(&dry_run, &invalid).await {
            Err(kube::Error::Api(status)) if status.message.contains(VALIDATING_WEBHOOK) => Ok(()),
            Err(e) => Err(e.to_string()),
            Ok(_) => Err("an invalid Tenant was admitted".to_owned()),
        };
        let last = match (mutation, validation) {
            (Ok(()), Ok(())) => return Ok(()),
            (Err(e), _) | (_, Err(e)) => e,
        };
        if Instant::now() > deadline {
            return Err(InstallError::NoAdmission(timeout, last));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

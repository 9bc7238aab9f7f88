//! Installing the Tenant CRD through the API and waiting until the apiserver serves it; used by
//! `dev` and the tests (in a cluster, the deploy manifests carry the CRD instead).

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

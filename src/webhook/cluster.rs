//! The cluster facts the validating webhook needs, read from the API at admission time. Not from a
//! watch cache: "is there already a Tenant in this namespace" is a question about now, and a cache
//! that lags would admit two Tenants created a moment apart.

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams};

use super::review::ClusterView;
use crate::api::tenant::Tenant;

pub struct ApiCluster {
    client: kube::Client,
}

impl ApiCluster {
    pub fn new(client: kube::Client) -> Self {
        ApiCluster { client }
    }
}

impl ClusterView for ApiCluster {
    async fn other_tenants(&self, namespace: &str, name: &str) -> Option<Vec<String>> {
        let tenants: Api<Tenant> = Api::namespaced(self.client.clone(), namespace);
        match tenants.list_metadata(&ListParams::default()).await {
            Ok(list) => Some(
                list.items
                    .into_iter()
                    .filter_map(|t| t.metadata.name)
                    .filter(|n| n != name)
                    .collect(),
            ),
            Err(error) => {
                tracing::warn!(%error, namespace, "cannot list Tenants for the one-per-namespace check");
                None
            }
        }
    }

    async fn secret_exists(&self, namespace: &str, name: &str) -> Option<bool> {
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        match secrets.get_metadata_opt(name).await {
            Ok(found) => Some(found.is_some()),
            Err(error) => {
                tracing::warn!(%error, namespace, secret = name, "cannot check the configuration Secret");
                None
            }
        }
    }
}

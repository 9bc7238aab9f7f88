//! The local control plane holds the scale the benchmarks ask for: 1,000 tenants take 2,000
//! ClusterIPs (the S3 and console Services) and 4,000 pods. (The first Service range, a /24, ran
//! out at the 127th tenant.)

use futures::StreamExt;
use hanzo_local_cluster::{ControlPlane, Options};
use k8s_openapi::api::core::v1::{Node, Service};
use kube::api::{Api, ListParams, PostParams};
use serde_json::json;

#[tokio::test]
async fn two_thousand_services_get_cluster_ips_and_eight_fake_nodes_hold_four_thousand_pods() {
    let cp = ControlPlane::start(Options::with_nodes(8)).await.unwrap();
    let client = cp.client().await.unwrap();
    let ns = cp.create_namespace("capacity").await.unwrap();
    let services: Api<Service> = Api::namespaced(client.clone(), &ns);
    let total = 2_100usize;
    let mut created = futures::stream::iter(0..total)
        .map(|i| {
            let services = services.clone();
            async move {
                let svc: Service = serde_json::from_value(json!({
                    "metadata": {"name": format!("s{i}")},
                    "spec": {"ports": [{"port": 80}], "selector": {"app": format!("a{i}")}}
                }))
                .unwrap();
                services.create(&PostParams::default(), &svc).await
            }
        })
        .buffer_unordered(16);
    let mut ips = std::collections::HashSet::new();
    while let Some(result) = created.next().await {
        let svc = result.unwrap_or_else(|e| panic!("a ClusterIP Service was refused: {e}"));
        let ip = svc.spec.unwrap().cluster_ip.unwrap();
        assert!(
            ip.starts_with("198.19."),
            "{ip} is in the harness's Service range"
        );
        ips.insert(ip);
    }
    assert_eq!(ips.len(), total, "every Service got an address of its own");

    let pods: i64 = Api::<Node>::all(client)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .filter_map(|n| {
            n.status
                .as_ref()?
                .allocatable
                .as_ref()?
                .get("pods")?
                .0
                .parse::<i64>()
                .ok()
        })
        .sum();
    assert!(pods >= 4_000, "fake nodes hold {pods} pods");
}

//! With controller-manager, scheduler and kwok, a StatefulSet with a volume claim template gets its
//! Pods Running on fake nodes and its PersistentVolumeClaims Bound.

use std::time::{Duration, Instant};

use hanzo_local_cluster::ControlPlane;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::api::{Api, ListParams, PostParams};
use serde_json::json;

#[tokio::test]
async fn a_statefulset_of_four_gets_four_running_pods_and_bound_claims() {
    let cp = ControlPlane::shared(crate::SHARED_NODES).unwrap();
    let client = cp.client().await.unwrap();
    let ns = cp.create_namespace("sts").await.unwrap();
    let sts: StatefulSet = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 4, "serviceName": "web", "podManagementPolicy": "Parallel",
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                         "spec": {"containers": [{"name": "c", "image": "registry.invalid/none:1",
                                                   "volumeMounts": [{"name": "data", "mountPath": "/data"}]}]}},
            "volumeClaimTemplates": [{"metadata": {"name": "data"},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]
        }
    }))
    .unwrap();
    Api::<StatefulSet>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &sts)
        .await
        .unwrap();

    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client, &ns);
    let deadline = Instant::now() + Duration::from_secs(120);
    let (mut running, mut bound) = (0, 0);
    while Instant::now() < deadline {
        running = pods
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .iter()
            .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
            .filter(|p| {
                p.spec
                    .as_ref()
                    .and_then(|s| s.node_name.as_deref())
                    .is_some_and(|n| n.starts_with("fake-node-"))
            })
            .count();
        bound = claims
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .iter()
            .filter(|c| c.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound"))
            .count();
        if running == 4 && bound == 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(
        (running, bound),
        (4, 4),
        "pods Running, claims Bound\n{}",
        cp.log_tails(40)
    );
    let names: Vec<String> = claims
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|c| c.metadata.name)
        .collect();
    for i in 0..4 {
        assert!(names.contains(&format!("data-web-{i}")), "{names:?}");
    }
}

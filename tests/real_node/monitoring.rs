//! A Tenant with `spec.prometheusOperator: true` seen by a real Prometheus (built from its Go
//! module): the operator makes a ServiceMonitor and a token Secret, Prometheus scrapes every
//! server with that token and the operator itself (by the scrape configuration the
//! ServiceMonitors stand for, `hanzo_testkit::prometheus`), the servers' health and capacity
//! metrics and the operator's per-Tenant gauges arrive, scraping goes on through a root-password
//! rotation, the write-quorum alert fires when half the servers stop answering, and turning
//! monitoring off removes what it made.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hanzo_s3_operator::api::tenant::Tenant;
use hanzo_testkit::prometheus::{self, Prometheus};
use hanzo_testkit::support;
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use serde_json::{Value, json};

use crate::real_node::{
    METRICS_TOKEN_LIFETIME_SECS, OPERATOR_NS, create_namespace_with_credentials, diagnose,
    replace_root_password, serial, setup, two_by_two, wait_for, wait_ready,
};

const NS: &str = "s3-metrics";
const NAME: &str = "metrics";

fn service_monitors(client: &kube::Client, ns: &str) -> Api<DynamicObject> {
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("monitoring.coreos.com", "v1", "ServiceMonitor"),
        "servicemonitors",
    );
    Api::namespaced_with(client.clone(), ns, &ar)
}

async fn install_crds(client: &kube::Client) {
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("apiextensions.k8s.io", "v1", "CustomResourceDefinition"),
        "customresourcedefinitions",
    );
    let crds: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
    let path = hanzo_local_cluster::prometheus_operator_crd("servicemonitors");
    assert!(
        path.is_file(),
        "{} is missing: run crates/local-cluster/build.sh",
        path.display()
    );
    let crd: Value = serde_yaml_ng::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    crds.patch(
        "servicemonitors.monitoring.coreos.com",
        &PatchParams::apply("real-node-test").force(),
        &Patch::Apply(&crd),
    )
    .await
    .unwrap();
}

/// The operator's own ServiceMonitor, as the chart renders it with `monitoring.enabled`.
fn operator_service_monitor() -> Value {
    let docs = support::render(
        "helm",
        &[
            "template",
            "hanzo",
            "deploy/helm/hanzo-s3-operator",
            "--namespace",
            OPERATOR_NS,
            "--set",
            "monitoring.enabled=true",
        ],
    );
    let mut monitor = docs
        .into_iter()
        .find(|d| d["kind"] == "ServiceMonitor")
        .expect("the chart's ServiceMonitor");
    monitor["metadata"]["namespace"] = json!(OPERATOR_NS);
    monitor
}

/// Writes the Secret keys the ServiceMonitors name into files, as a Prometheus operator would
/// hand them to Prometheus.
async fn write_secret_files(client: &kube::Client, dir: &Path, monitors: &[Value]) {
    for monitor in monitors {
        let ns = monitor["metadata"]["namespace"].as_str().unwrap();
        for endpoint in monitor["spec"]["endpoints"].as_array().unwrap() {
            for reference in [
                &endpoint["authorization"]["credentials"],
                &endpoint["tlsConfig"]["ca"]["secret"],
            ] {
                let (Some(name), Some(key)) =
                    (reference["name"].as_str(), reference["key"].as_str())
                else {
                    continue;
                };
                let secret = Api::<Secret>::namespaced(client.clone(), ns)
                    .get(name)
                    .await
                    .unwrap();
                let value = secret.data.unwrap().remove(key).unwrap().0;
                std::fs::write(secret_file(dir, ns, name, key), value).unwrap();
            }
        }
    }
}

fn secret_file(dir: &Path, ns: &str, name: &str, key: &str) -> PathBuf {
    dir.join(format!("{ns}_{name}_{key}"))
}

/// Waits until every target of the tenant's job and of the operator's is up, and has been
/// scraped since `since` (Unix seconds).
async fn all_targets_up(prometheus: &Prometheus, since: f64) -> Result<usize, String> {
    wait_for(Duration::from_secs(180), "every target up", || async {
        let targets = prometheus.targets().ok()?;
        let ours: Vec<&Value> = targets
            .iter()
            .filter(|t| {
                let ns = t["labels"]["namespace"].as_str().unwrap_or_default();
                ns == NS || ns == OPERATOR_NS
            })
            .collect();
        let tenant = ours
            .iter()
            .filter(|t| t["labels"]["namespace"] == NS)
            .count();
        let operator = ours.len() - tenant;
        let fresh = ours.iter().all(|t| {
            t["health"] == "up"
                && t["lastScrape"]
                    .as_str()
                    .and_then(|at| at.parse::<k8s_openapi::jiff::Timestamp>().ok())
                    .is_some_and(|at| at.as_millisecond() as f64 / 1000.0 > since)
        });
        // 2 servers x 2 paths, and the operator's 2 replicas.
        (tenant == 4 && operator == 2 && fresh).then_some(ours.len())
    })
    .await
}

/// The Tenant's ServiceMonitor and token Secret as the API has them (`None`: it could not be
/// asked).
async fn made_for_monitoring(
    client: &kube::Client,
) -> Option<(Option<DynamicObject>, Option<Secret>)> {
    let monitor = service_monitors(client, NS)
        .get_opt(&format!("{NAME}-s3"))
        .await
        .ok()?;
    let token = Api::<Secret>::namespaced(client.clone(), NS)
        .get_opt(&format!("{NAME}-prometheus-token"))
        .await
        .ok()?;
    Some((monitor, token))
}

/// Every token seen, in order, with when (Unix seconds).
type Tokens = Arc<Mutex<Vec<(f64, Vec<u8>)>>>;

/// Follows the token Secret into Prometheus' credentials file, as a Prometheus operator follows
/// the Secrets its ServiceMonitors name.
fn follow_token(client: kube::Client, file: PathBuf) -> Tokens {
    let seen: Tokens = Arc::default();
    let tokens = seen.clone();
    tokio::spawn(async move {
        let secrets = Api::<Secret>::namespaced(client, NS);
        loop {
            if let Ok(secret) = secrets.get(&format!("{NAME}-prometheus-token")).await
                && let Some(token) = secret.data.and_then(|mut d| d.remove("token"))
            {
                let mut seen = tokens.lock().unwrap();
                if seen.last().map(|(_, t)| t) != Some(&token.0) {
                    std::fs::write(&file, &token.0).unwrap();
                    seen.push((now(), token.0));
                }
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    });
    seen
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// The processes of a pod's containers on the node (by the pod's uid in their cgroup path), its
/// sandbox's pause process left out.
fn servers_of(uid: &str) -> Vec<i32> {
    let underscored = uid.replace('-', "_");
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
                .is_ok_and(|c| c.contains(uid) || c.contains(&underscored))
                && std::fs::read_to_string(format!("/proc/{pid}/comm"))
                    .is_ok_and(|comm| comm.trim() != "pause")
        })
        .collect()
}

fn signal(pids: &[i32], signal: &str) {
    for pid in pids {
        let _ = std::process::Command::new("kill")
            .args([signal, &pid.to_string()])
            .status();
    }
}

#[tokio::test]
async fn a_tenant_is_scraped_by_prometheus_with_the_operators_token_through_a_rotation_and_alerts_on_lost_quorum()
 {
    let setup = setup();
    let _turn = serial().await;
    let client = setup.cp.client().await.unwrap();
    install_crds(&client).await;
    create_namespace_with_credentials(&client, NS, NAME).await;
    let tenant = two_by_two(
        NAME,
        NS,
        json!({
            "prometheusOperator": true,
            "prometheusOperatorScrapeMetricsPaths": ["/minio/v2/metrics/cluster", "/minio/v2/metrics/node"],
        }),
    );
    Api::<Tenant>::namespaced(client.clone(), NS)
        .create(
            &PostParams::default(),
            &serde_json::from_value(tenant).unwrap(),
        )
        .await
        .unwrap();
    wait_ready(setup, &client, NS, NAME, Duration::from_secs(300)).await;
    let made = wait_for(
        Duration::from_secs(60),
        "the ServiceMonitor and the token",
        || async {
            let (Some(monitor), Some(token)) = made_for_monitoring(&client).await? else {
                return None;
            };
            Some((serde_json::to_value(monitor).ok()?, token))
        },
    )
    .await;
    let (monitor, token) = match made {
        Ok(made) => made,
        Err(e) => panic!("{e}\n{}", diagnose(setup, NS).await),
    };
    let token_value = token.data.clone().unwrap()["token"].0.clone();
    // Signed for the scrape user, never the root user, and short-lived.
    let claims: Value = {
        use base64::Engine;
        let text = String::from_utf8(token_value.clone()).unwrap();
        let payload = text.split('.').nth(1).unwrap();
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .unwrap(),
        )
        .unwrap()
    };
    assert_eq!(claims["sub"], "hanzo-prometheus", "{claims}");
    assert_eq!(claims["iss"], "prometheus", "{claims}");
    let left = claims["exp"].as_f64().unwrap() - now();
    assert!(left > 0.0 && left <= 24.0 * 3600.0, "{claims}");

    let dir = tempfile::tempdir().unwrap();
    let monitors = [monitor, operator_service_monitor()];
    write_secret_files(&client, dir.path(), &monitors).await;
    let kubeconfig = setup.cp.kubeconfig_path().to_owned();
    let root = dir.path().to_owned();
    let jobs = prometheus::scrape_config(&monitors, &kubeconfig, &|ns, name, key| {
        secret_file(&root, ns, name, key)
    });
    let rule: Value = serde_yaml_ng::from_slice(
        &std::fs::read(hanzo_testkit::repo_root().join("deploy/monitoring/prometheusrule.yaml"))
            .unwrap(),
    )
    .unwrap();
    let rules = dir.path().join("rules.yaml");
    std::fs::write(&rules, serde_yaml_ng::to_string(&rule["spec"]).unwrap()).unwrap();
    let tokens = follow_token(
        client.clone(),
        secret_file(dir.path(), NS, &format!("{NAME}-prometheus-token"), "token"),
    );
    let prometheus = Prometheus::start(dir.path(), jobs, &[rules], Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("{e}"));
    let started = now();
    if let Err(e) = all_targets_up(&prometheus, started).await {
        panic!("{e}\n{:#?}", prometheus.targets());
    }
    // What the servers and the operator report arrives.
    for promql in [
        format!("minio_cluster_health_status{{namespace=\"{NS}\"}} == 1"),
        format!("minio_cluster_capacity_usable_total_bytes{{namespace=\"{NS}\"}} > 0"),
        format!("minio_node_drive_total{{namespace=\"{NS}\"}} > 0"),
        format!("hanzo_s3_operator_tenant_ready{{namespace=\"{NS}\",tenant=\"{NAME}\"}} == 1"),
        format!(
            "hanzo_s3_operator_tenant_servers_ready{{namespace=\"{NS}\",tenant=\"{NAME}\"}} == 2"
        ),
        "sum(hanzo_s3_operator_reconcile_leader) == 1".to_owned(),
    ] {
        let found = wait_for(Duration::from_secs(60), &promql, || async {
            let result = prometheus.query(&promql).ok()?;
            (!result.is_empty()).then_some(result)
        })
        .await;
        assert!(found.is_ok(), "{promql}: {found:?}");
    }

    // The dashboard's queries evaluate, and every metric they name exists.
    let names = prometheus.api("label/__name__/values", None).unwrap();
    let dashboard: Value = serde_json::from_slice(
        &std::fs::read(hanzo_testkit::repo_root().join("deploy/monitoring/dashboard.json"))
            .unwrap(),
    )
    .unwrap();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"]
                .as_str()
                .unwrap()
                .replace("$__rate_interval", "1m");
            if let Err(e) = prometheus.query(&expr) {
                panic!("{}: {expr}: {e}", panel["title"]);
            }
            for name in expr
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .filter(|w| w.starts_with("hanzo_s3_operator_"))
            {
                assert!(
                    names.as_array().unwrap().iter().any(|n| n == name),
                    "{}: {name} is not a metric the operator exports",
                    panel["title"]
                );
            }
        }
    }

    // A root-password rotation: every server restarts with the new one; the token, signed with the
    // scrape user's own key, stays valid, and every target is scraped with it afterwards.
    // The pods before it, listed first: the operator replaces them within moments.
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    let before: Vec<String> = pods
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .iter()
        .filter_map(|p| p.metadata.uid.clone())
        .collect();
    replace_root_password(&client, NS, NAME, "metrics-rotated-root-password").await;
    let replaced = wait_for(
        Duration::from_secs(300),
        "every server replaced and Ready",
        || async {
            let now: Vec<Pod> = pods.list(&Default::default()).await.ok()?.items;
            let all_new = now.len() == 2
                && now
                    .iter()
                    .all(|p| !before.contains(p.metadata.uid.as_ref().unwrap()));
            let ready = now.iter().all(|p| {
                p.status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
            });
            (all_new && ready).then_some(())
        },
    )
    .await;
    if let Err(e) = replaced {
        panic!("{e}\n{}", diagnose(setup, NS).await);
    }
    let rotated = now();
    if let Err(e) = all_targets_up(&prometheus, rotated).await {
        panic!("after the rotation: {e}\n{:#?}", prometheus.targets());
    }
    let settled = now();
    // The token is made again before it expires (with a third of the tier's 120 s left), and
    // Prometheus, given each new one as a Prometheus operator would, scrapes on with it.
    let renewed = wait_for(
        Duration::from_secs(METRICS_TOKEN_LIFETIME_SECS + 30),
        "a metrics token made again after the rotation",
        || async {
            let seen = tokens.lock().unwrap();
            seen.iter().map(|(at, _)| *at).find(|at| *at > settled)
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}: {} token(s) seen", tokens.lock().unwrap().len()));
    // Scrapes after the new token reached Prometheus' file (the follower writes it within 2 s)
    // succeed: the servers take it.
    if let Err(e) = all_targets_up(&prometheus, renewed + 3.0).await {
        panic!(
            "after the token's renewal at {renewed}: {e}\n{:#?}",
            prometheus.targets()
        );
    }

    // Half the servers stop answering: one server's process is killed as often as the kubelet
    // starts it again (killed, its peers see its connections close at once; frozen, they waited
    // on it for seconds and so did the scrapes of the other server), so the tenant has no write
    // quorum, and the alert fires after its minute.
    let down = pods.get(&format!("{NAME}-p0-1")).await.unwrap();
    let uid = down.metadata.uid.clone().unwrap();
    assert!(
        !servers_of(&uid).is_empty(),
        "the server's process on the node"
    );
    let killing = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let killer = {
        let killing = killing.clone();
        tokio::spawn(async move {
            while killing.load(std::sync::atomic::Ordering::Relaxed) {
                signal(&servers_of(&uid), "-KILL");
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        })
    };
    let fired = wait_for(
        Duration::from_secs(240),
        "HanzoS3TenantWriteQuorumLost firing",
        || async {
            prometheus.alerts().ok()?.into_iter().find(|a| {
                a["labels"]["alertname"] == "HanzoS3TenantWriteQuorumLost"
                    && a["labels"]["namespace"] == NS
                    && a["state"] == "firing"
            })
        },
    )
    .await;
    killing.store(false, std::sync::atomic::Ordering::Relaxed);
    let _ = killer.await;
    let alert = fired.unwrap_or_else(|e| {
        panic!(
            "{e}\n{:#?}\n{:#?}",
            prometheus.alerts(),
            prometheus.query(&format!(
                "minio_cluster_health_status{{namespace=\"{NS}\"}}"
            ))
        )
    });
    assert_eq!(alert["labels"]["severity"], "critical", "{alert:#}");
    wait_ready(setup, &client, NS, NAME, Duration::from_secs(300)).await;

    // Turned off, what monitoring made goes.
    Api::<Tenant>::namespaced(client.clone(), NS)
        .patch(
            NAME,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"prometheusOperator": false}})),
        )
        .await
        .unwrap();
    let gone = wait_for(
        Duration::from_secs(60),
        "the ServiceMonitor and the token gone",
        || async { matches!(made_for_monitoring(&client).await?, (None, None)).then_some(()) },
    )
    .await;
    if let Err(e) = gone {
        panic!("{e}\n{}", diagnose(setup, NS).await);
    }
}

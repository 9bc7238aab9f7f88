//! The example tenants of `dev`: applied each in a namespace of its own, an invalid one denied,
//! waited for until Ready, and reported.

use std::time::Duration;

use hanzo_local_cluster::ControlPlane;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Namespace, Pod, Secret, ServiceAccount};
use kube::api::{Api, ListParams, PostParams};

use super::{DevArgs, DevError, endpoints, step, wait};
use crate::api::status::CONDITION_READY;
use crate::api::tenant::Tenant;
use crate::reconcile::status;

const EXAMPLES: [(&str, &str); 3] = [
    (
        "tenant-minimal",
        include_str!("../../../examples/tenant-minimal.yaml"),
    ),
    (
        "tenant-multi-pool",
        include_str!("../../../examples/tenant-multi-pool.yaml"),
    ),
    (
        "tenant-tls",
        include_str!("../../../examples/tenant-tls.yaml"),
    ),
];

/// Applies the examples, waits for them to be Ready, and says what runs (and, on the real node,
/// how to reach each tenant). An error once the examples are applied means they were not Ready
/// in time.
pub(super) async fn run(
    client: &kube::Client,
    cp: &ControlPlane,
    args: &DevArgs,
    ca_pem: &str,
) -> Result<(), DevError> {
    let applied = apply_examples(client, args.real_node).await?;
    let timeout = Duration::from_secs(if args.real_node { 600 } else { 180 });
    step(&format!(
        "waiting for the example tenants to be Ready{}",
        if args.real_node {
            " (the S3 clusters answer healthy)"
        } else {
            ""
        }
    ));
    let outcome = wait(timeout, "the example tenants to be Ready", async || {
        all_ready(client, &applied).await.then_some(())
    })
    .await;
    report(client, &applied, args.real_node).await?;
    if outcome.is_ok()
        && let Some(node) = cp.real_node()
    {
        endpoints::print(client, node, &applied, ca_pem, &args.kubeconfig_out).await?;
    }
    outcome
}

/// Whether every Tenant of `namespaces` says Ready with every server available (false when they
/// cannot be listed). Ready alone can come a probe period before the last servers' pods are
/// Ready (the S3 cluster answers healthy first), and the summary below counts them.
async fn all_ready(client: &kube::Client, namespaces: &[String]) -> bool {
    for ns in namespaces {
        let Ok(tenants) = Api::<Tenant>::namespaced(client.clone(), ns)
            .list(&ListParams::default())
            .await
        else {
            return false;
        };
        if !tenants
            .items
            .iter()
            .all(|t| status::was(t, CONDITION_READY) && every_server_available(t))
        {
            return false;
        }
    }
    true
}

fn every_server_available(tenant: &Tenant) -> bool {
    let servers: i32 = tenant.spec.pools.iter().map(|p| p.servers).sum();
    tenant
        .status
        .as_ref()
        .and_then(|s| s.available_replicas)
        .is_some_and(|available| available >= servers)
}

/// Why an example tenant cannot run on the local real node (this machine), if it cannot.
fn unfit_for_real_node(tenant: &Tenant) -> Option<String> {
    let stand_in = hanzo_local_cluster::node::s3_server_image();
    if let Some(image) = tenant.spec.image.as_deref().filter(|i| *i != stand_in) {
        return Some(format!(
            "it asks for the image {image}, which cannot be pulled here (no registry; the node has {stand_in})"
        ));
    }
    let cpus: f64 = tenant
        .spec
        .pools
        .iter()
        .map(|p| {
            let per_server = p
                .resources
                .as_ref()
                .and_then(|r| r.requests.as_ref())
                .and_then(|r| r.get("cpu"))
                .and_then(|q| crate::api::quantity::Quantity::parse(&q.0).ok())
                .map_or(0.0, |q| q.as_f64());
            per_server * f64::from(p.servers)
        })
        .sum();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    (cpus > cores).then(|| format!("its servers request {cpus} CPUs; this machine has {cores}"))
}

/// Applies each example into a namespace of its own (a namespace holds one Tenant), then shows an
/// invalid Tenant being denied. Returns the namespaces used.
async fn apply_examples(client: &kube::Client, real_node: bool) -> Result<Vec<String>, DevError> {
    let mut used = Vec::new();
    for (name, text) in EXAMPLES {
        if apply_example(client, name, text, real_node).await? {
            used.push(name.to_owned());
        }
    }
    show_denial(client).await?;
    Ok(used)
}

/// One example file into namespace `name`; false when it cannot run on the real node.
async fn apply_example(
    client: &kube::Client,
    name: &'static str,
    text: &str,
    real_node: bool,
) -> Result<bool, DevError> {
    let read = crate::manifest::parse(name, text);
    if let Some(e) = read.error {
        return Err(DevError::Example(name, e.to_string()));
    }
    if real_node
        && let Some(why) = read
            .documents
            .iter()
            .filter(|d| crate::manifest::is_tenant(&d.value))
            .filter_map(|d| crate::admission::parse_tenant(&d.value).ok())
            .find_map(|t| unfit_for_real_node(&t))
    {
        step(&format!(
            "skipping examples/{name}.yaml on the real node: {why}"
        ));
        return Ok(false);
    }
    step(&format!(
        "applying examples/{name}.yaml in namespace {name}"
    ));
    create_namespace(client, name).await?;
    wait(
        Duration::from_secs(30),
        "the namespace's default ServiceAccount",
        async || {
            Api::<ServiceAccount>::namespaced(client.clone(), name)
                .get_opt("default")
                .await
                .ok()?
        },
    )
    .await?;
    for doc in read.documents {
        if crate::manifest::is_tenant(&doc.value) {
            let tenant: Tenant = crate::admission::parse_tenant(&doc.value)
                .map_err(|v| DevError::Example(name, v.message()))?;
            create_tenant(client, name, &tenant).await?;
        } else {
            let secret: Secret = serde_json::from_value(doc.value)
                .map_err(|e| DevError::Example(name, e.to_string()))?;
            Api::<Secret>::namespaced(client.clone(), name)
                .create(&PostParams::default(), &secret)
                .await?;
        }
    }
    Ok(true)
}

async fn create_namespace(client: &kube::Client, name: &'static str) -> Result<(), DevError> {
    let ns: Namespace = serde_json::from_value(serde_json::json!({"metadata": {"name": name}}))
        .map_err(|e| DevError::Example(name, e.to_string()))?;
    // One left from an earlier run is used as it is.
    let _ = Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await;
    Ok(())
}

/// Creates the Tenant through both webhooks and says what defaulting made of it.
async fn create_tenant(client: &kube::Client, ns: &str, tenant: &Tenant) -> Result<(), DevError> {
    // Retried: the webhook configuration takes a moment to reach the apiserver.
    let created = wait(
        Duration::from_secs(15),
        "the webhooks to be called",
        async || {
            let t = Api::<Tenant>::namespaced(client.clone(), ns)
                .create(&PostParams::default(), tenant)
                .await
                .ok()?;
            t.spec.image.is_some().then_some(t)
        },
    )
    .await?;
    println!(
        "    Tenant {ns}/{} admitted and defaulted: image {}, serviceAccountName {}, pools {:?}",
        created.name(),
        created.spec.image.as_deref().unwrap_or("-"),
        created.spec.service_account_name.as_deref().unwrap_or("-"),
        created
            .spec
            .pools
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>()
    );
    Ok(())
}

/// An invalid Tenant, to show the denial a user gets: every violation at once. Both break rules
/// only the webhook checks: one the backstop policy also covers would be refused by it first (the
/// apiserver runs policies before webhooks), with its rules' messages alone.
async fn show_denial(client: &kube::Client) -> Result<(), DevError> {
    step("applying an invalid tenant (17 servers, mountPath \"export\") to show a denial");
    let mut invalid = crate::admission::parse_tenant(
        &crate::manifest::parse("invalid", EXAMPLES[0].1)
            .documents
            .into_iter()
            .find(|d| crate::manifest::is_tenant(&d.value))
            .map(|d| d.value)
            .unwrap_or_default(),
    )
    .map_err(|v| DevError::Example("invalid", v.message()))?;
    invalid.metadata.name = Some("broken".to_owned());
    if let Some(pool) = invalid.spec.pools.first_mut() {
        pool.servers = 17;
    }
    invalid.spec.mount_path = Some("export".to_owned());
    create_namespace(client, "invalid-example").await?;
    match Api::<Tenant>::namespaced(client.clone(), "invalid-example")
        .create(&PostParams::default(), &invalid)
        .await
    {
        Err(kube::Error::Api(status)) => {
            println!("    denied ({}): {}", status.code, status.message)
        }
        Err(e) => println!("    denied: {e}"),
        Ok(_) => println!("    unexpectedly admitted"),
    }
    Ok(())
}

async fn report(
    client: &kube::Client,
    namespaces: &[String],
    real_node: bool,
) -> Result<(), DevError> {
    step("what is running");
    for ns in namespaces {
        for t in Api::<Tenant>::namespaced(client.clone(), ns)
            .list(&ListParams::default())
            .await?
            .items
        {
            let status = t.status.clone().unwrap_or_default();
            println!(
                "    Tenant {ns}/{}: {} ({} servers available)",
                t.name(),
                status.current_state.as_deref().unwrap_or("pending"),
                status.available_replicas.unwrap_or(0)
            );
        }
        for sts in Api::<StatefulSet>::namespaced(client.clone(), ns)
            .list(&ListParams::default())
            .await?
            .items
        {
            let ready = sts
                .status
                .as_ref()
                .and_then(|s| s.ready_replicas)
                .unwrap_or(0);
            println!(
                "      StatefulSet {}: {ready}/{} ready",
                sts.metadata.name.unwrap_or_default(),
                sts.spec.replicas.unwrap_or(0)
            );
        }
        let pods = Api::<Pod>::namespaced(client.clone(), ns)
            .list(&ListParams::default())
            .await?
            .items;
        let running = pods
            .iter()
            .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
            .count();
        println!(
            "      Pods Running on {}: {running}/{}",
            if real_node {
                "the real node"
            } else {
                "fake nodes"
            },
            pods.len()
        );
    }
    Ok(())
}

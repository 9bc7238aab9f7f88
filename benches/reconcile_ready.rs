//! Time from `kubectl apply` to Ready, and API writes per tenant, for 1 and for 50 tenants on the
//! local control plane (fake nodes). Not a test: numbers go to benches/results/reconcile.md.
//!
//!   cargo bench --bench reconcile_ready

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hanzo_local_cluster::{ControlPlane, Options};
use hanzo_s3_operator::admission::DefaultsConfig;
use hanzo_s3_operator::api::crd::crd;
use hanzo_s3_operator::api::tenant::Tenant;
use hanzo_s3_operator::certs::Ca;
use hanzo_s3_operator::reconcile::{ReadyWhen, Settings, api_writes};
use hanzo_testkit::bench;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ListParams, Patch, PatchParams};

async fn round(client: &kube::Client, tag: &str, count: usize) -> (f64, f64, f64) {
    let writes_before = api_writes();
    let started = Instant::now();
    let mut names = Vec::new();
    for i in 0..count {
        let ns = format!("bench-{tag}-{i}");
        bench::create_small_tenant(client, &ns).await;
        names.push(ns);
    }
    // Pods need their namespace's default ServiceAccount, made by the controller-manager.
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let mut ready = 0;
        for ns in &names {
            let list = Api::<Tenant>::namespaced(client.clone(), ns)
                .list(&ListParams::default())
                .await
                .unwrap();
            ready += list.items.iter().filter(|t| bench::is_ready(t)).count();
        }
        if ready == count || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let to_ready = started.elapsed().as_secs_f64();
    // Let the last status writes land, then count.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let writes = (api_writes() - writes_before) as f64 / count as f64;
    (to_ready, writes, to_ready / count as f64)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let cp = ControlPlane::start(Options::with_nodes(4)).await.unwrap();
        let client = cp.client().await.unwrap();
        let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
        crds.patch("tenants.minio.min.io", &PatchParams::apply("bench").force(), &Patch::Apply(&crd().unwrap())).await.unwrap();
        tokio::time::sleep(Duration::from_secs(2)).await;
        let controller_client = client.clone();
        tokio::spawn(async move {
            let ca = Arc::new(Ca::generate("bench-ca").unwrap());
            hanzo_s3_operator::reconcile::run(controller_client, Settings::new(DefaultsConfig::default(), ca, ReadyWhen::PodsReady), std::future::pending()).await;
        });
        let mut table = String::from("| tenants | apply to all Ready | API writes per tenant (reconciler) |\n|---|---|---|\n");
        let sizes: &[(&str, usize)] = if bench::smoke() { &[("one", 1), ("five", 5)] } else { &[("one", 1), ("fifty", 50)] };
        for &(tag, count) in sizes {
            let (total, writes, _) = round(&client, tag, count).await;
            let line = format!("| {count} | {total:.1} s | {writes:.1} |\n");
            print!("{line}");
            table.push_str(&line);
        }
        let mut out = String::new();
        let _ = writeln!(out, "# Benchmark: reconciler, apply to Ready\n");
        let _ = writeln!(out, "- command: `cargo bench --bench reconcile_ready`");
        let _ = writeln!(out, "- control plane: etcd, kube-apiserver, controller-manager, scheduler and kwok with 4 fake nodes, all on this machine ({} cores), with the reconciler in the same process", std::thread::available_parallelism().map_or(0, |n| n.get()));
        let _ = writeln!(out, "- each tenant: its own namespace, a configuration Secret, one pool of 4 servers x 1 volume (4 Pods, 4 claims); clock starts before the first namespace is created");
        let _ = writeln!(out, "- writes: server-side applies and status patches made by the reconciler (ServiceAccount, configuration and TLS Secrets, 3 Services, 1 StatefulSet, status); Kubernetes' own controllers' writes not counted\n");
        out.push_str(&table);
        std::fs::write(bench::results_path("reconcile.md"), out).unwrap();
        cp.stop();
    });
}

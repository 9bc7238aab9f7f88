//! The real node, measured (not a test): start to node Ready, Tenant apply to S3 healthy, and
//! object round trips through the tenant's S3 Service. Numbers go to benches/results/real-node.md,
//! with the build times benches/real-node.sh measured before (passed in the environment).
//!
//!   benches/real-node.sh [--cold]        (needs root)

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hanzo_local_cluster::{ControlPlane, Options};
use hanzo_s3_operator::admission::{DefaultsConfig, defaulted};
use hanzo_s3_operator::api::crd::crd;
use hanzo_s3_operator::api::tenant::Tenant;
use hanzo_s3_operator::certs::Ca;
use hanzo_s3_operator::reconcile::{ReadyWhen, Settings};
use hanzo_testkit::{PoolBuilder, TenantBuilder, bench};
use k8s_openapi::api::core::v1::{Namespace, Secret, Service};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

const ACCESS: &str = "bench-admin";
const SECRET: &str = "bench-only-password";

fn command_output(program: &str, args: &[&str]) -> String {
    std::process::Command::new(program)
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

async fn s3(cp: &ControlPlane, ip: &str, ca: &std::path::Path, args: &[&str]) -> Value {
    let node = cp.real_node().unwrap();
    let out = tokio::process::Command::new(node.s3client())
        .env("S3_ACCESS_KEY", ACCESS)
        .env("S3_SECRET_KEY", SECRET)
        .args([
            "--endpoint",
            "minio.bench.svc.cluster.local:443",
            "--resolve-to",
            ip,
            "--ca",
        ])
        .arg(ca)
        .args(args)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        hanzo_local_cluster::ensure_built().unwrap();
        hanzo_local_cluster::node::ensure_node_built().unwrap();
        let started = Instant::now();
        let cp = ControlPlane::start(Options::with_real_node(0)).await.unwrap();
        let to_node_ready = started.elapsed();
        let client = cp.client().await.unwrap();
        Api::<CustomResourceDefinition>::all(client.clone())
            .patch("tenants.minio.min.io", &PatchParams::apply("bench").force(), &Patch::Apply(&crd().unwrap()))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_secs(2)).await;
        let ca = Arc::new(Ca::generate("bench-ca").unwrap());
        let ca_file = cp.dir().join("bench-ca.pem");
        std::fs::write(&ca_file, ca.cert_pem()).unwrap();
        let defaults = DefaultsConfig {
            s3_image: hanzo_local_cluster::node::s3_server_image().to_owned(),
            ..DefaultsConfig::default()
        };
        let operator = client.clone();
        let settings = Settings::new(defaults.clone(), ca, ReadyWhen::S3Healthy);
        tokio::spawn(async move { hanzo_s3_operator::reconcile::run(operator, settings, std::future::pending()).await });

        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": "bench"}})).unwrap())
            .await
            .unwrap();
        while Api::<k8s_openapi::api::core::v1::ServiceAccount>::namespaced(client.clone(), "bench").get_opt("default").await.unwrap().is_none() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let secret: Secret = serde_json::from_value(json!({"metadata": {"name": "bench-env"}, "stringData": {"config.env": format!("export S3_ROOT_USER=\"{ACCESS}\"\nexport S3_ROOT_PASSWORD=\"{SECRET}\"\n")}})).unwrap();
        Api::<Secret>::namespaced(client.clone(), "bench").create(&PostParams::default(), &secret).await.unwrap();
        let tenant: Tenant = TenantBuilder::new("bench")
            .namespace("bench")
            .configuration("bench-env")
            .spec("requestAutoCert", true)
            .pool(PoolBuilder::named("p0", 4, 2).claim_name("data"))
            .typed();
        // As the mutating webhook would store it.
        let tenant = defaulted(&tenant, &defaults);
        let applied = Instant::now();
        let tenants: Api<Tenant> = Api::namespaced(client.clone(), "bench");
        tenants.create(&PostParams::default(), &tenant).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            let t = tenants.get("bench").await.unwrap();
            let healthy = t.status.as_ref().is_some_and(|s| s.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True" && c.reason == "S3Healthy"));
            if healthy {
                break;
            }
            assert!(Instant::now() < deadline, "the tenant never answered healthy");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let to_healthy = applied.elapsed();
        let ip = Api::<Service>::namespaced(client.clone(), "bench").get("minio").await.unwrap().spec.unwrap().cluster_ip.unwrap();
        s3(&cp, &ip, &ca_file, &["make-bucket", "bench"]).await;
        let objects = if bench::smoke() { "20" } else { "200" };
        let put = s3(&cp, &ip, &ca_file, &["put", "bench", objects]).await;
        let get = s3(&cp, &ip, &ca_file, &["verify", "bench", objects]).await;
        assert_eq!(get["failures"], 0);

        let mut out = String::from("# Real node: start-up, a tenant to S3 healthy, object round trips\n\n");
        let _ = writeln!(out, "- command: `benches/real-node.sh{}` (root)", if std::env::var("BUILD_COLD_S").is_ok() { " --cold" } else { "" });
        let _ = writeln!(out, "- date: {}", command_output("date", &["-u", "+%Y-%m-%d %H:%M UTC"]));
        let _ = writeln!(out, "- machine: {} cores, {}; everything shares it (control plane, node, 4 servers, client)", std::thread::available_parallelism().map_or(0, |n| n.get()), command_output("uname", &["-sr"]));
        let _ = writeln!(out, "- versions: Kubernetes {}, containerd {}, CNI plugins {}, CoreDNS {}, S3 server MinIO {} (standing in for Hanzo S3); {}",
            hanzo_local_cluster::kubernetes_version(), version("CONTAINERD_VERSION"), version("CNI_PLUGINS_VERSION"), version("COREDNS_VERSION"), version("MINIO_VERSION"),
            command_output("rustc", &["--version"]));
        let _ = writeln!(out, "- tenant: one pool of 4 servers x 2 volumes, requestAutoCert (TLS), hostPath volumes on this machine's disk; the reconciler runs in the bench process with --ready-when s3-healthy");
        let _ = writeln!(out, "- objects: 200, from 1 KiB to 37 KiB and every tenth 6 MiB (multipart, 5 MiB parts), written then read back and compared by crates/local-cluster/node/s3client (minio-go), over HTTPS to the S3 Service's ClusterIP (kube-proxy), one at a time\n");
        out.push_str("| what | number |\n|---|---|\n");
        if let Ok(cold) = std::env::var("BUILD_COLD_S") {
            let _ = writeln!(out, "| build-node.sh, cold (empty Go module and build caches: download + compile of kubelet, kube-proxy, kubectl, containerd, CNI plugins, CoreDNS, MinIO, images) | {cold} s |");
        }
        if let Ok(warm) = std::env::var("BUILD_WARM_S") {
            let _ = writeln!(out, "| build-node.sh, warm (everything cached) | {warm} s |");
        }
        let _ = writeln!(out, "| start to real node Ready (etcd, apiserver, controller-manager, scheduler, containerd, images imported, CoreDNS, kubelet, kube-proxy) | {:.1} s |", to_node_ready.as_secs_f64());
        let _ = writeln!(out, "| Tenant apply to S3 healthy (Ready with reason S3Healthy) | {:.1} s |", to_healthy.as_secs_f64());
        let _ = writeln!(out, "| PUT {} objects, {:.1} MiB | {:.1} s, {:.1} MiB/s |", put["objects"], put["bytes"].as_f64().unwrap_or(0.0) / 1048576.0, put["seconds"].as_f64().unwrap_or(0.0), put["mib_per_s"].as_f64().unwrap_or(0.0));
        let _ = writeln!(out, "| GET and compare {} objects | {:.1} s, {:.1} MiB/s |", get["objects"], get["seconds"].as_f64().unwrap_or(0.0), get["mib_per_s"].as_f64().unwrap_or(0.0));
        std::fs::write(bench::results_path("real-node.md"), &out).unwrap();
        print!("{out}");
        cp.stop();
    });
}

fn version(key: &str) -> String {
    include_str!("../crates/local-cluster/versions.env")
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('=').map(str::to_owned))
        .unwrap_or_default()
}

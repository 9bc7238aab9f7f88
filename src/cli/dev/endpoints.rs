//! How to reach each tenant on the real node: its S3 endpoint, where its credentials are, and
//! client commands that work as printed from this machine.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use k8s_openapi::api::core::v1::{Secret, Service};
use kube::api::{Api, ListParams};

use super::{DevError, step, write_atomically};
use crate::api::names::S3_SERVICE_NAME;
use crate::api::tenant::Tenant;

/// Where the files `print` writes go, and the tools its commands name.
struct Files<'a> {
    dir: &'a Path,
    ca_file: std::path::PathBuf,
    kubeconfig: &'a Path,
    kubectl: std::path::PathBuf,
}

/// For each tenant on the real node: its S3 endpoint, where its credentials are, and client
/// commands that work as printed from this machine (kube-proxy's rules on this host reach the
/// Service's ClusterIP; curl signs the requests with SigV4).
pub(super) async fn print(
    client: &kube::Client,
    node: &hanzo_local_cluster::RealNode,
    namespaces: &[String],
    ca_pem: &str,
    kubeconfig: &Path,
) -> Result<(), DevError> {
    step("S3 endpoints (the servers are MinIO, standing in for Hanzo S3)");
    let dir = kubeconfig.parent().unwrap_or(Path::new(""));
    let files = Files {
        dir,
        ca_file: dir.join("hanzo-dev-ca.pem"),
        kubeconfig,
        kubectl: node.kubectl(),
    };
    write_atomically(&files.ca_file, ca_pem.as_bytes())?;
    for ns in namespaces {
        for t in Api::<Tenant>::namespaced(client.clone(), ns)
            .list(&ListParams::default())
            .await?
            .items
        {
            print_tenant(client, ns, &t, &files).await?;
        }
    }
    Ok(())
}

async fn print_tenant(
    client: &kube::Client,
    ns: &str,
    t: &Tenant,
    files: &Files<'_>,
) -> Result<(), DevError> {
    let Some(ip) = Api::<Service>::namespaced(client.clone(), ns)
        .get_opt(S3_SERVICE_NAME)
        .await?
        .and_then(|s| s.spec)
        .and_then(|s| s.cluster_ip)
    else {
        return Ok(());
    };
    let host = format!(
        "{S3_SERVICE_NAME}.{ns}.svc.{}",
        hanzo_local_cluster::node::CLUSTER_DOMAIN
    );
    let (scheme, port) = if t.tls() {
        ("https", 443)
    } else {
        ("http", 80)
    };
    let secret_name = t
        .spec
        .configuration
        .as_ref()
        .map(|c| c.name.clone())
        .unwrap_or_default();
    let credentials = files.dir.join(format!("hanzo-dev-{ns}.credentials"));
    copy_credentials(client, ns, &secret_name, &credentials).await?;
    let curl = format!(
        "curl -sS --fail-with-body {cacert}--resolve {host}:{port}:{ip} --aws-sigv4 aws:amz:us-east-1:s3 --user \"$(cat {creds})\"",
        cacert = if t.tls() {
            format!("--cacert {} ", files.ca_file.display())
        } else {
            String::new()
        },
        creds = credentials.display(),
    );
    let first_pod = t
        .spec
        .pools
        .first()
        .map(|p| format!("{}-0", crate::api::names::pool_statefulset_name(t, p)))
        .unwrap_or_default();
    println!(
        "    Tenant {ns}/{}: {scheme}://{host} (Service ClusterIP {ip}, reachable from this machine)",
        t.name()
    );
    println!(
        "      credentials: Secret {ns}/{secret_name}, key config.env (S3_ROOT_USER, S3_ROOT_PASSWORD); copied to {} (mode 0600)",
        credentials.display()
    );
    println!("      make a bucket: {curl} -X PUT {scheme}://{host}/demo");
    println!("      list buckets:  {curl} {scheme}://{host}/");
    println!(
        "      or through a pod: KUBECONFIG={} {} -n {ns} port-forward pod/{first_pod} 9000",
        files.kubeconfig.display(),
        files.kubectl.display()
    );
    Ok(())
}

/// The root credentials of the configuration Secret as `user:password`, in a file only its owner
/// reads (curl's `--user "$(cat FILE)"`).
async fn copy_credentials(
    client: &kube::Client,
    ns: &str,
    secret_name: &str,
    file: &Path,
) -> Result<(), DevError> {
    let entries = Api::<Secret>::namespaced(client.clone(), ns)
        .get_opt(secret_name)
        .await?
        .and_then(|s| s.data)
        .and_then(|d| d.get("config.env").cloned())
        .map(|b| crate::reconcile::desired::parse_config_env(&String::from_utf8_lossy(&b.0)))
        .unwrap_or_default();
    let value = |key: &str| {
        entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    };
    if let (Some(user), Some(password)) = (value("S3_ROOT_USER"), value("S3_ROOT_PASSWORD")) {
        write_atomically(file, format!("{user}:{password}").as_bytes())?;
        let _ = std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600));
    }
    Ok(())
}

//! What a Tenant becomes, as pure functions of the defaulted Tenant: Services, the ServiceAccount,
//! the rendered configuration Secret and one StatefulSet per pool. Names, labels, ports, arguments
//! and environment follow the Go operators, so a cluster moved from them sees the same objects.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    StatefulSet, StatefulSetPersistentVolumeClaimRetentionPolicy, StatefulSetSpec,
    StatefulSetUpdateStrategy,
};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EnvVar, HTTPGetAction, KeyToPath, Lifecycle, LifecycleHandler,
    PersistentVolumeClaim, PodSecurityContext, PodSpec, PodTemplateSpec, Probe,
    ProjectedVolumeSource, SecretProjection, SecretVolumeSource, SecurityContext, Service,
    ServiceAccount, ServicePort, ServiceSpec, SleepAction, Volume, VolumeMount, VolumeProjection,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::certs_dir;
use super::scrape;
use crate::admission::validate::erasure::{self, ServerSettings};
use crate::api::names::{
    CONSOLE_LABEL, POOL_LABEL, S3_SERVICE_NAME, SERVER_CONTAINER_NAME, TENANT_LABEL,
    configuration_secret_name, console_service_name, headless_service_name, pool_statefulset_name,
    volume_claim_name,
};
use crate::api::tenant::{API_VERSION, KIND, Pool, Tenant};

pub const S3_PORT: i32 = 9000;
pub const CONSOLE_PORT: i32 = 9090;
pub const CONSOLE_TLS_PORT: i32 = 9443;
pub const SFTP_PORT: i32 = 8022;
pub const CERTS_DIR: &str = "/tmp/certs";
pub const CONFIG_DIR: &str = "/tmp/minio";
pub const CONFIG_FILE: &str = "/tmp/minio/config.env";
/// Pod-template annotation: a hash of the rendered configuration, so a credentials change rolls pods.
pub const CONFIG_HASH_ANNOTATION: &str = "hanzo.ai/configuration-hash";
/// The last entry of the rendered `config.env`: the hash of the rest of it, which the server shows
/// among its variables (the admin API's server info, as `MINIO_OPERATOR_CONFIGURATION` on the
/// MinIO image) and so tells which configuration it read when it last started.
pub const CONFIGURATION_MARK: &str = "S3_OPERATOR_CONFIGURATION";
/// Pod-template annotation: a hash of the template without the configuration's hashes. Pods with
/// the current one need only their configuration file re-read (reconcile/rollout.rs).
pub const TEMPLATE_HASH_ANNOTATION: &str = "hanzo.ai/template-hash";
/// On a pod restarted in place (reconcile/in_place.rs): when it was given the new configuration
/// (Unix seconds).
pub const CONFIGURED_AT_ANNOTATION: &str = "hanzo.ai/configured-at";
/// On a pod restarted in place: the configuration its server was asked to restart with, and when
/// (`<hash>@<Unix seconds>`).
pub const RESTARTED_FOR_ANNOTATION: &str = "hanzo.ai/restarted-for";
/// Pod-template annotation: a hash of the root credentials alone. Servers authenticate each other
/// with them, so servers of two values cannot form one cluster: when it changes, every server
/// restarts together instead of one at a time.
pub const CREDENTIALS_HASH_ANNOTATION: &str = "hanzo.ai/root-credentials-hash";
/// The newest operator CA a server of a requestAutoCert tenant trusts: the server reads its CAs
/// only when it starts, so a rotation of the operator CA restarts the servers (one at a time)
/// before any certificate the new CA signs is served. Absent until the first rotation.
pub const TRUSTED_CA_ANNOTATION: &str = "hanzo.ai/trusted-ca";
/// On a server pod: when the certificate last handed to it expires (unix seconds). Writing it makes
/// the kubelet sync the pod at once, which rewrites its Secret volumes: a renewed certificate
/// reaches the server's files in seconds instead of at the kubelet's next periodic sync.
pub const CERTIFICATE_ANNOTATION: &str = "hanzo.ai/certificate-not-after";
/// On a tenant's TLS Secret: the CA that signed its certificate (its fingerprint), which the
/// certificate alone does not tell apart from another CA of the same name.
pub const SIGNED_BY_ANNOTATION: &str = "hanzo.ai/signed-by";
/// How long a server may take to answer at all after it starts (slow drives, a first format)
/// before its startup probe fails it, and how long the rollout waits for a restarted server.
pub const STARTUP_ALLOWANCE_SECONDS: i32 = 600;
const PROBE_PERIOD_SECONDS: i32 = 5;
const PROBE_TIMEOUT_SECONDS: i32 = 8;
/// Seconds a stopping server keeps serving, so the Service stops sending it requests (kube-proxy's
/// rules follow the endpoints within a second or two) before it stops accepting them.
const PRE_STOP_SLEEP_SECONDS: i64 = 5;

/// What the pods are given besides the Tenant: hashes of the rendered configuration and of the
/// root credentials in it, and the erasure settings the servers read (`spec.env` and the
/// configuration Secret's, which size the disruption budgets).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rendered {
    pub config_hash: String,
    pub credentials_hash: String,
    pub erasure: ServerSettings,
    /// [`TRUSTED_CA_ANNOTATION`], once the operator CA was rotated.
    pub trust_mark: Option<String>,
    /// The keys the servers mount of each of the user's certificate Secrets
    /// (`externalCertSecret[i]`), as read from it; [`CertKeys::TLS`] for one not read.
    pub external_certificates: Vec<CertKeys>,
}

pub use super::certs_dir::CertKeys;

/// Everything the reconciler applies for one Tenant.
#[derive(Clone, Debug, PartialEq)]
pub struct DesiredObjects {
    pub services: Vec<Service>,
    pub service_account: ServiceAccount,
    pub statefulsets: Vec<StatefulSet>,
    pub disruption_budgets: Vec<PodDisruptionBudget>,
}

pub fn owner_reference(tenant: &Tenant) -> OwnerReference {
    OwnerReference {
        api_version: API_VERSION.to_owned(),
        kind: KIND.to_owned(),
        name: tenant.name().to_owned(),
        uid: tenant.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

fn meta(tenant: &Tenant, name: String, labels: BTreeMap<String, String>) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: Some(tenant.namespace().to_owned()),
        labels: Some(labels),
        owner_references: Some(vec![owner_reference(tenant)]),
        ..ObjectMeta::default()
    }
}

/// Labels of every pod of the tenant (the Go operators' tenant and console labels).
pub fn tenant_pod_labels(tenant: &Tenant) -> BTreeMap<String, String> {
    BTreeMap::from([
        (TENANT_LABEL.to_owned(), tenant.name().to_owned()),
        (CONSOLE_LABEL.to_owned(), console_service_name(tenant)),
    ])
}

fn tenant_labels(tenant: &Tenant) -> BTreeMap<String, String> {
    BTreeMap::from([(TENANT_LABEL.to_owned(), tenant.name().to_owned())])
}

fn port(name: &str, port: i32, target: i32) -> ServicePort {
    ServicePort {
        name: Some(name.to_owned()),
        port,
        target_port: Some(IntOrString::Int(target)),
        protocol: Some("TCP".to_owned()),
        ..ServicePort::default()
    }
}

fn sftp(tenant: &Tenant) -> bool {
    tenant
        .spec
        .features
        .as_ref()
        .and_then(|f| f.enable_sftp)
        .unwrap_or(false)
}

pub fn services(tenant: &Tenant) -> Vec<Service> {
    let tls = tenant.tls();
    let scheme = if tls { "https" } else { "http" };
    let metadata_of = |labels: Option<&BTreeMap<String, String>>,
                       annotations: Option<&BTreeMap<String, String>>,
                       name: String| {
        let mut m = meta(tenant, name, tenant_labels(tenant));
        if let Some(extra) = labels {
            m.labels.get_or_insert_default().extend(extra.clone());
        }
        if let Some(extra) = annotations.filter(|a| !a.is_empty()) {
            m.annotations = Some(extra.clone());
        }
        m
    };
    let sm = tenant.spec.service_metadata.as_ref();
    let mut headless_ports = vec![port(&format!("{scheme}-minio"), S3_PORT, S3_PORT)];
    if sftp(tenant) {
        headless_ports.push(port("sftp-minio", SFTP_PORT, SFTP_PORT));
    }
    // A ServiceMonitor selects by labels: this one tells the headless Service from the S3
    // Service, which has the same port.
    let mut headless_labels = tenant_labels(tenant);
    headless_labels.insert(
        scrape::SERVICE_ROLE_LABEL.to_owned(),
        scrape::HEADLESS_SERVICE_ROLE.to_owned(),
    );
    let headless = Service {
        metadata: meta(tenant, headless_service_name(tenant), headless_labels),
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".to_owned()),
            publish_not_ready_addresses: Some(true),
            selector: Some(tenant_labels(tenant)),
            ports: Some(headless_ports),
            type_: Some("ClusterIP".to_owned()),
            ..ServiceSpec::default()
        }),
        status: None,
    };
    let s3 = Service {
        metadata: metadata_of(
            sm.map(|m| &m.minio_service_labels),
            sm.map(|m| &m.minio_service_annotations),
            S3_SERVICE_NAME.to_owned(),
        ),
        spec: Some(ServiceSpec {
            selector: Some(tenant_labels(tenant)),
            ports: Some(vec![port(
                &format!("{scheme}-minio"),
                if tls { 443 } else { 80 },
                S3_PORT,
            )]),
            type_: Some("ClusterIP".to_owned()),
            ..ServiceSpec::default()
        }),
        status: None,
    };
    let console_port = if tls { CONSOLE_TLS_PORT } else { CONSOLE_PORT };
    let console = Service {
        metadata: metadata_of(
            sm.map(|m| &m.console_service_labels),
            sm.map(|m| &m.console_service_annotations),
            console_service_name(tenant),
        ),
        spec: Some(ServiceSpec {
            selector: Some(tenant_labels(tenant)),
            ports: Some(vec![port(
                &format!("{scheme}-console"),
                console_port,
                console_port,
            )]),
            type_: Some("ClusterIP".to_owned()),
            ..ServiceSpec::default()
        }),
        status: None,
    };
    vec![headless, s3, console]
}

pub fn service_account(tenant: &Tenant) -> ServiceAccount {
    let name = tenant.spec.service_account_name.clone().unwrap_or_default();
    ServiceAccount {
        metadata: meta(tenant, name, tenant_labels(tenant)),
        ..ServiceAccount::default()
    }
}

/// The volume paths of a pool as the server's endpoint arguments take them (Go: VolumePathForPool).
fn pool_volume_path(tenant: &Tenant, pool: &Pool) -> String {
    let mount = tenant.spec.mount_path.as_deref().unwrap_or("/export");
    let sub = tenant.spec.sub_path.as_deref().unwrap_or("");
    let base = if pool.volumes_per_server <= 1 {
        mount.to_owned()
    } else {
        format!("{mount}{{0...{}}}", pool.volumes_per_server - 1)
    };
    let joined = if sub.is_empty() {
        base
    } else {
        format!("{base}/{sub}")
    };
    format!("/{}", joined.trim_start_matches('/'))
}

/// `S3_ARGS`: every pool's endpoints, so every server knows the whole tenant. A single pool of a
/// single server gets just its path, as in the Go operators.
pub fn server_endpoints(tenant: &Tenant, cluster_domain: &str) -> String {
    let pools = &tenant.spec.pools;
    if pools.len() == 1 && pools[0].servers == 1 {
        return pool_volume_path(tenant, &pools[0]);
    }
    pools
        .iter()
        .map(|pool| pool_endpoints(tenant, pool, cluster_domain))
        .collect::<Vec<_>>()
        .join(" ")
}

/// One pool's endpoints as the servers are given them, which is also how the server names the
/// pool in its admin API (`cmdline`).
pub fn pool_endpoints(tenant: &Tenant, pool: &Pool, cluster_domain: &str) -> String {
    let scheme = if tenant.tls() { "https" } else { "http" };
    format!(
        "{scheme}://{}{}",
        crate::api::names::pool_hosts_pattern(tenant, pool, cluster_domain),
        pool_volume_path(tenant, pool)
    )
}

fn env(name: &str, value: String) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value: Some(value),
        value_from: None,
    }
}

/// The server container's environment: where its configuration file is, and the entries of
/// `spec.env` that take their value from elsewhere (a Secret, a field), which only the kubelet can
/// resolve. Every other variable is in the file ([`configured_env`]).
pub fn server_env(tenant: &Tenant) -> Vec<EnvVar> {
    let mut vars = vec![env("S3_CONFIG_ENV_FILE", CONFIG_FILE.to_owned())];
    vars.extend(
        tenant
            .spec
            .env
            .iter()
            .filter(|e| e.value_from.is_some())
            .cloned(),
    );
    vars
}

/// The variables the operator puts in `config.env` before the user's entries: what it computes
/// (`S3_ARGS`, the server URL, the domains), then the values of `spec.env`, which win. In the file
/// and not in the pod template, so that a change of them (a pool added, a variable changed)
/// restarts the servers in place, together (reconcile/rollout.rs): a pod template change would
/// replace the pods, and the servers compare these variables with their peers before they join.
pub fn configured_env(tenant: &Tenant, cluster_domain: &str) -> Vec<(String, String)> {
    let ns = tenant.namespace();
    let scheme = if tenant.tls() { "https" } else { "http" };
    let mut computed = vec![
        ("S3_ARGS", server_endpoints(tenant, cluster_domain)),
        (
            "S3_SERVER_URL",
            format!(
                "{scheme}://{S3_SERVICE_NAME}.{ns}.svc.{cluster_domain}:{}",
                if tenant.tls() { 443 } else { 80 }
            ),
        ),
        ("S3_PROMETHEUS_JOB_ID", "minio-job".to_owned()),
        ("S3_UPDATE", "off".to_owned()),
    ];
    let features = tenant.spec.features.as_ref();
    let domains = features.and_then(|f| f.domains.as_ref());
    let mut s3_domains: Vec<String> = domains.map(|d| d.minio.clone()).unwrap_or_default();
    if features.and_then(|f| f.bucket_dns).unwrap_or(false) {
        s3_domains.push(format!("{ns}.svc.{cluster_domain}"));
    }
    if !s3_domains.is_empty() {
        computed.push(("S3_DOMAIN", s3_domains.join(",")));
    }
    if let Some(console) = domains
        .and_then(|d| d.console.clone())
        .filter(|c| !c.is_empty())
    {
        computed.push(("S3_BROWSER_REDIRECT_URL", console));
    }
    let user = &tenant.spec.env;
    computed
        .into_iter()
        .filter(|(name, _)| !user.iter().any(|u| u.name == *name))
        .map(|(name, value)| (name.to_owned(), value))
        .chain(
            user.iter()
                .filter(|e| e.value_from.is_none())
                .map(|e| (e.name.clone(), e.value.clone().unwrap_or_default())),
        )
        .collect()
}

pub fn server_args(tenant: &Tenant) -> Vec<String> {
    let console = if tenant.tls() {
        CONSOLE_TLS_PORT
    } else {
        CONSOLE_PORT
    };
    let mut args = vec![
        "server".to_owned(),
        "--certs-dir".to_owned(),
        CERTS_DIR.to_owned(),
        "--console-address".to_owned(),
        format!(":{console}"),
    ];
    if sftp(tenant) {
        args.extend([
            "--sftp".to_owned(),
            format!("address=:{SFTP_PORT}"),
            "--sftp".to_owned(),
            format!("ssh-private-key={CERTS_DIR}/private.key"),
        ]);
    }
    if let Some(logging) = &tenant.spec.logging {
        for (on, flag) in [
            (logging.json, "--json"),
            (logging.anonymous, "--anonymous"),
            (logging.quiet, "--quiet"),
        ] {
            if on.unwrap_or(false) {
                args.push(flag.to_owned());
            }
        }
    }
    args
}

fn pod_security_context(pool: &Pool) -> PodSecurityContext {
    let mut ctx = pool.security_context.clone().unwrap_or(PodSecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(1000),
        run_as_group: Some(1000),
        fs_group: Some(1000),
        ..PodSecurityContext::default()
    });
    ctx.fs_group_change_policy
        .get_or_insert_with(|| "OnRootMismatch".to_owned());
    ctx
}

fn container_security_context(pool: &Pool) -> SecurityContext {
    if let Some(ctx) = &pool.container_security_context {
        return ctx.clone();
    }
    let pod = pool.security_context.as_ref();
    SecurityContext {
        run_as_non_root: Some(pod.and_then(|p| p.run_as_non_root).unwrap_or(true)),
        run_as_user: Some(pod.and_then(|p| p.run_as_user).unwrap_or(1000)),
        run_as_group: Some(pod.and_then(|p| p.run_as_group).unwrap_or(1000)),
        ..SecurityContext::default()
    }
}

fn claim_templates(pool: &Pool) -> Vec<PersistentVolumeClaim> {
    let Some(template) = &pool.volume_claim_template else {
        return Vec::new();
    };
    (0..pool.volumes_per_server)
        .map(|i| {
            let mut claim = template.clone();
            claim.metadata.name = Some(volume_claim_name(pool, i));
            claim.metadata.namespace = None;
            claim.status = None;
            claim
        })
        .collect()
}

fn volume_mounts(tenant: &Tenant, pool: &Pool) -> Vec<VolumeMount> {
    let mount = tenant.spec.mount_path.as_deref().unwrap_or("/export");
    let mount_of = |name: &str, path: String| VolumeMount {
        name: name.to_owned(),
        mount_path: path,
        ..VolumeMount::default()
    };
    let mut mounts = vec![mount_of("configuration", CONFIG_DIR.to_owned())];
    if pool.volumes_per_server <= 1 {
        mounts.push(mount_of(&volume_claim_name(pool, 0), mount.to_owned()));
    } else {
        for i in 0..pool.volumes_per_server {
            mounts.push(mount_of(&volume_claim_name(pool, i), format!("{mount}{i}")));
        }
    }
    if tenant.tls() {
        mounts.push(mount_of("tls", CERTS_DIR.to_owned()));
    }
    mounts.extend(tenant.spec.additional_volume_mounts.iter().cloned());
    mounts
}

fn pod_volumes(tenant: &Tenant, rendered: &Rendered) -> Vec<Volume> {
    let secret_volume = |name: &str, secret: String, items: Option<Vec<KeyToPath>>| Volume {
        name: name.to_owned(),
        secret: Some(SecretVolumeSource {
            secret_name: Some(secret),
            items,
            ..SecretVolumeSource::default()
        }),
        ..Volume::default()
    };
    let mut volumes = vec![secret_volume(
        "configuration",
        configuration_secret_name(tenant),
        None,
    )];
    if tenant.tls() {
        volumes.push(certificates_volume(certs_dir::sources(
            tenant,
            &rendered.external_certificates,
        )));
    }
    volumes.extend(tenant.spec.additional_volumes.iter().cloned());
    if let Some(side) = &tenant.spec.side_cars {
        volumes.extend(side.volumes.iter().cloned());
    }
    volumes
}

/// The `tls` volume of the certificate directory (reconcile/certs_dir.rs): one Secret as a
/// `secret` volume, as it always was (a running tenant's template stays the same), several
/// projected into one.
fn certificates_volume(sources: Vec<certs_dir::Source>) -> Volume {
    let items = |items: Vec<(&str, String)>| {
        items
            .into_iter()
            .map(|(key, path)| KeyToPath {
                key: key.to_owned(),
                path,
                ..KeyToPath::default()
            })
            .collect::<Vec<_>>()
    };
    let name = "tls".to_owned();
    if let [only] = sources.as_slice() {
        return Volume {
            name,
            secret: Some(SecretVolumeSource {
                secret_name: Some(only.secret.clone()),
                items: Some(items(only.items.clone())),
                ..SecretVolumeSource::default()
            }),
            ..Volume::default()
        };
    }
    Volume {
        name,
        projected: Some(ProjectedVolumeSource {
            sources: Some(
                sources
                    .into_iter()
                    .map(|source| VolumeProjection {
                        secret: Some(SecretProjection {
                            name: source.secret,
                            items: Some(items(source.items)),
                            ..SecretProjection::default()
                        }),
                        ..VolumeProjection::default()
                    })
                    .collect(),
            ),
            ..ProjectedVolumeSource::default()
        }),
        ..Volume::default()
    }
}

/// The StatefulSet of one pool, whose pods carry the hashes of what was `rendered` for them.
pub fn pool_statefulset(tenant: &Tenant, pool: &Pool, rendered: &Rendered) -> StatefulSet {
    let spec = &tenant.spec;
    let (pod_labels, pod_annotations) = pod_metadata(tenant, pool, rendered);
    let mut selector = tenant_pod_labels(tenant);
    selector.insert(POOL_LABEL.to_owned(), pool.name.clone());
    let mut sts_labels = pool.labels.clone();
    sts_labels.insert(POOL_LABEL.to_owned(), pool.name.clone());
    sts_labels.insert(TENANT_LABEL.to_owned(), tenant.name().to_owned());

    let server = server_container(tenant, pool);
    let mut containers = vec![server];
    if let Some(side) = &spec.side_cars {
        containers.extend(side.containers.iter().cloned());
    }
    let mut claims = claim_templates(pool);
    if let Some(side) = &spec.side_cars {
        claims.extend(side.volume_claim_templates.iter().cloned());
    }
    let image_pull_secrets = spec
        .image_pull_secret
        .as_ref()
        .filter(|s| !s.name.is_empty())
        .map(|s| vec![s.clone()]);
    StatefulSet {
        metadata: ObjectMeta {
            annotations: Some(pool.annotations.clone()).filter(|a| !a.is_empty()),
            ..meta(tenant, pool_statefulset_name(tenant, pool), sts_labels)
        },
        spec: StatefulSetSpec {
            replicas: Some(pool.servers),
            service_name: Some(headless_service_name(tenant)),
            pod_management_policy: spec.pod_management_policy.clone(),
            selector: LabelSelector {
                match_labels: Some(selector),
                match_expressions: None,
            },
            // Claims hold the data: they outlive the StatefulSet and the Tenant.
            persistent_volume_claim_retention_policy: Some(
                StatefulSetPersistentVolumeClaimRetentionPolicy {
                    when_deleted: Some("Retain".to_owned()),
                    when_scaled: Some("Retain".to_owned()),
                },
            ),
            template: with_hashes(
                PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some(pod_labels),
                        annotations: Some(pod_annotations),
                        ..ObjectMeta::default()
                    }),
                    spec: Some(PodSpec {
                        containers,
                        init_containers: Some(spec.init_containers.clone())
                            .filter(|c| !c.is_empty()),
                        volumes: Some(pod_volumes(tenant, rendered)),
                        service_account_name: spec.service_account_name.clone(),
                        scheduler_name: tenant
                            .scheduler
                            .as_ref()
                            .map(|s| s.name.clone())
                            .filter(|n| !n.is_empty()),
                        priority_class_name: spec
                            .priority_class_name
                            .clone()
                            .filter(|p| !p.is_empty()),
                        image_pull_secrets,
                        affinity: pool.affinity.clone(),
                        node_selector: Some(pool.node_selector.clone()).filter(|n| !n.is_empty()),
                        tolerations: Some(pool.tolerations.clone()).filter(|t| !t.is_empty()),
                        topology_spread_constraints: Some(pool.topology_spread_constraints.clone())
                            .filter(|t| !t.is_empty()),
                        security_context: Some(pod_security_context(pool)),
                        runtime_class_name: pool
                            .runtime_class_name
                            .clone()
                            .filter(|r| !r.is_empty()),
                        termination_grace_period_seconds: pool.termination_grace_period_seconds,
                        // The servers never call the Kubernetes API: no token in their pods.
                        automount_service_account_token: Some(false),
                        ..PodSpec::default()
                    }),
                },
                rendered,
            ),
            volume_claim_templates: Some(claims).filter(|c| !c.is_empty()),
            // The reconciler replaces the servers itself, one at a time behind the S3 health
            // (reconcile/rollout.rs): the StatefulSet controller's rolling update moves on once a
            // pod is Ready, and a server changed in what its peers compare is not Ready until
            // enough of them restarted too.
            update_strategy: Some(StatefulSetUpdateStrategy {
                type_: Some("OnDelete".to_owned()),
                rolling_update: None,
            }),
            ..StatefulSetSpec::default()
        },
        status: None,
    }
}

/// The labels and annotations of a pool's pods: the user's (`poolsMetadata`, the pool's), the
/// operator's labels that select them, and the CA the servers trust. The hashes of the
/// configuration come after the template's own ([`with_hashes`]).
fn pod_metadata(
    tenant: &Tenant,
    pool: &Pool,
    rendered: &Rendered,
) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let shared = tenant.spec.pools_metadata.as_ref();
    let mut labels = shared.map(|m| m.labels.clone()).unwrap_or_default();
    labels.extend(pool.labels.clone());
    labels.extend(tenant_pod_labels(tenant));
    labels.insert(POOL_LABEL.to_owned(), pool.name.clone());
    let mut annotations = shared.map(|m| m.annotations.clone()).unwrap_or_default();
    annotations.extend(pool.annotations.clone());
    if let Some(mark) = &rendered.trust_mark {
        annotations.insert(TRUSTED_CA_ANNOTATION.to_owned(), mark.clone());
    }
    (labels, annotations)
}

/// `template` with its annotations of what it is: [`TEMPLATE_HASH_ANNOTATION`], a hash of
/// everything in it but the configuration, then the hashes of the configuration and of the root
/// credentials. A pod whose template hash is the current one differs from the current template in
/// its configuration alone, which its server reads from a file: the rollout restarts such servers
/// in place instead of replacing their pods.
fn with_hashes(mut template: PodTemplateSpec, rendered: &Rendered) -> PodTemplateSpec {
    let serialized = serde_json::to_vec(&template).unwrap_or_default();
    let digest = ring::digest::digest(&ring::digest::SHA256, &serialized);
    let annotations = template
        .metadata
        .get_or_insert_with(ObjectMeta::default)
        .annotations
        .get_or_insert_with(BTreeMap::new);
    annotations.insert(
        TEMPLATE_HASH_ANNOTATION.to_owned(),
        crate::certs::hex(&digest.as_ref()[..8]),
    );
    annotations.insert(
        CONFIG_HASH_ANNOTATION.to_owned(),
        rendered.config_hash.clone(),
    );
    annotations.insert(
        CREDENTIALS_HASH_ANNOTATION.to_owned(),
        rendered.credentials_hash.clone(),
    );
    template
}

/// The server's container: its arguments, environment, ports, volumes, and the checks that say it
/// started and serves.
fn server_container(tenant: &Tenant, pool: &Pool) -> Container {
    let spec = &tenant.spec;
    let console = if tenant.tls() {
        CONSOLE_TLS_PORT
    } else {
        CONSOLE_PORT
    };
    let mut ports = vec![
        ContainerPort {
            name: Some("minio-port".to_owned()),
            container_port: S3_PORT,
            ..ContainerPort::default()
        },
        ContainerPort {
            name: Some("console-port".to_owned()),
            container_port: console,
            ..ContainerPort::default()
        },
    ];
    if sftp(tenant) {
        ports.push(ContainerPort {
            name: Some("sftp-port".to_owned()),
            container_port: SFTP_PORT,
            ..ContainerPort::default()
        });
    }
    Container {
        name: SERVER_CONTAINER_NAME.to_owned(),
        image: spec.image.clone(),
        image_pull_policy: spec.image_pull_policy.clone(),
        args: Some(server_args(tenant)),
        env: Some(server_env(tenant)),
        ports: Some(ports),
        volume_mounts: Some(volume_mounts(tenant, pool)),
        resources: pool.resources.clone(),
        liveness_probe: spec.liveness.clone(),
        readiness_probe: spec
            .readiness
            .clone()
            .or_else(|| Some(serves_probe(tenant))),
        startup_probe: spec.startup.clone().or_else(|| Some(started_probe(tenant))),
        lifecycle: spec.lifecycle.clone().or_else(|| Some(drain_before_stop())),
        security_context: Some(container_security_context(pool)),
        // A server that exits with an error leaves the end of its log in its status, where the
        // rollout reads why a restarted server failed.
        termination_message_policy: Some("FallbackToLogsOnError".to_owned()),
        ..Container::default()
    }
}

/// `GET path` on the S3 port, over the tenant's TLS when it has it.
fn http_probe(tenant: &Tenant, path: &str) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.to_owned()),
            port: IntOrString::Int(S3_PORT),
            scheme: Some(if tenant.tls() { "HTTPS" } else { "HTTP" }.to_owned()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(PROBE_PERIOD_SECONDS),
        // The cluster check asks every drive: on a busy machine it took longer than 5 s.
        timeout_seconds: Some(PROBE_TIMEOUT_SECONDS),
        ..Probe::default()
    }
}

/// Ready means the server serves: it has joined its peers and the cluster has write quorum
/// (`/minio/health/cluster`). `/minio/health/ready` and `/live` answer 200 before the server has
/// its storage at all, while it still waits for its peers. (The read-quorum check kept servers
/// in the Service while the cluster refused writes: a rollout under load on the real node failed
/// 15 writes with 503 SlowDownWrite where this one failed 1.)
fn serves_probe(tenant: &Tenant) -> Probe {
    Probe {
        failure_threshold: Some(3),
        // Twice in a row: a server that just joined answers healthy a few seconds before it
        // takes writes (503 SlowDownWrite), and the Service would send it writes at once.
        success_threshold: Some(2),
        ..http_probe(tenant, "/minio/health/cluster")
    }
}

/// Started means the process answers; slow drives get [`STARTUP_ALLOWANCE_SECONDS`].
fn started_probe(tenant: &Tenant) -> Probe {
    Probe {
        failure_threshold: Some(STARTUP_ALLOWANCE_SECONDS / PROBE_PERIOD_SECONDS),
        ..http_probe(tenant, "/minio/health/live")
    }
}

fn drain_before_stop() -> Lifecycle {
    Lifecycle {
        pre_stop: Some(LifecycleHandler {
            sleep: Some(SleepAction {
                seconds: PRE_STOP_SLEEP_SECONDS,
            }),
            ..LifecycleHandler::default()
        }),
        ..Lifecycle::default()
    }
}

pub fn desired(tenant: &Tenant, rendered: &Rendered) -> DesiredObjects {
    DesiredObjects {
        services: services(tenant),
        service_account: service_account(tenant),
        statefulsets: tenant
            .spec
            .pools
            .iter()
            .map(|p| pool_statefulset(tenant, p, rendered))
            .collect(),
        disruption_budgets: disruption_budgets(tenant, &rendered.erasure),
    }
}

/// One PodDisruptionBudget per pool: evictions (`kubectl drain`) may take down at most as many of
/// its servers as its erasure sets (and, for the first pool, the locks) can lose while keeping
/// write quorum. None when the Tenant opts out, or for a single drive.
pub fn disruption_budgets(tenant: &Tenant, settings: &ServerSettings) -> Vec<PodDisruptionBudget> {
    if tenant.disruption_budget_opted_out() {
        return Vec::new();
    }
    tenant
        .spec
        .pools
        .iter()
        .enumerate()
        .filter_map(|(i, pool)| {
            let can_lose = erasure::servers_the_pool_can_lose(tenant, i, settings)?;
            let mut selector = tenant_pod_labels(tenant);
            selector.insert(POOL_LABEL.to_owned(), pool.name.clone());
            let mut labels = tenant_labels(tenant);
            labels.insert(POOL_LABEL.to_owned(), pool.name.clone());
            Some(PodDisruptionBudget {
                metadata: meta(tenant, pool_statefulset_name(tenant, pool), labels),
                spec: Some(PodDisruptionBudgetSpec {
                    max_unavailable: Some(IntOrString::Int(i32::try_from(can_lose).unwrap_or(0))),
                    selector: Some(LabelSelector {
                        match_labels: Some(selector),
                        match_expressions: None,
                    }),
                    ..PodDisruptionBudgetSpec::default()
                }),
                status: None,
            })
        })
        .collect()
}

/// `config.env` lines (`export KEY="value"`), parsed as the Go operator does: blank lines and
/// `#` comments skipped, `export` optional, one level of matching quotes removed.
pub fn parse_config_env(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                return None;
            }
            let line = line.strip_prefix("export").map_or(line, str::trim_start);
            let (key, value) = line.split_once('=')?;
            let value = value.trim();
            let unquoted = match value.as_bytes() {
                [q @ (b'"' | b'\''), .., last] if last == q && value.len() >= 2 => {
                    &value[1..value.len() - 1]
                }
                _ => value,
            };
            Some((key.trim().to_owned(), unquoted.to_owned()))
        })
        .collect()
}

/// The line of the rendered `config.env` after which the configuration Secret's entries come
/// (they win over the operator's above it: the file is read in order). Read back, only what
/// follows it is the user's: users often name their configuration Secret `<tenant>-configuration`,
/// the name the operator renders it under, and the operator's entries must not come back as theirs.
pub const USER_SECTION: &str = "# The configuration Secret's entries (they win over those above):";

/// The `config.env` the operator renders: its own variables (`operator`), then the user's.
pub fn render_config_file(operator: &[(String, String)], user: &[(String, String)]) -> String {
    format!(
        "# Rendered by hanzo-s3-operator from the Tenant (spec.env, the pools, the domains):\n{}{USER_SECTION}\n{}",
        render_config_env(operator),
        render_config_env(user)
    )
}

/// The user's entries of a configuration Secret's `config.env`: all of it, or when the operator
/// rendered it (the same Secret), what follows [`USER_SECTION`], without [`CONFIGURATION_MARK`].
pub fn user_entries(text: &str) -> Vec<(String, String)> {
    let user = text.split_once(USER_SECTION).map_or(text, |(_, user)| user);
    parse_config_env(user)
        .into_iter()
        .filter(|(k, _)| k != CONFIGURATION_MARK)
        .collect()
}

/// The `config.env` the server reads, rendered from the user's entries.
pub fn render_config_env(entries: &[(String, String)]) -> String {
    entries
        .iter()
        .map(|(k, v)| {
            format!(
                "export {k}=\"{}\"\n",
                v.replace('\\', "\\\\").replace('"', "\\\"")
            )
        })
        .collect()
}

//! Every validation rule and default, table-driven: each case mutates a valid tenant and names the
//! exact messages it must produce (all of them, in order).

use std::collections::BTreeMap;

use hanzo_s3_operator::admission::{DefaultsConfig, review};
use hanzo_s3_operator::api::tenant::Tenant;
use hanzo_testkit::{PoolBuilder, TenantBuilder};
use k8s_openapi::api::core::v1::{EnvVar, Volume, VolumeMount};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use pretty_assertions::assert_eq;
use serde_json::json;

/// A valid tenant: `t` in `ns`, one pool of 4 servers x 2 volumes.
fn base() -> Tenant {
    TenantBuilder::new("t")
        .namespace("ns")
        .configuration("t-env")
        .pool(PoolBuilder::named("p0", 4, 2))
        .typed()
}

fn messages(t: &Tenant) -> Vec<String> {
    review(None, t, &DefaultsConfig::default())
        .violations
        .iter()
        .map(|v| v.message())
        .collect()
}

fn with(f: impl FnOnce(&mut Tenant)) -> Vec<String> {
    let mut t = base();
    f(&mut t);
    messages(&t)
}

fn update(f: impl FnOnce(&mut Tenant)) -> Vec<String> {
    let old = base();
    let mut new = base();
    f(&mut new);
    review(Some(&old), &new, &DefaultsConfig::default())
        .violations
        .iter()
        .map(|v| v.message())
        .collect()
}

fn pool2(t: &mut Tenant, name: &str) {
    let mut p = t.spec.pools[0].clone();
    p.name = name.into();
    t.spec.pools.push(p);
}

fn storage(t: &mut Tenant, i: usize, q: &str) {
    let tpl = t.spec.pools[i].volume_claim_template.as_mut().unwrap();
    let req = tpl
        .spec
        .as_mut()
        .unwrap()
        .resources
        .as_mut()
        .unwrap()
        .requests
        .as_mut()
        .unwrap();
    req.insert("storage".into(), Quantity(q.into()));
}

#[test]
fn the_base_tenant_is_valid() {
    assert_eq!(messages(&base()), Vec::<String>::new());
}

#[test]
fn requires_a_fixed_name() {
    assert_eq!(
        with(|t| t.metadata.name = None),
        vec![
            "metadata.name: Required value: a tenant needs a fixed name (generateName is not supported): it is part of every object and host name the tenant gets",
        ]
    );
}

#[test]
fn rejects_names_services_cannot_take() {
    assert_eq!(
        with(|t| t.metadata.name = Some("1Tenant".into())),
        vec![
            "metadata.name: Invalid value: \"1Tenant\": the tenant name names its Services, so it must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name' or '123-abc')",
        ]
    );
}

#[test]
fn names_an_invalid_namespace_where_it_is_written() {
    // Offline only: the apiserver refuses such a namespace before any webhook is called.
    assert_eq!(
        with(|t| t.metadata.namespace = Some("Storage".into())),
        vec![
            "metadata.namespace: Invalid value: \"Storage\": a namespace name must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name' or '123-abc')",
        ]
    );
}

#[test]
fn rejects_names_too_long_for_the_console_service() {
    assert_eq!(
        with(|t| t.metadata.name = Some("a".repeat(56))),
        vec![
            "metadata.name: Too long: \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\": must be at most 55 characters so that its console Service `<name>-console` fits in 63 (has 56)",
            "spec.pools[0].name: Too long: \"p0\": the pool's StatefulSet would be named \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-p0\" (59 characters); Kubernetes labels its pods with that name plus an 11-character revision hash, which must fit in 63, so tenant and pool names together may have at most 51 characters: shorten the tenant or the pool name",
            "spec.certConfig.commonName: Too long: \"*.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-hl.ns.svc.cluster.local\": a certificate common name may have at most 64 characters (has 82); the default is `*.<tenant>-hl.<namespace>.svc.<cluster domain>`, so shorten the tenant or namespace name, or set a shorter commonName",
        ]
    );
}

#[test]
fn requires_at_least_one_pool() {
    assert_eq!(
        with(|t| t.spec.pools.clear()),
        vec![
            "spec.pools: Required value: pools must be configured: a tenant needs at least one pool of servers",
        ]
    );
}

#[test]
fn rejects_a_pool_with_zero_servers() {
    assert_eq!(
        with(|t| t.spec.pools[0].servers = 0),
        vec!["spec.pools[0].servers: Invalid value: 0: pool \"p0\" needs at least 1 server",]
    );
}

#[test]
fn rejects_a_pool_with_zero_volumes() {
    assert_eq!(
        with(|t| t.spec.pools[0].volumes_per_server = 0),
        vec![
            "spec.pools[0].volumesPerServer: Invalid value: 0: pool \"p0\" needs at least 1 volume per server",
        ]
    );
}

#[test]
fn rejects_two_servers_with_one_volume_each() {
    assert_eq!(
        with(|t| {
            t.spec.pools[0].servers = 2;
            t.spec.pools[0].volumes_per_server = 1;
        }),
        vec![
            "spec.pools[0].volumesPerServer: Invalid value: 1: a pool with 2 servers needs at least 4 volumes in total for erasure coding, it has 2; set volumesPerServer to 2 or more",
        ]
    );
}

#[test]
fn rejects_three_servers_with_one_volume_each() {
    assert_eq!(
        with(|t| {
            t.spec.pools[0].servers = 3;
            t.spec.pools[0].volumes_per_server = 1;
        }),
        vec![
            "spec.pools[0].volumesPerServer: Invalid value: 1: a pool with 3 servers needs at least 6 volumes in total for erasure coding, it has 3; set volumesPerServer to 2 or more",
        ]
    );
}

#[test]
fn rejects_erasure_layouts_the_server_cannot_start_with() {
    assert_eq!(
        with(|t| {
            t.spec.pools[0].servers = 17;
            t.spec.pools[0].volumes_per_server = 1;
        }),
        vec![
            "spec.pools[0]: Invalid value: \"servers: 17, volumesPerServer: 1\": the server cannot split 17 drives into erasure sets of 2 to 16 drives spread evenly over 17 servers, and would not start; with volumesPerServer 1, 16 or 18 servers would work",
        ]
    );
}

#[test]
fn rejects_duplicate_pool_names() {
    assert_eq!(
        with(|t| pool2(t, "p0")),
        vec![
            "spec.pools[1].name: Duplicate value: \"p0\": each pool needs a name of its own: it names the pool's StatefulSet",
        ]
    );
}

#[test]
fn rejects_pool_names_that_are_not_dns_labels() {
    assert_eq!(
        with(|t| t.spec.pools[0].name = "Pool_A".into()),
        vec![
            "spec.pools[0].name: Invalid value: \"Pool_A\": pool names become part of StatefulSet and pod names, so they must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name' or '123-abc')",
        ]
    );
}

#[test]
fn rejects_statefulset_names_longer_than_52() {
    assert_eq!(
        with(|t| {
            t.metadata.name = Some("a".repeat(30));
            t.spec.pools[0].name = "b".repeat(25);
        }),
        vec![
            "spec.pools[0].name: Too long: \"bbbbbbbbbbbbbbbbbbbbbbbbb\": the pool's StatefulSet would be named \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-bbbbbbbbbbbbbbbbbbbbbbbbb\" (56 characters); Kubernetes labels its pods with that name plus an 11-character revision hash, which must fit in 63, so tenant and pool names together may have at most 51 characters: shorten the tenant or the pool name",
        ]
    );
}

#[test]
fn requires_a_volume_claim_template() {
    assert_eq!(
        with(|t| t.spec.pools[0].volume_claim_template = None),
        vec![
            "spec.pools[0].volumeClaimTemplate: Required value: a volume claim template is needed: it describes the volumes each server gets (storage request and access modes)",
        ]
    );
}

#[test]
fn requires_a_storage_request() {
    assert_eq!(
        with(|t| {
            t.spec.pools[0]
                .volume_claim_template
                .as_mut()
                .unwrap()
                .spec
                .as_mut()
                .unwrap()
                .resources = None;
        }),
        vec![
            "spec.pools[0].volumeClaimTemplate.spec.resources.requests.storage: Required value: each volume needs a size, e.g. `storage: 1Ti`",
        ]
    );
}

#[test]
fn rejects_a_storage_request_that_is_no_quantity() {
    assert_eq!(
        with(|t| storage(t, 0, "ten gigs")),
        vec![
            "spec.pools[0].volumeClaimTemplate.spec.resources.requests.storage: Invalid value: \"ten gigs\": the volume size is not a quantity: expected a number with an optional suffix (Ki, Mi, Gi, Ti, Pi, Ei, m, k, M, G, T, P, E) or exponent (e3), like 10Gi or 500m",
        ]
    );
}

#[test]
fn rejects_a_zero_volume_size() {
    assert_eq!(
        with(|t| storage(t, 0, "0Gi")),
        vec![
            "spec.pools[0].volumeClaimTemplate.spec.resources.requests.storage: Invalid value: \"0Gi\": the volume size must be greater than 0",
        ]
    );
}

#[test]
fn requires_an_access_mode() {
    assert_eq!(
        with(|t| {
            t.spec.pools[0]
                .volume_claim_template
                .as_mut()
                .unwrap()
                .spec
                .as_mut()
                .unwrap()
                .access_modes = None;
        }),
        vec![
            "spec.pools[0].volumeClaimTemplate.spec.accessModes: Required value: volumes need an access mode, usually `ReadWriteOnce`",
        ]
    );
}

#[test]
fn rejects_unknown_access_modes() {
    assert_eq!(
        with(|t| {
            t.spec.pools[0]
                .volume_claim_template
                .as_mut()
                .unwrap()
                .spec
                .as_mut()
                .unwrap()
                .access_modes = Some(vec!["RWO".into()]);
        }),
        vec![
            "spec.pools[0].volumeClaimTemplate.spec.accessModes[0]: Unsupported value: \"RWO\": supported values: \"ReadWriteOnce\", \"ReadOnlyMany\", \"ReadWriteMany\", \"ReadWriteOncePod\"",
        ]
    );
}

#[test]
fn rejects_requests_above_limits() {
    assert_eq!(
        with(|t| {
            t.spec.pools[0].resources = Some(
                serde_json::from_value(
                    json!({"requests": {"memory": "8Gi"}, "limits": {"memory": "4Gi"}}),
                )
                .unwrap(),
            );
        }),
        vec![
            "spec.pools[0].resources.requests[memory]: Invalid value: \"8Gi\": must be less than or equal to the memory limit \"4Gi\"",
        ]
    );
}

#[test]
fn rejects_resources_that_are_no_quantity() {
    assert_eq!(
        with(|t| {
            t.spec.pools[0].resources =
                Some(serde_json::from_value(json!({"requests": {"cpu": "lots"}})).unwrap());
        }),
        vec![
            "spec.pools[0].resources.requests[cpu]: Invalid value: \"lots\": the cpu request is not a quantity: expected a number with an optional suffix (Ki, Mi, Gi, Ti, Pi, Ei, m, k, M, G, T, P, E) or exponent (e3), like 10Gi or 500m",
        ]
    );
}

#[test]
fn resource_names_with_dots_are_written_as_map_keys() {
    // Found by fuzzing: `limits.example.com/gpu` reads as fields `example` and `com/gpu`.
    assert_eq!(
        with(|t| {
            t.spec.pools[0].resources =
                Some(serde_json::from_value(json!({"limits": {"example.com/gpu": "-1"}})).unwrap());
        }),
        vec![
            "spec.pools[0].resources.limits[example.com/gpu]: Invalid value: \"-1\": must not be negative",
        ]
    );
}

#[test]
fn rejects_unknown_pod_management_policy_instead_of_coercing() {
    assert_eq!(
        with(|t| t.spec.pod_management_policy = Some("parallel".into())),
        vec![
            "spec.podManagementPolicy: Unsupported value: \"parallel\": supported values: \"OrderedReady\", \"Parallel\"",
        ]
    );
}

#[test]
fn rejects_unknown_image_pull_policy() {
    assert_eq!(
        with(|t| t.spec.image_pull_policy = Some("Sometimes".into())),
        vec![
            "spec.imagePullPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"IfNotPresent\", \"Never\"",
        ]
    );
}

#[test]
fn requires_the_configuration_secret() {
    assert_eq!(
        with(|t| t.spec.configuration = None),
        vec![
            "spec.configuration.name: Required value: please set 'configuration' to the Secret with the tenant's credentials: a Secret whose config.env holds `export S3_ROOT_USER=...` and `export S3_ROOT_PASSWORD=...`",
        ]
    );
}

#[test]
fn rejects_invalid_secret_names() {
    assert_eq!(
        with(|t| t.spec.configuration.as_mut().unwrap().name = "Bad_Name".into()),
        vec![
            "spec.configuration.name: Invalid value: \"Bad_Name\": the name of a configuration Secret must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com')",
        ]
    );
}

#[test]
fn rejects_empty_user_secret_references() {
    assert_eq!(
        with(|t| t.spec.users = vec![Default::default()]),
        vec![
            "spec.users[0].name: Required value: the name of the user credentials Secret must not be empty",
        ]
    );
}

#[test]
fn rejects_empty_certificate_secret_references() {
    assert_eq!(
        with(|t| t.spec.external_cert_secret = vec![Default::default()]),
        vec![
            "spec.externalCertSecret[0].name: Required value: the name of the certificate Secret must not be empty",
        ]
    );
}

#[test]
fn forbids_env_the_operator_owns() {
    assert_eq!(
        with(|t| t.spec.env = vec![EnvVar {
            name: "S3_ARGS".into(),
            value: Some("x".into()),
            ..Default::default()
        }]),
        vec![
            "spec.env[0].name: Forbidden: S3_ARGS is set by the operator and cannot be overridden: it lists every pool's endpoints, which the operator derives from spec.pools",
        ]
    );
}

#[test]
fn rejects_env_names_the_kubelet_refuses() {
    assert_eq!(
        with(|t| t.spec.env = vec![EnvVar {
            name: "A=B".into(),
            ..Default::default()
        }]),
        vec![
            "spec.env[0].name: Invalid value: \"A=B\": must consist of printable ASCII characters other than '='",
        ]
    );
}

#[test]
fn rejects_overlapping_domains() {
    assert_eq!(
        with(|t| {
            t.spec.features = Some(
                serde_json::from_value(
                    json!({"domains": {"minio": ["s3.example.com", "eu.s3.example.com"]}}),
                )
                .unwrap(),
            );
        }),
        vec![
            "spec.features.domains.minio[1]: Invalid value: \"eu.s3.example.com\": overlapping domains not allowed: \"eu.s3.example.com\" lies within \"s3.example.com\" (spec.features.domains.minio[0]), so bucket names could not be told apart",
        ]
    );
}

#[test]
fn rejects_invalid_domains() {
    assert_eq!(
        with(|t| {
            t.spec.features = Some(serde_json::from_value(json!({"domains": {"minio": ["ftp://x.com", "bad domain.com"], "console": "exa mple"}})).unwrap());
        }),
        vec![
            "spec.features.domains.minio[0]: Invalid value: \"ftp://x.com\": invalid domain: the scheme must be http or https",
            "spec.features.domains.minio[1]: Invalid value: \"bad domain.com\": invalid domain: must be a DNS name: labels of letters, digits and '-', separated by '.'",
            "spec.features.domains.console: Invalid value: \"exa mple\": invalid domain: must be a DNS name: labels of letters, digits and '-', separated by '.'",
        ]
    );
}

#[test]
fn requires_workload_identity_pool_with_gcp_credentials() {
    assert_eq!(
        with(|t| {
            t.spec.kes = Some(
                serde_json::from_value(
                    json!({"kesSecret": {"name": "kes"}, "gcpCredentialSecretName": "gcp"}),
                )
                .unwrap(),
            );
        }),
        vec![
            "spec.kes.gcpWorkloadIdentityPool: Required value: please set 'gcpWorkloadIdentityPool' to enable fleet workload identity: gcpCredentialSecretName is set without it",
        ]
    );
}

#[test]
fn requires_gcp_credentials_with_workload_identity_pool() {
    assert_eq!(
        with(|t| {
            t.spec.kes = Some(
                serde_json::from_value(
                    json!({"kesSecret": {"name": "kes"}, "gcpWorkloadIdentityPool": "pool"}),
                )
                .unwrap(),
            );
        }),
        vec![
            "spec.kes.gcpCredentialSecretName: Required value: please set 'gcpCredentialSecretName' to enable fleet workload identity: gcpWorkloadIdentityPool is set without it",
        ]
    );
}

#[test]
fn requires_kes_secret_and_positive_replicas() {
    assert_eq!(
        with(|t| {
            t.spec.kes =
                Some(serde_json::from_value(json!({"kesSecret": {}, "replicas": -1})).unwrap());
        }),
        vec![
            "spec.kes.kesSecret.name: Required value: KES needs the Secret holding its configuration (server-config.yaml)",
            "spec.kes.replicas: Invalid value: -1: KES needs at least 1 replica",
        ]
    );
}

#[test]
fn rejects_a_default_common_name_longer_than_64() {
    assert_eq!(
        with(|t| {
            t.metadata.namespace = Some("n".repeat(40));
        }),
        vec![
            "spec.certConfig.commonName: Too long: \"*.t-hl.nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn.svc.cluster.local\": a certificate common name may have at most 64 characters (has 65); the default is `*.<tenant>-hl.<namespace>.svc.<cluster domain>`, so shorten the tenant or namespace name, or set a shorter commonName",
        ]
    );
}

#[test]
fn rejects_invalid_certificate_dns_names() {
    assert_eq!(
        with(|t| {
            t.spec.cert_config =
                Some(serde_json::from_value(json!({"dnsNames": ["bad_host"]})).unwrap());
        }),
        vec![
            "spec.certConfig.dnsNames[0]: Invalid value: \"bad_host\": must be a DNS name: labels of letters, digits and '-', separated by '.'",
        ]
    );
}

#[test]
fn rejects_bad_and_duplicate_buckets() {
    assert_eq!(
        with(|t| {
            t.spec.buckets = serde_json::from_value(
                json!([{"name": "ok-bucket"}, {"name": "ok-bucket"}, {"name": "A"}, {}]),
            )
            .unwrap();
        }),
        vec![
            "spec.buckets[1].name: Duplicate value: \"ok-bucket\": each bucket may be listed once",
            "spec.buckets[2].name: Invalid value: \"A\": bucket names must be 3 to 63 characters (has 1)",
            "spec.buckets[3].name: Required value: a bucket needs a name",
        ]
    );
}

#[test]
fn rejects_a_sidecar_named_like_the_server() {
    assert_eq!(
        with(|t| {
            t.spec.side_cars =
                Some(serde_json::from_value(json!({"containers": [{"name": "minio"}]})).unwrap());
        }),
        vec![
            "spec.sideCars.containers[0].name: Duplicate value: \"minio\": the pod already has a container named \"minio\"; the server's own container is `minio`",
        ]
    );
}

#[test]
fn rejects_volumes_named_like_the_operators() {
    let message = |name: &str| {
        format!(
            "spec.additionalVolumes[0].name: Duplicate value: \"{name}\": the pod already has a volume \"{name}\"; the operator uses `configuration`, `tls` and one per volume, named after the volume claim template"
        )
    };
    // The base pool's claim template has no name, so its volumes are `0` and `1`, as in Go.
    for name in ["1", "tls"] {
        assert_eq!(
            with(|t| t.spec.additional_volumes = vec![Volume {
                name: name.into(),
                ..Default::default()
            }]),
            vec![message(name)]
        );
    }
    let named = with(|t| {
        t.spec.pools[0]
            .volume_claim_template
            .as_mut()
            .unwrap()
            .metadata
            .name = Some("data".into());
        t.spec.additional_volumes = vec![Volume {
            name: "data1".into(),
            ..Default::default()
        }];
    });
    assert_eq!(named, vec![message("data1")]);
}

#[test]
fn rejects_mounts_of_missing_volumes() {
    assert_eq!(
        with(|t| {
            t.spec.additional_volume_mounts = vec![VolumeMount {
                name: "extra".into(),
                mount_path: "rel".into(),
                ..Default::default()
            }];
        }),
        vec![
            "spec.additionalVolumeMounts[0].name: Invalid value: \"extra\": no volume of that name in spec.additionalVolumes: the pod would be refused",
            "spec.additionalVolumeMounts[0].mountPath: Invalid value: \"rel\": must be an absolute path",
        ]
    );
}

#[test]
fn forbids_overriding_the_selector_labels() {
    assert_eq!(
        with(|t| {
            t.spec.pools[0].labels = BTreeMap::from([
                ("v1.min.io/tenant".into(), "other".into()),
                ("bad key!".into(), "v".into()),
            ]);
        }),
        vec![
            "spec.pools[0].labels[bad key!]: Invalid value: \"bad key!\": label key name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
            "spec.pools[0].labels[v1.min.io/tenant]: Forbidden: the operator sets this label itself and selects the pool's pods by it",
        ]
    );
}

#[test]
fn rejects_scrape_paths_a_service_monitor_cannot_take() {
    assert_eq!(
        with(|t| {
            t.spec.prometheus_operator_scrape_metrics_paths = vec![
                "/minio/v2/metrics/node".into(),
                "minio/v2/metrics/cluster".into(),
                "/minio/v2/metrics/node".into(),
                "/minio/v2/metrics/bucket?x=1".into(),
            ];
        }),
        vec![
            "spec.prometheusOperatorScrapeMetricsPaths[1]: Invalid value: \"minio/v2/metrics/cluster\": must be an absolute URL path without query or spaces, like /minio/v2/metrics/node",
            "spec.prometheusOperatorScrapeMetricsPaths[2]: Duplicate value: \"/minio/v2/metrics/node\": each path is scraped once",
            "spec.prometheusOperatorScrapeMetricsPaths[3]: Invalid value: \"/minio/v2/metrics/bucket?x=1\": must be an absolute URL path without query or spaces, like /minio/v2/metrics/node",
        ]
    );
}

#[test]
fn rejects_relative_mount_path_and_escaping_sub_path() {
    assert_eq!(
        with(|t| {
            t.spec.mount_path = Some("export".into());
            t.spec.sub_path = Some("../x".into());
        }),
        vec![
            "spec.mountPath: Invalid value: \"export\": must be an absolute path without '..', like /export",
            "spec.subPath: Invalid value: \"../x\": must be a relative path without '..', like data",
        ]
    );
}

#[test]
fn rejects_a_non_positive_expiry_threshold() {
    assert_eq!(
        with(|t| t.spec.cert_expiry_alert_threshold = Some(0)),
        vec!["spec.certExpiryAlertThreshold: Invalid value: 0: must be a positive number of days",]
    );
}

#[test]
fn rejects_negative_grace_period() {
    assert_eq!(
        with(|t| t.spec.pools[0].termination_grace_period_seconds = Some(-1)),
        vec![
            "spec.pools[0].terminationGracePeriodSeconds: Invalid value: -1: must be 0 or more seconds",
        ]
    );
}

#[test]
fn rejects_image_references_with_spaces() {
    assert_eq!(
        with(|t| t.spec.image = Some("my image".into())),
        vec![
            "spec.image: Invalid value: \"my image\": must be an image reference like registry/repository:tag, without spaces",
        ]
    );
}

#[test]
fn update_forbids_removing_a_pool() {
    let mut old = base();
    pool2(&mut old, "p1");
    let mut new = old.clone();
    new.spec.pools.remove(1);
    let found: Vec<String> = review(Some(&old), &new, &DefaultsConfig::default())
        .violations
        .iter()
        .map(|v| v.message())
        .collect();
    assert_eq!(
        found,
        vec![
            "spec.pools: Forbidden: pool \"p1\" (spec.pools[1]) was removed: removing a pool deletes its servers and the data on them; decommission it first: annotate the Tenant s3.hanzo.ai/decommission=\"p1\", wait for status.pools to say PoolDecommissioned, then remove it",
        ]
    );
}

/// Two pools, the first asked to retire; `drained` says whether the operator reported it so.
fn retiring_first_pool(drained: bool) -> Tenant {
    let mut old = base();
    pool2(&mut old, "p1");
    old.metadata.annotations = Some(
        [("s3.hanzo.ai/decommission".to_owned(), "p0".to_owned())]
            .into_iter()
            .collect(),
    );
    let state = if drained {
        "PoolDecommissioned"
    } else {
        "PoolDecommissioning"
    };
    old.status = Some(
        serde_json::from_value(json!({"pools": [
            {"ssName": "t-p0", "state": state},
            {"ssName": "t-p1", "state": "PoolInitialized"}
        ]}))
        .unwrap(),
    );
    old
}

fn messages_of(old: &Tenant, new: &Tenant) -> Vec<String> {
    review(Some(old), new, &DefaultsConfig::default())
        .violations
        .iter()
        .map(|v| v.message())
        .collect()
}

#[test]
fn a_drained_pool_asked_to_retire_may_leave_and_the_others_move_up() {
    let old = retiring_first_pool(true);
    let mut new = old.clone();
    new.spec.pools.remove(0);
    assert_eq!(messages_of(&old, &new), Vec::<String>::new());
    // ...and a new pool with a new name may follow (the Go operator's #1785).
    pool2(&mut new, "p2");
    assert_eq!(messages_of(&old, &new), Vec::<String>::new());
}

#[test]
fn a_pool_still_draining_may_not_leave() {
    let old = retiring_first_pool(false);
    let mut new = old.clone();
    new.spec.pools.remove(0);
    let found = messages_of(&old, &new);
    assert!(
        found.iter().any(
            |m| m.starts_with("spec.pools: Forbidden: pool \"p0\" (spec.pools[0]) was removed")
        ),
        "{found:?}"
    );
}

#[test]
fn a_decommission_request_may_not_name_the_only_pool_and_one_naming_no_pool_is_a_warning() {
    let ask = |t: &mut Tenant, pool: &str| {
        t.metadata.annotations = Some(
            [("s3.hanzo.ai/decommission".to_owned(), pool.to_owned())]
                .into_iter()
                .collect(),
        );
    };
    // Naming no pool (a request left after its pool was removed) is only a warning.
    let mut stale = base();
    ask(&mut stale, "p9");
    let verdict = review(None, &stale, &DefaultsConfig::default());
    assert!(verdict.violations.is_empty(), "{:?}", verdict.violations);
    assert!(
        verdict.warnings.iter().any(|w| w.starts_with(
            "metadata.annotations[s3.hanzo.ai/decommission]: names no pool of this Tenant (\"p9\")"
        )),
        "{:?}",
        verdict.warnings
    );
    assert_eq!(
        with(|t| ask(t, "p0")),
        vec![
            "metadata.annotations[s3.hanzo.ai/decommission]: Invalid value: \"p0\": the only pool cannot be decommissioned: its data would have nowhere to go; append a new pool first",
        ]
    );
    assert_eq!(
        with(|t| {
            pool2(t, "p1");
            ask(t, "p0");
        }),
        Vec::<String>::new()
    );
}

#[test]
fn update_removing_every_pool_is_told_pools_are_required_once() {
    assert_eq!(
        update(|t| t.spec.pools.clear()),
        vec![
            "spec.pools: Required value: pools must be configured: a tenant needs at least one pool of servers",
        ]
    );
}

#[test]
fn update_forbids_renaming_a_pool() {
    assert_eq!(
        update(|t| t.spec.pools[0].name = "p9".into()),
        vec![
            "spec.pools[0].name: Forbidden: pool \"p0\" was renamed to \"p9\": a pool's name is part of its StatefulSet and volume claim names and cannot change",
        ]
    );
}

#[test]
fn update_forbids_reordering_pools() {
    assert_eq!(
        update(|t| {
            pool2(t, "p1");
            t.spec.pools.swap(0, 1);
        }),
        vec![
            "spec.pools[1].name: Forbidden: pool \"p0\" moved from position 0 to 1: pools keep their order, because every server lists all pools in that order; append new pools at the end",
        ]
    );
}

#[test]
fn update_forbids_changing_servers() {
    assert_eq!(
        update(|t| t.spec.pools[0].servers = 8),
        vec![
            "spec.pools[0].servers: Forbidden: servers is immutable: changed from 4 to 8; to grow the tenant, append a new pool",
        ]
    );
}

#[test]
fn update_forbids_changing_volumes_per_server() {
    assert_eq!(
        update(|t| t.spec.pools[0].volumes_per_server = 4),
        vec![
            "spec.pools[0].volumesPerServer: Forbidden: volumesPerServer is immutable: changed from 2 to 4; to add capacity, append a new pool",
        ]
    );
}

#[test]
fn update_forbids_changing_the_volume_size() {
    assert_eq!(
        update(|t| storage(t, 0, "2Gi")),
        vec![
            "spec.pools[0].volumeClaimTemplate.spec.resources.requests.storage: Forbidden: the volume size is immutable: changed from 1Gi to 2Gi; the pool's volumes already exist at their size",
        ]
    );
}

#[test]
fn update_that_drops_the_claim_template_is_told_it_is_required() {
    // Found by fuzzing: the size rule named a field under the template the object no longer has.
    assert_eq!(
        update(|t| t.spec.pools[0].volume_claim_template = None),
        vec![
            "spec.pools[0].volumeClaimTemplate: Required value: a volume claim template is needed: it describes the volumes each server gets (storage request and access modes)",
            "spec.pools[0].volumeClaimTemplate: Forbidden: the volume claim template cannot change after the pool is created: Kubernetes keeps StatefulSet volume claim templates immutable",
        ]
    );
}

#[test]
fn update_forbids_changing_the_claim_template() {
    assert_eq!(
        update(|t| t.spec.pools[0]
            .volume_claim_template
            .as_mut()
            .unwrap()
            .spec
            .as_mut()
            .unwrap()
            .storage_class_name = Some("fast".into())),
        vec![
            "spec.pools[0].volumeClaimTemplate: Forbidden: the volume claim template cannot change after the pool is created: Kubernetes keeps StatefulSet volume claim templates immutable",
        ]
    );
}

#[test]
fn update_allows_appending_a_pool() {
    assert_eq!(update(|t| pool2(t, "p1")), Vec::<String>::new());
}

#[test]
fn a_wrong_type_under_a_key_with_dots_is_located_at_that_key() {
    // Found by fuzzing: the typed parse's path read `requests.example.com/gpu`.
    let mut doc = serde_json::to_value(base()).unwrap();
    doc["spec"]["pools"][0]["resources"] = json!({"requests": {"example.com/gpu": {"x": 1}}});
    let violation = hanzo_s3_operator::admission::parse_tenant(&doc).unwrap_err();
    assert_eq!(
        violation.field,
        "spec.pools[0].resources.requests[example.com/gpu]"
    );
    let text = doc.to_string();
    let violation = hanzo_s3_operator::admission::parse_tenant_str(&text).unwrap_err();
    assert_eq!(
        violation.field,
        "spec.pools[0].resources.requests[example.com/gpu]"
    );
}

#[test]
fn a_tenant_is_an_object_not_an_array() {
    // serde reads structs from arrays too; `[]` would have been an empty Tenant (found by fuzzing).
    for text in ["[]", "  [\n ]", "[1, 2]"] {
        let err = hanzo_s3_operator::admission::parse_tenant_str(text).unwrap_err();
        assert_eq!(err.field, "<root>", "{text}");
        let value: serde_json::Value = serde_json::from_str(text).unwrap();
        assert!(
            hanzo_s3_operator::admission::parse_tenant(&value).is_err(),
            "{text}"
        );
    }
}

fn add_pool(t: &mut Tenant, name: &str, servers: i32, volumes: i32) {
    pool2(t, name);
    let p = t.spec.pools.last_mut().unwrap();
    p.servers = servers;
    p.volumes_per_server = volumes;
}

fn env_var(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value.into()),
        value_from: None,
    }
}

#[test]
fn rejects_a_pool_whose_sets_cannot_hold_the_tenants_parity() {
    // The expansion that took a tenant down: the server fixes parity 4 from the first pool's sets
    // of 8 drives, and a second pool's sets of 4 hold at most 2.
    assert_eq!(
        with(|t| add_pool(t, "p1", 4, 1)),
        [
            "spec.pools[1]: Invalid value: \"servers: 4, volumesPerServer: 1\": the tenant's erasure parity is 4 (the server's default for the erasure sets of 8 drives of pool \"p0\"), and the erasure sets of 4 drives of pool \"p1\" hold at most 2: every server would refuse to start, those of the other pools included; layouts that would work (sets of 8 or more drives): 4 servers x 2 volumes, 8 servers x 1 volume"
        ]
    );
    assert_eq!(with(|t| add_pool(t, "p1", 8, 1)), Vec::<String>::new());
    assert_eq!(with(|t| add_pool(t, "p1", 2, 4)), Vec::<String>::new());
}

#[test]
fn the_storage_class_sets_the_parity_every_pool_must_hold() {
    let standard = |t: &mut Tenant, name: &str, v: &str| t.spec.env.push(env_var(name, v));
    assert_eq!(
        with(|t| {
            add_pool(t, "p1", 4, 1);
            standard(t, "S3_STORAGE_CLASS_STANDARD", "EC:2");
        }),
        Vec::<String>::new(),
        "EC:2 fits sets of 4"
    );
    assert_eq!(
        with(|t| {
            add_pool(t, "p1", 4, 1);
            standard(t, "S3_STORAGE_CLASS_STANDARD", "EC:2");
            standard(t, "MINIO_STORAGE_CLASS_STANDARD", "EC:3");
        }),
        [
            "spec.pools[1]: Invalid value: \"servers: 4, volumesPerServer: 1\": the tenant's erasure parity is 3 (MINIO_STORAGE_CLASS_STANDARD=EC:3 in spec.env[1]), and the erasure sets of 4 drives of pool \"p1\" hold at most 2: every server would refuse to start, those of the other pools included; layouts that would work (sets of 6 or more drives): 4 servers x 2 volumes, 6 servers x 1 volume; or a storage class of EC:2 or less"
        ],
        "the server's own name wins"
    );
    assert_eq!(
        with(|t| standard(t, "S3_STORAGE_CLASS_STANDARD", "EC:5")),
        [
            "spec.env[0].value: Invalid value: \"EC:5\": S3_STORAGE_CLASS_STANDARD=EC:5 in spec.env[0] asks for a standard parity of 5, and the erasure sets of 8 drives of pool \"p0\" hold at most 4: the servers would not start; use EC:4 or less"
        ]
    );
    assert_eq!(
        with(|t| standard(t, "S3_STORAGE_CLASS_STANDARD", "EC:x")),
        [
            "spec.env[0].value: Invalid value: \"EC:x\": S3_STORAGE_CLASS_STANDARD must be EC:<parity> with a whole number of 0 or more, as in EC:2: the servers would not start"
        ]
    );
    assert_eq!(
        with(|t| {
            standard(t, "S3_STORAGE_CLASS_STANDARD", "EC:1");
            standard(t, "S3_STORAGE_CLASS_RRS", "EC:2");
        }),
        [
            "spec.env[0].value: Invalid value: \"EC:1\": S3_STORAGE_CLASS_STANDARD=EC:1 in spec.env[0] asks for a standard parity of 1, below the reduced-redundancy parity of 2: the server refuses a standard class weaker than the reduced one and would not start"
        ]
    );
}

#[test]
fn rejects_a_single_drive_pool_beside_others() {
    assert_eq!(
        with(|t| add_pool(t, "p1", 1, 1)),
        [
            "spec.pools[1]: Invalid value: \"servers: 1, volumesPerServer: 1\": pool \"p1\" is a single drive, and a tenant of several pools needs at least 2 drives in each (the server runs a single drive without erasure coding and cannot add pools to it): give it 2 or more volumes or servers"
        ]
    );
}

#[test]
fn a_fixed_set_drive_count_must_divide_every_pool_and_never_change() {
    assert_eq!(
        with(|t| t.spec.env.push(env_var("S3_ERASURE_SET_DRIVE_COUNT", "3"))),
        [
            "spec.pools[0]: Invalid value: \"servers: 4, volumesPerServer: 2\": S3_ERASURE_SET_DRIVE_COUNT=3 in spec.env[0] asks for erasure sets of 3 drives, and pool \"p0\" has 8 drives, which sets of 3 do not divide: the servers would not start"
        ]
    );
    assert_eq!(
        update(|t| t.spec.env.push(env_var("S3_ERASURE_SET_DRIVE_COUNT", "4"))),
        [
            "spec.env[0].value: Forbidden: this change of the erasure set drive count would give pool \"p0\" sets of 4 drives, and its drives are formatted in sets of 8: the servers would refuse to start; a pool's set size cannot change"
        ]
    );
    assert_eq!(
        update(|t| t.spec.env.push(env_var("S3_ERASURE_SET_DRIVE_COUNT", "8"))),
        Vec::<String>::new(),
        "the size the pool already has"
    );
}

/// A pool below the Go operators' floor is refused once, by that rule: not again for a parity its
/// two drives could not hold (the controller-runtime peer of the benchmarks says the same, once).
#[test]
fn a_pool_below_the_floor_is_not_also_refused_for_parity() {
    assert_eq!(
        with(|t| {
            t.spec.pools[0].servers = 2;
            t.spec.pools[0].volumes_per_server = 1;
            add_pool(t, "p1", 4, 4);
            t.spec
                .env
                .push(env_var("S3_STORAGE_CLASS_STANDARD", "EC:2"));
        }),
        vec![
            "spec.pools[0].volumesPerServer: Invalid value: 1: a pool with 2 servers needs at least 4 volumes in total for erasure coding, it has 2; set volumesPerServer to 2 or more"
        ]
    );
}

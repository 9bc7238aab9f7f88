//! Defaulting fills every default the Go operators apply, never rewrites a user's value (but for
//! normalizing a sub-path the Go operators read the same), is
//! idempotent, and its JSONPatch is minimal and applies to the object exactly as received.

use hanzo_s3_operator::admission::patch::defaulting_patch;
use hanzo_s3_operator::admission::{
    DefaultsConfig, apply_defaults, defaulted, parse_tenant, review,
};
use hanzo_s3_operator::api::tenant::Tenant;
use hanzo_testkit::{PoolBuilder, TenantBuilder};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

fn tenant(v: Value) -> Tenant {
    parse_tenant(&v).unwrap()
}

/// Two pools the webhook must name: one without a name (and a storage request written as a
/// bare number), one with an empty name.
fn minimal() -> Value {
    TenantBuilder::new("t")
        .namespace("ns")
        .configuration("c")
        .pool(PoolBuilder::unnamed(4, 1).storage(1))
        .pool(PoolBuilder::named("", 4, 1))
        .build()
}

#[test]
fn fills_every_default_of_the_go_operator() {
    let t = defaulted(&tenant(minimal()), &DefaultsConfig::default());
    let s = &t.spec;
    assert_eq!(s.pod_management_policy.as_deref(), Some("Parallel"));
    assert_eq!(
        s.image.as_deref(),
        Some("ghcr.io/hanzos3/s3:RELEASE.2025-04-08T15-41-24Z")
    );
    assert_eq!(s.image_pull_policy.as_deref(), Some("IfNotPresent"));
    assert_eq!(s.mount_path.as_deref(), Some("/export"));
    assert_eq!(
        s.sub_path, None,
        "Go's subPath default is the empty string: nothing to write"
    );
    assert_eq!(s.request_auto_cert, Some(true));
    assert_eq!(s.service_account_name.as_deref(), Some("t-sa"));
    assert_eq!(s.pools[0].name, "ss-0");
    assert_eq!(s.pools[1].name, "ss-1");
    let cert = s.cert_config.as_ref().unwrap();
    assert_eq!(
        cert.common_name.as_deref(),
        Some("*.t-hl.ns.svc.cluster.local")
    );
    assert_eq!(cert.organization_name, ["system:nodes"]);
    assert!(
        cert.dns_names.is_empty(),
        "DNS names follow the pools at reconcile time"
    );
    assert!(s.kes.is_none(), "KES is not switched on by defaulting");
}

#[test]
fn kes_defaults_apply_only_when_kes_is_configured() {
    let mut v = minimal();
    v["spec"]["kes"] = json!({"kesSecret": {"name": "kes"}, "gcpCredentialSecretName": "gcp", "gcpWorkloadIdentityPool": "p"});
    let t = defaulted(&tenant(v), &DefaultsConfig::default());
    let kes = t.spec.kes.unwrap();
    assert_eq!(
        kes.image.as_deref(),
        Some("ghcr.io/hanzos3/kes:2025-03-12T09-35-18Z")
    );
    assert_eq!(kes.replicas, Some(2));
    assert_eq!(kes.image_pull_policy.as_deref(), Some("IfNotPresent"));
    assert_eq!(kes.key_name.as_deref(), Some("my-minio-key"));
    assert_eq!(
        kes.service_account_name.as_deref(),
        Some("default"),
        "a GCP credential implies the default SA"
    );
}

#[test]
fn images_and_cluster_domain_come_from_the_environment() {
    let config = DefaultsConfig::from_lookup(|k| match k {
        "TENANT_S3_IMAGE" => Some("registry.local/s3:1".into()),
        "TENANT_KES_IMAGE" => Some("  ".into()),
        "CLUSTER_DOMAIN" => Some("corp.example".into()),
        _ => None,
    });
    assert_eq!(config.s3_image, "registry.local/s3:1");
    assert_eq!(
        config.kes_image, "ghcr.io/hanzos3/kes:2025-03-12T09-35-18Z",
        "blank falls back"
    );
    let t = defaulted(&tenant(minimal()), &config);
    assert_eq!(t.spec.image.as_deref(), Some("registry.local/s3:1"));
    assert_eq!(
        t.spec.cert_config.unwrap().common_name.as_deref(),
        Some("*.t-hl.ns.svc.corp.example")
    );
}

#[test]
fn never_rewrites_a_value_the_user_wrote() {
    let mut v = minimal();
    v["spec"]["podManagementPolicy"] = json!("OrderedReady");
    v["spec"]["image"] = json!("mine:1");
    v["spec"]["imagePullPolicy"] = json!("Always");
    v["spec"]["mountPath"] = json!("/data");
    v["spec"]["requestAutoCert"] = json!(false);
    v["spec"]["serviceAccountName"] = json!("custom");
    v["spec"]["certConfig"] = json!({"commonName": "s3.example", "organizationName": ["me"]});
    v["spec"]["pools"][0]["name"] = json!("first");
    let before = tenant(v);
    let after = defaulted(&before, &DefaultsConfig::default());
    assert_eq!(
        after.spec.pod_management_policy.as_deref(),
        Some("OrderedReady")
    );
    assert_eq!(after.spec.image.as_deref(), Some("mine:1"));
    assert_eq!(after.spec.image_pull_policy.as_deref(), Some("Always"));
    assert_eq!(after.spec.mount_path.as_deref(), Some("/data"));
    assert_eq!(after.spec.request_auto_cert, Some(false));
    assert_eq!(after.spec.service_account_name.as_deref(), Some("custom"));
    assert_eq!(after.spec.cert_config, before.spec.cert_config);
    assert_eq!(after.spec.pools[0].name, "first");
    assert_eq!(
        after.spec.pools[1].name, "ss-1",
        "unnamed pools are named by position"
    );
}

#[test]
fn an_unknown_pod_management_policy_is_rejected_not_coerced() {
    let mut v = minimal();
    v["spec"]["podManagementPolicy"] = json!("Sequential");
    let t = tenant(v);
    assert_eq!(
        defaulted(&t, &DefaultsConfig::default())
            .spec
            .pod_management_policy
            .as_deref(),
        Some("Sequential")
    );
    let verdict = review(None, &t, &DefaultsConfig::default());
    assert_eq!(verdict.violations[0].field, "spec.podManagementPolicy");
}

#[test]
fn defaulting_is_idempotent_and_its_second_patch_is_empty() {
    let config = DefaultsConfig::default();
    let once = defaulted(&tenant(minimal()), &config);
    let mut twice = once.clone();
    apply_defaults(&mut twice, &config);
    assert_eq!(once, twice);
    let once_json = serde_json::to_value(&once).unwrap();
    let (patch, _) = defaulting_patch(&once_json, &once, &config).unwrap();
    assert!(patch.0.is_empty(), "{patch:?}");
}

#[test]
fn the_patch_applies_to_the_object_as_received_and_touches_nothing_else() {
    let config = DefaultsConfig::default();
    let mut original = minimal();
    // Things a typed round trip would change: an integer quantity, an empty list, an unknown field.
    original["spec"]["pools"][0]["resources"] = json!({"requests": {"cpu": 1}});
    original["spec"]["env"] = json!([]);
    original["spec"]["x-unknown"] = json!({"kept": true});
    let t = tenant(original.clone());
    let (patch, expected) = defaulting_patch(&original, &t, &config).unwrap();
    let paths: Vec<String> = patch.0.iter().map(|op| op.path().to_string()).collect();
    assert_eq!(
        paths,
        [
            "/spec/certConfig",
            "/spec/image",
            "/spec/imagePullPolicy",
            "/spec/mountPath",
            "/spec/podManagementPolicy",
            "/spec/pools/0/name",
            "/spec/pools/1/name",
            "/spec/requestAutoCert",
            "/spec/serviceAccountName",
        ]
    );
    let mut patched = original.clone();
    json_patch::patch(&mut patched, &patch).unwrap();
    assert_eq!(
        patched["spec"]["pools"][0]["resources"]["requests"]["cpu"],
        json!(1),
        "not rewritten to \"1\""
    );
    assert_eq!(patched["spec"]["env"], json!([]));
    assert_eq!(patched["spec"]["x-unknown"], json!({"kept": true}));
    assert_eq!(parse_tenant(&patched).unwrap(), expected);
}

#[test]
fn warnings_never_quote_a_credential() {
    let mut v = minimal();
    v["spec"]["env"] = json!([{"name": "S3_ROOT_PASSWORD", "value": "hunter2-secret"}, {"name": "S3_DOMAIN", "value": "x"}]);
    v["spec"]["requestAutoCert"] = json!(false);
    let verdict = review(None, &tenant(v), &DefaultsConfig::default());
    let all = verdict.warnings.join("\n");
    assert!(!all.contains("hunter2"), "{all}");
    assert_eq!(
        verdict.warnings,
        [
            "spec.requestAutoCert: TLS is off and no externalCertSecret is set: S3 traffic and credentials will travel unencrypted",
            "spec.env[0].value: S3_ROOT_PASSWORD is a credential written in plain text in the Tenant; keep it in the configuration Secret or use valueFrom.secretKeyRef",
            "spec.env[1].name: S3_DOMAIN overrides the value the operator computes for this tenant",
        ]
    );
}

/// The Go operators' tenant chart writes `subPath: /data`, and they join it with path.Join: the
/// servers store their data in `<mountPath>N/data` either way. It is admitted and stored as the
/// relative path, with the patch saying so; a sub-path that climbs out stays refused.
#[test]
fn normalizes_the_go_charts_absolute_sub_path_and_admits_it() {
    let mut value = minimal();
    value["spec"]["subPath"] = json!("/data/");
    let received = tenant(value.clone());
    let config = DefaultsConfig::default();
    assert_eq!(
        defaulted(&received, &config).spec.sub_path.as_deref(),
        Some("data")
    );
    let verdict = review(None, &received, &config);
    assert!(verdict.allowed(), "{:?}", verdict.violations);
    let (patch, _) = defaulting_patch(&value, &received, &config).unwrap();
    let patch = serde_json::to_value(patch).unwrap();
    assert!(
        patch
            .as_array()
            .unwrap()
            .iter()
            .any(|op| op["path"] == "/spec/subPath" && op["value"] == "data"),
        "{patch}"
    );

    value["spec"]["subPath"] = json!("/../x");
    let verdict = review(None, &tenant(value), &config);
    assert!(
        !verdict.allowed(),
        "a sub-path out of the volume is refused"
    );
}

//! The desired objects, without a cluster: names, ports, arguments, environment, claims.

use hanzo_s3_operator::admission::{DefaultsConfig, defaulted};
use hanzo_s3_operator::api::tenant::Tenant;
use hanzo_s3_operator::reconcile::desired::{
    self, parse_config_env, render_config_env, server_endpoints,
};
use hanzo_testkit::{PoolBuilder, TenantBuilder};
use pretty_assertions::assert_eq;
use serde_json::json;

fn tenant(pools: serde_json::Value, extra: serde_json::Value) -> Tenant {
    let mut t = TenantBuilder::new("t")
        .namespace("ns")
        .metadata("uid", "u-1")
        .configuration("c")
        .pools(pools.as_array().unwrap().iter().cloned());
    for (k, val) in extra.as_object().unwrap() {
        t = t.spec(k, val.clone());
    }
    defaulted(&t.typed(), &DefaultsConfig::default())
}

fn pool(name: &str, servers: i32, volumes: i32) -> serde_json::Value {
    PoolBuilder::named(name, servers, volumes).build()
}

#[test]
fn endpoints_list_every_pool_and_a_single_server_gets_just_its_path() {
    let two = tenant(json!([pool("a", 4, 2), pool("b", 2, 1)]), json!({}));
    assert_eq!(
        server_endpoints(&two, "cluster.local"),
        "https://t-a-{0...3}.t-hl.ns.svc.cluster.local/export{0...1} https://t-b-{0...1}.t-hl.ns.svc.cluster.local/export"
    );
    let single = tenant(
        json!([pool("a", 1, 4)]),
        json!({"requestAutoCert": false, "subPath": "data"}),
    );
    assert_eq!(
        server_endpoints(&single, "cluster.local"),
        "/export{0...3}/data"
    );
}

#[test]
fn ports_and_services_follow_tls() {
    let tls = desired::services(&tenant(json!([pool("a", 4, 1)]), json!({})));
    let names: Vec<_> = tls
        .iter()
        .map(|s| s.metadata.name.clone().unwrap())
        .collect();
    assert_eq!(names, ["t-hl", "minio", "t-console"]);
    let port = |s: &k8s_openapi::api::core::v1::Service| {
        let p = &s.spec.as_ref().unwrap().ports.as_ref().unwrap()[0];
        (p.name.clone().unwrap(), p.port)
    };
    assert_eq!(port(&tls[1]), ("https-minio".to_owned(), 443));
    assert_eq!(port(&tls[2]), ("https-console".to_owned(), 9443));
    let plain = desired::services(&tenant(
        json!([pool("a", 4, 1)]),
        json!({"requestAutoCert": false, "features": {"enableSFTP": true}}),
    ));
    assert_eq!(port(&plain[1]), ("http-minio".to_owned(), 80));
    assert_eq!(port(&plain[2]), ("http-console".to_owned(), 9090));
    assert_eq!(
        plain[0]
            .spec
            .as_ref()
            .unwrap()
            .ports
            .as_ref()
            .unwrap()
            .len(),
        2,
        "sftp port on the headless Service"
    );
    assert_eq!(
        plain[0].spec.as_ref().unwrap().cluster_ip.as_deref(),
        Some("None")
    );
}

#[test]
fn the_statefulset_carries_go_names_args_env_and_claims() {
    let t = tenant(
        json!([pool("a", 4, 2)]),
        json!({"logging": {"json": true, "quiet": true}, "env": [{"name": "S3_DOMAIN", "value": "mine"}, {"name": "EXTRA", "value": "1"}],
               "features": {"bucketDNS": true}}),
    );
    let sts = desired::pool_statefulset(
        &t,
        &t.spec.pools[0],
        &desired::Rendered {
            config_hash: "h1".into(),
            credentials_hash: "c1".into(),
            ..desired::Rendered::default()
        },
    );
    assert_eq!(sts.metadata.name.as_deref(), Some("t-a"));
    assert_eq!(
        sts.metadata.owner_references.as_ref().unwrap()[0].uid,
        "u-1"
    );
    let labels = sts.spec.selector.match_labels.clone().unwrap();
    assert_eq!(labels["v1.min.io/tenant"], "t");
    assert_eq!(labels["v1.min.io/pool"], "a");
    assert_eq!(labels["v1.min.io/console"], "t-console");
    let pod = sts.spec.template.spec.as_ref().unwrap();
    let c = &pod.containers[0];
    assert_eq!(c.name, "minio");
    assert_eq!(
        c.args.clone().unwrap(),
        [
            "server",
            "--certs-dir",
            "/tmp/certs",
            "--console-address",
            ":9443",
            "--json",
            "--quiet"
        ]
    );
    let env: Vec<String> = c.env.clone().unwrap().into_iter().map(|e| e.name).collect();
    assert_eq!(
        env,
        ["S3_CONFIG_ENV_FILE"],
        "every other variable is in the configuration file, which the servers re-read when they restart in place"
    );
    let file = desired::configured_env(&t, "cluster.local");
    let names: Vec<&str> = file.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "S3_ARGS",
            "S3_SERVER_URL",
            "S3_PROMETHEUS_JOB_ID",
            "S3_UPDATE",
            "S3_DOMAIN",
            "EXTRA"
        ]
    );
    assert_eq!(
        file.iter().find(|(n, _)| n == "S3_DOMAIN").unwrap().1,
        "mine",
        "spec.env wins over the computed value"
    );
    let mounts: Vec<(String, String)> = c
        .volume_mounts
        .clone()
        .unwrap()
        .into_iter()
        .map(|m| (m.name, m.mount_path))
        .collect();
    assert_eq!(
        mounts[1..3],
        [
            ("0".to_owned(), "/export0".to_owned()),
            ("1".to_owned(), "/export1".to_owned())
        ]
    );
    let claims: Vec<String> = sts
        .spec
        .volume_claim_templates
        .unwrap()
        .into_iter()
        .filter_map(|c| c.metadata.name)
        .collect();
    assert_eq!(
        claims,
        ["0", "1"],
        "an unnamed template gives claims 0 and 1, as in Go"
    );
    assert_eq!(pod.service_account_name.as_deref(), Some("t-sa"));
    let sc = pod.security_context.as_ref().unwrap();
    assert_eq!(
        (
            sc.run_as_user,
            sc.fs_group,
            sc.fs_group_change_policy.as_deref()
        ),
        (Some(1000), Some(1000), Some("OnRootMismatch"))
    );
    assert_eq!(
        sts.spec
            .persistent_volume_claim_retention_policy
            .unwrap()
            .when_deleted
            .as_deref(),
        Some("Retain")
    );
    assert_eq!(
        sts.spec.template.metadata.unwrap().annotations.unwrap()["hanzo.ai/configuration-hash"],
        "h1"
    );
}

#[test]
fn config_env_is_parsed_like_the_go_operator_and_rendered_back() {
    let text = "# comment\n\nexport S3_ROOT_USER=\"admin\"\nS3_ROOT_PASSWORD='p=\"x'\n  export  S3_BROWSER=on\nmalformed line\n";
    let entries = parse_config_env(text);
    assert_eq!(
        entries,
        [
            ("S3_ROOT_USER".to_owned(), "admin".to_owned()),
            ("S3_ROOT_PASSWORD".to_owned(), "p=\"x".to_owned()),
            ("S3_BROWSER".to_owned(), "on".to_owned())
        ]
    );
    assert_eq!(
        render_config_env(&entries[1..2]),
        "export S3_ROOT_PASSWORD=\"p=\\\"x\"\n"
    );
}

#[test]
fn the_template_hash_ignores_the_configuration_and_follows_everything_else() {
    let template_of = |t: &Tenant, config: &str| {
        let sts = desired::pool_statefulset(
            t,
            &t.spec.pools[0],
            &desired::Rendered {
                config_hash: config.into(),
                credentials_hash: config.into(),
                ..desired::Rendered::default()
            },
        );
        sts.spec.template.metadata.unwrap().annotations.unwrap()
    };
    let hash = |a: &std::collections::BTreeMap<String, String>| {
        a[desired::TEMPLATE_HASH_ANNOTATION].clone()
    };
    let t = tenant(json!([pool("a", 4, 2)]), json!({}));
    let (first, second) = (template_of(&t, "h1"), template_of(&t, "h2"));
    assert_eq!(
        hash(&first),
        hash(&second),
        "a configuration change alone restarts servers in place"
    );
    assert_ne!(
        first[desired::CONFIG_HASH_ANNOTATION],
        second[desired::CONFIG_HASH_ANNOTATION]
    );
    let env = tenant(
        json!([pool("a", 4, 2)]),
        json!({"env": [{"name": "S3_BROWSER", "value": "off"}]}),
    );
    assert_eq!(
        hash(&template_of(&env, "h1")),
        hash(&first),
        "a variable is in the configuration file, not the template"
    );
    let image = tenant(json!([pool("a", 4, 2)]), json!({"image": "elsewhere/s3:2"}));
    assert_ne!(
        hash(&template_of(&image, "h1")),
        hash(&first),
        "an image change replaces the pods"
    );
    let from_secret = tenant(
        json!([pool("a", 4, 2)]),
        json!({"env": [{"name": "S3_X", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]}),
    );
    assert_ne!(
        hash(&template_of(&from_secret, "h1")),
        hash(&first),
        "a variable only the kubelet can resolve stays in the template"
    );
}

#[test]
fn a_rendered_configuration_read_back_gives_the_users_entries_only() {
    // Users often name their configuration Secret `<tenant>-configuration`, the name the
    // operator renders it under: reading it back must not make the operator's entries theirs.
    let user = vec![
        ("S3_ROOT_USER".to_owned(), "admin".to_owned()),
        ("S3_DOMAIN".to_owned(), "theirs".to_owned()),
    ];
    let operator = vec![(
        "S3_ARGS".to_owned(),
        "https://t-p0-{0...3}/export".to_owned(),
    )];
    let mut text = desired::render_config_file(&operator, &user);
    text.push_str(&desired::render_config_env(&[(
        desired::CONFIGURATION_MARK.to_owned(),
        "h".to_owned(),
    )]));
    assert_eq!(desired::user_entries(&text), user);
    let again = desired::render_config_file(&operator, &desired::user_entries(&text));
    assert!(
        text.starts_with(&again),
        "rendering its own output changes nothing:\n{text}\n{again}"
    );
    assert_eq!(
        desired::user_entries("export S3_ROOT_USER=\"admin\"\nexport S3_DOMAIN=\"theirs\"\n"),
        user,
        "a Secret the operator did not render is the user's, all of it"
    );
}

#[test]
fn a_users_certificate_secret_is_mounted_by_the_keys_it_holds() {
    use desired::CertKeys;
    let keys = |have: &[&str]| CertKeys::of(|k| have.contains(&k));
    // cert-manager's and the operator's own: the CA beside the certificate.
    assert_eq!(keys(&["tls.crt", "tls.key", "ca.crt"]), Some(CertKeys::TLS));
    // `kubectl create secret tls`, an ACME issuer's: the servers trust the certificate itself.
    assert_eq!(
        keys(&["tls.crt", "tls.key"]),
        Some(CertKeys {
            cert: "tls.crt",
            key: "tls.key",
            ca: "tls.crt"
        })
    );
    // The Go operators' names for an Opaque Secret.
    assert_eq!(
        keys(&["public.crt", "private.key"]),
        Some(CertKeys {
            cert: "public.crt",
            key: "private.key",
            ca: "public.crt"
        })
    );
    assert_eq!(
        keys(&["tls.crt", "ca.crt"]),
        None,
        "no key, nothing to serve"
    );

    let t = tenant(
        json!([pool("a", 4, 2)]),
        json!({"requestAutoCert": false, "externalCertSecret": [{"name": "mine", "type": "kubernetes.io/tls"}]}),
    );
    let items = |rendered: &desired::Rendered| {
        hanzo_testkit::support::tls_items(&desired::pool_statefulset(
            &t,
            &t.spec.pools[0],
            rendered,
        ))
    };
    let pair = |k: &str, p: &str| (k.to_owned(), p.to_owned());
    // Unread, or holding a CA: what the servers mounted before (a running tenant's template
    // does not change).
    assert_eq!(
        items(&desired::Rendered::default()),
        (
            "mine".to_owned(),
            vec![
                pair("tls.crt", "public.crt"),
                pair("tls.key", "private.key"),
                pair("ca.crt", "CAs/ca.crt")
            ]
        )
    );
    assert_eq!(
        items(&desired::Rendered {
            external_certificates: keys(&["tls.crt", "tls.key"]).into_iter().collect(),
            ..desired::Rendered::default()
        })
        .1,
        vec![
            pair("tls.crt", "public.crt"),
            pair("tls.key", "private.key"),
            pair("tls.crt", "CAs/ca.crt")
        ]
    );
}

#[test]
fn every_certificate_secret_is_laid_out_as_the_go_operators_lay_it_out() {
    use desired::CertKeys;
    let t = tenant(
        json!([pool("a", 4, 2)]),
        json!({
            "externalCertSecret": [
                {"name": "public", "type": "kubernetes.io/tls"},
                {"name": "other", "type": "cert-manager.io/v1"}
            ],
            "externalCaCertSecret": [{"name": "idp-ca", "type": "kubernetes.io/tls"}, {"name": "vault-ca"}],
            "externalClientCertSecrets": [{"name": "mtls", "type": "cert-manager.io/v1"}, {"name": "plain"}]
        }),
    );
    assert_eq!(t.spec.request_auto_cert, Some(true), "defaulted on");
    let rendered = desired::Rendered {
        // Read from the Secrets: the first holds no CA, the second one.
        external_certificates: vec![
            CertKeys::of(|k| ["tls.crt", "tls.key"].contains(&k)).unwrap(),
            CertKeys::TLS,
        ],
        ..desired::Rendered::default()
    };
    let sts = desired::pool_statefulset(&t, &t.spec.pools[0], &rendered);
    let pairs = |items: &[(&str, &str)]| {
        items
            .iter()
            .map(|(k, p)| (k.to_string(), p.to_string()))
            .collect::<Vec<_>>()
    };
    let own = format!("{}-tls", t.metadata.name.clone().unwrap());
    assert_eq!(
        hanzo_testkit::support::tls_sources(&sts),
        vec![
            // The first served at the root: what a client naming no host gets.
            (
                "public".to_owned(),
                pairs(&[
                    ("tls.crt", "public.crt"),
                    ("tls.key", "private.key"),
                    ("tls.crt", "CAs/ca.crt")
                ])
            ),
            (
                "other".to_owned(),
                pairs(&[
                    ("tls.crt", "hostname-1/public.crt"),
                    ("tls.key", "hostname-1/private.key"),
                    ("ca.crt", "CAs/hostname-1.crt")
                ])
            ),
            // The operator's own, for the servers' names (their peers ask for those).
            (
                own.clone(),
                pairs(&[
                    ("tls.crt", "hostname-2/public.crt"),
                    ("tls.key", "hostname-2/private.key"),
                    ("ca.crt", "CAs/hostname-2.crt")
                ])
            ),
            ("idp-ca".to_owned(), pairs(&[("tls.crt", "CAs/ca-0.crt")])),
            (
                "vault-ca".to_owned(),
                pairs(&[("public.crt", "CAs/ca-1.crt")])
            ),
            (
                "mtls".to_owned(),
                pairs(&[
                    ("tls.crt", "client-0/client.crt"),
                    ("tls.key", "client-0/client.key"),
                    ("ca.crt", "CAs/client-ca-0.crt")
                ])
            ),
            (
                "plain".to_owned(),
                pairs(&[
                    ("public.crt", "client-1/client.crt"),
                    ("private.key", "client-1/client.key")
                ])
            ),
        ]
    );
    // The whole directory is mounted: a Secret mounted with subPath never updates.
    let mounts = sts.spec.template.spec.as_ref().unwrap().containers[0]
        .volume_mounts
        .clone()
        .unwrap();
    let tls = mounts.iter().find(|m| m.name == "tls").unwrap();
    assert_eq!(
        (tls.mount_path.as_str(), &tls.sub_path),
        ("/tmp/certs", &None)
    );

    // The operator's certificate alone: the Secret volume every release before mounted, so a
    // running tenant's template does not change.
    let plain = tenant(json!([pool("a", 4, 2)]), json!({}));
    let sts =
        desired::pool_statefulset(&plain, &plain.spec.pools[0], &desired::Rendered::default());
    assert_eq!(
        hanzo_testkit::support::tls_items(&sts),
        (
            own,
            pairs(&[
                ("tls.crt", "public.crt"),
                ("tls.key", "private.key"),
                ("ca.crt", "CAs/ca.crt")
            ])
        )
    );
}

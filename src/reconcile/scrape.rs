//! What a Prometheus needs to scrape a Tenant with `spec.prometheusOperator: true`: a ServiceMonitor
//! of every server (through the headless Service, which lists servers Ready or not: a cluster that
//! lost its quorum has no Ready server, and is when its metrics matter most), an endpoint per path,
//! and a bearer token the servers accept. Every server answers the cluster-wide paths too: the
//! series carry a `pod` label, and the alerts aggregate them (min/max by namespace and service).
//!
//! The token is a JWT (HS512, issuer `prometheus`), as the server's metrics middleware checks it.
//! It is signed with the key of a user of its own, [`SCRAPE_USER`], whose only right is
//! `admin:Prometheus` (the server verifies a token with the secret key of the user it names): not
//! with the root credentials, as the Go operators do for a hundred years, so a root-password
//! rotation leaves the token valid (the user's key is not the root's). That key is derived from the
//! operator CA's key and the Tenant's uid: nothing stores it, every replica derives the same, and a
//! rotation of the operator CA gives a new key and a new token. Pure functions:
//! [`super::monitoring`] does the writing.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use ring::hmac;
use serde::Serialize;
use serde_json::{Value, json};

use crate::admission::validate::erasure::server_value;
use crate::api::names::TENANT_LABEL;
use crate::api::tenant::Tenant;

/// The server's user whose key signs the scrape token.
pub const SCRAPE_USER: &str = "hanzo-prometheus";
/// Its policy: reading metrics, nothing else.
pub const SCRAPE_POLICY: &str = "hanzo-prometheus";
pub const SCRAPE_POLICY_JSON: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["admin:Prometheus"]}]}"#;
/// The key of the token Secret a ServiceMonitor reads.
pub const TOKEN_KEY: &str = "token";
/// How long a token is valid unless `--tenant-metrics-token-lifetime` says otherwise; it is made
/// again when a third of it is left.
pub const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// Annotations of the token Secret: when the token expires (Unix seconds), and a fingerprint of
/// the key that signed it (a new key, after a rotation of the operator CA, means a new token).
pub const EXPIRES_ANNOTATION: &str = "hanzo.ai/expires-at";
pub const SIGNED_WITH_ANNOTATION: &str = "hanzo.ai/signed-with";
/// Marks the Tenant's Service the ServiceMonitor selects (the headless one).
pub const SERVICE_ROLE_LABEL: &str = "hanzo.ai/service";
pub const HEADLESS_SERVICE_ROLE: &str = "headless";
/// What the Go operators scrape when the Tenant names no paths.
pub const DEFAULT_PATH: &str = "/minio/v2/metrics/cluster";

pub fn token_secret_name(tenant: &Tenant) -> String {
    format!("{}-prometheus-token", tenant.name())
}

/// The ServiceMonitor's name.
pub fn service_monitor_name(tenant: &Tenant) -> String {
    format!("{}-s3", tenant.name())
}

/// Whether the server answers metrics without a token (`PROMETHEUS_AUTH_TYPE=public`, in the
/// Tenant's environment or its configuration file): then none is made.
pub fn metrics_public(tenant: &Tenant, configuration: &[(String, String)]) -> bool {
    server_value(&tenant.spec.env, configuration, "PROMETHEUS_AUTH_TYPE")
        .is_some_and(|v| v.eq_ignore_ascii_case("public"))
}

/// The paths asked for (`spec.prometheusOperatorScrapeMetricsPaths`, else [`DEFAULT_PATH`]).
pub fn scrape_paths(tenant: &Tenant) -> Vec<String> {
    let asked = &tenant.spec.prometheus_operator_scrape_metrics_paths;
    if asked.is_empty() {
        vec![DEFAULT_PATH.to_owned()]
    } else {
        asked.clone()
    }
}

/// The Tenant's ServiceMonitor (its owner reference is the writer's to add). `authorized`: the
/// token Secret is to be sent (the metrics are not public).
pub fn service_monitor(tenant: &Tenant, cluster_domain: &str, authorized: bool) -> Value {
    let endpoints: Vec<Value> = scrape_paths(tenant)
        .iter()
        .map(|path| endpoint(tenant, cluster_domain, authorized, path))
        .collect();
    json!({
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {
            "name": service_monitor_name(tenant),
            "namespace": tenant.namespace(),
            "labels": {TENANT_LABEL: tenant.name()},
        },
        "spec": {
            "selector": {"matchLabels": {TENANT_LABEL: tenant.name(), SERVICE_ROLE_LABEL: HEADLESS_SERVICE_ROLE}},
            "namespaceSelector": {"matchNames": [tenant.namespace()]},
            "endpoints": endpoints,
        }
    })
}

fn endpoint(tenant: &Tenant, cluster_domain: &str, authorized: bool, path: &str) -> Value {
    let tls = tenant.tls();
    let scheme = if tls { "https" } else { "http" };
    let mut endpoint = json!({
        "port": format!("{scheme}-minio"),
        "scheme": scheme,
        "path": path,
        // Every path scrapes the same servers: without the path among their labels, the series
        // of two paths (their `up` at least) would be one series written twice.
        "relabelings": [{"sourceLabels": ["__metrics_path__"], "targetLabel": "metrics_path"}],
    });
    if authorized {
        endpoint["authorization"] = json!({
            "type": "Bearer",
            "credentials": {"name": token_secret_name(tenant), "key": TOKEN_KEY},
        });
    }
    if tls && tenant.spec.request_auto_cert.unwrap_or(true) {
        // Scraped by pod address: the certificate names the S3 Service, which every server serves.
        endpoint["tlsConfig"] = json!({
            "ca": {"secret": {"name": format!("{}-tls", tenant.name()), "key": "ca.crt"}},
            "serverName": format!("minio.{}.svc.{cluster_domain}", tenant.namespace()),
        });
    } else if tls {
        // The user's certificate: their CA is theirs to give the Prometheus.
        endpoint["tlsConfig"] = json!({
            "serverName": format!("minio.{}.svc.{cluster_domain}", tenant.namespace()),
        });
    }
    endpoint
}

/// What the operator CA's derived key for the scrape users is called.
pub const KEY_PURPOSE: &str = "metrics scrape user";

/// The secret key of [`SCRAPE_USER`]: an HMAC of the Tenant's uid under `key` (the operator CA's
/// key derived for [`KEY_PURPOSE`]).
pub fn scrape_user_secret(key: &hmac::Key, tenant_uid: &str) -> String {
    let tag = hmac::sign(key, tenant_uid.as_bytes());
    crate::certs::hex(&tag.as_ref()[..20])
}

/// A short fingerprint of a key (never the key), to tell whether a token was signed with it.
pub fn fingerprint(secret_key: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, secret_key.as_bytes());
    crate::certs::hex(&digest.as_ref()[..8])
}

#[derive(Serialize)]
struct Claims<'a> {
    exp: u64,
    sub: &'a str,
    iss: &'static str,
}

/// A token for `access_key`, signed with its `secret_key`, expiring `lifetime` after `now`. No
/// `iat`/`nbf`: the server checks them without clock skew, and an operator's clock a second ahead
/// of a server's would be refused.
pub fn mint(
    access_key: &str,
    secret_key: &str,
    now: SystemTime,
    lifetime: Duration,
) -> Result<(String, SystemTime), jsonwebtoken::errors::Error> {
    let expires = now + lifetime;
    let exp = expires
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let claims = Claims {
        exp,
        sub: access_key,
        iss: "prometheus",
    };
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS512),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret_key.as_bytes()),
    )?;
    Ok((token, SystemTime::UNIX_EPOCH + Duration::from_secs(exp)))
}

/// The annotations of the token Secret for a token expiring at `expires`, signed with `key`.
pub fn token_annotations(expires: SystemTime, key: &str) -> BTreeMap<String, String> {
    let at = expires
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    BTreeMap::from([
        (EXPIRES_ANNOTATION.to_owned(), at.to_string()),
        (SIGNED_WITH_ANNOTATION.to_owned(), fingerprint(key)),
    ])
}

/// How long the token the Secret's annotations describe stays good: `None` when it must be made
/// now (missing, signed with another key, or a third of its lifetime left).
pub fn token_good_for(
    annotations: Option<&BTreeMap<String, String>>,
    key: &str,
    lifetime: Duration,
    now: SystemTime,
) -> Option<Duration> {
    let annotations = annotations?;
    if annotations.get(SIGNED_WITH_ANNOTATION) != Some(&fingerprint(key)) {
        return None;
    }
    let expires: u64 = annotations.get(EXPIRES_ANNOTATION)?.parse().ok()?;
    let renew_at = SystemTime::UNIX_EPOCH + Duration::from_secs(expires) - lifetime / 3;
    renew_at.duration_since(now).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(spec: Value) -> Tenant {
        let mut t: Tenant = serde_json::from_value(json!({
            "apiVersion": "minio.min.io/v2", "kind": "Tenant",
            "metadata": {"name": "t", "namespace": "ns", "uid": "u-1"},
            "spec": spec,
        }))
        .unwrap();
        t.metadata.uid = Some("u-1".to_owned());
        t
    }

    fn pools() -> Value {
        json!([{"name": "p0", "servers": 4, "volumesPerServer": 2, "volumeClaimTemplate": {"spec": {"resources": {"requests": {"storage": "1Gi"}}}}}])
    }

    #[test]
    fn every_server_is_scraped_on_every_path_through_the_headless_service() {
        let t = tenant(json!({
            "pools": pools(), "prometheusOperator": true,
            "prometheusOperatorScrapeMetricsPaths": ["/minio/v2/metrics/cluster", "/minio/v2/metrics/node"],
        }));
        let monitor = service_monitor(&t, "cluster.local", true);
        assert_eq!(monitor["metadata"]["name"], "t-s3");
        assert_eq!(
            monitor["spec"]["selector"]["matchLabels"],
            json!({TENANT_LABEL: "t", SERVICE_ROLE_LABEL: "headless"})
        );
        let endpoints = monitor["spec"]["endpoints"].as_array().unwrap();
        let paths: Vec<&str> = endpoints
            .iter()
            .map(|e| e["path"].as_str().unwrap())
            .collect();
        assert_eq!(
            paths,
            ["/minio/v2/metrics/cluster", "/minio/v2/metrics/node"]
        );
        let e = &endpoints[0];
        assert_eq!(e["port"], "https-minio");
        assert_eq!(e["relabelings"][0]["targetLabel"], "metrics_path");
        assert_eq!(
            e["authorization"]["credentials"]["name"],
            "t-prometheus-token"
        );
        assert_eq!(e["tlsConfig"]["ca"]["secret"]["name"], "t-tls");
        assert_eq!(e["tlsConfig"]["serverName"], "minio.ns.svc.cluster.local");
    }

    #[test]
    fn the_go_operators_default_path_and_public_metrics_need_no_token() {
        let t =
            tenant(json!({"pools": pools(), "prometheusOperator": true, "requestAutoCert": false}));
        let monitor = service_monitor(&t, "cluster.local", false);
        let e = &monitor["spec"]["endpoints"][0];
        assert_eq!(e["path"], DEFAULT_PATH);
        assert_eq!(e["scheme"], "http");
        assert!(e.get("authorization").is_none() && e.get("tlsConfig").is_none());
        let public = tenant(
            json!({"pools": pools(), "env": [{"name": "MINIO_PROMETHEUS_AUTH_TYPE", "value": "public"}]}),
        );
        assert!(metrics_public(&public, &[]));
        let by_file = tenant(json!({"pools": pools()}));
        assert!(metrics_public(
            &by_file,
            &[("S3_PROMETHEUS_AUTH_TYPE".to_owned(), "Public".to_owned())]
        ));
        assert!(!metrics_public(&by_file, &[]));
    }

    #[test]
    fn the_token_is_what_the_server_checks_and_is_due_when_a_third_is_left_or_the_key_changed() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let ca_key = |seed: &[u8]| hmac::Key::new(hmac::HMAC_SHA256, seed);
        let key = scrape_user_secret(&ca_key(b"ca"), "u-1");
        assert_eq!(key.len(), 40);
        assert_eq!(
            key,
            scrape_user_secret(&ca_key(b"ca"), "u-1"),
            "every replica derives it"
        );
        assert_ne!(key, scrape_user_secret(&ca_key(b"next-ca"), "u-1"));
        assert_ne!(key, scrape_user_secret(&ca_key(b"ca"), "u-2"));
        let (token, expires) = mint(SCRAPE_USER, &key, now, DEFAULT_TOKEN_LIFETIME).unwrap();
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS512);
        validation.validate_exp = false;
        validation.set_issuer(&["prometheus"]);
        let claims = jsonwebtoken::decode::<Value>(
            &token,
            &jsonwebtoken::DecodingKey::from_secret(key.as_bytes()),
            &validation,
        )
        .unwrap()
        .claims;
        assert_eq!(claims["sub"], SCRAPE_USER);
        assert_eq!(claims["exp"], 1_800_000_000 + 24 * 3600);
        assert!(claims.get("iat").is_none() && claims.get("nbf").is_none());
        let annotations = token_annotations(expires, &key);
        assert!(!annotations.values().any(|v| v.contains(&key)));
        assert_eq!(
            token_good_for(Some(&annotations), &key, DEFAULT_TOKEN_LIFETIME, now),
            Some(Duration::from_secs(16 * 3600))
        );
        let late = now + Duration::from_secs(16 * 3600 + 1);
        assert_eq!(
            token_good_for(Some(&annotations), &key, DEFAULT_TOKEN_LIFETIME, late),
            None
        );
        let rotated = scrape_user_secret(&ca_key(b"next-ca"), "u-1");
        assert_eq!(
            token_good_for(Some(&annotations), &rotated, DEFAULT_TOKEN_LIFETIME, now),
            None
        );
        assert_eq!(
            token_good_for(None, &key, DEFAULT_TOKEN_LIFETIME, now),
            None
        );
    }
}

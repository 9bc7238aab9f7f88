//! Configuration: the user's credentials rendered into the Secret the pods mount, and the TLS
//! Secret the operator CA signs when `requestAutoCert` is on.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ObjectMeta};

use super::apply::{Version, apply};
use super::caches::Owned;
use super::context::Context;
use super::desired;
use super::events::EventType;
use super::outcome::{AtStep, Blocked, Step, Stop, StopKind};
use super::report;
use super::status::{STATE_INVALID, STATE_NO_CONFIGURATION};
use crate::admission;
use crate::admission::validate::erasure::{self, ServerSettings};
use crate::api::names::{configuration_secret_name, tls_secret_name};
use crate::api::tenant::Tenant;
use crate::certs::Ca;
use crate::s3admin::Credentials;

/// What the workloads need from this phase.
pub struct Configured {
    /// Hashes of the rendered configuration and of its root credentials: a change rolls the pods.
    pub rendered: desired::Rendered,
    /// Objects this phase created or changed.
    pub writes: usize,
    /// What the provisioning phase signs admin requests with (`None` without root credentials).
    pub admin: Option<Credentials>,
    /// Users come from LDAP: only their policy is set, no user is created.
    pub ldap: bool,
    /// When the tenant's certificate is to be signed again (`None` when the operator signs none).
    pub certificate_due_in: Option<Duration>,
}

/// The root credentials of `config.env` (`S3_ROOT_USER`/`S3_ROOT_PASSWORD`, or the server's own
/// `MINIO_ROOT_*` names), and whether an LDAP server provides the users.
fn admin_of(entries: &[(String, String)]) -> (Option<Credentials>, bool) {
    let get = |names: [&str; 2]| {
        names.iter().find_map(|n| {
            entries
                .iter()
                .rev()
                .find(|(k, v)| k == n && !v.is_empty())
                .map(|(_, v)| v.trim().to_owned())
        })
    };
    let admin = match (
        get(["S3_ROOT_USER", "MINIO_ROOT_USER"]),
        get(["S3_ROOT_PASSWORD", "MINIO_ROOT_PASSWORD"]),
    ) {
        (Some(access_key), Some(secret_key)) => Some(Credentials {
            access_key,
            secret_key,
        }),
        _ => None,
    };
    let ldap = get([
        "S3_IDENTITY_LDAP_SERVER_ADDR",
        "MINIO_IDENTITY_LDAP_SERVER_ADDR",
    ])
    .is_some();
    (admin, ldap)
}

/// What the pod-template hashes are keyed for.
const ANNOTATION_KEY_PURPOSE: &str = "pod template annotations";

/// A hash of `text` for a pod-template annotation: anyone who reads pods reads it, and the text
/// holds credentials, so it is keyed (HMAC-SHA256) with a key derived from the operator CA's. It is
/// the same in every operator version, so an upgrade of the operator changes no pod template.
fn sealed_hash(key: &ring::hmac::Key, text: &str) -> String {
    let tag = ring::hmac::sign(key, text.as_bytes());
    tag.as_ref()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub async fn apply_configuration(ctx: &Context, tenant: &Tenant) -> Result<Configured, Stop> {
    let entries = user_configuration(ctx, tenant).await?;
    let (admin, ldap) = admin_of(&entries);
    let text = desired::render_config_env(&entries);
    let key = ctx.settings.ca.derived_key(ANNOTATION_KEY_PURPOSE);
    let credentials = admin
        .as_ref()
        .map(|c| format!("{}\n{}", c.access_key, c.secret_key))
        .unwrap_or_default();
    let rendered = desired::Rendered {
        config_hash: sealed_hash(&key, &text),
        credentials_hash: sealed_hash(&key, &credentials),
        erasure: ServerSettings::of_env(&tenant.spec.env).with_configuration(&entries),
    };
    let writes = apply_rendered(ctx, tenant, text).await?;
    let (tls_writes, certificate_due_in) = ensure_tls(ctx, tenant).await?;
    let writes = writes + tls_writes;
    Ok(Configured {
        rendered,
        writes,
        admin,
        ldap,
        certificate_due_in,
    })
}

/// The entries of the user's `config.env`, once they are known to leave the layout startable.
async fn user_configuration(ctx: &Context, tenant: &Tenant) -> Result<Vec<(String, String)>, Stop> {
    let ns = tenant.namespace();
    let source = tenant
        .spec
        .configuration
        .as_ref()
        .map(|c| c.name.clone())
        .unwrap_or_default();
    let Some(user_secret) = ctx
        .caches
        .secret(&ctx.client, ns, &source)
        .await
        .at(Step::Configuration)?
    else {
        return Err(Blocked {
            state: STATE_NO_CONFIGURATION,
            reason: "ConfigurationMissing",
            message: format!("configuration Secret {source:?} does not exist yet"),
            kind: StopKind::Retrying,
            event: false,
            // Its creation wakes the Tenant (every Secret's metadata is watched); the look after
            // 30 s only covers a watch that is reconnecting.
            requeue: Some(Duration::from_secs(30)),
        }
        .into());
    };
    let config_env = user_secret
        .data
        .as_ref()
        .and_then(|d| d.get("config.env"))
        .map(|b| String::from_utf8_lossy(&b.0).into_owned())
        .unwrap_or_default();
    let entries = desired::parse_config_env(&config_env);
    // Before anything is written: rendered, such a configuration would stop every server.
    let layout = erasure::validate_with_configuration(tenant, &entries);
    if !layout.is_empty() {
        return Err(Blocked {
            state: STATE_INVALID,
            reason: "Invalid",
            message: admission::denial_message(tenant.name(), &layout),
            kind: StopKind::Invalid,
            event: true,
            requeue: None,
        }
        .into());
    }
    Ok(entries)
}

/// The Secret the pods mount: the rendered `config.env`.
async fn apply_rendered(ctx: &Context, tenant: &Tenant, rendered: String) -> Result<usize, Stop> {
    let ns = tenant.namespace();
    let name = configuration_secret_name(tenant);
    let config_secret = Secret {
        metadata: owned_meta(tenant, name.clone()),
        type_: Some("Opaque".to_owned()),
        data: Some(BTreeMap::from([(
            "config.env".to_owned(),
            ByteString(rendered.into_bytes()),
        )])),
        ..Secret::default()
    };
    let cached = ctx.caches.version(Owned::Secret, ns, &name);
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
    let written = apply(
        &ctx.applied,
        &secrets,
        config_secret,
        cached,
        Version::Resource,
    )
    .await
    .at(Step::Configuration)?;
    Ok(usize::from(written))
}

/// The TLS Secret of requestAutoCert: made when missing, and signed again when less than a third
/// of its lifetime is left (the servers read it from a Secret volume, which the kubelet updates,
/// and reload it within a minute, without a restart). One the cache does not hold may exist
/// unlabelled, made by a user: it is asked for, and left alone. Returns the writes and when the
/// certificate is due next.
async fn ensure_tls(ctx: &Context, tenant: &Tenant) -> Result<(usize, Option<Duration>), Stop> {
    if !tenant.spec.request_auto_cert.unwrap_or(true) {
        return Ok((0, None));
    }
    let ns = tenant.namespace();
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
    let tls_name = tls_secret_name(tenant);
    let lifetime = ctx.settings.tenant_certificate_lifetime;
    let expiry = ctx
        .caches
        .own_secret_value(ns, &tls_name, "tls.crt")
        .and_then(|pem| crate::certs::not_after_of_pem(&pem));
    let renew_in = |not_after: SystemTime| {
        (not_after - lifetime / 3)
            .duration_since(SystemTime::now())
            .unwrap_or_default()
    };
    match expiry {
        Some(not_after) if !crate::certs::due_for_renewal(not_after, lifetime) => {
            return Ok((0, Some(renew_in(not_after))));
        }
        Some(_) => {}
        None if ctx.caches.version(Owned::Secret, ns, &tls_name).is_some()
            || secrets
                .get_metadata_opt(&tls_name)
                .await
                .at(Step::Certificate)?
                .is_some() =>
        {
            return Ok((0, None));
        }
        None => {}
    }
    let (tls, not_after) = tls_secret(
        tenant,
        &ctx.settings.ca,
        &ctx.settings.defaults.cluster_domain,
        lifetime,
    )
    .at(Step::Certificate)?;
    let written = apply(&ctx.applied, &secrets, tls, None, Version::Resource)
        .await
        .at(Step::Certificate)?;
    if expiry.is_some() {
        report::publish(
            &ctx.events,
            tenant,
            EventType::Normal,
            "CertificateRenewed",
            format!(
                "the TLS certificate in Secret {tls_name:?} was signed again, valid for {} s; the servers reload it without a restart",
                lifetime.as_secs()
            ),
        )
        .await;
    }
    Ok((usize::from(written), Some(renew_in(not_after))))
}

fn owned_meta(tenant: &Tenant, name: String) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: Some(tenant.namespace().to_owned()),
        labels: Some(desired::tenant_pod_labels(tenant)),
        owner_references: Some(vec![desired::owner_reference(tenant)]),
        ..ObjectMeta::default()
    }
}

/// The names a tenant's certificate must carry: every pod host name (by the headless Service's
/// wildcard, so appended pools are covered), the S3 Service's names, and the user's extra names.
pub fn certificate_names(tenant: &Tenant, domain: &str) -> Vec<String> {
    let ns = tenant.namespace();
    let mut names: Vec<String> = Vec::new();
    if let Some(cn) = tenant
        .spec
        .cert_config
        .as_ref()
        .and_then(|c| c.common_name.clone())
    {
        names.push(cn);
    }
    names.push(crate::api::names::wildcard_common_name(tenant, domain));
    for pool in &tenant.spec.pools {
        for i in 0..pool.servers.max(0) {
            names.push(format!(
                "{}-{i}.{}.{ns}.svc.{domain}",
                crate::api::names::pool_statefulset_name(tenant, pool),
                crate::api::names::headless_service_name(tenant)
            ));
        }
    }
    for n in [
        "minio".to_owned(),
        format!("minio.{ns}"),
        format!("minio.{ns}.svc"),
        format!("minio.{ns}.svc.{domain}"),
    ] {
        names.push(n);
    }
    if let Some(extra) = tenant.spec.cert_config.as_ref() {
        names.extend(extra.dns_names.iter().cloned());
    }
    names.dedup();
    names
}

/// The tenant's TLS Secret, signed by the operator CA, and when its certificate expires.
fn tls_secret(
    tenant: &Tenant,
    ca: &Ca,
    domain: &str,
    lifetime: Duration,
) -> Result<(Secret, SystemTime), crate::certs::CertError> {
    let pair = ca.sign_serving_for(&certificate_names(tenant, domain), lifetime)?;
    let not_after = pair.not_after;
    let secret = Secret {
        metadata: owned_meta(tenant, tls_secret_name(tenant)),
        type_: Some("kubernetes.io/tls".to_owned()),
        data: Some(BTreeMap::from([
            ("tls.crt".to_owned(), ByteString(pair.cert_pem.into_bytes())),
            ("tls.key".to_owned(), ByteString(pair.key_pem.into_bytes())),
            (
                "ca.crt".to_owned(),
                ByteString(ca.cert_pem().as_bytes().to_vec()),
            ),
        ])),
        ..Secret::default()
    };
    Ok((secret, not_after))
}

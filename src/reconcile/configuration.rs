//! Configuration: the user's credentials rendered into the Secret the pods mount, and the TLS
//! Secret the operator CA signs when `requestAutoCert` is on.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ObjectMeta};

use super::apply::{Version, apply};
use super::caches::Owned;
use super::certs_dir;
use super::context::Context;
use super::desired::{self, CERTIFICATE_ANNOTATION, SIGNED_BY_ANNOTATION};
use super::events::EventType;
use super::outcome::{AtStep, Blocked, Step, Stop, StopKind};
use super::report;
use super::servers::merge_pod_metadata;
use super::status::{STATE_INVALID, STATE_NO_CERTIFICATE, STATE_NO_CONFIGURATION};
use super::takeover;
use crate::admission;
use crate::admission::validate::erasure::{self, ServerSettings};
use crate::api::names::{configuration_secret_name, tls_secret_name};
use crate::api::tenant::Tenant;
use crate::certs::store::StoredCa;
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
    /// The servers answer metrics without a token.
    pub metrics_public: bool,
}

/// The root credentials of `config.env` and whether an LDAP server provides the users, read as
/// the server reads them (`erasure::server_value`): `MINIO_ROOT_USER` over `S3_ROOT_USER`, the
/// last of a name winning, an empty value unset. Credentials read any other way sign admin requests
/// the server refuses.
fn admin_of(entries: &[(String, String)]) -> (Option<Credentials>, bool) {
    let get = |key| erasure::server_value(&[], entries, key).map(str::to_owned);
    let admin = match (get("ROOT_USER"), get("ROOT_PASSWORD")) {
        (Some(access_key), Some(secret_key)) => Some(Credentials {
            access_key,
            secret_key,
        }),
        _ => None,
    };
    (admin, get("IDENTITY_LDAP_SERVER_ADDR").is_some())
}

/// What the pod-template hashes are keyed for.
const ANNOTATION_KEY_PURPOSE: &str = "pod template annotations";

/// A hash of `text` for a pod-template annotation: anyone who reads pods reads it, and the text
/// holds credentials, so it is keyed (HMAC-SHA256) with a key derived from the operator CA's. It is
/// the same in every operator version, so an upgrade of the operator changes no pod template.
fn sealed_hash(key: &ring::hmac::Key, text: &str) -> String {
    crate::certs::hex(&ring::hmac::sign(key, text.as_bytes()).as_ref()[..8])
}

pub async fn apply_configuration(ctx: &Context, tenant: &Tenant) -> Result<Configured, Stop> {
    let entries = user_configuration(ctx, tenant).await?;
    let (admin, ldap) = admin_of(&entries);
    // The operator's variables first: the user's entries win, as they did over the container's
    // environment (the file is read after it).
    let operator = desired::configured_env(tenant, &ctx.settings.defaults.cluster_domain);
    let mut text = desired::render_config_file(&operator, &entries);
    let ca = ctx.settings.ca.current();
    let key = ca.derived_key(ANNOTATION_KEY_PURPOSE);
    let config_hash = sealed_hash(&key, &text);
    text.push_str(&desired::render_config_env(&[(
        desired::CONFIGURATION_MARK.to_owned(),
        config_hash.clone(),
    )]));
    let credentials = admin
        .as_ref()
        .map(|c| format!("{}\n{}", c.access_key, c.secret_key))
        .unwrap_or_default();
    let external_certificates = external_certificate_keys(ctx, tenant).await?;
    let rendered = desired::Rendered {
        external_certificates,
        config_hash,
        credentials_hash: sealed_hash(&key, &credentials),
        erasure: ServerSettings::of_env(&tenant.spec.env).with_configuration(&entries),
        trust_mark: ca
            .trust_mark
            .clone()
            .filter(|_| tenant.spec.request_auto_cert.unwrap_or(true)),
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
        metrics_public: super::scrape::metrics_public(tenant, &entries),
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
    let entries = desired::user_entries(&config_env);
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

/// The keys the servers mount of each of the user's certificate Secrets (`externalCertSecret`),
/// read from them. Until every Secret the certificate directory takes files from exists (the CA
/// and client certificate Secrets too), or while a certificate Secret holds no certificate and
/// key, the servers are not given them: their pods would never start.
async fn external_certificate_keys(
    ctx: &Context,
    tenant: &Tenant,
) -> Result<Vec<desired::CertKeys>, Stop> {
    if !tenant.tls() {
        return Ok(Vec::new());
    }
    let served = tenant.spec.external_cert_secret.len();
    let mut keys = Vec::new();
    for (i, (field, name)) in certs_dir::referenced(tenant).into_iter().enumerate() {
        let secret = ctx
            .caches
            .secret(&ctx.client, tenant.namespace(), name)
            .await
            .at(Step::Certificate)?;
        let Some(secret) = secret else {
            return Err(Blocked {
                state: STATE_NO_CERTIFICATE,
                reason: "CertificateMissing",
                message: format!("certificate Secret {name:?} ({field}) does not exist yet"),
                kind: StopKind::Retrying,
                event: false,
                // Its creation wakes the Tenant, as the configuration Secret's does.
                requeue: Some(Duration::from_secs(30)),
            }
            .into());
        };
        // The CA and client certificate Secrets are mounted by their declared type, unread.
        if i >= served {
            continue;
        }
        match desired::CertKeys::of_secret(&secret) {
            Some(found) => keys.push(found),
            None => {
                return Err(Blocked {
                    state: STATE_NO_CERTIFICATE,
                    reason: "CertificateIncomplete",
                    message: format!(
                        "certificate Secret {name:?} ({field}) holds neither tls.crt and tls.key (a kubernetes.io/tls Secret) nor public.crt and private.key: the servers would have no certificate to serve"
                    ),
                    kind: StopKind::Stalled,
                    event: true,
                    requeue: None,
                }
                .into());
            }
        }
    }
    Ok(keys)
}

/// What the TLS Secret of requestAutoCert holds, as the cache has it.
#[derive(Debug, Default)]
struct TlsSeen {
    not_after: Option<SystemTime>,
    ca_pem: Option<Vec<u8>>,
    /// The signing CA's fingerprint: the annotation, or for a Secret written before it, the
    /// first CA of `ca.crt` (then the only one).
    signer: Option<String>,
}

/// What the TLS Secret needs now.
#[derive(Debug, PartialEq, Eq)]
enum TlsAction {
    /// Nothing; the certificate is due for renewal in this long.
    Keep(Duration),
    /// Signed (again) by the current CA, with the current bundle as `ca.crt`.
    Sign(SignReason),
    /// The operator CA changed, and some server started before it trusted the new one: its
    /// certificate stays until the rollout restarted every server.
    WaitForTrust,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SignReason {
    Missing,
    Renewal,
    /// The bundle changed (a CA announced or forgotten): the same CA signs again, `ca.crt` is
    /// the new bundle.
    Bundle,
    /// A promoted CA signs, now that every server trusts it.
    NewCa,
}

/// The one decision of the TLS Secret. `servers_trust` says whether every server of the tenant
/// started trusting the current CA.
fn tls_action(
    seen: &TlsSeen,
    bundle_pem: &str,
    signer: &str,
    servers_trust: bool,
    lifetime: Duration,
    now: SystemTime,
) -> TlsAction {
    let Some(not_after) = seen.not_after else {
        return TlsAction::Sign(SignReason::Missing);
    };
    let keep = || {
        TlsAction::Keep(
            (not_after - lifetime / 3)
                .duration_since(now)
                .unwrap_or_default(),
        )
    };
    // Another operator's certificate, taken over, is served until it is due; then ours signs.
    if seen.signer.as_deref() == Some(takeover::ADOPTED_SIGNER) {
        return match crate::certs::due_for_renewal_at(not_after, lifetime, now) {
            true => TlsAction::Sign(SignReason::Renewal),
            false => keep(),
        };
    }
    let same_signer = seen.signer.as_deref() == Some(signer);
    let expired = not_after <= now;
    if !same_signer && !servers_trust && !expired {
        return TlsAction::WaitForTrust;
    }
    if crate::certs::due_for_renewal_at(not_after, lifetime, now) {
        return TlsAction::Sign(SignReason::Renewal);
    }
    if !same_signer {
        return TlsAction::Sign(SignReason::NewCa);
    }
    if seen.ca_pem.as_deref() != Some(bundle_pem.as_bytes()) {
        return TlsAction::Sign(SignReason::Bundle);
    }
    keep()
}

/// How soon a tenant waiting for its servers to trust a new CA is looked at again.
const TRUST_RECHECK: Duration = Duration::from_secs(10);

/// The TLS Secret of requestAutoCert: made when missing, signed again when less than a third of its
/// lifetime is left, and following a rotation of the operator CA (`ca.crt` is the bundle of
/// every CA that may sign; a promoted CA signs once every server started trusting it). The
/// servers read it from a Secret volume, which the kubelet updates, and reload the certificate
/// within a minute, without a restart. One the cache does not hold may exist unlabelled, made by a
/// user: it is asked for, and left alone. Returns the writes and when to look again.
async fn ensure_tls(ctx: &Context, tenant: &Tenant) -> Result<(usize, Option<Duration>), Stop> {
    if !tenant.spec.request_auto_cert.unwrap_or(true) {
        return Ok((0, None));
    }
    let ns = tenant.namespace();
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
    let tls_name = tls_secret_name(tenant);
    let lifetime = ctx.settings.tenant_certificate_lifetime;
    let ca = ctx.settings.ca.current();
    let signer = ca.signer();
    let seen = tls_seen(ctx, ns, &tls_name);
    crate::metrics::tenant_certificate_expiry(ns, tenant.name(), seen.not_after);
    if seen.not_after.is_none()
        && let Some(found) = secrets
            .get_metadata_opt(&tls_name)
            .await
            .at(Step::Certificate)?
    {
        return adopt_or_leave(ctx, tenant, &secrets, &tls_name, &found.metadata).await;
    }
    // The pods are asked only when the signer changed, the one case the answer decides.
    let servers_trust = seen.signer.as_deref() == Some(signer)
        || ctx
            .caches
            .pods_of(tenant)
            .iter()
            .all(|pod| pod.annotation(desired::TRUSTED_CA_ANNOTATION) == Some(signer));
    let reason = match tls_action(
        &seen,
        &ca.bundle_pem,
        signer,
        servers_trust,
        lifetime,
        SystemTime::now(),
    ) {
        TlsAction::Keep(due_in) => return Ok((0, Some(due_in))),
        TlsAction::WaitForTrust => {
            tracing::info!(namespace = ns, tenant = tenant.name(), ca = %signer, "the operator CA changed: the certificate is signed again once every server restarted trusting it");
            return Ok((0, Some(TRUST_RECHECK)));
        }
        TlsAction::Sign(reason) => reason,
    };
    let (tls, not_after) = tls_secret(tenant, &ca, &ctx.settings.defaults.cluster_domain, lifetime)
        .at(Step::Certificate)?;
    let written = apply(&ctx.applied, &secrets, tls, None, Version::Resource)
        .await
        .at(Step::Certificate)?;
    crate::metrics::tenant_certificate_expiry(ns, tenant.name(), Some(not_after));
    announce_signed(ctx, tenant, &tls_name, reason, lifetime).await;
    let handed = match reason {
        SignReason::Missing => 0,
        _ => hand_to_servers(ctx, tenant, not_after).await,
    };
    let due_in = (not_after - lifetime / 3)
        .duration_since(SystemTime::now())
        .unwrap_or_default();
    Ok((usize::from(written) + handed, Some(due_in)))
}

/// Hands a certificate signed again to the running servers sooner: a change to a pod makes the
/// kubelet sync it at once, and the sync rewrites its Secret volumes; the servers load the new
/// files at their next look (every 10 s). Left alone, the kubelet syncs a pod every 60 to 90 s.
/// A sync that comes before the kubelet's own watch saw the new Secret rewrites the old files,
/// and a pod that cannot be patched is left to the periodic sync: both get the certificate then,
/// so this shortens the usual wait and bounds nothing. Returns the pods written.
async fn hand_to_servers(ctx: &Context, tenant: &Tenant, not_after: SystemTime) -> usize {
    let stamp = not_after
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
        .to_string();
    let annotations = serde_json::json!({ "annotations": { CERTIFICATE_ANNOTATION: stamp } });
    let mut written = 0;
    for pod in ctx.caches.pods_of(tenant) {
        match merge_pod_metadata(ctx, tenant.namespace(), pod.name(), &annotations).await {
            Ok(true) => written += 1,
            // Gone: its replacement mounts the new Secret.
            Ok(false) => {}
            Err(error) => tracing::info!(
                %error,
                namespace = tenant.namespace(),
                pod = pod.name(),
                "the renewed certificate reaches this server at the kubelet's next sync of its pod"
            ),
        }
    }
    written
}

/// The tenant's TLS Secret as the caches hold it.
fn tls_seen(ctx: &Context, ns: &str, tls_name: &str) -> TlsSeen {
    let ca_pem = ctx.caches.own_ca(ns, tls_name);
    TlsSeen {
        not_after: ctx
            .caches
            .own_secret_value(ns, tls_name, "tls.crt")
            .and_then(|pem| crate::certs::not_after_of_pem(&pem)),
        signer: ctx
            .caches
            .own_secret_annotation(ns, tls_name, SIGNED_BY_ANNOTATION)
            .or_else(|| crate::certs::fingerprint_of_pem(ca_pem.as_deref()?)),
        ca_pem,
    }
}

/// A TLS Secret of the tenant's name that holds no `tls.crt` of ours: another operator's (the
/// Tenant owns it) is taken over; one a user made is theirs, and left alone.
async fn adopt_or_leave(
    ctx: &Context,
    tenant: &Tenant,
    secrets: &Api<Secret>,
    tls_name: &str,
    found: &ObjectMeta,
) -> Result<(usize, Option<Duration>), Stop> {
    let owned = found.owner_references.as_deref().is_some_and(|owners| {
        owners
            .iter()
            .any(|o| Some(&o.uid) == tenant.metadata.uid.as_ref())
    });
    if !owned {
        return Ok((0, None));
    }
    let Some(foreign) = secrets
        .get_opt(tls_name)
        .await
        .at(Step::Certificate)?
        .and_then(|secret| takeover::foreign_certificate(tenant, secret))
    else {
        return Ok((0, None));
    };
    let meta = owned_meta(tenant, tls_name.to_owned());
    let writes = takeover::adopt_certificate(ctx, tenant, secrets, tls_name, foreign, meta).await?;
    Ok((writes, Some(TRUST_RECHECK)))
}

/// An event for a certificate signed again (a first one is no news).
async fn announce_signed(
    ctx: &Context,
    tenant: &Tenant,
    tls_name: &str,
    reason: SignReason,
    lifetime: Duration,
) {
    let (reason, what) = match reason {
        SignReason::Missing => return,
        SignReason::Renewal => ("CertificateRenewed", "signed again"),
        SignReason::Bundle => (
            "CertificateTrustUpdated",
            "signed again with the operator's new CA bundle as ca.crt",
        ),
        SignReason::NewCa => (
            "CertificateCaRotated",
            "signed by the operator's new CA, which every server now trusts",
        ),
    };
    report::publish(
        &ctx.events,
        tenant,
        EventType::Normal,
        reason,
        format!(
            "the TLS certificate in Secret {tls_name:?} was {what}, valid for {} s; the servers reload it without a restart",
            lifetime.as_secs()
        ),
    )
    .await;
}

pub(super) fn owned_meta(tenant: &Tenant, name: String) -> ObjectMeta {
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

/// The TLS Secret, signed by the operator CA that signs now, with the bundle of every CA that may
/// sign as `ca.crt`, and when its certificate expires.
fn tls_secret(
    tenant: &Tenant,
    ca: &StoredCa,
    domain: &str,
    lifetime: Duration,
) -> Result<(Secret, SystemTime), crate::certs::CertError> {
    let pair = ca
        .ca
        .sign_serving_for(&certificate_names(tenant, domain), lifetime)?;
    let not_after = pair.not_after;
    let mut metadata = owned_meta(tenant, tls_secret_name(tenant));
    metadata.annotations = Some(BTreeMap::from([(
        SIGNED_BY_ANNOTATION.to_owned(),
        ca.signer().to_owned(),
    )]));
    let secret = Secret {
        metadata,
        type_: Some("kubernetes.io/tls".to_owned()),
        data: Some(BTreeMap::from([
            ("tls.crt".to_owned(), ByteString(pair.cert_pem.into_bytes())),
            ("tls.key".to_owned(), ByteString(pair.key_pem.into_bytes())),
            (
                "ca.crt".to_owned(),
                ByteString(ca.bundle_pem.as_bytes().to_vec()),
            ),
        ])),
        ..Secret::default()
    };
    Ok((secret, not_after))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIFETIME: Duration = Duration::from_secs(300);

    fn entries(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn the_admin_is_whom_the_server_takes_for_root() {
        let keys = |e: &[(&str, &str)]| {
            let (admin, ldap) = admin_of(&entries(e));
            (admin.map(|c| (c.access_key, c.secret_key)), ldap)
        };
        let pair = |u: &str, p: &str| Some((u.to_owned(), p.to_owned()));
        assert_eq!(
            keys(&[("S3_ROOT_USER", "s3"), ("S3_ROOT_PASSWORD", "s3-secret")]),
            (pair("s3", "s3-secret"), false)
        );
        // The server reads MINIO_ over S3_, wherever each stands in the file.
        assert_eq!(
            keys(&[
                ("MINIO_ROOT_USER", "minio"),
                ("S3_ROOT_USER", "s3"),
                ("S3_ROOT_PASSWORD", "s3-secret"),
                ("MINIO_ROOT_PASSWORD", "minio-secret"),
            ]),
            (pair("minio", "minio-secret"), false)
        );
        // The last of a name wins; an empty value is unset; a user without a password is no admin.
        assert_eq!(
            keys(&[
                ("S3_ROOT_USER", "first"),
                ("S3_ROOT_USER", " second "),
                ("S3_ROOT_PASSWORD", "p"),
            ]),
            (pair("second", "p"), false)
        );
        assert_eq!(
            keys(&[("S3_ROOT_USER", "u"), ("S3_ROOT_PASSWORD", "  ")]),
            (None, false)
        );
        assert_eq!(
            keys(&[("MINIO_IDENTITY_LDAP_SERVER_ADDR", "ldap:636")]),
            (None, true)
        );
    }

    fn seen(now: SystemTime, left: u64, signer: &str, bundle: &str) -> TlsSeen {
        TlsSeen {
            not_after: Some(now + Duration::from_secs(left)),
            ca_pem: Some(bundle.as_bytes().to_vec()),
            signer: Some(signer.to_owned()),
        }
    }

    #[test]
    fn a_ca_rotation_moves_the_certificate_only_once_every_server_trusts_the_new_ca() {
        let now = SystemTime::now();
        let act = |seen: &TlsSeen, bundle, signer, trust| {
            tls_action(seen, bundle, signer, trust, LIFETIME, now)
        };
        // Steady: nothing until a third of the lifetime is left.
        let steady = seen(now, 250, "c1", "C1");
        assert_eq!(
            act(&steady, "C1", "c1", false),
            TlsAction::Keep(Duration::from_secs(150))
        );
        // Announced: the same CA signs again, ca.crt carries both.
        assert_eq!(
            act(&steady, "C1N2", "c1", false),
            TlsAction::Sign(SignReason::Bundle)
        );
        // Promoted: wait for the servers, however the bundle reads.
        let announced = seen(now, 250, "c1", "C1N2");
        assert_eq!(
            act(&announced, "C1N2", "n2", false),
            TlsAction::WaitForTrust
        );
        // ... even when renewal is due: the old key no longer signs, the certificate still serves.
        assert_eq!(
            act(&seen(now, 50, "c1", "C1N2"), "C1N2", "n2", false),
            TlsAction::WaitForTrust
        );
        assert_eq!(
            act(&announced, "C1N2", "n2", true),
            TlsAction::Sign(SignReason::NewCa)
        );
        // An expired certificate is replaced whatever the servers trust: nothing is lost by it.
        assert_eq!(
            act(&seen(now, 0, "c1", "C1N2"), "C1N2", "n2", false),
            TlsAction::Sign(SignReason::Renewal)
        );
        // Forgotten: the bundle shrinks, the same CA signs again.
        assert_eq!(
            act(&seen(now, 250, "n2", "C1N2"), "N2", "n2", false),
            TlsAction::Sign(SignReason::Bundle)
        );
        assert_eq!(
            act(&TlsSeen::default(), "N2", "n2", false),
            TlsAction::Sign(SignReason::Missing)
        );
    }

    #[test]
    fn an_adopted_certificate_is_served_until_it_is_due_whatever_the_servers_trust() {
        let now = SystemTime::now();
        let adopted = |left| seen(now, left, takeover::ADOPTED_SIGNER, "C1LEAFCLUSTER");
        // Neither the other signer nor the longer bundle moves it: its clients keep working.
        assert_eq!(
            tls_action(&adopted(250), "C1", "c1", false, LIFETIME, now),
            TlsAction::Keep(Duration::from_secs(150))
        );
        assert_eq!(
            tls_action(&adopted(250), "C1", "c1", true, LIFETIME, now),
            TlsAction::Keep(Duration::from_secs(150))
        );
        assert_eq!(
            tls_action(&adopted(50), "C1", "c1", false, LIFETIME, now),
            TlsAction::Sign(SignReason::Renewal)
        );
    }

    #[test]
    fn the_tls_secret_carries_the_bundle_and_names_its_signer() {
        let tenant: Tenant = serde_json::from_value(serde_json::json!({
            "apiVersion": "minio.min.io/v2", "kind": "Tenant",
            "metadata": {"name": "t", "namespace": "ns", "uid": "u"},
            "spec": {"pools": [{"name": "p", "servers": 4, "volumesPerServer": 1}]}
        }))
        .unwrap();
        let first = std::sync::Arc::new(crate::certs::Ca::generate("a").unwrap());
        let mut stored = StoredCa::single(first.clone());
        stored.bundle_pem = format!("{}{}", first.cert_pem(), "extra\n");
        let (secret, _) = tls_secret(&tenant, &stored, "cluster.local", LIFETIME).unwrap();
        let data = secret.data.unwrap();
        assert_eq!(data["ca.crt"].0, stored.bundle_pem.as_bytes());
        assert_eq!(
            secret.metadata.annotations.unwrap()[SIGNED_BY_ANNOTATION],
            crate::certs::fingerprint_of_pem(first.cert_pem().as_bytes()).unwrap()
        );
    }
}

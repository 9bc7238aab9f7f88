//! Monitoring: for a Tenant with `spec.prometheusOperator: true`, its servers get a user that may
//! read metrics and nothing else, a Secret of the Tenant holds a token signed with that user's key
//! (made again when a third of its lifetime is left, or when the key changes with the operator CA),
//! and a ServiceMonitor tells a Prometheus operator what to scrape with it
//! ([`super::scrape`] says what each holds). Never an edit of a Prometheus: any number of them can
//! select the ServiceMonitor. Turned off, the token Secret and the ServiceMonitor go.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams};
use serde_json::Value;

use super::apply::{self, FIELD_MANAGER, Version, hash64};
use super::caches::Owned;
use super::configuration::owned_meta;
use super::context::Context;
use super::desired;
use super::events::EventType;
use super::outcome::{AtStep, Step, StepError, log_admin_error};
use super::report;
use super::scrape::{self, SCRAPE_POLICY, SCRAPE_POLICY_JSON, SCRAPE_USER, TOKEN_KEY};
use crate::api::tenant::Tenant;
use crate::s3admin::AdminClient;

fn service_monitors_api(client: &kube::Client, namespace: &str) -> Api<DynamicObject> {
    let resource = ApiResource {
        group: "monitoring.coreos.com".to_owned(),
        version: "v1".to_owned(),
        api_version: "monitoring.coreos.com/v1".to_owned(),
        kind: "ServiceMonitor".to_owned(),
        plural: "servicemonitors".to_owned(),
    };
    Api::namespaced_with(client.clone(), namespace, &resource)
}

/// The monitoring phase, once the servers answer. Returns when the token is due again.
pub async fn ensure(
    ctx: &Context,
    tenant: &Tenant,
    admin: &AdminClient,
    public: bool,
) -> Result<Option<Duration>, StepError> {
    let uid = tenant.metadata.uid.clone().unwrap_or_default();
    if !tenant.spec.prometheus_operator.unwrap_or(false) {
        remove(ctx, tenant).await?;
        return Ok(None);
    }
    let token = if public {
        remove_token(ctx, tenant).await?;
        Token::default()
    } else {
        match ensure_token(ctx, tenant, admin).await? {
            Some(token) => token,
            // The servers did not take the scrape user: said, and asked again soon.
            None => return Ok(Some(Duration::from_secs(30))),
        }
    };
    let mut monitor =
        scrape::service_monitor(tenant, &ctx.settings.defaults.cluster_domain, !public);
    monitor["metadata"]["ownerReferences"] = serde_json::json!([desired::owner_reference(tenant)]);
    apply_monitor(ctx, tenant, &uid, monitor, token.written).await?;
    Ok(token.due_in)
}

/// What the token step did.
#[derive(Default)]
struct Token {
    /// When it is due again.
    due_in: Option<Duration>,
    /// It was (re)written on this pass.
    written: bool,
}

/// The scrape user on the servers, and its token in the Tenant's Secret; `None` when the servers
/// refused the user.
async fn ensure_token(
    ctx: &Context,
    tenant: &Tenant,
    admin: &AdminClient,
) -> Result<Option<Token>, StepError> {
    let ns = tenant.namespace();
    let uid = tenant.metadata.uid.clone().unwrap_or_default();
    let token_name = scrape::token_secret_name(tenant);
    let ca_key = ctx.settings.ca.current().derived_key(scrape::KEY_PURPOSE);
    let key = scrape::scrape_user_secret(&ca_key, &uid);
    let fingerprint = scrape::fingerprint(&key);
    let annotations: BTreeMap<String, String> =
        [scrape::EXPIRES_ANNOTATION, scrape::SIGNED_WITH_ANNOTATION]
            .into_iter()
            .filter_map(|k| {
                ctx.caches
                    .own_secret_annotation(ns, &token_name, k)
                    .map(|v| (k.to_owned(), v))
            })
            .collect();
    let seen = (!annotations.is_empty()).then_some(&annotations);
    let now = SystemTime::now();
    let lifetime = ctx.settings.metrics_token_lifetime;
    // The user's key is set once per process (and whenever it changes): a token is worth
    // nothing if the servers lost its user.
    if !ctx.memory.scrape_user_set(&uid, &fingerprint) {
        if let Err((call, error)) = set_scrape_user(admin, &key).await {
            log_admin_error(tenant, call, &error);
            let note = format!(
                "cannot give the servers the metrics user {SCRAPE_USER:?} ({call}): {error}; the token in Secret {token_name:?} is not made until they take it"
            );
            report::publish(
                &ctx.events,
                tenant,
                EventType::Warning,
                "MetricsUserFailed",
                note,
            )
            .await;
            return Ok(None);
        }
        ctx.memory.remember_scrape_user(&uid, Some(fingerprint));
    }
    if let Some(left) = scrape::token_good_for(seen, &key, lifetime, now) {
        return Ok(Some(Token {
            due_in: Some(left),
            written: false,
        }));
    }
    write_token(ctx, tenant, &token_name, &key, now, lifetime).await?;
    let (reason, what) = match seen {
        None => ("MetricsTokenIssued", "made"),
        Some(_) => ("MetricsTokenRenewed", "made again"),
    };
    let note = format!(
        "the metrics token in Secret {token_name:?} was {what} for user {SCRAPE_USER:?} (admin:Prometheus only), valid {} s",
        lifetime.as_secs()
    );
    report::publish(&ctx.events, tenant, EventType::Normal, reason, note).await;
    Ok(Some(Token {
        due_in: Some(lifetime * 2 / 3),
        written: true,
    }))
}

async fn set_scrape_user(
    admin: &AdminClient,
    key: &str,
) -> Result<(), (&'static str, crate::s3admin::AdminError)> {
    admin
        .add_canned_policy(SCRAPE_POLICY, SCRAPE_POLICY_JSON)
        .await
        .map_err(|e| ("add-canned-policy", e))?;
    admin
        .add_user(SCRAPE_USER, key)
        .await
        .map_err(|e| ("add-user", e))?;
    admin
        .set_user_policy(SCRAPE_POLICY, SCRAPE_USER)
        .await
        .map_err(|e| ("set-user-or-group-policy", e))
}

async fn write_token(
    ctx: &Context,
    tenant: &Tenant,
    name: &str,
    key: &str,
    now: SystemTime,
    lifetime: Duration,
) -> Result<(), StepError> {
    let (token, expires) = scrape::mint(SCRAPE_USER, key, now, lifetime).at(Step::Monitoring)?;
    let mut meta = owned_meta(tenant, name.to_owned());
    meta.annotations = Some(scrape::token_annotations(expires, key));
    let secret = Secret {
        metadata: meta,
        type_: Some("Opaque".to_owned()),
        data: Some(BTreeMap::from([(
            TOKEN_KEY.to_owned(),
            ByteString(token.into_bytes()),
        )])),
        ..Secret::default()
    };
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), tenant.namespace());
    let cached = ctx.caches.version(Owned::Secret, tenant.namespace(), name);
    apply::apply(&ctx.applied, &secrets, secret, cached, Version::Resource)
        .await
        .at(Step::Monitoring)?;
    Ok(())
}

/// Applies the ServiceMonitor when it changed since the last apply (or the token was just
/// written). Without its CRD, says so and goes on: the token Secret is there for a Prometheus
/// configured by hand.
async fn apply_monitor(
    ctx: &Context,
    tenant: &Tenant,
    uid: &str,
    monitor: Value,
    force: bool,
) -> Result<(), StepError> {
    let hash = hash64(&monitor);
    if !force && ctx.memory.monitors_applied(uid, hash) {
        return Ok(());
    }
    let api = service_monitors_api(&ctx.client, tenant.namespace());
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let name = scrape::service_monitor_name(tenant);
    match api.patch(&name, &params, &Patch::Apply(&monitor)).await {
        Ok(_) => crate::metrics::count_api_write(),
        Err(kube::Error::Api(e)) if e.code == 404 => {
            let note = format!(
                "the ServiceMonitor CRD (monitoring.coreos.com/v1) is not installed: install the Prometheus operator's CRDs, or scrape {:?} with the token in Secret {:?} (docs/operations.md, Monitoring)",
                scrape::scrape_paths(tenant),
                scrape::token_secret_name(tenant)
            );
            report::publish(
                &ctx.events,
                tenant,
                EventType::Warning,
                "ServiceMonitorUnavailable",
                note,
            )
            .await;
            return Ok(());
        }
        Err(e) => return Err(e).at(Step::Monitoring),
    }
    ctx.memory.remember_monitors(uid, Some(hash));
    Ok(())
}

async fn delete_monitor(api: &Api<DynamicObject>, name: &str) -> Result<(), StepError> {
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => {
            crate::metrics::count_api_write();
            Ok(())
        }
        // Gone already, or no such kind at all.
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e).at(Step::Monitoring),
    }
}

async fn remove_token(ctx: &Context, tenant: &Tenant) -> Result<(), StepError> {
    let name = scrape::token_secret_name(tenant);
    if ctx
        .caches
        .version(Owned::Secret, tenant.namespace(), &name)
        .is_none()
    {
        return Ok(());
    }
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), tenant.namespace());
    apply::delete(&secrets, &name, &DeleteParams::default())
        .await
        .at(Step::Monitoring)?;
    Ok(())
}

/// Monitoring turned off: what it made goes. Asked only when a token Secret or a remembered
/// ServiceMonitor says something was made, so a Tenant that never asked costs nothing.
async fn remove(ctx: &Context, tenant: &Tenant) -> Result<(), StepError> {
    let uid = tenant.metadata.uid.clone().unwrap_or_default();
    let had_token = ctx
        .caches
        .version(
            Owned::Secret,
            tenant.namespace(),
            &scrape::token_secret_name(tenant),
        )
        .is_some();
    let had_monitors = ctx.memory.monitors_applied_any(&uid);
    if !had_token && !had_monitors {
        return Ok(());
    }
    let api = service_monitors_api(&ctx.client, tenant.namespace());
    delete_monitor(&api, &scrape::service_monitor_name(tenant)).await?;
    remove_token(ctx, tenant).await?;
    ctx.memory.remember_monitors(&uid, None);
    ctx.memory.remember_scrape_user(&uid, None);
    Ok(())
}

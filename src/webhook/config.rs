//! The Mutating- and ValidatingWebhookConfiguration that register the webhooks: one builder for
//! `hanzo-s3-operator webhook-config`, for what the operator applies in a cluster, and for tests.

use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhook, MutatingWebhookConfiguration, RuleWithOperations, ServiceReference,
    ValidatingWebhook, ValidatingWebhookConfiguration, WebhookClientConfig,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector, LabelSelectorRequirement, ObjectMeta,
};

use crate::api::tenant::{GROUP, PLURAL, VERSION};

pub const MUTATING_CONFIGURATION: &str = "hanzo-s3-operator";
pub const VALIDATING_CONFIGURATION: &str = "hanzo-s3-operator";
pub const MUTATING_WEBHOOK: &str = "defaults.tenants.hanzo.ai";
pub const VALIDATING_WEBHOOK: &str = "validation.tenants.hanzo.ai";
/// The apiserver waits at most this long; our answers take well under a millisecond.
pub const TIMEOUT_SECONDS: i32 = 5;

/// Where the apiserver reaches the webhook server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// The operator's Service, port 443.
    Service { namespace: String, name: String },
    /// A URL (`https://host:port`), for servers outside the cluster (tests, `dev`).
    Url(String),
}

#[derive(Clone, Debug)]
pub struct Options {
    pub target: Target,
    /// PEM of the CA(s) that signed the serving certificate; during a rotation, old and new.
    pub ca_bundle_pem: Option<String>,
    /// Excluded from admission along with kube-system, so the operator can always be repaired.
    pub operator_namespace: String,
    /// `Fail` (default) or `Ignore`. Validation always fails closed.
    pub mutation_failure_policy: String,
}

fn client_config(options: &Options, path: &str) -> WebhookClientConfig {
    let ca_bundle = options
        .ca_bundle_pem
        .as_ref()
        .map(|pem| ByteString(pem.as_bytes().to_vec()));
    match &options.target {
        Target::Service { namespace, name } => WebhookClientConfig {
            service: Some(ServiceReference {
                namespace: namespace.clone(),
                name: name.clone(),
                path: Some(path.to_owned()),
                port: Some(443),
            }),
            ca_bundle,
            url: None,
        },
        Target::Url(base) => WebhookClientConfig {
            url: Some(format!("{}{path}", base.trim_end_matches('/'))),
            ca_bundle,
            service: None,
        },
    }
}

/// Tenants only, and only CREATE and UPDATE: DELETE is always allowed, so registering it would only
/// add a way for deletions to fail while the webhook is down.
fn rules() -> Vec<RuleWithOperations> {
    vec![RuleWithOperations {
        api_groups: Some(vec![GROUP.to_owned()]),
        api_versions: Some(vec![VERSION.to_owned()]),
        operations: Some(vec!["CREATE".to_owned(), "UPDATE".to_owned()]),
        resources: Some(vec![PLURAL.to_owned()]),
        scope: Some("Namespaced".to_owned()),
    }]
}

fn namespace_selector(options: &Options) -> LabelSelector {
    LabelSelector {
        match_expressions: Some(vec![LabelSelectorRequirement {
            key: "kubernetes.io/metadata.name".to_owned(),
            operator: "NotIn".to_owned(),
            values: Some(vec![
                options.operator_namespace.clone(),
                "kube-system".to_owned(),
            ]),
        }]),
        match_labels: None,
    }
}

fn meta(name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        labels: Some(
            [(
                "app.kubernetes.io/name".to_owned(),
                "hanzo-s3-operator".to_owned(),
            )]
            .into(),
        ),
        ..ObjectMeta::default()
    }
}

pub fn mutating(options: &Options) -> MutatingWebhookConfiguration {
    MutatingWebhookConfiguration {
        metadata: meta(MUTATING_CONFIGURATION),
        webhooks: Some(vec![MutatingWebhook {
            name: MUTATING_WEBHOOK.to_owned(),
            client_config: client_config(options, "/mutate"),
            rules: Some(rules()),
            admission_review_versions: vec!["v1".to_owned()],
            side_effects: "None".to_owned(),
            match_policy: Some("Equivalent".to_owned()),
            failure_policy: Some(options.mutation_failure_policy.clone()),
            timeout_seconds: Some(TIMEOUT_SECONDS),
            namespace_selector: Some(namespace_selector(options)),
            reinvocation_policy: Some("Never".to_owned()),
            ..MutatingWebhook::default()
        }]),
    }
}

pub fn validating(options: &Options) -> ValidatingWebhookConfiguration {
    ValidatingWebhookConfiguration {
        metadata: meta(VALIDATING_CONFIGURATION),
        webhooks: Some(vec![ValidatingWebhook {
            name: VALIDATING_WEBHOOK.to_owned(),
            client_config: client_config(options, "/validate"),
            rules: Some(rules()),
            admission_review_versions: vec!["v1".to_owned()],
            side_effects: "None".to_owned(),
            match_policy: Some("Equivalent".to_owned()),
            failure_policy: Some("Fail".to_owned()),
            timeout_seconds: Some(TIMEOUT_SECONDS),
            namespace_selector: Some(namespace_selector(options)),
            ..ValidatingWebhook::default()
        }]),
    }
}

/// Both configurations as one YAML stream.
pub fn yaml(options: &Options) -> Result<String, serde_yaml_ng::Error> {
    Ok(format!(
        "---\n{}---\n{}",
        serde_yaml_ng::to_string(&mutating(options))?,
        serde_yaml_ng::to_string(&validating(options))?
    ))
}

/// Server-side apply of both configurations (forced: the operator owns these fields, whoever set
/// them before, e.g. a first install by kubectl). Idempotent.
pub async fn apply(
    client: &kube::Client,
    options: &Options,
    field_manager: &str,
) -> Result<(), kube::Error> {
    use kube::api::{Api, Patch, PatchParams};
    let params = PatchParams::apply(field_manager).force();
    Api::<MutatingWebhookConfiguration>::all(client.clone())
        .patch(
            MUTATING_CONFIGURATION,
            &params,
            &Patch::Apply(&mutating(options)),
        )
        .await?;
    Api::<ValidatingWebhookConfiguration>::all(client.clone())
        .patch(
            VALIDATING_CONFIGURATION,
            &params,
            &Patch::Apply(&validating(options)),
        )
        .await?;
    Ok(())
}

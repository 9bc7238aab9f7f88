//! AdmissionReview v1 in and out, for Tenants. Knows the wire contract, not the rules: those come
//! from `admission`. Parses only what it needs: the request's uid, kind, operation, namespace, name,
//! dryRun and the two objects; everything else in the review (userInfo, options, ...) is skipped.

use base64::Engine;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};

use crate::admission::patch::defaulting_patch;
use crate::admission::{self, DefaultsConfig, Violation};
use crate::api::tenant::{GROUP, KIND, Tenant};

pub const REVIEW_API_VERSION: &str = "admission.k8s.io/v1";
pub const REVIEW_KIND: &str = "AdmissionReview";

/// Which endpoint is answering.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Webhook {
    Mutate,
    Validate,
}

impl Webhook {
    pub fn as_str(self) -> &'static str {
        match self {
            Webhook::Mutate => "mutate",
            Webhook::Validate => "validate",
        }
    }
}

/// A review that cannot be answered: the HTTP layer turns it into 400 with this reason.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadReview(pub String);

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReviewIn<'a> {
    #[serde(default)]
    api_version: String,
    #[serde(default)]
    kind: String,
    #[serde(borrow)]
    request: Option<RequestIn<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RequestIn<'a> {
    #[serde(default)]
    uid: String,
    #[serde(default)]
    kind: GroupVersionKind,
    #[serde(default)]
    operation: String,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    name: Option<String>,
    /// Borrowed as text: /validate deserializes the Tenant from it directly, and only /mutate
    /// builds a tree (to check its patch against the object as received).
    #[serde(default, borrow)]
    object: Option<&'a RawValue>,
    #[serde(default, borrow)]
    old_object: Option<&'a RawValue>,
    #[serde(default)]
    dry_run: Option<bool>,
}

#[derive(Default, Deserialize)]
struct GroupVersionKind {
    #[serde(default)]
    group: String,
    #[serde(default)]
    kind: String,
}

/// What the handler learned, for logs and metrics (never object contents).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    pub uid: String,
    pub operation: String,
    pub namespace: String,
    pub name: String,
    pub dry_run: bool,
    pub allowed: bool,
    /// `allowed`, `denied`, `patched`.
    pub verdict: &'static str,
    pub violations: usize,
}

/// Facts only the cluster knows. `None` from the view means "cannot tell" (standalone mode, or the
/// API was unreachable): the check is skipped with a warning rather than failing admission.
#[allow(async_fn_in_trait)]
pub trait ClusterView {
    /// Names of the other Tenants in `namespace` (not `name` itself).
    async fn other_tenants(&self, namespace: &str, name: &str) -> Option<Vec<String>>;
    /// Whether Secret `name` exists in `namespace`.
    async fn secret_exists(&self, namespace: &str, name: &str) -> Option<bool>;
}

/// No cluster: standalone mode and offline use.
pub struct NoCluster;

impl ClusterView for NoCluster {
    async fn other_tenants(&self, _: &str, _: &str) -> Option<Vec<String>> {
        None
    }
    async fn secret_exists(&self, _: &str, _: &str) -> Option<bool> {
        None
    }
}

/// Answers one AdmissionReview body. `Err` means HTTP 400.
pub async fn answer(
    webhook: Webhook,
    body: &[u8],
    config: &DefaultsConfig,
    cluster: &impl ClusterView,
) -> Result<(Value, Outcome), BadReview> {
    let review: ReviewIn = serde_json::from_slice(body)
        .map_err(|e| BadReview(format!("malformed AdmissionReview: {e}")))?;
    if review.api_version != REVIEW_API_VERSION || review.kind != REVIEW_KIND {
        return Err(BadReview(format!(
            "expected apiVersion {REVIEW_API_VERSION} kind {REVIEW_KIND}, got apiVersion {:?} kind {:?}",
            review.api_version, review.kind
        )));
    }
    let request = review
        .request
        .ok_or_else(|| BadReview("AdmissionReview has no request".into()))?;
    if request.uid.is_empty() {
        return Err(BadReview("AdmissionReview request has no uid".into()));
    }
    let mut outcome = Outcome {
        uid: request.uid.clone(),
        operation: request.operation.clone(),
        namespace: request.namespace.clone().unwrap_or_default(),
        name: request.name.clone().unwrap_or_default(),
        dry_run: request.dry_run.unwrap_or(false),
        allowed: true,
        verdict: "allowed",
        violations: 0,
    };
    let is_tenant = request.kind.group == GROUP && request.kind.kind == KIND;
    let raw_object = match request.operation.as_str() {
        // Nothing to judge: deletion is always allowed (a Tenant's data outlives it in its PVCs),
        // and a review for another kind means a mis-registration we should not turn into outages.
        "CREATE" | "UPDATE" if is_tenant => request.object.as_ref().ok_or_else(|| {
            BadReview(format!(
                "{} review without request.object",
                request.operation
            ))
        })?,
        _ => return Ok((allow(&request.uid, Vec::new()), outcome)),
    };
    let new = match admission::parse_tenant_str(raw_object.get()) {
        Ok(mut tenant) => {
            // The object carries its namespace on CREATE only after defaulting by the apiserver;
            // the request always has it.
            if tenant.namespace().is_empty() {
                tenant.metadata.namespace = Some(outcome.namespace.clone());
            }
            tenant
        }
        Err(violation) => {
            outcome.allowed = false;
            outcome.verdict = "denied";
            outcome.violations = 1;
            let name = name_of(raw_object, &outcome.name);
            return Ok((
                deny_invalid(&request.uid, &name, &[violation], Vec::new()),
                outcome,
            ));
        }
    };
    if outcome.name.is_empty() {
        outcome.name = new.name().to_owned();
    }
    match webhook {
        Webhook::Mutate => {
            let object: Value = serde_json::from_str(raw_object.get())
                .map_err(|e| BadReview(format!("request.object is not JSON: {e}")))?;
            let (patch, _) = defaulting_patch(&object, &new, config)
                .map_err(|e| BadReview(format!("cannot default the object: {e}")))?;
            let mut response = allow(&request.uid, Vec::new());
            if !patch.0.is_empty() {
                let bytes = serde_json::to_vec(&patch)
                    .map_err(|e| BadReview(format!("cannot encode the patch: {e}")))?;
                response["response"]["patchType"] = json!("JSONPatch");
                response["response"]["patch"] =
                    json!(base64::engine::general_purpose::STANDARD.encode(bytes));
                outcome.verdict = "patched";
            }
            Ok((response, outcome))
        }
        Webhook::Validate => {
            let old = request
                .old_object
                .filter(|_| request.operation == "UPDATE")
                .and_then(|o| admission::parse_tenant_str(o.get()).ok())
                .map(|mut o| {
                    if o.namespace().is_empty() {
                        o.metadata.namespace = Some(outcome.namespace.clone());
                    }
                    o
                });
            let verdict = admission::review(old.as_ref(), &new, config);
            let mut warnings = verdict.warnings.clone();
            if !verdict.allowed() {
                outcome.allowed = false;
                outcome.verdict = "denied";
                outcome.violations = verdict.violations.len();
                return Ok((
                    deny_invalid(&request.uid, new.name(), &verdict.violations, warnings),
                    outcome,
                ));
            }
            if let Some(denial) = cluster_checks(&new, cluster, &mut warnings).await {
                outcome.allowed = false;
                outcome.verdict = "denied";
                outcome.violations = 1;
                return Ok((
                    deny_policy(&request.uid, new.name(), &denial, warnings),
                    outcome,
                ));
            }
            Ok((allow(&request.uid, warnings), outcome))
        }
    }
}

/// Checks that need the cluster. The Go operator finds a second Tenant in a namespace only while
/// reconciling; here it is refused before it is stored.
async fn cluster_checks(
    tenant: &Tenant,
    cluster: &impl ClusterView,
    warnings: &mut Vec<String>,
) -> Option<String> {
    let (ns, name) = (tenant.namespace(), tenant.name());
    match cluster.other_tenants(ns, name).await {
        Some(others) if !others.is_empty() => {
            return Some(format!(
                "namespace {ns:?} already has Tenant {:?}: a namespace holds one Tenant, because its S3 Service is named `minio`; create this Tenant in a namespace of its own",
                others[0]
            ));
        }
        Some(_) => {}
        None => warnings.push(
            "could not check for another Tenant in this namespace (cluster not reachable)".into(),
        ),
    }
    if let Some(secret) = tenant.spec.configuration.as_ref().map(|c| c.name.as_str())
        && !secret.is_empty()
        && cluster.secret_exists(ns, secret).await == Some(false)
    {
        warnings.push(format!(
            "spec.configuration.name: Secret {secret:?} does not exist yet in namespace {ns:?}; the tenant waits for it"
        ));
    }
    None
}

/// The object's name, for the denial message of an object that is not a valid Tenant.
fn name_of(object: &RawValue, fallback: &str) -> String {
    #[derive(Deserialize)]
    struct Named {
        metadata: Option<Meta>,
    }
    #[derive(Deserialize)]
    struct Meta {
        name: Option<String>,
    }
    serde_json::from_str::<Named>(object.get())
        .ok()
        .and_then(|n| n.metadata?.name)
        .unwrap_or_else(|| fallback.to_owned())
}

fn review_envelope(response: Value) -> Value {
    json!({"apiVersion": REVIEW_API_VERSION, "kind": REVIEW_KIND, "response": response})
}

fn allow(uid: &str, warnings: Vec<String>) -> Value {
    respond(json!({"uid": uid, "allowed": true}), warnings)
}

fn respond(mut response: Value, warnings: Vec<String>) -> Value {
    if !warnings.is_empty() {
        response["warnings"] = json!(warnings);
    }
    review_envelope(response)
}

/// A denial with a metav1.Status in the apiserver's own shape.
fn deny(
    uid: &str,
    code: u16,
    reason: &str,
    message: String,
    details: Value,
    warnings: Vec<String>,
) -> Value {
    let status = json!({"metadata": {}, "status": "Failure", "code": code, "reason": reason, "message": message, "details": details});
    respond(
        json!({"uid": uid, "allowed": false, "status": status}),
        warnings,
    )
}

/// 422 Invalid with one cause per violation, in the shape of the apiserver's own field errors.
fn deny_invalid(uid: &str, name: &str, violations: &[Violation], warnings: Vec<String>) -> Value {
    let causes: Vec<Value> = violations
        .iter()
        .map(|v| json!({"type": v.reason.cause_type(), "field": v.field, "message": v.message()}))
        .collect();
    let details = json!({"name": name, "group": GROUP, "kind": "tenants", "causes": causes});
    deny(
        uid,
        422,
        "Invalid",
        admission::denial_message(name, violations),
        details,
        warnings,
    )
}

/// 403 Forbidden: the Tenant is fine, the cluster's policy refuses it.
fn deny_policy(uid: &str, name: &str, reason: &str, warnings: Vec<String>) -> Value {
    let details = json!({"name": name, "group": GROUP, "kind": "tenants"});
    let message = format!("Tenant.minio.min.io {name:?} is forbidden: {reason}");
    deny(uid, 403, "Forbidden", message, details, warnings)
}

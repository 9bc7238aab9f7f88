//! AdmissionReview v1 in and out, for Tenants. Knows the wire contract, not the rules: those come
//! from `admission`. Parses only what it needs: the request's uid, kind, operation, namespace, name,
//! dryRun and the two objects; everything else in the review (userInfo, options, ...) is skipped.
//!
//! One review goes parse → decide → render: [`answer`] parses the envelope, the functions below it
//! each decide one step into a [`Decision`], and [`Decision::render`] alone writes the answer.

use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

use super::decision::{Decision, REVIEW_API_VERSION, REVIEW_KIND};
use crate::admission::patch::defaulting_patch_of_typed;
use crate::admission::{self, DefaultsConfig, Unfit, Violation};
use crate::api::tenant::{GROUP, KIND, Tenant};

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
    /// Borrowed as text: the Tenant is parsed from it in one pass that checks the size limits
    /// too, and no tree of it is ever built.
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

/// What the handler learned, for logs and metrics: who asked about what, and what was decided
/// (which quotes no more of the object than the answer itself does).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub uid: String,
    pub operation: String,
    pub namespace: String,
    pub name: String,
    pub dry_run: bool,
    /// The answer was rendered from it; metrics and logs read their verdict from it.
    pub decision: Decision,
}

/// Facts only the cluster knows. `None` from the view means "cannot tell" (standalone mode, or the
/// API was unreachable): the check is skipped with a warning rather than failing admission.
#[allow(async_fn_in_trait)]
pub trait ClusterView {
    /// Names of the other Tenants in `namespace` (not `name` itself).
    async fn other_tenants(&self, namespace: &str, name: &str) -> Option<Vec<String>>;
    /// Whether Secret `name` exists in `namespace`.
    async fn secret_exists(&self, namespace: &str, name: &str) -> Option<bool>;
    /// Tenant `name` was just admitted for creation in `namespace` (not a dry run): a view that
    /// reads caches counts it until its watch event has had time to arrive.
    fn admitted(&self, _namespace: &str, _name: &str) {}
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
    let request = parse_review(body)?;
    let namespace = request.namespace.clone().unwrap_or_default();
    let mut name = request.name.clone().unwrap_or_default();
    let decision = decide(webhook, &request, &namespace, &mut name, config, cluster).await?;
    let review = decision.render(&request.uid);
    let outcome = Outcome {
        dry_run: request.dry_run.unwrap_or(false),
        uid: request.uid,
        operation: request.operation,
        namespace,
        name,
        decision,
    };
    Ok((review, outcome))
}

/// The request of a well-formed AdmissionReview v1, its objects borrowed from `body`.
fn parse_review(body: &[u8]) -> Result<RequestIn<'_>, BadReview> {
    // JSON is UTF-8. serde_json checks the strings it keeps, not the keys it skips, so a body
    // with invalid bytes in an ignored key would otherwise be answered (found by fuzzing).
    let body = std::str::from_utf8(body)
        .map_err(|e| BadReview(format!("malformed AdmissionReview: not UTF-8: {e}")))?;
    let review: ReviewIn = serde_json::from_str(body)
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
    Ok(request)
}

/// The decision about a well-formed request. `name` is the request's, for the log; a request
/// without one gets the Tenant's once the object parses.
async fn decide(
    webhook: Webhook,
    request: &RequestIn<'_>,
    namespace: &str,
    name: &mut String,
    config: &DefaultsConfig,
    cluster: &impl ClusterView,
) -> Result<Decision, BadReview> {
    let Some(raw_object) = object_to_judge(request)? else {
        return Ok(Decision::allow());
    };
    let new = match received_tenant(raw_object, namespace)? {
        Ok(tenant) => tenant,
        Err(violations) => {
            return Ok(Decision::Invalid {
                name: name_of(raw_object, name.as_str()),
                violations,
                warnings: Vec::new(),
            });
        }
    };
    if name.is_empty() {
        *name = new.name().to_owned();
    }
    match webhook {
        Webhook::Mutate => mutate(new, config),
        Webhook::Validate => validate(request, new, namespace, config, cluster).await,
    }
}

/// The object the review asks about, or `None` when there is nothing to judge.
fn object_to_judge<'a>(request: &RequestIn<'a>) -> Result<Option<&'a RawValue>, BadReview> {
    let is_tenant = request.kind.group == GROUP && request.kind.kind == KIND;
    match request.operation.as_str() {
        // Nothing to judge: deletion is always allowed (a Tenant's data outlives it in its PVCs),
        // and a review for another kind means a mis-registration we should not turn into outages.
        "CREATE" | "UPDATE" if is_tenant => request.object.map(Some).ok_or_else(|| {
            BadReview(format!(
                "{} review without request.object",
                request.operation
            ))
        }),
        _ => Ok(None),
    }
}

/// The Tenant in `request.object`, in the request's namespace; `Ok(Err)` with the violations of an
/// object that is over the size limits or is no Tenant (both webhooks deny those alike).
fn received_tenant(
    raw_object: &RawValue,
    namespace: &str,
) -> Result<Result<Tenant, Vec<Violation>>, BadReview> {
    // The size limits are checked as the object is parsed: nothing over them is built.
    let mut tenant = match admission::parse_tenant_checked(raw_object.get())
        .map_err(|e| BadReview(format!("malformed AdmissionReview: request.object: {e}")))?
    {
        Ok(tenant) => tenant,
        Err(unfit) => return Ok(Err(unfit.into_violations())),
    };
    // The object carries its namespace on CREATE only after defaulting by the apiserver;
    // the request always has it.
    if tenant.namespace().is_empty() {
        tenant.metadata.namespace = Some(namespace.to_owned());
    } else if tenant.namespace() != namespace {
        // The apiserver refuses such an object before any webhook sees it; everything
        // derived from the namespace (Services, host names) would be built for the wrong one.
        return Err(BadReview(format!(
            "malformed AdmissionReview: request.namespace {:?} differs from the object's metadata.namespace {:?}",
            namespace,
            tenant.namespace()
        )));
    }
    Ok(Ok(tenant))
}

/// /mutate: the patch that defaults the object as received, when defaulting changes anything.
fn mutate(new: Tenant, config: &DefaultsConfig) -> Result<Decision, BadReview> {
    let (patch, _) = defaulting_patch_of_typed(new, config)
        .map_err(|e| BadReview(format!("cannot default the object: {e}")))?;
    if patch.0.is_empty() {
        return Ok(Decision::allow());
    }
    let patch = serde_json::to_vec(&patch)
        .map_err(|e| BadReview(format!("cannot encode the patch: {e}")))?;
    Ok(Decision::Patch { patch })
}

/// /validate: the Tenant as defaulting leaves it, the change from the stored one, then the checks
/// that need the cluster.
async fn validate(
    request: &RequestIn<'_>,
    new: Tenant,
    namespace: &str,
    config: &DefaultsConfig,
    cluster: &impl ClusterView,
) -> Result<Decision, BadReview> {
    let mut warnings = Vec::new();
    let old = stored_tenant(request, namespace, &mut warnings)?;
    // Defaulting changes neither the name, the namespace nor the configuration Secret, so
    // the cluster checks below read the defaulted Tenant as they would the one received.
    let (verdict, new) = admission::review_owned(old, new, config);
    let allowed = verdict.allowed();
    warnings.extend(verdict.warnings);
    if !allowed {
        return Ok(Decision::Invalid {
            name: new.name().to_owned(),
            violations: verdict.violations,
            warnings,
        });
    }
    if let Some(reason) = cluster_checks(&new, cluster, &mut warnings).await {
        return Ok(Decision::Forbidden {
            name: new.name().to_owned(),
            reason,
            warnings,
        });
    }
    if request.operation == "CREATE" && request.dry_run != Some(true) {
        cluster.admitted(namespace, new.name());
    }
    Ok(Decision::Allow { warnings })
}

/// The stored Tenant an UPDATE changes, in the request's namespace. `None` when there is nothing to
/// compare with: not an UPDATE, or a stored object that cannot be read (a warning says so).
fn stored_tenant(
    request: &RequestIn<'_>,
    namespace: &str,
    warnings: &mut Vec<String>,
) -> Result<Option<Tenant>, BadReview> {
    if request.operation != "UPDATE" {
        return Ok(None);
    }
    let Some(raw) = request.old_object else {
        return Err(BadReview("UPDATE review without request.oldObject".into()));
    };
    let parsed = admission::parse_tenant_checked(raw.get())
        .map_err(|e| BadReview(format!("malformed AdmissionReview: request.oldObject: {e}")))?;
    match parsed {
        Ok(mut old) => {
            if old.namespace().is_empty() {
                old.metadata.namespace = Some(namespace.to_owned());
            }
            Ok(Some(old))
        }
        // Stored while the webhook was off, or by an older schema: the new object is
        // still judged in full, only the comparison with the old one is impossible.
        Err(Unfit::OverLimits(_)) => {
            warnings.push(
                "the stored Tenant is over the size limits; changes to pools could not be checked against it"
                    .to_owned(),
            );
            Ok(None)
        }
        Err(Unfit::NotATenant(violation)) => {
            warnings.push(format!(
                "the stored Tenant is not valid ({}); changes to pools could not be checked against it",
                violation.message()
            ));
            Ok(None)
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
    for (i, user) in tenant.spec.users.iter().enumerate() {
        if !user.name.is_empty() && cluster.secret_exists(ns, &user.name).await == Some(false) {
            warnings.push(format!(
                "spec.users[{i}].name: Secret {:?} does not exist yet in namespace {ns:?}; the user is created once it does (the Tenant's Provisioned condition says so meanwhile)",
                user.name
            ));
        }
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use base64::Engine as _;
    use serde_json::json;

    use super::*;

    /// A cluster with fixed answers that counts the questions it was asked.
    #[derive(Default)]
    struct FakeCluster {
        others: Option<Vec<String>>,
        secret: Option<bool>,
        questions: AtomicUsize,
    }

    impl FakeCluster {
        fn quiet() -> Self {
            FakeCluster {
                others: Some(Vec::new()),
                secret: Some(true),
                ..FakeCluster::default()
            }
        }
    }

    impl ClusterView for FakeCluster {
        async fn other_tenants(&self, _: &str, _: &str) -> Option<Vec<String>> {
            self.questions.fetch_add(1, Ordering::Relaxed);
            self.others.clone()
        }
        async fn secret_exists(&self, _: &str, _: &str) -> Option<bool> {
            self.questions.fetch_add(1, Ordering::Relaxed);
            self.secret
        }
    }

    fn tenant(name: &str) -> Value {
        json!({
            "apiVersion": "minio.min.io/v2", "kind": "Tenant",
            "metadata": {"name": name, "namespace": "storage"},
            "spec": {
                "configuration": {"name": format!("{name}-env")},
                "pools": [{"name": "pool-0", "servers": 4, "volumesPerServer": 2,
                    "volumeClaimTemplate": {"spec": {"accessModes": ["ReadWriteOnce"],
                        "resources": {"requests": {"storage": "1Gi"}}}}}]
            }
        })
    }

    fn review(operation: &str, object: Value, old: Value) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {
                "uid": "uid-1",
                "kind": {"group": "minio.min.io", "version": "v2", "kind": "Tenant"},
                "resource": {"group": "minio.min.io", "version": "v2", "resource": "tenants"},
                "namespace": "storage", "name": object["metadata"]["name"].clone(),
                "operation": operation, "userInfo": {"username": "alice"},
                "object": object, "oldObject": old, "dryRun": false,
            }
        }))
        .unwrap()
    }

    async fn run(webhook: Webhook, body: &[u8], cluster: &FakeCluster) -> Value {
        answer(webhook, body, &DefaultsConfig::default(), cluster)
            .await
            .unwrap()
            .0
    }

    async fn bad(webhook: Webhook, body: &[u8]) -> String {
        answer(
            webhook,
            body,
            &DefaultsConfig::default(),
            &FakeCluster::quiet(),
        )
        .await
        .unwrap_err()
        .0
    }

    fn decoded_patch(response: &Value) -> json_patch::Patch {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(response["response"]["patch"].as_str().unwrap())
            .unwrap();
        serde_json::from_slice(&raw).unwrap()
    }

    #[tokio::test]
    async fn a_tenant_over_the_size_limits_is_denied_by_both_webhooks_before_it_is_parsed() {
        let mut big = tenant("big");
        let pool = big["spec"]["pools"][0].clone();
        big["spec"]["pools"] = json!(vec![pool; 10_000]);
        let cluster = FakeCluster::quiet();
        for webhook in [Webhook::Mutate, Webhook::Validate] {
            let out = run(
                webhook,
                &review("CREATE", big.clone(), Value::Null),
                &cluster,
            )
            .await;
            let response = &out["response"];
            assert_eq!(response["allowed"], false);
            assert_eq!(response["status"]["code"], 422);
            let message = response["status"]["message"].as_str().unwrap();
            assert!(
                message.starts_with("Tenant.minio.min.io \"big\" is invalid: [spec.pools: Too many: 10000: must have at most 128 items, <root>: Too many: "),
                "{message}"
            );
            assert!(
                response.get("patch").is_none(),
                "no patch for a denied object"
            );
        }
        assert_eq!(
            cluster.questions.load(Ordering::Relaxed),
            0,
            "no cluster check either"
        );
        // An oversized stored object does not block an UPDATE that makes it small again.
        let out = run(
            Webhook::Validate,
            &review("UPDATE", tenant("big"), big),
            &cluster,
        )
        .await;
        assert_eq!(out["response"]["allowed"], true);
        assert_eq!(
            out["response"]["warnings"][0],
            "the stored Tenant is over the size limits; changes to pools could not be checked against it"
        );
    }

    #[tokio::test]
    async fn a_body_that_is_not_utf8_is_malformed_even_in_a_key_nobody_reads() {
        let mut body = review("CREATE", tenant("a"), Value::Null);
        let text = String::from_utf8(body.clone()).unwrap();
        let at = text.find("userInfo").unwrap();
        body[at + 1] = 0xff;
        for webhook in [Webhook::Mutate, Webhook::Validate] {
            assert!(
                bad(webhook, &body)
                    .await
                    .starts_with("malformed AdmissionReview: not UTF-8")
            );
        }
    }

    #[tokio::test]
    async fn an_object_with_a_string_that_is_not_unicode_is_malformed() {
        let body = String::from_utf8(review("CREATE", tenant("a"), Value::Null))
            .unwrap()
            .replace("\"spec\":{", "\"spec\":{\"unknownField\":\"\\ud800x\",");
        for webhook in [Webhook::Mutate, Webhook::Validate] {
            let reason = bad(webhook, body.as_bytes()).await;
            assert!(
                reason.starts_with(
                    "malformed AdmissionReview: request.object: unexpected end of hex escape"
                ),
                "{reason}"
            );
        }
    }

    #[tokio::test]
    async fn an_object_in_another_namespace_than_the_request_is_malformed() {
        let mut object = tenant("a");
        object["metadata"]["namespace"] = json!("elsewhere");
        let body = review("CREATE", object, Value::Null);
        for webhook in [Webhook::Mutate, Webhook::Validate] {
            assert_eq!(
                bad(webhook, &body).await,
                "malformed AdmissionReview: request.namespace \"storage\" differs from the object's metadata.namespace \"elsewhere\""
            );
        }
    }

    #[tokio::test]
    async fn every_answer_echoes_the_uid_in_an_admission_review_v1() {
        let cluster = FakeCluster::quiet();
        for webhook in [Webhook::Mutate, Webhook::Validate] {
            for body in [
                review("CREATE", tenant("a"), Value::Null),
                review("UPDATE", tenant("a"), tenant("a")),
                review("DELETE", Value::Null, tenant("a")),
            ] {
                let out = run(webhook, &body, &cluster).await;
                assert_eq!(out["apiVersion"], "admission.k8s.io/v1");
                assert_eq!(out["kind"], "AdmissionReview");
                assert_eq!(out["response"]["uid"], "uid-1");
                assert!(out.get("request").is_none());
            }
        }
    }

    #[tokio::test]
    async fn mutate_answers_a_base64_json_patch_that_defaults_and_then_nothing() {
        let cluster = FakeCluster::quiet();
        let object = tenant("a");
        let out = run(
            Webhook::Mutate,
            &review("CREATE", object.clone(), Value::Null),
            &cluster,
        )
        .await;
        assert_eq!(out["response"]["allowed"], true);
        assert_eq!(out["response"]["patchType"], "JSONPatch");
        let patch = decoded_patch(&out);
        let mut patched = object;
        json_patch::patch(&mut patched, &patch).unwrap();
        assert_eq!(patched["spec"]["serviceAccountName"], "a-sa");
        assert_eq!(patched["spec"]["podManagementPolicy"], "Parallel");
        // Defaulting a defaulted Tenant changes nothing: no patch at all, not an empty one.
        let again = run(
            Webhook::Mutate,
            &review("CREATE", patched, Value::Null),
            &cluster,
        )
        .await;
        assert_eq!(again["response"]["allowed"], true);
        assert!(again["response"].get("patch").is_none(), "{again}");
        assert!(again["response"].get("patchType").is_none(), "{again}");
        assert_eq!(
            cluster.questions.load(Ordering::Relaxed),
            0,
            "mutate asks nothing"
        );
    }

    #[tokio::test]
    async fn validate_never_patches_and_judges_the_object_as_defaulting_leaves_it() {
        let cluster = FakeCluster::quiet();
        // No pool name: invalid as written, valid once defaulting names it.
        let mut object = tenant("a");
        object["spec"]["pools"][0]
            .as_object_mut()
            .unwrap()
            .remove("name");
        let out = run(
            Webhook::Validate,
            &review("CREATE", object, Value::Null),
            &cluster,
        )
        .await;
        assert_eq!(out["response"]["allowed"], true, "{out}");
        assert!(out["response"].get("patch").is_none());
        assert!(out["response"].get("patchType").is_none());
        assert!(out["response"].get("status").is_none());
    }

    #[tokio::test]
    async fn an_invalid_tenant_is_denied_422_with_a_cause_per_violation() {
        let mut object = tenant("a");
        object["spec"]["pools"][0]["servers"] = json!(2);
        object["spec"]["pools"][0]["volumesPerServer"] = json!(1);
        object["spec"]["podManagementPolicy"] = json!("parallel");
        let out = run(
            Webhook::Validate,
            &review("CREATE", object, Value::Null),
            &FakeCluster::quiet(),
        )
        .await;
        let response = &out["response"];
        assert_eq!(response["allowed"], false);
        let status = &response["status"];
        assert_eq!(status["code"], 422);
        assert_eq!(status["reason"], "Invalid");
        assert_eq!(status["status"], "Failure");
        let message = status["message"].as_str().unwrap();
        assert!(
            message.starts_with("Tenant.minio.min.io \"a\" is invalid: ["),
            "{message}"
        );
        let causes = status["details"]["causes"].as_array().unwrap();
        assert_eq!(causes.len(), 2, "{causes:?}");
        for cause in causes {
            let field = cause["field"].as_str().unwrap();
            assert!(message.contains(field), "{field} in {message}");
            assert!(cause["message"].as_str().unwrap().starts_with(field));
        }
        assert_eq!(causes[0]["field"], "spec.pools[0].volumesPerServer");
        assert_eq!(causes[0]["reason"], "FieldValueInvalid");
        assert_eq!(causes[1]["field"], "spec.podManagementPolicy");
        assert_eq!(causes[1]["reason"], "FieldValueNotSupported");
        assert_eq!(status["details"]["group"], "minio.min.io");
        assert_eq!(status["details"]["name"], "a");
    }

    #[tokio::test]
    async fn an_object_that_is_no_tenant_is_denied_422_with_its_field_path_by_both() {
        let mut object = tenant("a");
        object["spec"]["pools"][0]["servers"] = json!("abc");
        for webhook in [Webhook::Mutate, Webhook::Validate] {
            let out = run(
                webhook,
                &review("CREATE", object.clone(), Value::Null),
                &FakeCluster::quiet(),
            )
            .await;
            let status = &out["response"]["status"];
            assert_eq!(out["response"]["allowed"], false);
            assert_eq!(status["code"], 422);
            assert_eq!(
                status["details"]["causes"][0]["field"],
                "spec.pools[0].servers"
            );
            assert!(
                status["message"]
                    .as_str()
                    .unwrap()
                    .contains("spec.pools[0].servers"),
                "{status}"
            );
            assert!(out["response"].get("patch").is_none());
        }
    }

    #[tokio::test]
    async fn a_second_tenant_in_a_namespace_is_forbidden_403() {
        let cluster = FakeCluster {
            others: Some(vec!["first".into()]),
            secret: Some(true),
            ..FakeCluster::default()
        };
        let out = run(
            Webhook::Validate,
            &review("CREATE", tenant("second"), Value::Null),
            &cluster,
        )
        .await;
        let status = &out["response"]["status"];
        assert_eq!(out["response"]["allowed"], false);
        assert_eq!(status["code"], 403);
        assert_eq!(status["reason"], "Forbidden");
        assert!(
            status["message"]
                .as_str()
                .unwrap()
                .starts_with("Tenant.minio.min.io \"second\" is forbidden: namespace \"storage\" already has Tenant \"first\""),
            "{status}"
        );
    }

    #[tokio::test]
    async fn a_missing_configuration_secret_or_an_unreachable_cluster_is_only_a_warning() {
        let missing = FakeCluster {
            others: Some(Vec::new()),
            secret: Some(false),
            ..FakeCluster::default()
        };
        let out = run(
            Webhook::Validate,
            &review("CREATE", tenant("a"), Value::Null),
            &missing,
        )
        .await;
        assert_eq!(out["response"]["allowed"], true);
        let warnings = out["response"]["warnings"].to_string();
        assert!(
            warnings.contains("spec.configuration.name: Secret \\\"a-env\\\" does not exist yet"),
            "{warnings}"
        );
        // A user's Secret missing is a warning too, naming the user entry.
        let mut with_user = tenant("a");
        with_user["spec"]["users"] = json!([{"name": "app-user"}]);
        let out = run(
            Webhook::Validate,
            &review("CREATE", with_user, Value::Null),
            &missing,
        )
        .await;
        assert_eq!(out["response"]["allowed"], true);
        let warnings = out["response"]["warnings"].to_string();
        assert!(
            warnings.contains("spec.users[0].name: Secret \\\"app-user\\\" does not exist yet"),
            "{warnings}"
        );
        let unknown = FakeCluster::default();
        let out = run(
            Webhook::Validate,
            &review("CREATE", tenant("a"), Value::Null),
            &unknown,
        )
        .await;
        assert_eq!(out["response"]["allowed"], true);
        assert!(
            out["response"]["warnings"]
                .to_string()
                .contains("could not check for another Tenant"),
            "{out}"
        );
    }

    #[tokio::test]
    async fn update_is_judged_against_the_old_object() {
        let mut old = tenant("a");
        let mut second = old["spec"]["pools"][0].clone();
        second["name"] = json!("pool-1");
        old["spec"]["pools"].as_array_mut().unwrap().push(second);
        let out = run(
            Webhook::Validate,
            &review("UPDATE", tenant("a"), old.clone()),
            &FakeCluster::quiet(),
        )
        .await;
        let status = &out["response"]["status"];
        assert_eq!(status["code"], 422, "{out}");
        assert_eq!(status["details"]["causes"][0]["field"], "spec.pools");
        assert_eq!(
            status["details"]["causes"][0]["reason"],
            "FieldValueForbidden"
        );
        // The same object as a CREATE is fine: only the change is refused.
        let out = run(
            Webhook::Validate,
            &review("CREATE", tenant("a"), Value::Null),
            &FakeCluster::quiet(),
        )
        .await;
        assert_eq!(out["response"]["allowed"], true);
        // Unchanged UPDATE is allowed.
        let out = run(
            Webhook::Validate,
            &review("UPDATE", old.clone(), old),
            &FakeCluster::quiet(),
        )
        .await;
        assert_eq!(out["response"]["allowed"], true, "{out}");
    }

    #[tokio::test]
    async fn an_update_without_old_object_is_malformed_and_an_unreadable_one_a_warning() {
        let reason = bad(
            Webhook::Validate,
            &review("UPDATE", tenant("a"), Value::Null),
        )
        .await;
        assert_eq!(reason, "UPDATE review without request.oldObject");
        let mut old = tenant("a");
        old["spec"]["pools"][0]["servers"] = json!("four");
        let out = run(
            Webhook::Validate,
            &review("UPDATE", tenant("a"), old),
            &FakeCluster::quiet(),
        )
        .await;
        assert_eq!(out["response"]["allowed"], true);
        assert!(
            out["response"]["warnings"]
                .to_string()
                .contains("the stored Tenant is not valid"),
            "{out}"
        );
    }

    #[tokio::test]
    async fn delete_with_a_null_object_is_allowed_without_asking_the_cluster() {
        let cluster = FakeCluster::quiet();
        for webhook in [Webhook::Mutate, Webhook::Validate] {
            let out = run(
                webhook,
                &review("DELETE", Value::Null, tenant("a")),
                &cluster,
            )
            .await;
            assert_eq!(
                out,
                json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                       "response": {"uid": "uid-1", "allowed": true}})
            );
        }
        assert_eq!(cluster.questions.load(Ordering::Relaxed), 0);
    }

    #[tokio::test]
    async fn a_dry_run_gets_the_same_answer_and_only_reads_the_cluster() {
        let cluster = FakeCluster::quiet();
        let wet = review("CREATE", tenant("a"), Value::Null);
        let mut dry: Value = serde_json::from_slice(&wet).unwrap();
        dry["request"]["dryRun"] = json!(true);
        let dry = serde_json::to_vec(&dry).unwrap();
        for webhook in [Webhook::Mutate, Webhook::Validate] {
            let (a, outcome) = answer(webhook, &dry, &DefaultsConfig::default(), &cluster)
                .await
                .unwrap();
            assert!(outcome.dry_run);
            assert_eq!(a, run(webhook, &wet, &cluster).await);
        }
    }

    #[tokio::test]
    async fn malformed_reviews_are_refused_with_a_reason() {
        let ok: Value =
            serde_json::from_slice(&review("CREATE", tenant("a"), Value::Null)).unwrap();
        let with = |pointer: &str, value: Value| {
            let mut r = ok.clone();
            *r.pointer_mut(pointer).unwrap() = value;
            serde_json::to_vec(&r).unwrap()
        };
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"".to_vec(), "malformed AdmissionReview: EOF"),
            (b"{".to_vec(), "malformed AdmissionReview"),
            (b"[1,2]".to_vec(), "malformed AdmissionReview"),
            (b"null".to_vec(), "malformed AdmissionReview"),
            (
                with("/apiVersion", json!("admission.k8s.io/v1beta1")),
                "expected apiVersion admission.k8s.io/v1 kind AdmissionReview, got apiVersion \"admission.k8s.io/v1beta1\"",
            ),
            (
                with("/kind", json!("Pod")),
                "expected apiVersion admission.k8s.io/v1 kind AdmissionReview",
            ),
            (
                with("/request", Value::Null),
                "AdmissionReview has no request",
            ),
            (
                with("/request/uid", json!("")),
                "AdmissionReview request has no uid",
            ),
            (with("/request/uid", json!(7)), "malformed AdmissionReview"),
            (
                with("/request/object", Value::Null),
                "CREATE review without request.object",
            ),
            (
                with("/request/dryRun", json!("yes")),
                "malformed AdmissionReview",
            ),
        ];
        for webhook in [Webhook::Mutate, Webhook::Validate] {
            for (body, expected) in &cases {
                let reason = bad(webhook, body).await;
                assert!(
                    reason.starts_with(expected),
                    "{reason:?} for {}",
                    String::from_utf8_lossy(body)
                );
            }
        }
    }

    #[tokio::test]
    async fn a_review_of_another_kind_is_allowed_untouched() {
        let mut other: Value = serde_json::from_slice(&review(
            "CREATE",
            json!({"metadata": {"name": "p"}}),
            Value::Null,
        ))
        .unwrap();
        other["request"]["kind"] = json!({"group": "", "version": "v1", "kind": "Pod"});
        let body = serde_json::to_vec(&other).unwrap();
        for webhook in [Webhook::Mutate, Webhook::Validate] {
            let out = run(webhook, &body, &FakeCluster::quiet()).await;
            assert_eq!(out["response"]["allowed"], true);
            assert!(out["response"].get("patch").is_none());
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// Nothing a client sends makes the handler panic: arbitrary bytes, and valid reviews
        /// with any single value replaced by arbitrary JSON.
        #[test]
        fn no_body_panics_the_handler(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512),
            pick in 0usize..64,
            replacement in proptest::prelude::prop_oneof![
                proptest::prelude::Just(Value::Null),
                proptest::prelude::any::<i64>().prop_map(Value::from),
                proptest::prelude::any::<bool>().prop_map(Value::from),
                ".{0,12}".prop_map(Value::from),
                proptest::prelude::Just(json!([])),
                proptest::prelude::Just(json!({})),
                proptest::prelude::Just(json!(-1e300)),
            ],
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            runtime.block_on(async {
                let cluster = FakeCluster::quiet();
                for webhook in [Webhook::Mutate, Webhook::Validate] {
                    let _ = answer(webhook, &bytes, &DefaultsConfig::default(), &cluster).await;
                }
                for operation in ["CREATE", "UPDATE"] {
                    let mut r: Value = serde_json::from_slice(&review(operation, tenant("a"), tenant("a"))).unwrap();
                    let mut pointers = Vec::new();
                    collect_pointers(&r, String::new(), &mut pointers);
                    let pointer = &pointers[pick % pointers.len()];
                    if let Some(slot) = r.pointer_mut(pointer) {
                        *slot = replacement.clone();
                    }
                    let body = serde_json::to_vec(&r).unwrap();
                    for webhook in [Webhook::Mutate, Webhook::Validate] {
                        if let Ok((out, _)) = answer(webhook, &body, &DefaultsConfig::default(), &cluster).await {
                            // Whatever else happened, a 200 answer echoes the uid.
                            assert_eq!(out["response"]["uid"], r["request"]["uid"]);
                        }
                    }
                }
            });
        }
    }

    use proptest::strategy::Strategy as _;

    fn collect_pointers(value: &Value, at: String, out: &mut Vec<String>) {
        out.push(at.clone());
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    collect_pointers(
                        v,
                        format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")),
                        out,
                    );
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    collect_pointers(v, format!("{at}/{i}"), out);
                }
            }
            _ => {}
        }
    }
}

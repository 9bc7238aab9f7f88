//! The backstop: the rules of ours that CEL can express, as a ValidatingAdmissionPolicy the
//! apiserver enforces itself. It keeps the most damaging mistakes out of etcd when the webhooks are
//! unreachable or registered with `failurePolicy: Ignore`.
//!
//! Each rule names the webhook check it mirrors and produces the webhook's message for the same
//! Tenant, so a user sees the same words whichever of the two refused (`tests/control_plane/backstop.rs` holds
//! them equal on a real apiserver). The policy sees the object after the mutating webhook, or,
//! when that is down too, without our defaults: every rule treats a field left out the way
//! defaulting would fill it, so the backstop never refuses what the webhook admits.

use serde_json::{Value, json};

use super::limits::{MAX_POOLS, MAX_SERVERS, MAX_VOLUMES_PER_SERVER};
use super::validate::{
    IMAGE_PULL_POLICIES, MAX_TENANT_NAME, MAX_TENANT_NAME_WITH_KES, POD_MANAGEMENT_POLICIES,
};
use crate::api::names::{DECOMMISSION_ANNOTATION, POOL_DECOMMISSIONED};
use crate::api::tenant::{GROUP, PLURAL, VERSION};

/// The policy's and the binding's name.
pub const POLICY_NAME: &str = "tenants.backstop.hanzo-s3-operator.io";

/// One check: `expression` is true for a Tenant that passes; `message` (a CEL string expression)
/// is the webhook's message for one that does not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// Short name, used in docs and tests.
    pub id: &'static str,
    /// What the webhook checks, in words (docs/operations.md lists these).
    pub summary: &'static str,
    /// The field the violation is about; it leads the message.
    pub field_path: &'static str,
    pub expression: String,
    pub message: String,
}

/// `"a", "b"` as the webhook lists supported values.
fn listed(values: &[&str]) -> String {
    values
        .iter()
        .map(|v| format!("\"{v}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `['a', 'b']` as a CEL list.
fn cel_list(values: &[&str]) -> String {
    let quoted: Vec<String> = values.iter().map(|v| format!("'{v}'")).collect();
    format!("[{}]", quoted.join(", "))
}

/// A rule on each pool: `ok` (CEL over `p`) must hold for every pool; `message` (CEL over `p` and
/// `i`, its index) describes the first pool where it does not.
fn every_pool(ok: &str, message: &str) -> (String, String) {
    let expression = format!("!has(object.spec.pools) || object.spec.pools.all(p, {ok})");
    let message = format!(
        "object.spec.pools.filter(p, !({ok})).map(p, [object.spec.pools.indexOf(p)].map(i, {message})[0])[0]"
    );
    (expression, message)
}

/// An enum field of the spec (`spec.<field>`) that defaulting fills when it is left out or empty.
fn spec_enum(id: &'static str, field_path: &'static str, supported: &[&str]) -> Rule {
    let path = format!("object.{field_path}");
    Rule {
        id,
        summary: "one of the values the Go operator accepts (it silently coerces others; we refuse)",
        field_path,
        expression: format!(
            "!has({path}) || {path} == '' || {path} in {}",
            cel_list(supported)
        ),
        message: format!(
            "'{field_path}: Unsupported value: \"' + {path} + '\": supported values: {}'",
            listed(supported)
        ),
    }
}

/// Every rule of the backstop, in the order the apiserver evaluates them.
pub fn rules() -> Vec<Rule> {
    let (servers_min, servers_min_message) = every_pool(
        "has(p.servers) && p.servers >= 1",
        "'spec.pools[' + string(i) + '].servers: Invalid value: ' + string(has(p.servers) ? p.servers : 0) + ': pool \"' + (has(p.name) ? p.name : '') + '\" needs at least 1 server'",
    );
    let (volumes_min, volumes_min_message) = every_pool(
        "has(p.volumesPerServer) && p.volumesPerServer >= 1",
        "'spec.pools[' + string(i) + '].volumesPerServer: Invalid value: ' + string(has(p.volumesPerServer) ? p.volumesPerServer : 0) + ': pool \"' + (has(p.name) ? p.name : '') + '\" needs at least 1 volume per server'",
    );
    let (servers_max, servers_max_message) = every_pool(
        &format!("!has(p.servers) || p.servers <= {MAX_SERVERS}"),
        &format!(
            "'spec.pools[' + string(i) + '].servers: Invalid value: ' + string(p.servers) + ': must be at most {MAX_SERVERS} servers (pods) in a pool'"
        ),
    );
    let (volumes_max, volumes_max_message) = every_pool(
        &format!("!has(p.volumesPerServer) || p.volumesPerServer <= {MAX_VOLUMES_PER_SERVER}"),
        &format!(
            "'spec.pools[' + string(i) + '].volumesPerServer: Invalid value: ' + string(p.volumesPerServer) + ': must be at most {MAX_VOLUMES_PER_SERVER} volumes per server'"
        ),
    );
    // The first pool of the old object whose name the new one lacks: renamed when the new object
    // has, at its position, a name the old one never had; removed otherwise.
    // A pool the old object asked to retire, which the operator reported drained, may leave (the
    // webhook's `retired_pool`).
    let retired = format!(
        "(has(oldObject.metadata.annotations) && '{DECOMMISSION_ANNOTATION}' in oldObject.metadata.annotations && oldObject.metadata.annotations['{DECOMMISSION_ANNOTATION}'] == o.name && has(oldObject.status) && has(oldObject.status.pools) && oldObject.status.pools.exists(s, s.ssName == oldObject.metadata.name + '-' + o.name && s.state == '{POOL_DECOMMISSIONED}'))"
    );
    let missing = format!(
        "oldObject.spec.pools.filter(o, (!has(object.spec.pools) || !object.spec.pools.exists(p, p.name == o.name)) && !{retired})"
    );
    let renamed = "has(object.spec.pools) && size(object.spec.pools) > i && !oldObject.spec.pools.exists(q, q.name == object.spec.pools[i].name)";
    vec![
        Rule {
            id: "pools-required",
            summary: "a Tenant has at least one pool",
            field_path: "spec.pools",
            expression: "has(object.spec.pools) && size(object.spec.pools) > 0".to_owned(),
            message: "'spec.pools: Required value: pools must be configured: a tenant needs at least one pool of servers'".to_owned(),
        },
        Rule {
            id: "pools-at-most",
            summary: "size limit on pools",
            field_path: "spec.pools",
            expression: format!(
                "!has(object.spec.pools) || size(object.spec.pools) <= {MAX_POOLS}"
            ),
            message: format!(
                "'spec.pools: Too many: ' + string(size(object.spec.pools)) + ': must have at most {MAX_POOLS} items'"
            ),
        },
        Rule {
            id: "servers-at-least-one",
            summary: "every pool has at least 1 server",
            field_path: "spec.pools",
            expression: servers_min,
            message: servers_min_message,
        },
        Rule {
            id: "volumes-at-least-one",
            summary: "every pool has at least 1 volume per server",
            field_path: "spec.pools",
            expression: volumes_min,
            message: volumes_min_message,
        },
        Rule {
            id: "servers-at-most",
            summary: "size limit on servers per pool",
            field_path: "spec.pools",
            expression: servers_max,
            message: servers_max_message,
        },
        Rule {
            id: "volumes-at-most",
            summary: "size limit on volumes per server",
            field_path: "spec.pools",
            expression: volumes_max,
            message: volumes_max_message,
        },
        spec_enum(
            "pod-management-policy",
            "spec.podManagementPolicy",
            POD_MANAGEMENT_POLICIES,
        ),
        spec_enum(
            "image-pull-policy",
            "spec.imagePullPolicy",
            IMAGE_PULL_POLICIES,
        ),
        Rule {
            id: "name-length",
            summary: "the tenant name leaves room for the names of its Services",
            field_path: "metadata.name",
            expression: format!("size(object.metadata.name) <= (has(object.spec.kes) ? {MAX_TENANT_NAME_WITH_KES} : {MAX_TENANT_NAME})"),
            message: format!("'metadata.name: Too long: \"' + object.metadata.name + '\": must be at most ' + (has(object.spec.kes) ? '{MAX_TENANT_NAME_WITH_KES} characters so that its KES Service `<name>-kes-hl-svc`' : '{MAX_TENANT_NAME} characters so that its console Service `<name>-console`') + ' fits in 63 (has ' + string(size(object.metadata.name)) + ')'"),
        },
        Rule {
            id: "pools-kept",
            summary: "on UPDATE, no pool is removed or renamed (each holds data)",
            field_path: "spec.pools",
            expression: format!("oldObject == null || !has(oldObject.spec.pools) || oldObject.spec.pools.all(o, (has(object.spec.pools) && object.spec.pools.exists(p, p.name == o.name)) || {retired})"),
            message: format!(
                "{missing}.map(o, [oldObject.spec.pools.indexOf(o)].map(i, {renamed} ? 'spec.pools[' + string(i) + '].name: Forbidden: pool \"' + o.name + '\" was renamed to \"' + object.spec.pools[i].name + '\": a pool\\'s name is part of its StatefulSet and volume claim names and cannot change' : 'spec.pools: Forbidden: pool \"' + o.name + '\" (spec.pools[' + string(i) + ']) was removed: removing a pool deletes its servers and the data on them; decommission it first: annotate the Tenant {DECOMMISSION_ANNOTATION}=\"' + o.name + '\", wait for status.pools to say {POOL_DECOMMISSIONED}, then remove it')[0])[0]"
            ),
        },
    ]
}

/// The ValidatingAdmissionPolicy and its binding (Deny), as objects.
pub fn objects() -> Vec<Value> {
    let labels = json!({"app.kubernetes.io/name": "hanzo-s3-operator", "app.kubernetes.io/component": "backstop"});
    let validations: Vec<Value> = rules()
        .into_iter()
        .map(|r| {
            json!({
                "expression": r.expression,
                "messageExpression": r.message,
                // Shown if the message cannot be computed.
                "message": format!("refused by the hanzo-s3-operator backstop rule {} ({})", r.id, r.summary),
                // A policy's validations have no fieldPath (CRD rules do): the field leads the
                // message instead, as it leads the webhook's.
                "reason": "Invalid",
            })
        })
        .collect();
    vec![
        json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": POLICY_NAME, "labels": labels},
            "spec": {
                "failurePolicy": "Fail",
                "matchConstraints": {"resourceRules": [{
                    "apiGroups": [GROUP], "apiVersions": [VERSION],
                    "operations": ["CREATE", "UPDATE"], "resources": [PLURAL],
                }]},
                "validations": validations,
            },
        }),
        json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": {"name": POLICY_NAME, "labels": labels},
            "spec": {"policyName": POLICY_NAME, "validationActions": ["Deny"]},
        }),
    ]
}

/// Both objects as one YAML stream, exactly as committed in `deploy/backstop/backstop.yaml`.
pub fn yaml() -> Result<String, serde_yaml_ng::Error> {
    let mut out = String::from(
        "# Generated by `hanzo-s3-operator backstop`: the Tenant rules the apiserver enforces itself\n# when the webhooks cannot answer (docs/operations.md, \"The backstop\"). Do not edit.\n",
    );
    for object in objects() {
        out.push_str("---\n");
        out.push_str(&serde_yaml_ng::to_string(&object)?);
    }
    Ok(out)
}

//! What the webhook concluded about one review, as data, and the one place it becomes the
//! AdmissionReview v1 answer. `review` decides, the server logs and counts what was decided, and
//! neither writes the wire format itself.

use base64::Engine;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::StatusCause;
use serde_json::{Value, json};

use crate::admission::{self, Violation};
use crate::api::tenant::GROUP;

/// The envelope every review and answer carries.
pub const REVIEW_API_VERSION: &str = "admission.k8s.io/v1";
pub const REVIEW_KIND: &str = "AdmissionReview";

/// The conclusion about a review that could be answered. One that cannot is a
/// [`BadReview`](super::review::BadReview): HTTP 400, no AdmissionReview at all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Admitted as sent, with warnings for the client (none from /mutate).
    Allow { warnings: Vec<String> },
    /// Admitted with this JSON Patch (its JSON text) that defaults the object: /mutate only, and
    /// never an empty one (a Tenant with nothing to default is answered with `Allow`).
    Patch { patch: Vec<u8> },
    /// 422 Invalid: the object is not a valid Tenant, or not a Tenant at all.
    Invalid {
        name: String,
        violations: Vec<Violation>,
        warnings: Vec<String>,
    },
    /// 403 Forbidden: the Tenant is valid, the cluster's policy refuses it.
    Forbidden {
        name: String,
        reason: String,
        warnings: Vec<String>,
    },
}

impl Decision {
    /// Admitted as sent, nothing to say.
    pub fn allow() -> Self {
        Decision::Allow {
            warnings: Vec::new(),
        }
    }

    pub fn allowed(&self) -> bool {
        matches!(self, Decision::Allow { .. } | Decision::Patch { .. })
    }

    /// The `verdict` of the request metrics and the log line: `allowed`, `patched` or `denied`.
    pub fn label(&self) -> &'static str {
        match self {
            Decision::Allow { .. } => "allowed",
            Decision::Patch { .. } => "patched",
            Decision::Invalid { .. } | Decision::Forbidden { .. } => "denied",
        }
    }

    /// How many reasons a denial gives (0 when admitted), for the log line.
    pub fn violations(&self) -> usize {
        match self {
            Decision::Allow { .. } | Decision::Patch { .. } => 0,
            Decision::Invalid { violations, .. } => violations.len(),
            Decision::Forbidden { .. } => 1,
        }
    }

    pub fn warnings(&self) -> &[String] {
        match self {
            Decision::Allow { warnings }
            | Decision::Invalid { warnings, .. }
            | Decision::Forbidden { warnings, .. } => warnings,
            Decision::Patch { .. } => &[],
        }
    }

    /// The AdmissionReview answering the request with this `uid`. The keys are inserted in the
    /// order the golden answers were written in (uid, allowed, patch or status, warnings).
    pub fn render(&self, uid: &str) -> Value {
        let mut response = json!({"uid": uid, "allowed": self.allowed()});
        match self {
            Decision::Allow { .. } => {}
            Decision::Patch { patch } => {
                response["patchType"] = json!("JSONPatch");
                response["patch"] = json!(base64::engine::general_purpose::STANDARD.encode(patch));
            }
            Decision::Invalid {
                name, violations, ..
            } => {
                response["status"] = invalid_status(name, violations);
            }
            Decision::Forbidden { name, reason, .. } => {
                response["status"] = forbidden_status(name, reason);
            }
        }
        let warnings = self.warnings();
        if !warnings.is_empty() {
            response["warnings"] = json!(warnings);
        }
        json!({"apiVersion": REVIEW_API_VERSION, "kind": REVIEW_KIND, "response": response})
    }
}

/// A denial's metav1.Status, in the apiserver's own shape.
fn failure_status(code: u16, reason: &str, message: String, details: Value) -> Value {
    json!({"metadata": {}, "status": "Failure", "code": code, "reason": reason, "message": message, "details": details})
}

/// 422 Invalid with one cause per violation, in the shape of the apiserver's own field errors.
fn invalid_status(name: &str, violations: &[Violation]) -> Value {
    let causes: Vec<Value> = violations.iter().map(status_cause).collect();
    let details = json!({"name": name, "group": GROUP, "kind": "tenants", "causes": causes});
    failure_status(
        422,
        "Invalid",
        admission::denial_message(name, violations),
        details,
    )
}

fn status_cause(violation: &Violation) -> Value {
    // The apiserver's own type, so the key names cannot drift from what it decodes: the
    // cause's type travels as `reason` (a hand-written `type` key was silently dropped).
    let cause = StatusCause {
        reason: Some(violation.reason.cause_type().to_owned()),
        field: Some(violation.field.clone()),
        message: Some(violation.message()),
    };
    serde_json::to_value(cause).unwrap_or(Value::Null)
}

/// 403 Forbidden: the Tenant is fine, the cluster's policy refuses it.
fn forbidden_status(name: &str, reason: &str) -> Value {
    let details = json!({"name": name, "group": GROUP, "kind": "tenants"});
    let message = format!("Tenant.minio.min.io {name:?} is forbidden: {reason}");
    failure_status(403, "Forbidden", message, details)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::Reason;

    fn all() -> [Decision; 4] {
        [
            Decision::allow(),
            Decision::Patch {
                patch: b"[]".to_vec(),
            },
            Decision::Invalid {
                name: "a".into(),
                violations: vec![
                    Violation::new("spec.pools", Reason::Required, "one pool at least"),
                    Violation::new("spec.image", Reason::Invalid, "no tag"),
                ],
                warnings: Vec::new(),
            },
            Decision::Forbidden {
                name: "a".into(),
                reason: "one Tenant per namespace".into(),
                warnings: vec!["careful".into()],
            },
        ]
    }

    /// Dashboards and alerts read these labels: they must not change.
    #[test]
    fn labels_and_counts_are_the_metric_and_log_values() {
        let seen: Vec<(&str, bool, usize)> = all()
            .iter()
            .map(|d| (d.label(), d.allowed(), d.violations()))
            .collect();
        assert_eq!(
            seen,
            [
                ("allowed", true, 0),
                ("patched", true, 0),
                ("denied", false, 2),
                ("denied", false, 1)
            ]
        );
    }

    #[test]
    fn the_rendered_answer_says_what_the_decision_says() {
        for decision in all() {
            let out = decision.render("uid-1");
            assert_eq!(out["apiVersion"], "admission.k8s.io/v1");
            assert_eq!(out["kind"], "AdmissionReview");
            let response = &out["response"];
            assert_eq!(response["uid"], "uid-1");
            assert_eq!(response["allowed"], decision.allowed());
            assert_eq!(
                response.get("patch").is_some(),
                decision.label() == "patched"
            );
            assert_eq!(response.get("status").is_some(), !decision.allowed());
            assert_eq!(
                response.get("warnings").is_some(),
                !decision.warnings().is_empty()
            );
        }
        let rendered = all()[3].render("u");
        let forbidden = &rendered["response"]["status"];
        assert_eq!(forbidden["code"], 403);
        assert_eq!(
            forbidden["message"],
            "Tenant.minio.min.io \"a\" is forbidden: one Tenant per namespace"
        );
    }
}

//! A `Violation` is one reason a Tenant cannot work: the field, what kind of problem, the value found
//! and what would be valid. Rendered in the form Kubernetes' own field errors take
//! (`spec.pools[0].servers: Invalid value: 0: ...`), so people read it as they read apiserver errors.

use std::fmt;

use serde::Serialize;

/// The kinds of field error the apiserver uses (`metav1.CauseType`), so a denial's `status.details`
/// causes look like those of built-in types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Reason {
    #[serde(rename = "FieldValueRequired")]
    Required,
    #[serde(rename = "FieldValueInvalid")]
    Invalid,
    #[serde(rename = "FieldValueNotSupported")]
    NotSupported,
    #[serde(rename = "FieldValueDuplicate")]
    Duplicate,
    #[serde(rename = "FieldValueTooLong")]
    TooLong,
    #[serde(rename = "FieldValueForbidden")]
    Forbidden,
    #[serde(rename = "FieldValueTooMany")]
    TooMany,
}

impl Reason {
    /// The words Kubernetes puts before the detail.
    fn label(self) -> &'static str {
        match self {
            Reason::Required => "Required value",
            Reason::Invalid => "Invalid value",
            Reason::NotSupported => "Unsupported value",
            Reason::Duplicate => "Duplicate value",
            Reason::TooLong => "Too long",
            Reason::Forbidden => "Forbidden",
            Reason::TooMany => "Too many",
        }
    }

    /// The cause type string (`FieldValueInvalid`, ...).
    pub fn cause_type(self) -> &'static str {
        match self {
            Reason::Required => "FieldValueRequired",
            Reason::Invalid => "FieldValueInvalid",
            Reason::NotSupported => "FieldValueNotSupported",
            Reason::Duplicate => "FieldValueDuplicate",
            Reason::TooLong => "FieldValueTooLong",
            Reason::Forbidden => "FieldValueForbidden",
            Reason::TooMany => "FieldValueTooMany",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// JSON path of the field, e.g. `spec.pools[1].servers`.
    pub field: String,
    pub reason: Reason,
    /// The value found, rendered as JSON (strings quoted), when showing it helps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// What is wrong and what would be valid.
    pub detail: String,
}

impl Violation {
    pub fn new(field: impl Into<String>, reason: Reason, detail: impl Into<String>) -> Self {
        Violation {
            field: field.into(),
            reason,
            value: None,
            detail: detail.into(),
        }
    }

    /// Attach the offending value; `value` must never be a secret (only names and numbers are).
    pub fn with_value(mut self, value: impl Serialize) -> Self {
        self.value = serde_json::to_string(&value).ok();
        self
    }

    /// The whole message, as the webhook and the CLI print it.
    pub fn message(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(v) => write!(
                f,
                "{}: {}: {}: {}",
                self.field,
                self.reason.label(),
                v,
                self.detail
            ),
            None => write!(
                f,
                "{}: {}: {}",
                self.field,
                self.reason.label(),
                self.detail
            ),
        }
    }
}

/// Appends map key `key` to a violation's field path, as the apiserver writes paths: `.key`, or
/// `[key]` when the key holds a dot or a bracket (a resource name like `example.com/gpu`, or
/// anything a user typed), so a path never reads as fields that do not exist (found by fuzzing).
pub fn push_key(path: &mut String, key: &str) {
    if key.is_empty() || key.contains(['[', ']', '"']) {
        // Brackets inside brackets would end the key early: such a key (never a real field or
        // resource name; found by fuzzing) is written as a JSON string, `["a]b"]`, which
        // `source_map::segments` reads back.
        path.push('[');
        path.push_str(&serde_json::Value::from(key).to_string());
        path.push(']');
    } else if key.contains('.') {
        path.push('[');
        path.push_str(key);
        path.push(']');
    } else {
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(key);
    }
}

/// `at` followed by map key `key`, always in brackets as the apiserver writes map keys (labels,
/// resource names): `metadata.labels[app.kubernetes.io/name]`. A key that brackets could not
/// hold is written as a JSON string, as [`push_key`] does.
pub fn map_key(at: &str, key: &str) -> String {
    if key.is_empty() || key.contains(['[', ']', '"']) {
        format!("{at}[{}]", serde_json::Value::from(key))
    } else {
        format!("{at}[{key}]")
    }
}

/// Appends list index `index` to a violation's field path: `[index]`.
pub fn push_index(path: &mut String, index: usize) {
    path.push('[');
    path.push_str(&index.to_string());
    path.push(']');
}

/// The single line that denies a Tenant, in the apiserver's own shape:
/// `Tenant.minio.min.io "name" is invalid: [a, b]` (no brackets for one violation).
pub fn denial_message(tenant_name: &str, violations: &[Violation]) -> String {
    let listed = match violations {
        [one] => one.message(),
        many => format!(
            "[{}]",
            many.iter()
                .map(Violation::message)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    format!("Tenant.minio.min.io {tenant_name:?} is invalid: {listed}")
}

/// Collects violations while walking a Tenant, with the path of the current field.
#[derive(Default)]
pub struct Violations(Vec<Violation>);

impl Violations {
    pub fn push(&mut self, v: Violation) {
        self.0.push(v);
    }

    pub fn required(&mut self, field: impl Into<String>, detail: impl Into<String>) {
        self.push(Violation::new(field, Reason::Required, detail));
    }

    pub fn invalid(
        &mut self,
        field: impl Into<String>,
        value: impl Serialize,
        detail: impl Into<String>,
    ) {
        self.push(Violation::new(field, Reason::Invalid, detail).with_value(value));
    }

    pub fn duplicate(&mut self, field: impl Into<String>, value: &str, detail: impl Into<String>) {
        self.push(Violation::new(field, Reason::Duplicate, detail).with_value(value));
    }

    pub fn forbidden(&mut self, field: impl Into<String>, detail: impl Into<String>) {
        self.push(Violation::new(field, Reason::Forbidden, detail));
    }

    pub fn not_supported(&mut self, field: impl Into<String>, value: &str, supported: &[&str]) {
        let listed = supported
            .iter()
            .map(|s| format!("{s:?}"))
            .collect::<Vec<_>>()
            .join(", ");
        self.push(
            Violation::new(
                field,
                Reason::NotSupported,
                format!("supported values: {listed}"),
            )
            .with_value(value),
        );
    }

    pub fn into_result(self) -> Result<(), Vec<Violation>> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(self.0)
        }
    }

    pub fn into_vec(self) -> Vec<Violation> {
        self.0
    }
}

//! The admission core: defaulting and validation as pure functions over typed Tenants. The webhook,
//! the offline CLI and the reconciler's guard all call [`review`], so their answers cannot drift.

pub mod backstop;
pub mod defaults;
pub mod limits;
pub mod patch;
pub mod shape;
pub mod syntax;
pub mod validate;
pub mod violation;
pub mod warnings;

pub use defaults::{DefaultsConfig, apply_defaults, defaulted};
pub use validate::validate;
pub use violation::{Reason, Violation, denial_message};

use crate::api::tenant::Tenant;

/// What admission concludes about a Tenant.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Verdict {
    /// Empty when the Tenant is allowed.
    pub violations: Vec<Violation>,
    pub warnings: Vec<String>,
}

impl Verdict {
    pub fn allowed(&self) -> bool {
        self.violations.is_empty()
    }

    /// The denial message, as the webhook sends it (`None` when allowed).
    pub fn message(&self, tenant_name: &str) -> Option<String> {
        (!self.allowed()).then(|| denial_message(tenant_name, &self.violations))
    }
}

/// Judges `new` as defaulting leaves it (and, on UPDATE, the change from `old`, defaulted alike), so
/// the verdict does not depend on whether the mutating webhook ran first.
pub fn review(old: Option<&Tenant>, new: &Tenant, config: &DefaultsConfig) -> Verdict {
    review_owned(old.cloned(), new.clone(), config).0
}

/// [`review`] for a caller that owns the Tenants (the webhook): they are defaulted in place rather
/// than copied, and the defaulted `new` is handed back.
pub fn review_owned(
    old: Option<Tenant>,
    mut new: Tenant,
    config: &DefaultsConfig,
) -> (Verdict, Tenant) {
    apply_defaults(&mut new, config);
    let old = old.map(|mut o| {
        apply_defaults(&mut o, config);
        o
    });
    let verdict = Verdict {
        violations: validate(old.as_ref(), &new).err().unwrap_or_default(),
        warnings: warnings::warnings(&new),
    };
    (verdict, new)
}

/// The typed Tenant of a JSON object, or a violation naming the field that does not fit the Tenant
/// types (e.g. `spec.pools[0].servers` holding a string).
pub fn parse_tenant(value: &serde_json::Value) -> Result<Tenant, Violation> {
    use serde::Deserialize;
    if !value.is_object() {
        return Err(not_an_object());
    }
    // Path tracking costs on every field; pay for it only to explain a failure.
    Tenant::deserialize(value)
        .or_else(|_| serde_path_to_error::deserialize(value).map_err(type_violation))
}

/// Like [`parse_tenant`], straight from JSON text: no intermediate `Value` tree.
pub fn parse_tenant_str(json: &str) -> Result<Tenant, Violation> {
    if !json.trim_start().starts_with('{') {
        return Err(not_an_object());
    }
    serde_json::from_str(json).or_else(|_| {
        let mut de = serde_json::Deserializer::from_str(json);
        serde_path_to_error::deserialize(&mut de).map_err(type_violation)
    })
}

/// serde reads a struct from a JSON array too (its fields in order): `[]` would be an empty Tenant
/// (found by fuzzing). A Tenant is an object.
fn not_an_object() -> Violation {
    Violation::new(
        "<root>",
        Reason::Invalid,
        "a Tenant is a JSON object (`{\"apiVersion\": ..., \"kind\": \"Tenant\", ...}`)",
    )
}

/// A value of the wrong type, at the path where it was found.
fn type_violation(e: serde_path_to_error::Error<serde_json::Error>) -> Violation {
    use serde_path_to_error::Segment;
    let mut field = String::new();
    for segment in e.path() {
        match segment {
            Segment::Seq { index } => violation::push_index(&mut field, *index),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                violation::push_key(&mut field, key)
            }
            Segment::Unknown => violation::push_key(&mut field, "?"),
        }
    }
    let field = if field.is_empty() {
        "<root>".to_owned()
    } else {
        field
    };
    Violation::new(field, Reason::Invalid, e.into_inner().to_string())
}

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

/// Why an object is no Tenant to judge.
#[derive(Clone, Debug, PartialEq)]
pub enum Unfit {
    /// Over the size limits ([`limits`]): every field over them.
    OverLimits(Vec<Violation>),
    /// Not of the Tenant's types: the field where the typed parse failed.
    NotATenant(Violation),
}

impl Unfit {
    pub fn into_violations(self) -> Vec<Violation> {
        match self {
            Unfit::OverLimits(violations) => violations,
            Unfit::NotATenant(violation) => vec![violation],
        }
    }
}

/// The Tenant in JSON text, checked against the size limits ([`limits`]) in the same pass that
/// builds it. What is wrong with an unfit object is named as [`limits::check_json`] and
/// [`parse_tenant_str`] name it (they look again, only then). `Err` means the text is not JSON (or
/// holds a string that is not Unicode).
pub fn parse_tenant_checked(json: &str) -> Result<Result<Tenant, Unfit>, serde_json::Error> {
    if json.trim_start().starts_with('{')
        && let Some(tenant) = limits::parse_within(json)
    {
        return Ok(Ok(tenant));
    }
    parse_tenant_two_passes(json)
}

/// [`parse_tenant_checked`]'s answer the slow way, each check in a pass of its own: what it falls
/// back to for the messages, and what tests and fuzzing compare it with.
pub fn parse_tenant_two_passes(json: &str) -> Result<Result<Tenant, Unfit>, serde_json::Error> {
    let over = limits::check_json(json)?;
    if !over.is_empty() {
        return Ok(Err(Unfit::OverLimits(over)));
    }
    Ok(parse_tenant_str(json).map_err(Unfit::NotATenant))
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

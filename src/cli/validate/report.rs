//! What `validate` found, in one shape every output format renders.

use serde::Serialize;

use super::super::{EXIT_OK, EXIT_UNREADABLE, EXIT_VIOLATIONS};
use crate::admission::Violation;
use crate::manifest::Origin;

/// The judgement of one Tenant document.
#[derive(Debug, Serialize)]
pub struct TenantResult {
    #[serde(flatten)]
    pub origin: Origin,
    pub namespace: String,
    pub name: String,
    pub valid: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub violations: Vec<ViolationOut>,
    pub warnings: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct ViolationOut {
    #[serde(flatten)]
    pub violation: Violation,
    pub message: String,
    /// Where the field is written (or its nearest parent that is), 1-based.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
}

#[derive(Debug, Default, Serialize)]
pub struct Summary {
    pub tenants: usize,
    pub valid: usize,
    pub invalid: usize,
    pub skipped: usize,
    pub unreadable: usize,
}

#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub results: Vec<TenantResult>,
    pub errors: Vec<String>,
    pub summary: Summary,
}

impl Report {
    pub fn exit_code(&self) -> u8 {
        if self.summary.unreadable > 0 {
            EXIT_UNREADABLE
        } else if self.summary.invalid > 0 {
            EXIT_VIOLATIONS
        } else {
            EXIT_OK
        }
    }
}
